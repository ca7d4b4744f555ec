//! Concurrency, hostile input, broken files and panics: deadbolt must answer
//! clearly, keep counting right and never take the login program down.

use deadbolt_tests::{msg_timed_lock_prefix, PamEnv};

#[test]
fn sixteen_concurrent_failures_are_all_counted() {
    let env = PamEnv::builder()
        .user("alice", "secret")
        .lockout("deny", "100")
        .build();
    // All 16 get past pam_start and wait at the password prompt, then all
    // answer at once.
    let mut running: Vec<_> = (0..16)
        .map(|_| env.start_pamtester("alice", &["authenticate"]))
        .collect();
    for run in &mut running {
        run.send("wrong\n");
    }
    for run in running {
        let out = run.wait();
        out.assert_exited_normally();
        assert!(!out.succeeded(), "{out}");
    }
    let status = env.status_json("alice");
    assert_eq!(status["failures"], 16, "lost updates: {status}");
    assert_eq!(status["locked"], false, "{status}");
    assert_eq!(
        status["failure_events"].as_array().map(Vec::len),
        Some(16),
        "{status}"
    );
}

/// Names the store must refuse: each is tried as a login; nothing may be
/// written anywhere.
fn hostile_names() -> Vec<String> {
    vec![
        "a/b".to_owned(),
        "../escape".to_owned(),
        "..".to_owned(),
        ".".to_owned(),
        ".hidden".to_owned(),
        "a\x1bb".to_owned(),
        "a\nb".to_owned(),
        "tab\tname".to_owned(),
        "x".repeat(300),
        "y".repeat(10 * 1024),
    ]
}

#[test]
fn hostile_user_names_are_refused_and_write_nothing() {
    // track_unknown_users: only the name check stands between these names
    // and the disk.
    let env = PamEnv::builder()
        .user("alice", "secret")
        .state("track_unknown_users", "true")
        .build();
    let before = env.tree();
    for name in hostile_names() {
        let out = env.authenticate(&name, "whatever");
        out.assert_exited_normally();
        assert!(!out.succeeded(), "{name:?} was let in\n{out}");
    }
    assert_eq!(env.state_files(), Vec::<String>::new());
    assert_eq!(env.tree(), before, "files appeared");

    // Control: with the same settings an ordinary unknown name is tracked,
    // so the refusals above were the name check's doing.
    env.fail_logins("zed", 1);
    assert!(
        env.state_files().contains(&"zed.events".to_owned()),
        "{:?}",
        env.state_files()
    );
}

#[test]
fn hostile_user_names_in_nss_and_passdb_are_refused() {
    // Known to NSS and with a right password: still no state written.
    let mut builder = PamEnv::builder();
    let names = ["a/b", "../escape", "a\x1bb"];
    for name in names {
        builder = builder.user(name, "pw");
    }
    let env = builder.build();
    for name in names {
        let out = env.authenticate(name, "wrong");
        out.assert_exited_normally();
        assert!(!out.succeeded(), "{name:?}\n{out}");
    }
    assert_eq!(env.state_files(), Vec::<String>::new());
    assert!(!env.root().join("escape.state").exists());
}

#[test]
fn unknown_user_failing_leaves_no_state() {
    let env = PamEnv::builder()
        .user("alice", "secret")
        .unknown_user("mallory", "pw")
        .build();
    env.fail_logins("mallory", 5);
    env.fail_logins("nobody-at-all", 2);
    assert_eq!(env.state_files(), Vec::<String>::new());
}

#[test]
fn corrupt_state_file_is_kept_aside_and_disables_until_an_administrator_looks() {
    let env = PamEnv::builder()
        .user("alice", "secret")
        .root("rootpw")
        .build();
    let garbage = b"\x00\xffgarbage{{{ not a state \x7f";
    env.write_state_file("alice", garbage);
    env.write_state_file("root", garbage);

    // The unreadable state might have said "disabled": fail safe.
    let out = env.authenticate("alice", "secret");
    out.assert_exited_normally();
    assert!(!out.succeeded(), "an unreadable state let alice in\n{out}");
    assert!(out.shows(deadbolt_tests::MSG_DISABLED), "{out}");

    let files = env.state_files();
    let kept: Vec<&String> = files
        .iter()
        .filter(|f| f.starts_with(".corrupt.alice."))
        .collect();
    assert_eq!(kept.len(), 1, "not kept aside once: {files:?}");
    let kept_bytes = std::fs::read(env.state_dir().join(kept[0])).unwrap();
    assert_eq!(kept_bytes, garbage, "the kept copy must be the original");
    assert_eq!(env.status_json("alice")["disabled"], true);

    // Root is never locked out by it.
    let out = env.authenticate("root", "rootpw");
    assert!(out.succeeded(), "{out}");

    // The administrator looks, and enables alice.
    let ctl = env.deadboltctl(&["enable", "alice"]);
    assert!(ctl.succeeded(), "{ctl}");
    let out = env.authenticate("alice", "secret");
    assert!(out.succeeded(), "{out}");
}

