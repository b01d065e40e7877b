use cache_macros::cached;

#[cached(loader = LOADER, key = "product:{id}")]
async fn product(id: u64) -> u64 {
    id
}

fn main() {}
