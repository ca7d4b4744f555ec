//! `LockoutPolicy::evaluate` against a plain reference model of the lock,
//! written from design principle 3 and the `lockout` module documentation:
//! events are replayed one by one in time order through a small state machine,
//! where `evaluate` works from the merged state (a set of failures and the
//! latest of each reset time).
//!
//! Semantics the model encodes:
//! - at equal times a failure is processed before a reset: failures at or
//!   before the reset point never count;
//! - `deny` failures within `fail_interval` lock at the last of them;
//! - a timed lock runs until `unlock_after` past the latest failure counted
//!   during it, then counting starts afresh; `Never` lasts until a reset;
//! - failures dated after `now` are ignored until their time comes;
//! - a reset (reactivation or successful login) applies whatever its date:
//!   principle 3 counts the failures after max(last reactivation, last
//!   success), with no bound by `now`, and `UserState::prune` relies on it.

use deadbolt_core::lockout::LockReason;
use deadbolt_core::{Failure, LockoutPolicy, Timestamp, UnlockAfter, UserState};
use proptest::prelude::*;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
enum Event {
    Failure(i64),
    Success(i64),
    Reactivation(i64),
}

impl Event {
    fn time(self) -> i64 {
        match self {
            Event::Failure(t) | Event::Success(t) | Event::Reactivation(t) => t,
        }
    }

    fn is_reset(self) -> bool {
        !matches!(self, Event::Failure(_))
    }
}

/// The model's policy, in plain integers of one time unit.
#[derive(Clone, Copy, Debug)]
struct Policy {
    deny: usize,
    fail_interval: i64,
    /// `None`: never.
    unlock_after: Option<i64>,
}

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    locked: bool,
    /// `None` while locked: until reactivated.
    until: Option<i64>,
    since: Option<i64>,
    failures: usize,
    lapsed: Option<i64>,
}

fn model(policy: Policy, events: &[Event], now: i64) -> Outcome {
    let mut events = events.to_vec();
    // Failures (false) sort before resets (true) at the same time.
    events.sort_by_key(|e| (e.time(), e.is_reset()));

    let mut locked = false;
    let mut until: Option<i64> = None;
    let mut since: Option<i64> = None;
    let mut counted = 0usize;
    let mut window: Vec<i64> = Vec::new();
    let mut lapsed: Option<i64> = None;

    for event in events {
        match event {
            Event::Failure(t) => {
                if t > now {
                    continue;
                }
                if locked {
                    match until {
                        None => {
                            counted += 1;
                            continue;
                        }
                        Some(end) if t < end => {
                            counted += 1;
                            let extended = t + policy.unlock_after.expect("timed lock");
                            until = Some(end.max(extended));
                            continue;
                        }
                        Some(end) => {
                            locked = false;
                            until = None;
                            since = None;
                            lapsed = Some(end);
                            window.clear();
                        }
                    }
                }
                window.push(t);
                window.retain(|&w| w > t - policy.fail_interval);
                if window.len() >= policy.deny {
                    locked = true;
                    since = Some(t);
                    counted = window.len();
                    until = policy.unlock_after.map(|d| t + d);
                }
            }
            Event::Success(_) | Event::Reactivation(_) => {
                locked = false;
                until = None;
                since = None;
                counted = 0;
                lapsed = None;
                window.clear();
            }
        }
    }
    if locked {
        if let Some(end) = until {
            if now >= end {
                locked = false;
                until = None;
                since = None;
                lapsed = Some(end);
                window.clear();
            }
        }
    }
    let failures = if locked {
        counted
    } else {
        window
            .iter()
            .filter(|&&w| w > now - policy.fail_interval)
            .count()
    };
    Outcome {
        locked,
        until: if locked { until } else { None },
        since,
        failures,
        lapsed,
    }
}

/// The state the implementation sees after these events: every failure
/// (distinct, from a few hosts) and the latest of each reset.
fn state_of(events: &[Event], unit: i64) -> UserState {
    let mut state = UserState::default();
    for (i, event) in events.iter().enumerate() {
        let at = Timestamp(event.time() * unit);
        match *event {
            Event::Failure(_) => {
                state.failures.insert(Failure {
                    time: at,
                    host: format!("host{}", i % 3),
                    source: "192.0.2.1".into(),
                    service: "sshd".into(),
                    pid: u32::try_from(i).unwrap(),
                });
            }
            Event::Success(_) => state.last_success = state.last_success.max(Some(at)),
            Event::Reactivation(_) => {
                state.last_reactivation = state.last_reactivation.max(Some(at));
            }
        }
    }
    state
}

