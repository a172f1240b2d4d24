//! `portcullis tenant end|reactivate|status|certificate|verify-certificate|import`: the
//! subscription lifecycle and a firm's move between installations on the command line, run
//! against the database like the other tenant commands.

use crate::config::Config;
use crate::server;
use portcullis_core::clock::Clock;
use portcullis_core::service::SubscriptionStatus;
use std::path::Path;
use std::sync::Arc;

/// What to do with a tenant's subscription.
#[derive(Clone, Copy, Debug)]
pub enum Change {
    End,
    Reactivate,
    Status,
}

/// A domain error as the command line says it, naming the tenant when it is unknown.
fn refusal(name: &str, e: portcullis_core::Error) -> anyhow::Error {
    match e {
        portcullis_core::Error::NotFound => anyhow::anyhow!("no tenant is named {name:?}"),
        portcullis_core::Error::Internal(d) => anyhow::anyhow!("internal error: {d}"),
        other => anyhow::anyhow!("{}", other.public_message()),
    }
}

fn when(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// The status lines `tenant status` (and end and reactivate) print.
pub fn describe(s: &SubscriptionStatus) -> String {
    let mut out = format!("tenant {} ({}): {}\n", s.name, s.tenant_id, s.status);
    if let Some(t) = s.ended_at {
        out.push_str(&format!("ended at: {}\n", when(t)));
    }
    if let Some(t) = s.destroy_after {
        out.push_str(&format!("data destroyed after: {}\n", when(t)));
    }
    if let Some(e) = &s.erasure {
        out.push_str(&format!(
            "erasure: {} requested by {} at {}\n",
            e.reason.as_str(),
            e.requested_by,
            when(e.requested_at)
        ));
        if let Some(by) = &e.approved_by {
            out.push_str(&format!("approved by: {by}\n"));
        }
        if let Some(t) = e.finished_at {
            out.push_str(&format!("destroyed at: {}\n", when(t)));
        }
        match e.synced_to_backups_at {
            Some(t) => out.push_str(&format!("applied to backups at: {}\n", when(t))),
            None if e.finished_at.is_some() => out.push_str("applied to backups: not yet\n"),
            None => {}
        }
    }
    out
}

/// End, reactivate or show a tenant's subscription.
pub async fn change(cfg: &Config, clock: Arc<dyn Clock>, name: &str, what: Change) -> anyhow::Result<()> {
    let (portal, store) = server::portal(cfg, clock).await?;
    let result = match what {
        Change::End => portal.end_subscription_cli(name).await,
        Change::Reactivate => portal.reactivate_subscription_cli(name).await,
        Change::Status => portal.subscription_status_cli(name).await,
    };
    store.close().await;
    print!("{}", describe(&result.map_err(|e| refusal(name, e))?));
    Ok(())
}

/// Print (or write to `out`) a destroyed tenant's signed erasure certificate.
pub async fn certificate(cfg: &Config, clock: Arc<dyn Clock>, name: &str, out: Option<&Path>) -> anyhow::Result<()> {
    let (portal, store) = server::portal(cfg, clock).await?;
    let record = portal.erasure_record_cli(name).await;
    store.close().await;
    let record = record.map_err(|e| match e {
        portcullis_core::Error::NotFound => anyhow::anyhow!("no erased tenant is named {name:?}"),
        other => refusal(name, other),
    })?;
    let Some(cert) = record.certificate else {
        anyhow::bail!("the erasure of {name:?} has not finished yet; its certificate is issued when it does");
    };
    match out {
        Some(path) => {
            std::fs::write(path, cert.as_bytes())?;
            println!("certificate written to {}", path.display());
        }
        None => println!("{cert}"),
    }
    Ok(())
}

/// Check a certificate file offline against a public key file (hex, as `audit-signing.pub`).
pub fn verify(cfg: &Config, file: &Path, public_key: Option<&Path>) -> anyhow::Result<()> {
    let trusted = crate::audit_key::trusted(cfg, public_key)?;
    let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
    let body = portcullis_core::crypto::certificate::verify(&text, &trusted)
        .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.public_message()))?;
    let field = |k: &str| body.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
    println!(
        "certificate verified: tenant {} ({}) erased ({}) at {}",
        field("tenant_name"),
        field("tenant_id"),
        field("reason"),
        field("finished_at")
    );
    Ok(())
}

/// `portcullis tenant import`: a firm's export archive, opened with the identity it was
/// encrypted to, into a new tenant named `name` (see `service::import`). Prints what was made
/// and every imported user's one-time set-password link.
pub async fn import(
    cfg: &Config,
    clock: Arc<dyn Clock>,
    archive: &Path,
    identity: &Path,
    name: &str,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use secrecy::ExposeSecret;
    let identity = crate::backup::identity(identity)?;
    let file = std::fs::File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let size = file.metadata().with_context(|| format!("reading {}", archive.display()))?.len();
    let bar = crate::backup::progress::bytes(true, "importing", size);
    let input = bar.wrap_read(file);
    let (portal, store) = server::portal(cfg, clock).await?;
    let cli = portcullis_core::service::cli_principal(portcullis_core::ids::TenantId::new());
    let meta = portcullis_core::audit::RequestMeta::default();
    let done = portal.import_tenant(&cli, name, input, identity, &meta).await;
    store.close().await;
    bar.finish_and_clear();
    let r = done.map_err(|e| match e {
        portcullis_core::Error::Internal(d) => anyhow::anyhow!("import refused, nothing imported: internal error: {d}"),
        other => anyhow::anyhow!("import refused, nothing imported: {}", other.public_message()),
    })?;
    println!(
        "tenant {} imported: {} (from {} {}, export {})",
        r.name, r.tenant_id, r.source_name, r.source_tenant_id, r.export_id
    );
    println!(
        "users: {}, matters: {}, documents: {} ({} bytes), messages: {}, audit events replayed: {}",
        r.users, r.matters, r.documents, r.document_bytes, r.messages, r.audit_events
    );
    let days = portcullis_core::service::IMPORT_LINK_TTL.whole_days();
    println!("one-time set-password links (valid {days} days; hand each only to its user):");
    for l in &r.links {
        println!("{}\t{}\t{}", l.email, l.role.as_str(), l.link.expose_secret());
    }
    Ok(())
}
