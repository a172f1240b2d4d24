//! `cargo run --release -p portcullis-bench -- crypto [MiB] [rounds]`: the document format's
//! streaming encrypt and decrypt throughput against the raw single-core AES-256-GCM rate of the
//! same library sealing 64 KiB buffers in place, with `openssl speed` as a second reference.
//! Every measurement is repeated (5 rounds by default) and the medians are compared, since other
//! work on the machine makes single runs vary.
//!
//! `cargo run --release -p portcullis-bench -- inspect [MiB] [rounds] [kind]`: upload inspection
//! (type check, text extraction, DLP scan) per kind of upload; see `inspect.rs`.
#![forbid(unsafe_code)]

mod inspect;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use portcullis_core::crypto::stream::{self, CHUNK, DocCipher, Header, TAG};
use portcullis_core::ids::{DocumentId, MatterId, TenantId};
use portcullis_core::ports::ByteStream;
use std::time::Instant;

const KEY: [u8; 32] = [42; 32];

fn gbps(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs / 1e9
}

fn raw_key() -> Result<LessSafeKey, String> {
    Ok(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &KEY).map_err(|e| e.to_string())?))
}

fn raw_nonce(i: usize) -> Nonce {
    let mut n = [0u8; 12];
    n.iter_mut().skip(4).zip((i as u64).to_be_bytes()).for_each(|(d, s)| *d = s);
    Nonce::assume_unique_for_key(n)
}

/// Raw rate: seal `n` 64 KiB buffers in place with one key (distinct nonces), one core.
fn raw_seal(n: usize) -> Result<f64, String> {
    let key = raw_key()?;
    let mut buf = vec![7u8; CHUNK];
    let start = Instant::now();
    for i in 0..n {
        let tag =
            key.seal_in_place_separate_tag(raw_nonce(i), Aad::from(b"aad"), &mut buf).map_err(|e| e.to_string())?;
        let _ = std::hint::black_box(tag);
    }
    Ok(gbps(n * CHUNK, start.elapsed().as_secs_f64()))
}

/// `n` buffers of one plaintext chunk each, with room for the tag, one after another on the heap.
fn chunk_buffers(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| {
            let mut buf = Vec::with_capacity(CHUNK + TAG);
            buf.resize(CHUNK, 7);
            buf
        })
        .collect()
}

/// Raw rate of opening the sealed 64 KiB buffers `bufs` in place (sealing them is not timed),
/// leaving their plaintext.
fn raw_open(bufs: &mut [Vec<u8>]) -> Result<f64, String> {
    let key = raw_key()?;
    for (i, buf) in bufs.iter_mut().enumerate() {
        key.seal_in_place_append_tag(raw_nonce(i), Aad::from(b"aad"), buf).map_err(|e| e.to_string())?;
    }
    let start = Instant::now();
    for (i, buf) in bufs.iter_mut().enumerate() {
        let plain = key.open_in_place(raw_nonce(i), Aad::from(b"aad"), buf).map_err(|e| e.to_string())?;
        let _ = std::hint::black_box(plain.len());
    }
    for buf in bufs.iter_mut() {
        buf.truncate(CHUNK);
    }
    Ok(gbps(bufs.len() * CHUNK, start.elapsed().as_secs_f64()))
}

/// Format decryption rate of the buffers `bufs`, sealed as a document's chunks (not timed) and
/// streamed to `stream::decrypt` as stored-size pieces; returns the rate and the buffers, now
/// plaintext again, for the raw measurement to reuse. With `hold`, the plaintext chunks (the
/// pieces, opened in place) are kept until the clock stops, as `raw_open` keeps its buffers;
/// without, each is freed as it comes, as a download frees it, and the buffers are not returned.
async fn format_decrypt(bufs: Vec<Vec<u8>>, hold: bool) -> Result<(f64, Vec<Vec<u8>>), String> {
    let ids = (TenantId::new(), MatterId::new(), DocumentId::new());
    let header = Header::new(1).map_err(|e| e.to_string())?;
    let sealer = cipher(&header, ids)?;
    let n = bufs.len();
    let mut parts: Vec<std::io::Result<Bytes>> = Vec::with_capacity(n);
    for (i, buf) in bufs.into_iter().enumerate() {
        let mut chunk = BytesMut::from(Bytes::from(buf));
        let index = u32::try_from(i).map_err(|e| e.to_string())?;
        sealer.seal(index, i + 1 == n, &mut chunk).map_err(|e| e.to_string())?;
        parts.push(Ok(chunk.freeze()));
    }
    let size = (n * CHUNK) as u64;
    let last = u32::try_from(stream::chunk_count(size) - 1).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut out = stream::decrypt(cipher(&header, ids)?, Box::pin(futures::stream::iter(parts)), 0, last, 0, size);
    let (mut got, mut held) = (0, Vec::with_capacity(if hold { n } else { 0 }));
    while let Some(c) = out.next().await {
        let c = c.map_err(|e| e.to_string())?;
        got += c.len();
        if hold {
            held.push(c);
        }
    }
    let dec = gbps(got, start.elapsed().as_secs_f64());
    drop(out);
    if got != n * CHUNK {
        return Err(format!("decrypted {got} bytes, expected {}", n * CHUNK));
    }
    Ok((dec, held.into_iter().map(|b| Vec::from(BytesMut::from(b))).collect()))
}

