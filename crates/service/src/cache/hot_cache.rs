//! In-memory caches of what every token fetch and proxied call reads: verified API keys, grants
//! and managed secrets (sealed, as stored), and each app's policies. The steady-state hot path
//! then costs no database round trip.
//!
//! Coherence: a change written by this process is announced by the store right after it commits
//! and drops the entry at once; a change written by another instance reaches this one through
//! the database's change feed ([`crate::cache::change_feed`]), read every 200 ms. A cache serves only
//! while the feed was read successfully within [`STALENESS_BOUND`]: a revoked key or grant, or a
//! new denying policy, is never served from memory later than that after its change committed.
//!
//! A load racing a change must not put the old value back after the change dropped it: every
//! key falls in one of a few stripes with a counter that each drop bumps; a loader takes the
//! counter before it reads the database and stores its result only if the counter did not move.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::sync::Cache;
use prometheus_client::metrics::counter::Counter;
use tokenvault_store::{
    AgentRecord, ApiKeyRecord, ChangeKind, DelegationRecord, GrantRecord, ManagedSecretRecord, PolicyRecord,
};

/// How long after a change committed on any instance a cache may still serve the old value.
pub const STALENESS_BOUND: Duration = Duration::from_secs(1);

const STRIPES: usize = 256;

/// What a grant id names: an OAuth grant or a managed secret (they share one id space).
#[derive(Clone)]
pub(crate) enum Subject {
    Grant(Arc<GrantRecord>),
    Managed(Arc<ManagedSecretRecord>),
}

impl Subject {
    fn app_id(&self) -> &str {
        match self {
            Subject::Grant(g) => &g.app_id,
            Subject::Managed(m) => &m.app_id,
        }
    }
}

/// A loader's proof of what it saw before reading the database (see the module text).
#[derive(Clone, Copy)]
pub(crate) struct Ticket {
    stripe: usize,
    epoch: u64,
}

/// Entry limits: bounded memory whatever the number of stored grants (a cached grant is about
/// 2-4 KB with its sealed tokens, so the grants cache stays under ~40 MB when full).
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    pub api_keys: u64,
    pub subjects: u64,
    pub policy_sets: u64,
    /// Agents, and each agent's delegations (one entry per agent for each).
    pub agents: u64,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits { api_keys: 10_000, subjects: 10_000, policy_sets: 10_000, agents: 10_000 }
    }
}

pub(crate) struct HotCache {
    api_keys: Cache<String, Arc<ApiKeyRecord>>,
    subjects: Cache<String, Subject>,
    policies: Cache<String, Arc<Vec<PolicyRecord>>>,
    agents: Cache<String, Arc<AgentRecord>>,
    delegations: Cache<String, Arc<Vec<DelegationRecord>>>,
    stripes: Vec<AtomicU64>,
    /// Held to drop an entry and to store a loaded one, so a store never overtakes a drop.
    writes: Mutex<()>,
    hasher: std::collections::hash_map::RandomState,
    origin: Instant,
    /// Milliseconds since `origin` at which the last successful feed read started; 0: never.
    synced_at_ms: AtomicU64,
    /// (hit, miss) counters of the api key, subject, policy, agent and delegation caches.
    counters: [(Counter, Counter); 5],
}

const API_KEYS: usize = 0;
const SUBJECTS: usize = 1;
const POLICIES: usize = 2;
const AGENTS: usize = 3;
const DELEGATIONS: usize = 4;

impl HotCache {
    pub(crate) fn new(limits: CacheLimits, metrics: &crate::Metrics) -> HotCache {
        let pair = |name| (metrics.cache_counter(name, true), metrics.cache_counter(name, false));
        HotCache {
            api_keys: Cache::new(limits.api_keys),
            subjects: Cache::new(limits.subjects),
            policies: Cache::new(limits.policy_sets),
            agents: Cache::new(limits.agents),
            delegations: Cache::new(limits.agents),
            stripes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            writes: Mutex::new(()),
            hasher: Default::default(),
            origin: Instant::now(),
            synced_at_ms: AtomicU64::new(0),
            counters: [pair("api_keys"), pair("grants"), pair("policies"), pair("agents"), pair("delegations")],
        }
    }

    fn stripe(&self, space: &str, key: &str) -> usize {
        let mut hasher = self.hasher.build_hasher();
        space.hash(&mut hasher);
        key.hash(&mut hasher);
        (hasher.finish() as usize) % STRIPES
    }

