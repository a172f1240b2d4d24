//! The audit chain's unit tests.

use super::*;
use crate::ids::{AlertId, ApprovalId, BlockId, DetectionId, DocumentId, IncidentId, OperatorId, PasskeyId, TokenId};

fn chain(n: i64) -> Vec<StoredEvent> {
    let t = TenantId::new();
    let mut prev = String::new();
    (1..=n)
        .map(|seq| {
            let ev = NewEvent::new(
                Some(t),
                Actor::System,
                Action::MatterView,
                Target::Other(format!("n:{seq}")),
                &RequestMeta::default(),
            );
            let e = seal(&ev, seq, OffsetDateTime::UNIX_EPOCH, &prev);
            prev = e.hash.clone();
            e
        })
        .collect()
}

#[test]
fn every_action_round_trips_and_its_stored_text_is_unique() {
    let mut seen = std::collections::HashSet::new();
    for a in Action::ALL {
        assert_eq!(Action::parse(a.as_str()).unwrap(), *a);
        assert!(seen.insert(a.as_str()), "{a:?} stores the same text as another action");
        let stored = StoredEvent { action: a.as_str().into(), ..chain(1).remove(0) };
        assert_eq!(stored.action(), Some(*a));
    }
    assert!(Action::parse("nothing.happened").is_err());
    assert_eq!(Action::DocumentDownload.as_str(), "document.download");
    assert_eq!(Action::KeysRotateTenantStart.as_str(), "keys.rotate_tenant.start");
}

#[test]
fn every_target_round_trips_through_its_stored_form() {
    let approval = ApprovalId::new();
    let targets = [
        Target::User(UserId::new()),
        Target::Tenant(TenantId::new()),
        Target::Matter(MatterId::new()),
        Target::Document(DocumentId::new()),
        Target::Approval(approval),
        Target::PlatformApproval(approval),
        Target::Export(approval),
        Target::Token(TokenId::new()),
        Target::Passkey(PasskeyId::new()),
        Target::Operator(OperatorId::new()),
        Target::Incident(IncidentId::new()),
        Target::Alert(AlertId::new()),
        Target::Block(BlockId::new()),
        Target::Detection(DetectionId::new()),
        Target::Backup("full".into()),
        Target::Backups,
        Target::Chain("platform".into()),
        Target::ImportedEvent(42),
        Target::Platform,
        Target::Request,
        Target::Unknown,
        Target::Other("n:1".into()),
        Target::Other("=HYPERLINK(\"x\")".into()),
        Target::Other("document:not-an-id".into()),
    ];
    let mut seen = std::collections::HashSet::new();
    for t in &targets {
        let stored = t.to_stored();
        assert_eq!(Target::parse(&stored), *t, "{stored}");
        assert!(seen.insert(stored));
    }
    // The stored form is today's `<kind>:<id>`, byte for byte.
    let d = DocumentId::new();
    assert_eq!(Target::Document(d).to_stored(), format!("document:{d}"));
    assert_eq!(Target::Approval(approval).to_stored(), format!("approval:{approval}"));
    assert_eq!(Target::PlatformApproval(approval).to_stored(), format!("platform_approval:{approval}"));
    assert_eq!(Target::ImportedEvent(7).to_stored(), "imported-event:7");
    let u = UserId::new();
    assert_eq!(Target::user_of_actor(&Actor::User(u).to_stored()), Some(u));
    assert_eq!(Target::user_of_actor(&Actor::Cli.to_stored()), None);
}

#[test]
fn intact_chain_verifies() {
    assert_eq!(verify_run("", 1, &chain(5)), Ok(()));
}

#[test]
fn edit_delete_and_reorder_are_detected() {
    let mut edited = chain(5);
    edited[2].target = "changed".into();
    assert_eq!(verify_run("", 1, &edited), Err(3));

    let mut deleted = chain(5);
    deleted.remove(1);
    assert_eq!(verify_run("", 1, &deleted), Err(3));

    let mut swapped = chain(5);
    swapped.swap(1, 2);
    assert_eq!(verify_run("", 1, &swapped), Err(3));
}

