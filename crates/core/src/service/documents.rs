//! Documents: streamed in, streamed out, never held whole in memory.

use super::{NewAlert, Portal, actor};
use crate::audit::{Action, NewEvent, RequestMeta, Target};
use crate::crypto::stream::{self, DocCipher, Header};
use crate::error::{Error, Result};
use crate::ids::{DocumentId, MatterId};
use crate::inspect::{Detected, Inspection, Inspector};
use crate::model::{AlertKind, Document, Severity, blob_key};
use crate::policy::Principal;
use crate::policy::can;
use crate::ports::ByteStream;
use crate::validate;
use aws_lc_rs::digest;
use futures::StreamExt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// A byte range as a client asks for it (RFC 9110 `bytes=` forms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `first-last`, both inclusive.
    FromTo(u64, u64),
    /// `first-`.
    From(u64),
    /// `-n`: the last n bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Resolve against a document size into a half-open range, or refuse it.
    pub fn resolve(self, size: u64) -> Result<Range<u64>> {
        let r = match self {
            ByteRange::FromTo(a, b) if a <= b && a < size => a..(b.saturating_add(1)).min(size),
            ByteRange::From(a) if a < size => a..size,
            ByteRange::Suffix(n) if n > 0 && size > 0 => size.saturating_sub(n)..size,
            _ => return Err(Error::RangeNotSatisfiable { size }),
        };
        Ok(r)
    }
}

/// A download: the document, the range served (if partial), and the bytes.
pub struct Download {
    pub document: Document,
    pub range: Option<Range<u64>>,
    pub body: ByteStream,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download").field("document", &self.document).field("range", &self.range).finish()
    }
}

/// Counts and hashes plaintext as it streams past, and stops the stream past a size limit.
pub(super) struct Meter {
    bytes: u64,
    limit: u64,
    over_limit: bool,
    sha256: digest::Context,
    /// Reads the type and text of an upload as it passes; `None` for copies of stored documents.
    inspector: Option<Inspector>,
    /// The prefix already showed a type that is never accepted: the stream was stopped there.
    refused_early: Option<Detected>,
}

/// The reading end of a [`Meter`], for after the stream has run.
pub(super) struct MeterResult(Arc<Mutex<Meter>>);

impl Meter {
    /// Meter `body`, failing it once more than `limit` bytes pass.
    pub(super) fn wrap(body: ByteStream, limit: u64) -> (ByteStream, MeterResult) {
        Self::wrap_with(body, limit, None)
    }

    /// Meter `body` and inspect it (type and DLP scan) as it passes.
    pub(super) fn wrap_inspected(body: ByteStream, limit: u64) -> (ByteStream, MeterResult) {
        Self::wrap_with(body, limit, Some(Inspector::new()))
    }

    fn wrap_with(body: ByteStream, limit: u64, inspector: Option<Inspector>) -> (ByteStream, MeterResult) {
        let meter = Arc::new(Mutex::new(Meter {
            bytes: 0,
            limit,
            over_limit: false,
            sha256: digest::Context::new(&digest::SHA256),
            inspector,
            refused_early: None,
        }));
        let m = meter.clone();
        let metered = body.map(move |chunk| {
            let chunk = chunk?;
            let mut m = m.lock().map_err(|_| std::io::Error::other("meter lock poisoned"))?;
            m.bytes = m.bytes.saturating_add(chunk.len() as u64);
            if m.bytes > m.limit {
                m.over_limit = true;
                return Err(std::io::Error::other("the stream exceeds the size limit"));
            }
            m.sha256.update(&chunk);
            if let Some(i) = m.inspector.as_mut() {
                i.feed(&chunk);
                if let Some(d) = i.refused_early() {
                    m.refused_early = Some(d);
                    return Err(std::io::Error::other("the upload is of a type never accepted"));
                }
            }
            Ok(chunk)
        });
        (Box::pin(metered), MeterResult(meter))
    }
}

impl MeterResult {
    /// Bytes seen and their hex SHA-256; `TooLarge` if the limit was passed.
    pub(super) fn result(&self) -> Result<(u64, String)> {
        let m = self.0.lock().map_err(|_| Error::internal("meter lock poisoned"))?;
        if m.over_limit {
            return Err(Error::TooLarge { limit: m.limit });
        }
        Ok((m.bytes, hex::encode(m.sha256.clone().finish().as_ref())))
    }

    /// A type never accepted, seen in the prefix (the stream was stopped there).
    pub(super) fn refused_early(&self) -> Result<Option<Detected>> {
        let m = self.0.lock().map_err(|_| Error::internal("meter lock poisoned"))?;
        Ok(m.refused_early.clone())
    }

