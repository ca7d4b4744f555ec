//! The password phase when things go wrong around it: a strength checker
//! that gives no verdict, one that is not installed, one that stops reading
//! its input early, a host program that ignores SIGCHLD, and a change forced
//! by sshd or login (PAM_CHANGE_EXPIRED_AUTHTOK), where root is not the one
//! choosing the password.
//!
//! The checkers here are small shell scripts written into the test's
//! directory and named by `checker`. They run with an empty environment, so
//! they name every program by its full path.

use deadbolt_tests::{
    minutes_ago, module_path, Outcome, PamEnv, PamEnvBuilder, Stack, StartupLock, MSG_CHAUTHTOK_OK,
    MSG_MAXTRIES, SERVICE,
};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// alice's password in pam_matrix's file before any change.
const INITIAL: &str = "Initial-Pass-1";
/// A strong password (zxcvbn 4) with nothing of alice in it.
const A: &str = "quartz-Nimbus-falcon-Tepid-41";

/// What the user is told when the checker gave no verdict.
const MSG_UNCHECKED: &str =
    "BAD PASSWORD: its strength could not be checked; try again, or ask an administrator.";
const MSG_TOO_SHORT: &str = "BAD PASSWORD: it is 5 characters long; at least 12 are required.";
const MSG_TOO_SOON: &str = "The password was changed too recently";
const MSG_ROOT_WARNED: &str = "Accepted anyway: enforce_for_root = false lets root set it.";
/// An accepting verdict, as deadbolt-pwcheck writes it.
const ACCEPTED: &str = r#"{"accepted":true,"score":4,"reasons":[],"list_problems":[]}"#;

/// alice with the password stack, pam_matrix storing.
fn alice() -> PamEnvBuilder {
    PamEnv::builder()
        .user("alice", INITIAL)
        .stack(Stack::Password)
}

/// Writes `body` as an executable `/bin/sh` script named `name` in a
/// directory of its own and returns its path.
fn script(name: &str, body: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("deadbolt-checker.")
        .tempdir()
        .expect("create a directory for the checker");
    let path = dir.path().join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write the checker");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod the checker");
    (dir, path)
}

/// `path` as a TOML string, for `.password("checker", ...)`.
fn toml_path(path: &std::path::Path) -> String {
    deadbolt_tests::toml_string(&path.to_string_lossy())
}

fn assert_changed(out: &Outcome) {
    out.assert_exited_normally();
    assert!(out.succeeded(), "the change failed\n{out}");
    assert!(out.shows(MSG_CHAUTHTOK_OK), "{out}");
}

fn assert_not_changed(out: &Outcome) {
    out.assert_exited_normally();
    assert!(!out.succeeded(), "the change succeeded\n{out}");
    assert!(!out.shows(MSG_CHAUTHTOK_OK), "{out}");
}

fn history_entries(env: &PamEnv) -> u64 {
    env.status_json("alice")["history_entries"]
        .as_u64()
        .expect("history_entries is a number")
}

/// A change to [`A`] with `checker` as the strength checker and one try:
/// refused with [`MSG_UNCHECKED`], and nothing stored or recorded.
fn assert_refused_unchecked(what: &str, body: &str) {
    let (_dir, checker) = script("checker", body);
    let env = alice()
        .password("checker", &toml_path(&checker))
        .password("retry", "1")
        .build();
    let out = env.change_password("alice", INITIAL, &[A]);
    assert_not_changed(&out);
    assert!(
        out.shows(MSG_UNCHECKED),
        "{what}: no \"{MSG_UNCHECKED}\"\n{out}"
    );
    assert!(out.shows(MSG_MAXTRIES), "{what}\n{out}");
    assert_eq!(
        env.passdb_password("alice").as_deref(),
        Some(INITIAL),
        "{what}"
    );
    assert!(
        env.load_state("alice").is_none(),
        "{what}: a change was recorded"
    );
}

#[test]
fn a_checker_that_exits_without_a_verdict_refuses_the_password() {
    assert_refused_unchecked("exit 3, no output", "/bin/cat >/dev/null\nexit 3");
    // Exit status 0, but nothing said.
    assert_refused_unchecked("exit 0, no output", "/bin/cat >/dev/null\nexit 0");
}

