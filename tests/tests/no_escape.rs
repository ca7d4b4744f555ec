//! No condition a caller controls stops a failure from counting: resource
//! limits set before the exec, a process killed or stopped mid-login, the
//! caller's group. Each test runs pamtester as a local attacker would run a
//! setuid `su`: limits and signals prepared by a shell, then exec.

use deadbolt_core::{StateStore, UserName};
use deadbolt_tests::PamEnv;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn alice() -> PamEnv {
    PamEnv::builder().user("alice", "secret").build()
}

/// Wrong passwords under `prefix`, then the right one under it: refused,
/// because every wrong one counted.
fn guesses_under(prefix: &str) {
    let env = alice();
    for i in 0..3 {
        let mut running = env.start_pamtester_under(prefix, "alice", &["authenticate"]);
        running.send(&format!("wrong{i}\n"));
        let out = running.wait();
        assert!(
            !out.succeeded(),
            "wrong password {i} accepted under {prefix:?}\n{out}"
        );
        out.assert_exited_normally();
    }
    // Counted where the module could lift the limit (root with
    // CAP_SYS_RESOURCE); refused before any password check where it could
    // not. Either way no guess went uncounted.
    let counted = env.failures("alice");
    assert!(counted == 3 || counted == 0, "under {prefix:?}: {counted}");
    assert_eq!(env.is_locked("alice"), counted == 3, "under {prefix:?}");
    let mut running = env.start_pamtester_under(prefix, "alice", &["authenticate"]);
    running.send("secret\n");
    let out = running.wait();
    out.assert_exited_normally();
    assert!(
        !out.succeeded(),
        "the right password got in under {prefix:?}\n{out}"
    );
}

#[test]
fn a_file_size_limit_does_not_stop_counting() {
    guesses_under("ulimit -f 0");
}

#[test]
fn a_file_size_limit_with_sigxfsz_ignored_does_not_stop_counting() {
    guesses_under("trap '' XFSZ; ulimit -f 0");
}

#[test]
fn few_open_files_do_not_stop_counting() {
    guesses_under("ulimit -S -n 12");
}

#[test]
fn a_small_address_space_does_not_stop_counting() {
    guesses_under("ulimit -v 400000");
}

/// Killed after the prompt (after preauth, before any verdict), each attempt
/// counts: killing the process between the check and the record cannot
/// win, because the record came first.
#[test]
fn a_login_killed_before_its_verdict_counts_as_a_failure() {
    let env = alice();
    for i in 0..3 {
        let running = env.start_pamtester("alice", &["authenticate"]);
        // Killed at the prompt, once preauth has run.
        wait_for(|| pending(&env) == i as usize + 1, "preauth's record");
        let out = running.kill();
        assert_eq!(env.failures("alice"), i + 1);
        assert_eq!(out.signal(), Some(9), "{out}");
    }
    assert_eq!(env.failures("alice"), 3);
    assert!(env.is_locked("alice"));
    let out = env.authenticate("alice", "secret");
    assert!(!out.succeeded(), "{out}");
}

/// A prompt left unanswered and closed (the conversation fails, the process
/// goes on) is no guess and does not count.
#[test]
fn an_aborted_prompt_does_not_count() {
    let env = alice();
    let out = env.pamtester("alice", &["authenticate"], "");
    assert!(!out.succeeded(), "{out}");
    assert_eq!(env.failures("alice"), 0);
    let out = env.authenticate("alice", "secret");
    assert!(out.succeeded(), "{out}");
}

/// Someone holds alice's lock and never lets go (a setuid `su` stopped with
/// SIGSTOP while it held it): every failure from elsewhere still counts.
#[test]
fn a_held_lock_blocks_no_count() {
    let env = alice();
    // Create the store's files first, as a first failure would.
    env.fail_logins("alice", 1);
    let store = StateStore::open_existing(env.state_dir()).unwrap();
    let held = store.lock(&UserName::parse("alice").unwrap()).unwrap();
    env.fail_logins("alice", 2);
    assert_eq!(env.failures("alice"), 3);
    assert!(env.is_locked("alice"));
    let out = env.authenticate("alice", "secret");
    assert!(!out.succeeded(), "{out}");
    // The reactivation is not lost to the held lock either.
    let out = env.deadboltctl(&["reactivate", "alice"]);
    assert!(out.succeeded(), "{out}");
    assert!(!env.is_locked("alice"));
    drop(held);
    let out = env.authenticate("alice", "secret");
    assert!(out.succeeded(), "{out}");
}

fn pending(env: &PamEnv) -> usize {
    std::fs::read_dir(env.state_dir().join("alice.events")).map_or(0, |d| {
        d.filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".pending"))
        })
        .count()
    })
}

