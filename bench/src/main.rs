//! `cargo run --release -p portcullis-bench -- crypto [MiB]`: the document format's streaming
//! encrypt and decrypt throughput against the raw single-core AES-256-GCM rate of the same
//! library sealing 64 KiB buffers in place, with `openssl speed` as a second reference.
#![forbid(unsafe_code)]

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use bytes::Bytes;
use futures::StreamExt;
use portcullis_core::crypto::stream::{self, CHUNK, DocCipher, Header};
use portcullis_core::ids::{DocumentId, MatterId, TenantId};
use portcullis_core::ports::ByteStream;
use std::time::Instant;

const KEY: [u8; 32] = [42; 32];

fn gbps(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs / 1e9
}

/// Raw rate: seal `n` 64 KiB buffers in place with one key (distinct nonces), one core.
fn raw_seal(n: usize) -> Result<f64, String> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &KEY).map_err(|e| e.to_string())?);
    let mut buf = vec![7u8; CHUNK];
    let start = Instant::now();
    for i in 0..n {
        let mut nonce = [0u8; 12];
        nonce.iter_mut().skip(4).zip((i as u64).to_be_bytes()).for_each(|(d, s)| *d = s);
        let tag = key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(b"aad"), &mut buf)
            .map_err(|e| e.to_string())?;
        let _ = std::hint::black_box(tag);
    }
    Ok(gbps(n * CHUNK, start.elapsed().as_secs_f64()))
}

/// Raw rate of opening `n` distinct sealed 64 KiB buffers in memory (the same memory traffic as
/// decrypting a stored document, which a single hot buffer would hide).
fn raw_open(n: usize) -> Result<f64, String> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &KEY).map_err(|e| e.to_string())?);
    let nonce = |i: usize| {
        let mut n = [0u8; 12];
        n.iter_mut().skip(4).zip((i as u64).to_be_bytes()).for_each(|(d, s)| *d = s);
        Nonce::assume_unique_for_key(n)
    };
    let mut sealed = Vec::with_capacity(n);
    for i in 0..n {
        let mut buf = vec![7u8; CHUNK];
        key.seal_in_place_append_tag(nonce(i), Aad::from(b"aad"), &mut buf).map_err(|e| e.to_string())?;
        sealed.push(buf);
    }
    let start = Instant::now();
    for (i, buf) in sealed.iter_mut().enumerate() {
        let plain = key.open_in_place(nonce(i), Aad::from(b"aad"), buf).map_err(|e| e.to_string())?;
        let _ = std::hint::black_box(plain.len());
    }
    Ok(gbps(n * CHUNK, start.elapsed().as_secs_f64()))
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

async fn format_rates(n: usize) -> Result<(f64, f64), String> {
    let (t, m, d) = (TenantId::new(), MatterId::new(), DocumentId::new());
    let header = Header::new(1).map_err(|e| e.to_string())?;
    let cipher = || DocCipher::new(&KEY, &header, t, m, d).map_err(|e| e.to_string());

    // Encryption, output discarded (as it streams to the document store).
    let start = Instant::now();
    drain(stream::encrypt(cipher()?, &header, plaintext(n))).await?;
    let enc = gbps(n * CHUNK, start.elapsed().as_secs_f64());

    // Decryption of ciphertext already in memory, in stored-size pieces (untimed preparation).
    let mut sealed = stream::encrypt(cipher()?, &header, plaintext(n)).skip(1);
    let mut parts: Vec<std::io::Result<Bytes>> = Vec::with_capacity(n);
    while let Some(c) = sealed.next().await {
        parts.push(Ok(c.map_err(|e| e.to_string())?));
    }
    let size = (n * CHUNK) as u64;
    let last = u32::try_from(stream::chunk_count(size) - 1).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let out = stream::decrypt(cipher()?, Box::pin(futures::stream::iter(parts)), 0, last, 0, size);
    let got = drain(out).await?;
    let dec = gbps(got, start.elapsed().as_secs_f64());
    if got != n * CHUNK {
        return Err(format!("decrypted {got} bytes, expected {}", n * CHUNK));
    }
    Ok((enc, dec))
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
    if args.next().as_deref() != Some("crypto") {
        eprintln!("usage: portcullis-bench crypto [MiB (default 2048)]");
        return std::process::ExitCode::FAILURE;
    }
    let mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2048);
    let n = mib * 1024 * 1024 / CHUNK;
    let rt = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = (|| -> Result<(), String> {
        // Warm up once, then measure.
        raw_seal(n / 8)?;
        let raw = raw_seal(n)?;
        let (enc, dec) = rt.block_on(format_rates(n))?;
        let raw_dec = raw_open(n)?;
        println!("data: {mib} MiB in 64 KiB chunks, one core");
        println!("raw aws-lc-rs AES-256-GCM seal in place : {raw:6.2} GB/s");
        println!("document format encrypt (stream)       : {enc:6.2} GB/s ({:.0}% of raw)", enc / raw * 100.0);
        println!("raw aws-lc-rs open of {mib} MiB in memory : {raw_dec:6.2} GB/s");
        println!("document format decrypt (stream)       : {dec:6.2} GB/s ({:.0}% of raw open)", dec / raw_dec * 100.0);
        println!("openssl speed -evp aes-256-gcm, 64 KiB blocks (bytes/s in thousands):\n{}", openssl_reference());
        Ok(())
    })();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
