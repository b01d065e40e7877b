use cache_macros::cached;

#[cached(loader = LOADER, key = "product:{product_id}")]
async fn product(id: u64) -> Result<u64, std::io::Error> {
    Ok(id)
}

fn main() {}
