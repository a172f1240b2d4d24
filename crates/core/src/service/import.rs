//! Importing a firm's export archive (see `export`) into a new tenant, so the data the policy
//! says is the subscriber's can move to another installation, or back into this one, and be
//! worked again.
//!
//! The archive is read once, in order, on a blocking thread (`archive::read`), and its entries
//! are handed to the async side a piece at a time: documents are never held whole. What is
//! made, and in what order:
//!
//! 1. The metadata entries (`tenant.json`, `users.jsonl`, `matters.jsonl`, `documents.jsonl`)
//!    are parsed and checked against each other (every member, uploader and author a user of
//!    the archive, every document in a matter of it). Everything gets a new id: an imported
//!    copy never passes for the original, and a copy can sit beside it in one installation.
//! 2. The new tenant's keys are made in memory (wrapped by the master key, not yet stored), and
//!    each `documents/<id>` entry is inspected like an upload (its type from its content, never
//!    the archive's word), encrypted under the new key and streamed into the blob store; its
//!    size and SHA-256 must match `documents.jsonl`.
//! 3. At `audit.jsonl` ONE write transaction opens: the tenant, its keys, users, matters,
//!    members, documents and messages are inserted, and the old audit chain is replayed into
//!    the new firm's chain, one `import.audit_event` per original event holding the original
//!    line whole, after the original chain has been checked link by link and hash by hash.
//! 4. Only when the archive reader has checked every entry against the manifest does the
//!    transaction commit. Any failure rolls it back and deletes the objects already stored:
//!    nothing is left. (A process killed part-way leaves objects under the new tenant's prefix
//!    encrypted under a key that was never stored: unreadable, and named by no row.)
//!
//! Users come without passwords or second factors (an export carries none): each one who may
//! sign in gets a one-time set-password link, returned to the caller, and stays `invited`
//! until they use it. The firm's protection settings start at their defaults.

use super::Portal;
use super::documents::Meter;
use super::export::EXPORT_LABEL;
use crate::archive::{self, ArchiveError, Manifest};
use crate::audit::{Action, Actor, NewEvent, RequestMeta, StoredEvent, Target, verify_run};
use crate::crypto::keys::{KeyBytes, Wrapped};
use crate::crypto::stream::{self, DocCipher, Header};
use crate::error::{Error, Result};
use crate::ids::{DocumentId, MatterId, MessageId, TenantId, UserId};
use crate::inspect::{Detected, FileKind, stored_name};
use crate::model::{
    Document, KeyPurpose, LinkPurpose, Matter, Message, Role, Tenant, TenantKeyRecord, TenantStatus, User, UserStatus,
    blob_key,
};
use crate::policy::{self, ImportReach, Principal, can};
use crate::ports::Tx;
use crate::validate;
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use secrecy::SecretString;
use serde::Deserialize;
use std::collections::HashMap;
use std::io::{BufRead, Read};
use time::{Duration, OffsetDateTime};

/// The metadata entries, in the order an export writes them; each is read whole (they list
/// things, the documents come separately) up to [`MAX_METADATA`].
const METADATA: [&str; 4] = ["tenant.json", "users.jsonl", "matters.jsonl", "documents.jsonl"];
const MESSAGES: &str = "messages.jsonl";
const AUDIT: &str = "audit.jsonl";
const DOCUMENT_PREFIX: &str = "documents/";
/// A metadata entry larger than this is refused rather than read into memory.
const MAX_METADATA: u64 = 1024 * 1024 * 1024;
/// Document bytes are handed over in pieces of this size.
const PIECE: usize = 64 * 1024;
/// Audit lines are handed over in batches of this many.
const AUDIT_BATCH: usize = 500;
/// How long the set-password links of imported users live: long enough to reach every user of
/// a firm that is moving, short enough not to linger.
pub const IMPORT_LINK_TTL: Duration = Duration::days(7);

/// A one-time set-password link of an imported user.
#[derive(Debug)]
pub struct ImportedLink {
    pub email: String,
    pub role: Role,
    pub link: SecretString,
}

/// What an import made.
#[derive(Debug)]
pub struct ImportReport {
    pub tenant_id: TenantId,
    pub name: String,
    /// The firm the archive was exported from, as the archive names it.
    pub source_tenant_id: String,
    pub source_name: String,
    pub export_id: String,
    pub users: usize,
    pub matters: usize,
    pub documents: usize,
    pub document_bytes: u64,
    pub messages: usize,
    /// Events of the original audit chain replayed into the new one.
    pub audit_events: u64,
    /// One per imported user who may sign in (not the disabled ones).
    pub links: Vec<ImportedLink>,
}

