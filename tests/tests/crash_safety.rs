//! Writers killed with SIGKILL at random points: logins in the middle of a
//! failure, password changes in the middle of their commit, deadboltctl in
//! the middle of a change, and deadbolt-syncd while it syncs. Afterwards
//! every state decodes, nothing acknowledged is lost, and the directory
//! agrees with the hosts.
//!
//! Each test prints its seed; `DEADBOLT_CRASH_SEED=N` runs it again with
//! the same kill points (the same delays; what they hit still depends on
//! the machine's load). `DEADBOLT_CRASH_SCALE=K` (default 1) multiplies the
//! number of kills.

use deadbolt_core::state::MAX_FAILURES_KEPT;
use deadbolt_core::store::Loaded;
use deadbolt_core::{StateStore, Timestamp, UserName, UserState};
use deadbolt_tests::crash::{run_killed_after, scale, Ended, Rng, RunTimes, SystemService};
use deadbolt_tests::fleet::{FleetHost, Syncd, PROPAGATION};
use deadbolt_tests::slapd::{wait_until, Directory};
use deadbolt_tests::{PamEnv, Stack};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const USERS: [&str; 3] = ["alice", "bob", "carol"];
const PW: &str = "Right-Passw0rd!";

/// Kills of login processes per unit of `DEADBOLT_CRASH_SCALE`.
const LOGIN_KILLS: u64 = 2000;
/// Of every hundred logins, how many are killed; the rest run to the end.
const KILL_PERCENT: u64 = 70;

fn user(name: &str) -> UserName {
    UserName::parse(name).expect("a valid user name")
}

/// The state as the library reads it, every pending attempt counted;
/// panics unless it decodes.
fn decoded(dir: &Path, name: &str) -> Option<UserState> {
    let store = StateStore::open_existing(dir).expect("open the state store");
    match store.load(&user(name)).expect("read the state") {
        Loaded::Present(state) => Some(state),
        Loaded::Absent => None,
        Loaded::Corrupt(why) => panic!("the state of {name} does not decode: {why}"),
    }
}

