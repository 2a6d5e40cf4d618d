//! Starting every emulator on its own loopback listener.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::control::Control;
use crate::provider::Host;
use crate::server::{self, HostCtx};
use crate::urls::FakeUrls;
use crate::{aircall, control_http, dialpad, evil, generic, zoom};

/// Where to listen.
#[derive(Clone, Debug)]
pub struct FakesOptions {
    pub bind: IpAddr,
    /// `None`: every listener takes an ephemeral port. `Some(p)`: hosts get `p..p+8` in
    /// [`Host::ALL`] order and the control API gets `p+9`, for stable demo URLs.
    pub base_port: Option<u16>,
}

impl Default for FakesOptions {
    fn default() -> Self {
        FakesOptions { bind: IpAddr::V4(Ipv4Addr::LOCALHOST), base_port: None }
    }
}

/// All emulators, running until dropped.
pub struct Fakes {
    urls: FakeUrls,
    control_url: String,
    control: Control,
    tasks: Vec<JoinHandle<()>>,
}

impl Fakes {
    /// Binds every host and the control API on 127.0.0.1 with ephemeral ports.
    pub async fn start() -> anyhow::Result<Fakes> {
        Fakes::start_with(FakesOptions::default()).await
    }

    pub async fn start_with(options: FakesOptions) -> anyhow::Result<Fakes> {
        let port = |index: usize| -> anyhow::Result<u16> {
            match options.base_port {
                None => Ok(0),
                Some(base) => u16::try_from(index)
                    .ok()
                    .and_then(|i| base.checked_add(i))
                    .context("base port too high for all listeners"),
            }
        };
        let mut bound = Vec::new();
        for (index, host) in Host::ALL.into_iter().enumerate() {
            let listener = TcpListener::bind((options.bind, port(index)?))
                .await
                .with_context(|| format!("binding the {} fake", host.as_str()))?;
            let base = format!("http://{}", listener.local_addr()?);
            bound.push((host, listener, base));
        }
        let control_listener = TcpListener::bind((options.bind, port(Host::ALL.len())?))
            .await
            .context("binding the fakes' control API")?;
        let control_url = format!("http://{}", control_listener.local_addr()?);

        let control = Control::new();
        let bases: Vec<(Host, String)> = bound.iter().map(|(h, _, b)| (*h, b.clone())).collect();
        let urls = FakeUrls::from_bases(&bases);
        control.set_urls(urls.clone());

        let mut tasks = Vec::new();
        for (host, listener, _) in bound {
            let ctx = HostCtx { control: control.clone(), host };
            let router = server::host_router(host_routes(&ctx), ctx);
            tasks.push(server::spawn(listener, router));
        }
        let control_router = control_http::router(control.clone(), control_url.clone());
        tasks.push(server::spawn(control_listener, control_router));
        Ok(Fakes { urls, control_url, control, tasks })
    }

    pub fn urls(&self) -> &FakeUrls {
        &self.urls
    }

    /// A handle on the shared state (cheap to clone).
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// Base URL of the JSON control API (`/_fake/...`).
    pub fn control_url(&self) -> &str {
        &self.control_url
    }
}

impl Drop for Fakes {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn host_routes(ctx: &HostCtx) -> Router<HostCtx> {
    match ctx.host {
        Host::DialpadProduction | Host::DialpadSandbox => dialpad::router(ctx),
        Host::ZoomOauth => zoom::oauth_router(ctx),
        Host::ZoomApi | Host::ZoomApiAlt => zoom::api_router(ctx),
        Host::AircallDashboard => aircall::dashboard_router(ctx),
        Host::AircallApi => aircall::api_router(ctx),
        Host::Generic => generic::router(ctx),
        Host::Evil => evil::router(),
    }
}