fn lockout_policy(policy: Policy, unit: i64) -> LockoutPolicy {
    let micros = |n: i64| Duration::from_micros(u64::try_from(n * unit).unwrap());
    LockoutPolicy {
        enabled: true,
        deny: u32::try_from(policy.deny).unwrap(),
        fail_interval: micros(policy.fail_interval),
        unlock_after: match policy.unlock_after {
            None => UnlockAfter::Never,
            Some(n) => UnlockAfter::After(micros(n)),
        },
    }
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        1usize..=5,
        1i64..=100,
        prop::option::weighted(0.7, 1i64..=100),
    )
        .prop_map(|(deny, fail_interval, unlock_after)| Policy {
            deny,
            fail_interval,
            unlock_after,
        })
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        8 => (0i64..300).prop_map(Event::Failure),
        1 => (0i64..300).prop_map(Event::Success),
        1 => (0i64..300).prop_map(Event::Reactivation),
    ]
}

/// Bursts of failures close together, so that locks, extensions and lapses
/// all happen within one sequence.
fn bursty_events() -> impl Strategy<Value = Vec<Event>> {
    (
        prop::collection::vec((0i64..300, 1usize..8, 0i64..6), 1..7),
        prop::collection::vec(event(), 0..6),
    )
        .prop_map(|(bursts, extra)| {
            let mut events = extra;
            for (start, count, gap) in bursts {
                for k in 0..count {
                    let t = start + gap * i64::try_from(k).unwrap();
                    events.push(Event::Failure(t.min(299)));
                }
            }
            events.truncate(40);
            events
        })
}

fn events() -> impl Strategy<Value = Vec<Event>> {
    prop_oneof![prop::collection::vec(event(), 0..=40), bursty_events()]
}

