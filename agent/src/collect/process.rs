//! Resident memory and CPU time of the local `kmon broker` processes, from
//! sysinfo's process list: a process counts when its executable name is
//! `kmon` and its first argument `broker`. Labels: `pid`, and `broker`, the
//! broker id taken from `--id N` / `--id=N` on its command line (empty when
//! the id comes from a config file or the environment).

use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

use super::{Collect, CollectError, Series};
use crate::metrics::{BROKER_CPU, BROKER_RSS};

#[derive(Debug, Default)]
pub struct ProcessCollector {
    system: Option<System>,
}

impl Collect for ProcessCollector {
    fn name(&self) -> &'static str {
        "process"
    }

    fn collect(&mut self, out: &mut Vec<Series>) -> Result<(), CollectError> {
        if self.system.is_none() {
            self.system = Some(System::new().map_err(|e| CollectError(e.to_string()))?);
        }
        let system = self.system.as_mut().expect("set above");
        system.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory().with_cmd(UpdateKind::OnlyIfNotSet),
        );
        let mut brokers: Vec<(u32, String, u64, u64)> = system
            .processes()
            .iter()
            .filter(|(_, p)| p.thread_kind().is_none())
            .filter_map(|(pid, p)| {
                let args: Vec<String> = p.cmd().iter().map(|a| a.to_string_lossy().into_owned()).collect();
                let id = broker_id(&p.name().to_string_lossy(), &args)?;
                Some((pid.as_u32(), id, p.memory(), p.accumulated_cpu_time()))
            })
            .collect();
        brokers.sort();
        for (pid, id, rss, cpu_ms) in brokers {
            let labels = vec![("pid", pid.to_string()), ("broker", id)];
            out.push(Series::new(&BROKER_RSS, labels.clone(), rss as f64));
            out.push(Series::new(&BROKER_CPU, labels, cpu_ms as f64 / 1000.0));
        }
        Ok(())
    }
}

/// `Some(broker id or "")` when `name`/`args` are a `kmon broker` process.
pub fn broker_id(name: &str, args: &[String]) -> Option<String> {
    let exe_is_kmon =
        name == "kmon" || args.first().and_then(|a| std::path::Path::new(a).file_name()).is_some_and(|f| f == "kmon");
    if !exe_is_kmon || args.get(1).map(String::as_str) != Some("broker") {
        return None;
    }
    let mut rest = args[2..].iter();
    while let Some(arg) = rest.next() {
        if arg == "--id" {
            return Some(rest.next().cloned().unwrap_or_default());
        }
        if let Some(id) = arg.strip_prefix("--id=") {
            return Some(id.to_owned());
        }
    }
    Some(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn recognises_broker_processes_and_their_ids() {
        assert_eq!(broker_id("kmon", &args(&["/x/kmon", "broker", "--id", "3"])), Some("3".into()));
        assert_eq!(broker_id("kmon", &args(&["kmon", "broker", "--data-dir", "d", "--id=12"])), Some("12".into()));
        assert_eq!(broker_id("kmon", &args(&["kmon", "broker"])), Some(String::new()));
        assert_eq!(broker_id("kmon", &args(&["kmon", "agent", "--id", "3"])), None);
        assert_eq!(broker_id("bash", &args(&["bash", "broker"])), None);
    }
}
