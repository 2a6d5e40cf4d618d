//! The end-user wallet: an app's backend lets one of its end users see and revoke what they
//! connected, without writing those pages itself. The app mints a short-lived wallet session
//! (like a connect session); its link opens once and is swapped for a browser cookie. Everything
//! the wallet shows or changes goes through the same rules as the API (disconnect revokes at the
//! provider; a delegation's revocation is audited); it never shows a token. What the user does is
//! audited with actor `end_user`.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tokenvault_store::{GrantFilter, WalletSessionRecord};

use crate::values::secrets::{constant_time_eq, hash_secret, random_secret};
use crate::{
    Actor, ApprovalListQuery, ApprovalView, AuditEventView, CallContext, DelegationView, GrantView, IdKind,
    ServiceError, Timestamp, Vault,
};

const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);
const MIN_TTL: Duration = Duration::from_secs(60);
const MAX_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletSessionInput {
    /// The app's own identifier of the end user.
    pub end_user_id: String,
    /// 60-3600 seconds (default 900): how long the link and the signed-in wallet last.
    #[serde(default, deserialize_with = "crate::values::whole_numbers::opt_u64")]
    pub ttl_seconds: Option<u64>,
}

/// A new wallet session as its creator sees it (the link only this once).
#[derive(Debug)]
pub struct CreatedWalletSession {
    pub id: String,
    pub end_user_id: String,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    pub wallet_url: SecretString,
}

/// A signed-in wallet (from its cookie). No `Debug`: it holds the form token.
#[derive(Clone)]
pub struct WalletSession {
    pub id: String,
    pub app_id: String,
    pub end_user_id: String,
    pub expires_at: Timestamp,
    /// Every form of the wallet carries it.
    pub csrf_token: String,
}

/// A freshly opened wallet: the cookie's secret (set once, HttpOnly) and the session.
pub struct OpenedWallet {
    pub cookie: SecretString,
    pub session: WalletSession,
}

/// One connection with what used it.
#[derive(Debug, Clone, Serialize)]
pub struct WalletConnection {
    pub grant: GrantView,
    pub provider_name: String,
    /// Delegations in force (agents that may use it).
    pub delegations: Vec<WalletDelegation>,
    pub last_used_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WalletDelegation {
    pub delegation: DelegationView,
    pub agent_name: String,
}

/// Everything the wallet page shows.
#[derive(Debug)]
pub struct WalletView {
    pub app: crate::App,
    pub end_user_id: String,
    pub connections: Vec<WalletConnection>,
    pub activity: Vec<AuditEventView>,
    pub pending_approvals: Vec<ApprovalView>,
    pub expires_at: Timestamp,
}

fn link_hash(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(hash_secret("tokenvault/wallet-link", secret))
}

fn cookie_hash(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(hash_secret("tokenvault/wallet-cookie", secret))
}

fn csrf_of(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(hash_secret("tokenvault/wallet-csrf", secret))
}

fn link_refused(code: &'static str) -> ServiceError {
    ServiceError::Gone {
        code,
        message: "this wallet link was already used or has expired; ask the app for a new one".into(),
    }
}

fn session_of(record: WalletSessionRecord, cookie: &str) -> WalletSession {
    WalletSession {
        id: record.id,
        app_id: record.app_id,
        end_user_id: record.end_user_id,
        expires_at: Timestamp::from_millis(record.expires_at),
        csrf_token: csrf_of(cookie),
    }
}

impl WalletSession {
    /// The context of what the end user does in the wallet: actor `end_user`, their id.
    pub fn context(&self, request_id: String, client_ip: Option<std::net::IpAddr>) -> CallContext {
        CallContext {
            request_id,
            actor: Actor {
                kind: Some("end_user".into()),
                id: Some(self.end_user_id.clone()),
                reason: Some("wallet".into()),
            },
            client_ip,
            key: None,
        }
    }

