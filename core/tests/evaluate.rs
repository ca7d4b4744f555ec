//! Hand-written cases for `LockoutPolicy::evaluate`, one rule at a time.

use deadbolt_core::lockout::LockReason;
use deadbolt_core::{Failure, LockoutPolicy, Timestamp, UnlockAfter, UserState};
use std::time::Duration;

const MICRO: Duration = Duration::from_micros(1);

/// An arbitrary instant (2026-11-27T23:05:09Z) so that nothing depends on 0.
fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(1_795_820_709 + secs)
}

fn failure(time: Timestamp, pid: u32) -> Failure {
    Failure {
        time,
        host: "web1".into(),
        source: "203.0.113.9".into(),
        service: "sshd".into(),
        pid,
    }
}

fn with_failures(times: &[Timestamp]) -> UserState {
    let mut state = UserState::default();
    for (i, &t) in times.iter().enumerate() {
        state.failures.insert(failure(t, u32::try_from(i).unwrap()));
    }
    state
}

/// 3 failures in 15 minutes lock for 10 minutes.
fn timed() -> LockoutPolicy {
    LockoutPolicy {
        enabled: true,
        deny: 3,
        fail_interval: Duration::from_secs(900),
        unlock_after: UnlockAfter::After(Duration::from_secs(600)),
    }
}

fn never() -> LockoutPolicy {
    LockoutPolicy {
        unlock_after: UnlockAfter::Never,
        ..timed()
    }
}

#[test]
fn default_policy_is_on() {
    let policy = LockoutPolicy::default();
    assert!(policy.enabled);
    assert!(policy.deny > 0);
}

#[test]
fn locks_at_exactly_deny_not_before() {
    let policy = timed();
    let two = with_failures(&[at(0), at(10)]);
    let status = policy.evaluate(&two, at(20));
    assert!(!status.locked);
    assert!(!status.failure_locked);
    assert_eq!(status.reason, None);
    assert_eq!(status.failures, 2);
    assert_eq!(status.locked_since, None);
    assert_eq!(status.locked_until, None);

    let three = with_failures(&[at(0), at(10), at(20)]);
    let status = policy.evaluate(&three, at(20));
    assert!(status.locked);
    assert!(status.failure_locked);
    assert!(!status.disabled);
    assert_eq!(status.reason, Some(LockReason::Failures));
    assert_eq!(status.failures, 3);
    assert_eq!(status.locked_since, Some(at(20)));
    assert_eq!(status.locked_until, Some(at(620)));
    assert!(!status.until_reactivated());
    assert_eq!(status.lapsed_lock_end, None);
}

#[test]
fn deny_one_locks_at_the_first_failure() {
    let policy = LockoutPolicy { deny: 1, ..timed() };
    let status = policy.evaluate(&with_failures(&[at(5)]), at(5));
    assert!(status.failure_locked);
    assert_eq!(status.locked_since, Some(at(5)));
    assert_eq!(status.locked_until, Some(at(605)));
}

#[test]
fn failures_spread_wider_than_the_interval_do_not_lock() {
    let policy = timed();
    // Exactly one interval apart: the oldest has left the window.
    let state = with_failures(&[at(0), at(900), at(1800)]);
    let status = policy.evaluate(&state, at(1800));
    assert!(!status.failure_locked);
    assert_eq!(status.failures, 1);

    // Many failures, each pair further apart than the interval allows.
    let times: Vec<_> = (0..20).map(|i| at(i * 451)).collect();
    let status = policy.evaluate(&with_failures(&times), at(20 * 451));
    assert!(!status.failure_locked);
    assert_eq!(status.failures, 1);

    // One microsecond less than the interval from first to last: locked.
    let tight = with_failures(&[at(0), at(450), at(900).saturating_sub(MICRO)]);
    let status = policy.evaluate(&tight, at(900));
    assert!(status.failure_locked);
    assert_eq!(status.failures, 3);
}

