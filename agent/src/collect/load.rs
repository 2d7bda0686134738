//! `node_load1`, `node_load5`, `node_load15`, from sysinfo
//! (`/proc/loadavg` on Linux).

use sysinfo::System;

use super::{Collect, CollectError, Series};
use crate::metrics::{LOAD1, LOAD5, LOAD15};

#[derive(Debug)]
pub struct LoadCollector;

impl Collect for LoadCollector {
    fn name(&self) -> &'static str {
        "load"
    }

    fn collect(&mut self, out: &mut Vec<Series>) -> Result<(), CollectError> {
        let load = System::load_average().map_err(|e| CollectError(e.to_string()))?;
        out.push(Series::new(&LOAD1, vec![], load.one));
        out.push(Series::new(&LOAD5, vec![], load.five));
        out.push(Series::new(&LOAD15, vec![], load.fifteen));
        Ok(())
    }
}
