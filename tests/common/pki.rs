//! Certificates for tests, made with rcgen: a CA, and leaf certificates
//! (`broker`, `alice`, `bob`, `admin`: CN = the name) for 127.0.0.1 and
//! localhost, as PEM files in a temporary directory.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

pub struct Ca {
    pub issuer: Issuer<'static, KeyPair>,
    pub pem: String,
}

pub fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca { pem: cert.pem(), issuer: Issuer::new(params, key) }
}

/// Writes `<name>.crt` / `<name>.key` signed by `ca` for 127.0.0.1 and localhost.
pub fn leaf(dir: &Path, ca: &Ca, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let (c, k) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: Ca,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca("kmon test CA");
        std::fs::write(dir.path().join("ca.crt"), &ca.pem).unwrap();
        leaf(dir.path(), &ca, "broker", "broker");
        for user in ["alice", "bob", "admin"] {
            leaf(dir.path(), &ca, user, user);
        }
        Pki { dir, ca }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// [`Pki::broker_args`] with ACLs' super users: brokers dial each other
    /// as `User:broker`, and `admin` manages the ACLs.
    pub fn broker_args_with_super_users(&self) -> Vec<String> {
        let mut args = self.broker_args();
        args.extend(["--super-users".into(), "User:broker;User:admin".into()]);
        args
    }

    pub fn broker_args(&self) -> Vec<String> {
        [
            "--tls-cert",
            &self.path("broker.crt"),
            "--tls-key",
            &self.path("broker.key"),
            "--tls-ca",
            &self.path("ca.crt"),
        ]
        .map(String::from)
        .to_vec()
    }

    /// Client flags with `name`'s certificate, trusting `ca`.
    pub fn client(&self, ca: &str, name: Option<&str>) -> Vec<String> {
        let mut args = vec!["--tls-ca".to_string(), self.path(ca)];
        if let Some(name) = name {
            args.extend(["--tls-cert".into(), self.path(&format!("{name}.crt"))]);
            args.extend(["--tls-key".into(), self.path(&format!("{name}.key"))]);
        }
        args
    }
}

pub fn with<'a>(args: &'a [&'a str], tls: &'a [String]) -> Vec<&'a str> {
    args.iter().copied().chain(tls.iter().map(String::as_str)).collect()
}
