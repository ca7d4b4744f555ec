//! The lock, derived from a user's state (design principle 3).
//!
//! Failures after the reset point (the latest reactivation or successful
//! login) are read in time order. When `deny` of them fall within
//! `fail_interval`, the account locks at the last of them. A timed lock runs
//! until `unlock_after` past the latest failure counted during it; after that,
//! counting starts afresh. `Never` holds until someone reactivates the account.
//!
//! Because the answer depends only on the set of failures and the latest of
//! each time, every host and replica computes the same lock from the same
//! merged state.

use crate::state::UserState;
use crate::time::Timestamp;
use std::collections::VecDeque;
use std::time::Duration;

/// How long a lock lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnlockAfter {
    /// Until an administrator or manager reactivates the account.
    Never,
    /// This long after the latest failure counted during the lock.
    After(Duration),
}

/// The lockout rules that apply to one user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// `false`: failures never lock this user (disabling still does).
    pub enabled: bool,
    /// Failures within `fail_interval` that lock the account.
    pub deny: u32,
    pub fail_interval: Duration,
    pub unlock_after: UnlockAfter,
}

impl Default for LockoutPolicy {
    /// pam_faillock's defaults, except that a lock lasts 10 minutes and the
    /// compiled default never turns lockout off.
    fn default() -> Self {
        LockoutPolicy {
            enabled: true,
            deny: 3,
            fail_interval: Duration::from_secs(900),
            unlock_after: UnlockAfter::After(Duration::from_secs(600)),
        }
    }
}

/// Why an account refuses logins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockReason {
    /// An administrator disabled it.
    Disabled,
    /// Too many failed logins.
    Failures,
    /// The directory holds a lock of its own (ppolicy).
    Directory,
}

/// The derived answer to "is this user locked, until when, and why".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockStatus {
    /// Refuse logins: disabled, locked by failures or locked in the directory.
    pub locked: bool,
    pub reason: Option<LockReason>,
    pub disabled: bool,
    /// Locked by failures, whether or not also disabled.
    pub failure_locked: bool,
    /// Locked by the directory itself (see [`UserState::directory_lock`]);
    /// refused like a failure lock, until unlocked there or reactivated.
    pub directory_locked: bool,
    /// Failures that count now: those of the current lock, or else those
    /// within `fail_interval` before now that would lead to one.
    pub failures: u32,
    /// When the failure lock began (the failure that completed `deny`).
    pub locked_since: Option<Timestamp>,
    /// When a timed failure lock ends; `None` when not locked by failures or
    /// locked until reactivated.
    pub locked_until: Option<Timestamp>,
    /// The end of the latest timed lock that has already run out: compared
    /// with [`UserState::last_timed_unlock`] to log each timed unlock once.
    pub lapsed_lock_end: Option<Timestamp>,
}

impl LockStatus {
    /// Locked by failures or in the directory: refused unless exempt.
    pub fn locked_out(&self) -> bool {
        self.failure_locked || self.directory_locked
    }

    /// Locked by failures until someone reactivates the account.
    pub fn until_reactivated(&self) -> bool {
        self.failure_locked && self.locked_until.is_none()
    }
}

struct Episode {
    started: Timestamp,
    /// `None`: until reactivated.
    until: Option<Timestamp>,
    counted: u32,
}

impl LockoutPolicy {
    /// Derives the lock of `state` at `now`. Failures dated after `now` (a
    /// host with a fast clock) are ignored until their time comes.
    pub fn evaluate(&self, state: &UserState, now: Timestamp) -> LockStatus {
        let disabled = state.is_disabled();
        let mut episode: Option<Episode> = None;
        let mut lapsed_lock_end = None;
        let mut window: VecDeque<Timestamp> = VecDeque::new();
        if self.enabled && self.deny > 0 {
            for failure in state.live_failures() {
                let t = failure.time;
                if t > now {
                    break;
                }
                if let Some(current) = episode.as_mut() {
                    match current.until {
                        None => {
                            current.counted += 1;
                            continue;
                        }
                        Some(until) if t < until => {
                            current.counted += 1;
                            current.until = Some(until.max(self.lock_end(t)));
                            continue;
                        }
                        Some(until) => {
                            lapsed_lock_end = Some(until);
                            episode = None;
                            window.clear();
                        }
                    }
                }
                window.push_back(t);
                let horizon = t.saturating_sub(self.fail_interval);
                while window.front().is_some_and(|&first| first <= horizon) {
                    window.pop_front();
                }
                if window.len() >= self.deny as usize {
                    episode = Some(Episode {
                        started: t,
                        until: match self.unlock_after {
                            UnlockAfter::Never => None,
                            UnlockAfter::After(_) => Some(self.lock_end(t)),
                        },
                        counted: window.len() as u32,
                    });
                }
            }
            if let Some(Episode {
                until: Some(until), ..
            }) = episode
            {
                if now >= until {
                    lapsed_lock_end = Some(until);
                    episode = None;
                    window.clear();
                }
            }
        }
        let failure_locked = episode.is_some();
        let failures = match &episode {
            Some(current) => current.counted,
            None => {
                let horizon = now.saturating_sub(self.fail_interval);
                window.iter().filter(|&&t| t > horizon).count() as u32
            }
        };
        let directory_locked = state.is_directory_locked();
        let reason = if disabled {
            Some(LockReason::Disabled)
        } else if failure_locked {
            Some(LockReason::Failures)
        } else if directory_locked {
            Some(LockReason::Directory)
        } else {
            None
        };
        LockStatus {
            locked: disabled || failure_locked || directory_locked,
            reason,
            disabled,
            failure_locked,
            directory_locked,
            failures,
            locked_since: episode.as_ref().map(|e| e.started),
            locked_until: episode.as_ref().and_then(|e| e.until),
            lapsed_lock_end,
        }
    }

    fn lock_end(&self, last_failure: Timestamp) -> Timestamp {
        match self.unlock_after {
            UnlockAfter::Never => Timestamp(i64::MAX),
            UnlockAfter::After(d) => last_failure.saturating_add(d),
        }
    }
}

/// "9 minutes", "1 minute", "less than a minute": how long, for people.
pub fn minutes_text(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        return "less than a minute".to_owned();
    }
    // Round up: "locked for 1 more minute" must not be said at 1m59s.
    let minutes = secs.div_ceil(60);
    if minutes == 1 {
        "1 minute".to_owned()
    } else {
        format!("{minutes} minutes")
    }
}

impl LockStatus {
    /// The plain message for the person at the prompt, or `None` when the
    /// account is not locked.
    pub fn user_message(&self, now: Timestamp) -> Option<String> {
        if self.disabled {
            return Some(
                "The account is disabled: ask your manager or an administrator.".to_owned(),
            );
        }
        if !self.failure_locked {
            return self.directory_locked.then(|| {
                "The account is locked in the employee directory: \
                 ask your manager or an administrator."
                    .to_owned()
            });
        }
        let n = self.failures;
        Some(match self.locked_until {
            None => format!(
                "The account is locked after {n} failed logins until it is reactivated: \
                 ask your manager or an administrator."
            ),
            Some(until) => format!(
                "The account is locked after {n} failed logins; it unlocks in {}.",
                minutes_text(now.until(until))
            ),
        })
    }
}
