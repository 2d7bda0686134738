//! A secure local cluster (`kmon up --secure`, `kmon bench tls`): a local
//! CA under `DIR/tls` (made once, reused on restart), one certificate per
//! broker, one for an admin client and one for the node agent; brokers run
//! with mutual TLS on gRPC, between themselves and on the Kafka listener,
//! and with ACLs enforced.
//!
//! Principals: broker `N`'s certificate has CN `kmon-broker-N`, which the
//! mapping rule [`MAPPING_RULES`] maps to `User:kmon-broker` (so a broker
//! added later is already known); the admin is `User:kmon-admin`, the agent
//! `User:kmon-agent`. All three are super users: everyone else needs ACLs
//! (`kmon acl add`, as the admin) and a certificate signed by the CA.

use std::path::{Path, PathBuf};

use anyhow::Context;
use kmon_tls::{LocalCa, TlsFiles};

/// The directory under the cluster's data directory holding the CA and
/// the certificates.
pub const TLS_DIR: &str = "tls";
/// Brokers' certificates map to `User:kmon-broker`; other CNs are their own name.
pub const MAPPING_RULES: &str = "RULE:^CN=kmon-broker-[0-9]+$/kmon-broker/,DEFAULT";
/// The super users of a secure cluster: the brokers, the admin client, the agent.
pub const SUPER_USERS: &str = "User:kmon-broker;User:kmon-admin;User:kmon-agent";
/// The admin client's principal.
pub const ADMIN_PRINCIPAL: &str = "User:kmon-admin";

/// The CA of a secure cluster and the client certificates made with it.
#[derive(Debug)]
pub struct Secure {
    ca: LocalCa,
    /// `DIR/tls`, absolute.
    pub dir: PathBuf,
    /// The admin client's certificate (a super user), with the CA.
    pub admin: TlsFiles,
    /// The node agent's certificate, with the CA.
    pub agent: TlsFiles,
}

/// Whether the cluster in `data_dir` was started secure (it has a CA).
pub fn is_secure(data_dir: &Path) -> bool {
    data_dir.join(TLS_DIR).join("ca.crt").exists()
}

fn display(path: &Option<PathBuf>) -> String {
    path.as_deref().map(|p| p.display().to_string()).unwrap_or_default()
}

impl Secure {
    /// Opens (or makes, the first time) the CA and the admin's and agent's
    /// certificates in `data_dir/tls`.
    pub fn prepare(data_dir: &Path) -> anyhow::Result<Secure> {
        let dir = data_dir.join(TLS_DIR);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let dir = dir.canonicalize().with_context(|| format!("cannot resolve {}", dir.display()))?;
        let ca = LocalCa::open_or_create(&dir)?;
        let admin = ca.leaf("admin", "kmon-admin")?;
        let agent = ca.leaf("agent", "kmon-agent")?;
        Ok(Secure { ca, dir, admin, agent })
    }

    /// The flags of broker `id`: its certificate (made when missing), the
    /// CA, the mapping rule and the super users.
    pub fn broker_args(&self, id: u32) -> anyhow::Result<Vec<String>> {
        let files = self.ca.leaf(&format!("broker-{id}"), &format!("kmon-broker-{id}"))?;
        Ok([
            ("--tls-cert", display(&files.cert)),
            ("--tls-key", display(&files.key)),
            ("--tls-ca", display(&files.ca)),
            ("--tls-principal-mapping-rules", MAPPING_RULES.to_string()),
            ("--super-users", SUPER_USERS.to_string()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_string(), value])
        .collect())
    }

    /// The `kmon` environment of the admin client:
    /// `KMON_TLS_CA`, `KMON_TLS_CERT`, `KMON_TLS_KEY`.
    pub fn admin_env(&self) -> [(&'static str, String); 3] {
        [
            ("KMON_TLS_CA", display(&self.admin.ca)),
            ("KMON_TLS_CERT", display(&self.admin.cert)),
            ("KMON_TLS_KEY", display(&self.admin.key)),
        ]
    }

    /// The librdkafka settings (kcat `-X`, confluent-kafka) of the admin client.
    pub fn admin_librdkafka(&self) -> [(&'static str, String); 4] {
        [
            ("security.protocol", "SSL".to_string()),
            ("ssl.ca.location", display(&self.admin.ca)),
            ("ssl.certificate.location", display(&self.admin.cert)),
            ("ssl.key.location", display(&self.admin.key)),
        ]
    }

    /// Makes this process's kmon clients (`Admin`, producers, consumers)
    /// connect as the admin.
    pub fn use_admin_identity(&self) -> anyhow::Result<()> {
        let (Some(ca), Some(cert), Some(key)) = (&self.admin.ca, &self.admin.cert, &self.admin.key) else {
            unreachable!("LocalCa::leaf sets every file");
        };
        kmon_client::connection::use_tls(ca, Some(cert), Some(key))?;
        Ok(())
    }
}
