//! The narrow interfaces the domain needs from the outside world. The store crate implements
//! them for SQLite, PostgreSQL and object stores; tests can implement them too.
//!
//! Every store method takes the tenant it works in (directly or inside a policy grant): no query
//! can wander across tenants because no query is written without one.

use crate::audit::search::AuditFilter;
use crate::audit::{AuditCheckpoint, ChainStatus, NewEvent, StoredEvent};
use crate::authn::lockout::Lock;
use crate::error::Result;
use crate::ids::IncidentId;
use crate::ids::{
    AlertId, ApprovalId, BlockId, DocumentId, MailId, MatterId, OperatorId, PasskeyId, TenantId, TokenId, UserId,
};
use crate::incidents::{BreachNotice, IncidentRecord};
use crate::model::{
    Alert, AlertDelivery, ApiToken, ApprovalRequest, ApprovalState, Baseline, Block, BlockScope, ChallengePurpose,
    Detection, Document, DocumentFlag, ErasureRecord, ExportState, FlagState, KeyPurpose, KeyRotation, KnownDevice,
    LinkRecord, Matter, MatterMember, Message, Notice, Operator, OperatorGrant, OperatorRole, OutboxMail,
    PasskeyRecord, PendingTotp, PlatformApproval, Role, SealedColumn, SessionRecord, StoredField, Tenant, TenantExport,
    TenantKeyRecord, TenantStatus, TenantSummary, TotpRecord, User, UserStatus, VettingRecord, WebauthnChallenge,
};
use crate::policy::{MatterGrant, MatterListGrant, TenantGrant};
use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use std::ops::Range;
use std::pin::Pin;
use time::OffsetDateTime;

/// Whether a transaction will write. SQLite takes its write lock up front for writers, so two
/// writers never deadlock upgrading a read lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxMode {
    Read,
    Write,
}

/// A database: hands out transactions.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    async fn begin(&self, mode: TxMode) -> Result<Box<dyn Tx>>;
    /// Is the database reachable?
    async fn ping(&self) -> Result<()>;
    /// Which engine, for status output.
    fn engine(&self) -> &'static str;
}

/// One transaction. Dropped without `commit`, it rolls back.
#[async_trait]
pub trait Tx: Send {
    async fn commit(self: Box<Self>) -> Result<()>;

    // Tenants.
    async fn count_tenants(&mut self) -> Result<i64>;
    async fn insert_tenant(&mut self, t: &Tenant) -> Result<()>;
    async fn tenant_by_name(&mut self, name: &str) -> Result<Option<Tenant>>;
    async fn tenant(&mut self, id: TenantId) -> Result<Option<Tenant>>;

    // Subscription lifecycle and erasure (see `service::lifecycle` and `service::erasure`).
    /// Set a tenant's status and when its subscription ended (`None` once active again).
    async fn set_tenant_status(
        &mut self,
        tenant: TenantId,
        status: TenantStatus,
        ended_at: Option<OffsetDateTime>,
    ) -> Result<()>;
    /// End every session of the tenant and revoke every live API token of it, at `at`; how many
    /// sessions and tokens.
    async fn revoke_tenant_access(&mut self, tenant: TenantId, at: OffsetDateTime) -> Result<(u64, u64)>;
    /// Every tenant whose subscription has ended (status `ended`).
    async fn ended_tenants(&mut self) -> Result<Vec<Tenant>>;
    /// Record that the notice `days_before` destruction was queued for the ending at `ended_at`;
    /// false if it was already (each notice goes out once).
    async fn record_retention_notice(
        &mut self,
        tenant: TenantId,
        ended_at: OffsetDateTime,
        days_before: u32,
        at: OffsetDateTime,
    ) -> Result<bool>;
    /// Record an approved tenant export (see `service::export`).
    async fn insert_export(&mut self, x: &TenantExport) -> Result<()>;
    async fn tenant_export(&mut self, tenant: TenantId, id: ApprovalId) -> Result<Option<TenantExport>>;
    /// Exports of every tenant in `state`, oldest first.
    async fn exports_in_state(&mut self, state: ExportState) -> Result<Vec<TenantExport>>;
    /// Write an export's state, progress and outcome (every mutable column).
    async fn update_export(&mut self, x: &TenantExport) -> Result<()>;
    /// Add a row to the erasure ledger; false if the tenant already has one.
    async fn insert_erasure(&mut self, e: &ErasureRecord) -> Result<bool>;
    async fn erasure(&mut self, tenant: TenantId) -> Result<Option<ErasureRecord>>;
    async fn erasure_by_name(&mut self, name: &str) -> Result<Option<ErasureRecord>>;
    /// Ledger rows whose destruction has not finished, oldest first.
    async fn open_erasures(&mut self) -> Result<Vec<ErasureRecord>>;
    /// Record the crypto-shred: when, the counts so far, and the audit chain's final head;
    /// false if it was recorded already (by another node).
    async fn erasure_keys_destroyed(&mut self, e: &ErasureRecord) -> Result<bool>;
    /// Every stored object of the tenant: its documents' copies and the objects waiting to be
    /// deleted. Keys only (nothing that needs the tenant's keys to read).
    async fn tenant_blob_keys(&mut self, tenant: TenantId) -> Result<Vec<String>>;
    /// Delete every row of the tenant in every table, its audit chain and its tenant row; the
    /// rows deleted per table. The erasure ledger row must record the crypto-shred first (the
    /// database refuses to delete audit events otherwise).
    async fn delete_tenant_rows(&mut self, tenant: TenantId) -> Result<Vec<(String, u64)>>;
    /// Mark a destruction finished with its counts and certificate; false if it already was.
    async fn finish_erasure(&mut self, e: &ErasureRecord) -> Result<bool>;
    /// Finished erasures whose certificate mail has not gone out.
    async fn erasures_to_notify(&mut self) -> Result<Vec<ErasureRecord>>;
    /// The certificate mail went out: forget the addresses.
    async fn erasure_notified(&mut self, tenant: TenantId, at: OffsetDateTime) -> Result<()>;
    /// Finished erasures the backup target has not applied yet, oldest first.
    async fn unsynced_erasures(&mut self) -> Result<Vec<ErasureRecord>>;
    /// The backup target applied this erasure; false if it was marked already.
    async fn mark_erasure_synced(&mut self, tenant: TenantId, at: OffsetDateTime) -> Result<bool>;