#[test]
fn an_event_without_a_matter_hashes_as_before_and_one_with_a_matter_covers_it() {
    let mut e = StoredEvent {
        chain: "t".into(),
        seq: 1,
        at: OffsetDateTime::UNIX_EPOCH,
        actor: "system".into(),
        action: "test.event".into(),
        target: "n:1".into(),
        ip: None,
        request_id: None,
        detail: "null".into(),
        matter: None,
        prev_hash: String::new(),
        hash: String::new(),
    };
    // Fixed vectors, computed independently of this code: the v1 form is the one events
    // were hashed with before matters were recorded, so old chains keep verifying.
    assert_eq!(event_hash(&e), "f0b1e8eaa49e40ce243aca06e65ad84aebce0aeec637075bfcc45c89b731946b");
    e.matter = Some("m".into());
    assert_eq!(event_hash(&e), "04aca1a8aa95f3d1152d39a8b9bdf1dd048656fbddb6445f02d8f8d1cf10ecbf");
    // Clearing, adding or changing the matter is an edit like any other.
    let ev = NewEvent::new(
        Some(TenantId::new()),
        Actor::System,
        Action::DocumentUpload,
        Target::Other("document:x".into()),
        &RequestMeta::default(),
    )
    .on_matter(MatterId::new());
    let sealed = seal(&ev, 1, OffsetDateTime::UNIX_EPOCH, "");
    assert_eq!(verify_run("", 1, std::slice::from_ref(&sealed)), Ok(()));
    for matter in [None, Some(MatterId::new().to_string()), Some(String::new())] {
        let tampered = StoredEvent { matter, ..sealed.clone() };
        assert_eq!(verify_run("", 1, &[tampered]), Err(1));
    }
}

use crate::crypto::signing::{AuditPublicKey, AuditSigner};

fn signer() -> AuditSigner {
    AuditSigner::from_pkcs8(&AuditSigner::generate_pkcs8().unwrap()).unwrap()
}

fn checkpoint(s: &AuditSigner, e: &StoredEvent) -> AuditCheckpoint {
    let mut c = AuditCheckpoint {
        chain: e.chain.clone(),
        seq: e.seq,
        hash: e.hash.clone(),
        signed_at: OffsetDateTime::UNIX_EPOCH,
        key_id: s.key_id().to_string(),
        signature: String::new(),
    };
    c.signature = s.sign(&c.body());
    c
}

/// Verify `events` (fed in pages of two) against checkpoints at events 3 and 6.
fn verdict(events: &[StoredEvent], checkpoints: Vec<AuditCheckpoint>, trusted: &[AuditPublicKey]) -> Option<i64> {
    let mut v = ChainVerifier::new(checkpoints, trusted);
    for page in events.chunks(2) {
        v.feed(page);
    }
    v.finish().map(|f| f.seq)
}

/// Rebuild every hash from `from` on, as someone with write access to the database could.
fn rehash(events: &mut [StoredEvent], from: usize) {
    for i in from..events.len() {
        events[i].prev_hash = if i == 0 { String::new() } else { events[i - 1].hash.clone() };
        events[i].hash = event_hash(&events[i]);
    }
}

