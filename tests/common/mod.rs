//! Test harness: real `kmon` processes on 127.0.0.1 with ephemeral ports.
//! A broker reports the ports it bound on standard output; the harness
//! waits for that line (with a deadline) and SIGKILLs the process on drop.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use kmon_cluster::{BrokerLayout, ClusterLayout, Layout};

pub mod dashboards;
pub mod pki;
pub mod prometheus;

pub const KMON: &str = env!("CARGO_BIN_EXE_kmon");
const START_DEADLINE: Duration = Duration::from_secs(60);

pub struct BrokerProcess {
    child: Option<Child>,
    pub grpc: String,
    pub metrics: String,
    /// The Kafka wire-protocol listener (any free port).
    pub kafka: String,
    pub data_dirs: Vec<PathBuf>,
    pub stderr_path: PathBuf,
    /// Its place in a [`Cluster`] (id, domains, voters, fixed ports); a
    /// lone broker binds ephemeral ports.
    member: Option<(String, BrokerLayout)>,
    extra_args: Vec<String>,
    /// Environment of the process (injected faults).
    env: Vec<(String, String)>,
}

impl BrokerProcess {
    /// Starts `kmon broker` on `data_dir` with any extra flags.
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> BrokerProcess {
        Self::start_dirs(&[data_dir.to_path_buf()], extra_args)
    }

    pub fn start_dirs(data_dirs: &[PathBuf], extra_args: &[&str]) -> BrokerProcess {
        Self::start_with_env(data_dirs, extra_args, &[])
    }

    /// [`Self::start_dirs`] with environment variables set for the broker.
    pub fn start_with_env(data_dirs: &[PathBuf], extra_args: &[&str], env: &[(&str, &str)]) -> BrokerProcess {
        let mut b = BrokerProcess {
            child: None,
            grpc: String::new(),
            metrics: String::new(),
            kafka: String::new(),
            data_dirs: data_dirs.to_vec(),
            stderr_path: data_dirs[0].with_extension(format!("stderr.{}", std::process::id())),
            member: None,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let rx = self.spawn_child();
        if let Err(stderr) = self.wait_ready(rx) {
            panic!("broker did not become ready; stderr:\n{stderr}");
        }
    }

    /// Starts the process the way `kmon up` does
    /// (`kmon_cluster::broker_command`, `kmon_cluster::member_args`); the
    /// receiver gets its ready line.
    fn spawn_child(&mut self) -> mpsc::Receiver<String> {
        let stderr =
            std::fs::OpenOptions::new().create(true).append(true).open(&self.stderr_path).expect("stderr file");
        let mut cmd = kmon_cluster::broker_command(Path::new(KMON), &self.data_dirs[0]);
        for dir in &self.data_dirs[1..] {
            cmd.arg("--data-dir").arg(dir);
        }
        match &self.member {
            Some((voters, layout)) => cmd.args(kmon_cluster::member_args(voters, layout)),
            None => cmd.args([
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
                "--kafka-listen",
                "127.0.0.1:0",
            ]),
        };
        cmd.envs(self.env.iter().cloned())
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = cmd.spawn().expect("spawn kmon broker");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with(kmon_broker::READY_PREFIX) {
                    let _ = tx.send(line);
                }
            }
        });
        self.child = Some(child);
        rx
    }

    /// Waits for the ready line; on failure returns the broker's stderr.
    fn wait_ready(&mut self, rx: mpsc::Receiver<String>) -> Result<(), String> {
        let Ok(line) = rx.recv_timeout(START_DEADLINE) else {
            self.kill();
            return Err(self.stderr());
        };
        let ready = kmon_cluster::ReadyLine::parse(&line).unwrap_or_else(|err| panic!("{err:#}"));
        (self.grpc, self.metrics, self.kafka) = (ready.grpc, ready.metrics, ready.kafka);
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Sends a signal by name (STOP, CONT, ...).
    pub fn signal(&self, name: &str) {
        if let Some(pid) = self.pid() {
            let status = Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status().unwrap();
            assert!(status.success(), "kill -{name} {pid}");
        }
    }

    pub fn bootstrap(&self) -> String {
        self.grpc.clone()
    }

    /// SIGKILL: no flush, no clean shutdown.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait (bounded) for a clean exit.
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("broker did not stop within 20 s of SIGTERM");
        }
    }

    /// Starts again on the same data: a cluster member on its ports, a lone
    /// broker on new ephemeral ones (reusing the old ones could race with
    /// other tests).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.stderr_path);
    }
}