#[test]
fn a_corrupt_state_met_first_by_a_failure_is_kept_aside_too() {
    let env = PamEnv::builder().user("alice", "secret").build();
    env.write_state_file("alice", b"deadbolt-state 1\n{\"failures\": [tru");
    let out = env.authenticate("alice", "wrong");
    out.assert_exited_normally();
    assert!(!out.succeeded(), "{out}");
    assert!(env
        .state_files()
        .iter()
        .any(|f| f.starts_with(".corrupt.alice.")));
    let status = env.status_json("alice");
    assert_eq!(status["disabled"], true, "{status}");
    assert_eq!(status["failures"], 1, "{status}");
}

#[test]
fn a_symlinked_state_file_is_not_followed_and_refuses_like_corruption() {
    let env = PamEnv::builder().user("alice", "secret").build();
    let target = env.root().join("precious");
    std::fs::write(&target, "do not touch\n").unwrap();
    std::os::unix::fs::symlink(&target, env.state_file("alice")).unwrap();

    env.fail_logins("alice", 3);
    let out = env.authenticate("alice", "secret");
    out.assert_exited_normally();
    // Tampering is at least as strict as corruption: kept aside, the
    // account disabled until an administrator looks.
    assert!(!out.succeeded(), "a planted link let alice in\n{out}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "do not touch\n");
    let kept: Vec<String> = env
        .state_files()
        .into_iter()
        .filter(|f| f.starts_with(".corrupt.alice."))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let link = std::fs::symlink_metadata(env.state_dir().join(&kept[0])).unwrap();
    assert!(
        link.file_type().is_symlink(),
        "the link itself was kept aside"
    );
    assert_eq!(env.status_json("alice")["disabled"], true);
}

#[test]
fn invalid_config_falls_back_to_compiled_defaults() {
    // The file is not TOML; the arguments keep the test's state dir (and
    // nodelay, as always).
    let env = PamEnv::builder()
        .user("alice", "secret")
        .raw_config("[lockout\ndeny = = 1000\nthis is not toml\n")
        .build();
    let dir_arg = format!("dir={}", env.state_dir().display());
    env.write_service(Some(&format!(
        "auth     required                @MODULE@ preauth @ARGS@ {dir_arg}\n\
         auth     [success=1 default=bad] @MATRIX@\n\
         auth     [default=die]           @MODULE@ authfail @ARGS@ {dir_arg}\n\
         auth     [success=done default=die] @MODULE@ authsucc @ARGS@ {dir_arg}\n\
         account  required                @MODULE@ @ARGS@ {dir_arg}\n"
    )));
    assert!(env.authenticate("alice", "secret").succeeded());
    env.fail_logins("alice", 3);
    let out = env.authenticate("alice", "secret");
    out.assert_exited_normally();
    assert!(!out.succeeded(), "lockout off with a broken config\n{out}");
    assert!(out.shows(&msg_timed_lock_prefix(3)), "{out}");
    assert!(env.state_files().contains(&"alice.events".to_owned()));
}

#[test]
fn unreadable_config_falls_back_to_compiled_defaults() {
    let env = PamEnv::builder().user("alice", "secret").build();
    std::fs::remove_file(env.config_path()).expect("remove the config");
    let dir_arg = format!("dir={}", env.state_dir().display());
    env.write_service(Some(&format!(
        "auth     required                @MODULE@ preauth @ARGS@ {dir_arg}\n\
         auth     [success=1 default=bad] @MATRIX@\n\
         auth     [default=die]           @MODULE@ authfail @ARGS@ {dir_arg}\n\
         auth     [success=done default=die] @MODULE@ authsucc @ARGS@ {dir_arg}\n"
    )));
    env.fail_logins("alice", 3);
    let out = env.authenticate("alice", "secret");
    assert!(!out.succeeded(), "{out}");
}

#[test]
fn a_panic_in_the_module_is_a_refusal_not_a_crash() {
    let env = PamEnv::builder()
        .user("alice", "secret")
        .module_arg("test_panic")
        .build();
    let out = env.authenticate("alice", "secret");
    assert!(
        out.signal().is_none(),
        "pamtester killed by signal {:?}\n{out}",
        out.signal()
    );
    assert_eq!(out.code(), Some(1), "{out}");
    let out = env.acct_mgmt("alice");
    assert!(out.signal().is_none(), "{out}");
    assert_eq!(out.code(), Some(1), "{out}");
}

#[test]
fn aborted_conversation_is_not_a_failure() {
    let env = PamEnv::builder().user("alice", "secret").build();
    // Empty stdin: the conversation fails before any password is typed.
    let out = env.pamtester("alice", &["authenticate"], "");
    out.assert_exited_normally();
    assert!(!out.succeeded(), "{out}");
    assert_eq!(env.failures("alice"), 0);
    assert!(!env.state_file("alice").exists());
}

#[test]
fn unknown_module_arguments_are_ignored() {
    let env = PamEnv::builder()
        .user("alice", "secret")
        .module_arg("no_such_option")
        .module_arg("deny=notanumber")
        .build();
    assert!(env.authenticate("alice", "secret").succeeded());
    env.fail_logins("alice", 3);
    assert!(!env.authenticate("alice", "secret").succeeded());
}
