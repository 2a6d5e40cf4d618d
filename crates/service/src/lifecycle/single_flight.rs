//! In-process single flight: callers working on the same grant queue on one async mutex, so a
//! process sends at most one refresh per grant and everyone behind it reuses the result.
//! Across processes the database lease does the same job.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

#[derive(Default)]
pub(crate) struct KeyedLocks {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    /// The lock for `key`, shared by everyone who asks while it is alive.
    pub(crate) fn get(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().expect("lock table poisoned");
        if let Some(lock) = locks.get(key).and_then(Weak::upgrade) {
            return lock;
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(key.to_owned(), Arc::downgrade(&lock));
        if locks.len() > 1024 {
            locks.retain(|_, weak| weak.strong_count() > 0);
        }
        lock
    }
}