/// Every name under `dir`, relative, sorted.
fn names_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir)
            .expect("list a state directory")
            .flatten()
        {
            let path = entry.path();
            out.push(
                path.strip_prefix(base)
                    .expect("under base")
                    .to_string_lossy()
                    .into_owned(),
            );
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(base, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Files a killed writer leaves: partial records and temporary states.
fn leftovers(dir: &Path) -> Vec<String> {
    names_under(dir)
        .into_iter()
        .filter(|n| n.ends_with(".new") || n.contains(".tmp."))
        .collect()
}

/// Whether pamtester says PAM answered `authenticate` with a failure.
fn refused_by_pam(out: &Ended) -> bool {
    out.status.code() == Some(1) && out.stderr.contains("Authentication failure")
}

fn show(out: &Ended) -> String {
    format!(
        "pid {} {}: stdout {:?} stderr {:?}",
        out.pid, out.status, out.stdout, out.stderr
    )
}

/// What the storm of logins saw, per user: the pids of logins PAM answered
/// with a failure, and of those killed before they answered.
#[derive(Default)]
struct Logins {
    acknowledged: BTreeMap<String, BTreeSet<u32>>,
    killed: BTreeMap<String, BTreeSet<u32>>,
}

#[test]
fn logins_killed_at_random_points_lose_no_acknowledged_failure() {
    let mut builder = PamEnv::builder()
        .lockout("deny", "10000")
        .lockout("unlock_after", "\"never\"");
    for name in USERS {
        builder = builder.user(name, PW);
    }
    let env = builder.build();
    let service = SystemService::install(&env);
    let mut rng = Rng::from_env("logins killed at random points");
    let login = |name: &str, kill_after: Option<Duration>| {
        run_killed_after(
            service.pamtester(name, &["authenticate"]),
            b"wrong password\n",
            kill_after,
        )
    };
    let logins = Mutex::new(Logins::default());
    let record = |name: &str, out: Ended| {
        let mut logins = logins.lock().expect("no worker panicked");
        if out.killed() {
            logins
                .killed
                .entry(name.to_owned())
                .or_default()
                .insert(out.pid);
        } else {
            assert!(refused_by_pam(&out), "{name}: {}", show(&out));
            logins
                .acknowledged
                .entry(name.to_owned())
                .or_default()
                .insert(out.pid);
        }
    };
    // The delays span most of a login, from the end of the program's start
    // (exec, libpam, the module loading: a third of the time, where a kill
    // tests nothing of ours) to after it has answered.
    let times = RunTimes::default();
    for _ in 0..6 {
        let out = login("alice", None);
        times.add(out.ran);
        record("alice", out);
    }
    let target = LOGIN_KILLS * scale();
    let kills = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let mut rng = rng.fork();
            let (kills, login, record, times) = (&kills, &login, &record, &times);
            scope.spawn(move || {
                while kills.load(Ordering::Relaxed) < target {
                    let name = USERS[rng.below(USERS.len() as u64) as usize];
                    let kill_after = rng.chance(KILL_PERCENT).then(|| {
                        let whole = times.mean();
                        rng.delay_between(whole * 3 / 10, whole * 11 / 10)
                    });
                    let out = login(name, kill_after);
                    if out.killed() {
                        kills.fetch_add(1, Ordering::Relaxed);
                    } else {
                        times.add(out.ran);
                    }
                    record(name, out);
                }
            });
        }
    });
    let storm = started.elapsed();
    let logins = logins.into_inner().expect("no worker panicked");
    let dir = env.state_dir();
    let left = leftovers(dir);
    let names = names_under(dir);
    assert!(
        !names.iter().any(|n| n.starts_with(".corrupt.")),
        "a killed writer left something a read took for corrupt: {names:?}"
    );

    let store = StateStore::open_existing(dir).expect("open the state store");
    let mut counted_killed = 0;
    let mut least_acknowledged = u64::MAX;
    for name in USERS {
        let acknowledged = logins.acknowledged.get(name).cloned().unwrap_or_default();
        let killed = logins.killed.get(name).cloned().unwrap_or_default();
        let state = decoded(dir, name).expect("a state for every user");
        let recorded: BTreeSet<u32> = state.failures.iter().map(|f| f.pid).collect();
        let lost: Vec<_> = acknowledged.difference(&recorded).collect();
        assert!(
            lost.is_empty(),
            "{name}: acknowledged failures lost: {lost:?}"
        );
        let invented: Vec<_> = recorded
            .iter()
            .filter(|pid| !acknowledged.contains(pid) && !killed.contains(pid))
            .collect();
        assert!(
            invented.is_empty(),
            "{name}: failures of no login: {invented:?}"
        );
        assert_eq!(
            state.failures.len(),
            recorded.len(),
            "{name}: one failure per login"
        );
        counted_killed += killed.intersection(&recorded).count();
        // deadboltctl reads the same: every state decodes for it too.
        let status = env.status_json(name);
        assert_eq!(
            status["failures"].as_u64(),
            Some(state.failures.len() as u64),
            "{name}: {status}"
        );
        // Folding settles what the killed left: partial records and dead
        // attempts go, and the count stays.
        assert!(store.fold(&user(name), Timestamp::now()).expect("fold"));
        let after = decoded(dir, name).expect("still a state");
        assert_eq!(
            after.failures, state.failures,
            "{name}: the fold changed the count"
        );
        let events = dir.join(format!("{name}.events"));
        let unsettled: Vec<_> = names_under(&events)
            .into_iter()
            .filter(|n| n.ends_with(".new") || n.ends_with(".pending"))
            .collect();
        assert!(
            unsettled.is_empty(),
            "{name}: left after the fold: {unsettled:?}"
        );
        least_acknowledged = least_acknowledged.min(acknowledged.len() as u64);
    }
    let acknowledged: usize = logins.acknowledged.values().map(BTreeSet::len).sum();
    let killed: usize = logins.killed.values().map(BTreeSet::len).sum();
    eprintln!(
        "{killed} logins killed ({counted_killed} of them after their attempt was recorded, \
         counted as failures), {acknowledged} acknowledged and every one recorded, in {:.1} s \
         (a whole login took {} ms); left by killed writers: {} files ({left:?})",
        storm.as_secs_f64(),
        times.mean().as_millis(),
        left.len()
    );
    assert!(killed as u64 >= target, "{killed} kills");
    assert!(
        least_acknowledged > 0,
        "a user without an acknowledged failure"
    );

    // With `deny` at what every user's acknowledged failures reach, every
    // one is locked, and the right password is refused.
    let text = env
        .config_text()
        .replace("deny = 10000", &format!("deny = {least_acknowledged}"));
    env.write_config(&text);
    for name in USERS {
        assert!(
            env.is_locked(name),
            "{name} not locked at deny = {least_acknowledged}"
        );
        let out = run_killed_after(
            service.pamtester(name, &["authenticate"]),
            format!("{PW}\n").as_bytes(),
            None,
        );
        assert!(refused_by_pam(&out), "{name} got in: {}", show(&out));
    }
}

