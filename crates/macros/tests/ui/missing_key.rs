use cache_macros::cached;

#[cached(loader = LOADER, ttl = "5m")]
async fn product(id: u64) -> Result<u64, std::io::Error> {
    Ok(id)
}

fn main() {}
