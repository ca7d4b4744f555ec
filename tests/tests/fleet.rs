//! The fleet through a real slapd: two hosts (two state directories, two
//! real deadbolt-syncd), failures that add up across them, reactivations
//! by a manager with his own identity and by ldapmodify, ppolicy both
//! ways, outages, restarts, failover, clock skew and hostile names.

use deadbolt_tests::fleet::{secret_file, FleetHost, PROPAGATION, UNTIL_REACTIVATED};
use deadbolt_tests::slapd::{provider_pair, wait_until, Directory, Replication};
use std::time::Duration;

const PW: &str = "secret";

struct Fleet {
    directory: Directory,
    manager_dn: String,
    manager_password_file: std::path::PathBuf,
    a: FleetHost,
    b: FleetHost,
}

fn fleet_of(users: &[&str]) -> Fleet {
    let directory = Directory::start();
    let manager_dn = directory.add_employee("boss", "boss-pw", None);
    for user in users {
        directory.add_employee(user, "ldap-pw", Some(&manager_dn));
    }
    let people: Vec<(&str, &str)> = users.iter().map(|u| (*u, PW)).collect();
    let a = FleetHost::new(&directory, "host-a", &people, UNTIL_REACTIVATED);
    let b = FleetHost::new(&directory, "host-b", &people, UNTIL_REACTIVATED);
    let manager_password_file = secret_file(a.env.root(), "boss.pw", "boss-pw");
    Fleet {
        directory,
        manager_dn,
        manager_password_file,
        a,
        b,
    }
}

fn pw_locked_time(directory: &Directory, user: &str) -> Option<String> {
    directory
        .search(
            &directory.people_dn(),
            "sub",
            &format!("(uid={user})"),
            &["pwdAccountLockedTime"],
        )
        .into_iter()
        .next()
        .and_then(|e| {
            e.attrs
                .get("pwdaccountlockedtime")
                .and_then(|v| v.first().cloned())
        })
}

#[test]
fn failures_on_two_hosts_add_up_to_a_lock_on_both_and_one_reactivation_unlocks_both() {
    let f = fleet_of(&["alice"]);
    let mut sa = f.a.start_syncd();
    let mut sb = f.b.start_syncd();
    sa.wait_ready();
    sb.wait_ready();

    f.a.env.fail_logins("alice", 2);
    assert!(!f.a.locked("alice"), "two failures do not lock");
    // B learns A's two failures, then its own third completes the lock.
    wait_until("host-b counts host-a's two failures", PROPAGATION, || {
        (f.b.env.failures("alice") == 2).then_some(())
    });
    f.b.env.fail_logins("alice", 1);
    assert!(f.b.locked("alice"));
    f.a.wait_locked("alice", true, "the lock reached on host-b");
    let out = f.a.env.authenticate("alice", PW);
    assert!(
        !out.succeeded(),
        "the right password is refused on host-a: {out}"
    );
    // The directory carries it too, so LDAP binds fail as well.
    wait_until("pwdAccountLockedTime set", PROPAGATION, || {
        pw_locked_time(&f.directory, "alice")
    });
    let bind = f
        .directory
        .try_bind(&f.directory.employee_dn("alice"), "ldap-pw");
    assert!(
        !bind.is_ok(),
        "an LDAP bind with her right password went through while locked"
    );

    // Her manager reactivates her from host-a with his own identity.
    let out = f.a.env.deadboltctl(&[
        "reactivate",
        "alice",
        "--as",
        &f.manager_dn,
        "--password-file",
        &f.manager_password_file.display().to_string(),
    ]);
    assert!(out.succeeded(), "{out}");
    assert!(!out.stdout.contains("boss-pw") && !out.stderr.contains("boss-pw"));
    f.a.wait_locked("alice", false, "the manager's reactivation");
    f.b.wait_locked("alice", false, "the manager's reactivation");
    assert!(f.b.env.authenticate("alice", PW).succeeded());
    assert!(f.a.env.authenticate("alice", PW).succeeded());
    assert_eq!(pw_locked_time(&f.directory, "alice"), None);

    // Locked again, then a directory administrator deletes the lock the
    // way he does today: both hosts unlock.
    f.a.env.fail_logins("alice", 3);
    f.b.wait_locked("alice", true, "the second lock");
    wait_until("pwdAccountLockedTime set again", PROPAGATION, || {
        pw_locked_time(&f.directory, "alice")
    });
    let dn = f.directory.people_dn();
    f.directory.unlock_by_hand(&format!("uid=alice,{dn}"));
    f.a.wait_locked(
        "alice",
        false,
        "ldapmodify's deletion of pwdAccountLockedTime",
    );
    f.b.wait_locked(
        "alice",
        false,
        "ldapmodify's deletion of pwdAccountLockedTime",
    );
    assert_eq!(sa.terminate().code(), Some(0), "SIGTERM stops it cleanly");
    assert_eq!(sb.terminate().code(), Some(0));
}

