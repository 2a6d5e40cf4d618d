//! The audit row of one proxied call. It is filled in as the call proceeds and written exactly
//! once: when the call stops early (refused path, policy denial, refresh failure, no answer, body
//! over a limit...), or when the response body ends or is dropped, since only then is the number
//! of bytes passed back known.

use std::sync::Arc;
use std::time::Instant;

use tokenvault_store::AuditRecord;
use url::Url;

use crate::audit::{AuditEntry, AuditSink, Reserved, outcome_of, path_without_values};
use crate::usage::proxy::meter::BodyMeter;
use crate::{CallContext, ServiceError};

/// Why a response body stopped before its end, as recorded in `detail`.
pub(crate) const CLIENT_DISCONNECTED: &str = "client_disconnected";

pub(crate) struct ProxyAudit {
    /// The row's room in the audit queue, reserved before anything else happens.
    slot: Reserved,
    record: AuditRecord,
    started: Instant,
    request_body: Arc<BodyMeter>,
}

/// The path as the caller asked for it, with query keys but no values.
fn requested_path(raw_path: &str, query: Option<&str>) -> String {
    let path = if raw_path.starts_with('/') { raw_path.to_owned() } else { format!("/{raw_path}") };
    let keys: Vec<String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).map(|(k, _)| format!("{k}=")).collect();
    if keys.is_empty() { path } else { format!("{path}?{}", keys.join("&")) }
}

impl ProxyAudit {
    /// Reserves the row's room in the audit queue first (waiting while the writer catches up);
    /// an error if the writer makes no room.
    pub(crate) async fn start(
        sink: AuditSink,
        app_id: &str,
        method: &http::Method,
        raw_path: &str,
        query: Option<&str>,
        context: &CallContext,
        request_body: Arc<BodyMeter>,
    ) -> Result<Self, ServiceError> {
        let slot = sink.reserve().await?;
        let mut record = AuditEntry::proxy(app_id, method, context).record;
        record.path = Some(requested_path(raw_path, query));
        Ok(Self { slot, record, started: Instant::now(), request_body })
    }

    /// The grant (or managed secret) the call goes through, once it is known to be the app's.
    pub(crate) fn subject(&mut self, grant_id: &str, provider: &str, end_user_id: Option<&str>) {
        self.record.grant_id = Some(grant_id.to_owned());
        self.record.provider = Some(provider.to_owned());
        self.record.end_user_id = end_user_id.map(str::to_owned);
    }

    /// The provider of the call, once known (`unknown` before).
    pub(crate) fn provider(&self) -> &str {
        self.record.provider.as_deref().unwrap_or("unknown")
    }

    pub(crate) fn upstream_status(&self) -> Option<u16> {
        self.record.upstream_status.and_then(|s| u16::try_from(s).ok())
    }

    /// The policies allowed the call; their decision is kept on this row instead of a row of its own.
    pub(crate) fn allowed(&mut self, decision: String) {
        self.record.detail = Some(decision);
    }

    /// The upstream URL, once the path is accepted.
    pub(crate) fn upstream(&mut self, url: &Url) {
        self.record.host = url.host_str().map(str::to_owned);
        self.record.path = Some(path_without_values(url));
    }

    /// The provider answered (status and headers).
    pub(crate) fn answered(&mut self, status: u16) {
        self.record.upstream_status = Some(i64::from(status));
        self.record.outcome = if status < 400 { "success" } else { "failure" }.into();
        self.record.latency_ms = Some(self.started.elapsed().as_millis() as i64);
    }

    /// The call was held for approval; nothing was sent.
    pub(crate) fn held(mut self, approval_id: &str) {
        self.record.outcome = "held".into();
        self.record.detail = Some(format!("held for approval {approval_id}"));
        self.record.latency_ms = Some(self.started.elapsed().as_millis() as i64);
        self.write(None);
    }

    /// The call stopped before a response was streamed back.
    pub(crate) fn failed(mut self, error: &ServiceError) {
        let (outcome, detail) = outcome_of(Some(error));
        self.record.outcome = outcome;
        self.record.detail = detail;
        self.record.latency_ms = Some(self.started.elapsed().as_millis() as i64);
        self.write(None);
    }

    /// The response body ended (`stopped` is `None`) or stopped early for the given reason.
    pub(crate) fn finish(mut self, response_bytes: u64, stopped: Option<&'static str>) {
        if let Some(reason) = stopped {
            if reason != CLIENT_DISCONNECTED {
                self.record.outcome = "failure".into();
            }
            self.record.detail = Some(reason.to_owned());
        }
        self.write(Some(response_bytes));
    }

    fn write(mut self, response_bytes: Option<u64>) {
        let record = &mut self.record;
        record.request_bytes = Some(self.request_body.bytes() as i64);
        record.response_bytes = response_bytes.map(|n| n as i64);
        // The access line of every call is `request finished`; this one adds the upstream detail,
        // at `info` when the call failed and at `debug` otherwise (the audit row holds it all).
        macro_rules! proxied {
            ($level:expr) => {
                tracing::event!($level,
                    grant_id = record.grant_id.as_deref().unwrap_or_default(),
                    method = record.method.as_deref().unwrap_or_default(),
                    host = record.host.as_deref().unwrap_or_default(),
                    status = record.upstream_status.unwrap_or_default(),
                    outcome = %record.outcome,
                    detail = record.detail.as_deref().unwrap_or_default(),
                    latency_ms = record.latency_ms.unwrap_or_default(),
                    request_bytes = record.request_bytes.unwrap_or_default(),
                    response_bytes = record.response_bytes.unwrap_or_default(),
                    "proxied"
                )
            };
        }
        if record.outcome == "success" {
            proxied!(tracing::Level::DEBUG);
        } else {
            proxied!(tracing::Level::INFO);
        }
        self.slot.record(AuditEntry { record: self.record });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_paths_keep_query_keys_only() {
        assert_eq!(requested_path("/v2/users", Some("page=2&token=abc")), "/v2/users?page=&token=");
        assert_eq!(requested_path("//evil.test/", None), "//evil.test/");
    }
}
