//! The sync daemon's memory under load. A host runs `deadbolt-syncd`
//! against a directory of a few thousand employees; in each wave every
//! employee fails three times on the host (locked: `deny = 3`), the daemon
//! pushes the failures and the lock, then a directory administrator
//! reactivates them all in one `ldapmodify`, and the daemon takes the
//! reactivations in and clears what it pushed. Each wave ends in the same
//! state as the one before, so the daemon's resident memory, read from
//! `/proc/<pid>/status` once it has caught up, must not grow from wave to
//! wave: a leak of a few hundred bytes per failure, lock, push or change
//! shows as megabytes here.
//!
//! The failures are recorded through the store, as the module records them
//! (the module's own path is proved by the fleet tests; thousands of
//! pamtester runs would only slow this down).
//!
//!   cargo test -p deadbolt-tests --test daemon_memory -- --nocapture

use deadbolt_core::{Failure, StateStore, Timestamp, UserName, UserState};
use deadbolt_ldap_sync::encoding::format_time;
use deadbolt_tests::fleet::{locked_in, proc_status_kib, FleetHost, Syncd, UNTIL_REACTIVATED};
use deadbolt_tests::slapd::Directory;
use std::time::{Duration, Instant};

/// The defaults; `DEADBOLT_MEMORY_EMPLOYEES` and `DEADBOLT_MEMORY_WAVES`
/// run it larger or longer.
const EMPLOYEES: usize = 2_000;
const WAVES: usize = 5;
/// `deny` of [`UNTIL_REACTIVATED`]: each wave locks every employee.
const DENY: usize = 3;
/// How long one half of a wave may take before the test fails: each moves
/// some 14,000 changes through slapd (about 30 s for the debug build on 2
/// idle cores, four times that beside a build).
const WAVE_DEADLINE: Duration = Duration::from_secs(600);
/// The first waves settle the allocator's pools and the caches. The RSS
/// then behaves as a high-water mark (glibc keeps what it touched): it
/// steps up when a wave's transient peak is higher than before, as when
/// the stream's queue (1,024 messages) fills further while the daemon
/// pushes. Steps of 2.5 MiB have been seen in later waves, for a daemon
/// with no leak. Every later wave may end at most a quarter (and at least
/// 4 MiB) above the highest of the warm-up waves: a leak of 1 KiB for
/// each stream message grows it by some 8.5 MiB a wave here.
const WARM_UP_WAVES: usize = 2;
const GROWTH_ALLOWED_MIN_KIB: u64 = 4 * 1024;
/// Well above what the daemon needs for this directory (some 10 MiB): a
/// ceiling for a daemon that holds far more than the directory's size.
const CEILING_KIB: u64 = 64 * 1024;

/// `VmRSS` and `VmHWM` of `pid`, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let field = |name| proc_status_kib(pid, name).expect("the daemon runs");
    (field("VmRSS"), field("VmHWM"))
}

/// How many entries under the people match `filter`.
fn count(directory: &Directory, filter: &str) -> usize {
    directory
        .search(&directory.people_dn(), "sub", filter, &["1.1"])
        .len()
}

