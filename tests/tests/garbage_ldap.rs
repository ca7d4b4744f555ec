//! A directory server that sends garbage: the real deadbolt-syncd against
//! a small fake LDAP server (tests/src/fake_ldap.rs) that answers its bind
//! and its sync search with, in turn, random bytes, a truncated message, a
//! bind result without a result code, malformed sync controls, an absurd
//! length prefix, silence, and messages of the wrong type. The daemon must
//! say so, stay up, change nothing locally, reconnect, and, once the fake
//! passes bytes through to a real slapd, sync.

use deadbolt_tests::fake_ldap::{FakeLdap, Garbage};
use deadbolt_tests::fleet::{FleetHost, Syncd, PROPAGATION, UNTIL_REACTIVATED};
use deadbolt_tests::slapd::{wait_until, Directory, Host};
use std::net::SocketAddr;
use std::time::Duration;

const PW: &str = "secret";

/// Each case is served to two connections in a row, so the second proves
/// the daemon came back after the first. With its backoff (1 s, 2 s, 4 s
/// after failed binds in a row) two connections take under 10 s; the
/// deadline leaves room for a loaded machine.
const TWO_CONNECTIONS: Duration = Duration::from_secs(60);

fn alive(syncd: &mut Syncd, after: &str) {
    if let Some(status) = syncd.exited() {
        panic!(
            "deadbolt-syncd died after {after} ({status}):\n{}",
            syncd.log_text()
        );
    }
}

/// host-a, whose only server is `fake`, with a timeout of 1 s: the
/// silent cases end quickly.
fn host_through(fake: &FakeLdap, directory: &Directory, identity: &Host) -> FleetHost {
    FleetHost::with_directory_keys(
        &[fake.uri()],
        &directory.people_dn(),
        "host-a",
        identity,
        &[("alice", PW)],
        UNTIL_REACTIVATED,
        "timeout = \"1s\"\n",
    )
}

#[test]
fn a_directory_that_sends_garbage_is_survived_and_a_real_one_then_syncs() {
    let directory = Directory::start();
    directory.add_employee("alice", "ldap-pw", None);
    let identity = directory.add_host("host-a");
    let fake = FakeLdap::start(Garbage::RandomBytes);
    let host = host_through(&fake, &directory, &identity);
    // One failure recorded before any of it: it must stay exactly one.
    host.env.fail_logins("alice", 1);
    let mut syncd = host.start_syncd();
    let pid = syncd.pid();

    let cases = [
        (Garbage::RandomBytes, "cannot connect"),
        (Garbage::BadSyncDone, "the sync search ended"),
        (Garbage::TruncatedBind, "cannot connect"),
        (Garbage::BadSyncState, "a malformed sync message arrived"),
        (
            Garbage::BindWithoutResult,
            "sent an answer that does not parse",
        ),
        (
            Garbage::ForeignIntermediate,
            "a malformed sync message arrived",
        ),
        (Garbage::AbsurdLength, "no complete answer within 1000 ms"),
        (Garbage::WrongResponseToSearch, "the sync stream failed"),
        (Garbage::Silent, "no complete answer within 1000 ms"),
    ];
    for (case, said) in cases {
        fake.set(case);
        let log_before = syncd.log_text().len();
        wait_until(
            &format!("{case:?}: two connections served"),
            TWO_CONNECTIONS,
            || {
                alive(&mut syncd, &format!("{case:?}"));
                (fake.served(case) >= 2).then_some(())
            },
        );
        alive(&mut syncd, &format!("{case:?}"));
        assert_eq!(syncd.pid(), pid, "the same process throughout");
        let said_now = &syncd.log_text()[log_before..];
        assert!(
            said_now.contains(said) && said_now.contains(&fake.uri()),
            "{case:?}: the log does not say {said:?} of {}:\n{said_now}",
            fake.uri()
        );
        // Nothing changed locally: the one failure, no lock.
        assert_eq!(host.env.failures("alice"), 1, "{case:?}");
        assert!(!host.locked("alice"), "{case:?}");
        let status = syncd.status().expect("the status file");
        assert_eq!(status["refreshed"], false, "{case:?}: {status}");
    }

    // Now the bytes go to the real slapd: the session starts, the local
    // failure lands in the directory, and a lock set there reaches the host.
    let real: SocketAddr = format!("127.0.0.1:{}", directory.port())
        .parse()
        .expect("slapd's address");
    fake.set(Garbage::Proxy(real));
    syncd.wait_ready_within(TWO_CONNECTIONS);
    alive(&mut syncd, "the switch to a real slapd");
    assert_eq!(syncd.pid(), pid);
    let record = directory.host_record_dn(&directory.employee_dn("alice"), "host-a");
    wait_until(
        "the local failure reaches the directory",
        PROPAGATION,
        || {
            let entry = directory.entry(&record, &["deadboltFailure"])?;
            (entry.values("deadboltFailure").len() == 1).then_some(())
        },
    );
    directory.lock_for_good(&directory.employee_dn("alice"));
    host.wait_locked("alice", true, "a lock set in the real directory");
    assert_eq!(host.env.failures("alice"), 1, "still one failure, not two");

    // The host's bind password went to the fake server every time; it
    // never went to the log.
    assert!(
        !syncd.log_text().contains(&identity.password),
        "the bind password is in the daemon's log"
    );
    assert_eq!(
        syncd.terminate().code(),
        Some(0),
        "SIGTERM stops it cleanly"
    );
}

/// A server that binds, streams and answers searches but stops answering
/// writes, within a working session: the daemon gives the write up after
/// `[directory] timeout`, ends the session, says so, and pushes the failure
/// once the server answers again. (Before, the push waited for ever and no
/// later change reached the directory.)
#[test]
fn a_server_that_stops_answering_writes_is_given_up_on_and_the_push_resumes() {
    let directory = Directory::start();
    directory.add_employee("alice", "ldap-pw", None);
    let identity = directory.add_host("host-a");
    let real: SocketAddr = format!("127.0.0.1:{}", directory.port())
        .parse()
        .expect("slapd's address");
    let fake = FakeLdap::start(Garbage::ProxyDroppingWrites(real));
    let host = host_through(&fake, &directory, &identity);
    let mut syncd = host.start_syncd();
    syncd.wait_ready();
    host.env.fail_logins("alice", 1);
    wait_until("the stalled write given up on", TWO_CONNECTIONS, || {
        alive(&mut syncd, "a stalled write");
        syncd
            .log_text()
            .contains("no answer to an operation within 1000 ms (timeout)")
            .then_some(())
    });
    let record = directory.host_record_dn(&directory.employee_dn("alice"), "host-a");
    assert!(
        directory.entry(&record, &["deadboltFailure"]).is_none(),
        "a write reached slapd through a proxy that drops writes"
    );
    fake.set(Garbage::Proxy(real));
    wait_until(
        "the failure pushed once the server answers writes",
        TWO_CONNECTIONS,
        || {
            alive(&mut syncd, "the server answering again");
            let entry = directory.entry(&record, &["deadboltFailure"])?;
            (entry.values("deadboltFailure").len() == 1).then_some(())
        },
    );
    assert_eq!(host.env.failures("alice"), 1, "one failure, not two");
}