#[test]
fn a_checker_killed_by_a_signal_refuses_the_password() {
    assert_refused_unchecked("SIGKILL", "kill -KILL $$");
}

#[test]
fn a_checker_that_writes_anything_but_a_verdict_refuses_the_password() {
    for (what, output) in [
        ("garbage", "this is not a verdict"),
        (
            "no accepted",
            r#"{"score":4,"reasons":[],"list_problems":[]}"#,
        ),
        ("accepted not a boolean", r#"{"accepted":"yes","score":4}"#),
        ("not an object", "[true]"),
        ("trailing garbage", &format!("{ACCEPTED} and more")),
        ("two verdicts", &format!("{ACCEPTED}\n{ACCEPTED}")),
    ] {
        assert_refused_unchecked(
            what,
            &format!("/bin/cat >/dev/null\nprintf '%s\\n' '{output}'\nexit 0"),
        );
    }
}

#[test]
fn a_missing_checker_leaves_the_rules_alone_to_judge() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let env = alice()
        .password("checker", &toml_path(&dir.path().join("no-such-checker")))
        .password("retry", "2")
        .build();
    let out = env.change_password("alice", INITIAL, &["short", A]);
    assert_changed(&out);
    assert!(
        out.shows(MSG_TOO_SHORT),
        "the rules were not applied\n{out}"
    );
    assert!(!out.shows(MSG_UNCHECKED), "{out}");
    assert_eq!(env.passdb_password("alice").as_deref(), Some(A));
    assert_eq!(history_entries(&env), 1);
}

/// A password of `len` characters that breaks no default rule but length.
fn long_password(len: usize) -> String {
    A.chars().cycle().take(len).collect()
}

#[test]
fn a_checker_that_closes_its_input_at_once_is_still_heard() {
    // It never reads the password: writing it must not kill the host
    // (SIGPIPE), and the verdict it gives decides.
    let long = long_password(500);
    let (_dir, checker) = script(
        "checker",
        &format!("exec 0<&-\nprintf '%s\\n' '{ACCEPTED}'"),
    );
    let env = alice()
        .password("checker", &toml_path(&checker))
        .password("max_length", "512")
        .password("retry", "1")
        .build();
    let out = env.change_password("alice", INITIAL, &[&long]);
    assert_changed(&out);
    assert_eq!(env.passdb_password("alice").as_deref(), Some(long.as_str()));
    assert_eq!(history_entries(&env), 1);

    // The same checker refusing, with exit status 0: its verdict decides,
    // not its exit status.
    let refusal = r#"{"accepted":false,"score":0,"reasons":["BAD PASSWORD: the checker says no."],"list_problems":[]}"#;
    let (_dir, checker) = script("checker", &format!("exec 0<&-\nprintf '%s\\n' '{refusal}'"));
    let env = alice()
        .password("checker", &toml_path(&checker))
        .password("max_length", "512")
        .password("retry", "1")
        .build();
    let out = env.change_password("alice", INITIAL, &[&long]);
    assert_not_changed(&out);
    assert!(out.shows("BAD PASSWORD: the checker says no."), "{out}");
    assert!(!out.shows(MSG_UNCHECKED), "{out}");
    assert_eq!(env.passdb_password("alice").as_deref(), Some(INITIAL));
}

#[test]
fn the_history_keeps_the_hash_of_the_approved_password() {
    let env = alice().build();
    assert_changed(&env.change_password("alice", INITIAL, &[A]));
    let history = env.history_phc("alice");
    assert_eq!(history.len(), 1, "{history:?}");
    assert!(deadbolt_core::password::verify(A.as_bytes(), &history[0]));
}

