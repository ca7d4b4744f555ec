//! Who a user is and which rules apply to him: the same answer the PAM
//! module reaches, so `status` says what a login would meet.

use deadbolt_config::{Config, EffectiveLockout, EffectivePassword};
use deadbolt_core::identity::{self, Account};
use deadbolt_core::password::AgeStatus;
use deadbolt_core::{LockStatus, Timestamp, UserName, UserState};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Where accounts and groups are looked up: NSS in the program, a fixed
/// table in tests. `Sync`: a listing asks from several threads.
pub trait Directory: Sync {
    fn lookup(&self, user: &str) -> Option<Account>;
    /// Every group of `user` (whose primary group is `primary_gid`), by gid.
    fn group_ids(&self, user: &str, primary_gid: u32) -> Vec<u32>;
    /// The gid of the group named `group`; `None` when it is not known.
    fn group_gid(&self, group: &str) -> Option<u32>;

    /// Whether `user` belongs to `group`, as primary or supplementary
    /// member: the question the PAM module asks.
    fn is_member(&self, user: &str, primary_gid: u32, group: &str) -> bool {
        self.group_gid(group)
            .is_some_and(|gid| self.group_ids(user, primary_gid).contains(&gid))
    }

    fn group_exists(&self, group: &str) -> bool {
        self.group_gid(group).is_some()
    }
}

/// The name a user's state is kept under: the account's own spelling, as the
/// PAM module keeps it (`ALICE` is alice where the directory ignores case).
/// A user NSS does not know keeps the name given.
pub fn canonical_name(directory: &dyn Directory, user: UserName) -> UserName {
    match directory.lookup(user.as_str()) {
        Some(account) if account.name != user.as_str() => {
            UserName::parse(&account.name).unwrap_or(user)
        }
        _ => user,
    }
}

/// The system's users and groups (local files, SSSD, LDAP...).
#[derive(Debug, Clone, Copy, Default)]
pub struct Nss;

impl Directory for Nss {
    fn lookup(&self, user: &str) -> Option<Account> {
        identity::lookup(user)
    }

    fn group_ids(&self, user: &str, primary_gid: u32) -> Vec<u32> {
        identity::group_ids(user, primary_gid)
    }

    fn group_gid(&self, group: &str) -> Option<u32> {
        identity::group_gid(group)
    }
}

/// A user with the policy that applies to him.
#[derive(Debug)]
pub struct Subject {
    /// `None`: NSS does not know him; the default policy applies.
    pub account: Option<Account>,
    pub policy: Arc<EffectiveLockout>,
    /// The password rules of the same policy: its ageing decides whether
    /// the password must change.
    pub password: Arc<EffectivePassword>,
    /// Root or an `admin_group` member without `even_deny_root`: failures
    /// are counted but never lock.
    pub exempt: bool,
}

impl Subject {
    /// Asks the directory about one user: what the PAM module does at a
    /// login. [`Resolver`] gives the same answer for many users at less
    /// cost.
    pub fn resolve(config: &Config, directory: &dyn Directory, user: &UserName) -> Subject {
        let name = user.as_str();
        let Some(account) = directory.lookup(name) else {
            return Subject {
                account: None,
                policy: Arc::new(config.effective_lockout(|_| false)),
                password: Arc::new(config.effective_password(|_| false)),
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
            policy: Arc::new(policy),
            password: Arc::new(password),
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
        (status.disabled && !self.is_root()) || (status.locked_out() && !self.exempt)
    }
}

/// The rules of one policy, shared by every user it applies to.
#[derive(Clone, Debug)]
struct Rules {
    policy: Arc<EffectiveLockout>,
    password: Arc<EffectivePassword>,
}

impl Rules {
    fn chosen(config: &Config, is_member: impl Fn(&str) -> bool) -> Rules {
        Rules {
            policy: Arc::new(config.effective_lockout(&is_member)),
            password: Arc::new(config.effective_password(&is_member)),
        }
    }

    fn same_as(&self, other: &Rules) -> bool {
        self.policy == other.policy && self.password == other.password
    }

    fn subject(&self, account: Option<Account>, exempt: bool) -> Subject {
        Subject {
            account,
            policy: Arc::clone(&self.policy),
            password: Arc::clone(&self.password),
            exempt,
        }
    }
}

/// [`Subject::resolve`] for the many users of a listing, with the same
/// answer for each: a group name is resolved once per run, not once per
/// user and policy; a user's groups are asked for once, and only when the
/// configuration asks about groups; the rules are chosen once for each
/// combination of memberships among the groups the policies name, not once
/// per user. Shared by the threads of a listing.
///
/// Within a run the directory is taken to hold still: a group created or
/// renumbered while the listing runs is seen as it was when first asked.
pub struct Resolver<'a> {
    config: &'a Config,
    directory: &'a dyn Directory,
    /// Every group some `[[policy]]` names, once each, in file order.
    policy_groups: Vec<String>,
    /// The rules of a user who is a member of none of `policy_groups`, as
    /// for a user NSS does not know.
    no_group: Rules,
    /// Every set of rules a user can get, each once: the first `[[policy]]`
    /// with a group he is in applies, so one group at a time reaches them
    /// all.
    candidates: Vec<Rules>,
    /// Gids by group name, as the directory first answered.
    gids: Mutex<HashMap<String, Option<u32>>>,
    /// The rules chosen, by membership of each of `policy_groups`.
    chosen: Mutex<HashMap<Vec<bool>, Rules>>,
}

impl std::fmt::Debug for Resolver<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("policy_groups", &self.policy_groups)
            .field("candidates", &self.candidates.len())
            .finish_non_exhaustive()
    }
}

