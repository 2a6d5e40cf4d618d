//! The egress guard: where the vault's own outbound requests may go.
//!
//! Apps hand the vault URLs it then calls with its own network reach: a managed secret's base
//! URL, a custom provider's issuer and endpoints, a webhook endpoint. Without a guard, an app
//! could make the vault call into the network it runs in (a cloud metadata service, an admin
//! port on loopback, a database on a private subnet): server-side request forgery. The guard
//! refuses every destination address that is not public, unless the operator allows it.
//!
//! It judges the address actually dialled: every outbound client resolves names through
//! [`EgressPolicy::client_builder`]'s resolver, which drops refused addresses, so a name that
//! looked public when it was stored and resolves to 127.0.0.1 when it is called (DNS rebinding)
//! is still refused. IP-literal hosts never reach a resolver, so [`EgressPolicy::check_url`]
//! judges them right before each send. Checks at creation ([`EgressPolicy::check_destination`])
//! only give an early, clear answer; they are not what keeps the vault safe.

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub use ipnet::IpNet;
use ipnet::{Ipv4Net, Ipv6Net};
use url::Url;

/// Why an address is not public: the classes the guard refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Unspecified,
    ThisNetwork,
    Loopback,
    Private,
    SharedCgnat,
    LinkLocal,
    UniqueLocal,
    SiteLocal,
    Multicast,
    Broadcast,
    Documentation,
    Benchmarking,
    Ipv4Compatible,
    Reserved,
}

impl AddressClass {
    /// In words, for error messages ("... is a loopback address").
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Unspecified => "the unspecified address",
            AddressClass::ThisNetwork => "a \"this network\" (0.0.0.0/8) address",
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private (RFC 1918) address",
            AddressClass::SharedCgnat => "a shared (carrier-grade NAT, 100.64.0.0/10) address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::UniqueLocal => "a unique-local (private IPv6, fc00::/7) address",
            AddressClass::SiteLocal => "a site-local IPv6 address",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Broadcast => "the broadcast address",
            AddressClass::Documentation => "a documentation address",
            AddressClass::Benchmarking => "a benchmarking address",
            AddressClass::Ipv4Compatible => "an IPv4-compatible IPv6 address",
            AddressClass::Reserved => "a reserved address",
        }
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)
}

const fn v6(segments: [u16; 8], prefix: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), prefix)
}

/// IPv4 ranges that are not public. Earlier rows win (0.0.0.0 is unspecified, not "this network").
const V4_REFUSED: &[(Ipv4Net, AddressClass)] = &[
    (v4(0, 0, 0, 0, 32), AddressClass::Unspecified),
    (v4(0, 0, 0, 0, 8), AddressClass::ThisNetwork),
    (v4(10, 0, 0, 0, 8), AddressClass::Private),
    (v4(100, 64, 0, 0, 10), AddressClass::SharedCgnat),
    (v4(127, 0, 0, 0, 8), AddressClass::Loopback),
    (v4(169, 254, 0, 0, 16), AddressClass::LinkLocal),
    (v4(172, 16, 0, 0, 12), AddressClass::Private),
    (v4(192, 0, 0, 0, 24), AddressClass::Reserved),
    (v4(192, 0, 2, 0, 24), AddressClass::Documentation),
    (v4(192, 168, 0, 0, 16), AddressClass::Private),
    (v4(198, 18, 0, 0, 15), AddressClass::Benchmarking),
    (v4(198, 51, 100, 0, 24), AddressClass::Documentation),
    (v4(203, 0, 113, 0, 24), AddressClass::Documentation),
    (v4(224, 0, 0, 0, 4), AddressClass::Multicast),
    (v4(255, 255, 255, 255, 32), AddressClass::Broadcast),
    (v4(240, 0, 0, 0, 4), AddressClass::Reserved),
];

/// IPv6 ranges that are not public (forms embedding an IPv4 address are judged by it first).
const V6_REFUSED: &[(Ipv6Net, AddressClass)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), AddressClass::Unspecified),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), AddressClass::Loopback),
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 96), AddressClass::Ipv4Compatible),
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), AddressClass::Reserved),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), AddressClass::Reserved),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), AddressClass::Reserved),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), AddressClass::Documentation),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), AddressClass::Documentation),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), AddressClass::UniqueLocal),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), AddressClass::LinkLocal),
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), AddressClass::SiteLocal),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), AddressClass::Multicast),
];

