//! Records written without a lock: attempts in flight, settled failures,
//! and their folding into the state file.

use deadbolt_core::store::{Loaded, Pending};
use deadbolt_core::{Failure, StateStore, Timestamp, UserName, UserState};
use std::fs;
use std::os::unix::fs::PermissionsExt;

fn store() -> (tempfile::TempDir, StateStore) {
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let store = StateStore::open_existing(tmp.path()).unwrap();
    (tmp, store)
}

fn failure(secs: i64, pid: u32) -> Failure {
    Failure {
        time: Timestamp::from_secs(secs),
        host: "web1".into(),
        source: "tty1".into(),
        service: "su".into(),
        pid,
    }
}

fn count(store: &StateStore, user: &UserName, pending: Pending, now: Timestamp) -> usize {
    match store.load_counting(user, pending, now).unwrap() {
        Loaded::Present(state) => state.failures.len(),
        Loaded::Absent => 0,
        Loaded::Corrupt(why) => panic!("corrupt: {why}"),
    }
}

#[test]
fn an_attempt_counts_until_withdrawn_and_settles_into_a_failure() {
    let (_tmp, store) = store();
    let alice = UserName::parse("alice").unwrap();
    let now = Timestamp::now();
    // Made now: an attempt older than a day would be settled whatever its pid.
    let mut fresh = failure(0, std::process::id());
    fresh.time = now;
    let own = store.begin_attempt(&alice, &fresh).unwrap();
    assert_eq!(count(&store, &alice, Pending::All, now), 1);
    assert_eq!(count(&store, &alice, Pending::AllBut(&own), now), 0);
    // This process runs: the attempt is in flight, not settled.
    assert_eq!(count(&store, &alice, Pending::Settled, now), 0);
    assert!(store.withdraw_attempt(&alice, &own).unwrap());
    assert_eq!(count(&store, &alice, Pending::All, now), 0);

    fresh.source = "tty2".into();
    let wrong = store.begin_attempt(&alice, &fresh).unwrap();
    store.settle_attempt(&alice, &wrong, true).unwrap();
    assert_eq!(count(&store, &alice, Pending::Settled, now), 1);
    // Withdrawing a settled attempt finds nothing: it stays a failure.
    assert!(!store.withdraw_attempt(&alice, &wrong).unwrap());
    assert!(store.fold(&alice, now).unwrap());
    assert_eq!(store.records(&alice), 0);
    assert_eq!(count(&store, &alice, Pending::All, now), 1);
}

#[test]
fn an_attempt_whose_process_is_gone_is_a_failure_and_is_folded() {
    let (tmp, store) = store();
    let alice = UserName::parse("alice").unwrap();
    let now = Timestamp::now();
    // A child that exits at once lends a pid that no longer runs.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = child.id();
    child.wait().unwrap();
    let id = store.begin_attempt(&alice, &failure(30, gone)).unwrap();
    let path = tmp
        .path()
        .join("alice.events")
        .join(format!("{}.pending", id.as_str()));
    // The attempt was written by this process; give it the dead pid's name.
    let parts: Vec<&str> = id.as_str().split('.').collect();
    let dead_name = format!("{}.{gone}.{}.pending", parts[0], parts[2]);
    fs::rename(&path, tmp.path().join("alice.events").join(&dead_name)).unwrap();
    assert_eq!(count(&store, &alice, Pending::Settled, now), 1);
    assert!(store.fold(&alice, now).unwrap());
    assert_eq!(store.records(&alice), 0);
    assert_eq!(count(&store, &alice, Pending::Settled, now), 1);
}

#[test]
fn a_held_lock_stops_no_record_and_no_fold_waits() {
    let (_tmp, store) = store();
    let alice = UserName::parse("alice").unwrap();
    let now = Timestamp::now();
    let _held = store.lock(&alice).unwrap();
    let mut delta = UserState::default();
    delta.failures.insert(failure(40, 1));
    store.merge_in(&alice, &delta, now, false).unwrap();
    assert!(
        !store.fold(&alice, now).unwrap(),
        "folded through a held lock"
    );
    assert_eq!(count(&store, &alice, Pending::All, now), 1);
}

#[test]
fn a_stray_file_among_the_records_is_corruption_and_is_moved_aside() {
    let (tmp, store) = store();
    let alice = UserName::parse("alice").unwrap();
    let now = Timestamp::now();
    let mut delta = UserState::default();
    delta.failures.insert(failure(50, 1));
    store.merge_in(&alice, &delta, now, false).unwrap();
    fs::write(tmp.path().join("alice.events").join("planted"), b"x").unwrap();
    assert!(matches!(store.load(&alice).unwrap(), Loaded::Corrupt(_)));
    let updated = store.update(&alice, now, |_| false).unwrap();
    assert_eq!(updated.quarantined.len(), 1);
    assert_eq!(updated.state.failures.len(), 1, "the good record is kept");
    assert!(matches!(store.load(&alice).unwrap(), Loaded::Present(_)));
}
