//! Fault injection: the next `times` requests of one (provider, endpoint) misbehave on purpose.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::provider::Provider;

/// A class of endpoint, used for fault injection and call counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    Authorize,
    Token,
    /// Dialpad deauthorize, Zoom revoke, generic revocation.
    Revoke,
    /// Who-am-I: Dialpad/Zoom `users/me`, Aircall `integrations/me`, generic userinfo.
    UserInfo,
    /// Every other API call (echo, stream, redirect-evil, ping).
    Api,
    /// Aircall `integrations/disable` (and `enable`).
    Disable,
    /// Aircall webhooks.
    Webhooks,
    /// Aircall dashboard install, generic discovery documents.
    Other,
}

/// How a request should fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and body (JSON content type when the body parses as JSON).
    Status { status: u16, body: String, retry_after: Option<u64> },
    /// Wait this long (real time), then handle the request normally.
    Latency(Duration),
    /// Close the socket without any response; nothing is processed.
    DropConnection,
    /// Process the request (e.g. rotate the refresh token), then close without responding.
    DropAfterCommit,
    /// Process the request, then wait this long (real time) before responding: a client that
    /// dies meanwhile never learns what the provider did.
    LatencyAfterCommit(Duration),
}

/// Pending faults per (provider, endpoint), consumed in order.
#[derive(Debug, Default)]
pub struct Faults {
    queues: HashMap<(Provider, Endpoint), VecDeque<(Fault, u32)>>,
}

impl Faults {
    pub fn inject(&mut self, provider: Provider, endpoint: Endpoint, fault: Fault, times: u32) {
        if times > 0 {
            self.queues.entry((provider, endpoint)).or_default().push_back((fault, times));
        }
    }

    /// The fault for the next request of this endpoint, if any, using up one of its `times`.
    pub fn take(&mut self, provider: Provider, endpoint: Endpoint) -> Option<Fault> {
        let queue = self.queues.get_mut(&(provider, endpoint))?;
        let (fault, remaining) = queue.front_mut()?;
        let fault = fault.clone();
        *remaining -= 1;
        if *remaining == 0 {
            queue.pop_front();
        }
        Some(fault)
    }

    pub fn clear(&mut self) {
        self.queues.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_consumed_in_order() {
        let mut faults = Faults::default();
        faults.inject(Provider::Zoom, Endpoint::Token, Fault::DropConnection, 2);
        faults.inject(Provider::Zoom, Endpoint::Token, Fault::DropAfterCommit, 1);
        assert_eq!(faults.take(Provider::Zoom, Endpoint::Token), Some(Fault::DropConnection));
        assert_eq!(faults.take(Provider::Zoom, Endpoint::Revoke), None);
        assert_eq!(faults.take(Provider::Zoom, Endpoint::Token), Some(Fault::DropConnection));
        assert_eq!(faults.take(Provider::Zoom, Endpoint::Token), Some(Fault::DropAfterCommit));
        assert_eq!(faults.take(Provider::Zoom, Endpoint::Token), None);
    }
}