/// A poisoned cache is still right: every entry is whole when inserted.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<'a> Resolver<'a> {
    pub fn new(config: &'a Config, directory: &'a dyn Directory) -> Self {
        let mut policy_groups: Vec<String> = Vec::new();
        for group in config.policies.iter().flat_map(|p| &p.groups) {
            if !policy_groups.contains(group) {
                policy_groups.push(group.clone());
            }
        }
        let no_group = Rules::chosen(config, |_| false);
        let mut candidates = vec![no_group.clone()];
        for group in &policy_groups {
            let rules = Rules::chosen(config, |g| g == group);
            if !candidates.iter().any(|known| known.same_as(&rules)) {
                candidates.push(rules);
            }
        }
        Resolver {
            config,
            directory,
            policy_groups,
            no_group,
            candidates,
            gids: Mutex::new(HashMap::new()),
            chosen: Mutex::new(HashMap::new()),
        }
    }

    /// The same as [`Subject::resolve`].
    pub fn subject(&self, user: &UserName) -> Subject {
        let name = user.as_str();
        let Some(account) = self.directory.lookup(name) else {
            return self.no_group.subject(None, false);
        };
        let groups = std::cell::OnceCell::new();
        let is_member = |group: &str| {
            self.gid(group).is_some_and(|gid| {
                groups
                    .get_or_init(|| self.directory.group_ids(name, account.gid))
                    .contains(&gid)
            })
        };
        let answers: Vec<bool> = self.policy_groups.iter().map(|g| is_member(g)).collect();
        let rules = self.rules_for(answers);
        let exempt = !rules.policy.even_deny_root
            && (account.uid == 0 || rules.policy.admin_group.as_deref().is_some_and(is_member));
        rules.subject(Some(account), exempt)
    }

    /// Whether any user with `state` could have his logins refused now, by
    /// a lock or for being disabled, whatever his account and groups: when
    /// not, `status --locked` leaves him out without asking NSS about him.
    pub fn may_be_refused(&self, state: &UserState, now: Timestamp) -> bool {
        self.candidates.iter().any(|rules| {
            let status = rules.policy.lockout.evaluate(state, now);
            status.disabled || status.locked_out()
        })
    }

    /// A subject for a listing row of `state` when nothing the row shows
    /// (text or JSON) can depend on who the user is: one set of rules for
    /// everyone (no `[[policy]]` can apply), and nothing for root, an
    /// exemption or an expiry to change (no lock, not disabled, the account
    /// not expired). It is that of a user NSS does not know: only
    /// [`crate::report::render_list`] and the JSON may be made of it, never
    /// the one-user details.
    pub fn for_anyone(&self, state: &UserState, now: Timestamp) -> Option<Subject> {
        let [rules] = self.candidates.as_slice() else {
            return None;
        };
        let status = rules.policy.lockout.evaluate(state, now);
        let age = rules.password.ageing.evaluate(state, now);
        (!status.disabled && !status.locked_out() && !age.account_expired)
            .then(|| rules.subject(None, false))
    }

    fn gid(&self, group: &str) -> Option<u32> {
        let mut gids = lock(&self.gids);
        if let Some(gid) = gids.get(group) {
            return *gid;
        }
        let gid = self.directory.group_gid(group);
        gids.insert(group.to_owned(), gid);
        gid
    }

    fn rules_for(&self, answers: Vec<bool>) -> Rules {
        let mut chosen = lock(&self.chosen);
        chosen
            .entry(answers)
            .or_insert_with_key(|answers| {
                Rules::chosen(self.config, |group| {
                    self.policy_groups
                        .iter()
                        .position(|g| g == group)
                        .is_some_and(|i| answers[i])
                })
            })
            .clone()
    }
}

