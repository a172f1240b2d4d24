//! Checks of the configuration beyond the declared ranges: formats, addresses, and the rules
//! that involve more than one key. Each error names the key it is about.

use super::Config;
use anyhow::{Context, bail};
use secrecy::ExposeSecret;

impl Config {
    /// Everything `load` refuses: first each key's declared range, then the rules here.
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        self.check_ranges()?;
        self.listen
            .parse::<std::net::SocketAddr>()
            .with_context(|| format!("key `listen`: {:?} is not an address:port", self.listen))?;
        if let Some(r) = &self.redirect_http_listen {
            r.parse::<std::net::SocketAddr>()
                .with_context(|| format!("key `redirect_http_listen`: {r:?} is not an address:port"))?;
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            bail!("keys `tls_cert` and `tls_key`: set both or neither");
        }
        if !["text", "json"].contains(&self.log_format.as_str()) {
            bail!("key `log_format`: must be \"text\" or \"json\"");
        }
        if let Some(u) = &self.public_url {
            url::Url::parse(u).with_context(|| format!("key `public_url`: {u:?} is not a URL"))?;
        }
        if let Some(u) = &self.smtp_url {
            crate::mail::check_url(u.expose_secret())?;
        }
        crate::mail::parse_from(&self.mail_from)?;
        self.lifecycle()?;
        if let Some(u) = &self.syslog_url {
            crate::logs::check_syslog_url(u)?;
        }
        crate::logs::check_facility(&self.syslog_facility)?;
        if let Some(u) = &self.otlp_endpoint {
            crate::logs::check_otlp_endpoint(u)?;
        }
        if let Some(l) = &self.metrics_listen {
            let addr = l
                .parse::<std::net::SocketAddr>()
                .with_context(|| format!("key `metrics_listen`: {l:?} is not an address:port"))?;
            if !addr.ip().is_loopback() {
                bail!(
                    "key `metrics_listen`: {addr} is not a loopback address; the separate listener has no TLS \
                     and no token, so it serves this machine only (use `metrics_token_file` for remote scraping)"
                );
            }
        }
        self.validate_alerts()?;
        // After the alert mailboxes: the contact may fall back to the first of them.
        self.disclosure()?;
        self.validate_backups()?;
        crate::object_stores::check(self)?;
        self.protect().map(|_| ())
    }

    fn validate_backups(&self) -> anyhow::Result<()> {
        self.backup_time()?;
        if let Some(r) = &self.backup_recipient {
            crate::backup::parse_recipient(r)?;
        }
        Ok(())
    }

    /// `backup_at` as a time of day (UTC).
    pub fn backup_time(&self) -> anyhow::Result<time::Time> {
        let format = time::macros::format_description!("[hour]:[minute]");
        time::Time::parse(&self.backup_at, &format)
            .map_err(|_| anyhow::anyhow!("key `backup_at`: {:?} is not a time of day HH:MM (UTC)", self.backup_at))
    }

    /// The protective settings (rate limits, shedding, client IP, request filter), checked.
    pub fn protect(&self) -> anyhow::Result<portcullis_web::protect::ProtectSettings> {
        use portcullis_web::protect::{ClientIpHeader, ProtectSettings, Rate, WafSettings};
        let mut trusted_proxies = Vec::new();
        for p in &self.trusted_proxies {
            let net = p
                .parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| anyhow::anyhow!("key `trusted_proxies`: {p:?} is not an address or CIDR range"))?;
            trusted_proxies.push(net);
        }
        let client_ip_header = match self.client_ip_header.to_ascii_lowercase().as_str() {
            "x-forwarded-for" => ClientIpHeader::XForwardedFor,
            "forwarded" => ClientIpHeader::Forwarded,
            other => ClientIpHeader::Single(
                axum::http::HeaderName::from_bytes(other.as_bytes())
                    .map_err(|_| anyhow::anyhow!("key `client_ip_header`: {other:?} is not a header name"))?,
            ),
        };
        let rate = |key: &str, per_minute: u32, burst: u32| -> anyhow::Result<Option<Rate>> {
            if per_minute == 0 {
                return Ok(None);
            }
            if !(1..=1_000_000).contains(&burst) || per_minute > 1_000_000 {
                bail!("keys `{key}_per_minute` and `{key}_burst`: must be from 1 to 1000000 (per minute 0: off)");
            }
            Ok(Some(Rate { per_minute, burst }))
        };
        // Longer than a request may take and an upload may pause, so only idle connections end.
        let floor = self.request_timeout_secs.max(self.upload_idle_timeout_secs);
        if !(floor..=3600).contains(&self.connection_idle_timeout_secs) {
            bail!(
                "key `connection_idle_timeout_secs`: must be from {floor} (request_timeout_secs and \
                 upload_idle_timeout_secs) to 3600"
            );
        }
        Ok(ProtectSettings {
            trusted_proxies,
            client_ip_header,
            per_ip: rate("rate_limit_ip", self.rate_limit_ip_per_minute, self.rate_limit_ip_burst)?,
            per_account: rate("rate_limit_account", self.rate_limit_account_per_minute, self.rate_limit_account_burst)?,
            per_tenant: rate("rate_limit_tenant", self.rate_limit_tenant_per_minute, self.rate_limit_tenant_burst)?,
            sign_in: rate("rate_limit_sign_in", self.rate_limit_sign_in_per_minute, self.rate_limit_sign_in_burst)?,
            reports: rate("rate_limit_report", self.rate_limit_report_per_minute, self.rate_limit_report_burst)?,
            max_in_flight: self.max_in_flight_requests,
            max_in_flight_per_ip: self.max_in_flight_per_ip,
            waf: WafSettings {
                path_rules: self.waf_path_rules,
                query_rules: self.waf_query_rules,
                header_rules: self.waf_header_rules,
                content_type_rules: self.waf_content_type_rules,
                max_path_bytes: self.waf_max_path_bytes,
                max_query_bytes: self.waf_max_query_bytes,
                max_headers: self.waf_max_headers,
                max_header_bytes: self.max_header_bytes,
                audit_per_minute: self.waf_audit_per_minute,
            },
        })
    }

    fn validate_alerts(&self) -> anyhow::Result<()> {
        if let Some(n) = &self.node_id
            && (n.is_empty()
                || n.len() > 100
                || !n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            bail!("key `node_id`: {n:?} must be 1 to 100 letters, digits, dots, dashes or underscores");
        }
        for to in &self.alert_email_to {
            crate::mail::parse_from(to)
                .map_err(|_| anyhow::anyhow!("key `alert_email_to`: {to:?} is not a mailbox"))?;
        }
        if !self.alert_email_to.is_empty() && self.smtp_url.is_none() {
            bail!("key `alert_email_to`: alert mail needs `smtp_url` to be set");
        }
        if let Some(u) = &self.alert_webhook_url {
            crate::alerts::check_webhook_url("alert_webhook_url", u.expose_secret())?;
            if self.alert_webhook_secret_file.is_none() {
                bail!("key `alert_webhook_secret_file`: needed with `alert_webhook_url` (webhooks are signed)");
            }
        }
        if let Some(u) = &self.heartbeat_url {
            crate::alerts::check_webhook_url("heartbeat_url", u.expose_secret())?;
            if self.heartbeat_secret_file.is_none() && self.alert_webhook_secret_file.is_none() {
                bail!(
                    "key `heartbeat_secret_file`: needed with `heartbeat_url` (heartbeats are signed; or set \
                     `alert_webhook_secret_file`)"
                );
            }
        }
        Ok(())
    }
}

