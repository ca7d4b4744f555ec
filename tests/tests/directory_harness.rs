//! The throwaway slapd of tests/src/slapd.rs does what other tests rely on:
//! TLS with its own CA (and not with another), a stop and restart that keep
//! the port and the data, and two providers replicating each other, plain
//! and delta, in both directions, ppolicy's lock included.

use deadbolt_tests::slapd::{
    dn_escape, filter_escape, provider_pair, wait_until, Directory, DirectoryOptions, Replication,
};
use std::process::Command;
use std::time::Duration;

const REPLICATION_DEADLINE: Duration = Duration::from_secs(10);

/// `ldapwhoami` as the rootdn, trusting only `ca`; `starttls` adds `-ZZ`.
fn whoami_with_ca(dir: &Directory, uri: &str, ca: &std::path::Path, starttls: bool) -> bool {
    let mut cmd = Command::new("ldapwhoami");
    // Not LDAPNOINIT, which would ignore the LDAPTLS_* variables too: the
    // machine's ldap.conf and ldaprc are kept out by pointing elsewhere.
    cmd.env("LDAPCONF", "/dev/null")
        .env("LDAPRC", "deadbolt-no-ldaprc")
        .env("LDAPTLS_CACERT", ca)
        .env("LDAPTLS_REQCERT", "demand")
        .args(["-x", "-H", uri, "-D", dir.admin_dn(), "-y"])
        .arg(dir.admin_password_file());
    if starttls {
        cmd.arg("-ZZ");
    }
    let out = cmd.output().expect("run ldapwhoami");
    // Shown with --nocapture: why a handshake failed.
    eprintln!("{uri}: {}", String::from_utf8_lossy(&out.stderr).trim());
    out.status.success()
}

#[test]
fn tls_is_served_with_the_test_ca_and_refused_with_another() {
    let dir = Directory::start_with(DirectoryOptions {
        tls: true,
        ..DirectoryOptions::default()
    });
    let ldaps = dir.ldaps_uri().expect("an ldaps URI");
    let ca = dir.ca_file().expect("a CA file");
    assert!(
        whoami_with_ca(&dir, &ldaps, &ca, false),
        "ldaps with the test CA"
    );
    assert!(
        whoami_with_ca(&dir, &dir.uri(), &ca, true),
        "StartTLS with the test CA"
    );
    let other = dir.other_ca_file();
    assert!(
        !whoami_with_ca(&dir, &ldaps, &other, false),
        "ldaps trusting another CA"
    );
    assert!(
        !whoami_with_ca(&dir, &dir.uri(), &other, true),
        "StartTLS trusting another CA"
    );
    assert!(Directory::start().ldaps_uri().is_none());
}

#[test]
fn a_restart_keeps_the_port_and_the_data() {
    let mut dir = Directory::start();
    let uid = "o'neil, jr.+#<x>";
    let dn = dir.add_employee(uid, "pw", None);
    assert_eq!(dn, format!("uid={},{}", dn_escape(uid), dir.people_dn()));
    let (port, pid) = (dir.port(), dir.pid());
    dir.stop();
    assert!(!dir.is_running());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens once stopped"
    );
    dir.restart();
    assert_eq!(dir.port(), port);
    assert_ne!(dir.pid(), pid);
    let found = dir.search(
        &dir.people_dn(),
        "one",
        &format!("(uid={})", filter_escape(uid)),
        &["uid"],
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].first("uid"), Some(uid));
}

fn replicates_both_ways(mode: Replication) {
    let (a, b) = provider_pair(mode);
    let alice = a.add_employee("alice", "pw-alice", None);
    let host_a = a.add_host("web1");
    wait_until(
        "alice and web1 on the second provider",
        REPLICATION_DEADLINE,
        || {
            (b.entry(&alice, &["1.1"]).is_some() && b.entry(&host_a.dn, &["1.1"]).is_some())
                .then_some(())
        },
    );
    // Each host writes its own record through a different provider.
    let host_b = b.add_host("web2");
    for (dir, host) in [(&a, &host_a), (&b, &host_b)] {
        wait_until(
            "the host identity on its provider",
            REPLICATION_DEADLINE,
            || dir.entry(&host.dn, &["1.1"]).map(|_| ()),
        );
        let record = dir.host_record_dn(&alice, &host.name);
        dir.add(
            &host.dn,
            &host.password,
            &format!(
                "dn: {record}\nobjectClass: deadboltHostRecord\ndeadboltHost: {}\n\
                 deadboltFailure: 20261202120000.000000Z 1 sshd {}\n",
                host.name, host.name
            ),
        )
        .unwrap_or_else(|e| panic!("{} writes its record: {e}", host.name));
    }
    for dir in [&a, &b] {
        wait_until(
            "both records on both providers",
            REPLICATION_DEADLINE,
            || {
                let records = dir.search(&alice, "one", "(objectClass=deadboltHostRecord)", &["*"]);
                (records.len() == 2).then_some(())
            },
        );
    }
}

#[test]
fn plain_providers_replicate_both_ways() {
    replicates_both_ways(Replication::Plain);
}

#[test]
fn delta_providers_replicate_both_ways() {
    replicates_both_ways(Replication::Delta);
}

#[test]
fn a_provider_back_from_an_outage_catches_up() {
    let (a, mut b) = provider_pair(Replication::Delta);
    b.stop();
    let alice = a.add_employee("alice", "pw-alice", None);
    b.restart();
    wait_until(
        "alice on the restarted provider",
        REPLICATION_DEADLINE,
        || b.entry(&alice, &["1.1"]).map(|_| ()),
    );
}

