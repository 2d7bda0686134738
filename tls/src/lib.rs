//! kmon's TLS, shared by the broker, the client, the agent and the CLI.
//!
//! ```text
//! TlsFiles (cert, key, ca: PEM paths) ─▶ pem::load ─▶ CertifiedKey + RootCertStore
//!                                          │
//! SIGHUP / file change ─▶ reload::Reloader ─▶ swaps the Arc<CertifiedKey> the
//!                                              rustls ServerConfig resolves
//! peer certificate (mTLS) ─▶ x509::subject ─▶ principal::PrincipalMapper ─▶ Principal
//! ```
//!
//! - [`config`]: the PEM file paths of a listener or a client, as they
//!   appear in the broker's and agent's TOML and the CLI's flags.
//! - [`pem`]: reading and checking PEM files (errors name the file).
//! - [`x509`]: the few certificate fields kmon reads (subject, CN, notAfter),
//!   from DER, without a full X.509 parser.
//! - [`principal`]: Kafka's `ssl.principal.mapping.rules` and the
//!   [`Principal`] attached to each request or connection.
//! - [`reload`]: a `ResolvesServerCert` whose certificate is swapped on
//!   reload, and the rustls server and client configs built from files.
//! - [`scram`]: SASL/SCRAM-SHA-512: the salted credential the quorum keeps
//!   and both sides of the exchange (the Kafka listener's SASL).
//! - [`local_ca`]: a local CA and the certificates it signs, kept in a
//!   directory (what `kmon up --secure` runs on).
//! - [`error`]: the crate's error type.

pub mod config;
pub mod error;
pub mod local_ca;
pub mod pem;
pub mod principal;
pub mod reload;
pub mod scram;
pub mod x509;

pub use config::TlsFiles;
pub use error::TlsError;
pub use local_ca::LocalCa;
pub use principal::{Principal, PrincipalMapper};
pub use reload::{ReloadingCert, client_config, server_config};
pub use scram::{ScramClient, ScramCredential, ScramServer};