#[test]
fn failures_age_out_of_the_count() {
    let policy = timed();
    let state = with_failures(&[at(0), at(100)]);
    assert_eq!(policy.evaluate(&state, at(899)).failures, 2);
    assert_eq!(policy.evaluate(&state, at(900)).failures, 1);
    assert_eq!(policy.evaluate(&state, at(1000)).failures, 0);
}

#[test]
fn timed_lock_ends_at_the_microsecond() {
    let policy = timed();
    let state = with_failures(&[at(0), at(1), at(2)]);
    let until = at(602);

    let just_before = policy.evaluate(&state, until.saturating_sub(MICRO));
    assert!(just_before.locked);
    assert_eq!(just_before.locked_until, Some(until));
    assert_eq!(just_before.lapsed_lock_end, None);

    let at_end = policy.evaluate(&state, until);
    assert!(!at_end.locked);
    assert!(!at_end.failure_locked);
    assert_eq!(at_end.reason, None);
    assert_eq!(at_end.locked_until, None);
    assert_eq!(at_end.locked_since, None);
    assert_eq!(at_end.failures, 0);
    assert_eq!(at_end.lapsed_lock_end, Some(until));
}

#[test]
fn failures_during_a_timed_lock_extend_it() {
    let policy = timed();
    let state = with_failures(&[at(0), at(1), at(2), at(300)]);
    let status = policy.evaluate(&state, at(700));
    assert!(status.failure_locked);
    assert_eq!(status.locked_since, Some(at(2)));
    assert_eq!(status.locked_until, Some(at(900)));
    assert_eq!(status.failures, 4);
    assert!(!policy.evaluate(&state, at(900)).failure_locked);
}

#[test]
fn after_a_timed_lock_counting_starts_afresh() {
    let policy = timed();
    // Locked until 602; 700 and 701 are within 900 s of the first three but
    // come after the lock ran out, so they start a new count.
    let state = with_failures(&[at(0), at(1), at(2), at(700), at(701)]);
    let status = policy.evaluate(&state, at(701));
    assert!(!status.failure_locked);
    assert_eq!(status.failures, 2);
    assert_eq!(status.lapsed_lock_end, Some(at(602)));

    let state = with_failures(&[at(0), at(1), at(2), at(700), at(701), at(702)]);
    let status = policy.evaluate(&state, at(702));
    assert!(status.failure_locked);
    assert_eq!(status.locked_since, Some(at(702)));
    assert_eq!(status.locked_until, Some(at(1302)));
    assert_eq!(status.failures, 3);
    // The earlier lock's end is still reported while the new lock holds.
    assert_eq!(status.lapsed_lock_end, Some(at(602)));
}

#[test]
fn lapsed_lock_end_is_reported_only_after_a_timed_lock() {
    let state = with_failures(&[at(0), at(1), at(2)]);
    assert_eq!(timed().evaluate(&state, at(100)).lapsed_lock_end, None);
    assert_eq!(
        timed().evaluate(&state, at(100_000)).lapsed_lock_end,
        Some(at(602))
    );
    assert_eq!(never().evaluate(&state, at(100_000)).lapsed_lock_end, None);
    assert_eq!(
        timed()
            .evaluate(&with_failures(&[at(0), at(1)]), at(100_000))
            .lapsed_lock_end,
        None
    );
}

#[test]
fn never_stays_locked_a_year_later() {
    let policy = never();
    let state = with_failures(&[at(0), at(1), at(2)]);
    let a_year = 366 * 86_400;
    let status = policy.evaluate(&state, at(a_year));
    assert!(status.locked);
    assert!(status.failure_locked);
    assert!(status.until_reactivated());
    assert_eq!(status.locked_until, None);
    assert_eq!(status.locked_since, Some(at(2)));
    assert_eq!(status.failures, 3);
    assert_eq!(status.lapsed_lock_end, None);

    // Failures after the lock, even much later, are counted in it.
    let more = with_failures(&[at(0), at(1), at(2), at(a_year - 5)]);
    assert_eq!(policy.evaluate(&more, at(a_year)).failures, 4);
}

