//! The root-only per-user state store (design principle 2).
//!
//! Layout of the state directory (0700, owned by the user running deadbolt,
//! root in production):
//!
//! - `<user>.state`: the user's folded [`UserState`], a header line then JSON, 0600;
//! - `<user>.events/`: records written without any lock (0700), each a file
//!   holding a [`UserState`] fragment in the same format:
//!   - `<id>.pending`: a login attempt in flight, written before the password
//!     is checked. It counts as a failure until its own process withdraws it
//!     (the password was right, or no password was typed) or settles it;
//!   - `<id>.delta`: a settled record (a failure, a successful login, an
//!     administrator's change made while the lock was busy);
//!   - `<id>.new`: a record being written, renamed to one of the above when
//!     complete, so a reader never sees half of one;
//! - `<user>.lock`: taken with `flock` by whoever folds the events into
//!   `<user>.state`. Nobody ever *waits* for it to record anything: a holder
//!   that is stopped (SIGSTOP, ctrl-Z on a setuid `su`) delays the folding,
//!   never the counting;
//! - `.tmp.<user>`: a new `<user>.state` being written, renamed over the old
//!   one. Written only under the user's lock, so one name per user is enough,
//!   and a file left by a killed writer is simply replaced by the next one;
//! - `.corrupt.<user>.<time>[.<what>]`: a state or record that failed to
//!   decode or was not what it should be, kept for inspection;
//! - `.changed/<user>`: an empty file per user whose state changed here,
//!   for the sync daemon ([`StateStore::take_changed`]).
//!
//! An `<id>` is `<microseconds>.<pid>.<sequence>`: unique on the host, and
//! the pid says whether the process that wrote a pending attempt still runs.
//!
//! What a reader sees is the merge (design principle 3) of the state file and
//! every record, so records can be folded in at any time, in any order, and
//! folding the same one twice changes nothing. A pending attempt whose
//! process died (killed between the password check and the verdict) is a
//! failure like any other, and is folded as one.
//!
//! # Which writes are synced
//!
//! Design principle 2 asks for a temporary file, fsync and rename for every
//! change that matters. Two kinds of failure are to be survived, and they ask
//! for different things:
//!
//! - *the process dies* (SIGKILL, a crash of sshd): every write is a whole
//!   file created under a name nobody reads (`.new`, `.tmp.`) and renamed
//!   into place, so a reader sees all of it or nothing; what was written is in
//!   the page cache, which outlives the process. No fsync is needed for this,
//!   and every write has it, synced or not: this is what the SIGKILL and
//!   concurrency tests check;
//! - *the machine stops* (power cut, kernel panic): only what was synced is
//!   sure to be there afterwards.
//!
//! What must survive the machine stopping is synced before the caller goes
//! on; what need not, is not, because an fsync (file and directory, about
//! 0.2 to 2 ms each) would otherwise be most of the cost of a failed login:
//!
//! | write | synced | why |
//! |---|---|---|
//! | the state file (a fold, an administrator's change) | yes: file, rename, directory | it replaces the records it folds, some of them synced (a lock); a rename kept without its data would empty the user's whole state |
//! | a failure that locks the account (`settle_attempt`/`merge_in` with `durable`) | yes: file and directory | a reboot must not unlock anyone |
//! | the directory's changes applied by deadbolt-syncd | yes | they may be a disable or a reactivation |
//! | a pending attempt (`begin_attempt`) | no | it must outlive the process, not the machine: a crash ends the login it stands for too |
//! | a failure below `deny` | no | a stop of the machine can lose at most the failures since the last fold or sync, fewer than `deny` each time; an attacker who can cut the power at will has better attacks than a counter. pam_faillock syncs nothing, ever |
//! | a successful login, a timed unlock noticed | no | losing one only brings back an older reset point: more failures count, never fewer |
//!
//! A fold on the failure path (more than [`FOLD_AT`] records) pays its two
//! syncs once for all the records it folds.
//!
//! User names never start with '.', so the store's own files cannot collide
//! with a user's, and are at most
//! [`MAX_USER_NAME_LEN`](crate::username::MAX_USER_NAME_LEN) bytes long, so
//! each of these names fits in a path component (NAME_MAX, 255 bytes). Every
//! open refuses to follow a symbolic link. Files and directories the store
//! creates belong to root:root when it runs as root, whatever the caller's
//! group (a setuid `su` runs with the caller's).

