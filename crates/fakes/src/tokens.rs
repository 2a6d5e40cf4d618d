//! Grants and the tokens issued from them.
//!
//! A grant is one consent by one user to one client. Killing a grant kills every token issued from
//! it, which is how deauthorize, re-authorization (Zoom 4741), code reuse (RFC 6749 §4.1.2) and
//! refresh-token reuse (RFC 9700 §4.14.2) are modelled.

use std::collections::HashMap;

use crate::model::FakeUser;

pub type GrantId = u64;

#[derive(Clone, Debug)]
pub struct Grant {
    pub id: GrantId,
    pub client_id: String,
    pub user: FakeUser,
    pub scopes: Vec<String>,
    /// The authorization code this grant was minted from.
    pub code: Option<String>,
    pub revoked: bool,
}

impl Grant {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Why a presented token is not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenProblem {
    Unknown,
    Expired,
    Revoked,
    /// A refresh token replaced by rotation (after any grace period).
    Superseded,
}

#[derive(Debug)]
struct AccessRecord {
    grant: GrantId,
    expires_at: Option<u64>,
    revoked: bool,
}

#[derive(Debug)]
struct RefreshRecord {
    grant: GrantId,
    issued_at: u64,
    superseded_at: Option<u64>,
    revoked: bool,
}

#[derive(Debug, Default)]
pub struct TokenStore {
    next_grant: GrantId,
    grants: HashMap<GrantId, Grant>,
    access: HashMap<String, AccessRecord>,
    refresh: HashMap<String, RefreshRecord>,
}

impl TokenStore {
    pub fn create_grant(
        &mut self,
        client_id: &str,
        user: FakeUser,
        scopes: Vec<String>,
        code: Option<String>,
    ) -> Grant {
        self.next_grant += 1;
        let id = self.next_grant;
        let grant = Grant { id, client_id: client_id.to_owned(), user, scopes, code, revoked: false };
        self.grants.insert(id, grant.clone());
        grant
    }

    pub fn grants(&self) -> impl Iterator<Item = &Grant> {
        self.grants.values()
    }

    pub fn add_access(&mut self, grant: GrantId, token: String, expires_at: Option<u64>) {
        self.access.insert(token, AccessRecord { grant, expires_at, revoked: false });
    }

    pub fn add_refresh(&mut self, grant: GrantId, token: String, now: u64) {
        self.refresh.insert(token, RefreshRecord { grant, issued_at: now, superseded_at: None, revoked: false });
    }

    /// The live grant behind an access token.
    pub fn check_access(&self, token: &str, now: u64) -> Result<&Grant, TokenProblem> {
        let record = self.access.get(token).ok_or(TokenProblem::Unknown)?;
        let grant = self.grants.get(&record.grant).ok_or(TokenProblem::Unknown)?;
        if record.revoked || grant.revoked {
            return Err(TokenProblem::Revoked);
        }
        match record.expires_at {
            Some(at) if now >= at => Err(TokenProblem::Expired),
            _ => Ok(grant),
        }
    }

    /// The grant behind a refresh token, which stays usable for `grace` seconds after rotation and
    /// dies after `max_inactivity` seconds without being exchanged.
    pub fn check_refresh(
        &self,
        token: &str,
        now: u64,
        grace: u64,
        max_inactivity: Option<u64>,
    ) -> Result<&Grant, (TokenProblem, Option<GrantId>)> {
        let record = self.refresh.get(token).ok_or((TokenProblem::Unknown, None))?;
        let grant = self.grants.get(&record.grant).ok_or((TokenProblem::Unknown, None))?;
        let fail = |p| Err((p, Some(grant.id)));
        if record.revoked || grant.revoked {
            return fail(TokenProblem::Revoked);
        }
        if let Some(at) = record.superseded_at
            && now >= at + grace
        {
            return fail(TokenProblem::Superseded);
        }
        if let Some(limit) = max_inactivity
            && now >= record.issued_at + limit
        {
            return fail(TokenProblem::Expired);
        }
        Ok(grant)
    }

    /// Marks a refresh token as replaced by a newer one (rotation).
    pub fn supersede_refresh(&mut self, token: &str, now: u64) {
        if let Some(record) = self.refresh.get_mut(token) {
            record.superseded_at.get_or_insert(now);
        }
    }

    pub fn revoke_grant(&mut self, id: GrantId) {
        if let Some(grant) = self.grants.get_mut(&id) {
            grant.revoked = true;
        }
    }

    /// Revokes every live grant matching `pred`; returns how many.
    pub fn revoke_grants_where(&mut self, pred: impl Fn(&Grant) -> bool) -> usize {
        let mut n = 0;
        for grant in self.grants.values_mut().filter(|g| !g.revoked && pred(g)) {
            grant.revoked = true;
            n += 1;
        }
        n
    }

    /// Revokes one access token only; `false` if unknown.
    pub fn revoke_access(&mut self, token: &str) -> bool {
        match self.access.get_mut(token) {
            Some(record) => {
                record.revoked = true;
                true
            }
            None => false,
        }
    }

    /// The grant an access or refresh token belongs to, live or not.
    pub fn grant_of(&self, token: &str) -> Option<&Grant> {
        let id = self.access.get(token).map(|r| r.grant).or_else(|| self.refresh.get(token).map(|r| r.grant))?;
        self.grants.get(&id)
    }

    pub fn is_refresh_token(&self, token: &str) -> bool {
        self.refresh.contains_key(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Provider;

    fn store_with_grant() -> (TokenStore, GrantId) {
        let mut store = TokenStore::default();
        let user = FakeUser::default_for(Provider::Zoom);
        let id = store.create_grant("c", user, vec![], None).id;
        (store, id)
    }

    #[test]
    fn access_tokens_expire_and_die_with_their_grant() {
        let (mut store, id) = store_with_grant();
        store.add_access(id, "a".into(), Some(200));
        assert!(store.check_access("a", 199).is_ok());
        assert_eq!(store.check_access("a", 200).err(), Some(TokenProblem::Expired));
        store.revoke_grant(id);
        assert_eq!(store.check_access("a", 150).err(), Some(TokenProblem::Revoked));
        assert_eq!(store.check_access("zzz", 150).err(), Some(TokenProblem::Unknown));
    }

    #[test]
    fn superseded_refresh_tokens_honour_grace() {
        let (mut store, id) = store_with_grant();
        store.add_refresh(id, "r".into(), 100);
        store.supersede_refresh("r", 110);
        assert!(store.check_refresh("r", 110, 5, None).is_ok());
        assert_eq!(store.check_refresh("r", 115, 5, None).err().map(|e| e.0), Some(TokenProblem::Superseded));
        assert_eq!(store.check_refresh("r", 110, 0, None).err().map(|e| e.0), Some(TokenProblem::Superseded));
    }

    #[test]
    fn refresh_tokens_expire_after_inactivity() {
        let (mut store, id) = store_with_grant();
        store.add_refresh(id, "r".into(), 100);
        assert!(store.check_refresh("r", 199, 0, Some(100)).is_ok());
        assert_eq!(store.check_refresh("r", 200, 0, Some(100)).err().map(|e| e.0), Some(TokenProblem::Expired));
    }
}
