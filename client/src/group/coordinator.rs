//! Sends a group's RPCs to its coordinator.
//!
//! The coordinator is found with `FindCoordinator` on any broker and
//! cached. A call is retried with backoff (50 ms doubling to 1 s) until its
//! deadline on:
//!
//! | failure                                 | then                      |
//! |-----------------------------------------|---------------------------|
//! | NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE | forget it, find it again |
//! | transport failure, no answer in time    | forget it, find it again  |
//! | COORDINATOR_LOAD_IN_PROGRESS            | ask the same broker again |
//! | anything else                           | returned to the caller    |

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kmon_proto::v1 as pb;

use crate::connection::KmonClient;
use crate::error::{ClientError, ErrorCode};
use crate::retry::Backoff;
use crate::router::Router;

/// How long a group call keeps retrying coordinator moves by default
/// (the new leader of the offsets partition must be elected and load).
pub(crate) const COORDINATOR_RETRY_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on one attempt of an ordinary group call.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What a failed coordinator call calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Find the coordinator again, then retry.
    Refind,
    /// Retry the same coordinator after a backoff.
    Wait,
    /// Give the error to the caller.
    Fail,
}

pub(crate) fn classify(err: &ClientError) -> Failure {
    match err.code() {
        Some(ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable) => Failure::Refind,
        Some(ErrorCode::CoordinatorLoadInProgress) => Failure::Wait,
        _ if err.is_transport() => Failure::Refind,
        _ => Failure::Fail,
    }
}

/// A group's coordinator; see the module docs.
#[derive(Debug)]
pub(crate) struct Coordinator {
    router: Arc<Router>,
    group_id: String,
    address: Mutex<Option<String>>,
}

impl Coordinator {
    pub(crate) fn new(router: Arc<Router>, group_id: impl Into<String>) -> Self {
        Coordinator { router, group_id: group_id.into(), address: Mutex::new(None) }
    }

    pub(crate) fn group_id(&self) -> &str {
        &self.group_id
    }

    fn cached(&self) -> Option<String> {
        self.address.lock().unwrap_or_else(|poison| poison.into_inner()).clone()
    }

    fn set(&self, address: Option<String>) {
        *self.address.lock().unwrap_or_else(|poison| poison.into_inner()) = address;
    }

    /// Asks any broker for the coordinator (no retry).
    async fn find(&self) -> Result<String, ClientError> {
        let request = pb::FindCoordinatorRequest { group_id: self.group_id.clone() };
        let response = self
            .router
            .any_broker(|mut client| {
                let request = request.clone();
                async move { client.find_coordinator(request).await }
            })
            .await?;
        if response.address.is_empty() {
            return Err(ClientError::InvalidArgument(format!(
                "the broker named no coordinator for group {:?}",
                self.group_id
            )));
        }
        tracing::debug!(group = %self.group_id, node = response.node_id, address = %response.address, "found the coordinator");
        Ok(response.address)
    }

    /// Runs `call` on the coordinator, each attempt bounded by `timeout`,
    /// retrying as the module docs say until `deadline`.
    pub(crate) async fn call<T, F, Fut>(
        &self,
        timeout: Duration,
        deadline: Instant,
        mut call: F,
    ) -> Result<T, ClientError>
    where
        F: FnMut(KmonClient) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut backoff = Backoff::default();
        loop {
            let result = match self.cached() {
                Some(address) => Ok(address),
                None => self.find().await,
            };
            let result = match result {
                Err(err) => Err((None, err)),
                Ok(address) => {
                    self.set(Some(address.clone()));
                    let attempt = match self.router.client(&address).await {
                        Err(err) => Err(err),
                        Ok(client) => match tokio::time::timeout(timeout, call(client)).await {
                            Err(_) => Err(ClientError::Timeout(timeout)),
                            Ok(result) => result.map(tonic::Response::into_inner).map_err(ClientError::from),
                        },
                    };
                    attempt.map_err(|err| (Some(address), err))
                }
            };
            let (address, err) = match result {
                Ok(value) => return Ok(value),
                Err(failed) => failed,
            };
            match classify(&err) {
                Failure::Fail => return Err(err),
                Failure::Refind => {
                    if let Some(address) = &address {
                        self.router.note_failure(address, &err);
                    }
                    self.set(None);
                }
                Failure::Wait => {}
            }
            let delay = backoff.next_delay();
            if Instant::now() + delay >= deadline {
                return Err(err);
            }
            tracing::debug!(group = %self.group_id, error = %err, ?delay, "retrying a group call");
            tokio::time::sleep(delay).await;
        }
    }

    /// [`Coordinator::call`] with the default timeouts.
    pub(crate) async fn request<T, F, Fut>(&self, call: F) -> Result<T, ClientError>
    where
        F: FnMut(KmonClient) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.call(REQUEST_TIMEOUT, Instant::now() + COORDINATOR_RETRY_TIMEOUT, call).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::tests::server;

    #[test]
    fn coordinator_moves_are_retried_and_the_rest_fails() {
        use ErrorCode::*;
        assert_eq!(classify(&server(Some(NotCoordinator), tonic::Code::FailedPrecondition)), Failure::Refind);
        assert_eq!(classify(&server(Some(CoordinatorNotAvailable), tonic::Code::Unavailable)), Failure::Refind);
        assert_eq!(classify(&server(Some(CoordinatorLoadInProgress), tonic::Code::Unavailable)), Failure::Wait);
        assert_eq!(classify(&server(None, tonic::Code::Unavailable)), Failure::Refind);
        assert_eq!(classify(&ClientError::Timeout(Duration::from_secs(1))), Failure::Refind);
        for code in
            [RebalanceInProgress, UnknownMemberId, IllegalGeneration, FencedInstanceId, NonEmptyGroup, GroupIdNotFound]
        {
            assert_eq!(classify(&server(Some(code), tonic::Code::FailedPrecondition)), Failure::Fail, "{code:?}");
        }
    }
}
