//! Opening gRPC channels to brokers, and the pool that reuses them.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::error::ClientError;

/// The generated client over a tonic channel, with this process's SCRAM
/// credentials (if any) on every request.
pub type KmonClient = kmon_proto::v1::kmon_client::KmonClient<InterceptedService<Channel, Credentials>>;

/// The gRPC metadata key of a SCRAM user's credentials: `base64(user:password)`.
/// The broker checks them against the user's salted SCRAM credential in
/// the quorum (the password is never stored); send them over TLS only.
pub const SCRAM_METADATA_KEY: &str = "kmon-scram-sha-512";

static CREDENTIALS: OnceLock<MetadataValue<tonic::metadata::Ascii>> = OnceLock::new();

/// Authenticates every connection of this process from now on as SCRAM
/// user `user` (the same users as the Kafka listener's SASL/SCRAM).
pub fn use_scram(user: &str, password: &str) -> Result<(), ClientError> {
    CREDENTIALS
        .set(scram_token(user, password)?)
        .map_err(|_| ClientError::InvalidArgument("SCRAM credentials are already set".into()))
}

fn scram_token(user: &str, password: &str) -> Result<MetadataValue<tonic::metadata::Ascii>, ClientError> {
    use base64::Engine;
    if user.is_empty() || user.contains(':') || password.is_empty() {
        return Err(ClientError::InvalidArgument("a SCRAM user name (no ':') and a password are needed".into()));
    }
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    MetadataValue::try_from(token).map_err(|e| ClientError::InvalidArgument(e.to_string()))
}

/// Adds SCRAM credentials (if any) to each request.
#[derive(Debug, Clone, Default)]
pub struct Credentials(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Credentials {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert(SCRAM_METADATA_KEY, value.clone());
        }
        Ok(request)
    }
}