    /// True while the change feed was read within the bound: only then is memory trusted.
    fn serving(&self) -> bool {
        self.serving_at(self.millis_since_origin())
    }

    fn serving_at(&self, now_ms: u64) -> bool {
        let synced = self.synced_at_ms.load(Ordering::Acquire);
        synced != 0 && now_ms.saturating_sub(synced) <= STALENESS_BOUND.as_millis() as u64
    }

    fn millis_since_origin(&self) -> u64 {
        // Never 0, which means "never synced".
        self.origin.elapsed().as_millis() as u64 + 1
    }

    /// The instant a feed read starts, to pass to [`HotCache::synced`] once it succeeded.
    pub(crate) fn read_started(&self) -> u64 {
        self.millis_since_origin()
    }

    pub(crate) fn synced(&self, started: u64) {
        self.synced_at_ms.fetch_max(started, Ordering::AcqRel);
    }

    fn counted<T>(&self, cache: usize, found: Option<T>) -> Option<T> {
        let (hits, misses) = &self.counters[cache];
        if found.is_some() {
            hits.inc()
        } else {
            misses.inc()
        };
        found
    }

    pub(crate) fn api_key(&self, id: &str) -> Option<Arc<ApiKeyRecord>> {
        self.counted(API_KEYS, self.serving().then(|| self.api_keys.get(id)).flatten())
    }

    /// The subject `id`, if cached and owned by `app_id` (else the caller reads the database,
    /// which says "not found" for another app's id).
    pub(crate) fn subject(&self, app_id: &str, id: &str) -> Option<Subject> {
        let found = self.serving().then(|| self.subjects.get(id)).flatten().filter(|s| s.app_id() == app_id);
        self.counted(SUBJECTS, found)
    }

    /// The OAuth grant `id` whatever its app (background work that knows only the id).
    pub(crate) fn grant_by_id(&self, id: &str) -> Option<GrantRecord> {
        let found = self.serving().then(|| self.subjects.get(id)).flatten().and_then(|s| match s {
            Subject::Grant(grant) => Some(GrantRecord::clone(&grant)),
            Subject::Managed(_) => None,
        });
        self.counted(SUBJECTS, found)
    }

    pub(crate) fn policies(&self, app_id: &str) -> Option<Arc<Vec<PolicyRecord>>> {
        self.counted(POLICIES, self.serving().then(|| self.policies.get(app_id)).flatten())
    }

    pub(crate) fn agent(&self, id: &str) -> Option<Arc<AgentRecord>> {
        self.counted(AGENTS, self.serving().then(|| self.agents.get(id)).flatten())
    }

    pub(crate) fn delegations(&self, agent_id: &str) -> Option<Arc<Vec<DelegationRecord>>> {
        self.counted(DELEGATIONS, self.serving().then(|| self.delegations.get(agent_id)).flatten())
    }

    pub(crate) fn agent_ticket(&self, id: &str) -> Ticket {
        self.ticket("agent", id)
    }

    pub(crate) fn delegations_ticket(&self, agent_id: &str) -> Ticket {
        self.ticket("delegation", agent_id)
    }

    pub(crate) fn put_agent(&self, ticket: Ticket, record: AgentRecord) {
        self.storing(ticket, || self.agents.insert(record.id.clone(), Arc::new(record)));
    }

    pub(crate) fn put_delegations(&self, ticket: Ticket, agent_id: &str, records: Vec<DelegationRecord>) {
        self.storing(ticket, || self.delegations.insert(agent_id.to_owned(), Arc::new(records)));
    }

    pub(crate) fn api_key_ticket(&self, id: &str) -> Ticket {
        self.ticket("api_key", id)
    }

    pub(crate) fn subject_ticket(&self, id: &str) -> Ticket {
        self.ticket("subject", id)
    }

    pub(crate) fn policies_ticket(&self, app_id: &str) -> Ticket {
        self.ticket("policy", app_id)
    }

    fn ticket(&self, space: &str, key: &str) -> Ticket {
        let stripe = self.stripe(space, key);
        Ticket { stripe, epoch: self.stripes[stripe].load(Ordering::Acquire) }
    }

    fn storing(&self, ticket: Ticket, store: impl FnOnce()) {
        let _writes = self.writes.lock().expect("cache lock poisoned");
        if self.stripes[ticket.stripe].load(Ordering::Acquire) == ticket.epoch {
            store();
        }
    }

    pub(crate) fn put_api_key(&self, ticket: Ticket, record: ApiKeyRecord) {
        self.storing(ticket, || self.api_keys.insert(record.id.clone(), Arc::new(record)));
    }

