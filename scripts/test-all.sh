#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs redis-server when it is
# missing (the Redis tests start their own throwaway servers on loopback
# ports and stop them), then runs every test and doctest of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server not found: installing Debian's package (apt-get install redis-server)" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq redis-server >/dev/null
  # The package may start a system service; the tests never use it.
  "${sudo_cmd[@]}" service redis-server stop >/dev/null 2>&1 || true
fi
redis-server --version

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --all-features "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole workspace (cargo prints one per test binary).
passed=$(grep -E '^test result:' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -E '^test result:' "$log" | awk '{s += $6} END {print s + 0}')
echo "workspace: $passed passed, $failed failed"
exit "$status"
