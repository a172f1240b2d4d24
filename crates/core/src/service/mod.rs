//! The use cases. Every entry point (JSON API, HTML UI, CLI) calls these and nothing below them,
//! so a rule enforced here is enforced everywhere. Each use case asks the policy first, then
//! does its work and writes its audit event in one transaction.

mod accounts;
mod alerts;
mod approvals;
mod audit_log;
mod audit_seal;
mod backups;
mod change_records;
mod devices;
mod documents;
mod edge;
mod erasure;
mod export;
mod factors;
mod import;
mod incidents;
mod intrusion;
mod keys;
mod lifecycle;
mod matters;
mod messages;
mod monitoring;
mod nodes;
mod notifications;
mod outbox;
mod passkeys;
mod platform;
mod platform_approvals;
mod protection;
mod rotation;
mod sessions;
mod tokens;
mod users;

pub use crate::model::NewAlert;
pub use accounts::{LinkInfo, LoginOutcome};
pub use alerts::{AlertChannels, AlertSettings, Raised, operator_mail, webhook_body};
pub use approvals::{APPROVAL_TTL, Change};
pub use audit_log::{AuditExport, AuditPage};
pub use audit_seal::ChainReport;
pub use backups::{BACKUP_LEASE, SCHEDULER_LEASE};
pub use change_records::ChangePage;
pub use devices::DeviceOutcome;
pub use documents::{ByteRange, Download};
pub use edge::BlockedRequest;
pub use erasure::LifecycleReport;
pub use export::{EXPORT_KEEP, EXPORT_LABEL, ExportReport, event_line, parse_recipient};
pub use factors::{FactorProof, FactorUsed, SecurityStatus, TotpEnrolment};
pub use import::{IMPORT_LINK_TTL, ImportReport, ImportedLink};
pub use incidents::{IncidentChange, IncidentView, NOTICE_BANNER, NewReport};
pub use intrusion::{IntrusionSettings, SecurityOverview};
pub use keys::KeyStatus;
pub use lifecycle::{LifecycleSettings, MIN_RETENTION_DAYS, RetentionDetail, SubscriptionStatus};
pub use matters::InviteOutcome;
pub use monitoring::MonitoringSnapshot;
pub use nodes::{NODE_HEARTBEAT, NODE_TTL};
pub use notifications::{DeliveryReport, LEASE, MAX_ATTEMPTS, NewDeviceDetail, Rendered, backoff, render_new_device};
pub use outbox::Backoff;
pub use platform::{MAX_OPERATOR_TOKEN_DAYS, OperatorStatus, PlatformHealth};
pub use protection::{DlpAction, DownloadCap, FlaggedDocument, Protection, findings_json};
pub use rotation::{RotationReport, RotationStart, RotationStatus};

use crate::audit::{Actor, Target};
use crate::clock::Clock;
use crate::crypto::keys::{KeyBytes, Keyring};
use crate::crypto::sealed::SealingTx;
use crate::error::{Error, Result};
use crate::ids::{MatterId, TenantId, UserId};
use crate::model::KeyPurpose;
use crate::policy::{self, MatterAction, MatterGrant, Principal, Via};
use crate::ports::{BlobStore, Store, Tx, TxMode};
use std::sync::Arc;
use time::Duration;

/// Tunables of the use cases, from configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// A session unused for this long ends.
    pub session_idle: Duration,
    /// A session ends this long after sign-in, however active.
    pub session_absolute: Duration,
    /// How long the first-start setup link and owner set-up links live.
    pub setup_link_ttl: Duration,
    /// How long an invitation link lives.
    pub invite_link_ttl: Duration,
    /// Largest document accepted.
    pub max_upload_bytes: u64,
    /// The base URL links are built on, e.g. `https://127.0.0.1:8443`.
    pub public_url: String,
    /// Security alerts: deduplication, retries, recipients.
    pub alerts: AlertSettings,
    /// Intrusion and anomaly detection: thresholds and durations.
    pub intrusion: IntrusionSettings,
    /// Retention after a subscription ends, and the notices before destruction.
    pub lifecycle: LifecycleSettings,
    /// What `security.txt` tells vulnerability finders.
    pub disclosure: crate::disclosure::DisclosureSettings,
    /// A new incident is to be triaged within this long; a miss is alerted.
    pub incident_triage: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            session_idle: Duration::minutes(30),
            session_absolute: Duration::hours(12),
            setup_link_ttl: Duration::hours(1),
            invite_link_ttl: Duration::hours(72),
            max_upload_bytes: 2 * 1024 * 1024 * 1024,
            public_url: "https://127.0.0.1:8443".into(),
            alerts: AlertSettings::default(),
            intrusion: IntrusionSettings::default(),
            lifecycle: LifecycleSettings::default(),
            disclosure: crate::disclosure::DisclosureSettings::default(),
            incident_triage: Duration::hours(1),
        }
    }
}

/// The portal: the use cases over a store, a blob store and a clock.
#[derive(Clone, Debug)]
pub struct Portal {
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    keyring: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    /// The WebAuthn relying party, or why this server cannot offer passkeys.
    passkeys: std::result::Result<Arc<crate::authn::webauthn::Passkeys>, String>,
    /// This node's counters of error answers per source (see `intrusion`).
    counters: Arc<intrusion::Counters>,
}

