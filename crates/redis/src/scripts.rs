//! The Lua scripts the Redis store runs, and the limits that go with them.

/// `INCRBY` whose TTL applies only when it creates the counter, atomically.
/// It answers with the stored string, not INCRBY's integer: Lua numbers are
/// doubles, and a counter past 2^53 would come back rounded (found by the
/// differential test: i64::MAX came back as i64::MIN). The string is read
/// before the TTL is set: read after a `PEXPIRE` of 1 ms, the counter was
/// sometimes gone already (about 1 call in 2,500 with a 1 ms TTL through
/// the adapter, on Redis 7.0), and an applied increment answered as a
/// failure (`tests/regressions.rs`).
///
/// Only a counter at or past 2^53 is read back with `GET`: below that the
/// double is exact and goes back as an integer reply, and a `GET` on every
/// call was a third of the script's server time (hot_path bench, issue 25).
pub(crate) const INCR_WITH_TTL: &str = r"
local created = redis.call('EXISTS', KEYS[1]) == 0
local counter = redis.call('INCRBY', KEYS[1], ARGV[1])
if counter >= 9007199254740992 or counter <= -9007199254740992 then
  counter = redis.call('GET', KEYS[1])
end
if created then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return counter";

/// GCRA checks (`cache_port::throttle::gcra`, transcribed line by line)
/// with the server's clock, one per key of `KEYS`, in order, at one
/// `TIME`: `ARGV[3i-2..3i]` are the T and burst·T in µs and the cost of
/// `KEYS[i]`. Each answer is 5 numbers: 1 then allowed (1/0), remaining,
/// retry after (µs), reset after (µs); or 0 (and zeros) for a key that
/// holds something else than a schedule, that check's alone. The TAT is
/// stored as decimal µs with a TTL until the allowance is full again, by
/// the one command that computes it (no crash between two commands can
/// leave it without one). Lua numbers are doubles: µs since the epoch
/// (about 2^51 now) are exact. A lone check is a call of one; concurrent
/// ones share a call (`coalesce/`).
pub(crate) const GCRA_EACH: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local out = {}
for i = 1, #KEYS do
  local t, tau, cost = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  local stored = redis.call('GET', KEYS[i])
  local tat = now
  local ok = true
  if stored then
    local n = tonumber(stored)
    if not n or n < 0 or n ~= math.floor(n) or not string.match(stored, '^%d+$') then
      ok = false
    elseif n > now then
      tat = n
    end
  end
  local base = 5 * (i - 1)
  if not ok then
    out[base + 1], out[base + 2], out[base + 3], out[base + 4], out[base + 5] = 0, 0, 0, 0, 0
  else
    local new = tat + cost * t
    if new - now <= tau then
      if cost > 0 then
        redis.call('SET', KEYS[i], string.format('%.0f', new), 'PX', math.max(1, math.ceil((new - now) / 1000)))
      end
      out[base + 1], out[base + 2], out[base + 3], out[base + 4], out[base + 5] =
        1, 1, math.floor((tau - (new - now)) / t), 0, new - now
    else
      out[base + 1], out[base + 2], out[base + 3], out[base + 4], out[base + 5] =
        1, 0, math.max(0, math.floor((tau - (tat - now)) / t)), new - now - tau, tat - now
    end
  end
end
return out";

