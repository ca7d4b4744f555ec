//! Counting failures, the lock, its messages and how it ends.

use deadbolt_tests::{
    failures_at, minutes_ago, msg_timed_lock_prefix, msg_until_reactivated, PamEnv, MSG_DISABLED,
    SERVICE,
};
use std::time::{Duration, Instant};

fn alice() -> PamEnv {
    PamEnv::builder().user("alice", "secret").build()
}

#[test]
fn right_password_is_accepted_and_leaves_no_failure() {
    let env = alice();
    let out = env.authenticate("alice", "secret");
    assert!(out.succeeded(), "{out}");
    assert_eq!(env.failures("alice"), 0);
}

#[test]
fn locks_after_deny_wrong_passwords() {
    let env = alice();
    env.fail_logins("alice", 2);
    let status = env.status_json("alice");
    assert_eq!(status["failures"], 2, "{status}");
    assert_eq!(status["locked"], false, "{status}");

    // The failure that locks says so.
    let out = env.authenticate("alice", "wrong");
    assert!(!out.succeeded(), "{out}");
    assert!(out.shows("locked after 3 failed logins"), "{out}");
    let status = env.status_json("alice");
    assert_eq!(status["user"], "alice", "{status}");
    assert_eq!(status["failures"], 3, "{status}");
    assert_eq!(status["locked"], true, "{status}");
    assert_eq!(status["disabled"], false, "{status}");
    assert_eq!(status["until_reactivated"], false, "{status}");
    assert!(status["locked_until"].is_string(), "{status}");
    let events = status["failure_events"].as_array().expect("failure_events");
    assert_eq!(events.len(), 3, "{status}");
    for event in events {
        assert_eq!(event["service"], SERVICE, "{status}");
    }
}

#[test]
fn two_failures_then_success_resets_the_count() {
    let env = alice();
    env.fail_logins("alice", 2);
    let out = env.authenticate("alice", "secret");
    assert!(out.succeeded(), "{out}");
    assert_eq!(env.failures("alice"), 0);
    // Two more failures do not lock: the count started again.
    env.fail_logins("alice", 2);
    assert!(!env.is_locked("alice"));
    assert!(env.authenticate("alice", "secret").succeeded());
}

#[test]
fn right_password_is_refused_while_locked_with_the_message() {
    let env = alice();
    env.fail_logins("alice", 3);
    let out = env.authenticate("alice", "secret");
    out.assert_exited_normally();
    assert!(!out.succeeded(), "locked account let in\n{out}");
    let prefix = msg_timed_lock_prefix(3);
    assert!(out.shows(&prefix), "no lock message\n{out}");
    // unlock_after is 10m: the lock has 9 to 10 minutes left.
    assert!(
        out.shows(&format!("{prefix}10 minutes.")) || out.shows(&format!("{prefix}9 minutes.")),
        "wrong remaining time\n{out}"
    );
    // Attempts while locked are not counted.
    assert_eq!(env.failures("alice"), 3);
}

#[test]
fn timed_lock_has_run_out_after_unlock_after() {
    let env = PamEnv::builder()
        .user("alice", "secret")
        .lockout("unlock_after", "\"10m\"")
        .build();
    env.seed_failures("alice", &failures_at(minutes_ago(11), 3));
    assert!(!env.is_locked("alice"));
    let out = env.authenticate("alice", "secret");
    assert!(out.succeeded(), "the lock should have run out\n{out}");
}

#[test]
fn timed_lock_still_holds_before_unlock_after() {
    let env = PamEnv::builder()
        .user("alice", "secret")
        .lockout("unlock_after", "\"10m\"")
        .build();
    env.seed_failures("alice", &failures_at(minutes_ago(9), 3));
    assert!(env.is_locked("alice"));
    let out = env.authenticate("alice", "secret");
    out.assert_exited_normally();
    assert!(
        !out.succeeded(),
        "a lock with a minute left let alice in\n{out}"
    );
    assert!(out.shows(&msg_timed_lock_prefix(3)), "{out}");
}

#[test]
fn failures_older_than_fail_interval_do_not_count() {
    let env = PamEnv::builder()
        .user("alice", "secret")
        .lockout("fail_interval", "\"15m\"")
        .lockout("unlock_after", "\"never\"")
        .build();
    // Two old failures and one recent: only one counts.
    env.seed_failures("alice", &[minutes_ago(20), minutes_ago(16), minutes_ago(1)]);
    assert!(!env.is_locked("alice"));
    assert!(env.authenticate("alice", "secret").succeeded());
}

