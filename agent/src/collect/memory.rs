//! `node_memory_MemTotal_bytes` and `node_memory_MemAvailable_bytes`, from
//! sysinfo (on Linux: `/proc/meminfo`'s MemTotal and MemAvailable).

use sysinfo::{MemoryRefreshKind, System};

use super::{Collect, CollectError, Series};
use crate::metrics::{MEM_AVAILABLE, MEM_TOTAL};

#[derive(Debug, Default)]
pub struct MemoryCollector {
    system: Option<System>,
}

impl Collect for MemoryCollector {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn collect(&mut self, out: &mut Vec<Series>) -> Result<(), CollectError> {
        if self.system.is_none() {
            self.system = Some(System::new().map_err(|e| CollectError(e.to_string()))?);
        }
        let system = self.system.as_mut().expect("set above");
        system.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        let total = system.total_memory();
        if total == 0 {
            return Err(CollectError("total memory reads as 0".into()));
        }
        out.push(Series::new(&MEM_TOTAL, vec![], total as f64));
        out.push(Series::new(&MEM_AVAILABLE, vec![], system.available_memory() as f64));
        Ok(())
    }
}