/// What the archive reader hands to the import, in archive order.
enum Part {
    Metadata(String, Vec<u8>),
    DocumentStart(String),
    DocumentBytes(bytes::Bytes),
    DocumentEnd,
    AuditLines(Vec<Vec<u8>>),
    /// The reader is done: the manifest, once every entry matched it.
    Finished(std::result::Result<Manifest, ArchiveError>),
}

#[derive(Deserialize)]
struct TenantLine {
    id: String,
    name: String,
    display_name: String,
    #[serde(default)]
    two_factor_staff: bool,
    #[serde(default)]
    two_factor_clients: bool,
}

#[derive(Deserialize)]
struct UserLine {
    id: String,
    email: String,
    display_name: String,
    role: String,
    status: String,
    created_at: String,
}

#[derive(Deserialize)]
struct MemberLine {
    user_id: String,
    role: String,
    added_at: String,
}

#[derive(Deserialize)]
struct MatterLine {
    id: String,
    reference: String,
    title: String,
    created_by: String,
    created_at: String,
    #[serde(default)]
    restricted: bool,
    #[serde(default)]
    members: Vec<MemberLine>,
}

#[derive(Deserialize)]
struct DocumentLine {
    id: String,
    matter_id: String,
    name: String,
    size: u64,
    sha256: String,
    uploaded_by: String,
    created_at: String,
}

#[derive(Deserialize)]
struct MessageLine {
    matter_id: String,
    author_id: String,
    author_name: String,
    body: String,
    created_at: String,
}

#[derive(Deserialize)]
struct EventLine {
    seq: i64,
    at_ms: i64,
    actor: String,
    action: String,
    target: String,
    ip: Option<String>,
    request_id: Option<String>,
    detail: String,
    matter: Option<String>,
    prev_hash: String,
    hash: String,
}

/// The archive is not a well-formed export: the reason, for the person importing it.
fn refused(why: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::invalid("archive", why)
}

fn parse_json<T: for<'de> Deserialize<'de>>(entry: &str, text: &[u8]) -> Result<T> {
    serde_json::from_slice(text).map_err(|e| refused(format!("{entry}: {e}")))
}

fn parse_lines<T: for<'de> Deserialize<'de>>(entry: &str, text: &[u8]) -> Result<Vec<T>> {
    text.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_slice(l).map_err(|e| refused(format!("{entry} line {}: {e}", i + 1))))
        .collect()
}

