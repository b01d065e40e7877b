//! Differential test: the same random sequences of port operations against
//! cache-moka and cache-redis (a self-started redis-server), every answer
//! compared; tagged writes, reads and invalidations (`cache_tags`) are also
//! checked against a model of the rules.
//!
//! - CI runs `DIFF_OPS` operations (default 10,000); for a soak set
//!   `DIFF_OPS=1000000 DIFF_JOBS=16` (jobs run side by side, seeds `seed+job`).
//!   `DIFF_SEED` (with the same `DIFF_JOBS`) replays a run; it is printed.
//! - On a divergence proptest shrinks the sequence and prints it with both
//!   answers.
//! - Timing: adapters are called one after the other, so an entry whose
//!   expiry falls between the two calls could legitimately differ. The model
//!   below tracks each key's expiry window and, before any call that reads a
//!   key, waits until the key is clearly alive or clearly expired for both
//!   for as long as calls take lately. If the machine is slower than that and
//!   an expiry still falls between the two calls, differing answers are not
//!   a divergence: the case stops there and is counted (at most 5% may be).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_port::{Cache, ErrorKind, Ttl, TtlState, MAX_KEY_LEN, MAX_TTL};
use cache_redis::RedisConfig;
use cache_redis_harness::RedisServer;
use cache_store::{Store, View};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};

const MAX_VALUE: usize = 256 * 1024;
/// Operations per case, on average (cases run 1 to twice this many).
const OPS_PER_CASE: usize = 100;
/// Nothing is read within this distance of a possible expiry.
const GUARD: Duration = Duration::from_millis(15);

// ---------------------------------------------------------------- inputs

/// Keys: separators, hash tags, glob metacharacters, spaces, control and
/// multi-byte characters, long and invalid ones.
fn key_pool() -> Vec<String> {
    let mut keys: Vec<String> = [
        "a",
        "b",
        "ab",
        "abc",
        "user:1",
        "user:12",
        "user:123:profile",
        "user:",
        "users",
        "session",
        "a:session",
        "x/y/z",
        "a/b",
        "dir/file.txt",
        "{user:1}:cart",
        "{user:1}:profile",
        "{user:2}:cart",
        "user:{1}",
        "{a,b}",
        "a*b",
        "a?b",
        "a[b]",
        "[abc]",
        "a\\b",
        "\\",
        "*",
        "?",
        "[",
        "]",
        "-",
        "^a",
        "!a",
        "key with space",
        "tab\tkey",
        "new\nline",
        "é",
        "éclair",
        "naïve",
        "日本",
        "日本語",
        "emoji🦀",
        "0",
        "10",
        "counter",
        "n",
        "A",
        "Z",
        "_",
        "cache:v1:x",
        "cache:v2:x",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    keys.push("L".repeat(MAX_KEY_LEN));
    keys.push(format!("{}é", "L".repeat(MAX_KEY_LEN - 3))); // 4,095 bytes
    keys.push(String::new()); // invalid
    keys.push("L".repeat(MAX_KEY_LEN + 1)); // invalid
    keys
}

/// A value, shown briefly in a failing case.
#[derive(Clone)]
enum Val {
    Text(&'static str),
    Binary(Vec<u8>),
    Big(usize),
}

impl fmt::Debug for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Text(t) => write!(f, "{t:?}"),
            Val::Binary(b) => write!(f, "bin{b:02x?}"),
            Val::Big(n) => write!(f, "<{n} bytes>"),
        }
    }
}

impl Val {
    fn bytes(&self) -> Bytes {
        match self {
            Val::Text(t) => Bytes::from_static(t.as_bytes()),
            Val::Binary(b) => Bytes::from(b.clone()),
            Val::Big(n) => Bytes::from(vec![b'x'; *n]),
        }
    }
}

fn val() -> impl Strategy<Value = Val> {
    prop_oneof![
        8 => prop::sample::select(vec![
            "", "v", "value", "0", "1", "41", "-7", "9223372036854775807", "-9223372036854775808",
            "9223372036854775808", "01", "+1", " 1", "1.5", "-0", "abc", "é", "日本",
        ]).prop_map(Val::Text),
        2 => prop::collection::vec(any::<u8>(), 0..8).prop_map(Val::Binary),
        1 => prop::sample::select(vec![4096, MAX_VALUE, MAX_VALUE + 1]).prop_map(Val::Big),
    ]
}

/// A TTL, named so that a failing case reads well.
#[derive(Clone, Copy)]
enum TtlIn {
    None,
    Long,
    Short(u64),
    SubMilli(u64),
    Zero,
    TooLong,
    Max,
}

impl fmt::Debug for TtlIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TtlIn::None => f.write_str("no-ttl"),
            TtlIn::Long => f.write_str("1h"),
            TtlIn::Short(ms) => write!(f, "{ms}ms"),
            TtlIn::SubMilli(us) => write!(f, "{us}µs"),
            TtlIn::Zero => f.write_str("0"),
            TtlIn::TooLong => f.write_str("MAX_TTL+1ms"),
            TtlIn::Max => f.write_str("MAX_TTL"),
        }
    }
}

