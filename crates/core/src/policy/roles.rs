//! The permission × role table. Default deny: each permission lists the roles allowed it, in one
//! exhaustive match, so a new permission does not compile until it has a row, and a role not
//! in a row is refused. `docs/permissions.md` is generated from this table.

use super::{Permission, Scope};
use crate::model::Role;

/// The roles the permission is allowed to, before matter membership and token scopes.
pub fn allowed_roles(perm: Permission) -> &'static [Role] {
    use Permission::*;
    use Role::{Admin, Auditor, Client, Owner, Staff};
    match perm {
        // Client work: the firm's matter workers, and clients on the matters they are listed on.
        ListMatters | ViewMatter | ListDocuments | ReadDocument | UploadDocument | ReadMessages | PostMessage => {
            &[Owner, Admin, Staff, Client]
        }
        CreateMatter | ListMembers | ManageMembers | ListUsers => &[Owner, Admin, Staff],
        // Everyone looks after their own sign-in.
        ManageOwnTokens | ManageOwnFactors | ManageOwnSessions => &[Owner, Admin, Staff, Auditor, Client],
        ManageUsers | ManageTenantSecurity | DecideApprovals | ReviewHeldDocuments => &[Owner, Admin],
        ReadAudit => &[Owner, Admin, Auditor],
        // Erasing or exporting the whole firm is the owner's decision alone (an admin may
        // approve it).
        RequestErasure | ExportTenant => &[Owner],
    }
}

/// What the role alone allows (see [`allowed_roles`]).
pub fn role_allows(role: Role, perm: Permission) -> bool {
    allowed_roles(perm).contains(&role)
}

/// Whether moving a user from `from` to `to` widens what they may do: the new role is allowed a
/// permission the old one was not, or works matters the old one could only see when listed.
/// Such a change waits for a second owner or admin.
pub fn rises_in_reach(from: Role, to: Role) -> bool {
    Permission::ALL.iter().any(|p| role_allows(to, *p) && !role_allows(from, *p))
        || (to.works_matters() && !from.works_matters())
}

/// The permission × role table as Markdown, for the documentation.
pub fn permission_table_markdown() -> String {
    let mut out = String::from("| permission | token scope |");
    for r in Role::ALL {
        out.push_str(&format!(" {} |", r.as_str()));
    }
    out.push_str("\n|---|---|");
    for _ in Role::ALL {
        out.push_str("---|");
    }
    out.push('\n');
    for perm in Permission::ALL {
        let scope = perm.scope().map(Scope::as_str).unwrap_or("(session only)");
        out.push_str(&format!("| {} | {} |", perm.describe(), scope));
        for r in Role::ALL {
            let cell = match (role_allows(r, perm), perm.is_matter_scoped(), r.works_matters()) {
                (false, _, _) => "no",
                (true, true, false) => "if on the matter's list",
                (true, _, _) => "yes",
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}
