//! A local certificate authority kept as PEM files in one directory, and
//! the leaf certificates it signs (for 127.0.0.1 and localhost): what
//! `kmon up --secure` makes once and reuses on every restart.
//!
//! ```text
//! DIR/ca.crt, DIR/ca.key          the CA (made on first use)
//! DIR/NAME.crt, DIR/NAME.key      a leaf, CN given by the caller (made when missing)
//! ```
//!
//! Private keys are written with mode 0600. An existing file is never
//! overwritten: a leaf whose files exist is used as it is.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::config::TlsFiles;
use crate::error::TlsError;

/// The CA's common name.
pub const CA_NAME: &str = "kmon local CA";
/// How long made certificates are valid, in years.
const VALID_YEARS: i32 = 10;

/// A CA whose key is in `DIR/ca.key`.
pub struct LocalCa {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa").field("dir", &self.dir).finish()
    }
}

fn generate(what: &str) -> impl Fn(rcgen::Error) -> TlsError + '_ {
    move |e| TlsError::Generate { what: what.to_owned(), message: e.to_string() }
}

/// This year, from the clock (good enough for a validity period).
fn this_year() -> i32 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    1970 + (secs / 31_556_952) as i32
}

fn validity(params: &mut CertificateParams) {
    let year = this_year();
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + VALID_YEARS, 1, 1);
}

/// The CA's parameters: the same on every load, so that certificates
/// signed later name the issuer `ca.crt` has.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params
}

/// Writes a new file (`create_new`): never replaces one.
fn write_new(path: &Path, contents: &str, mode: u32) -> Result<(), TlsError> {
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()
    };
    write().map_err(|source| TlsError::Write { path: path.to_owned(), source })
}

fn read(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })
}

impl LocalCa {
    /// Loads the CA of `dir`, or makes one there when `dir` has none.
    pub fn open_or_create(dir: &Path) -> Result<LocalCa, TlsError> {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Write { path: dir.to_owned(), source })?;
        let (cert, key) = (dir.join("ca.crt"), dir.join("ca.key"));
        let key_pair = match (cert.exists(), key.exists()) {
            (true, true) => {
                let pem = read(&key)?;
                let key_pair = KeyPair::from_pem(&pem)
                    .map_err(|e| TlsError::BadPem { path: key.clone(), message: e.to_string() })?;
                // The pair must match, or every certificate signed from here on is refused.
                crate::pem::certified_key(&cert, &key)?;
                key_pair
            }
            (false, false) => {
                let key_pair = KeyPair::generate().map_err(generate("the CA key"))?;
                let mut params = ca_params();
                validity(&mut params);
                let ca = params.self_signed(&key_pair).map_err(generate("the CA certificate"))?;
                write_new(&key, &key_pair.serialize_pem(), 0o600)?;
                write_new(&cert, &ca.pem(), 0o644)?;
                key_pair
            }
            _ => {
                let missing = if cert.exists() { &key } else { &cert };
                return Err(TlsError::Read {
                    path: missing.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "the other half of the CA exists"),
                });
            }
        };
        Ok(LocalCa { dir: dir.to_owned(), issuer: Issuer::new(ca_params(), key_pair) })
    }

    /// `DIR/ca.crt`.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// `DIR/NAME.crt` and `.key` with common name `cn`, for 127.0.0.1 and
    /// localhost, signed by this CA; made when missing. The files returned
    /// trust this CA.
    pub fn leaf(&self, name: &str, cn: &str) -> Result<TlsFiles, TlsError> {
        let (cert, key) = (self.dir.join(format!("{name}.crt")), self.dir.join(format!("{name}.key")));
        if !(cert.exists() && key.exists()) {
            let what = format!("{name}'s certificate");
            let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .map_err(generate(&what))?;
            params.distinguished_name.push(DnType::CommonName, cn);
            validity(&mut params);
            let key_pair = KeyPair::generate().map_err(generate(&what))?;
            let signed = params.signed_by(&key_pair, &self.issuer).map_err(generate(&what))?;
            // A half-made pair (a crash between the writes) is made again.
            let _ = std::fs::remove_file(&cert);
            let _ = std::fs::remove_file(&key);
            write_new(&key, &key_pair.serialize_pem(), 0o600)?;
            write_new(&cert, &signed.pem(), 0o644)?;
        }
        Ok(TlsFiles { cert: Some(cert), key: Some(key), ca: Some(self.ca_path()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reload::{ReloadingCert, client_config, server_config};

    #[test]
    fn made_once_reused_after_and_its_certificates_shake_hands() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::open_or_create(dir.path()).unwrap();
        let server = ca.leaf("broker-1", "kmon-broker-1").unwrap();
        let ca_pem = std::fs::read(ca.ca_path()).unwrap();
        let server_pem = std::fs::read(server.cert.as_ref().unwrap()).unwrap();
        drop(ca);

        // Reopened: the same CA and leaf; a new leaf is signed by the same CA.
        let ca = LocalCa::open_or_create(dir.path()).unwrap();
        assert_eq!(std::fs::read(ca.ca_path()).unwrap(), ca_pem);
        let again = ca.leaf("broker-1", "kmon-broker-1").unwrap();
        assert_eq!(std::fs::read(again.cert.as_ref().unwrap()).unwrap(), server_pem);
        let admin = ca.leaf("admin", "kmon-admin").unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(admin.key.as_ref().unwrap()).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);

        // A mutual-TLS handshake between them: each side verifies the other
        // against the CA; the server's AES-128-GCM preference wins.
        let cert = ReloadingCert::new(server.cert.as_ref().unwrap(), server.key.as_ref().unwrap()).unwrap();
        assert_eq!(cert.info().subject, "CN=kmon-broker-1");
        let server = server_config(&server, cert, &[]).unwrap();
        let client = client_config(&admin, &[]).unwrap();
        let (server, client) = handshake(server, client).unwrap();
        let peer = server.peer_certificates().unwrap();
        assert_eq!(crate::x509::parse(&peer[0]).unwrap().subject, "CN=kmon-admin");
        assert_eq!(client.negotiated_cipher_suite().unwrap().suite(), rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    }

    /// Runs a handshake in memory.
    fn handshake(
        server: rustls::ServerConfig,
        client: rustls::ClientConfig,
    ) -> Result<(rustls::ServerConnection, rustls::ClientConnection), rustls::Error> {
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut client = rustls::ClientConnection::new(std::sync::Arc::new(client), name)?;
        let mut server = rustls::ServerConnection::new(std::sync::Arc::new(server))?;
        for _ in 0..10 {
            let mut bytes = Vec::new();
            client.write_tls(&mut bytes).unwrap();
            server.read_tls(&mut bytes.as_slice()).unwrap();
            server.process_new_packets()?;
            let mut bytes = Vec::new();
            server.write_tls(&mut bytes).unwrap();
            client.read_tls(&mut bytes.as_slice()).unwrap();
            client.process_new_packets()?;
            if !client.is_handshaking() && !server.is_handshaking() {
                break;
            }
        }
        assert!(!client.is_handshaking() && !server.is_handshaking(), "the handshake did not finish");
        Ok((server, client))
    }

    #[test]
    fn a_ca_missing_half_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        LocalCa::open_or_create(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join("ca.key")).unwrap();
        let err = LocalCa::open_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("ca.key"), "{err}");
    }
}
