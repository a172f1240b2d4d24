//! Tamper evidence of the audit log, end to end: servers sign checkpoints of every chain with
//! a key kept outside the database, and `portcullis audit verify` names the first broken event
//! after each kind of tampering done directly in the database — an edit, a deletion, a
//! reordering, an insertion, a chain cut back past a checkpoint, a forged checkpoint — and
//! passes an intact chain.

use crate::support::{portcullis, sql};
use portcullis_testkit::{PASSWORD, TestServer};
use reqwest::StatusCode;
use std::process::Output;

fn cli(srv: &TestServer, args: &[&str]) -> Output {
    let mut c = portcullis(srv.dir.path());
    c.env("PORTCULLIS_DATABASE_URL", srv.db_url()).arg("audit").args(args);
    c.output().unwrap()
}

fn out(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Let the test change what the engine otherwise refuses to change (as an attacker with the
/// database's owner rights could).
async fn lift_append_only(url: &str) {
    if url.starts_with("postgres") {
        sql(url, "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change", &[]).await;
    } else {
        sql(url, "DROP TRIGGER audit_events_no_update", &[]).await;
        sql(url, "DROP TRIGGER audit_events_no_delete", &[]).await;
    }
}

crate::both!(verify_names_the_first_broken_event, |srv| async move {
    let url = srv.db_url();
    let names = ["intact", "edited", "deleted", "reordered", "inserted", "truncated", "forged"];
    let mut chains = Vec::new();
    for name in names {
        let (id, owner) = srv.tenant(name).await;
        // A few events each: sign-ins.
        for _ in 0..3 {
            assert_eq!(srv.client().login(name, &owner, PASSWORD).await.status, StatusCode::OK);
        }
        chains.push((name, id.to_string(), owner));
    }
    let o = cli(srv, &["checkpoint"]);
    assert!(o.status.success(), "{}", out(&o));
    // More events after the checkpoint: the tail is checked by its links alone.
    for (name, _, owner) in &chains {
        srv.client().login(name, owner, PASSWORD).await;
    }
    let o = cli(srv, &["verify"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("intact") && out(&o).contains("signed up to event"), "{}", out(&o));

    lift_append_only(&url).await;
    let chain = |name: &str| chains.iter().find(|c| c.0 == name).unwrap().1.clone();
    let c = chain("edited");
    sql(&url, "UPDATE audit_events SET detail = '{}' WHERE chain = $1 AND seq = 2", &[&c]).await;
    let c = chain("deleted");
    sql(&url, "DELETE FROM audit_events WHERE chain = $1 AND seq = 3", &[&c]).await;
    let c = chain("reordered");
    for (from, to) in [(2, -2), (3, 2), (-2, 3)] {
        let q = match (from, to) {
            (2, -2) => "UPDATE audit_events SET seq = -2 WHERE chain = $1 AND seq = 2",
            (3, 2) => "UPDATE audit_events SET seq = 2 WHERE chain = $1 AND seq = 3",
            _ => "UPDATE audit_events SET seq = 3 WHERE chain = $1 AND seq = -2",
        };
        sql(&url, q, &[&c]).await;
    }
    // An event slipped in at 2: the later ones moved up to make room (out of the key's way first).
    let c = chain("inserted");
    sql(&url, "UPDATE audit_events SET seq = seq + 1000 WHERE chain = $1 AND seq >= 2", &[&c]).await;
    sql(&url, "UPDATE audit_events SET seq = seq - 999 WHERE chain = $1 AND seq >= 1000", &[&c]).await;
    sql(
        &url,
        "INSERT INTO audit_events (chain, seq, at, actor, action, target, ip, request_id, detail, prev_hash, hash) \
         SELECT chain, 2, at, actor, 'auth.logout', target, ip, request_id, detail, prev_hash, hash \
         FROM audit_events WHERE chain = $1 AND seq = 3",
        &[&c],
    )
    .await;
    let c = chain("truncated");
    sql(&url, "DELETE FROM audit_events WHERE chain = $1 AND seq > 1", &[&c]).await;
    let c = chain("forged");
    sql(&url, "UPDATE audit_checkpoints SET hash = 'ab' WHERE chain = $1", &[&c]).await;

    let expect = [
        ("intact", None),
        ("edited", Some(2)),
        ("deleted", Some(3)),
        ("reordered", Some(2)),
        ("inserted", Some(2)),
        ("truncated", Some(2)),
        ("forged", None),
    ];
    for (name, at) in expect {
        let o = cli(srv, &["verify", "--tenant", name]);
        let text = out(&o);
        match (name, at) {
            ("intact", _) => assert!(o.status.success() && text.contains("intact:"), "{name}: {text}"),
            ("forged", _) => {
                assert!(!o.status.success(), "{name}: {text}");
                assert!(text.contains("checkpoint signature is not valid"), "{name}: {text}");
            }
            (_, Some(seq)) => {
                assert!(!o.status.success(), "{name} passed: {text}");
                assert!(text.contains(&format!("BROKEN at event {seq}")), "{name}: {text}");
            }
            _ => unreachable!(),
        }
    }
    // The whole log: names every broken chain and fails.
    let o = cli(srv, &["verify"]);
    assert!(!o.status.success());
    assert!(out(&o).contains("tampered with"), "{}", out(&o));
    // Trusting another key: every checkpoint is refused.
    let other = srv.dir.path().join("other.pub");
    std::fs::write(&other, format!("{}\n", "11".repeat(32))).unwrap();
    let o = cli(srv, &["verify", "--tenant", "intact", "--public-key", other.to_str().unwrap()]);
    assert!(!o.status.success() && out(&o).contains("checkpoint signature is not valid"), "{}", out(&o));
    let o = cli(srv, &["verify", "--tenant", "no-such-firm"]);
    assert!(!o.status.success(), "{}", out(&o));
});
