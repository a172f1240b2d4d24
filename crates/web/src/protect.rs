//! Protective controls ahead of the handlers: the one place the client's IP address is worked
//! out, rate limits (token buckets per client IP, per account, per firm and per sign-in name),
//! load shedding, and the request filter (see [`crate::waf`]).
//!
//! Buckets are per node and in memory (a database write per request would cost more than the
//! requests); the configured rates are the whole deployment's, each node taking its share as
//! the live nodes registered in the database change ([`Guards::share`]).

use crate::error::{ApiError, UiError};
use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use ipnet::IpNet;
use portcullis_core::Error;
use portcullis_core::ids::{TenantId, UserId};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A token bucket's size: `per_minute` tokens come back each minute, up to `burst` saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub per_minute: u32,
    pub burst: u32,
}

/// Which header names the client when the peer is a trusted proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientIpHeader {
    /// `X-Forwarded-For`: the right-most address that is not itself a trusted proxy.
    XForwardedFor,
    /// `Forwarded` (RFC 7239): the right-most `for=` that is not a trusted proxy.
    Forwarded,
    /// A header holding one address that the proxy sets (and overwrites), such as `X-Real-IP`.
    Single(axum::http::HeaderName),
}

/// The request filter's rule groups and limits.
#[derive(Clone, Debug)]
pub struct WafSettings {
    /// Traversal, encoded separators, double encoding, NUL, backslashes, bad UTF-8, long paths.
    pub path_rules: bool,
    /// Invalid percent-encodings and NUL in the query string, long queries.
    pub query_rules: bool,
    /// Control characters in header values, one Host, header count and size, no request with
    /// both Content-Length and Transfer-Encoding.
    pub header_rules: bool,
    /// Content types per route (JSON for the API, forms for pages, anything for uploads) and
    /// methods (only those the application uses).
    pub content_type_rules: bool,
    pub max_path_bytes: usize,
    pub max_query_bytes: usize,
    pub max_headers: usize,
    pub max_header_bytes: usize,
    /// Blocks from one client IP audited in full per minute; more are counted and summed up
    /// in the next audited block from that address.
    pub audit_per_minute: u32,
}

impl Default for WafSettings {
    fn default() -> Self {
        Self {
            path_rules: true,
            query_rules: true,
            header_rules: true,
            content_type_rules: true,
            max_path_bytes: 2048,
            max_query_bytes: 4096,
            max_headers: 64,
            max_header_bytes: 16 * 1024,
            audit_per_minute: 10,
        }
    }
}

/// Every protective setting.
#[derive(Clone, Debug)]
pub struct ProtectSettings {
    pub trusted_proxies: Vec<IpNet>,
    pub client_ip_header: ClientIpHeader,
    /// Requests per client IP (all routes but the health probes). `None`: off.
    pub per_ip: Option<Rate>,
    /// Requests per signed-in user or API token's user.
    pub per_account: Option<Rate>,
    /// Requests per firm, all its users together.
    pub per_tenant: Option<Rate>,
    /// Sign-in attempts per firm and email address, whatever the source.
    pub sign_in: Option<Rate>,
    /// Public vulnerability and breach reports per client IP.
    pub reports: Option<Rate>,
    /// Requests in progress beyond which new ones are refused at once with 503.
    pub max_in_flight: usize,
    /// Requests without credentials in progress from one source beyond which its new ones are
    /// refused with 429, so a few addresses cannot hold every slot with slow requests.
    pub max_in_flight_per_ip: usize,
    pub waf: WafSettings,
}

impl Default for ProtectSettings {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            client_ip_header: ClientIpHeader::XForwardedFor,
            per_ip: Some(Rate { per_minute: 600, burst: 200 }),
            per_account: Some(Rate { per_minute: 600, burst: 200 }),
            per_tenant: Some(Rate { per_minute: 6000, burst: 1000 }),
            sign_in: Some(Rate { per_minute: 10, burst: 10 }),
            reports: Some(Rate { per_minute: 1, burst: 5 }),
            max_in_flight: 512,
            max_in_flight_per_ip: 64,
            waf: WafSettings::default(),
        }
    }
}

