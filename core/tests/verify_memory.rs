//! A history entry that asks for more memory than the system will give must
//! match nothing, not abort the process that checks it (passwd, sshd).
//!
//! The test re-executes itself with its address space limited to 512 MiB,
//! then verifies an entry asking for 1 GiB: the child must end normally.
#![forbid(unsafe_code)]

use deadbolt_core::password::{verify, HashParams, PasswordHistory, MAX_HASH_MEMORY_KIB};
use deadbolt_core::state::PasswordRecord;
use deadbolt_core::{Timestamp, UserState};
use std::process::Command;

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
        assert!(!PasswordHistory::reused(&state, b"new-password", 10));
        assert!(PasswordHistory::reused(&state, b"former-password", 10));
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
