//! Directory values that are malformed, huge or repeated 100,000 times,
//! loaded by a real deadbolt-syncd from a real slapd: the daemon does not
//! crash, keeps a bounded number of failures, says what it refused in its
//! log, and goes on serving (a failure on the host still reaches the
//! directory).

use deadbolt_core::state::MAX_FAILURES_KEPT;
use deadbolt_tests::fleet::{FleetHost, PROPAGATION};
use deadbolt_tests::slapd::{ldif_line, wait_until, Directory};

/// Failure values planted in another host's record.
const PLANTED: usize = 100_000;

/// A record of host `host-z` under `employee_dn`: `PLANTED` well-formed
/// failures a microsecond apart, values that are not failures, and `extra`.
fn hostile_record(directory: &Directory, employee_dn: &str, extra: &str) -> String {
    let mut ldif = String::with_capacity(PLANTED * 48 + 1024 * 1024 + 256);
    ldif_line(
        &mut ldif,
        "dn",
        &directory.host_record_dn(employee_dn, "host-z"),
    );
    ldif.push_str("objectClass: deadboltHostRecord\ndeadboltHost: host-z\n");
    // 2026-12-02 10:00:00 UTC plus i microseconds: all inside one
    // fail_interval, all distinct.
    for i in 0..PLANTED {
        ldif.push_str(&format!(
            "deadboltFailure: 20261202100000.{:06}Z {} sshd 203.0.113.9\n",
            i % 1_000_000,
            i + 1
        ));
    }
    ldif.push_str("deadboltFailure: this is not a failure\n");
    // As long as the shipped constraint lets a value be.
    ldif.push_str(&format!("deadboltFailure: {}\n", "G".repeat(1024)));
    ldif.push_str(extra);
    ldif
}

#[test]
fn a_record_of_100000_failures_and_garbage_is_loaded_bounded_and_a_huge_value_refused() {
    let directory = Directory::start();
    let alice = directory.add_employee("alice", "ldap-pw", None);
    let host = FleetHost::new(
        &directory,
        "host-a",
        &[("alice", "secret")],
        &[("deny", "3"), ("unlock_after", "\"never\"")],
    );
    // A value of 1 MiB: the shipped constraint (packaging/ldap/
    // constraint.ldif) refuses it, whoever writes it.
    let huge = format!(
        "deadboltFailure: 20261202100001.000000Z 1 sshd {}\n",
        "H".repeat(1024 * 1024)
    );
    let refused = directory.try_add(
        directory.admin_dn(),
        directory.admin_password(),
        &hostile_record(&directory, &alice, &huge),
    );
    assert_eq!(refused.code, 19, "a 1 MiB value was taken: {refused:?}");
    directory
        .add(
            directory.admin_dn(),
            directory.admin_password(),
            &hostile_record(&directory, &alice, ""),
        )
        .expect("slapd takes the record");

    let mut syncd = host.start_syncd();
    syncd.wait_ready();
    host.wait_locked("alice", true, "host-z's failures lock alice");
    let kept = host.env.failures("alice");
    assert_eq!(kept as usize, MAX_FAILURES_KEPT, "failures kept");
    // What the daemon wrote was read back, not set aside as corrupt (as it
    // was when all 100,000 went into one file).
    let files = host.env.state_files();
    assert!(
        !files.iter().any(|f| f.starts_with(".corrupt.")),
        "{files:?}"
    );

    let log = syncd.log_text();
    assert!(
        log.contains("the oldest, were dropped: a state keeps 1024"),
        "the bound is not said:\n{log}"
    );
    assert!(
        log.contains("a value of deadboltFailure (host host-z) was skipped"),
        "the malformed values are not said:\n{log}"
    );
    assert!(
        !log.contains(&"G".repeat(200)),
        "the log copies the long value"
    );
    assert!(log.len() < 1024 * 1024, "a log of {} bytes", log.len());

    // Still serving: a failure here reaches host-a's own record.
    host.env.fail_logins("alice", 1);
    let record = directory.host_record_dn(&alice, "host-a");
    wait_until(
        "host-a's failure reaches the directory",
        PROPAGATION,
        || {
            directory
                .entry(&record, &["deadboltFailure"])
                .filter(|e| !e.values("deadboltfailure").is_empty())
        },
    );
    assert!(
        std::fs::read_dir(host.sync_dir()).is_ok(),
        "the daemon's directory is gone"
    );
    let status = syncd.status().expect("the daemon's status file");
    assert_eq!(status["connected"], true, "{status}");
}

/// User names that are LDAP filter or DN metacharacters (all valid user
/// names here) fail on the host through real libpam; the daemon pushes
/// each one's failures to that employee's own record, mirrors the one lock
/// on that entry alone, and a reactivation of it reaches no other name.
#[test]
fn names_made_of_filter_and_dn_metacharacters_reach_their_own_entries_only() {
    const LOCKED: &str = "x*";
    // (name, failures on the host)
    let names: [(&str, usize); 6] = [
        (LOCKED, 3),
        ("x", 0),
        ("*", 0),
        ("x)(uid=*", 2),
        ("a(b)\\c,d=e+f\"<g>;#h", 1),
        ("cn=host-a", 1),
    ];
    let directory = Directory::start();
    let dns: Vec<String> = names
        .iter()
        .map(|(name, _)| directory.add_employee(name, "ldap-pw", None))
        .collect();
    let users: Vec<(&str, &str)> = names.iter().map(|(name, _)| (*name, "secret")).collect();
    let host = FleetHost::new(
        &directory,
        "host-a",
        &users,
        &[("deny", "3"), ("unlock_after", "\"never\"")],
    );
    let mut syncd = host.start_syncd();
    syncd.wait_ready();
    for (name, failures) in names {
        host.env.fail_logins(name, failures);
    }
    let pushed = |dn: &str| {
        directory
            .entry(
                &directory.host_record_dn(dn, "host-a"),
                &["deadboltFailure"],
            )
            .map_or(0, |e| e.values("deadboltfailure").len())
    };
    let lock_on = |dn: &str| {
        directory
            .entry(dn, &["pwdAccountLockedTime"])
            .is_some_and(|e| !e.values("pwdaccountlockedtime").is_empty())
    };
    wait_until(
        "every name's failures in its own record, the lock mirrored",
        PROPAGATION,
        || {
            (names.iter().zip(&dns).all(|((_, n), dn)| pushed(dn) == *n) && lock_on(&dns[0]))
                .then_some(())
        },
    );
    for ((name, _), dn) in names.iter().zip(&dns) {
        assert_eq!(lock_on(dn), *name == LOCKED, "{name}: pwdAccountLockedTime");
        assert_eq!(
            host.locked(name),
            *name == LOCKED,
            "{name}: locked on the host"
        );
    }
    // Every record the daemon wrote sits under the entry it belongs to.
    let records = directory.search(
        &directory.people_dn(),
        "sub",
        "(objectClass=deadboltHostRecord)",
        &["1.1"],
    );
    let expected = names.iter().filter(|(_, n)| *n > 0).count();
    assert_eq!(records.len(), expected, "{records:?}");

    directory.unlock_by_hand(&dns[0]);
    host.wait_locked(LOCKED, false, "the reactivation of x*");
    wait_until(
        "x*'s pushed failures deleted with the reactivation",
        PROPAGATION,
        || (pushed(&dns[0]) == 0).then_some(()),
    );
    for ((name, n), dn) in names.iter().zip(&dns).skip(1) {
        assert_eq!(pushed(dn), *n, "{name}: the reactivation of x* touched it");
    }
}
