//! Who is exempt from locks, and per-group policies.

use deadbolt_tests::{msg_timed_lock_prefix, PamEnv};

#[test]
fn root_is_not_locked_but_failures_are_recorded() {
    let env = PamEnv::builder()
        .root("rootpw")
        .user("alice", "secret")
        .build();
    env.fail_logins("root", 4);
    let status = env.status_json("root");
    assert_eq!(status["failures"], 4, "{status}");
    assert_eq!(status["locked"], false, "{status}");
    let out = env.authenticate("root", "rootpw");
    assert!(out.succeeded(), "root was locked out\n{out}");
}

#[test]
fn root_is_locked_with_even_deny_root() {
    let env = PamEnv::builder()
        .root("rootpw")
        .lockout("even_deny_root", "true")
        .build();
    env.fail_logins("root", 3);
    let out = env.authenticate("root", "rootpw");
    out.assert_exited_normally();
    assert!(
        !out.succeeded(),
        "root let in despite even_deny_root\n{out}"
    );
    assert!(out.shows(&msg_timed_lock_prefix(3)), "{out}");
}

/// Disabling root would lock out the one account that can undo it: root is
/// let in and the disable is still recorded, while other users are refused.
#[test]
fn disabling_never_locks_out_root() {
    let env = PamEnv::builder()
        .root("rootpw")
        .user("alice", "secret")
        .build();
    for user in ["root", "alice"] {
        let ctl = env.deadboltctl(&["disable", user]);
        assert!(ctl.succeeded(), "{ctl}");
    }
    assert_eq!(env.status_json("root")["disabled"], true);
    let out = env.authenticate("root", "rootpw");
    out.assert_exited_normally();
    assert!(out.succeeded(), "disabled root was locked out\n{out}");
    let out = env.authenticate("alice", "secret");
    assert!(!out.succeeded(), "disabled alice let in\n{out}");
    assert!(out.shows(deadbolt_tests::MSG_DISABLED), "{out}");
}

#[test]
fn even_deny_root_as_module_argument() {
    let env = PamEnv::builder()
        .root("rootpw")
        .module_arg("even_deny_root")
        .build();
    env.fail_logins("root", 3);
    let out = env.authenticate("root", "rootpw");
    assert!(!out.succeeded(), "{out}");
}

#[test]
fn admin_group_member_is_exempt_and_others_are_not() {
    let env = PamEnv::builder()
        .user("alice", "secret")
        .user("bob", "hunter2")
        .group("wheel", &["bob"])
        .lockout("admin_group", "\"wheel\"")
        .build();
    env.fail_logins("bob", 4);
    let status = env.status_json("bob");
    assert_eq!(status["failures"], 4, "{status}");
    assert_eq!(status["locked"], false, "{status}");
    let out = env.authenticate("bob", "hunter2");
    assert!(out.succeeded(), "admin_group member locked out\n{out}");

    env.fail_logins("alice", 3);
    let out = env.authenticate("alice", "secret");
    assert!(!out.succeeded(), "non-member not locked\n{out}");
}

#[test]
fn admin_group_member_is_locked_with_even_deny_root() {
    let env = PamEnv::builder()
        .user("bob", "hunter2")
        .group("wheel", &["bob"])
        .lockout("admin_group", "\"wheel\"")
        .lockout("even_deny_root", "true")
        .build();
    env.fail_logins("bob", 3);
    let out = env.authenticate("bob", "hunter2");
    assert!(!out.succeeded(), "{out}");
}

const CONTRACTORS: &str = r#"
[[policy]]
name = "contractors"
groups = ["contractors"]
[policy.lockout]
deny = 5
"#;

#[test]
fn per_group_policy_applies_to_members_only() {
    let env = PamEnv::builder()
        .user("alice", "secret")
        .user("carol", "carolpw")
        .group("contractors", &["carol"])
        .toml(CONTRACTORS)
        .build();

    env.fail_logins("carol", 4);
    let status = env.status_json("carol");
    assert_eq!(status["policy"], "contractors", "{status}");
    assert_eq!(status["locked"], false, "{status}");
    env.fail_logins("carol", 1);
    assert!(env.is_locked("carol"));
    let out = env.authenticate("carol", "carolpw");
    assert!(!out.succeeded(), "{out}");
    assert!(out.shows(&msg_timed_lock_prefix(5)), "{out}");

    env.fail_logins("alice", 3);
    let status = env.status_json("alice");
    assert_eq!(status["policy"], "default", "{status}");
    assert_eq!(status["locked"], true, "{status}");
    assert!(!env.authenticate("alice", "secret").succeeded());
}

#[test]
fn per_group_policy_by_primary_group() {
    // carol's primary group is the one named after her: a policy naming it
    // applies to her.
    let env = PamEnv::builder()
        .user("carol", "carolpw")
        .toml(
            r#"
[[policy]]
name = "solo"
groups = ["carol"]
[policy.lockout]
deny = 2
"#,
        )
        .build();
    env.fail_logins("carol", 2);
    let out = env.authenticate("carol", "carolpw");
    assert!(!out.succeeded(), "{out}");
    assert!(out.shows(&msg_timed_lock_prefix(2)), "{out}");
}

#[test]
fn four_contractor_failures_then_right_password_lets_in() {
    let env = PamEnv::builder()
        .user("carol", "carolpw")
        .group("contractors", &["carol"])
        .toml(CONTRACTORS)
        .build();
    env.fail_logins("carol", 4);
    let out = env.authenticate("carol", "carolpw");
    assert!(out.succeeded(), "carol locked before 5 failures\n{out}");
}