#[test]
fn a_lock_ppolicy_sets_or_one_set_by_hand_refuses_on_every_host() {
    let f = fleet_of(&["bob", "carol"]);
    let mut sa = f.a.start_syncd();
    let mut sb = f.b.start_syncd();
    sa.wait_ready();
    sb.wait_ready();
    let dn = f.directory.people_dn();
    // Three failed LDAP binds: ppolicy (pwdMaxFailure 3) locks bob itself.
    for _ in 0..3 {
        let bind = f
            .directory
            .try_bind(&f.directory.employee_dn("bob"), "not-his-password");
        assert!(!bind.is_ok(), "a wrong password bound");
    }
    wait_until("ppolicy locks bob", PROPAGATION, || {
        pw_locked_time(&f.directory, "bob")
    });
    f.a.wait_locked("bob", true, "ppolicy's own lock");
    f.b.wait_locked("bob", true, "ppolicy's own lock");
    assert!(!f.a.env.authenticate("bob", PW).succeeded());
    // Set by hand, "locked for good".
    f.directory
        .modify(
            f.directory.admin_dn(),
            f.directory.admin_password(),
            &format!("dn: uid=carol,{dn}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"),
        )
        .expect("lock carol by hand");
    f.a.wait_locked("carol", true, "a lock set by hand");
    f.b.wait_locked("carol", true, "a lock set by hand");
    let status = f.b.env.status_json("carol");
    assert_eq!(status["locked_in_directory"], true, "{status}");
    assert_eq!(status["failures"], 0, "{status}");
    let text = f.b.env.deadboltctl(&["status", "carol"]);
    assert!(text.stdout.contains("LOCKED in the directory"), "{text}");
    // Deleting it there ends it everywhere.
    f.directory.unlock_by_hand(&format!("uid=carol,{dn}"));
    f.b.wait_locked("carol", false, "the deletion");
    f.a.wait_locked("carol", false, "the deletion");
}