    // Tenant keys.
    async fn insert_tenant_key(&mut self, k: &TenantKeyRecord) -> Result<()>;
    /// One version, or the newest when `version` is `None`.
    async fn tenant_key(
        &mut self,
        tenant: TenantId,
        purpose: KeyPurpose,
        version: Option<u32>,
    ) -> Result<Option<TenantKeyRecord>>;
    /// Every version, oldest first.
    async fn tenant_keys(&mut self, tenant: TenantId, purpose: KeyPurpose) -> Result<Vec<TenantKeyRecord>>;
    /// Delete every key of a tenant (crypto-shredding). Returns how many were deleted.
    async fn destroy_tenant_keys(&mut self, tenant: TenantId) -> Result<u64>;
    /// Keep other transactions from adding or changing tenant keys until this one ends (a
    /// master-key rotation must see every key).
    async fn lock_tenant_keys(&mut self) -> Result<()>;
    /// Every tenant key of every tenant (platform key operations only).
    async fn all_tenant_keys(&mut self) -> Result<Vec<TenantKeyRecord>>;
    /// Replace a key's wrapped form and the master key id that wrapped it.
    async fn rewrap_tenant_key(&mut self, k: &TenantKeyRecord) -> Result<()>;

    // Users.
    /// `email_lookup` is the value equality lookups by email use (see `user_by_email`).
    async fn insert_user(&mut self, u: &User, email_lookup: &str, password_hash: Option<&str>) -> Result<()>;
    /// The user and their password hash.
    /// Find by the `email_lookup` value the user was stored with.
    async fn user_by_email(&mut self, tenant: TenantId, email_lookup: &str) -> Result<Option<(User, Option<String>)>>;
    async fn user(&mut self, tenant: TenantId, id: UserId) -> Result<Option<User>>;
    async fn set_password(&mut self, tenant: TenantId, id: UserId, hash: &str, status: UserStatus) -> Result<()>;
    async fn list_users(&mut self, grant: &TenantGrant) -> Result<Vec<User>>;

    // Sessions.
    async fn insert_session(&mut self, s: &SessionRecord) -> Result<()>;
    async fn session(&mut self, token_hash: &str) -> Result<Option<SessionRecord>>;
    async fn touch_session(&mut self, token_hash: &str, at: OffsetDateTime) -> Result<()>;
    async fn delete_session(&mut self, token_hash: &str) -> Result<()>;
    /// End every session of a user (password change, disabling).
    async fn delete_user_sessions(&mut self, tenant: TenantId, user: UserId) -> Result<()>;
    /// A user's sessions, most recently used first.
    async fn list_user_sessions(&mut self, tenant: TenantId, user: UserId) -> Result<Vec<SessionRecord>>;
    /// End every session of the user but `keep` (a token hash); how many ended.
    async fn delete_other_sessions(&mut self, tenant: TenantId, user: UserId, keep: &str) -> Result<u64>;

