//! `deadboltctl status`: reads the store, never creates or changes anything.

use crate::error::CliError;
use crate::report::UserView;
use crate::subject::{Directory, Subject};
use deadbolt_config::Config;
use deadbolt_core::store::Loaded;
use deadbolt_core::{StateStore, StoreError, Timestamp, UserName};
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
    let loaded = match store {
        None => Ok(Loaded::Absent),
        Some(store) => store.load(user),
    };
    match loaded {
        Ok(Loaded::Absent) => UserView::new(user, &subject, &Default::default(), now),
        Ok(Loaded::Present(state)) => UserView::new(user, &subject, &state, now),
        Ok(Loaded::Corrupt(why)) => UserView::unreadable(user, &subject, why, now),
        Err(err) => UserView::unreadable(user, &subject, err.to_string(), now),
    }
}

/// Every user with state, sorted by name.
pub fn view_all(
    store: Option<&StateStore>,
    config: &Config,
    directory: &dyn Directory,
    now: Timestamp,
) -> Result<Vec<UserView>, CliError> {
    let Some(store) = store else {
        return Ok(Vec::new());
    };
    Ok(store
        .users()?
        .iter()
        .map(|user| view_user(Some(store), config, directory, user, now))
        .collect())
}

/// `--locked`: keeps the users whose logins are refused now. Returns the
/// unreadable states left out, which someone should still look at.
pub fn keep_locked(views: &mut Vec<UserView>) -> Vec<UserView> {
    let (kept, dropped): (Vec<UserView>, Vec<UserView>) =
        std::mem::take(views).into_iter().partition(|v| v.refused);
    *views = kept;
    dropped.into_iter().filter(|v| v.error.is_some()).collect()
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

    #[test]
    fn a_missing_state_directory_means_nobody_has_state_and_stays_missing() {
        let parent = private_dir();
        let dir = parent.path().join("state");
        let store = open_for_reading(&dir, euid()).unwrap();
        assert!(store.is_none());
        let config = Config::default();
        let directory = FakeDirectory::default();
        let views = view_all(store.as_ref(), &config, &directory, NOW).unwrap();
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
        assert!(view_all(Some(&store), &config, &directory, NOW)
            .unwrap()
            .is_empty());
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
        let mut views = view_all(Some(&store), &config, &directory, NOW).unwrap();
        let names: Vec<&str> = views.iter().map(|v| v.user.as_str()).collect();
        assert_eq!(names, ["alice", "bob", "mallory"]);
        let unreadable = keep_locked(&mut views);
        let names: Vec<&str> = views.iter().map(|v| v.user.as_str()).collect();
        assert_eq!(names, ["alice"]);
        assert_eq!(unreadable.len(), 1);
        assert_eq!(unreadable[0].user, "mallory");
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
        let mut views = view_all(Some(&store), &config, &directory, NOW).unwrap();
        let json = serde_json::to_value(views[0].to_json()).unwrap();
        assert_eq!(json["locked"], false);
        assert_eq!(json["refused"], true);
        assert_eq!(json["expires_on"], "1970-01-01");
        assert!(keep_locked(&mut views).is_empty());
        assert!(views.is_empty());
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
        let all = view_all(Some(&store), &config, &directory, NOW).unwrap();
        assert_eq!(all.len(), 1);
        assert!(all[0].error.is_some());
        assert_eq!(fs::read(&path).unwrap(), b"not a state\n");
        assert_eq!(entries(dir.path()), ["mallory.state"]);
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