    pub(crate) fn put_subject(&self, ticket: Ticket, id: &str, subject: Subject) {
        self.storing(ticket, || self.subjects.insert(id.to_owned(), subject));
    }

    pub(crate) fn put_policies(&self, ticket: Ticket, app_id: &str, policies: Vec<PolicyRecord>) {
        self.storing(ticket, || self.policies.insert(app_id.to_owned(), Arc::new(policies)));
    }

    /// Drops what a change names (and for an app, everything: its deletion takes its keys,
    /// grants and policies with it).
    pub(crate) fn drop_changed(&self, kind: ChangeKind, key: &str) {
        let _writes = self.writes.lock().expect("cache lock poisoned");
        let bump = |space: &str| {
            self.stripes[self.stripe(space, key)].fetch_add(1, Ordering::AcqRel);
        };
        match kind {
            ChangeKind::ApiKey => {
                bump("api_key");
                self.api_keys.invalidate(key);
            }
            ChangeKind::Grant | ChangeKind::ManagedSecret => {
                bump("subject");
                self.subjects.invalidate(key);
            }
            ChangeKind::Policy => {
                bump("policy");
                self.policies.invalidate(key);
            }
            ChangeKind::Agent => {
                bump("agent");
                self.agents.invalidate(key);
            }
            ChangeKind::Delegation => {
                bump("delegation");
                self.delegations.invalidate(key);
            }
            ChangeKind::App => self.drop_everything_locked(),
        }
    }

    /// Forgets everything (a feed that could not be followed, an app deleted).
    pub(crate) fn drop_everything(&self) {
        let _writes = self.writes.lock().expect("cache lock poisoned");
        self.drop_everything_locked();
    }

    fn drop_everything_locked(&self) {
        for stripe in &self.stripes {
            stripe.fetch_add(1, Ordering::AcqRel);
        }
        self.api_keys.invalidate_all();
        self.subjects.invalidate_all();
        self.policies.invalidate_all();
        self.agents.invalidate_all();
        self.delegations.invalidate_all();
    }

    pub(crate) fn entries(&self) -> u64 {
        self.api_keys.entry_count()
            + self.subjects.entry_count()
            + self.policies.entry_count()
            + self.agents.entry_count()
            + self.delegations.entry_count()
    }
}

/// Reads through the caches: what the hot path calls instead of the store.
impl crate::Vault {
    /// The API key record `id`, from memory when it can be trusted.
    pub(crate) async fn cached_api_key(&self, id: &str) -> Result<Arc<ApiKeyRecord>, tokenvault_store::StoreError> {
        if let Some(found) = self.cache.api_key(id) {
            return Ok(found);
        }
        let ticket = self.cache.api_key_ticket(id);
        let record = self.store.find_api_key(id).await?;
        self.cache.put_api_key(ticket, record.clone());
        Ok(Arc::new(record))
    }

    /// The agent `id` (any app), from memory when it can be trusted.
    pub(crate) async fn cached_agent(&self, id: &str) -> Result<Arc<AgentRecord>, tokenvault_store::StoreError> {
        if let Some(found) = self.cache.agent(id) {
            return Ok(found);
        }
        let ticket = self.cache.agent_ticket(id);
        let record = self.store.find_agent(id).await?;
        self.cache.put_agent(ticket, record.clone());
        Ok(Arc::new(record))
    }

    /// Every delegation to `agent_id`, revoked ones included, from memory when it can be trusted.
    pub(crate) async fn cached_delegations(
        &self,
        agent_id: &str,
    ) -> Result<Arc<Vec<DelegationRecord>>, tokenvault_store::StoreError> {
        if let Some(found) = self.cache.delegations(agent_id) {
            return Ok(found);
        }
        let ticket = self.cache.delegations_ticket(agent_id);
        let records = self.store.agent_delegations(agent_id).await?;
        self.cache.put_delegations(ticket, agent_id, records.clone());
        Ok(Arc::new(records))
    }

    /// What grant id `id` names for `app_id`; `NotFound` for an unknown id or another app's.
    pub(crate) async fn cached_subject(&self, app_id: &str, id: &str) -> Result<Subject, tokenvault_store::StoreError> {
        if let Some(found) = self.cache.subject(app_id, id) {
            return Ok(found);
        }
        self.load_subject(app_id, id).await
    }