#[test]
fn reactivation_clears_the_lock() {
    for policy in [timed(), never()] {
        let mut state = with_failures(&[at(0), at(1), at(2)]);
        assert!(policy.evaluate(&state, at(3)).failure_locked);

        state.last_reactivation = Some(at(3));
        let status = policy.evaluate(&state, at(4));
        assert!(!status.locked);
        assert_eq!(status.failures, 0);
        assert_eq!(status.lapsed_lock_end, None);

        // Failures after the reactivation count afresh.
        state.failures.insert(failure(at(10), 10));
        state.failures.insert(failure(at(11), 11));
        let status = policy.evaluate(&state, at(11));
        assert!(!status.failure_locked);
        assert_eq!(status.failures, 2);
        state.failures.insert(failure(at(12), 12));
        let status = policy.evaluate(&state, at(12));
        assert!(status.failure_locked);
        assert_eq!(status.locked_since, Some(at(12)));
        assert_eq!(status.failures, 3);
    }
}

#[test]
fn reactivation_at_the_instant_of_the_last_failure_clears_it() {
    let mut state = with_failures(&[at(0), at(1), at(2)]);
    state.last_reactivation = Some(at(2));
    let status = never().evaluate(&state, at(2));
    assert!(!status.failure_locked);
    assert_eq!(status.failures, 0);
}

#[test]
fn success_clears_the_count_and_the_lock() {
    let policy = timed();
    let mut state = with_failures(&[at(0), at(1)]);
    state.last_success = Some(at(5));
    state.failures.insert(failure(at(6), 6));
    let status = policy.evaluate(&state, at(6));
    assert!(!status.failure_locked, "the success reset the count");
    assert_eq!(status.failures, 1);

    let mut locked = with_failures(&[at(0), at(1), at(2)]);
    locked.last_success = Some(at(2));
    let status = never().evaluate(&locked, at(3));
    assert!(!status.locked);
    assert_eq!(status.failures, 0);
}

#[test]
fn the_later_of_success_and_reactivation_is_the_reset_point() {
    let mut state = with_failures(&[at(0), at(10), at(20), at(30)]);
    state.last_success = Some(at(5));
    state.last_reactivation = Some(at(15));
    assert_eq!(state.reset_point(), Some(at(15)));
    let status = timed().evaluate(&state, at(30));
    assert_eq!(status.failures, 2);
    assert!(!status.failure_locked);
}

#[test]
fn disabled_beats_everything() {
    let mut state = UserState {
        last_disable: Some(at(0)),
        ..UserState::default()
    };
    let status = timed().evaluate(&state, at(1));
    assert!(status.locked);
    assert!(status.disabled);
    assert!(!status.failure_locked);
    assert_eq!(status.reason, Some(LockReason::Disabled));

    // A reactivation or a success does not enable a disabled account.
    state.last_reactivation = Some(at(5));
    state.last_success = Some(at(6));
    let status = timed().evaluate(&state, at(7));
    assert!(status.locked);
    assert_eq!(status.reason, Some(LockReason::Disabled));

    // Turning lockout off does not either.
    let off = LockoutPolicy {
        enabled: false,
        ..timed()
    };
    assert!(off.evaluate(&state, at(7)).locked);

    // Disabled and locked by failures: the reason is the disable, and both show.
    let mut both = with_failures(&[at(10), at(11), at(12)]);
    both.last_disable = Some(at(0));
    let status = timed().evaluate(&both, at(13));
    assert!(status.locked);
    assert!(status.disabled);
    assert!(status.failure_locked);
    assert_eq!(status.reason, Some(LockReason::Disabled));
    assert_eq!(status.locked_until, Some(at(612)));

    // Enabled later: no longer disabled.
    state.last_enable = Some(at(8));
    let status = timed().evaluate(&state, at(9));
    assert!(!status.locked);
    assert!(!status.disabled);
    assert_eq!(status.reason, None);

    // Disabled again after the enable.
    state.last_disable = Some(at(9));
    assert!(timed().evaluate(&state, at(9)).disabled);
}

