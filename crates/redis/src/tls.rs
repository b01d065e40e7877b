//! TLS for `rediss://`: the trust roots and client certificate of the
//! configuration, as a rustls client configuration for fred.
//!
//! Without `tls_ca_file`, fred's default applies (the system's roots; they
//! honour `SSL_CERT_FILE`). With it, only the CAs in the file are trusted.
//! A client certificate is presented when both `tls_cert_file` and
//! `tls_key_file` are given. Every file problem is a `Config` error naming
//! the file and the option, never its contents.

use std::path::Path;
use std::sync::Arc;

use cache_port::{CacheError, Result};
use fred::types::config::{TlsConfig, TlsConnector, TlsHostMapping};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;

/// fred's TLS settings for `files`; `None` keeps fred's default.
pub(crate) fn tls_config(files: &TlsFiles) -> Result<Option<TlsConfig>> {
    if files.ca.is_none() && files.cert.is_none() {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(format!("TLS: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    match &files.ca {
        Some(ca) => {
            let mut added = 0;
            for cert in certificates(ca, "tls_ca_file")? {
                roots
                    .add(cert)
                    .map_err(|e| config_error(format!("tls_ca_file {}: {e}", ca.display())))?;
                added += 1;
            }
            if added == 0 {
                return Err(config_error(format!(
                    "tls_ca_file {} holds no PEM certificate",
                    ca.display()
                )));
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let builder = builder.with_root_certificates(roots);
    let config = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, "tls_cert_file")?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                config_error(format!(
                    "tls_key_file {}: no PEM private key ({e})",
                    key.display()
                ))
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| config_error(format!("tls_cert_file / tls_key_file: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Some(TlsConfig {
        connector: TlsConnector::from(config),
        hostnames: TlsHostMapping::None,
    }))
}

fn certificates(path: &Path, option: &str) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .map_err(|e| config_error(format!("{option} {}: {e}", path.display())))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| config_error(format!("{option} {}: {e}", path.display())))
}

fn config_error(message: String) -> CacheError {
    CacheError::Config { message }
}
