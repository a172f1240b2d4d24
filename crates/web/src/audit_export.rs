//! Audit exports on the wire: JSON lines or CSV, streamed a page of events at a time as the
//! export reads them, never held whole in memory.

use crate::api::dto::{AuditEventView, ts};
use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use portcullis_core::audit::StoredEvent;
use portcullis_core::audit::search::ExportFormat;
use portcullis_core::service::AuditExport;
use std::borrow::Cow;

/// The CSV columns, in order.
const CSV_HEADER: [&str; 11] =
    ["seq", "at", "actor", "action", "target", "matter", "ip", "request_id", "detail", "prev_hash", "hash"];

/// A cell as written to CSV. Spreadsheets run a cell that starts with `=`, `+`, `-` or `@` as a
/// formula (and some also after a leading tab or carriage return), which a value an outsider
/// can influence could abuse (CSV or formula injection). Such a cell gets a leading `'`, which
/// spreadsheets show as text; the JSON lines export keeps every value as stored.
pub fn csv_cell(v: &str) -> Cow<'_, str> {
    if v.starts_with(['=', '+', '-', '@', '\t', '\r']) { Cow::Owned(format!("'{v}")) } else { Cow::Borrowed(v) }
}

fn csv_record(e: &StoredEvent) -> [String; 11] {
    [
        e.seq.to_string(),
        ts(e.at),
        e.actor.clone(),
        e.action.clone(),
        e.target.clone(),
        e.matter.clone().unwrap_or_default(),
        e.ip.clone().unwrap_or_default(),
        e.request_id.clone().unwrap_or_default(),
        e.detail.clone(),
        e.prev_hash.clone(),
        e.hash.clone(),
    ]
}

/// Write rows as CSV (quoted and escaped by the `csv` crate, each cell guarded).
fn csv_rows<'a, I: IntoIterator<Item = &'a str>>(rows: impl IntoIterator<Item = I>) -> std::io::Result<Bytes> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in rows {
        w.write_record(row.into_iter().map(csv_cell).map(|c| c.into_owned()))?;
    }
    w.into_inner().map(Bytes::from).map_err(|e| std::io::Error::other(e.to_string()))
}

/// One page of events in the export's format.
fn encode(format: ExportFormat, events: &[StoredEvent]) -> std::io::Result<Bytes> {
    match format {
        ExportFormat::Jsonl => {
            let mut out = Vec::new();
            for e in events {
                serde_json::to_writer(&mut out, &AuditEventView::from(e))?;
                out.push(b'\n');
            }
            Ok(Bytes::from(out))
        }
        ExportFormat::Csv => {
            let records: Vec<[String; 11]> = events.iter().map(csv_record).collect();
            csv_rows(records.iter().map(|r| r.iter().map(String::as_str)))
        }
    }
}

/// The download: headers, then the events as the export reads them. A failure part-way ends
/// the stream with an error, so the client sees a broken-off download rather than a short one
/// that looks complete.
pub fn response(export: AuditExport) -> Response {
    let format = export.format();
    let (content_type, name) = match format {
        ExportFormat::Jsonl => ("application/x-ndjson", "audit.jsonl"),
        ExportFormat::Csv => ("text/csv; charset=utf-8", "audit.csv"),
    };
    let header_row = match format {
        ExportFormat::Csv => Some(csv_rows([CSV_HEADER])),
        ExportFormat::Jsonl => None,
    };
    let pages = futures::stream::try_unfold(export, |mut export| async move {
        Ok::<_, portcullis_core::Error>(export.next_page().await?.map(|events| (events, export)))
    })
    .map(move |page| match page {
        Ok(events) => encode(format, &events),
        Err(e) => {
            tracing::error!(error = %e, "an audit export failed part-way");
            Err(std::io::Error::other("the export failed"))
        }
    });
    let body = futures::stream::iter(header_row).chain(pages);
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_defused_and_others_kept() {
        for bad in ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"] {
            assert_eq!(csv_cell(bad), format!("'{bad}"));
        }
        for fine in ["user:1", "auth.login", "{\"a\":1}", "", "1", "a=b"] {
            assert_eq!(csv_cell(fine), fine);
        }
        let out = csv_rows([["a,b", "say \"hi\"", "=cmd", "line\nbreak"]]).unwrap();
        assert_eq!(&out[..], b"\"a,b\",\"say \"\"hi\"\"\",'=cmd,\"line\nbreak\"\n");
    }
}
