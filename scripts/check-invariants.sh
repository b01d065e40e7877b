#!/usr/bin/env bash
# The dependency invariants of docs/ARCHITECTURE.md, checked with cargo tree.
# Each check prints what it enforces; the first broken one fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "invariant broken: $*" >&2; exit 1; }

# The crates a package depends on (normal dependencies, every depth), by name.
deps() { cargo tree -p "$1" -e normal --prefix none --all-features 2>/dev/null | awk '{print $1}' | sort -u; }
# Its direct normal dependencies, by name.
direct() { cargo tree -p "$1" -e normal --prefix none --depth 1 --all-features 2>/dev/null | awk 'NR > 1 {print $1}' | sort -u; }

echo "-- the port depends on no adapter, no client and no DI framework"
for banned in cache-moka cache-redis moka fred shaku; do
  deps cache-port | grep -qx "$banned" && fail "cache-port depends on $banned"
done

echo "-- the conformance suite depends on the port only (no adapter)"
for banned in cache-moka cache-redis moka fred shaku; do
  deps cache-conformance | grep -qx "$banned" && fail "cache-conformance depends on $banned"
done

echo "-- only cache-composition names shaku"
members=$(sed -n 's/^name = "\(cache-.*\)"$/\1/p' crates/*/Cargo.toml tests/Cargo.toml)
for member in $members; do
  [ "$member" = cache-composition ] && continue
  direct "$member" | grep -qx shaku && fail "$member depends on shaku directly"
done

echo "-- the catalogue library depends on cache-port alone of the workspace's crates"
others=$(deps cache-example-catalog | grep -E '^cache-' | grep -vx -e cache-example-catalog -e cache-port || true)
[ -z "$others" ] || fail "cache-example-catalog depends on: $others"

echo "-- adapters do not depend on each other (the tiered adapter builds its L1 from cache-moka, and takes any L2 and backplane)"
deps cache-moka | grep -qx cache-redis && fail "cache-moka depends on cache-redis"
deps cache-redis | grep -qx cache-moka && fail "cache-redis depends on cache-moka"
deps cache-tiered | grep -qx -e cache-redis -e fred && fail "cache-tiered depends on Redis (its L2 and backplane are handed in)"
deps cache-redis | grep -qx cache-tiered && fail "cache-redis depends on cache-tiered"
deps cache-moka | grep -qx cache-tiered && fail "cache-moka depends on cache-tiered"

echo "invariants hold"
