//! The brokers of a chaos run: broker `i` runs as
//! `ip netns exec kmonc<N>-<i> kmon broker ...` on `10.77.<N>.<i>`, with
//! the flags `kmon up` gives (`kmon_cluster::member_args`) and a fast
//! failover config. One broker (the last) keeps its data on a small tmpfs
//! so the disk can be filled. Every broker is SIGKILLed when [`Hosts`] is
//! dropped, then the tmpfs is unmounted and the network removed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use kmon_client::Admin;
use kmon_cluster::{BrokerChild, BrokerLayout, ClusterLayout, Layout};
use tokio::process::Command;

use crate::net::{Network, sh};

/// Bound on a (re)started broker printing its ready line.
pub const READY_DEADLINE: Duration = Duration::from_secs(60);
/// Size of the tmpfs data directory of the disk-full host.
pub const TMPFS_SIZE: &str = "64m";
/// Fast failover, as the e2e tests use it (tests/common `start_fast_failover`).
const BROKER_CONFIG: &str =
    "broker_session_timeout_ms = 1500\nbroker_heartbeat_interval_ms = 200\nreplica_lag_time_max_ms = 2000\n";
const GRPC_PORT: u16 = 9092;
const METRICS_PORT: u16 = 9644;
const KAFKA_PORT: u16 = 19092;

/// The brokers, their namespaces and data.
pub struct Hosts {
    exe: PathBuf,
    pub dir: PathBuf,
    config: PathBuf,
    pub layout: ClusterLayout,
    children: Vec<Option<BrokerChild>>,
    /// Broker whose data directory is a tmpfs.
    pub disk_host: u32,
    tmpfs: Option<PathBuf>,
    /// Dropped last: namespaces go after the processes in them.
    pub net: Network,
}

impl Hosts {
    /// Builds the network and starts `count` brokers in `dir`, returning
    /// once the cluster is up.
    pub async fn start(exe: &Path, dir: &Path, count: usize) -> anyhow::Result<Hosts> {
        let net = Network::create(count)?;
        let brokers: Vec<BrokerLayout> = (1..=count)
            .map(|i| {
                let address = net.address(i);
                let (fd, ud) = kmon_cluster::domains(Layout::Diagonal, count, 3, 3)[i - 1];
                BrokerLayout {
                    id: i as u32,
                    listen: format!("{address}:{GRPC_PORT}"),
                    metrics_listen: format!("{address}:{METRICS_PORT}"),
                    kafka_listen: format!("{address}:{KAFKA_PORT}"),
                    fault_domain: format!("FD{fd}"),
                    update_domain: format!("UD{ud}"),
                    data_dir: PathBuf::from(format!("broker-{i}")),
                }
            })
            .collect();
        let controller_voters = brokers.iter().map(|b| format!("{}@{}", b.id, b.listen)).collect::<Vec<_>>().join(",");
        let layout = ClusterLayout {
            layout: Layout::Diagonal,
            controller_voters,
            fault_domains: Some(3),
            update_domains: Some(3),
            brokers,
        };
        let config = dir.join("broker.toml");
        std::fs::write(&config, BROKER_CONFIG)?;
        let mut hosts = Hosts {
            exe: exe.to_owned(),
            dir: dir.to_owned(),
            config,
            layout,
            children: (0..count).map(|_| None).collect(),
            disk_host: count as u32,
            tmpfs: None,
            net,
        };
        let tmpfs = hosts.data_dir(hosts.disk_host);
        std::fs::create_dir_all(&tmpfs)?;
        sh(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={TMPFS_SIZE}"),
                &crate::net::tmpfs_source(hosts.net.run),
                &tmpfs.to_string_lossy(),
            ],
        )?;
        hosts.tmpfs = Some(tmpfs);

