//! A history entry that asks for more memory than the system will give must
//! match nothing, not abort the process that checks it (passwd, sshd); being
//! within the bounds, it may be the password, so the history cannot vouch
//! for a new one.
//!
//! The test re-executes itself with its address space limited to 512 MiB,
//! then verifies an entry asking for 1 GiB: the child must end normally.
#![forbid(unsafe_code)]

use deadbolt_core::password::{
    verify, HashParams, HistoryVerdict, PasswordHistory, MAX_HASH_MEMORY_KIB,
};
use deadbolt_core::state::PasswordRecord;
use deadbolt_core::{Timestamp, UserState};
use std::process::Command;
use std::time::{Duration, Instant};

const CHILD: &str = "DEADBOLT_VERIFY_MEMORY_TEST_CHILD";

/// The address space the child keeps: far less than the entry asks for,
/// far more than the test itself needs.
const LIMIT_BYTES: u64 = 512 * 1024 * 1024;

fn limit_address_space() {
    use nix::sys::resource::{setrlimit, Resource};
    setrlimit(Resource::RLIMIT_AS, LIMIT_BYTES, LIMIT_BYTES).expect("setrlimit");
}

fn huge_entry() -> String {
    format!(
        "$argon2id$v=19$m={MAX_HASH_MEMORY_KIB},t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA"
    )
}

#[test]
fn an_entry_the_system_cannot_allocate_matches_nothing() {
    if std::env::var_os(CHILD).is_some() {
        limit_address_space();
        // 1 GiB does not fit in 512 MiB: refused, and the process lives on.
        assert!(!verify(b"x", &huge_entry()));

        // In the history, next to an entry that can be computed, which is
        // still found.
        let cheap = HashParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        let mut state = UserState::default();
        for (secs, phc) in [
            (1, cheap.hash(b"former-password").unwrap()),
            (2, huge_entry()),
            (3, huge_entry().replace("c2FsdHNhbHQ", "c2FsdHNhbHR5")),
        ] {
            state.password_history.insert(PasswordRecord {
                changed_at: Timestamp::from_secs(secs),
                phc,
            });
        }
        let start = Instant::now();
        let check = |password: &[u8]| {
            let deadline = start + Duration::from_secs(1);
            PasswordHistory::check(&state, password, 10, deadline, &|| start)
        };
        let fresh = check(b"new-password");
        assert_eq!(fresh.verdict(), HistoryVerdict::Unchecked);
        assert_eq!(fresh.out_of_memory, 2);
        assert_eq!(check(b"former-password").verdict(), HistoryVerdict::Reused);
        println!("child done");
        return;
    }

    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "an_entry_the_system_cannot_allocate_matches_nothing",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the child failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("child done"), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the child ran no test: {stdout}"
    );
}
