//! TLS on the broker's gRPC port and on the connections it makes to other
//! brokers (replication fetchers, heartbeats, the metadata quorum, group
//! forwarding), from the `tls_*` keys of [`BrokerConfig`].
//!
//! ```text
//! TcpListener ─▶ accept loop ─▶ TLS handshake (one task per connection)
//!               ─▶ principal of the peer certificate (debug log) ─▶ channel ─▶ tonic
//! SIGHUP / file change (checked every second) ─▶ ReloadingCert::reload ─▶ expiry metric
//! ```
//!
//! Handlers get the peer's [`Principal`] with [`principal`] (tonic keeps the
//! peer certificates in the request's extensions), for an ACL layer.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use kmon_tls::{Principal, PrincipalMapper, ReloadingCert, TlsFiles};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::config::BrokerConfig;
use crate::error::{BrokerError, Result};
use crate::metrics::{self, BrokerMetrics, Counted};

/// The `listener` label of the gRPC port's certificate.
pub const GRPC_LISTENER: &str = "grpc";
/// The `listener` label of the Kafka listener's certificate (the same one).
pub const KAFKA_LISTENER: &str = "kafka";

/// The TLS client config for dialing other brokers, set once at start-up
/// when TLS is on (one broker per process).
static PEER_TLS: OnceLock<ClientTlsConfig> = OnceLock::new();

/// An endpoint for another broker's `HOST:PORT`: `https` with the broker's
/// own certificate when TLS is on, `http` otherwise.
pub fn peer_endpoint(address: &str) -> std::result::Result<Endpoint, tonic::transport::Error> {
    match PEER_TLS.get() {
        Some(tls) => Endpoint::from_shared(format!("https://{address}"))?.tls_config(tls.clone()),
        None => Endpoint::from_shared(format!("http://{address}")),
    }
}

/// The principal of a gRPC request's peer (mutual TLS), with the broker's
/// mapping rules; `None` on plain text or without a client certificate.
pub fn principal<T>(request: &tonic::Request<T>, mapper: &PrincipalMapper) -> Option<Principal> {
    let certs = request.peer_certs()?;
    mapper.map_der(certs.first()?)
}

/// The TLS of the gRPC port and of the Kafka listener: one certificate
/// (reloaded for both), one CA, one set of mapping rules.
pub struct BrokerTls {
    cert: Arc<ReloadingCert>,
    acceptor: TlsAcceptor,
    /// The Kafka listener's acceptor: the same certificate, no ALPN.
    kafka_acceptor: TlsAcceptor,
    /// Whether peers must present a certificate signed by `tls_ca`.
    mutual: bool,
    /// The `listener` labels of the expiry metric: gRPC, and Kafka when it listens.
    listeners: Vec<&'static str>,
    /// Subject → principal rules.
    pub mapper: PrincipalMapper,
}

fn path(s: &str) -> Option<PathBuf> {
    (!s.is_empty()).then(|| PathBuf::from(s))
}

