use cache_macros::cached;

struct Catalogue;

impl Catalogue {
    #[cached(loader = self.loader, key = "product:{id}")]
    async fn product(&mut self, id: u64) -> Result<u64, std::io::Error> {
        Ok(id)
    }
}

fn main() {}