#[cfg(test)]
pub mod fake {
    //! A directory for tests: no NSS, no system users needed.

    use super::*;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Groups made by [`FakeDirectory::with_user`] are numbered from here,
    /// away from the uids (and primary gids) tests use.
    const FIRST_GID: u32 = 50_000;

    #[derive(Debug, Default)]
    pub struct FakeDirectory {
        /// name -> (uid, primary gid, supplementary groups by name)
        pub users: BTreeMap<String, (u32, u32, Vec<String>)>,
        /// name -> gid
        pub groups: BTreeMap<String, u32>,
        /// How many times each question was asked.
        pub asked: Asked,
        /// Other spellings NSS accepts for a user: alias -> own name.
        pub aliases: BTreeMap<String, String>,
    }

    #[derive(Debug, Default)]
    pub struct Asked {
        pub lookups: AtomicUsize,
        pub group_lists: AtomicUsize,
        pub group_names: AtomicUsize,
    }

    impl Asked {
        pub fn get(counter: &AtomicUsize) -> usize {
            counter.load(Ordering::Relaxed)
        }
    }

    impl FakeDirectory {
        /// A user whose primary group is his own (gid = uid).
        pub fn with_user(self, name: &str, uid: u32, groups: &[&str]) -> Self {
            self.with_account(name, uid, uid, groups)
        }

        /// A user with a primary gid of his own choosing.
        pub fn with_account(mut self, name: &str, uid: u32, gid: u32, groups: &[&str]) -> Self {
            self.users.insert(
                name.to_owned(),
                (uid, gid, groups.iter().map(|g| (*g).to_owned()).collect()),
            );
            for g in groups {
                let next = FIRST_GID + self.groups.len() as u32;
                self.groups.entry((*g).to_owned()).or_insert(next);
            }
            self
        }

        /// NSS also finds `own` as `alias` (a case-insensitive directory).
        pub fn with_alias(mut self, alias: &str, own: &str) -> Self {
            self.aliases.insert(alias.to_owned(), own.to_owned());
            self
        }

        pub fn with_group(mut self, name: &str, gid: u32) -> Self {
            self.groups.insert(name.to_owned(), gid);
            self
        }
    }

    impl Directory for FakeDirectory {
        fn lookup(&self, user: &str) -> Option<Account> {
            self.asked.lookups.fetch_add(1, Ordering::Relaxed);
            let user = self.aliases.get(user).map_or(user, String::as_str);
            self.users.get(user).map(|(uid, gid, _)| Account {
                name: user.to_owned(),
                uid: *uid,
                gid: *gid,
                real_name: String::new(),
            })
        }

        /// As getgrouplist: the primary gid first, then the groups that
        /// list the user.
        fn group_ids(&self, user: &str, primary_gid: u32) -> Vec<u32> {
            self.asked.group_lists.fetch_add(1, Ordering::Relaxed);
            let mut gids = vec![primary_gid];
            if let Some((_, _, groups)) = self.users.get(user) {
                gids.extend(groups.iter().filter_map(|g| self.groups.get(g)));
            }
            gids
        }