/// Runs `kmon ARGS` against `bootstrap` with `stdin` as input.
pub fn kmon(bootstrap: &str, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(KMON)
        .args(args)
        .env("KMON_BOOTSTRAP", bootstrap)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kmon");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_string();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(data.as_bytes());
    });
    let out = child.wait_with_output().expect("kmon output");
    writer.join().unwrap();
    out
}

/// Runs `kmon ARGS`, asserts success and returns stdout.
pub fn kmon_ok(bootstrap: &str, args: &[&str], stdin: &str) -> String {
    let out = kmon(bootstrap, args, stdin);
    assert!(
        out.status.success(),
        "kmon {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Spawns `command` (stdin closed, stdout read here) and waits up to
/// `deadline` for the stdout line starting with `ready_prefix`: the child
/// and that line (its `key=value` fields name what it bound).
pub fn spawn_until_ready(mut command: Command, ready_prefix: &'static str, deadline: Duration) -> (Child, String) {
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).spawn().expect("spawn kmon");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with(ready_prefix) {
                let _ = tx.send(line);
            }
        }
    });
    match rx.recv_timeout(deadline) {
        Ok(line) => (child, line),
        Err(_) => {
            let _ = child.kill();
            panic!("no {ready_prefix:?} line within {deadline:?}")
        }
    }
}