/// `pamtester chauthtok` for alice as [`PamEnv::change_password`] runs it,
/// but with SIGCHLD ignored (as some daemons leave it), so that waiting for
/// a child fails with ECHILD: the verdict must not depend on reaping the
/// checker. bash sets the disposition, which exec keeps.
fn change_ignoring_sigchld(env: &PamEnv, new: &str) -> Outcome {
    module_path();
    let service_file = env.service_file();
    let service_dir = service_file
        .parent()
        .expect("the service file is in a directory");
    let lock = StartupLock::take();
    let mut child = Command::new("bash")
        .arg("-c")
        .arg("trap '' CHLD; export LD_PRELOAD=\"$1\"; shift; exec \"$@\"")
        .arg("bash")
        .arg("libpam_wrapper.so libnss_wrapper.so")
        .args(["pamtester", "-v", SERVICE, "alice", "chauthtok"])
        .env("PAM_WRAPPER", "1")
        .env("PAM_WRAPPER_SERVICE_DIR", service_dir)
        .env("NSS_WRAPPER_PASSWD", env.root().join("passwd"))
        .env("NSS_WRAPPER_GROUP", env.root().join("group"))
        .env_remove("PAM_WRAPPER_KEEP_DIR")
        .env_remove("DEADBOLT_CONFIG")
        .env_remove("PAM_OLDAUTHTOK")
        .current_dir(env.root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bash and pamtester");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(format!("{INITIAL}\n{new}\n{new}\n{new}\n{new}\n").as_bytes());
    }
    let output = child.wait_with_output().expect("wait for pamtester");
    drop(lock);
    Outcome {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn a_host_ignoring_sigchld_still_gets_the_verdict() {
    // The real checker: accepted, stored, recorded.
    let env = alice().build();
    let out = change_ignoring_sigchld(&env, A);
    assert_changed(&out);
    assert_eq!(env.passdb_password("alice").as_deref(), Some(A));
    assert_eq!(history_entries(&env), 1);

    // The real checker refusing a common password.
    let env = alice().password("retry", "1").build();
    let out = change_ignoring_sigchld(&env, "password1234");
    assert_not_changed(&out);
    assert!(
        out.shows("BAD PASSWORD: it is one of the most commonly used passwords."),
        "{out}"
    );

    // A checker that says nothing: refused all the same.
    let (_dir, checker) = script("checker", "/bin/cat >/dev/null\nexit 0");
    let env = alice()
        .password("checker", &toml_path(&checker))
        .password("retry", "1")
        .build();
    let out = change_ignoring_sigchld(&env, A);
    assert_not_changed(&out);
    assert!(out.shows(MSG_UNCHECKED), "{out}");
}

/// A change as sshd or login force it when the password expired:
/// `pam_chauthtok(PAM_CHANGE_EXPIRED_AUTHTOK)`, run as root for the user.
fn forced_change(env: &PamEnv, attempts: &[&str]) -> Outcome {
    let mut input = format!("{INITIAL}\n");
    if let Some((last, refused)) = attempts.split_last() {
        for attempt in refused {
            input.push_str(&format!("{attempt}\n"));
        }
        input.push_str(&format!("{last}\n").repeat(4));
    }
    let mut running =
        env.start_pamtester_with("alice", &["chauthtok(PAM_CHANGE_EXPIRED_AUTHTOK)"], &[]);
    running.send(&input);
    running.wait()
}

#[test]
fn a_forced_change_holds_min_age_though_the_caller_is_root() {
    let env = alice().password("min_age", "\"1d\"").build();
    let an_hour_ago = minutes_ago(60);
    env.seed_state("alice", |state| {
        state.last_password_change = Some(an_hour_ago);
    });
    let out = forced_change(&env, &[A]);
    assert_not_changed(&out);
    assert!(out.shows(MSG_TOO_SOON), "{out}");
    assert_eq!(env.passdb_password("alice").as_deref(), Some(INITIAL));

    // Root choosing (no flag) may change it.
    assert_changed(&env.change_password("alice", INITIAL, &[A]));
}

#[test]
fn a_forced_change_binds_the_rules_without_enforce_for_root() {
    let env = alice()
        .password("enforce_for_root", "false")
        .password("retry", "2")
        .build();
    let out = forced_change(&env, &["short", A]);
    assert_changed(&out);
    assert!(out.shows(MSG_TOO_SHORT), "{out}");
    assert!(!out.shows(MSG_ROOT_WARNED), "{out}");
    assert_eq!(env.passdb_password("alice").as_deref(), Some(A));
}