impl TtlIn {
    fn duration(self) -> Option<Duration> {
        match self {
            TtlIn::None => None,
            TtlIn::Long => Some(Duration::from_secs(3600)),
            TtlIn::Short(ms) => Some(Duration::from_millis(ms)),
            TtlIn::SubMilli(us) => Some(Duration::from_micros(us)),
            TtlIn::Zero => Some(Duration::ZERO),
            TtlIn::TooLong => Some(MAX_TTL + Duration::from_millis(1)),
            TtlIn::Max => Some(MAX_TTL),
        }
    }
}

fn ttl_in() -> impl Strategy<Value = TtlIn> {
    prop_oneof![
        8 => Just(TtlIn::None),
        5 => Just(TtlIn::Long),
        5 => (20u64..80).prop_map(TtlIn::Short),
        1 => (1u64..1000).prop_map(TtlIn::SubMilli),
        1 => prop::sample::select(vec![TtlIn::Zero, TtlIn::TooLong, TtlIn::Max]),
    ]
}

/// TTLs whose effect is known before the call (for incr, whose creation is not).
fn incr_ttl_in() -> impl Strategy<Value = TtlIn> {
    prop_oneof![
        4 => Just(TtlIn::None),
        2 => Just(TtlIn::Long),
        2 => (20u64..80).prop_map(TtlIn::Short),
        1 => prop::sample::select(vec![TtlIn::Zero, TtlIn::TooLong]),
    ]
}

/// Redis glob patterns from a grammar covering every feature: wildcards,
/// classes, ranges (reversed too), negation (`^` and `!`), escapes, braces,
/// unclosed classes, empty classes, multi-byte characters, a trailing `\`.
fn pattern() -> impl Strategy<Value = String> {
    let literal = prop::sample::select(vec![
        "a", "b", "c", "user", ":", "/", "1", "2", "{", "}", ",", " ", "é", "日", "session", "x",
        "L", "-", "^", "!", "]",
    ])
    .prop_map(str::to_owned);
    let piece = prop_oneof![
        6 => literal,
        4 => Just("*".to_owned()),
        3 => Just("?".to_owned()),
        1 => Just("**".to_owned()),
        2 => prop::sample::select(vec!["[abc]", "[a-c]", "[z-a]", "[0-9]", "[^a]", "[^a-z]", "[!a]", "[a-]", "[-a]",
            "[]]", "[]a]", "[\\]]", "[\\-]", "[[]", "[a\\]", "[é]", "[^]", "[]", "[:/]", "[{}]", "[*?]", "[A-Z]"])
            .prop_map(str::to_owned),
        2 => prop::sample::select(vec!["\\*", "\\?", "\\[", "\\]", "\\\\", "\\a", "\\{", "\\é"]).prop_map(str::to_owned),
        1 => prop::sample::select(vec!["[ab", "[^", "[a-", "\\", "["]).prop_map(str::to_owned),
        1 => prop::sample::select(vec!["{user:1}", "{a,b}", "{*}"]).prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|pieces| pieces.concat())
}

#[derive(Clone, Debug)]
enum Op {
    Get(usize),
    Set(usize, Val, TtlIn),
    Delete(usize),
    Exists(usize),
    GetMany(Vec<usize>),
    SetMany(Vec<(usize, Val)>, TtlIn),
    DeleteMany(Vec<usize>),
    DeletePattern(String),
    Keys(String),
    Ttl(usize),
    Expire(usize, TtlIn),
    SetIfAbsent(usize, Val, TtlIn),
    Incr(usize, i64, TtlIn),
    Clear,
    Sleep(u64),
    /// `TaggedCache::set` of a tagged key (its own pool) with tags by index.
    TagSet(usize, Val, Vec<usize>),
    TagGet(usize),
    TagGetMany(Vec<usize>),
    DeleteByTags(Vec<usize>),
}

/// Keys written through the tagged view, apart from the plain pool: a
/// tagged entry stores its tags' versions, random on each adapter, so a
/// plain read of one would differ.
const TAGGED_KEYS: [&str; 6] = [
    "tagged:a",
    "tagged:b",
    "tagged:c",
    "tagged:{x}",
    "tagged: ",
    "tagged:é",
];
const TAGS: [&str; 4] = ["product:7", "list", "{slot}", "ünï"];

/// Shows keys by name, not index, so that a shrunk case reads on its own.
struct Shown<'a>(&'a Op, &'a [String]);

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = |i: &usize| short_key(&self.1[*i]);
        let ks = |v: &Vec<usize>| v.iter().map(k).collect::<Vec<_>>();
        match self.0 {
            Op::Get(i) => write!(f, "get({})", k(i)),
            Op::Set(i, v, t) => write!(f, "set({}, {v:?}, {t:?})", k(i)),
            Op::Delete(i) => write!(f, "delete({})", k(i)),
            Op::Exists(i) => write!(f, "exists({})", k(i)),
            Op::GetMany(v) => write!(f, "get_many({:?})", ks(v)),
            Op::SetMany(items, t) => {
                let shown: Vec<String> = items
                    .iter()
                    .map(|(i, v)| format!("{}={v:?}", k(i)))
                    .collect();
                write!(f, "set_many({shown:?}, {t:?})")
            }
            Op::DeleteMany(v) => write!(f, "delete_many({:?})", ks(v)),
            Op::DeletePattern(p) => write!(f, "delete_pattern({p:?})"),
            Op::Keys(p) => write!(f, "keys({p:?})"),
            Op::Ttl(i) => write!(f, "ttl({})", k(i)),
            Op::Expire(i, t) => write!(f, "expire({}, {t:?})", k(i)),
            Op::SetIfAbsent(i, v, t) => write!(f, "set_if_absent({}, {v:?}, {t:?})", k(i)),
            Op::Incr(i, d, t) => write!(f, "incr({}, {d}, {t:?})", k(i)),
            Op::Clear => write!(f, "clear()"),
            Op::Sleep(ms) => write!(f, "sleep({ms}ms)"),
            Op::TagSet(i, v, tags) => write!(
                f,
                "tagged.set({:?}, {v:?}, {:?})",
                TAGGED_KEYS[*i],
                tag_names(tags)
            ),
            Op::TagGet(i) => write!(f, "tagged.get({:?})", TAGGED_KEYS[*i]),
            Op::TagGetMany(v) => write!(f, "tagged.get_many({:?})", tagged_keys(v)),
            Op::DeleteByTags(tags) => write!(f, "tagged.delete_by_tags({:?})", tag_names(tags)),
        }
    }
}