#[test]
fn lock_until_reactivated_then_reactivate_lets_in() {
    let env = PamEnv::builder()
        .user("alice", "secret")
        .lockout("unlock_after", "\"never\"")
        .build();
    env.fail_logins("alice", 3);
    let out = env.authenticate("alice", "secret");
    assert!(!out.succeeded(), "{out}");
    assert!(out.shows(&msg_until_reactivated(3)), "{out}");
    let status = env.status_json("alice");
    assert_eq!(status["locked"], true, "{status}");
    assert_eq!(status["until_reactivated"], true, "{status}");
    assert!(status["locked_until"].is_null(), "{status}");

    let ctl = env.deadboltctl(&["reactivate", "alice"]);
    assert!(ctl.succeeded(), "{ctl}");
    let status = env.status_json("alice");
    assert_eq!(status["locked"], false, "{status}");
    assert!(status["last_reactivation"].is_string(), "{status}");

    let out = env.authenticate("alice", "secret");
    assert!(out.succeeded(), "reactivated alice refused\n{out}");
}

#[test]
fn disable_refuses_the_right_password_and_enable_restores() {
    let env = alice();
    let ctl = env.deadboltctl(&["disable", "alice"]);
    assert!(ctl.succeeded(), "{ctl}");
    let status = env.status_json("alice");
    assert_eq!(status["disabled"], true, "{status}");
    assert_eq!(status["locked"], true, "{status}");

    let out = env.authenticate("alice", "secret");
    out.assert_exited_normally();
    assert!(!out.succeeded(), "disabled alice let in\n{out}");
    assert!(out.shows(MSG_DISABLED), "{out}");

    let ctl = env.deadboltctl(&["enable", "alice"]);
    assert!(ctl.succeeded(), "{ctl}");
    let out = env.authenticate("alice", "secret");
    assert!(out.succeeded(), "enabled alice refused\n{out}");
}

#[test]
fn lockout_disabled_never_locks() {
    let env = PamEnv::builder()
        .user("alice", "secret")
        .lockout("enabled", "false")
        .build();
    env.fail_logins("alice", 5);
    assert!(!env.is_locked("alice"));
    assert!(env.authenticate("alice", "secret").succeeded());
}

#[test]
fn module_argument_deny_overrides_the_file() {
    let env = PamEnv::builder()
        .user("alice", "secret")
        .lockout("deny", "5")
        .module_arg("deny=2")
        .build();
    env.fail_logins("alice", 2);
    let out = env.authenticate("alice", "secret");
    assert!(!out.succeeded(), "{out}");
    assert!(out.shows(&msg_timed_lock_prefix(2)), "{out}");
}

#[test]
fn fixed_delay_pauses_after_a_failure() {
    let env = PamEnv::builder()
        .user("alice", "secret")
        .lockout("delay_mode", "\"fixed\"")
        .lockout("delay", "\"1s\"")
        .with_delay()
        .build();
    let start = Instant::now();
    let out = env.authenticate("alice", "wrong");
    let took = start.elapsed();
    assert!(!out.succeeded(), "{out}");
    // libpam draws the actual delay between half and one and a half times
    // the one asked for.
    assert!(
        took >= Duration::from_millis(450),
        "a failure with delay 1s took only {took:?}"
    );
}

/// The pause must not tell an unknown or an already locked account from an
/// ordinary wrong password.
#[test]
fn the_delay_applies_to_unknown_and_locked_accounts_too() {
    let env = PamEnv::builder()
        .user("alice", "secret")
        .unknown_user("ghost", "boo")
        .lockout("delay_mode", "\"fixed\"")
        .lockout("delay", "\"1s\"")
        .with_delay()
        .build();
    env.seed_failures("alice", &failures_at(minutes_ago(1), 3));
    for user in ["ghost", "alice"] {
        let start = Instant::now();
        let out = env.authenticate(user, "wrong");
        let took = start.elapsed();
        assert!(!out.succeeded(), "{out}");
        assert!(
            took >= Duration::from_millis(450),
            "a failure of {user} with delay 1s took only {took:?}"
        );
    }
    assert!(env.state_files().iter().all(|f| !f.starts_with("ghost")));
}

#[test]
fn state_is_private_to_its_owner() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let env = alice();
    env.fail_logins("alice", 1);
    env.deadboltctl(&["reactivate", "alice"]);
    env.fail_logins("alice", 1);
    let dir = std::fs::metadata(env.state_dir()).unwrap();
    assert_eq!(dir.permissions().mode() & 0o777, 0o700);
    let file = std::fs::symlink_metadata(env.state_file("alice")).unwrap();
    assert!(file.is_file());
    assert_eq!(file.permissions().mode() & 0o777, 0o600);
    assert_eq!(file.uid(), dir.uid());
    // The records written without a lock are as private.
    let events = env.state_dir().join("alice.events");
    let meta = std::fs::symlink_metadata(&events).unwrap();
    assert!(meta.is_dir());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    let mut records = 0;
    for entry in std::fs::read_dir(&events).unwrap() {
        let meta = std::fs::symlink_metadata(entry.unwrap().path()).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.uid(), dir.uid());
        records += 1;
    }
    assert_eq!(records, 1);
}
