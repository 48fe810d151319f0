//! Where webhooks may call: the guard against server-side request forgery.
//!
//! A webhook URL is chosen by a user, and the service calls it from inside
//! the deployment. Unless the operator allowlisted its host, it must be
//! `https`, and every address it reaches must be a public one: never
//! loopback, link-local, private, shared (CGNAT), multicast, reserved,
//! documentation or a cloud metadata address, nor an IPv6 form of these.
//! The check runs at registration (early, clear 422s) and again at every
//! delivery, in the resolver the HTTP client connects through: the address
//! checked is the address connected to, so a name that is rebound to an
//! internal address after registration reaches nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// Why an address may not be called, or None when it is a public one.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

/// Cloud metadata services that are not in a range refused anyway
/// (169.254.169.254, fd00:ec2::254 and 100.100.100.200 are).
const METADATA_V4: [Ipv4Addr; 1] = [
    // Azure's platform endpoint (WireServer), a public address.
    Ipv4Addr::new(168, 63, 129, 16),
];

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    if ip == Ipv4Addr::new(169, 254, 169, 254) || METADATA_V4.contains(&ip) {
        return Some("a cloud metadata address");
    }
    let ranges: [([u8; 4], u32, &'static str); 15] = [
        ([0, 0, 0, 0], 8, "an unspecified (this-network) address"),
        ([10, 0, 0, 0], 8, "a private address"),
        ([100, 64, 0, 0], 10, "a shared (CGNAT) address"),
        ([127, 0, 0, 0], 8, "a loopback address"),
        ([169, 254, 0, 0], 16, "a link-local address"),
        ([172, 16, 0, 0], 12, "a private address"),
        ([192, 0, 0, 0], 24, "a reserved (IETF protocol) address"),
        ([192, 0, 2, 0], 24, "a documentation address"),
        ([192, 88, 99, 0], 24, "a reserved (6to4 relay) address"),
        ([192, 168, 0, 0], 16, "a private address"),
        ([198, 18, 0, 0], 15, "a benchmarking address"),
        ([198, 51, 100, 0], 24, "a documentation address"),
        ([203, 0, 113, 0], 24, "a documentation address"),
        ([224, 0, 0, 0], 4, "a multicast address"),
        // Includes the broadcast address 255.255.255.255.
        ([240, 0, 0, 0], 4, "a reserved or broadcast address"),
    ];
    ranges
        .iter()
        .find(|(net, bits, _)| in_v4(ip, *net, *bits))
        .map(|(_, _, why)| *why)
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], bits: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some("a cloud metadata address");
    }
    let bits = u128::from(ip);
    // Forms that carry an IPv4 address are judged by it: mapped
    // (::ffff:a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:a.b.c.d::).
    if in_v6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96)
        || in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96)
    {
        return forbidden_v4(Ipv4Addr::from(bits as u32));
    }
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        return forbidden_v4(Ipv4Addr::from((bits >> 80) as u32));
    }
    let ranges: [([u16; 8], u32, &'static str); 11] = [
        // IPv4-compatible (deprecated; ::a.b.c.d).
        (
            [0, 0, 0, 0, 0, 0, 0, 0],
            96,
            "a deprecated IPv4-compatible address",
        ),
        (
            [0x64, 0xff9b, 1, 0, 0, 0, 0, 0],
            48,
            "a local NAT64 address",
        ),
        ([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "a discard-only address"),
        // Teredo, benchmarking, ORCHID and other protocol assignments.
        (
            [0x2001, 0, 0, 0, 0, 0, 0, 0],
            23,
            "a reserved (IETF protocol) address",
        ),
        (
            [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
            32,
            "a documentation address",
        ),
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, "a documentation address"),
        (
            [0x5f00, 0, 0, 0, 0, 0, 0, 0],
            16,
            "a reserved (SRv6) address",
        ),
        (
            [0xfc00, 0, 0, 0, 0, 0, 0, 0],
            7,
            "a private (unique local) address",
        ),
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "a link-local address"),
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "a site-local address"),
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "a multicast address"),
    ];
    let listed = ranges
        .iter()
        .find(|(net, bits, _)| in_v6(ip, *net, *bits))
        .map(|(_, _, why)| *why);
    // Global unicast is 2000::/3; nothing public lives elsewhere.
    listed.or_else(|| {
        (!in_v6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3)).then_some("not a global unicast address")
    })
}

