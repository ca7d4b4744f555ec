use super::*;
use deadbolt_core::UnlockAfter;
use proptest::prelude::*;

const BASE: i64 = 1_795_820_709_000_000;
const HOUR: Duration = Duration::from_secs(3600);

fn at(secs: i64) -> Timestamp {
    Timestamp(BASE + secs * 1_000_000)
}

fn failure(host: &str, secs: i64, pid: u32) -> Failure {
    Failure {
        time: at(secs),
        host: host.into(),
        source: "203.0.113.9".into(),
        service: "sshd".into(),
        pid,
    }
}

fn policy() -> LockoutPolicy {
    LockoutPolicy {
        enabled: true,
        deny: 3,
        fail_interval: Duration::from_secs(900),
        unlock_after: UnlockAfter::Never,
    }
}

/// What host `a` pushes under [`policy`], no other host having logged in.
fn push_of_a(
    local: &UserState,
    entry: &UserEntry,
    mine: Option<&HostRecord>,
    now: Timestamp,
) -> Push {
    plan_push(
        "a",
        local,
        entry,
        mine,
        None,
        &BTreeSet::new(),
        &policy(),
        now,
    )
}

fn records(list: &[HostRecord]) -> BTreeMap<String, HostRecord> {
    list.iter().map(|r| (r.host.clone(), r.clone())).collect()
}

#[test]
fn a_lock_deleted_by_hand_has_each_host_delete_its_failures_before_it() {
    let (one, two, later) = (failure("a", 1, 1), failure("a", 2, 2), failure("a", 30, 3));
    let mine = HostRecord {
        host: "a".into(),
        failures: [&one, &two, &later]
            .into_iter()
            .map(encoding::format_failure)
            .collect(),
        ..HostRecord::default()
    };
    let mut local = UserState::default();
    local.failures.extend([one, two, later]);
    local.merge(&lock_deleted(at(20)));
    let entry = UserEntry::default();
    let push = push_of_a(&local, &entry, Some(&mine), at(40));
    assert_eq!(
        push.delete_failures,
        vec![
            encoding::format_failure(&failure("a", 1, 1)),
            encoding::format_failure(&failure("a", 2, 2))
        ]
    );
    // What a host that reads the directory afterwards derives: one
    // failure after the reactivation, not a lock.
    let (fresh, _) = directory_state(&entry, &records(&[applied(&mine, &push)]), HOUR);
    assert_eq!(fresh.failures.len(), 1);
    assert!(!policy().evaluate(&fresh, at(40)).locked);
}

#[test]
fn a_host_pushes_its_own_failures_once_and_locks_when_it_completes_the_lock() {
    let mut local = UserState::default();
    local.failures.insert(failure("a", 1, 1));
    local.failures.insert(failure("b", 2, 2));
    local.failures.insert(failure("a", 3, 3));
    let entry = UserEntry::default();
    let push = push_of_a(&local, &entry, None, at(10));
    assert!(push.create_record);
    assert_eq!(push.add_failures.len(), 2, "only a's own");
    assert_eq!(
        push.lock.as_deref(),
        Some(encoding::format_seconds(at(3)).as_str())
    );

    let after = applied(
        &HostRecord {
            host: "a".into(),
            ..HostRecord::default()
        },
        &push,
    );
    let entry = UserEntry {
        locked_time: push.lock.clone(),
        ..UserEntry::default()
    };
    let replay = push_of_a(&local, &entry, Some(&after), at(11));
    assert!(replay.is_empty(), "{replay:?}");
}

#[test]
fn a_host_does_not_mirror_a_lock_another_host_completed() {
    let mut local = UserState::default();
    local.failures.insert(failure("a", 1, 1));
    local.failures.insert(failure("a", 2, 2));
    local.failures.insert(failure("b", 3, 3));
    let mine = HostRecord {
        host: "a".into(),
        failures: [encoding::format_failure(&failure("a", 1, 1))].into(),
        ..HostRecord::default()
    };
    let push = push_of_a(&local, &UserEntry::default(), Some(&mine), at(10));
    assert_eq!(push.add_failures.len(), 1);
    assert_eq!(push.lock, None);
}