/// Kills of password changes per unit of `DEADBOLT_CRASH_SCALE`; at most
/// [`MAX_PASSWORD_KILLS`], so that every change stays in a history of
/// `remember = 400` and none is trimmed away.
const PASSWORD_KILLS: u64 = 60;
const MAX_PASSWORD_KILLS: u64 = 300;

/// The answers of a change by root on [`Stack::Password`]: pam_matrix's
/// "Old password: ", then the new password for deadbolt's two prompts and
/// pam_matrix's two.
fn change_input(current: &str, new: &str) -> Vec<u8> {
    format!("{current}\n{new}\n{new}\n{new}\n{new}\n").into_bytes()
}

#[test]
fn password_changes_killed_in_their_commit_keep_the_old_record_or_the_new() {
    let env = PamEnv::builder()
        .user("dave", "Start-Passw0rd!")
        .stack(Stack::Password)
        .password("remember", "400")
        .build();
    let service = SystemService::install(&env);
    let mut rng = Rng::from_env("password changes killed in their commit");
    let dir = env.state_dir();
    let times = RunTimes::default();
    let target = (PASSWORD_KILLS * scale()).min(MAX_PASSWORD_KILLS);
    let (mut kills, mut acknowledged, mut committed_then_killed) = (0, 0, 0);
    let started = Instant::now();
    for round in 0.. {
        if kills >= target {
            break;
        }
        let before = decoded(dir, "dave").unwrap_or_default();
        // A change killed after pam_matrix stored the new password and
        // before deadbolt's commit leaves the new one in pam_matrix's file:
        // the next change starts from whatever it holds.
        let current = service
            .password("dave")
            .expect("pam_matrix's file still names dave");
        // Three digits at most: four of a kind in a row is refused.
        let new = format!("Crash-{round}-Tulip-{}!", rng.below(1000));
        // The first changes run to the end, to learn how long one takes.
        let kill_after = (round >= 3 && rng.chance(KILL_PERCENT)).then(|| {
            let whole = times.mean();
            rng.delay_between(whole / 5, whole * 11 / 10)
        });
        let out = run_killed_after(
            service.pamtester("dave", &["chauthtok"]),
            &change_input(&current, &new),
            kill_after,
        );
        let after = decoded(dir, "dave").unwrap_or_default();
        assert!(
            before.password_history.is_subset(&after.password_history),
            "round {round}: a history record was lost"
        );
        let added: Vec<_> = after
            .password_history
            .difference(&before.password_history)
            .collect();
        match added.as_slice() {
            [] => assert_eq!(
                after.last_password_change, before.last_password_change,
                "round {round}: a change time without its history record"
            ),
            [record] => {
                assert_eq!(
                    after.last_password_change,
                    Some(record.changed_at),
                    "round {round}: a history record without its change time"
                );
                assert!(after.last_password_change > before.last_password_change);
            }
            more => panic!("round {round}: {} records from one change", more.len()),
        }
        if out.killed() {
            kills += 1;
            committed_then_killed += added.len();
        } else {
            assert!(out.status.success(), "round {round}: {}", show(&out));
            assert_eq!(
                added.len(),
                1,
                "round {round}: an acknowledged change not recorded"
            );
            acknowledged += 1;
            times.add(out.ran);
        }
    }
    let names = names_under(dir);
    assert!(
        !names.iter().any(|n| n.starts_with(".corrupt.")),
        "a killed commit left something a read took for corrupt: {names:?}"
    );
    env.status_json("dave");
    eprintln!(
        "{kills} password changes killed ({committed_then_killed} after their commit), \
         {acknowledged} acknowledged and recorded, in {:.1} s (a whole change took {} ms); \
         left by killed writers: {:?}",
        started.elapsed().as_secs_f64(),
        times.mean().as_millis(),
        leftovers(dir)
    );
}

