//! Webhooks to the app: endpoints it registers, events written to a durable outbox in the same
//! database as the grants, and a delivery worker that signs (Standard Webhooks), retries with
//! backoff, and keeps a delivery log. Payloads carry ids and states, never a token or secret.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokenvault_crypto::SealContext;
use tokenvault_store::{GrantRecord, WebhookDeliveryRecord, WebhookEndpointRecord};

use crate::outbound::standard_webhooks::{new_secret, sign};
use crate::{IdKind, ServiceError, Timestamp, Vault};

/// Every event type; `grant.refreshed` and `provider.event` are sent only when asked for.
pub const EVENT_TYPES: &[&str] = &[
    "grant.connected",
    "grant.refreshed",
    "grant.needs_reauth",
    "grant.revoked",
    "provider.event",
    "approval.requested",
    "approval.decided",
];
const DEFAULT_EVENT_TYPES: &[&str] =
    &["grant.connected", "grant.needs_reauth", "grant.revoked", "approval.requested", "approval.decided"];
/// Delays before each retry; after the last one the delivery is given up (about 27 hours).
const RETRY_DELAYS: &[u64] = &[5, 30, 120, 600, 1800, 3600, 7200, 14_400, 28_800, 43_200];
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointInput {
    /// HTTPS URL (http only for localhost; never a loopback, private or link-local address
    /// unless the operator allows it).
    pub url: String,
    /// Event types to receive; default: connected, needs_reauth, revoked.
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
pub struct WebhookEndpointView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: Timestamp,
    /// Shown once, when the endpoint is created or its secret rotated.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_opt")]
    pub secret: Option<SecretString>,
    /// After a rotation: until when deliveries also carry a signature by the previous secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<Timestamp>,
}

/// `POST /v1/webhook-endpoints/{id}/rotate-secret`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretInput {
    /// How long the previous secret keeps signing too (0-604800 s, default 86400): receivers
    /// switch to the new secret meanwhile.
    #[serde(default, deserialize_with = "crate::values::whole_numbers::opt_u64")]
    pub grace_seconds: Option<u64>,
}

const DEFAULT_SECRET_GRACE_SECONDS: u64 = 86_400;
const MAX_SECRET_GRACE_SECONDS: u64 = 7 * 86_400;

fn expose_opt<S: serde::Serializer>(secret: &Option<SecretString>, serializer: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(s) => serializer.serialize_str(s.expose_secret()),
        None => serializer.serialize_none(),
    }
}

/// One line of the delivery log.
#[derive(Debug, Serialize)]
pub struct WebhookDeliveryView {
    pub id: String,
    pub message_id: String,
    pub endpoint_id: String,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: Option<Timestamp>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
    pub payload: Value,
}

impl From<WebhookDeliveryRecord> for WebhookDeliveryView {
    fn from(d: WebhookDeliveryRecord) -> Self {
        WebhookDeliveryView {
            next_attempt_at: (d.state == "pending").then(|| Timestamp::from_millis(d.next_attempt_at)),
            payload: serde_json::from_str(&d.payload).unwrap_or(Value::Null),
            id: d.id,
            message_id: d.message_id,
            endpoint_id: d.endpoint_id,
            event_type: d.event_type,
            state: d.state,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: Timestamp::from_millis(d.created_at),
            delivered_at: d.delivered_at.map(Timestamp::from_millis),
        }
    }
}

/// Why a delivery attempt got no answer.
enum Undelivered {
    /// The egress guard refused the endpoint's address; nothing was sent.
    Refused(tokenvault_providers::EgressDenied),
    Transport(reqwest::Error),
    Failed(String),
}

/// The delivery log's `last_error` for a destination the egress guard refused.
fn refused_delivery(denied: &tokenvault_providers::EgressDenied) -> String {
    format!("destination_not_allowed: {denied} (refused by the egress guard; nothing was sent)")
}

/// What one delivery pass did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct DeliveryReport {
    pub attempted: usize,
    pub delivered: usize,
    pub retrying: usize,
    pub failed: usize,
}

fn endpoint_view(record: WebhookEndpointRecord, secret: Option<SecretString>) -> WebhookEndpointView {
    WebhookEndpointView {
        id: record.id,
        url: record.url,
        events: record.event_types,
        created_at: Timestamp::from_millis(record.created_at),
        secret,
        previous_secret_expires_at: record
            .previous_secret
            .as_ref()
            .and(record.previous_secret_until)
            .map(Timestamp::from_millis),
    }
}

