//! Access control lists, as Kafka's `StandardAuthorizer` keeps them in its
//! metadata quorum: who (principal) may or may not (allow / deny) do what
//! (operation) to which resource (topic, group or the cluster; by literal
//! name or name prefix). The decision rules are in [`AclSet::decide`].

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The name of the one cluster resource (Kafka's `kafka-cluster`).
pub const CLUSTER_RESOURCE: &str = "kafka-cluster";
/// The principal every client matches (`User:*`) and the literal name that
/// matches every resource of its type (`*`).
pub const WILDCARD: &str = "*";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PatternType {
    /// The name as given; `*` matches every name.
    Literal,
    /// Every name that starts with the given text.
    Prefixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AclOperation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AclPermission {
    Allow,
    Deny,
}

/// One ACL: `principal` is `User:NAME` or `User:*`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub principal: String,
    pub resource_type: ResourceType,
    pub pattern_type: PatternType,
    pub resource_name: String,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

/// The resource a request touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource<'a> {
    pub resource_type: ResourceType,
    pub name: &'a str,
}

impl<'a> Resource<'a> {
    pub fn topic(name: &'a str) -> Self {
        Resource { resource_type: ResourceType::Topic, name }
    }
    pub fn group(name: &'a str) -> Self {
        Resource { resource_type: ResourceType::Group, name }
    }
    pub fn cluster() -> Self {
        Resource { resource_type: ResourceType::Cluster, name: CLUSTER_RESOURCE }
    }
}

/// Why a request was allowed or denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No ACL exists at all: authorization is off.
    NoAcls,
    Allowed,
    /// A DENY ACL matches (it beats any ALLOW).
    Denied,
    /// No ALLOW ACL matches the principal and operation.
    NotAllowed,
    /// No ACL names the resource; `allow_everyone_if_no_acl_found` decided.
    NoAclForResource {
        allowed: bool,
    },
}

impl Decision {
    pub fn allowed(self) -> bool {
        matches!(self, Decision::NoAcls | Decision::Allowed | Decision::NoAclForResource { allowed: true })
    }
}

impl AclBinding {
    fn matches_resource(&self, resource: &Resource<'_>) -> bool {
        self.resource_type == resource.resource_type
            && match self.pattern_type {
                PatternType::Literal => self.resource_name == resource.name || self.resource_name == WILDCARD,
                PatternType::Prefixed => resource.name.starts_with(&self.resource_name),
            }
    }

    fn matches_principal(&self, principal: &str) -> bool {
        self.principal == principal || self.principal == "User:*"
    }

    /// Kafka's implied operations: ALL covers everything; an ALLOW of Read,
    /// Write, Delete or Alter also allows Describe.
    fn covers(&self, operation: AclOperation) -> bool {
        use AclOperation::*;
        self.operation == All
            || self.operation == operation
            || (self.permission == AclPermission::Allow
                && operation == Describe
                && matches!(self.operation, Read | Write | Delete | Alter))
    }
}

/// The ACLs of the cluster, ordered so listings are stable.
pub type AclSet = BTreeSet<AclBinding>;

/// Kafka's `StandardAuthorizer` rules, super users aside: with no ACL at
/// all everything is allowed (so a cluster without ACLs behaves as before
/// they existed); a matching DENY beats any ALLOW; a resource no ACL names
/// is allowed only with `allow_everyone_if_no_acl_found`; otherwise a
/// matching ALLOW is needed.
pub fn decide(
    acls: &AclSet,
    principal: &str,
    operation: AclOperation,
    resource: &Resource<'_>,
    allow_everyone_if_no_acl_found: bool,
) -> Decision {
    if acls.is_empty() {
        return Decision::NoAcls;
    }
    let mut named = false;
    let mut allowed = false;
    for acl in acls.iter().filter(|a| a.matches_resource(resource)) {
        named = true;
        if !acl.matches_principal(principal) || !acl.covers(operation) {
            continue;
        }
        match acl.permission {
            AclPermission::Deny => return Decision::Denied,
            AclPermission::Allow => allowed = true,
        }
    }
    if !named {
        Decision::NoAclForResource { allowed: allow_everyone_if_no_acl_found }
    } else if allowed {
        Decision::Allowed
    } else {
        Decision::NotAllowed
    }
}

macro_rules! names {
    ($ty:ident { $($variant:ident = $name:literal),* $(,)? }) => {
        impl $ty {
            pub const NAMES: &'static [&'static str] = &[$($name),*];
            pub fn name(self) -> &'static str {
                match self { $($ty::$variant => $name),* }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
        impl FromStr for $ty {
            type Err = String;
            /// Case-insensitive, `-` and `_` ignored (`cluster-action`, `ClusterAction`).
            fn from_str(s: &str) -> Result<Self, String> {
                let key: String = s.chars().filter(|c| *c != '-' && *c != '_').collect::<String>().to_lowercase();
                $(if key == $name.to_lowercase() { return Ok($ty::$variant); })*
                Err(format!("unknown {} '{s}' (one of: {})", stringify!($ty), Self::NAMES.join(", ")))
            }
        }
    };
}

names!(ResourceType { Topic = "Topic", Group = "Group", Cluster = "Cluster" });
names!(PatternType { Literal = "Literal", Prefixed = "Prefixed" });
names!(AclOperation {
    All = "All",
    Read = "Read",
    Write = "Write",
    Create = "Create",
    Delete = "Delete",
    Alter = "Alter",
    Describe = "Describe",
    ClusterAction = "ClusterAction",
});
names!(AclPermission { Allow = "Allow", Deny = "Deny" });

impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} on {} {} '{}'",
            self.permission, self.principal, self.operation, self.pattern_type, self.resource_type, self.resource_name
        )
    }
}

/// Checks an ACL before it is proposed: a `User:` principal, a non-empty
/// name, the cluster only as `kafka-cluster`, operations that exist for the
/// resource type.
pub fn validate(acl: &AclBinding) -> Result<(), String> {
    let Some(name) = acl.principal.strip_prefix("User:") else {
        return Err(format!("principal '{}' must be User:NAME or User:*", acl.principal));
    };
    if name.is_empty() {
        return Err(format!("principal '{}' has an empty name", acl.principal));
    }
    if acl.resource_name.is_empty() {
        return Err(format!("the {} name must not be empty", acl.resource_type));
    }
    use AclOperation::*;
    let fits = match acl.resource_type {
        ResourceType::Cluster => {
            if acl.resource_name != CLUSTER_RESOURCE || acl.pattern_type != PatternType::Literal {
                return Err(format!("the cluster resource is the literal '{CLUSTER_RESOURCE}'"));
            }
            matches!(acl.operation, All | Create | Alter | Describe | ClusterAction)
        }
        ResourceType::Topic => matches!(acl.operation, All | Read | Write | Create | Delete | Alter | Describe),
        ResourceType::Group => matches!(acl.operation, All | Read | Delete | Describe),
    };
    if !fits {
        return Err(format!("operation {} does not apply to a {}", acl.operation, acl.resource_type));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(
        principal: &str,
        rt: ResourceType,
        pt: PatternType,
        name: &str,
        op: AclOperation,
        p: AclPermission,
    ) -> AclBinding {
        AclBinding {
            principal: principal.into(),
            resource_type: rt,
            pattern_type: pt,
            resource_name: name.into(),
            operation: op,
            permission: p,
        }
    }

    use AclOperation::*;
    use AclPermission::*;
    use PatternType::*;
    use ResourceType::*;

    #[test]
    fn no_acls_allows_everything_and_unnamed_resources_follow_the_flag() {
        let empty = AclSet::new();
        assert_eq!(decide(&empty, "User:ANONYMOUS", Write, &Resource::topic("t"), false), Decision::NoAcls);
        let set = AclSet::from([acl("User:alice", Topic, Literal, "a", Write, Allow)]);
        assert!(!decide(&set, "User:bob", Write, &Resource::topic("b"), false).allowed());
        assert!(decide(&set, "User:bob", Write, &Resource::topic("b"), true).allowed());
        // Named by an ACL: the flag does not apply.
        assert_eq!(decide(&set, "User:bob", Write, &Resource::topic("a"), true), Decision::NotAllowed);
        assert_eq!(decide(&set, "User:alice", Write, &Resource::topic("a"), false), Decision::Allowed);
    }

    #[test]
    fn deny_beats_allow_and_wildcards_match() {
        let set = AclSet::from([
            acl("User:*", Topic, Literal, "*", All, Allow),
            acl("User:bob", Topic, Prefixed, "secret-", Write, Deny),
        ]);
        assert_eq!(decide(&set, "User:bob", Write, &Resource::topic("secret-x"), false), Decision::Denied);
        assert_eq!(decide(&set, "User:bob", Read, &Resource::topic("secret-x"), false), Decision::Allowed);
        assert_eq!(decide(&set, "User:carol", Write, &Resource::topic("secret-x"), false), Decision::Allowed);
        assert_eq!(decide(&set, "User:bob", Write, &Resource::topic("public"), false), Decision::Allowed);
    }

    #[test]
    fn prefixed_and_implied_describe() {
        let set = AclSet::from([acl("User:alice", Topic, Prefixed, "orders-", Read, Allow)]);
        assert!(decide(&set, "User:alice", Read, &Resource::topic("orders-eu"), false).allowed());
        assert!(decide(&set, "User:alice", Describe, &Resource::topic("orders-eu"), false).allowed());
        assert!(!decide(&set, "User:alice", Write, &Resource::topic("orders-eu"), false).allowed());
        assert!(!decide(&set, "User:alice", Read, &Resource::topic("order"), false).allowed());
        // A DENY of Read does not imply a DENY of Describe (as Kafka).
        let set = AclSet::from([
            acl("User:alice", Topic, Literal, "t", Describe, Allow),
            acl("User:alice", Topic, Literal, "t", Read, Deny),
        ]);
        assert!(decide(&set, "User:alice", Describe, &Resource::topic("t"), false).allowed());
    }

    #[test]
    fn names_parse_loosely_and_bad_acls_are_named() {
        assert_eq!("cluster-action".parse::<AclOperation>(), Ok(ClusterAction));
        assert_eq!("WRITE".parse::<AclOperation>(), Ok(Write));
        let err = "push".parse::<AclOperation>().unwrap_err();
        assert!(err.contains("'push'") && err.contains("ClusterAction"), "{err}");
        assert!(validate(&acl("alice", Topic, Literal, "t", Read, Allow)).unwrap_err().contains("User:NAME"));
        assert!(validate(&acl("User:a", Group, Literal, "g", Write, Allow)).unwrap_err().contains("Write"));
        assert!(validate(&acl("User:a", Cluster, Literal, "x", Alter, Allow)).unwrap_err().contains("kafka-cluster"));
        validate(&acl("User:a", Cluster, Literal, CLUSTER_RESOURCE, ClusterAction, Allow)).unwrap();
    }
}