/// Kills of deadboltctl per unit of `DEADBOLT_CRASH_SCALE`.
const CTL_KILLS: u64 = 150;

/// A change deadboltctl makes to the local state, and the one field of the
/// state it writes.
#[derive(Clone, Copy, Debug)]
enum CtlChange {
    Disable,
    Enable,
    Reactivate,
    ResetPassword,
}

impl CtlChange {
    const ALL: [CtlChange; 4] = [
        CtlChange::Disable,
        CtlChange::Enable,
        CtlChange::Reactivate,
        CtlChange::ResetPassword,
    ];

    fn verb(self) -> &'static str {
        match self {
            CtlChange::Disable => "disable",
            CtlChange::Enable => "enable",
            CtlChange::Reactivate => "reactivate",
            CtlChange::ResetPassword => "reset-password",
        }
    }

    /// `after` with this change's field taken back from `before`: equal to
    /// `before` exactly when nothing else changed. Both are pruned first (a
    /// write drops failures that can never count again). A reactivation
    /// takes the failures it cleared with it: without its time, they must
    /// all be there.
    fn undone(self, before: &mut UserState, after: &UserState) -> UserState {
        before.prune();
        let mut undone = after.clone();
        undone.prune();
        match self {
            CtlChange::Disable => undone.last_disable = before.last_disable,
            CtlChange::Enable => undone.last_enable = before.last_enable,
            CtlChange::Reactivate => {
                if undone.last_reactivation != before.last_reactivation {
                    undone.failures = before.failures.clone();
                }
                undone.last_reactivation = before.last_reactivation;
            }
            CtlChange::ResetPassword => undone.last_admin_reset = before.last_admin_reset,
        }
        undone
    }

    /// Whether the change is in `after` (it would be in `before` already
    /// for a disable of a disabled account, which writes nothing).
    fn is_in(self, before: &UserState, after: &UserState) -> bool {
        match self {
            CtlChange::Disable => after.is_disabled(),
            CtlChange::Enable => !after.is_disabled(),
            CtlChange::Reactivate => after.last_reactivation > before.last_reactivation,
            CtlChange::ResetPassword => after.last_admin_reset > before.last_admin_reset,
        }
    }
}