        fn group_gid(&self, group: &str) -> Option<u32> {
            self.asked.group_names.fetch_add(1, Ordering::Relaxed);
            self.groups.get(group).copied()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeDirectory;
    use super::*;

    #[test]
    fn state_is_named_after_the_account_not_the_spelling_typed() {
        let directory = FakeDirectory::default()
            .with_user("alice", 1000, &[])
            .with_alias("ALICE", "alice");
        let typed = |name: &str| UserName::parse(name).unwrap();
        assert_eq!(canonical_name(&directory, typed("ALICE")).as_str(), "alice");
        assert_eq!(canonical_name(&directory, typed("alice")).as_str(), "alice");
        // Unknown to NSS: the name given is the only one there is.
        assert_eq!(canonical_name(&directory, typed("ghost")).as_str(), "ghost");
    }

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

#[cfg(test)]
mod resolver_tests {
    use super::fake::{Asked, FakeDirectory};
    use super::*;
    use crate::report::tests::{ago, failure, locked_state, NOW};
    use crate::report::{render_list, UserView};
    use deadbolt_core::state::Stamped;

    /// Policies that share groups (the first listed wins), a group NSS does
    /// not know, ageing in one policy only, and an admin group.
    const POLICIES: &str = r#"
[lockout]
deny = 3
admin_group = "wheel"

[[policy]]
name = "operators"
groups = ["missing", "ops"]
[policy.lockout]
deny = 1

[[policy]]
name = "developers"
groups = ["dev", "ops"]
[policy.lockout]
deny = 5
unlock_after = "never"
[policy.password]
max_age = "30d"

[[policy]]
name = "staff"
groups = ["staff"]
[policy.lockout]
enabled = false
"#;

    fn configs() -> Vec<Config> {
        [
            POLICIES,
            &POLICIES.replace("deny = 3\n", "deny = 3\neven_deny_root = true\n"),
            &POLICIES.replace("admin_group = \"wheel\"\n", ""),
            "[lockout]\nadmin_group = \"wheel\"\n",
            "[lockout]\nadmin_group = \"wheel\"\neven_deny_root = true\n",
            "[lockout]\ndeny = 2\n",
            "",
        ]
        .iter()
        .map(|text| Config::parse(text, "test.toml").unwrap())
        .collect()
    }

    const STAFF_GID: u32 = 4000;
    const WHEEL_GID: u32 = 4001;

    fn directory() -> FakeDirectory {
        FakeDirectory::default()
            .with_group("staff", STAFF_GID)
            .with_group("wheel", WHEEL_GID)
            .with_user("root", 0, &[])
            .with_user("admin", 1000, &["wheel"])
            .with_user("olga", 1001, &["ops"])
            .with_user("dan", 1002, &["dev"])
            .with_user("both", 1003, &["dev", "ops"])
            .with_user("devadmin", 1004, &["dev", "wheel"])
            .with_account("sam", 1005, STAFF_GID, &[])
            .with_account("primaryadmin", 1006, WHEEL_GID, &["dev"])
            .with_user("plain", 1007, &[])
            .with_user("rootops", 0, &["ops"])
    }

    const NAMES: [&str; 12] = [
        "root",
        "admin",
        "olga",
        "dan",
        "both",
        "devadmin",
        "sam",
        "primaryadmin",
        "plain",
        "rootops",
        "ghost",
        "olga",
    ];

    fn user(name: &str) -> UserName {
        UserName::parse(name).unwrap()
    }

    fn assert_same(name: &str, cached: &Subject, direct: &Subject) {
        assert_eq!(cached.account, direct.account, "{name}");
        assert_eq!(cached.policy, direct.policy, "{name}");
        assert_eq!(cached.password, direct.password, "{name}");
        assert_eq!(cached.exempt, direct.exempt, "{name}");
    }

    #[test]
    fn the_resolver_chooses_what_each_user_gets_without_it() {
        let dir = directory();
        for config in configs() {
            let resolver = Resolver::new(&config, &dir);
            // Twice: the second time from the caches.
            for _ in 0..2 {
                for name in NAMES {
                    let cached = resolver.subject(&user(name));
                    let direct = Subject::resolve(&config, &dir, &user(name));
                    assert_same(name, &cached, &direct);
                }
            }
        }
        // Spot checks of what they agree on.
        let config = Config::parse(POLICIES, "test.toml").unwrap();
        let resolver = Resolver::new(&config, &dir);
        let policy = |name: &str| resolver.subject(&user(name)).policy.policy_name.clone();
        assert_eq!(policy("olga"), "operators");
        assert_eq!(policy("both"), "operators");
        assert_eq!(policy("dan"), "developers");
        assert_eq!(policy("sam"), "staff");
        assert_eq!(policy("plain"), "default");
        assert_eq!(policy("ghost"), "default");
        assert!(resolver.subject(&user("primaryadmin")).exempt);
        assert!(resolver.subject(&user("rootops")).exempt);
        assert!(!resolver.subject(&user("dan")).exempt);
    }

    #[test]
    fn each_group_name_is_asked_for_once_per_run() {
        let config = Config::parse(POLICIES, "test.toml").unwrap();
        let dir = directory();
        let resolver = Resolver::new(&config, &dir);
        for _ in 0..10 {
            for name in NAMES {
                resolver.subject(&user(name));
            }
        }
        // missing, ops, dev, staff and wheel.
        assert_eq!(Asked::get(&dir.asked.group_names), 5);
        // Each known user's groups once per subject, never for ghost.
        assert_eq!(Asked::get(&dir.asked.group_lists), 10 * (NAMES.len() - 1));
        let direct = directory();
        for _ in 0..10 {
            for name in NAMES {
                Subject::resolve(&config, &direct, &user(name));
            }
        }
        assert!(Asked::get(&direct.asked.group_names) > 100);
    }

    #[test]
    fn no_group_is_asked_for_when_no_answer_needs_one() {
        let dir = directory();
        for text in [
            "",
            "[lockout]\nadmin_group = \"wheel\"\neven_deny_root = true\n",
        ] {
            let config = Config::parse(text, "test.toml").unwrap();
            let resolver = Resolver::new(&config, &dir);
            for name in NAMES {
                resolver.subject(&user(name));
            }
        }
        assert_eq!(Asked::get(&dir.asked.group_names), 0);
        assert_eq!(Asked::get(&dir.asked.group_lists), 0);
        assert_eq!(Asked::get(&dir.asked.lookups), 2 * NAMES.len());
    }

    /// States whose listing rows may or may not depend on who the user is.
    fn states() -> Vec<UserState> {
        let mut states = vec![UserState::default(), locked_state()];
        let mut one = UserState::default();
        one.failures.insert(failure(ago(30), "10.0.0.1"));
        states.push(one.clone());
        let mut four = locked_state();
        four.failures.insert(failure(ago(30), "10.0.0.1"));
        states.push(four);
        states.push(UserState {
            last_disable: Some(ago(60)),
            ..one.clone()
        });
        states.push(UserState {
            expires_on: Some(Stamped {
                set_at: ago(60),
                value: Some(0),
            }),
            ..one.clone()
        });
        states.push(UserState {
            last_password_change: Some(ago(40 * 86_400)),
            ..one.clone()
        });
        states.push(UserState {
            last_admin_reset: Some(ago(10)),
            ..UserState::default()
        });
        states
    }

    /// What a listing prints of one user: his text row and his JSON.
    fn printed(name: &str, subject: &Subject, state: &UserState) -> (String, String) {
        let view = UserView::new(&user(name), subject, state, NOW);
        let json = serde_json::to_string(&view.to_json()).unwrap();
        (
            render_list(&[view], &crate::timefmt::Zone::utc(), NOW, false),
            json,
        )
    }

    #[test]
    fn users_left_unasked_are_those_nss_could_change_nothing_for() {
        let dir = directory();
        for config in configs() {
            let resolver = Resolver::new(&config, &dir);
            for state in states() {
                let subjects: Vec<(&str, Subject)> = NAMES
                    .iter()
                    .map(|name| (*name, Subject::resolve(&config, &dir, &user(name))))
                    .collect();
                if !resolver.may_be_refused(&state, NOW) {
                    for (name, subject) in &subjects {
                        let view = UserView::new(&user(name), subject, &state, NOW);
                        assert!(!view.refused, "{name} {state:?}");
                    }
                }
                if let Some(anyone) = resolver.for_anyone(&state, NOW) {
                    for (name, subject) in &subjects {
                        assert_eq!(
                            printed(name, &anyone, &state),
                            printed(name, subject, &state),
                            "{name} {state:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn users_are_left_unasked_only_when_safe_and_then_often() {
        let policies = Config::parse(POLICIES, "test.toml").unwrap();
        let plain = Config::parse("[lockout]\nadmin_group = \"wheel\"\n", "test.toml").unwrap();
        let dir = directory();
        let mut one = UserState::default();
        one.failures.insert(failure(ago(30), "10.0.0.1"));
        let with_policies = Resolver::new(&policies, &dir);
        // operators lock at the first failure: he may be refused.
        assert!(with_policies.may_be_refused(&one, NOW));
        assert!(!with_policies.may_be_refused(&UserState::default(), NOW));
        // The policy shown depends on his groups.
        assert!(with_policies
            .for_anyone(&UserState::default(), NOW)
            .is_none());
        let without = Resolver::new(&plain, &dir);
        assert!(!without.may_be_refused(&one, NOW));
        assert!(without.may_be_refused(&locked_state(), NOW));
        assert!(without.for_anyone(&one, NOW).is_some());
        // Root and admin_group are exempt from a lock: ask.
        assert!(without.for_anyone(&locked_state(), NOW).is_none());
        let disabled = UserState {
            last_disable: Some(ago(60)),
            ..UserState::default()
        };
        assert!(without.may_be_refused(&disabled, NOW));
        assert!(without.for_anyone(&disabled, NOW).is_none());
        assert_eq!(Asked::get(&dir.asked.lookups), 0);
    }
}
