//! Reading PEM files, with errors that name the file.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::TlsError;

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })
}

/// The certificates of a PEM file, in order (at least one).
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem { path: path.to_owned(), message: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::Empty { path: path.to_owned(), what: "CERTIFICATE" });
    }
    Ok(certs)
}

/// The private key of a PEM file.
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::Empty { path: path.to_owned(), what: "PRIVATE KEY" },
        e => TlsError::BadPem { path: path.to_owned(), message: e.to_string() },
    })
}

/// A certificate chain and its key, checked to match.
pub fn certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = certificates(cert)?;
    let der = private_key(key)?;
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(chain, der, &provider).map(Arc::new).map_err(|e| TlsError::KeyMismatch {
        cert: cert.to_owned(),
        key: key.to_owned(),
        message: e.to_string(),
    })
}

/// The CA bundle of a PEM file as a root store.
pub fn root_store(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots.add(cert).map_err(|e| TlsError::BadCa { path: path.to_owned(), message: e.to_string() })?;
    }
    Ok(roots)
}