const NAT64: Ipv6Net = v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);
const SIX_TO_FOUR: Ipv6Net = v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16);

/// The IPv4 address an IPv6 address stands for, when connecting to it reaches that IPv4 host:
/// IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) and 6to4 (`2002:AABB:CCDD::`).
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = ip.octets();
    if let Some(mapped) = ip.to_ipv4_mapped() {
        Some(mapped)
    } else if NAT64.contains(&ip) {
        Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
    } else if SIX_TO_FOUR.contains(&ip) {
        Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]))
    } else {
        None
    }
}

/// Why the guard refuses one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub class: AddressClass,
    /// Set when an IPv6 address was judged by the IPv4 address it embeds.
    pub embedded: Option<Ipv4Addr>,
}

/// The class of a non-public address, or `None` for a public one.
pub fn classify(ip: IpAddr) -> Option<Refusal> {
    match ip {
        IpAddr::V4(ip) => classify_v4(ip).map(|class| Refusal { class, embedded: None }),
        IpAddr::V6(ip) => match embedded_ipv4(ip) {
            Some(inner) => classify_v4(inner).map(|class| Refusal { class, embedded: Some(inner) }),
            None => V6_REFUSED
                .iter()
                .find(|(net, _)| net.contains(&ip))
                .map(|(_, class)| Refusal { class: *class, embedded: None }),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    V4_REFUSED.iter().find(|(net, _)| net.contains(&ip)).map(|(_, class)| *class)
}

/// A destination the guard refused. Names only the host (never a path or query, which may carry
/// a secret) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressDenied {
    host: String,
    /// The address judged, when the host is a name that resolved to it.
    resolved: Option<IpAddr>,
    refusal: Refusal,
}

impl EgressDenied {
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn class(&self) -> AddressClass {
        self.refusal.class
    }

    /// The guard's refusal somewhere in an error's source chain (a reqwest error whose
    /// connection the guard's resolver refused).
    pub fn find<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a EgressDenied> {
        let mut current = Some(error);
        while let Some(error) = current {
            if let Some(denied) = error.downcast_ref::<EgressDenied>() {
                return Some(denied);
            }
            current = error.source();
        }
        None
    }
}

impl std::fmt::Display for EgressDenied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let class = self.refusal.class.describe();
        match (self.resolved, self.refusal.embedded) {
            (Some(address), None) => write!(f, "`{}` resolves to {class} ({address})", self.host),
            (Some(address), Some(inner)) => {
                write!(f, "`{}` resolves to {class} ({address}, that is {inner})", self.host)
            }
            (None, None) => write!(f, "`{}` is {class}", self.host),
            (None, Some(inner)) => write!(f, "`{}` is {class} ({inner} in IPv6 form)", self.host),
        }
    }
}

impl StdError for EgressDenied {}

/// Which destination addresses the vault's outbound requests may reach. The default refuses
/// every non-public address; an operator may allow all of them (local development, tests) or
/// some ranges (an internal identity provider).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    allow_private: bool,
    allowed: Vec<IpNet>,
    /// Certificate authorities trusted besides the system's (`--ca-file`), as PEM: a provider
    /// behind a private CA. They add to the system roots (which `SSL_CERT_FILE` replaces).
    extra_roots: Option<Arc<Vec<u8>>>,
}

/// How long a check at creation waits for DNS before accepting the name as it is.
const CHECK_RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

impl EgressPolicy {
    /// Refuses every non-public destination (the default).
    pub fn guarded() -> Self {
        Self::default()
    }

    /// Allows every destination: for a vault whose providers run on the same machine or network.
    pub fn unrestricted() -> Self {
        Self { allow_private: true, allowed: Vec::new(), extra_roots: None }
    }

    /// `allow_private` turns the guard off; `allowed` lets these ranges through while it is on.
    pub fn new(allow_private: bool, allowed: Vec<IpNet>) -> Self {
        Self { allow_private, allowed: allowed.into_iter().map(|net| net.trunc()).collect(), extra_roots: None }
    }

    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    pub fn allowed_cidrs(&self) -> &[IpNet] {
        &self.allowed
    }

