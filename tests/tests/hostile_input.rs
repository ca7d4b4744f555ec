//! Hostile user names and passwords through real libpam (pamtester under
//! pam_wrapper and nss_wrapper), beyond tests/tests/robustness.rs: names
//! that are not UTF-8, names with LDAP filter metacharacters, spellings of
//! a known name; passwords of 0 bytes, of 1 MiB and not UTF-8, at login and
//! at a password change.

use deadbolt_tests::{contains_bytes, PamEnv, Stack};

/// pamtester run by bash, which turns the user name's `\xHH` escapes into
/// bytes (`printf %b`): the harness passes names as text, and a name that
/// is not UTF-8 cannot be one.
const BYTES_IN_NAME: &[&str] = &[
    "bash",
    "-c",
    "user=$(printf '%b' \"$3\"); shift 3; exec pamtester -v deadbolt-test \"$user\" \"$@\"",
];

#[test]
fn a_user_name_that_is_not_utf8_is_refused_and_writes_nothing() {
    let mut env = PamEnv::builder()
        .user("alice", "secret")
        .state("track_unknown_users", "true")
        .build();
    env.run_pamtester_by(BYTES_IN_NAME);
    let before = env.tree();
    for name in [
        "\\xff\\xfe",
        "alice\\xff",
        "\\xc3\\x28",
        "a\\xed\\xa0\\x80b",
    ] {
        let out = env.authenticate(name, "whatever");
        out.assert_exited_normally();
        assert!(!out.succeeded(), "{name} was let in\n{out}");
    }
    assert_eq!(env.state_files(), Vec::<String>::new());
    assert_eq!(env.tree(), before, "files appeared");
    // Control: the same runner passes an ordinary name through, and it is
    // counted.
    let out = env.authenticate("zed", "wrong");
    assert!(!out.succeeded(), "{out}");
    assert!(
        env.state_files().contains(&"zed.events".to_owned()),
        "{:?}",
        env.state_files()
    );
}

#[test]
fn ldap_metacharacters_in_a_name_are_part_of_the_name() {
    // A name with filter metacharacters is an ordinary name to the module:
    // its failures are its own and reach nobody else's tally.
    let env = PamEnv::builder()
        .user("alice", "secret")
        .state("track_unknown_users", "true")
        .build();
    for name in ["*", "a*)(uid=*", "alice)(|(uid=*", "x\\2a"] {
        let out = env.authenticate(name, "wrong");
        out.assert_exited_normally();
        assert!(!out.succeeded(), "{name}\n{out}");
    }
    assert_eq!(env.failures("alice"), 0, "a metacharacter reached alice");
    assert!(env.authenticate("alice", "secret").succeeded());
}

#[test]
fn other_spellings_of_a_name_neither_reach_nor_reset_its_tally() {
    // nss_wrapper compares names exactly, as files-backed NSS does: `ALICE`,
    // `alice ` and `alice.` are not alice, so they log nobody in and do not
    // reset alice's count; alice's tally stays hers.
    let env = PamEnv::builder()
        .user("alice", "secret")
        .lockout("deny", "3")
        .build();
    env.fail_logins("alice", 2);
    for spelling in ["ALICE", "Alice", "alice ", "alice.", " alice"] {
        let out = env.authenticate(spelling, "secret");
        out.assert_exited_normally();
        assert!(!out.succeeded(), "{spelling:?} logged in\n{out}");
    }
    assert_eq!(
        env.failures("alice"),
        2,
        "another spelling changed the count"
    );
    assert_eq!(env.state_files(), vec!["alice.events".to_owned()]);
    env.fail_logins("alice", 1);
    assert!(env.is_locked("alice"));
    assert!(!env.authenticate("alice", "secret").succeeded());
}

