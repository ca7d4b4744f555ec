//! A password history with crafted entries, through real libpam: an entry
//! whose argon2 parameters would take days (four thousand million passes)
//! or far more work than any configuration may ask for is ignored, so
//! `chauthtok` finishes and the change goes through, while a real former
//! password beside it is still refused.
//!
//! The entries are planted through the core store, as another host or the
//! directory would deliver them. Each change must end within
//! [`LIMIT`]: a pamtester still running then is killed and the test fails,
//! rather than hanging the test run as it hung `passwd`.

use deadbolt_core::password::HashParams;
use deadbolt_core::state::PasswordRecord;
use deadbolt_tests::{minutes_ago, Outcome, PamEnv, PamEnvBuilder, Stack, MSG_CHAUTHTOK_OK};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// alice's password in pam_matrix's file before any change.
const INITIAL: &str = "Initial-Pass-1";
/// A former password of alice's, in her history.
const FORMER: &str = "quartz-Nimbus-falcon-Tepid-41";
/// A strong password never used.
const FRESH: &str = "Velvet-Compass-Orbit-73";

const MSG_REUSED: &str = "BAD PASSWORD: it was used before; the last 5 passwords cannot be reused.";

/// Far longer than a change takes (a second or two), far shorter than an
/// entry of four thousand million passes would.
const LIMIT: Duration = Duration::from_secs(60);

/// Entries deadbolt could never have written, each breaking one bound.
const HOSTILE: &[&str] = &[
    // Four thousand million passes over 64 KiB: days of argon2.
    "$argon2id$v=19$m=64,t=4000000000,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA",
    // 1 GiB passed over three times: allowed memory, too much work.
    "$argon2id$v=19$m=1048576,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA",
];

fn alice() -> PamEnvBuilder {
    PamEnv::builder()
        .user("alice", INITIAL)
        .stack(Stack::Password)
        .password("retry", "1")
}

/// alice's history: [`FORMER`] (hashed as the harness's configuration
/// hashes), then `hostile`, newer, so that it is compared first.
fn plant(env: &PamEnv, hostile: &str) {
    let former = HashParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    }
    .hash(FORMER.as_bytes())
    .expect("hash the former password");
    env.seed_state("alice", |state| {
        state.password_history.insert(PasswordRecord {
            changed_at: minutes_ago(20),
            phc: former,
        });
        state.password_history.insert(PasswordRecord {
            changed_at: minutes_ago(10),
            phc: hostile.to_owned(),
        });
    });
}

/// The pamtester processes this test binary started for `env`: children
/// of this process working in the environment's directory.
fn pamtesters_of(env: &PamEnv) -> Vec<u32> {
    let me = std::process::id().to_string();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let proc_dir = Path::new("/proc").join(pid.to_string());
            let stat = fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
            // "pid (comm) state ppid ..."; comm has no ')' here.
            let after_comm = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
            let ppid = after_comm.split(' ').nth(1);
            stat.contains("(pamtester)")
                && ppid == Some(me.as_str())
                && fs::read_link(proc_dir.join("cwd")).is_ok_and(|cwd| cwd == env.root())
        })
        .collect()
}

/// `env.change_password("alice", INITIAL, &[attempt])`, failing the test
/// (and killing pamtester) if it has not ended within [`LIMIT`].
fn change_within_limit(env: &PamEnv, attempt: &str) -> Outcome {
    thread::scope(|scope| {
        let (done, ended) = mpsc::channel();
        scope.spawn(move || {
            let _ = done.send(env.change_password("alice", INITIAL, &[attempt]));
        });
        match ended.recv_timeout(LIMIT) {
            Ok(out) => out,
            Err(_) => {
                for pid in pamtesters_of(env) {
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                }
                let out = ended.recv().map(|o| o.to_string()).unwrap_or_default();
                panic!("chauthtok was still running after {LIMIT:?}; killed\n{out}");
            }
        }
    })
}

#[test]
fn an_entry_past_the_bounds_is_ignored_and_the_change_goes_through() {
    for hostile in HOSTILE {
        let env = alice().build();
        plant(&env, hostile);
        let out = change_within_limit(&env, FRESH);
        out.assert_exited_normally();
        assert!(out.succeeded(), "the change failed ({hostile})\n{out}");
        assert!(out.shows(MSG_CHAUTHTOK_OK), "{out}");
        assert_eq!(env.passdb_password("alice").as_deref(), Some(FRESH));
        // Recorded beside the entries it found: the crafted one is left as
        // it was (it merges in from elsewhere anyway), and ages out of
        // the history like any other.
        let history = env.history_phc("alice");
        assert_eq!(history.len(), 3, "{history:?}");
        assert!(history.iter().any(|phc| phc == hostile), "{history:?}");
    }
}

#[test]
fn a_former_password_beside_such_an_entry_is_still_refused() {
    for hostile in HOSTILE {
        let env = alice().build();
        plant(&env, hostile);
        let out = change_within_limit(&env, FORMER);
        out.assert_exited_normally();
        assert!(!out.succeeded(), "the change succeeded ({hostile})\n{out}");
        assert!(out.shows(MSG_REUSED), "{out}");
        assert_eq!(env.passdb_password("alice").as_deref(), Some(INITIAL));
        assert_eq!(env.history_phc("alice").len(), 2);
    }
}