/// A host the operator opened to webhooks: `host`, `host:port`, `[v6]` or
/// `[v6]:port`. Without a port, every port of the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowHost {
    /// The host, an address or a name.
    host: Host,
    /// The one port opened; none: every port of the host.
    port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Host {
    Ip(IpAddr),
    /// Lowercase, no trailing dot.
    Name(String),
}

impl Host {
    /// The URL's host, as the URL parser normalised it (numeric IPv4
    /// forms such as `2130706433` or `0x7f.1` are addresses by then).
    fn of(url: &Url) -> Option<Host> {
        let host = url.host_str().filter(|h| !h.is_empty())?;
        if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            return v6.parse().ok().map(|v6| Host::Ip(IpAddr::V6(v6)));
        }
        Some(match host.parse::<Ipv4Addr>() {
            Ok(v4) => Host::Ip(IpAddr::V4(v4)),
            Err(_) => Host::name(host),
        })
    }

    fn name(name: &str) -> Host {
        Host::Name(name.trim_end_matches('.').to_ascii_lowercase())
    }
}

impl FromStr for AllowHost {
    type Err = String;

    fn from_str(entry: &str) -> Result<AllowHost, String> {
        let bad = || format!("{entry:?}: expected host, host:port, [v6] or [v6]:port");
        let entry = entry.trim();
        let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
            let (v6, rest) = rest.split_once(']').ok_or_else(bad)?;
            let v6: Ipv6Addr = v6.parse().map_err(|_| bad())?;
            let port = match rest {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(bad)?),
            };
            (Host::Ip(IpAddr::V6(v6)), port)
        } else if let Ok(ip) = entry.parse::<IpAddr>() {
            (Host::Ip(ip), None)
        } else {
            let (host, port) = match entry.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (entry, None),
            };
            let plain = |c: char| c.is_alphanumeric() || matches!(c, '.' | '-' | '_');
            if host.is_empty() || !host.chars().all(plain) {
                return Err(bad());
            }
            // Normalised as URLs normalise hosts, so that entries match them.
            let url = Url::parse(&format!("http://{host}/")).map_err(|_| bad())?;
            (Host::of(&url).ok_or_else(bad)?, port)
        };
        let port = port
            .map(|p| p.parse::<u16>().map_err(|_| bad()))
            .transpose()?;
        Ok(AllowHost { host, port })
    }
}

impl std::fmt::Display for AllowHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]")?,
            Host::Ip(ip) => write!(f, "{ip}")?,
            Host::Name(name) => write!(f, "{name}")?,
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

/// A URL or an address that may not be called, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The operator's allowlist and the rules for everything else.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// The hosts the operator opened (`--webhook-allow-host`): any address,
    /// plain http too.
    allow: Arc<Vec<AllowHost>>,
}

/// What [`Policy::check_url`] leaves to the resolver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checked {
    /// The host is allowlisted: any address, plain http too.
    Allowlisted,
    /// An address literal that is public.
    PublicAddress,
    /// A name: its addresses are checked when it is resolved.
    Name(String),
}

impl Policy {
    pub fn new(allow: Vec<AllowHost>) -> Policy {
        Policy {
            allow: Arc::new(allow),
        }
    }

    pub fn allowlist(&self) -> &[AllowHost] {
        &self.allow
    }