/// `&str`s of owned arguments, for the `&[&str]` the harness takes.
pub fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The sum of `kmon_authorizer_denied_total` series with these labels.
pub fn denied(metrics: &str, principal: &str, resource_type: &str) -> f64 {
    let Some((_, body)) = http_get(metrics, "/metrics") else { return 0.0 };
    let labels = format!(r#"principal="{principal}",resource_type="{resource_type}""#);
    body.lines()
        .filter(|l| l.starts_with("kmon_authorizer_denied_total{") && l.contains(&labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The virtualenv's python with confluent-kafka (`KMON_TEST_PYTHON`, made
/// by ./test.sh).
pub fn kafka_clients_python() -> String {
    std::env::var("KMON_TEST_PYTHON")
        .unwrap_or_else(|_| panic!("KMON_TEST_PYTHON is not set: ./test.sh makes the virtualenv with confluent-kafka"))
}

/// A script of tests/kafka_clients/.
pub fn kafka_client_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kafka_clients").join(name)
}

/// Runs `kmon ARGS`, asserts failure and returns stderr.
pub fn kmon_err(bootstrap: &str, args: &[&str], stdin: &str) -> String {
    let out = kmon(bootstrap, args, stdin);
    assert!(!out.status.success(), "kmon {args:?} should have failed: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr).expect("utf-8 output")
}

/// Polls `check` until it returns `Some` or the deadline passes.
pub fn wait_for<T>(what: &str, deadline: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Async variant of [`wait_for`].
pub async fn wait_for_async<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Segment files (`*.log`) of a partition directory, sorted.
pub fn segment_files(partition_dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(partition_dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "log"));
    files.sort();
    files
}

/// A free port on 127.0.0.1 (bound and released: a cluster's voters must be
/// known before its brokers start). Picked below the kernel's ephemeral range
/// (32768+), so outgoing connections of concurrent tests cannot take it
/// between the check and the broker's bind.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    // One seed per test process: with it fixed, the walk below visits each of
    // the 12,000 ports once (104,729 is prime to 12,000) so one process never
    // hands out a port twice; a per-call seed did, now and then.
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        u64::from(std::process::id()).wrapping_mul(7919)
            ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos().into())
    });
    for _ in 0..2000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (seed.wrapping_add(n.wrapping_mul(104_729)) % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Brokers of one cluster: broker i (1-based) on its own pre-picked ports,
/// laid out as `kmon up` lays them out (`kmon_cluster::ClusterLayout`, the
/// diagonal of a 3 × 3 fault × update domain grid), three voters.
pub struct Cluster {
    pub brokers: Vec<BrokerProcess>,
    pub root: tempfile::TempDir,
    layout: ClusterLayout,
    /// Directories the test made for the brokers (a config file they read
    /// again on restart): removed with the cluster.
    pub kept: Vec<tempfile::TempDir>,
}

impl Cluster {
    /// `n` brokers that fence a dead broker and shrink the ISR within
    /// seconds (session 1.5 s, heartbeat 200 ms, replica lag 2 s), for tests
    /// that kill brokers; the config file stays for restarts.
    pub fn start_fast_failover(n: usize) -> Cluster {
        Self::start_fast_failover_with_env(n, &[])
    }

    /// [`Self::start_fast_failover`] with environment variables set for
    /// every broker (injected faults).
    pub fn start_fast_failover_with_env(n: usize, env: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("broker.toml");
        std::fs::write(
            &config,
            "broker_session_timeout_ms = 1500\nbroker_heartbeat_interval_ms = 200\nreplica_lag_time_max_ms = 2000\n",
        )
        .unwrap();
        let mut cluster = Cluster::start_with_env(n, &["--config", config.to_str().unwrap()], env);
        cluster.kept.push(dir);
        cluster
    }

    /// Starts `n` brokers; if one cannot bind its pre-picked port (another
    /// test took it meanwhile), starts over on new ports.
    pub fn start(n: usize, extra_args: &[&str]) -> Cluster {
        Self::start_with_env(n, extra_args, &[])
    }

    /// [`Self::start`] with environment variables set for every broker.
    pub fn start_with_env(n: usize, extra_args: &[&str], env: &[(&str, &str)]) -> Cluster {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(n, extra_args, env) {
                Ok(cluster) => return cluster,
                Err(stderr) if stderr.contains("Address already in use") => last = stderr,
                Err(stderr) => panic!("broker did not become ready; stderr:\n{stderr}"),
            }
        }
        panic!("could not find free ports for the cluster; last stderr:\n{last}");
    }

    fn try_start(n: usize, extra_args: &[&str], env: &[(&str, &str)]) -> Result<Cluster, String> {
        let root = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let layout = ClusterLayout::on_ports(Layout::Diagonal, &ports, 3, 3).expect("a layout").with_voters(3);
        let mut cluster = Cluster { brokers: Vec::new(), root, layout, kept: Vec::new() };
        let mut pending = Vec::new();
        for i in 0..n {
            let mut b = cluster.new_broker(i, extra_args);
            b.env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            pending.push(b.spawn_child());
            cluster.brokers.push(b);
        }
        for (b, rx) in cluster.brokers.iter_mut().zip(pending) {
            b.wait_ready(rx)?;
        }
        Ok(cluster)
    }

    fn new_broker(&self, i: usize, extra_args: &[&str]) -> BrokerProcess {
        let layout = self.layout.brokers[i].clone();
        BrokerProcess {
            child: None,
            grpc: String::new(),
            metrics: String::new(),
            kafka: String::new(),
            data_dirs: vec![self.root.path().join(&layout.data_dir)],
            stderr_path: self.root.path().join(format!("broker-{}.log", layout.id)),
            member: Some((self.layout.controller_voters.clone(), layout)),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
        }
    }

    /// Starts one more broker (the next id, new ports, the next slot of
    /// the diagonal layout, the same voters: it joins as a learner).
    pub fn add_broker(&mut self, extra_args: &[&str]) -> i32 {
        let i = self.brokers.len();
        self.layout.push_on_ports(free_port(), free_port()).expect("a free slot for one more broker");
        let mut b = self.new_broker(i, extra_args);
        b.spawn();
        self.brokers.push(b);
        i as i32 + 1
    }

    /// Where broker `id` (1-based) sits: its domains, ports, data dir.
    pub fn layout_of(&self, id: i32) -> &BrokerLayout {
        &self.layout.brokers[id as usize - 1]
    }

    /// Broker with id `id` (1-based).
    pub fn broker(&mut self, id: i32) -> &mut BrokerProcess {
        &mut self.brokers[id as usize - 1]
    }

    /// Restarts broker `id` on its own ports and data.
    pub fn restart(&mut self, id: i32) {
        self.broker(id).restart();
    }

    /// Restarts every broker at once (a full cluster restart).
    pub fn restart_all(&mut self) {
        for b in &mut self.brokers {
            b.kill();
        }
        let pending: Vec<_> = self.brokers.iter_mut().map(|b| b.spawn_child()).collect();
        for (b, rx) in self.brokers.iter_mut().zip(pending) {
            if let Err(stderr) = b.wait_ready(rx) {
                panic!("broker did not come back; stderr:\n{stderr}");
            }
        }
    }

    /// Bootstrap list: any live broker.
    pub fn bootstrap_except(&self, down: &[i32]) -> String {
        self.brokers
            .iter()
            .enumerate()
            .find(|(i, b)| b.pid().is_some() && !down.contains(&(*i as i32 + 1)))
            .map(|(_, b)| b.bootstrap())
            .expect("a live broker")
    }

    /// Every broker's stderr, for failure messages.
    pub fn logs(&self) -> String {
        self.brokers.iter().map(|b| format!("--- {}\n{}", b.stderr_path.display(), b.stderr())).collect()
    }
}

/// Reads every partition of `topic` from its earliest offset up to the end
/// offsets taken at the start (through the client library).
pub async fn consume_all(bootstrap: &str, topic: &str, partitions: u32) -> Vec<kmon_client::ConsumerRecord> {
    use kmon_client::{Admin, Consumer, ConsumerConfig, OffsetSpec};
    let admin = Admin::connect(bootstrap).await.unwrap();
    let mut consumer = Consumer::connect(ConsumerConfig::new(bootstrap)).await.unwrap();
    let mut ends = std::collections::HashMap::new();
    for p in 0..partitions {
        consumer.assign_at(topic, p, OffsetSpec::Earliest).await.unwrap();
        ends.insert(p, admin.list_offset(topic, p, OffsetSpec::Latest).await.unwrap().offset.unwrap());
    }
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ends.iter().any(|(p, end)| consumer.position(topic, *p).unwrap() < *end) {
        assert!(Instant::now() < deadline, "consume did not reach the end offsets");
        out.extend(consumer.poll().await.unwrap());
    }
    out
}

/// A `kmon agent` child, SIGKILLed on drop.
pub struct AgentProcess {
    child: Child,
    /// The `/metrics` address it bound.
    pub metrics: String,
    stderr_path: PathBuf,
}

impl AgentProcess {
    /// Starts `kmon agent` (ephemeral /metrics port, 200 ms interval) as
    /// `node`, shipping to `bootstrap`, with any extra flags; waits for its
    /// ready line.
    pub fn start(bootstrap: &str, buffer_dir: &Path, node: &str, extra_args: &[&str]) -> AgentProcess {
        Self::start_every("200ms", bootstrap, buffer_dir, &[&["--node", node], extra_args].concat())
    }

    /// Starts `kmon agent` sampling every `interval` (ephemeral /metrics
    /// port), shipping to `bootstrap`, with any extra flags; waits for its
    /// ready line.
    pub fn start_every(interval: &str, bootstrap: &str, buffer_dir: &Path, extra_args: &[&str]) -> AgentProcess {
        let stderr_path = buffer_dir.with_extension("stderr");
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut child = Command::new(KMON)
            .args(["agent", "--bootstrap", bootstrap, "--metrics-listen", "127.0.0.1:0", "--interval", interval])
            .args(extra_args)
            .arg("--buffer-dir")
            .arg(buffer_dir)
            .env_remove("KMON_BOOTSTRAP")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn kmon agent");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with(kmon_agent::READY_PREFIX) {
                    let _ = tx.send(line);
                }
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
            panic!("agent not ready: {}", std::fs::read_to_string(&stderr_path).unwrap_or_default())
        });
        let metrics =
            kmon_cluster::ready_field(&line, "metrics").unwrap_or_else(|| panic!("no metrics= in {line}")).to_owned();
        AgentProcess { child, metrics, stderr_path }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET: status and body (`None` when nothing answers).