#[test]
fn an_outage_loses_nothing_and_a_killed_daemon_resumes_from_its_cookie() {
    let mut f = fleet_of(&["dave", "erin"]);
    let mut sa = f.a.start_syncd();
    let mut sb = f.b.start_syncd();
    sa.wait_ready();
    sb.wait_ready();
    f.directory.stop();
    f.a.env.fail_logins("dave", 2);
    f.b.env.fail_logins("dave", 1);
    // Local enforcement goes on while the directory is away.
    assert!(f.a.env.failures("dave") == 2 && f.b.env.failures("dave") == 1);
    // sync-status says so, with what waits to be pushed.
    wait_until("sync-status shows the outage", PROPAGATION, || {
        let out = f.a.env.deadboltctl(&["sync-status", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
        let s = &v["status"];
        (v["running"] == true
            && s["connected"] == false
            && s["pending_records"] == 2
            && s["oldest_pending"].is_string()
            && s["oldest_pending_age_s"].is_u64())
        .then_some(())
    });
    let text = f.a.env.deadboltctl(&["sync-status"]);
    assert!(
        text.stdout.contains("DISCONNECTED") && text.stdout.contains("2 records for 1 users"),
        "{text}"
    );
    f.directory.restart();
    f.a.wait_locked("dave", true, "failures queued during the outage");
    f.b.wait_locked("dave", true, "failures queued during the outage");
    let records = |host: &str| {
        f.directory
            .search(
                &f.directory.people_dn(),
                "sub",
                &format!("(deadboltHost={host})"),
                &["deadboltFailure"],
            )
            .into_iter()
            .filter(|e| e.dn.contains("uid=dave"))
            .flat_map(|e| e.attrs.get("deadboltfailure").cloned().unwrap_or_default())
            .count()
    };
    wait_until("every record landed", PROPAGATION, || {
        (records("host-a") == 2 && records("host-b") == 1).then_some(())
    });

    // SIGKILL, failures meanwhile, restart: it resumes and loses nothing.
    sb.kill();
    let cookie = f.b.sync_dir().join("cookie");
    assert!(cookie.exists(), "the cookie was saved");
    f.a.env.fail_logins("erin", 2);
    f.b.env.fail_logins("erin", 1);
    sb.restart();
    sb.wait_ready();
    f.a.wait_locked("erin", true, "after host-b's daemon restarted");
    f.b.wait_locked("erin", true, "after host-b's daemon restarted");
    wait_until("exactly once each", PROPAGATION, || {
        (records("host-a") == 2 && records("host-b") == 1).then_some(())
    });
    let _ = &mut sa;
}

#[test]
fn a_host_whose_first_server_is_down_uses_the_second() {
    let directory = Directory::start();
    let manager = directory.add_employee("boss", "boss-pw", None);
    directory.add_employee("frank", "x", Some(&manager));
    let dead = "ldap://127.0.0.1:9".to_owned();
    let a = FleetHost::on(
        &directory,
        &[dead.clone(), directory.uri()],
        "host-a",
        &[("frank", PW)],
        UNTIL_REACTIVATED,
    );
    let b = FleetHost::new(&directory, "host-b", &[("frank", PW)], UNTIL_REACTIVATED);
    let mut sa = a.start_syncd();
    let mut sb = b.start_syncd();
    sa.wait_ready();
    sb.wait_ready();
    assert_eq!(sa.status().unwrap()["server"], directory.uri());
    a.env.fail_logins("frank", 3);
    b.wait_locked("frank", true, "a lock from the host on its second server");
}

#[test]
fn two_providers_add_up_concurrent_failures_exactly_with_plain_and_delta_syncrepl() {
    for mode in [Replication::Plain, Replication::Delta] {
        let (one, two) = provider_pair(mode);
        let manager = one.add_employee("boss", "boss-pw", None);
        one.add_employee("gina", "x", Some(&manager));
        wait_until("gina replicated", PROPAGATION, || {
            (!two
                .search(&two.people_dn(), "sub", "(uid=gina)", &["uid"])
                .is_empty())
            .then_some(())
        });
        let extra: &[(&str, &str)] = &[("deny", "20"), ("unlock_after", "\"never\"")];
        let a = FleetHost::new(&one, "host-a", &[("gina", PW)], extra);
        // host-b's identity is made on the first provider and replicated.
        let b_host = one.add_host("host-b");
        let b = FleetHost::with_identity(
            &[two.uri()],
            &two.people_dn(),
            "host-b",
            &b_host,
            &[("gina", PW)],
            extra,
        );
        wait_until("host-b's identity replicated", PROPAGATION, || {
            (!two
                .search(&b_host.dn, "base", "(objectClass=*)", &["cn"])
                .is_empty())
            .then_some(())
        });
        let mut sa = a.start_syncd();
        let mut sb = b.start_syncd();
        sa.wait_ready();
        sb.wait_ready();
        // Five failures on each host at the same moment.
        std::thread::scope(|s| {
            s.spawn(|| a.env.fail_logins("gina", 5));
            s.spawn(|| b.env.fail_logins("gina", 5));
        });
        for host in [&a, &b] {
            wait_until(
                &format!("{mode:?}: 10 failures on {}", host.name),
                PROPAGATION,
                || (host.env.failures("gina") == 10).then_some(()),
            );
        }
        for provider in [&one, &two] {
            wait_until(
                &format!("{mode:?}: 10 failure values on each provider"),
                PROPAGATION,
                || {
                    let n: usize = provider
                        .search(
                            &provider.people_dn(),
                            "sub",
                            "(objectClass=deadboltHostRecord)",
                            &["deadboltFailure"],
                        )
                        .iter()
                        .filter(|e| e.dn.contains("uid=gina"))
                        .map(|e| e.attrs.get("deadboltfailure").map_or(0, Vec::len))
                        .sum();
                    (n == 10).then_some(())
                },
            );
        }
    }
}

#[test]
fn a_host_whose_clock_runs_an_hour_fast_cannot_lock_or_unlock_anyone_elsewhere() {
    let f = fleet_of(&["hank"]);
    let mut sb = f.b.start_syncd();
    sb.wait_ready();
    // A fast host's records, written as its daemon would write them.
    let dn = f.directory.people_dn();
    let future = deadbolt_ldap_sync::encoding::format_time(
        deadbolt_core::Timestamp::now().saturating_add(Duration::from_secs(3600)),
    );
    let ldif = format!(
        "dn: deadboltHost=fast,uid=hank,{dn}\nobjectClass: deadboltHostRecord\ndeadboltHost: fast\n\
         deadboltFailure: {future} 1 sshd 203.0.113.9\ndeadboltFailure: {future} 2 sshd 203.0.113.9\n\
         deadboltFailure: {future} 3 sshd 203.0.113.9\n"
    );
    f.directory
        .add(f.directory.admin_dn(), f.directory.admin_password(), &ldif)
        .expect("plant the fast host's record");
    // host-b is locked by its own failures; a reactivation dated an hour
    // ahead must not unlock it.
    f.b.env.fail_logins("hank", 3);
    assert!(f.b.locked("hank"));
    f.directory
        .modify(
            f.directory.admin_dn(),
            f.directory.admin_password(),
            &format!(
                "dn: uid=hank,{dn}\nchangetype: modify\nadd: objectClass\nobjectClass: deadboltAccount\n-\n\
                 add: deadboltReactivated\ndeadboltReactivated: {future}\n"
            ),
        )
        .expect("plant a reactivation from the future");
    wait_until("the skipped reactivation is logged", PROPAGATION, || {
        sb.log_text()
            .lines()
            .any(|l| l.contains("deadboltReactivated") && l.contains("more than max_clock_skew"))
            .then_some(())
    });
    assert!(
        f.b.locked("hank"),
        "a reactivation from a fast clock unlocked"
    );
    let state = f.b.env.load_state("hank").expect("hank's state");
    assert_eq!(
        state.failures.iter().filter(|x| x.host == "fast").count(),
        0,
        "the fast host's failures were merged"
    );
}

#[test]
fn user_names_full_of_filter_and_dn_metacharacters_sync() {
    let names = [
        "o'brien(x)",
        "a*b",
        "c\\d",
        "e=f\"g",
        "i;j<k>",
        "#lm",
        "m,n",
        "p+q",
    ];
    let f = fleet_of(&names);
    let mut sa = f.a.start_syncd();
    let mut sb = f.b.start_syncd();
    sa.wait_ready();
    sb.wait_ready();
    for name in names {
        f.a.env.fail_logins(name, 3);
        f.b.wait_locked(name, true, "a lock of a name with metacharacters");
    }
    // Nobody else was touched.
    assert!(!f.b.locked("boss"));
}

#[test]
fn a_malformed_value_planted_in_the_directory_is_logged_and_skipped() {
    let f = fleet_of(&["ivan"]);
    let mut sb = f.b.start_syncd();
    sb.wait_ready();
    let dn = f.directory.people_dn();
    let ldif = format!(
        "dn: deadboltHost=evil,uid=ivan,{dn}\nobjectClass: deadboltHostRecord\ndeadboltHost: evil\n\
         deadboltFailure: not-a-time 1 sshd x\ndeadboltFailure: 20261202101500.000000Z x y z\n\
         deadboltLogin: soon\n"
    );
    f.directory
        .add(f.directory.admin_dn(), f.directory.admin_password(), &ldif)
        .expect("plant malformed values");
    wait_until("the malformed values are logged", PROPAGATION, || {
        sb.log_text().contains("was skipped").then_some(())
    });
    assert!(!sb.log_text().contains("not-a-time"), "a value was echoed");
    // It keeps running and keeps syncing.
    f.directory.add_employee("judy", "x", None);
    let mut sa = f.a.start_syncd();
    sa.wait_ready();
    f.a.env.fail_logins("ivan", 3);
    f.b.wait_locked("ivan", true, "after the malformed values");
}

#[test]
fn a_hosts_first_write_goes_to_its_own_record_and_leaves_the_employee_entry_as_it_was() {
    let f = fleet_of(&["kim"]);
    let dn = f.directory.employee_dn("kim");
    let before = f.directory.entry(&dn, &["*"]).expect("kim's entry");
    let mut sa = f.a.start_syncd();
    sa.wait_ready();
    f.a.env.fail_logins("kim", 1);
    // The failure sits in host-a's own record, under the entry.
    let record = f.directory.host_record_dn(&dn, "host-a");
    let record = wait_until("host-a's record holds the failure", PROPAGATION, || {
        f.directory
            .entry(&record, &["deadboltFailure"])
            .filter(|r| !r.values("deadboltFailure").is_empty())
    });
    assert_eq!(record.values("deadboltFailure").len(), 1);
    // No class, no value: a write that two hosts could make at once
    // through two providers would break delta-syncrepl's replay.
    let after = f.directory.entry(&dn, &["*"]).expect("kim's entry");
    let sorted = |e: &deadbolt_tests::slapd::Entry| {
        let mut attrs = e.attrs.clone();
        for values in attrs.values_mut() {
            values.sort();
        }
        attrs
    };
    assert_eq!(
        sorted(&after),
        sorted(&before),
        "the employee entry is unchanged"
    );
}

#[test]
fn a_daemon_whose_own_clock_runs_an_hour_fast_stops_pushing_and_says_so() {
    let f = fleet_of(&["lena"]);
    let preload = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    assert!(
        std::path::Path::new(preload).exists(),
        "libfaketime is missing: run scripts/setup-deps"
    );
    let mut fast = deadbolt_tests::fleet::Syncd::start_with_env(
        f.a.env.config_path(),
        &f.a.sync_dir(),
        &f.a.env.root().join("syncd-fast.log"),
        &[
            ("LD_PRELOAD", preload),
            ("FAKETIME", "+1h"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    fast.wait_ready();
    // Its first write comes back stamped an hour behind its clock.
    f.a.env.fail_logins("lena", 1);
    let status = wait_until("the skew is seen", PROPAGATION, || {
        fast.status().filter(|s| s["skew_exceeded"] == true)
    });
    let skew = status["clock_skew_ms"].as_i64().expect("a skew");
    assert!((3_500_000..3_700_000).contains(&skew), "{status}");
    assert!(
        fast.log_text().contains("no longer pushed"),
        "{}",
        fast.log_text()
    );
    // What it records from now on waits, and sync-status says so.
    f.a.env.fail_logins("lena", 2);
    wait_until("two records held back", PROPAGATION, || {
        let out = f.a.env.deadboltctl(&["sync-status", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
        (v["status"]["pending_records"] == 2).then_some(())
    });
    let text = f.a.env.deadboltctl(&["sync-status"]);
    assert!(text.stdout.contains("MORE THAN max_clock_skew"), "{text}");
}

/// A directory administrator reactivates by deleting `pwdAccountLockedTime`
/// by hand, which leaves no reset point in the directory. A host that
/// joins afterwards (or rebuilds its state) must not count the failures
/// from before it and lock the employee again: the hosts that saw the
/// deletion deleted their failures from their records.
#[test]
fn a_host_that_joins_after_a_reactivation_by_hand_does_not_lock_again() {
    let f = fleet_of(&["ivan"]);
    let mut sa = f.a.start_syncd();
    sa.wait_ready();
    f.a.env.fail_logins("ivan", 3);
    assert!(f.a.locked("ivan"));
    wait_until("the lock mirrored", PROPAGATION, || {
        pw_locked_time(&f.directory, "ivan")
    });
    let ivan = f.directory.employee_dn("ivan");
    f.directory.unlock_by_hand(&ivan);
    f.a.wait_locked("ivan", false, "the deletion reaches host-a");
    let record = f.directory.host_record_dn(&ivan, "host-a");
    wait_until(
        "host-a deletes its failures from before the reactivation",
        PROPAGATION,
        || {
            f.directory
                .entry(&record, &["deadboltFailure"])
                .filter(|e| e.values("deadboltfailure").is_empty())
                .map(|_| ())
        },
    );
    let mut sb = f.b.start_syncd();
    sb.wait_ready();
    assert!(!f.b.locked("ivan"), "host-b counted the reset failures");
    assert_eq!(f.b.env.failures("ivan"), 0);
    // Still counted after it: a failure on host-b is one, not four.
    f.b.env.fail_logins("ivan", 1);
    f.a.wait_locked_count("ivan", 1);
}
