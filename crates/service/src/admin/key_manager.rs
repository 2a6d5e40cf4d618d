//! Data keys: bootstrap on first start, a cached key ring, and online rotation.
//!
//! Rotation: (1) a new data key becomes active and the old one `retiring`, in one transaction;
//! (2) every sealed column is swept in batches, re-sealing values whose header names another
//! key, each write a compare-and-swap so a concurrent token refresh is never overwritten;
//! (3) after waiting out other processes' key caches, a final sweep must find nothing left;
//! (4) only then are the old keys retired, and keys retired by an *earlier* rotation have their
//! material erased. A just-retired key keeps opening until the next rotation, so a value that a
//! slow writer sealed before this rotation and stored after its final sweep is never lost (the
//! next rotation re-seals it). Old ciphertexts keep opening throughout, so the vault serves
//! throughout. A crashed rotation is resumed by running it again.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokenvault_crypto::{CryptoError, DataKey, KeyId, KeyRing, MasterKey, SealContext};
use tokenvault_store::{EncryptionKeyRecord, KeyState, SEALED_COLUMNS, SealedColumn, Store, StoreError};
use zeroize::Zeroizing;

use crate::{Clock, ServiceError, Timestamp};

pub(crate) struct KeyManager {
    store: Store,
    master: MasterKey,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    cached: RwLock<(Arc<KeyRing>, Instant)>,
    reload: tokio::sync::Mutex<()>,
}

/// One data key as `tokenvault keys list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct KeyStatus {
    pub id: u32,
    pub state: &'static str,
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
    /// Stored values currently sealed by this key.
    pub sealed_values: u64,
}

/// What a rotation did.
#[derive(Debug, Clone, Serialize)]
pub struct RotationReport {
    pub new_key_id: u32,
    pub retired_key_ids: Vec<u32>,
    pub resealed: u64,
    pub resumed: bool,
}

impl KeyManager {
    pub(crate) async fn load(
        store: Store,
        master: MasterKey,
        clock: Arc<dyn Clock>,
        ttl: Duration,
    ) -> Result<Self, ServiceError> {
        let ring = Self::read_ring(&store, &master, clock.as_ref(), true).await?;
        Ok(Self {
            store,
            master,
            clock,
            ttl,
            cached: RwLock::new((Arc::new(ring), Instant::now())),
            reload: tokio::sync::Mutex::new(()),
        })
    }

    /// Reads and unwraps the data keys. With `bootstrap`, an empty key table gets its first key.
    async fn read_ring(
        store: &Store,
        master: &MasterKey,
        clock: &dyn Clock,
        bootstrap: bool,
    ) -> Result<KeyRing, ServiceError> {
        let mut records = store.list_encryption_keys().await?;
        if records.is_empty() && bootstrap {
            let first = new_key_record(master, KeyId(1), clock.now());
            match store.activate_new_key(&first).await {
                Ok(()) | Err(StoreError::Conflict(_)) => {}
                Err(other) => return Err(other.into()),
            }
            records = store.list_encryption_keys().await?;
        }
        let mut active = None;
        let mut others = Vec::new();
        // Retired keys whose material is kept still open (never seal) late values.
        for record in records.iter() {
            let Some(wrapped) = record.wrapped_key.as_deref() else { continue };
            let key = master.unwrap_key(KeyId(record.id), wrapped).map_err(|err| match err {
                CryptoError::UnwrapFailed(_) => master_mismatch(master, record),
                other => other.into(),
            })?;
            if record.state == KeyState::Active {
                active = Some(key);
            } else {
                others.push(key);
            }
        }
        let active = active.ok_or_else(|| ServiceError::Internal("no active data key in the database".into()))?;
        Ok(KeyRing::new(active, others))
    }

    async fn ring(&self) -> Result<Arc<KeyRing>, ServiceError> {
        {
            let cached = self.cached.read().expect("key ring lock poisoned");
            if cached.1.elapsed() < self.ttl {
                return Ok(cached.0.clone());
            }
        }
        self.reload_ring().await
    }

    async fn reload_ring(&self) -> Result<Arc<KeyRing>, ServiceError> {
        let _single_flight = self.reload.lock().await;
        let ring = Arc::new(Self::read_ring(&self.store, &self.master, self.clock.as_ref(), false).await?);
        *self.cached.write().expect("key ring lock poisoned") = (ring.clone(), Instant::now());
        Ok(ring)
    }

    pub(crate) async fn seal(&self, context: &SealContext<'_>, plaintext: &[u8]) -> Result<Vec<u8>, ServiceError> {
        Ok(self.ring().await?.seal(context, plaintext))
    }