    /// What the inspector made of the whole upload.
    pub(super) fn inspection(&self) -> Result<Option<Inspection>> {
        let mut m = self.0.lock().map_err(|_| Error::internal("meter lock poisoned"))?;
        Ok(m.inspector.take().map(Inspector::finish))
    }
}

impl Portal {
    /// The matter's documents, newest first. Their names are client content: audited
    /// (`document.list`) in the same transaction, failing if the event cannot be written.
    pub async fn list_documents(&self, p: &Principal, matter: MatterId, meta: &RequestMeta) -> Result<Vec<Document>> {
        Ok(self.list_flagged_documents(p, matter, meta).await?.into_iter().map(|f| f.document).collect())
    }

    /// The matter's documents with their DLP flags, newest first; documents the policy hides
    /// from the caller (held or blocked from clients, for a client) are left out.
    pub async fn list_flagged_documents(
        &self,
        p: &Principal,
        matter: MatterId,
        meta: &RequestMeta,
    ) -> Result<Vec<super::FlaggedDocument>> {
        let mut tx = self.write().await?;
        let grant = self.grant_matter::<can::ListDocuments>(&mut *tx, p, matter).await?;
        let documents = tx.documents().list_documents(&grant).await?;
        let mut flags: std::collections::HashMap<DocumentId, crate::model::DocumentFlag> =
            tx.documents().matter_flags(&grant).await?.into_iter().map(|f| (f.document_id, f)).collect();
        let documents: Vec<super::FlaggedDocument> = documents
            .into_iter()
            .map(|d| super::FlaggedDocument { flag: flags.remove(&d.id), document: d })
            .filter(|f| crate::policy::flagged_document(p, f.flag.as_ref().map(|x| x.state), false).is_ok())
            .collect();
        let detail = serde_json::json!({ "count": documents.len() });
        self.audit_matter_read(&mut *tx, p, Action::DocumentList, matter, detail, meta).await?;
        tx.commit().await?;
        Ok(documents)
    }

    /// Stream a document in. It becomes visible only when every byte is stored and its record
    /// and audit event are committed; an interrupted or oversized upload leaves nothing.
    pub async fn upload_document(
        &self,
        p: &Principal,
        matter: MatterId,
        name: &str,
        content_type: Option<&str>,
        body: ByteStream,
        meta: &RequestMeta,
    ) -> Result<Document> {
        let name = validate::file_name(name)?;
        // Ask the policy before reading a single byte.
        let (key_version, tenant_key, settings) = {
            let mut tx = self.read().await?;
            self.grant_matter::<can::UploadDocument>(&mut *tx, p, matter).await?;
            let (v, k) = self.tenant_key(&mut *tx, p.tenant_id, None).await?;
            (v, k, self.protection_in(&mut *tx, p.tenant_id).await?)
        };
        let id = DocumentId::new();
        let header = Header::new(key_version)?;
        let cipher = DocCipher::new(tenant_key.expose(), &header, p.tenant_id, matter, id)?;
        let key = blob_key(p.tenant_id, id, "");
        let (body, meter) = Meter::wrap_inspected(body, self.settings.max_upload_bytes);
        let stored = self.blobs.put(&key, stream::encrypt(cipher, &header, body)).await;
        if let Some(detected) = meter.refused_early()? {
            let _ = self.blobs.delete(&key).await;
            return Err(self.refuse_upload(p, matter, &detected, &settings, meta).await);
        }
        let (size, sha256) = meter.result()?;
        let written = stored?;
        if written != stream::stored_len(size) {
            let _ = self.blobs.delete(&key).await;
            return Err(Error::internal(format!("blob store wrote {written} of {size} bytes")));
        }
        let inspection = meter.inspection()?.ok_or_else(|| Error::internal("the upload was not inspected"))?;
        let kind = match inspection.detected {
            Detected::Kind(k) if settings.allowed.contains(&k) => k,
            other => {
                let _ = self.blobs.delete(&key).await;
                return Err(self.refuse_upload(p, matter, &other, &settings, meta).await);
            }
        };
        let doc = Document {
            id,
            tenant_id: p.tenant_id,
            matter_id: matter,
            // Served under an extension of what it really is, whatever it was called.
            name: crate::inspect::stored_name(&name, kind),
            size,
            // The type the content showed, not the one declared.
            content_type: validate::content_type(Some(kind.mime())),
            sha256,
            uploaded_by: p.user_id,
            created_at: self.clock.now(),
            key_version,
            blob_rev: String::new(),
        };
        // From here on the work runs in its own task: if the client goes away now, the record is
        // still committed, or the stored bytes still removed, instead of being left half-done.
        let _ = content_type;
        let flag = Self::flag_for(&settings, &doc, kind, &inspection.findings, inspection.unscanned);
        let (this, p, meta, d) = (self.clone(), p.clone(), meta.clone(), doc.clone());
        let finish = tokio::spawn(async move {
            let committed = async {
                let mut tx = this.write().await?;
                // Ask again inside the writing transaction: access may have changed during a long upload.
                let grant = this.grant_matter::<can::UploadDocument>(&mut *tx, &p, matter).await?;
                tx.documents().insert_document(&grant, &d).await?;
                let ev =
                    NewEvent::new(Some(p.tenant_id), actor(&p), Action::DocumentUpload, Target::Document(id), &meta)
                        .with_detail(serde_json::json!({
                            "matter": matter.to_string(),
                            "size": size,
                            "type": kind.as_str(),
                            "dlp": flag.as_ref().map(|f| f.state.as_str()),
                            "unscanned": inspection.unscanned,
                        }))
                        .on_matter(matter);
                tx.audit().append_audit(&ev, d.created_at).await?;
                if let Some(f) = &flag {
                    this.record_flag(&mut *tx, &grant, &p, f, &meta).await?;
                }
                tx.commit().await
            }
            .await;
            if committed.is_err()
                && let Err(del) = this.blobs.delete(&key).await
            {
                tracing::error!(error = %del, key, "could not remove the blob of a failed upload");
            }
            committed
        });
        finish.await.map_err(Error::internal)??;
        Ok(doc)
    }