impl Rate {
    /// This node's share of a budget spread over `nodes` (rounded up, so it never reaches 0).
    fn share(self, nodes: u32) -> Self {
        let n = nodes.max(1);
        Self { per_minute: self.per_minute.div_ceil(n), burst: self.burst.div_ceil(n) }
    }
}

/// One keyed limiter; its idle keys are dropped now and then so the map stays small. The rate
/// is the configured (whole deployment's) one divided by the live nodes, replaced when their
/// number changes (the buckets start full again then; it happens only when nodes come or go).
#[derive(Debug)]
pub(crate) struct Keyed<K: Hash + Eq + Clone> {
    rate: Rate,
    limiter: std::sync::RwLock<(u32, Arc<DefaultKeyedRateLimiter<K>>)>,
    checks: AtomicU64,
}

fn limiter<K: Hash + Eq + Clone>(rate: Rate) -> Option<Arc<DefaultKeyedRateLimiter<K>>> {
    let per_minute = NonZeroU32::new(rate.per_minute)?;
    let burst = NonZeroU32::new(rate.burst)?;
    Some(Arc::new(governor::RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst))))
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(rate: Rate) -> Option<Self> {
        let l = limiter(rate)?;
        Some(Self { rate, limiter: std::sync::RwLock::new((1, l)), checks: AtomicU64::new(0) })
    }

    /// Spread the configured rate over `nodes` live nodes.
    fn share(&self, nodes: u32) {
        let Ok(mut slot) = self.limiter.write() else { return };
        if slot.0 != nodes
            && let Some(l) = limiter(self.rate.share(nodes))
        {
            *slot = (nodes, l);
        }
    }

    fn current(&self) -> Option<Arc<DefaultKeyedRateLimiter<K>>> {
        self.limiter.read().ok().map(|slot| slot.1.clone())
    }

    /// Take a token for `key` if there is one, without counting a refusal.
    pub(crate) fn check_quiet(&self, key: &K) -> bool {
        self.current().is_some_and(|l| l.check_key(key).is_ok())
    }

    /// Take a token for `key`, or say how long until one is back. A poisoned lock (a panic
    /// while swapping limiters, which does nothing that can panic) refuses: fail closed.
    fn check(&self, key: &K, kind: &'static str) -> Result<(), Error> {
        let Some(limiter) = self.current() else {
            return Err(Error::RateLimited { retry_after_secs: 1 });
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        limiter.check_key(key).map_err(|not_until| {
            metrics::counter!("portcullis_rate_limited_total", "limit" => kind).increment(1);
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            Error::RateLimited { retry_after_secs: wait.as_secs().saturating_add(1) }
        })
    }
}

/// A limiter that may be off, spread over the live nodes (so [`Guards::share`] can take the
/// limiters of different key types in one list).
trait Spread {
    fn spread(&self, nodes: u32);
}

impl<K: Hash + Eq + Clone> Spread for Option<Keyed<K>> {
    fn spread(&self, nodes: u32) {
        if let Some(l) = self {
            l.share(nodes);
        }
    }
}

/// The live limiters of one node.
#[derive(Debug)]
pub struct Guards {
    pub settings: ProtectSettings,
    per_ip: Option<Keyed<IpAddr>>,
    per_account: Option<Keyed<UserId>>,
    /// Platform operators' requests, per operator, at the per-account rate.
    per_operator: Option<Keyed<portcullis_core::ids::OperatorId>>,
    per_tenant: Option<Keyed<TenantId>>,
    sign_in: Option<Keyed<u64>>,
    reports: Option<Keyed<IpAddr>>,
    /// The key of the sign-in buckets' hash, random per process.
    sign_in_keys: std::collections::hash_map::RandomState,
    in_flight: Arc<tokio::sync::Semaphore>,
    /// Requests without credentials in progress, per source.
    in_flight_per_source: Arc<Mutex<HashMap<IpAddr, usize>>>,
    pub(crate) waf_audit: Option<Keyed<IpAddr>>,
    /// All addresses together: ten times one address's budget, so a flood from many addresses
    /// cannot turn into a stream of audit writes on the platform chain's single writer.
    pub(crate) waf_audit_total: Option<Keyed<()>>,
    pub(crate) waf_suppressed: suppressed::Suppressed,
}

