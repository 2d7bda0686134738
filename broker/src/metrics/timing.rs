//! A tower layer around the gRPC server, for the request phases a handler
//! cannot see: it stamps each request on arrival (the handler's queue time
//! starts there) and, when the response body's last frame has been handed
//! to HTTP/2, records the response-send time and the request's total time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Body, Frame, SizeHint};
use tower::{Layer, Service};

use super::BrokerMetrics;

/// When the server received the request (a request extension).
#[derive(Debug, Clone, Copy)]
pub struct Arrived(pub Instant);

/// The Kafka request name of a gRPC method path; `None` for paths outside
/// the table (keeps the `request` label bounded).
pub fn request_name(path: &str) -> Option<&'static str> {
    let method = path.rsplit('/').next()?;
    Some(match method {
        "CreateTopic" => "CreateTopics",
        "ListTopics" | "Metadata" => "Metadata",
        "DescribeTopic" => "DescribeConfigs",
        "DeleteTopic" => "DeleteTopics",
        "Produce" => "Produce",
        "Fetch" => "Fetch",
        "ListOffsets" => "ListOffsets",
        "FindCoordinator" => "FindCoordinator",
        "JoinGroup" => "JoinGroup",
        "SyncGroup" => "SyncGroup",
        "Heartbeat" => "Heartbeat",
        "LeaveGroup" => "LeaveGroup",
        "OffsetCommit" => "OffsetCommit",
        "OffsetFetch" => "OffsetFetch",
        "ListGroups" => "ListGroups",
        "DescribeGroup" => "DescribeGroups",
        "DeleteGroup" => "DeleteGroups",
        "PlanRebalance" => "PlanRebalance",
        "RemoveBroker" => "RemoveBroker",
        "ReplicaFetch" => "FetchFollower",
        "OffsetForLeaderEpoch" => "OffsetForLeaderEpoch",
        "BrokerHeartbeat" => "BrokerHeartbeat",
        "AppendEntries" | "Vote" | "InstallSnapshot" | "ForwardWrite" => "ControllerQuorum",
        "Ship" => "ShipNodeMetrics",
        _ => return None,
    })
}

#[derive(Debug, Clone)]
pub struct TimingLayer {
    metrics: Arc<BrokerMetrics>,
}

impl TimingLayer {
    pub fn new(metrics: Arc<BrokerMetrics>) -> Self {
        TimingLayer { metrics }
    }
}

impl<S> Layer<S> for TimingLayer {
    type Service = Timing<S>;

    fn layer(&self, inner: S) -> Timing<S> {
        Timing { inner, metrics: self.metrics.clone() }
    }
}

#[derive(Debug, Clone)]
pub struct Timing<S> {
    inner: S,
    metrics: Arc<BrokerMetrics>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Timing<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<TimedBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<ReqBody>) -> Self::Future {
        let arrived = Instant::now();
        req.extensions_mut().insert(Arrived(arrived));
        let request = request_name(req.uri().path());
        let metrics = self.metrics.clone();
        let answer = self.inner.call(req);
        Box::pin(async move {
            let response = answer.await?;
            let answered = Instant::now();
            let pending = request.map(|request| Pending { request, arrived, answered, metrics });
            Ok(response.map(|inner| TimedBody { inner, pending }))
        })
    }
}

/// What to record once the body is sent.
#[derive(Debug)]
struct Pending {
    request: &'static str,
    arrived: Instant,
    answered: Instant,
    metrics: Arc<BrokerMetrics>,
}

/// A response body that notes when its last frame was taken.
#[derive(Debug)]
pub struct TimedBody<B> {
    inner: B,
    pending: Option<Pending>,
}

impl<B> TimedBody<B> {
    fn finish(&mut self) {
        if let Some(p) = self.pending.take() {
            p.metrics.observe_response(p.request, p.answered.elapsed(), p.arrived.elapsed());
        }
    }
}

impl<B: Body + Unpin> Body for TimedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        let last = match &polled {
            Poll::Ready(None) => true,
            // gRPC ends with trailers; HTTP/2 may not ask again after them.
            Poll::Ready(Some(Ok(frame))) => frame.is_trailers() || this.inner.is_end_stream(),
            _ => false,
        };
        if last {
            this.finish();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_names_follow_kafka() {
        assert_eq!(request_name("/kmon.v1.Kmon/Produce"), Some("Produce"));
        assert_eq!(request_name("/kmon.v1.Kmon/CreateTopic"), Some("CreateTopics"));
        assert_eq!(request_name("/kmon.replication.v1.Replication/ReplicaFetch"), Some("FetchFollower"));
        assert_eq!(request_name("/grpc.health.v1.Health/Check"), None);
    }
}
