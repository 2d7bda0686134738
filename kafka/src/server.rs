//! The Kafka listener: accepts connections and serves each one request at
//! a time, in order (as Kafka's socket server mutes a connection while its
//! request is handled, so the pipelined produces of one connection append
//! in the order sent). Every request is counted and timed in the same
//! `kafka_network_requestmetrics_*` families as gRPC, under Kafka's API name.
//!
//! With the broker's TLS (`tls_cert`, ...) the listener speaks TLS only
//! (Kafka's `SSL` security protocol), with the same certificate as gRPC,
//! reloaded with it. With `tls_ca` (mutual TLS) a client must present a
//! certificate signed by it, and ACLs are checked against the principal its
//! subject maps to (`tls_principal_mapping_rules`); a certificate no rule
//! maps is refused. Otherwise the principal is `User:ANONYMOUS`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, RequestKind, ResponseKind};
use kmon_broker::Broker;
use kmon_broker::authorizer::ANONYMOUS;
use kmon_broker::metrics::RequestTiming;
use kmon_broker::tls::BrokerTls;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::sasl::{After, SaslSession};
use crate::api::{self, Handled};
use crate::error::KafkaError;
use crate::frame::{self, FrameError, Request};

/// The listener name in `kafka_server_socket_server_metrics_connection_count`
/// (Kafka's default listener name).
pub const LISTENER: &str = "PLAINTEXT";
/// The listener name when it speaks TLS (Kafka's name for it).
pub const TLS_LISTENER: &str = "SSL";
/// Bound on a client's TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves Kafka clients on `listener` until `shutdown`; waits for open
/// connections to finish their current request.
pub fn serve(
    listener: TcpListener,
    broker: Arc<Broker>,
    tls: Option<Arc<BrokerTls>>,
    shutdown: CancellationToken,
) -> BoxFuture<'static, ()> {
    Box::pin(accept_loop(listener, broker, tls, shutdown))
}

async fn accept_loop(
    listener: TcpListener,
    broker: Arc<Broker>,
    tls: Option<Arc<BrokerTls>>,
    shutdown: CancellationToken,
) {
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let (broker, shutdown) = (broker.clone(), shutdown.clone());
                match tls.clone() {
                    None => connections.spawn(connection(stream, peer, ANONYMOUS.into(), LISTENER, broker, shutdown)),
                    Some(tls) => connections.spawn(async move {
                        // A handshake never finished must not hold up shutdown.
                        let shaken = tokio::select! {
                            shaken = handshake(&tls, stream, peer) => shaken,
                            _ = shutdown.cancelled() => None,
                        };
                        if let Some((stream, principal)) = shaken {
                            connection(stream, peer, principal, TLS_LISTENER, broker, shutdown).await;
                        }
                    }),
                };
            }
            // Out of file descriptors and the like: keep serving the others.
            Err(err) => {
                tracing::warn!(error = %err, "kafka listener: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    connections.close();
    connections.wait().await;
}

/// The TLS handshake and the client's principal; `None` (logged) when the
/// handshake fails or a client certificate maps to no principal.
async fn handshake(
    tls: &BrokerTls,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<(tokio_rustls::server::TlsStream<TcpStream>, String)> {
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.kafka_acceptor().accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => {
            tracing::debug!(%peer, error = %err, "kafka listener: TLS handshake refused");
            return None;
        }
        Err(_) => {
            tracing::debug!(%peer, "kafka listener: TLS handshake timed out");
            return None;
        }
    };
    if !tls.is_mutual() {
        return Some((stream, ANONYMOUS.into()));
    }
    let certificate = stream.get_ref().1.peer_certificates().and_then(|c| c.first());
    match certificate.and_then(|c| tls.mapper.map_der(c)) {
        Some(principal) => {
            tracing::debug!(%peer, %principal, "kafka listener: TLS connection");
            Some((stream, principal.to_string()))
        }
        None => {
            tracing::warn!(%peer, "kafka listener: no tls_principal_mapping_rules rule maps the client certificate; refused");
            None
        }
    }
}

/// Serves one connection (plain or TLS) whose client is `principal`.
async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: SocketAddr,
    principal: String,
    listener: &'static str,
    broker: Arc<Broker>,
    shutdown: CancellationToken,
) {
    let _counted = broker.metrics.connection_opened(listener);
    let max = broker.config.socket_request_max_bytes;
    // One request at a time: reads and writes take turns on one stream.
    let mut reader = BufReader::with_capacity(64 << 10, stream);
    let mut sasl = SaslSession::new(&broker, principal);
    loop {
        let frame = tokio::select! {
            frame = read_frame(&mut reader, max) => frame,
            _ = shutdown.cancelled() => return,
        };
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(%peer, error = %err, "kafka listener: closing connection");
                return;
            }
        };
        let arrived = Instant::now();
        let served = serve_one(frame, &broker, peer, &mut sasl, &shutdown).await;
        let (reply, after) = match served {
            Ok(reply) => reply,
            Err(err) => {
                tracing::warn!(%peer, error = %err, "kafka listener: closing connection");
                return;
            }
        };
        if let Some((name, bytes)) = reply {
            if name == "Produce" && kmon_broker::fault::drop_this_produce_response() {
                tracing::warn!(%peer, "fault injection: Produce written, its response dropped, connection closed");
                return;
            }
            let sending = Instant::now();
            // The flush pushes out what TLS still buffers (a no-op on plain TCP).
            let written = async {
                reader.write_all(&bytes).await?;
                reader.flush().await
            };
            if let Err(err) = written.await {
                tracing::debug!(%peer, error = %err, "kafka listener: client went away");
                return;
            }
            broker.metrics.observe_response(name, sending.elapsed(), arrived.elapsed());
        }
        if after == After::Close {
            let _ = reader.flush().await;
            return;
        }
    }
}

