//! `deadboltctl status`: reads the store, never creates or changes anything.

use crate::error::CliError;
use crate::report::UserView;
use crate::subject::{Directory, Resolver, Subject};
use deadbolt_config::Config;
use deadbolt_core::store::Loaded;
use deadbolt_core::{StateStore, StoreError, Timestamp, UserName, UserState};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Opens the store read-only. `None` when the state directory does not
/// exist: nobody has state yet.
pub fn open_for_reading(dir: &Path, euid: u32) -> Result<Option<StateStore>, CliError> {
    match StateStore::open_existing(dir) {
        Ok(store) => Ok(Some(store)),
        Err(StoreError::Missing { .. }) => Ok(None),
        Err(err) => {
            // An ordinary user meets root's 0700 directory: say what he
            // needs rather than that the directory is "insecure".
            if euid != 0 {
                if let Ok(meta) = std::fs::symlink_metadata(dir) {
                    if meta.uid() != euid {
                        return Err(CliError::CannotRead {
                            dir: dir.to_owned(),
                            owner: meta.uid(),
                        });
                    }
                }
            }
            Err(err.into())
        }
    }
}

/// What the store holds for one user: his state (empty when he has none or
/// it cannot be read), and why it could not be read.
fn load(store: Option<&StateStore>, user: &UserName) -> (UserState, Option<String>) {
    match store.map_or(Ok(Loaded::Absent), |store| store.load(user)) {
        Ok(Loaded::Absent) => (UserState::default(), None),
        Ok(Loaded::Present(state)) => (state, None),
        Ok(Loaded::Corrupt(why)) => (UserState::default(), Some(why)),
        Err(err) => (UserState::default(), Some(err.to_string())),
    }
}

fn view_of(
    user: &UserName,
    subject: &Subject,
    (state, error): &(UserState, Option<String>),
    now: Timestamp,
) -> UserView {
    match error {
        None => UserView::new(user, subject, state, now),
        Some(why) => UserView::unreadable(user, subject, why.clone(), now),
    }
}

/// One user's view. A state that cannot be read (corrupt, a link, an I/O
/// error) is reported in the view and left as it is.
pub fn view_user(
    store: Option<&StateStore>,
    config: &Config,
    directory: &dyn Directory,
    user: &UserName,
    now: Timestamp,
) -> UserView {
    let subject = Subject::resolve(config, directory, user);
    view_of(user, &subject, &load(store, user), now)
}

/// Every user with state, sorted by name: whom a listing covers.
pub fn listed_users(store: Option<&StateStore>) -> Result<Vec<UserName>, CliError> {
    match store {
        None => Ok(Vec::new()),
        Some(store) => Ok(store.users()?),
    }
}

/// A listing: every user with state, or with `--locked` those whose logins
/// are refused now.
#[derive(Debug, Default)]
pub struct Listing {
    /// In the order of the users listed.
    pub views: Vec<UserView>,
    /// `--locked`: the unreadable states left out as not locked, which
    /// someone should still look at.
    pub unreadable: Vec<UserView>,
}

/// What a listing does with one user.
enum Row {
    Shown(UserView),
    /// Left out by `--locked`, but unreadable.
    Unreadable(UserView),
    Hidden,
}

