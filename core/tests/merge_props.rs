//! Design principle 3: states merge without conflicts. `UserState::merge` is a
//! union of sets and a max of times, so it must be commutative, associative
//! and idempotent, pruning must never change the derived lock, and the lock
//! derived from a merge must not depend on the order of the merge. Fields
//! written by a newer version are kept through all of it.

use deadbolt_core::state::{PasswordRecord, Stamped};
use deadbolt_core::{Failure, LockoutPolicy, Timestamp, UnlockAfter, UserState};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Times in a small range of whole seconds, so that failures, resets and
/// lock ends collide often.
fn time() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        4 => (0i64..40).prop_map(Timestamp::from_secs),
        1 => (0i64..40_000_000).prop_map(Timestamp),
    ]
}

fn failure() -> impl Strategy<Value = Failure> {
    (
        time(),
        prop::sample::select(vec!["web1", "web2", "db1"]),
        prop::sample::select(vec!["10.0.0.7", "tty1"]),
        prop::sample::select(vec!["sshd", "login"]),
        0u32..3,
    )
        .prop_map(|(time, host, source, service, pid)| Failure {
            time,
            host: host.to_owned(),
            source: source.to_owned(),
            service: service.to_owned(),
            pid,
        })
}

fn password_record() -> impl Strategy<Value = PasswordRecord> {
    (
        (0i64..10).prop_map(Timestamp::from_secs),
        prop::sample::select(vec![
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaDE",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaDI",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaDM",
        ]),
    )
        .prop_map(|(changed_at, phc)| PasswordRecord {
            changed_at,
            phc: phc.to_owned(),
        })
}

fn stamped_day() -> impl Strategy<Value = Option<Stamped<i64>>> {
    prop::option::of(
        (
            (0i64..5).prop_map(Timestamp::from_secs),
            prop::option::of(0i64..3),
        )
            .prop_map(|(set_at, value)| Stamped { set_at, value }),
    )
}

/// Fields a newer version might write: a few names, none of them known
/// here, with values that often differ between two states.
fn unknown_fields() -> impl Strategy<Value = BTreeMap<String, Value>> {
    prop::collection::btree_map(
        prop::sample::select(vec!["mfa_enrolled", "zz_future", "a_new_set"])
            .prop_map(str::to_owned),
        prop::sample::select(vec![
            json!(null),
            json!(true),
            json!(false),
            json!(1),
            json!(-1),
            json!(2.5),
            json!("x"),
            json!("y"),
            json!([1, 2]),
            json!([2]),
            json!({"at": 1, "by": "web1"}),
            json!({"at": 2}),
        ]),
        0..3,
    )
}

prop_compose! {
    fn user_state()(
        failures in prop::collection::btree_set(failure(), 0..12),
        times in (
            prop::option::of(time()),
            prop::option::of(time()),
            prop::option::of(time()),
            prop::option::of(time()),
            prop::option::of(time()),
            prop::option::of(time()),
            prop::option::of(time()),
        ),
        password_history in prop::collection::btree_set(password_record(), 0..4),
        expires_on in stamped_day(),
        directory_lock in prop::option::of(
            (time(), prop::option::of(time())).prop_map(|(set_at, value)| Stamped { set_at, value }),
        ),
        extra in unknown_fields(),
    ) -> UserState {
        let (
            last_reactivation,
            last_success,
            last_timed_unlock,
            last_disable,
            last_enable,
            last_admin_reset,
            last_password_change,
        ) = times;
        UserState {
            failures,
            last_reactivation,
            last_success,
            last_timed_unlock,
            last_disable,
            last_enable,
            last_admin_reset,
            last_password_change,
            password_history,
            expires_on,
            directory_lock,
            extra,
        }
    }
}

fn policy() -> impl Strategy<Value = LockoutPolicy> {
    (
        prop::bool::weighted(0.9),
        0u32..6,
        1u64..20,
        prop::option::of(1u64..30),
    )
        .prop_map(|(enabled, deny, interval, unlock)| LockoutPolicy {
            enabled,
            deny,
            fail_interval: Duration::from_secs(interval),
            unlock_after: match unlock {
                None => UnlockAfter::Never,
                Some(secs) => UnlockAfter::After(Duration::from_secs(secs)),
            },
        })
}

fn now() -> impl Strategy<Value = Timestamp> {
    (0i64..80).prop_map(Timestamp::from_secs)
}

fn merged(a: &UserState, b: &UserState) -> UserState {
    let mut out = a.clone();
    out.merge(b);
    out
}

