//! `reactivate`, `disable`, `enable`, `reset-password` and `expire`: the
//! changes an administrator makes.
//!
//! Each is one read-modify-write under the user's lock, so it never loses a
//! failure the PAM module records at the same moment. Times only move
//! forward: a change never sets a time earlier than the one it replaces.

use crate::audit::Actor;
use crate::error::CliError;
use crate::subject::{Directory, Subject};
use crate::timefmt::{clock, relative_day, Zone};
use deadbolt_config::Config;
use deadbolt_core::password::{day_start, format_date};
use deadbolt_core::state::Stamped;
use deadbolt_core::{LockStatus, StateStore, StoreError, Timestamp, UserName};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Reactivate,
    Disable,
    Enable,
    /// The password was set by an administrator: it must change at the
    /// next login.
    ResetPassword,
    /// The account expires on this day (days since 1970-01-01, from 00:00
    /// UTC); `None`: it never expires.
    Expire(Option<i64>),
}

impl Action {
    pub fn verb(self) -> &'static str {
        match self {
            Action::Reactivate => "reactivate",
            Action::Disable => "disable",
            Action::Enable => "enable",
            Action::ResetPassword => "reset-password",
            Action::Expire(_) => "expire",
        }
    }

    /// What was done, for the log: `alice <past> by root (uid 0)`.
    fn past(self) -> String {
        match self {
            Action::Reactivate => "reactivated".to_owned(),
            Action::Disable => "disabled".to_owned(),
            Action::Enable => "enabled".to_owned(),
            Action::ResetPassword => "marked for a password change".to_owned(),
            Action::Expire(Some(day)) => format!("set to expire on {}", format_date(day)),
            Action::Expire(None) => "set to never expire".to_owned(),
        }
    }
}

/// What a change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The one-line confirmation for stdout.
    pub message: String,
    /// The line for syslog, when something was written.
    pub log: Option<String>,
    /// Things the administrator should know, for stderr.
    pub notes: Vec<String>,
}

/// Changes need root, or the owner of the state directory (the store
/// refuses a directory that is not the caller's anyway).
pub fn may_change(euid: u32, dir: &Path) -> bool {
    euid == 0 || std::fs::symlink_metadata(dir).is_ok_and(|meta| meta.uid() == euid)
}

fn failures_text(n: usize) -> String {
    if n == 1 {
        "1 failure".to_owned()
    } else {
        format!("{n} failures")
    }
}

pub struct Request<'a> {
    pub action: Action,
    pub user: &'a UserName,
    pub config: &'a Config,
    pub directory: &'a dyn Directory,
    pub euid: u32,
    pub actor: &'a Actor,
    pub now: Timestamp,
    /// The zone the confirmation shows times in.
    pub zone: &'a Zone,
}

