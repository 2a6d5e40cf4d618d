//! Scopes of API keys: what a key may do, as `{resource}:{verb}`.
//!
//! Level verbs are ordered, `read < write < admin` (read lists and gets, write creates and
//! changes, admin deletes and revokes; each includes the ones before). Action verbs stand alone
//! and are never covered by a wildcard or a level: `tokens:retrieve` (the raw token leaves the
//! vault), `proxy:execute` (a call is made with it), `connect:initiate` (an end user is sent to a
//! provider). `*:read`, `*:write` and `*:admin` cover every resource at that level, actions not
//! included. `*` alone is full access, actions included: the scope of keys minted before scopes
//! existed, and one a caller must ask for by name.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::ServiceError;

/// What a scope is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Agents,
    Approvals,
    App,
    Audit,
    Connect,
    Delegations,
    Grants,
    Keys,
    Policies,
    Providers,
    Proxy,
    Secrets,
    Tokens,
    Webhooks,
}

impl Resource {
    pub const ALL: [Resource; 14] = [
        Resource::Agents,
        Resource::Approvals,
        Resource::App,
        Resource::Audit,
        Resource::Connect,
        Resource::Delegations,
        Resource::Grants,
        Resource::Keys,
        Resource::Policies,
        Resource::Providers,
        Resource::Proxy,
        Resource::Secrets,
        Resource::Tokens,
        Resource::Webhooks,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Resource::Agents => "agents",
            Resource::Approvals => "approvals",
            Resource::App => "app",
            Resource::Audit => "audit",
            Resource::Connect => "connect",
            Resource::Delegations => "delegations",
            Resource::Grants => "grants",
            Resource::Keys => "keys",
            Resource::Policies => "policies",
            Resource::Providers => "providers",
            Resource::Proxy => "proxy",
            Resource::Secrets => "secrets",
            Resource::Tokens => "tokens",
            Resource::Webhooks => "webhooks",
        }
    }

    /// Whether the resource has `read < write < admin` levels (`tokens` and `proxy` only have
    /// their action).
    fn has_levels(self) -> bool {
        !matches!(self, Resource::Tokens | Resource::Proxy)
    }
}

/// `read < write < admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Read,
    Write,
    Admin,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Read => "read",
            Level::Write => "write",
            Level::Admin => "admin",
        }
    }
}

/// A verb that no level or wildcard covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// `tokens:retrieve`
    Retrieve,
    /// `proxy:execute`
    Execute,
    /// `connect:initiate`
    Initiate,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Retrieve, Action::Execute, Action::Initiate];

    fn resource(self) -> Resource {
        match self {
            Action::Retrieve => Resource::Tokens,
            Action::Execute => Resource::Proxy,
            Action::Initiate => Resource::Connect,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Action::Retrieve => "retrieve",
            Action::Execute => "execute",
            Action::Initiate => "initiate",
        }
    }
}

/// One scope a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// `*`: everything, actions included.
    Full,
    /// `*:{level}`: every resource at this level, no action.
    Every(Level),
    /// `{resource}:{level}`.
    Level(Resource, Level),
    /// `tokens:retrieve`, `proxy:execute`, `connect:initiate`.
    Action(Action),
}

impl Scope {
    pub const fn level(resource: Resource, level: Level) -> Scope {
        Scope::Level(resource, level)
    }

    pub fn parse(text: &str) -> Result<Scope, ServiceError> {
        let invalid = || {
            ServiceError::invalid(
                "invalid_scope",
                format!(
                    "`{}` is not a scope: use `{{resource}}:read|write|admin` (resources: {}), `*:read|write|admin`, \
                     `*`, or one of the actions {}",
                    text.chars().take(64).collect::<String>(),
                    Resource::ALL.iter().filter(|r| r.has_levels()).map(|r| r.name()).collect::<Vec<_>>().join(", "),
                    Action::ALL.iter().map(|a| Scope::Action(*a).to_string()).collect::<Vec<_>>().join(", "),
                ),
            )
        };
        if text == "*" {
            return Ok(Scope::Full);
        }
        let (resource, verb) = text.split_once(':').ok_or_else(invalid)?;
        let level = match verb {
            "read" => Some(Level::Read),
            "write" => Some(Level::Write),
            "admin" => Some(Level::Admin),
            _ => None,
        };
        if resource == "*" {
            return level.map(Scope::Every).ok_or_else(invalid);
        }
        let resource = Resource::ALL.into_iter().find(|r| r.name() == resource).ok_or_else(invalid)?;
        match level {
            Some(level) if resource.has_levels() => Ok(Scope::Level(resource, level)),
            Some(_) => Err(invalid()),
            None => Action::ALL
                .into_iter()
                .find(|a| a.resource() == resource && a.name() == verb)
                .map(Scope::Action)
                .ok_or_else(invalid),
        }
    }

    /// Whether holding `self` allows what `other` allows (so `other` may be given out by a
    /// holder of `self`, e.g. to a derived key).
    pub fn covers(self, other: Scope) -> bool {
        match (self, other) {
            (Scope::Full, _) => true,
            (_, Scope::Full) => false,
            (Scope::Every(held), Scope::Every(wanted)) => held >= wanted,
            (Scope::Every(held), Scope::Level(_, wanted)) => held >= wanted,
            (Scope::Level(r, held), Scope::Level(wanted_r, wanted)) => r == wanted_r && held >= wanted,
            (Scope::Action(held), Scope::Action(wanted)) => held == wanted,
            _ => false,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Full => f.write_str("*"),
            Scope::Every(level) => write!(f, "*:{}", level.name()),
            Scope::Level(resource, level) => write!(f, "{}:{}", resource.name(), level.name()),
            Scope::Action(action) => write!(f, "{}:{}", action.resource().name(), action.name()),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// What an operation needs: one scope, or nothing beyond a valid key (deriving a narrower key
/// from the caller's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Required {
    Scope(Scope),
    AnyKey,
}

impl fmt::Display for Required {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Required::Scope(scope) => scope.fmt(f),
            Required::AnyKey => f.write_str("(any valid key)"),
        }
    }
}