impl Guards {
    pub fn new(settings: ProtectSettings) -> Self {
        let audit = Rate { per_minute: settings.waf.audit_per_minute, burst: settings.waf.audit_per_minute };
        Self {
            per_ip: settings.per_ip.and_then(Keyed::new),
            per_account: settings.per_account.and_then(Keyed::new),
            per_operator: settings.per_account.and_then(Keyed::new),
            per_tenant: settings.per_tenant.and_then(Keyed::new),
            sign_in: settings.sign_in.and_then(Keyed::new),
            reports: settings.reports.and_then(Keyed::new),
            sign_in_keys: std::collections::hash_map::RandomState::new(),
            in_flight: Arc::new(tokio::sync::Semaphore::new(settings.max_in_flight.max(1))),
            in_flight_per_source: Arc::default(),
            waf_audit: Keyed::new(audit),
            waf_audit_total: Keyed::new(Rate {
                per_minute: audit.per_minute.saturating_mul(10),
                burst: audit.burst.saturating_mul(10),
            }),
            waf_suppressed: suppressed::Suppressed::default(),
            settings,
        }
    }

    /// Spread the per-source, per-account and per-firm budgets over `nodes` live nodes (see
    /// `Portal::register_node`): the configured limits are the whole deployment's, whatever
    /// the number of nodes behind the balancer.
    pub fn share(&self, nodes: u32) {
        let all: [&dyn Spread; 6] =
            [&self.per_ip, &self.reports, &self.per_account, &self.per_operator, &self.per_tenant, &self.sign_in];
        for l in all {
            l.spread(nodes);
        }
        metrics::gauge!("portcullis_nodes_live").set(f64::from(nodes));
    }

    /// The per-account limit for a platform operator (operators have no firm).
    pub fn operator(&self, id: portcullis_core::ids::OperatorId) -> Result<(), Error> {
        match &self.per_operator {
            Some(l) => l.check(&id, "account"),
            None => Ok(()),
        }
    }

    /// Per-account and per-firm limits for an authenticated caller.
    pub fn caller(&self, user: UserId, tenant: TenantId) -> Result<(), Error> {
        if let Some(l) = &self.per_account {
            l.check(&user, "account")?;
        }
        if let Some(l) = &self.per_tenant {
            l.check(&tenant, "tenant")?;
        }
        Ok(())
    }

    /// Public reports from one client address (beside its general request limit: a report is
    /// stored and alerted, so far fewer are allowed).
    pub fn report(&self, ip: IpAddr) -> Result<(), Error> {
        match &self.reports {
            Some(l) => l.check(&ip, "report"),
            None => Ok(()),
        }
    }

    /// Sign-in attempts for one firm and email address from one client address: someone
    /// elsewhere cannot keep a user's sign-in at 429 by guessing at their address (guesses
    /// from many addresses meet the account lockout and the stuffing detection instead). The
    /// bucket's key is a hash under a per-process random key: a fixed size whatever was typed,
    /// and no collision anyone can aim for.
    pub fn sign_in(&self, tenant: &str, email: &str, ip: Option<&str>) -> Result<(), Error> {
        let Some(l) = &self.sign_in else { return Ok(()) };
        let key = std::hash::BuildHasher::hash_one(
            &self.sign_in_keys,
            (tenant.trim().to_lowercase(), email.trim().to_lowercase(), ip),
        );
        l.check(&key, "sign_in")
    }
}

/// Counting of blocks left out of the audit log, per client IP.
pub(crate) mod suppressed {
    use std::collections::HashMap;
    use std::net::IpAddr;
    use std::sync::Mutex;

