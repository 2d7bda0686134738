//! Who may do what: the principal of a request (mutual TLS subject, or
//! `User:ANONYMOUS`) checked against the ACLs in the metadata quorum
//! ([`crate::controller::state::acls`]) and the configured super users.
//! Every refusal is counted (`kmon_authorizer_denied_total`) and becomes
//! [`BrokerError::AuthorizationFailed`], which names the principal, the
//! operation and the resource.

use std::sync::Arc;

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
    super_users: Vec<String>,
    allow_everyone_if_no_acl_found: bool,
    mapper: PrincipalMapper,
    state: watch::Receiver<Arc<ClusterState>>,
    metrics: Arc<BrokerMetrics>,
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
        state: watch::Receiver<Arc<ClusterState>>,
        metrics: Arc<BrokerMetrics>,
    ) -> Authorizer {
        Authorizer {
            super_users: config.super_user_list().unwrap_or_default(),
            allow_everyone_if_no_acl_found: config.allow_everyone_if_no_acl_found,
            mapper: PrincipalMapper::parse(&config.tls_principal_mapping_rules).unwrap_or_default(),
            state,
            metrics,
        }
    }

    /// The principal of a gRPC request: its client certificate's subject
    /// mapped by `tls_principal_mapping_rules`, else `User:ANONYMOUS`.
    pub fn principal_of<T>(&self, request: &tonic::Request<T>) -> String {
        match crate::tls::principal(request, &self.mapper) {
            Some(principal) => principal.to_string(),
            None => ANONYMOUS.to_string(),
        }
    }

    /// Whether `principal` may do `operation` on `resource` (not counted:
    /// for filtering listings).
    pub fn allows(&self, principal: &str, operation: AclOperation, resource: &Resource<'_>) -> bool {
        if self.super_users.iter().any(|u| u == principal) {
            return true;
        }
        let state = self.state.borrow();
        acls::decide(&state.acls, principal, operation, resource, self.allow_everyone_if_no_acl_found).allowed()
    }

    /// [`Authorizer::allows`], or a counted refusal naming who, what and which.
    pub fn authorize(&self, principal: &str, operation: AclOperation, resource: &Resource<'_>) -> Result<()> {
        if self.allows(principal, operation, resource) {
            return Ok(());
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

    /// Checks a whole gRPC request against one operation on one resource.
    pub fn check<T>(
        &self,
        request: &tonic::Request<T>,
        operation: AclOperation,
        resource: &Resource<'_>,
    ) -> Result<()> {
        self.authorize(&self.principal_of(request), operation, resource)
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
