//! The policy's unit tests: every permission × role × wall state, the grants' special doors,
//! the role-change and review rules.

use super::*;
use crate::ids::{MatterId, TenantId, UserId};
use crate::model::Role;
use time::Duration;

fn principal(role: Role, via: Via) -> Principal {
    Principal {
        tenant_id: TenantId::new(),
        user_id: UserId::new(),
        email: "a@example.com".into(),
        display_name: "A".into(),
        role,
        via,
        second_factor: SecondFactor::default(),
    }
}

fn session() -> Via {
    Via::Session { csrf_token: "x".into(), session_hash: "h".into() }
}

fn facts(p: &Principal, membership: Option<Role>, restricted: bool) -> MatterFacts {
    MatterFacts { tenant_id: p.tenant_id, matter_id: MatterId::new(), membership, restricted }
}

/// Ask the policy for `perm` the way its use cases do, through the grant of its type. The match
/// is exhaustive: a new permission does not compile here until it is decided somewhere.
fn decide(p: &Principal, perm: Permission, m: &MatterFacts) -> Result<()> {
    use Permission as P;
    fn t<A: TenantAction>(p: &Principal) -> Result<()> {
        authorize_tenant::<A>(p).map(|_| ())
    }
    fn l<A: ListAction>(p: &Principal) -> Result<()> {
        authorize_list::<A>(p).map(|_| ())
    }
    fn m_<A: MatterAction>(p: &Principal, m: &MatterFacts) -> Result<()> {
        authorize_matter::<A>(p, m).map(|_| ())
    }
    match perm {
        P::ListMatters => l::<can::ListMatters>(p),
        P::CreateMatter => t::<can::CreateMatter>(p),
        P::ViewMatter => m_::<can::ViewMatter>(p, m),
        P::ListMembers => m_::<can::ListMembers>(p, m),
        P::ManageMembers => m_::<can::ManageMembers>(p, m),
        P::ListDocuments => m_::<can::ListDocuments>(p, m),
        P::ReadDocument => m_::<can::ReadDocument>(p, m),
        P::UploadDocument => m_::<can::UploadDocument>(p, m),
        P::ReadMessages => m_::<can::ReadMessages>(p, m),
        P::PostMessage => m_::<can::PostMessage>(p, m),
        P::ReviewHeldDocuments => m_::<can::ReviewHeldDocuments>(p, m),
        P::ListUsers => t::<can::ListUsers>(p),
        P::ManageUsers => t::<can::ManageUsers>(p),
        P::ManageOwnTokens => t::<can::ManageOwnTokens>(p),
        P::ManageOwnFactors => t::<can::ManageOwnFactors>(p),
        P::ManageTenantSecurity => t::<can::ManageTenantSecurity>(p),
        P::ReadAudit => t::<can::ReadAudit>(p),
        P::DecideApprovals => t::<can::DecideApprovals>(p),
        P::ManageOwnSessions => t::<can::ManageOwnSessions>(p),
        P::RequestErasure => t::<can::RequestErasure>(p),
        P::ExportTenant => t::<can::ExportTenant>(p),
    }
}