pub fn http_get(address: &str, path: &str) -> Option<(u16, String)> {
    http_get_with(address, path, &[])
}

/// [`http_get`] with extra request headers.
pub fn http_get_with(address: &str, path: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
    http_request(address, "GET", path, headers, "")
}

/// A minimal HTTP/1.1 POST of a JSON body: status and response body.
pub fn http_post_json(address: &str, path: &str, body: &str) -> Option<(u16, String)> {
    http_request(address, "POST", path, &[("Content-Type", "application/json")], body)
}

fn http_request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut headers: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    if !body.is_empty() {
        headers.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{headers}Connection: close\r\n\r\n{body}").ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = if head.to_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_owned() };
    Some((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// A `kmon consume --group` process whose printed lines are collected.
pub struct GroupConsumer {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl GroupConsumer {
    /// With a 3 s session (heartbeats every 500 ms), from the beginning.
    pub fn start(bootstrap: &str, topic: &str, group: &str) -> GroupConsumer {
        Self::start_with(bootstrap, topic, group, &["--session-timeout", "3s"])
    }

    pub fn start_with(bootstrap: &str, topic: &str, group: &str, extra: &[&str]) -> GroupConsumer {
        let mut child = Command::new(KMON)
            .args(["consume", "--topic", topic, "--group", group, "--from-beginning"])
            .args(["--heartbeat-interval", "500ms"])
            .args(extra)
            .env("KMON_BOOTSTRAP", bootstrap)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        GroupConsumer { child, lines }
    }

    pub fn seen(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn stop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = wait_for("consumer to stop", Duration::from_secs(20), || self.child.try_wait().ok().flatten());
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A child process SIGKILLed (and reaped) on drop.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