#[test]
fn deadboltctl_killed_mid_change_leaves_the_change_wholly_there_or_absent() {
    let env = PamEnv::builder()
        .user("erin", PW)
        .lockout("deny", "3")
        .lockout("unlock_after", "\"never\"")
        .build();
    let service = SystemService::install(&env);
    let mut rng = Rng::from_env("deadboltctl killed mid-change");
    let dir = env.state_dir();
    let store = StateStore::open_or_create(dir).expect("open the state store");
    let times = RunTimes::default();
    let target = CTL_KILLS * scale();
    let (mut kills, mut acknowledged, mut made_then_killed) = (0, 0, 0);
    let started = Instant::now();
    for round in 0.. {
        if kills >= target {
            break;
        }
        let change = CtlChange::ALL[rng.below(CtlChange::ALL.len() as u64) as usize];
        if let CtlChange::Reactivate = change {
            // Something for the reactivation to clear, recorded as a login
            // would record it.
            let mut failure = UserState::default();
            failure.failures.insert(deadbolt_core::Failure {
                time: Timestamp::now(),
                host: "crash-test".to_owned(),
                source: "tty1".to_owned(),
                service: service.name.clone(),
                pid: round,
            });
            store
                .merge_in(&user("erin"), &failure, Timestamp::now(), false)
                .expect("record a failure");
        }
        let mut before = decoded(dir, "erin").unwrap_or_default();
        let kill_after = (round >= 3 && rng.chance(KILL_PERCENT)).then(|| {
            let whole = times.mean();
            rng.delay_between(whole / 5, whole * 11 / 10)
        });
        let out = run_killed_after(
            service.deadboltctl(&[change.verb(), "erin"]),
            b"",
            kill_after,
        );
        let after = decoded(dir, "erin").unwrap_or_default();
        assert_eq!(
            change.undone(&mut before, &after),
            before,
            "round {round}: {change:?} changed more than its own field"
        );
        let made = change.is_in(&before, &after);
        if out.killed() {
            kills += 1;
            made_then_killed += usize::from(made && after != before);
        } else {
            assert!(
                out.status.success(),
                "round {round}: {change:?}: {}",
                show(&out)
            );
            assert!(made, "round {round}: {change:?} acknowledged and not there");
            acknowledged += 1;
            times.add(out.ran);
        }
        // deadboltctl reads the state as the library does.
        let status = env.status_json("erin");
        assert_eq!(status["disabled"], after.is_disabled(), "{status}");
    }
    let names = names_under(dir);
    assert!(
        !names.iter().any(|n| n.starts_with(".corrupt.")),
        "a killed change left something a read took for corrupt: {names:?}"
    );
    eprintln!(
        "{kills} deadboltctl changes killed ({made_then_killed} after writing), \
         {acknowledged} acknowledged and there, in {:.1} s (a whole change took {} ms); \
         left by killed writers: {:?}",
        started.elapsed().as_secs_f64(),
        times.mean().as_millis(),
        leftovers(dir)
    );
}

/// Kills of deadbolt-syncd per unit of `DEADBOLT_CRASH_SCALE`.
const DAEMON_KILLS: u64 = 20;

/// The failure values `host` holds for `uid` in its record in the directory.
fn directory_failures(directory: &Directory, uid: &str, host: &str) -> Vec<String> {
    let record = directory.host_record_dn(&directory.employee_dn(uid), host);
    directory
        .entry(&record, &["deadboltFailure"])
        .map(|e| e.values("deadboltFailure").to_vec())
        .unwrap_or_default()
}