impl BrokerTls {
    /// Loads the files of `config` (`None` when `tls_cert` is empty) and
    /// sets the client side used to dial other brokers. Bad or missing
    /// files are errors that name the file.
    pub fn from_config(config: &BrokerConfig) -> Result<Option<Arc<Self>>> {
        let files = TlsFiles { cert: path(&config.tls_cert), key: path(&config.tls_key), ca: path(&config.tls_ca) };
        if files.is_empty() {
            return Ok(None);
        }
        let tls_err = |e: kmon_tls::TlsError| BrokerError::Config(format!("TLS: {e}"));
        let (Some(cert_path), Some(key_path)) = (&files.cert, &files.key) else {
            return Err(BrokerError::Config("TLS: tls_cert and tls_key must be set together".into()));
        };
        let mapper = PrincipalMapper::parse(&config.tls_principal_mapping_rules).map_err(tls_err)?;
        let cert = ReloadingCert::new(cert_path, key_path).map_err(tls_err)?;
        let server = kmon_tls::server_config(&files, cert.clone(), &[b"h2"]).map_err(tls_err)?;
        let kafka = kmon_tls::server_config(&files, cert.clone(), &[]).map_err(tls_err)?;
        // The client side: checked by kmon-tls above, read again as tonic wants PEM.
        let read = |p: &PathBuf| {
            std::fs::read(p).map_err(|e| BrokerError::Config(format!("TLS: cannot read {}: {e}", p.display())))
        };
        let mut client = ClientTlsConfig::new().identity(Identity::from_pem(read(cert_path)?, read(key_path)?));
        if let Some(ca) = &files.ca {
            kmon_tls::pem::root_store(ca).map_err(tls_err)?;
            client = client.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        let _ = PEER_TLS.set(client);
        // The broker's own kmon-client users (the node metrics producer of
        // the agent service) dial brokers with the same identity.
        if let Some(ca) = &files.ca {
            kmon_client::connection::use_tls(ca, Some(cert_path), Some(key_path))
                .map_err(|e| BrokerError::Config(e.to_string()))?;
        }
        Ok(Some(Arc::new(Self {
            cert,
            acceptor: TlsAcceptor::from(Arc::new(server)),
            kafka_acceptor: TlsAcceptor::from(Arc::new(kafka)),
            mutual: files.ca.is_some(),
            listeners: if config.kafka_listen.is_empty() {
                vec![GRPC_LISTENER]
            } else {
                vec![GRPC_LISTENER, KAFKA_LISTENER]
            },
            mapper,
        })))
    }

    /// The Kafka listener's acceptor (same certificate and CA as gRPC).
    pub fn kafka_acceptor(&self) -> &TlsAcceptor {
        &self.kafka_acceptor
    }

    /// Whether every peer presents a certificate signed by `tls_ca` (mutual
    /// TLS), so that it has a principal.
    pub fn is_mutual(&self) -> bool {
        self.mutual
    }

    /// Accepts connections and runs each handshake in its own task; the
    /// stream yields the connections whose handshake succeeded (a peer
    /// without a valid certificate is dropped here, and logged at debug).
    pub fn incoming(
        self: &Arc<Self>,
        listener: TcpListener,
        metrics: Arc<BrokerMetrics>,
        shutdown: CancellationToken,
    ) -> ReceiverStream<std::io::Result<TlsStream<Counted<TcpStream>>>> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let tls = self.clone();
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(err) => {
                            tracing::warn!(error = %err, "accept failed");
                            continue;
                        }
                    },
                    _ = shutdown.cancelled() => return,
                };
                let _ = stream.set_nodelay(true);
                let stream = Counted::new(stream, metrics.connection_opened(metrics::GRPC_LISTENER));
                let (tls, tx) = (tls.clone(), tx.clone());
                tokio::spawn(async move {
                    let handshake = tokio::time::timeout(Duration::from_secs(10), tls.acceptor.accept(stream)).await;
                    match handshake {
                        Ok(Ok(conn)) => {
                            let principal = conn
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .and_then(|c| tls.mapper.map_der(c));
                            match principal {
                                Some(p) => tracing::debug!(%peer, principal = %p, "TLS connection"),
                                None => tracing::debug!(%peer, "TLS connection without a principal"),
                            }
                            let _ = tx.send(Ok(conn)).await;
                        }
                        Ok(Err(err)) => tracing::debug!(%peer, error = %err, "TLS handshake refused"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        ReceiverStream::new(rx)
    }

    /// Reloads the certificate on SIGHUP and when its files change (checked
    /// every second), and keeps the expiry metric current. A bad new file
    /// is logged and the old certificate stays.
    pub async fn reload_loop(self: Arc<Self>, metrics: Arc<BrokerMetrics>, shutdown: CancellationToken) {
        let info = self.cert.info();
        for listener in &self.listeners {
            metrics.set_certificate_expiry(listener, &info.subject, info.not_after, None);
        }
        let mut subject = info.subject;
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let forced = tokio::select! {
                _ = async { match hup.as_mut() { Some(h) => { h.recv().await; } None => std::future::pending().await } } => true,
                _ = tick.tick() => false,
                _ = shutdown.cancelled() => return,
            };
            let reloaded = if forced { self.cert.reload().map(Some) } else { self.cert.reload_if_changed() };
            match reloaded {
                Ok(Some(info)) => {
                    tracing::info!(file = %self.cert.cert_path().display(), subject = %info.subject, "TLS certificate reloaded");
                    for listener in &self.listeners {
                        metrics.set_certificate_expiry(listener, &info.subject, info.not_after, Some(&subject));
                    }
                    subject = info.subject;
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "TLS certificate reload failed; keeping the old one"),
            }
        }
    }
}