fn tag_names(tags: &[usize]) -> Vec<&'static str> {
    tags.iter().map(|t| TAGS[*t]).collect()
}

fn tagged_keys(keys: &[usize]) -> Vec<String> {
    keys.iter().map(|i| TAGGED_KEYS[*i].to_owned()).collect()
}

fn short_key(key: &str) -> String {
    if key.len() > 24 {
        format!("{:?}<{} bytes>", &key[..8], key.len())
    } else {
        format!("{key:?}")
    }
}

/// A sequence of operations over the key pool.
#[derive(Clone)]
struct Case {
    ops: Vec<Op>,
    keys: Arc<Vec<String>>,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for op in &self.ops {
            list.entry(&Shown(op, &self.keys));
        }
        list.finish()
    }
}

fn op(nkeys: usize) -> impl Strategy<Value = Op> {
    // Most traffic on a few keys, so that operations meet each other.
    let key = prop_oneof![6 => 0..12usize, 3 => 0..nkeys];
    let keys = prop::collection::vec(key.clone(), 0..6);
    prop_oneof![
        6 => key.clone().prop_map(Op::Get),
        6 => (key.clone(), val(), ttl_in()).prop_map(|(k, v, t)| Op::Set(k, v, t)),
        2 => key.clone().prop_map(Op::Delete),
        2 => key.clone().prop_map(Op::Exists),
        2 => keys.clone().prop_map(Op::GetMany),
        2 => (prop::collection::vec((key.clone(), val()), 0..5), ttl_in()).prop_map(|(items, t)| Op::SetMany(items, t)),
        1 => keys.prop_map(Op::DeleteMany),
        2 => pattern().prop_map(Op::DeletePattern),
        4 => pattern().prop_map(Op::Keys),
        3 => key.clone().prop_map(Op::Ttl),
        2 => (key.clone(), ttl_in()).prop_map(|(k, t)| Op::Expire(k, t)),
        2 => (key.clone(), val(), ttl_in()).prop_map(|(k, v, t)| Op::SetIfAbsent(k, v, t)),
        3 => (key, prop_oneof![Just(1i64), Just(-1), -100i64..100, Just(i64::MAX), Just(i64::MIN)], incr_ttl_in())
            .prop_map(|(k, d, t)| Op::Incr(k, d, t)),
        1 => Just(Op::Clear),
        1 => (1u64..40).prop_map(Op::Sleep),
        3 => (0..TAGGED_KEYS.len(), val(), prop::collection::vec(0..TAGS.len(), 0..3))
            .prop_map(|(k, v, t)| Op::TagSet(k, v, t)),
        3 => (0..TAGGED_KEYS.len()).prop_map(Op::TagGet),
        1 => prop::collection::vec(0..TAGGED_KEYS.len(), 0..4).prop_map(Op::TagGetMany),
        2 => prop::collection::vec(0..TAGS.len(), 1..3).prop_map(Op::DeleteByTags),
    ]
}

// ---------------------------------------------------------------- answers

/// What an operation answered, comparable across adapters.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Unit,
    Value(Option<Bytes>),
    Values(Vec<Option<Bytes>>),
    Bool(bool),
    Count(u64),
    Int(i64),
    Keys(BTreeSet<String>),
    Ttl(TtlState),
    Error(ErrorKind),
}

fn answer<T>(result: cache_port::Result<T>, ok: impl FnOnce(T) -> Answer) -> Answer {
    match result {
        Ok(v) => ok(v),
        Err(e) => Answer::Error(e.kind()),
    }
}

/// Equal, with remaining TTLs within `tolerance`: the time between the two
/// calls plus the time between the two writes that set the TTL.
fn same(a: &Answer, b: &Answer, tolerance: Duration) -> bool {
    match (a, b) {
        (Answer::Ttl(TtlState::ExpiresIn(x)), Answer::Ttl(TtlState::ExpiresIn(y))) => {
            let diff = if x > y { *x - *y } else { *y - *x };
            diff <= tolerance + Duration::from_millis(3)
        }
        _ => a == b,
    }
}

// ---------------------------------------------------------------- running

/// When each key may expire: the span between the first and the last
/// adapter's write, plus the server's millisecond rounding.
#[derive(Default)]
struct Expiries(HashMap<String, (Instant, Instant)>);

