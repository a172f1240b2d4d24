//! Starting the server: storage, the portal, TLS, the listener and graceful shutdown. Used by
//! `portcullis serve` and by the test kit, so tests run exactly what users run.

use crate::config::Config;
use crate::tls;
use anyhow::Context;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use portcullis_core::clock::Clock;
use portcullis_core::crypto::keys::Keyring;
use portcullis_core::service::{AlertSettings, Backoff, IntrusionSettings, Portal, Settings};
use portcullis_store::SqlStore;
use portcullis_web::WebSettings;
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long in-flight requests get to finish after a shutdown signal.
pub const GRACE: Duration = Duration::from_secs(30);

/// Open the database and blob store and build the portal.
pub async fn portal(cfg: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<(Portal, SqlStore)> {
    portal_at(cfg, clock, cfg.public_url()).await
}

async fn portal_at(cfg: &Config, clock: Arc<dyn Clock>, public_url: String) -> anyhow::Result<(Portal, SqlStore)> {
    std::fs::create_dir_all(&cfg.data).with_context(|| format!("creating data directory {}", cfg.data.display()))?;
    let store = SqlStore::open(cfg.database_url().expose_secret())
        .await
        .map_err(|e| anyhow::anyhow!("opening the database: {e}"))?;
    let blobs = crate::object_stores::documents(cfg)?;
    let settings = Settings {
        session_idle: time::Duration::minutes(cfg.session_idle_minutes),
        session_absolute: time::Duration::hours(cfg.session_absolute_hours),
        setup_link_ttl: time::Duration::hours(1),
        invite_link_ttl: time::Duration::hours(cfg.invite_link_hours),
        max_upload_bytes: cfg.max_upload_bytes,
        public_url,
        alerts: alert_settings(cfg),
        intrusion: intrusion_settings(cfg),
        lifecycle: cfg.lifecycle()?,
        disclosure: cfg.disclosure()?,
        incident_triage: time::Duration::minutes(i64::from(cfg.incident_triage_minutes)),
    };
    // A new master key may be made only for a database that holds no wrapped keys yet.
    let fresh = {
        use portcullis_core::ports::{Store, TxMode};
        let mut tx = store.begin(TxMode::Read).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        tx.keys().all_tenant_keys().await.map_err(|e| anyhow::anyhow!("{e}"))?.is_empty()
    };
    let keyring = Arc::new(Keyring::new(Arc::new(crate::master_key::load(cfg, fresh)?)));
    Ok((Portal::new(Arc::new(store.clone()), Arc::new(blobs), keyring, clock, settings), store))
}

/// The core's intrusion and anomaly detection settings from configuration (validated ranges).
fn intrusion_settings(cfg: &Config) -> IntrusionSettings {
    let n = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    let mins = |v: u64| time::Duration::minutes(i64::try_from(v).unwrap_or(i64::MAX));
    let mib = |v: u64| v.saturating_mul(1024 * 1024);
    IntrusionSettings {
        enabled: cfg.ids_enabled,
        window: mins(cfg.ids_window_minutes),
        brute_force_failures: n(cfg.ids_brute_force_failures),
        spray_accounts: n(cfg.ids_spray_accounts),
        stuffing_sources: n(cfg.ids_stuffing_sources),
        scan_errors: n(cfg.ids_scan_errors),
        csrf_failures: n(cfg.ids_csrf_failures),
        block_for: mins(cfg.ids_block_minutes),
        protect_for: mins(cfg.ids_protect_hours.saturating_mul(60)),
        download_factor: n(cfg.anomaly_download_factor),
        download_floor: cfg.anomaly_download_floor,
        download_floor_bytes: mib(cfg.anomaly_download_floor_mib),
        download_ceiling: cfg.anomaly_download_ceiling,
        download_ceiling_bytes: mib(cfg.anomaly_download_ceiling_mib),
        min_days: n(cfg.anomaly_min_days),
        alpha_percent: n(cfg.anomaly_ewma_percent),
        hours_min_signins: n(cfg.anomaly_hours_min_signins),
    }
}

/// The core's alert settings from configuration.
fn alert_settings(cfg: &Config) -> AlertSettings {
    let secs = |s: u64| time::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX));
    let defaults = AlertSettings::default();
    AlertSettings {
        email_to: cfg.alert_email_to.clone(),
        tenant_admins: cfg.alert_tenant_admins,
        dedup_window: secs(cfg.alert_dedup_minutes.saturating_mul(60)),
        backoff: Backoff { cap: secs(cfg.alert_retry_max_secs), ..defaults.backoff },
        give_up_after: secs(cfg.alert_give_up_hours.saturating_mul(3600)),
        node: cfg.node_id(),
    }
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub tls: tls::TlsFiles,
    pub portal: Portal,
    /// The first-start setup link, when there is no tenant yet.
    pub setup_link: Option<String>,
    handle: Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    background: tokio::task::JoinHandle<()>,
    /// The mail sender, when SMTP is configured.
    mail: Option<tokio::task::JoinHandle<()>>,
    /// Signs audit checkpoints.
    checkpoints: tokio::task::JoinHandle<()>,
    /// Retention notices, retention, and destroying erased firms.
    lifecycle: tokio::task::JoinHandle<()>,
    /// The separate metrics listener, when configured.
    metrics: Option<tokio::task::JoinHandle<()>>,
    /// Alerting: the alert sender (when a channel is configured), the heartbeat (when
    /// configured) and the TLS expiry watch; and the backup scheduler (when enabled).
    alerting: Vec<tokio::task::JoinHandle<()>>,
    store: SqlStore,
    drain: portcullis_web::drain::Drain,
    /// Renews this node's registration (`instance`) among the live nodes.
    heartbeat: tokio::task::JoinHandle<()>,
    instance: String,
}