/// ppolicy's own writes after failed binds (ITS#8927 reports trouble
/// between them and delta-syncrepl): three bad binds on the first provider
/// lock the account on the second, and a deletion of the lock on the second
/// unlocks it on the first.
fn a_ppolicy_lock_and_its_removal_replicate(mode: Replication) {
    let (a, b) = provider_pair(mode);
    let alice = a.add_employee("alice", "right-password", None);
    wait_until("alice on the second provider", REPLICATION_DEADLINE, || {
        b.entry(&alice, &["1.1"]).map(|_| ())
    });
    for _ in 0..3 {
        assert_eq!(a.try_bind(&alice, "wrong").code, 49);
    }
    let locked = |dir: &Directory| {
        dir.entry(&alice, &["pwdAccountLockedTime"])
            .is_some_and(|e| e.first("pwdAccountLockedTime").is_some())
    };
    assert!(locked(&a), "ppolicy locked alice on the first provider");
    wait_until(
        "the lock on the second provider",
        REPLICATION_DEADLINE,
        || locked(&b).then_some(()),
    );
    assert_eq!(b.try_bind(&alice, "right-password").code, 49);
    b.modify(
        b.admin_dn(),
        b.admin_password(),
        &format!("dn: {alice}\nchangetype: modify\ndelete: pwdAccountLockedTime\n"),
    )
    .expect("unlock on the second provider");
    wait_until(
        "the unlock on the first provider",
        REPLICATION_DEADLINE,
        || (!locked(&a)).then_some(()),
    );
    assert!(a.try_bind(&alice, "right-password").is_ok());
}

#[test]
fn a_ppolicy_lock_and_its_removal_replicate_plain() {
    a_ppolicy_lock_and_its_removal_replicate(Replication::Plain);
}

#[test]
fn a_ppolicy_lock_and_its_removal_replicate_delta() {
    a_ppolicy_lock_and_its_removal_replicate(Replication::Delta);
}

/// Two hosts lock one employee at the same moment through the two
/// providers, each adding its own `pwdAccountLockedTime` (single-valued),
/// as two daemons that reach `deny` together do. slapd 2.5.13 does not
/// always settle on one value: now and then each provider ends up with the
/// other's (each applies the other's add over its own). Either value means
/// locked, and a reactivation deletes the attribute whole, so what must
/// hold is: both providers locked, a later unlock clears both, and
/// replication carries later changes both ways.
#[test]
fn two_locks_at_once_through_two_delta_providers_leave_replication_working() {
    let (a, b) = provider_pair(Replication::Delta);
    let alice = a.add_employee("alice", "right-password", None);
    let bob = a.add_employee("bob", "right-password", None);
    wait_until("bob on the second provider", REPLICATION_DEADLINE, || {
        b.entry(&bob, &["1.1"]).map(|_| ())
    });
    let written = ["20261203120000Z", "20261203120001Z"];
    let change = |dir: &Directory, ldif: &str| {
        dir.try_modify(
            dir.admin_dn(),
            dir.admin_password(),
            &format!("dn: {alice}\nchangetype: modify\n{ldif}"),
        )
    };
    let (on_a, on_b) = std::thread::scope(|s| {
        let one = s.spawn(|| {
            change(
                &a,
                &format!(
                    "add: pwdAccountLockedTime\npwdAccountLockedTime: {}\n",
                    written[0]
                ),
            )
        });
        let two = s.spawn(|| {
            change(
                &b,
                &format!(
                    "add: pwdAccountLockedTime\npwdAccountLockedTime: {}\n",
                    written[1]
                ),
            )
        });
        (
            one.join().expect("lock on a"),
            two.join().expect("lock on b"),
        )
    });
    // Each provider takes its own, unless the other's lock reached it first.
    for done in [&on_a, &on_b] {
        assert!(matches!(done.code, 0 | 19 | 20), "{done:?}");
    }
    let lock_of = |dir: &Directory| {
        dir.entry(&alice, &["pwdAccountLockedTime"])
            .map(|e| e.values("pwdAccountLockedTime").to_vec())
            .unwrap_or_default()
    };
    // Both hold one lock of the two written, and have seen the other's.
    let settled = |dir: &Directory| {
        let held = lock_of(dir);
        held.len() == 1 && written.contains(&held[0].as_str())
    };
    for (from, to, value) in [(&a, &b, "from-a"), (&b, &a, "from-b")] {
        from.modify(
            from.admin_dn(),
            from.admin_password(),
            &format!("dn: {bob}\nchangetype: modify\nadd: description\ndescription: {value}\n"),
        )
        .expect("a later change");
        wait_until(
            "a later change on the other provider",
            REPLICATION_DEADLINE,
            || {
                to.entry(&bob, &["description"])
                    .filter(|e| e.has("description", value))
                    .map(|_| ())
            },
        );
    }
    assert!(
        settled(&a) && settled(&b),
        "a {:?}, b {:?}",
        lock_of(&a),
        lock_of(&b)
    );
    // A reactivation on one provider deletes the lock whole: gone on both.
    let unlocked = change(&b, "delete: pwdAccountLockedTime\n");
    assert_eq!(unlocked.code, 0, "{unlocked:?}");
    wait_until(
        "the lock gone from both providers",
        REPLICATION_DEADLINE,
        || (lock_of(&a).is_empty() && lock_of(&b).is_empty()).then_some(()),
    );
}