impl Vault {
    pub async fn create_webhook_endpoint(
        &self,
        app_id: &str,
        input: WebhookEndpointInput,
        context: &crate::CallContext,
    ) -> Result<WebhookEndpointView, ServiceError> {
        let url = self.parse_called_url("url", &input.url).await?;
        let events = match input.events {
            None => DEFAULT_EVENT_TYPES.iter().map(|e| e.to_string()).collect(),
            Some(events) => {
                if events.is_empty() || events.iter().any(|e| !EVENT_TYPES.contains(&e.as_str())) {
                    return Err(ServiceError::invalid(
                        "invalid_event_types",
                        format!("`events` must be a non-empty subset of: {}", EVENT_TYPES.join(", ")),
                    ));
                }
                events
            }
        };
        if self.store.list_webhook_endpoints(app_id).await?.len() >= 10 {
            // A limit of the app's current state, not a flaw of this request: 409, like other conflicts.
            return Err(ServiceError::conflict("too_many_endpoints", "an app can have at most 10 webhook endpoints"));
        }
        let id = IdKind::WebhookEndpoint.generate();
        let secret = SecretString::from(new_secret());
        let sealed = self
            .keys
            .seal(&SealContext::new("webhook_endpoints", &id, "secret"), secret.expose_secret().as_bytes())
            .await?;
        let record = WebhookEndpointRecord {
            id,
            app_id: app_id.to_owned(),
            url: url.to_string(),
            secret: sealed,
            event_types: events,
            created_at: self.now().as_millis(),
            previous_secret: None,
            previous_secret_until: None,
        };
        self.store.insert_webhook_endpoint(&record).await?;
        self.audit(crate::audit::AuditEntry::config(app_id, "webhook_endpoint.created", &record.id, context));
        Ok(endpoint_view(record, Some(secret)))
    }

    pub async fn list_webhook_endpoints(&self, app_id: &str) -> Result<Vec<WebhookEndpointView>, ServiceError> {
        Ok(self.store.list_webhook_endpoints(app_id).await?.into_iter().map(|e| endpoint_view(e, None)).collect())
    }

    pub async fn delete_webhook_endpoint(
        &self,
        app_id: &str,
        id: &str,
        context: &crate::CallContext,
    ) -> Result<(), ServiceError> {
        let id = IdKind::WebhookEndpoint.parse(id)?;
        self.store.delete_webhook_endpoint(app_id, &id).await.map_err(ServiceError::from_store("webhook endpoint"))?;
        self.audit(crate::audit::AuditEntry::config(app_id, "webhook_endpoint.deleted", &id, context));
        Ok(())
    }

    /// A new signing secret for an endpoint (shown once). For `grace_seconds` the previous one
    /// signs too: each delivery carries both signatures, so receivers can switch without
    /// refusing an event.
    pub async fn rotate_webhook_secret(
        &self,
        app_id: &str,
        id: &str,
        input: RotateSecretInput,
        context: &crate::CallContext,
    ) -> Result<WebhookEndpointView, ServiceError> {
        let id = IdKind::WebhookEndpoint.parse(id)?;
        let grace = input.grace_seconds.unwrap_or(DEFAULT_SECRET_GRACE_SECONDS);
        if grace > MAX_SECRET_GRACE_SECONDS {
            return Err(ServiceError::invalid("invalid_grace", "`grace_seconds` is 0 to 604800 (7 days)"));
        }
        let mut record =
            self.store.find_webhook_endpoint(&id).await.map_err(ServiceError::from_store("webhook endpoint"))?;
        if record.app_id != app_id {
            return Err(ServiceError::not_found("webhook endpoint"));
        }
        let current = self.keys.open(&SealContext::new("webhook_endpoints", &id, "secret"), &record.secret).await?;
        let previous = match grace {
            0 => None,
            _ => Some(self.keys.seal(&SealContext::new("webhook_endpoints", &id, "previous_secret"), &current).await?),
        };
        let secret = SecretString::from(new_secret());
        let sealed = self
            .keys
            .seal(&SealContext::new("webhook_endpoints", &id, "secret"), secret.expose_secret().as_bytes())
            .await?;
        let until = previous.as_ref().map(|_| self.now().as_millis() + (grace as i64) * 1000);
        self.store
            .rotate_webhook_secret(app_id, &id, &record.secret, &sealed, previous.as_deref(), until)
            .await
            .map_err(|e| match e {
                tokenvault_store::StoreError::Conflict(_) => {
                    ServiceError::conflict("concurrent_rotation", "the secret was rotated at the same time; try again")
                }
                other => other.into(),
            })?;
        record.secret = sealed;
        record.previous_secret = previous;
        record.previous_secret_until = until;
        tracing::info!(app_id, webhook_endpoint_id = %id, grace_seconds = grace, "webhook secret rotated");
        self.audit(crate::audit::AuditEntry::config(app_id, "webhook_endpoint.secret_rotated", &id, context));
        Ok(endpoint_view(record, Some(secret)))
    }