impl Running {
    /// Start draining: readiness off, kept-alive connections closed after their answer, requests
    /// still served (see [`portcullis_web::drain`]).
    pub fn drain(&self) {
        self.drain.start();
    }

    /// Stop accepting, let in-flight requests finish (up to `grace`), and close the database.
    pub async fn shutdown(self, grace: Duration) -> anyhow::Result<()> {
        self.handle.graceful_shutdown(Some(grace));
        self.task.await.context("server task")?.context("server")?;
        self.heartbeat.abort();
        if let Err(e) = self.portal.leave(&self.instance).await {
            tracing::warn!(error = %e, "leaving the live nodes failed; the registration lapses by itself");
        }
        self.background.abort();
        self.checkpoints.abort();
        self.lifecycle.abort();
        for job in &self.alerting {
            job.abort();
        }
        for task in [&self.mail, &self.metrics].into_iter().flatten() {
            task.abort();
        }
        self.store.close().await;
        Ok(())
    }

    /// The database engine in use.
    pub fn portal_engine(&self) -> &'static str {
        use portcullis_core::ports::Store;
        self.store.engine()
    }
}

/// Start serving HTTPS on `cfg.listen` (port 0 picks a free port).
pub async fn start(cfg: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Running> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // Before anything records a metric.
    crate::monitoring::recorder();
    // Bind first, so links carry the real port when port 0 was asked for.
    let addr: SocketAddr = cfg.listen.parse().context("listen address")?;
    let listener = std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    listener.set_nonblocking(true).context("listener")?;
    let bound = listener.local_addr().context("listener address")?;
    let (portal, store) = portal_at(cfg, clock, public_base(cfg, bound)).await?;
    // Checked before serving, so a bad SMTP setting stops the start instead of every send.
    let mailer = match &cfg.smtp_url {
        Some(url) => Some(Arc::new(crate::mail::SmtpMailer::new(url, &cfg.mail_from)?)),
        None => {
            tracing::warn!(
                "smtp_url is not set: notices to users (such as new-device sign-ins) are queued but cannot be sent"
            );
            None
        }
    };
    // Signing secrets are read now, so a missing or readable file stops the start.
    let hooks = crate::alerts::webhooks(cfg, Arc::new(portcullis_core::clock::SystemClock))?;
    let tls = tls::ensure(&cfg.data, cfg.tls_cert.as_deref(), cfg.tls_key.as_deref())?;
    let rustls = RustlsConfig::from_config(tls::server_config(&tls)?);
    let setup_link = portal.bootstrap_link().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    // Fail closed: a node whose limits cannot be recorded does not serve with them.
    if portal.record_security_limits(cfg.security_limits()?).await.map_err(|e| anyhow::anyhow!("{e}"))? {
        tracing::info!("the configured security limits differ from the last recorded: recorded as a change");
    }
    let web = WebSettings {
        max_body_bytes: cfg.max_body_bytes,
        request_timeout: Duration::from_secs(cfg.request_timeout_secs),
        upload_idle_timeout: Duration::from_secs(cfg.upload_idle_timeout_secs),
        protect: cfg.protect()?,
        drain: portcullis_web::drain::Drain::default(),
    };
    let drain = web.drain.clone();
    let (metrics_routes, metrics) = crate::monitoring::start(cfg, &portal, &store).await?;
    let (app, guards) = portcullis_web::router(portal.clone(), web, metrics_routes.unwrap_or_default());
    // Registered before serving, so the first requests already meet this node's share.
    let instance = format!("{}-{}", cfg.node_id(), uuid::Uuid::new_v4().simple());
    guards.share(portal.register_node(&instance).await.map_err(|e| anyhow::anyhow!("registering the node: {e}"))?);
    let heartbeat = crate::background::spawn_heartbeat(portal.clone(), guards, instance.clone());
    let handle = Handle::new();
    let caps = crate::connections::CapAcceptor::new(
        cfg.max_connections,
        cfg.max_connections_per_ip,
        cfg.protect()?.trusted_proxies,
        Duration::from_secs(cfg.connection_idle_timeout_secs),
    );
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(rustls).acceptor(caps);
    let mut server =
        axum_server::from_tcp(listener).context("serving on the listener")?.acceptor(acceptor).handle(handle.clone());
    // A client gets `header_read_timeout_secs` to send its request headers (slow-loris defence),
    // and a request head may not outgrow `max_header_bytes`.
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(cfg.header_read_timeout_secs))
        .max_buf_size(cfg.max_header_bytes.max(8192));
    server.http_builder().http2().max_header_list_size(u32::try_from(cfg.max_header_bytes).unwrap_or(u32::MAX));
    // HTTP/2 may buffer a whole document read piece (about 1 MiB) per stream instead of 400 KiB,
    // so a download's body is not held back by the send buffer between reads.
    server.http_builder().http2().max_send_buf_size(2 * 1024 * 1024);
    let task = tokio::spawn(server.serve(app.into_make_service_with_connect_info::<SocketAddr>()));
    handle.listening().await.context("the server did not start listening")?;
    if let Some(redirect) = &cfg.redirect_http_listen {
        spawn_redirect(redirect.parse().context("redirect_http_listen")?, public_base(cfg, bound)).await?;
    }
    let background = crate::background::spawn(portal.clone(), Duration::from_secs(cfg.key_rotation_poll_secs));
    let alerting = spawn_alerting(cfg, &portal, mailer.clone(), hooks, &tls);
    let lifecycle = crate::background::spawn_lifecycle(
        portal.clone(),
        crate::audit_key::load(cfg)?,
        mailer.clone().map(|m| m as Arc<dyn portcullis_core::ports::Mailer>),
        Duration::from_secs(cfg.lifecycle_poll_secs),
    );
    let mail =
        mailer.map(|m| crate::background::spawn_mail(portal.clone(), m, Duration::from_secs(cfg.mail_poll_secs)));
    let signer = crate::audit_key::load(cfg)?;
    let checkpoints =
        crate::background::spawn_checkpoints(portal.clone(), signer, Duration::from_secs(cfg.audit_checkpoint_secs));
    let mut alerting = alerting;
    if let Some(job) = backup_scheduler(cfg, &portal, &store)? {
        alerting.push(job);
    }
    Ok(Running {
        addr: bound,
        tls,
        portal,
        setup_link,
        handle,
        task,
        background,
        mail,
        checkpoints,
        lifecycle,
        metrics,
        alerting,
        store,
        drain,
        heartbeat,
        instance,
    })
}

