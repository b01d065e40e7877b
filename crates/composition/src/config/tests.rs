//! URL reading: options, refusals, sizes.

mod options {
    use super::super::parse::*;
    use super::super::*;

    #[test]
    fn observability_options_turn_the_layers_on_and_refuse_bad_values() {
        use cache_observe::KeyField;
        let config =
            CacheConfig::from_url("memory://?metrics=true&tracing=true&trace_keys=truncated:8")
                .unwrap();
        assert_eq!(
            config.observe(),
            Observe {
                metrics: true,
                tracing: true,
                trace_keys: KeyField::Truncated(8)
            }
        );
        assert_eq!(
            CacheConfig::from_url("memory://").unwrap().observe(),
            Observe::default()
        );
        let hashed = CacheConfig::from_url("memory://?trace_keys=hashed").unwrap();
        assert_eq!(hashed.observe().trace_keys, KeyField::Hashed);
        for bad in [
            "memory://?metrics=yes",
            "memory://?tracing=1",
            "memory://?trace_keys=plain",
            "memory://?trace_keys=truncated:0",
            "memory://?trace_keys=truncated:99999",
        ] {
            let error = CacheConfig::from_url(bad).unwrap_err();
            assert_eq!(error.kind(), cache_port::ErrorKind::Config, "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("c", "1024").unwrap(), 1024);
        assert_eq!(parse_size("c", "64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("c", "10MB").unwrap(), 10_000_000);
        assert!(parse_size("c", "10 parsecs").is_err());
        assert!(parse_size("c", "MiB").is_err());
        assert!(parse_size("c", "99999999999999GiB").is_err());
    }
}

#[cfg(not(feature = "redis"))]
mod without_redis {
    use super::super::*;

    #[test]
    fn a_redis_url_is_a_clear_error_when_the_feature_is_off() {
        let err = CacheConfig::from_url("redis://127.0.0.1:6379").unwrap_err();
        assert_eq!(err.kind(), cache_port::ErrorKind::Config);
        assert!(err.to_string().contains("`redis` feature"), "{err}");
    }
}