    /// Judges one address. An IPv6 form embedding an IPv4 address is allowed if either form
    /// is inside an allowed range.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.allow_private {
            return Ok(());
        }
        let Some(refusal) = classify(ip) else { return Ok(()) };
        let allowed = |ip: IpAddr| self.allowed.iter().any(|net| net.contains(&ip));
        if allowed(ip) || refusal.embedded.is_some_and(|inner| allowed(IpAddr::V4(inner))) {
            return Ok(());
        }
        Err(refusal)
    }

    /// Judges a URL whose host is an IP literal (names pass: the resolver judges what they
    /// resolve to when they are dialled). Call right before sending.
    pub fn check_url(&self, url: &Url) -> Result<(), EgressDenied> {
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain(name)) => match name.parse::<IpAddr>() {
                Ok(ip) => ip,
                Err(_) => return Ok(()),
            },
            None => return Ok(()),
        };
        self.check_ip(literal).map_err(|refusal| EgressDenied {
            host: url.host_str().unwrap_or_default().to_owned(),
            resolved: None,
            refusal,
        })
    }

    /// Judges a URL when it is stored: an IP literal as it is, a name by every address it
    /// resolves to now (one refused address refuses the URL). A name that does not resolve (in
    /// a few seconds) is accepted: it may be an internal name of a network the vault is not in
    /// yet, and the resolver still judges it whenever it is dialled.
    pub async fn check_destination(&self, url: &Url) -> Result<(), EgressDenied> {
        self.check_url(url)?;
        let Some(url::Host::Domain(name)) = url.host() else { return Ok(()) };
        if self.allow_private {
            return Ok(());
        }
        let lookup = tokio::net::lookup_host((name, url.port_or_known_default().unwrap_or(443)));
        let Ok(Ok(addresses)) = tokio::time::timeout(CHECK_RESOLVE_TIMEOUT, lookup).await else {
            return Ok(());
        };
        for address in addresses {
            if let Err(refusal) = self.check_ip(address.ip()) {
                return Err(EgressDenied { host: name.to_owned(), resolved: Some(address.ip()), refusal });
            }
        }
        Ok(())
    }

    /// A reqwest client builder whose connections obey this policy: names resolve through the
    /// guard, and no proxy (from `HTTP_PROXY` and friends) can carry a request around it.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        let builder =
            reqwest::Client::builder().no_proxy().dns_resolver(Arc::new(GuardedResolver { policy: self.clone() }));
        match &self.extra_roots {
            // Checked when set: the bundle parses and holds at least one certificate.
            Some(pem) => builder.tls_certs_merge(reqwest::Certificate::from_pem_bundle(pem).unwrap_or_default()),
            None => builder,
        }
    }

    /// Trusts the certificate authorities in `pem` (one or more PEM certificates) besides the
    /// system's, for every outbound connection.
    pub fn with_extra_roots(mut self, pem: Vec<u8>) -> Result<Self, String> {
        let certificates =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| "it is not a PEM certificate bundle".to_owned())?;
        if certificates.is_empty() {
            return Err("it holds no PEM certificate".into());
        }
        self.extra_roots = Some(Arc::new(pem));
        Ok(self)
    }
}

