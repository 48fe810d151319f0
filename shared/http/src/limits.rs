//! Rate limits: per signed-in user, per client address, and a stricter one
//! per address on the sign-in endpoints. Over a limit the answer is 429
//! problem JSON (`code: rate_limited`) with `Retry-After` in whole seconds.
//!
//! Who is counted where:
//! - A request with a token verified in the last moments counts against
//!   its user (agency and subject of the verified token, never a claim read
//!   from an unverified one). An office behind one NAT address, or the web
//!   app calling the API through the gateway for all its users, is not one
//!   bucket.
//! - Every other request (no token, a bad one, or one not seen lately)
//!   counts against its address first, before any signature is checked, so
//!   a flood of made-up tokens costs no cryptography once over the limit.
//!   A fresh token that verifies then counts against its user as well.
//! - Sign-in endpoints count against their address on their own, stricter
//!   limit besides.
//!
//! The address is the peer's. `X-Forwarded-For` is believed only from a
//! configured trusted proxy (the gateway), read from the right: the first
//! address that is not itself a trusted proxy is the client. IPv6 clients
//! are counted per /64, which one client usually holds whole.
//!
//! Limits are per process: with N replicas behind the gateway a client may
//! get up to N times the rate.
//!
//! governor directly rather than tower_governor: its key extractors cannot
//! let a request through uncounted (anonymous requests on the per-user
//! limit, other paths on the sign-in one), its `Retry-After` is rounded down
//! (0 for a wait under a second, so a polite client retries too early), and
//! it turns on governor's default features (dashmap, quanta, rand).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
pub use ipnet::IpNet;
use tokio_util::sync::CancellationToken;
use verkosto_auth::Verifier;

use crate::extract::{bearer, TokenChecked};
use crate::problem::{Coded, Problem};

/// The stable code of a 429 answer.
pub const RATE_LIMITED: &str = "rate_limited";

/// A rate as the flags write it: `50/s:500` is 50 a second with bursts of
/// up to 500; `30/m` is 30 a minute with bursts of 30; `off` (or `0`) is
/// no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate(Option<Quota>);

impl Rate {
    pub fn off() -> Rate {
        Rate(None)
    }

