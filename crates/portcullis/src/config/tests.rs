//! The configuration's tests: defaults and ranges pinned, the README's table current, and the
//! checks of each group of keys naming their key.

use super::*;
use std::path::PathBuf;

/// Every default as it was before the keys were declared in one table, so moving them there
/// (or any later edit) cannot change a default unnoticed.
#[test]
fn defaults_are_unchanged() {
    // A string, not `json!`: a literal this long passes the macro recursion limit.
    let expected: serde_json::Value = serde_json::from_str(
        r#"{
            "data": "./portcullis-data",
            "listen": "127.0.0.1:8443",
            "database_url": null,
            "public_url": null,
            "tls_cert": null,
            "master_key_file": null,
            "tls_key": null,
            "redirect_http_listen": null,
            "session_idle_minutes": 30,
            "session_absolute_hours": 12,
            "invite_link_hours": 72,
            "max_upload_bytes": 2147483648,
            "max_body_bytes": 1048576,
            "request_timeout_secs": 30,
            "drain_secs": 10,
            "upload_idle_timeout_secs": 60,
            "key_rotation_poll_secs": 30,
            "log_format": "text",
            "master_key_rotation_needs_approval": true,
            "audit_signing_key_file": null,
            "audit_checkpoint_secs": 300,
            "smtp_url": null,
            "mail_from": "Portcullis <portcullis@localhost>",
            "mail_poll_secs": 5,
            "retention_days": 2557,
            "retention_notice_days": ["90","30"],
            "lifecycle_poll_secs": 60,
            "syslog_url": null,
            "syslog_ca_file": null,
            "syslog_facility": "local0",
            "otlp_endpoint": null,
            "otlp_headers_file": null,
            "otlp_ca_file": null,
            "log_buffer_lines": 100000,
            "metrics_token_file": null,
            "metrics_listen": null,
            "node_id": null,
            "security_contact": [],
            "security_policy_url": null,
            "security_languages": ["en"],
            "security_txt_expires": null,
            "alert_email_to": [],
            "alert_webhook_url": null,
            "alert_webhook_secret_file": null,
            "alert_tenant_admins": true,
            "alert_dedup_minutes": 15,
            "alert_retry_max_secs": 900,
            "alert_give_up_hours": 48,
            "alert_poll_secs": 5,
            "tls_expiry_warn_days": 14,
            "heartbeat_url": null,
            "heartbeat_secs": 60,
            "heartbeat_secret_file": null,
            "trusted_proxies": [],
            "client_ip_header": "x-forwarded-for",
            "rate_limit_ip_per_minute": 600,
            "rate_limit_ip_burst": 200,
            "rate_limit_account_per_minute": 600,
            "rate_limit_account_burst": 200,
            "rate_limit_tenant_per_minute": 6000,
            "rate_limit_tenant_burst": 1000,
            "rate_limit_sign_in_per_minute": 10,
            "rate_limit_sign_in_burst": 10,
            "rate_limit_report_per_minute": 1,
            "rate_limit_report_burst": 5,
            "incident_triage_minutes": 60,
            "max_in_flight_requests": 512,
            "max_in_flight_per_ip": 64,
            "max_connections": 10000,
            "max_connections_per_ip": 256,
            "header_read_timeout_secs": 10,
            "connection_idle_timeout_secs": 120,
            "max_header_bytes": 16384,
            "waf_path_rules": true,
            "waf_query_rules": true,
            "waf_header_rules": true,
            "waf_content_type_rules": true,
            "waf_max_path_bytes": 2048,
            "waf_max_query_bytes": 4096,
            "waf_max_headers": 64,
            "waf_audit_per_minute": 10,
            "ids_enabled": true,
            "ids_window_minutes": 10,
            "ids_brute_force_failures": 20,
            "ids_spray_accounts": 10,
            "ids_stuffing_sources": 5,
            "ids_scan_errors": 200,
            "ids_csrf_failures": 20,
            "ids_block_minutes": 60,
            "ids_protect_hours": 24,
            "anomaly_download_factor": 5,
            "anomaly_download_floor": 50,
            "anomaly_download_floor_mib": 500,
            "anomaly_download_ceiling": 1000,
            "anomaly_download_ceiling_mib": 20480,
            "anomaly_min_days": 5,
            "anomaly_ewma_percent": 30,
            "anomaly_hours_min_signins": 20,
            "backup_enabled": true,
            "backup_target": null,
            "document_store": null,
            "s3_endpoint": null,
            "s3_region": "us-east-1",
            "s3_access_key_id": null,
            "s3_secret_access_key_file": null,
            "backup_recipient": null,
            "backup_recipient_file": null,
            "backup_at": "02:00",
            "backup_keep_daily": 7,
            "backup_keep_weekly": 5,
            "backup_keep_monthly": 84,
            "backup_poll_secs": 60
        }"#,
    )
    .unwrap();
    assert_eq!(serde_json::to_value(Config::default()).unwrap(), expected);
}

