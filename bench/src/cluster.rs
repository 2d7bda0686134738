//! The local cluster the benches run on: real `kmon broker` children on
//! free ports, laid out as `kmon up` lays them out, killed on drop; and the
//! scratch directory each bench keeps its data in.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use kmon_client::Admin;
use tokio::signal::unix::{SignalKind, signal};

use kmon_cluster::{BrokerChild, ClusterLayout, Layout, Secure};

/// Bound on start-up, and on a restarted broker rejoining the ISR.
pub const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);

/// Where a bench's cluster keeps its data, as every `kmon bench` that
/// starts brokers takes it.
#[derive(Debug, Clone, clap::Args)]
pub struct ScratchDir {
    /// Where the cluster keeps its data and logs (`broker-N.log`); must not
    /// exist. Default: a new directory in the system's temporary directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Keep the data directory and the logs in it afterwards.
    #[arg(long)]
    pub keep: bool,
}

impl ScratchDir {
    /// Runs `measure` in a new data directory (given, or in the system's
    /// temp directory), stops it on SIGINT/SIGTERM (dropping the cluster
    /// kills the brokers), and removes the directory afterwards unless
    /// `keep`.
    pub async fn run<F, Fut>(self, bench: &str, measure: F) -> anyhow::Result<()>
    where
        F: FnOnce(PathBuf) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        let ScratchDir { data_dir, keep } = self;
        let dir = match data_dir {
            Some(dir) if dir.exists() => {
                bail!("{} exists; pass a new directory (it is removed afterwards)", dir.display())
            }
            Some(dir) => dir,
            None => std::env::temp_dir().join(format!("kmon-bench-{bench}-{}", std::process::id())),
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let result = tokio::select! {
            result = measure(dir.clone()) => result,
            _ = term.recv() => Err(anyhow!("interrupted")),
            _ = int.recv() => Err(anyhow!("interrupted")),
        };
        if keep {
            eprintln!("kept the cluster's data and logs in {}", dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&dir);
        }
        result
    }
}

/// Runs `measure` `runs` times, each in a new directory `run-N` under
/// `dir`, and prints each run as a line: the loop of the benches that start
/// a fresh cluster per run.
pub async fn each_run<R: std::fmt::Display>(
    dir: &Path,
    runs: u32,
    measure: impl AsyncFn(&Path) -> anyhow::Result<R>,
) -> anyhow::Result<Vec<R>> {
    let mut results = Vec::new();
    for n in 0..runs {
        let run_dir = dir.join(format!("run-{n}"));
        std::fs::create_dir_all(&run_dir).with_context(|| format!("cannot create {}", run_dir.display()))?;
        let run = measure(&run_dir).await.with_context(|| format!("run {}", n + 1))?;
        println!("run {}: {run}", n + 1);
        results.push(run);
    }
    Ok(results)
}

