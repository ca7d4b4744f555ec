//! deadboltctl against the same state the module writes.

use deadbolt_tests::{failures_at, minutes_ago, PamEnv};

#[test]
fn status_of_a_user_without_state_creates_nothing() {
    let env = PamEnv::builder().user("alice", "secret").build();
    let status = env.status_json("alice");
    assert_eq!(status["user"], "alice", "{status}");
    assert_eq!(status["locked"], false, "{status}");
    assert_eq!(status["disabled"], false, "{status}");
    assert_eq!(status["failures"], 0, "{status}");
    assert!(status["locked_until"].is_null(), "{status}");
    assert_eq!(env.state_files(), Vec::<String>::new());

    let out = env.deadboltctl(&["status", "alice"]);
    assert!(out.succeeded(), "{out}");
    assert!(out.shows("alice"), "{out}");
    assert_eq!(env.state_files(), Vec::<String>::new());
}

#[test]
fn status_locked_lists_only_locked_users() {
    let env = PamEnv::builder()
        .user("alice", "secret")
        .user("bob", "hunter2")
        .user("carol", "carolpw")
        .build();
    env.seed_failures("alice", &failures_at(minutes_ago(1), 3));
    env.seed_failures("bob", &failures_at(minutes_ago(1), 1));

    let out = env.deadboltctl(&["status", "--locked", "--json"]);
    assert!(out.succeeded(), "{out}");
    let list: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let list = list.as_array().expect("an array");
    let users: Vec<&str> = list.iter().map(|s| s["user"].as_str().unwrap()).collect();
    assert_eq!(users, ["alice"], "{out}");
    assert_eq!(list[0]["locked"], true);

    let out = env.deadboltctl(&["status", "--json"]);
    assert!(out.succeeded(), "{out}");
    let list: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let mut users: Vec<&str> = list
        .as_array()
        .expect("an array")
        .iter()
        .map(|s| s["user"].as_str().unwrap())
        .collect();
    users.sort();
    assert_eq!(users, ["alice", "bob"], "{out}");
}

#[test]
fn human_status_of_a_locked_user_says_so() {
    let env = PamEnv::builder().user("alice", "secret").build();
    env.fail_logins("alice", 3);
    let out = env.deadboltctl(&["status", "alice"]);
    assert!(out.succeeded(), "{out}");
    assert!(out.shows("alice"), "{out}");
    assert!(out.stdout.to_lowercase().contains("locked"), "{out}");
}

#[test]
fn reactivate_clears_a_timed_lock() {
    let env = PamEnv::builder().user("alice", "secret").build();
    env.fail_logins("alice", 3);
    assert!(env.is_locked("alice"));
    let out = env.deadboltctl(&["reactivate", "alice"]);
    assert!(out.succeeded(), "{out}");
    assert!(!env.is_locked("alice"));
    assert!(env.acct_mgmt("alice").succeeded());
    assert!(env.authenticate("alice", "secret").succeeded());
}

#[test]
fn hostile_user_names_get_a_one_line_error_and_change_nothing() {
    let env = PamEnv::builder().user("alice", "secret").build();
    let before = env.tree();
    let names = [
        "a/b".to_owned(),
        "../escape".to_owned(),
        "..".to_owned(),
        "a\x1bb".to_owned(),
        "a\nb".to_owned(),
        "y".repeat(10 * 1024),
    ];
    for name in &names {
        for cmd in ["status", "reactivate", "disable", "enable"] {
            let out = env.deadboltctl(&[cmd, name]);
            assert_eq!(out.code(), Some(1), "{cmd} {name:?}\n{out}");
            let err = out.stderr.trim_end_matches('\n');
            assert!(!err.is_empty(), "{cmd} {name:?}: no reason given\n{out}");
            assert!(!err.contains('\n'), "{cmd} {name:?}: not one line\n{out}");
            assert!(err.len() < 1024, "{cmd} {name:?}: error too long\n{out}");
        }
    }
    assert_eq!(env.state_files(), Vec::<String>::new());
    assert_eq!(env.tree(), before, "files appeared");
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let env = PamEnv::builder().build();
    let out = env.deadboltctl(&["frobnicate"]);
    assert_eq!(out.code(), Some(2), "{out}");
}

#[test]
fn check_config_accepts_the_test_config_and_rejects_a_broken_one() {
    let env = PamEnv::builder().build();
    let out = env.deadboltctl(&["check-config"]);
    assert!(out.succeeded(), "{out}");

    let broken = env.root().join("broken.toml");
    std::fs::write(&broken, "[lockout]\ndeny = \"three\"\n").unwrap();
    let path = broken.to_string_lossy().into_owned();
    let out = env.deadboltctl(&["check-config", &path]);
    assert_eq!(out.code(), Some(1), "{out}");
    // FILE:LINE:COLUMN: message
    assert!(out.stderr.contains(&format!("{path}:2:")), "{out}");
}

#[test]
fn a_user_other_than_the_owner_gets_a_clear_refusal() {
    let env = PamEnv::builder().user("alice", "secret").build();
    if !is_root() {
        eprintln!("skipped: needs root to run deadboltctl as nobody");
        return;
    }
    env.seed_failures("alice", &failures_at(minutes_ago(1), 3));
    env.open_to_others();
    let before = std::fs::read(env.state_file("alice")).unwrap();
    for args in [["reactivate", "alice"], ["disable", "alice"]] {
        let out = env.deadboltctl_as(65534, 65534, &args);
        assert_ne!(out.code(), Some(0), "{args:?} as nobody succeeded\n{out}");
        assert!(out.signal().is_none(), "{out}");
        let err = out.stderr.trim();
        assert!(!err.is_empty() && !err.contains('\n'), "{args:?}\n{out}");
    }
    assert_eq!(std::fs::read(env.state_file("alice")).unwrap(), before);
    assert!(env.is_locked("alice"));
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}