/// One request: its response frame (None for acks=0 produce, which Kafka
/// never answers) and whether the connection closes after it (a failed
/// SASL authentication), or the error that closes it at once.
async fn serve_one(
    frame: Bytes,
    broker: &Broker,
    peer: SocketAddr,
    sasl: &mut SaslSession,
    shutdown: &CancellationToken,
) -> Result<(Option<(&'static str, Bytes)>, After), KafkaError> {
    let decoding = Instant::now();
    let request = match frame::decode_request(frame) {
        Ok(request) => request,
        // An old ApiVersions from a newer client: answer with what is
        // served, at v0, so the client can pick (Kafka's behaviour).
        Err(FrameError::UnsupportedVersion { name: "ApiVersions", correlation_id, .. }) => {
            let response = ApiVersionsResponse::default()
                .with_error_code(kafka_protocol::ResponseError::UnsupportedVersion.code())
                .with_api_keys(api::api_versions::served_keys());
            let bytes =
                frame::encode_response(ApiKey::ApiVersions, 0, correlation_id, &ResponseKind::ApiVersions(response))?;
            return Ok((Some(("ApiVersions", bytes)), After::Continue));
        }
        Err(err) => return Err(err.into()),
    };
    let (api, version, correlation_id) = (request.api, request.version, request.header.correlation_id);
    if !sasl.admits(api.key) {
        return Err(KafkaError::SaslRequired { api: api.name });
    }
    let started = Instant::now();
    let mut after = After::Continue;
    let Handled { response, remote } = match request.body {
        RequestKind::SaslHandshake(r) => {
            let (response, then) = sasl.handshake(r);
            after = then;
            Handled { response: Some(ResponseKind::SaslHandshake(response)), remote: Duration::ZERO }
        }
        RequestKind::SaslAuthenticate(r) => {
            let (response, then) = sasl.authenticate(broker, r);
            after = then;
            Handled { response: Some(ResponseKind::SaslAuthenticate(response)), remote: Duration::ZERO }
        }
        body => api::handle(broker, Request { body, ..request }, peer, sasl.principal(), shutdown).await,
    };
    let handled = started.elapsed();
    broker.metrics.observe_request(
        api.name,
        RequestTiming {
            queue: started.saturating_duration_since(decoding),
            local: handled.saturating_sub(remote),
            remote: remote.min(handled),
        },
    );
    match response {
        Some(response) => {
            let bytes = frame::encode_response(api.key, version, correlation_id, &response)?;
            Ok((Some((api.name, bytes)), after))
        }
        None => Ok((None, after)),
    }
}

/// Reads one size-prefixed frame; `None` at a clean end of stream.
async fn read_frame<R: AsyncReadExt + Unpin>(reader: &mut R, max: u32) -> Result<Option<Bytes>, KafkaError> {
    let size = match reader.read_i32().await {
        Ok(size) => size,
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    if size < 0 || size as u32 > max {
        return Err(KafkaError::FrameTooLarge { size: i64::from(size), max });
    }
    let mut buf = BytesMut::zeroed(size as usize);
    reader.read_exact(&mut buf).await?;
    Ok(Some(buf.freeze()))
}