mod files;
mod records;

use files::{check_dir, encode, ensure_private_dir, open_private, read_private, sync_dir};
use records::{new_id, parse_event_name, parse_id, pending_is_settled, Event, Snapshot};

use crate::state::UserState;
use crate::time::Timestamp;
use crate::username::UserName;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The first line of every state file: a magic word and the format version.
pub const STATE_HEADER: &str = "deadbolt-state 1\n";

/// A state file larger than this is treated as corrupt rather than read:
/// 1024 failures and a long history fit in far less.
pub const MAX_STATE_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// How long [`StateStore::lock`] waits for another holder of a user's lock
/// before giving up with [`StoreError::Busy`]. A holder only reads, changes
/// and writes one small file, which takes milliseconds; one that holds the
/// lock longer is stopped (SIGSTOP, ctrl-Z) or stuck. [`StateStore::update`]
/// then records its change as an event instead.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

/// A pending attempt older than this is taken for a failure even if a
/// process with its pid runs: that pid was reused, or the attempt's prompt
/// was left open for a day.
pub const MAX_PENDING_AGE: Duration = Duration::from_secs(24 * 3600);

/// More event files than this for one user, and a writer that finds the
/// lock free folds them into the state file.
pub const FOLD_AT: usize = 8;

/// The first pause between two attempts at a held lock; each pause doubles,
/// up to [`LOCK_RETRY_MAX`].
const LOCK_RETRY_FIRST: Duration = Duration::from_millis(10);
const LOCK_RETRY_MAX: Duration = Duration::from_millis(100);

pub(super) const PENDING: &str = "pending";
pub(super) const DELTA: &str = "delta";
pub(super) const PARTIAL: &str = "new";

/// What went wrong in the store. The paths are the store's own; no secret is
/// ever part of an error.
#[derive(Debug)]
pub enum StoreError {
    /// A system call failed on this path.
    Io { path: PathBuf, source: io::Error },
    /// The directory could be read or changed by someone other than its
    /// owner, or is not what it should be.
    Insecure { path: PathBuf, why: &'static str },
    /// The state directory does not exist (and was not to be created).
    Missing { path: PathBuf },
    /// Someone else (another process, or another thread of this one) held
    /// the user's lock (this path) for longer than [`LOCK_WAIT`]; nothing was
    /// read or written.
    Busy { path: PathBuf },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            StoreError::Insecure { path, why } => {
                write!(f, "{}: refusing to use it: {why}", path.display())
            }
            StoreError::Missing { path } => {
                write!(f, "{}: the state directory does not exist", path.display())
            }
            StoreError::Busy { path } => write!(
                f,
                "{}: another process holds the lock of this user's state for more than {} s",
                path.display(),
                LOCK_WAIT.as_secs()
            ),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A state or record that could not be used and was moved aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub kept_at: PathBuf,
    pub why: String,
}

/// What [`StateStore::load`] found.
#[derive(Debug)]
// Returned once per read and matched at once: boxing the state would add an
// allocation to every login for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Loaded {
    Absent,
    Present(UserState),
    /// The state file or one of the user's records does not decode, or is
    /// not a private regular file of ours (a link, a FIFO, another owner's):
    /// tampering is treated like corruption. The reason is given.
    Corrupt(String),
}

/// Which pending attempts a read counts as failures.
#[derive(Debug, Clone, Copy)]
pub enum Pending<'a> {
    /// Every one: what a login is judged on. An attempt in flight is a
    /// guess whose answer is not known yet.
    All,
    /// Every one but the caller's own, which its right password forgives.
    AllBut(&'a AttemptId),
    /// Only those whose process is gone (or that are older than
    /// [`MAX_PENDING_AGE`]): what is settled, and may be folded or pushed.
    Settled,
}

/// The result of [`StateStore::update`].
#[derive(Debug)]
pub struct Updated {
    /// The state after the change (what is on disk now).
    pub state: UserState,
    /// Whether anything was written.
    pub written: bool,
    /// What was moved aside because it could not be used.
    pub quarantined: Vec<Quarantined>,
    /// Set when the user's lock was busy and the change went into a record
    /// instead of the state file: it counts all the same.
    pub as_record: bool,
}

/// The exclusive lock on one user's state, released when dropped.
#[derive(Debug)]
pub struct UserLock {
    _flock: Flock<File>,
}

