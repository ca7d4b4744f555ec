//! The account phase, and the `silent` option.

use deadbolt_tests::{failures_at, minutes_ago, msg_timed_lock_prefix, PamEnv, MSG_DISABLED};

/// pam_strerror(PAM_PERM_DENIED), as pamtester prints it.
const PERM_DENIED: &str = "Permission denied";

#[test]
fn account_phase_lets_an_unlocked_user_through() {
    let env = PamEnv::builder().user("alice", "secret").build();
    let out = env.acct_mgmt("alice");
    assert!(out.succeeded(), "{out}");
}

#[test]
fn account_phase_refuses_a_locked_user() {
    let env = PamEnv::builder().user("alice", "secret").build();
    env.fail_logins("alice", 3);
    let out = env.acct_mgmt("alice");
    out.assert_exited_normally();
    assert!(!out.succeeded(), "{out}");
    assert!(out.shows(PERM_DENIED), "not PAM_PERM_DENIED\n{out}");
}

#[test]
fn account_phase_refuses_a_seeded_lock() {
    // Failures from elsewhere (another host, the directory) lock too.
    let env = PamEnv::builder().user("alice", "secret").build();
    env.seed_failures("alice", &failures_at(minutes_ago(1), 3));
    let out = env.acct_mgmt("alice");
    assert!(!out.succeeded(), "{out}");
    assert!(out.shows(PERM_DENIED), "{out}");
}

#[test]
fn account_phase_refuses_a_disabled_user() {
    let env = PamEnv::builder().user("alice", "secret").build();
    let ctl = env.deadboltctl(&["disable", "alice"]);
    assert!(ctl.succeeded(), "{ctl}");
    let out = env.acct_mgmt("alice");
    out.assert_exited_normally();
    assert!(!out.succeeded(), "{out}");
    assert!(out.shows(PERM_DENIED), "{out}");
    assert!(out.shows(MSG_DISABLED), "{out}");
}

#[test]
fn refuse_in_account_false_lets_a_locked_user_through() {
    let env = PamEnv::builder()
        .user("alice", "secret")
        .lockout("refuse_in_account", "false")
        .build();
    env.fail_logins("alice", 3);
    assert!(env.is_locked("alice"));
    let out = env.acct_mgmt("alice");
    assert!(out.succeeded(), "{out}");
    // The password path still refuses.
    assert!(!env.authenticate("alice", "secret").succeeded());
}

#[test]
fn refuse_in_account_false_as_module_argument() {
    let env = PamEnv::builder()
        .user("alice", "secret")
        .module_arg("refuse_in_account=false")
        .build();
    env.fail_logins("alice", 3);
    let out = env.acct_mgmt("alice");
    assert!(out.succeeded(), "{out}");
}

#[test]
fn silent_shows_nothing_but_still_refuses() {
    let env = PamEnv::builder()
        .user("alice", "secret")
        .module_arg("silent")
        .build();
    env.fail_logins("alice", 3);
    assert!(env.is_locked("alice"));
    let out = env.authenticate("alice", "secret");
    out.assert_exited_normally();
    assert!(!out.succeeded(), "silent lock let alice in\n{out}");
    assert!(
        !out.shows("The account is"),
        "silent showed a message\n{out}"
    );
    assert!(!out.shows("locked"), "silent showed a message\n{out}");
    // The account phase is silent too.
    let out = env.acct_mgmt("alice");
    assert!(!out.succeeded(), "{out}");
    assert!(!out.shows("The account is"), "{out}");
}

#[test]
fn silent_in_the_config_file() {
    let env = PamEnv::builder()
        .user("alice", "secret")
        .lockout("silent", "true")
        .build();
    env.fail_logins("alice", 3);
    let out = env.authenticate("alice", "secret");
    assert!(!out.succeeded(), "{out}");
    assert!(!out.shows(&msg_timed_lock_prefix(3)), "{out}");
}
