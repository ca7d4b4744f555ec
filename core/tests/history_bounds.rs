//! Properties of the history's bounds: whatever parameters an entry names,
//! the comparison either computes it (and then finds the password it holds)
//! or ignores it for the first bound it breaks, without computing anything.
//! An entry past the bounds that were computed would run for minutes to
//! days here, so a run that ends has not computed one.
#![forbid(unsafe_code)]

use deadbolt_core::password::{
    HashParams, HistoryVerdict, PasswordHistory, Unusable, MAX_HASH_ITERATIONS,
    MAX_HASH_MEMORY_KIB, MAX_HASH_PARALLELISM, MAX_HASH_WORK,
};
use deadbolt_core::state::PasswordRecord;
use deadbolt_core::{Timestamp, UserState};
use proptest::prelude::*;
use std::time::{Duration, Instant};

fn history(phcs: &[&str]) -> UserState {
    let mut state = UserState::default();
    for (i, phc) in phcs.iter().enumerate() {
        state.password_history.insert(PasswordRecord {
            changed_at: Timestamp::from_secs(i as i64 + 1),
            phc: (*phc).to_owned(),
        });
    }
    state
}

fn check(state: &UserState, password: &[u8]) -> deadbolt_core::password::HistoryCheck {
    let start = Instant::now();
    PasswordHistory::check(
        state,
        password,
        400,
        start + Duration::from_secs(1),
        &|| start,
    )
}

/// The bound `params` break first, in the order they are checked.
fn expected(params: HashParams) -> Option<Unusable> {
    let HashParams {
        memory_kib,
        iterations,
        parallelism,
    } = params;
    if memory_kib > MAX_HASH_MEMORY_KIB {
        Some(Unusable::Memory(memory_kib))
    } else if iterations > MAX_HASH_ITERATIONS {
        Some(Unusable::Iterations(iterations))
    } else if parallelism > MAX_HASH_PARALLELISM {
        Some(Unusable::Lanes(parallelism))
    } else if u64::from(memory_kib) * u64::from(iterations) > MAX_HASH_WORK {
        Some(Unusable::Work {
            memory_kib,
            iterations,
        })
    } else {
        None
    }
}

/// Parameters past at least one bound, argon2-valid otherwise (8 KiB per
/// lane, one pass at least), so that only the bounds can refuse them.
fn beyond_bounds() -> impl Strategy<Value = HashParams> {
    prop_oneof![
        (MAX_HASH_MEMORY_KIB + 1..=u32::MAX, 1..=u32::MAX, 1u32..=64),
        (
            8 * 64..=u32::MAX,
            MAX_HASH_ITERATIONS + 1..=u32::MAX,
            1u32..=64
        ),
        (
            8 * 0xff_ffff..=u32::MAX,
            1..=u32::MAX,
            MAX_HASH_PARALLELISM + 1..=0xff_ffff
        ),
        // Each alone within its bound, the product past the budget.
        (
            (MAX_HASH_WORK / u64::from(MAX_HASH_ITERATIONS)) as u32 + 1..=MAX_HASH_MEMORY_KIB,
            3..=MAX_HASH_ITERATIONS,
            1u32..=64
        )
            .prop_filter("past the budget", |&(m, t, _)| {
                u64::from(m) * u64::from(t) > MAX_HASH_WORK
            }),
    ]
    .prop_map(|(memory_kib, iterations, parallelism)| HashParams {
        memory_kib,
        iterations,
        parallelism,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn an_entry_past_a_bound_is_ignored_for_that_bound(params in beyond_bounds()) {
        let why = expected(params).expect("the strategy breaks a bound");
        prop_assert_eq!(params.within_bounds(), Err(why));
        prop_assert!(params.hash(b"pw").is_err());
        let entry = format!(
            "$argon2id$v=19$m={},t={},p={}$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA",
            params.memory_kib, params.iterations, params.parallelism
        );
        let result = check(&history(&[&entry]), b"pw");
        prop_assert_eq!(&result.ignored, &vec![why]);
        prop_assert_eq!(result.verdict(), HistoryVerdict::NotReused);
    }

    #[test]
    fn an_entry_within_the_bounds_is_computed(
        lanes in 1u32..=4,
        extra_kib in 0u32..32,
        iterations in 1u32..=3,
        password in proptest::collection::vec(any::<u8>(), 1..40),
    ) {
        let params = HashParams {
            memory_kib: 8 * lanes + extra_kib,
            iterations,
            parallelism: lanes,
        };
        prop_assert_eq!(expected(params), None);
        let phc = params.hash(&password).unwrap();
        let state = history(&[&phc]);
        prop_assert_eq!(check(&state, &password).verdict(), HistoryVerdict::Reused);
        let mut other = password.clone();
        other.push(b'!');
        let result = check(&state, &other);
        prop_assert_eq!(result.verdict(), HistoryVerdict::NotReused);
        prop_assert!(result.ignored.is_empty());
    }
}
