//! Intrusion detection and prevention, and anomaly detection on behaviour (docs/security.md,
//! "Intrusion and anomaly detection").
//!
//! Attacks detected: brute force (many failed sign-ins on one account from one source),
//! password spraying (failures across many accounts from one source), credential stuffing (one
//! account failing from many sources), enumeration scans (bursts of 401/403/404 answers to one
//! source) and repeated CSRF failures. Responses: the source address is blocked for a while
//! (shared by every node: blocks live in the database), the targeted account is protected (its
//! sessions must step up again; signing in needs a second factor, or, without one, a known
//! device), and an alert is raised. Blocks on an address never stop valid sessions, tokens or
//! known devices (see `policy::passes_source_block`), so an office behind one NAT works on.
//!
//! Sign-in failures are counted in the database (`signin_failures`), so an attacker spread over
//! the nodes behind a load balancer is seen whole. Error answers (scans, CSRF) are counted per
//! node in memory: counting every 404 in the database would turn reads into writes; with N
//! nodes a scanner gets up to N times the threshold before the first node blocks it, and the
//! block then holds on every node.
//!
//! Behaviour: each user has a baseline of daily downloads (count and bytes, exponentially
//! weighted over active days) and of the hours they sign in at. Downloading far more than the
//! baseline in one day (or more than the absolute ceiling, whatever the history) pauses the
//! user's downloads until an admin resumes them; sign-ins from a new address or device, or at an
//! hour the user has not been active at, are recorded as detections only.

use super::{NewAlert, Portal, actor};
use crate::audit::{Action, Actor, NewEvent, RequestMeta, Target};
use crate::authn::secret;
use crate::error::{Error, Result};
use crate::ids::{BlockId, DetectionId, TenantId, UserId};
use crate::model::{Baseline, Block, BlockScope, Detection, DetectionKind, Severity, User};
use crate::policy::can;
use crate::policy::{self, OperatorPrincipal, PlatformPermission, Principal};
use crate::ports::Tx;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

/// How many detections a listing shows.
const LIST_LIMIT: i64 = 200;
/// Per-node counters kept at most; beyond it, expired ones are dropped first.
const MAX_COUNTERS: usize = 100_000;

/// Thresholds and durations, from configuration.
#[derive(Clone, Debug)]
pub struct IntrusionSettings {
    /// Detection on or off (off: nothing is counted, blocked or paused).
    pub enabled: bool,
    /// The window failures and error answers are counted in.
    pub window: Duration,
    /// Failed sign-ins on one account from one source within the window: brute force.
    pub brute_force_failures: u32,
    /// Distinct accounts failing from one source within the window: password spraying.
    pub spray_accounts: u32,
    /// Distinct sources failing on one account within the window: credential stuffing.
    pub stuffing_sources: u32,
    /// 401, 403 and 404 answers to one source within the window: an enumeration scan.
    pub scan_errors: u32,
    /// CSRF failures from one source within the window.
    pub csrf_failures: u32,
    /// How long a source stays blocked.
    pub block_for: Duration,
    /// How long an attacked account stays protected (unless an admin lifts it earlier).
    pub protect_for: Duration,
    /// Downloads in a day above `factor` times the baseline pause the user...
    pub download_factor: u32,
    /// ...but only above this many downloads in the day...
    pub download_floor: u64,
    /// ...or this many bytes.
    pub download_floor_bytes: u64,
    /// Whatever the history, more downloads than this in a day pause the user...
    pub download_ceiling: u64,
    /// ...as do more bytes than this.
    pub download_ceiling_bytes: u64,
    /// Active days of history before the baseline is trusted (before, only the ceiling applies).
    pub min_days: u32,
    /// Weight of the newest day in the averages, in percent.
    pub alpha_percent: u32,
    /// Sign-ins recorded before an hour never used counts as unusual.
    pub hours_min_signins: u32,
}

