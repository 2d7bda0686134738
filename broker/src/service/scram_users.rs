//! UpsertScramUser, DeleteScramUser, ListScramUsers: the Kafka listener's
//! SASL/SCRAM users in the quorum. The request carries the salted
//! password; the broker derives and keeps only the stored and server keys.

use kmon_proto::v1 as pb;
use kmon_tls::ScramCredential;
use kmon_tls::scram::MECHANISM;
use tonic::Status;

use crate::broker::Broker;
use crate::error::BrokerError;

pub(super) async fn upsert(
    broker: &Broker,
    req: pb::UpsertScramUserRequest,
) -> Result<pb::UpsertScramUserResponse, Status> {
    if !req.mechanism.eq_ignore_ascii_case(MECHANISM) {
        return Err(BrokerError::InvalidRequest(format!(
            "SCRAM mechanism {:?} is not supported (only {MECHANISM})",
            req.mechanism
        ))
        .into());
    }
    let credential = ScramCredential::from_salted_password(&req.salted_password, req.salt.to_vec(), req.iterations)
        .map_err(|e| BrokerError::InvalidRequest(format!("SCRAM credential of {:?}: {e}", req.user)))?;
    Ok(pb::UpsertScramUserResponse { replaced: broker.upsert_scram_user(&req.user, credential).await? })
}

pub(super) async fn delete(
    broker: &Broker,
    req: pb::DeleteScramUserRequest,
) -> Result<pb::DeleteScramUserResponse, Status> {
    broker.delete_scram_user(&req.user).await?;
    Ok(pb::DeleteScramUserResponse {})
}

pub(super) fn list(broker: &Broker) -> pb::ListScramUsersResponse {
    let users = broker
        .metadata()
        .scram_users
        .iter()
        .map(|(user, c)| pb::ScramUser { user: user.clone(), mechanism: MECHANISM.into(), iterations: c.iterations })
        .collect();
    pb::ListScramUsersResponse { users }
}
