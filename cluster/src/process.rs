//! `kmon broker` children: spawned in their own process group with their
//! stderr in a log file, ready once they print their ready line and the
//! cluster's metadata shows a controller and every broker alive; stopped
//! with SIGTERM and a bounded grace, then SIGKILL.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kmon_client::Admin;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::layout::{BrokerLayout, ClusterLayout};
use crate::secure::Secure;

/// The line a broker prints once it serves (`kmon_broker::READY_PREFIX`).
pub const READY_PREFIX: &str = kmon_broker::READY_PREFIX;
/// Bound on start-up: every broker ready, a controller, all alive.
pub const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long a child gets to exit after SIGTERM.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// Whether broker 1 of the layout answers (the cluster runs under another
/// `kmon up`).
pub async fn is_running(cluster: &ClusterLayout) -> bool {
    let probe = async { Admin::connect(&cluster.brokers[0].listen).await?.metadata(&[]).await };
    matches!(tokio::time::timeout(Duration::from_secs(3), probe).await, Ok(Ok(_)))
}

/// A running `kmon broker` child (killed when dropped).
pub struct BrokerChild {
    pub layout: BrokerLayout,
    pub log: PathBuf,
    pub child: Child,
    /// Set once its exit was seen.
    pub exited: Option<ExitStatus>,
}

/// Starts one broker (with mutual TLS and ACLs when `secure`); the
/// receiver gets its ready line.
pub fn spawn(
    exe: &Path,
    dir: &Path,
    cluster: &ClusterLayout,
    broker: &BrokerLayout,
    secure: Option<&Secure>,
) -> anyhow::Result<(BrokerChild, tokio::sync::oneshot::Receiver<String>)> {
    let data_dir = dir.join(&broker.data_dir);
    std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
    let log = dir.join(format!("broker-{}.log", broker.id));
    let stderr = open_log(&log)?;
    let mut command = Command::from(broker_command(exe, &data_dir));
    command.args(member_args(&cluster.controller_voters, broker));
    if let Some(secure) = secure {
        command.args(secure.broker_args(broker.id)?);
    }
    let (child, rx) =
        start_child(command, stderr, READY_PREFIX).with_context(|| format!("cannot start broker {}", broker.id))?;
    Ok((BrokerChild { layout: broker.clone(), log, child, exited: None }, rx))
}

/// `kmon broker --data-dir DATA_DIR`, without the environment variables
/// that would override the flags a caller adds.
pub fn broker_command(exe: &Path, data_dir: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(exe);
    command.arg("broker").arg("--data-dir").arg(data_dir);
    // The TLS variables too: a shell set up as a secure cluster's client
    // (KMON_TLS_CERT = the admin's certificate) must not make a broker serve it.
    for name in [
        "KMON_BOOTSTRAP",
        "KMON_KAFKA_LISTEN",
        "KMON_DATA_DIR",
        "KMON_LISTEN",
        "KMON_METRICS_LISTEN",
        "KMON_CONFIG",
        "KMON_TLS_CA",
        "KMON_TLS_CERT",
        "KMON_TLS_KEY",
        "KMON_TLS_PRINCIPAL_MAPPING_RULES",
    ] {
        command.env_remove(name);
    }
    command
}

/// The flags that make a broker `broker` of a cluster: its id, fault and
/// update domains, the controller voters, and its three listeners.
pub fn member_args(controller_voters: &str, broker: &BrokerLayout) -> Vec<String> {
    [
        ("--id", broker.id.to_string()),
        ("--fault-domain", broker.fault_domain.clone()),
        ("--update-domain", broker.update_domain.clone()),
        ("--controller-voters", controller_voters.to_string()),
        ("--listen", broker.listen.clone()),
        ("--metrics-listen", broker.metrics_listen.clone()),
        ("--kafka-listen", broker.kafka_listen.clone()),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_string(), value])
    .collect()
}

/// What a broker's ready line says it bound:
/// `kmon broker ready grpc=ADDR metrics=ADDR kafka=ADDR id=N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyLine {
    pub grpc: String,
    pub metrics: String,
    /// Empty when the broker serves no Kafka listener.
    pub kafka: String,
}

impl ReadyLine {
    pub fn parse(line: &str) -> anyhow::Result<ReadyLine> {
        let field = |name: &str| ready_field(line, name).map(str::to_string);
        Ok(ReadyLine {
            grpc: field("grpc").with_context(|| format!("no grpc= in the ready line {line:?}"))?,
            metrics: field("metrics").with_context(|| format!("no metrics= in the ready line {line:?}"))?,
            kafka: field("kafka").unwrap_or_default(),
        })
    }
}

/// The value of `NAME=` in a ready line (a broker's or an agent's).
pub fn ready_field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split_whitespace().find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
}