/// Polls `condition` until it holds, failing after 20 s.
fn wait_for(condition: impl Fn() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "no {what} after 20 s");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

fn every_entry(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        found.push(path.clone());
        if std::fs::symlink_metadata(&path).unwrap().is_dir() {
            every_entry(&path, found);
        }
    }
}

/// A setuid program runs with the caller's group: what deadbolt creates is
/// root:root all the same.
#[test]
fn state_files_belong_to_root_whatever_the_callers_group() {
    let env = alice();
    if !nix::unistd::geteuid().is_root() {
        println!("SKIPPED: needs root");
        return;
    }
    let shell = "exec setpriv --regid 4242 --clear-groups -- \"$@\" >/dev/null 2>&1";
    for password in ["wrong", "wrong"] {
        let mut running = env.start_pamtester_under(shell, "alice", &["authenticate"]);
        running.send(&format!("{password}\n"));
        assert!(!running.wait().succeeded());
    }
    let out = env.deadboltctl(&["reactivate", "alice"]);
    assert!(out.succeeded(), "{out}");
    let mut found = Vec::new();
    every_entry(env.state_dir(), &mut found);
    assert!(found.len() >= 3, "{found:?}");
    for path in found {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "{}", path.display());
    }
}

/// A killed writer's temporary file is reused, not left to pile up.
#[test]
fn no_temporary_file_is_left_behind() {
    let env = alice();
    env.fail_logins("alice", 2);
    std::fs::write(
        env.state_dir().join(".tmp.alice"),
        b"left by a killed writer",
    )
    .unwrap();
    let out = env.deadboltctl(&["reactivate", "alice"]);
    assert!(out.succeeded(), "{out}");
    let mut found = Vec::new();
    every_entry(env.state_dir(), &mut found);
    assert!(
        found
            .iter()
            .all(|p| !p.file_name().unwrap().to_string_lossy().starts_with(".tmp")),
        "{found:?}"
    );
}

/// A configuration others could have written (it may name a checker that
/// runs as root) is not used, and nobody but root logs in until it is fixed.
#[test]
fn a_configuration_others_can_write_refuses_logins() {
    use std::os::unix::fs::PermissionsExt;
    let env = PamEnv::builder()
        .user("alice", "secret")
        .root("rootpw")
        .build();
    let set_mode = |mode| {
        std::fs::set_permissions(env.config_path(), std::fs::Permissions::from_mode(mode)).unwrap()
    };
    set_mode(0o666);
    let out = env.authenticate("alice", "secret");
    out.assert_exited_normally();
    assert!(!out.succeeded(), "alice got in under a 0666 config\n{out}");
    assert!(out.shows("configuration is not safe"), "{out}");
    // Root can still get in to repair it, with his right password only.
    assert!(env.authenticate("root", "rootpw").succeeded());
    assert!(!env.authenticate("root", "wrong").succeeded());
    set_mode(0o644);
    assert!(env.authenticate("alice", "secret").succeeded());
}

/// A state directory others can read or enter points to tampering: logins
/// are refused but root's, rather than let through with nothing recorded.
#[test]
fn a_state_directory_open_to_others_refuses_but_root() {
    use std::os::unix::fs::PermissionsExt;
    let env = PamEnv::builder()
        .user("alice", "secret")
        .root("rootpw")
        .build();
    env.fail_logins("alice", 1);
    std::fs::set_permissions(env.state_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = env.authenticate("alice", "secret");
    out.assert_exited_normally();
    assert!(
        !out.succeeded(),
        "alice got in with a 0755 state dir\n{out}"
    );
    assert!(out.shows("cannot record login attempts"), "{out}");
    assert!(env.authenticate("root", "rootpw").succeeded());
    std::fs::set_permissions(env.state_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(env.authenticate("alice", "secret").succeeded());
}

/// One typo in a configuration that names its own state directory does not
/// make the module forget a disable: the directory the file names is kept.
#[test]
fn an_invalid_configuration_keeps_the_state_directory_it_names() {
    let env = alice();
    let out = env.deadboltctl(&["disable", "alice"]);
    assert!(out.succeeded(), "{out}");
    assert!(!env.authenticate("alice", "secret").succeeded());
    let broken = format!("{}\n[lockout\ndeny = = 3\n", env.config_text());
    env.write_config(&broken);
    let out = env.authenticate("alice", "secret");
    out.assert_exited_normally();
    assert!(!out.succeeded(), "a typo lifted a disable\n{out}");
    assert!(out.shows("disabled"), "{out}");
}