fn check(
    policy: Policy,
    events: &[Event],
    now: i64,
    unit: i64,
    disable: Option<i64>,
    enable: Option<i64>,
) -> Result<(), TestCaseError> {
    let expected = model(policy, events, now);
    let mut state = state_of(events, unit);
    state.last_disable = disable.map(|t| Timestamp(t * unit));
    state.last_enable = enable.map(|t| Timestamp(t * unit));
    let disabled = match (disable, enable) {
        (Some(d), Some(e)) => d >= e,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let status = lockout_policy(policy, unit).evaluate(&state, Timestamp(now * unit));
    let at = |t: Option<i64>| t.map(|t| Timestamp(t * unit));

    prop_assert_eq!(
        status.failure_locked,
        expected.locked,
        "failure_locked: {:?}",
        status
    );
    prop_assert_eq!(
        status.locked_until,
        at(expected.until),
        "locked_until: {:?}",
        status
    );
    prop_assert_eq!(
        status.locked_since,
        at(expected.since),
        "locked_since: {:?}",
        status
    );
    prop_assert_eq!(
        status.failures as usize,
        expected.failures,
        "failures: {:?}",
        status
    );
    prop_assert_eq!(
        status.lapsed_lock_end,
        at(expected.lapsed),
        "lapsed: {:?}",
        status
    );
    prop_assert_eq!(
        status.until_reactivated(),
        expected.locked && expected.until.is_none()
    );
    prop_assert_eq!(status.disabled, disabled);
    prop_assert_eq!(status.locked, disabled || expected.locked);
    let reason = if disabled {
        Some(LockReason::Disabled)
    } else if expected.locked {
        Some(LockReason::Failures)
    } else {
        None
    };
    prop_assert_eq!(status.reason, reason);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// Seconds as the unit, as in the field.
    #[test]
    fn evaluate_matches_the_model_in_seconds(
        policy in policy(),
        events in events(),
        now in 0i64..400,
        disable in prop::option::weighted(0.15, 0i64..400),
        enable in prop::option::weighted(0.15, 0i64..400),
    ) {
        check(policy, &events, now, 1_000_000, disable, enable)?;
    }

    /// Microseconds as the unit: every boundary is one tick wide.
    #[test]
    fn evaluate_matches_the_model_in_microseconds(
        policy in policy(),
        events in events(),
        now in 0i64..400,
    ) {
        check(policy, &events, now, 1, None, None)?;
    }

    /// The answer at `now` only depends on what happened up to `now`, plus
    /// resets: failures dated later are invisible.
    #[test]
    fn later_failures_do_not_change_the_answer(
        policy in policy(),
        events in events(),
        later in prop::collection::vec(1i64..100, 0..10),
        now in 0i64..300,
    ) {
        let unit = 1_000_000;
        let lp = lockout_policy(policy, unit);
        let before = lp.evaluate(&state_of(&events, unit), Timestamp(now * unit));
        let mut more = events.clone();
        more.extend(later.iter().map(|d| Event::Failure(now + d)));
        let after = lp.evaluate(&state_of(&more, unit), Timestamp(now * unit));
        prop_assert_eq!(before, after);
    }
}

fn secs_policy(deny: usize, fail_interval: i64, unlock_after: Option<i64>) -> Policy {
    Policy {
        deny,
        fail_interval,
        unlock_after,
    }
}

/// A few hand-checked sequences, so that the model itself is tested.
#[test]
fn the_model_on_known_sequences() {
    use Event::*;
    let p = secs_policy(3, 10, Some(5));
    // Three failures within 10 s lock at the third, until 5 s after it.
    let out = model(p, &[Failure(0), Failure(1), Failure(2)], 3);
    assert_eq!(
        out,
        Outcome {
            locked: true,
            until: Some(7),
            since: Some(2),
            failures: 3,
            lapsed: None
        }
    );
    // A failure during the lock extends it.
    let out = model(p, &[Failure(0), Failure(1), Failure(2), Failure(6)], 10);
    assert_eq!((out.locked, out.until, out.failures), (true, Some(11), 4));
    // At its end it is over.
    let out = model(p, &[Failure(0), Failure(1), Failure(2)], 7);
    assert_eq!((out.locked, out.lapsed, out.failures), (false, Some(7), 0));
    // After a lapse counting starts afresh.
    let seq = [Failure(0), Failure(1), Failure(2), Failure(8), Failure(9)];
    let out = model(p, &seq, 9);
    assert_eq!((out.locked, out.failures, out.lapsed), (false, 2, Some(7)));
    // A failure at the instant of a reset does not count.
    let out = model(p, &[Failure(0), Failure(1), Failure(2), Success(2)], 3);
    assert_eq!((out.locked, out.failures), (false, 0));
    // Spread by exactly the interval, failures never reach deny.
    let out = model(p, &[Failure(0), Failure(10), Failure(20)], 20);
    assert_eq!((out.locked, out.failures), (false, 1));
    // Never: still locked long after.
    let never = secs_policy(2, 10, None);
    let out = model(never, &[Failure(0), Failure(1), Failure(50)], 1_000);
    assert_eq!((out.locked, out.until, out.failures), (true, None, 3));
    let out = model(never, &[Failure(0), Failure(1), Reactivation(60)], 1_000);
    assert!(!out.locked);
    // A failure dated after now does not count yet.
    let out = model(p, &[Failure(0), Failure(1), Failure(5)], 4);
    assert_eq!((out.locked, out.failures), (false, 2));
}

#[test]
fn implementation_agrees_on_the_known_sequences() {
    use Event::*;
    let cases: &[(Policy, &[Event], i64)] = &[
        (
            secs_policy(3, 10, Some(5)),
            &[Failure(0), Failure(1), Failure(2)],
            3,
        ),
        (
            secs_policy(3, 10, Some(5)),
            &[Failure(0), Failure(1), Failure(2), Failure(6)],
            10,
        ),
        (
            secs_policy(3, 10, Some(5)),
            &[Failure(0), Failure(1), Failure(2), Failure(8), Failure(9)],
            9,
        ),
        (
            secs_policy(3, 10, Some(5)),
            &[Failure(0), Failure(1), Failure(2), Success(2)],
            3,
        ),
        (
            secs_policy(2, 10, None),
            &[Failure(0), Failure(1), Failure(50)],
            1_000,
        ),
        (
            secs_policy(2, 10, None),
            &[Failure(0), Failure(1), Reactivation(60)],
            1_000,
        ),
        // A reactivation dated after `now` still applies (see the module docs).
        (
            secs_policy(2, 10, None),
            &[Failure(0), Failure(1), Reactivation(60)],
            30,
        ),
    ];
    for (policy, events, now) in cases {
        check(*policy, events, *now, 1_000_000, None, None)
            .unwrap_or_else(|e| panic!("{policy:?} {events:?} at {now}: {e}"));
    }
}

/// The generators reach every kind of outcome often enough for the
/// properties above to mean something.
#[test]
fn the_generators_reach_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = (policy(), events(), 0i64..400);
    let (mut timed, mut never, mut extended, mut lapsed, mut counting, mut clear) =
        (0, 0, 0, 0, 0, 0);
    let samples = 4096;
    for _ in 0..samples {
        let (policy, events, now) = strategy.new_tree(&mut runner).unwrap().current();
        let out = model(policy, &events, now);
        match (out.locked, out.until) {
            (true, Some(_)) => timed += 1,
            (true, None) => never += 1,
            (false, _) if out.failures > 0 => counting += 1,
            (false, _) => clear += 1,
        }
        if out.locked && out.failures > policy.deny {
            extended += 1;
        }
        if out.lapsed.is_some() {
            lapsed += 1;
        }
    }
    let floor = samples / 50;
    for (what, n) in [
        ("timed locks", timed),
        ("locks until reactivated", never),
        ("locks with failures counted during them", extended),
        ("lapsed locks", lapsed),
        ("unlocked with failures counting", counting),
        ("unlocked with no failure counting", clear),
    ] {
        assert!(n >= floor, "only {n} of {samples} samples are {what}");
    }
}