/// Start the backup scheduler, when backups are enabled and a recipient is configured.
fn backup_scheduler(
    cfg: &Config,
    portal: &Portal,
    store: &SqlStore,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    if !cfg.backup_enabled {
        return Ok(None);
    }
    if cfg.backup_recipient.is_none() && cfg.backup_recipient_file.is_none() {
        tracing::warn!(
            "backups are enabled but no `backup_recipient` is set: no scheduled backups run (set it, or set \
             backup_enabled = false where backups are made otherwise)"
        );
        return Ok(None);
    }
    let scheduler = crate::backup::schedule::Scheduler {
        portal: portal.clone(),
        store: store.clone(),
        blobs: Arc::new(crate::object_stores::documents(cfg)?),
        target: crate::backup::target(cfg)?,
        recipient: crate::backup::recipient(cfg)?,
        signer: crate::audit_key::load(cfg)?,
        node: cfg.node_id(),
        at: cfg.backup_time()?,
        keep: crate::backup::schedule::Keep {
            daily: usize::try_from(cfg.backup_keep_daily).unwrap_or(usize::MAX),
            weekly: usize::try_from(cfg.backup_keep_weekly).unwrap_or(usize::MAX),
            monthly: usize::try_from(cfg.backup_keep_monthly).unwrap_or(usize::MAX),
        },
    };
    Ok(Some(crate::background::spawn_backups(scheduler, Duration::from_secs(cfg.backup_poll_secs))))
}