/// An NSS that folds case (sssd with `case_sensitive = false`, winbind)
/// answers `ALICE` with alice's entry. The module keeps state under the
/// name NSS returns, so every spelling meets alice's own tally and lock,
/// and no state is kept under another spelling. nss_wrapper compares names
/// exactly; a small NSS module built here (`tests/nss/libnss_fold.c`),
/// which nss_wrapper asks first, folds case.
#[test]
fn spellings_an_nss_folds_to_one_account_meet_its_own_tally_and_lock() {
    let env = PamEnv::builder()
        .user("alice", "secret")
        .lockout("deny", "3")
        .lockout("unlock_after", "\"never\"")
        .build();
    let module = env.root().join("libnss_fold.so.2");
    let built = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
        .arg(&module)
        .arg(deadbolt_tests::workspace_dir().join("tests/nss/libnss_fold.c"))
        .status()
        .expect("run cc");
    assert!(built.success(), "the NSS module does not build");
    let module = module.to_str().expect("a UTF-8 path");
    let passwd = env.passwd_path().to_str().expect("a UTF-8 path");
    let folding = [
        ("NSS_WRAPPER_MODULE_SO_PATH", module),
        ("NSS_WRAPPER_MODULE_FN_PREFIX", "fold"),
        ("DEADBOLT_FOLD_PASSWD", passwd),
    ];
    for spelling in ["ALICE", "Alice", "aLiCe"] {
        let mut login = env.start_pamtester_with(spelling, &["authenticate"], &folding);
        login.send("wrong password\n");
        let out = login.wait();
        out.assert_exited_normally();
        assert!(!out.succeeded(), "{spelling} logged in\n{out}");
    }
    assert_eq!(
        env.failures("alice"),
        3,
        "the spellings' failures are not alice's"
    );
    assert!(env.is_locked("alice"));
    let files = env.state_files();
    assert!(
        files.iter().all(|f| f.starts_with("alice.")),
        "state kept under another spelling: {files:?}"
    );
    // Locked for every spelling, the right password included.
    assert!(!env.authenticate("alice", "secret").succeeded());
}

#[test]
fn empty_huge_and_non_utf8_passwords_are_failures_that_are_never_stored() {
    let env = PamEnv::builder()
        .user("alice", "secret")
        .lockout("deny", "10")
        .build();
    let huge = vec![b'Q'; 1024 * 1024];
    let not_utf8: &[u8] = b"\xff\xfe\xc3\x28-not-text";
    let attempts: [&[u8]; 3] = [b"", &huge, not_utf8];
    for (i, password) in attempts.iter().enumerate() {
        let mut running = env.start_pamtester("alice", &["authenticate"]);
        let mut input = password.to_vec();
        input.push(b'\n');
        running.send_bytes(&input);
        let out = running.wait();
        out.assert_exited_normally();
        assert!(!out.succeeded(), "attempt {i} let alice in\n{out}");
        assert_eq!(env.failures("alice"), i as u64 + 1, "attempt {i}\n{out}");
    }
    let state = env.state_bytes();
    assert!(!contains_bytes(&state, not_utf8), "a password in the state");
    assert!(
        !contains_bytes(&state, &huge[..64]),
        "a password in the state"
    );
    assert!(env.authenticate("alice", "secret").succeeded());
}

#[test]
fn a_new_password_that_is_empty_huge_or_not_utf8_is_refused_clearly() {
    let env = PamEnv::builder()
        .user("alice", "Initial-Pass-Word-1")
        .stack(Stack::Password)
        .build();
    let huge = vec![b'Z'; 1024 * 1024];
    for (what, new, reason) in [
        ("empty", &b""[..], "BAD PASSWORD: it is empty."),
        (
            "1 MiB",
            &huge[..],
            "BAD PASSWORD: it is longer than the 128 characters allowed.",
        ),
        // Bytes that are not UTF-8 are judged like any other password
        // (tests/tests/password.rs): these are too short.
        (
            "not UTF-8",
            &b"\xff\xfe\xc3\x28"[..],
            "BAD PASSWORD: it is 4 characters long; at least 12 are required.",
        ),
    ] {
        let out = env.change_password_bytes("alice", "Initial-Pass-Word-1", &[new]);
        out.assert_exited_normally();
        assert!(!out.succeeded(), "{what} was taken\n{out}");
        assert!(
            env.passdb_password("alice").as_deref() == Some("Initial-Pass-Word-1"),
            "{what}: the stored password changed"
        );
        assert!(out.stderr.len() < 64 * 1024, "{what}: the answer echoes it");
        assert!(out.shows(reason), "{what}: no clear reason\n{out}");
    }
    let state = env.state_bytes();
    assert!(
        !contains_bytes(&state, &huge[..64]),
        "a password in the state"
    );
}
