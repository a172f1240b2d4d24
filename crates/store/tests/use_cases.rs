//! The fast layer: the use cases over a real store, without HTTPS. Each test builds a `Portal`
//! on SQLite in a memory-backed directory and an in-memory object store, and drives the review
//! findings of the authorization issue through the use cases themselves, in milliseconds. The
//! integration suite (`crates/portcullis/tests/it/authz_*.rs`) drives the same findings over
//! HTTPS on both databases; this layer pins the use cases' own answers.
// Tests fail by panicking, with the reason in the message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use portcullis_core::audit::RequestMeta;
use portcullis_core::clock::ManualClock;
use portcullis_core::crypto::keys::{KeyBytes, Keyring, LocalKeyProvider};
use portcullis_core::error::Error;
use portcullis_core::ids::{MatterId, TenantId};
use portcullis_core::policy::Principal;
use portcullis_core::ports::ByteStream;
use portcullis_core::service::{Change, DlpAction, DownloadCap, Portal, Settings, cli_principal};
use portcullis_store::{ObjectBlobStore, SqlStore};
use secrecy::SecretString;
use std::sync::Arc;

const PASSWORD: &str = "correct horse battery staple";

/// A portal on a fresh database, and the directory that holds it (dropped with the test).
struct Fixture {
    portal: Portal,
    _dir: tempfile::TempDir,
}

async fn portal() -> Fixture {
    // /dev/shm keeps the database file in memory where it exists; any temp dir works.
    let base = std::path::Path::new("/dev/shm");
    let dir = if base.is_dir() { tempfile::tempdir_in(base) } else { tempfile::tempdir() }.unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = Arc::new(SqlStore::open(&url).await.unwrap());
    let blobs = Arc::new(ObjectBlobStore::new(Arc::new(object_store::memory::InMemory::new())));
    let keyring = Arc::new(Keyring::new(Arc::new(LocalKeyProvider::new(&KeyBytes::random().unwrap()).unwrap())));
    let portal = Portal::new(store, blobs, keyring, Arc::new(ManualClock::new()), Settings::default());
    Fixture { portal, _dir: dir }
}

fn meta() -> RequestMeta {
    RequestMeta { ip: Some("127.0.0.1".into()), ..RequestMeta::default() }
}

fn body(bytes: &'static [u8]) -> ByteStream {
    Box::pin(futures::stream::iter([Ok(bytes::Bytes::from_static(bytes))]))
}

/// A firm with its owner, and a way to add and sign in its people.
struct Firm<'a> {
    portal: &'a Portal,
    name: String,
    tenant: TenantId,
}

