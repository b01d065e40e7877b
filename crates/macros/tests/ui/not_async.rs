use cache_macros::cached;

#[cached(loader = LOADER, key = "product:{id}")]
fn product(id: u64) -> Result<u64, std::io::Error> {
    Ok(id)
}

fn main() {}