    /// How many blocks per address were not audited since its last audited one. Bounded: when
    /// full, it is cleared (the counts are a courtesy in the next event, not a control).
    #[derive(Debug, Default)]
    pub struct Suppressed(Mutex<HashMap<IpAddr, u64>>);

    const MAX: usize = 10_000;

    impl Suppressed {
        pub fn add(&self, ip: IpAddr) {
            if let Ok(mut m) = self.0.lock() {
                if m.len() >= MAX {
                    m.clear();
                }
                *m.entry(ip).or_insert(0) += 1;
            }
        }

        pub fn take(&self, ip: IpAddr) -> u64 {
            self.0.lock().ok().and_then(|mut m| m.remove(&ip)).unwrap_or(0)
        }
    }
}

/// The client's address, worked out once per request by [`client_ip`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

fn trusted(proxies: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    proxies.iter().any(|n| n.contains(&ip))
}

/// IPv4-mapped IPv6 addresses as IPv4, so `::ffff:10.0.0.1` matches `10.0.0.0/8`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Parse one address as proxies write it: `1.2.3.4`, `1.2.3.4:5`, `[::1]:5`, `"[::1]"`.
fn parse_hop(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    s.strip_prefix('[').and_then(|r| r.split_once(']')).and_then(|(ip, _)| ip.parse().ok())
}

/// A request from a trusted proxy whose forwarding header cannot name the client: the hop the
/// proxies vouch for does not parse (`unknown`, an obfuscated `_id`, junk), or a single-address
/// header came twice. Only the proxies' own configuration can cause this (a client's forged
/// entries sit left of the proxies' and are never reached), so it is refused rather than
/// attributed to the proxy, whose address all its clients share.
#[derive(Debug, PartialEq, Eq)]
pub struct Unattributable;

/// The client's IP: the TCP peer, unless the peer is a trusted proxy, in which case the
/// configured header names it: walking the hops from the right, past trusted proxies, the
/// first hop that is not one. A trusted peer that sends no such header is the client itself
/// (a balancer's own health checks).
pub fn resolve(peer: IpAddr, headers: &HeaderMap, s: &ProtectSettings) -> Result<IpAddr, Unattributable> {
    let peer = canonical(peer);
    if !trusted(&s.trusted_proxies, peer) {
        return Ok(peer);
    }
    // Each hop as written, left to right; `None` for one that does not parse.
    let hops: Vec<Option<IpAddr>> = match &s.client_ip_header {
        ClientIpHeader::XForwardedFor => headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.to_str().ok())
            .flat_map(|v| v.map_or_else(|| vec![None], |v| v.split(',').map(parse_hop).collect()))
            .collect(),
        ClientIpHeader::Forwarded => headers
            .get_all("forwarded")
            .iter()
            .map(|v| v.to_str().ok())
            .flat_map(|v| v.map_or_else(|| vec![None], |v| v.split(',').map(forwarded_for).collect()))
            .collect(),
        ClientIpHeader::Single(name) => {
            let all: Vec<_> = headers.get_all(name).iter().collect();
            if all.len() > 1 {
                return Err(Unattributable);
            }
            all.into_iter().map(|v| v.to_str().ok().and_then(parse_hop)).collect()
        }
    };
    for hop in hops.into_iter().rev() {
        match hop.map(canonical) {
            Some(ip) if trusted(&s.trusted_proxies, ip) => continue,
            Some(ip) => return Ok(ip),
            None => return Err(Unattributable),
        }
    }
    // No header, or only trusted proxies in it: the request comes from the proxies themselves.
    Ok(peer)
}

/// The `for=` address of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then(|| parse_hop(v))?
    })
}

/// Middleware: record the client's IP for everything after it (audit metadata, limits, filter).
pub async fn client_ip(
    axum::extract::State(g): axum::extract::State<Arc<Guards>>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(a)| a.ip());
    if let Some(peer) = peer {
        match resolve(peer, req.headers(), &g.settings) {
            Ok(ip) => {
                req.extensions_mut().insert(ClientIp(ip));
            }
            Err(Unattributable) => {
                let e = Error::invalid(
                    "forwarded",
                    "the forwarding header from the proxy does not name the client's address",
                );
                return refuse(req.uri().path(), e);
            }
        }
    }
    next.run(req).await
}

