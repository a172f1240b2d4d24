//! The command line, run as a user runs it.

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

fn portcullis(dir: &std::path::Path, args: &[&str]) -> Output {
    crate::support::portcullis(dir).args(args).output().expect("run portcullis")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn config_check_prints_effective_values_and_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("portcullis.toml");
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:9443\"\ndatabase_url = \"postgres://u:hunter2@127.0.0.1:5432/db\"\n\
         smtp_url = \"smtps://mailer:hunter3@mail.example.com:465\"\n",
    )
    .unwrap();
    let o = portcullis(dir.path(), &["--config", cfg.to_str().unwrap(), "config", "check"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("listen = \"127.0.0.1:9443\""), "{out}");
    assert!(out.contains("hidden") && !out.contains("hunter2"), "{out}");
    assert!(out.contains("smtps://mail.example.com:465") && !out.contains("hunter3"), "{out}");
}

#[test]
fn malformed_config_names_the_key_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    for (body, key) in [
        ("listen = 5\n", "listen"),
        ("lisen = \"127.0.0.1:1\"\n", "lisen"),
        ("listen = \"nowhere\"\n", "listen"),
        ("session_idle_minutes = -1\n", "session_idle_minutes"),
        ("listen = \n", "listen"),
        ("smtp_url = \"smtp://mail.example.com:25\"\n", "smtp_url"),
        ("mail_from = \"not a mailbox\"\n", "mail_from"),
        ("mail_poll_secs = 0\n", "mail_poll_secs"),
    ] {
        let cfg = dir.path().join("bad.toml");
        std::fs::write(&cfg, body).unwrap();
        let o = portcullis(dir.path(), &["--config", cfg.to_str().unwrap(), "config", "check"]);
        let out = text(&o);
        assert!(!o.status.success(), "{body:?} was accepted");
        assert!(out.contains(key), "{body:?}: the error does not name {key}: {out}");
    }
    let o = portcullis(dir.path(), &["--config", "/nonexistent/portcullis.toml", "config", "check"]);
    assert!(text(&o).contains("does not exist"));
}

/// A misspelt `PORTCULLIS_*` variable stops the command, naming it and the likely key, as a
/// misspelt TOML key does; the known ones (keys, and the variables read elsewhere) pass.
#[test]
fn misspelt_environment_variable_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let o = crate::support::portcullis(dir.path())
        .env("PORTCULLIS_SESION_IDLE_MINUTES", "5")
        .args(["config", "check"])
        .output()
        .unwrap();
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("`PORTCULLIS_SESION_IDLE_MINUTES`")
            && out.contains("did you mean `PORTCULLIS_SESSION_IDLE_MINUTES`?"),
        "{out}"
    );
    let o = crate::support::portcullis(dir.path())
        .env("PORTCULLIS_SESSION_IDLE_MINUTES", "5")
        .env("PORTCULLIS_LOG", "warn")
        .env("PORTCULLIS_TEST_SOMETHING", "1")
        .args(["config", "check"])
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("session_idle_minutes = 5"), "{out}");
}

#[test]
fn tenant_and_user_creation_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "correct horse battery staple\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = portcullis(
        dir.path(),
        &[
            "tenant",
            "create",
            "--name",
            "acme",
            "--owner-email",
            "o@acme.example",
            "--owner-password-file",
            pw.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("readable by other users"), "{}", text(&o));

    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = portcullis(
        dir.path(),
        &[
            "tenant",
            "create",
            "--name",
            "acme",
            "--owner-email",
            "o@acme.example",
            "--owner-password-file",
            pw.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("tenant acme created"));

    let o = portcullis(dir.path(), &["tenant", "create", "--name", "beta", "--owner-email", "o@beta.example"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("/invite/"), "{}", text(&o));

    let dup = portcullis(dir.path(), &["tenant", "create", "--name", "acme", "--owner-email", "x@acme.example"]);
    assert!(!dup.status.success());
    assert!(text(&dup).contains("already exists"), "{}", text(&dup));

    let o =
        portcullis(dir.path(), &["user", "create", "--tenant", "acme", "--email", "s@acme.example", "--role", "staff"]);
    assert!(o.status.success(), "{}", text(&o));
    let list = portcullis(dir.path(), &["user", "list", "--tenant", "acme"]);
    assert!(text(&list).contains("s@acme.example\tstaff\tinvited"), "{}", text(&list));
    let bad = portcullis(dir.path(), &["user", "list", "--tenant", "nope"]);
    assert!(!bad.status.success());

    let m = portcullis(dir.path(), &["migrate"]);
    assert!(m.status.success(), "{}", text(&m));
}

#[test]
fn operators_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| portcullis(d, args);
    let o = run(&["operator", "add", "--email", "ops@platform.example", "--name", "Ops"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["operator", "grant", "--email", "ops@platform.example", "--role", "privileged"]);
    assert!(!o.status.success() && text(&o).contains("vetting"), "{}", text(&o));
    let o = run(&[
        "operator",
        "vet",
        "--email",
        "ops@platform.example",
        "--checked-by",
        "Agency",
        "--checked-on",
        "24/11/2026",
        "--valid-until",
        "2030-01-01",
    ]);
    assert!(!o.status.success() && text(&o).contains("--checked-on"), "a bad date names its flag: {}", text(&o));
    let o = run(&[
        "operator",
        "vet",
        "--email",
        "ops@platform.example",
        "--checked-by",
        "Vetting Agency Ltd",
        "--checked-on",
        "2026-01-05",
        "--valid-until",
        "2099-01-05",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["operator", "grant", "--email", "ops@platform.example", "--role", "privileged"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["operator", "token", "--email", "ops@platform.example", "--days", "3"]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).starts_with("pco_"), "{}", text(&o));
    let o = run(&["operator", "list"]);
    let out = text(&o);
    assert!(out.contains("ops@platform.example\tprivileged\t2099-01-05\tVetting Agency Ltd"), "{out}");
    let o = run(&["operator", "revoke-tokens", "--email", "ops@platform.example"]);
    assert!(o.status.success() && text(&o).contains("1 platform API tokens"), "{}", text(&o));
    let o = run(&["operator", "grant", "--email", "nobody@platform.example", "--role", "support"]);
    assert!(!o.status.success(), "{}", text(&o));
}