/// Each numeric key's accepted range, as it was before the ranges were declared with the
/// keys: one past either end is refused naming the key, both ends are accepted (other keys
/// at their defaults). `None`: no upper end.
const RANGES: &[(&str, i64, Option<i64>)] = &[
    ("session_idle_minutes", 1, Some(7 * 24 * 60)),
    ("session_absolute_hours", 1, Some(30 * 24)),
    ("invite_link_hours", 1, Some(30 * 24)),
    ("request_timeout_secs", 1, Some(3600)),
    ("upload_idle_timeout_secs", 1, Some(3600)),
    ("drain_secs", 0, Some(300)),
    ("audit_checkpoint_secs", 1, Some(86_400)),
    ("key_rotation_poll_secs", 1, Some(86_400)),
    ("max_upload_bytes", 1, Some(1 << 40)),
    ("max_body_bytes", 1, None),
    ("mail_poll_secs", 1, Some(3600)),
    ("retention_days", 2557, Some(36525)),
    ("lifecycle_poll_secs", 1, Some(3600)),
    ("log_buffer_lines", 1000, Some(10_000_000)),
    ("incident_triage_minutes", 1, Some(10_080)),
    ("alert_dedup_minutes", 1, Some(1440)),
    ("alert_retry_max_secs", 10, Some(86_400)),
    ("alert_give_up_hours", 1, Some(720)),
    ("alert_poll_secs", 1, Some(3600)),
    ("tls_expiry_warn_days", 1, Some(365)),
    ("heartbeat_secs", 1, Some(86_400)),
    ("ids_window_minutes", 1, Some(1440)),
    ("ids_brute_force_failures", 3, Some(100_000)),
    ("ids_spray_accounts", 3, Some(100_000)),
    ("ids_stuffing_sources", 2, Some(100_000)),
    ("ids_scan_errors", 10, Some(1_000_000)),
    ("ids_csrf_failures", 3, Some(1_000_000)),
    ("ids_block_minutes", 1, Some(43_200)),
    ("ids_protect_hours", 1, Some(8760)),
    ("anomaly_download_factor", 2, Some(1000)),
    ("anomaly_download_floor", 1, Some(1_000_000)),
    ("anomaly_download_floor_mib", 1, Some(10_000_000)),
    ("anomaly_download_ceiling", 1, Some(10_000_000)),
    ("anomaly_download_ceiling_mib", 1, Some(100_000_000)),
    ("anomaly_min_days", 1, Some(365)),
    ("anomaly_ewma_percent", 1, Some(100)),
    ("anomaly_hours_min_signins", 1, Some(100_000)),
    ("backup_keep_daily", 1, Some(10_000)),
    ("backup_keep_weekly", 0, Some(10_000)),
    ("backup_keep_monthly", 0, Some(10_000)),
    ("backup_poll_secs", 1, Some(3600)),
    ("rate_limit_ip_per_minute", 0, Some(1_000_000)),
    ("rate_limit_ip_burst", 1, Some(1_000_000)),
    ("rate_limit_account_per_minute", 0, Some(1_000_000)),
    ("rate_limit_account_burst", 1, Some(1_000_000)),
    ("rate_limit_tenant_per_minute", 0, Some(1_000_000)),
    ("rate_limit_tenant_burst", 1, Some(1_000_000)),
    ("rate_limit_sign_in_per_minute", 0, Some(1_000_000)),
    ("rate_limit_sign_in_burst", 1, Some(1_000_000)),
    ("rate_limit_report_per_minute", 0, Some(1_000_000)),
    ("rate_limit_report_burst", 1, Some(1_000_000)),
    ("max_in_flight_requests", 1, Some(1_000_000)),
    ("max_in_flight_per_ip", 1, Some(1_000_000)),
    ("max_connections", 1, Some(1_000_000)),
    ("max_connections_per_ip", 1, Some(1_000_000)),
    ("max_header_bytes", 1024, Some(1024 * 1024)),
    ("waf_max_path_bytes", 64, Some(65_536)),
    ("waf_max_query_bytes", 64, Some(1024 * 1024)),
    ("waf_max_headers", 8, Some(1000)),
    ("header_read_timeout_secs", 1, Some(300)),
    // Its lower end is the larger of `request_timeout_secs` and `upload_idle_timeout_secs`.
    ("connection_idle_timeout_secs", 60, Some(3600)),
];