impl Expiries {
    fn set(&mut self, key: &str, ttl: Option<Duration>, from: Instant, to: Instant) {
        let window = ttl.and_then(|t| Ttl::new(t).ok()).and_then(|t| {
            Some((
                from.checked_add(t.as_duration())?,
                to.checked_add(t.as_duration())?,
            ))
        });
        match window {
            Some((lo, hi)) => {
                self.0
                    .insert(key.to_owned(), (lo, hi + Duration::from_millis(2)));
            }
            None => {
                self.0.remove(key);
            }
        }
    }

    /// How far apart the two adapters' expiry instants of `key` may be: the
    /// time between the two writes that set its TTL.
    fn skew(&self, key: &str) -> Duration {
        self.0
            .get(key)
            .map(|(lo, hi)| *hi - *lo)
            .unwrap_or_default()
    }

    fn windows(&self, keys: &Option<Vec<&str>>) -> Vec<(Instant, Instant)> {
        match keys {
            None => self.0.values().copied().collect(),
            Some(keys) => keys
                .iter()
                .filter_map(|k| self.0.get(*k).copied())
                .collect(),
        }
    }

    /// Waits until none of `keys` (all, for `None`) may expire within
    /// `horizon` (how long the next pair of calls may take) plus the guard.
    async fn settle(&self, keys: &Option<Vec<&str>>, horizon: Duration) {
        let windows = self.windows(keys);
        loop {
            let now = Instant::now();
            let Some(until) = windows
                .iter()
                .filter(|(lo, hi)| now + horizon + GUARD >= *lo && now <= *hi + GUARD)
                .map(|(_, hi)| *hi + GUARD)
                .max()
            else {
                return;
            };
            tokio::time::sleep(until - now + Duration::from_millis(1)).await;
        }
    }

    /// Whether one of `keys` may have expired while the calls ran: then two
    /// different answers prove nothing (the machine was slower than planned).
    fn expired_meanwhile(&self, keys: &Option<Vec<&str>>, from: Instant, to: Instant) -> bool {
        self.windows(keys)
            .iter()
            .any(|(lo, hi)| *lo <= to + GUARD && *hi + GUARD >= from)
    }
}

struct Pair {
    /// The adapter under test (moka, or the tiered cache).
    moka: Arc<dyn Cache>,
    /// Redis, the reference.
    redis: Arc<dyn Cache>,
}

impl Pair {
    /// Empties the case's namespace in both stores, so that a long run
    /// neither fills moka's shared store (evictions would be divergences)
    /// nor slows its scans.
    async fn forget(&self) {
        let _ = self.moka.clear().await;
        let _ = self.redis.clear().await;
    }
}

/// Runs one operation on both adapters; the answers and the time between.
async fn both(pair: &Pair, op: &Op, keys: &[String]) -> (Answer, Answer, Instant, Instant) {
    let t0 = Instant::now();
    let a = run(&pair.moka, op, keys).await;
    let b = run(&pair.redis, op, keys).await;
    (a, b, t0, Instant::now())
}

async fn run(cache: &Arc<dyn Cache>, op: &Op, keys: &[String]) -> Answer {
    let k = |i: &usize| keys[*i].as_str();
    let owned = |v: &Vec<usize>| v.iter().map(|i| keys[*i].clone()).collect::<Vec<_>>();
    match op {
        Op::Get(i) => answer(cache.get(k(i)).await, Answer::Value),
        Op::Set(i, v, t) => answer(cache.set(k(i), v.bytes(), t.duration()).await, |()| {
            Answer::Unit
        }),
        Op::Delete(i) => answer(cache.delete(k(i)).await, Answer::Bool),
        Op::Exists(i) => answer(cache.exists(k(i)).await, Answer::Bool),
        Op::GetMany(v) => answer(cache.get_many(&owned(v)).await, Answer::Values),
        Op::SetMany(items, t) => {
            let items = items
                .iter()
                .map(|(i, v)| (keys[*i].clone(), v.bytes()))
                .collect();
            answer(cache.set_many(items, t.duration()).await, |()| Answer::Unit)
        }
        Op::DeleteMany(v) => answer(cache.delete_many(&owned(v)).await, Answer::Count),
        Op::DeletePattern(p) => answer(cache.delete_pattern(p).await, Answer::Count),
        Op::Keys(p) => answer(cache.keys(p).await, |v| {
            Answer::Keys(v.into_iter().collect())
        }),
        Op::Ttl(i) => answer(cache.ttl(k(i)).await, Answer::Ttl),
        Op::Expire(i, t) => match t.duration() {
            Some(d) => answer(cache.expire(k(i), d).await, Answer::Bool),
            None => Answer::Unit,
        },
        Op::SetIfAbsent(i, v, t) => answer(
            cache.set_if_absent(k(i), v.bytes(), t.duration()).await,
            Answer::Bool,
        ),
        Op::Incr(i, d, t) => answer(cache.incr(k(i), *d, t.duration()).await, Answer::Int),
        Op::Clear => answer(cache.clear().await, |()| Answer::Unit),
        Op::Sleep(ms) => {
            tokio::time::sleep(Duration::from_millis(*ms)).await;
            Answer::Unit
        }
        Op::TagSet(i, v, tags) => answer(
            tagged(cache)
                .set(TAGGED_KEYS[*i], v.bytes(), None, &tag_names(tags))
                .await,
            |()| Answer::Unit,
        ),
        Op::TagGet(i) => answer(tagged(cache).get(TAGGED_KEYS[*i]).await, Answer::Value),
        Op::TagGetMany(v) => answer(
            tagged(cache).get_many(&tagged_keys(v)).await,
            Answer::Values,
        ),
        Op::DeleteByTags(tags) => {
            answer(tagged(cache).delete_by_tags(&tag_names(tags)).await, |()| {
                Answer::Unit
            })
        }
    }
}

