//! The PEM file paths of a TLS endpoint.

use std::path::PathBuf;

use serde::Deserialize;

/// A listener's or a client's TLS material, as PEM files. A listener with a
/// `ca` asks every peer for a certificate signed by it (mutual TLS) and
/// refuses peers without one; a client with `cert` and `key` presents them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain presented to peers (PEM; leaf first).
    pub cert: Option<PathBuf>,
    /// The private key of `cert` (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// The CA bundle peers' certificates are checked against (PEM).
    pub ca: Option<PathBuf>,
}

impl TlsFiles {
    /// True when no file is set: plain text.
    pub fn is_empty(&self) -> bool {
        self.cert.is_none() && self.key.is_none() && self.ca.is_none()
    }
}
