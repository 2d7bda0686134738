//! Planning time and plan quality of the rebalance planner on a synthetic
//! skewed cluster (10,000 RF-3 partitions, 30 brokers, half of them new;
//! see `kmon_broker::balance::synthetic`), in two layouts: 5 fault × 6
//! update domains (one broker per rack) and 3 × 3 (several per rack).
//! First prints, per layout, each goal's measure before, after the plan and
//! after a naive round-robin reassignment; then criterion times `plan`.
//!
//! `cargo bench -p kmon-broker --bench planner`

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use kmon_broker::balance::plan;
use kmon_broker::balance::synthetic::{Layout, comparison, skewed_cluster};

const BROKERS: u32 = 30;
const PARTITIONS: u32 = 10_000;
const SEED: u64 = 8;
const LAYOUTS: [(&str, Layout); 2] =
    [("5x6", Layout { fault_domains: 5, update_domains: 6 }), ("3x3", Layout { fault_domains: 3, update_domains: 3 })];

fn planner(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan");
    // One plan takes a fair share of a second: few samples suffice.
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    for (name, layout) in LAYOUTS {
        let cluster = skewed_cluster(BROKERS, PARTITIONS, layout, SEED);
        let all = BTreeSet::new();
        let result = plan(&cluster.state, &cluster.sizes, &all);
        println!("\n{PARTITIONS} partitions, {BROKERS} brokers, {name} domains:\n{}", comparison(&cluster, &result));
        group.bench_function(format!("{PARTITIONS}_partitions_{BROKERS}_brokers_{name}"), |b| {
            b.iter(|| plan(black_box(&cluster.state), black_box(&cluster.sizes), &all))
        });
    }
    group.finish();
}

criterion_group!(benches, planner);
criterion_main!(benches);