impl Default for IntrusionSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            window: Duration::minutes(10),
            brute_force_failures: 20,
            spray_accounts: 10,
            stuffing_sources: 5,
            scan_errors: 200,
            csrf_failures: 20,
            block_for: Duration::minutes(60),
            protect_for: Duration::hours(24),
            download_factor: 5,
            download_floor: 50,
            download_floor_bytes: 500 * 1024 * 1024,
            download_ceiling: 1000,
            download_ceiling_bytes: 20 * 1024 * 1024 * 1024,
            min_days: 5,
            alpha_percent: 30,
            hours_min_signins: 20,
        }
    }
}

/// What a node counts in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Counted {
    ErrorAnswers,
    CsrfFailures,
}

/// Per-node counters of error answers per source, in fixed windows.
#[derive(Debug, Default)]
pub struct Counters {
    slots: Mutex<HashMap<(Counted, String), (OffsetDateTime, u32)>>,
}

impl Counters {
    /// Count one more for `ip` and return the count in the current window.
    fn bump(&self, what: Counted, ip: &str, now: OffsetDateTime, window: Duration) -> u32 {
        let Ok(mut slots) = self.slots.lock() else { return 0 };
        // Full: forget finished windows, then the sources seen once (a flood from many
        // addresses is mostly those), and only then everything; a source working towards a
        // threshold is the last to be forgotten.
        if slots.len() >= MAX_COUNTERS {
            slots.retain(|_, (start, _)| now - *start < window);
        }
        if slots.len() >= MAX_COUNTERS {
            slots.retain(|_, (_, n)| *n > 1);
        }
        if slots.len() >= MAX_COUNTERS {
            slots.clear();
        }
        let slot = slots.entry((what, ip.to_string())).or_insert((now, 0));
        if now - slot.0 >= window {
            *slot = (now, 0);
        }
        slot.1 = slot.1.saturating_add(1);
        slot.1
    }
}

/// Blocks and detections as an admin or operator sees them.
#[derive(Debug, Clone)]
pub struct SecurityOverview {
    pub blocks: Vec<Block>,
    pub detections: Vec<Detection>,
}

/// The day (since the Unix epoch, UTC) and hour of `t`.
fn day_hour(t: OffsetDateTime) -> (i64, usize) {
    let secs = t.unix_timestamp();
    (secs.div_euclid(86_400), usize::try_from(secs.rem_euclid(86_400) / 3_600).unwrap_or(0))
}

/// Fold a finished day into an average kept times 1000.
fn ewma(avg_milli: u64, day: u64, days: u32, alpha_percent: u32) -> u64 {
    let day_milli = day.saturating_mul(1000);
    if days == 0 {
        return day_milli;
    }
    let a = u128::from(alpha_percent.min(100));
    let v = (a * u128::from(day_milli) + (100 - a) * u128::from(avg_milli)) / 100;
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// Whether a day's downloads so far are beyond what the baseline allows; the reason if so.
pub(crate) fn exfiltration(b: &Baseline, s: &IntrusionSettings) -> Option<&'static str> {
    if b.day_count > s.download_ceiling || b.day_bytes > s.download_ceiling_bytes {
        return Some("absolute_ceiling");
    }
    if b.days < s.min_days {
        return None;
    }
    let factor = u64::from(s.download_factor);
    let over = |today: u64, avg_milli: u64, floor: u64| {
        today > floor && today.saturating_mul(1000) > avg_milli.saturating_mul(factor)
    };
    if over(b.day_count, b.avg_count_milli, s.download_floor)
        || over(b.day_bytes, b.avg_bytes_milli, s.download_floor_bytes)
    {
        return Some("above_baseline");
    }
    None
}

/// A block in force from `now` until `expires_at` (`None`: until lifted).
fn new_block(
    scope: BlockScope,
    (tenant_id, user_id): (Option<TenantId>, Option<UserId>),
    ip: Option<String>,
    reason: DetectionKind,
    detail: serde_json::Value,
    now: OffsetDateTime,
    expires_at: Option<OffsetDateTime>,
) -> Block {
    Block {
        id: BlockId::new(),
        scope,
        tenant_id,
        user_id,
        ip,
        reason,
        detail,
        created_at: now,
        expires_at,
        lifted_at: None,
        lifted_by: None,
    }
}

