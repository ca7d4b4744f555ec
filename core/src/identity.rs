//! Who a user is, through NSS: local files, or a directory served by SSSD.

use nix::unistd::{Gid, Group, User};
use std::cell::OnceCell;
use std::ffi::CString;

/// What deadbolt needs to know of an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The account's own name, as NSS spells it. It can differ from the
    /// name typed at the prompt (`ALICE` or `alice@corp.example` where the
    /// directory ignores case or takes qualified names): state is kept
    /// under this one, so every spelling meets the same tally.
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The GECOS field's first part, the real name.
    pub real_name: String,
}

/// Looks a user up. `None` when NSS does not know him, or the lookup failed.
pub fn lookup(name: &str) -> Option<Account> {
    let user = User::from_name(name).ok().flatten()?;
    let gecos = user.gecos.to_string_lossy().into_owned();
    Some(Account {
        name: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        real_name: gecos.split(',').next().unwrap_or("").to_owned(),
    })
}

/// Whether `user` (whose primary group is `primary_gid`) belongs to the group
/// named `group`, as primary or supplementary member.
pub fn is_member(user: &str, primary_gid: u32, group: &str) -> bool {
    Membership::of(user, primary_gid).contains(group)
}

/// A user's groups, looked up once and asked about many group names: one
/// login checks every `[[policy]]` and `admin_group`. The lookup waits for
/// the first question, so a configuration without groups costs none.
#[derive(Clone, Debug)]
pub struct Membership {
    user: String,
    primary_gid: u32,
    gids: OnceCell<Vec<u32>>,
}

impl Membership {
    pub fn of(user: &str, primary_gid: u32) -> Self {
        Membership {
            user: user.to_owned(),
            primary_gid,
            gids: OnceCell::new(),
        }
    }

    /// Whether the group named `group` is one of them.
    pub fn contains(&self, group: &str) -> bool {
        group_gid(group).is_some_and(|gid| {
            self.gids
                .get_or_init(|| group_ids(&self.user, self.primary_gid))
                .contains(&gid)
        })
    }
}

/// The gid of the group named `group`.
pub fn group_gid(group: &str) -> Option<u32> {
    Group::from_name(group)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

/// All groups of a user, primary first.
pub fn group_ids(user: &str, primary_gid: u32) -> Vec<u32> {
    let Ok(c_user) = CString::new(user) else {
        return vec![primary_gid];
    };
    match nix::unistd::getgrouplist(&c_user, Gid::from_raw(primary_gid)) {
        Ok(groups) => groups.into_iter().map(Gid::as_raw).collect(),
        Err(_) => vec![primary_gid],
    }
}
