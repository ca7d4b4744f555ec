//! Who a user is and which rules apply to him: the same answer the PAM
//! module reaches, so `status` says what a login would meet.

use deadbolt_config::{Config, EffectiveLockout, EffectivePassword};
use deadbolt_core::identity::{self, Account};
use deadbolt_core::password::AgeStatus;
use deadbolt_core::{LockStatus, UserName};

/// Where accounts and groups are looked up: NSS in the program, a fixed
/// table in tests.
pub trait Directory {
    fn lookup(&self, user: &str) -> Option<Account>;
    fn is_member(&self, user: &str, primary_gid: u32, group: &str) -> bool;
    fn group_exists(&self, group: &str) -> bool;
}

/// The system's users and groups (local files, SSSD, LDAP...).
#[derive(Debug, Clone, Copy, Default)]
pub struct Nss;

impl Directory for Nss {
    fn lookup(&self, user: &str) -> Option<Account> {
        identity::lookup(user)
    }

    fn is_member(&self, user: &str, primary_gid: u32, group: &str) -> bool {
        identity::is_member(user, primary_gid, group)
    }

    fn group_exists(&self, group: &str) -> bool {
        identity::group_gid(group).is_some()
    }
}

/// A user with the policy that applies to him.
#[derive(Debug)]
pub struct Subject {
    /// `None`: NSS does not know him; the default policy applies.
    pub account: Option<Account>,
    pub policy: EffectiveLockout,
    /// The password rules of the same policy: its ageing decides whether
    /// the password must change.
    pub password: EffectivePassword,
    /// Root or an `admin_group` member without `even_deny_root`: failures
    /// are counted but never lock.
    pub exempt: bool,
}

impl Subject {
    pub fn resolve(config: &Config, directory: &dyn Directory, user: &UserName) -> Subject {
        let name = user.as_str();
        let Some(account) = directory.lookup(name) else {
            return Subject {
                account: None,
                policy: config.effective_lockout(|_| false),
                password: config.effective_password(|_| false),
                exempt: false,
            };
        };
        let is_member = |g: &str| directory.is_member(name, account.gid, g);
        let policy = config.effective_lockout(is_member);
        let password = config.effective_password(is_member);
        let exempt = !policy.even_deny_root
            && (account.uid == 0
                || policy
                    .admin_group
                    .as_deref()
                    .is_some_and(|g| directory.is_member(name, account.gid, g)));
        Subject {
            account: Some(account),
            policy,
            password,
            exempt,
        }
    }

    pub fn is_root(&self) -> bool {
        self.account.as_ref().is_some_and(|a| a.uid == 0)
    }

    /// Whether the account phase refuses a login for the account's expiry:
    /// everyone's but root's, as the PAM module decides it.
    pub fn refused_by_expiry(&self, age: &AgeStatus) -> bool {
        age.account_expired && !self.is_root()
    }

    /// Whether a login meeting `status` is refused, as the PAM module
    /// decides it: a disabled account is refused unless it is root's (the
    /// one account that can undo it), a failure lock unless exempt.
    pub fn refused_by(&self, status: &LockStatus) -> bool {
        (status.disabled && !self.is_root()) || (status.failure_locked && !self.exempt)
    }
}

#[cfg(test)]
pub mod fake {
    //! A directory for tests: no NSS, no system users needed.

    use super::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Default)]
    pub struct FakeDirectory {
        /// name -> (uid, gid, groups by name)
        pub users: BTreeMap<String, (u32, u32, Vec<String>)>,
        pub groups: Vec<String>,
    }

    impl FakeDirectory {
        pub fn with_user(mut self, name: &str, uid: u32, groups: &[&str]) -> Self {
            self.users.insert(
                name.to_owned(),
                (uid, uid, groups.iter().map(|g| (*g).to_owned()).collect()),
            );
            for g in groups {
                if !self.groups.iter().any(|known| known == g) {
                    self.groups.push((*g).to_owned());
                }
            }
            self
        }
    }

    impl Directory for FakeDirectory {
        fn lookup(&self, user: &str) -> Option<Account> {
            self.users.get(user).map(|(uid, gid, _)| Account {
                uid: *uid,
                gid: *gid,
                real_name: String::new(),
            })
        }

        fn is_member(&self, user: &str, _primary_gid: u32, group: &str) -> bool {
            self.users
                .get(user)
                .is_some_and(|(_, _, groups)| groups.iter().any(|g| g == group))
        }

        fn group_exists(&self, group: &str) -> bool {
            self.groups.iter().any(|g| g == group)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeDirectory;
    use super::*;

    const CONFIG: &str = r#"
[lockout]
deny = 3
admin_group = "wheel"

[password]
max_age = "90d"

[[policy]]
name = "contractors"
groups = ["contractors"]
[policy.lockout]
deny = 5
[policy.password]
max_age = "30d"
"#;

    fn config() -> Config {
        Config::parse(CONFIG, "test.toml").unwrap()
    }

    fn user(name: &str) -> UserName {
        UserName::parse(name).unwrap()
    }

    fn days(n: u64) -> std::time::Duration {
        std::time::Duration::from_secs(n * 86_400)
    }

    #[test]
    fn the_first_matching_policy_applies() {
        let dir = FakeDirectory::default()
            .with_user("carol", 1001, &["contractors"])
            .with_user("alice", 1002, &["staff"]);
        let carol = Subject::resolve(&config(), &dir, &user("carol"));
        assert_eq!(carol.policy.policy_name, "contractors");
        assert_eq!(carol.policy.lockout.deny, 5);
        assert_eq!(carol.password.policy_name, "contractors");
        assert_eq!(carol.password.ageing.max_age, Some(days(30)));
        assert!(!carol.exempt);
        let alice = Subject::resolve(&config(), &dir, &user("alice"));
        assert_eq!(alice.policy.policy_name, "default");
        assert_eq!(alice.policy.lockout.deny, 3);
        assert_eq!(alice.password.policy_name, "default");
        assert_eq!(alice.password.ageing.max_age, Some(days(90)));
    }

    #[test]
    fn root_and_admin_group_are_exempt() {
        let dir = FakeDirectory::default()
            .with_user("root", 0, &[])
            .with_user("admin", 1000, &["wheel"]);
        assert!(Subject::resolve(&config(), &dir, &user("root")).exempt);
        assert!(Subject::resolve(&config(), &dir, &user("admin")).exempt);
        let strict = Config::parse(
            "[lockout]\neven_deny_root = true\nadmin_group = \"wheel\"\n",
            "strict.toml",
        )
        .unwrap();
        assert!(!Subject::resolve(&strict, &dir, &user("root")).exempt);
        assert!(!Subject::resolve(&strict, &dir, &user("admin")).exempt);
    }

    #[test]
    fn an_unknown_user_gets_the_default_policy() {
        let dir = FakeDirectory::default();
        let ghost = Subject::resolve(&config(), &dir, &user("ghost"));
        assert!(ghost.account.is_none());
        assert_eq!(ghost.policy.policy_name, "default");
        assert_eq!(ghost.password.ageing.max_age, Some(days(90)));
        assert!(!ghost.exempt);
    }
}