pub fn apply(request: &Request<'_>) -> Result<Outcome, CliError> {
    let Request {
        action,
        user,
        config,
        directory,
        euid,
        actor,
        now,
        zone,
    } = *request;
    let dir = config.state.dir.as_path();
    if !may_change(euid, dir) {
        return Err(CliError::NeedsRoot(action.verb()));
    }
    let subject = Subject::resolve(config, directory, user);
    if subject.account.is_none() {
        // Only a user with state may be changed without NSS knowing him:
        // a typo must not create state for a user who does not exist.
        let has_state = match StateStore::open_existing(dir) {
            Ok(store) => store.has_state(user),
            Err(StoreError::Missing { .. }) => false,
            Err(err) => return Err(err.into()),
        };
        if !has_state {
            return Err(CliError::NoSuchUser(user.to_string()));
        }
    }
    let store = StateStore::open_or_create(dir)?;
    let policy = subject.policy.lockout;
    let mut before: Option<(LockStatus, usize)> = None;
    let mut expired_before: Option<i64> = None;
    let updated = store.update(user, now, |state| match action {
        Action::Reactivate => {
            let pending = state.live_failures().filter(|f| f.time <= now).count();
            before = Some((policy.evaluate(state, now), pending));
            state.last_reactivation = state.last_reactivation.max(Some(now));
            true
        }
        Action::Disable => {
            if state.is_disabled() {
                return false;
            }
            // An enable dated later (a host with a fast clock) would win:
            // equal times leave the account disabled.
            state.last_disable = Some(now.max(state.last_enable.unwrap_or(now)));
            true
        }
        Action::Enable => {
            if !state.is_disabled() {
                return false;
            }
            let after_disable = state.last_disable.map(|t| Timestamp(t.0.saturating_add(1)));
            state.last_enable = Some(now.max(after_disable.unwrap_or(now)));
            true
        }
        Action::ResetPassword => {
            // A change recorded at or after the reset ends it: one dated
            // later than now (a host with a fast clock) must not.
            let floor = state.last_admin_reset.max(state.last_password_change);
            state.last_admin_reset = Some(floor.map_or(now, |t| t.max(now)));
            true
        }
        Action::Expire(day) => {
            let current = state.expires_on.as_ref().and_then(|e| e.value);
            expired_before = current.filter(|&d| day_start(d) <= now);
            if current == day {
                return false;
            }
            // The latest setting wins a merge: this one must be later than
            // the one it replaces.
            let set_at = match &state.expires_on {
                Some(e) => now.max(Timestamp(e.set_at.0.saturating_add(1))),
                None => now,
            };
            state.expires_on = Some(Stamped { set_at, value: day });
            true
        }
    })?;

    let mut notes = Vec::new();
    for q in &updated.quarantined {
        notes.push(format!(
            "{user}'s state could not be read ({}); it was moved to {} and a new one started",
            q.why,
            q.kept_at.display()
        ));
    }
    let after = policy.evaluate(&updated.state, now);
    let (message, detail) = match action {
        Action::Reactivate => {
            let (was, pending) = before.unwrap_or((after, 0));
            let mut head = format!("{user} reactivated");
            if was.failure_locked && !subject.exempt {
                match was.locked_until {
                    Some(until) => {
                        head.push_str(&format!(" (was locked until {})", clock(zone, until)))
                    }
                    None => head.push_str(" (was locked until reactivated)"),
                }
            }
            let detail = if pending == 0 {
                "no failures to clear".to_owned()
            } else {
                format!("{} cleared", failures_text(pending))
            };
            let mut message = format!("{head}; {detail}");
            if updated.state.is_disabled() {
                message.push_str(&format!(
                    "; the account is still disabled (deadboltctl enable {user})"
                ));
            }
            (message, Some(detail))
        }
        Action::Disable if !updated.written => {
            let since = updated
                .state
                .last_disable
                .map(|t| format!(" (since {})", clock(zone, t)))
                .unwrap_or_default();
            (
                format!("{user} is already disabled{since}; nothing changed"),
                None,
            )
        }
        Action::Disable => {
            if subject.is_root() {
                notes.push(
                    "root's logins are never refused for being disabled; the state records it"
                        .to_owned(),
                );
            }
            (
                format!("{user} disabled: every login is refused until it is enabled"),
                None,
            )
        }
        Action::Enable if !updated.written => {
            (format!("{user} is not disabled; nothing changed"), None)
        }
        Action::Enable => {
            let mut message = format!("{user} enabled");
            if after.failure_locked && !subject.exempt {
                message.push_str(&format!(
                    "; still locked after {} (deadboltctl reactivate {user})",
                    failures_text(after.failures as usize)
                ));
            }
            (message, None)
        }
        Action::ResetPassword => (
            format!("{user} must change the password at the next login"),
            None,
        ),
        Action::Expire(Some(day)) if !updated.written => (
            format!(
                "{user} already expires on {}; nothing changed",
                format_date(day)
            ),
            None,
        ),
        Action::Expire(None) if !updated.written => {
            (format!("{user} has no expiry date; nothing changed"), None)
        }
        Action::Expire(Some(day)) => {
            let date = format_date(day);
            if subject.is_root() {
                notes.push(
                    "root's logins are never refused for an expired account; the state records it"
                        .to_owned(),
                );
                (format!("{user} set to expire on {date}"), None)
            } else if day_start(day) <= now {
                notes.push(format!(
                    "note: {date} ({}) is not in the future: the account expired at once",
                    relative_day(now, day)
                ));
                (
                    format!("{user} expired on {date}: every login is refused from now on"),
                    None,
                )
            } else {
                (
                    format!(
                        "{user} expires on {date} ({}): from {} every login is refused",
                        relative_day(now, day),
                        clock(zone, day_start(day))
                    ),
                    None,
                )
            }
        }
        Action::Expire(None) => {
            let mut message = format!("{user} no longer expires");
            if let Some(day) = expired_before {
                message.push_str(&format!(" (it had expired on {})", format_date(day)));
            }
            (message, None)
        }
    };
    let log = updated.written.then(|| {
        let mut line = format!("{user} {} by {actor}", action.past());
        if let Some(detail) = detail {
            line.push_str("; ");
            line.push_str(&detail);
        }
        line
    });
    Ok(Outcome {
        message,
        log,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{failure, locked_state, NOW};
    use crate::subject::fake::FakeDirectory;
    use deadbolt_core::password::{parse_date, Ageing};
    use deadbolt_core::store::Loaded;
    use deadbolt_core::UserState;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;
    use std::time::Duration;

    struct Fixture {
        _parent: tempfile::TempDir,
        dir: PathBuf,
        config: Config,
        directory: FakeDirectory,
        actor: Actor,
    }

    fn euid() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    /// A root-owned (or caller-owned) 0700 parent; the state directory in it
    /// does not exist yet.
    fn fixture() -> Fixture {
        let parent = tempfile::tempdir().unwrap();
        fs::set_permissions(parent.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let dir = parent.path().join("state");
        let text = format!(
            "[state]\ndir = \"{}\"\n\n[[policy]]\nname = \"strict\"\ngroups = [\"strict\"]\n\
             [policy.lockout]\nunlock_after = \"never\"\n",
            dir.display()
        );
        Fixture {
            _parent: parent,
            dir,
            config: Config::parse(&text, "test.toml").unwrap(),
            directory: FakeDirectory::default()
                .with_user("alice", 1001, &[])
                .with_user("carol", 1003, &["strict"])
                .with_user("root", 0, &[]),
            actor: Actor::new(0, Some("root".into()), Some("bob".into())),
        }
    }

    impl Fixture {
        fn run(&self, action: Action, name: &str, now: Timestamp) -> Result<Outcome, CliError> {
            self.run_as(action, name, now, euid())
        }

        fn run_as(
            &self,
            action: Action,
            name: &str,
            now: Timestamp,
            euid: u32,
        ) -> Result<Outcome, CliError> {
            self.run_in(&Zone::utc(), action, name, now, euid)
        }

        fn run_in(
            &self,
            zone: &Zone,
            action: Action,
            name: &str,
            now: Timestamp,
            euid: u32,
        ) -> Result<Outcome, CliError> {
            apply(&Request {
                action,
                user: &UserName::parse(name).unwrap(),
                config: &self.config,
                directory: &self.directory,
                euid,
                actor: &self.actor,
                now,
                zone,
            })
        }

        fn store(&self) -> StateStore {
            StateStore::open_or_create(&self.dir).unwrap()
        }

        fn seed(&self, name: &str, state: UserState) {
            self.store()
                .update(&UserName::parse(name).unwrap(), NOW, |s| {
                    *s = state;
                    true
                })
                .unwrap();
        }

        fn state(&self, name: &str) -> UserState {
            match self.store().load(&UserName::parse(name).unwrap()).unwrap() {
                Loaded::Present(state) => state,
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn reactivate_clears_a_lock() {
        let fx = fixture();
        fx.seed("alice", locked_state());
        let out = fx.run(Action::Reactivate, "alice", NOW).unwrap();
        assert_eq!(
            out.message,
            "alice reactivated (was locked until 2026-11-27 23:14:09 UTC); 3 failures cleared"
        );
        assert_eq!(
            out.log.as_deref(),
            Some("alice reactivated by root (uid 0, SUDO_USER=bob); 3 failures cleared")
        );
        assert!(out.notes.is_empty());
        let state = fx.state("alice");
        assert_eq!(state.last_reactivation, Some(NOW));
        assert!(
            !Config::default()
                .effective_lockout(|_| false)
                .lockout
                .evaluate(&state, NOW)
                .locked
        );
    }

    #[test]
    fn confirmations_show_the_administrators_zone() {
        let fx = fixture();
        let paris = Zone::named("Europe/Paris");
        fx.seed("alice", locked_state());
        let out = fx
            .run_in(&paris, Action::Reactivate, "alice", NOW, euid())
            .unwrap();
        assert_eq!(
            out.message,
            "alice reactivated (was locked until 2026-11-28 00:14:09 CET); 3 failures cleared"
        );
        let out = fx
            .run_in(&paris, Action::Disable, "alice", NOW, euid())
            .unwrap();
        assert!(out.log.is_some());
        let out = fx
            .run_in(&paris, Action::Disable, "alice", NOW, euid())
            .unwrap();
        assert_eq!(
            out.message,
            "alice is already disabled (since 2026-11-28 00:05:09 CET); nothing changed"
        );
        let out = fx
            .run_in(
                &paris,
                Action::Expire(Some(day("2027-03-31"))),
                "alice",
                NOW,
                euid(),
            )
            .unwrap();
        assert_eq!(
            out.message,
            "alice expires on 2027-03-31 (in 124 days): from 2027-03-31 02:00:00 CEST every login is refused"
        );
        // The log keeps no clock time, only the day as given.
        assert_eq!(
            out.log.as_deref(),
            Some("alice set to expire on 2027-03-31 by root (uid 0, SUDO_USER=bob)")
        );
    }

    #[test]
    fn reactivate_ends_a_lock_until_reactivated() {
        let fx = fixture();
        fx.seed("carol", locked_state());
        let out = fx.run(Action::Reactivate, "carol", NOW).unwrap();
        assert_eq!(
            out.message,
            "carol reactivated (was locked until reactivated); 3 failures cleared"
        );
    }

    #[test]
    fn reactivate_without_failures_still_records_it() {
        let fx = fixture();
        let out = fx.run(Action::Reactivate, "alice", NOW).unwrap();
        assert_eq!(out.message, "alice reactivated; no failures to clear");
        assert!(out.log.is_some());
        assert_eq!(fx.state("alice").last_reactivation, Some(NOW));
        // The state directory was created private.
        let mode = fs::metadata(&fx.dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn reactivate_never_moves_time_back() {
        let fx = fixture();
        let later = NOW.saturating_add(Duration::from_secs(60));
        fx.seed(
            "alice",
            UserState {
                last_reactivation: Some(later),
                ..UserState::default()
            },
        );
        fx.run(Action::Reactivate, "alice", NOW).unwrap();
        assert_eq!(fx.state("alice").last_reactivation, Some(later));
    }

    #[test]
    fn reactivate_says_a_disabled_account_stays_disabled() {
        let fx = fixture();
        let mut state = locked_state();
        state.last_disable = Some(NOW.saturating_sub(Duration::from_secs(5)));
        fx.seed("alice", state);
        let out = fx.run(Action::Reactivate, "alice", NOW).unwrap();
        assert!(
            out.message
                .ends_with("; the account is still disabled (deadboltctl enable alice)"),
            "{}",
            out.message
        );
    }

    #[test]
    fn disable_then_enable() {
        let fx = fixture();
        let out = fx.run(Action::Disable, "alice", NOW).unwrap();
        assert_eq!(
            out.message,
            "alice disabled: every login is refused until it is enabled"
        );
        assert_eq!(
            out.log.as_deref(),
            Some("alice disabled by root (uid 0, SUDO_USER=bob)")
        );
        assert!(fx.state("alice").is_disabled());

        let later = NOW.saturating_add(Duration::from_secs(1));
        let again = fx.run(Action::Disable, "alice", later).unwrap();
        assert_eq!(
            again.message,
            "alice is already disabled (since 2026-11-27 23:05:09 UTC); nothing changed"
        );
        assert_eq!(again.log, None);
        assert_eq!(fx.state("alice").last_disable, Some(NOW));

        let out = fx.run(Action::Enable, "alice", later).unwrap();
        assert_eq!(out.message, "alice enabled");
        assert_eq!(
            out.log.as_deref(),
            Some("alice enabled by root (uid 0, SUDO_USER=bob)")
        );
        assert!(!fx.state("alice").is_disabled());

        let out = fx.run(Action::Enable, "alice", later).unwrap();
        assert_eq!(out.message, "alice is not disabled; nothing changed");
        assert_eq!(out.log, None);
    }

    #[test]
    fn enable_at_the_same_instant_still_enables() {
        let fx = fixture();
        fx.run(Action::Disable, "alice", NOW).unwrap();
        fx.run(Action::Enable, "alice", NOW).unwrap();
        assert!(!fx.state("alice").is_disabled());
        fx.run(Action::Disable, "alice", NOW).unwrap();
        assert!(fx.state("alice").is_disabled());
    }

    #[test]
    fn enable_says_a_failure_lock_remains() {
        let fx = fixture();
        let mut state = locked_state();
        state.last_disable = Some(NOW.saturating_sub(Duration::from_secs(5)));
        fx.seed("alice", state);
        let out = fx.run(Action::Enable, "alice", NOW).unwrap();
        assert_eq!(
            out.message,
            "alice enabled; still locked after 3 failures (deadboltctl reactivate alice)"
        );
    }

    #[test]
    fn disabling_root_is_recorded_with_a_note() {
        let fx = fixture();
        let out = fx.run(Action::Disable, "root", NOW).unwrap();
        assert_eq!(out.notes.len(), 1);
        assert!(out.notes[0].contains("never refused"));
    }

    #[test]
    fn an_unknown_user_without_state_is_refused_and_nothing_is_created() {
        let fx = fixture();
        for action in [
            Action::Reactivate,
            Action::Disable,
            Action::Enable,
            Action::ResetPassword,
            Action::Expire(Some(0)),
            Action::Expire(None),
        ] {
            let err = fx.run(action, "ghost", NOW).unwrap_err();
            assert_eq!(
                err.to_string(),
                "no such user: ghost (NSS does not know him and he has no state)"
            );
        }
        assert!(!fx.dir.exists());
        // With an existing (empty) store, still nothing is created.
        fx.store();
        assert!(fx.run(Action::Disable, "ghost", NOW).is_err());
        assert_eq!(fs::read_dir(&fx.dir).unwrap().count(), 0);
    }

    #[test]
    fn an_unknown_user_with_state_may_be_changed() {
        let fx = fixture();
        let mut state = UserState::default();
        state
            .failures
            .insert(failure(NOW.saturating_sub(Duration::from_secs(10)), "x"));
        fx.seed("ghost", state);
        let out = fx.run(Action::Reactivate, "ghost", NOW).unwrap();
        assert_eq!(out.message, "ghost reactivated; 1 failure cleared");
        fx.run(Action::Disable, "ghost", NOW).unwrap();
        assert!(fx.state("ghost").is_disabled());
    }

    #[test]
    fn changes_need_root_or_the_directory_owner() {
        let fx = fixture();
        fx.store();
        let owner = euid();
        let stranger = if owner == 0 { 4242 } else { 0 };
        if stranger != 0 {
            let err = fx
                .run_as(Action::Reactivate, "alice", NOW, stranger)
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                "reactivate needs root (the state directory is root's)"
            );
            let err = fx
                .run_as(Action::Disable, "alice", NOW, stranger)
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                "disable needs root (the state directory is root's)"
            );
            let err = fx
                .run_as(Action::ResetPassword, "alice", NOW, stranger)
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                "reset-password needs root (the state directory is root's)"
            );
            let err = fx
                .run_as(Action::Expire(None), "alice", NOW, stranger)
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                "expire needs root (the state directory is root's)"
            );
            assert_eq!(fs::read_dir(&fx.dir).unwrap().count(), 0);
        }
        assert!(may_change(0, &fx.dir));
        assert!(may_change(owner, &fx.dir));
        assert!(!may_change(4242, Path::new("/nonexistent/deadbolt")));
    }

    #[test]
    fn a_corrupt_state_is_quarantined_and_reported() {
        let fx = fixture();
        fx.store();
        let path = fx.dir.join("alice.state");
        fs::write(&path, b"garbage").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let out = fx.run(Action::Reactivate, "alice", NOW).unwrap();
        assert_eq!(out.notes.len(), 1, "{out:?}");
        assert!(out.notes[0].starts_with("alice's state could not be read ("));
        assert!(out.notes[0].contains(".corrupt.alice."));
        assert_eq!(fx.state("alice").last_reactivation, Some(NOW));
        let kept: Vec<_> = fs::read_dir(&fx.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".corrupt.alice."))
            .collect();
        assert_eq!(kept.len(), 1);
        assert_eq!(fs::read(fx.dir.join(&kept[0])).unwrap(), b"garbage");
    }

    fn day(text: &str) -> i64 {
        parse_date(text).unwrap()
    }

    #[test]
    fn reset_password_requires_a_change_at_the_next_login() {
        let fx = fixture();
        let out = fx.run(Action::ResetPassword, "alice", NOW).unwrap();
        assert_eq!(
            out.message,
            "alice must change the password at the next login"
        );
        assert_eq!(
            out.log.as_deref(),
            Some("alice marked for a password change by root (uid 0, SUDO_USER=bob)")
        );
        assert!(out.notes.is_empty());
        let state = fx.state("alice");
        assert_eq!(state.last_admin_reset, Some(NOW));
        // No password is set or kept: only the time of the reset.
        assert_eq!(state.last_password_change, None);
        assert!(state.password_history.is_empty());
        let age = Ageing::default().evaluate(&state, NOW);
        assert!(age.must_change && age.reset_by_admin);
        // Nothing else changed: not locked, not disabled.
        assert!(!state.is_disabled());
        assert_eq!(state.failures.len(), 0);
        // The user's next change ends it.
        let mut changed = state;
        changed.last_password_change = Some(NOW.saturating_add(Duration::from_secs(60)));
        assert!(!Ageing::default().evaluate(&changed, NOW).must_change);
    }

    #[test]
    fn reset_password_wins_over_a_change_dated_later() {
        let fx = fixture();
        // A host with a fast clock recorded a change "in the future".
        let later = NOW.saturating_add(Duration::from_secs(300));
        fx.seed(
            "alice",
            UserState {
                last_password_change: Some(later),
                last_admin_reset: Some(NOW.saturating_sub(Duration::from_secs(5))),
                ..UserState::default()
            },
        );
        fx.run(Action::ResetPassword, "alice", NOW).unwrap();
        let state = fx.state("alice");
        assert_eq!(state.last_admin_reset, Some(later));
        assert!(Ageing::default().evaluate(&state, NOW).must_change);
        // A second reset is recorded again, never earlier.
        let out = fx.run(Action::ResetPassword, "alice", NOW).unwrap();
        assert!(out.log.is_some());
        assert_eq!(fx.state("alice").last_admin_reset, Some(later));
    }

    #[test]
    fn expire_on_a_future_day() {
        let fx = fixture();
        let out = fx
            .run(Action::Expire(Some(day("2027-03-31"))), "alice", NOW)
            .unwrap();
        assert_eq!(
            out.message,
            "alice expires on 2027-03-31 (in 124 days): from 2027-03-31 00:00:00 UTC every login is refused"
        );
        assert_eq!(
            out.log.as_deref(),
            Some("alice set to expire on 2027-03-31 by root (uid 0, SUDO_USER=bob)")
        );
        assert!(out.notes.is_empty());
        let state = fx.state("alice");
        assert_eq!(
            state.expires_on,
            Some(Stamped {
                set_at: NOW,
                value: Some(day("2027-03-31"))
            })
        );
        let ageing = Ageing::default();
        let midnight = day_start(day("2027-03-31"));
        assert!(!ageing.evaluate(&state, NOW).account_expired);
        assert!(
            !ageing
                .evaluate(&state, Timestamp(midnight.0 - 1))
                .account_expired
        );
        assert!(ageing.evaluate(&state, midnight).account_expired);

        // The same day again changes nothing and logs nothing.
        let later = NOW.saturating_add(Duration::from_secs(1));
        let again = fx
            .run(Action::Expire(Some(day("2027-03-31"))), "alice", later)
            .unwrap();
        assert_eq!(
            again.message,
            "alice already expires on 2027-03-31; nothing changed"
        );
        assert_eq!(again.log, None);
        assert_eq!(fx.state("alice").expires_on.unwrap().set_at, NOW);
    }

    #[test]
    fn expire_on_a_past_day_expires_at_once_with_a_note() {
        let fx = fixture();
        let out = fx
            .run(Action::Expire(Some(day("2026-01-15"))), "alice", NOW)
            .unwrap();
        assert_eq!(
            out.message,
            "alice expired on 2026-01-15: every login is refused from now on"
        );
        assert_eq!(
            out.notes,
            ["note: 2026-01-15 (316 days ago) is not in the future: the account expired at once"]
        );
        assert!(out.log.is_some());
        assert!(
            Ageing::default()
                .evaluate(&fx.state("alice"), NOW)
                .account_expired
        );
        // Today has begun at 00:00 UTC: that is at once too.
        let out = fx
            .run(Action::Expire(Some(day("2026-11-27"))), "alice", NOW)
            .unwrap();
        assert_eq!(out.notes.len(), 1);
        assert!(out.notes[0].contains("(today)"), "{:?}", out.notes);
    }

    #[test]
    fn expire_never_removes_the_date() {
        let fx = fixture();
        let out = fx.run(Action::Expire(None), "alice", NOW).unwrap();
        assert_eq!(out.message, "alice has no expiry date; nothing changed");
        assert_eq!(out.log, None);

        fx.run(Action::Expire(Some(day("2026-11-01"))), "alice", NOW)
            .unwrap();
        let later = NOW.saturating_add(Duration::from_secs(1));
        let out = fx.run(Action::Expire(None), "alice", later).unwrap();
        assert_eq!(
            out.message,
            "alice no longer expires (it had expired on 2026-11-01)"
        );
        assert_eq!(
            out.log.as_deref(),
            Some("alice set to never expire by root (uid 0, SUDO_USER=bob)")
        );
        let state = fx.state("alice");
        assert_eq!(
            state.expires_on,
            Some(Stamped {
                set_at: later,
                value: None
            })
        );
        assert!(!Ageing::default().evaluate(&state, later).account_expired);

        let out = fx.run(Action::Expire(None), "alice", later).unwrap();
        assert_eq!(out.message, "alice has no expiry date; nothing changed");
        assert_eq!(out.log, None);
        fx.run(Action::Expire(Some(day("2027-01-01"))), "alice", later)
            .unwrap();
        let out = fx.run(Action::Expire(None), "alice", later).unwrap();
        assert_eq!(out.message, "alice no longer expires");
    }

    #[test]
    fn expire_outranks_a_setting_dated_later_on_merge() {
        let fx = fixture();
        // A host with a fast clock set a date "in the future".
        let later = NOW.saturating_add(Duration::from_secs(300));
        let theirs = UserState {
            expires_on: Some(Stamped {
                set_at: later,
                value: Some(day("2027-06-01")),
            }),
            ..UserState::default()
        };
        fx.seed("alice", theirs.clone());
        fx.run(Action::Expire(None), "alice", NOW).unwrap();
        let mut ours = fx.state("alice");
        let set = ours.expires_on.clone().unwrap();
        assert!(set.set_at > later);
        assert_eq!(set.value, None);
        // Merging the other host's state back in keeps this change.
        ours.merge(&theirs);
        assert_eq!(ours.expires_on, Some(set));
    }

    #[test]
    fn expiring_root_is_recorded_with_a_note() {
        let fx = fixture();
        let out = fx
            .run(Action::Expire(Some(day("2026-01-15"))), "root", NOW)
            .unwrap();
        assert_eq!(out.message, "root set to expire on 2026-01-15");
        assert_eq!(
            out.notes,
            ["root's logins are never refused for an expired account; the state records it"]
        );
        assert!(out.log.is_some());
    }
}
