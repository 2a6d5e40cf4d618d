//! The caller's IP address, which IP-allowlist policies judge. It is the TCP peer, unless the
//! peer is a reverse proxy the operator trusts (`--trusted-proxy`): then it is the address that
//! proxy reports in `X-Forwarded-For`, read from the right, skipping further trusted proxies, so
//! a client cannot choose its own address by sending the header itself.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The client's address as [`TrustedProxies::client_ip`] found it (a request extension).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub IpAddr);

/// The reverse proxies whose `X-Forwarded-For` is believed. Empty (the default): none.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<Vec<IpNet>>);

impl TrustedProxies {
    pub fn new(ranges: Vec<IpNet>) -> Self {
        Self(Arc::new(ranges))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer` with these headers.
    pub(crate) fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.ip().to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            // A hop that does not parse ends the chain: the last trusted hop stands as the client.
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an IP address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<SocketAddr>().ok().map(|s| s.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append("x-forwarded-for", v.parse().unwrap());
        }
        map
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 40000)
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        assert_eq!(none.client_ip(peer("10.0.0.2"), &headers(&["203.0.113.7"])).to_string(), "10.0.0.2");
    }

    #[test]
    fn a_trusted_proxy_reports_the_client_read_from_the_right() {
        let proxies = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let ip = |p: &str, h: &[&str]| proxies.client_ip(peer(p), &headers(h)).to_string();
        assert_eq!(ip("10.0.0.2", &["203.0.113.7"]), "203.0.113.7");
        // The client sent its own header: the proxy appended the real address, which wins.
        assert_eq!(ip("10.0.0.2", &["198.51.100.1, 203.0.113.7"]), "203.0.113.7");
        // Two trusted proxies in a row.
        assert_eq!(ip("10.0.0.2", &["203.0.113.7", "10.0.0.9"]), "203.0.113.7");
        assert_eq!(ip("10.0.0.2", &["203.0.113.7:1234"]), "203.0.113.7");
        assert_eq!(ip("10.0.0.2", &["garbage"]), "10.0.0.2");
        assert_eq!(ip("10.0.0.2", &[]), "10.0.0.2");
        // An untrusted peer cannot use the header.
        assert_eq!(ip("192.0.2.1", &["203.0.113.7"]), "192.0.2.1");
        // IPv4-mapped peers count as their IPv4 address.
        assert_eq!(ip("::ffff:10.0.0.2", &["203.0.113.7"]), "203.0.113.7");
    }
}
