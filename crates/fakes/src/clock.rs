//! The fake clock: real time plus an offset that tests move forward instead of sleeping.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix seconds as the fakes see them. Starts at real time and keeps ticking with it.
#[derive(Debug, Default)]
pub struct Clock {
    offset: Duration,
}

impl Clock {
    pub fn now(&self) -> u64 {
        let real = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        (real + self.offset).as_secs()
    }

    pub fn advance(&mut self, by: Duration) {
        self.offset += by;
    }
}
