//! Proxied bodies, streamed both ways and never buffered whole: the request body is counted and
//! capped on its way up; the response body is counted, capped and watched for stalls on its way
//! back, and writes the call's audit row when it ends or is dropped (a caller that disconnects
//! mid-stream still leaves its row). The one exception, [`read_capped`], reads a small answer whole
//! for callers that keep it (an approved call's answer, an MCP tool result).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use crate::ServiceError;
use crate::usage::proxy::audit::{CLIENT_DISCONNECTED, ProxyAudit};
use crate::usage::proxy::meter::BodyMeter;

/// A streamed body.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// Counts the caller's body into `meter` and fails it once it exceeds `limit` bytes.
pub(crate) fn metered_request(body: BodyStream, limit: u64, meter: Arc<BodyMeter>) -> BodyStream {
    Box::pin(body.map(move |chunk| {
        let chunk = chunk?;
        let seen = meter.add(chunk.len());
        if seen > limit {
            meter.mark_over_limit();
            return Err(io::Error::other("request body larger than the proxy accepts"));
        }
        Ok(chunk)
    }))
}

/// A request body on its way up: kept whole when small (so it can be replayed after a refresh),
/// streamed otherwise (sent once).
pub(crate) enum OutgoingBody {
    Kept(Bytes),
    Streamed(Option<BodyStream>),
}

/// Reads a whole answer of at most `limit` bytes: `Ok(None)` as soon as it is longer, an error if
/// it stops before its end.
pub async fn read_capped(mut body: BodyStream, limit: usize) -> Result<Option<Bytes>, ServiceError> {
    let mut kept = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| ServiceError::Gateway {
            status: 502,
            code: "upstream_body_incomplete",
            message: "the provider's answer stopped before its end".into(),
        })?;
        kept.extend_from_slice(&chunk);
        if kept.len() > limit {
            return Ok(None);
        }
    }
    Ok(Some(kept.freeze()))
}

impl OutgoingBody {
    /// Reads up to `limit` bytes: a body that ends within them is kept; a longer one is streamed
    /// on, behind what was already read.
    pub(crate) async fn keep_up_to(mut body: BodyStream, limit: u64) -> io::Result<OutgoingBody> {
        let mut kept = BytesMut::new();
        while let Some(chunk) = body.next().await {
            kept.extend_from_slice(&chunk?);
            if kept.len() as u64 > limit {
                let read = futures_util::stream::once(async move { Ok(kept.freeze()) });
                return Ok(OutgoingBody::Streamed(Some(Box::pin(read.chain(body)))));
            }
        }
        Ok(OutgoingBody::Kept(kept.freeze()))
    }

    pub(crate) fn is_replayable(&self) -> bool {
        matches!(self, OutgoingBody::Kept(_))
    }

    /// The body for one attempt; a streamed body can be sent only once (later: empty).
    pub(crate) fn next_attempt(&mut self) -> reqwest::Body {
        match self {
            OutgoingBody::Kept(bytes) => reqwest::Body::from(bytes.clone()),
            OutgoingBody::Streamed(stream) => match stream.take() {
                Some(stream) => reqwest::Body::wrap_stream(stream),
                None => reqwest::Body::from(Bytes::new()),
            },
        }
    }
}

/// The provider's response body on its way back to the caller.
pub(crate) struct ResponseBody {
    upstream: BodyStream,
    limit: u64,
    idle: Duration,
    idle_deadline: Pin<Box<tokio::time::Sleep>>,
    sent: u64,
    /// `Some` until the row is written.
    audit: Option<ProxyAudit>,
    /// False for answers without a body (HEAD, 204, 304), which the server drops unread.
    expects_body: bool,
    /// The declared `content-length`: once that many bytes passed, the body is complete even if
    /// the server drops the stream without polling it for its end.
    declared_length: Option<u64>,
}

impl ResponseBody {
    pub(crate) fn new(
        upstream: BodyStream,
        limit: u64,
        idle: Duration,
        audit: ProxyAudit,
        expects_body: bool,
        declared_length: Option<u64>,
    ) -> ResponseBody {
        let mut body = ResponseBody {
            upstream,
            limit,
            idle,
            idle_deadline: Box::pin(tokio::time::sleep(idle)),
            sent: 0,
            audit: Some(audit),
            expects_body,
            declared_length,
        };
        if declared_length == Some(0) {
            body.finish(None);
        }
        body
    }

    fn finish(&mut self, stopped: Option<&'static str>) {
        if let Some(audit) = self.audit.take() {
            audit.finish(self.sent, stopped);
        }
    }

    fn stop(&mut self, reason: &'static str, error: io::Error) -> Poll<Option<io::Result<Bytes>>> {
        self.finish(Some(reason));
        Poll::Ready(Some(Err(error)))
    }
}

impl Stream for ResponseBody {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.audit.is_none() {
            return Poll::Ready(None);
        }
        match this.upstream.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if this.sent + chunk.len() as u64 > this.limit {
                    return this.stop(
                        "upstream_response_too_large",
                        io::Error::other("the response is larger than the proxy passes on"),
                    );
                }
                this.sent += chunk.len() as u64;
                if this.declared_length == Some(this.sent) {
                    this.finish(None);
                }
                let deadline = tokio::time::Instant::now() + this.idle;
                this.idle_deadline.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(error))) => this.stop("upstream_body_error", error),
            Poll::Ready(None) => {
                this.finish(None);
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.idle_deadline.as_mut().poll(cx).is_ready() {
                    return this.stop(
                        "upstream_timeout",
                        io::Error::new(io::ErrorKind::TimedOut, "the provider stopped sending the response"),
                    );
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        let stopped = self.expects_body.then_some(CLIENT_DISCONNECTED);
        self.finish(stopped);
    }
}
