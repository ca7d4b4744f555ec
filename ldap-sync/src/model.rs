//! The directory's side of a user's state, and what a host must write so
//! that the directory lacks nothing it knows (principle 4's anti-entropy).
//!
//! A user's state in the directory is spread over his employee entry
//! (reactivations, disables, enables: written by people; ppolicy's
//! `pwdAccountLockedTime`) and one `deadboltHostRecord` child entry per host
//! (that host's failures and successful logins: written by that host alone).
//! Every attribute of ours is a grow-only set read back as a union or a
//! maximum, so writes through different providers merge, and no host ever
//! writes an entry another host writes.

use crate::encoding::{self, ValueError};
use deadbolt_core::state::MAX_FAILURES_KEPT;
use deadbolt_core::{
    Failure, LockoutPolicy, PasswordRecord, Stamped, Timestamp, UserName, UserState,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// An employee entry, as the sync stream last showed it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserEntry {
    pub dn: String,
    pub reactivated: BTreeSet<String>,
    pub disabled: BTreeSet<String>,
    pub enabled: BTreeSet<String>,
    /// `pwdAccountLockedTime`, as written.
    pub locked_time: Option<String>,
    /// ppolicy's `pwdReset: TRUE`: the password was set by someone else
    /// (an administrator, a manager, the welcome kit) and must change.
    pub pwd_reset: bool,
    /// ppolicy's `pwdChangedTime`: the directory's own time of the last
    /// password change, whoever made it.
    pub pwd_changed: Option<String>,
    /// `shadowExpire`, days since 1970-01-01: the departure date.
    pub shadow_expire: Option<String>,
    /// ppolicy's `pwdEndTime`: from then on the password is refused.
    pub pwd_end: Option<String>,
    /// The directory's time of the entry's last change (from `entryCSN`).
    pub changed_at: Option<Timestamp>,
}

/// One host's record under an employee entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostRecord {
    pub host: String,
    pub failures: BTreeSet<String>,
    pub logins: BTreeSet<String>,
    /// Former passwords as argon2id hashes (`deadboltPassword`).
    pub passwords: BTreeSet<String>,
    pub changed_at: Option<Timestamp>,
}

/// A value of the directory that was not used, and why; logged by the
/// caller with the entry, never with the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub attribute: &'static str,
    pub host: Option<String>,
    pub why: String,
}

/// What the directory knows of a user, as a state the core merges.
///
/// Values dated more than `max_skew` after the change that carries them
/// come from a host or person whose clock runs ahead: they are skipped, so
/// that a fast clock can neither lock anyone early nor reactivate anyone
/// ahead of time.
pub fn directory_state(
    entry: &UserEntry,
    records: &BTreeMap<String, HostRecord>,
    max_skew: Duration,
) -> (UserState, Vec<Skipped>) {
    let mut state = UserState::default();
    let mut check = Plausible {
        max_skew,
        skipped: Vec::new(),
    };
    let latest = |check: &mut Plausible, attribute, values: &BTreeSet<String>| {
        values
            .iter()
            .filter_map(|v| {
                let parsed = encoding::parse_time_value(v);
                check.time(attribute, None, entry.changed_at, parsed)
            })
            .max()
    };
    state.last_reactivation = latest(&mut check, "deadboltReactivated", &entry.reactivated);
    state.last_disable = latest(&mut check, "deadboltDisabled", &entry.disabled);
    state.last_enable = latest(&mut check, "deadboltEnabled", &entry.enabled);
    for record in records.values() {
        let host = Some(record.host.as_str());
        for value in &record.failures {
            match encoding::parse_failure(value, &record.host) {
                Ok(failure) => {
                    let time = Ok(failure.time);
                    if check
                        .time("deadboltFailure", host, record.changed_at, time)
                        .is_some()
                    {
                        state.failures.insert(failure);
                    }
                }
                Err(e) => {
                    check.time("deadboltFailure", host, None, Err(e));
                }
            }
        }
        let login = record
            .logins
            .iter()
            .filter_map(|v| {
                let parsed = encoding::parse_time_value(v);
                check.time("deadboltLogin", host, record.changed_at, parsed)
            })
            .max();
        state.last_success = state.last_success.max(login);
        for value in &record.passwords {
            let parsed = encoding::parse_password(value);
            let time = parsed.as_ref().map(|r| r.changed_at).map_err(Clone::clone);
            if check
                .time("deadboltPassword", host, record.changed_at, time)
                .is_some()
            {
                if let Ok(former) = parsed {
                    state.password_history.insert(former);
                }
            }
        }
    }
    // The directory's own time of the last change is the truth where
    // ppolicy keeps one: a host cannot push it later, and it counts changes
    // made by other applications too. Without ppolicy, the hosts' records
    // of the changes they made date them.
    let changed = entry.pwd_changed.as_deref().and_then(|v| {
        let parsed = encoding::parse_time_value(v);
        check.time("pwdChangedTime", None, entry.changed_at, parsed)
    });
    state.last_password_change = changed.or_else(|| {
        state
            .password_history
            .iter()
            .map(|r: &PasswordRecord| r.changed_at)
            .max()
    });
    if let (Some(day), Some(set_at)) = (departure_day(entry, &mut check), entry.changed_at) {
        state.expires_on = Some(Stamped {
            set_at,
            value: Some(day),
        });
    }
    // A record can hold any number of values: keep what a state keeps (a
    // larger one would not fit the store's bound on a file, and be set
    // aside as corrupt by whoever read it next).
    let seen = state.failures.len();
    state.prune();
    if seen > MAX_FAILURES_KEPT {
        check.skipped.push(Skipped {
            attribute: "deadboltFailure",
            host: None,
            why: format!(
                "{} of {seen} failures, the oldest, were dropped: a state keeps \
                 {MAX_FAILURES_KEPT}",
                seen - state.failures.len()
            ),
        });
    }
    let skipped = check.skipped;
    (state, skipped)
}