/// The tagged view over `cache`, built per call as a service may.
fn tagged(cache: &Arc<dyn Cache>) -> cache_tags::TaggedCache {
    cache_tags::TaggedCache::new(Arc::clone(cache))
}

/// The keys an operation reads (`None`: every key).
fn reads<'k>(op: &Op, keys: &'k [String]) -> Option<Vec<&'k str>> {
    let one = |i: &usize| Some(vec![keys[*i].as_str()]);
    let many = |v: &[usize]| Some(v.iter().map(|i| keys[*i].as_str()).collect());
    match op {
        Op::Get(i)
        | Op::Set(i, ..)
        | Op::Delete(i)
        | Op::Exists(i)
        | Op::Ttl(i)
        | Op::Expire(i, _) => one(i),
        Op::SetIfAbsent(i, ..) | Op::Incr(i, ..) => one(i),
        Op::GetMany(v) | Op::DeleteMany(v) => many(v),
        Op::SetMany(items, _) => Some(items.iter().map(|(i, _)| keys[*i].as_str()).collect()),
        Op::DeletePattern(_) | Op::Keys(_) | Op::Clear => None,
        // Tagged keys and tags' versions never carry a TTL.
        Op::Sleep(_) | Op::TagSet(..) | Op::TagGet(_) | Op::TagGetMany(_) | Op::DeleteByTags(_) => {
            Some(Vec::new())
        }
    }
}

static NAMESPACES: AtomicU64 = AtomicU64::new(0);

/// What one differential run did (tests run side by side in one process).
#[derive(Default)]
struct Counts {
    cases: AtomicU64,
    ops: AtomicU64,
    /// Cases cut short because an expiry fell between the two adapters' calls.
    cut: AtomicU64,
}

/// What the tagged operations must answer, by the rules of docs/CONTRACT.md
/// ("Tags"): an entry is read back until a tag of it is invalidated, then
/// never (and the read removes it). A pattern deletion or `clear` may reach
/// tagged keys and tags' versions: the model then forgets the entries.
#[derive(Default)]
struct TagModel {
    /// Invalidations of each tag so far.
    epochs: [u64; TAGS.len()],
    /// Per tagged key: `None` unknown, `Some(None)` absent, or the entry.
    entries: [Option<Option<TaggedEntry>>; TAGGED_KEYS.len()],
}

/// A tagged entry in the model: its value, and each tag (by index) with
/// its epoch when the entry was written.
type TaggedEntry = (Bytes, Vec<(usize, u64)>);

impl TagModel {
    /// What a read of tagged key `i` must answer, when the model knows.
    fn expected(&self, i: usize) -> Option<Option<Bytes>> {
        let entry = self.entries[i].as_ref()?;
        Some(entry.as_ref().and_then(|(value, tags)| {
            tags.iter()
                .all(|(t, epoch)| self.epochs[*t] == *epoch)
                .then(|| value.clone())
        }))
    }

    fn read(&mut self, i: usize, got: &Option<Bytes>) -> Result<(), String> {
        let Some(want) = self.expected(i) else {
            return Ok(());
        };
        if *got != want {
            return Err(format!(
                "tagged.get({:?}) answered {got:?}; the rules say {want:?}",
                TAGGED_KEYS[i]
            ));
        }
        if want.is_none() {
            self.entries[i] = Some(None); // a stale entry is removed by the read
        }
        Ok(())
    }

    /// Checks `op`'s (agreed) answer and records its effect.
    fn step(&mut self, op: &Op, answer: &Answer) -> Result<(), String> {
        let distinct = |tags: &[usize]| -> BTreeSet<usize> { tags.iter().copied().collect() };
        match (op, answer) {
            (Op::TagSet(i, v, tags), Answer::Unit) => {
                let epochs = distinct(tags)
                    .into_iter()
                    .map(|t| (t, self.epochs[t]))
                    .collect();
                self.entries[*i] = Some(Some((v.bytes(), epochs)));
            }
            (Op::TagGet(i), Answer::Value(got)) => self.read(*i, got)?,
            (Op::TagGetMany(keys), Answer::Values(got)) => {
                // Every position is checked against the state before the call.
                let before: Vec<_> = keys.iter().map(|i| self.expected(*i)).collect();
                for ((i, got), want) in keys.iter().zip(got).zip(before) {
                    if let Some(want) = want {
                        if *got != want {
                            return Err(format!(
                                "tagged.get_many: {:?} answered {got:?}; the rules say {want:?}",
                                TAGGED_KEYS[*i]
                            ));
                        }
                        if want.is_none() {
                            self.entries[*i] = Some(None);
                        }
                    }
                }
            }
            (Op::DeleteByTags(tags), Answer::Unit) => {
                for t in distinct(tags) {
                    self.epochs[t] += 1;
                }
            }
            (Op::DeletePattern(_) | Op::Clear, _) => self.entries = Default::default(),
            // A refused write changes nothing.
            (Op::TagSet(..) | Op::DeleteByTags(_), Answer::Error(_)) => {}
            (Op::TagGet(_) | Op::TagGetMany(_), other) => {
                return Err(format!("a tagged read answered {other:?}"))
            }
            _ => {}
        }
        Ok(())
    }
}

