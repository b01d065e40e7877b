//! What the store holds per key, and the expiry policy that reads it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_port::{Ttl, TtlState};
use moka::Expiry;

/// Bytes charged per entry on top of its key and value: what an entry
/// really costs in resident memory beyond them, so that the byte bound
/// bounds RSS. Measured by `tests/entry_charge.rs` (each shape in a fresh
/// process, 100,000 entries): 411–443 bytes of RSS per entry, made of
/// ≈ 310 bytes requested by moka's node, queues and our expiry instant over
/// ≈ 9 allocations, plus the allocator's headers and rounding of each. The
/// test fails if this falls below the measurement, or far above it.
pub const ENTRY_OVERHEAD: usize = 448;

/// Beyond this, moka is told the entry never expires; our own `expires_at`
/// check still hides it on time. moka's clock is u64 nanoseconds, which a
/// 1,000-year TTL would overflow.
const MOKA_EXPIRY_HORIZON: Duration = Duration::from_secs(50 * 365 * 24 * 3600);

/// A stored value with its expiry instant. moka has no per-entry
/// remaining-TTL API, so the instant lives in the value: it answers `ttl`
/// and decides visibility, so an expired entry is invisible from the moment
/// it expires, whenever moka gets round to dropping it.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) value: Bytes,
    pub(crate) expires_at: Option<Instant>,
}

impl Entry {
    pub(crate) fn new(value: Bytes, ttl: Option<Ttl>, now: Instant) -> Self {
        Self {
            value,
            expires_at: ttl.map(|t| expiry_instant(now, t)),
        }
    }

    /// An entry written now; reads the clock only when there is a TTL.
    pub(crate) fn now(value: Bytes, ttl: Option<Ttl>) -> Self {
        Self {
            value,
            expires_at: ttl.map(|t| expiry_instant(Instant::now(), t)),
        }
    }

    pub(crate) fn is_live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }

    /// Whether it is live now; reads the clock only when it can expire.
    pub(crate) fn is_live_now(&self) -> bool {
        self.expires_at.is_none_or(|at| Instant::now() < at)
    }

    pub(crate) fn ttl_state(&self, now: Instant) -> TtlState {
        match self.expires_at {
            _ if !self.is_live(now) => TtlState::Missing,
            None => TtlState::Persistent,
            // Whole milliseconds, rounded up: straight after `set(.., 100 ms)`
            // this reads 100 ms, as Redis PTTL does.
            Some(at) => {
                let left = at - now;
                let millis =
                    left.as_millis() as u64 + u64::from(left.subsec_nanos() % 1_000_000 != 0);
                TtlState::ExpiresIn(Duration::from_millis(millis))
            }
        }
    }

    fn remaining(&self, now: Instant) -> Option<Duration> {
        let left = self.expires_at?.saturating_duration_since(now);
        (left <= MOKA_EXPIRY_HORIZON).then_some(left)
    }
}

/// `now + ttl`; a TTL past what the clock can hold (at most `MAX_TTL`, so
/// only on an odd platform) is as good as never.
fn expiry_instant(now: Instant, ttl: Ttl) -> Instant {
    now.checked_add(ttl.as_duration())
        .unwrap_or_else(|| now + MOKA_EXPIRY_HORIZON * 2)
}

/// Tells moka when each entry expires: from the value's own instant, on
/// create and on every update (moka's default keeps the OLD remaining time on
/// update, where Redis `SET` replaces it), untouched by reads.
pub(crate) struct EntryExpiry;

impl Expiry<String, Entry> for EntryExpiry {
    fn expire_after_create(
        &self,
        _: &String,
        value: &Entry,
        created_at: Instant,
    ) -> Option<Duration> {
        value.remaining(created_at)
    }

    fn expire_after_update(
        &self,
        _: &String,
        value: &Entry,
        updated_at: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        value.remaining(updated_at)
    }
}