/// A refusal in the shape the caller reads: JSON under `/api/`, a page elsewhere.
pub fn refuse(path: &str, e: Error) -> Response {
    if path.starts_with("/api/") { ApiError(e).into_response() } else { UiError(e).into_response() }
}

/// A source's place among the requests in progress, given back when dropped.
struct SourceSlot {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    source: IpAddr,
}

impl SourceSlot {
    /// Take a place for `source`, or `None` if it already has `max` requests in progress.
    fn take(counts: &Arc<Mutex<HashMap<IpAddr, usize>>>, source: IpAddr, max: usize) -> Option<Self> {
        let mut m = counts.lock().ok()?;
        let n = m.entry(source).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Self { counts: counts.clone(), source })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.counts.lock()
            && let Some(n) = m.get_mut(&self.source)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.source);
            }
        }
    }
}

/// Does the request carry credentials (a bearer token or a session cookie)? Such a request is
/// limited per account and per firm once they are checked, not per address: the people of an
/// office behind one address must not share one budget that any of them (or a page in one of
/// their browsers) can spend. Credentials that fail are answered 401, which counts toward the
/// enumeration-scan detection; once that blocks the address, the intrusion gate checks the
/// credentials of every request from it before anything else runs.
fn credentialed(req: &Request) -> bool {
    req.headers().contains_key(axum::http::header::AUTHORIZATION)
        || crate::extract::session_cookie(req.headers()).is_some()
}

