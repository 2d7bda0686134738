//! `kmon acl add|list|remove`: the access control lists in the metadata
//! quorum, as Kafka's `kafka-acls.sh` (`--allow-principal`/`--deny-principal`,
//! `--operation`, `--topic`/`--group`/`--cluster`, `--resource-pattern-type`).

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use kmon_client::{AclBinding, Admin};

use super::ClientArgs;

/// The name of the one cluster resource (Kafka's).
const CLUSTER_RESOURCE: &str = "kafka-cluster";

#[derive(Debug, Subcommand)]
pub(crate) enum AclCommand {
    /// Add ACLs: one per principal × operation.
    Add(AclArgs),
    /// List every ACL.
    List,
    /// Remove exactly the ACLs these flags describe.
    Remove(AclArgs),
}

#[derive(Debug, Args)]
pub(crate) struct AclArgs {
    /// Principal to allow, `User:NAME` or `User:*` (repeatable).
    #[arg(long)]
    allow_principal: Vec<String>,
    /// Principal to deny, `User:NAME` or `User:*` (repeatable; a DENY beats any ALLOW).
    #[arg(long)]
    deny_principal: Vec<String>,
    /// Read, Write, Create, Delete, Alter, Describe, ClusterAction or All (repeatable).
    #[arg(long = "operation", required = true)]
    operations: Vec<String>,
    /// The topic (`*`: every topic; with `--resource-pattern-type prefixed`: a name prefix).
    #[arg(long, group = "resource")]
    topic: Option<String>,
    /// The consumer group (`*` and prefixes as for --topic).
    #[arg(long, group = "resource")]
    group: Option<String>,
    /// The cluster itself (Alter, Describe, Create, ClusterAction).
    #[arg(long, group = "resource")]
    cluster: bool,
    /// `literal` (the default) or `prefixed`.
    #[arg(long, default_value = "literal")]
    resource_pattern_type: String,
}

impl AclArgs {
    fn bindings(&self) -> anyhow::Result<Vec<AclBinding>> {
        let (resource_type, resource_name) = match (&self.topic, &self.group, self.cluster) {
            (Some(topic), None, false) => ("Topic", topic.clone()),
            (None, Some(group), false) => ("Group", group.clone()),
            (None, None, true) => ("Cluster", CLUSTER_RESOURCE.to_string()),
            _ => bail!("say which resource: --topic NAME, --group NAME or --cluster"),
        };
        if self.allow_principal.is_empty() && self.deny_principal.is_empty() {
            bail!("say whom: --allow-principal User:NAME or --deny-principal User:NAME");
        }
        let principals =
            self.allow_principal.iter().map(|p| (p, "Allow")).chain(self.deny_principal.iter().map(|p| (p, "Deny")));
        let mut acls = Vec::new();
        for (principal, permission) in principals {
            for operation in &self.operations {
                acls.push(AclBinding {
                    principal: principal.clone(),
                    resource_type: resource_type.into(),
                    pattern_type: self.resource_pattern_type.clone(),
                    resource_name: resource_name.clone(),
                    operation: operation.clone(),
                    permission: permission.into(),
                });
            }
        }
        Ok(acls)
    }
}

fn show(acl: &AclBinding) -> String {
    format!(
        "{:<5} {:<24} {:<13} {} {} '{}'",
        acl.permission, acl.principal, acl.operation, acl.pattern_type, acl.resource_type, acl.resource_name
    )
}

pub(crate) async fn run(client: ClientArgs, command: AclCommand) -> anyhow::Result<()> {
    let admin = Admin::connect(&client.bootstrap).await?;
    match command {
        AclCommand::Add(args) => {
            let acls = args.bindings()?;
            let created = admin.create_acls(acls.clone()).await.context("adding ACLs failed")?;
            for acl in &acls {
                println!("{}", show(acl));
            }
            println!("{created} ACL(s) added ({} already existed)", acls.len() as u32 - created);
        }
        AclCommand::List => {
            let acls = admin.list_acls().await.context("listing ACLs failed")?;
            if acls.is_empty() {
                println!("no ACLs: every principal may do everything");
            }
            for acl in &acls {
                println!("{}", show(acl));
            }
        }
        AclCommand::Remove(args) => {
            let acls = args.bindings()?;
            let deleted = admin.delete_acls(acls.clone()).await.context("removing ACLs failed")?;
            println!("{deleted} ACL(s) removed ({} did not exist)", acls.len() as u32 - deleted);
        }
    }
    Ok(())
}