#[test]
fn disable_and_enable_at_the_same_instant_stays_disabled() {
    let state = UserState {
        last_disable: Some(at(3)),
        last_enable: Some(at(3)),
        ..UserState::default()
    };
    assert!(state.is_disabled());
    let status = timed().evaluate(&state, at(4));
    assert!(status.locked);
    assert_eq!(status.reason, Some(LockReason::Disabled));
}

#[test]
fn enable_without_disable_is_not_disabled() {
    let state = UserState {
        last_enable: Some(at(3)),
        ..UserState::default()
    };
    assert!(!state.is_disabled());
    assert!(!timed().evaluate(&state, at(4)).locked);
}

#[test]
fn future_dated_failures_are_ignored_until_their_time() {
    let policy = timed();
    let now = at(100);
    let ahead = with_failures(&[
        now.saturating_add(MICRO),
        now.saturating_add(Duration::from_secs(1)),
        now.saturating_add(Duration::from_secs(2)),
    ]);
    let status = policy.evaluate(&ahead, now);
    assert!(!status.locked);
    assert_eq!(status.failures, 0);
    // Their time comes.
    assert!(policy.evaluate(&ahead, at(102)).failure_locked);

    let mixed = with_failures(&[at(90), now, now.saturating_add(MICRO)]);
    let status = policy.evaluate(&mixed, now);
    assert!(!status.failure_locked);
    assert_eq!(status.failures, 2);
    assert!(
        policy
            .evaluate(&mixed, now.saturating_add(MICRO))
            .failure_locked
    );
}

#[test]
fn future_dated_failures_do_not_extend_a_lock() {
    let policy = timed();
    let mut state = with_failures(&[at(0), at(1), at(2)]);
    state.failures.insert(failure(at(500), 99));
    // At 400 the failure at 500 has not happened yet: the lock ends at 602.
    assert_eq!(policy.evaluate(&state, at(400)).locked_until, Some(at(602)));
    assert_eq!(policy.evaluate(&state, at(400)).failures, 3);
    assert_eq!(
        policy.evaluate(&state, at(500)).locked_until,
        Some(at(1100))
    );
}

#[test]
fn lockout_turned_off_never_locks_by_failures() {
    let off = LockoutPolicy {
        enabled: false,
        ..never()
    };
    let times: Vec<_> = (0..100).map(at).collect();
    let state = with_failures(&times);
    let status = off.evaluate(&state, at(100));
    assert!(!status.locked);
    assert!(!status.failure_locked);
    assert_eq!(status.reason, None);
    assert_eq!(status.failures, 0);
    assert_eq!(status.locked_until, None);

    let zero = LockoutPolicy { deny: 0, ..never() };
    assert!(!zero.evaluate(&state, at(100)).locked);
}

#[test]
fn failures_in_the_same_microsecond_on_two_hosts_count_twice() {
    let policy = LockoutPolicy { deny: 2, ..timed() };
    let mut state = UserState::default();
    state.failures.insert(failure(at(0), 1));
    state.failures.insert(Failure {
        host: "web2".into(),
        ..failure(at(0), 1)
    });
    let status = policy.evaluate(&state, at(0));
    assert!(status.failure_locked);
    assert_eq!(status.failures, 2);
}

#[test]
fn no_state_no_lock() {
    let status = timed().evaluate(&UserState::default(), at(0));
    assert!(!status.locked);
    assert!(!status.disabled);
    assert_eq!(status.failures, 0);
    assert_eq!(status.lapsed_lock_end, None);
}