#[test]
fn after_a_login_the_older_own_failures_and_logins_go() {
    let mut local = UserState::default();
    local.failures.insert(failure("a", 1, 1));
    local.last_success = Some(at(5));
    let mine = HostRecord {
        host: "a".into(),
        failures: [encoding::format_failure(&failure("a", 1, 1))].into(),
        logins: [encoding::format_time(at(0))].into(),
        ..HostRecord::default()
    };
    let push = push_of_a(&local, &UserEntry::default(), Some(&mine), at(10));
    assert_eq!(push.add_logins, vec![encoding::format_time(at(5))]);
    assert_eq!(push.delete_logins, vec![encoding::format_time(at(0))]);
    assert_eq!(push.delete_failures.len(), 1);
    assert!(push.add_failures.is_empty());
}

#[test]
fn a_record_stays_as_bounded_as_local_state() {
    let mut local = UserState::default();
    for i in 0..MAX_FAILURES_KEPT as i64 {
        local.failures.insert(failure("a", 100 + i, 1));
    }
    // The directory still holds the two this host's state has dropped.
    let mine = HostRecord {
        host: "a".into(),
        failures: [failure("a", 1, 1), failure("a", 2, 1), failure("a", 100, 1)]
            .iter()
            .map(encoding::format_failure)
            .collect(),
        ..HostRecord::default()
    };
    let push = push_of_a(&local, &UserEntry::default(), Some(&mine), at(5000));
    assert_eq!(
        push.delete_failures.iter().collect::<BTreeSet<_>>(),
        [failure("a", 1, 1), failure("a", 2, 1)]
            .iter()
            .map(encoding::format_failure)
            .collect::<BTreeSet<_>>()
            .iter()
            .collect()
    );
    let after = applied(&mine, &push);
    assert_eq!(after.failures.len(), MAX_FAILURES_KEPT);
    // Below the bound nothing old is dropped.
    let mut small = local.clone();
    small.failures.pop_last();
    let push = push_of_a(&small, &UserEntry::default(), Some(&mine), at(5000));
    assert!(push.delete_failures.is_empty());
}

#[test]
fn a_fast_clock_neither_locks_nor_reactivates() {
    let record = HostRecord {
        host: "fast".into(),
        failures: (0..3)
            .map(|i| encoding::format_failure(&failure("fast", 3600 + i, 1)))
            .collect(),
        changed_at: Some(at(0)),
        ..HostRecord::default()
    };
    let entry = UserEntry {
        reactivated: [encoding::format_time(at(3600))].into(),
        changed_at: Some(at(0)),
        ..UserEntry::default()
    };
    let (state, skipped) = directory_state(&entry, &records(&[record]), Duration::from_secs(120));
    assert!(state.failures.is_empty() && state.last_reactivation.is_none());
    assert_eq!(skipped.len(), 4);
    let (state, _) = directory_state(&entry, &BTreeMap::new(), 2 * HOUR);
    assert_eq!(state.last_reactivation, Some(at(3600)));
}

#[test]
fn a_record_of_more_failures_than_a_state_keeps_is_bounded_and_said_so() {
    let n = MAX_FAILURES_KEPT as i64 + 500;
    let record = HostRecord {
        host: "b".into(),
        failures: (1..=n)
            .map(|i| encoding::format_failure(&failure("b", i, i as u32)))
            .collect(),
        ..HostRecord::default()
    };
    let (state, skipped) = directory_state(&UserEntry::default(), &records(&[record]), HOUR);
    assert_eq!(state.failures.len(), MAX_FAILURES_KEPT);
    assert_eq!(state.failures.first().map(|f| f.time), Some(at(501)));
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(skipped[0].why.contains("500 of 1524"), "{skipped:?}");
}

