//! Who is calling, as the HTTP edge saw it: recorded in the audit log and matched by policies.

use std::net::IpAddr;

use serde::Serialize;

use crate::ServiceError;

/// The actor a caller declares (`x-actor-type`, `x-actor-id`, `x-actor-reason`): e.g. an AI agent
/// acting for a user. Declared, not proven: the API key (an agent key for a registered agent)
/// is the authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Actor {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub id: Option<String>,
    pub reason: Option<String>,
}

pub(crate) const ACTOR_TYPES: &[&str] = &["ai_agent", "service", "user", "system"];

impl Actor {
    /// Validates the declared actor: a known type, an id of at most 128 printable characters, a
    /// reason of at most 512.
    pub fn parse(kind: Option<&str>, id: Option<&str>, reason: Option<&str>) -> Result<Actor, ServiceError> {
        let printable = |s: &str, max: usize| s.len() <= max && !s.chars().any(char::is_control);
        if let Some(kind) = kind
            && !ACTOR_TYPES.contains(&kind)
        {
            return Err(ServiceError::invalid(
                "invalid_actor",
                format!("`x-actor-type` must be one of {}", ACTOR_TYPES.join(", ")),
            ));
        }
        if id.is_some_and(|i| i.is_empty() || !printable(i, 128)) {
            return Err(ServiceError::invalid("invalid_actor", "`x-actor-id` must be 1-128 printable characters"));
        }
        if reason.is_some_and(|r| !printable(r, 512)) {
            return Err(ServiceError::invalid(
                "invalid_actor",
                "`x-actor-reason` must be at most 512 printable characters",
            ));
        }
        Ok(Actor { kind: kind.map(str::to_owned), id: id.map(str::to_owned), reason: reason.map(str::to_owned) })
    }
}

/// The context of one API call.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    pub request_id: String,
    /// Declared by the caller: context for the audit log and policies, never an identity.
    pub actor: Actor,
    pub client_ip: Option<IpAddr>,
    /// The API key that authenticated the call (`None` for operators and browsers): the
    /// verified identity, agent included.
    pub key: Option<std::sync::Arc<crate::access::principal::KeyPrincipal>>,
}

impl CallContext {
    /// A change made by the vault's own tooling (e.g. the command line), recorded as actor
    /// `system` with the given id.
    pub fn system(actor_id: &str) -> CallContext {
        CallContext {
            actor: Actor { kind: Some("system".into()), id: Some(actor_id.to_owned()), reason: None },
            ..CallContext::default()
        }
    }

    /// The verified agent making the call, if an agent key authenticated it.
    pub fn agent_id(&self) -> Option<&str> {
        self.key.as_ref().and_then(|k| k.agent_id.as_deref())
    }
}