    // One-time links.
    async fn insert_link(&mut self, l: &LinkRecord) -> Result<()>;
    async fn link(&mut self, token_hash: &str) -> Result<Option<LinkRecord>>;
    /// Mark every unused set-password link of a user used.
    async fn burn_user_links(&mut self, tenant: TenantId, user: UserId, at: OffsetDateTime) -> Result<()>;
    /// Mark every unused first-start link used.
    async fn burn_bootstrap_links(&mut self, at: OffsetDateTime) -> Result<()>;
    /// Mark a link used; returns false if it was already used (or never existed).
    async fn use_link(&mut self, token_hash: &str, at: OffsetDateTime) -> Result<bool>;

    // API tokens.
    async fn insert_api_token(&mut self, t: &ApiToken, secret_hash: &str) -> Result<()>;
    async fn api_token_by_hash(&mut self, secret_hash: &str) -> Result<Option<ApiToken>>;
    async fn list_api_tokens(&mut self, tenant: TenantId, user: UserId) -> Result<Vec<ApiToken>>;
    /// Revoke one of the user's tokens; false if there is no such live token.
    async fn revoke_api_token(
        &mut self,
        tenant: TenantId,
        user: UserId,
        id: TokenId,
        at: OffsetDateTime,
    ) -> Result<bool>;
    async fn touch_api_token(&mut self, tenant: TenantId, id: TokenId, at: OffsetDateTime) -> Result<()>;

    // Matters.
    async fn insert_matter(&mut self, grant: &TenantGrant, m: &Matter) -> Result<()>;
    /// A matter of this tenant (before authorization: callers pass it to the policy).
    async fn matter(&mut self, tenant: TenantId, id: MatterId) -> Result<Option<Matter>>;
    async fn membership(&mut self, tenant: TenantId, matter: MatterId, user: UserId) -> Result<Option<Role>>;
    async fn list_matters(&mut self, grant: &MatterListGrant) -> Result<Vec<Matter>>;
    async fn insert_member(&mut self, grant: &MatterGrant, user: UserId, role: Role, at: OffsetDateTime) -> Result<()>;
    async fn list_members(&mut self, grant: &MatterGrant) -> Result<Vec<MatterMember>>;

    // Documents.
    async fn insert_document(&mut self, grant: &MatterGrant, d: &Document) -> Result<()>;
    async fn list_documents(&mut self, grant: &MatterGrant) -> Result<Vec<Document>>;
    /// A document of this tenant (before authorization: callers pass its matter to the policy).
    async fn document(&mut self, tenant: TenantId, id: DocumentId) -> Result<Option<Document>>;

    // Messages.
    async fn insert_message(&mut self, grant: &MatterGrant, m: &Message) -> Result<()>;
    async fn list_messages(&mut self, grant: &MatterGrant) -> Result<Vec<Message>>;

    // Platform operators (never tenant content).
    async fn insert_platform_approval(&mut self, a: &PlatformApproval) -> Result<()>;
    async fn platform_approval(&mut self, id: ApprovalId) -> Result<Option<PlatformApproval>>;
    /// Every platform request, newest first.
    async fn list_platform_approvals(&mut self, limit: i64) -> Result<Vec<PlatformApproval>>;
    /// Decide a pending request; false if it was no longer pending.
    async fn decide_platform_approval(
        &mut self,
        id: ApprovalId,
        state: ApprovalState,
        by: OperatorId,
        at: OffsetDateTime,
    ) -> Result<bool>;
    /// Spend an approved, unused request; false if it was not (used meanwhile).
    async fn use_platform_approval(&mut self, id: ApprovalId, at: OffsetDateTime) -> Result<bool>;
    async fn insert_operator(&mut self, o: &Operator) -> Result<()>;
    async fn operator_by_email(&mut self, email: &str) -> Result<Option<Operator>>;
    async fn operator(&mut self, id: OperatorId) -> Result<Option<Operator>>;
    async fn list_operators(&mut self) -> Result<Vec<Operator>>;
    /// Grant (or re-grant, lifting a suspension) a role.
    async fn put_operator_grant(&mut self, g: &OperatorGrant) -> Result<()>;
    async fn operator_grants(&mut self, id: OperatorId) -> Result<Vec<OperatorGrant>>;
    /// Every unsuspended grant of `role`, of every operator.
    async fn active_grants(&mut self, role: OperatorRole) -> Result<Vec<OperatorGrant>>;
    /// Suspend a grant if it is not already; false if it was.
    async fn suspend_operator_grant(&mut self, id: OperatorId, role: OperatorRole, at: OffsetDateTime) -> Result<bool>;
    async fn insert_vetting(&mut self, v: &VettingRecord) -> Result<()>;
    /// The operator's newest vetting record.
    async fn vetting(&mut self, id: OperatorId) -> Result<Option<VettingRecord>>;
    async fn insert_operator_token(
        &mut self,
        id: OperatorId,
        hash: &str,
        at: OffsetDateTime,
        expires: OffsetDateTime,
    ) -> Result<()>;
    /// End every token of an operator; how many.
    async fn delete_operator_tokens(&mut self, id: OperatorId) -> Result<u64>;
    /// The operator an unexpired token belongs to.
    async fn operator_by_token(&mut self, hash: &str, now: OffsetDateTime) -> Result<Option<Operator>>;
    /// Every tenant with its counts, for the operators' directory.
    async fn tenant_summaries(&mut self) -> Result<Vec<TenantSummary>>;