        let mut ready = Vec::new();
        for id in 1..=count as u32 {
            let (child, rx) = hosts.spawn(id)?;
            hosts.children[id as usize - 1] = Some(child);
            ready.push(rx);
        }
        let mut children: Vec<BrokerChild> = hosts.children.iter_mut().map(|c| c.take().expect("spawned")).collect();
        let up =
            kmon_cluster::wait_until_up(&hosts.layout, &mut children, ready, Instant::now() + READY_DEADLINE).await;
        for (slot, child) in hosts.children.iter_mut().zip(children) {
            *slot = Some(child);
        }
        up?;
        Ok(hosts)
    }

    fn spawn(&self, id: u32) -> anyhow::Result<(BrokerChild, tokio::sync::oneshot::Receiver<String>)> {
        let broker = self.layout.brokers[id as usize - 1].clone();
        let data_dir = self.data_dir(id);
        std::fs::create_dir_all(&data_dir)?;
        let log = self.dir.join(format!("broker-{id}.log"));
        let stderr = kmon_cluster::process::open_log(&log)?;
        let inner = kmon_cluster::broker_command(&self.exe, &data_dir);
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.net.namespace(id as usize)]);
        command.arg(inner.get_program()).args(inner.get_args());
        for (name, value) in inner.get_envs() {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        // Every applied metadata command (fences, registrations, ISR
        // changes, elections) in the broker logs, so a red run's leader
        // changes can be read back; RUST_LOG set by the caller wins.
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info,kmon_broker::controller::store=debug");
        }
        command.args(kmon_cluster::member_args(&self.layout.controller_voters, &broker));
        command.arg("--config").arg(&self.config);
        let (child, rx) = kmon_cluster::start_child(command, stderr, kmon_cluster::process::READY_PREFIX)
            .with_context(|| format!("cannot start broker {id}"))?;
        Ok((BrokerChild { layout: broker, log, child, exited: None }, rx))
    }

    pub fn ids(&self) -> impl Iterator<Item = u32> + use<> {
        1..=self.layout.brokers.len() as u32
    }

    pub fn data_dir(&self, id: u32) -> PathBuf {
        self.dir.join(format!("broker-{id}"))
    }

    pub fn address(&self, id: u32) -> String {
        self.layout.brokers[id as usize - 1].listen.clone()
    }

    pub fn metrics_address(&self, id: u32) -> String {
        self.layout.brokers[id as usize - 1].metrics_listen.clone()
    }

    pub fn log(&self, id: u32) -> PathBuf {
        self.dir.join(format!("broker-{id}.log"))
    }

    fn pid(&self, id: u32) -> Option<u32> {
        self.children[id as usize - 1].as_ref()?.child.id()
    }

    /// Whether broker `id`'s process is running (or stopped).
    pub fn is_running(&mut self, id: u32) -> bool {
        match self.children[id as usize - 1].as_mut() {
            Some(child) => matches!(child.child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILLs broker `id` and reaps it.
    pub async fn kill(&mut self, id: u32) -> anyhow::Result<()> {
        if let Some(mut child) = self.children[id as usize - 1].take() {
            let _ = child.child.start_kill();
            child.child.wait().await?;
        }
        Ok(())
    }

    /// Starts broker `id` again (same flags and data); returns once it
    /// printed its ready line.
    pub async fn restart(&mut self, id: u32) -> anyhow::Result<()> {
        self.kill(id).await?;
        let (mut child, ready) = self.spawn(id)?;
        let outcome = tokio::select! {
            line = ready => line.map_err(|_| anyhow!("exited on restart")),
            status = child.child.wait() => Err(anyhow!("exited on restart ({})", status?)),
            () = tokio::time::sleep(READY_DEADLINE) => Err(anyhow!("not ready within {READY_DEADLINE:?}")),
        };
        let log = child.log.clone();
        self.children[id as usize - 1] = Some(child);
        outcome.map(drop).map_err(|err| anyhow!("broker {id}: {err}{}", kmon_cluster::log_tail(&log)))
    }

    /// SIGSTOP (true) or SIGCONT (false) to broker `id`.
    pub fn pause(&self, id: u32, stop: bool) -> anyhow::Result<()> {
        let pid = self.pid(id).ok_or_else(|| anyhow!("broker {id} is not running"))?;
        sh("kill", &[if stop { "-STOP" } else { "-CONT" }, &pid.to_string()]).map(drop)
    }

    /// An admin client on the first broker that answers `Metadata`.
    pub async fn admin(&self) -> anyhow::Result<Admin> {
        let mut last = String::from("no broker");
        for id in self.ids() {
            let probe = async {
                let admin = Admin::connect(&self.address(id)).await?;
                admin.metadata(&[]).await?;
                Ok::<_, kmon_client::ClientError>(admin)
            };
            match tokio::time::timeout(Duration::from_secs(2), probe).await {
                Ok(Ok(admin)) => return Ok(admin),
                Ok(Err(err)) => last = err.to_string(),
                Err(_) => last = format!("broker {id} did not answer within 2 s"),
            }
        }
        bail!("no broker answers: {last}")
    }

    /// The ballast file of the disk-full fault.
    pub fn ballast(&self) -> PathBuf {
        self.data_dir(self.disk_host).join("ballast")
    }

    /// SIGTERM to every broker and a bounded grace, then SIGKILL.
    pub async fn stop_all(&mut self) {
        let mut children: Vec<BrokerChild> = self.children.iter_mut().filter_map(Option::take).collect();
        kmon_cluster::stop_all(&mut children).await;
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.child.start_kill();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for child in self.children.iter_mut().flatten() {
            while matches!(child.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        if let Some(tmpfs) = self.tmpfs.take() {
            let _ = sh("umount", &["-l", &tmpfs.to_string_lossy()]);
        }
    }
}