#[test]
fn malformed_values_are_skipped_and_the_rest_used() {
    let record = HostRecord {
        host: "b".into(),
        failures: [
            "garbage".to_owned(),
            encoding::format_failure(&failure("b", 1, 1)),
        ]
        .into(),
        logins: ["19700101000000Z junk".to_owned()].into(),
        ..HostRecord::default()
    };
    let (state, skipped) = directory_state(&UserEntry::default(), &records(&[record]), HOUR);
    assert_eq!(state.failures.len(), 1);
    assert_eq!(skipped.len(), 2);
    assert!(skipped.iter().all(|s| !s.why.contains("garbage")));
}

#[test]
fn locks_are_told_apart() {
    let mut known = UserState::default();
    known.failures.insert(failure("a", 3, 1));
    let ours = encoding::format_seconds(at(3));
    assert_eq!(classify_lock(&ours, &known, at(9)), LockKind::Ours);
    assert_eq!(
        classify_lock("000001010000Z", &known, at(9)),
        LockKind::Foreign(at(9))
    );
    assert_eq!(
        classify_lock(&encoding::format_seconds(at(4)), &known, at(9)),
        LockKind::Foreign(at(4))
    );
}

fn any_failure(host: &'static str) -> impl Strategy<Value = Failure> {
    (0i64..40, 0u32..3).prop_map(move |(s, pid)| failure(host, s * 30, pid))
}

proptest! {
    /// Pruning never changes the derived lock: the directory's state
    /// after the push (deletions included) derives, at every instant,
    /// the same lock as with only the additions applied.
    #[test]
    fn pruning_never_changes_the_derived_lock(
        own in prop::collection::btree_set(any_failure("a"), 0..8),
        theirs in prop::collection::btree_set(any_failure("b"), 0..8),
        in_directory in prop::collection::btree_set(any_failure("a"), 0..8),
        success in prop::option::of(0i64..1200),
        old_login in prop::option::of(0i64..1200),
        reactivated in prop::option::of(0i64..1200),
        deny in 1u32..5,
        timed in any::<bool>(),
    ) {
        let policy = LockoutPolicy {
            enabled: true,
            deny,
            fail_interval: Duration::from_secs(600),
            unlock_after: if timed { UnlockAfter::After(Duration::from_secs(300)) } else { UnlockAfter::Never },
        };
        let mine = HostRecord {
            host: "a".into(),
            failures: in_directory.iter().map(encoding::format_failure).collect(),
            logins: old_login.map(|s| encoding::format_time(at(s))).into_iter().collect(),
            ..HostRecord::default()
        };
        let other = HostRecord {
            host: "b".into(),
            failures: theirs.iter().map(encoding::format_failure).collect(),
            ..HostRecord::default()
        };
        let entry = UserEntry {
                reactivated: reactivated.map(|s| encoding::format_time(at(s))).into_iter().collect(),
            ..UserEntry::default()
        };
        let (before, _) = directory_state(&entry, &records(&[mine.clone(), other.clone()]), HOUR);
        let mut local = before.clone();
        local.failures.extend(own.iter().cloned());
        local.last_success = local.last_success.max(success.map(at));
        let push = plan_push("a", &local, &entry, Some(&mine), None, &BTreeSet::new(), &policy, at(1300));
        let only_added = applied(&mine, &Push { delete_failures: vec![], delete_logins: vec![], ..push.clone() });
        let pruned = applied(&mine, &push);
        let (with_adds, _) = directory_state(&entry, &records(&[only_added, other.clone()]), HOUR);
        let (after, _) = directory_state(&entry, &records(&[pruned, other]), HOUR);
        for s in (0..1600).step_by(37) {
            prop_assert_eq!(policy.evaluate(&with_adds, at(s)), policy.evaluate(&after, at(s)));
        }
        // And the directory lacks nothing the host knows of its own.
        let replay = plan_push("a", &local, &entry, Some(&applied(&mine, &push)), None, &BTreeSet::new(), &policy, at(1300));
        prop_assert!(replay.add_failures.is_empty() && replay.add_logins.is_empty());
    }
}