/// The default configuration with one key set to `v` (through serde, as a file would).
fn with(key: &str, v: i64) -> Config {
    let mut j = serde_json::to_value(Config::default()).unwrap();
    j.as_object_mut().unwrap().insert(key.into(), v.into());
    serde_json::from_value(j).unwrap()
}

#[test]
fn each_range_is_checked_at_both_ends() {
    for &(key, lo, hi) in RANGES {
        let named = |c: Config| c.validate().err().is_some_and(|e| e.to_string().contains(&format!("`{key}`")));
        // Another key may object to an end (a cross-key rule); this key must not.
        assert!(!named(with(key, lo)), "{key} = {lo} refused");
        if lo > 0 {
            assert!(named(with(key, lo - 1)), "{key} = {} accepted", lo - 1);
        }
        if let Some(hi) = hi {
            assert!(!named(with(key, hi)), "{key} = {hi} refused");
            assert!(named(with(key, hi + 1)), "{key} = {} accepted", hi + 1);
        }
    }
}

#[test]
fn urls_are_redacted() {
    assert_eq!(redact_url("postgres://u:secret@h:5/db"), "postgres://h:5/db (credentials and options hidden)");
    assert!(!redact_url("postgres://h/db?password=secret").contains("secret"));
    assert!(!redact_url("host=h password=secret").contains("secret"));
    assert_eq!(redact_url("sqlite:///x/y.db"), "sqlite:/x/y.db");
    assert!(!redact_url("smtps://u:hunter2@mail.example.com:465").contains("hunter2"));
}