    /// The URL's own rules: scheme, allowlist, and an address literal's
    /// range. Pure; a name's addresses are the resolver's to check.
    pub fn check_url(&self, url: &Url) -> Result<Checked, Refused> {
        let host = Host::of(url).ok_or_else(|| Refused("the URL has no host".into()))?;
        let port = url.port_or_known_default();
        let same_host: Vec<&AllowHost> = self.allow.iter().filter(|a| a.host == host).collect();
        let allowlisted = same_host.iter().any(|a| a.port.is_none() || a.port == port);
        if allowlisted {
            return match url.scheme() {
                "http" | "https" => Ok(Checked::Allowlisted),
                _ => Err(Refused("must be an http or https URL".into())),
            };
        }
        if url.scheme() != "https" {
            return Err(Refused(
                "must be an https URL (plain http only to a host the operator allowlisted)".into(),
            ));
        }
        // The resolver allows a listed name on every port; other ports of
        // the name are refused here, so the list's ports hold. (An address
        // on an unlisted port is judged as any address is, below.)
        if !same_host.is_empty() && matches!(host, Host::Name(_)) {
            return Err(Refused(format!(
                "the operator opened this host only as {}",
                same_host
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        match host {
            Host::Ip(ip) => match forbidden(ip) {
                Some(why) => Err(Refused(format!("{ip} is {why}"))),
                None => Ok(Checked::PublicAddress),
            },
            Host::Name(name) => Ok(Checked::Name(name)),
        }
    }

    /// Whether a resolved name may use every address it resolves to.
    fn name_allowlisted(&self, name: &str) -> bool {
        let host = Host::name(name);
        self.allow.iter().any(|a| a.host == host)
    }

    /// The addresses of `name` that may be called: all of them for an
    /// allowlisted name, else only public ones; refused when none is left.
    pub fn screen(
        &self,
        name: &str,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, Refused> {
        let addrs: Vec<SocketAddr> = addrs.into_iter().collect();
        if self.name_allowlisted(name) {
            return Ok(addrs);
        }
        let mut kept = Vec::new();
        let mut refused = None;
        for addr in addrs {
            match forbidden(addr.ip()) {
                None => kept.push(addr),
                Some(why) => {
                    tracing::warn!(name, address = %addr.ip(), why, "webhook address refused");
                    refused.get_or_insert(format!("{name} resolves to {} ({why})", addr.ip()));
                }
            }
        }
        if kept.is_empty() {
            return Err(Refused(
                refused.unwrap_or_else(|| format!("{name} resolves to no address")),
            ));
        }
        Ok(kept)
    }

    /// For a registration: the URL's rules, then, for a name that resolves
    /// now, every address it resolves to must be allowed (a name that does
    /// not resolve yet is checked at each delivery instead).
    pub async fn check_registration(&self, url: &Url) -> Result<(), Refused> {
        let Checked::Name(name) = self.check_url(url)? else {
            return Ok(());
        };
        let port = url.port_or_known_default().unwrap_or(443);
        let lookup = tokio::net::lookup_host((name.as_str(), port));
        let Ok(Ok(addrs)) = tokio::time::timeout(Duration::from_secs(3), lookup).await else {
            return Ok(());
        };
        // Stricter than a delivery, which would dial the public ones: a
        // name with any internal address is not taken at all.
        for addr in addrs {
            if let Some(why) = forbidden(addr.ip()) {
                return Err(Refused(format!("{name} resolves to {} ({why})", addr.ip())));
            }
        }
        Ok(())
    }

    /// The HTTP client for deliveries: every connection through the
    /// screening resolver, no redirects, no proxy from the environment (a
    /// proxy would resolve the name itself, past the resolver).
    pub fn client(&self, timeout: Duration) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(Resolver {
                policy: self.clone(),
            }))
            .build()
            .expect("http client")
    }
}

/// Resolves with the system resolver, then keeps only allowed addresses.
struct Resolver {
    /// The rules every resolved address must pass.
    policy: Policy,
}

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let name = name.as_str().to_string();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let kept = policy.screen(&name, addrs)?;
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// The refusal behind a failed request, when the resolver refused.
pub fn refusal_of(error: &reqwest::Error) -> Option<Refused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(r) = e.downcast_ref::<Refused>() {
            return Some(r.clone());
        }
        source = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_and_special_addresses_are_refused_in_every_form() {
        for a in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.100.100.200",
            "169.254.169.254",
            "169.254.170.2",
            "168.63.129.16",
            "192.0.0.192",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:a00:1::1",
            "2001:db8::1",
            "2001::1",
            "3fff::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "100::1",
        ] {
            assert!(forbidden(ip(a)).is_some(), "{a} should be refused");
        }
        assert_eq!(
            forbidden(ip("169.254.169.254")),
            Some("a cloud metadata address")
        );
        assert_eq!(
            forbidden(ip("fd00:ec2::254")),
            Some("a cloud metadata address")
        );
        assert_eq!(
            forbidden(ip("::ffff:127.0.0.1")),
            Some("a loopback address")
        );
    }

    #[test]
    fn public_addresses_pass() {
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "192.0.3.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(forbidden(ip(a)), None, "{a} should pass");
        }
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn policy(allow: &[&str]) -> Policy {
        Policy::new(allow.iter().map(|a| a.parse().unwrap()).collect())
    }

    #[test]
    fn urls_need_https_and_a_public_address_unless_allowlisted() {
        let p = policy(&["127.0.0.1:9000", "hooks.internal", "[::1]:8443"]);
        assert_eq!(
            p.check_url(&url("https://example.org/h")),
            Ok(Checked::Name("example.org".into()))
        );
        assert_eq!(
            p.check_url(&url("https://8.8.8.8/h")),
            Ok(Checked::PublicAddress)
        );
        assert_eq!(
            p.check_url(&url("http://127.0.0.1:9000/h")),
            Ok(Checked::Allowlisted)
        );
        assert_eq!(
            p.check_url(&url("http://hooks.internal:81/h")),
            Ok(Checked::Allowlisted)
        );
        assert_eq!(
            p.check_url(&url("https://HOOKS.internal./h")),
            Ok(Checked::Allowlisted)
        );
        assert_eq!(
            p.check_url(&url("https://[::1]:8443/h")),
            Ok(Checked::Allowlisted)
        );
        for refused in [
            "http://example.org/h",
            "ftp://127.0.0.1:9000/h",
            "https://127.0.0.1/h",
            "https://127.0.0.1:9001/h",
            "https://[::1]/h",
            "https://[::ffff:7f00:1]:9000/h",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/h",
            "https://2130706433/h",
            "https://0x7f.1/h",
            "https://[fd00:ec2::254]/h",
        ] {
            assert!(p.check_url(&url(refused)).is_err(), "{refused}");
        }
    }

    #[test]
    fn a_listed_port_holds_for_names_too() {
        // The resolver sees only names: other ports of a listed name are
        // refused by the URL check instead.
        let p = policy(&["localhost:9000"]);
        assert_eq!(
            p.check_url(&url("http://localhost:9000/")),
            Ok(Checked::Allowlisted)
        );
        assert!(p.check_url(&url("https://localhost:22/")).is_err());
        assert!(policy(&[])
            .check_url(&url("http://localhost:9000/"))
            .is_err());
        // An address on another port is judged by its range.
        let refused = policy(&["127.0.0.1:9000"])
            .check_url(&url("https://127.0.0.1:9001/"))
            .unwrap_err();
        assert!(refused.0.contains("loopback"), "{refused}");
    }

    #[test]
    fn allowlist_entries_parse_or_say_why_not() {
        for (entry, shown) in [
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("127.0.0.1", "127.0.0.1"),
            ("[::1]:8443", "[::1]:8443"),
            ("[::1]", "[::1]"),
            ("::1", "[::1]"),
            ("Hooks.Example.ORG", "hooks.example.org"),
            ("hooks.example.org:8443", "hooks.example.org:8443"),
        ] {
            assert_eq!(entry.parse::<AllowHost>().unwrap().to_string(), shown);
        }
        for bad in [
            "",
            ":80",
            "host:port",
            "[::1",
            "[nope]:1",
            "a b",
            "h:99999",
            "[::1]x",
        ] {
            assert!(bad.parse::<AllowHost>().is_err(), "{bad:?}");
        }
    }

    fn sock(s: &str) -> SocketAddr {
        SocketAddr::new(ip(s), 443)
    }

    #[test]
    fn the_resolver_keeps_only_public_addresses_of_unlisted_names() {
        let p = policy(&["intranet.example"]);
        // A name rebound to loopback and metadata reaches nothing.
        let err = p
            .screen(
                "rebound.example",
                [sock("127.0.0.1"), sock("169.254.169.254")],
            )
            .unwrap_err();
        assert!(err.0.contains("127.0.0.1"), "{err}");
        // Mixed answers: only the public address is dialled.
        assert_eq!(
            p.screen("mixed.example", [sock("10.0.0.1"), sock("8.8.8.8")])
                .unwrap(),
            vec![sock("8.8.8.8")]
        );
        // An allowlisted name may use internal addresses.
        assert_eq!(
            p.screen("Intranet.Example.", [sock("10.0.0.1")]).unwrap(),
            vec![sock("10.0.0.1")]
        );
        assert!(p.screen("empty.example", []).is_err());
    }

    /// The real client, the real system resolver, a real listener on
    /// loopback: `localhost` resolves to it, and no connection is made.
    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_never_dialled() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = tokio::spawn(async move {
            tokio::time::timeout(Duration::from_millis(500), listener.accept())
                .await
                .is_ok()
        });
        let client = policy(&[]).client(Duration::from_secs(2));
        let error = client
            .post(format!("https://localhost:{port}/hook"))
            .send()
            .await
            .unwrap_err();
        let refused = refusal_of(&error).expect("refused by the resolver");
        assert!(refused.0.contains("loopback"), "{refused}");
        assert!(
            !accepted.await.unwrap(),
            "a connection reached the listener"
        );
        // Registration refuses it too, by resolving it now.
        let url = url(&format!("https://localhost:{port}/hook"));
        assert!(policy(&[]).check_registration(&url).await.is_err());
        assert!(policy(&[&format!("localhost:{port}")])
            .check_registration(&url)
            .await
            .is_ok());
    }
}
