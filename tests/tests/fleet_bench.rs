//! Benchmarks of the fleet (`make bench` runs them; they are ignored by
//! `make test`). They print figures and assert nothing about time: results
//! go in docs/performance.md with the command that produced them.
//!
//! They drive the workspace's debug build, as the other tests do:
//!
//!   cargo test -p deadbolt-tests --test fleet_bench -- --ignored --nocapture --test-threads 1

use deadbolt_core::{StateStore, UserName};
use deadbolt_tests::fleet::{
    locked_in, proc_status_kib, FleetHost, Syncd, PROPAGATION, UNTIL_REACTIVATED,
};
use deadbolt_tests::slapd::{wait_until, Directory};
use std::time::{Duration, Instant};

const PW: &str = "secret";

fn wait_for(what: &str, mut condition: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < PROPAGATION, "timed out: {what}");
        std::thread::sleep(Duration::from_micros(200));
    }
    start.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name}: n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        samples.len(),
        percentile(&samples, 0.50).as_secs_f64() * 1000.0,
        percentile(&samples, 0.99).as_secs_f64() * 1000.0,
        samples.last().unwrap().as_secs_f64() * 1000.0,
    );
}

#[test]
#[ignore = "benchmark: make bench"]
fn lock_and_reactivation_propagation() {
    let trials: usize = std::env::var("TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(100);
    let directory = Directory::start();
    let names: Vec<String> = (0..trials).map(|i| format!("u{i:04}")).collect();
    for name in &names {
        directory.add_employee(name, "x", None);
    }
    let users: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), PW)).collect();
    let a = FleetHost::new(&directory, "host-a", &users, UNTIL_REACTIVATED);
    let b = FleetHost::new(&directory, "host-b", &users, UNTIL_REACTIVATED);
    let mut sa = a.start_syncd();
    let mut sb = b.start_syncd();
    sa.wait_ready();
    sb.wait_ready();
    let store_a = StateStore::open_existing(a.env.state_dir()).unwrap();
    let store_b = StateStore::open_existing(b.env.state_dir()).unwrap();
    let mut lock_samples = Vec::new();
    let mut unlock_samples = Vec::new();
    let admin = directory.admin_dn().to_owned();
    for name in &names {
        let user = UserName::parse(name).unwrap();
        a.env.fail_logins(name, 2);
        let out = a.env.authenticate(name, "wrong");
        assert!(!out.succeeded());
        lock_samples.push(wait_for("the lock reaches host-b", || {
            locked_in(&store_b, &user)
        }));
        // The mirrored pwdAccountLockedTime must be there before the
        // administrator deletes it.
        wait_until("pwdAccountLockedTime", PROPAGATION, || {
            directory
                .entry(&directory.employee_dn(name), &["pwdAccountLockedTime"])
                .and_then(|e| e.first("pwdAccountLockedTime").map(str::to_owned))
        });
        let ldif = format!(
            "dn: {}\nchangetype: modify\ndelete: pwdAccountLockedTime\n",
            directory.employee_dn(name)
        );
        directory
            .modify(&admin, directory.admin_password(), &ldif)
            .unwrap();
        unlock_samples.push(wait_for("the reactivation reaches both hosts", || {
            !locked_in(&store_a, &user) && !locked_in(&store_b, &user)
        }));
    }
    report("lock host-a -> host-b", lock_samples);
    report("ldapmodify reactivation -> both hosts", unlock_samples);
}

#[test]
#[ignore = "benchmark: make bench"]
fn initial_load() {
    for size in [10_000usize, 100_000] {
        let directory = Directory::start();
        let ldif: String = (0..size)
            .map(|i| {
                format!(
                    "dn: uid=e{i:06},{people}\nobjectClass: inetOrgPerson\nuid: e{i:06}\ncn: e{i:06}\nsn: e\n\n",
                    people = directory.people_dn()
                )
            })
            .collect();
        directory.bulk_modify(&ldif, true);
        let host = FleetHost::new(&directory, "host-a", &[], UNTIL_REACTIVATED);
        let start = Instant::now();
        let mut syncd = host.start_syncd();
        syncd.wait_ready_within(Duration::from_secs(600));
        let took = start.elapsed();
        println!(
            "initial load of {size} employees: {:.2} s, peak RSS {} MiB",
            took.as_secs_f64(),
            proc_status_kib(syncd.pid(), "VmHWM").unwrap_or(0) / 1024
        );
    }
}

#[test]
#[ignore = "benchmark: make bench"]
fn fifty_hosts_one_reactivation() {
    let directory = Directory::start();
    directory.add_employee("zed", "x", None);
    let hosts: Vec<FleetHost> = (0..50)
        .map(|i| {
            FleetHost::new(
                &directory,
                &format!("h{i:02}"),
                &[("zed", PW)],
                UNTIL_REACTIVATED,
            )
        })
        .collect();
    let mut daemons: Vec<Syncd> = hosts.iter().map(FleetHost::start_syncd).collect();
    for d in &mut daemons {
        d.wait_ready();
    }
    let stores: Vec<StateStore> = hosts
        .iter()
        .map(|h| StateStore::open_existing(h.env.state_dir()).unwrap())
        .collect();
    let user = UserName::parse("zed").unwrap();
    for round in 0..5 {
        hosts[0].env.fail_logins("zed", 3);
        let reach = wait_for("the lock reaches all 50", || {
            stores.iter().all(|s| locked_in(s, &user))
        });
        wait_until("pwdAccountLockedTime", PROPAGATION, || {
            directory
                .entry(&directory.employee_dn("zed"), &["pwdAccountLockedTime"])
                .and_then(|e| e.first("pwdAccountLockedTime").map(str::to_owned))
        });
        let ldif = format!(
            "dn: {}\nchangetype: modify\ndelete: pwdAccountLockedTime\n",
            directory.employee_dn("zed")
        );
        directory
            .modify(directory.admin_dn(), directory.admin_password(), &ldif)
            .unwrap();
        let all = wait_for("the reactivation reaches all 50", || {
            stores.iter().all(|s| !locked_in(s, &user))
        });
        println!(
            "50 hosts, round {round}: lock to all {:.1} ms, reactivation to all {:.1} ms",
            reach.as_secs_f64() * 1000.0,
            all.as_secs_f64() * 1000.0
        );
    }
}