/// Validation errors of the mail keys, each naming its key.
#[test]
fn mail_settings_are_checked_and_errors_name_the_key() {
    let base = Config::default();
    assert!(base.validate().is_ok());
    let cases: [(Config, &str); 4] = [
        (Config { smtp_url: Some("smtp://mail.example.com:25".into()), ..base.clone() }, "smtp_url"),
        (Config { smtp_url: Some("ftp://mail.example.com".into()), ..base.clone() }, "smtp_url"),
        (Config { mail_from: "not a mailbox".into(), ..base.clone() }, "mail_from"),
        (Config { mail_poll_secs: 0, ..base.clone() }, "mail_poll_secs"),
    ];
    for (cfg, key) in [
        (Config { retention_days: 365, ..base.clone() }, "retention_days"),
        (Config { retention_days: 40000, ..base.clone() }, "retention_days"),
        (Config { retention_notice_days: vec!["0".into()], ..base.clone() }, "retention_notice_days"),
        (Config { retention_notice_days: vec!["soon".into()], ..base.clone() }, "retention_notice_days"),
        (Config { retention_notice_days: vec!["3000".into()], ..base.clone() }, "retention_notice_days"),
        (Config { lifecycle_poll_secs: 0, ..base.clone() }, "lifecycle_poll_secs"),
    ] {
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains(&format!("`{key}`")), "{key}: {e}");
    }
    assert_eq!(base.lifecycle().unwrap().notice_days, [90, 30]);
    for (cfg, key) in cases {
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains(&format!("`{key}`")), "{key}: {e}");
    }
    let ok = Config { smtp_url: Some("smtps://u:pw@mail.example.com".into()), ..base };
    assert!(ok.validate().is_ok());
    assert!(!ok.redacted_toml().unwrap().contains(":pw@"));
}

/// Validation errors of the alert keys, each naming its key; the webhook URLs' paths (which
/// may hold tokens) never show.
#[test]
fn alert_settings_are_checked_and_errors_name_the_key() {
    let base = Config::default();
    let secret = Some(PathBuf::from("/run/secrets/hook"));
    let hook = |u: &str| Config {
        alert_webhook_url: Some(u.into()),
        alert_webhook_secret_file: secret.clone(),
        ..Config::default()
    };
    let cases: [(Config, &str); 9] = [
        (hook("http://alerts.example.com/hook"), "alert_webhook_url"),
        (hook("ftp://alerts.example.com/hook"), "alert_webhook_url"),
        (
            Config { alert_webhook_secret_file: None, ..hook("https://alerts.example.com/h") },
            "alert_webhook_secret_file",
        ),
        (Config { heartbeat_url: Some("https://hb.example.com/x".into()), ..base.clone() }, "heartbeat_secret_file"),
        (Config { alert_email_to: vec!["ops@example.com".into()], ..base.clone() }, "alert_email_to"),
        (Config { alert_email_to: vec!["not a mailbox".into()], ..base.clone() }, "alert_email_to"),
        (Config { node_id: Some("a b".into()), ..base.clone() }, "node_id"),
        (Config { alert_dedup_minutes: 0, ..base.clone() }, "alert_dedup_minutes"),
        (Config { tls_expiry_warn_days: 0, ..base.clone() }, "tls_expiry_warn_days"),
    ];
    for (cfg, key) in cases {
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains(&format!("`{key}`")), "{key}: {e}");
    }
    for ok in
        ["https://alerts.example.com/T0KEN", "http://127.0.0.1:9000/hook", "http://localhost/h", "http://[::1]:1/"]
    {
        assert!(hook(ok).validate().is_ok(), "{ok}");
    }
    let shown = hook("https://alerts.example.com:8443/hooks/T0KEN?k=S3CRET").redacted_toml().unwrap();
    assert!(
        shown.contains("alerts.example.com:8443") && !shown.contains("T0KEN") && !shown.contains("S3CRET"),
        "{shown}"
    );
}