/// Polls `done` until it holds, every 100 ms (each poll reads thousands of
/// entries or files); panics with `what` and the daemon's log at the
/// deadline, or if the daemon exits.
fn wait_for(what: &str, syncd: &mut Syncd, mut done: impl FnMut(&Syncd) -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if done(syncd) {
            return started.elapsed();
        }
        if let Some(status) = syncd.exited() {
            panic!("deadbolt-syncd exited ({status}) waiting for {what}");
        }
        assert!(
            started.elapsed() < WAVE_DEADLINE,
            "timed out after {WAVE_DEADLINE:?} waiting for {what}; status {:?}",
            syncd.status()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn caught_up(syncd: &Syncd) -> bool {
    syncd
        .status()
        .is_some_and(|s| s["connected"] == true && s["pending_records"] == 0)
}

#[test]
fn the_daemons_memory_stays_bounded_through_waves_of_locks_and_reactivations() {
    let setting = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let employees = setting("DEADBOLT_MEMORY_EMPLOYEES", EMPLOYEES);
    let waves = setting("DEADBOLT_MEMORY_WAVES", WAVES);
    let directory = Directory::start();
    let names: Vec<String> = (0..employees).map(|i| format!("e{i:05}")).collect();
    let ldif: String = names
        .iter()
        .map(|n| {
            format!(
                "dn: {}\nobjectClass: inetOrgPerson\nobjectClass: deadboltAccount\n\
                 uid: {n}\ncn: {n}\nsn: {n}\n\n",
                directory.employee_dn(n)
            )
        })
        .collect();
    directory.bulk_modify(&ldif, true);
    let host = FleetHost::new(&directory, "host-a", &[], UNTIL_REACTIVATED);
    let mut syncd = host.start_syncd();
    syncd.wait_ready_within(WAVE_DEADLINE);
    let store = StateStore::open_existing(host.env.state_dir()).expect("the host's store");
    let users: Vec<UserName> = names
        .iter()
        .map(|n| UserName::parse(n).expect("a user name"))
        .collect();
    let (loaded_rss, _) = memory_kib(syncd.pid());
    println!("{employees} employees loaded: VmRSS {loaded_rss} KiB");

    let mut after_wave = Vec::new();
    for wave in 0..waves {
        let started = Instant::now();
        for (i, user) in users.iter().enumerate() {
            for k in 0..DENY {
                let mut failure = UserState::default();
                failure.failures.insert(Failure {
                    time: Timestamp::now(),
                    host: host.name.clone(),
                    source: "192.0.2.7".to_owned(),
                    service: "sshd".to_owned(),
                    pid: u32::try_from((wave * employees + i) * DENY + k).expect("a pid"),
                });
                store
                    .merge_in(user, &failure, Timestamp::now(), false)
                    .expect("record a failure");
            }
        }
        wait_for("every lock in the directory", &mut syncd, |s| {
            caught_up(s) && count(&directory, "(pwdAccountLockedTime=*)") == employees
        });
        let pushed = started.elapsed();
        // All locked here, from the host's own failures.
        assert!(
            users.iter().all(|u| locked_in(&store, u)),
            "wave {wave}: not all locked"
        );

        let at = format_time(Timestamp::now());
        let reactivations: String = names
            .iter()
            .map(|n| {
                format!(
                    "dn: {}\nchangetype: modify\ndelete: pwdAccountLockedTime\n-\n\
                     replace: deadboltReactivated\ndeadboltReactivated: {at}\n\n",
                    directory.employee_dn(n)
                )
            })
            .collect();
        directory.bulk_modify(&reactivations, false);
        wait_for("every reactivation taken in", &mut syncd, |s| {
            caught_up(s)
                && count(&directory, "(deadboltFailure=*)") == 0
                && count(&directory, "(pwdAccountLockedTime=*)") == 0
                && !users.iter().any(|u| locked_in(&store, u))
        });
        let (rss, hwm) = memory_kib(syncd.pid());
        println!(
            "wave {wave}: {} failures and {employees} locks pushed in {:.1} s, \
             {employees} reactivations taken in by {:.1} s; VmRSS {rss} KiB, VmHWM {hwm} KiB",
            employees * DENY,
            pushed.as_secs_f64(),
            started.elapsed().as_secs_f64(),
        );
        after_wave.push((rss, hwm));
    }

    assert!(
        waves > WARM_UP_WAVES,
        "no wave to measure after the warm-up"
    );
    let settled = after_wave[..WARM_UP_WAVES]
        .iter()
        .map(|(rss, _)| *rss)
        .max()
        .expect("warm-up waves");
    let allowed = (settled / 4).max(GROWTH_ALLOWED_MIN_KIB);
    for (wave, (rss, hwm)) in after_wave.iter().enumerate() {
        assert!(
            wave < WARM_UP_WAVES || *rss <= settled + allowed,
            "wave {wave}: VmRSS {rss} KiB, {settled} KiB after the warm-up: it grows \
             ({after_wave:?})"
        );
        assert!(
            *hwm <= CEILING_KIB,
            "wave {wave}: peak {hwm} KiB above the ceiling of {CEILING_KIB} KiB"
        );
    }
}
