//! The firm's protective settings on the security page (owners and admins): the upload
//! allow-list, the DLP action per detector, the daily download cap, the networks users may sign
//! in from, and the documents held for review. Each form calls the same service as the API, so
//! the step-up, validation and audit are the API's; a setting the service refuses is shown with
//! its reason and nothing is saved.

use super::security::security_page;
use crate::AppState;
use crate::error::UiError;
use crate::extract::{CsrfForm, Meta, UiAction, UiCaller, UiPath};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_core::dlp::Detector;
use portcullis_core::ids::DocumentId;
use portcullis_core::inspect::FileKind;
use portcullis_core::service::{DlpAction, DownloadCap, Protection};
use portcullis_core::{Error, Result};
use std::collections::BTreeMap;

type Page = std::result::Result<Response, UiError>;

/// The actions a detector can be set to, in the order the form offers them.
const ACTIONS: [DlpAction; 4] = [DlpAction::Allow, DlpAction::Warn, DlpAction::BlockClients, DlpAction::Quarantine];

/// Bytes in the MiB the form counts the byte cap in.
const MIB: u64 = 1 << 20;

/// The firm's protective settings as the security page shows them, ready for its forms.
pub struct ProtectionRows {
    /// Every file type, and whether uploads of it are accepted.
    pub(super) kinds: Vec<(&'static str, bool)>,
    /// Per detector: its name, its label, and each action with whether it is the current one.
    pub(super) detectors: Vec<DetectorRow>,
    /// The cap's fields as typed: empty for no cap.
    pub(super) cap_downloads: String,
    pub(super) cap_mib: String,
    /// One network a line.
    pub(super) networks: String,
    /// Held documents: document id, matter id, findings.
    pub(super) held: Vec<(String, String, String)>,
}

pub struct DetectorRow {
    pub(super) name: &'static str,
    pub(super) label: String,
    pub(super) actions: Vec<(&'static str, bool)>,
}

pub(super) async fn protection_rows(s: &AppState, c: &UiCaller) -> Result<ProtectionRows> {
    let p = s.portal.protection(&c.principal).await?;
    let held = s.portal.held_documents(&c.principal).await?;
    let text = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
    Ok(ProtectionRows {
        kinds: FileKind::ALL.iter().map(|k| (k.as_str(), p.allowed.contains(k))).collect(),
        detectors: Detector::ALL
            .iter()
            .map(|d| DetectorRow {
                name: d.as_str(),
                label: d.as_str().replace('_', " "),
                actions: ACTIONS.iter().map(|a| (a.as_str(), *a == p.action(*d))).collect(),
            })
            .collect(),
        cap_downloads: text(p.download_cap.downloads),
        cap_mib: text(p.download_cap.bytes.map(|b| b.div_ceil(MIB))),
        networks: p.sign_in_networks.join("\n"),
        held: held.iter().map(|f| (f.document_id.to_string(), f.matter_id.to_string(), f.findings.clone())).collect(),
    })
}

/// A form whose fields repeat (checkboxes) or are named after detectors, kept as its pairs.
pub struct PairsForm {
    csrf: String,
    pairs: Vec<(String, String)>,
}

impl CsrfForm for PairsForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }

    fn parse(body: &str) -> Result<Self> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(body).map_err(|e| Error::invalid("form", e.to_string()))?;
        let csrf = pairs.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.clone()).unwrap_or_default();
        Ok(Self { csrf, pairs })
    }
}

impl PairsForm {
    /// Every value of `key`, in order.
    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> {
        self.pairs.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The one value of `key`, trimmed; empty when absent.
    fn one<'a>(&'a self, key: &'a str) -> &'a str {
        self.all(key).next().map_or("", str::trim)
    }

    /// Pairs whose key starts with `prefix`, with the prefix taken off.
    fn prefixed<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.pairs.iter().filter_map(move |(k, v)| Some((k.strip_prefix(prefix)?, v.as_str())))
    }
}

/// An optional positive count typed in a form: empty means none.
fn count(form: &PairsForm, field: &'static str) -> Result<Option<u64>> {
    match form.one(field) {
        "" => Ok(None),
        v => v.parse().map(Some).map_err(|_| Error::invalid(field, format!("{v:?} is not a whole number"))),
    }
}

/// The page again after a change: a notice saying it was saved, or the service's reason for
/// refusing it (400, nothing saved). Refusals the user fixes elsewhere (a step-up, a missing
/// permission) keep their own handling.
async fn after_change(s: &AppState, c: &UiCaller, result: Result<Protection>, saved: &str) -> Page {
    match result {
        Ok(_) => Ok(security_page(s, c, Some(saved.into())).await?.into_response()),
        Err(e @ Error::Invalid { .. }) => {
            Ok((StatusCode::BAD_REQUEST, security_page(s, c, Some(e.public_message())).await?).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// Save the upload allow-list: the ticked file types.
pub async fn set_uploads(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiAction { caller: c, form }: UiAction<PairsForm>,
) -> Page {
    let allowed: Vec<String> = form.all("allowed").map(str::to_owned).collect();
    let result = s.portal.set_upload_policy(&c.principal, &allowed, &meta).await;
    after_change(&s, &c, result, "The accepted file types were saved.").await
}

/// Save the DLP action per detector and the daily download cap.
pub async fn set_dlp(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiAction { caller: c, form }: UiAction<PairsForm>,
) -> Page {
    let result = async {
        let mut detectors = BTreeMap::new();
        for (name, action) in form.prefixed("dlp.") {
            let action = ACTIONS
                .into_iter()
                .find(|a| a.as_str() == action)
                .ok_or_else(|| Error::invalid("action", format!("unknown action {action:?}")))?;
            detectors.insert(Detector::parse(name)?.as_str().to_owned(), action);
        }
        let mib = count(&form, "cap_mib")?;
        let bytes = mib
            .map(|m| m.checked_mul(MIB).ok_or_else(|| Error::invalid("cap_mib", "the byte cap is too large")))
            .transpose()?;
        let cap = DownloadCap { downloads: count(&form, "cap_downloads")?, bytes };
        s.portal.set_dlp_policy(&c.principal, detectors, cap, &meta).await
    }
    .await;
    after_change(&s, &c, result, "The data loss prevention settings were saved.").await
}

/// Save the networks the firm's users may sign in from: one CIDR range a line (commas and
/// spaces also separate); an empty list allows every network.
pub async fn set_networks(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiAction { caller: c, form }: UiAction<PairsForm>,
) -> Page {
    let networks: Vec<String> = form
        .one("networks")
        .split(|ch: char| ch == ',' || ch.is_whitespace())
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    let result = s.portal.set_network_access(&c.principal, &networks, &meta).await;
    after_change(&s, &c, result, "The sign-in networks were saved.").await
}

/// Release a document held for review.
pub async fn release(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiPath(id): UiPath<DocumentId>,
    UiAction { caller: c, .. }: UiAction<super::pages::CsrfOnly>,
) -> Page {
    s.portal.release_document(&c.principal, id, &meta).await?;
    Ok(security_page(&s, &c, Some("The document was released.".into())).await?.into_response())
}

/// Delete a document held for review.
pub async fn discard(
    State(s): State<AppState>,
    Meta(meta): Meta,
    UiPath(id): UiPath<DocumentId>,
    UiAction { caller: c, .. }: UiAction<super::pages::CsrfOnly>,
) -> Page {
    s.portal.discard_document(&c.principal, id, &meta).await?;
    Ok(security_page(&s, &c, Some("The held document was deleted.".into())).await?.into_response())
}