impl Portal {
    pub fn new(
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        keyring: Arc<Keyring>,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Self {
        let passkeys = crate::authn::webauthn::Passkeys::for_public_url(&settings.public_url).map(Arc::new);
        if let Err(why) = &passkeys {
            tracing::warn!("passkeys are off: {why}");
        }
        Self { store, blobs, keyring, clock, settings, passkeys, counters: Arc::default() }
    }

    /// The identifier (not the key) of the master key that wraps new tenant keys.
    pub fn master_key_id(&self) -> String {
        self.keyring.provider().key_id()
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// This service's `security.txt` (RFC 9116), or `None` when no contact is configured.
    pub fn security_txt(&self) -> Option<String> {
        crate::disclosure::security_txt(&self.settings.disclosure, &self.settings.public_url, self.clock.now())
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Readiness: the database and the blob store both answer.
    pub async fn ready(&self) -> Result<()> {
        self.store.ping().await?;
        self.blobs.ping().await
    }

    /// Every transaction the use cases get encrypts client information on the way in and
    /// decrypts it on the way out.
    async fn read(&self) -> Result<Box<dyn Tx>> {
        Ok(Box::new(SealingTx::new(self.store.begin(TxMode::Read).await?, self.keyring.clone())))
    }

    async fn write(&self) -> Result<Box<dyn Tx>> {
        Ok(Box::new(SealingTx::new(self.store.begin(TxMode::Write).await?, self.keyring.clone())))
    }

    /// Load a matter's facts for the caller and ask the policy for `A` on it. Every
    /// matter-scoped use case starts here.
    async fn grant_matter<A: MatterAction>(
        &self,
        tx: &mut dyn Tx,
        p: &Principal,
        matter: MatterId,
    ) -> Result<MatterGrant<A>> {
        // The facts come from the stored matter, so the policy's own tenant check is a real
        // second line behind the query's tenant filter.
        let facts = tx.matters().matter_facts(p.tenant_id, matter, p.user_id).await?.ok_or(Error::NotFound)?;
        policy::authorize_matter::<A>(p, &facts)
    }

    /// Ask the policy for `A` on a document's matter; the grant and the document's matter.
    async fn grant_document<A: MatterAction>(
        &self,
        tx: &mut dyn Tx,
        p: &Principal,
        document: crate::ids::DocumentId,
    ) -> Result<MatterGrant<A>> {
        let matter = tx.documents().document_matter(p.tenant_id, document).await?.ok_or(Error::NotFound)?;
        self.grant_matter::<A>(tx, p, matter).await
    }

    /// Make version `version` of a tenant key and store it wrapped, in `tx`.
    async fn add_tenant_key(&self, tx: &mut dyn Tx, tenant: TenantId, purpose: KeyPurpose, version: u32) -> Result<()> {
        let (_, wrapped) = self.keyring.new_tenant_key(tenant, purpose, version).await?;
        tx.keys()
            .insert_tenant_key(&crate::model::TenantKeyRecord {
                tenant_id: tenant,
                purpose,
                version,
                key_id: wrapped.key_id,
                wrapped: wrapped.bytes,
                created_at: self.clock.now(),
            })
            .await
    }

    /// A tenant's data key: one version, or the newest. A tenant without keys (destroyed) has no
    /// readable data.
    async fn tenant_key(&self, tx: &mut dyn Tx, tenant: TenantId, version: Option<u32>) -> Result<(u32, KeyBytes)> {
        let rec = tx
            .keys()
            .tenant_key(tenant, KeyPurpose::Data, version)
            .await?
            .ok_or_else(|| Error::Integrity("the tenant key for this data does not exist".into()))?;
        let key = self.keyring.tenant_key(tenant, KeyPurpose::Data, rec.version, &rec.key_id, &rec.wrapped).await?;
        Ok((rec.version, key))
    }

    /// Record a read of a matter's client content (the matter, its documents, messages or
    /// members) in `tx`, the read's own transaction, so a read whose event cannot be written
    /// fails rather than going unrecorded. The event holds ids and counts, never the content.
    async fn audit_matter_read(
        &self,
        tx: &mut dyn Tx,
        p: &Principal,
        action: crate::audit::Action,
        matter: MatterId,
        detail: serde_json::Value,
        meta: &crate::audit::RequestMeta,
    ) -> Result<()> {
        let ev = crate::audit::NewEvent::new(Some(p.tenant_id), actor(p), action, Target::Matter(matter), meta)
            .with_detail(detail)
            .on_matter(matter);
        tx.audit().append_audit(&ev, self.clock.now()).await
    }

    /// Record a refused attempt in its own transaction (the refusal must not roll it back):
    /// wrong codes, self-approvals, grants by someone without the right.
    async fn audit_refusal(
        &self,
        p: &Principal,
        action: crate::audit::Action,
        target: crate::audit::Target,
        reason: &Error,
        meta: &crate::audit::RequestMeta,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let ev = crate::audit::NewEvent::new(Some(p.tenant_id), actor(p), action, target, meta)
            .with_detail(serde_json::json!({ "reason": reason.code() }));
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await
    }

    fn link_url(&self, path: &str, secret: &secrecy::SecretString) -> String {
        use secrecy::ExposeSecret;
        format!("{}/{path}/{}", self.settings.public_url.trim_end_matches('/'), secret.expose_secret())
    }
}

/// The audit actor for a principal.
pub(crate) fn actor(p: &Principal) -> Actor {
    match p.via {
        Via::Cli => Actor::Cli,
        Via::Token { id, .. } => Actor::Token { user: p.user_id, token: id },
        Via::Session { .. } => Actor::User(p.user_id),
    }
}

/// A principal for the local command-line tool acting on one tenant with an owner's powers: the
/// person at the machine already holds the database and keys.
pub fn cli_principal(tenant_id: TenantId) -> Principal {
    Principal {
        tenant_id,
        user_id: UserId::from_uuid(uuid::Uuid::nil()),
        email: "cli".into(),
        display_name: "command line".into(),
        role: crate::model::Role::Owner,
        via: Via::Cli,
        second_factor: crate::policy::SecondFactor::default(),
    }
}

/// Run a CPU-heavy closure (password hashing) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(Error::internal)?
}
