//! Test harness: real `kmon` processes on 127.0.0.1 with ephemeral ports.
//! A broker reports the ports it bound on standard output; the harness
//! waits for that line (with a deadline) and SIGKILLs the process on drop.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const KMON: &str = env!("CARGO_BIN_EXE_kmon");
const READY_PREFIX: &str = "kmon broker ready";
const START_DEADLINE: Duration = Duration::from_secs(60);

pub struct BrokerProcess {
    child: Option<Child>,
    pub grpc: String,
    pub metrics: String,
    pub data_dirs: Vec<PathBuf>,
    pub stderr_path: PathBuf,
    extra_args: Vec<String>,
}

impl BrokerProcess {
    /// Starts `kmon broker` on `data_dir` with any extra flags.
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> BrokerProcess {
        Self::start_dirs(&[data_dir.to_path_buf()], extra_args)
    }

    pub fn start_dirs(data_dirs: &[PathBuf], extra_args: &[&str]) -> BrokerProcess {
        let mut b = BrokerProcess {
            child: None,
            grpc: String::new(),
            metrics: String::new(),
            data_dirs: data_dirs.to_vec(),
            stderr_path: data_dirs[0].with_extension(format!("stderr.{}", std::process::id())),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
        };
        b.spawn("127.0.0.1:0", "127.0.0.1:0");
        b
    }

    fn spawn(&mut self, listen: &str, metrics: &str) {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_path)
            .expect("stderr file");
        let mut cmd = Command::new(KMON);
        cmd.arg("broker");
        for dir in &self.data_dirs {
            cmd.arg("--data-dir").arg(dir);
        }
        cmd.args(["--listen", listen, "--metrics-listen", metrics])
            .args(&self.extra_args)
            .env_remove("KMON_BOOTSTRAP")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = cmd.spawn().expect("spawn kmon broker");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with(READY_PREFIX) {
                    let _ = tx.send(line);
                }
            }
        });
        let line = match rx.recv_timeout(START_DEADLINE) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("broker did not become ready; stderr:\n{}", self.stderr());
            }
        };
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name}= in {line}"))
                .to_string()
        };
        self.grpc = field("grpc");
        self.metrics = field("metrics");
        self.child = Some(child);
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
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
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

    /// Starts again on the same data (new ephemeral ports: reusing the old
    /// ones could race with other tests).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn("127.0.0.1:0", "127.0.0.1:0");
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

/// Runs `kmon ARGS`, asserts failure and returns stderr.
pub fn kmon_err(bootstrap: &str, args: &[&str], stdin: &str) -> String {
    let out = kmon(bootstrap, args, stdin);
    assert!(
        !out.status.success(),
        "kmon {args:?} should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
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
