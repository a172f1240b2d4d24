//! `portcullis-bench inspect [MiB] [rounds] [kind]`: how fast an upload is inspected on one core — the
//! type check from magic bytes, the text extraction (PDF content streams inflated), and the DLP
//! scan — for the kinds of upload that take each path. Uploads are inspected as they stream, on
//! the same task that encrypts them, so these rates set how much the controls can slow an upload
//! next to the encryption rate (`crypto`).

use flate2::Compression;
use flate2::write::ZlibEncoder;
use portcullis_core::inspect::{Detected, Inspector};
use std::io::Write;
use std::time::Instant;

/// Uploads arrive in pieces about this size.
const PIECE: usize = 64 * 1024;

/// A line of case notes, and every 40th line one holding an identifier, so the scanner checks
/// candidates as well as skipping prose.
fn prose_line(i: usize) -> String {
    match i % 40 {
        0 => format!("Payment taken on card 4111 1111 1111 1111 for invoice {i}.\n"),
        10 => "Refund to GB82 WEST 1234 5698 7654 32 agreed by the client.\n".to_owned(),
        20 => "Client's National Insurance number is AB 12 34 56 C, checked.\n".to_owned(),
        _ => format!("Meeting {i}: the client confirmed the completion date and the deposit of the sale.\n"),
    }
}

fn text(bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes + 128);
    let mut i = 0;
    while out.len() < bytes {
        out.extend_from_slice(prose_line(i).as_bytes());
        i += 1;
    }
    out
}

/// Digit-heavy rows: the worst case for detectors that look at runs of digits.
fn csv(bytes: usize) -> Vec<u8> {
    let mut out = b"reference,amount,date,account,sort_code\n".to_vec();
    let mut i = 0u64;
    while out.len() < bytes {
        let row = format!(
            "M-{i:06},{}.{:02},2026-11-{:02},{:08},{:02}-{:02}-{:02}\n",
            i * 37 % 100_000,
            i % 100,
            i % 28 + 1,
            i * 7919 % 100_000_000,
            i % 100,
            i * 3 % 100,
            i * 7 % 100
        );
        out.extend_from_slice(row.as_bytes());
        i += 1;
    }
    out
}

/// A PDF of pages whose content streams are Flate-compressed text, as word processors write them.
fn pdf(bytes: usize) -> Result<Vec<u8>, String> {
    let mut out = b"%PDF-1.7\n".to_vec();
    let mut i = 0;
    while out.len() < bytes {
        let mut content = String::from("BT /F1 10 Tf 72 760 Td 12 TL\n");
        for _ in 0..60 {
            content.push_str(&format!("({}) '\n", prose_line(i).trim_end()));
            i += 1;
        }
        content.push_str("ET");
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(content.as_bytes()).map_err(|e| e.to_string())?;
        let z = z.finish().map_err(|e| e.to_string())?;
        out.extend_from_slice(format!("{i} 0 obj<</Length {}/Filter/FlateDecode>>stream\n", z.len()).as_bytes());
        out.extend_from_slice(&z);
        out.extend_from_slice(b"\nendstream\nendobj\n");
    }
    out.extend_from_slice(b"trailer<<>>\n%%EOF\n");
    Ok(out)
}

/// An image: recognised from its first bytes, nothing else read.
fn png(bytes: usize) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90\x77\x53\xde".to_vec();
    out.resize(bytes, 0x5a);
    out
}

/// Inspect `data` in upload-sized pieces; GB/s, and what was found (to check the work was done).
fn inspect(data: &[u8]) -> (f64, Detected, u32) {
    let start = Instant::now();
    let mut ins = Inspector::new();
    data.chunks(PIECE).for_each(|p| ins.feed(p));
    let found = ins.finish();
    let secs = start.elapsed().as_secs_f64();
    (data.len() as f64 / secs / 1e9, found.detected, found.findings.values().sum())
}

/// The kinds measured, each made on demand.
type Make = fn(usize) -> Result<Vec<u8>, String>;
const KINDS: [(&str, Make); 4] = [
    ("text (case notes)", |n| Ok(text(n))),
    ("CSV (digit-heavy)", |n| Ok(csv(n))),
    ("PDF (Flate text)", pdf),
    ("PNG image", |n| Ok(png(n))),
];

/// With `only` (the start of a kind's name, e.g. `text`), just that kind: one kind per run is
/// what `valgrind --tool=callgrind` needs to count a kind's instructions alone.
pub fn run(mib: usize, rounds: usize, only: Option<&str>) -> Result<(), String> {
    let bytes = mib * 1024 * 1024;
    println!("data: {mib} MiB per kind in 64 KiB pieces, one core, median of {rounds} rounds");
    for (name, make) in KINDS.iter().filter(|(name, _)| only.is_none_or(|o| name.starts_with(o))) {
        let data = make(bytes)?;
        let mut rates = Vec::with_capacity(rounds);
        let mut last = None;
        for _ in 0..rounds {
            let (rate, detected, found) = inspect(&data);
            rates.push(rate);
            last = Some((detected, found));
        }
        let (med, lo, hi) = crate::summary(rates);
        let (detected, found) = last.ok_or("no rounds")?;
        println!("{name:<20}: {med:6.3} GB/s (range {lo:.3}-{hi:.3}), {detected:?}, {found} identifiers found");
    }
    Ok(())
}
