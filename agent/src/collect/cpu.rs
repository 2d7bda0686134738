//! `node_cpu_seconds_total{cpu,mode}`, read from `/proc/stat` as
//! node_exporter does. sysinfo 0.40 only gives a usage percentage per CPU,
//! not the time per mode that dashboards take `rate()` of, so on Linux the
//! agent parses `/proc/stat` itself; on other systems this collector fails
//! (counted as a scrape error) and no CPU series are exported.
//!
//! `/proc/stat` counts in USER_HZ ticks, which is 100 on every Linux
//! architecture (the kernel fixes it for user space; node_exporter's procfs
//! assumes the same).

use super::{Collect, CollectError, Series};
use crate::metrics::CPU_SECONDS;

const USER_HZ: f64 = 100.0;
/// node_exporter's modes, in `/proc/stat` column order (guest time is
/// already included in user and nice, so it is not a mode of its own).
const MODES: [&str; 8] = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"];

#[derive(Debug, Default)]
pub struct CpuCollector;

impl Collect for CpuCollector {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn collect(&mut self, out: &mut Vec<Series>) -> Result<(), CollectError> {
        if !cfg!(target_os = "linux") {
            return Err(CollectError("per-mode CPU time is only read on Linux (/proc/stat)".into()));
        }
        let text = std::fs::read_to_string("/proc/stat")?;
        parse_proc_stat(&text, out)
    }
}

/// Appends one series per `cpuN` line and mode.
pub fn parse_proc_stat(text: &str, out: &mut Vec<Series>) -> Result<(), CollectError> {
    let mut found = false;
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(cpu) = fields.next().and_then(|f| f.strip_prefix("cpu")) else { continue };
        if cpu.is_empty() {
            continue; // the "cpu" total line
        }
        found = true;
        for (mode, field) in MODES.iter().zip(fields) {
            let ticks: u64 =
                field.parse().map_err(|_| CollectError(format!("/proc/stat: bad value {field:?} for cpu{cpu}")))?;
            out.push(Series::new(
                &CPU_SECONDS,
                vec![("cpu", cpu.to_owned()), ("mode", (*mode).to_owned())],
                ticks as f64 / USER_HZ,
            ));
        }
    }
    if found { Ok(()) } else { Err(CollectError("/proc/stat has no cpuN lines".into())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_per_cpu_lines_in_seconds() {
        let text = "cpu  10 0 0 0 0 0 0 0 0 0\ncpu0 150 2 30 1000 5 0 1 0 0 0\ncpu1 1 2 3 4 5 6 7 8 9 10\nintr 1 2\n";
        let mut out = Vec::new();
        parse_proc_stat(text, &mut out).unwrap();
        assert_eq!(out.len(), 16);
        assert_eq!(out[0].labels, vec![("cpu", "0".to_owned()), ("mode", "user".to_owned())]);
        assert_eq!(out[0].value, 1.5);
        assert_eq!(out[3].value, 10.0);
        assert_eq!(out[15].labels[1].1, "steal");
        assert_eq!(out[15].value, 0.08);
        assert!(parse_proc_stat("intr 1\n", &mut Vec::new()).is_err());
    }
}