/// The day the account ends: the earlier of `shadowExpire` and the day of
/// `pwdEndTime` (whose refusal starts during that day: the whole day is
/// refused rather than part of it allowed).
fn departure_day(entry: &UserEntry, check: &mut Plausible) -> Option<i64> {
    let shadow =
        entry
            .shadow_expire
            .as_deref()
            .and_then(|v| match encoding::parse_shadow_expire(v) {
                Ok(day) => day,
                Err(e) => {
                    check.time("shadowExpire", None, None, Err(e));
                    None
                }
            });
    let end = entry.pwd_end.as_deref().and_then(|v| {
        encoding::parse_time_value(v)
            .map_err(|e| check.time("pwdEndTime", None, None, Err(e)))
            .ok()
            .map(|t| t.as_micros().div_euclid(86_400 * 1_000_000))
    });
    match (shadow, end) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The time of a reset the entry shows (`pwdReset: TRUE`) and `known` does
/// not hold yet, dated so that it is after every change `known` or the
/// directory has seen: the next login on this host must change the
/// password. `None` when there is none, or `known` already holds it.
///
/// A reset is new when `known` has no reset since the last password change
/// (the directory's or this host's): a new temporary password moves
/// `pwdChangedTime` on, so a kit sent again starts its validity again,
/// while a later unrelated change of the entry does not.
pub fn reset_seen(entry: &UserEntry, known: &UserState) -> Option<Timestamp> {
    if !entry.pwd_reset {
        return None;
    }
    let changed_at = entry.changed_at?;
    let directory_change = entry
        .pwd_changed
        .as_deref()
        .and_then(|v| encoding::parse_time_value(v).ok());
    let floor = directory_change.max(known.last_password_change);
    if known
        .last_admin_reset
        .is_some_and(|reset| Some(reset) >= floor)
    {
        return None;
    }
    Some(floor.map_or(changed_at, |f| f.max(changed_at)))
}

/// The time of the change that answered a reset `known` still holds, when
/// the entry shows the answer: `pwdReset` gone, and `pwdChangedTime` in the
/// reset's second or later. ppolicy dates a change to the second only, so
/// the entry's own change time (`entryCSN`, the modification that set the
/// password and cleared `pwdReset` at once) dates it instead.
pub fn reset_answered(entry: &UserEntry, known: &UserState) -> Option<Timestamp> {
    if entry.pwd_reset {
        return None;
    }
    let reset = known.last_admin_reset?;
    if known
        .last_password_change
        .is_some_and(|changed| changed > reset)
    {
        return None;
    }
    let changed = entry
        .pwd_changed
        .as_deref()
        .and_then(|v| encoding::parse_time_value(v).ok())?;
    let reset_second = Timestamp(reset.as_micros() - reset.as_micros().rem_euclid(1_000_000));
    let at = entry.changed_at?;
    (changed >= reset_second && at > reset).then_some(at)
}

/// The departure date's removal, when the entry has none and `known` still
/// holds one set before the entry's last change: with a directory, the
/// directory says whether an account has a departure date.
pub fn departure_removed(entry: &UserEntry, known: &UserState) -> Option<Stamped<i64>> {
    if entry.shadow_expire.is_some() || entry.pwd_end.is_some() {
        return None;
    }
    let changed_at = entry.changed_at?;
    let set = known.expires_on.as_ref()?;
    (set.value.is_some() && set.set_at < changed_at).then_some(Stamped {
        set_at: changed_at,
        value: None,
    })
}

struct Plausible {
    max_skew: Duration,
    skipped: Vec<Skipped>,
}

impl Plausible {
    fn time(
        &mut self,
        attribute: &'static str,
        host: Option<&str>,
        changed_at: Option<Timestamp>,
        parsed: Result<Timestamp, ValueError>,
    ) -> Option<Timestamp> {
        let why = match parsed {
            Err(e) => e.to_string(),
            Ok(t) => match changed_at {
                Some(changed) if t > changed.saturating_add(self.max_skew) => format!(
                    "dated {} after the change that wrote it, more than max_clock_skew",
                    deadbolt_config::format_duration(changed.until(t))
                ),
                _ => return Some(t),
            },
        };
        self.skipped.push(Skipped {
            attribute,
            host: host.map(str::to_owned),
            why,
        });
        None
    }
}

/// What a lock seen in `pwdAccountLockedTime` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// deadbolt's own lock, mirrored there by the host that reached it: its
    /// time is that of a failure deadbolt knows.
    Ours,
    /// A lock the directory set by itself or someone set by hand.
    Foreign(Timestamp),
}