fn pruned(state: &UserState) -> UserState {
    let mut out = state.clone();
    out.prune();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn merge_is_commutative(a in user_state(), b in user_state()) {
        prop_assert_eq!(merged(&a, &b), merged(&b, &a));
    }

    #[test]
    fn merge_is_associative(a in user_state(), b in user_state(), c in user_state()) {
        prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
    }

    #[test]
    fn merge_is_idempotent(a in user_state()) {
        prop_assert_eq!(merged(&a, &a), a.clone());
        prop_assert_eq!(merged(&a, &UserState::default()), a.clone());
        prop_assert_eq!(merged(&UserState::default(), &a), a);
    }

    /// A replay changes nothing: merging what was already merged in is a no-op.
    #[test]
    fn replaying_a_merge_changes_nothing(a in user_state(), b in user_state()) {
        let once = merged(&a, &b);
        prop_assert_eq!(merged(&once, &b), once.clone());
        prop_assert_eq!(merged(&once, &a), once);
    }

    /// The merge is a least upper bound: it keeps every failure and every
    /// record of both sides, and each time is the later one.
    #[test]
    fn merge_keeps_everything_of_both(a in user_state(), b in user_state()) {
        let m = merged(&a, &b);
        prop_assert!(a.failures.is_subset(&m.failures));
        prop_assert!(b.failures.is_subset(&m.failures));
        prop_assert_eq!(m.failures.len(), a.failures.union(&b.failures).count());
        prop_assert!(a.password_history.is_subset(&m.password_history));
        prop_assert!(b.password_history.is_subset(&m.password_history));
        prop_assert_eq!(m.last_reactivation, a.last_reactivation.max(b.last_reactivation));
        prop_assert_eq!(m.last_success, a.last_success.max(b.last_success));
        prop_assert_eq!(m.last_timed_unlock, a.last_timed_unlock.max(b.last_timed_unlock));
        prop_assert_eq!(m.last_disable, a.last_disable.max(b.last_disable));
        prop_assert_eq!(m.last_enable, a.last_enable.max(b.last_enable));
        prop_assert_eq!(m.last_admin_reset, a.last_admin_reset.max(b.last_admin_reset));
        prop_assert_eq!(
            m.last_password_change,
            a.last_password_change.max(b.last_password_change)
        );
        prop_assert_eq!(m.expires_on, a.expires_on.clone().max(b.expires_on.clone()));
        prop_assert_eq!(m.directory_lock, a.directory_lock.clone().max(b.directory_lock.clone()));
        // Every unknown field of either side is kept, with one of its values.
        let keys: Vec<&String> = a.extra.keys().chain(b.extra.keys()).collect();
        for key in keys {
            let value = m.extra.get(key);
            prop_assert!(value.is_some(), "{} lost", key);
            prop_assert!(
                a.extra.get(key) == value || b.extra.get(key) == value,
                "{} = {:?} comes from neither side",
                key,
                value
            );
        }
        prop_assert_eq!(
            m.extra.len(),
            a.extra.keys().chain(b.extra.keys()).collect::<std::collections::BTreeSet<_>>().len()
        );
    }

    #[test]
    fn prune_after_merge_keeps_the_derived_lock(
        a in user_state(),
        b in user_state(),
        policy in policy(),
        now in now(),
    ) {
        let m = merged(&a, &b);
        let p = pruned(&m);
        prop_assert_eq!(policy.evaluate(&p, now), policy.evaluate(&m, now));
        // Pruning only drops failures, and only those at or before the reset point.
        prop_assert!(p.failures.is_subset(&m.failures));
        let reset = m.reset_point();
        for dropped in m.failures.difference(&p.failures) {
            prop_assert!(reset.is_some_and(|r| dropped.time <= r));
        }
        prop_assert_eq!(pruned(&p), p);
    }

    /// Hosts prune before they store, then merge with each other: the lock
    /// must be the one of the merge of the unpruned states.
    #[test]
    fn pruning_each_side_before_merging_keeps_the_derived_lock(
        a in user_state(),
        b in user_state(),
        policy in policy(),
        now in now(),
    ) {
        let whole = merged(&a, &b);
        let from_pruned = merged(&pruned(&a), &pruned(&b));
        prop_assert_eq!(policy.evaluate(&from_pruned, now), policy.evaluate(&whole, now));
        prop_assert_eq!(pruned(&from_pruned), pruned(&whole));
    }

    #[test]
    fn derived_lock_is_independent_of_merge_order(
        (states, shuffled) in prop::collection::vec(user_state(), 1..6)
            .prop_flat_map(|states| (Just(states.clone()), Just(states).prop_shuffle())),
        policy in policy(),
        now in now(),
    ) {
        let fold = |list: &[UserState]| {
            list.iter().fold(UserState::default(), |mut acc, s| {
                acc.merge(s);
                acc
            })
        };
        let in_order = fold(&states);
        let other_order = fold(&shuffled);
        prop_assert_eq!(&in_order, &other_order);
        prop_assert_eq!(policy.evaluate(&in_order, now), policy.evaluate(&other_order, now));
        // Merging right to left gives the same answer too.
        let mut right_to_left = UserState::default();
        for s in states.iter().rev() {
            let mut next = s.clone();
            next.merge(&right_to_left);
            right_to_left = next;
        }
        prop_assert_eq!(policy.evaluate(&right_to_left, now), policy.evaluate(&in_order, now));
    }

    #[test]
    fn evaluate_of_merge_is_symmetric(
        a in user_state(),
        b in user_state(),
        policy in policy(),
        now in now(),
    ) {
        prop_assert_eq!(
            policy.evaluate(&merged(&a, &b), now),
            policy.evaluate(&merged(&b, &a), now)
        );
    }

    /// What the store writes is what it reads back.
    #[test]
    fn json_round_trip(a in user_state()) {
        let text = serde_json::to_string(&a).unwrap();
        let back: UserState = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, a);
    }
}