    // Sign-in throttling.
    /// The account's lock, from its failure count.
    async fn login_lock(&mut self, tenant: TenantId, user: UserId) -> Result<Lock>;
    /// Count one more consecutive failure and store the lock it brings; the new count.
    async fn record_login_failure(&mut self, tenant: TenantId, user: UserId, at: OffsetDateTime) -> Result<u32>;
    /// A full sign-in, or an admin's unlock: the count starts again.
    async fn reset_login_failures(&mut self, tenant: TenantId, user: UserId) -> Result<()>;

    // Four eyes.
    async fn insert_approval(&mut self, a: &ApprovalRequest) -> Result<()>;
    async fn approval(&mut self, tenant: TenantId, id: ApprovalId) -> Result<Option<ApprovalRequest>>;
    /// The tenant's requests, newest first.
    async fn list_approvals(&mut self, tenant: TenantId, limit: i64) -> Result<Vec<ApprovalRequest>>;
    /// Decide a pending request; false if it was no longer pending (decided meanwhile).
    async fn decide_approval(
        &mut self,
        tenant: TenantId,
        id: ApprovalId,
        state: ApprovalState,
        by: UserId,
        at: OffsetDateTime,
    ) -> Result<bool>;
    /// Change a user's role.
    async fn set_user_role(&mut self, tenant: TenantId, user: UserId, role: Role) -> Result<()>;

    // Second factors.
    async fn set_tenant_two_factor(&mut self, tenant: TenantId, staff: bool, clients: bool) -> Result<()>;
    /// A user's active TOTP factor.
    async fn totp(&mut self, tenant: TenantId, user: UserId) -> Result<Option<TotpRecord>>;
    /// Make this the user's active TOTP factor, replacing any other.
    async fn put_totp(&mut self, t: &TotpRecord) -> Result<()>;
    /// Accept time step `step` if it is newer than every step accepted before; false if not (a
    /// replayed code). Atomic, so two requests cannot both use one code.
    async fn use_totp_step(&mut self, tenant: TenantId, user: UserId, step: u64) -> Result<bool>;
    /// Remove the user's TOTP factor and recovery codes.
    async fn delete_totp(&mut self, tenant: TenantId, user: UserId) -> Result<()>;
    async fn pending_totp(&mut self, tenant: TenantId, user: UserId) -> Result<Option<PendingTotp>>;
    /// Store an enrolment waiting for its first code, replacing an earlier one.
    async fn put_pending_totp(&mut self, t: &PendingTotp) -> Result<()>;
    async fn delete_pending_totp(&mut self, tenant: TenantId, user: UserId) -> Result<()>;
    /// Replace the user's recovery codes with these hashes.
    async fn replace_recovery_codes(&mut self, tenant: TenantId, user: UserId, hashes: &[String]) -> Result<()>;
    /// Spend a recovery code; false if it is unknown or spent.
    async fn use_recovery_code(
        &mut self,
        tenant: TenantId,
        user: UserId,
        hash: &str,
        at: OffsetDateTime,
    ) -> Result<bool>;
    async fn recovery_codes_left(&mut self, tenant: TenantId, user: UserId) -> Result<u64>;
    /// Record a second-factor check on a session.
    async fn set_session_second_factor(&mut self, token_hash: &str, at: OffsetDateTime) -> Result<()>;
    /// The user has enrolled: none of their sessions is held to enrolment any more.
    async fn clear_enrol_required(&mut self, tenant: TenantId, user: UserId) -> Result<()>;
    /// The user's passkeys and security keys, oldest first.
    async fn passkeys(&mut self, tenant: TenantId, user: UserId) -> Result<Vec<PasskeyRecord>>;
    async fn insert_passkey(&mut self, k: &PasskeyRecord) -> Result<()>;
    /// Is this credential id registered to anyone, in any tenant?
    async fn passkey_credential_exists(&mut self, credential_id: &str) -> Result<bool>;
    /// Store a passkey's new signature counter after a use.
    async fn update_passkey(&mut self, k: &PasskeyRecord) -> Result<()>;
    /// Remove one of the user's passkeys; false if there is no such passkey of theirs.
    async fn delete_passkey(&mut self, tenant: TenantId, user: UserId, id: PasskeyId) -> Result<bool>;
    /// Keep a ceremony's state; expired ones of the same user are dropped.
    async fn insert_webauthn_challenge(&mut self, c: &WebauthnChallenge, now: OffsetDateTime) -> Result<()>;
    /// Take (read and delete) an unexpired challenge of this user made for this purpose, so an
    /// answer can be checked against it once.
    async fn take_webauthn_challenge(
        &mut self,
        tenant: TenantId,
        user: UserId,
        id: &str,
        purpose: ChallengePurpose,
        now: OffsetDateTime,
    ) -> Result<Option<WebauthnChallenge>>;