/// Validation errors of the protection keys, each naming its key.
#[test]
fn protection_settings_are_checked_and_errors_name_the_key() {
    let base = Config::default();
    let cases: [(Config, &str); 8] = [
        (Config { trusted_proxies: vec!["10.0.0.0/33".into()], ..base.clone() }, "trusted_proxies"),
        (Config { trusted_proxies: vec!["proxy.example".into()], ..base.clone() }, "trusted_proxies"),
        (Config { client_ip_header: "bad header".into(), ..base.clone() }, "client_ip_header"),
        (Config { rate_limit_ip_burst: 0, ..base.clone() }, "rate_limit_ip_burst"),
        (Config { max_in_flight_requests: 0, ..base.clone() }, "max_in_flight_requests"),
        (Config { header_read_timeout_secs: 0, ..base.clone() }, "header_read_timeout_secs"),
        (Config { connection_idle_timeout_secs: 59, ..base.clone() }, "connection_idle_timeout_secs"),
        (Config { max_connections_per_ip: 0, ..base.clone() }, "max_connections_per_ip"),
    ];
    for (cfg, key) in cases {
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains(&format!("`{key}`")), "{key}: {e}");
    }
    let ok = Config {
        trusted_proxies: vec!["10.0.0.0/8".into(), "192.0.2.7".into(), "::1".into()],
        client_ip_header: "X-Real-IP".into(),
        rate_limit_ip_per_minute: 0,
        rate_limit_ip_burst: 0,
        ..base
    };
    let p = ok.protect().unwrap();
    assert_eq!(p.trusted_proxies.len(), 3);
    assert!(p.per_ip.is_none(), "0 per minute turns the limit off");
}

/// Validation errors of the backup keys, each naming its key.
#[test]
fn backup_settings_are_checked_and_errors_name_the_key() {
    let base = Config::default();
    let cases: [(Config, &str); 6] = [
        (Config { backup_at: "25:00".into(), ..base.clone() }, "backup_at"),
        (Config { backup_at: "2am".into(), ..base.clone() }, "backup_at"),
        (Config { backup_recipient: Some("age1notakey".into()), ..base.clone() }, "backup_recipient"),
        (Config { backup_keep_daily: 0, ..base.clone() }, "backup_keep_daily"),
        (Config { backup_keep_monthly: 10_001, ..base.clone() }, "backup_keep_monthly"),
        (Config { backup_poll_secs: 0, ..base.clone() }, "backup_poll_secs"),
    ];
    for (cfg, key) in cases {
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains(&format!("`{key}`")), "{key}: {e}");
    }
    let recipient = age::x25519::Identity::generate().to_public().to_string();
    let ok = Config { backup_at: "23:30".into(), backup_recipient: Some(recipient), ..base };
    assert!(ok.validate().is_ok());
    assert_eq!(ok.backup_time().unwrap(), time::macros::time!(23:30));
}

#[test]
fn alert_addresses_come_as_a_list_or_comma_separated() {
    let from = |v: serde_json::Value| -> Vec<String> {
        let cfg: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Serialized::default("alert_email_to", v))
            .extract()
            .unwrap();
        cfg.alert_email_to
    };
    assert_eq!(from(serde_json::json!(["a@x.example", "b@x.example"])), ["a@x.example", "b@x.example"]);
    assert_eq!(from(serde_json::json!("a@x.example, b@x.example")), ["a@x.example", "b@x.example"]);
}

#[test]
fn the_security_limits_are_the_limits_and_nothing_else() {
    let limits = Config::default().security_limits().unwrap();
    let keys: Vec<&str> = limits.as_object().unwrap().keys().map(String::as_str).collect();
    for k in [
        "rate_limit_ip_per_minute",
        "max_in_flight_per_ip",
        "max_connections",
        "waf_path_rules",
        "ids_enabled",
        "anomaly_download_factor",
        "trusted_proxies",
        "master_key_rotation_needs_approval",
        "backup_keep_daily",
    ] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    for k in ["data", "database_url", "smtp_url", "alert_webhook_url", "listen", "backup_target", "log_format"] {
        assert!(!keys.contains(&k), "{k} is no security limit");
    }
    // Every key named in the list exists (a renamed setting must not drop out silently).
    for w in SECURITY_LIMIT_KEYS {
        assert!(keys.iter().any(|k| if w.ends_with('_') { k.starts_with(w) } else { k == w }), "{w}");
    }
}