#[test]
fn daemons_killed_while_they_sync_converge_with_every_failure_exactly_once() {
    const PEOPLE: [&str; 2] = ["frank", "gwen"];
    let directory = Directory::start();
    for uid in PEOPLE {
        directory.add_employee(uid, "ldap-pw", None);
    }
    let people: Vec<(&str, &str)> = PEOPLE.iter().map(|u| (*u, PW)).collect();
    let lockout: &[(&str, &str)] = &[("deny", "10000")];
    let hosts = [
        FleetHost::new(&directory, "host-a", &people, lockout),
        FleetHost::new(&directory, "host-b", &people, lockout),
    ];
    let services: Vec<SystemService> = hosts
        .iter()
        .map(|h| SystemService::install(&h.env))
        .collect();
    let mut daemons: Vec<Syncd> = hosts.iter().map(FleetHost::start_syncd).collect();
    for daemon in &mut daemons {
        daemon.wait_ready();
    }
    let mut rng = Rng::from_env("daemons killed while they sync");
    let target = DAEMON_KILLS * scale();
    // acknowledged[host][user]: failures PAM answered on that host.
    let acknowledged = Mutex::new(vec![BTreeMap::<&str, u64>::new(); hosts.len()]);
    let streaming = std::sync::atomic::AtomicBool::new(true);
    let started = Instant::now();
    let mut unready_kills = 0;
    std::thread::scope(|scope| {
        for (index, service) in services.iter().enumerate() {
            let (acknowledged, streaming) = (&acknowledged, &streaming);
            scope.spawn(move || {
                let mut turn = 0;
                while streaming.load(Ordering::Relaxed) {
                    let uid = PEOPLE[turn % PEOPLE.len()];
                    turn += 1;
                    let out = run_killed_after(
                        service.pamtester(uid, &["authenticate"]),
                        b"wrong password\n",
                        None,
                    );
                    assert!(refused_by_pam(&out), "{uid}: {}", show(&out));
                    *acknowledged.lock().expect("no stream panicked")[index]
                        .entry(uid)
                        .or_default() += 1;
                }
            });
        }
        for _ in 0..target {
            // The kill point: a moment in a stream of failures, with the
            // daemon pushing them, resuming, or still loading.
            std::thread::sleep(
                rng.delay_between(Duration::from_millis(20), Duration::from_millis(400)),
            );
            let daemon = &mut daemons[rng.below(2) as usize];
            daemon.restart();
            if rng.chance(50) {
                daemon.wait_ready();
            } else {
                unready_kills += 1;
            }
        }
        streaming.store(false, Ordering::Relaxed);
    });
    for daemon in &mut daemons {
        daemon.wait_ready();
    }
    let acknowledged = acknowledged.into_inner().expect("no stream panicked");
    for uid in PEOPLE {
        let total: u64 = acknowledged.iter().map(|per_host| per_host[uid]).sum();
        for (index, host) in hosts.iter().enumerate() {
            let own = acknowledged[index][uid];
            wait_until(
                &format!(
                    "{own} failures of {uid} from {} in the directory",
                    host.name
                ),
                PROPAGATION,
                || {
                    let values = directory_failures(&directory, uid, &host.name);
                    (values.len() as u64 >= own).then_some(values)
                },
            );
            wait_until(
                &format!("{total} failures of {uid} on {}", host.name),
                PROPAGATION,
                || (host.env.failures(uid) >= total).then_some(()),
            );
        }
        // Exactly: nothing pushed twice, nothing invented, on every side.
        for (index, host) in hosts.iter().enumerate() {
            let values = directory_failures(&directory, uid, &host.name);
            let distinct: BTreeSet<&String> = values.iter().collect();
            assert_eq!(
                distinct.len(),
                values.len(),
                "{uid} on {}: {values:?}",
                host.name
            );
            assert_eq!(
                values.len() as u64,
                acknowledged[index][uid],
                "{uid}: the directory's record of {}",
                host.name
            );
            assert_eq!(host.env.failures(uid), total, "{uid} on {}", host.name);
            decoded(host.env.state_dir(), uid).expect("a state");
        }
    }
    for (daemon, host) in daemons.iter().zip(&hosts) {
        let log = daemon.log_text();
        assert!(
            !log.contains("no longer resumes") && !log.contains("cannot be read"),
            "{}: a restart did not resume from its cookie:\n{log}",
            host.name
        );
        assert!(
            host.sync_dir().join("cookie").exists(),
            "{}: no cookie",
            host.name
        );
    }
    let failures: u64 = acknowledged.iter().flat_map(|h| h.values()).sum();
    eprintln!(
        "{target} daemons killed while syncing ({unready_kills} of them before they had \
         loaded), {failures} failures on two hosts, all in the directory exactly once, in \
         {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Kills of the store writer per unit of `DEADBOLT_CRASH_SCALE`.
const WRITER_KILLS: u64 = 2000;

/// Denser than logins, whose time goes mostly to starting the program: a
/// writer does nothing but write, so nearly every kill lands in a write or
/// a fold.
#[test]
fn store_writers_killed_mid_write_lose_no_acknowledged_write() {
    let env = PamEnv::builder()
        .lockout("deny", "10000")
        .state("track_unknown_users", "true")
        .build();
    let dir = env.state_dir();
    let mut rng = Rng::from_env("store writers killed mid-write");
    let target = WRITER_KILLS * scale();
    let kills = AtomicU64::new(0);
    let acknowledged = Mutex::new(BTreeMap::<String, BTreeSet<String>>::new());
    // A state keeps at most MAX_FAILURES_KEPT failures (the oldest go):
    // each user takes this many writes, acknowledged or not, then the next.
    let per_user = MAX_FAILURES_KEPT / 2;
    let writes_begun = Mutex::new(0usize);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let mut rng = rng.fork();
            let (kills, acknowledged, writes_begun) = (&kills, &acknowledged, &writes_begun);
            scope.spawn(move || {
                while kills.load(Ordering::Relaxed) < target {
                    let name = {
                        let begun = writes_begun.lock().expect("no worker panicked");
                        format!("writer{}", *begun / per_user)
                    };
                    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_store-writer"));
                    cmd.arg(dir).arg(&name);
                    let kill_after =
                        rng.delay_between(Duration::from_millis(2), Duration::from_millis(40));
                    let out = run_killed_after(cmd, b"", Some(kill_after));
                    assert!(out.killed(), "the writer stopped by itself: {}", show(&out));
                    kills.fetch_add(1, Ordering::Relaxed);
                    let marks: Vec<String> = out.stdout.lines().map(str::to_owned).collect();
                    // The acknowledged writes and the one in flight.
                    *writes_begun.lock().expect("no worker panicked") += marks.len() + 1;
                    acknowledged
                        .lock()
                        .expect("no worker panicked")
                        .entry(name)
                        .or_default()
                        .extend(marks);
                }
            });
        }
    });
    let acknowledged = acknowledged.into_inner().expect("no worker panicked");
    let names = names_under(dir);
    assert!(
        !names.iter().any(|n| n.starts_with(".corrupt.")),
        "a killed writer left something a read took for corrupt: {names:?}"
    );
    let left = leftovers(dir);
    let mut writes = 0;
    for (name, marks) in &acknowledged {
        let state = decoded(dir, name).expect("a state");
        let recorded: BTreeSet<&str> = state.failures.iter().map(|f| f.source.as_str()).collect();
        let lost: Vec<_> = marks
            .iter()
            .filter(|m| !recorded.contains(m.as_str()))
            .collect();
        assert!(
            lost.is_empty(),
            "{name}: {} acknowledged writes lost: {lost:?}",
            lost.len()
        );
        assert_eq!(
            env.status_json(name)["failures"].as_u64(),
            Some(state.failures.len() as u64),
            "{name}"
        );
        writes += marks.len();
    }
    // What the killed left is settled by the next write that folds: a
    // partial record whose writer is gone is removed, a temporary state is
    // replaced.
    let store = StateStore::open_existing(dir).expect("open the state store");
    for name in acknowledged.keys() {
        let before = decoded(dir, name).expect("a state");
        store
            .update(&user(name), Timestamp::now(), |_| true)
            .expect("a write");
        assert_eq!(
            decoded(dir, name).expect("a state").failures,
            before.failures
        );
    }
    assert_eq!(leftovers(dir), Vec::<String>::new(), "left after a write");
    eprintln!(
        "{} writers killed after 2 to 40 ms, {writes} acknowledged writes and every one \
         there, in {:.1} s; left by killed writers: {} files ({left:?})",
        kills.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
        left.len()
    );
}