#[test]
fn every_permission_role_and_wall_state_is_decided_by_the_table() {
    for perm in Permission::ALL {
        for role in Role::ALL {
            for restricted in [false, true] {
                for listed in [false, true] {
                    let p = principal(role, session());
                    let membership = listed.then_some(if role == Role::Client { Role::Client } else { Role::Staff });
                    let m = facts(&p, membership, restricted);
                    let r = decide(&p, perm, &m);
                    let sees = listed || (role.works_matters() && !restricted);
                    let expected_ok = role_allows(role, perm) && (!perm.is_matter_scoped() || sees);
                    assert_eq!(
                        r.is_ok(),
                        expected_ok,
                        "{perm:?} as {role:?}, restricted {restricted}, listed {listed}: {r:?}"
                    );
                    if perm.is_matter_scoped() && !sees {
                        assert!(
                            matches!(r, Err(Error::NotFound)),
                            "{perm:?} {role:?}: an unseen matter must not exist"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn a_permission_is_allowed_only_to_the_roles_its_row_lists() {
    // Default deny: the roles each permission allows, written out. A permission added to the
    // table fails this test until its row is agreed here too.
    use Permission as P;
    use Role::{Admin as A, Auditor as U, Client as C, Owner as O, Staff as S};
    let expected: &[(Permission, &[Role])] = &[
        (P::ListMatters, &[O, A, S, C]),
        (P::CreateMatter, &[O, A, S]),
        (P::ViewMatter, &[O, A, S, C]),
        (P::ListMembers, &[O, A, S]),
        (P::ManageMembers, &[O, A, S]),
        (P::ListDocuments, &[O, A, S, C]),
        (P::ReadDocument, &[O, A, S, C]),
        (P::UploadDocument, &[O, A, S, C]),
        (P::ReadMessages, &[O, A, S, C]),
        (P::PostMessage, &[O, A, S, C]),
        (P::ReviewHeldDocuments, &[O, A]),
        (P::ListUsers, &[O, A, S]),
        (P::ManageUsers, &[O, A]),
        (P::ManageOwnTokens, &[O, A, S, U, C]),
        (P::ManageOwnFactors, &[O, A, S, U, C]),
        (P::ManageTenantSecurity, &[O, A]),
        (P::ReadAudit, &[O, A, U]),
        (P::DecideApprovals, &[O, A]),
        (P::ManageOwnSessions, &[O, A, S, U, C]),
        (P::RequestErasure, &[O]),
        (P::ExportTenant, &[O]),
    ];
    assert_eq!(expected.len(), Permission::ALL.len(), "every permission needs its row here");
    for (perm, roles) in expected {
        for role in Role::ALL {
            assert_eq!(role_allows(role, *perm), roles.contains(&role), "{perm:?} for {role:?}");
        }
    }
}

#[test]
fn every_permission_is_listed_once() {
    let mut seen = std::collections::HashSet::new();
    for perm in Permission::ALL {
        assert!(seen.insert(perm), "{perm:?} twice");
    }
}

#[test]
fn a_rise_in_reach_is_any_new_permission_or_matter_work() {
    use Role::*;
    for (from, to, rises) in [
        (Client, Staff, true),
        (Client, Auditor, true),
        (Client, Admin, true),
        (Staff, Auditor, true),
        (Staff, Admin, true),
        (Auditor, Staff, true),
        (Auditor, Client, true),
        (Staff, Client, false),
        (Admin, Staff, false),
        (Owner, Admin, false),
    ] {
        assert_eq!(rises_in_reach(from, to), rises, "{from:?} -> {to:?}");
    }
}

#[test]
fn only_the_command_line_imports_a_firm() {
    let owner = principal(Role::Owner, session());
    let new = TenantId::new();
    assert!(matches!(import_reach(&owner, new), Err(Error::Forbidden(_))));
    let cli = principal(Role::Owner, Via::Cli);
    let reach = import_reach(&cli, new).unwrap();
    assert_eq!(import_matter::<can::UploadDocument>(&reach, MatterId::new()).tenant_id(), new);
    assert_eq!(reach.matters().tenant_id(), new);
}

#[test]
fn an_export_reads_the_whole_firm_only_with_its_reach() {
    let p = principal(Role::Owner, session());
    let mine = authorize_list::<can::ListMatters>(&p).unwrap();
    assert!(export_matter::<can::ReadDocument>(&mine, MatterId::new(), p.user_id).is_err());
}

#[test]
fn nobody_reviews_themselves_while_someone_else_can() {
    let p = principal(Role::Admin, session());
    let other = UserId::new();
    assert!(may_review(&p, other, true).is_ok() && may_review(&p, other, false).is_ok());
    assert!(matches!(may_review(&p, p.user_id, true), Err(Error::Forbidden(_))));
    assert!(may_review(&p, p.user_id, false).is_ok(), "a sole admin can clear their own");
}

#[test]
fn protection_voids_checks_made_up_to_its_start() {
    let since = time::macros::datetime!(2026-11-24 12:00 UTC);
    for (at, kept) in [(since - Duration::seconds(1), false), (since, false), (since + Duration::seconds(1), true)] {
        let mut sf = SecondFactor { verified_at: Some(at), ..SecondFactor::default() };
        protection_resets_step_up(&mut sf, Some(since));
        assert_eq!(sf.verified_at.is_some(), kept, "check at {at}");
        protection_resets_step_up(&mut sf, None);
        assert_eq!(sf.verified_at.is_some(), kept, "no protection changes nothing");
    }
}

#[test]
fn step_up_needs_a_recent_check_only_of_users_with_a_factor() {
    let now = time::macros::datetime!(2026-11-24 12:00 UTC);
    let mut p = principal(Role::Staff, session());
    assert!(step_up(&p, false, now).is_ok(), "nothing to step up with");
    assert!(matches!(step_up(&p, true, now), Err(Error::StepUpRequired)));
    p.second_factor.verified_at = Some(now - Duration::minutes(9));
    assert!(step_up(&p, true, now).is_ok());
    p.second_factor.verified_at = Some(now - Duration::minutes(11));
    assert!(matches!(step_up(&p, true, now), Err(Error::StepUpRequired)));
    assert!(step_up(&principal(Role::Owner, Via::Cli), true, now).is_ok());
}

#[test]
fn a_session_that_must_enrol_may_only_enrol() {
    for role in Role::ALL {
        let mut p = principal(role, session());
        p.second_factor.enrol_required = true;
        for perm in Permission::ALL {
            let m = facts(&p, Some(role), false);
            let r = decide(&p, perm, &m);
            if matches!(perm, Permission::ManageOwnFactors | Permission::ManageOwnSessions) {
                assert!(r.is_ok(), "{role:?} could not enrol");
            } else {
                assert!(matches!(r, Err(Error::EnrolmentRequired)), "{role:?} {perm:?}: {r:?}");
            }
        }
    }
}

#[test]
fn a_session_that_must_step_up_may_only_step_up() {
    for role in Role::ALL {
        let mut p = principal(role, session());
        p.second_factor.step_up_required = true;
        for perm in Permission::ALL {
            let r = decide(&p, perm, &facts(&p, Some(role), false));
            if matches!(perm, Permission::ManageOwnFactors | Permission::ManageOwnSessions) {
                assert!(r.is_ok(), "{role:?} could not step up");
            } else {
                assert!(matches!(r, Err(Error::StepUpRequired)), "{role:?} {perm:?}: {r:?}");
            }
        }
    }
}

#[test]
fn other_tenants_matter_is_not_found_for_every_role() {
    for role in Role::ALL {
        let p = principal(role, session());
        let m = MatterFacts {
            tenant_id: TenantId::new(),
            matter_id: MatterId::new(),
            membership: Some(Role::Client),
            restricted: false,
        };
        for perm in Permission::ALL.into_iter().filter(|p| p.is_matter_scoped()) {
            assert!(matches!(decide(&p, perm, &m), Err(Error::NotFound)), "{role:?} {perm:?}");
        }
    }
}

#[test]
fn client_sees_only_listed_matters() {
    let p = principal(Role::Client, session());
    let mut m = facts(&p, None, false);
    assert!(matches!(authorize_matter::<can::ReadDocument>(&p, &m), Err(Error::NotFound)));
    m.membership = Some(Role::Client);
    assert!(authorize_matter::<can::ReadDocument>(&p, &m).is_ok());
    assert!(matches!(authorize_matter::<can::ManageMembers>(&p, &m), Err(Error::Forbidden(_))));
    assert_eq!(authorize_list::<can::ListMatters>(&p).unwrap().visibility(), MatterVisibility::MemberOf(p.user_id));
}

#[test]
fn the_walls_bind_every_firm_wide_view() {
    // The audit log and the held-documents queue show owners, admins and auditors every
    // unrestricted matter and the restricted ones they are listed on: never the whole firm.
    for role in [Role::Owner, Role::Admin, Role::Auditor] {
        let p = principal(role, session());
        assert_eq!(
            authorize_list::<can::ReadAudit>(&p).unwrap().visibility(),
            MatterVisibility::Unrestricted(p.user_id)
        );
    }
    for role in [Role::Owner, Role::Admin] {
        let p = principal(role, session());
        let v = authorize_list::<can::ReviewHeldDocuments>(&p).unwrap().visibility();
        assert_eq!(v, MatterVisibility::Unrestricted(p.user_id));
    }
}

#[test]
fn token_scopes_limit_what_a_role_allows() {
    let token = |scopes| Via::Token { id: crate::ids::TokenId::new(), scopes };
    let p = principal(Role::Owner, token(vec![Scope::Read]));
    assert!(authorize_list::<can::ListMatters>(&p).is_ok());
    assert!(matches!(authorize_tenant::<can::CreateMatter>(&p), Err(Error::Forbidden(_))));
    assert!(matches!(authorize_tenant::<can::ManageUsers>(&p), Err(Error::Forbidden(_))));
    assert!(matches!(authorize_tenant::<can::ManageOwnTokens>(&p), Err(Error::Forbidden(_))));
    // Scopes do not imply each other: a write token cannot read back what it uploads.
    let w = principal(Role::Owner, token(vec![Scope::Write]));
    assert!(authorize_tenant::<can::CreateMatter>(&w).is_ok());
    assert!(matches!(authorize_list::<can::ListMatters>(&w), Err(Error::Forbidden(_))));
    let a = principal(Role::Owner, token(vec![Scope::Admin]));
    assert!(authorize_tenant::<can::ManageUsers>(&a).is_ok());
    assert!(matches!(authorize_tenant::<can::ListUsers>(&a), Err(Error::Forbidden(_))));
    // A held document is reviewed in a session only.
    let all = principal(Role::Owner, token(Scope::ALL.to_vec()));
    let m = facts(&all, Some(Role::Staff), true);
    assert!(matches!(authorize_matter::<can::ReviewHeldDocuments>(&all, &m), Err(Error::Forbidden(_))));
}

#[test]
fn a_token_may_only_name_scopes_its_role_can_use() {
    assert_eq!(usable_scopes(Role::Owner), Scope::ALL.to_vec());
    assert_eq!(usable_scopes(Role::Staff), vec![Scope::Read, Scope::Write]);
    assert_eq!(usable_scopes(Role::Client), vec![Scope::Read, Scope::Write]);
    assert_eq!(usable_scopes(Role::Auditor), vec![Scope::Read]);
}

#[test]
fn role_changes_follow_the_four_eyes_rules() {
    use RoleChangeRule::{Direct, NeedsApproval};
    let owner = principal(Role::Owner, session());
    let admin = principal(Role::Admin, session());
    let staff = principal(Role::Staff, session());
    assert_eq!(may_change_role(&owner, Role::Staff, Role::Admin).unwrap(), NeedsApproval);
    assert_eq!(may_change_role(&owner, Role::Staff, Role::Owner).unwrap(), NeedsApproval);
    assert_eq!(may_change_role(&admin, Role::Staff, Role::Admin).unwrap(), NeedsApproval);
    assert_eq!(may_change_role(&admin, Role::Staff, Role::Client).unwrap(), Direct);
    assert_eq!(may_change_role(&owner, Role::Admin, Role::Staff).unwrap(), Direct);
    // Any rise in reach waits for a second owner or admin.
    assert_eq!(may_change_role(&owner, Role::Client, Role::Staff).unwrap(), NeedsApproval);
    assert_eq!(may_change_role(&admin, Role::Client, Role::Auditor).unwrap(), NeedsApproval);
    assert_eq!(may_change_role(&admin, Role::Staff, Role::Auditor).unwrap(), NeedsApproval);
    assert!(matches!(may_change_role(&admin, Role::Staff, Role::Owner), Err(Error::Forbidden(_))));
    assert!(matches!(may_change_role(&admin, Role::Admin, Role::Staff), Err(Error::Forbidden(_))));
    assert!(matches!(may_change_role(&owner, Role::Owner, Role::Staff), Err(Error::Forbidden(_))));
    assert!(matches!(may_change_role(&staff, Role::Client, Role::Staff), Err(Error::Forbidden(_))));
    assert!(matches!(may_change_role(&owner, Role::Staff, Role::Staff), Err(Error::Invalid { .. })));
    assert!(may_create_user(&admin, Role::Admin).is_err());
    assert!(may_create_user(&principal(Role::Owner, Via::Cli), Role::Admin).is_ok());
    assert!(may_create_user(&principal(Role::Owner, Via::Cli), Role::Owner).is_err());
}

#[test]
fn documentation_shows_the_current_table() {
    let doc = include_str!("../../../../docs/permissions.md");
    let expected = format!("<!-- generated:begin -->\n{}<!-- generated:end -->", permission_table_markdown());
    assert!(
        doc.contains(&expected),
        "docs/permissions.md is stale; put this between the generated markers:\n{expected}"
    );
}

#[test]
fn table_has_a_row_per_permission() {
    let t = permission_table_markdown();
    assert_eq!(t.lines().count(), 2 + Permission::ALL.len());
}

#[test]
fn deactivation_lowers_reach_and_reactivation_raises_it() {
    use RoleChangeRule::{Direct, NeedsApproval};
    let owner = principal(Role::Owner, session());
    let admin = principal(Role::Admin, session());
    let staff = principal(Role::Staff, session());
    assert!(may_deactivate(&admin, UserId::new(), Role::Staff).is_ok());
    assert!(matches!(may_deactivate(&admin, admin.user_id, Role::Admin), Err(Error::Invalid { .. })), "not oneself");
    assert!(matches!(may_deactivate(&admin, UserId::new(), Role::Admin), Err(Error::Forbidden(_))));
    assert!(may_deactivate(&owner, UserId::new(), Role::Admin).is_ok());
    assert!(matches!(may_deactivate(&staff, UserId::new(), Role::Client), Err(Error::Forbidden(_))));
    assert_eq!(may_reactivate(&admin, Role::Client).unwrap(), Direct);
    assert_eq!(may_reactivate(&admin, Role::Staff).unwrap(), NeedsApproval);
    assert_eq!(may_reactivate(&owner, Role::Auditor).unwrap(), NeedsApproval);
    assert!(matches!(may_reactivate(&admin, Role::Owner), Err(Error::Forbidden(_))));
    assert_eq!(may_reactivate(&principal(Role::Owner, Via::Cli), Role::Admin).unwrap(), Direct);
}

#[test]
fn crossing_the_staff_client_line_clears_the_lists() {
    use Role::*;
    for (from, to, clears) in [
        (Staff, Client, true),
        (Client, Staff, true),
        (Staff, Auditor, true),
        (Admin, Staff, false),
        (Staff, Admin, false),
        (Owner, Admin, false),
    ] {
        assert_eq!(role_change_clears_memberships(from, to), clears, "{from:?} -> {to:?}");
    }
}

#[test]
fn a_rotation_reaches_its_firm_only_while_open() {
    let mut r = crate::model::KeyRotation {
        tenant_id: TenantId::new(),
        target_version: 3,
        started_at: time::macros::datetime!(2026-12-01 12:00 UTC),
        finished_at: None,
        heartbeat_at: None,
        documents_done: 0,
        fields_done: 0,
    };
    let reach = rotation_reach(&r).unwrap();
    assert_eq!((reach.tenant_id(), reach.target()), (r.tenant_id, 3));
    r.finished_at = Some(r.started_at);
    assert!(matches!(rotation_reach(&r), Err(Error::WrongState(_))));
}