    /// Reads `id` from the database and caches it.
    pub(crate) async fn load_subject(&self, app_id: &str, id: &str) -> Result<Subject, tokenvault_store::StoreError> {
        let ticket = self.cache.subject_ticket(id);
        let subject = match self.store.get_grant(app_id, id).await {
            Ok(grant) => Subject::Grant(Arc::new(grant)),
            Err(tokenvault_store::StoreError::NotFound) => {
                Subject::Managed(Arc::new(self.store.get_managed_secret(app_id, id).await?))
            }
            Err(other) => return Err(other),
        };
        self.cache.put_subject(ticket, id, subject.clone());
        Ok(subject)
    }

    /// The OAuth grant `id` of `app_id` (a managed secret's id is "not found" here).
    pub(crate) async fn cached_grant(
        &self,
        app_id: &str,
        id: &str,
    ) -> Result<GrantRecord, tokenvault_store::StoreError> {
        match self.cached_subject(app_id, id).await? {
            Subject::Grant(grant) => Ok(GrantRecord::clone(&grant)),
            Subject::Managed(_) => Err(tokenvault_store::StoreError::NotFound),
        }
    }

    /// The grant `id` read from the database (whatever its app), and cached: what a refresh
    /// reads replaces what memory held, so callers after it are served what it found.
    pub(crate) async fn load_grant_by_id(&self, id: &str) -> Result<GrantRecord, tokenvault_store::StoreError> {
        let ticket = self.cache.subject_ticket(id);
        let grant = self.store.find_grant(id).await?;
        self.cache.put_subject(ticket, id, Subject::Grant(Arc::new(grant.clone())));
        Ok(grant)
    }

    /// Every policy of `app_id`, ordered by id.
    pub(crate) async fn cached_policies(
        &self,
        app_id: &str,
    ) -> Result<Arc<Vec<PolicyRecord>>, tokenvault_store::StoreError> {
        if let Some(found) = self.cache.policies(app_id) {
            return Ok(found);
        }
        let ticket = self.cache.policies_ticket(app_id);
        let policies = self.store.list_policies(app_id).await?;
        self.cache.put_policies(ticket, app_id, policies.clone());
        Ok(Arc::new(policies))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, app: &str) -> ApiKeyRecord {
        ApiKeyRecord {
            id: id.into(),
            app_id: app.into(),
            name: "k".into(),
            secret_hash: vec![1],
            created_at: 0,
            last_used_at: None,
            revoked_at: None,
            ..Default::default()
        }
    }

    #[test]
    fn nothing_is_served_before_the_feed_was_read_or_after_it_stopped() {
        let cache = HotCache::new(CacheLimits::default(), &crate::Metrics::default());
        let ticket = cache.api_key_ticket("key_a");
        cache.put_api_key(ticket, key("key_a", "app_1"));
        assert!(cache.api_key("key_a").is_none(), "never synced");
        cache.synced(cache.read_started());
        assert!(cache.api_key("key_a").is_some());
        // A sync that started longer ago than the bound no longer vouches for memory.
        let synced = cache.synced_at_ms.load(Ordering::Acquire);
        let bound = STALENESS_BOUND.as_millis() as u64;
        assert!(cache.serving_at(synced + bound));
        assert!(!cache.serving_at(synced + bound + 1));
    }

    #[test]
    fn a_load_that_raced_a_change_is_not_stored() {
        let cache = HotCache::new(CacheLimits::default(), &crate::Metrics::default());
        cache.synced(cache.read_started());
        let ticket = cache.api_key_ticket("key_a");
        // The change commits and is announced while the loader still reads the old row.
        cache.drop_changed(ChangeKind::ApiKey, "key_a");
        cache.put_api_key(ticket, key("key_a", "app_1"));
        assert!(cache.api_key("key_a").is_none());
        let ticket = cache.api_key_ticket("key_a");
        cache.put_api_key(ticket, key("key_a", "app_1"));
        assert!(cache.api_key("key_a").is_some());
        cache.drop_changed(ChangeKind::App, "app_9");
        assert!(cache.api_key("key_a").is_none(), "an app change drops everything");
    }

    #[test]
    fn a_policy_change_drops_the_apps_policies() {
        let cache = HotCache::new(CacheLimits::default(), &crate::Metrics::default());
        cache.synced(cache.read_started());
        let ticket = cache.policies_ticket("app_1");
        cache.put_policies(ticket, "app_1", vec![]);
        assert!(cache.policies("app_1").is_some());
        cache.drop_changed(ChangeKind::Policy, "app_1");
        assert!(cache.policies("app_1").is_none());
    }
}
