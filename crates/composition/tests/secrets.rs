//! Issue 11, item 4: no error, `Display` or `Debug` ever shows a secret
//! from a cache URL, wherever in the URL it sits and however malformed the
//! URL is. Every form below once leaked (`redis:/u:S3cret@h`, `redis:u:pw@h`,
//! `u:pw@h`, `pw@redis://h`, a `sentinelPassword` parameter).

use cache_composition::CacheConfig;
use proptest::prelude::*;

/// The places a secret can stand in a URL, `{}` marking it.
const FORMS: &[&str] = &[
    "redis://user:{}@127.0.0.1:6379/0",
    "redis://{}@127.0.0.1:6379",
    "redis://{}:pw@127.0.0.1:6379",
    "rediss://user:{}@127.0.0.1:6379/0?namespace=shop",
    "redis:/u:{}@127.0.0.1:6379",
    "redis:u:{}@127.0.0.1:6379",
    "u:{}@127.0.0.1:6379",
    "{}@redis://127.0.0.1",
    "redis-sentinel://127.0.0.1:26379/0?sentinelServiceName=m&sentinelPassword={}",
    "redis-sentinel://127.0.0.1:26379/0?sentinelServiceName=m&sentinelUsername=u&sentinelPassword={}",
    "redis://127.0.0.1:6379?token={}",
    "redis://127.0.0.1:6379?apiKey={}",
    "redis://127.0.0.1:6379?{}=1",
    "redis://127.0.0.1:6379/{}",
    "memory://?namespace=shop&password={}",
    "memory://user:{}@",
    "redis://user:{}@127.0.0.1:6379/0?command_timeout_ms=0",
    "redis://user:{}@127.0.0.1:6379/x",
    "redis://user:{}@[::1",
    "REDIS://user:{}@127.0.0.1:6379/0?pool_size=0",
    "redis://user:{}@127.0.0.1:6379/0?namespace=a::b",
    "redis-cluster://user:{}@127.0.0.1:7000?node=127.0.0.1:7001",
    "http://user:{}@example.invalid",
];

/// Everything a caller could print about a configuration built from `url`.
fn everything_shown(url: &str) -> String {
    match CacheConfig::from_url(url) {
        Ok(config) => format!("{config:?}"),
        Err(err) => format!("{err} / {err:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_secret_is_ever_shown(form in prop::sample::select(FORMS), secret in "S3c[A-Za-z0-9]{6,20}") {
        let url = form.replace("{}", &secret);
        let shown = everything_shown(&url);
        // A secret named as a path segment (the database) is refused without
        // being repeated, like every other part of the URL.
        prop_assert!(!shown.contains(&secret), "{url:?} showed its secret: {shown}");
        // The redactor hides userinfo and secret-named parameters' values
        // (a secret elsewhere, as a path or a parameter name, is refused by
        // the parsers above without being repeated).
        let redacted = cache_store::redact_url(&url);
        if form.contains("{}@") || form.contains("={}") || form.contains(":{}@") {
            prop_assert!(!redacted.contains(&secret), "{url:?} redacted as {redacted}");
        }
    }
}

/// Every query parameter any adapter or the composition reads.
const PARAMETERS: &[&str] = &[
    // Every URL.
    "namespace",
    "fail_open",
    "keys_limit",
    "metrics",
    "tracing",
    "trace_keys",
    "l1",
    "l1_max_ttl_ms",
    "l1_refresh",
    "backplane_channel",
    "coherence",
    // memory://
    "capacity",
    "capacity_bytes",
    "max_value_len",
    "count_evictions",
    // redis://
    "pool_size",
    "connect_timeout_ms",
    "command_timeout_ms",
    "reconnect_delay_ms",
    "scan_count",
    "allow_flushdb",
    "lazy_connect",
    "coalesce",
    "tls_ca_file",
    "tls_cert_file",
    "tls_key_file",
    "node",
    "sentinelServiceName",
    "sentinelUsername",
];

/// URLs each parameter is tried in: `{p}` the parameter, `{}` the secret.
const CARRIERS: &[&str] = &[
    "memory://?{p}={}",
    "redis://127.0.0.1:6379/0?{p}={}",
    "redis-cluster://127.0.0.1:7000?{p}={}",
    "redis-sentinel://127.0.0.1:26379/0?sentinelServiceName=m&{p}={}",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Issue 23, item 3: a secret pasted as any parameter's value (letters,
    /// or digits as a PIN would be) never comes back in the error that
    /// refuses it: an error names the parameter and its rule, not the value.
    /// (`pool_size=<password>` once answered `… not "<password>"`.)
    #[test]
    fn a_refused_value_is_never_repeated(
        parameter in prop::sample::select(PARAMETERS),
        carrier in prop::sample::select(CARRIERS),
        secret in prop_oneof!["S3c[A-Za-z0-9]{6,20}", "[1-9][0-9]{8,15}", "S3c[A-Za-z0-9]{4,8}:[0-9]{1,3}", "S3c[A-Za-z0-9]{4,8}::[a-z]{2}"],
    ) {
        let url = carrier.replace("{p}", parameter).replace("{}", &secret);
        if let Err(err) = CacheConfig::from_url(&url) {
            let shown = format!("{err} / {err:?}");
            prop_assert!(!shown.contains(&secret), "{url:?} was refused with its value: {shown}");
        }
    }
}