/// One pending attempt, as [`StateStore::begin_attempt`] named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptId(String);

impl AttemptId {
    /// The id as stored (`<microseconds>.<pid>.<sequence>`), for keeping it
    /// across the calls of one PAM transaction.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Takes back an id from [`Self::as_str`]; `None` if it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        parse_id(text).map(|_| AttemptId(text.to_owned()))
    }

    /// Whether `failure` is the one this attempt recorded (same instant,
    /// same process), so a read that counts every attempt can set it apart.
    pub fn recorded(&self, failure: &crate::Failure) -> bool {
        parse_id(&self.0)
            .is_some_and(|(micros, pid)| failure.time.as_micros() == micros && failure.pid == pid)
    }
}

/// A handle on the state directory.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
    lock_wait: Duration,
}

impl StateStore {
    /// Opens the store for reading: never creates anything.
    pub fn open_existing(dir: &Path) -> Result<Self, StoreError> {
        match fs::symlink_metadata(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::Missing {
                path: dir.to_owned(),
            }),
            Err(e) => Err(io_err(dir)(e)),
            Ok(meta) => {
                check_dir(dir, &meta)?;
                Ok(StateStore {
                    dir: dir.to_owned(),
                    lock_wait: LOCK_WAIT,
                })
            }
        }
    }

    /// Opens the store for changes, creating the directory (0700) if missing.
    pub fn open_or_create(dir: &Path) -> Result<Self, StoreError> {
        ensure_private_dir(dir)?;
        Ok(StateStore {
            dir: dir.to_owned(),
            lock_wait: LOCK_WAIT,
        })
    }

    /// Waits at most `wait` for a held lock instead of [`LOCK_WAIT`]: for
    /// tests, which need not wait seconds to see a lock given up. Zero tries
    /// once. [`StoreError::Busy`]'s message still names [`LOCK_WAIT`].
    #[must_use]
    pub fn with_lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn state_path(&self, user: &UserName) -> PathBuf {
        self.dir.join(format!("{user}.state"))
    }

    fn lock_path(&self, user: &UserName) -> PathBuf {
        self.dir.join(format!("{user}.lock"))
    }

    fn events_path(&self, user: &UserName) -> PathBuf {
        self.dir.join(format!("{user}.events"))
    }

    /// The directory the sync daemon watches: one empty file per user whose
    /// state changed on this host since [`Self::take_changed`] last ran.
    pub fn changed_dir(&self) -> PathBuf {
        self.dir.join(".changed")
    }

    /// Whether a state file or a record exists for `user`, without reading it.
    pub fn has_state(&self, user: &UserName) -> bool {
        fs::symlink_metadata(self.state_path(user)).is_ok()
            || fs::read_dir(self.events_path(user)).is_ok_and(|mut d| d.next().is_some())
    }

    fn snapshot(
        &self,
        user: &UserName,
        now: Timestamp,
        cache: Option<&mut DecodeCache>,
    ) -> Result<Snapshot, StoreError> {
        let main = match read_private(&self.state_path(user)) {
            Ok(None) => Ok(None),
            Ok(Some(bytes)) => match cache {
                Some(cache) => cache.decode(bytes),
                None => decode(&bytes),
            }
            .map(Some),
            Err(Ok(why)) => Err(why),
            Err(Err(err)) => return Err(err),
        };
        let mut snapshot = Snapshot {
            main,
            events: Vec::new(),
            events_dir_unusable: None,
            strays: Vec::new(),
        };
        let events_dir = self.events_path(user);
        let meta = match fs::symlink_metadata(&events_dir) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(snapshot),
            Err(e) => return Err(io_err(&events_dir)(e)),
        };
        if let Err(StoreError::Insecure { why, .. }) = check_dir(&events_dir, &meta) {
            snapshot.events_dir_unusable = Some(why.to_owned());
            return Ok(snapshot);
        }
        for entry in fs::read_dir(&events_dir).map_err(io_err(&events_dir))? {
            let entry = entry.map_err(io_err(&events_dir))?;
            let file_name = entry.file_name();
            let stray = || {
                (
                    entry.path(),
                    format!(
                        "its records directory holds {:?}, which deadbolt never writes",
                        file_name.to_string_lossy()
                    ),
                )
            };
            let Some(name) = file_name.to_str().and_then(parse_event_name) else {
                snapshot.strays.push(stray());
                continue;
            };
            if name.kind == PARTIAL {
                let settled = pending_is_settled(&name, now);
                snapshot.events.push(Event {
                    name,
                    path: entry.path(),
                    content: Ok(UserState::default()),
                    settled,
                });
                continue;
            }
            if name.kind != PENDING && name.kind != DELTA {
                snapshot.strays.push(stray());
                continue;
            }
            let path = entry.path();
            let content = match read_private(&path) {
                // Folded and removed by someone else since the listing.
                Ok(None) => continue,
                Ok(Some(bytes)) => decode(&bytes),
                Err(Ok(why)) => Err(why),
                Err(Err(err)) => return Err(err),
            };
            let settled = name.kind == DELTA || pending_is_settled(&name, now);
            snapshot.events.push(Event {
                name,
                path,
                content,
                settled,
            });
        }
        Ok(snapshot)
    }

    /// Reads a user's state without locking and without creating anything:
    /// the state file merged with every record, every pending attempt
    /// counted as a failure ([`Pending::All`]).
    pub fn load(&self, user: &UserName) -> Result<Loaded, StoreError> {
        self.load_counting(user, Pending::All, Timestamp::now())
    }

    /// [`Self::load`], counting pending attempts as `pending` says; `now`
    /// decides which pending attempts are too old to be in flight.
    pub fn load_counting(
        &self,
        user: &UserName,
        pending: Pending,
        now: Timestamp,
    ) -> Result<Loaded, StoreError> {
        self.load_with(user, pending, now, None)
    }

    /// [`Self::load_counting`], decoding the state file only when its bytes
    /// differ from those `cache` last decoded. The files are read afresh
    /// every time, so the answer is the same as without the cache.
    pub fn load_counting_cached(
        &self,
        user: &UserName,
        pending: Pending,
        now: Timestamp,
        cache: &mut DecodeCache,
    ) -> Result<Loaded, StoreError> {
        self.load_with(user, pending, now, Some(cache))
    }

    fn load_with(
        &self,
        user: &UserName,
        pending: Pending,
        now: Timestamp,
        cache: Option<&mut DecodeCache>,
    ) -> Result<Loaded, StoreError> {
        let snapshot = self.snapshot(user, now, cache)?;
        if snapshot.is_absent() {
            return Ok(Loaded::Absent);
        }
        if let Some(why) = snapshot.corruption() {
            return Ok(Loaded::Corrupt(why));
        }
        Ok(Loaded::Present(snapshot.into_merged(pending)))
    }

    /// Takes the user's lock, waiting for whoever holds it at most
    /// [`LOCK_WAIT`] (or the wait set by [`Self::with_lock_wait`]): after
    /// that, [`StoreError::Busy`]. The lock is tried without blocking, then
    /// again after pauses of 10 ms doubling up to 100 ms.
    pub fn lock(&self, user: &UserName) -> Result<UserLock, StoreError> {
        self.lock_within(user, self.lock_wait)
    }

    fn lock_within(&self, user: &UserName, wait: Duration) -> Result<UserLock, StoreError> {
        let path = self.lock_path(user);
        let mut file = open_private(&path, false)?;
        let started = Instant::now();
        let mut pause = LOCK_RETRY_FIRST;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(flock) => return Ok(UserLock { _flock: flock }),
                Err((back, Errno::EWOULDBLOCK | Errno::EINTR)) => file = back,
                Err((_, errno)) => {
                    return Err(StoreError::Io {
                        path,
                        source: io::Error::from(errno),
                    })
                }
            }
            let left = wait.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(StoreError::Busy { path });
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(LOCK_RETRY_MAX);
        }
    }

    /// Writes `content` as a new event file of `kind` and returns its id:
    /// first as `<id>.new`, then renamed, so it appears whole or not at all.
    /// `durable` syncs the file and the directory, so the record survives a
    /// crash of the machine, not only of the process.
    fn write_event(
        &self,
        user: &UserName,
        content: &UserState,
        kind: &str,
        now: Timestamp,
        durable: bool,
    ) -> Result<String, StoreError> {
        let dir = self.events_path(user);
        ensure_private_dir(&dir)?;
        let id = new_id(now);
        let partial = dir.join(format!("{id}.{PARTIAL}"));
        let done = dir.join(format!("{id}.{kind}"));
        let bytes = encode(content).map_err(|e| StoreError::Io {
            path: partial.clone(),
            source: io::Error::other(e),
        })?;
        let result = (|| {
            let mut file = open_private(&partial, true)?;
            file.write_all(&bytes).map_err(io_err(&partial))?;
            if durable {
                file.sync_all().map_err(io_err(&partial))?;
            }
            fs::rename(&partial, &done).map_err(io_err(&done))?;
            if durable {
                sync_dir(&dir)?;
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&partial);
        }
        result.map(|()| id)
    }

    /// Records a login attempt before its password is checked: from now
    /// until [`Self::withdraw_attempt`] or [`Self::settle_attempt`], it
    /// counts as a failure, and if the process dies in between (killed, out
    /// of a resource), it stays one. Takes no lock and waits for nobody.
    /// Not synced: the record must outlive the process, which the page cache
    /// ensures; a crash of the whole machine also ends the attempt.
    pub fn begin_attempt(
        &self,
        user: &UserName,
        failure: &crate::Failure,
    ) -> Result<AttemptId, StoreError> {
        let mut content = UserState::default();
        content.failures.insert(failure.clone());
        self.write_event(user, &content, PENDING, failure.time, false)
            .map(AttemptId)
    }

    /// Forgets a pending attempt: the password was right, or none was typed.
    /// An attempt already folded as a failure (too old, or its pid taken
    /// for dead) is not found here; the caller forgives it with a success
    /// time instead.
    pub fn withdraw_attempt(&self, user: &UserName, id: &AttemptId) -> Result<bool, StoreError> {
        let path = self.events_path(user).join(format!("{}.{PENDING}", id.0));
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Makes a pending attempt a failure for good (the password was wrong),
    /// by renaming it: no lock, no wait. `durable` syncs it (a failure that
    /// locks the account must survive a crash). The attempt already folded
    /// is a failure already, and is left as it is.
    pub fn settle_attempt(
        &self,
        user: &UserName,
        id: &AttemptId,
        durable: bool,
    ) -> Result<(), StoreError> {
        let dir = self.events_path(user);
        let from = dir.join(format!("{}.{PENDING}", id.0));
        let to = dir.join(format!("{}.{DELTA}", id.0));
        match fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(&to)(e)),
        }
        if durable {
            match OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
                .open(&to)
            {
                Ok(file) => {
                    file.sync_all().map_err(io_err(&to))?;
                    sync_dir(&dir)?;
                }
                // A concurrent fold took the failure into the state file,
                // which it syncs before it removes the record: as durable.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&to)(e)),
            }
        }
        self.mark_changed(user);
        Ok(())
    }

    /// Records `delta` (a fragment of a state: a failure, a success time, an
    /// administrator's change) so that every later read merges it in,
    /// without waiting for any lock. Synced when `durable`.
    pub fn merge_in(
        &self,
        user: &UserName,
        delta: &UserState,
        now: Timestamp,
        durable: bool,
    ) -> Result<(), StoreError> {
        self.write_event(user, delta, DELTA, now, durable)?;
        self.mark_changed(user);
        Ok(())
    }

    /// Folds the user's settled records into the state file if the user's
    /// lock is free right now (never waiting for it): returns whether it
    /// did. Pending attempts still in flight stay where they are.
    pub fn fold(&self, user: &UserName, now: Timestamp) -> Result<bool, StoreError> {
        let _lock = match self.lock_within(user, Duration::ZERO) {
            Ok(lock) => lock,
            Err(StoreError::Busy { .. }) => return Ok(false),
            Err(err) => return Err(err),
        };
        let (snapshot, _) = self.snapshot_quarantined(user, now)?;
        let mut state = snapshot.merged(Pending::Settled);
        self.write_folded(user, &mut state, &snapshot, false)?;
        Ok(true)
    }

    /// How many records wait to be folded for `user` (cheap: one listing).
    pub fn records(&self, user: &UserName) -> usize {
        fs::read_dir(self.events_path(user)).map_or(0, |d| d.count())
    }

    /// Under the user's lock: a snapshot in which whatever could not be used
    /// was moved aside (and is reported), so the rest can be folded.
    fn snapshot_quarantined(
        &self,
        user: &UserName,
        now: Timestamp,
    ) -> Result<(Snapshot, Vec<Quarantined>), StoreError> {
        let mut snapshot = self.snapshot(user, now, None)?;
        let mut quarantined = Vec::new();
        if let Err(why) = &snapshot.main {
            let kept_at = self
                .dir
                .join(format!(".corrupt.{user}.{}", now.as_micros()));
            fs::rename(self.state_path(user), &kept_at).map_err(io_err(&kept_at))?;
            quarantined.push(Quarantined {
                kept_at,
                why: why.clone(),
            });
            snapshot.main = Ok(None);
        }
        if let Some(why) = snapshot.events_dir_unusable.take() {
            let kept_at = self
                .dir
                .join(format!(".corrupt.{user}.{}.events", now.as_micros()));
            fs::rename(self.events_path(user), &kept_at).map_err(io_err(&kept_at))?;
            quarantined.push(Quarantined {
                kept_at,
                why: format!("its records directory: {why}"),
            });
            snapshot.events.clear();
        }
        for (path, why) in std::mem::take(&mut snapshot.strays) {
            let kept_at = self.dir.join(format!(
                ".corrupt.{user}.{}.{}",
                now.as_micros(),
                quarantined.len()
            ));
            fs::rename(&path, &kept_at).map_err(io_err(&kept_at))?;
            quarantined.push(Quarantined { kept_at, why });
        }
        let mut usable = Vec::new();
        for event in std::mem::take(&mut snapshot.events) {
            match &event.content {
                Ok(_) => usable.push(event),
                Err(why) => {
                    let kept_at = self.dir.join(format!(
                        ".corrupt.{user}.{}.{}.{}",
                        now.as_micros(),
                        event.name.id,
                        event.name.kind
                    ));
                    fs::rename(&event.path, &kept_at).map_err(io_err(&kept_at))?;
                    quarantined.push(Quarantined {
                        kept_at,
                        why: why.clone(),
                    });
                }
            }
        }
        snapshot.events = usable;
        Ok((snapshot, quarantined))
    }

    /// Writes `state` (pruned) as the state file when it holds records of
    /// the snapshot or `force` says so, then removes those records: settled
    /// ones, and partial files whose writer is gone. A crash in between
    /// leaves records that the next fold merges again, to no effect.
    fn write_folded(
        &self,
        user: &UserName,
        state: &mut UserState,
        snapshot: &Snapshot,
        force: bool,
    ) -> Result<(), StoreError> {
        let folded: Vec<&Event> = snapshot.events.iter().filter(|e| e.settled).collect();
        let holds_records = folded.iter().any(|e| e.name.kind != PARTIAL);
        if force || holds_records {
            state.prune();
            self.write_state(user, state)?;
        }
        if folded.iter().any(|e| e.name.kind == PENDING) {
            // An attempt whose process died became a failure: news for the
            // daemon, which does not push attempts in flight.
            self.mark_changed(user);
        }
        for event in folded {
            match fs::remove_file(&event.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&event.path)(e)),
            }
        }
        Ok(())
    }

    /// Read-modify-write. Under the user's lock (see [`Self::lock`] for how
    /// long it waits), every settled record is folded into the state file
    /// with the change. Whatever could not be used is moved aside first and
    /// reported, and `change` starts without it. `change` returns whether it
    /// changed anything; only then is the state written.
    ///
    /// If the lock stays busy, the change is made on what a read sees and
    /// recorded with [`Self::merge_in`]: it is not lost and takes effect at
    /// once, and nothing is moved aside.
    pub fn update<F>(
        &self,
        user: &UserName,
        now: Timestamp,
        change: F,
    ) -> Result<Updated, StoreError>
    where
        F: FnOnce(&mut UserState) -> bool,
    {
        let _lock = match self.lock(user) {
            Ok(lock) => lock,
            Err(StoreError::Busy { .. }) => return self.update_as_record(user, now, change),
            Err(err) => return Err(err),
        };
        let (snapshot, quarantined) = self.snapshot_quarantined(user, now)?;
        let mut state = snapshot.merged(Pending::Settled);
        let written = change(&mut state);
        // Records are folded in even when the change itself changed nothing.
        self.write_folded(user, &mut state, &snapshot, written)?;
        if written {
            self.mark_changed(user);
        }
        Ok(Updated {
            state,
            written,
            quarantined,
            as_record: false,
        })
    }

    fn update_as_record<F>(
        &self,
        user: &UserName,
        now: Timestamp,
        change: F,
    ) -> Result<Updated, StoreError>
    where
        F: FnOnce(&mut UserState) -> bool,
    {
        let mut state = match self.load_counting(user, Pending::Settled, now)? {
            Loaded::Present(state) => state,
            // Moving anything aside needs the lock: start from nothing, and
            // the unusable files stay until a fold can take them.
            Loaded::Absent | Loaded::Corrupt(_) => UserState::default(),
        };
        let written = change(&mut state);
        if written {
            self.merge_in(user, &state, now, true)?;
        }
        Ok(Updated {
            state,
            written,
            quarantined: Vec::new(),
            as_record: true,
        })
    }

    /// Writes the state file: a temporary file, synced, renamed over the
    /// old one, the directory synced. Only under the user's lock.
    fn write_state(&self, user: &UserName, state: &UserState) -> Result<(), StoreError> {
        let target = self.state_path(user);
        let tmp = self.dir.join(format!(".tmp.{user}"));
        let bytes = encode(state).map_err(|e| StoreError::Io {
            path: tmp.clone(),
            source: io::Error::other(e),
        })?;
        // A temporary file left by a killed writer is stale: we hold the
        // user's lock, so nobody else is writing it.
        let _ = fs::remove_file(&tmp);
        let result = (|| {
            let mut file = open_private(&tmp, true)?;
            file.write_all(&bytes).map_err(io_err(&tmp))?;
            file.sync_all().map_err(io_err(&tmp))?;
            fs::rename(&tmp, &target).map_err(io_err(&target))?;
            sync_dir(&self.dir)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Notes for the sync daemon that `user` changed here, if the daemon
    /// asked for notes ([`Self::enable_change_feed`]); without it this costs
    /// one failed open. Best effort: a note lost in a crash is found again
    /// by the daemon's full comparison.
    fn mark_changed(&self, user: &UserName) {
        let _ = open_private(&self.changed_dir().join(user.as_str()), false);
    }

    /// Starts noting changed users in [`Self::changed_dir`]: the sync
    /// daemon calls this before its first full comparison.
    pub fn enable_change_feed(&self) -> Result<(), StoreError> {
        ensure_private_dir(&self.changed_dir())
    }

    /// The users noted as changed since the last call, whose notes are
    /// removed. A note is removed before the caller reads the state, so a
    /// change made meanwhile is either read or noted again.
    pub fn take_changed(&self) -> Result<Vec<UserName>, StoreError> {
        let dir = self.changed_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        let mut users = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&dir))?;
            let path = entry.path();
            let _ = fs::remove_file(&path);
            if let Some(user) = entry
                .file_name()
                .to_str()
                .and_then(|n| UserName::parse(n).ok())
            {
                users.push(user);
            }
        }
        users.sort();
        users.dedup();
        Ok(users)
    }

    /// Every user with a state file or records, sorted. Entries that are
    /// not the store's files for valid user names are skipped.
    pub fn users(&self) -> Result<Vec<UserName>, StoreError> {
        let mut users = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let entry = entry.map_err(io_err(&self.dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(user) = name
                .strip_suffix(".state")
                .or_else(|| name.strip_suffix(".events"))
            else {
                continue;
            };
            if let Ok(user) = UserName::parse(user) {
                users.push(user);
            }
        }
        users.sort();
        users.dedup();
        Ok(users)
    }
}

/// The state file a reader decoded last, by its exact bytes: a login reads
/// the user's state three times (preauth, authsucc, account), and decoding
/// it is most of a read's cost for a user holding many failures, while the
/// bytes are most often the same each time. Only equal bytes are taken for
/// the same state, so a file changed in between is decoded afresh.
#[derive(Debug, Default)]
pub struct DecodeCache {
    last: Option<(Vec<u8>, UserState)>,
}

impl DecodeCache {
    fn decode(&mut self, bytes: Vec<u8>) -> Result<UserState, String> {
        if let Some((seen, state)) = &self.last {
            if *seen == bytes {
                return Ok(state.clone());
            }
        }
        let state = decode(&bytes)?;
        self.last = Some((bytes, state.clone()));
        Ok(state)
    }
}

/// Decodes a state file's bytes, or says why they are not one.
pub fn decode(bytes: &[u8]) -> Result<UserState, String> {
    let body = bytes
        .strip_prefix(STATE_HEADER.as_bytes())
        .ok_or_else(|| "it does not start with the deadbolt-state 1 header".to_owned())?;
    serde_json::from_slice(body).map_err(|e| format!("it does not decode: {e}"))
}