impl Config {
    /// Retention and notices, checked: the policy keeps ended firms' data at least seven years.
    pub fn lifecycle(&self) -> anyhow::Result<portcullis_core::service::LifecycleSettings> {
        use portcullis_core::service::MIN_RETENTION_DAYS;
        if !(MIN_RETENTION_DAYS..=36525).contains(&self.retention_days) {
            bail!(
                "key `retention_days`: must be from {MIN_RETENTION_DAYS} (the policy's seven years) to 36525, not {}",
                self.retention_days
            );
        }
        let mut notice_days = Vec::new();
        for d in &self.retention_notice_days {
            let n: u32 = d.trim().parse().ok().filter(|n| (1..=self.retention_days).contains(n)).ok_or_else(|| {
                anyhow::anyhow!("key `retention_notice_days`: {d:?} is not a number of days from 1 to `retention_days`")
            })?;
            notice_days.push(n);
        }
        Ok(portcullis_core::service::LifecycleSettings {
            retention: time::Duration::days(i64::from(self.retention_days)),
            notice_days,
        })
    }
}

impl Config {
    /// What `security.txt` says, checked: every contact a URI of an allowed kind, the policy an
    /// `https://` address, the languages tags, the expiry a time.
    pub fn disclosure(&self) -> anyhow::Result<portcullis_core::disclosure::DisclosureSettings> {
        use portcullis_core::disclosure::{check_contact, check_language, check_policy};
        let contacts = if self.security_contact.is_empty() {
            self.alert_email_to.iter().map(|a| format!("mailto:{}", a.trim())).collect()
        } else {
            self.security_contact.iter().map(|c| c.trim().to_string()).collect::<Vec<_>>()
        };
        for c in &contacts {
            check_contact(c)
                .map_err(|_| anyhow::anyhow!("key `security_contact`: {c:?} is not a mailto:, https:// or tel: URI"))?;
        }
        if let Some(p) = &self.security_policy_url {
            check_policy(p)
                .map_err(|_| anyhow::anyhow!("key `security_policy_url`: {p:?} is not an https:// address"))?;
        }
        for l in &self.security_languages {
            check_language(l.trim())
                .map_err(|_| anyhow::anyhow!("key `security_languages`: {l:?} is not a language tag"))?;
        }
        let expires = match &self.security_txt_expires {
            Some(t) => {
                Some(time::OffsetDateTime::parse(t.trim(), &time::format_description::well_known::Rfc3339).map_err(
                    |_| {
                        anyhow::anyhow!(
                            "key `security_txt_expires`: {t:?} is not an RFC 3339 time (2027-06-30T00:00:00Z)"
                        )
                    },
                )?)
            }
            None => None,
        };
        Ok(portcullis_core::disclosure::DisclosureSettings {
            contacts,
            policy: self.security_policy_url.clone(),
            languages: self.security_languages.iter().map(|l| l.trim().to_string()).collect(),
            expires,
        })
    }
}
