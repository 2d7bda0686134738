//! The crate's error type.

use std::path::PathBuf;

/// What went wrong loading or using TLS material. Every file error names
/// the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not valid PEM: {message}")]
    BadPem { path: PathBuf, message: String },
    #[error("{path}: no {what} found in the PEM file")]
    Empty { path: PathBuf, what: &'static str },
    #[error("{key}: the private key does not match the certificate in {cert}: {message}")]
    KeyMismatch { cert: PathBuf, key: PathBuf, message: String },
    #[error("{path}: bad CA certificate: {message}")]
    BadCa { path: PathBuf, message: String },
    #[error("{path}: cannot read the certificate's fields: {message}")]
    BadCertificate { path: PathBuf, message: String },
    #[error("bad principal mapping rule {rule:?}: {message}")]
    BadRule { rule: String, message: String },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("TLS client verifier: {0}")]
    Verifier(String),
    #[error("SASL/SCRAM: {0}")]
    Scram(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("making a certificate ({what}): {message}")]
    Generate { what: String, message: String },
}
