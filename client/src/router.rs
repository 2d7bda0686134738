//! Which broker gets a request.
//!
//! | request                                   | goes to                    |
//! |-------------------------------------------|----------------------------|
//! | topic admin (create/list/describe/delete) | any broker (it forwards)   |
//! | Metadata                                  | any broker (its local copy)|
//! | Produce, Fetch, ListOffsets               | the partition's leader     |
//!
//! "Any broker" is the bootstrap broker first, then the other known
//! brokers (alive first) while the failure is a transport one. Leader
//! requests are grouped per leader: one request per leader broker. A
//! [`Router`] holds the [`MetadataCache`], refreshed from `Metadata` on
//! demand and after routing errors (concurrent callers that saw the same
//! cache generation share one refresh), and the connection [`Pool`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::future::join_all;
use kmon_proto::v1 as pb;

use crate::connection::{self, KmonClient, Pool, Security};
use crate::error::ClientError;
use crate::metadata::MetadataCache;
use crate::retry::Backoff;
use crate::types::ClusterMetadata;

/// Bound on one `Metadata` call to one broker.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on one admin call to one broker (the controller may be busy).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// See the module docs. Shared (`Arc`) by an admin client, a producer or
/// a consumer and everything cloned from them.
#[derive(Debug)]
pub(crate) struct Router {
    /// `HOST:PORT` the client was given; empty when built from a client.
    bootstrap: String,
    /// The bootstrap connection when the caller made it
    /// ([`Router::from_client`]): it cannot be re-made from an address.
    fixed: Option<KmonClient>,
    pool: Pool,
    cache: Mutex<MetadataCache>,
    refreshing: tokio::sync::Mutex<()>,
    /// RPCs sent: every call site takes a client from [`Router::client`]
    /// for exactly one call (attempt), so that is where they are counted.
    requests: AtomicU64,
}

impl Router {
    /// Connects to `bootstrap` (so a wrong address fails here); every
    /// connection is secured by `security` (this process's settings when
    /// `None`).
    pub(crate) async fn connect(bootstrap: &str, security: Option<&Security>) -> Result<Arc<Self>, ClientError> {
        let security = security.cloned().unwrap_or_else(Security::process);
        let client = connection::connect_with(bootstrap, &security).await?;
        let pool = Pool::new(security);
        pool.insert(bootstrap, client);
        Ok(Arc::new(Router {
            bootstrap: bootstrap.to_owned(),
            fixed: None,
            pool,
            cache: Mutex::default(),
            refreshing: tokio::sync::Mutex::new(()),
            requests: AtomicU64::new(0),
        }))
    }

    /// Uses an existing connection as the bootstrap broker.
    pub(crate) fn from_client(client: KmonClient) -> Arc<Self> {
        Arc::new(Router {
            bootstrap: String::new(),
            fixed: Some(client),
            pool: Pool::new(Security::process()),
            cache: Mutex::default(),
            refreshing: tokio::sync::Mutex::new(()),
            requests: AtomicU64::new(0),
        })
    }

