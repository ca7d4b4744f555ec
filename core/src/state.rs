//! A user's mergeable state (design principle 3).
//!
//! Every field is either a set that grows by union (failures, password history)
//! or a time where the latest wins. [`UserState::merge`] is therefore
//! commutative, associative and idempotent: hosts and directory replicas that
//! have seen the same events agree, whatever order the events arrived in.
//!
//! Fields written by a newer version are kept as they are (see
//! [`UserState::extra`]), so that an older host updating a state does not
//! lose what a newer one recorded, nor take the state for a corrupt one.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// How many failures a state keeps at most. Attempts made while locked are not
/// recorded, so a real user never comes near this; the bound only stops a
/// flood from growing a file without end. The newest failures are kept.
pub const MAX_FAILURES_KEPT: usize = 1024;

/// One failed authentication. Its fields together identify it, so the same
/// failure learnt twice (from the directory and locally) is kept once.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Failure {
    pub time: Timestamp,
    /// The host that saw the failure.
    pub host: String,
    /// Where the attempt came from: the remote host, else the terminal.
    pub source: String,
    /// The PAM service (sshd, login, sudo...).
    pub service: String,
    /// Separates two failures in the same microsecond on the same host.
    pub pid: u32,
}

/// One password formerly used, as an argon2id PHC string, never the password.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PasswordRecord {
    pub changed_at: Timestamp,
    pub phc: String,
}

/// A value that may be replaced later, with the time it was set so the latest
/// setting wins on merge. `value: None` records a deliberate clearing.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamped<T> {
    pub set_at: Timestamp,
    pub value: Option<T>,
}

/// Everything deadbolt knows about one user. The lock is not stored here: it
/// is derived by [`crate::lockout::LockoutPolicy::evaluate`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserState {
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub failures: BTreeSet<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reactivation: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<Timestamp>,
    /// The end of the latest lock that ran out by itself and was logged as a
    /// timed unlock. Only keeps the unlock from being logged twice: the lock
    /// itself is derived from the failures alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_timed_unlock: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_disable: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_enable: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_admin_reset: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_password_change: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub password_history: BTreeSet<PasswordRecord>,
    /// The departure date, in days since 1970-01-01 (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_on: Option<Stamped<i64>>,
    /// A lock the directory holds by itself (ppolicy's `pwdAccountLockedTime`,
    /// set by failed LDAP binds or by hand), as last seen there: `set_at` is
    /// the directory's time of the entry seen, `value` the lock's time, or
    /// `None` once the lock was deleted. Locks deadbolt derived from failures
    /// and mirrored to the directory are not recorded here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_lock: Option<Stamped<Timestamp>>,
    /// Fields this version does not know, as a newer version wrote them:
    /// kept as they are and written back with the state, so that a state is
    /// neither refused as corrupt nor stripped of them when an older host
    /// updates it. Never holds the name of one of the fields above (reading
    /// puts those in their own field; a key set here by hand would be
    /// written twice).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

fn latest<T: Ord + Clone>(a: &Option<T>, b: &Option<T>) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(std::cmp::max(x, y).clone()),
        (Some(x), None) | (None, Some(x)) => Some(x.clone()),
        (None, None) => None,
    }
}

/// Folds `theirs` into `mine`: a union of the keys. On a key both hold with
/// different values, the value whose JSON text sorts last wins, whichever
/// side it came from. This is not the merge a newer version may define for
/// the field (it cannot be known here), but it keeps every field, and as a
/// maximum under a total order it is commutative, associative and
/// idempotent like the rest of [`UserState::merge`]. (Letting `mine` win
/// would make `a.merge(b)` and `b.merge(a)` differ.)
fn merge_unknown(
    mine: &mut BTreeMap<String, serde_json::Value>,
    theirs: &BTreeMap<String, serde_json::Value>,
) {
    for (key, value) in theirs {
        match mine.get_mut(key) {
            None => {
                mine.insert(key.clone(), value.clone());
            }
            Some(current) => {
                if json_order(value, current) == Ordering::Greater {
                    *current = value.clone();
                }
            }
        }
    }
}

/// A total order on JSON values: that of their compact text. serde_json
/// writes an object's keys sorted and each number in one way, so equal
/// values have equal texts, and the order is the same on every host.
fn json_order(a: &serde_json::Value, b: &serde_json::Value) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    a.to_string().cmp(&b.to_string())
}

impl UserState {
    /// Folds `other` into `self`: a union of sets and the latest of each time
    /// (and, for fields this version does not know, a union of them: see
    /// [`UserState::extra`]).
    pub fn merge(&mut self, other: &UserState) {
        self.failures.extend(other.failures.iter().cloned());
        self.last_reactivation = latest(&self.last_reactivation, &other.last_reactivation);
        self.last_success = latest(&self.last_success, &other.last_success);
        self.last_timed_unlock = latest(&self.last_timed_unlock, &other.last_timed_unlock);
        self.last_disable = latest(&self.last_disable, &other.last_disable);
        self.last_enable = latest(&self.last_enable, &other.last_enable);
        self.last_admin_reset = latest(&self.last_admin_reset, &other.last_admin_reset);
        self.last_password_change = latest(&self.last_password_change, &other.last_password_change);
        self.password_history
            .extend(other.password_history.iter().cloned());
        self.expires_on = latest(&self.expires_on, &other.expires_on);
        self.directory_lock = latest(&self.directory_lock, &other.directory_lock);
        merge_unknown(&mut self.extra, &other.extra);
    }

    /// Failures at or before this instant never count again.
    pub fn reset_point(&self) -> Option<Timestamp> {
        latest(&self.last_reactivation, &self.last_success)
    }

    /// Disabled by an administrator and not enabled since. A disable and an
    /// enable at the same instant leave the account disabled: fail safe.
    pub fn is_disabled(&self) -> bool {
        match (self.last_disable, self.last_enable) {
            (Some(disabled), Some(enabled)) => disabled >= enabled,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// Locked by the directory itself and neither unlocked there nor
    /// reactivated since: see [`UserState::directory_lock`].
    pub fn is_directory_locked(&self) -> bool {
        match &self.directory_lock {
            Some(Stamped {
                set_at,
                value: Some(_),
            }) => self.last_reactivation.is_none_or(|r| r <= *set_at),
            _ => false,
        }
    }

    /// The failures that may still count: those after the reset point.
    pub fn live_failures(&self) -> impl Iterator<Item = &Failure> {
        let reset = self.reset_point();
        self.failures
            .iter()
            .filter(move |f| reset.is_none_or(|r| f.time > r))
    }

    /// Drops failures that can never count again and bounds the rest.
    /// Failures at or before the reset point never count again, and a merge
    /// can only move that point later, so dropping them changes no derived
    /// lock. The bound drops the oldest of more than [`MAX_FAILURES_KEPT`]
    /// live failures, which only a flood of foreign events can produce.
    pub fn prune(&mut self) {
        if let Some(reset) = self.reset_point() {
            self.failures.retain(|f| f.time > reset);
        }
        while self.failures.len() > MAX_FAILURES_KEPT {
            self.failures.pop_first();
        }
    }

    /// True when nothing at all is known: such a state need not be stored.
    /// A state holding only fields this version does not know is not empty:
    /// a newer version recorded something in it.
    pub fn is_empty(&self) -> bool {
        *self == UserState::default()
    }
}