/// Two hosts hold different values of a field this version does not know:
/// both orders of the merge keep the same one, and nothing else changes.
#[test]
fn unknown_fields_merge_the_same_whichever_side_holds_them() {
    let mine = UserState {
        last_success: Some(Timestamp::from_secs(5)),
        extra: BTreeMap::from([
            ("mfa_enrolled".to_owned(), json!(false)),
            ("only_mine".to_owned(), json!([1])),
        ]),
        ..UserState::default()
    };
    let theirs = UserState {
        extra: BTreeMap::from([
            ("mfa_enrolled".to_owned(), json!(true)),
            ("only_theirs".to_owned(), json!({"a": 1})),
        ]),
        ..UserState::default()
    };
    let one_way = merged(&mine, &theirs);
    assert_eq!(one_way, merged(&theirs, &mine));
    assert_eq!(one_way.last_success, Some(Timestamp::from_secs(5)));
    // "true" sorts after "false".
    assert_eq!(one_way.extra["mfa_enrolled"], json!(true));
    assert_eq!(one_way.extra["only_mine"], json!([1]));
    assert_eq!(one_way.extra["only_theirs"], json!({"a": 1}));
    assert_eq!(one_way.extra.len(), 3);
    // A state holding only unknown fields still holds something.
    assert!(!theirs.is_empty());
    assert!(UserState::default().is_empty());
}

#[test]
fn the_same_failure_learnt_twice_counts_once() {
    let failure = Failure {
        time: Timestamp::from_secs(10),
        host: "web1".into(),
        source: "10.0.0.7".into(),
        service: "sshd".into(),
        pid: 42,
    };
    let mut local = UserState::default();
    local.failures.insert(failure.clone());
    let mut from_directory = UserState::default();
    from_directory.failures.insert(failure.clone());
    local.merge(&from_directory);
    assert_eq!(local.failures.len(), 1);

    // Another pid in the same microsecond on the same host is another failure.
    let mut other = from_directory.clone();
    other.failures.insert(Failure { pid: 43, ..failure });
    local.merge(&other);
    assert_eq!(local.failures.len(), 2);
}

#[test]
fn disable_and_enable_merge_by_latest() {
    let mut disabled = UserState {
        last_disable: Some(Timestamp::from_secs(10)),
        ..UserState::default()
    };
    let enabled_later = UserState {
        last_enable: Some(Timestamp::from_secs(20)),
        ..UserState::default()
    };
    let mut other_way = enabled_later.clone();
    other_way.merge(&disabled);
    disabled.merge(&enabled_later);
    assert_eq!(disabled, other_way);
    assert!(!disabled.is_disabled());

    let same_instant = UserState {
        last_disable: Some(Timestamp::from_secs(20)),
        ..UserState::default()
    };
    disabled.merge(&same_instant);
    assert!(
        disabled.is_disabled(),
        "a tie between disable and enable stays disabled"
    );
}
