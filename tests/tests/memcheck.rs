//! pam_deadbolt.so under valgrind memcheck, loaded by pamtester through real
//! libpam and pam_wrapper, in every phase: a login that succeeds, one that
//! fails, the account phase, and a password change. An invalid read or
//! write, a use of uninitialised memory, or a block definitely lost fails
//! the test; tests/valgrind/system.supp silences only what libpam and
//! pam_wrapper do themselves, each entry saying why.

use std::fs;
use std::path::{Path, PathBuf};

use deadbolt_tests::{workspace_dir, Outcome, PamEnv, Stack, MSG_CHAUTHTOK_OK};

/// valgrind's exit code when it found an error: no PAM result uses it.
const ERROR_EXIT: i32 = 99;

const PASSWORD: &str = "Initial-Pass-1";
const NEW_PASSWORD: &str = "quartz-Nimbus-falcon-Tepid-41";

fn suppressions() -> PathBuf {
    workspace_dir().join("tests/valgrind/system.supp")
}

/// Runs pamtester under memcheck from now on, its report in `log`.
fn under_memcheck(env: &mut PamEnv, log: &Path) {
    let log_arg = format!("--log-file={}", log.display());
    let supp_arg = format!("--suppressions={}", suppressions().display());
    let error_arg = format!("--error-exitcode={ERROR_EXIT}");
    env.run_pamtester_by(&[
        "valgrind",
        "--tool=memcheck",
        "--leak-check=full",
        "--show-leak-kinds=definite",
        "--errors-for-leak-kinds=definite",
        "--track-origins=yes",
        // libpam unloads the modules in pam_end, before the leak check:
        // without this their frames would have no names.
        "--keep-debuginfo=yes",
        "--gen-suppressions=all",
        &error_arg,
        &supp_arg,
        &log_arg,
    ]);
}

/// The report of one run, after checking that memcheck found nothing.
fn assert_clean(what: &str, out: &Outcome, log: &Path) {
    let report = fs::read_to_string(log)
        .unwrap_or_else(|e| panic!("{what}: no valgrind report at {}: {e}", log.display()));
    assert!(
        report.contains("ERROR SUMMARY: 0 errors"),
        "{what}: memcheck found errors\n{report}\n{out}"
    );
    assert_ne!(out.code(), Some(ERROR_EXIT), "{what}\n{report}\n{out}");
    // The leak check runs at exit: a report without it is of a run cut short.
    assert!(
        report.contains("HEAP SUMMARY") && report.contains("LEAK SUMMARY"),
        "{what}: memcheck did not finish\n{report}"
    );
}

#[test]
fn every_phase_is_clean_under_memcheck() {
    let mut env = PamEnv::builder().user("alice", PASSWORD).build();
    let logs = env.root().join("valgrind");
    fs::create_dir(&logs).expect("a directory for valgrind's reports");
    let log = |name: &str| logs.join(format!("{name}.log"));

    under_memcheck(&mut env, &log("auth-ok"));
    let out = env.authenticate("alice", PASSWORD);
    assert_clean("a login that succeeds", &out, &log("auth-ok"));
    out.assert_exited_normally();
    assert!(out.succeeded(), "the right password was refused\n{out}");

    under_memcheck(&mut env, &log("auth-fail"));
    let out = env.authenticate("alice", "wrong password");
    assert_clean("a login that fails", &out, &log("auth-fail"));
    out.assert_exited_normally();
    assert!(!out.succeeded(), "a wrong password was accepted\n{out}");

    under_memcheck(&mut env, &log("account"));
    let out = env.acct_mgmt("alice");
    assert_clean("the account phase", &out, &log("account"));
    out.assert_exited_normally();
    assert!(out.succeeded(), "the account phase refused alice\n{out}");
}

#[test]
fn a_password_change_is_clean_under_memcheck() {
    let mut env = PamEnv::builder()
        .user("alice", PASSWORD)
        .stack(Stack::Password)
        .build();
    let log = env.root().join("chauthtok.valgrind.log");
    under_memcheck(&mut env, &log);
    let out = env.change_password("alice", PASSWORD, &[NEW_PASSWORD]);
    assert_clean("a password change", &out, &log);
    out.assert_exited_normally();
    assert!(out.succeeded(), "the change failed\n{out}");
    assert!(out.shows(MSG_CHAUTHTOK_OK), "{out}");
}
