//! CreateAcls, ListAcls, DeleteAcls: wire ACLs (enumerations by name) ↔
//! the quorum's [`AclBinding`].

use kmon_proto::v1 as pb;
use tonic::Status;

use crate::broker::Broker;
use crate::controller::state::acls::AclBinding;
use crate::error::BrokerError;

pub(super) async fn create(broker: &Broker, req: pb::CreateAclsRequest) -> Result<pb::CreateAclsResponse, Status> {
    let acls = from_wire(req.acls)?;
    Ok(pb::CreateAclsResponse { created: broker.create_acls(acls).await? })
}

pub(super) fn list(broker: &Broker) -> pb::ListAclsResponse {
    pb::ListAclsResponse { acls: broker.metadata().acls.iter().map(to_wire).collect() }
}

pub(super) async fn delete(broker: &Broker, req: pb::DeleteAclsRequest) -> Result<pb::DeleteAclsResponse, Status> {
    let acls = from_wire(req.acls)?;
    Ok(pb::DeleteAclsResponse { deleted: broker.delete_acls(acls).await? })
}

fn from_wire(acls: Vec<pb::AclBinding>) -> Result<Vec<AclBinding>, BrokerError> {
    if acls.is_empty() {
        return Err(BrokerError::InvalidRequest("no ACL given".into()));
    }
    acls.into_iter()
        .map(|a| {
            let bad = |e: String| BrokerError::InvalidRequest(format!("ACL for {}: {e}", a.principal));
            Ok(AclBinding {
                resource_type: a.resource_type.parse().map_err(bad)?,
                pattern_type: a.pattern_type.parse().map_err(bad)?,
                operation: a.operation.parse().map_err(bad)?,
                permission: a.permission.parse().map_err(bad)?,
                principal: a.principal,
                resource_name: a.resource_name,
            })
        })
        .collect()
}

fn to_wire(acl: &AclBinding) -> pb::AclBinding {
    pb::AclBinding {
        principal: acl.principal.clone(),
        resource_type: acl.resource_type.name().into(),
        pattern_type: acl.pattern_type.name().into(),
        resource_name: acl.resource_name.clone(),
        operation: acl.operation.name().into(),
        permission: acl.permission.name().into(),
    }
}