/// Middleware: per-IP limit (requests without credentials) and load shedding. The health
/// probes are exempt from the per-IP limit (balancers call them often from one address) but
/// not from shedding.
pub async fn throttle(
    axum::extract::State(g): axum::extract::State<Arc<Guards>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let Ok(permit) = g.in_flight.clone().try_acquire_owned() else {
        metrics::counter!("portcullis_requests_shed_total").increment(1);
        return refuse(path, Error::Overloaded { retry_after_secs: 1 });
    };
    let mut source_slot = None;
    if let Some(ClientIp(ip)) = req.extensions().get::<ClientIp>()
        && !matches!(path, "/healthz" | "/readyz")
        && !credentialed(&req)
    {
        let source = portcullis_core::net::source(*ip);
        if let Some(l) = &g.per_ip
            && let Err(e) = l.check(&source, "ip")
        {
            return refuse(path, e);
        }
        source_slot = SourceSlot::take(&g.in_flight_per_source, source, g.settings.max_in_flight_per_ip);
        if source_slot.is_none() {
            metrics::counter!("portcullis_rate_limited_total", "limit" => "ip_in_flight").increment(1);
            return refuse(path, Error::RateLimited { retry_after_secs: 1 });
        }
    }
    let resp = next.run(req).await;
    drop((permit, source_slot));
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn settings(proxies: &[&str], header: ClientIpHeader) -> ProtectSettings {
        ProtectSettings {
            trusted_proxies: proxies.iter().map(|p| p.parse().unwrap()).collect(),
            client_ip_header: header,
            ..ProtectSettings::default()
        }
    }

    fn res(peer: &str, h: &HeaderMap, s: &ProtectSettings) -> Result<IpAddr, Unattributable> {
        resolve(peer.parse().unwrap(), h, s)
    }

    fn ok(ip: &str) -> Result<IpAddr, Unattributable> {
        Ok(ip.parse().unwrap())
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_peer_counts_unless_it_is_a_trusted_proxy() {
        let s = settings(&["10.0.0.0/8"], ClientIpHeader::XForwardedFor);
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(res("192.0.2.1", &h, &s), ok("192.0.2.1"));
        assert_eq!(res("10.1.2.3", &h, &s), ok("203.0.113.9"));
        assert_eq!(res("::ffff:10.1.2.3", &h, &s), ok("203.0.113.9"));
        assert_eq!(res("10.1.2.3", &HeaderMap::new(), &s), ok("10.1.2.3"), "the balancer's own request");
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let s = settings(&["10.0.0.0/8"], ClientIpHeader::XForwardedFor);
        // The client forged the first entry; the proxies appended the rest.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.0.0.5")]);
        assert_eq!(res("10.0.0.6", &h, &s), ok("198.51.100.7"));
        // Junk the client put in front is never reached...
        let h = headers(&[("x-forwarded-for", "nonsense, 198.51.100.7")]);
        assert_eq!(res("10.0.0.6", &h, &s), ok("198.51.100.7"));
        let h = headers(&[("x-forwarded-for", "nonsense"), ("x-forwarded-for", "198.51.100.7, 10.0.0.5")]);
        assert_eq!(res("10.0.0.6", &h, &s), ok("198.51.100.7"));
        // ...while a hop the proxies vouch for that names nobody is refused, never the proxy's.
        let h = headers(&[("x-forwarded-for", "198.51.100.7, unknown, 10.0.0.5")]);
        assert_eq!(res("10.0.0.6", &h, &s), Err(Unattributable));
    }

    #[test]
    fn forwarded_and_single_headers() {
        let s = settings(&["10.0.0.0/8"], ClientIpHeader::Forwarded);
        let h = headers(&[("forwarded", r#"for=1.1.1.1, for="[2001:db8::1]:443";proto=https, for=10.0.0.2"#)]);
        assert_eq!(res("10.0.0.6", &h, &s), ok("2001:db8::1"));
        let h = headers(&[("forwarded", "for=198.51.100.7, for=_hidden")]);
        assert_eq!(res("10.0.0.6", &h, &s), Err(Unattributable));
        let s = settings(&["10.0.0.0/8"], ClientIpHeader::Single(axum::http::HeaderName::from_static("x-real-ip")));
        let h = headers(&[("x-real-ip", "203.0.113.4")]);
        assert_eq!(res("10.0.0.6", &h, &s), ok("203.0.113.4"));
        let h = headers(&[("x-real-ip", "203.0.113.4"), ("x-real-ip", "203.0.113.5")]);
        assert_eq!(res("10.0.0.6", &h, &s), Err(Unattributable));
    }

    #[test]
    fn buckets_refuse_past_the_burst_with_a_wait() {
        let k = Keyed::<u8>::new(Rate { per_minute: 1, burst: 2 }).unwrap();
        assert!(k.check(&1, "t").is_ok() && k.check(&1, "t").is_ok());
        match k.check(&1, "t") {
            Err(Error::RateLimited { retry_after_secs }) => assert!((1..=61).contains(&retry_after_secs)),
            other => panic!("{other:?}"),
        }
        assert!(k.check(&2, "t").is_ok(), "other keys have their own bucket");
        assert!(Keyed::<u8>::new(Rate { per_minute: 0, burst: 1 }).is_none());
    }

    #[test]
    fn a_budget_is_spread_over_the_live_nodes() {
        assert_eq!(Rate { per_minute: 10, burst: 5 }.share(2), Rate { per_minute: 5, burst: 3 });
        assert_eq!(Rate { per_minute: 1, burst: 1 }.share(4), Rate { per_minute: 1, burst: 1 });
        assert_eq!(Rate { per_minute: 7, burst: 7 }.share(0), Rate { per_minute: 7, burst: 7 });
        let l = Keyed::<u8>::new(Rate { per_minute: 1, burst: 6 }).unwrap();
        l.share(3);
        assert_eq!((0..3).map(|_| l.check_quiet(&1)).collect::<Vec<_>>(), [true, true, false], "a third of six");
        l.share(3);
        assert!(!l.check_quiet(&1), "the same count keeps the buckets");
        l.share(1);
        assert_eq!((0..7).filter(|_| l.check_quiet(&1)).count(), 6, "one node again: the whole budget");
    }
}