fn plaintext(n: usize) -> ByteStream {
    let chunk = Bytes::from(vec![7u8; CHUNK]);
    Box::pin(futures::stream::iter((0..n).map(move |_| Ok(chunk.clone()))))
}

async fn drain(mut s: ByteStream) -> Result<usize, String> {
    let mut total = 0;
    while let Some(c) = s.next().await {
        total += c.map_err(|e| e.to_string())?.len();
    }
    Ok(total)
}

fn cipher(header: &Header, ids: (TenantId, MatterId, DocumentId)) -> Result<DocCipher, String> {
    DocCipher::new(&KEY, header, ids.0, ids.1, ids.2).map_err(|e| e.to_string())
}

/// Format encryption rate, output discarded (as it streams to the document store).
async fn format_encrypt(n: usize) -> Result<f64, String> {
    let ids = (TenantId::new(), MatterId::new(), DocumentId::new());
    let header = Header::new(1).map_err(|e| e.to_string())?;
    let start = Instant::now();
    drain(stream::encrypt(cipher(&header, ids)?, &header, plaintext(n))).await?;
    Ok(gbps(n * CHUNK, start.elapsed().as_secs_f64()))
}

/// Median, lowest and highest of some rates.
pub(crate) fn summary(mut rates: Vec<f64>) -> (f64, f64, f64) {
    rates.sort_by(f64::total_cmp);
    let at = |i: usize| rates.get(i).copied().unwrap_or(f64::NAN);
    (at(rates.len() / 2), at(0), at(rates.len().saturating_sub(1)))
}

fn openssl_reference() -> String {
    match std::process::Command::new("openssl")
        .args(["speed", "-seconds", "2", "-bytes", "65536", "-evp", "aes-256-gcm"])
        .output()
    {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.starts_with("AES-256-GCM") || l.starts_with("aes-256-gcm"))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => "openssl not available".into(),
    }
}

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let which = args.next();
    let mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2048);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5).max(1);
    match which.as_deref() {
        Some("crypto") => {}
        Some("inspect") => return exit(inspect::run(mib.min(1024), rounds, args.next().as_deref())),
        _ => {
            eprintln!(
                "usage: portcullis-bench crypto|inspect [MiB (default 2048; inspect at most 1024)] [rounds (default 5)]"
            );
            return std::process::ExitCode::FAILURE;
        }
    }
    let n = mib * 1024 * 1024 / CHUNK;
    let rt = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = (|| -> Result<(), String> {
        // Warm up once, then measure. Each round times every side once, each format side right
        // next to its reference, alternating which goes first, so that load from other work on
        // the machine falls on both sides alike; the medians are compared.
        raw_seal(n / 8)?;
        let (mut raw, mut enc, mut dec, mut dec_held, mut raw_dec) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            // The raw open and the format's decryption work on the very same buffers, one after
            // the other, so that neither gets memory laid out or placed differently.
            let mut bufs = chunk_buffers(n);
            if round % 2 == 0 {
                raw.push(raw_seal(n)?);
                enc.push(rt.block_on(format_encrypt(n))?);
                let (rate, back) = rt.block_on(format_decrypt(bufs, true))?;
                dec_held.push(rate);
                bufs = back;
                raw_dec.push(raw_open(&mut bufs)?);
            } else {
                enc.push(rt.block_on(format_encrypt(n))?);
                raw.push(raw_seal(n)?);
                raw_dec.push(raw_open(&mut bufs)?);
                let (rate, back) = rt.block_on(format_decrypt(bufs, true))?;
                dec_held.push(rate);
                bufs = back;
            }
            // Freeing each chunk as it comes, on fresh buffers (these are given up).
            drop(bufs);
            dec.push(rt.block_on(format_decrypt(chunk_buffers(n), false))?.0);
        }
        let [raw, enc, dec, dec_held, raw_dec] = [raw, enc, dec, dec_held, raw_dec].map(summary);
        let line = |name: &str, (med, lo, hi): (f64, f64, f64)| {
            println!("{name:<41}: {med:6.2} GB/s (range {lo:.2}-{hi:.2})");
        };
        println!("data: {mib} MiB in 64 KiB chunks, one core, median of {rounds} rounds");
        line("raw aws-lc-rs AES-256-GCM seal in place", raw);
        line("document format encrypt (stream)", enc);
        println!("  encrypt: {:.0}% of raw seal", enc.0 / raw.0 * 100.0);
        line(&format!("raw aws-lc-rs open of {mib} MiB in memory"), raw_dec);
        line("document format decrypt (stream)", dec_held);
        println!("  decrypt: {:.0}% of raw open of the same buffers", dec_held.0 / raw_dec.0 * 100.0);
        line("  the same, each chunk freed as it comes", dec);
        println!("openssl speed -evp aes-256-gcm, 64 KiB blocks (bytes/s in thousands):\n{}", openssl_reference());
        Ok(())
    })();
    exit(result)
}

fn exit(result: Result<(), String>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