    // Tenant-key rotation. Only the rotation use case calls these.
    /// Record a new rotation, in the transaction that adds its key version.
    async fn insert_key_rotation(&mut self, r: &KeyRotation) -> Result<()>;
    /// The tenant's newest rotation, open or finished.
    async fn latest_key_rotation(&mut self, tenant: TenantId) -> Result<Option<KeyRotation>>;
    /// Every open rotation, of every tenant.
    async fn open_key_rotations(&mut self) -> Result<Vec<KeyRotation>>;
    /// Add progress and a sign of life to an open rotation.
    async fn touch_key_rotation(
        &mut self,
        tenant: TenantId,
        target: u32,
        at: OffsetDateTime,
        documents: u64,
        fields: u64,
    ) -> Result<()>;
    /// Mark an open rotation finished, locking its row first; false if it was not open.
    async fn finish_key_rotation(&mut self, tenant: TenantId, target: u32, at: OffsetDateTime) -> Result<bool>;
    /// Open a rotation again: something was written under an older key version after it may
    /// have looked finished.
    async fn reopen_key_rotation(&mut self, tenant: TenantId, target: u32) -> Result<()>;
    /// Documents under a key version below `version`, by id, after `after` (a paging cursor).
    async fn documents_below_version(
        &mut self,
        tenant: TenantId,
        version: u32,
        after: Option<DocumentId>,
        limit: i64,
    ) -> Result<Vec<Document>>;
    async fn count_documents_below_version(&mut self, tenant: TenantId, version: u32) -> Result<u64>;
    /// Point a document at another stored copy, if it still uses `from_rev`; false otherwise.
    async fn switch_document_copy(
        &mut self,
        tenant: TenantId,
        id: DocumentId,
        from_rev: &str,
        to_version: u32,
        to_rev: &str,
    ) -> Result<bool>;
    /// Values of `column` (as stored, sealed) not sealed under key `version`, after row `after`.
    async fn stale_fields(
        &mut self,
        tenant: TenantId,
        column: SealedColumn,
        version: u32,
        after: Option<uuid::Uuid>,
        limit: i64,
    ) -> Result<Vec<StoredField>>;
    async fn count_stale_fields(&mut self, tenant: TenantId, column: SealedColumn, version: u32) -> Result<u64>;
    /// Replace a sealed value if it is still `field.value`; false if it changed meanwhile.
    async fn replace_field(&mut self, tenant: TenantId, field: &StoredField, sealed: &str) -> Result<bool>;

    // Stored objects waiting to be deleted (see the `blob_garbage` table).
    /// Record (or re-mark) an object: `pending` while it is written, else replaced.
    async fn mark_blob(&mut self, tenant: TenantId, key: &str, pending: bool, at: OffsetDateTime) -> Result<()>;
    /// Take a pending object into use: removes its row; false if it was swept meanwhile.
    async fn claim_pending_blob(&mut self, key: &str) -> Result<bool>;
    /// Turn every pending object of a tenant into a replaced one (their writers are presumed gone).
    async fn abandon_pending_blobs(&mut self, tenant: TenantId) -> Result<u64>;
    /// Replaced objects of a tenant, to delete.
    async fn replaced_blobs(&mut self, tenant: TenantId, limit: i64) -> Result<Vec<String>>;
    /// Forget an object once it is deleted.
    async fn forget_blob(&mut self, key: &str) -> Result<()>;
    /// Replaced objects of every tenant, to delete once no backup holds them back.
    async fn all_replaced_blobs(&mut self, limit: i64) -> Result<Vec<String>>;