/// Resolves with the system resolver and keeps only the addresses the policy allows.
struct GuardedResolver {
    policy: EgressPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut first_refusal = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|address| match policy.check_ip(address.ip()) {
                    Ok(()) => true,
                    Err(refusal) => {
                        first_refusal.get_or_insert((address.ip(), refusal));
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), first_refusal) {
                (true, Some((address, refusal))) => {
                    tracing::warn!(host = %host, address = %address, class = refusal.class.describe(), "egress guard refused a destination");
                    Err(Box::new(EgressDenied { host, resolved: Some(address), refusal }) as Box<_>)
                }
                (true, None) => Err(format!("`{host}` resolved to no address").into()),
                (false, _) => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

/// Reads an operator's CIDR (`10.1.0.0/16`, `fd00::/8`) or a single address (`10.1.2.3`).
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("`{text}` is not a CIDR range such as 10.1.0.0/16 or fd00::/8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_of(text: &str) -> Option<AddressClass> {
        classify(text.parse().unwrap()).map(|r| r.class)
    }

    #[test]
    fn ipv4_classes() {
        use AddressClass::*;
        for (address, expected) in [
            ("127.0.0.1", Some(Loopback)),
            ("127.255.255.254", Some(Loopback)),
            ("10.0.0.1", Some(Private)),
            ("10.255.255.255", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.32.0.1", None),
            ("172.15.255.255", None),
            ("192.168.1.1", Some(Private)),
            ("169.254.169.254", Some(LinkLocal)),
            ("169.254.0.1", Some(LinkLocal)),
            ("100.64.0.1", Some(SharedCgnat)),
            ("100.127.255.255", Some(SharedCgnat)),
            ("100.128.0.1", None),
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(ThisNetwork)),
            ("255.255.255.255", Some(Broadcast)),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.250", Some(Multicast)),
            ("240.0.0.1", Some(Reserved)),
            ("192.0.0.8", Some(Reserved)),
            ("192.0.2.1", Some(Documentation)),
            ("198.51.100.7", Some(Documentation)),
            ("203.0.113.9", Some(Documentation)),
            ("198.18.0.1", Some(Benchmarking)),
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("93.184.216.34", None),
            ("192.169.0.1", None),
        ] {
            assert_eq!(class_of(address), expected, "{address}");
        }
    }

    #[test]
    fn ipv6_classes() {
        use AddressClass::*;
        for (address, expected) in [
            ("::1", Some(Loopback)),
            ("::", Some(Unspecified)),
            ("fe80::1", Some(LinkLocal)),
            ("febf::1", Some(LinkLocal)),
            ("fec0::1", Some(SiteLocal)),
            ("fd00::1", Some(UniqueLocal)),
            ("fc00::1", Some(UniqueLocal)),
            ("ff02::1", Some(Multicast)),
            ("2001:db8::1", Some(Documentation)),
            ("100::1", Some(Reserved)),
            ("2001::1", Some(Reserved)),
            ("64:ff9b:1::1", Some(Reserved)),
            ("::7f00:1", Some(Ipv4Compatible)),
            ("::8.8.8.8", Some(Ipv4Compatible)),
            ("2606:4700:4700::1111", None),
            ("2a00:1450:4001:82a::200e", None),
        ] {
            assert_eq!(class_of(address), expected, "{address}");
        }
    }

    #[test]
    fn ipv6_forms_embedding_ipv4_are_judged_by_the_ipv4_address() {
        use AddressClass::*;
        for (address, expected, inner) in [
            ("::ffff:127.0.0.1", Some(Loopback), "127.0.0.1"),
            ("::ffff:7f00:1", Some(Loopback), "127.0.0.1"),
            ("::ffff:10.0.0.1", Some(Private), "10.0.0.1"),
            ("::ffff:169.254.169.254", Some(LinkLocal), "169.254.169.254"),
            ("::ffff:0.0.0.0", Some(Unspecified), "0.0.0.0"),
            ("64:ff9b::127.0.0.1", Some(Loopback), "127.0.0.1"),
            ("64:ff9b::a9fe:a9fe", Some(LinkLocal), "169.254.169.254"),
            ("2002:c0a8:0101::1", Some(Private), "192.168.1.1"),
            ("2002:7f00:1::", Some(Loopback), "127.0.0.1"),
        ] {
            let refusal = classify(address.parse().unwrap());
            assert_eq!(refusal.map(|r| r.class), expected, "{address}");
            assert_eq!(refusal.and_then(|r| r.embedded), Some(inner.parse().unwrap()), "{address}");
        }
        for public in ["::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "2002:0808:0808::1"] {
            assert_eq!(class_of(public), None, "{public}");
        }
    }

    #[test]
    fn the_default_policy_refuses_and_the_allowances_allow() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let private: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(EgressPolicy::default(), EgressPolicy::guarded());
        assert!(EgressPolicy::guarded().check_ip(loopback).is_err());
        assert!(EgressPolicy::guarded().check_ip("8.8.8.8".parse().unwrap()).is_ok());
        assert!(EgressPolicy::unrestricted().check_ip(loopback).is_ok());
        assert!(EgressPolicy::unrestricted().check_ip(private).is_ok());

        let allowlist = EgressPolicy::new(false, vec![parse_cidr("127.0.0.0/8").unwrap()]);
        assert!(allowlist.check_ip(loopback).is_ok());
        assert!(allowlist.check_ip("127.9.9.9".parse().unwrap()).is_ok());
        assert!(allowlist.check_ip("::ffff:127.0.0.1".parse().unwrap()).is_ok(), "the mapped form too");
        assert!(allowlist.check_ip(private).is_err());
        assert!(allowlist.check_ip("::1".parse().unwrap()).is_err());

        let v6 = EgressPolicy::new(false, vec![parse_cidr("fd00:1::/32").unwrap()]);
        assert!(v6.check_ip("fd00:1::5".parse().unwrap()).is_ok());
        assert!(v6.check_ip("fd00:2::5".parse().unwrap()).is_err());
    }