/// Start the alert sender (if this node has a channel), the heartbeat (if configured) and the
/// TLS expiry watch.
fn spawn_alerting(
    cfg: &Config,
    portal: &Portal,
    mailer: Option<Arc<crate::mail::SmtpMailer>>,
    hooks: crate::alerts::Webhooks,
    tls: &tls::TlsFiles,
) -> Vec<tokio::task::JoinHandle<()>> {
    use portcullis_core::ports::{Mailer, Webhook};
    let node = cfg.node_id();
    let mut jobs =
        vec![crate::background::spawn_tls_watch(portal.clone(), tls.clone(), cfg.tls_expiry_warn_days, node.clone())];
    let mails_alerts = !cfg.alert_email_to.is_empty() || cfg.alert_tenant_admins;
    let mailer: Option<Arc<dyn Mailer>> = mailer.filter(|_| mails_alerts).map(|m| m as Arc<dyn Mailer>);
    let webhook: Option<Arc<dyn Webhook>> = hooks.alerts.map(|w| w as Arc<dyn Webhook>);
    if mailer.is_none() && webhook.is_none() {
        tracing::warn!(
            "no alert channel is configured (alert_webhook_url, or smtp_url with alert_email_to): security alerts \
             are stored and logged, and told once a node with a channel runs"
        );
    } else {
        let poll = Duration::from_secs(cfg.alert_poll_secs);
        jobs.push(crate::background::spawn_alerts(portal.clone(), mailer, webhook, poll));
    }
    if let Some(hook) = hooks.heartbeat {
        let every = Duration::from_secs(cfg.heartbeat_secs);
        jobs.push(crate::alerts::spawn_heartbeat(hook, node, every, Arc::new(portcullis_core::clock::SystemClock)));
    }
    jobs
}

/// A plain-HTTP listener that answers every request with a permanent redirect to the HTTPS
/// base URL and serves nothing else. The target comes from configuration, never from the
/// request's Host header, so it cannot be turned into an open redirect.
async fn spawn_redirect(addr: SocketAddr, base: String) -> anyhow::Result<()> {
    use axum::http::Uri;
    use axum::response::{IntoResponse, Redirect};
    let base = base.trim_end_matches('/').to_string();
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let target = format!("{base}{}", uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
        async move { Redirect::permanent(&target).into_response() }
    });
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "redirect listener stopped");
        }
    });
    Ok(())
}

/// The public base URL; with port 0 configured, the port actually bound.
fn public_base(cfg: &Config, bound: SocketAddr) -> String {
    cfg.public_url.clone().unwrap_or_else(|| format!("https://{bound}"))
}
