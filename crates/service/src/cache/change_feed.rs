//! Follows the database's change feed so that what another instance changed leaves this
//! instance's caches within [`crate::cache::hot_cache::STALENESS_BOUND`].
//!
//! Every 200 ms the follower reads the rows after the last one it saw. On PostgreSQL a sequence
//! number is drawn before its transaction commits, so rows can appear out of order: a number
//! skipped over is remembered and asked for again on each read for [`GAP_PATIENCE`] (a rolled
//! back transaction leaves a number that never appears). A follower that could not read the
//! feed for longer than [`RESYNC_AFTER`] drops every cache before trusting memory again, since
//! the rows it missed may have been pruned meanwhile.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokenvault_store::Store;

use crate::Vault;

/// How often the feed is read.
pub const FEED_INTERVAL: Duration = Duration::from_millis(200);
/// How long a skipped sequence number is waited for.
const GAP_PATIENCE: Duration = Duration::from_secs(10);
/// At most this many skipped numbers are tracked; beyond, everything is dropped instead.
const MAX_GAPS: usize = 1000;
/// Rows read per query.
const BATCH: i64 = 5000;
/// A follower that was cut off this long forgets everything (rows are kept [`KEEP_ROWS_FOR`]).
const RESYNC_AFTER: Duration = Duration::from_secs(60);
/// Feed rows older than this are pruned.
const KEEP_ROWS_FOR: Duration = Duration::from_secs(600);

pub(crate) struct Follower {
    last: i64,
    gaps: BTreeMap<i64, Instant>,
    last_success: Instant,
}

impl Follower {
    /// Applies one page of rows; returns whether everything was dropped.
    fn apply(&mut self, cache: &crate::cache::hot_cache::HotCache, rows: &[tokenvault_store::ChangeRow]) -> bool {
        for row in rows {
            if self.gaps.remove(&row.seq).is_none() {
                if row.seq <= self.last {
                    continue;
                }
                let skipped = (row.seq - self.last - 1) as usize;
                if self.gaps.len() + skipped > MAX_GAPS {
                    self.gaps.clear();
                    self.last = rows.iter().map(|r| r.seq).max().unwrap_or(self.last).max(self.last);
                    cache.drop_everything();
                    return true;
                }
                let now = Instant::now();
                for missing in self.last + 1..row.seq {
                    self.gaps.insert(missing, now);
                }
                self.last = row.seq;
            }
            cache.drop_changed(row.kind, &row.key);
        }
        false
    }

    fn forget_old_gaps(&mut self) {
        self.gaps.retain(|_, noticed| noticed.elapsed() < GAP_PATIENCE);
    }
}

/// Reads the feed once (as many pages as there are), or says why it could not.
async fn read(
    store: &Store,
    cache: &crate::cache::hot_cache::HotCache,
    follower: &mut Follower,
) -> Result<(), tokenvault_store::StoreError> {
    let started = cache.read_started();
    loop {
        let gaps: Vec<i64> = follower.gaps.keys().copied().collect();
        let rows = store.changes_after(follower.last, &gaps, BATCH).await?;
        if follower.last_success.elapsed() > RESYNC_AFTER {
            cache.drop_everything();
        }
        follower.apply(cache, &rows);
        if (rows.len() as i64) < BATCH {
            break;
        }
    }
    follower.forget_old_gaps();
    follower.last_success = Instant::now();
    cache.synced(started);
    Ok(())
}

impl Vault {
    /// Starts following the feed (from its current end: the caches start empty), until the
    /// vault is dropped or its store closed. Also prunes old feed rows now and then.
    pub(crate) fn start_change_feed(vault: Weak<Vault>, store: Store) {
        tokio::spawn(async move {
            let mut follower = None;
            let mut last_prune = Instant::now();
            loop {
                let Some(vault) = vault.upgrade() else { return };
                if store.is_closed() {
                    return;
                }
                let cache: &Arc<crate::cache::hot_cache::HotCache> = &vault.cache;
                let result = match &mut follower {
                    None => {
                        let started = cache.read_started();
                        match store.latest_change().await {
                            Ok(last) => {
                                follower = Some(Follower { last, gaps: BTreeMap::new(), last_success: Instant::now() });
                                cache.drop_everything();
                                cache.synced(started);
                                Ok(())
                            }
                            Err(error) => Err(error),
                        }
                    }
                    Some(follower) => read(&store, cache, follower).await,
                };
                if let Err(error) = result
                    && !store.is_closed()
                {
                    tracing::warn!(error = %error, "the change feed could not be read; caches are bypassed until it can");
                }
                if last_prune.elapsed() > Duration::from_secs(60) {
                    last_prune = Instant::now();
                    if let Err(error) = store.prune_changes(KEEP_ROWS_FOR.as_millis() as i64).await {
                        tracing::debug!(error = %error, "old change feed rows could not be pruned");
                    }
                }
                drop(vault);
                tokio::time::sleep(FEED_INTERVAL).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::hot_cache::{CacheLimits, HotCache};
    use tokenvault_store::{ChangeKind, ChangeRow};

    fn row(seq: i64, key: &str) -> ChangeRow {
        ChangeRow { seq, kind: ChangeKind::ApiKey, key: key.into() }
    }

    #[test]
    fn skipped_numbers_are_waited_for_and_applied_when_they_appear() {
        let cache = HotCache::new(CacheLimits::default(), &crate::Metrics::default());
        let mut follower = Follower { last: 10, gaps: BTreeMap::new(), last_success: Instant::now() };
        follower.apply(&cache, &[row(11, "a"), row(14, "b")]);
        assert_eq!(follower.last, 14);
        assert_eq!(follower.gaps.keys().copied().collect::<Vec<_>>(), vec![12, 13]);
        // 13 committed late and shows up on the next read; 14 is read again and ignored.
        follower.apply(&cache, &[row(13, "c"), row(14, "b")]);
        assert_eq!(follower.gaps.keys().copied().collect::<Vec<_>>(), vec![12]);
        assert_eq!(follower.last, 14);
    }

    #[test]
    fn too_many_gaps_drop_everything() {
        let cache = HotCache::new(CacheLimits::default(), &crate::Metrics::default());
        let mut follower = Follower { last: 0, gaps: BTreeMap::new(), last_success: Instant::now() };
        assert!(follower.apply(&cache, &[row(MAX_GAPS as i64 + 5, "a")]));
        assert!(follower.gaps.is_empty());
        assert_eq!(follower.last, MAX_GAPS as i64 + 5);
    }
}
