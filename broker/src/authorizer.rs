//! Who may do what: the principal of a request (mutual TLS subject, or
//! `User:ANONYMOUS`) checked against the ACLs in the metadata quorum
//! ([`crate::controller::state::acls`]) and the configured super users.
//! Every refusal is counted (`kmon_authorizer_denied_total`) and becomes
//! [`BrokerError::AuthorizationFailed`], which names the principal, the
//! operation and the resource.

use std::sync::Arc;

use kmon_client::connection::SCRAM_METADATA_KEY;
use kmon_tls::PrincipalMapper;
use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::controller::state::ClusterState;
use crate::controller::state::acls::{self, AclOperation, Resource};
use crate::error::{BrokerError, Result};
use crate::metrics::BrokerMetrics;

/// The principal of a client that proved no identity (plain text, or a
/// listener without TLS), as Kafka names it.
pub const ANONYMOUS: &str = "User:ANONYMOUS";

pub struct Authorizer {
    /// This broker and its process's incarnation: until that registration
    /// is in the metadata, ACLs added while the broker was down may be
    /// missing, so only super users and ClusterAction get through (Kafka's
    /// StandardAuthorizer is likewise not ready before it catches up).
    me: (i32, u64),
    super_users: Vec<String>,
    allow_everyone_if_no_acl_found: bool,
    mapper: PrincipalMapper,
    state: watch::Receiver<Arc<ClusterState>>,
    metrics: Arc<BrokerMetrics>,
    /// SCRAM tokens already checked: hash of the token → the stored key it
    /// matched (a changed password changes the stored key).
    verified: parking_lot::Mutex<std::collections::HashMap<Vec<u8>, Vec<u8>>>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer").field("super_users", &self.super_users).finish()
    }
}

impl Authorizer {
    /// `config` has been validated (super users, mapping rules).
    pub fn new(
        config: &BrokerConfig,
        incarnation: u64,
        state: watch::Receiver<Arc<ClusterState>>,
        metrics: Arc<BrokerMetrics>,
    ) -> Authorizer {
        Authorizer {
            me: (config.broker_id, incarnation),
            super_users: config.super_user_list().unwrap_or_default(),
            allow_everyone_if_no_acl_found: config.allow_everyone_if_no_acl_found,
            mapper: PrincipalMapper::parse(&config.tls_principal_mapping_rules).unwrap_or_default(),
            state,
            metrics,
            verified: Default::default(),
        }
    }

    /// The principal of a gRPC request: its client certificate's subject
    /// mapped by `tls_principal_mapping_rules`; else the SCRAM user whose
    /// credentials it carries (`kmon-scram-sha-512` metadata, checked
    /// against the user's salted credential in the quorum); else
    /// `User:ANONYMOUS`. Credentials that do not match are an error.
    pub fn principal_of<T>(&self, request: &tonic::Request<T>) -> Result<String> {
        if let Some(principal) = crate::tls::principal(request, &self.mapper) {
            return Ok(principal.to_string());
        }
        match request.metadata().get(SCRAM_METADATA_KEY) {
            Some(token) => self.scram_user(token.to_str().unwrap_or_default()).map(|user| format!("User:{user}")),
            None => Ok(ANONYMOUS.to_string()),
        }
    }

    /// The user of `base64(user:password)` if the password derives the
    /// user's stored key. PBKDF2 is slow on purpose: a match is remembered
    /// (by a hash of the token, for that stored key) so that only a
    /// connection's first request pays for it.
    fn scram_user(&self, token: &str) -> Result<String> {
        use base64::Engine;
        let failed = || BrokerError::AuthenticationFailed("invalid SCRAM credentials".into());
        let decoded = base64::engine::general_purpose::STANDARD.decode(token).map_err(|_| failed())?;
        let text = String::from_utf8(decoded).map_err(|_| failed())?;
        let (user, password) = text.split_once(':').ok_or_else(failed)?;
        let Some(credential) = self.state.borrow().scram_users.get(user).cloned() else {
            self.metrics.authentication(false);
            return Err(failed());
        };
        let fingerprint = ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref().to_vec();
        let remembered = self.verified.lock().get(&fingerprint) == Some(&credential.stored_key);
        if !remembered {
            let derived =
                kmon_tls::scram::salted_password(password.as_bytes(), &credential.salt, credential.iterations)
                    .and_then(|salted| {
                        kmon_tls::ScramCredential::from_salted_password(
                            &salted,
                            credential.salt.clone(),
                            credential.iterations,
                        )
                    });
            if derived.ok().map(|d| d.stored_key) != Some(credential.stored_key.clone()) {
                self.metrics.authentication(false);
                return Err(failed());
            }
            let mut verified = self.verified.lock();
            // Bounded: a flood of distinct good tokens only re-derives.
            if verified.len() >= 1024 {
                verified.clear();
            }
            verified.insert(fingerprint, credential.stored_key);
            self.metrics.authentication(true);
        }
        Ok(user.to_string())
    }

