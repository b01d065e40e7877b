# Common tasks. `just` is optional: each recipe is one plain command.

# The main job on the embedded default (no server needed).
demo:
    cargo run -p cache-cli --bin cachectl

# Every test and doctest; installs and starts redis-server as needed.
test:
    bash scripts/test-all.sh

# What CI runs.
ci:
    bash .ci/run

fmt:
    cargo fmt --all

lint:
    cargo clippy --workspace --all-targets --all-features -- -D warnings