#[test]
fn extreme_times_do_not_overflow() {
    let policy = LockoutPolicy {
        unlock_after: UnlockAfter::After(Duration::from_secs(u64::MAX / 2)),
        fail_interval: Duration::from_secs(u64::MAX / 2),
        ..timed()
    };
    let top = with_failures(&[
        Timestamp(i64::MAX - 3),
        Timestamp(i64::MAX - 2),
        Timestamp(i64::MAX - 1),
    ]);
    let status = policy.evaluate(&top, Timestamp(i64::MAX - 1));
    assert!(status.failure_locked);
    assert_eq!(status.locked_until, Some(Timestamp(i64::MAX)));

    let bottom = with_failures(&[
        Timestamp(i64::MIN + 1),
        Timestamp(i64::MIN + 2),
        Timestamp(i64::MIN + 3),
    ]);
    let status = policy.evaluate(&bottom, Timestamp(i64::MIN + 3));
    assert!(status.failure_locked);
    assert_eq!(status.failures, 3);
}

#[test]
fn prune_keeps_only_failures_after_the_reset_point() {
    let mut state = with_failures(&[at(0), at(5), at(6), at(7)]);
    state.last_success = Some(at(5));
    state.prune();
    let left: Vec<_> = state.failures.iter().map(|f| f.time).collect();
    assert_eq!(left, vec![at(6), at(7)]);
}

#[test]
fn prune_keeps_the_newest_failures() {
    use deadbolt_core::state::MAX_FAILURES_KEPT;
    let extra = 100;
    let times: Vec<_> = (0..(MAX_FAILURES_KEPT + extra) as i64)
        .map(Timestamp)
        .collect();
    let mut state = with_failures(&times);
    state.prune();
    assert_eq!(state.failures.len(), MAX_FAILURES_KEPT);
    assert_eq!(
        state.failures.first().unwrap().time,
        Timestamp(extra as i64)
    );
    assert_eq!(state.failures.last().unwrap().time, *times.last().unwrap());
}

fn directory_locked_at(seen: Timestamp, value: Option<Timestamp>) -> UserState {
    UserState {
        directory_lock: Some(deadbolt_core::Stamped {
            set_at: seen,
            value,
        }),
        ..UserState::default()
    }
}

#[test]
fn a_directory_lock_refuses_without_any_failure_and_lasts() {
    let state = directory_locked_at(at(0), Some(at(-5)));
    for later in [at(1), at(86_400 * 365)] {
        let status = timed().evaluate(&state, later);
        assert!(status.locked && status.directory_locked && !status.failure_locked);
        assert!(status.locked_out());
        assert_eq!(status.reason, Some(LockReason::Directory));
        assert!(status
            .user_message(later)
            .unwrap()
            .contains("locked in the employee directory"));
    }
}

#[test]
fn a_directory_lock_ends_when_deleted_there_or_reactivated_after_it() {
    let mut state = directory_locked_at(at(0), Some(at(-5)));
    state.merge(&directory_locked_at(at(10), None));
    assert!(!timed().evaluate(&state, at(20)).locked);

    let mut reactivated = directory_locked_at(at(0), Some(at(-5)));
    reactivated.last_reactivation = Some(at(1));
    assert!(!timed().evaluate(&reactivated, at(20)).locked);

    // A reactivation older than the lock seen does not end it.
    let mut older = directory_locked_at(at(0), Some(at(-5)));
    older.last_reactivation = Some(at(-1));
    assert!(timed().evaluate(&older, at(20)).directory_locked);
}

#[test]
fn directory_lock_observations_merge_by_the_latest_seen_in_any_order() {
    let lock = directory_locked_at(at(0), Some(at(-5)));
    let unlock = directory_locked_at(at(10), None);
    let mut a = lock.clone();
    a.merge(&unlock);
    let mut b = unlock.clone();
    b.merge(&lock);
    assert_eq!(a, b);
    assert!(!a.is_directory_locked());
}
