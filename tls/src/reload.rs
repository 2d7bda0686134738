//! rustls configs built from [`TlsFiles`], and a server certificate that is
//! swapped in place on reload, so that new connections see the new
//! certificate while open ones keep theirs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ServerConfig};

use crate::config::TlsFiles;
use crate::error::TlsError;
use crate::pem;
use crate::x509::{self, CertInfo};

struct Loaded {
    key: Arc<CertifiedKey>,
    info: CertInfo,
    stamp: (Option<SystemTime>, Option<SystemTime>),
}

/// A server certificate read from a cert and a key file, reloadable.
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Loaded>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert").field("cert", &self.cert).field("key", &self.key).finish()
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn load(cert: &Path, key: &Path) -> Result<Loaded, TlsError> {
    let stamp = (modified(cert), modified(key));
    let certified = pem::certified_key(cert, key)?;
    let info = x509::parse(&certified.cert[0])
        .map_err(|message| TlsError::BadCertificate { path: cert.to_owned(), message })?;
    Ok(Loaded { key: certified, info, stamp })
}

impl ReloadingCert {
    /// Reads and checks the files (the key must match the certificate).
    pub fn new(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let loaded = load(cert, key)?;
        Ok(Arc::new(Self { cert: cert.to_owned(), key: key.to_owned(), current: RwLock::new(loaded) }))
    }

    /// Reads the files again and swaps the certificate in. On an error the
    /// old certificate stays.
    pub fn reload(&self) -> Result<CertInfo, TlsError> {
        let loaded = load(&self.cert, &self.key)?;
        let info = loaded.info.clone();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = loaded;
        Ok(info)
    }

    /// Reloads when either file's modification time changed; `Ok(None)` when
    /// nothing changed.
    pub fn reload_if_changed(&self) -> Result<Option<CertInfo>, TlsError> {
        let stamp = (modified(&self.cert), modified(&self.key));
        if self.current.read().unwrap_or_else(|e| e.into_inner()).stamp == stamp {
            return Ok(None);
        }
        self.reload().map(Some)
    }

    /// The subject and expiry of the certificate being served.
    pub fn info(&self) -> CertInfo {
        self.current.read().unwrap_or_else(|e| e.into_inner()).info.clone()
    }

    /// The cert file's path.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).key.clone())
    }
}

/// ring's suites, AES-128-GCM first: as safe as AES-256 in TLS 1.2 and
/// 1.3 with four fewer rounds per block, and bytes are what a broker
/// moves. (`kmon bench tls` could not tell the two apart through this
/// machine's noise; see BENCHMARKS.md.)
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|suite| {
        !matches!(
            suite.suite(),
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
                | rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
    Arc::new(provider)
}

/// A server config presenting `cert`; with `files.ca`, every client must
/// present a certificate signed by it (mutual TLS). `alpn` is set as given
/// (`h2` for gRPC).
pub fn server_config(files: &TlsFiles, cert: Arc<ReloadingCert>, alpn: &[&[u8]]) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match &files.ca {
        Some(ca) => {
            let roots = Arc::new(pem::root_store(ca)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
                .build()
                .map_err(|e| TlsError::Verifier(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(cert);
    // The server's order picks the suite (clients such as tonic's and
    // OpenSSL's put AES-256 first).
    config.ignore_client_order = true;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A client config trusting `files.ca` and presenting `files.cert` /
/// `files.key` when both are set.
pub fn client_config(files: &TlsFiles, alpn: &[&[u8]]) -> Result<ClientConfig, TlsError> {
    let Some(ca) = &files.ca else {
        return Err(TlsError::Verifier("a TLS client needs a CA bundle (ca)".into()));
    };
    let roots = pem::root_store(ca)?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            // Checks the pair first, for an error that names both files.
            pem::certified_key(cert, key)?;
            builder.with_client_auth_cert(pem::certificates(cert)?, pem::private_key(key)?)?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_cert(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf) {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (c, k) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (c1, _k1) = write_cert(dir.path(), "one", "one");
        let (_c2, k2) = write_cert(dir.path(), "two", "two");
        let missing = dir.path().join("missing.pem");
        let e = ReloadingCert::new(&missing, &k2).unwrap_err().to_string();
        assert!(e.contains("missing.pem"), "{e}");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "hello").unwrap();
        let e = ReloadingCert::new(&garbage, &k2).unwrap_err().to_string();
        assert!(e.contains("garbage.pem") && e.contains("no CERTIFICATE"), "{e}");
        let e = ReloadingCert::new(&c1, &k2).unwrap_err().to_string();
        assert!(e.contains("two.key") && e.contains("one.crt") && e.contains("does not match"), "{e}");
    }

    #[test]
    fn reload_swaps_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = write_cert(dir.path(), "srv", "first");
        let cert = ReloadingCert::new(&c, &k).unwrap();
        assert_eq!(cert.info().common_name.as_deref(), Some("first"));
        write_cert(dir.path(), "srv", "second");
        assert_eq!(cert.reload().unwrap().common_name.as_deref(), Some("second"));
        assert_eq!(cert.info().common_name.as_deref(), Some("second"));
        // A broken file keeps the old certificate.
        std::fs::write(&c, "junk").unwrap();
        assert!(cert.reload().is_err());
        assert_eq!(cert.info().common_name.as_deref(), Some("second"));
        let files = TlsFiles { cert: Some(c), key: Some(k), ca: None };
        server_config(&files, cert, &[b"h2"]).unwrap();
    }
}
