//! Counting a proxied request body as it streams up: the bytes for the audit row and whether the
//! body went over the cap. Shared by the body stream that counts and the audit row that reports.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Bytes seen on a request body, and whether it went over the cap.
#[derive(Debug, Default)]
pub(crate) struct BodyMeter {
    bytes: AtomicU64,
    over_limit: AtomicBool,
}

impl BodyMeter {
    /// Counts `n` more bytes; returns the total so far.
    pub(crate) fn add(&self, n: usize) -> u64 {
        self.bytes.fetch_add(n as u64, Ordering::Relaxed) + n as u64
    }

    pub(crate) fn mark_over_limit(&self) {
        self.over_limit.store(true, Ordering::Relaxed);
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn over_limit(&self) -> bool {
        self.over_limit.load(Ordering::Relaxed)
    }
}