fn empty_baseline(tenant: TenantId, user: UserId, day: i64) -> Baseline {
    Baseline {
        tenant_id: tenant,
        user_id: user,
        day,
        day_count: 0,
        day_bytes: 0,
        avg_count_milli: 0,
        avg_bytes_milli: 0,
        days: 0,
        hours: [0; 24],
    }
}

/// Move a baseline to `day`, folding the day it held (if it had activity) into the averages.
fn roll(b: &mut Baseline, day: i64, alpha: u32) {
    if b.day == day {
        return;
    }
    if b.day_count > 0 {
        b.avg_count_milli = ewma(b.avg_count_milli, b.day_count, b.days, alpha);
        b.avg_bytes_milli = ewma(b.avg_bytes_milli, b.day_bytes, b.days, alpha);
        b.days = b.days.saturating_add(1);
    }
    b.day = day;
    b.day_count = 0;
    b.day_bytes = 0;
}

/// What a detector saw: the kind, whom it concerns (if anyone) and the facts (counts, never
/// content).
struct Sighting {
    kind: DetectionKind,
    tenant: Option<TenantId>,
    user: Option<UserId>,
    detail: serde_json::Value,
}

impl Sighting {
    fn new(kind: DetectionKind, tenant: Option<TenantId>, user: Option<UserId>, detail: serde_json::Value) -> Self {
        Self { kind, tenant, user, detail }
    }
}

impl Portal {
    fn ids(&self) -> &IntrusionSettings {
        &self.settings.intrusion
    }

    /// The block in force on a source address, if any (for the web layer's gate).
    pub async fn source_block(&self, ip: Option<&str>) -> Result<Option<Block>> {
        let Some(ip) = ip.filter(|_| self.ids().enabled) else { return Ok(None) };
        self.read().await?.intrusion().source_block(&crate::net::source_key(ip), self.clock.now()).await
    }