#[test]
fn every_tampering_names_the_first_broken_event() {
    let s = signer();
    let trusted = [s.public_key()];
    let good = chain(8);
    let cps = || vec![checkpoint(&s, &good[2]), checkpoint(&s, &good[5])];
    assert_eq!(verdict(&good, cps(), &trusted), None);

    let mut edited = good.clone();
    edited[4].detail = "{\"x\":1}".into();
    assert_eq!(verdict(&edited, cps(), &trusted), Some(5), "edited");
    let mut deleted = good.clone();
    deleted.remove(3);
    assert_eq!(verdict(&deleted, cps(), &trusted), Some(4), "deleted");
    let mut reordered = good.clone();
    reordered.swap(6, 7);
    assert_eq!(verdict(&reordered, cps(), &trusted), Some(7), "reordered");
    // An event slipped in at 3, the later ones renumbered to make room.
    let mut inserted = good.clone();
    let mut extra = good[1].clone();
    extra.target = "inserted".into();
    inserted.insert(2, extra);
    for (i, e) in inserted.iter_mut().enumerate() {
        e.seq = i as i64 + 1;
    }
    assert_eq!(verdict(&inserted, cps(), &trusted), Some(3), "inserted");
    // Cut back past the checkpoint at 6: the events it covered are gone.
    assert_eq!(verdict(&good[..4], cps(), &trusted), Some(5), "truncated");
    // Cut back after the last checkpoint: nothing signed covers those events yet.
    assert_eq!(verdict(&good[..7], cps(), &trusted), None, "tail after the last checkpoint");

    // Edited and every later hash rebuilt: the links hold, the signed checkpoint does not.
    let mut rebuilt = good.clone();
    rebuilt[1].action = "nothing.happened".into();
    rehash(&mut rebuilt, 1);
    assert_eq!(verify_run("", 1, &rebuilt), Ok(()));
    assert_eq!(verdict(&rebuilt, cps(), &trusted), Some(3), "rebuilt");
    // ...and re-signing it needs the key: a checkpoint by another key is not trusted.
    let forger = signer();
    let forged = vec![checkpoint(&forger, &rebuilt[2]), checkpoint(&forger, &rebuilt[5])];
    assert_eq!(verdict(&rebuilt, forged, &trusted), Some(3), "forged");
    let mut altered = cps();
    altered[1].seq = 5;
    assert_eq!(verdict(&good, altered, &trusted), Some(5), "moved checkpoint");
    // A bad checkpoint at 6 and an edit at 4: the edit is the first fault, and the verdict is
    // not settled until the events reach it.
    let mut both = good.clone();
    both[3].target = "changed".into();
    let mut bad = cps();
    bad[1].signature = bad[0].signature.clone();
    let mut v = ChainVerifier::new(bad, &trusted);
    v.feed(&both[..2]);
    assert!(!v.is_settled());
    v.feed(&both[2..]);
    assert!(v.is_settled());
    assert_eq!(v.finish().map(|f| f.seq), Some(4));
}

/// Resume at the checkpoint at 6 (`good[5]`), fed from that event on.
fn resumed(events: &[StoredEvent], cp: AuditCheckpoint, trusted: &[AuditPublicKey]) -> Option<i64> {
    let mut v = ChainVerifier::resume(cp, trusted);
    v.feed(&events[5.min(events.len())..]);
    v.finish().map(|f| f.seq)
}

#[test]
fn a_resumed_check_holds_the_tail_to_the_newest_checkpoint() {
    let s = signer();
    let trusted = [s.public_key()];
    let good = chain(8);
    let cp = || checkpoint(&s, &good[5]);
    assert_eq!(resumed(&good, cp(), &trusted), None);
    let mut edited = good.clone();
    edited[5].detail = "{}".into();
    assert_eq!(resumed(&edited, cp(), &trusted), Some(6), "checkpointed event edited");
    let mut rebuilt = good.clone();
    rebuilt[5].detail = "{}".into();
    rehash(&mut rebuilt, 5);
    assert_eq!(resumed(&rebuilt, cp(), &trusted), Some(6), "checkpointed event edited and rehashed");
    let mut relinked = good.clone();
    relinked[6].prev_hash = "00".into();
    assert_eq!(resumed(&relinked, cp(), &trusted), Some(7), "tail link broken");
    assert_eq!(resumed(&good[..4], cp(), &trusted), Some(6), "cut back past the checkpoint");
    let mut forged = cp();
    forged.hash = good[4].hash.clone();
    assert_eq!(resumed(&good, forged.clone(), &trusted), Some(6), "forged checkpoint");
    // With no trusted key the signature is not checked, the hashes still are.
    assert_eq!(resumed(&good, forged, &[]), Some(6));
    let other = signer();
    assert_eq!(resumed(&good, checkpoint(&other, &good[5]), &[]), None);
    assert_eq!(resumed(&good, checkpoint(&other, &good[5]), &trusted), Some(6));
}