/// The README's configuration section: the keys' table and the other variables', generated.
fn readme_section() -> String {
    let defaults = serde_json::to_value(Config::default()).unwrap();
    let mut out = declare::markdown_table(&keys::key_docs(), &defaults);
    out.push_str("\nOther variables with the prefix (any other is refused, naming it):\n\n");
    out.push_str("| variable | meaning |\n|---|---|\n");
    for (name, meaning) in env::OTHER_VARIABLES {
        out.push_str(&format!("| `{name}` | {meaning} |\n"));
    }
    out.push_str(&format!("| `{}*` | the test suite's tools (`scripts/test`) |\n", env::TEST_PREFIX));
    out
}

#[test]
fn readme_shows_the_current_table() {
    let readme = include_str!("../../../../README.md");
    let expected = format!("<!-- generated:begin -->\n{}<!-- generated:end -->", readme_section());
    assert!(readme.contains(&expected), "README.md is stale; put this between the generated markers:\n{expected}");
}

#[test]
fn every_key_is_documented_once_in_declaration_order() {
    let docs = keys::key_docs();
    let names: Vec<&str> = docs.iter().map(|k| k.name).collect();
    assert_eq!(names, KEYS);
    let fields: Vec<String> =
        serde_json::to_value(Config::default()).unwrap().as_object().unwrap().keys().cloned().collect();
    let mut sorted: Vec<&str> = KEYS.to_vec();
    sorted.sort_unstable();
    assert_eq!(fields, sorted, "the struct's fields are the declared keys");
    for k in &docs {
        assert!(!k.description().is_empty(), "{} has no documentation", k.name);
    }
    assert_eq!(
        readme_section().lines().filter(|l| l.starts_with("| `")).count(),
        KEYS.len() + env::OTHER_VARIABLES.len() + 1
    );
}

/// A `shown` default stands in for an unset or empty one only: a real default is shown as it
/// is, so changing it changes the README (and the drift test catches a stale one).
#[test]
fn a_shown_default_only_describes_an_unset_one() {
    let defaults = serde_json::to_value(Config::default()).unwrap();
    for k in keys::key_docs() {
        let v = &defaults[k.name];
        if k.shown.is_some() {
            assert!(v.is_null() || v.as_array().is_some_and(Vec::is_empty), "{} has a default and a shown one", k.name);
        }
    }
}

/// The declared ranges are the ranges pinned above (before they were declared), and the keys
/// whose range depends on other keys are the only pinned ones without a declared range.
#[test]
fn the_declared_ranges_are_the_pinned_ones() {
    let cross_key = [
        "rate_limit_ip_burst",
        "rate_limit_account_burst",
        "rate_limit_tenant_burst",
        "rate_limit_sign_in_burst",
        "rate_limit_report_burst",
        "connection_idle_timeout_secs",
    ];
    let docs = keys::key_docs();
    for &(key, lo, hi) in RANGES {
        let declared = docs.iter().find(|k| k.name == key).unwrap().bounds;
        if cross_key.contains(&key) {
            assert_eq!(declared, None, "{key}");
        } else {
            let pinned = declare::Bounds { lo: Some(i128::from(lo)), hi: hi.map(i128::from) };
            assert_eq!(declared, Some(pinned), "{key}");
        }
    }
    let declared = docs.iter().filter(|k| k.bounds.is_some()).count();
    assert_eq!(declared + cross_key.len(), RANGES.len(), "a declared range is not pinned");
}

#[test]
fn range_errors_name_the_key_and_its_range() {
    let e = with("mail_poll_secs", 0).validate().unwrap_err().to_string();
    assert_eq!(e, "key `mail_poll_secs`: must be from 1 to 3600");
    let e = with("max_body_bytes", 0).validate().unwrap_err().to_string();
    assert_eq!(e, "key `max_body_bytes`: must be at least 1");
    assert_eq!(declare::Bounds { lo: None, hi: Some(5) }.to_string(), "at most 5");
    assert_eq!(declare::bounds::<u64, _>(1..10), declare::Bounds { lo: Some(1), hi: Some(9) });
}
