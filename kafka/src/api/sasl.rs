//! SaslHandshake and SaslAuthenticate (Kafka's SASL_PLAINTEXT / SASL_SSL):
//! a connection of a listener with `kafka_sasl_mechanisms` must
//! authenticate with SCRAM-SHA-512 before any request but ApiVersions;
//! its principal is then `User:<name>`. Users and their salted
//! credentials are in the metadata quorum (`kmon user add`).
//!
//! ```text
//! ApiVersions → SaslHandshake(SCRAM-SHA-512) → SaslAuthenticate(client-first)
//!   → server-first → SaslAuthenticate(client-final) → server-final: authenticated
//! ```
//!
//! A failed exchange answers SASL_AUTHENTICATION_FAILED and the connection
//! closes, as Kafka's does.

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use kmon_broker::Broker;
use kmon_tls::ScramServer;
use kmon_tls::scram::MECHANISM;

/// The SASL state of one connection.
#[derive(Debug)]
pub struct SaslSession {
    /// Whether the listener requires SASL at all.
    required: bool,
    state: State,
    principal: String,
}

#[derive(Debug)]
enum State {
    /// No handshake yet.
    Start,
    /// SCRAM chosen; the exchange is under way.
    Exchange(ScramServer),
    Authenticated,
}

/// What the connection does after a SASL answer.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
    Continue,
    /// Authentication failed: send the answer, then close.
    Close,
}

impl SaslSession {
    /// `principal`: the connection's principal without SASL (TLS, or
    /// `User:ANONYMOUS`), kept when SASL is not required.
    pub fn new(broker: &Broker, principal: String) -> SaslSession {
        let required = !broker.config.kafka_sasl_mechanism_list().is_empty();
        SaslSession { required, state: State::Start, principal }
    }

    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// Whether a request of `key` may be served now: before authenticating
    /// only ApiVersions and the SASL requests are.
    pub fn admits(&self, key: ApiKey) -> bool {
        !self.required
            || matches!(self.state, State::Authenticated)
            || matches!(key, ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate)
    }

    pub fn handshake(&mut self, request: SaslHandshakeRequest) -> (SaslHandshakeResponse, After) {
        let offered = if self.required { vec![StrBytes::from_static_str(MECHANISM)] } else { Vec::new() };
        let response = SaslHandshakeResponse::default().with_mechanisms(offered);
        if !self.required {
            return (response.with_error_code(ResponseError::UnsupportedSaslMechanism.code()), After::Close);
        }
        if !matches!(self.state, State::Start) {
            return (response.with_error_code(ResponseError::IllegalSaslState.code()), After::Close);
        }
        if !request.mechanism.eq_ignore_ascii_case(MECHANISM) {
            tracing::debug!(mechanism = %request.mechanism.as_str(), "kafka listener: SASL mechanism refused");
            return (response.with_error_code(ResponseError::UnsupportedSaslMechanism.code()), After::Close);
        }
        self.state = State::Exchange(ScramServer::new());
        (response, After::Continue)
    }

    pub fn authenticate(
        &mut self,
        broker: &Broker,
        request: SaslAuthenticateRequest,
    ) -> (SaslAuthenticateResponse, After) {
        let State::Exchange(server) = &mut self.state else {
            let message = "SaslAuthenticate before a SCRAM-SHA-512 SaslHandshake";
            return (failure(ResponseError::IllegalSaslState, message.into()), After::Close);
        };
        let first = server.is_at_first_message();
        let outcome = if first {
            server
                .client_first(&request.auth_bytes, |user| broker.metadata().scram_users.get(user).cloned())
                .map(|server_first| (server_first, None))
        } else {
            server.client_final(&request.auth_bytes).map(|(user, server_final)| (server_final, Some(user)))
        };
        match outcome {
            Ok((bytes, user)) => {
                if let Some(user) = user {
                    broker.metrics.authentication(true);
                    self.principal = format!("User:{user}");
                    self.state = State::Authenticated;
                    tracing::debug!(principal = %self.principal, "kafka listener: SASL/SCRAM authenticated");
                }
                (SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(bytes)), After::Continue)
            }
            Err(err) => {
                tracing::info!(error = %err, "kafka listener: SASL/SCRAM authentication failed");
                broker.metrics.authentication(false);
                (failure(ResponseError::SaslAuthenticationFailed, err.to_string()), After::Close)
            }
        }
    }
}

fn failure(error: ResponseError, message: String) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default().with_error_code(error.code()).with_error_message(Some(StrBytes::from(message)))
}