    /// RPCs sent (or attempted) through this router so far.
    pub(crate) fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub(crate) fn cache(&self) -> MutexGuard<'_, MetadataCache> {
        self.cache.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// The pooled client for a broker address (as the cluster advertises
    /// it).
    pub(crate) async fn client(&self, address: &str) -> Result<KmonClient, ClientError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(fixed) = &self.fixed
            && address == self.bootstrap
        {
            return Ok(fixed.clone());
        }
        self.pool.get(&reachable_address(address, &self.bootstrap)).await
    }

    /// Forgets the connection to `address` if `err` says it is broken.
    pub(crate) fn note_failure(&self, address: &str, err: &ClientError) {
        if err.is_transport() && !(self.fixed.is_some() && address == self.bootstrap) {
            self.pool.evict(&reachable_address(address, &self.bootstrap));
        }
    }

    /// Runs `call` on the bootstrap broker, then on each other known
    /// broker while the failure is a transport one.
    pub(crate) async fn any_broker<T, F, Fut>(&self, mut call: F) -> Result<T, ClientError>
    where
        F: FnMut(KmonClient) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.any_broker_within(ADMIN_TIMEOUT, &mut call).await
    }

    async fn any_broker_within<T, F, Fut>(&self, timeout: Duration, call: &mut F) -> Result<T, ClientError>
    where
        F: FnMut(KmonClient) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut candidates = vec![self.bootstrap.clone()];
        for address in self.cache().broker_addresses() {
            if !candidates.contains(&address) {
                candidates.push(address);
            }
        }
        let mut last = None;
        for address in candidates {
            let result = match self.client(&address).await {
                Ok(client) => match tokio::time::timeout(timeout, call(client)).await {
                    Err(_) => Err(ClientError::Timeout(timeout)),
                    Ok(result) => result.map(tonic::Response::into_inner).map_err(ClientError::from),
                },
                Err(err) => Err(err),
            };
            match result {
                Err(err) if err.is_transport() => {
                    tracing::debug!(%address, error = %err, "broker unreachable, trying the next");
                    self.note_failure(&address, &err);
                    last = Some(err);
                }
                other => return other,
            }
        }
        Err(last.expect("the bootstrap broker is always a candidate"))
    }

    /// Asks any broker for metadata; an empty `topics` means every topic,
    /// and such a full answer also refreshes the cache.
    pub(crate) async fn metadata(&self, topics: &[&str]) -> Result<ClusterMetadata, ClientError> {
        let request = pb::MetadataRequest { topics: topics.iter().map(|t| (*t).to_owned()).collect() };
        let response = self
            .any_broker_within(METADATA_TIMEOUT, &mut |mut client: KmonClient| {
                let request = request.clone();
                async move { client.metadata(request).await }
            })
            .await?;
        let metadata = ClusterMetadata::from(response);
        if topics.is_empty() {
            self.cache().update(&metadata);
        }
        Ok(metadata)
    }

    /// Refreshes the cache unless someone else did since the caller read
    /// generation `seen`.
    pub(crate) async fn refresh(&self, seen: u64) -> Result<(), ClientError> {
        let _refreshing = self.refreshing.lock().await;
        if self.cache().generation() != seen {
            return Ok(());
        }
        self.metadata(&[]).await.map(|_| ())
    }

    /// Refreshes after a failed attempt; a failed refresh is only logged
    /// (the next attempt will tell).
    pub(crate) async fn refresh_after_error(&self, seen: u64) {
        if let Err(err) = self.refresh(seen).await {
            tracing::debug!(error = %err, "metadata refresh failed");
        }
    }

    /// Number of partitions of `topic`: from the cache, else from a
    /// refresh, else from `DescribeTopic` (answered by the controller, so
    /// right even while this broker's copy lags behind a creation; its
    /// error says when the topic does not exist).
    pub(crate) async fn partition_count(&self, topic: &str) -> Result<u32, ClientError> {
        let seen = {
            let cache = self.cache();
            if let Some(count) = cache.partition_count(topic) {
                return Ok(count);
            }
            cache.generation()
        };
        self.refresh_after_error(seen).await;
        if let Some(count) = self.cache().partition_count(topic) {
            return Ok(count);
        }
        let request = pb::DescribeTopicRequest { name: topic.to_owned() };
        let response = self
            .any_broker(|mut client| {
                let request = request.clone();
                async move { client.describe_topic(request).await }
            })
            .await?;
        Ok(response.topic.map_or(0, |t| t.partitions.len() as u32))
    }

    /// Groups `items` by the address of their partition's leader; items
    /// whose partition has no known leader come back apart.
    pub(crate) fn group_by_leader<T>(
        &self,
        items: Vec<T>,
        partition_of: impl Fn(&T) -> (&str, u32),
    ) -> (Vec<(String, Vec<T>)>, Vec<T>) {
        let cache = self.cache();
        let mut groups: HashMap<String, Vec<T>> = HashMap::new();
        let mut leaderless = Vec::new();
        for item in items {
            let (topic, partition) = partition_of(&item);
            match cache.leader_address(topic, partition) {
                Some(address) => groups.entry(address.to_owned()).or_default().push(item),
                None => leaderless.push(item),
            }
        }
        (groups.into_iter().collect(), leaderless)
    }

    /// After `err` from `address` for these partitions: drop a broken
    /// connection and believe a `kmon-leader` hint.
    pub(crate) fn learn_from<'a>(
        &self,
        address: &str,
        err: &ClientError,
        partitions: impl IntoIterator<Item = (&'a str, u32)>,
    ) {
        self.note_failure(address, err);
        if let ClientError::Server(server) = err
            && let Some(leader) = &server.leader
        {
            let mut cache = self.cache();
            for (topic, partition) in partitions {
                cache.apply_leader_hint(topic, partition, leader);
            }
        }
    }

    /// Sends `items` to their partitions' leaders, one `call` per leader
    /// (concurrently). Items that failed with a retriable error are sent
    /// again after a backoff and a metadata refresh, until `deadline`; the
    /// first other failure (or the last retriable one at the deadline) is
    /// returned.
    pub(crate) async fn call_leaders<T, R, F, Fut>(
        &self,
        items: Vec<T>,
        partition_of: impl Fn(&T) -> (&str, u32) + Copy,
        deadline: Instant,
        call: F,
    ) -> Result<Vec<R>, ClientError>
    where
        T: Clone,
        F: Fn(KmonClient, Vec<T>) -> Fut,
        Fut: Future<Output = Result<Vec<R>, ClientError>>,
    {
        let mut pending = items;
        let mut done = Vec::new();
        let mut backoff = Backoff::default();
        loop {
            let seen = self.cache().generation();
            let (groups, leaderless) = self.group_by_leader(pending, partition_of);
            let attempts = groups.into_iter().map(|(address, items)| {
                let call = &call;
                async move {
                    let result = match self.client(&address).await {
                        Ok(client) => call(client, items.clone()).await,
                        Err(err) => Err(err),
                    };
                    (address, items, result)
                }
            });
            let mut retry: Option<(Vec<T>, ClientError)> = None;
            for (address, items, result) in join_all(attempts).await {
                match result {
                    Ok(results) => done.extend(results),
                    Err(err) if err.is_retriable() => {
                        self.learn_from(&address, &err, items.iter().map(partition_of));
                        let entry = retry.get_or_insert_with(|| (Vec::new(), err));
                        entry.0.extend(items);
                    }
                    Err(err) => return Err(err),
                }
            }
            if let Some(first) = leaderless.first() {
                let (topic, partition) = partition_of(first);
                let err = ClientError::LeaderNotAvailable { topic: topic.to_owned(), partition };
                let entry = retry.get_or_insert_with(|| (Vec::new(), err));
                entry.0.extend(leaderless);
            }
            let Some((items, err)) = retry else {
                return Ok(done);
            };
            let delay = backoff.next_delay();
            if Instant::now() + delay >= deadline {
                return Err(err);
            }
            tracing::debug!(error = %err, ?delay, "retrying on the partition leaders");
            tokio::time::sleep(delay).await;
            self.refresh_after_error(seen).await;
            pending = items;
        }
    }
}

/// `address` with an unspecified host (`0.0.0.0`, `[::]`) replaced by the
/// bootstrap's host: a broker listening on every interface may advertise
/// that.
fn reachable_address<'a>(address: &'a str, bootstrap: &str) -> Cow<'a, str> {
    let Some((host, port)) = address.rsplit_once(':') else {
        return Cow::Borrowed(address);
    };
    let unspecified = matches!(host, "0.0.0.0" | "[::]" | "");
    match bootstrap.rsplit_once(':') {
        Some((bootstrap_host, _)) if unspecified && !bootstrap_host.is_empty() => {
            Cow::Owned(format!("{bootstrap_host}:{port}"))
        }
        _ => Cow::Borrowed(address),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_hosts_take_the_bootstrap_host() {
        assert_eq!(reachable_address("0.0.0.0:9093", "10.1.2.3:9092"), "10.1.2.3:9093");
        assert_eq!(reachable_address("[::]:9093", "kmon-1:9092"), "kmon-1:9093");
        assert_eq!(reachable_address("127.0.0.1:9093", "10.1.2.3:9092"), "127.0.0.1:9093");
        assert_eq!(reachable_address("0.0.0.0:9093", ""), "0.0.0.0:9093");
    }
}
