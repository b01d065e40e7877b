#!/usr/bin/env bash
# The dependency invariants of docs/ARCHITECTURE.md, checked with cargo tree.
# Each check prints what it enforces; the first broken one fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "invariant broken: $*" >&2; exit 1; }

# The crates a package depends on (normal dependencies, every depth), by name.
# With its default features: what a crate that depends on it plainly compiles.
deps() { cargo tree -p "$1" -e normal --prefix none 2>/dev/null | awk '{print $1}' | sort -u; }
# The same with every feature on (an optional dependency counts).
deps_all() { cargo tree -p "$1" -e normal --prefix none --all-features 2>/dev/null | awk '{print $1}' | sort -u; }
# Its direct normal dependencies, by name, every feature on.
direct() { cargo tree -p "$1" -e normal --prefix none --depth 1 --all-features 2>/dev/null | awk 'NR > 1 {print $1}' | sort -u; }
# Its direct dependencies among the workspace's own crates.
ours() { direct "$1" | grep -E '^cache-' || true; }
# Fails unless every workspace crate $1 depends on directly is in the rest.
only_ours() {
  local crate=$1; shift
  for dep in $(ours "$crate"); do
    local allowed=no
    for ok in "$@"; do [ "$dep" = "$ok" ] && allowed=yes; done
    [ $allowed = yes ] || fail "$crate depends on $dep (allowed: $*)"
  done
}

echo "-- the port needs no runtime, no metrics or tracing, no engine, no DI framework, none of our other crates"
port=$(deps cache-port)
for banned in tokio metrics quanta quick_cache tracing moka fred shaku fastrand; do
  echo "$port" | grep -qx "$banned" && fail "cache-port depends on $banned"
done
for banned in moka fred shaku tokio metrics quanta quick_cache; do
  deps_all cache-port | grep -qx "$banned" && fail "cache-port depends on $banned with its features on"
done
only_ours cache-port

echo "-- the store side depends on the port alone of our crates, and on no engine"
only_ours cache-store cache-port
for banned in moka fred shaku metrics quanta; do
  deps_all cache-store | grep -qx "$banned" && fail "cache-store depends on $banned"
done

echo "-- observability depends on the port and the store side"
only_ours cache-observe cache-port cache-store

echo "-- loading depends on the port alone of our crates"
only_ours cache-loading cache-port

echo "-- adapters depend on the port and the store side only (plus their engine)"
only_ours cache-moka cache-port cache-store
only_ours cache-redis cache-port cache-store
deps_all cache-moka | grep -qx fred && fail "cache-moka depends on fred"
deps_all cache-redis | grep -qx moka && fail "cache-redis depends on moka"

echo "-- the tiered cache builds its L1 from cache-moka, takes any L2 and backplane, never names Redis"
only_ours cache-tiered cache-port cache-store cache-moka
deps_all cache-tiered | grep -qx -e cache-redis -e fred && fail "cache-tiered depends on Redis (its L2 and backplane are handed in)"

echo "-- tags are a view over the port: the port alone of our crates"
only_ours cache-tags cache-port

echo "-- keyspaces are the port's typed face: the port and loading alone of our crates"
only_ours cache-keyspace cache-port cache-loading

echo "-- recipes are over the ports: the port, the store side (the write log port), keyspaces and tags alone of our crates"
only_ours cache-recipes cache-port cache-store cache-keyspace cache-tags

echo "-- the #[cached] macro depends on none of our crates (its expansion names cache_loading)"
only_ours cache-macros

echo "-- the conformance suite depends on no adapter"
only_ours cache-conformance cache-port cache-store cache-loading cache-tags cache-keyspace cache-recipes

echo "-- the catalogue library depends on the port, loading, tags and keyspaces alone of our crates (domain code)"
only_ours cache-example-catalog cache-port cache-loading cache-tags cache-keyspace

echo "-- only cache-composition names shaku"
members=$(sed -n 's/^name = "\(cache-.*\)"$/\1/p' crates/*/Cargo.toml tests/Cargo.toml)
for member in $members; do
  [ "$member" = cache-composition ] && continue
  direct "$member" | grep -qx shaku && fail "$member depends on shaku directly"
done

echo "-- no crate imports from one above it: the port, store side, observability, loading and tags name no adapter"
for crate in cache-port cache-store cache-observe cache-loading cache-tags cache-keyspace cache-recipes; do
  for above in cache-moka cache-redis cache-tiered cache-composition cache-cli; do
    deps_all "$crate" | grep -qx "$above" && fail "$crate depends on $above"
  done
done

echo "invariants hold"