    /// Whether a form carries this session's token (constant time).
    pub fn csrf_ok(&self, presented: &str) -> bool {
        constant_time_eq(self.csrf_token.as_bytes(), presented.as_bytes())
    }
}

impl Vault {
    /// `POST /v1/wallet-sessions`: a link that signs one end user in to their wallet.
    pub async fn create_wallet_session(
        &self,
        app_id: &str,
        input: WalletSessionInput,
        context: &CallContext,
    ) -> Result<CreatedWalletSession, ServiceError> {
        if context.agent_id().is_some() {
            return Err(ServiceError::Forbidden {
                code: "agent_not_allowed",
                message: "an agent key cannot open an end user's wallet".into(),
            });
        }
        let end_user_id = crate::connect::sessions::validate_end_user_id(&input.end_user_id)?;
        let ttl = input.ttl_seconds.map(Duration::from_secs).unwrap_or(DEFAULT_TTL);
        if !(MIN_TTL..=MAX_TTL).contains(&ttl) {
            return Err(ServiceError::invalid("invalid_ttl", "`ttl_seconds` must be between 60 and 3600"));
        }
        let secret = format!("tvw_{}", random_secret());
        let now = self.now();
        let record = WalletSessionRecord {
            id: IdKind::WalletSession.generate(),
            app_id: app_id.to_owned(),
            end_user_id,
            link_hash: link_hash(&secret),
            cookie_hash: None,
            created_at: now.as_millis(),
            expires_at: now.plus(ttl).as_millis(),
            opened_at: None,
            revoked_at: None,
        };
        self.store.insert_wallet_session(&record).await?;
        self.audit(crate::audit::AuditEntry::config(app_id, "wallet_session.created", &record.id, context));
        let base = self.public_url().as_str().trim_end_matches('/').to_owned();
        Ok(CreatedWalletSession {
            id: record.id,
            end_user_id: record.end_user_id,
            expires_at: Timestamp::from_millis(record.expires_at),
            created_at: now,
            wallet_url: SecretString::from(format!("{base}/wallet/{secret}")),
        })
    }

    /// Opens a wallet link (once): a new cookie secret bound to the session.
    pub async fn open_wallet(&self, link: &str) -> Result<OpenedWallet, ServiceError> {
        if !link.starts_with("tvw_") || link.len() > 100 {
            return Err(link_refused("unknown_wallet_link"));
        }
        let cookie = random_secret();
        let now = self.now().as_millis();
        match self.store.open_wallet_session(&link_hash(link), &cookie_hash(&cookie), now).await {
            Ok(record) => {
                tracing::info!(wallet_session_id = %record.id, "wallet opened");
                Ok(OpenedWallet { session: session_of(record, &cookie), cookie: SecretString::from(cookie) })
            }
            Err(tokenvault_store::StoreError::NotFound) => {
                if self.store.wallet_link_known(&link_hash(link)).await? {
                    Err(link_refused("wallet_link_used"))
                } else {
                    Err(link_refused("unknown_wallet_link"))
                }
            }
            Err(other) => Err(other.into()),
        }
    }

    /// The signed-in wallet a cookie names.
    pub async fn wallet_session(&self, cookie: &str) -> Result<WalletSession, ServiceError> {
        let record =
            self.store.find_wallet_session(&cookie_hash(cookie), self.now().as_millis()).await.map_err(|_| {
                ServiceError::Unauthenticated {
                    code: "wallet_signed_out",
                    message: "open the wallet from the app again",
                }
            })?;
        Ok(session_of(record, cookie))
    }

    pub async fn sign_out_wallet(&self, session: &WalletSession) -> Result<(), ServiceError> {
        self.store.revoke_wallet_session(&session.id, self.now().as_millis()).await?;
        Ok(())
    }