/// Classifies `value` against what is known: ours when it names the second
/// of a known failure, as the host that mirrors a lock writes it.
pub fn classify_lock(value: &str, known: &UserState, changed_at: Timestamp) -> LockKind {
    let ours = known
        .failures
        .iter()
        .any(|f| encoding::format_seconds(f.time) == value);
    if ours {
        LockKind::Ours
    } else {
        // `000001010000Z` (locked for good) and other forms without seconds
        // date the lock by the change that set it.
        LockKind::Foreign(encoding::parse_time(value).unwrap_or(changed_at))
    }
}

/// The state fragment that records a foreign lock seen at `changed_at`.
pub fn foreign_lock(at: Timestamp, changed_at: Timestamp) -> UserState {
    UserState {
        directory_lock: Some(Stamped {
            set_at: changed_at,
            value: Some(at),
        }),
        ..UserState::default()
    }
}

/// The state fragment that records the deletion of `pwdAccountLockedTime`,
/// seen in a change the directory made at `changed_at`: a reactivation.
pub fn lock_deleted(changed_at: Timestamp) -> UserState {
    UserState {
        last_reactivation: Some(changed_at),
        directory_lock: Some(Stamped {
            set_at: changed_at,
            value: None,
        }),
        ..UserState::default()
    }
}

/// One host's write for one user: a single modify (or add) of its own
/// record, computed against what the provider it talks to holds. No
/// permissive-modify control: with delta-syncrepl a no-op write that
/// succeeds is still logged, and its replay on the other provider (adding a
/// value already there) knocks that provider's replication into a full
/// refresh, which can lose concurrent writes. A push that meets a value
/// already there (or one already gone) is refused whole instead, changes
/// nothing, and is planned again from a fresh read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Push {
    pub create_record: bool,
    pub add_failures: Vec<String>,
    pub delete_failures: Vec<String>,
    pub add_logins: Vec<String>,
    pub delete_logins: Vec<String>,
    pub add_passwords: Vec<String>,
    pub delete_passwords: Vec<String>,
    /// Add `pwdAccountLockedTime` with this value to the employee entry.
    pub lock: Option<String>,
}

impl Push {
    pub fn is_empty(&self) -> bool {
        self.record_is_unchanged() && self.lock.is_none()
    }

    pub fn record_is_unchanged(&self) -> bool {
        !self.create_record
            && self.add_failures.is_empty()
            && self.delete_failures.is_empty()
            && self.add_logins.is_empty()
            && self.delete_logins.is_empty()
            && self.add_passwords.is_empty()
            && self.delete_passwords.is_empty()
    }

    /// How many of this host's records the directory still lacks.
    pub fn pending(&self) -> usize {
        self.add_failures.len() + self.add_logins.len() + self.add_passwords.len()
    }
}