    /// Count an answer the web layer gave: 401, 403 and 404 answers toward an enumeration
    /// scan, CSRF failures toward their own threshold. Crossing a threshold blocks the source.
    pub async fn note_answer(&self, meta: &RequestMeta, status: u16, error_code: Option<&str>) -> Result<()> {
        let s = self.ids();
        let Some(ip) = meta.ip.as_deref().filter(|_| s.enabled).map(crate::net::source_key) else { return Ok(()) };
        let ip = ip.as_str();
        let now = self.clock.now();
        let mut trips = Vec::new();
        if matches!(status, 401 | 403 | 404)
            && self.counters.bump(Counted::ErrorAnswers, ip, now, s.window) == s.scan_errors
        {
            trips.push((DetectionKind::EnumerationScan, s.scan_errors));
        }
        if error_code == Some("csrf_failed")
            && self.counters.bump(Counted::CsrfFailures, ip, now, s.window) == s.csrf_failures
        {
            trips.push((DetectionKind::CsrfFailures, s.csrf_failures));
        }
        for (kind, n) in trips {
            let mut tx = self.write().await?;
            let detail = json!({ "count": n, "window_minutes": s.window.whole_minutes() });
            self.respond(&mut *tx, Sighting::new(kind, None, None, detail), meta, now).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Record a failed sign-in on `target` (a user, or a keyed hash of tenant and unknown
    /// email) from the request's source, in the sign-in's transaction, and respond to brute
    /// force, spraying and stuffing when this failure crosses their thresholds.
    pub(super) async fn note_signin_failure(
        &self,
        tx: &mut dyn Tx,
        tenant: Option<TenantId>,
        user: Option<UserId>,
        unknown_name: &str,
        meta: &RequestMeta,
        now: OffsetDateTime,
    ) -> Result<()> {
        let s = self.ids().clone();
        let Some(ip) = meta.ip.as_deref().filter(|_| s.enabled).map(crate::net::source_key) else { return Ok(()) };
        let ip = ip.as_str();
        let target = match user {
            Some(u) => format!("user:{u}"),
            None => format!("name:{}", secret::hash_str(&unknown_name.to_lowercase())),
        };
        let (targets, sources, tries) = tx.intrusion().record_signin_failure(ip, &target, now, now - s.window).await?;
        let base = |n: u32| json!({ "count": n, "window_minutes": s.window.whole_minutes() });
        if user.is_some() && tries == s.brute_force_failures {
            self.respond(tx, Sighting::new(DetectionKind::BruteForce, tenant, user, base(tries)), meta, now).await?;
        }
        if targets == s.spray_accounts {
            self.respond(tx, Sighting::new(DetectionKind::PasswordSpraying, None, None, base(targets)), meta, now)
                .await?;
        }
        if user.is_some() && sources == s.stuffing_sources {
            self.respond(tx, Sighting::new(DetectionKind::CredentialStuffing, tenant, user, base(sources)), meta, now)
                .await?;
        }
        Ok(())
    }

    /// Respond to a detected attack: record it, block the source (spraying, scans, CSRF, brute
    /// force: one address is the attacker), protect the account (brute force, stuffing: the
    /// account is the target; stuffing comes from many addresses, so no single one is
    /// blocked), audit and alert.
    async fn respond(&self, tx: &mut dyn Tx, seen: Sighting, meta: &RequestMeta, now: OffsetDateTime) -> Result<()> {
        let s = self.ids().clone();
        self.record_detection(tx, &seen, meta, now).await?;
        let Sighting { kind, tenant, user, detail } = seen;
        let mut responses = Vec::new();
        let block_source = !matches!(kind, DetectionKind::CredentialStuffing);
        if let Some(ip) = meta.ip.as_deref().filter(|_| block_source).map(crate::net::source_key)
            && tx.intrusion().source_block(&ip, now).await?.is_none()
        {
            let b = new_block(
                BlockScope::Source,
                (None, None),
                Some(ip.to_string()),
                kind,
                detail.clone(),
                now,
                Some(now + s.block_for),
            );
            tx.intrusion().insert_block(&b).await?;
            let ev = NewEvent::new(None, Actor::System, Action::SecuritySourceBlocked, Target::Block(b.id), meta)
                .with_detail(
                    json!({ "ip": ip, "reason": kind.as_str(), "until": b.expires_at.map(crate::clock::to_millis) }),
                );
            tx.audit().append_audit(&ev, now).await?;
            responses.push("source_blocked");
        }
        if let (Some(t), Some(u)) = (tenant, user)
            && tx.intrusion().user_block(t, u, BlockScope::Account, now).await?.is_none()
        {
            let b = new_block(
                BlockScope::Account,
                (Some(t), Some(u)),
                meta.ip.clone(),
                kind,
                detail.clone(),
                now,
                Some(now + s.protect_for),
            );
            tx.intrusion().insert_block(&b).await?;
            let ev = NewEvent::new(Some(t), Actor::System, Action::SecurityAccountProtected, Target::User(u), meta)
                .with_detail(json!({ "block": b.id.to_string(), "reason": kind.as_str() }));
            tx.audit().append_audit(&ev, now).await?;
            responses.push("account_protected");
        }
        if let Some(alert_kind) = kind.alert() {
            let subject = match (user, meta.ip.as_deref()) {
                (Some(u), _) => format!("user:{u}"),
                (None, Some(ip)) => format!("ip:{ip}"),
                (None, None) => "unknown".into(),
            };
            let summary = match kind {
                DetectionKind::BruteForce => {
                    "Brute force on one account from one address: the address is blocked and the account must step up"
                }
                DetectionKind::PasswordSpraying => {
                    "Password spraying across many accounts from one address: the address is blocked"
                }
                DetectionKind::CredentialStuffing => {
                    "Credential stuffing on one account from many addresses: the account must step up"
                }
                DetectionKind::EnumerationScan => {
                    "An enumeration scan (a burst of 401, 403 and 404 answers) from one address: the address is blocked"
                }
                DetectionKind::CsrfFailures => "Repeated CSRF failures from one address: the address is blocked",
                _ => "Suspicious activity",
            };
            let alert = NewAlert::new(alert_kind, Severity::Warning, tenant, subject, summary).with_detail(json!({
                "ip": meta.ip,
                "detection": kind.as_str(),
                "facts": detail,
                "responses": responses,
            }));
            self.raise_alert_in(tx, &alert, now).await?;
        }
        Ok(())
    }

    async fn record_detection(
        &self,
        tx: &mut dyn Tx,
        seen: &Sighting,
        meta: &RequestMeta,
        now: OffsetDateTime,
    ) -> Result<()> {
        let Sighting { kind, tenant, user, ref detail } = *seen;
        let d = Detection {
            id: DetectionId::new(),
            kind,
            tenant_id: tenant,
            user_id: user,
            ip: meta.ip.clone(),
            detail: detail.clone(),
            created_at: now,
        };
        tx.intrusion().insert_detection(&d).await?;
        let target = user.map_or(Target::Detection(d.id), Target::User);
        let ev = NewEvent::new(tenant, Actor::System, Action::SecurityDetection, target, meta)
            .with_detail(json!({ "kind": kind.as_str(), "detection": d.id.to_string(), "facts": detail }));
        tx.audit().append_audit(&ev, now).await
    }

    /// At sign-in, before the password counts: a blocked source passes only with a device
    /// known for the account. Returns the refusal to give, if any, after auditing it.
    pub(super) async fn gate_signin(
        &self,
        tx: &mut dyn Tx,
        user: Option<&User>,
        known_device: bool,
        meta: &RequestMeta,
        now: OffsetDateTime,
    ) -> Result<Option<Error>> {
        let Some(ip) = meta.ip.as_deref().filter(|_| self.ids().enabled) else { return Ok(None) };
        let block = tx.intrusion().source_block(&crate::net::source_key(ip), now).await?;
        let credential = match (user, known_device) {
            (Some(_), true) => policy::SourceCredential::KnownDevice,
            _ => policy::SourceCredential::None,
        };
        match policy::passes_source_block(block.as_ref(), credential) {
            Ok(()) => Ok(None),
            Err(e) => {
                let ev = NewEvent::new(
                    user.map(|u| u.tenant_id),
                    Actor::Anonymous,
                    Action::AuthLoginBlocked,
                    user.map_or(Target::Unknown, |u| Target::User(u.id)),
                    meta,
                )
                .with_detail(json!({ "block": block.map(|b| b.id.to_string()) }));
                tx.audit().append_audit(&ev, now).await?;
                Ok(Some(e))
            }
        }
    }

    /// When the account is protected: since when (for resetting step-ups of older sessions).
    pub(super) async fn protected_since(
        &self,
        tx: &mut dyn Tx,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<OffsetDateTime>> {
        if !self.ids().enabled {
            return Ok(None);
        }
        Ok(tx.intrusion().user_block(tenant, user, BlockScope::Account, self.clock.now()).await?.map(|b| b.created_at))
    }

    /// After a successful sign-in, in its transaction: note a new address, a new device or an
    /// unusual hour (detections only), and count the sign-in's hour into the baseline.
    pub(super) async fn observe_signin(
        &self,
        tx: &mut dyn Tx,
        user: &User,
        new_device: bool,
        meta: &RequestMeta,
        now: OffsetDateTime,
    ) -> Result<()> {
        let s = self.ids().clone();
        if !s.enabled {
            return Ok(());
        }
        let (day, hour) = day_hour(now);
        let mut b = tx
            .intrusion()
            .baseline(user.tenant_id, user.id)
            .await?
            .unwrap_or_else(|| empty_baseline(user.tenant_id, user.id, day));
        let signins: u32 = b.hours.iter().sum();
        // The first sign-in ever has nothing to compare with.
        let seasoned = signins > 0;
        let new_ip = match meta.ip.as_deref() {
            Some(ip) => tx.intrusion().remember_ip(user.tenant_id, user.id, ip, now).await?,
            None => false,
        };
        let (t, u) = (Some(user.tenant_id), Some(user.id));
        if seasoned && new_ip {
            self.record_detection(tx, &Sighting::new(DetectionKind::NewIp, t, u, json!({ "ip": meta.ip })), meta, now)
                .await?;
        }
        if seasoned && new_device {
            self.record_detection(
                tx,
                &Sighting::new(DetectionKind::NewDevice, t, u, json!({ "ip": meta.ip })),
                meta,
                now,
            )
            .await?;
        }
        let at_hour = b.hours.get(hour).copied().unwrap_or(0);
        if signins >= s.hours_min_signins && at_hour == 0 {
            let detail = json!({ "hour_utc": hour, "signins_recorded": signins });
            self.record_detection(tx, &Sighting::new(DetectionKind::UnusualHours, t, u, detail), meta, now).await?;
        }
        if let Some(h) = b.hours.get_mut(hour) {
            *h = h.saturating_add(1);
        }
        roll(&mut b, day, s.alpha_percent);
        tx.intrusion().save_baseline(&b).await
    }

    /// Before a download: refuse it if the user's downloads are paused.
    pub(super) async fn check_downloads(&self, tx: &mut dyn Tx, p: &Principal) -> Result<()> {
        if !self.ids().enabled {
            return Ok(());
        }
        let paused =
            tx.intrusion().user_block(p.tenant_id, p.user_id, BlockScope::Downloads, self.clock.now()).await?.is_some();
        policy::may_download(paused)
    }

    /// Count a download of `bytes` into the user's baseline, in the download's transaction.
    /// Returns true when it crossed the threshold: the user's downloads are now paused (with a
    /// detection, an audit event and an alert), and this download is refused too.
    pub(super) async fn observe_download(
        &self,
        tx: &mut dyn Tx,
        p: &Principal,
        bytes: u64,
        meta: &RequestMeta,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let s = self.ids().clone();
        if !s.enabled {
            return Ok(false);
        }
        let (day, _) = day_hour(now);
        tx.intrusion().lock_user_counters(p.tenant_id, p.user_id).await?;
        let mut b = tx
            .intrusion()
            .baseline(p.tenant_id, p.user_id)
            .await?
            .unwrap_or_else(|| empty_baseline(p.tenant_id, p.user_id, day));
        roll(&mut b, day, s.alpha_percent);
        b.day_count = b.day_count.saturating_add(1);
        b.day_bytes = b.day_bytes.saturating_add(bytes);
        tx.intrusion().save_baseline(&b).await?;
        let Some(why) = exfiltration(&b, &s) else { return Ok(false) };
        let detail = json!({
            "rule": why,
            "downloads_today": b.day_count,
            "bytes_today": b.day_bytes,
            "baseline_downloads": b.avg_count_milli as f64 / 1000.0,
            "baseline_bytes": b.avg_bytes_milli as f64 / 1000.0,
            "baseline_days": b.days,
        });
        let (t, u) = (Some(p.tenant_id), Some(p.user_id));
        self.record_detection(tx, &Sighting::new(DetectionKind::Exfiltration, t, u, detail.clone()), meta, now).await?;
        let block = new_block(
            BlockScope::Downloads,
            (t, u),
            meta.ip.clone(),
            DetectionKind::Exfiltration,
            detail.clone(),
            now,
            None,
        );
        tx.intrusion().insert_block(&block).await?;
        let ev = NewEvent::new(t, Actor::System, Action::SecurityDownloadsPaused, Target::User(p.user_id), meta)
            .with_detail(json!({ "block": block.id.to_string(), "facts": detail }));
        tx.audit().append_audit(&ev, now).await?;
        let alert = NewAlert::new(
            crate::model::AlertKind::Exfiltration,
            Severity::Critical,
            t,
            format!("user:{}", p.user_id),
            "A user downloaded far more than usual; their downloads are paused pending an admin's review",
        )
        .with_detail(json!({ "ip": meta.ip, "facts": detail }));
        self.raise_alert_in(tx, &alert, now).await?;
        Ok(true)
    }

    /// The firm's blocks in force (protected accounts, paused downloads) and its detections
    /// (owners and admins).
    pub async fn tenant_security(&self, p: &Principal) -> Result<SecurityOverview> {
        let grant = policy::authorize_tenant::<can::ManageTenantSecurity>(p)?;
        let mut tx = self.read().await?;
        let blocks = tx.intrusion().active_blocks(Some(grant.tenant_id()), self.clock.now()).await?;
        let detections = tx.intrusion().detections(Some(grant.tenant_id()), LIST_LIMIT).await?;
        Ok(SecurityOverview { blocks, detections })
    }

    /// Lift one of the firm's blocks: end an account's protection, or resume a user's
    /// downloads (owners and admins, after a step-up; not their own while another owner or
    /// admin can). Another firm's block is not found.
    pub async fn lift_tenant_block(&self, p: &Principal, id: BlockId, meta: &RequestMeta) -> Result<()> {
        let grant = policy::authorize_tenant::<can::ManageTenantSecurity>(p)?;
        let mut tx = self.write().await?;
        self.require_step_up(&mut *tx, p).await?;
        let now = self.clock.now();
        let b = tx
            .intrusion()
            .block(id)
            .await?
            .filter(|b| b.tenant_id == Some(grant.tenant_id()))
            .ok_or(Error::NotFound)?;
        if let Some(subject) = b.user_id {
            self.review_of(&mut *tx, p, subject).await?;
        }
        self.lift(&mut *tx, &b, &actor(p), meta, now).await?;
        tx.commit().await
    }

    /// Resume a user's paused downloads (owners and admins, after a step-up; not their own
    /// while another owner or admin can).
    pub async fn resume_downloads(&self, p: &Principal, user: UserId, meta: &RequestMeta) -> Result<()> {
        let grant = policy::authorize_tenant::<can::ManageTenantSecurity>(p)?;
        let mut tx = self.write().await?;
        self.require_step_up(&mut *tx, p).await?;
        let now = self.clock.now();
        let b = tx
            .intrusion()
            .user_block(grant.tenant_id(), user, BlockScope::Downloads, now)
            .await?
            .ok_or(Error::NotFound)?;
        self.review_of(&mut *tx, p, user).await?;
        self.lift(&mut *tx, &b, &actor(p), meta, now).await?;
        tx.commit().await
    }

    /// Source blocks in force and the platform's detections (operators).
    pub async fn platform_security(&self, op: &OperatorPrincipal) -> Result<SecurityOverview> {
        policy::authorize_platform(op, PlatformPermission::ViewSecurity, self.clock.now())?;
        let mut tx = self.read().await?;
        let blocks = tx.intrusion().active_blocks(None, self.clock.now()).await?;
        let detections = tx.intrusion().detections(None, LIST_LIMIT).await?;
        Ok(SecurityOverview { blocks, detections })
    }

    /// Lift a block on a source address (privileged operators).
    pub async fn lift_source_block(&self, op: &OperatorPrincipal, id: BlockId, meta: &RequestMeta) -> Result<()> {
        let now = self.clock.now();
        policy::authorize_platform(op, PlatformPermission::LiftSourceBlocks, now)?;
        let mut tx = self.write().await?;
        let b = tx.intrusion().block(id).await?.filter(|b| b.scope == BlockScope::Source).ok_or(Error::NotFound)?;
        self.lift(&mut *tx, &b, &Actor::Operator(op.operator.id), meta, now).await?;
        tx.commit().await
    }

    async fn lift(
        &self,
        tx: &mut dyn Tx,
        b: &Block,
        by: &Actor,
        meta: &RequestMeta,
        now: OffsetDateTime,
    ) -> Result<()> {
        let in_force = b.lifted_at.is_none() && b.expires_at.is_none_or(|e| e > now);
        if !in_force || !tx.intrusion().lift_block(b.id, &by.to_stored(), now).await? {
            return Err(Error::NotFound);
        }
        // Resuming downloads accepts the day reviewed: its downloads no longer count toward
        // the pause (nor into the baseline), so the user is not paused again at once.
        if let (BlockScope::Downloads, Some(t), Some(u)) = (b.scope, b.tenant_id, b.user_id)
            && let Some(mut base) = tx.intrusion().baseline(t, u).await?
        {
            base.day_count = 0;
            base.day_bytes = 0;
            tx.intrusion().save_baseline(&base).await?;
        }
        let action = match b.scope {
            BlockScope::Source => Action::SecuritySourceUnblocked,
            BlockScope::Account => Action::SecurityAccountProtectionLifted,
            BlockScope::Downloads => Action::SecurityDownloadsResumed,
        };
        let target = b.user_id.map_or(Target::Block(b.id), Target::User);
        let ev = NewEvent::new(b.tenant_id, *by, action, target, meta)
            .with_detail(json!({ "block": b.id.to_string(), "ip": b.ip, "reason": b.reason.as_str() }));
        tx.audit().append_audit(&ev, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(days: u32, avg: u64, today: u64) -> Baseline {
        let mut b = empty_baseline(TenantId::new(), UserId::new(), 0);
        b.days = days;
        b.avg_count_milli = avg * 1000;
        b.day_count = today;
        b
    }

    #[test]
    fn a_flood_of_one_shot_sources_does_not_erase_a_scanner() {
        let (c, now, window) =
            (Counters::default(), time::macros::datetime!(2026-11-25 12:00 UTC), Duration::minutes(5));
        for _ in 0..3 {
            c.bump(Counted::ErrorAnswers, "192.0.2.1", now, window);
        }
        for n in 0..MAX_COUNTERS + 10 {
            c.bump(Counted::ErrorAnswers, &format!("flood-{n}"), now, window);
        }
        assert_eq!(c.bump(Counted::ErrorAnswers, "192.0.2.1", now, window), 4, "the scanner's count survived");
    }

    #[test]
    fn new_users_meet_only_the_ceiling_and_history_sets_the_bar() {
        let s = IntrusionSettings { download_floor: 10, download_ceiling: 100, min_days: 3, ..Default::default() };
        assert_eq!(exfiltration(&base(0, 0, 99), &s), None, "no history: only the ceiling");
        assert_eq!(exfiltration(&base(0, 0, 101), &s), Some("absolute_ceiling"));
        assert_eq!(exfiltration(&base(5, 1, 10), &s), None, "at the floor");
        assert_eq!(exfiltration(&base(5, 1, 11), &s), Some("above_baseline"));
        assert_eq!(exfiltration(&base(5, 20, 99), &s), None, "under five times the baseline");
        assert_eq!(exfiltration(&base(5, 20, 101), &s), Some("absolute_ceiling"));
    }

    #[test]
    fn days_fold_into_the_average() {
        let mut b = empty_baseline(TenantId::new(), UserId::new(), 1);
        b.day_count = 10;
        roll(&mut b, 2, 30);
        assert_eq!((b.days, b.avg_count_milli, b.day_count), (1, 10_000, 0));
        b.day_count = 20;
        roll(&mut b, 5, 30);
        assert_eq!((b.days, b.avg_count_milli), (2, 13_000));
        roll(&mut b, 6, 30);
        assert_eq!(b.days, 2, "a day without downloads is not folded in");
    }
}