    /// Opens a sealed value. A value sealed by a key this process has not loaded yet (another
    /// instance rotated) triggers one reload before failing.
    pub(crate) async fn open(
        &self,
        context: &SealContext<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, ServiceError> {
        match self.ring().await?.open(context, sealed) {
            Err(CryptoError::UnknownKey(_)) => Ok(self.reload_ring().await?.open(context, sealed)?),
            other => Ok(other?),
        }
    }

    pub(crate) async fn status(&self) -> Result<Vec<KeyStatus>, ServiceError> {
        let records = self.store.list_encryption_keys().await?;
        let counts = self.count_sealed_by_key().await?;
        Ok(records
            .iter()
            .map(|r| KeyStatus {
                id: r.id,
                state: match r.state {
                    KeyState::Active => "active",
                    KeyState::Retiring => "retiring",
                    KeyState::Retired => "retired",
                },
                created_at: Timestamp::from_millis(r.created_at),
                retired_at: r.retired_at.map(Timestamp::from_millis),
                sealed_values: counts.iter().filter(|(id, _)| *id == KeyId(r.id)).map(|(_, n)| *n).sum(),
            })
            .collect())
    }

    async fn count_sealed_by_key(&self) -> Result<Vec<(KeyId, u64)>, ServiceError> {
        let mut counts: Vec<(KeyId, u64)> = Vec::new();
        for column in SEALED_COLUMNS {
            let mut after = String::new();
            loop {
                let page = self.store.sealed_values_page(*column, &after, 1000).await?;
                let Some(last) = page.last() else { break };
                after = last.row_id.clone();
                for value in &page {
                    let id = KeyRing::key_id_of(&value.sealed)?;
                    match counts.iter_mut().find(|(k, _)| *k == id) {
                        Some((_, n)) => *n += 1,
                        None => counts.push((id, 1)),
                    }
                }
            }
        }
        Ok(counts)
    }

    /// Step 1 of a rotation: a new data key becomes active, the old one `retiring`. From now on
    /// new values are sealed with the new key and old values still open. Does nothing if a
    /// previous rotation is unfinished (it is resumed instead). Returns whether it resumed.
    pub(crate) async fn start_rotation(&self) -> Result<bool, ServiceError> {
        let records = self.store.list_encryption_keys().await?;
        if records.iter().any(|r| r.state == KeyState::Retiring) {
            return Ok(true);
        }
        let next_id = records.iter().map(|r| r.id).max().unwrap_or(0) + 1;
        let record = new_key_record(&self.master, KeyId(next_id), self.clock.now());
        self.store.activate_new_key(&record).await.map_err(|err| match err {
            StoreError::Conflict(_) => {
                ServiceError::conflict("rotation_in_progress", "another key rotation started at the same time")
            }
            other => other.into(),
        })?;
        self.reload_ring().await?;
        Ok(false)
    }

    /// Step 2: re-seal everything, wait out other processes' caches, sweep until nothing is
    /// left, then retire the old keys.
    pub(crate) async fn finish_rotation(&self, batch_size: i64, resumed: bool) -> Result<RotationReport, ServiceError> {
        let ring = self.reload_ring().await?;
        let mut resealed = self.sweep(&ring, batch_size).await?;
        // Other processes may still seal with the old key until their cache expires, and their
        // hot caches may hold values sealed with it until the change feed tells them (see
        // `hot_cache`): wait out both before the old key can be retired (and, at the next
        // rotation, erased).
        tokio::time::sleep(self.ttl.max(crate::STALENESS_BOUND) * 2).await;
        let ring = self.reload_ring().await?;
        loop {
            let pass = self.sweep(&ring, batch_size).await?;
            resealed += pass;
            if pass == 0 {
                break;
            }
        }
        let retiring: Vec<u32> = self
            .store
            .list_encryption_keys()
            .await?
            .iter()
            .filter(|r| r.state == KeyState::Retiring)
            .map(|r| r.id)
            .collect();
        let now = self.clock.now().as_millis();
        self.store.retire_keys(&retiring, now).await?;
        self.store.erase_retired_keys(now).await?;
        self.reload_ring().await?;
        tracing::info!(new_key_id = ring.active_key_id().0, resealed, "data key rotation finished");
        Ok(RotationReport { new_key_id: ring.active_key_id().0, retired_key_ids: retiring, resealed, resumed })
    }

    /// Re-seals, under the active key, every value sealed by another key. Returns how many.
    async fn sweep(&self, ring: &KeyRing, batch_size: i64) -> Result<u64, ServiceError> {
        let mut resealed = 0;
        for column in SEALED_COLUMNS {
            let mut after = String::new();
            loop {
                let page = self.store.sealed_values_page(*column, &after, batch_size).await?;
                let Some(last) = page.last() else { break };
                after = last.row_id.clone();
                for value in &page {
                    if KeyRing::key_id_of(&value.sealed)? == ring.active_key_id() {
                        continue;
                    }
                    if self.reseal(ring, *column, &value.row_id, &value.sealed).await? {
                        resealed += 1;
                    }
                }
            }
        }
        Ok(resealed)
    }

    async fn reseal(
        &self,
        ring: &KeyRing,
        column: SealedColumn,
        row_id: &str,
        sealed: &[u8],
    ) -> Result<bool, ServiceError> {
        let context = SealContext::new(column.table, row_id, column.column);
        let plaintext = ring.open(&context, sealed)?;
        let replacement = ring.seal(&context, &plaintext);
        // A lost compare-and-swap means the value changed meanwhile, sealed by a current key.
        Ok(self.store.replace_sealed_value(column, row_id, sealed, &replacement).await?)
    }
}

fn new_key_record(master: &MasterKey, id: KeyId, now: Timestamp) -> EncryptionKeyRecord {
    let key = DataKey::generate(id);
    EncryptionKeyRecord {
        id: id.0,
        wrapped_key: Some(master.wrap(&key)),
        master_fingerprint: master.fingerprint(),
        state: KeyState::Active,
        created_at: now.as_millis(),
        retired_at: None,
    }
}

fn master_mismatch(master: &MasterKey, record: &EncryptionKeyRecord) -> ServiceError {
    ServiceError::Invalid {
        code: "master_key_mismatch",
        message: format!(
            "the master key (fingerprint {}) is not the one this database was set up with (fingerprint {}); \
             every stored credential is sealed under that key",
            master.fingerprint(),
            record.master_fingerprint
        ),
    }
}