    #[test]
    fn cidrs_parse_strictly() {
        assert_eq!(parse_cidr("10.1.0.0/16").unwrap().to_string(), "10.1.0.0/16");
        assert_eq!(parse_cidr(" 10.1.2.3/16 ").unwrap().to_string(), "10.1.0.0/16", "host bits dropped");
        assert_eq!(parse_cidr("10.1.2.3").unwrap().to_string(), "10.1.2.3/32");
        assert_eq!(parse_cidr("fd00::/8").unwrap().to_string(), "fd00::/8");
        assert_eq!(parse_cidr("::1").unwrap().to_string(), "::1/128");
        for bad in ["10.0.0.0/33", "10.0.0/8", "localhost", "", "fd00::/129", "10.0.0.0/-1"] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn literal_hosts_are_judged_as_the_url_crate_parses_them() {
        let guard = EgressPolicy::guarded();
        let refused = |u: &str| guard.check_url(&Url::parse(u).unwrap()).err();
        // `http://127.1` is host 127.0.0.1 to the url crate, and so to the connector.
        assert_eq!(Url::parse("http://127.1").unwrap().host(), Some(url::Host::Ipv4(Ipv4Addr::LOCALHOST)));
        for url in [
            "http://127.0.0.1:8080/x",
            "http://127.1",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://[::1]",
            "https://[::ffff:127.0.0.1]",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1",
            "https://172.16.0.1",
            "https://192.168.1.1",
            "https://100.64.0.1",
            "https://[fd00::1]",
            "https://[fe80::1]",
            "http://0.0.0.0",
        ] {
            assert!(refused(url).is_some(), "{url}");
        }
        assert!(refused("https://8.8.8.8/").is_none());
        assert!(refused("https://api.zoom.us/v2").is_none(), "names are judged when resolved");
        let denied = refused("https://[::ffff:127.0.0.1]/secret-path?token=abc").unwrap();
        let text = denied.to_string();
        assert_eq!(text, "`[::ffff:7f00:1]` is a loopback address (127.0.0.1 in IPv6 form)");
        assert!(!text.contains("secret-path") && !text.contains("token"), "{text}");
    }

    #[tokio::test]
    async fn names_are_judged_by_what_they_resolve_to() {
        let guard = EgressPolicy::guarded();
        let denied = guard.check_destination(&Url::parse("http://localhost:9/").unwrap()).await.unwrap_err();
        assert_eq!(denied.class(), AddressClass::Loopback);
        assert!(denied.to_string().contains("`localhost` resolves to a loopback address"), "{denied}");
        let allowlist = EgressPolicy::new(false, vec![parse_cidr("127.0.0.0/8").unwrap(), parse_cidr("::1").unwrap()]);
        assert!(allowlist.check_destination(&Url::parse("http://localhost:9/").unwrap()).await.is_ok());
        // A name that does not resolve is accepted when stored (the resolver judges it when dialled).
        assert!(guard.check_destination(&Url::parse("https://no-such-host.invalid/").unwrap()).await.is_ok());
    }

    #[tokio::test]
    async fn the_guarded_client_refuses_a_name_resolving_to_loopback_before_connecting() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = EgressPolicy::guarded().client_builder().build().unwrap();
        let error = client.get(format!("http://localhost:{port}/")).send().await.unwrap_err();
        let denied = EgressDenied::find(&error).expect("the guard's refusal is in the error chain");
        assert_eq!(denied.host(), "localhost");
        assert_eq!(denied.class(), AddressClass::Loopback);
        // A connection made before the error returned would be waiting in the accept queue.
        let pending = listener.accept().map(|_| ()).map_err(|e| e.kind());
        assert_eq!(pending, Err(std::io::ErrorKind::WouldBlock), "the guard let a connection through");

        // The same call with the guard off does connect (the listener above is a real one).
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let allowed = EgressPolicy::unrestricted().client_builder().build().unwrap();
        let sent = tokio::spawn(async move { allowed.get(format!("http://localhost:{port}/")).send().await });
        let (socket, _) = listener.accept().await.unwrap();
        drop(socket);
        let _ = sent.await;
    }
}