/// A time as an export writes it (`YYYY-MM-DD HH:MM:SS`, UTC).
fn parse_time(entry: &str, s: &str) -> Result<OffsetDateTime> {
    time::PrimitiveDateTime::parse(
        s,
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
    .map(|t| t.assume_utc())
    .map_err(|_| refused(format!("{entry}: {s:?} is not a time")))
}

/// Reading an entry failed: decryption or the tar structure broke off (as `archive::read`
/// reports its own reads).
fn damaged(e: std::io::Error) -> ArchiveError {
    ArchiveError::Damaged(e.to_string())
}

/// Read the archive on this (blocking) thread, handing every entry to `out` in order.
fn read_archive<R: Read>(input: R, identity: &age::x25519::Identity, out: &mut mpsc::Sender<Part>) {
    let mut send = |part: Part| {
        futures::executor::block_on(out.send(part))
            .map_err(|_| ArchiveError::Rejected("the import stopped before the archive was read".into()))
    };
    let result = archive::read(input, identity, EXPORT_LABEL, |name, r| {
        if METADATA.contains(&name) || name == MESSAGES {
            let mut text = Vec::new();
            r.take(MAX_METADATA + 1).read_to_end(&mut text).map_err(damaged)?;
            if text.len() as u64 > MAX_METADATA {
                return Err(ArchiveError::Rejected(format!("{name} is larger than the import reads")));
            }
            send(Part::Metadata(name.to_string(), text))
        } else if let Some(id) = name.strip_prefix(DOCUMENT_PREFIX) {
            send(Part::DocumentStart(id.to_string()))?;
            let mut buf = vec![0u8; PIECE];
            loop {
                let n = r.read(&mut buf).map_err(damaged)?;
                let Some(got) = buf.get(..n).filter(|g| !g.is_empty()) else { break };
                send(Part::DocumentBytes(bytes::Bytes::copy_from_slice(got)))?;
            }
            send(Part::DocumentEnd)
        } else if name == AUDIT {
            let mut lines = Vec::with_capacity(AUDIT_BATCH);
            for line in std::io::BufReader::new(r).split(b'\n') {
                lines.push(line.map_err(damaged)?);
                if lines.len() == AUDIT_BATCH {
                    send(Part::AuditLines(std::mem::take(&mut lines)))?;
                }
            }
            send(Part::AuditLines(lines))
        } else {
            Err(ArchiveError::Rejected(format!("{name}: not an entry of a tenant export")))
        }
    });
    // If the import side has stopped, it no longer listens: nothing more to tell.
    let _ = send(Part::Finished(result));
}

/// A document listed by the archive, and whether its bytes have been stored yet.
struct PendingDocument {
    doc: Document,
    expect_sha256: String,
    stored: bool,
}

/// A user on an imported matter's list: who, as what, since when.
type Member = (UserId, Role, OffsetDateTime);

/// The new firm as it is being built.
struct Building {
    grant: ImportReach,
    tenant: Tenant,
    source_id: String,
    source_name: String,
    data_key: (KeyBytes, Wrapped),
    index_key: Wrapped,
    /// Old id to the new user.
    users: HashMap<String, User>,
    user_order: Vec<String>,
    /// Old id, the new matter, its members.
    matters: Vec<(String, Matter, Vec<Member>)>,
    matter_ids: HashMap<String, MatterId>,
    documents: HashMap<String, PendingDocument>,
    document_order: Vec<String>,
    messages: Vec<Message>,
}

impl Building {
    fn user(&self, entry: &str, old: &str) -> Result<UserId> {
        self.users
            .get(old)
            .map(|u| u.id)
            .ok_or_else(|| refused(format!("{entry} names user {old}, who is not in users.jsonl")))
    }
    fn matter(&self, entry: &str, old: &str) -> Result<MatterId> {
        self.matter_ids
            .get(old)
            .copied()
            .ok_or_else(|| refused(format!("{entry} names matter {old}, which is not in matters.jsonl")))
    }
}

impl Portal {
    /// Import the export archive `input` (opened with `identity`) as a new firm named `name`,
    /// on behalf of the command line (`p`, whose tenant id is ignored). See the module docs.
    pub async fn import_tenant<R: Read + Send + 'static>(
        &self,
        p: &Principal,
        name: &str,
        input: R,
        identity: age::x25519::Identity,
        meta: &RequestMeta,
    ) -> Result<ImportReport> {
        let name = validate::tenant_name(name)?;
        let tenant_id = TenantId::new();
        let grant = policy::import_reach(p, tenant_id)?;
        {
            let mut tx = self.read().await?;
            self.check_new_tenant_name(&mut *tx, &name).await?;
        }
        let (tx_parts, rx) = mpsc::channel::<Part>(8);
        let reader = tokio::task::spawn_blocking(move || {
            let mut out = tx_parts;
            read_archive(input, &identity, &mut out);
        });
        let mut stored = Vec::new();
        let outcome = self.build_import(grant, tenant_id, name, rx, &mut stored, meta).await;
        // Once the import side is done (or has given up, dropping its receiver), the reader
        // stops at its next piece.
        if let Err(e) = reader.await {
            tracing::warn!(error = %e, "the archive reader of an import ended abnormally");
        }
        if outcome.is_err() {
            for key in &stored {
                if let Err(e) = self.blobs.delete(key).await {
                    tracing::error!(error = %e, key, "could not remove a document of a failed import");
                }
            }
        }
        outcome
    }

    async fn build_import(
        &self,
        grant: ImportReach,
        tenant_id: TenantId,
        name: String,
        mut rx: mpsc::Receiver<Part>,
        stored: &mut Vec<String>,
        meta: &RequestMeta,
    ) -> Result<ImportReport> {
        let mut grant = Some(grant);
        let mut metadata: Vec<(String, Vec<u8>)> = Vec::new();
        let mut b: Option<Building> = None;
        let mut messages_seen = false;
        let mut tx: Option<(Box<dyn Tx>, ChainCheck)> = None;
        let manifest = loop {
            let part = rx.next().await.ok_or_else(|| Error::internal("the archive reader stopped"))?;
            match part {
                Part::Metadata(entry, text) if entry == MESSAGES => {
                    let bld = b.as_mut().ok_or_else(|| refused("messages.jsonl before the firm's metadata"))?;
                    if messages_seen || tx.is_some() {
                        return Err(refused("messages.jsonl out of place"));
                    }
                    messages_seen = true;
                    for m in parse_lines::<MessageLine>(MESSAGES, &text)? {
                        let msg = Message {
                            id: MessageId::new(),
                            tenant_id,
                            matter_id: bld.matter(MESSAGES, &m.matter_id)?,
                            author_id: bld.user(MESSAGES, &m.author_id)?,
                            author_name: validate::line("author_name", &m.author_name, 200)?,
                            body: validate::text("body", &m.body, super::messages::MAX_MESSAGE_CHARS)?,
                            created_at: parse_time(MESSAGES, &m.created_at)?,
                        };
                        bld.messages.push(msg);
                    }
                }
                Part::Metadata(entry, text) => {
                    let expected = METADATA.get(metadata.len()).copied();
                    if b.is_some() || expected != Some(entry.as_str()) {
                        return Err(refused(format!("{entry} out of place")));
                    }
                    metadata.push((entry, text));
                    if metadata.len() == METADATA.len() {
                        let grant = grant.take().ok_or_else(|| Error::internal("the import's grant was used twice"))?;
                        b = Some(self.plan_import(grant, tenant_id, &name, &metadata).await?);
                        metadata.clear();
                    }
                }
                Part::DocumentStart(old) => {
                    let bld = b.as_mut().ok_or_else(|| refused("a document before the firm's metadata"))?;
                    if messages_seen {
                        return Err(refused("a document after messages.jsonl"));
                    }
                    self.import_document(bld, &old, &mut rx, stored).await?;
                }
                Part::DocumentBytes(_) | Part::DocumentEnd => {
                    return Err(Error::internal("document bytes out of place"));
                }
                Part::AuditLines(lines) => {
                    if tx.is_none() {
                        let bld = b.as_ref().ok_or_else(|| refused("audit.jsonl before the firm's metadata"))?;
                        if let Some(missing) =
                            bld.document_order.iter().find(|d| !bld.documents.get(*d).is_some_and(|p| p.stored))
                        {
                            return Err(refused(format!("document {missing} is listed but not in the archive")));
                        }
                        let mut t = self.write().await?;
                        self.insert_import(&mut *t, bld, meta).await?;
                        tx = Some((t, ChainCheck::new(bld.source_id.clone())));
                    }
                    if let Some((t, check)) = tx.as_mut() {
                        for line in lines.iter().filter(|l| !l.is_empty()) {
                            let original = check.next(line)?;
                            let ev = NewEvent::new(Some(tenant_id), Actor::Cli, Action::ImportAuditEvent, Target::ImportedEvent(original.seq), meta)
                                .with_detail(serde_json::json!({ "original": serde_json::from_slice::<serde_json::Value>(line).map_err(|e| refused(format!("audit.jsonl: {e}")))? }));
                            t.audit().append_audit(&ev, self.clock.now()).await?;
                        }
                    }
                }
                Part::Finished(result) => break result.map_err(|e| refused(e.to_string()))?,
            }
        };
        let (bld, (mut t, check)) = match (b, tx) {
            (Some(bld), Some(t)) => (bld, t),
            _ => return Err(refused("the archive ends before its audit log")),
        };
        let about = &manifest.about;
        if about.get("kind").and_then(|k| k.as_str()) != Some(EXPORT_LABEL)
            || about.get("tenant_id").and_then(|k| k.as_str()) != Some(bld.source_id.as_str())
        {
            return Err(refused("the manifest does not describe an export of this firm"));
        }
        let export_id = about.get("export_id").and_then(|k| k.as_str()).unwrap_or_default().to_string();
        let mut links = Vec::new();
        for old in &bld.user_order {
            let Some(u) = bld.users.get(old) else { continue };
            if u.status == UserStatus::Disabled {
                continue;
            }
            let s =
                self.new_link(&mut *t, LinkPurpose::SetPassword, Some(tenant_id), Some(u.id), IMPORT_LINK_TTL).await?;
            links.push(ImportedLink {
                email: u.email.clone(),
                role: u.role,
                link: SecretString::from(self.link_url("invite", &s)),
            });
        }
        let document_bytes = bld.documents.values().map(|d| d.doc.size).sum();
        let ev = NewEvent::new(Some(tenant_id), Actor::Cli, Action::ImportFinished, Target::Tenant(tenant_id), meta)
            .with_detail(serde_json::json!({
                "export_id": &export_id, "archive_created_at": &manifest.created_at,
                "entries": manifest.entries.len(), "audit_events": check.count, "source_head": &check.prev,
            }));
        t.audit().append_audit(&ev, self.clock.now()).await?;
        t.commit().await?;
        Ok(ImportReport {
            tenant_id,
            name: bld.tenant.name.clone(),
            source_tenant_id: bld.source_id.clone(),
            source_name: bld.source_name.clone(),
            export_id,
            users: bld.users.len(),
            matters: bld.matters.len(),
            documents: bld.documents.len(),
            document_bytes,
            messages: bld.messages.len(),
            audit_events: check.count,
            links,
        })
    }

    /// Check the metadata entries against each other and give everything its new id; make the
    /// new firm's keys (in memory only until the final transaction).
    async fn plan_import(
        &self,
        grant: ImportReach,
        tenant_id: TenantId,
        name: &str,
        metadata: &[(String, Vec<u8>)],
    ) -> Result<Building> {
        let text = |i: usize| metadata.get(i).map(|(_, t)| t.as_slice()).unwrap_or_default();
        let t: TenantLine = parse_json("tenant.json", text(0))?;
        let now = self.clock.now();
        let tenant = Tenant {
            id: tenant_id,
            name: name.to_string(),
            display_name: validate::line("display_name", &t.display_name, 200)?,
            created_at: now,
            two_factor_staff: t.two_factor_staff,
            two_factor_clients: t.two_factor_clients,
            status: TenantStatus::Active,
            ended_at: None,
        };
        let data_key = self.keyring.new_tenant_key(tenant_id, KeyPurpose::Data, 1).await?;
        let (_, index_key) = self.keyring.new_tenant_key(tenant_id, KeyPurpose::Index, 1).await?;
        let mut b = Building {
            grant,
            tenant,
            source_id: t.id,
            source_name: t.name,
            data_key,
            index_key,
            users: HashMap::new(),
            user_order: Vec::new(),
            matters: Vec::new(),
            matter_ids: HashMap::new(),
            documents: HashMap::new(),
            document_order: Vec::new(),
            messages: Vec::new(),
        };
        for u in parse_lines::<UserLine>("users.jsonl", text(1))? {
            let status =
                UserStatus::parse(&u.status).map_err(|_| refused(format!("users.jsonl: status {:?}", u.status)))?;
            let user = User {
                id: UserId::new(),
                tenant_id,
                email: validate::email(&u.email)?,
                display_name: validate::line("display_name", &u.display_name, 200)?,
                role: Role::parse(&u.role)?,
                status: if status == UserStatus::Disabled { UserStatus::Disabled } else { UserStatus::Invited },
                created_at: parse_time("users.jsonl", &u.created_at)?,
            };
            if b.users.values().any(|n| n.email == user.email) {
                return Err(refused(format!("users.jsonl lists {} twice", user.email)));
            }
            if b.users.insert(u.id.clone(), user).is_some() {
                return Err(refused(format!("users.jsonl lists user {} twice", u.id)));
            }
            b.user_order.push(u.id);
        }
        if !b.users.values().any(|u| u.role == Role::Owner && u.status != UserStatus::Disabled) {
            return Err(refused("the firm in the archive has no owner who may sign in"));
        }
        for m in parse_lines::<MatterLine>("matters.jsonl", text(2))? {
            let matter = Matter {
                id: MatterId::new(),
                tenant_id,
                reference: validate::line("reference", &m.reference, 100)?,
                title: validate::line("title", &m.title, 300)?,
                created_by: b.user("matters.jsonl", &m.created_by)?,
                created_at: parse_time("matters.jsonl", &m.created_at)?,
                restricted: m.restricted,
            };
            let mut members = Vec::new();
            for mm in &m.members {
                let at = parse_time("matters.jsonl", &mm.added_at)?;
                members.push((b.user("matters.jsonl", &mm.user_id)?, Role::parse(&mm.role)?, at));
            }
            if b.matter_ids.insert(m.id.clone(), matter.id).is_some() {
                return Err(refused(format!("matters.jsonl lists matter {} twice", m.id)));
            }
            b.matters.push((m.id, matter, members));
        }
        for d in parse_lines::<DocumentLine>("documents.jsonl", text(3))? {
            let doc = Document {
                id: DocumentId::new(),
                tenant_id,
                matter_id: b.matter("documents.jsonl", &d.matter_id)?,
                name: validate::file_name(&d.name)?,
                size: d.size,
                content_type: String::new(),
                sha256: String::new(),
                uploaded_by: b.user("documents.jsonl", &d.uploaded_by)?,
                created_at: parse_time("documents.jsonl", &d.created_at)?,
                key_version: 1,
                blob_rev: String::new(),
            };
            let pending = PendingDocument { doc, expect_sha256: d.sha256, stored: false };
            if b.documents.insert(d.id.clone(), pending).is_some() {
                return Err(refused(format!("documents.jsonl lists document {} twice", d.id)));
            }
            b.document_order.push(d.id);
        }
        Ok(b)
    }

    /// Store one document of the archive: inspected like an upload, encrypted under the new
    /// firm's key, checked against its line in `documents.jsonl`.
    async fn import_document(
        &self,
        b: &mut Building,
        old: &str,
        rx: &mut mpsc::Receiver<Part>,
        stored: &mut Vec<String>,
    ) -> Result<()> {
        let pending = b
            .documents
            .get_mut(old)
            .filter(|p| !p.stored)
            .ok_or_else(|| refused(format!("documents/{old} is not listed in documents.jsonl, or comes twice")))?;
        let doc = &mut pending.doc;
        let header = Header::new(1)?;
        let cipher = DocCipher::new(b.data_key.0.expose(), &header, doc.tenant_id, doc.matter_id, doc.id)?;
        let key = blob_key(doc.tenant_id, doc.id, "");
        let (mut body, body_rx) = mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
        let (plain, meter) = Meter::wrap_inspected(Box::pin(body_rx), doc.size);
        stored.push(key.clone());
        let put = self.blobs.put(&key, stream::encrypt(cipher, &header, plain));
        // Hand the pieces on until the entry ends; the body closes when this ends.
        let forward = async move {
            loop {
                match rx.next().await {
                    Some(Part::DocumentBytes(piece)) => {
                        // A closed body means the store stopped reading: its own error says why.
                        if body.send(Ok(piece)).await.is_err() {
                            return Ok(());
                        }
                    }
                    Some(Part::DocumentEnd) => return Ok(()),
                    Some(Part::Finished(Err(e))) => return Err(refused(e.to_string())),
                    _ => return Err(Error::internal("the archive reader stopped inside a document")),
                }
            }
        };
        let (written, forwarded) = futures::future::join(put, forward).await;
        forwarded?;
        if let Some(d) = meter.refused_early()? {
            return Err(refused(format!("documents/{old} is {}, which is not accepted", d.describe())));
        }
        let (size, sha256) = meter.result().map_err(|_| refused(format!("documents/{old} is larger than listed")))?;
        let written = written?;
        if size != doc.size || sha256 != pending.expect_sha256 {
            return Err(refused(format!("documents/{old} does not match its size and SHA-256 in documents.jsonl")));
        }
        if written != stream::stored_len(size) {
            return Err(Error::internal(format!("blob store wrote {written} of {size} bytes")));
        }
        let inspection = meter.inspection()?.ok_or_else(|| Error::internal("the document was not inspected"))?;
        let kind = match inspection.detected {
            Detected::Kind(k) if FileKind::ALL.contains(&k) => k,
            other => return Err(refused(format!("documents/{old} is {}, which is not accepted", other.describe()))),
        };
        doc.name = stored_name(&doc.name, kind);
        doc.content_type = validate::content_type(Some(kind.mime()));
        doc.sha256 = sha256;
        pending.stored = true;
        Ok(())
    }

    /// Insert the new firm and everything in it, in the import's transaction.
    async fn insert_import(&self, tx: &mut dyn Tx, b: &Building, meta: &RequestMeta) -> Result<()> {
        self.check_new_tenant_name(tx, &b.tenant.name).await?;
        let now = self.clock.now();
        tx.tenants().insert_tenant(&b.tenant).await?;
        for (purpose, wrapped) in [(KeyPurpose::Data, &b.data_key.1), (KeyPurpose::Index, &b.index_key)] {
            tx.keys()
                .insert_tenant_key(&TenantKeyRecord {
                    tenant_id: b.tenant.id,
                    purpose,
                    version: 1,
                    key_id: wrapped.key_id.clone(),
                    wrapped: wrapped.bytes.clone(),
                    created_at: now,
                })
                .await?;
        }
        let t = b.tenant.id;
        let ev = NewEvent::new(Some(t), Actor::Cli, Action::TenantImport, Target::Tenant(t), meta).with_detail(serde_json::json!({
            "name": &b.tenant.name, "source_tenant_id": &b.source_id, "source_name": &b.source_name,
            "users": b.users.len(), "matters": b.matters.len(), "documents": b.documents.len(), "messages": b.messages.len(),
        }));
        tx.audit().append_audit(&ev, now).await?;
        for old in &b.user_order {
            let Some(u) = b.users.get(old) else { continue };
            tx.users().insert_user(u, &u.email, None).await?;
            let ev = NewEvent::new(Some(t), Actor::Cli, Action::ImportUser, Target::User(u.id), meta)
                .with_detail(serde_json::json!({ "from": old, "role": u.role.as_str() }));
            tx.audit().append_audit(&ev, now).await?;
        }
        let mut imported: std::collections::HashSet<MatterId> = std::collections::HashSet::new();
        for (old, m, members) in &b.matters {
            tx.matters().insert_matter(&b.grant.matters(), m).await?;
            let grant = policy::import_matter::<can::ManageMembers>(&b.grant, m.id);
            for (user, role, at) in members {
                tx.matters().insert_member(&grant, *user, *role, *at).await?;
            }
            let ev = NewEvent::new(Some(t), Actor::Cli, Action::ImportMatter, Target::Matter(m.id), meta)
                .with_detail(serde_json::json!({ "from": old, "members": members.len() }))
                .on_matter(m.id);
            tx.audit().append_audit(&ev, now).await?;
            imported.insert(m.id);
        }
        for old in &b.document_order {
            let Some(d) = b.documents.get(old).map(|p| &p.doc) else { continue };
            if !imported.contains(&d.matter_id) {
                return Err(Error::internal("a document's matter was not imported"));
            }
            let grant = policy::import_matter::<can::UploadDocument>(&b.grant, d.matter_id);
            tx.documents().insert_document(&grant, d).await?;
            let ev = NewEvent::new(Some(t), Actor::Cli, Action::ImportDocument, Target::Document(d.id), meta)
                .with_detail(serde_json::json!({ "from": old, "size": d.size, "type": &d.content_type }))
                .on_matter(d.matter_id);
            tx.audit().append_audit(&ev, now).await?;
        }
        for m in &b.messages {
            if !imported.contains(&m.matter_id) {
                return Err(Error::internal("a message's matter was not imported"));
            }
            let grant = policy::import_matter::<can::PostMessage>(&b.grant, m.matter_id);
            tx.messages().insert_message(&grant, m).await?;
        }
        Ok(())
    }
}

