//! Injected faults, for tests of what clients do when they happen. Set
//! through the environment of the broker process; unset in use.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every Nth Produce response (gRPC and Kafka listener together) is lost:
/// the batch was written, the client never hears so (the Kafka connection
/// is closed; gRPC answers UNAVAILABLE without an error code, as a
/// transport failure) and retries: an acknowledgement lost in the network.
pub const DROP_PRODUCE_RESPONSE_EVERY: &str = "KMON_FAULT_DROP_PRODUCE_RESPONSE_EVERY";

/// Whether to lose this Produce response.
pub fn drop_this_produce_response() -> bool {
    static EVERY: OnceLock<u64> = OnceLock::new();
    static PRODUCES: AtomicU64 = AtomicU64::new(0);
    let every = *EVERY
        .get_or_init(|| std::env::var(DROP_PRODUCE_RESPONSE_EVERY).ok().and_then(|v| v.parse().ok()).unwrap_or(0));
    every > 0 && (PRODUCES.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(every)
}
