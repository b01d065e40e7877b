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
# A bound on the whole run, so that a hung test (libtest has no per-test
# timeout; a doctest once waited forever for an event) ends the run red with
# its name in the log instead of using up CI's 90 minutes. A clean run takes
# about 12 minutes here.
limit=${TEST_TIMEOUT_SECS:-3000}
set +e
timeout --kill-after=30 "$limit" cargo test --workspace --all-features "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "the test suite ran over ${limit} s and was stopped: a test hangs (libtest names it above: 'has been running for over 60 seconds')" >&2
fi
# One closing line for the whole workspace (cargo prints one per test binary).
# (No result line at all, a build that failed or was stopped, is 0 and 0,
# and the exit status below says why.)
results=$(grep -E '^test result:' "$log" || true)
passed=$(awk '{s += $4} END {print s + 0}' <<<"$results")
failed=$(awk '{s += $6} END {print s + 0}' <<<"$results")
echo "workspace: $passed passed, $failed failed"
exit "$status"
