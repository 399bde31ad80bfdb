//! Throw-away PKI for the mock: a fresh CA plus a leaf certificate for the
//! loopback names, written as PEM files so the collector can trust `ca.pem`
//! through its `ca_file`, and the rustls server configuration using them.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

fn tls_err(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("mock TLS setup: {what}: {e}"))
}

/// Generated material, DER-encoded.
pub(crate) struct Material {
    pub ca_der: CertificateDer<'static>,
    pub leaf_der: CertificateDer<'static>,
    pub leaf_key: PrivateKeyDer<'static>,
}

/// Reuses `ca.pem`, `server.pem` and `server.key` from `dir` when all three
/// exist (so a restarted mock stays trusted by a running collector), else
/// generates them with [`generate`].
pub(crate) fn load_or_generate(dir: &Path) -> io::Result<Material> {
    use rustls_pki_types::pem::PemObject;
    let (ca, leaf, key) = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    if ca.exists() && leaf.exists() && key.exists() {
        return Ok(Material {
            ca_der: CertificateDer::from_pem_file(&ca).map_err(|e| tls_err("ca.pem", e))?,
            leaf_der: CertificateDer::from_pem_file(&leaf).map_err(|e| tls_err("server.pem", e))?,
            leaf_key: PrivateKeyDer::from_pem_file(&key).map_err(|e| tls_err("server.key", e))?,
        });
    }
    generate(dir)
}

/// Creates `dir`, generates the CA and the leaf (SANs localhost, 127.0.0.1,
/// ::1) and writes `ca.pem`, `server.pem` and `server.key` into it.
pub(crate) fn generate(dir: &Path) -> io::Result<Material> {
    std::fs::create_dir_all(dir)?;

    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).map_err(|e| tls_err("ca params", e))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "marketprism mock-exchange CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(|e| tls_err("ca key", e))?;
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(|e| tls_err("ca cert", e))?;
    let issuer = Issuer::new(ca_params, ca_key);

    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let mut leaf_params = CertificateParams::new(names).map_err(|e| tls_err("leaf params", e))?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params.use_authority_key_identifier_extension = true;
    leaf_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().map_err(|e| tls_err("leaf key", e))?;
    let leaf_cert = leaf_params
        .signed_by(&leaf_key, &issuer)
        .map_err(|e| tls_err("leaf cert", e))?;

    std::fs::write(dir.join("ca.pem"), ca_cert.pem())?;
    std::fs::write(dir.join("server.pem"), leaf_cert.pem())?;
    std::fs::write(dir.join("server.key"), leaf_key.serialize_pem())?;

    Ok(Material {
        ca_der: ca_cert.der().clone(),
        leaf_der: leaf_cert.der().clone(),
        leaf_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    })
}

/// rustls server config (ring provider) presenting leaf + CA chain.
/// ALPN: `http/1.1` is offered; clients sending no ALPN are fine too.
pub(crate) fn server_config(m: &Material) -> io::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("protocol versions", e))?
        .with_no_client_auth()
        .with_single_cert(
            vec![m.leaf_der.clone(), m.ca_der.clone()],
            m.leaf_key.clone_key(),
        )
        .map_err(|e| tls_err("server cert", e))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn writes_pem_files_that_verify() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("nested/tls");
        let m = generate(&sub).unwrap();
        let ca = std::fs::read(sub.join("ca.pem")).unwrap();
        let leaf = std::fs::read(sub.join("server.pem")).unwrap();
        let key = std::fs::read(sub.join("server.key")).unwrap();
        assert_eq!(CertificateDer::from_pem_slice(&ca).unwrap(), m.ca_der);
        assert_eq!(CertificateDer::from_pem_slice(&leaf).unwrap(), m.leaf_der);
        assert!(PrivateKeyDer::from_pem_slice(&key).is_ok());
        server_config(&m).unwrap();
        // A second start reuses the same files (a running client keeps trusting it).
        let again = load_or_generate(&sub).unwrap();
        assert_eq!(again.ca_der, m.ca_der);
        assert_eq!(again.leaf_der, m.leaf_der);

        // The leaf must verify for all three names against the CA alone.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(m.ca_der.clone()).unwrap();
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        for name in ["localhost", "127.0.0.1", "::1"] {
            let sn = rustls_pki_types::ServerName::try_from(name).unwrap();
            verifier
                .verify_server_cert(
                    &m.leaf_der,
                    &[],
                    &sn,
                    &[],
                    rustls_pki_types::UnixTime::now(),
                )
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
