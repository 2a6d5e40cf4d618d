//! Serving routers on loopback listeners, with the per-connection kill switch that lets a fault
//! close a socket without writing any response (something `axum::serve` cannot do).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::MethodRouter;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::control::Control;
use crate::fault::{Endpoint, Fault};
use crate::inspect::RecordedRequest;
use crate::provider::{Host, Provider};
use crate::responses;

/// Largest request body the fakes read (bigger ones get 413).
const MAX_BODY: usize = 32 * 1024 * 1024;

/// Router state: which host is answering, and the shared control.
#[derive(Clone)]
pub struct HostCtx {
    pub control: Control,
    pub host: Host,
}

impl HostCtx {
    /// The provider this host serves. Only the evil host has none, and it has no provider routes.
    pub fn provider(&self) -> Provider {
        self.host.provider().unwrap_or(Provider::Generic)
    }

    pub fn base_url(&self) -> String {
        self.control.base_url(self.host)
    }
}

/// Closes the connection a request arrived on.
#[derive(Clone)]
struct ConnectionKill(Arc<Notify>);

/// Tags a route with its endpoint class: counts it and applies injected faults.
pub fn endpoint(route: MethodRouter<HostCtx>, ctx: &HostCtx, endpoint: Endpoint) -> MethodRouter<HostCtx> {
    let tag = EndpointTag { control: ctx.control.clone(), provider: ctx.provider(), endpoint };
    route.layer(middleware::from_fn_with_state(tag, fault_layer))
}

#[derive(Clone)]
struct EndpointTag {
    control: Control,
    provider: Provider,
    endpoint: Endpoint,
}

async fn fault_layer(State(tag): State<EndpointTag>, request: Request, next: Next) -> Response {
    let fault = {
        let mut state = tag.control.lock();
        *state.calls.entry((tag.provider, tag.endpoint)).or_default() += 1;
        state.faults.take(tag.provider, tag.endpoint)
    };
    let kill = request.extensions().get::<ConnectionKill>().cloned();
    match fault {
        None => next.run(request).await,
        Some(Fault::Status { status, body, retry_after }) => responses::canned(status, &body, retry_after),
        Some(Fault::Latency(delay)) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        Some(Fault::DropConnection) => drop_connection(kill).await,
        Some(Fault::DropAfterCommit) => {
            let _committed = next.run(request).await;
            drop_connection(kill).await
        }
        Some(Fault::LatencyAfterCommit(delay)) => {
            let committed = next.run(request).await;
            tokio::time::sleep(delay).await;
            committed
        }
    }
}

/// Never returns when served by [`spawn`]: the connection task drops the socket.
async fn drop_connection(kill: Option<ConnectionKill>) -> Response {
    match kill {
        Some(ConnectionKill(notify)) => {
            notify.notify_one();
            std::future::pending().await
        }
        None => responses::empty(500),
    }
}

/// Wraps a host's router: counts calls per host and records every request with its body.
pub fn host_router(router: Router<HostCtx>, ctx: HostCtx) -> Router {
    router
        // Proxy tests upload large bodies; axum's 2 MiB default would reject them.
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(ctx.clone(), record_layer))
        .with_state(ctx)
}

async fn record_layer(State(ctx): State<HostCtx>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return responses::empty(413);
    };
    let recorded = RecordedRequest {
        host: ctx.host,
        method: parts.method.to_string(),
        path: parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    };
    {
        let mut state = ctx.control.lock();
        *state.host_calls.entry(ctx.host).or_default() += 1;
        state.record(recorded);
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// Accepts connections until the returned task is aborted.
pub fn spawn(listener: TcpListener, router: Router) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(stream, router.clone()));
                }
                // Transient (e.g. out of file descriptors): back off briefly instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
}

async fn serve_connection(stream: tokio::net::TcpStream, router: Router) {
    let kill = Arc::new(Notify::new());
    let handle = ConnectionKill(kill.clone());
    let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(handle.clone());
        let router = router.clone();
        async move { Ok::<_, Infallible>(router.oneshot(request.map(Body::new)).await.unwrap_or_else(|e| match e {})) }
    });
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        // Dropping the connection future closes the socket without a response.
        _ = kill.notified() => {}
    }
}