    /// Audit a refused upload (its type, never its name or content) and build the error.
    async fn refuse_upload(
        &self,
        p: &Principal,
        matter: MatterId,
        detected: &Detected,
        settings: &super::Protection,
        meta: &RequestMeta,
    ) -> Error {
        let refusal = Error::UnsupportedFileType { detected: detected.describe(), allowed: settings.allowed_names() };
        let audited = async {
            let mut tx = self.write().await?;
            let ev =
                NewEvent::new(Some(p.tenant_id), actor(p), Action::DocumentUploadRefused, Target::Matter(matter), meta)
                    .with_detail(serde_json::json!({ "matter": matter.to_string(), "detected": detected.describe() }))
                    .on_matter(matter);
            tx.audit().append_audit(&ev, self.clock.now()).await?;
            tx.commit().await
        }
        .await;
        match audited {
            Ok(()) => refusal,
            Err(e) => e,
        }
    }

    /// Stream a document out, whole or a byte range. Every download is audited before any byte
    /// leaves: if the audit event cannot be written, nothing is served.
    pub async fn download_document(
        &self,
        p: &Principal,
        id: DocumentId,
        range: Option<ByteRange>,
        meta: &RequestMeta,
    ) -> Result<Download> {
        let mut tx = self.write().await?;
        let grant = self.grant_document::<can::ReadDocument>(&mut *tx, p, id).await?;
        let doc = tx.documents().document(&grant, id).await?.ok_or(Error::NotFound)?;
        let flag = tx.documents().document_flag(&grant, id).await?;
        crate::policy::flagged_document(p, flag.map(|f| f.state), true)?;
        self.check_downloads(&mut *tx, p).await?;
        let range = range.map(|r| r.resolve(doc.size)).transpose()?;
        // Count the download into the user's baseline; one that crosses the line pauses the
        // user's downloads (recorded, so it is committed) and is refused itself.
        let served = range.as_ref().map_or(doc.size, |r| r.end.saturating_sub(r.start));
        if self.observe_download(&mut *tx, p, served, meta, self.clock.now()).await? {
            tx.commit().await?;
            return Err(Error::DownloadsPaused);
        }
        let mut tx = self.count_download(tx, p, &doc, served, meta).await?;
        let ev = NewEvent::new(Some(p.tenant_id), actor(p), Action::DocumentDownload, Target::Document(id), meta)
            .with_detail(serde_json::json!({
                "matter": doc.matter_id.to_string(),
                "range": range.as_ref().map(|r| format!("{}-{}", r.start, r.end.saturating_sub(1))),
            }))
            .on_matter(doc.matter_id);
        tx.audit().append_audit(&ev, self.clock.now()).await?;
        tx.commit().await?;
        let opened = match self.open_document(&doc, range.clone()).await {
            // A key rotation may have switched the document to a new copy and deleted the old one
            // between reading the row and opening the copy: open the copy now in use instead.
            Err(first) => match self.read().await?.documents().document(&grant, id).await? {
                Some(now) if now.blob_rev != doc.blob_rev => self.open_document(&now, range.clone()).await,
                _ => Err(first),
            },
            ok => ok,
        };
        match opened {
            Ok(body) => Ok(Download { document: doc, range, body }),
            Err(e @ Error::Integrity(_)) => {
                let mut tx = self.write().await?;
                let ev = NewEvent::new(
                    Some(p.tenant_id),
                    actor(p),
                    Action::DocumentIntegrityFailure,
                    Target::Document(id),
                    meta,
                )
                .with_detail(serde_json::json!({ "error": e.to_string() }))
                .on_matter(doc.matter_id);
                let now = self.clock.now();
                tx.audit().append_audit(&ev, now).await?;
                let alert = NewAlert::new(
                    AlertKind::IntegrityFailure,
                    Severity::Critical,
                    Some(p.tenant_id),
                    format!("document:{id}"),
                    "A stored document failed its integrity check and was not served",
                )
                .with_detail(serde_json::json!({
                    "document": id.to_string(),
                    "matter": doc.matter_id.to_string(),
                    "error": e.to_string(),
                }));
                self.raise_alert_in(&mut *tx, &alert, now).await?;
                tx.commit().await?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Decrypt a stored document (or a plaintext range of it), reading only the chunks the range
    /// needs. The first chunk is checked before anything is returned, so damage there is an
    /// error rather than a response that breaks off; damage further on ends the stream with an
    /// error, never with wrong bytes.
    pub(super) async fn open_document(&self, doc: &Document, range: Option<Range<u64>>) -> Result<ByteStream> {
        let key = doc.blob_key();
        // A stored object of the wrong length was truncated or extended: refuse it up front.
        if self.blobs.size(&key).await? != stream::stored_len(doc.size) {
            return Err(Error::Integrity("the stored document has the wrong length".into()));
        }
        let mut head = Vec::with_capacity(stream::HEADER_LEN);
        let mut h = self.blobs.get(&key, Some(0..stream::HEADER_LEN as u64)).await?;
        while let Some(part) = h.next().await {
            head.extend_from_slice(&part.map_err(Error::internal)?);
        }
        let header = Header::parse(&head)?;
        let (_, tenant_key) = {
            let mut tx = self.read().await?;
            self.tenant_key(&mut *tx, doc.tenant_id, Some(header.key_version)).await?
        };
        let cipher = DocCipher::new(tenant_key.expose(), &header, doc.tenant_id, doc.matter_id, doc.id)?;
        if doc.size == 0 {
            // Nothing to stream, but the final (empty) chunk is still authenticated.
            let mut tag = bytes::BytesMut::new();
            let mut s = self.blobs.get(&key, Some(stream::HEADER_LEN as u64..stream::stored_len(0))).await?;
            while let Some(part) = s.next().await {
                tag.extend_from_slice(&part.map_err(Error::internal)?);
            }
            cipher.open(0, true, &mut tag)?;
            if !tag.is_empty() {
                return Err(Error::Integrity("an empty document holds data".into()));
            }
            return Ok(Box::pin(futures::stream::empty()));
        }
        let plain = range.unwrap_or(0..doc.size);
        let (stored, first, skip) = stream::locate(&plain, doc.size);
        let last = u32::try_from(stream::chunk_count(doc.size) - 1).map_err(Error::internal)?;
        let body = self.blobs.get(&key, Some(stored)).await?;
        let mut out = stream::decrypt(cipher, body, first, last, skip, plain.end - plain.start);
        match out.next().await {
            None => Ok(Box::pin(futures::stream::empty())),
            Some(Ok(b)) => Ok(Box::pin(futures::stream::once(async move { Ok(b) }).chain(out))),
            Some(Err(e)) => Err(match e.into_inner().map(|i| i.downcast::<Error>()) {
                Some(Ok(domain)) => *domain,
                Some(Err(other)) => Error::internal(other),
                None => Error::internal("reading the document failed"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_like_rfc_9110() {
        assert_eq!(ByteRange::FromTo(0, 9).resolve(100).unwrap(), 0..10);
        assert_eq!(ByteRange::FromTo(90, 200).resolve(100).unwrap(), 90..100);
        assert_eq!(ByteRange::From(50).resolve(100).unwrap(), 50..100);
        assert_eq!(ByteRange::Suffix(10).resolve(100).unwrap(), 90..100);
        assert_eq!(ByteRange::Suffix(500).resolve(100).unwrap(), 0..100);
        assert!(ByteRange::From(100).resolve(100).is_err());
        assert!(ByteRange::FromTo(5, 4).resolve(100).is_err());
        assert!(ByteRange::Suffix(0).resolve(100).is_err());
        assert!(ByteRange::Suffix(1).resolve(0).is_err());
    }
}