/// One sliding-window check (`cache_port::throttle::sliding_window`,
/// transcribed line by line) with the server's clock: `ARGV` are the
/// window in µs, the limit and the cost; the answer is `GCRA_EACH`'s four
/// numbers after its leading 1. The state
/// is the allowed requests' times, decimal µs joined by commas, kept for
/// one window after the newest.
pub(crate) const SLIDING_WINDOW: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local w, limit, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local stored = redis.call('GET', KEYS[1])
local kept = {}
if stored then
  for part in string.gmatch(stored .. ',', '([^,]*),') do
    if not string.match(part, '^%d+$') then
      return redis.error_reply('ERR value is not an integer or out of range')
    end
    local at = tonumber(part)
    if at + w > now then kept[#kept + 1] = at end
  end
end
table.sort(kept)
local count = #kept
local function gone(at) return math.max(0, at + w - now) end
if count + cost <= limit then
  if cost > 0 then
    for i = 1, cost do kept[#kept + 1] = now end
    local parts = {}
    for i, at in ipairs(kept) do parts[i] = string.format('%.0f', at) end
    redis.call('SET', KEYS[1], table.concat(parts, ','), 'PX', math.max(1, math.ceil(w / 1000)))
  end
  local reset = 0
  if #kept > 0 then reset = gone(kept[#kept]) end
  return {1, limit - count - cost, 0, reset}
end
local need = count + cost - limit
local reset = 0
if count > 0 then reset = gone(kept[count]) end
local retry = reset
if need <= count then retry = gone(kept[need]) end
return {0, math.max(0, limit - count), retry, reset}";

/// `set_many` on one server (not a cluster, where keys span slots): every
/// `SET` in one command. fred sends a pipeline's commands one write each,
/// and queuing the `SET`s as separate commands costs a command future per
/// key (at 64 tasks on two cores, 0.72x the throughput of a pipeline); one
/// script is one round trip and one future. `ARGV[1]` is the TTL in ms (0:
/// none); `ARGV[i + 1]` is the value of `KEYS[i]`. Later duplicates win, in
/// order.
/// The TTL goes to `PSETEX` as the string it came as (see `SET_EACH`).
pub(crate) const SET_MANY: &str = r"
local px = ARGV[1]
for i = 1, #KEYS do
  if px ~= '0' then redis.call('PSETEX', KEYS[i], px, ARGV[i + 1])
  else redis.call('SET', KEYS[i], ARGV[i + 1]) end
end
return #KEYS";

/// Items per `SET_MANY` call: a script blocks the server while it runs, so
/// a huge batch goes in slices.
pub(crate) const SET_MANY_SLICE: usize = 1000;

/// Coalesced `set`s of which some carry a TTL (`coalesce/`): `ARGV[2i-1]`
/// is the TTL in ms of `KEYS[i]` (0: none), `ARGV[2i]` its value. In order,
/// so a later `set` of the same key wins, as it would alone.
///
/// The TTL goes to `PSETEX` as the string it came as: a Lua number passed
/// to `redis.call` is formatted back with `%.17g`, and with `tonumber` that
/// took a few percent of the server's time in a profile of coalesced sets
/// (`strtod`, `printf_fp`; hot_path bench, `HOT_PATH_SIDE=ours`); and
/// `PSETEX` parses three arguments where `SET … PX` walks its options
/// (1.1–1.8 µs a key inside a script against 1.7–2.4 µs, `INFO
/// commandstats`, 64 keys a call).
pub(crate) const SET_EACH: &str = r"
for i = 1, #KEYS do
  local px = ARGV[2 * i - 1]
  if px ~= '0' then redis.call('PSETEX', KEYS[i], px, ARGV[2 * i])
  else redis.call('SET', KEYS[i], ARGV[2 * i]) end
end
return #KEYS";

/// Coalesced `incr`s (`coalesce/`): `ARGV[2i-1]` is the delta of `KEYS[i]`,
/// `ARGV[2i]` its TTL in ms if the call creates the counter (`'0'`: none),
/// in order, as `INCR_WITH_TTL` (or `INCRBY`) would run them one by one.
/// The answer is flat pairs, one per call: `1, counter` (an integer below
/// 2^53, the stored string at or past it), or `0, message` when that call
/// failed (not an integer, an overflow, another type, OOM): each call gets
/// its own error, and the calls after it still run, as they would alone.
pub(crate) const INCR_EACH: &str = r"
local out = {}
for i = 1, #KEYS do
  local key, px = KEYS[i], ARGV[2 * i]
  local created = px ~= '0' and redis.call('EXISTS', key) == 0
  local counter = redis.pcall('INCRBY', key, ARGV[2 * i - 1])
  if type(counter) == 'table' then
    out[2 * i - 1] = 0
    out[2 * i] = counter.err
  else
    if counter >= 9007199254740992 or counter <= -9007199254740992 then
      counter = redis.call('GET', key)
    end
    local expiry = created and redis.pcall('PEXPIRE', key, px)
    if type(expiry) == 'table' then
      out[2 * i - 1] = 0
      out[2 * i] = expiry.err
    else
      out[2 * i - 1] = 1
      out[2 * i] = counter
    end
  end
end
return out";

/// Coalesced `ttl`s (`coalesce/`): the `PTTL` of each of `KEYS`, in
/// order. (The tiered cache reads `GET` and `PTTL` together on every L1
/// miss: without this, half of its reads' commands went alone.)
pub(crate) const PTTL_EACH: &str = r"
local ttls = {}
for i = 1, #KEYS do ttls[i] = redis.call('PTTL', KEYS[i]) end
return ttls";

/// `get_many` with each key's remaining TTL (`GET` and `PTTL` of each of
/// `KEYS`, in order, flat: value, ms, value, ms, …), for the tiered cache's
/// backfill from a `get_many`: one command, where `MGET` and a `PTTL` per
/// key would be two at least. A missing key's value is nil (Lua `false`),
/// and so is another type's, as `MGET` answers (a plain `GET` would fail
/// the whole script with `WRONGTYPE`: `tests/ttl_reads.rs`).
pub(crate) const GET_WITH_PTTL_EACH: &str = r"
local out = {}
for i = 1, #KEYS do
  local value = redis.pcall('GET', KEYS[i])
  if type(value) == 'table' and value.err then value = false end
  out[2 * i - 1] = value
  out[2 * i] = redis.call('PTTL', KEYS[i])
end
return out";

/// Values larger than this are `SET` alone, never coalesced: a batch stays
/// a few MiB at most (Redis closes a connection whose query passes
/// `client-query-buffer-limit`, 1 GiB by default).
pub(crate) const COALESCED_VALUE_MAX: usize = 16 * 1024;

/// `delete_if_equals`: compare and delete in one step, so a lock whose owner
/// was too slow (it expired and someone else took it) is not removed by the
/// old owner. (Redis 8.4's `DELEX IFEQ` does this natively; Debian's 7.0 has
/// no such command.)
pub(crate) const DELETE_IF_EQUALS: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";
