//! TLS (issue 15, item 1), on TLS-only redis-servers (`port 0`) with a
//! throwaway CA made here by rcgen: the conformance suite over `rediss://`
//! with the CA given in configuration, then each way a TLS connection must
//! fail (wrong CA, wrong host name, expired certificate, a client
//! certificate missing where the server requires one) and mutual TLS.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use cache_conformance::{trials, ViewsOf};
use cache_port::{Cache, ErrorKind};
use cache_redis::{RedisConfig, RedisStore};
use cache_redis_harness::{RedisServer, ServerOptions, TlsServer};
use libtest_mimic::{Failed, Trial};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// The throwaway PKI: one CA signing the server and client certificates,
/// an unrelated CA, and an expired server certificate.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn make() -> Self {
        let dir = std::env::temp_dir().join(format!("cache-redis-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, pem: String| std::fs::write(dir.join(name), pem).unwrap();
        let ca = |name: &str| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            let cert = params.self_signed(&key).unwrap();
            (cert, key)
        };
        let (ca_cert, ca_key) = ca("cache-toolkit test CA");
        let (other_cert, _) = ca("some other CA");
        write("ca.pem", ca_cert.pem());
        write("other-ca.pem", other_cert.pem());
        let leaf = |stem: &str, names: Vec<String>, expired: bool| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(names).unwrap();
            if expired {
                params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                params.not_after = rcgen::date_time_ymd(2021, 1, 1);
            }
            let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
            write(&format!("{stem}.pem"), cert.pem());
            write(&format!("{stem}-key.pem"), key.serialize_pem());
        };
        leaf("server", vec!["localhost".into()], false);
        leaf("expired", vec!["localhost".into()], true);
        leaf("client", vec!["cache-client".into()], false);
        Pki { dir }
    }

    fn server(&self, cert: &str, require_client_cert: bool) -> RedisServer {
        RedisServer::start_with(ServerOptions {
            tls: Some(TlsServer {
                cert: self.file(&format!("{cert}.pem")),
                key: self.file(&format!("{cert}-key.pem")),
                ca: self.file("ca.pem"),
                require_client_cert,
            }),
            ..Default::default()
        })
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(Pki::make)
}

fn config(url: &str, ca: &Path) -> RedisConfig {
    RedisConfig::from_url(url)
        .unwrap()
        .tls_ca_file(ca)
        .connect_timeout(Duration::from_secs(3))
        .command_timeout(Duration::from_secs(5))
}

/// Runs `check` on a runtime of its own.
fn trial(name: &str, check: impl FnOnce() -> Result<(), String> + Send + 'static) -> Trial {
    Trial::test(format!("tls::{name}"), move || {
        check().map_err(Failed::from)
    })
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    cache_conformance::block_on(future)
}

/// Connecting with `config` fails at startup with a `Config` error (a
/// certificate will not verify on a retry) that says `says`.
fn refused(config: RedisConfig, says: &str) -> Result<(), String> {
    let error = match block_on(RedisStore::connect(&config)) {
        Ok(_) => return Err("connected".into()),
        Err(e) => e,
    };
    if error.kind() != ErrorKind::Config
        || !error.to_string().contains(says)
        || error.is_retryable()
    {
        return Err(format!(
            "{:?}: {error} (wanted Config saying {says:?})",
            error.kind()
        ));
    }
    println!("refused: {error}");
    Ok(())
}

fn main() {
    let servers = Arc::new(Mutex::new(Vec::new()));
    // The suite over `rediss://localhost:PORT` with `tls_ca_file`.
    let keep = Arc::clone(&servers);
    let harness = ViewsOf::new("cache-redis over TLS", move || {
        let keep = Arc::clone(&keep);
        Box::pin(async move {
            let server = pki().server("server", false);
            let config = config(&server.url(), &pki().file("ca.pem")).max_value_len(1 << 20);
            keep.lock().unwrap().push(server);
            RedisStore::connect(&config).await.unwrap()
        })
    });
    let mut all = trials("tls", Arc::new(harness));
    all.push(trial("a_wrong_ca_is_refused_at_connect", || {
        let server = pki().server("server", false);
        refused(
            config(&server.url(), &pki().file("other-ca.pem")),
            "not signed by a trusted CA",
        )
    }));
    all.push(trial("a_wrong_host_name_is_refused_at_connect", || {
        let server = pki().server("server", false);
        // The certificate names localhost, not 127.0.0.1.
        let url = format!("rediss://127.0.0.1:{}", server.port());
        refused(
            config(&url, &pki().file("ca.pem")),
            "does not name the host",
        )
    }));
    all.push(trial(
        "an_expired_certificate_is_refused_at_connect",
        || {
            let server = pki().server("expired", false);
            refused(config(&server.url(), &pki().file("ca.pem")), "has expired")
        },
    ));
    all.push(trial("the_system_roots_do_not_trust_a_private_ca", || {
        let server = pki().server("server", false);
        let config = RedisConfig::from_url(&server.url())
            .unwrap()
            .connect_timeout(Duration::from_secs(3));
        refused(config, "not signed by a trusted CA")
    }));
    all.push(trial("mutual_tls_needs_the_client_certificate", || {
        let server = pki().server("server", true);
        let without = config(&server.url(), &pki().file("ca.pem"));
        refused(without.clone(), "requires a client certificate")?;
        let with = without.tls_client_cert(pki().file("client.pem"), pki().file("client-key.pem"));
        block_on(async {
            let cache = with.connect().await.map_err(|e| e.to_string())?;
            cache
                .set("k", "over mTLS".into(), None)
                .await
                .map_err(|e| e.to_string())?;
            match cache.get("k").await.map_err(|e| e.to_string())? {
                Some(v) if &v[..] == b"over mTLS" => Ok(()),
                other => Err(format!("read back {other:?}")),
            }
        })
    }));
    all.push(trial(
        "bad_tls_files_are_config_errors_naming_the_file",
        || {
            for (config, says) in [
                (
                    RedisConfig::from_url("rediss://localhost:1")
                        .unwrap()
                        .tls_ca_file("/nonexistent/ca.pem"),
                    "tls_ca_file /nonexistent/ca.pem",
                ),
                (
                    RedisConfig::from_url("rediss://localhost:1")
                        .unwrap()
                        .tls_client_cert(pki().file("client.pem"), pki().file("ca.pem")),
                    "tls_key_file",
                ),
            ] {
                let error = block_on(RedisStore::connect(&config))
                    .err()
                    .ok_or("connected")?;
                if error.kind() != ErrorKind::Config || !error.to_string().contains(says) {
                    return Err(format!("{:?}: {error} (wanted {says:?})", error.kind()));
                }
            }
            for (url, says) in [
                (
                    "redis://localhost?tls_ca_file=/x.pem",
                    "need a rediss:// URL",
                ),
                (
                    "rediss://localhost?tls_cert_file=/x.pem",
                    "both tls_cert_file and tls_key_file",
                ),
            ] {
                let error = RedisConfig::from_url(url).err().ok_or("accepted")?;
                if !error.to_string().contains(says) {
                    return Err(format!("{url}: {error}"));
                }
            }
            Ok(())
        },
    ));
    cache_conformance::main(all, servers);
}