/// The listing of `users` (from [`listed_users`]), each with the view
/// [`view_user`] gives. Each user's state is read first; NSS is asked about
/// him only when what the listing shows can depend on it (see
/// [`Resolver::may_be_refused`] and [`Resolver::for_anyone`]), and then
/// through one [`Resolver`]. Users are shared among the cores: NSS and the
/// state files cost system calls, not computation. `progress` is told of
/// the users done as they are.
pub fn list(
    store: Option<&StateStore>,
    users: &[UserName],
    config: &Config,
    directory: &dyn Directory,
    now: Timestamp,
    only_locked: bool,
    progress: &(dyn Fn(u64) + Sync),
) -> Listing {
    let resolver = Resolver::new(config, directory);
    let row = |user: &UserName| -> Row {
        let loaded = load(store, user);
        let (state, error) = &loaded;
        if only_locked {
            // An unreadable state is never refused, but it is reported.
            if error.is_none() && !resolver.may_be_refused(state, now) {
                return Row::Hidden;
            }
        } else if let Some(subject) = resolver.for_anyone(state, now) {
            return Row::Shown(view_of(user, &subject, &loaded, now));
        }
        let view = view_of(user, &resolver.subject(user), &loaded, now);
        if !only_locked || view.refused {
            Row::Shown(view)
        } else if view.error.is_some() {
            Row::Unreadable(view)
        } else {
            Row::Hidden
        }
    };
    let rows = crate::parallel::map(users, row, progress);
    let mut listing = Listing::default();
    for row in rows {
        match row {
            Row::Shown(view) => listing.views.push(view),
            Row::Unreadable(view) => listing.unreadable.push(view),
            Row::Hidden => {}
        }
    }
    listing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{locked_state, NOW};
    use crate::subject::fake::FakeDirectory;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn private_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn euid() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    fn user(name: &str) -> UserName {
        UserName::parse(name).unwrap()
    }

    fn listing(
        store: Option<&StateStore>,
        config: &Config,
        directory: &dyn Directory,
        only_locked: bool,
    ) -> Listing {
        let users = listed_users(store).unwrap();
        list(store, &users, config, directory, NOW, only_locked, &|_| {})
    }

    fn view_all(
        store: Option<&StateStore>,
        config: &Config,
        directory: &dyn Directory,
    ) -> Vec<UserView> {
        listing(store, config, directory, false).views
    }

    #[test]
    fn a_missing_state_directory_means_nobody_has_state_and_stays_missing() {
        let parent = private_dir();
        let dir = parent.path().join("state");
        let store = open_for_reading(&dir, euid()).unwrap();
        assert!(store.is_none());
        let config = Config::default();
        let directory = FakeDirectory::default();
        let views = view_all(store.as_ref(), &config, &directory);
        assert!(views.is_empty());
        let alice = view_user(store.as_ref(), &config, &directory, &user("alice"), NOW);
        assert!(!alice.refused);
        assert_eq!(alice.status.failures, 0);
        assert!(!dir.exists());
        assert!(entries(parent.path()).is_empty());
    }

    #[test]
    fn status_reads_without_creating_anything() {
        let dir = private_dir();
        let store = open_for_reading(dir.path(), euid()).unwrap().unwrap();
        let config = Config::default();
        let directory = FakeDirectory::default().with_user("alice", 1001, &[]);
        let alice = view_user(Some(&store), &config, &directory, &user("alice"), NOW);
        assert!(!alice.refused);
        assert!(view_all(Some(&store), &config, &directory).is_empty());
        assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
    }

    #[test]
    fn listing_and_the_locked_filter() {
        let dir = private_dir();
        let store = StateStore::open_existing(dir.path()).unwrap();
        store
            .update(&user("alice"), NOW, |s| {
                *s = locked_state();
                true
            })
            .unwrap();
        store
            .update(&user("bob"), NOW, |s| {
                s.last_success = Some(NOW);
                true
            })
            .unwrap();
        let config = Config::default();
        let directory = FakeDirectory::default();
        fs::write(dir.path().join("mallory.state"), b"junk").unwrap();
        fs::set_permissions(
            dir.path().join("mallory.state"),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let before = entries(dir.path());
        let views = view_all(Some(&store), &config, &directory);
        let names: Vec<&str> = views.iter().map(|v| v.user.as_str()).collect();
        assert_eq!(names, ["alice", "bob", "mallory"]);
        let locked = listing(Some(&store), &config, &directory, true);
        let names: Vec<&str> = locked.views.iter().map(|v| v.user.as_str()).collect();
        assert_eq!(names, ["alice"]);
        assert_eq!(locked.unreadable.len(), 1);
        assert_eq!(locked.unreadable[0].user, "mallory");
        assert_eq!(entries(dir.path()), before);
    }

    #[test]
    fn the_locked_filter_keeps_locked_not_merely_expired() {
        let dir = private_dir();
        let store = StateStore::open_existing(dir.path()).unwrap();
        store
            .update(&user("dave"), NOW, |s| {
                s.expires_on = Some(deadbolt_core::state::Stamped {
                    set_at: NOW,
                    value: Some(0),
                });
                true
            })
            .unwrap();
        let config = Config::default();
        let directory = FakeDirectory::default().with_user("dave", 1004, &[]);
        let views = view_all(Some(&store), &config, &directory);
        let json = serde_json::to_value(views[0].to_json()).unwrap();
        assert_eq!(json["locked"], false);
        assert_eq!(json["refused"], true);
        assert_eq!(json["expires_on"], "1970-01-01");
        let locked = listing(Some(&store), &config, &directory, true);
        assert!(locked.views.is_empty());
        assert!(locked.unreadable.is_empty());
    }

    #[test]
    fn a_corrupt_state_is_reported_and_left_alone() {
        let dir = private_dir();
        let path = dir.path().join("mallory.state");
        fs::write(&path, b"not a state\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let store = StateStore::open_existing(dir.path()).unwrap();
        let config = Config::default();
        let directory = FakeDirectory::default();
        let view = view_user(Some(&store), &config, &directory, &user("mallory"), NOW);
        let json = serde_json::to_value(view.to_json()).unwrap();
        assert!(json["error"].as_str().unwrap().contains("header"), "{json}");
        assert_eq!(json["locked"], false);
        let all = view_all(Some(&store), &config, &directory);
        assert_eq!(all.len(), 1);
        assert!(all[0].error.is_some());
        assert_eq!(fs::read(&path).unwrap(), b"not a state\n");
        assert_eq!(entries(dir.path()), ["mallory.state"]);
    }

    /// Writes a state as the store does, without its fsyncs.
    fn put(dir: &Path, name: &str, bytes: &[u8]) {
        let path = dir.join(format!("{name}.state"));
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn state_bytes(state: &UserState) -> Vec<u8> {
        let mut bytes = deadbolt_core::store::STATE_HEADER.as_bytes().to_vec();
        serde_json::to_writer(&mut bytes, state).unwrap();
        bytes
    }

    fn printed(views: &[UserView]) -> (String, String) {
        (
            crate::report::render_list(views, &crate::timefmt::Zone::utc(), NOW, false),
            crate::report::json_array_line(views).unwrap(),
        )
    }

    #[test]
    fn a_large_listing_shows_what_asking_for_each_user_shows() {
        let dir = private_dir();
        let store = StateStore::open_existing(dir.path()).unwrap();
        let disabled = UserState {
            last_disable: Some(crate::report::tests::ago(60)),
            ..UserState::default()
        };
        let mut one = UserState::default();
        one.failures
            .insert(crate::report::tests::failure(NOW, "10.0.0.1"));
        let kinds = [UserState::default(), locked_state(), disabled, one];
        let mut directory = FakeDirectory::default()
            .with_user("root", 0, &[])
            .with_user("wheel0", 900, &["wheel"]);
        let mut names = vec!["root".to_owned(), "wheel0".to_owned()];
        // Enough users for several threads; every third known to NSS, in
        // one group or another; a few unreadable.
        for i in 0..1500 {
            let name = format!("u{i}");
            let groups: &[&str] = match i % 5 {
                0 => &["contractors"],
                1 => &["wheel"],
                _ => &[],
            };
            if i % 3 == 0 {
                directory = directory.with_user(&name, 2000 + i, groups);
            }
            names.push(name);
        }
        for (i, name) in names.iter().enumerate() {
            if i % 97 == 5 {
                put(dir.path(), name, b"junk");
            } else {
                put(dir.path(), name, &state_bytes(&kinds[i % kinds.len()]));
            }
        }
        let configs = [
            "[lockout]\nadmin_group = \"wheel\"\n",
            "[lockout]\nadmin_group = \"wheel\"\neven_deny_root = true\n",
            "[lockout]\nadmin_group = \"wheel\"\n[[policy]]\nname = \"contractors\"\n\
             groups = [\"contractors\"]\n[policy.lockout]\ndeny = 1\n",
        ];
        for text in configs {
            let config = Config::parse(text, "test.toml").unwrap();
            let users = listed_users(Some(&store)).unwrap();
            let expected: Vec<UserView> = users
                .iter()
                .map(|user| view_user(Some(&store), &config, &directory, user, NOW))
                .collect();
            let counted = std::sync::atomic::AtomicU64::new(0);
            let all = list(
                Some(&store),
                &users,
                &config,
                &directory,
                NOW,
                false,
                &|n| {
                    counted.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                },
            );
            assert_eq!(counted.into_inner(), users.len() as u64);
            assert!(all.unreadable.is_empty());
            assert_eq!(printed(&all.views), printed(&expected), "{text}");
            let locked = list(
                Some(&store),
                &users,
                &config,
                &directory,
                NOW,
                true,
                &|_| {},
            );
            let (refused, rest): (Vec<UserView>, Vec<UserView>) =
                expected.into_iter().partition(|v| v.refused);
            assert!(!refused.is_empty());
            assert_eq!(printed(&locked.views), printed(&refused), "{text}");
            let unreadable: Vec<UserView> =
                rest.into_iter().filter(|v| v.error.is_some()).collect();
            assert!(!unreadable.is_empty());
            assert_eq!(printed(&locked.unreadable), printed(&unreadable), "{text}");
        }
    }

    #[test]
    fn a_listing_asks_nss_only_about_users_it_may_show_differently() {
        let dir = private_dir();
        let store = StateStore::open_existing(dir.path()).unwrap();
        for i in 0..10 {
            put(
                dir.path(),
                &format!("u{i}"),
                &state_bytes(&UserState::default()),
            );
        }
        put(dir.path(), "locked", &state_bytes(&locked_state()));
        put(dir.path(), "broken", b"junk");
        let users = listed_users(Some(&store)).unwrap();
        let config = Config::parse("[lockout]\nadmin_group = \"wheel\"\n", "t.toml").unwrap();
        let directory = FakeDirectory::default();
        let lookups = || crate::subject::fake::Asked::get(&directory.asked.lookups);
        // Only the locked user: root or the admin group would be exempt.
        list(
            Some(&store),
            &users,
            &config,
            &directory,
            NOW,
            false,
            &|_| {},
        );
        assert_eq!(lookups(), 1);
        // The same, and the unreadable state reported as left out.
        let locked = list(
            Some(&store),
            &users,
            &config,
            &directory,
            NOW,
            true,
            &|_| {},
        );
        assert_eq!(lookups(), 3);
        assert_eq!(locked.views.len(), 1);
        assert_eq!(locked.unreadable.len(), 1);
        // With a policy, every row shows which applies.
        let config = Config::parse(
            "[[policy]]\nname = \"p\"\ngroups = [\"g\"]\n[policy.lockout]\ndeny = 2\n",
            "t.toml",
        )
        .unwrap();
        list(
            Some(&store),
            &users,
            &config,
            &directory,
            NOW,
            false,
            &|_| {},
        );
        assert_eq!(lookups(), 3 + users.len());
    }

    #[test]
    fn a_directory_that_is_not_private_is_refused() {
        let dir = private_dir();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let err = open_for_reading(dir.path(), euid()).unwrap_err();
        assert!(err.to_string().contains("0700"), "{err}");
    }

    #[test]
    fn an_ordinary_user_is_told_he_needs_root() {
        if euid() != 0 {
            return; // giving the directory to someone else needs root
        }
        let dir = private_dir();
        nix::unistd::chown(dir.path(), Some(nix::unistd::Uid::from_raw(12_345)), None).unwrap();
        // Root is told the directory is not his: it may be an attacker's.
        let err = open_for_reading(dir.path(), 0).unwrap_err();
        assert!(err.to_string().contains("owned by another user"), "{err}");
        // Anyone else is told he needs root.
        let err = open_for_reading(dir.path(), 1000).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "status needs the rights of uid 12345, the owner of {}",
                dir.path().display()
            )
        );
    }
}