/// What host `me` must write so that the directory holds what it knows of
/// `user`. `local` is the host's state with the directory's already merged
/// in (inbound changes go through the core's merge first).
///
/// Only this host's own records are pushed: what other hosts saw is theirs
/// to push. Its failures at or before the reset point the directory will
/// hold after this write are deleted from its record: they can never count
/// again anywhere, so deleting them changes no derived lock. A reactivation
/// made by deleting `pwdAccountLockedTime` by hand leaves no reset point in
/// the directory, only the absence of a lock; every host that sees the
/// deletion takes it as one, and deletes its own failures before it, so
/// that a host that reads the directory later (a new host, a lost state)
/// does not count them again and lock the employee. Of its login times
/// only the latest is kept.
///
/// Former passwords are pushed by whichever host has one the directory
/// lacks (`elsewhere` holds the other hosts' `deadboltPassword` values), so
/// a change made while the directory was away still reaches it; a host
/// deletes from its record those its history no longer keeps.
#[allow(clippy::too_many_arguments)]
pub fn plan_push(
    me: &str,
    local: &UserState,
    entry: &UserEntry,
    mine: Option<&HostRecord>,
    others_login: Option<Timestamp>,
    elsewhere: &BTreeSet<String>,
    policy: &LockoutPolicy,
    now: Timestamp,
) -> Push {
    let empty = HostRecord::default();
    let record = mine.unwrap_or(&empty);
    let mut push = Push::default();

    let directory_login = record
        .logins
        .iter()
        .filter_map(|v| encoding::parse_time_value(v).ok())
        .max()
        .max(others_login);
    let login_to_add = local.last_success.filter(|&t| Some(t) > directory_login);
    if let Some(t) = login_to_add {
        push.add_logins.push(encoding::format_time(t));
    }
    let kept_login = login_to_add.map(encoding::format_time).or_else(|| {
        record
            .logins
            .iter()
            .filter(|v| encoding::parse_time_value(v).is_ok())
            .max_by_key(|v| encoding::parse_time_value(v).ok())
            .cloned()
    });
    push.delete_logins = record
        .logins
        .iter()
        .filter(|v| encoding::parse_time_value(v).is_ok() && Some(*v) != kept_login.as_ref())
        .cloned()
        .collect();

    let reactivated = entry
        .reactivated
        .iter()
        .filter_map(|v| encoding::parse_time_value(v).ok())
        .max();
    let lock_deleted = local
        .directory_lock
        .as_ref()
        .filter(|lock| lock.value.is_none())
        .map(|lock| lock.set_at);
    let reset_after = reactivated
        .max(local.last_success.max(directory_login))
        .max(lock_deleted);

    let in_directory: BTreeSet<&String> = record.failures.iter().collect();
    let mut added: BTreeSet<&Failure> = BTreeSet::new();
    for failure in local.failures.iter().filter(|f| f.host == me) {
        if reset_after.is_some_and(|r| failure.time <= r) {
            continue;
        }
        let value = encoding::format_failure(failure);
        if !in_directory.contains(&value) {
            push.add_failures.push(value);
            added.insert(failure);
        }
    }
    // A full local state has dropped its oldest failures (the bound of
    // MAX_FAILURES_KEPT); those older than every failure it still keeps are
    // dropped from this host's record too, so the record stays as bounded
    // as the state every host derives the lock from.
    let dropped_before = (local.failures.len() >= MAX_FAILURES_KEPT)
        .then(|| local.failures.first().map(|f| f.time))
        .flatten();
    push.delete_failures = record
        .failures
        .iter()
        .filter(|v| {
            encoding::parse_failure(v, me).is_ok_and(|f| {
                reset_after.is_some_and(|r| f.time <= r)
                    || dropped_before.is_some_and(|oldest| f.time < oldest)
            })
        })
        .cloned()
        .collect();

    let kept: BTreeSet<String> = local
        .password_history
        .iter()
        .filter_map(encoding::format_password)
        .collect();
    push.add_passwords = kept
        .iter()
        .filter(|v| !record.passwords.contains(*v) && !elsewhere.contains(*v))
        .cloned()
        .collect();
    push.delete_passwords = record
        .passwords
        .iter()
        .filter(|v| !kept.contains(*v))
        .cloned()
        .collect();

    if entry.locked_time.is_none() {
        let status = policy.evaluate(local, now);
        if status.failure_locked {
            let completes_lock = added.iter().any(|f| Some(f.time) == status.locked_since);
            if completes_lock {
                push.lock = status.locked_since.map(encoding::format_seconds);
            }
        }
    }
    push.create_record = mine.is_none() && !push.record_is_unchanged();
    push
}

/// `record` as it is once `push` is applied.
pub fn applied(record: &HostRecord, push: &Push) -> HostRecord {
    let mut after = record.clone();
    for v in &push.delete_failures {
        after.failures.remove(v);
    }
    for v in &push.delete_logins {
        after.logins.remove(v);
    }
    for v in &push.delete_passwords {
        after.passwords.remove(v);
    }
    after.failures.extend(push.add_failures.iter().cloned());
    after.logins.extend(push.add_logins.iter().cloned());
    after.passwords.extend(push.add_passwords.iter().cloned());
    after
}

/// The user a directory entry's naming attribute names, when it is a name
/// the store accepts.
pub fn user_of(value: &str) -> Option<UserName> {
    UserName::parse(value).ok()
}

#[cfg(test)]
mod tests;