/// The median of `f` over `runs` (the upper middle one of an even count;
/// 0 when there are none): every bench reports medians.
pub fn median_by<T>(runs: &[T], f: impl Fn(&T) -> f64) -> f64 {
    let mut values: Vec<f64> = runs.iter().map(f).collect();
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The local cluster: one child per broker, index `id - 1`.
pub struct Cluster {
    exe: PathBuf,
    dir: PathBuf,
    layout: ClusterLayout,
    children: Vec<BrokerChild>,
    /// Mutual TLS and ACLs, as `kmon up --secure` (certificates in `dir/tls`).
    secure: Option<Secure>,
}

impl Cluster {
    pub async fn start(dir: &Path, brokers: usize) -> anyhow::Result<Self> {
        Self::start_with(dir, brokers, None).await
    }

    /// [`Cluster::start`], secure when given (this process's clients must
    /// already use a certificate of its CA: [`Secure::use_admin_identity`]).
    pub async fn start_with(dir: &Path, brokers: usize, secure: Option<Secure>) -> anyhow::Result<Self> {
        let layout = ClusterLayout::on_ports(Layout::Diagonal, &free_ports(brokers)?, 3, 3)?;
        let exe = std::env::current_exe().context("cannot find the kmon executable")?;
        let mut cluster = Cluster { exe, dir: dir.to_owned(), layout, children: Vec::with_capacity(brokers), secure };
        let mut ready = Vec::with_capacity(brokers);
        for broker in &cluster.layout.brokers {
            let (child, ready_line) =
                kmon_cluster::spawn(&cluster.exe, &cluster.dir, &cluster.layout, broker, cluster.secure.as_ref())?;
            cluster.children.push(child);
            ready.push(ready_line);
        }
        let deadline = Instant::now() + RECOVERY_DEADLINE;
        kmon_cluster::wait_until_up(&cluster.layout, &mut cluster.children, ready, deadline).await?;
        Ok(cluster)
    }

    /// Starts `count` more brokers: the next ids and cells of the layout,
    /// learners of the same quorum (as `kmon up --brokers` adds them).
    /// Ports are new free ones, not the next of a run.
    pub async fn add_brokers(&mut self, count: usize) -> anyhow::Result<()> {
        let before = self.layout.brokers.len();
        let added = free_ports(count)?
            .into_iter()
            .map(|(grpc, metrics)| self.layout.push_on_ports(grpc, metrics))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut ready = Vec::with_capacity(count);
        for broker in &added {
            let (child, ready_line) =
                kmon_cluster::spawn(&self.exe, &self.dir, &self.layout, broker, self.secure.as_ref())?;
            self.children.push(child);
            ready.push(ready_line);
        }
        let deadline = Instant::now() + RECOVERY_DEADLINE;
        kmon_cluster::wait_until_up(&self.layout, &mut self.children[before..], ready, deadline).await
    }

    pub fn ids(&self) -> impl Iterator<Item = u32> + use<> {
        1..=self.layout.brokers.len() as u32
    }

    pub fn address(&self, id: u32) -> String {
        self.layout.brokers[id as usize - 1].listen.clone()
    }

    /// An admin client bootstrapped from broker `id`, or from any running
    /// broker.
    pub async fn admin(&mut self, id: Option<u32>) -> anyhow::Result<Admin> {
        let id = match id {
            Some(id) => id,
            None => self.running().next().ok_or_else(|| anyhow!("no broker is running"))?,
        };
        Ok(Admin::connect(&self.address(id)).await?)
    }

    pub fn running(&mut self) -> impl Iterator<Item = u32> + '_ {
        self.children.iter_mut().filter_map(|c| matches!(c.child.try_wait(), Ok(None)).then_some(c.layout.id))
    }

    /// SIGKILLs broker `id` and reaps it; returns the moment of the kill.
    pub async fn kill(&mut self, id: u32) -> anyhow::Result<Instant> {
        let child = &mut self.children[id as usize - 1].child;
        let at = Instant::now();
        child.start_kill().with_context(|| format!("cannot kill broker {id}"))?;
        child.wait().await?;
        Ok(at)
    }

    /// Starts broker `id` again with the same flags and data; returns once
    /// it reported ready.
    pub async fn restart(&mut self, id: u32) -> anyhow::Result<()> {
        let broker = &self.layout.brokers[id as usize - 1];
        let (mut child, ready) = kmon_cluster::spawn(&self.exe, &self.dir, &self.layout, broker, self.secure.as_ref())?;
        let outcome = tokio::time::timeout(RECOVERY_DEADLINE, ready).await;
        let log = child.log.clone();
        let ready = match outcome {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => {
                let status = child.child.wait().await?;
                Err(anyhow!("broker {id} exited ({status}) on restart{}", kmon_cluster::log_tail(&log)))
            }
            Err(_) => {
                Err(anyhow!("broker {id} was not ready within {RECOVERY_DEADLINE:?}{}", kmon_cluster::log_tail(&log)))
            }
        };
        self.children[id as usize - 1] = child;
        ready
    }

    /// Every broker alive, a controller, and every replica of `topic` in
    /// its partition's ISR.
    pub async fn wait_until_healthy(&mut self, topic: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + RECOVERY_DEADLINE;
        loop {
            let last = match self.health(topic).await {
                Ok(None) => return Ok(()),
                Ok(Some(problem)) => problem,
                Err(err) => err.to_string(),
            };
            if Instant::now() > deadline {
                bail!("the cluster did not recover within {RECOVERY_DEADLINE:?}: {last}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What is still unhealthy, if anything.
    pub async fn health(&mut self, topic: &str) -> anyhow::Result<Option<String>> {
        let metadata = self.admin(None).await?.metadata(&[topic]).await?;
        if metadata.controller_id < 0 {
            return Ok(Some("no controller".into()));
        }
        if let Some(b) = metadata.brokers.iter().find(|b| !b.alive) {
            return Ok(Some(format!("broker {} not alive", b.id)));
        }
        let described = metadata.topics.iter().find(|t| t.name == topic).ok_or_else(|| anyhow!("no topic {topic}"))?;
        for p in &described.partitions {
            if p.leader < 0 || p.isr.len() < p.replicas.len() {
                return Ok(Some(format!("partition {}: leader {}, ISR {:?}", p.partition, p.leader, p.isr)));
            }
        }
        Ok(None)
    }

    /// SIGTERM and a grace period, like `kmon up` on Ctrl-C.
    pub async fn stop(mut self) {
        kmon_cluster::stop_all(&mut self.children).await;
    }
}

impl Drop for Cluster {
    /// On error or interruption: SIGKILL every broker still running and
    /// reap it (briefly), so the data directory can be removed.
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.child.start_kill();
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        for child in &mut self.children {
            while matches!(child.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// `(gRPC, metrics)` port pairs that were free a moment ago: bound on
/// 127.0.0.1:0 together, then released for the brokers.
pub fn free_ports(count: usize) -> anyhow::Result<Vec<(u16, u16)>> {
    let listeners = (0..count * 2)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("cannot find free ports")?;
    let ports = listeners.iter().map(|l| l.local_addr().map(|a| a.port())).collect::<Result<Vec<_>, _>>()?;
    Ok(ports.chunks(2).map(|pair| (pair[0], pair[1])).collect())
}