    /// Whether `principal` may do `operation` on `resource` (not counted:
    /// for filtering listings).
    pub fn allows(&self, principal: &str, operation: AclOperation, resource: &Resource<'_>) -> bool {
        if self.super_users.iter().any(|u| u == principal) {
            return true;
        }
        let state = self.state.borrow();
        if operation != AclOperation::ClusterAction && !self.caught_up(&state) {
            return false;
        }
        acls::decide(&state.acls, principal, operation, resource, self.allow_everyone_if_no_acl_found).allowed()
    }

    /// Whether this process's registration is in the metadata it applied:
    /// everything committed before it, ACLs included, is applied too.
    fn caught_up(&self, state: &ClusterState) -> bool {
        let (id, incarnation) = self.me;
        state.brokers.get(&id).is_some_and(|b| b.incarnation == incarnation)
    }

    /// [`Authorizer::allows`], or a counted refusal naming who, what and which.
    pub fn authorize(&self, principal: &str, operation: AclOperation, resource: &Resource<'_>) -> Result<()> {
        if self.allows(principal, operation, resource) {
            return Ok(());
        }
        if !self.caught_up(&self.state.borrow()) {
            return Err(BrokerError::Unavailable(
                "this broker has not caught up with the metadata quorum since it started (its ACLs may be stale); retry"
                    .into(),
            ));
        }
        self.metrics.authorizer_denied(principal, resource.resource_type.name());
        tracing::debug!(principal, %operation, resource_type = %resource.resource_type, resource = resource.name, "request denied");
        Err(BrokerError::AuthorizationFailed {
            principal: principal.to_string(),
            operation,
            resource_type: resource.resource_type,
            resource_name: resource.name.to_string(),
        })
    }

    /// Kafka's rule for creating a topic: Create on the cluster, or on the topic.
    pub fn authorize_create_topic(&self, principal: &str, topic: &str) -> Result<()> {
        if self.allows(principal, AclOperation::Create, &Resource::cluster()) {
            return Ok(());
        }
        self.authorize(principal, AclOperation::Create, &Resource::topic(topic))
    }

    /// Kafka's rule for an idempotent producer's id (KIP-679): Write on
    /// any topic, or on the cluster (Kafka's IdempotentWrite); refused as
    /// Write on the cluster.
    pub fn authorize_idempotent_write(&self, principal: &str) -> Result<()> {
        let topics: Vec<String> = self.state.borrow().topics.keys().cloned().collect();
        let any_topic = topics.iter().any(|t| self.allows(principal, AclOperation::Write, &Resource::topic(t)));
        if any_topic {
            return Ok(());
        }
        self.authorize(principal, AclOperation::Write, &Resource::cluster())
    }

    /// Checks a whole gRPC request against one operation on one resource.
    pub fn check<T>(
        &self,
        request: &tonic::Request<T>,
        operation: AclOperation,
        resource: &Resource<'_>,
    ) -> Result<()> {
        self.authorize(&self.principal_of(request)?, operation, resource)
    }

    /// A tonic interceptor for internal services every call of which needs
    /// ClusterAction on the cluster (replication, the metadata quorum):
    /// what other brokers do.
    pub fn cluster_action_interceptor(
        self: &Arc<Self>,
    ) -> impl FnMut(tonic::Request<()>) -> std::result::Result<tonic::Request<()>, tonic::Status> + Clone + use<> {
        let this = self.clone();
        move |request: tonic::Request<()>| {
            this.check(&request, AclOperation::ClusterAction, &Resource::cluster())?;
            Ok(request)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::state::BrokerRecord;

    #[test]
    fn before_its_registration_is_applied_only_cluster_action_and_super_users_pass() {
        let config = BrokerConfig { broker_id: 7, super_users: "User:admin".into(), ..BrokerConfig::default() };
        let (tx, rx) = watch::channel(Arc::new(ClusterState::default()));
        let authorizer = Authorizer::new(&config, 42, rx, Arc::new(BrokerMetrics::new(true)));
        let topic = Resource::topic("orders");
        // No ACLs at all would allow everything, but the metadata may be stale.
        assert!(!authorizer.allows(ANONYMOUS, AclOperation::Read, &topic));
        let err = authorizer.authorize(ANONYMOUS, AclOperation::Read, &topic).unwrap_err();
        assert!(matches!(&err, BrokerError::Unavailable(m) if m.contains("caught up")), "{err:?}");
        assert!(authorizer.allows(ANONYMOUS, AclOperation::ClusterAction, &Resource::cluster()));
        assert!(authorizer.allows("User:admin", AclOperation::Read, &topic));

        // The previous process's registration does not count.
        let mut state = ClusterState::default();
        let record = BrokerRecord { incarnation: 41, ..BrokerRecord::local(7, 0, 0) };
        state.brokers.insert(7, record.clone());
        tx.send(Arc::new(state.clone())).unwrap();
        assert!(!authorizer.allows(ANONYMOUS, AclOperation::Read, &topic));

        state.brokers.insert(7, BrokerRecord { incarnation: 42, ..record });
        tx.send(Arc::new(state)).unwrap();
        assert!(authorizer.allows(ANONYMOUS, AclOperation::Read, &topic));
    }
}