    // Leases (see migration 0021).
    /// Take or renew lease `name` for `holder` until `until`: true if it was free, expired at
    /// `now`, or already `holder`'s (compare and set).
    async fn take_lease(
        &mut self,
        name: &str,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool>;
    /// Give lease `name` up, if `holder` still has it.
    async fn release_lease(&mut self, name: &str, holder: &str) -> Result<()>;
    /// Whether someone holds lease `name` at `now`.
    async fn lease_held(&mut self, name: &str, now: OffsetDateTime) -> Result<bool>;
    /// How many leases whose names start with `prefix` are held at `now`.
    async fn leases_held(&mut self, prefix: &str, now: OffsetDateTime) -> Result<i64>;

    // Known devices (see `authn::device`).
    /// Note a sign-in from a device the user has used before: its last sighting, IP and user
    /// agent. False if the user has no device with this hash.
    async fn touch_known_device(
        &mut self,
        tenant: TenantId,
        user: UserId,
        device_hash: &str,
        at: OffsetDateTime,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<bool>;
    async fn insert_known_device(&mut self, d: &KnownDevice) -> Result<()>;

    // The mail outbox.
    async fn insert_mail(&mut self, m: &OutboxMail) -> Result<()>;
    /// Unsent, not given up, due at `now`, of every tenant, oldest due first.
    async fn due_mail(&mut self, now: OffsetDateTime, limit: i64) -> Result<Vec<OutboxMail>>;
    /// Take a mail for sending: move its due time to `until` if it is still `seen` (the value
    /// read with it), so of several nodes only one wins. False if another node took it.
    async fn lease_mail(
        &mut self,
        tenant: TenantId,
        id: MailId,
        seen: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool>;
    async fn mark_mail_sent(&mut self, tenant: TenantId, id: MailId, at: OffsetDateTime) -> Result<()>;
    /// Record a failed attempt: the attempt count, the error, and either the next due time or
    /// (`failed_at`) that sending is given up.
    async fn record_mail_failure(
        &mut self,
        tenant: TenantId,
        id: MailId,
        attempts: u32,
        error: &str,
        next_attempt_at: OffsetDateTime,
        failed_at: Option<OffsetDateTime>,
    ) -> Result<()>;

    // Security alerts and their outbox (see `service::alerts`).
    /// Record an occurrence: a new alert, or, if one with the same `dedup_key` exists, one more
    /// occurrence of it (count and last time). Atomic, so concurrent nodes count one alert.
    /// Returns the stored alert's id and its occurrences.
    async fn record_alert(&mut self, a: &Alert) -> Result<(AlertId, u32)>;
    async fn alert(&mut self, id: AlertId) -> Result<Option<Alert>>;
    /// Alerts whose first notice is not queued yet, or whose follow-up is due at `now` and not
    /// queued yet; oldest first.
    async fn alerts_to_dispatch(&mut self, now: OffsetDateTime, limit: i64) -> Result<Vec<Alert>>;
    /// Claim the queueing of a notice, so of several nodes only one queues it; false if another
    /// node did. Claiming the first notice at or after the window's end claims the follow-up too
    /// (the first notice then carries the final count).
    async fn claim_alert_dispatch(&mut self, id: AlertId, notice: Notice, at: OffsetDateTime) -> Result<bool>;
    async fn insert_alert_delivery(&mut self, d: &AlertDelivery) -> Result<()>;
    /// Unsent, not given up, due at `now`, oldest due first.
    async fn due_alert_deliveries(&mut self, now: OffsetDateTime, limit: i64) -> Result<Vec<AlertDelivery>>;
    /// Take a delivery for sending, as `lease_mail` does: move its due time to `until` if it is
    /// still `d.next_attempt_at`. False if another node took it.
    async fn lease_alert_delivery(&mut self, d: &AlertDelivery, until: OffsetDateTime) -> Result<bool>;
    async fn mark_alert_delivery_sent(&mut self, d: &AlertDelivery, at: OffsetDateTime) -> Result<()>;
    /// Store a failed attempt: `d`'s attempts, last error, next due time and, if delivery is
    /// given up, `failed_at`.
    async fn record_alert_delivery_failure(&mut self, d: &AlertDelivery) -> Result<()>;
    /// The active owners and admins of a tenant (who hear of alerts about their firm).
    async fn tenant_admins(&mut self, tenant: TenantId) -> Result<Vec<UserId>>;

    // Protective controls: upload allow-list, DLP, download caps.
    /// The firm's protective settings (JSON), if it changed the defaults.
    async fn protection_settings(&mut self, tenant: TenantId) -> Result<Option<String>>;
    async fn set_protection_settings(&mut self, tenant: TenantId, settings: &str, at: OffsetDateTime) -> Result<()>;
    async fn insert_document_flag(&mut self, grant: &MatterGrant, flag: &DocumentFlag) -> Result<()>;
    async fn document_flag(&mut self, tenant: TenantId, document: DocumentId) -> Result<Option<DocumentFlag>>;
    /// Flags of one matter (or of every matter), optionally in one state only.
    async fn document_flags(
        &mut self,
        tenant: TenantId,
        matter: Option<MatterId>,
        state: Option<FlagState>,
    ) -> Result<Vec<DocumentFlag>>;
    async fn set_document_flag_state(
        &mut self,
        tenant: TenantId,
        document: DocumentId,
        state: FlagState,
    ) -> Result<bool>;
    /// Remove a document's record (and its flag); the caller deletes its stored bytes.
    async fn delete_document(&mut self, tenant: TenantId, document: DocumentId) -> Result<bool>;
    /// Count one download of `bytes` against a user's day (`YYYY-MM-DD`, UTC).
    async fn add_download(&mut self, tenant: TenantId, user: UserId, day: &str, bytes: u64) -> Result<()>;
    /// A user's downloads and bytes on a day.
    async fn download_usage(&mut self, tenant: TenantId, user: UserId, day: &str) -> Result<(u64, u64)>;
    /// Forget a user's downloads on a day (an admin lifts the cap); whether there were any.
    async fn reset_download_usage(&mut self, tenant: TenantId, user: UserId, day: &str) -> Result<bool>;

    // Intrusion and anomaly detection (see `service::intrusion`). Ids, addresses and counts only.
    async fn insert_block(&mut self, b: &Block) -> Result<()>;
    async fn block(&mut self, id: BlockId) -> Result<Option<Block>>;
    /// Blocks in force at `now` (not lifted, not expired): a tenant's (account and download
    /// blocks), or with `None` the platform's (source blocks); newest first.
    async fn active_blocks(&mut self, tenant: Option<TenantId>, now: OffsetDateTime) -> Result<Vec<Block>>;
    /// The newest source block in force on `ip` at `now`.
    async fn source_block(&mut self, ip: &str, now: OffsetDateTime) -> Result<Option<Block>>;
    /// The newest block of `scope` in force on one user at `now`.
    async fn user_block(
        &mut self,
        tenant: TenantId,
        user: UserId,
        scope: BlockScope,
        now: OffsetDateTime,
    ) -> Result<Option<Block>>;
    /// Lift a block still in force; false if it was lifted already.
    async fn lift_block(&mut self, id: BlockId, by: &str, at: OffsetDateTime) -> Result<bool>;
    async fn insert_detection(&mut self, d: &Detection) -> Result<()>;
    /// A tenant's detections (or with `None` the platform's, which have no tenant), newest first.
    async fn detections(&mut self, tenant: Option<TenantId>, limit: i64) -> Result<Vec<Detection>>;
    /// Record a failed sign-in from `ip` on `target` and forget those before `since`; returns
    /// how many distinct targets failed from `ip`, from how many distinct addresses `target`
    /// failed, and how often `target` failed from `ip`, since `since`. Failures are recorded one
    /// at a time across nodes, so each count is seen by exactly one failure and a threshold is
    /// crossed exactly once.
    async fn record_signin_failure(
        &mut self,
        ip: &str,
        target: &str,
        at: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Result<(u32, u32, u32)>;
    /// Hold a user's download counters (daily usage, baseline) until this transaction ends, so
    /// that parallel downloads read and update them one after another (PostgreSQL's read
    /// committed would otherwise lose updates; SQLite's write transaction already excludes).
    async fn lock_user_counters(&mut self, tenant: TenantId, user: UserId) -> Result<()>;
    async fn baseline(&mut self, tenant: TenantId, user: UserId) -> Result<Option<Baseline>>;
    async fn save_baseline(&mut self, b: &Baseline) -> Result<()>;
    /// Remember that a user signed in from `ip`; true if it is the first time.
    async fn remember_ip(&mut self, tenant: TenantId, user: UserId, ip: &str, at: OffsetDateTime) -> Result<bool>;

    // Audit.
    /// Append an event to its tenant's chain, in this transaction.
    async fn append_audit(&mut self, ev: &NewEvent, at: OffsetDateTime) -> Result<()>;
    /// The events of one chain (tenant id, or "" for the platform), in order.
    async fn audit_chain(&mut self, chain: &str, after_seq: i64, limit: i64) -> Result<Vec<StoredEvent>>;
    /// The events of one chain after `after_seq` (and not past `upto_seq`, if given) that match
    /// every filter, in order, at most `limit`. The database does the filtering.
    async fn search_audit(
        &mut self,
        chain: &str,
        filter: &AuditFilter,
        after_seq: i64,
        upto_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<StoredEvent>>;
    /// Every audit chain's key found among the events (tenant ids, and "" for the platform
    /// chain). Reads the whole event table: for verification, not for periodic work.
    async fn audit_chains(&mut self) -> Result<Vec<String>>;
    /// Every tenant's id.
    async fn tenant_ids(&mut self) -> Result<Vec<TenantId>>;
    /// A chain's newest checkpoint.
    async fn latest_audit_checkpoint(&mut self, chain: &str) -> Result<Option<AuditCheckpoint>>;
    /// A chain's newest event.
    async fn audit_head(&mut self, chain: &str) -> Result<Option<StoredEvent>>;
    async fn insert_audit_checkpoint(&mut self, c: &AuditCheckpoint) -> Result<()>;
    /// A chain's checkpoints, oldest first.
    async fn audit_checkpoints(&mut self, chain: &str) -> Result<Vec<AuditCheckpoint>>;
    /// Every chain's length and checkpoint coverage, from the chain heads (no event scan).
    async fn audit_chain_status(&mut self) -> Result<Vec<ChainStatus>>;
    /// How much work waits in the mail outbox, the alert deliveries and the export jobs.
    async fn queue_depths(&mut self) -> Result<Vec<crate::model::QueueDepth>>;
    /// Events of every tenant chain (never the platform's) with `from <= at < to`, ordered by
    /// (at, chain, seq) and after `after` in that order, at most `limit`: breach scoping reads
    /// a window page by page.
    async fn audit_window(
        &mut self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        after: Option<(OffsetDateTime, String, i64)>,
        limit: i64,
    ) -> Result<Vec<StoredEvent>>;

    // Incidents.
    async fn insert_incident(&mut self, i: &IncidentRecord) -> Result<()>;
    async fn incident(&mut self, id: IncidentId) -> Result<Option<IncidentRecord>>;
    /// Newest first.
    async fn list_incidents(&mut self, limit: i64) -> Result<Vec<IncidentRecord>>;
    /// Store `i` if the stored version is still `i.version - 1`; false if someone else changed
    /// it first.
    async fn update_incident(&mut self, i: &IncidentRecord) -> Result<bool>;
    /// Incidents still `reported` past their triage target and not alerted yet.
    async fn triage_overdue(&mut self, now: OffsetDateTime) -> Result<Vec<IncidentRecord>>;
    async fn insert_breach_notice(&mut self, n: &BreachNotice, tenant: TenantId) -> Result<()>;
    /// A firm's breach notices since `since`, newest first.
    async fn breach_notices(&mut self, tenant: TenantId, since: OffsetDateTime) -> Result<Vec<BreachNotice>>;
}

/// A stream of bytes, as documents travel.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Where document bytes live.
#[async_trait]
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Store a stream under `key`. The object becomes visible only once the whole stream has been
    /// written; if the stream fails, nothing is left behind. Returns the byte count.
    async fn put(&self, key: &str, body: ByteStream) -> Result<u64>;
    /// Read an object, or a byte range of it.
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ByteStream>;
    async fn delete(&self, key: &str) -> Result<()>;
    /// The stored size of an object.
    async fn size(&self, key: &str) -> Result<u64>;
    /// Is the store reachable and writable?
    async fn ping(&self) -> Result<()>;
}

/// Where mail goes out: SMTP in the server, a recorder in tests.
#[async_trait]
pub trait Mailer: Send + Sync + std::fmt::Debug {
    /// Deliver one plain-text message to `to`. An error means it may not have been delivered.
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<()>;
}

/// Where alert webhooks go: a signed HTTPS POST in the server, a recorder in tests.
#[async_trait]
pub trait Webhook: Send + Sync + std::fmt::Debug {
    /// POST this JSON body, signed, to the configured endpoint. Ok only when the endpoint
    /// answered 2xx; an error means it may not have been delivered.
    async fn post(&self, body: &[u8]) -> Result<()>;
}