impl<'a> Firm<'a> {
    async fn new(portal: &'a Portal, name: &str) -> Firm<'a> {
        let (tenant, _) =
            portal.create_tenant(name, &format!("owner@{name}.example"), Some(PASSWORD.into())).await.unwrap();
        Firm { portal, name: name.into(), tenant }
    }

    async fn person(&self, local: &str, role: &str) -> Principal {
        let email = format!("{local}@{}.example", self.name);
        if local != "owner" {
            self.portal
                .create_user(&cli_principal(self.tenant), &email, "", role, Some(PASSWORD.into()), &meta())
                .await
                .unwrap();
        }
        self.sign_in(local).await.unwrap()
    }

    async fn sign_in(&self, local: &str) -> portcullis_core::Result<Principal> {
        let email = format!("{local}@{}.example", self.name);
        let pw = SecretString::from(PASSWORD);
        Ok(self.portal.login(&self.name, &email, pw, None, None, &meta()).await?.principal)
    }
}

async fn walled_matter(portal: &Portal, by: &Principal) -> MatterId {
    portal.create_matter(by, "W-1", "Walled", true, &meta()).await.unwrap().id
}

#[tokio::test]
async fn the_review_queue_keeps_the_wall() {
    let f = portal().await;
    let firm = Firm::new(&f.portal, "acme").await;
    let owner = firm.person("owner", "owner").await;
    let admin = firm.person("admin", "admin").await;
    let matter = walled_matter(&f.portal, &owner).await;
    let detectors = [("payment_card".to_string(), DlpAction::Quarantine)].into_iter().collect();
    let cap = DownloadCap { downloads: None, bytes: None };
    f.portal.set_dlp_policy(&owner, detectors, cap, &meta()).await.unwrap();
    let doc = f
        .portal
        .upload_document(&owner, matter, "card.txt", Some("text/plain"), body(b"card 4111 1111 1111 1111"), &meta())
        .await
        .unwrap();

    assert_eq!(f.portal.held_documents(&owner).await.unwrap().len(), 1, "the owner on the list sees it");
    assert!(f.portal.held_documents(&admin).await.unwrap().is_empty(), "the admin off the list does not");
    let released = f.portal.release_document(&admin, doc.id, &meta()).await;
    assert!(matches!(released, Err(Error::NotFound)), "{released:?}");
    let discarded = f.portal.discard_document(&admin, doc.id, &meta()).await;
    assert!(matches!(discarded, Err(Error::NotFound)), "{discarded:?}");
    assert_eq!(f.portal.held_documents(&owner).await.unwrap().len(), 1, "nothing changed");
}

#[tokio::test]
async fn a_member_taken_off_a_list_loses_the_matter_at_once() {
    let f = portal().await;
    let firm = Firm::new(&f.portal, "acme").await;
    let owner = firm.person("owner", "owner").await;
    let staff = firm.person("staff", "staff").await;
    let matter = walled_matter(&f.portal, &owner).await;
    f.portal.add_member(&owner, matter, "staff@acme.example", "staff", &meta()).await.unwrap();
    assert!(f.portal.list_documents(&staff, matter, &meta()).await.is_ok());
    f.portal.remove_member(&owner, matter, staff.user_id, &meta()).await.unwrap();
    let r = f.portal.list_documents(&staff, matter, &meta()).await;
    assert!(matches!(r, Err(Error::NotFound)), "{r:?}");
    let again = f.portal.remove_member(&owner, matter, staff.user_id, &meta()).await;
    assert!(matches!(again, Err(Error::NotFound)), "{again:?}");
}

#[tokio::test]
async fn a_deactivated_user_cannot_sign_in_until_reactivated_with_approval() {
    let f = portal().await;
    let firm = Firm::new(&f.portal, "acme").await;
    let owner = firm.person("owner", "owner").await;
    let admin = firm.person("admin", "admin").await;
    let staff = firm.person("staff", "staff").await;
    let user = f.portal.deactivate_user(&owner, staff.user_id, &meta()).await.unwrap();
    assert_eq!(user.status.as_str(), "disabled");
    assert!(matches!(firm.sign_in("staff").await, Err(Error::InvalidCredentials)));
    assert!(matches!(f.portal.deactivate_user(&owner, owner.user_id, &meta()).await, Err(Error::Invalid { .. })));
    let Change::Requested(req) = f.portal.reactivate_user(&owner, staff.user_id, &meta()).await.unwrap() else {
        panic!("reactivating staff must wait for a second owner or admin");
    };
    assert!(firm.sign_in("staff").await.is_err(), "not before the approval");
    assert!(matches!(f.portal.approve(&owner, req.id, &meta()).await, Err(Error::Forbidden(_))), "not one's own");
    f.portal.approve(&admin, req.id, &meta()).await.unwrap();
    assert!(firm.sign_in("staff").await.is_ok());
}

#[tokio::test]
async fn a_demotion_to_client_takes_the_user_off_every_list() {
    let f = portal().await;
    let firm = Firm::new(&f.portal, "acme").await;
    let owner = firm.person("owner", "owner").await;
    let staff = firm.person("staff", "staff").await;
    let matter = walled_matter(&f.portal, &owner).await;
    f.portal.add_member(&owner, matter, "staff@acme.example", "staff", &meta()).await.unwrap();
    assert_eq!(f.portal.change_role(&owner, staff.user_id, "client", &meta()).await.unwrap(), Change::Applied);
    let client = firm.sign_in("staff").await.unwrap();
    let r = f.portal.matter(&client, matter, &meta()).await;
    assert!(matches!(r, Err(Error::NotFound)), "{r:?}");
}

#[tokio::test]
async fn any_rise_in_reach_waits_and_is_rechecked_when_approved() {
    let f = portal().await;
    let firm = Firm::new(&f.portal, "acme").await;
    let owner = firm.person("owner", "owner").await;
    let admin = firm.person("admin", "admin").await;
    let client = firm.person("client", "client").await;
    let r = f.portal.change_role(&admin, client.user_id, "staff", &meta()).await.unwrap();
    let Change::Requested(req) = r else { panic!("client -> staff must wait for approval") };
    // The requester loses the right before the approval: the approval is refused.
    assert_eq!(f.portal.change_role(&owner, admin.user_id, "staff", &meta()).await.unwrap(), Change::Applied);
    let approved = f.portal.approve(&owner, req.id, &meta()).await;
    assert!(matches!(approved, Err(Error::Forbidden(_))), "{approved:?}");
    let users = f.portal.list_users(&owner).await.unwrap();
    let role = users.iter().find(|u| u.id == client.user_id).map(|u| u.role.as_str());
    assert_eq!(role, Some("client"));
}

#[tokio::test]
async fn a_new_two_factor_requirement_reaches_open_sessions() {
    let f = portal().await;
    let firm = Firm::new(&f.portal, "acme").await;
    let owner = firm.person("owner", "owner").await;
    let _staff = firm.person("staff", "staff").await;
    let email = "staff@acme.example";
    let login = f.portal.login("acme", email, PASSWORD.into(), None, None, &meta()).await.unwrap();
    let cookie = secrecy::ExposeSecret::expose_secret(&login.session_secret).to_string();
    assert!(f.portal.list_matters(&f.portal.authenticate_session(&cookie).await.unwrap(), &meta()).await.is_ok());
    assert_eq!(
        f.portal.set_two_factor_policy(&owner, true, false, &meta()).await.unwrap(),
        Change::Applied,
        "raising the requirement needs nobody else"
    );
    let confined = f.portal.authenticate_session(&cookie).await.unwrap();
    let r = f.portal.list_matters(&confined, &meta()).await;
    assert!(matches!(r, Err(Error::EnrolmentRequired)), "{r:?}");
}
