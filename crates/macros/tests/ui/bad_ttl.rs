use cache_macros::cached;

#[cached(loader = LOADER, key = "product:{id}", ttl = "5 minutes")]
async fn product(id: u64) -> Result<u64, std::io::Error> {
    Ok(id)
}

fn main() {}
