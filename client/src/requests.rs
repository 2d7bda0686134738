//! How many RPCs a client has sent: for tools that keep to a budget of
//! calls (`kmon tui` asks for a refresh's data in a few calls, whatever the
//! number of groups or partitions) and for tests that check they do.

use crate::admin::Admin;

impl Admin {
    /// RPCs this client (and its clones) has sent so far, retries and
    /// failed attempts included. Connecting does not count.
    pub fn requests_sent(&self) -> u64 {
        self.router.requests_sent()
    }
}