/// How a client's connections to one cluster are secured: TLS (the CA
/// brokers are checked against, a certificate for mutual TLS) and SCRAM
/// credentials. An admin, producer or consumer can carry its own, so one
/// process can talk to two differently secured clusters (a mirror); those
/// without one use this process's settings ([`use_tls`], [`use_scram`]).
#[derive(Debug, Clone, Default)]
pub struct Security {
    tls: Option<ClientTlsConfig>,
    credentials: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl Security {
    /// Plaintext and anonymous.
    pub fn plaintext() -> Security {
        Security::default()
    }

    /// What [`use_tls`] and [`use_scram`] set for this process (plaintext
    /// and anonymous before).
    pub fn process() -> Security {
        Security { tls: TLS.get().cloned(), credentials: CREDENTIALS.get().cloned() }
    }

    /// TLS, as [`use_tls`] describes, for these connections only.
    pub fn with_tls(mut self, ca: &Path, cert: Option<&Path>, key: Option<&Path>) -> Result<Security, ClientError> {
        self.tls = Some(tls_config(ca, cert, key)?);
        Ok(self)
    }

    /// SCRAM credentials, as [`use_scram`] describes, for these
    /// connections only.
    pub fn with_scram(mut self, user: &str, password: &str) -> Result<Security, ClientError> {
        self.credentials = Some(scram_token(user, password)?);
        Ok(self)
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }
}

/// The client over `channel`, with this process's credentials.
pub fn client(channel: Channel) -> KmonClient {
    client_with(channel, &Security::process())
}

/// The client over `channel`, with the credentials of `security`.
pub fn client_with(channel: Channel, security: &Security) -> KmonClient {
    kmon_proto::v1::kmon_client::KmonClient::with_interceptor(channel, Credentials(security.credentials.clone()))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
}

/// Largest gRPC message sent or accepted (produce and fetch carry whole
/// batches).
pub const MAX_MESSAGE_SIZE: usize = 64 << 20;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The TLS every connection of this process uses, once [`use_tls`] set it.
static TLS: OnceLock<ClientTlsConfig> = OnceLock::new();

/// Turns TLS on for every connection this process opens from now on:
/// brokers are checked against the CA bundle `ca`, and `cert` / `key` (both
/// or neither) are presented for mutual TLS. Files are read and checked now;
/// errors name the file.
pub fn use_tls(ca: &Path, cert: Option<&Path>, key: Option<&Path>) -> Result<(), ClientError> {
    TLS.set(tls_config(ca, cert, key)?)
        .map_err(|_| ClientError::Tls("TLS is already configured in this process".into()))
}

fn tls_config(ca: &Path, cert: Option<&Path>, key: Option<&Path>) -> Result<ClientTlsConfig, ClientError> {
    let tls_err = |e: kmon_tls::TlsError| ClientError::Tls(e.to_string());
    kmon_tls::pem::root_store(ca).map_err(tls_err)?;
    let read = |p: &Path| std::fs::read(p).map_err(|e| ClientError::Tls(format!("cannot read {}: {e}", p.display())));
    let config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
    match (cert, key) {
        (Some(cert), Some(key)) => {
            kmon_tls::pem::certified_key(cert, key).map_err(tls_err)?;
            Ok(config.identity(Identity::from_pem(read(cert)?, read(key)?)))
        }
        (None, None) => Ok(config),
        _ => Err(ClientError::Tls("a client certificate needs both a cert and a key file".into())),
    }
}

/// An endpoint for a broker's `HOST:PORT`: `https` with this process's TLS
/// once [`use_tls`] was called, `http` otherwise (for other gRPC services of
/// the broker, such as the agent's shipping).
pub fn endpoint(address: &str) -> Result<Endpoint, ClientError> {
    let invalid = |err: tonic::transport::Error| ClientError::InvalidAddress {
        address: address.to_owned(),
        reason: err.to_string(),
    };
    match TLS.get() {
        Some(tls) => Endpoint::from_shared(format!("https://{address}")).and_then(|e| e.tls_config(tls.clone())),
        None => Endpoint::from_shared(format!("http://{address}")),
    }
    .map_err(invalid)
}

/// Connects to `bootstrap` (`HOST:PORT`, or a full `http://` / `https://`
/// URI); `HOST:PORT` is `https` once [`use_tls`] was called.
pub async fn connect(bootstrap: &str) -> Result<KmonClient, ClientError> {
    connect_with(bootstrap, &Security::process()).await
}

/// Connects to `bootstrap` secured by `security`: `HOST:PORT` is `https`
/// when it has TLS.
pub async fn connect_with(bootstrap: &str, security: &Security) -> Result<KmonClient, ClientError> {
    let tls = security.tls.as_ref();
    let uri = match (bootstrap.contains("://"), tls) {
        (true, _) => bootstrap.to_owned(),
        (false, Some(_)) => format!("https://{bootstrap}"),
        (false, None) => format!("http://{bootstrap}"),
    };
    let mut endpoint = Endpoint::from_shared(uri)
        .map_err(|err| ClientError::InvalidAddress { address: bootstrap.to_owned(), reason: err.to_string() })?;
    if let Some(tls) = tls {
        endpoint = endpoint
            .tls_config(tls.clone())
            .map_err(|err| ClientError::InvalidAddress { address: bootstrap.to_owned(), reason: err.to_string() })?;
    }
    let channel = endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        // Large windows so a multi-MiB produce or fetch is not throttled by
        // HTTP/2 flow control.
        .initial_stream_window_size(Some(16 << 20))
        .initial_connection_window_size(Some(32 << 20))
        .connect()
        .await
        .map_err(|source| ClientError::Connect { address: bootstrap.to_owned(), source: Arc::new(source) })?;
    Ok(client_with(channel, security))
}

/// One channel per broker address, reused by every request to that broker
/// (a tonic channel multiplexes concurrent requests over HTTP/2), all
/// secured alike.
#[derive(Debug)]
pub(crate) struct Pool {
    security: Security,
    clients: Mutex<HashMap<String, KmonClient>>,
}

impl Pool {
    pub(crate) fn new(security: Security) -> Pool {
        Pool { security, clients: Mutex::default() }
    }

    /// The pooled client for `address`, connecting on first use.
    pub(crate) async fn get(&self, address: &str) -> Result<KmonClient, ClientError> {
        if let Some(client) = self.lock().get(address) {
            return Ok(client.clone());
        }
        // Connect without holding the lock; a concurrent connect to the same
        // address just replaces an equivalent channel.
        let client = connect_with(address, &self.security).await?;
        self.lock().entry(address.to_owned()).or_insert(client.clone());
        Ok(client)
    }

    /// Adds an existing client under `address`.
    pub(crate) fn insert(&self, address: &str, client: KmonClient) {
        self.lock().insert(address.to_owned(), client);
    }

    /// Drops the channel to `address` (after a transport failure), so the
    /// next request reconnects.
    pub(crate) fn evict(&self, address: &str) {
        self.lock().remove(address);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, KmonClient>> {
        self.clients.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}