/// Every broker printed its ready line, then `Metadata` shows a
/// controller and every broker alive.
pub async fn wait_until_up(
    cluster: &ClusterLayout,
    children: &mut [BrokerChild],
    ready: Vec<tokio::sync::oneshot::Receiver<String>>,
    deadline: Instant,
) -> anyhow::Result<()> {
    for (child, ready) in children.iter_mut().zip(ready) {
        let id = child.layout.id;
        tokio::select! {
            line = ready => {
                if line.is_err() {
                    let status = child.child.wait().await?;
                    bail!("broker {id} exited ({status}) before it was ready{}", log_tail(&child.log));
                }
            }
            status = child.child.wait() => {
                let status = status?;
                bail!("broker {id} exited ({status}) before it was ready{}", log_tail(&child.log));
            }
            () = tokio::time::sleep_until(deadline.into()) => {
                bail!("broker {id} was not ready within {START_DEADLINE:?}{}", log_tail(&child.log));
            }
        }
    }

    let bootstrap = &cluster.brokers[0].listen;
    let wanted: BTreeSet<i32> = cluster.brokers.iter().map(|b| b.id as i32).collect();
    let mut last;
    loop {
        match Admin::connect(bootstrap).await {
            Ok(admin) => match admin.metadata(&[]).await {
                Ok(metadata) => {
                    let alive: BTreeSet<i32> = metadata.brokers.iter().filter(|b| b.alive).map(|b| b.id).collect();
                    if metadata.controller_id >= 0 && wanted.is_subset(&alive) {
                        return Ok(());
                    }
                    let missing: Vec<String> = wanted.difference(&alive).map(i32::to_string).collect();
                    last = format!(
                        "controller {}, brokers not alive yet: {}",
                        if metadata.controller_id >= 0 { metadata.controller_id.to_string() } else { "none".into() },
                        if missing.is_empty() { "none".into() } else { missing.join(",") }
                    );
                }
                Err(err) => last = err.to_string(),
            },
            Err(err) => last = err.to_string(),
        }
        for child in children.iter_mut() {
            if let Some(status) = child.child.try_wait()? {
                bail!("broker {} exited ({status}) during start-up{}", child.layout.id, log_tail(&child.log));
            }
        }
        if Instant::now() >= deadline {
            bail!("the cluster did not come up within {START_DEADLINE:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reports brokers that exited on their own (once each).
pub fn report_exits(children: &mut [BrokerChild]) {
    for child in children.iter_mut().filter(|c| c.exited.is_none()) {
        if let Ok(Some(status)) = child.child.try_wait() {
            child.exited = Some(status);
            eprintln!(
                "kmon up: broker {} ({}) exited unexpectedly ({status}); the others keep running{}",
                child.layout.id,
                child.layout.listen,
                log_tail(&child.log)
            );
        }
    }
}

/// Asks a child that is still running to stop (SIGTERM).
pub fn sigterm(child: &mut Child) {
    if let Ok(None) = child.try_wait()
        && let Some(pid) = child.id()
    {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// SIGTERM to every broker, then up to [`STOP_GRACE`] for each to exit,
/// then SIGKILL.
pub async fn stop_all(children: &mut [BrokerChild]) {
    for child in children.iter_mut() {
        sigterm(&mut child.child);
    }
    let deadline = Instant::now() + STOP_GRACE;
    for child in children.iter_mut() {
        let id = child.layout.id;
        match tokio::time::timeout_at(deadline.into(), child.child.wait()).await {
            Ok(Ok(status)) if child.exited.is_none() => {
                eprintln!("kmon up: broker {id} stopped ({status})");
            }
            Ok(_) => {}
            Err(_) => {
                eprintln!("kmon up: broker {id} did not stop within {STOP_GRACE:?}; killing it");
                let _ = child.child.kill().await;
            }
        }
    }
}

/// A child's log file (its stderr), appended to across restarts.
pub fn open_log(log: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))
}

/// The last lines of a broker's log, for an error message.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(10)..];
    if tail.is_empty() {
        format!(" (log: {})", log.display())
    } else {
        format!("; last lines of {}:\n{}", log.display(), tail.join("\n"))
    }
}

/// Spawns a child of `kmon up` logging to `stderr`, in its own process group
/// (a terminal's Ctrl-C reaches only `kmon up`, which then stops each child
/// with one clean SIGTERM), and watches its stdout for the ready line.
pub fn start_child(
    mut command: Command,
    stderr: std::fs::File,
    ready_prefix: &'static str,
) -> std::io::Result<(tokio::process::Child, tokio::sync::oneshot::Receiver<String>)> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let rx = watch_ready_line(child.stdout.take().expect("stdout is piped"), ready_prefix);
    Ok((child, rx))
}

/// Reads a child's standard output and hands over the first line starting
/// with `prefix`; keeps reading after it so the pipe never fills.
fn watch_ready_line(
    stdout: tokio::process::ChildStdout,
    prefix: &'static str,
) -> tokio::sync::oneshot::Receiver<String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut tx = Some(tx);
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with(prefix)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(line);
            }
        }
    });
    rx
}