/// Runs a case; the first divergence fails it with the sequence so far.
async fn check<A: Store + Clone, B: Store + Clone>(
    moka_root: &View<A>,
    redis_root: &View<B>,
    case: &Case,
    job_ops: &AtomicU64,
    counts: &Counts,
) -> Result<(), TestCaseError> {
    let ns = format!("diff{}", NAMESPACES.fetch_add(1, Ordering::Relaxed));
    counts.cases.fetch_add(1, Ordering::Relaxed);
    let pair = Pair {
        moka: Arc::new(moka_root.namespaced(&ns).unwrap()),
        redis: Arc::new(redis_root.namespaced(&ns).unwrap()),
    };
    let keys = &case.keys;
    let mut expiries = Expiries::default();
    let mut tag_model = TagModel::default();
    // How long a pair of calls takes lately (it grows when the machine is loaded).
    let mut horizon = Duration::from_millis(5);
    for (n, op) in case.ops.iter().enumerate() {
        let read = reads(op, keys);
        expiries.settle(&read, horizon).await;
        let (a, b, t0, t1) = both(&pair, op, keys).await;
        counts.ops.fetch_add(1, Ordering::Relaxed);
        job_ops.fetch_add(1, Ordering::Relaxed);
        horizon = (horizon * 7 / 8 + (t1 - t0) * 2 / 8)
            .max(t1 - t0)
            .min(Duration::from_secs(2));
        let skew = match op {
            Op::Ttl(i) => expiries.skew(&keys[*i]),
            _ => Duration::ZERO,
        };
        if !same(&a, &b, t1 - t0 + skew) {
            if expiries.expired_meanwhile(&read, t0, t1) {
                // Not a divergence: an expiry fell between the two calls.
                // The stores may now differ, so the rest of the case is dropped.
                counts.cut.fetch_add(1, Ordering::Relaxed);
                pair.forget().await;
                return Ok(());
            }
            return Err(TestCaseError::fail(format!(
                "divergence at op #{n} {:?}\n  tested: {a:?}\n  redis:  {b:?}",
                Shown(op, keys)
            )));
        }
        if let Err(broken) = tag_model.step(op, &a) {
            return Err(TestCaseError::fail(format!(
                "tags model broken at op #{n} {:?}: {broken}",
                Shown(op, keys)
            )));
        }
        // Track what the operation did to expiries, from its (agreed) answer.
        match (op, &a) {
            (Op::Set(i, _, t), Answer::Unit) => expiries.set(&keys[*i], t.duration(), t0, t1),
            (Op::SetIfAbsent(i, _, t), Answer::Bool(true)) => {
                expiries.set(&keys[*i], t.duration(), t0, t1)
            }
            (Op::Expire(i, t), Answer::Bool(true)) => expiries.set(&keys[*i], t.duration(), t0, t1),
            (Op::SetMany(items, t), Answer::Unit) => {
                for (i, _) in items {
                    expiries.set(&keys[*i], t.duration(), t0, t1);
                }
            }
            (Op::Incr(i, _, t), Answer::Int(_)) if t.duration().is_some() => {
                // Created or not, the adapters say: ask both, and compare that too.
                let probe = Op::Ttl(*i);
                let (a, b, p0, p1) = both(&pair, &probe, keys).await;
                // A counter that already existed keeps its window; a new one was created during this op.
                let skew = expiries.skew(&keys[*i]).max(t1 - t0);
                if !same(&a, &b, p1 - p0 + skew) {
                    // An old counter that expired between the two incr calls
                    // (one adapter created it, the other incremented it) is
                    // timing, not a divergence.
                    // Or the counter this incr created, with its new TTL,
                    // expiring while the machine was slow to probe it.
                    let new_ttl = t
                        .duration()
                        .and_then(|d| Ttl::new(d).ok())
                        .map(|d| d.as_duration());
                    let created_window =
                        new_ttl.map(|d| (t0 + d, t1 + d + Duration::from_millis(2)));
                    let created_expired =
                        created_window.is_some_and(|(lo, hi)| lo <= p1 + GUARD && hi + GUARD >= p0);
                    if created_expired || expiries.expired_meanwhile(&read, t0, p1) {
                        counts.cut.fetch_add(1, Ordering::Relaxed);
                        pair.forget().await;
                        return Ok(());
                    }
                    return Err(TestCaseError::fail(format!(
                        "divergence after op #{n} {:?}: ttl\n  tested: {a:?}\n  redis:  {b:?}",
                        Shown(op, keys)
                    )));
                }
                if let Answer::Ttl(TtlState::ExpiresIn(d)) = a {
                    let margin = skew + Duration::from_millis(3);
                    expiries.0.insert(
                        keys[*i].clone(),
                        (p0 + d.saturating_sub(margin), p1 + d + margin),
                    );
                }
            }
            _ => {}
        }
    }
    // The client-side counters agree too.
    let (sa, sb) = (
        pair.moka.stats().await.unwrap(),
        pair.redis.stats().await.unwrap(),
    );
    let counters = |s: &cache_port::Stats| (s.hits, s.misses, s.sets, s.deletes, s.errors);
    prop_assert_eq!(
        counters(&sa),
        counters(&sb),
        "stats (hits, misses, sets, deletes, errors)"
    );
    pair.forget().await;
    Ok(())
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn moka_and_redis_answer_alike() {
    differential("moka", 10_000, 1, |_, _| {
        cache_moka::MokaConfig::default()
            .capacity_bytes(1 << 30)
            .max_value_len(MAX_VALUE)
            .build()
            .unwrap()
    });
}

/// Issue 13: the tiered cache (one instance, an L1 over a Redis of its own,
/// kept coherent by client tracking) answers as plain Redis does, over 100,000
/// operations in 16 jobs by default.
#[test]
fn tiered_and_redis_answer_alike() {
    let own = RedisServer::start();
    differential("tiered", 100_000, 16, |rt, _| {
        rt.block_on(async {
            let config = RedisConfig::from_url(&own.url())
                .unwrap()
                .max_value_len(MAX_VALUE)
                .command_timeout(Duration::from_secs(5));
            let l2 = cache_redis::RedisStore::connect(&config).await.unwrap();
            // Client tracking, the default, over every key.
            let backplane: Arc<dyn cache_store::backplane::Backplane> =
                cache_redis::RedisTracking::connect(&config, "")
                    .await
                    .unwrap();
            let tiered = cache_tiered::TieredConfig::default()
                .l1(cache_moka::MokaConfig::default().capacity_bytes(256 << 20))
                .build(l2, Some(backplane))
                .unwrap();
            // L1 serves once the first heartbeat is back.
            while !tiered.base().figures().l1_serving {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tiered
        })
    });
}

/// Runs `DIFF_OPS` (default `default_ops`) random operations in `DIFF_JOBS`
/// (default `default_jobs`) seeded jobs against the adapter `tested` builds
/// and against a self-started Redis, comparing every answer.
fn differential<A: Store + Clone>(
    name: &str,
    default_ops: u64,
    default_jobs: u64,
    tested: impl FnOnce(&tokio::runtime::Runtime, &RedisServer) -> View<A>,
) {
    let total = env_u64("DIFF_OPS").unwrap_or(default_ops);
    // The run is mostly waiting (for expiries), so a long soak runs several
    // seeded runners side by side against the same server.
    let jobs = env_u64("DIFF_JOBS").unwrap_or(default_jobs).max(1);
    let seed = env_u64("DIFF_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    println!("differential {name}: {total} operations in {jobs} job(s), seed {seed} (replay with DIFF_SEED={seed} DIFF_JOBS={jobs})");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = RedisServer::start();
    let tested_root = tested(&rt, &server);
    let redis_root = rt.block_on(async {
        RedisConfig::connect(
            &RedisConfig::from_url(&server.url())
                .unwrap()
                .max_value_len(MAX_VALUE)
                .command_timeout(Duration::from_secs(5)),
        )
        .await
        .unwrap()
    });

    let keys = Arc::new(key_pool());
    let counts = Counts::default();
    let started = Instant::now();
    let per_job = total.div_ceil(jobs);
    let failures: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..jobs)
            .map(|job| {
                let (rt, tested_root, redis_root, keys, counts) =
                    (&rt, &tested_root, &redis_root, Arc::clone(&keys), &counts);
                scope.spawn(move || {
                    run_job(
                        rt,
                        tested_root,
                        redis_root,
                        keys,
                        per_job,
                        seed.wrapping_add(job),
                        counts,
                    )
                })
            })
            .collect();
        runs.into_iter()
            .filter_map(|r| r.join().unwrap().err())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{name} and redis diverge:\n{}",
        failures.join("\n")
    );
    let (ran, cases, cut) = (
        counts.ops.load(Ordering::Relaxed),
        counts.cases.load(Ordering::Relaxed),
        counts.cut.load(Ordering::Relaxed),
    );
    println!(
        "differential {name}: {ran} operations in {cases} cases, 0 divergences; {cut} cases cut short by an expiry between the two calls ({:.1?}, seed {seed}, {jobs} job(s))",
        started.elapsed()
    );
    // Cutting cases short must stay the exception, or the test proves little.
    assert!(cut * 20 <= cases, "{cut} of {cases} cases cut short");
    assert!(ran >= total, "only {ran} of {total} operations ran");
}

/// One seeded runner: at least `ops` operations, in cases of about
/// `OPS_PER_CASE` (rounds of cases until the count is reached).
fn run_job<A: Store + Clone, B: Store + Clone>(
    rt: &tokio::runtime::Runtime,
    moka_root: &View<A>,
    redis_root: &View<B>,
    keys: Arc<Vec<String>>,
    ops: u64,
    seed: u64,
    counts: &Counts,
) -> Result<(), String> {
    let nkeys = keys.len();
    let strategy =
        prop::collection::vec(op(nkeys), 1..=2 * OPS_PER_CASE).prop_map(move |ops| Case {
            ops,
            keys: keys.clone(),
        });
    let done = AtomicU64::new(0);
    for round in 0u64.. {
        let left = ops.saturating_sub(done.load(Ordering::Relaxed));
        if left == 0 {
            break;
        }
        let round_seed = seed.wrapping_add(round.wrapping_mul(1_000_003));
        let config = Config {
            cases: left.div_ceil(OPS_PER_CASE as u64) as u32,
            rng_seed: RngSeed::Fixed(round_seed),
            failure_persistence: None,
            max_shrink_iters: 2_000,
            ..Config::default()
        };
        let outcome = TestRunner::new(config).run(&strategy, |case| {
            rt.block_on(check(moka_root, redis_root, &case, &done, counts))
        });
        match outcome {
            Ok(()) => {}
            Err(TestError::Fail(reason, case)) => {
                return Err(format!(
                    "seed {seed} round {round}: minimal sequence: {case:#?}\n{reason}"
                ))
            }
            Err(e) => return Err(format!("seed {seed} round {round}: aborted: {e}")),
        }
    }
    Ok(())
}

// ------------------------------------- clear, then every operation; races

/// Both adapters over their own stores: moka private, Redis on a server of
/// its own whose `clear` without a namespace may run FLUSHDB.
async fn fresh_pair(server: &RedisServer, namespace: Option<&str>) -> Pair {
    let moka = cache_moka::MokaConfig::default().build_store().unwrap();
    let redis = cache_redis::RedisStore::connect(
        &RedisConfig::from_url(&server.url())
            .unwrap()
            .allow_flushdb(true)
            .command_timeout(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    Pair {
        moka: stack(moka, namespace),
        redis: stack(redis, namespace),
    }
}

/// The counted stack over `store`, in `namespace` if any.
fn stack<S: cache_store::Store>(store: S, namespace: Option<&str>) -> Arc<dyn Cache> {
    let builder = cache_store::CacheBuilder::new(store);
    match namespace {
        Some(ns) => builder.namespace(ns).unwrap().build(),
        None => builder.in_namespace(None).build(),
    }
}

/// Issue 11, item 1: after `clear`, with and without a namespace, every
/// operation answers on moka as on Redis (moka's lazy `invalidate_all` once
/// let a cleared key count as deleted).
#[test]
fn clear_then_every_operation_answers_alike() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = RedisServer::start();
    rt.block_on(async {
        for namespace in [None, Some("cleared")] {
            let pair = fresh_pair(&server, namespace).await;
            let keys: Vec<String> = ["a", "b", "c", "d:1"]
                .iter()
                .map(|k| (*k).to_owned())
                .collect();
            let seed = [
                Op::Incr(0, 188, TtlIn::None),
                Op::Set(1, Val::Text("v"), TtlIn::Long),
                Op::Set(3, Val::Text("w"), TtlIn::None),
                Op::Clear,
            ];
            let after = [
                Op::Get(1),
                Op::Exists(0),
                Op::Ttl(1),
                Op::Delete(1),
                Op::DeleteMany(vec![0, 1, 2, 3]),
                Op::GetMany(vec![0, 1, 3]),
                Op::Keys("*".into()),
                Op::DeletePattern("*".into()),
                Op::Expire(0, TtlIn::Long),
                Op::SetIfAbsent(1, Val::Text("new"), TtlIn::None),
                Op::Incr(0, 1, TtlIn::None),
                Op::Get(1),
                Op::Clear,
                Op::Exists(1),
            ];
            for op in seed.iter().chain(after.iter()) {
                let (a, b, _, _) = both(&pair, op, &keys).await;
                assert!(
                    same(&a, &b, Duration::from_millis(50)),
                    "namespace {namespace:?}: {:?}: moka {a:?}, redis {b:?}",
                    Shown(op, &keys)
                );
            }
            let (m, r) = (
                pair.moka.stats().await.unwrap(),
                pair.redis.stats().await.unwrap(),
            );
            assert_eq!(
                (m.deletes, m.sets),
                (r.deletes, r.sets),
                "namespace {namespace:?}"
            );
        }
    });
}

/// Mixed concurrent writes on one key, on both adapters: the outcomes
/// that do not depend on the interleaving agree (every increment counted
/// once, exactly one `set_if_absent` winner per round, the final value).
#[test]
fn concurrent_writes_on_one_key_end_alike() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = RedisServer::start();
    rt.block_on(async {
        let pair = fresh_pair(&server, Some("race")).await;
        let mut ends = Vec::new();
        for cache in [&pair.moka, &pair.redis] {
            cache
                .set("n", Bytes::from_static(b"1000"), None)
                .await
                .unwrap();
            let mut tasks = Vec::new();
            for t in 0..16 {
                let cache = Arc::clone(cache);
                tasks.push(tokio::spawn(async move {
                    let mut wins = 0;
                    for i in 0..25 {
                        cache.incr("n", 1, None).await.unwrap();
                        if t % 4 == 0 {
                            cache.expire("n", Duration::from_secs(600)).await.unwrap();
                        }
                        if cache
                            .set_if_absent(&format!("lock:{i}"), Bytes::from(t.to_string()), None)
                            .await
                            .unwrap()
                        {
                            wins += 1;
                        }
                    }
                    wins
                }));
            }
            let mut wins = 0;
            for task in tasks {
                wins += task.await.unwrap();
            }
            let value = cache.get("n").await.unwrap();
            ends.push((value, wins, cache.ttl("n").await.unwrap().exists()));
        }
        assert_eq!(ends[0], ends[1], "moka and redis end differently");
        assert_eq!(ends[0].0, Some(Bytes::from_static(b"1400")));
        assert_eq!(ends[0].1, 25, "one set_if_absent winner per lock");
    });
}