    /// Sends a delivery again as soon as the worker runs (a given-up or still pending one; its
    /// `webhook-id` stays the same, so receivers deduplicate). A delivered one is `409`.
    pub async fn retry_webhook_delivery(
        &self,
        app_id: &str,
        id: &str,
        context: &crate::CallContext,
    ) -> Result<WebhookDeliveryView, ServiceError> {
        let id = IdKind::WebhookDelivery.parse(id)?;
        self.store.find_webhook_delivery(app_id, &id).await.map_err(ServiceError::from_store("webhook delivery"))?;
        if !self.store.retry_webhook_delivery(app_id, &id, self.now().as_millis()).await? {
            return Err(ServiceError::conflict("already_delivered", "this delivery was delivered; nothing to retry"));
        }
        self.audit(crate::audit::AuditEntry::config(app_id, "webhook_delivery.retried", &id, context));
        let record = self
            .store
            .find_webhook_delivery(app_id, &id)
            .await
            .map_err(ServiceError::from_store("webhook delivery"))?;
        Ok(record.into())
    }

    pub async fn list_webhook_deliveries(
        &self,
        app_id: &str,
        endpoint_id: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<WebhookDeliveryView>, ServiceError> {
        let endpoint_id = endpoint_id.map(|e| IdKind::WebhookEndpoint.parse(e)).transpose()?;
        let after = after.map(|a| IdKind::WebhookDelivery.parse(a)).transpose()?;
        let limit = i64::from(crate::PageSize::LIST.resolve(Some(limit))?);
        let rows = self.store.list_webhook_deliveries(app_id, endpoint_id.as_deref(), after.as_deref(), limit).await?;
        Ok(rows.into_iter().map(WebhookDeliveryView::from).collect())
    }

    /// The outbox rows announcing that `grant` is now in `status`, for the store to insert in the
    /// same transaction as the change itself (nothing is written here).
    pub(crate) async fn grant_event_rows(
        &self,
        grant: &GrantRecord,
        event_type: &str,
        status: &str,
        reason: Option<&str>,
    ) -> Result<Vec<WebhookDeliveryRecord>, ServiceError> {
        let data = json!({
            "grant_id": grant.id,
            "end_user_id": grant.end_user_id,
            "provider": grant.provider,
            "provider_config_id": grant.provider_config_id,
            "account_id": grant.account_id,
            "status": status,
            "reason": reason,
        });
        self.event_rows(&grant.app_id, event_type, data).await
    }

    /// Audits an event that was written (call only once its change is committed).
    pub(crate) fn audit_grant_event(&self, grant: &GrantRecord, event_type: &str, reason: Option<&str>) {
        self.audit(crate::audit::AuditEntry::grant_event(grant, event_type, reason));
    }

    pub(crate) async fn emit_event(&self, app_id: &str, event_type: &str, data: Value) -> Result<(), ServiceError> {
        for row in self.event_rows(app_id, event_type, data).await? {
            self.store.insert_webhook_delivery(&row).await?;
        }
        Ok(())
    }

    /// One outbox row per endpoint of the app that wants `event_type`, sharing one message id.
    async fn event_rows(
        &self,
        app_id: &str,
        event_type: &str,
        data: Value,
    ) -> Result<Vec<WebhookDeliveryRecord>, ServiceError> {
        let endpoints = self.store.list_webhook_endpoints(app_id).await?;
        let wanted: Vec<_> = endpoints.into_iter().filter(|e| e.event_types.iter().any(|t| t == event_type)).collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now();
        let message_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
        let payload = json!({ "type": event_type, "timestamp": now.to_rfc3339(), "data": data }).to_string();
        Ok(wanted
            .into_iter()
            .map(|endpoint| WebhookDeliveryRecord {
                id: IdKind::WebhookDelivery.generate(),
                message_id: message_id.clone(),
                app_id: app_id.to_owned(),
                endpoint_id: endpoint.id,
                event_type: event_type.to_owned(),
                payload: payload.clone(),
                state: "pending".into(),
                attempts: 0,
                next_attempt_at: now.as_millis(),
                last_status: None,
                last_error: None,
                created_at: now.as_millis(),
                delivered_at: None,
            })
            .collect())
    }

    /// One delivery pass: sends every due delivery once.
    pub async fn deliver_due_webhooks(self: &Arc<Self>, limit: i64) -> Result<DeliveryReport, ServiceError> {
        let now = self.now().as_millis();
        let lease_until = now + 2 * DELIVERY_TIMEOUT.as_millis() as i64;
        let due = self.store.claim_due_deliveries(now, lease_until, limit).await?;
        let mut report = DeliveryReport { attempted: due.len(), ..DeliveryReport::default() };
        let mut tasks = tokio::task::JoinSet::new();
        for delivery in due {
            let vault = self.clone();
            tasks.spawn(async move { vault.deliver(delivery).await });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok("delivered")) => report.delivered += 1,
                Ok(Ok("failed")) => report.failed += 1,
                Ok(Ok(_)) => report.retrying += 1,
                Ok(Err(error)) => {
                    tracing::error!(error = %error, "webhook delivery bookkeeping failed");
                    report.retrying += 1;
                }
                Err(error) => {
                    tracing::error!(error = %error, "webhook delivery task panicked");
                    report.retrying += 1;
                }
            }
        }
        Ok(report)
    }

    async fn deliver(&self, delivery: WebhookDeliveryRecord) -> Result<&'static str, ServiceError> {
        let endpoint = self.store.find_webhook_endpoint(&delivery.endpoint_id).await?;
        let secret =
            self.keys.open(&SealContext::new("webhook_endpoints", &endpoint.id, "secret"), &endpoint.secret).await?;
        let secret = String::from_utf8_lossy(&secret).into_owned();
        let timestamp = self.now().as_unix_seconds();
        let mut signature = sign(&secret, &delivery.message_id, timestamp, &delivery.payload);
        // During a rotation's grace period the previous secret signs too.
        if let (Some(previous), Some(until)) = (&endpoint.previous_secret, endpoint.previous_secret_until)
            && until > self.now().as_millis()
        {
            let previous = self
                .keys
                .open(&SealContext::new("webhook_endpoints", &endpoint.id, "previous_secret"), previous)
                .await?;
            let previous = String::from_utf8_lossy(&previous).into_owned();
            signature.push(' ');
            signature.push_str(&sign(&previous, &delivery.message_id, timestamp, &delivery.payload));
        }
        let sent = match url::Url::parse(&endpoint.url) {
            Err(_) => Err(Undelivered::Failed("the endpoint URL does not parse".into())),
            Ok(url) => match self.check_dial(&url) {
                Err(denied) => Err(Undelivered::Refused(denied)),
                Ok(()) => self
                    .webhook_http
                    .post(url)
                    .header("content-type", "application/json")
                    .header("webhook-id", &delivery.message_id)
                    .header("webhook-timestamp", timestamp.to_string())
                    .header("webhook-signature", signature)
                    .body(delivery.payload.clone())
                    .send()
                    .await
                    .map_err(Undelivered::Transport),
            },
        };
        let now = self.now().as_millis();
        let (status, error) = match sent {
            Ok(response) if response.status().is_success() => {
                self.store
                    .record_delivery_attempt(
                        &delivery.id,
                        "delivered",
                        now,
                        Some(i64::from(response.status().as_u16())),
                        None,
                        now,
                    )
                    .await?;
                return Ok("delivered");
            }
            Ok(response) => {
                (Some(i64::from(response.status().as_u16())), format!("HTTP {}", response.status().as_u16()))
            }
            Err(Undelivered::Refused(denied)) => (None, refused_delivery(&denied)),
            Err(Undelivered::Transport(err)) => match tokenvault_providers::EgressDenied::find(&err) {
                Some(denied) => (None, refused_delivery(denied)),
                None if err.is_timeout() => (None, "timed out".to_owned()),
                None if err.is_connect() => (None, "connection failed".to_owned()),
                None => (None, "request failed".to_owned()),
            },
            Err(Undelivered::Failed(why)) => (None, why),
        };
        let attempt = delivery.attempts as usize;
        match RETRY_DELAYS.get(attempt) {
            Some(delay) => {
                let next = now + (*delay as i64) * 1000;
                self.store.record_delivery_attempt(&delivery.id, "pending", next, status, Some(&error), now).await?;
                Ok("retrying")
            }
            None => {
                self.store.record_delivery_attempt(&delivery.id, "failed", now, status, Some(&error), now).await?;
                tracing::warn!(delivery_id = %delivery.id, endpoint_id = %endpoint.id, "webhook delivery given up");
                Ok("failed")
            }
        }
    }

    /// Runs the delivery worker every `interval` until `shutdown` fires.
    pub async fn run_webhook_worker(self: Arc<Self>, interval: Duration, shutdown: tokio::sync::watch::Receiver<bool>) {
        crate::periodic::run_every(interval, shutdown, || async {
            if let Err(error) = self.deliver_due_webhooks(100).await {
                tracing::error!(error = %error, "webhook delivery pass failed");
            }
        })
        .await
    }
}