    pub fn is_off(&self) -> bool {
        self.0.is_none()
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Rate, String> {
        let text = text.trim();
        if text == "off" || text == "0" {
            return Ok(Rate(None));
        }
        let bad = || {
            format!(
                "`{text}` is not a rate like 50/s:500 (50 a second, bursts of 500), 30/m, 100/h, or off"
            )
        };
        let (rate, burst) = match text.split_once(':') {
            Some((rate, burst)) => (rate, Some(burst)),
            None => (text, None),
        };
        let (count, unit) = rate.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.parse().map_err(|_| bad())?;
        let count = NonZeroU32::new(count).ok_or_else(bad)?;
        let period = match unit {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        let burst = match burst {
            None => count,
            Some(b) => b
                .parse::<u32>()
                .ok()
                .and_then(NonZeroU32::new)
                .ok_or_else(bad)?,
        };
        let quota = Quota::with_period(period / count.get())
            .ok_or_else(bad)?
            .allow_burst(burst);
        Ok(Rate(Some(quota)))
    }
}

/// A trusted proxy: `10.0.0.5` or `10.0.0.0/24` (IPv6 likewise). A prefix
/// of length 0 is refused: it would believe the header from anyone.
pub fn parse_trusted_proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    let net = text
        .parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{text}` is not an address or a CIDR block like 10.0.0.0/24"))?;
    // An IPv4-mapped block as the IPv4 block it is: peers are compared
    // in their IPv4 form.
    let net = match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).unwrap_or(net),
            None => net,
        },
        other => other,
    };
    if net.prefix_len() == 0 {
        return Err(format!(
            "`{text}` would believe X-Forwarded-For from any address; name the proxies"
        ));
    }
    Ok(net.trunc())
}

/// What to limit, as configured.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Requests per signed-in user (agency and user of a verified token).
    pub per_user: Rate,
    /// Requests per client address without a recently verified token.
    pub per_address: Rate,
    /// Requests per client address to the sign-in endpoints, on top of the others.
    pub sign_in: Rate,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The sign-in endpoints: method and exact path (GET covers HEAD).
    pub sign_in_paths: Vec<(Method, &'static str)>,
}

type Limiter<K> = DefaultKeyedRateLimiter<K>;

/// The limiters of one process; cheap to clone.
#[derive(Clone)]
pub struct Limits {
    /// Shared by every clone.
    inner: Arc<Inner>,
}

struct Inner {
    /// Buckets by (agency, user); none: no limit.
    per_user: Option<Limiter<(String, String)>>,
    /// Buckets by client address (IPv6 by /64); none: no limit.
    per_address: Option<Limiter<IpAddr>>,
    /// Buckets by client address for the sign-in paths; none: no limit.
    sign_in: Option<Limiter<IpAddr>>,
    /// Peers whose `X-Forwarded-For` is believed.
    trusted_proxies: Vec<IpNet>,
    /// The sign-in endpoints: method and exact path (GET covers HEAD).
    sign_in_paths: Vec<(Method, &'static str)>,
    /// Checks a token before it is counted per user; shared with the `Caller` extractor.
    verifier: Arc<Verifier>,
    /// Requests refused since the start, indexed by [`Which`].
    refused: [AtomicU64; 3],
}

/// Which limit refused a request (also the metric's label).
#[derive(Clone, Copy, Debug)]
pub enum Which {
    PerUser = 0,
    PerAddress = 1,
    SignIn = 2,
}

impl Which {
    pub const ALL: [Which; 3] = [Which::PerUser, Which::PerAddress, Which::SignIn];

    pub fn as_str(self) -> &'static str {
        match self {
            Which::PerUser => "per_user",
            Which::PerAddress => "per_address",
            Which::SignIn => "sign_in",
        }
    }
}

impl Limits {
    /// `verifier` must be the one the `Caller` extractor uses: a token it
    /// verified here is not verified again there.
    pub fn new(settings: Settings, verifier: Arc<Verifier>) -> Limits {
        Limits {
            inner: Arc::new(Inner {
                per_user: settings.per_user.0.map(RateLimiter::keyed),
                per_address: settings.per_address.0.map(RateLimiter::keyed),
                sign_in: settings.sign_in.0.map(RateLimiter::keyed),
                trusted_proxies: settings.trusted_proxies,
                sign_in_paths: settings.sign_in_paths,
                verifier,
                refused: Default::default(),
            }),
        }
    }

    /// How many requests `which` has refused since the start.
    pub fn refused(&self, which: Which) -> u64 {
        self.inner.refused[which as usize].load(Ordering::Relaxed)
    }

    /// Forgets clients that are back to a full burst, once a minute, so
    /// that the memory follows the clients of the last moments, not every
    /// address ever seen.
    pub async fn run_cleanup(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                _ = shutdown.cancelled() => return,
            }
            let i = &self.inner;
            if let Some(l) = &i.per_user {
                l.retain_recent();
                l.shrink_to_fit();
            }
            for l in [&i.per_address, &i.sign_in].into_iter().flatten() {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
    }

    fn is_sign_in(&self, method: &Method, path: &str) -> bool {
        self.inner.sign_in_paths.iter().any(|(m, p)| {
            *p == path && (m == method || (*m == Method::GET && method == Method::HEAD))
        })
    }

    /// The refusal, when `key` is over `limiter`'s limit.
    fn check<K: Clone + Eq + std::hash::Hash>(
        &self,
        limiter: &Option<Limiter<K>>,
        key: &K,
        which: Which,
    ) -> Option<Response> {
        let not_until = limiter.as_ref()?.check_key(key).err()?;
        self.inner.refused[which as usize].fetch_add(1, Ordering::Relaxed);
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        Some(too_many(wait, which))
    }
}

/// The middleware: `axum::middleware::from_fn_with_state(limits, limit)`.
/// Needs the server to be run with `into_make_service_with_connect_info`.
pub async fn limit(State(limits): State<Limits>, mut req: Request, next: Next) -> Response {
    let l = &limits.inner;
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        // Never without ConnectInfo in the server; if it were, one shared
        // bucket is the safe side.
        .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    let address = bucket(client_address(peer, req.headers(), &l.trusted_proxies));

    if limits.is_sign_in(req.method(), req.uri().path()) {
        if let Some(refused) = limits.check(&l.sign_in, &address, Which::SignIn) {
            return refused;
        }
    }

    let token = bearer(req.headers()).map(str::to_string);
    let mut principal = token
        .as_deref()
        .and_then(|t| l.verifier.recently_verified(t));
    if principal.is_none() {
        if let Some(refused) = limits.check(&l.per_address, &address, Which::PerAddress) {
            return refused;
        }
        if let Some(token) = &token {
            let checked = l.verifier.verify(token).await;
            principal = checked.as_ref().ok().cloned();
            // The Caller extractor uses this answer instead of checking
            // the same token again.
            req.extensions_mut().insert(TokenChecked(Arc::new(checked)));
        }
    }
    if let Some(p) = principal {
        let key = (p.agency, p.user);
        if let Some(refused) = limits.check(&l.per_user, &key, Which::PerUser) {
            return refused;
        }
    }
    next.run(req).await
}

/// The client's address: the peer's, or, when the peer is a trusted proxy,
/// the rightmost address in `X-Forwarded-For` that is not a trusted proxy
/// (each proxy appends the address it received from; anything further
/// left was written by the client and may be anything).
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = canonical(peer);
    if !is_trusted(&client) {
        return client;
    }
    let lines: Vec<&HeaderValue> = headers.get_all("x-forwarded-for").iter().collect();
    for line in lines.into_iter().rev() {
        let Ok(text) = line.to_str() else {
            return client;
        };
        for hop in text.rsplit(',') {
            let hop = hop.trim();
            let Some(ip) = hop
                .parse::<IpAddr>()
                .ok()
                .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
            else {
                // Not written by a proxy of ours: the last trusted hop's
                // view is all there is.
                return client;
            };
            client = canonical(ip);
            if !is_trusted(&client) {
                return client;
            }
        }
    }
    client
}

/// IPv4-mapped IPv6 as plain IPv4, so one client is one key and matches
/// IPv4 blocks.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The key an address is counted under: IPv4 as is, IPv6 per /64.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// 429 with `Retry-After`: the wait rounded up to whole seconds (at least
/// one), so that a client that waits as told gets through.
fn too_many(wait: Duration, which: Which) -> Response {
    let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    tracing::info!(
        limit = which.as_str(),
        retry_after = seconds,
        "rate limited"
    );
    let what = match which {
        Which::PerUser => "from this user",
        Which::PerAddress => "from this address",
        Which::SignIn => "to sign in from this address",
    };
    let mut problem = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        format!("too many requests {what}; retry after {seconds} s"),
    );
    problem.coded = Some(Box::new(Coded {
        code: RATE_LIMITED.to_string(),
        errors: Vec::new(),
        case_id: None,
    }));
    let mut response = problem.into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter()
            .map(|s| parse_trusted_proxy(s).unwrap())
            .collect()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rates_read_with_unit_and_burst_and_off() {
        let r: Rate = "50/s:500".parse().unwrap();
        let q = r.0.unwrap();
        assert_eq!(q.burst_size().get(), 500);
        assert_eq!(q.replenish_interval(), Duration::from_millis(20));
        let r: Rate = "30/m".parse().unwrap();
        assert_eq!(r.0.unwrap().burst_size().get(), 30);
        assert_eq!(r.0.unwrap().replenish_interval(), Duration::from_secs(2));
        assert!("off".parse::<Rate>().unwrap().is_off());
        assert!("0".parse::<Rate>().unwrap().is_off());
        for bad in [
            "", "50", "50/d", "0/s", "5/s:0", "5/s:", "x/s", "-1/s", "5/s:5:5",
        ] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_header_is_believed_only_from_trusted_proxies() {
        let trusted = nets(&["10.0.0.0/24", "fd00::1"]);
        let h = xff(&["203.0.113.9"]);
        // From an untrusted peer: the peer, whatever the header says.
        assert_eq!(
            client_address(ip("198.51.100.7"), &h, &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(ip("198.51.100.7"), &h, &[]),
            ip("198.51.100.7")
        );
        // From the gateway: the address it saw.
        assert_eq!(
            client_address(ip("10.0.0.2"), &h, &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_address(ip("fd00::1"), &h, &trusted),
            ip("203.0.113.9")
        );
        // A client's own forged entries are left of what the gateway added.
        let forged = xff(&["1.2.3.4, 203.0.113.9"]);
        assert_eq!(
            client_address(ip("10.0.0.2"), &forged, &trusted),
            ip("203.0.113.9")
        );
        // Several trusted hops, over several header lines.
        let chain = xff(&["1.2.3.4, 203.0.113.9", "10.0.0.3"]);
        assert_eq!(
            client_address(ip("10.0.0.2"), &chain, &trusted),
            ip("203.0.113.9")
        );
        // Garbage where the gateway's entry should be: the gateway's view.
        let junk = xff(&["203.0.113.9, nonsense"]);
        assert_eq!(
            client_address(ip("10.0.0.2"), &junk, &trusted),
            ip("10.0.0.2")
        );
        // No header from the gateway: the gateway itself.
        assert_eq!(
            client_address(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
        // IPv4-mapped peers match IPv4 blocks.
        assert_eq!(
            client_address(ip("::ffff:10.0.0.2"), &h, &trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn trusting_everyone_is_refused() {
        assert!(parse_trusted_proxy("0.0.0.0/0").is_err());
        assert!(parse_trusted_proxy("::/0").is_err());
        assert!(parse_trusted_proxy("::ffff:0.0.0.0/96").is_err());
        assert!(parse_trusted_proxy("gateway").is_err());
        assert_eq!(parse_trusted_proxy("10.1.2.3").unwrap().prefix_len(), 32);
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        assert_eq!(bucket(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(bucket(ip("192.0.2.1")), ip("192.0.2.1"));
    }
}