/// The scopes one key holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    pub fn full() -> ScopeSet {
        ScopeSet(vec![Scope::Full])
    }

    /// Reads a requested list: at least one scope, each valid, duplicates dropped, sorted.
    pub fn parse_requested(scopes: &[String]) -> Result<ScopeSet, ServiceError> {
        if scopes.is_empty() {
            return Err(ServiceError::invalid(
                "scopes_required",
                "name the scopes the key needs, e.g. [\"grants:read\", \"proxy:execute\"]; `*` is full access",
            ));
        }
        if scopes.len() > 64 {
            return Err(ServiceError::invalid("invalid_scope", "at most 64 scopes"));
        }
        let mut parsed = scopes.iter().map(|s| Scope::parse(s)).collect::<Result<Vec<_>, _>>()?;
        parsed.sort();
        parsed.dedup();
        Ok(ScopeSet(parsed))
    }

    /// Reads what the store holds: `None` is full access (keys from before scopes). A stored
    /// scope this version does not know is dropped (never widened).
    pub fn from_stored(stored: Option<&[String]>) -> ScopeSet {
        match stored {
            None => ScopeSet::full(),
            Some(list) => ScopeSet(list.iter().filter_map(|s| Scope::parse(s).ok()).collect()),
        }
    }

    pub fn to_stored(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    pub fn scopes(&self) -> &[Scope] {
        &self.0
    }

    pub fn allows(&self, required: Required) -> bool {
        match required {
            Required::AnyKey => true,
            Required::Scope(wanted) => self.0.iter().any(|held| held.covers(wanted)),
        }
    }

    /// Whether every scope of `other` is covered by one of ours.
    pub fn covers_all(&self, other: &ScopeSet) -> bool {
        other.0.iter().all(|wanted| self.0.iter().any(|held| held.covers(*wanted)))
    }

    /// The scopes of `other` that ours do not cover.
    pub fn uncovered<'a>(&self, other: &'a ScopeSet) -> Vec<&'a Scope> {
        other.0.iter().filter(|wanted| !self.0.iter().any(|held| held.covers(**wanted))).collect()
    }

    /// 403 `insufficient_scope` naming what was required and what the key has.
    pub fn check(&self, required: Required) -> Result<(), ServiceError> {
        if self.allows(required) {
            return Ok(());
        }
        Err(ServiceError::Forbidden {
            code: "insufficient_scope",
            message: format!("this operation needs the scope `{required}`; the key has: {self}"),
        })
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(none)");
        }
        let names: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&names.join(", "))
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(scopes: &[&str]) -> ScopeSet {
        ScopeSet::parse_requested(&scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn scopes_parse_and_print_back() {
        for text in ["*", "*:read", "*:admin", "grants:read", "keys:admin", "tokens:retrieve", "proxy:execute"] {
            assert_eq!(Scope::parse(text).unwrap().to_string(), text);
        }
        for bad in
            ["", "grants", "grants:delete", "tokens:read", "proxy:admin", "grants:retrieve", "*:execute", "x:read"]
        {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn levels_include_the_ones_below_and_never_an_action() {
        let admin = set(&["grants:admin"]);
        assert!(admin.allows(Required::Scope(Scope::level(Resource::Grants, Level::Read))));
        assert!(admin.allows(Required::Scope(Scope::level(Resource::Grants, Level::Write))));
        assert!(!admin.allows(Required::Scope(Scope::level(Resource::Keys, Level::Read))));
        let every = set(&["*:admin"]);
        assert!(every.allows(Required::Scope(Scope::level(Resource::Keys, Level::Admin))));
        for action in Action::ALL {
            assert!(!every.allows(Required::Scope(Scope::Action(action))), "{action:?}");
            assert!(ScopeSet::full().allows(Required::Scope(Scope::Action(action))));
        }
        let read = set(&["grants:read"]);
        assert!(!read.allows(Required::Scope(Scope::level(Resource::Grants, Level::Write))));
        assert!(read.check(Required::Scope(Scope::Action(Action::Retrieve))).is_err());
    }

    #[test]
    fn a_holder_can_give_out_only_what_it_holds() {
        let parent = set(&["grants:write", "proxy:execute"]);
        assert!(parent.covers_all(&set(&["grants:read", "proxy:execute"])));
        assert!(!parent.covers_all(&set(&["grants:admin"])));
        assert!(!parent.covers_all(&set(&["tokens:retrieve"])));
        assert!(!parent.covers_all(&set(&["*:read"])));
        assert!(!set(&["*:admin"]).covers_all(&set(&["*"])));
        assert!(ScopeSet::full().covers_all(&set(&["*", "tokens:retrieve"])));
        assert_eq!(
            parent.uncovered(&set(&["grants:read", "keys:read"])),
            vec![&Scope::level(Resource::Keys, Level::Read)]
        );
    }

    #[test]
    fn stored_scopes_never_widen() {
        assert_eq!(ScopeSet::from_stored(None), ScopeSet::full());
        let stored = vec!["grants:read".to_owned(), "future:thing".to_owned()];
        assert_eq!(ScopeSet::from_stored(Some(&stored)), set(&["grants:read"]));
        assert!(ScopeSet::parse_requested(&[]).is_err());
    }
}
