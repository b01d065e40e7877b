//! `Traced<S>`: one `tracing` span per operation, and failures logged once
//! per interval.

use std::future::Future;
use std::sync::Arc;

use futures::future::Either;
use futures::FutureExt;
use tracing::field::Empty;
use tracing::{Instrument, Level, Span};

use crate::KeyField;
use cache_port::report::LogThrottle;
use cache_port::report::TARGET;
use cache_port::Namespace;
use cache_port::{CacheError, ErrorKind, Result};
use cache_store::{Op, Reply, Request, Store};

/// Opens a `DEBUG` span named `cache` on the target `cache`
/// ([`TARGET`](cache_port::report::TARGET)) for each
/// operation, with OpenTelemetry's field names: `otel.name` and
/// `db.operation.name` (the operation), `db.system.name` (the adapter),
/// `db.namespace`, `cache.batch_size`, and when it ends `cache.outcome`
/// (`hit`, `miss`, `ok`, `error`), `error.type` and `otel.status_code`.
/// Spans opened inside it (a tiered cache's L2 call) are its children, and
/// it is the child of whatever span the caller is in (a `get_or_load`).
///
/// A failure is recorded on its span once, not logged at every level. A
/// failing backend is logged as one `WARN` per interval (10 s by default),
/// with how many failures the interval held, not once per call: an outage
/// of 100,000 calls a second writes one line every 10 s.
///
/// The key is shown only if the `cache` target is enabled at `TRACE`, and
/// then only as the [`KeyField`] setting allows (hidden by default).
///
/// When no subscriber wants the span, the cost is the span's interest check
/// (a few nanoseconds, cached per call site).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use cache_store::layer::CacheStore;
/// use cache_observe::TracingLayer;
/// use cache_observe::KeyField;
/// use cache_port::{Cache, MockCache};
/// use cache_store::CacheBuilder;
///
/// let mut store = MockCache::new();
/// store.expect_max_value_len().return_const(1024usize);
/// store.expect_get().returning(|_| Ok(None));
/// let cache = CacheBuilder::new(CacheStore::new(store))
///     .layer(TracingLayer::new("moka").keys(KeyField::Hashed))
///     .build();
/// cache.get("cart:1").await?; // a span `cache` with db.operation.name = "get"
/// # Ok::<(), cache_port::CacheError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Traced<S> {
    inner: S,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    system: &'static str,
    namespace: Option<String>,
    keys: KeyField,
    failures: LogThrottle,
}

impl Shared {
    fn span(&self, request: &Request<'_>) -> Span {
        let op = request.op();
        let span = tracing::debug_span!(
            target: TARGET,
            "cache",
            otel.name = op.name(),
            db.operation.name = op.name(),
            db.system.name = self.system,
            db.namespace = self.namespace.as_deref(),
            cache.batch_size = request.batch_len() as u64,
            cache.key = Empty,
            cache.outcome = Empty,
            error.type = Empty,
            otel.status_code = Empty,
        );
        if self.keys != KeyField::Hidden
            && !span.is_disabled()
            && tracing::enabled!(target: TARGET, Level::TRACE)
        {
            if let Some(shown) = key_of(request).and_then(|key| self.keys.show(key)) {
                span.record("cache.key", shown);
            }
        }
        span
    }

    /// Logs a backend failure, at most once per interval.
    fn failed(&self, op: Op, error: &CacheError) {
        if !is_backend_failure(error.kind()) {
            return;
        }
        if let Some(held_back) = self.failures.admit() {
            tracing::warn!(
                target: TARGET,
                system = self.system,
                namespace = self.namespace.as_deref(),
                operation = op.name(),
                error_type = error.kind().name(),
                %error,
                failures_held_back = held_back,
                "cache operations are failing (one line per interval; failures_held_back counts the calls since the last line)"
            );
        }
    }
}

/// Whether the failure is the backend's (worth an operator's attention), not
/// the caller's (a counter that is not a number, a pattern too broad).
fn is_backend_failure(kind: ErrorKind) -> bool {
    kind.is_retryable()
        || matches!(
            kind,
            ErrorKind::Backend | ErrorKind::Auth | ErrorKind::OutcomeUnknown | ErrorKind::Config
        )
}

/// The key of a single-key operation.
fn key_of<'r>(request: &'r Request<'_>) -> Option<&'r str> {
    match request {
        Request::Get { key }
        | Request::GetAndTouch { key, .. }
        | Request::Set { key, .. }
        | Request::Delete { key }
        | Request::Exists { key }
        | Request::Ttl { key }
        | Request::Expire { key, .. }
        | Request::SetIfAbsent { key, .. }
        | Request::DeleteIfEquals { key, .. }
        | Request::Incr { key, .. }
        | Request::Throttle { key, .. } => Some(key),
        _ => None,
    }
}