    /// The end user's grants of this app, newest first (revoked ones left out).
    async fn wallet_grants(&self, session: &WalletSession) -> Result<Vec<GrantView>, ServiceError> {
        let filter = GrantFilter { end_user_id: Some(&session.end_user_id), provider: None, status: None };
        let mut grants: Vec<GrantView> = self
            .store
            .list_grants(&session.app_id, &filter, None, 200)
            .await?
            .into_iter()
            .filter(|g| g.status != "revoked")
            .map(GrantView::from)
            .collect();
        grants.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(grants)
    }

    /// What the wallet page shows.
    pub async fn wallet_view(&self, session: &WalletSession) -> Result<WalletView, ServiceError> {
        let app: crate::App =
            self.store.get_app(&session.app_id).await.map_err(ServiceError::from_store("app"))?.into();
        let grants = self.wallet_grants(session).await?;
        let agents = self.store.list_agents(&session.app_id).await?;
        let now = self.now().as_millis();
        // Newest first: what the page shows, and where each grant's last use is found.
        let activity = self.latest_audit_of_end_user(&session.app_id, &session.end_user_id, 50).await?;
        let mut connections = Vec::with_capacity(grants.len());
        let mut pending_approvals = Vec::new();
        let system = CallContext::system("wallet");
        for grant in grants {
            let delegations = self
                .store
                .grant_delegations(&session.app_id, &grant.id)
                .await?
                .into_iter()
                .filter(|d| d.revoked_at.is_none() && d.expires_at.is_none_or(|e| e > now))
                .map(|d| WalletDelegation {
                    agent_name: agents.iter().find(|a| a.id == d.agent_id).map(|a| a.name.clone()).unwrap_or_default(),
                    delegation: d.into(),
                })
                .collect();
            let last_used_at = activity
                .iter()
                .filter(|e| {
                    e.grant_id.as_deref() == Some(grant.id.as_str())
                        && (e.action == "proxy.request" || e.action == "token.retrieved")
                })
                .map(|e| e.at)
                .max();
            let query = ApprovalListQuery {
                status: Some("pending".into()),
                grant_id: Some(grant.id.clone()),
                ..Default::default()
            };
            pending_approvals.extend(self.list_approvals(&session.app_id, query, &system).await?);
            connections.push(WalletConnection {
                provider_name: self
                    .catalog()
                    .get(&grant.provider)
                    .map(|d| d.display_name.clone())
                    .unwrap_or_else(|| grant.provider.clone()),
                grant,
                delegations,
                last_used_at,
            });
        }
        Ok(WalletView {
            app,
            end_user_id: session.end_user_id.clone(),
            connections,
            activity,
            pending_approvals,
            expires_at: session.expires_at,
        })
    }

    /// The end user disconnects one of their grants: revoked at the provider, as the API does.
    pub async fn wallet_disconnect(
        &self,
        session: &WalletSession,
        grant_id: &str,
        context: &CallContext,
    ) -> Result<GrantView, ServiceError> {
        let id = IdKind::Grant.parse(grant_id)?;
        let grant = self.store.get_grant(&session.app_id, &id).await.map_err(ServiceError::from_store("grant"))?;
        if grant.end_user_id != session.end_user_id {
            return Err(ServiceError::not_found("grant"));
        }
        self.disconnect_grant(&session.app_id, &id, context).await
    }

    /// The end user stops one agent from using one of their grants.
    pub async fn wallet_revoke_delegation(
        &self,
        session: &WalletSession,
        delegation_id: &str,
        context: &CallContext,
    ) -> Result<(), ServiceError> {
        let delegation = self.get_delegation(&session.app_id, delegation_id).await?;
        let grant = self
            .store
            .get_grant(&session.app_id, &delegation.grant_id)
            .await
            .map_err(ServiceError::from_store("grant"))?;
        if grant.end_user_id != session.end_user_id {
            return Err(ServiceError::not_found("delegation"));
        }
        self.revoke_delegation(&session.app_id, &delegation.id, context).await
    }
}
