//! The `portcullis` command.

use crate::config::{Config, read_secret_file};
use crate::server;
use anyhow::Context;
use clap::{Parser, Subcommand};
use portcullis_core::audit::{Actor, RequestMeta};
use portcullis_core::clock::SystemClock;
use portcullis_core::service::cli_principal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(name = "portcullis", version, about = "The Portcullis client-data portal")]
pub struct Cli {
    /// TOML configuration file (default: none; `PORTCULLIS_CONFIG` also works).
    #[arg(long, global = true, env = "PORTCULLIS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve HTTPS until SIGTERM or Ctrl-C.
    Serve,
    /// Bring the database schema up to date and exit.
    Migrate,
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Tenant (subscriber) management.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// User management.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Encryption keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The audit log's tamper evidence: signed checkpoints and verification.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Platform operators (the service's own staff): vetting, roles, API tokens.
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// Backups: encrypted, signed, made while the server keeps serving (see docs/backups.md).
    Backup {
        #[command(subcommand)]
        command: BackupCommand,
    },
}

#[derive(Subcommand, Debug)]
enum BackupCommand {
    /// Make a backup now (kind `manual`, never pruned by the schedule) in `backup_target`.
    Create,
    /// List the backups in the target, oldest first.
    List,
    /// Check a backup without restoring it: the manifest's signature and the archive's size and
    /// SHA-256. With --identity, also decrypt it, check every entry against the manifest, and
    /// check that every tenant's keyring holds the keys its data needs.
    Verify {
        /// The backup's id (see `backup list`).
        id: String,
        /// The age identity file (AGE-SECRET-KEY-1...) matching `backup_recipient`.
        #[arg(long)]
        identity: Option<PathBuf>,
        /// The trusted signing public key (hex); default: the `.pub` beside the audit signing key.
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
    /// Restore a backup into the configured database and data directory, which must be empty
    /// (stop every node first). Checks the whole backup before writing anything; tenants with
    /// an erasure record in the target are left out.
    Restore {
        id: String,
        /// The age identity file matching the recipient the backup was made for.
        #[arg(long)]
        identity: PathBuf,
        /// The trusted signing public key (hex); default: the `.pub` beside the audit signing key.
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// Restore over a database or documents directory that is not empty: once every check
        /// has passed, every table of the database is dropped (its rows are lost) and the
        /// documents directory is moved aside to `documents.before-restore-*` (kept).
        #[arg(long)]
        force: bool,
    },
    /// Carry a tenant's erasure to the backup target: store its erasure certificate as
    /// `erasures/<tenant>.json` and delete `keyring/<tenant>.age`, so no backup opens its data.
    ApplyErasure {
        #[arg(long)]
        tenant: String,
        /// The signed erasure certificate (JSON).
        #[arg(long)]
        certificate: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum OperatorCommand {
    /// Add an operator (no role yet).
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
    },
    /// Record a background check: who did it, on which day, and until which day it holds.
    Vet {
        #[arg(long)]
        email: String,
        #[arg(long)]
        checked_by: String,
        /// YYYY-MM-DD.
        #[arg(long)]
        checked_on: String,
        /// YYYY-MM-DD (exclusive).
        #[arg(long)]
        valid_until: String,
    },
    /// Grant `support` or `privileged` (privileged needs a current vetting record).
    Grant {
        #[arg(long)]
        email: String,
        #[arg(long)]
        role: String,
    },
    /// Make an API token for the platform API (shown once).
    Token {
        #[arg(long)]
        email: String,
        #[arg(long, default_value_t = 7)]
        days: i64,
    },
    /// End every platform API token of an operator.
    RevokeTokens {
        #[arg(long)]
        email: String,
    },
    /// List operators, their roles and vetting.
    List,
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Show every tenant key: purpose, version, age and the master key that wraps it.
    Status,
    /// Replace the master key: every tenant key is re-wrapped under a new one (documents and
    /// fields are not re-encrypted). Safe to interrupt; run again to finish. Needs a request
    /// approved by two privileged operators (four eyes), unless the configuration turns that off.
    RotateMaster {
        /// The id of the approved request (`POST /api/v1/platform/approvals`, then approved by
        /// a second operator). Not needed to finish an interrupted rotation.
        #[arg(long)]
        approval: Option<String>,
    },
    /// Give a tenant a new data key version, used for new writes at once, and re-encrypt its
    /// documents and fields still under older versions. Safe to interrupt: run again to resume,
    /// or let a running node resume it.
    RotateTenant {
        #[arg(long)]
        tenant: String,
        /// Only start the rotation; running nodes re-encrypt in the background.
        #[arg(long)]
        no_wait: bool,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Sign a checkpoint of every chain that grew since its last one (servers do this every
    /// `audit_checkpoint_secs`).
    Checkpoint,
    /// Check every chain from its first event: links, hashes and checkpoint signatures. Exits
    /// non-zero, naming the first broken event, if anything was edited, deleted, reordered,
    /// inserted, or cut back past a checkpoint.
    Verify {
        /// Only this tenant's chain.
        #[arg(long)]
        tenant: Option<String>,
        /// The trusted public key file (hex lines); default: the `.pub` beside the signing key.
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Validate the configuration and print the effective values, secrets redacted.
    Check,
}

#[derive(Subcommand, Debug)]
enum TenantCommand {
    /// Create a tenant and its owner. Prints the tenant id and a one-time link for the owner to
    /// choose a password, unless a password file is given.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        owner_email: String,
        /// File holding the owner's password (must not be readable by other users).
        #[arg(long)]
        owner_password_file: Option<PathBuf>,
    },
    /// End a tenant's subscription: its users are signed out and cannot sign in; its data is
    /// kept for `retention_days`, then destroyed.
    End { name: String },
    /// Reactivate an ended subscription: full access again, nothing lost (sessions and API
    /// tokens from before stay revoked).
    Reactivate { name: String },
    /// Where a tenant's subscription stands (also for destroyed tenants, from the ledger).
    Status { name: String },
    /// Print a destroyed tenant's signed erasure certificate.
    Certificate {
        name: String,
        /// Write it to this file instead.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Import a firm's export archive into a new tenant (see docs/export.md). Everything is
    /// checked before the import commits; a refused archive leaves nothing behind.
    Import {
        /// The export archive (`.age`), as the firm's owner downloaded it.
        archive: PathBuf,
        /// The age identity file (`AGE-SECRET-KEY-1...`) the export was encrypted to; it must
        /// not be readable by other users.
        #[arg(long)]
        identity: PathBuf,
        /// The new tenant's name.
        #[arg(long)]
        name: String,
    },
    /// Check an erasure certificate offline with the signing key's public half.
    VerifyCertificate {
        file: PathBuf,
        /// The public key file (hex); default: the one beside this node's signing key.
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create a user in a tenant; prints a one-time link unless a password file is given.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        /// admin, staff or client.
        #[arg(long, default_value = "staff")]
        role: String,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// List a tenant's users.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Deactivate a user: they cannot sign in, and their sessions and API tokens end at once.
    Deactivate {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
    },
    /// Let a deactivated user sign in again (from the command line at once: the machine's
    /// holder needs no second approver, so a firm locked out of its last admin can recover).
    Reactivate {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
    },
}

/// Parse arguments, run, and turn errors into a message and exit status 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let cfg = Config::load(cli.config.as_deref())?;
    let clock = Arc::new(SystemClock);
    match cli.command {
        Command::Config { command: ConfigCommand::Check } => {
            // The webhook signing secrets are read too, so a missing or weak one shows here.
            crate::alerts::webhooks(&cfg, clock.clone())?;
            println!("# configuration is valid; effective values (secrets redacted):");
            print!("{}", cfg.redacted_toml()?);
            Ok(())
        }
        Command::Migrate => {
            let (_, store) = server::portal(&cfg, clock).await?;
            store.close().await;
            println!("database schema is up to date");
            Ok(())
        }
        Command::Serve => serve(cfg, clock).await,
        Command::Tenant { command: TenantCommand::Create { name, owner_email, owner_password_file } } => {
            let pw = owner_password_file.as_deref().map(read_secret_file).transpose()?;
            let (portal, store) = server::portal(&cfg, clock).await?;
            let (id, link) = portal.create_tenant(&name, &owner_email, pw).await.map_err(domain)?;
            store.close().await;
            println!("tenant {name} created: {id}");
            match link {
                Some(l) => println!("owner set-up link (one use, valid 1 hour): {l}"),
                None => println!("owner password set; sign in at {}/login", cfg.public_url()),
            }
            Ok(())
        }
        Command::Tenant { command: TenantCommand::End { name } } => {
            crate::lifecycle_cli::change(&cfg, clock, &name, crate::lifecycle_cli::Change::End).await
        }
        Command::Tenant { command: TenantCommand::Reactivate { name } } => {
            crate::lifecycle_cli::change(&cfg, clock, &name, crate::lifecycle_cli::Change::Reactivate).await
        }
        Command::Tenant { command: TenantCommand::Status { name } } => {
            crate::lifecycle_cli::change(&cfg, clock, &name, crate::lifecycle_cli::Change::Status).await
        }
        Command::Tenant { command: TenantCommand::Certificate { name, out } } => {
            crate::lifecycle_cli::certificate(&cfg, clock, &name, out.as_deref()).await
        }
        Command::Tenant { command: TenantCommand::Import { archive, identity, name } } => {
            crate::lifecycle_cli::import(&cfg, clock, &archive, &identity, &name).await
        }
        Command::Tenant { command: TenantCommand::VerifyCertificate { file, public_key } } => {
            crate::lifecycle_cli::verify(&cfg, &file, public_key.as_deref())
        }
        Command::User { command: UserCommand::Create { tenant, email, role, name, password_file } } => {
            let pw = password_file.as_deref().map(read_secret_file).transpose()?;
            let (portal, store) = server::portal(&cfg, clock).await?;
            let t = portal.tenant_by_name(&tenant).await.map_err(domain)?;
            let (u, link) = portal
                .create_user(&cli_principal(t.id), &email, &name, &role, pw, &RequestMeta::default())
                .await
                .map_err(domain)?;
            store.close().await;
            println!("user {} created: {} ({})", u.email, u.id, u.role.as_str());
            if let Some(l) = link {
                println!("set-up link (one use): {l}");
            }
            Ok(())
        }
        Command::Keys { command: KeysCommand::Status } => {
            let (portal, store) = server::portal(&cfg, clock.clone()).await?;
            let rows = portal.key_status().await.map_err(domain)?;
            let now = portcullis_core::clock::Clock::now(clock.as_ref());
            let rotations = portal.rotation_status().await.map_err(domain)?;
            store.close().await;
            println!("master key in use: {}", portal.master_key_id());
            println!("tenant\tpurpose\tversion\tage_days\twrapped_by");
            let mut names = std::collections::HashMap::new();
            for r in rows {
                let name = r.tenant.map(|t| t.name).unwrap_or_else(|| r.key.tenant_id.to_string());
                let age = (now - r.key.created_at).whole_days();
                println!("{name}\t{}\t{}\t{age}\t{}", r.key.purpose.as_str(), r.key.version, r.key.key_id);
                names.insert(r.key.tenant_id, name);
            }
            if !rotations.is_empty() {
                println!("\nnewest tenant-key rotation per tenant:");
                println!(
                    "tenant\tto_version\tstate\tstarted\tdocuments_done\tfields_done\tdocuments_left\tfields_left"
                );
            }
            for s in rotations {
                let r = &s.rotation;
                let state = if r.finished_at.is_some() { "finished" } else { "open" };
                let started = r.started_at.format(&time::format_description::well_known::Rfc3339)?;
                println!(
                    "{}\t{}\t{state}\t{started}\t{}\t{}\t{}\t{}",
                    names.get(&r.tenant_id).cloned().unwrap_or_else(|| r.tenant_id.to_string()),
                    r.target_version,
                    r.documents_done,
                    r.fields_done,
                    s.documents_left,
                    s.fields_left
                );
            }
            Ok(())
        }
        Command::Keys { command: KeysCommand::RotateMaster { approval } } => {
            // A new rotation spends its approval before the new key exists; finishing an
            // interrupted one needs none (its approval was spent when it began).
            // The approval goes into the change record; a resumed rotation's was recorded as
            // spent (`platform.approval_used`) when it began, and its record names none.
            let mut allowed_by = None;
            if !crate::master_key::rotation_in_progress(&cfg) {
                let (portal, store) = server::portal(&cfg, clock.clone()).await?;
                let spent = spend_rotation_approval(&cfg, &portal, approval.as_deref()).await;
                store.close().await;
                allowed_by = spent?;
            }
            crate::master_key::begin_rotation(&cfg)?;
            failpoint("after-new-key");
            let (portal, store) = server::portal(&cfg, clock).await?;
            let (rewrapped, total) = portal
                .rewrap_tenant_keys(&RequestMeta::default(), allowed_by.as_ref(), &failpoint)
                .await
                .map_err(domain)?;
            // A second pass catches keys a running node created meanwhile with the old key.
            let (late, _) = portal
                .rewrap_tenant_keys(&RequestMeta::default(), allowed_by.as_ref(), &|_| {})
                .await
                .map_err(domain)?;
            let rewrapped = rewrapped + late;
            store.close().await;
            failpoint("after-commit");
            crate::master_key::finish_rotation(&cfg, &failpoint)?;
            println!(
                "master key rotated: {rewrapped} of {total} tenant keys re-wrapped; now {}",
                portal.master_key_id()
            );
            println!("restart every running Portcullis node now, so they load the new key");
            println!(
                "the previous key is kept in {}: move it offline; backups made before today still need it",
                crate::master_key::key_file(&cfg).with_extension("key.previous").display()
            );
            Ok(())
        }
        Command::Audit { command: AuditCommand::Checkpoint } => {
            let signer = crate::audit_key::load(&cfg)?;
            let (portal, store) = server::portal(&cfg, clock).await?;
            let made = portal.checkpoint_audit(&signer).await.map_err(domain);
            store.close().await;
            println!("signed {} checkpoint(s) with key {}", made?, signer.key_id());
            Ok(())
        }
        Command::Audit { command: AuditCommand::Verify { tenant, public_key } } => {
            let trusted = crate::audit_key::trusted(&cfg, public_key.as_deref())?;
            let (portal, store) = server::portal(&cfg, clock).await?;
            let reports = portal.verify_audit(tenant.as_deref(), &trusted).await.map_err(domain);
            store.close().await;
            print_verification(&reports?)
        }
        Command::Keys { command: KeysCommand::RotateTenant { tenant, no_wait } } => {
            let (portal, store) = server::portal(&cfg, clock).await?;
            let result = rotate_tenant(&portal, &tenant, no_wait).await;
            store.close().await;
            result
        }
        Command::Operator { command } => {
            let (portal, store) = server::portal(&cfg, clock).await?;
            let result = operator(&portal, command).await;
            store.close().await;
            result
        }
        Command::Backup { command } => backup(&cfg, clock, command).await,
        Command::User { command: UserCommand::Deactivate { tenant, email } } => {
            let (portal, store) = server::portal(&cfg, clock).await?;
            let (cli, user) = user_by_email(&portal, &tenant, &email).await?;
            let result = portal.deactivate_user(&cli, user, &RequestMeta::default()).await.map_err(domain);
            store.close().await;
            result?;
            println!("user {email} deactivated: their sessions and API tokens were ended");
            Ok(())
        }
        Command::User { command: UserCommand::Reactivate { tenant, email } } => {
            let (portal, store) = server::portal(&cfg, clock).await?;
            let (cli, user) = user_by_email(&portal, &tenant, &email).await?;
            let result = portal.reactivate_user(&cli, user, &RequestMeta::default()).await.map_err(domain);
            store.close().await;
            result?;
            println!("user {email} reactivated");
            Ok(())
        }
        Command::User { command: UserCommand::List { tenant } } => {
            let (portal, store) = server::portal(&cfg, clock).await?;
            let t = portal.tenant_by_name(&tenant).await.map_err(domain)?;
            let users = portal.list_users(&cli_principal(t.id)).await.map_err(domain)?;
            store.close().await;
            for u in users {
                println!("{}\t{}\t{}\t{}", u.id, u.email, u.role.as_str(), u.status.as_str());
            }
            Ok(())
        }
    }
}

/// The command line's principal in the firm named `tenant`, and the id of its user `email`.
async fn user_by_email(
    portal: &portcullis_core::service::Portal,
    tenant: &str,
    email: &str,
) -> anyhow::Result<(portcullis_core::policy::Principal, portcullis_core::ids::UserId)> {
    let t = portal.tenant_by_name(tenant).await.map_err(domain)?;
    let cli = cli_principal(t.id);
    let users = portal.list_users(&cli).await.map_err(domain)?;
    let wanted = email.trim().to_lowercase();
    let user = users
        .iter()
        .find(|u| u.email.to_lowercase() == wanted)
        .ok_or_else(|| anyhow::anyhow!("firm {tenant} has no user {email}"))?;
    Ok((cli, user.id))
}

async fn backup(cfg: &Config, clock: Arc<SystemClock>, command: BackupCommand) -> anyhow::Result<()> {
    use crate::backup;
    let target = backup::target(cfg)?;
    match command {
        BackupCommand::Create => {
            let recipient = backup::recipient(cfg)?;
            let signer = crate::audit_key::load(cfg)?;
            let (portal, store) = server::portal(cfg, clock).await?;
            let blobs = crate::object_stores::documents(cfg)?;
            let node = cfg.node_id();
            let job = backup::Job {
                portal: &portal,
                store: &store,
                blobs: &blobs,
                target: &target,
                recipient: &recipient,
                signer: &signer,
                node: &node,
                actor: portcullis_core::audit::Actor::Cli,
                show_progress: true,
            };
            let made = backup::create(&job, backup::Kind::Manual).await;
            if let Err(e) = &made
                && let Err(a) =
                    portal.backup_failed(portcullis_core::audit::Actor::Cli, "manual", &format!("{e:#}")).await
            {
                eprintln!("warning: recording the failure failed too: {a}");
            }
            store.close().await;
            let made = made?;
            println!(
                "backup {} made in {}: {} entries, {} bytes, SHA-256 {}",
                made.id,
                target.shown(),
                made.entries,
                made.archive.size,
                made.archive.sha256
            );
            Ok(())
        }
        BackupCommand::List => {
            println!("id\tkind\tcreated\tsize\tschema\tnode");
            for l in backup::list(&target).await? {
                match l.signed.as_ref().map(|s| (s, s.about())) {
                    Some((s, Ok(a))) => println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        l.id,
                        a.kind.as_str(),
                        s.manifest.created_at,
                        s.archive.size,
                        a.schema_version,
                        a.node
                    ),
                    _ => println!("{}\t(unreadable manifest)\t-\t-\t-\t-", l.id),
                }
            }
            Ok(())
        }
        BackupCommand::Verify { id, identity, public_key } => {
            let trusted = crate::audit_key::trusted(cfg, public_key.as_deref())?;
            let identity = identity.as_deref().map(backup::identity).transpose()?;
            let v = backup::verify(&target, &id, &trusted, identity.as_ref(), true).await?;
            println!("backup {id}: manifest signature valid; archive {} bytes, SHA-256 matches", v.signed.archive.size);
            if v.decrypted {
                println!(
                    "backup {id}: decrypted; all {} entries match the manifest; keyrings of {} tenant(s) hold every key \
                     needed{}",
                    v.signed.manifest.entries.len(),
                    v.keyrings.len(),
                    if v.erased.is_empty() {
                        String::new()
                    } else {
                        format!("; erased, left out: {}", v.erased.join(", "))
                    }
                );
            } else {
                println!("(contents not checked: pass --identity to decrypt and check every entry)");
            }
            Ok(())
        }
        BackupCommand::Restore { id, identity, public_key, force } => {
            let trusted = crate::audit_key::trusted(cfg, public_key.as_deref())?;
            let identity = backup::identity(&identity)?;
            let report = backup::restore(cfg, &target, &id, &trusted, &identity, force, true).await?;
            let (portal, store) = server::portal(cfg, clock).await?;
            let detail = serde_json::json!({
                "rows": report.rows,
                "documents": report.blobs,
                "erased_tenants_left_out": report.skipped_tenants,
                "forced": force,
            });
            let audited = portal
                .audit_backup(
                    portcullis_core::audit::Actor::Cli,
                    portcullis_core::audit::Action::BackupRestore,
                    portcullis_core::audit::Target::Backup(id.to_string()),
                    detail,
                )
                .await;
            store.close().await;
            audited.map_err(domain)?;
            println!("backup {id} restored: {} rows, {} documents", report.rows, report.blobs);
            if !report.skipped_tenants.is_empty() {
                println!("left out (erased): {}", report.skipped_tenants.join(", "));
            }
            if let Some(aside) = report.moved_documents {
                println!("the documents that were there before were moved to {}", aside.display());
            }
            Ok(())
        }
        BackupCommand::ApplyErasure { tenant, certificate } => {
            let tenant = tenant.parse().map_err(|_| anyhow::anyhow!("--tenant: {tenant:?} is not a tenant id"))?;
            let cert = std::fs::read(&certificate).with_context(|| format!("reading {}", certificate.display()))?;
            target.apply_erasure(tenant, &cert).await?;
            println!("erasure of tenant {tenant} applied to {}", target.shown());
            Ok(())
        }
    }
}

/// A day given as YYYY-MM-DD, at midnight UTC.
fn day(field: &str, s: &str) -> anyhow::Result<time::OffsetDateTime> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s, &format).with_context(|| format!("--{field}: {s:?} is not a YYYY-MM-DD date"))?;
    Ok(d.midnight().assume_utc())
}

async fn operator(portal: &portcullis_core::service::Portal, command: OperatorCommand) -> anyhow::Result<()> {
    match command {
        OperatorCommand::Add { email, name } => {
            let op = portal.add_operator(&email, &name).await.map_err(domain)?;
            println!("operator {} added: {}", op.email, op.id);
        }
        OperatorCommand::Vet { email, checked_by, checked_on, valid_until } => {
            let v = portal
                .record_vetting(&email, &checked_by, day("checked-on", &checked_on)?, day("valid-until", &valid_until)?)
                .await
                .map_err(domain)?;
            println!("vetting of {email} recorded: checked by {}, valid until {}", v.checked_by, v.valid_until.date());
        }
        OperatorCommand::Grant { email, role } => {
            portal.grant_operator_role(&email, &role).await.map_err(domain)?;
            println!("{email} now has the {role} role");
        }
        OperatorCommand::Token { email, days } => {
            use secrecy::ExposeSecret;
            let t = portal.operator_token(&email, days).await.map_err(domain)?;
            println!("{}", t.expose_secret());
            eprintln!("platform API token for {email}, valid {days} days: shown once, store it safely");
        }
        OperatorCommand::RevokeTokens { email } => {
            let n = portal.revoke_operator_tokens(&email).await.map_err(domain)?;
            println!("{n} platform API tokens of {email} ended");
        }
        OperatorCommand::List => {
            println!("email\troles\tvetting_valid_until\tvetted_by");
            for o in portal.list_operators().await.map_err(domain)? {
                let roles: Vec<String> = o
                    .grants
                    .iter()
                    .map(|g| match g.suspended_at {
                        Some(_) => format!("{}(suspended)", g.role.as_str()),
                        None => g.role.as_str().to_string(),
                    })
                    .collect();
                let (until, by) = o
                    .vetting
                    .map(|v| (v.valid_until.date().to_string(), v.checked_by))
                    .unwrap_or_else(|| ("-".into(), "-".into()));
                println!("{}\t{}\t{until}\t{by}", o.operator.email, roles.join(","));
            }
        }
    }
    Ok(())
}

async fn rotate_tenant(portal: &portcullis_core::service::Portal, tenant: &str, no_wait: bool) -> anyhow::Result<()> {
    use portcullis_core::service::RotationStart;
    let meta = RequestMeta::default();
    let t = portal.tenant_by_name(tenant).await.map_err(domain)?;
    match portal.start_tenant_rotation(t.id, &meta).await.map_err(domain)? {
        RotationStart::Started { from, to } => {
            println!("tenant {tenant}: data key version {to} made; new writes use it from now on (was {from})")
        }
        RotationStart::Resumed { to } => println!("tenant {tenant}: resuming the open rotation to version {to}"),
    }
    failpoint("after-start");
    if no_wait {
        println!("running nodes re-encrypt the older data in the background; `portcullis keys status` shows progress");
        return Ok(());
    }
    let report = portal
        .run_tenant_rotation(t.id, portcullis_core::audit::Actor::Cli, &meta, &failpoint)
        .await
        .map_err(domain)?;
    println!(
        "re-encrypted {} documents and {} fields under version {}",
        report.documents, report.fields, report.target
    );
    if !report.failed.is_empty() {
        for f in &report.failed {
            eprintln!("could not re-encrypt {f}");
        }
        anyhow::bail!(
            "{} items could not be re-encrypted and stay under their old key; the rotation stays open",
            report.failed.len()
        );
    }
    if report.finished {
        println!("rotation to version {} finished: nothing is left under an older version", report.target);
    } else {
        println!(
            "rotation to version {} is still open: writers kept adding data under an older version; run again",
            report.target
        );
    }
    Ok(())
}

/// Crash-test hook: when `PORTCULLIS_FAILPOINT` names this point (`name`, or `name:N` for its
/// Nth visit), the process kills itself with SIGKILL there, exactly as `kill -9` would. The
/// key-rotation tests use it to stop the process at chosen steps; it does nothing otherwise.
fn failpoint(name: &str) {
    static VISITS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let Ok(wanted) = std::env::var("PORTCULLIS_FAILPOINT") else { return };
    let (point, nth) = wanted.split_once(':').map_or((wanted.as_str(), 1), |(p, n)| (p, n.parse().unwrap_or(1)));
    if point != name {
        return;
    }
    if VISITS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == nth {
        let _ = std::process::Command::new("kill").args(["-9", &std::process::id().to_string()]).status();
        // SIGKILL cannot be caught; never go on past the point.
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// A domain error as the command line shows it: the public sentence, plus internal detail.
/// One line per chain; an error (non-zero exit) naming the first broken event if any chain is.
fn print_verification(reports: &[portcullis_core::service::ChainReport]) -> anyhow::Result<()> {
    let mut broken = Vec::new();
    for r in reports {
        let name =
            r.tenant.clone().unwrap_or_else(|| if r.chain.is_empty() { "(platform)".into() } else { r.chain.clone() });
        let signed =
            r.last_checkpoint.map(|s| format!("signed up to event {s}")).unwrap_or_else(|| "no checkpoint yet".into());
        match &r.fault {
            None => println!("{name}: intact, {} events, {} checkpoints, {signed}", r.events, r.checkpoints),
            Some(f) => {
                println!("{name}: BROKEN at event {}: {} ({} events intact before it)", f.seq, f.reason, r.events);
                broken.push(format!("{name} at event {}", f.seq));
            }
        }
    }
    if broken.is_empty() {
        println!("audit log verified: {} chain(s) intact", reports.len());
        Ok(())
    } else {
        anyhow::bail!("the audit log was tampered with: {}", broken.join(", "))
    }
}

/// Four eyes on a master-key rotation: spend the approval named, or refuse; with
/// `master_key_rotation_needs_approval = false` (a one-person installation) the rotation goes
/// ahead without, and the audit event says so.
async fn spend_rotation_approval(
    cfg: &Config,
    portal: &portcullis_core::service::Portal,
    approval: Option<&str>,
) -> anyhow::Result<Option<portcullis_core::changes::Approval>> {
    use portcullis_core::model::PlatformAction;
    match approval {
        Some(id) => {
            let id = id.parse().map_err(|_| anyhow::anyhow!("--approval: {id:?} is not a request id"))?;
            let a = portal.use_platform_approval(id, PlatformAction::RotateMasterKey).await.map_err(domain)?;
            println!(
                "approval {} (requested by operator {}, approved by operator {}) used",
                a.id,
                a.requested_by,
                a.decided_by.map(|o| o.to_string()).unwrap_or_default()
            );
            Ok(Some(portcullis_core::changes::Approval {
                id: a.id.to_string(),
                requested_by: Actor::Operator(a.requested_by).to_stored(),
                approved_by: a.decided_by.map(|o| Actor::Operator(o).to_stored()).unwrap_or_default(),
            }))
        }
        None if !cfg.master_key_rotation_needs_approval => {
            portal.record_unapproved_master_rotation().await.map_err(domain)?;
            println!("rotating without a second operator's approval (master_key_rotation_needs_approval = false)");
            Ok(None)
        }
        None => anyhow::bail!(
            "a master-key rotation needs a second operator's approval: a privileged operator asks              (POST /api/v1/platform/approvals {{\"action\": \"rotate_master_key\"}}), another approves              (POST /api/v1/platform/approvals/ID/approve), then run this with --approval ID"
        ),
    }
}

fn domain(e: portcullis_core::Error) -> anyhow::Error {
    match e {
        portcullis_core::Error::Internal(d) => anyhow::anyhow!("internal error: {d}"),
        other => anyhow::anyhow!("{}", other.public_message()),
    }
}

async fn serve(cfg: Config, clock: Arc<SystemClock>) -> anyhow::Result<()> {
    let shipping = crate::logs::init(&cfg)?;
    let running = server::start(&cfg, clock).await?;
    if running.tls.generated {
        println!("generated a self-signed TLS certificate: {}", running.tls.cert.display());
    }
    println!("TLS certificate SHA-256 fingerprint: {}", running.tls.fingerprint);
    println!("Portcullis is serving https://{} (database: {})", running.addr, running.portal_engine());
    if let Some(link) = &running.setup_link {
        println!("no tenant yet: create the first one within 1 hour at this one-time link:\n  {link}");
    }
    shutdown_signal().await.context("waiting for a shutdown signal")?;
    if cfg.drain_secs > 0 {
        println!("draining for {} s (a second signal cuts it short)", cfg.drain_secs);
        running.drain();
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(cfg.drain_secs)) => {},
            r = shutdown_signal() => r.context("waiting for a shutdown signal")?,
        }
    }
    println!("shutting down: finishing in-flight requests");
    let stopped = running.shutdown(server::GRACE).await;
    shipping.drain(crate::logs::DRAIN).await;
    stopped
}

async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {},
        r = tokio::signal::ctrl_c() => r?,
    }
    Ok(())
}