fn outcome(result: &Result<Reply>) -> &'static str {
    match result {
        Ok(Reply::Value(Some(_))) => "hit",
        Ok(Reply::Value(None)) => "miss",
        Ok(_) => "ok",
        Err(_) => "error",
    }
}

impl<S> Traced<S> {
    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: Store> Store for Traced<S> {
    fn call(&self, request: Request<'_>) -> impl Future<Output = Result<Reply>> + Send {
        let op = request.op();
        let span = self.shared.span(&request);
        let shared = &self.shared;
        if span.is_disabled() {
            return Either::Left(self.inner.call(request).map(move |result| {
                if let Err(error) = &result {
                    shared.failed(op, error);
                }
                result
            }));
        }
        // Created inside the span, so that spans the store opens while
        // building its future are children of this one.
        let call = span.in_scope(|| self.inner.call(request));
        Either::Right(
            call.map(move |result| {
                let span = Span::current();
                span.record("cache.outcome", outcome(&result));
                if let Err(error) = &result {
                    span.record("error.type", error.kind().name());
                    span.record("otel.status_code", "ERROR");
                    shared.failed(op, error);
                }
                result
            })
            .instrument(span),
        )
    }

    /// Only while spans are off (the usual level): a failure is still
    /// reported as `call` reports it. With spans on, `None`: the read goes
    /// through `call`, which opens and fills its span. Asked of the
    /// subscriber without opening a span (one opened here and dropped
    /// would be recorded as an empty extra span; `tests/spans.rs` caught
    /// it); a subscriber that answers "maybe" keeps the read on `call`.
    /// As `get_now`: `None` while DEBUG spans are wanted, so that the
    /// read goes through a traced `get` (a watch is taken by a read of the
    /// store; what the caller then keeps under it is its own memory).
    #[inline]
    fn watch_now(&self, key: &str) -> Option<(bytes::Bytes, cache_port::Watch)> {
        if tracing::enabled!(kind: tracing::metadata::Kind::SPAN, target: TARGET, Level::DEBUG) {
            return None;
        }
        self.inner.watch_now(key)
    }

    #[inline]
    fn get_now(&self, key: &str) -> Option<Result<Option<bytes::Bytes>>> {
        if tracing::enabled!(kind: tracing::metadata::Kind::SPAN, target: TARGET, Level::DEBUG) {
            return None;
        }
        let result = self.inner.get_now(key)?;
        if let Err(error) = &result {
            self.shared.failed(Op::Get, error);
        }
        Some(result)
    }

    fn max_value_len(&self) -> usize {
        self.inner.max_value_len()
    }

    fn scan(&self, scope: String, pattern: cache_port::Pattern) -> cache_port::KeyPages {
        self.inner.scan(scope, pattern)
    }
}

/// Builds [`Traced`].
#[derive(Debug, Clone)]
pub struct TracingLayer {
    system: &'static str,
    namespace: Option<String>,
    keys: KeyField,
    interval: std::time::Duration,
}

impl TracingLayer {
    /// Spans with `db.system.name = system` (`"moka"`, `"redis"`, …).
    pub fn new(system: &'static str) -> Self {
        Self {
            system,
            namespace: None,
            keys: KeyField::Hidden,
            interval: std::time::Duration::from_secs(10),
        }
    }

    /// Spans with `db.namespace = namespace`.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self
    }

    /// [`namespace`](Self::namespace), when there is one.
    pub fn in_namespace(mut self, namespace: Option<&Namespace>) -> Self {
        self.namespace = namespace.map(|ns| ns.as_str().to_owned());
        self
    }

    /// How keys appear at `TRACE` (default: [`KeyField::Hidden`]).
    pub fn keys(mut self, keys: KeyField) -> Self {
        self.keys = keys;
        self
    }

    /// At most one failure line per `interval` (default 10 s).
    pub fn failure_log_interval(mut self, interval: std::time::Duration) -> Self {
        self.interval = interval;
        self
    }
}

impl<S: Store> cache_store::layer::Layer<S> for TracingLayer {
    type Store = Traced<S>;

    fn layer(self, inner: S) -> Traced<S> {
        Traced {
            inner,
            shared: Arc::new(Shared {
                system: self.system,
                namespace: self.namespace,
                keys: self.keys,
                failures: LogThrottle::new(self.interval),
            }),
        }
    }
}