/// Checks the original audit chain line by line as it is replayed: consecutive sequence
/// numbers from 1, each event linked to the one before, each hash right.
struct ChainCheck {
    chain: String,
    prev: String,
    count: u64,
}

impl ChainCheck {
    fn new(chain: String) -> Self {
        Self { chain, prev: String::new(), count: 0 }
    }

    fn next(&mut self, line: &[u8]) -> Result<StoredEvent> {
        let l: EventLine = serde_json::from_slice(line).map_err(|e| refused(format!("audit.jsonl: {e}")))?;
        let e = StoredEvent {
            chain: self.chain.clone(),
            seq: l.seq,
            at: crate::clock::from_millis(l.at_ms),
            actor: l.actor,
            action: l.action,
            target: l.target,
            ip: l.ip,
            request_id: l.request_id,
            detail: l.detail,
            matter: l.matter,
            prev_hash: l.prev_hash,
            hash: l.hash,
        };
        let first = i64::try_from(self.count).map_err(Error::internal)?.saturating_add(1);
        verify_run(&self.prev, first, std::slice::from_ref(&e))
            .map_err(|seq| refused(format!("the firm's audit chain in the archive is broken at event {seq}")))?;
        self.prev = e.hash.clone();
        self.count += 1;
        Ok(e)
    }
}
