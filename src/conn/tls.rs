//! rustls client configuration: webpki roots plus an optional extra CA file.
//! Certificate verification is always on; there is deliberately no switch to
//! turn it off.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::Arc;

/// Builds a client config. `alpn_http1` is set for REST connections.
pub fn client_config(
    ca_file: Option<&Path>,
    alpn_http1: bool,
) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let mut added = 0;
        let iter = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
        for cert in iter {
            let cert = cert.map_err(|e| format!("bad PEM in CA file {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("unusable CA certificate in {}: {e}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("CA file {} holds no certificate", path.display()));
        }
    }
    // One provider, chosen explicitly: no dependence on crate-feature defaults.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    if alpn_http1 {
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    }
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webpki_roots_only() {
        assert!(client_config(None, false).is_ok());
    }

    #[test]
    fn bad_ca_files_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        assert!(client_config(Some(&missing), false)
            .unwrap_err()
            .contains("cannot read CA file"));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "hello\n").unwrap();
        assert!(client_config(Some(&empty), false)
            .unwrap_err()
            .contains("no certificate"));
    }
}
