//! The user's records: how their files are named, and what a read of all of
//! them (a [`Snapshot`]) sees and merges.

use super::{Pending, DELTA, MAX_PENDING_AGE, PENDING};
use crate::state::UserState;
use crate::time::Timestamp;
use nix::errno::Errno;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Which record of a user an event file is, read from its name.
pub(super) struct EventName {
    pub(super) id: String,
    pub(super) micros: i64,
    pub(super) pid: u32,
    pub(super) kind: String,
}

pub(super) fn parse_id(id: &str) -> Option<(i64, u32)> {
    let mut parts = id.split('.');
    let micros = parts.next()?.parse().ok()?;
    let pid = parts.next()?.parse().ok()?;
    let _seq: u64 = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((micros, pid))
}

pub(super) fn parse_event_name(name: &str) -> Option<EventName> {
    let (id, kind) = name.rsplit_once('.')?;
    let (micros, pid) = parse_id(id)?;
    Some(EventName {
        id: id.to_owned(),
        micros,
        pid,
        kind: kind.to_owned(),
    })
}

/// Whether a process with this pid runs. EPERM means it runs as someone
/// else; only ESRCH says it is gone.
pub(super) fn process_runs(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None),
        Err(Errno::ESRCH)
    )
}

pub(super) fn new_id(now: Timestamp) -> String {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}.{}.{}",
        now.as_micros(),
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    )
}

/// One event file as read: its name, and what it holds or why it is unusable.
pub(super) struct Event {
    pub(super) name: EventName,
    pub(super) path: PathBuf,
    pub(super) content: Result<UserState, String>,
    /// For a pending attempt or a partial file: its writer was gone (or it
    /// was too old) when the snapshot was taken. Decided once, so that what
    /// a fold merges and what it then removes are the same files.
    pub(super) settled: bool,
}

/// Everything on disk for one user, read without any lock.
pub(super) struct Snapshot {
    pub(super) main: Result<Option<UserState>, String>,
    pub(super) events: Vec<Event>,
    /// Why the events directory itself is unusable, if it is.
    pub(super) events_dir_unusable: Option<String>,
    /// Entries of the events directory that deadbolt never writes.
    pub(super) strays: Vec<(PathBuf, String)>,
}

impl Snapshot {
    pub(super) fn is_absent(&self) -> bool {
        matches!(self.main, Ok(None))
            && self.events.is_empty()
            && self.events_dir_unusable.is_none()
            && self.strays.is_empty()
    }

    /// The first reason anything here cannot be used.
    pub(super) fn corruption(&self) -> Option<String> {
        if let Err(why) = &self.main {
            return Some(why.clone());
        }
        if let Some(why) = &self.events_dir_unusable {
            return Some(format!("its records directory: {why}"));
        }
        if let Some((_, why)) = self.strays.first() {
            return Some(why.clone());
        }
        self.events.iter().find_map(|e| {
            e.content
                .as_ref()
                .err()
                .map(|why| format!("record {}.{}: {why}", e.name.id, e.name.kind))
        })
    }

    /// Whether this event counts in a read that takes `pending` as asked.
    pub(super) fn counts(event: &Event, pending: Pending) -> bool {
        match event.name.kind.as_str() {
            DELTA => true,
            PENDING => match pending {
                Pending::All => true,
                Pending::AllBut(own) => own.0 != event.name.id,
                Pending::Settled => event.settled,
            },
            _ => false,
        }
    }

    pub(super) fn merged(&self, pending: Pending) -> UserState {
        let state = match &self.main {
            Ok(Some(state)) => state.clone(),
            _ => UserState::default(),
        };
        self.merge_events_into(state, pending)
    }

    /// [`Self::merged`] for a snapshot not needed afterwards: a login reads
    /// one, and copying a state of 1,024 failures to drop the original at
    /// once was a third of what that read cost.
    pub(super) fn into_merged(mut self, pending: Pending) -> UserState {
        let state = match std::mem::replace(&mut self.main, Ok(None)) {
            Ok(Some(state)) => state,
            _ => UserState::default(),
        };
        self.merge_events_into(state, pending)
    }

    fn merge_events_into(&self, mut state: UserState, pending: Pending) -> UserState {
        for event in &self.events {
            if let Ok(content) = &event.content {
                if Self::counts(event, pending) {
                    state.merge(content);
                }
            }
        }
        state
    }
}

/// A pending attempt is settled (a failure for good) once its process is
/// gone, or once it is older than [`MAX_PENDING_AGE`].
pub(super) fn pending_is_settled(name: &EventName, now: Timestamp) -> bool {
    let age_micros = now.as_micros().saturating_sub(name.micros);
    age_micros > MAX_PENDING_AGE.as_micros() as i64 || !process_runs(name.pid)
}
