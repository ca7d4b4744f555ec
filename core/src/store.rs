//! The root-only per-user state store (design principle 2).
//!
//! Layout of the state directory (0700, owned by the user running deadbolt,
//! root in production):
//!
//! - `<user>.state`: the user's [`UserState`], a header line then JSON, 0600;
//! - `<user>.lock`: taken with `flock` around every read-modify-write;
//! - `.tmp.<user>.<pid>`: a new state being written, renamed over the old one.
//!   It is written only under the user's lock, which excludes every other
//!   writer of that user, other threads of the same process included (each
//!   takes the lock through its own open file), so the name is never in use
//!   twice at once;
//! - `.corrupt.<user>.<time>`: a state that failed to decode, kept for inspection.
//!
//! User names never start with '.', so the store's own files cannot collide
//! with a user's, and are at most
//! [`MAX_USER_NAME_LEN`](crate::username::MAX_USER_NAME_LEN) bytes long, so
//! each of these names fits in a path component (NAME_MAX, 255 bytes). Every
//! open refuses to follow a symbolic link, and every change is written to a
//! temporary file, synced, renamed and the directory synced, so a crash
//! leaves either the old state or the new one.

use crate::state::UserState;
use crate::time::Timestamp;
use crate::username::UserName;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
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
/// lock longer is stopped (SIGSTOP, ctrl-Z) or stuck, and waiting for it
/// would hang every login of that user.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

/// The first pause between two attempts at a held lock; each pause doubles,
/// up to [`LOCK_RETRY_MAX`].
const LOCK_RETRY_FIRST: Duration = Duration::from_millis(10);
const LOCK_RETRY_MAX: Duration = Duration::from_millis(100);

/// What went wrong in the store. The paths are the store's own; no secret is
/// ever part of an error.
#[derive(Debug)]
pub enum StoreError {
    /// A system call failed on this path.
    Io { path: PathBuf, source: io::Error },
    /// The directory or a file in it could be read or changed by someone
    /// other than its owner, or is not what it should be.
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

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A state that could not be decoded and was moved aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub kept_at: PathBuf,
    pub why: String,
}

/// What [`StateStore::load`] found.
#[derive(Debug)]
pub enum Loaded {
    Absent,
    Present(UserState),
    /// The file exists but does not decode; the reason is given.
    Corrupt(String),
}

/// The result of [`StateStore::update`].
#[derive(Debug)]
pub struct Updated {
    /// The state after the change (what is on disk now).
    pub state: UserState,
    /// Whether anything was written.
    pub written: bool,
    /// Set when an undecodable state was moved aside and replaced.
    pub quarantined: Option<Quarantined>,
}

/// The exclusive lock on one user's state, released when dropped.
#[derive(Debug)]
pub struct UserLock {
    _flock: Flock<File>,
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
        match fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(dir)(e)),
        }
        Self::open_existing(dir)
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

    /// Whether a state file exists for `user`, without reading it.
    pub fn has_state(&self, user: &UserName) -> bool {
        fs::symlink_metadata(self.state_path(user)).is_ok()
    }

    /// Reads a user's state without locking and without creating anything.
    /// A rename replaces a state whole, so an unlocked read never sees half
    /// of one.
    pub fn load(&self, user: &UserName) -> Result<Loaded, StoreError> {
        let path = self.state_path(user);
        // O_NONBLOCK: opening a FIFO planted here must not hang the login
        // (it is refused below as not a regular file); it changes nothing
        // for a regular file.
        let mut file = match OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC | nix::libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::Absent),
            Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
                return Err(StoreError::Insecure {
                    path,
                    why: "it is a symbolic link",
                })
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        let meta = file.metadata().map_err(io_err(&path))?;
        if !meta.is_file() {
            return Err(StoreError::Insecure {
                path,
                why: "it is not a regular file",
            });
        }
        if meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o022 != 0 {
            return Err(StoreError::Insecure {
                path,
                why: "it is owned by another user or writable by others",
            });
        }
        if meta.len() > MAX_STATE_FILE_BYTES {
            return Ok(Loaded::Corrupt(format!(
                "{} bytes, more than the {MAX_STATE_FILE_BYTES} allowed",
                meta.len()
            )));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        Read::by_ref(&mut file)
            .take(MAX_STATE_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err(&path))?;
        Ok(match decode(&bytes) {
            Ok(state) => Loaded::Present(state),
            Err(why) => Loaded::Corrupt(why),
        })
    }

    /// Takes the user's lock, waiting for whoever holds it at most
    /// [`LOCK_WAIT`] (or the wait set by [`Self::with_lock_wait`]): after
    /// that, [`StoreError::Busy`]. The lock is tried without blocking, then
    /// again after pauses of 10 ms doubling up to 100 ms.
    pub fn lock(&self, user: &UserName) -> Result<UserLock, StoreError> {
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
            let left = self.lock_wait.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(StoreError::Busy { path });
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(LOCK_RETRY_MAX);
        }
    }

    /// Read-modify-write under the user's lock (see [`Self::lock`] for how
    /// long it waits for it). `change` returns whether it changed anything;
    /// only then is the state written. A state that fails to decode is moved
    /// aside and `change` starts from an empty one.
    pub fn update<F>(
        &self,
        user: &UserName,
        now: Timestamp,
        change: F,
    ) -> Result<Updated, StoreError>
    where
        F: FnOnce(&mut UserState) -> bool,
    {
        let _lock = self.lock(user)?;
        let mut quarantined = None;
        let mut state = match self.load(user)? {
            Loaded::Absent => UserState::default(),
            Loaded::Present(state) => state,
            Loaded::Corrupt(why) => {
                let kept_at = self
                    .dir
                    .join(format!(".corrupt.{user}.{}", now.as_micros()));
                fs::rename(self.state_path(user), &kept_at).map_err(io_err(&kept_at))?;
                quarantined = Some(Quarantined { kept_at, why });
                UserState::default()
            }
        };
        let written = change(&mut state);
        if written {
            state.prune();
            self.write(user, &state)?;
        }
        Ok(Updated {
            state,
            written,
            quarantined,
        })
    }

    fn write(&self, user: &UserName, state: &UserState) -> Result<(), StoreError> {
        let target = self.state_path(user);
        let tmp = self.dir.join(format!(".tmp.{user}.{}", std::process::id()));
        let mut bytes = STATE_HEADER.as_bytes().to_vec();
        serde_json::to_writer(&mut bytes, state).map_err(|e| StoreError::Io {
            path: tmp.clone(),
            source: io::Error::other(e),
        })?;
        bytes.push(b'\n');
        // A temporary file left by a crashed writer with our pid is stale:
        // we hold the user's lock, so nobody else is writing it.
        let _ = fs::remove_file(&tmp);
        let result = (|| {
            let mut file = open_private(&tmp, true)?;
            file.write_all(&bytes).map_err(io_err(&tmp))?;
            file.sync_all().map_err(io_err(&tmp))?;
            fs::rename(&tmp, &target).map_err(io_err(&target))?;
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err(&self.dir))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Every user with a state file, sorted. Entries that are not state files
    /// of valid user names are skipped.
    pub fn users(&self) -> Result<Vec<UserName>, StoreError> {
        let mut users = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let entry = entry.map_err(io_err(&self.dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(user) = name.strip_suffix(".state") else {
                continue;
            };
            if let Ok(user) = UserName::parse(user) {
                users.push(user);
            }
        }
        users.sort();
        Ok(users)
    }
}

fn check_dir(dir: &Path, meta: &fs::Metadata) -> Result<(), StoreError> {
    if meta.file_type().is_symlink() {
        return Err(StoreError::Insecure {
            path: dir.to_owned(),
            why: "it is a symbolic link",
        });
    }
    if !meta.is_dir() {
        return Err(StoreError::Insecure {
            path: dir.to_owned(),
            why: "it is not a directory",
        });
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(StoreError::Insecure {
            path: dir.to_owned(),
            why: "it is owned by another user",
        });
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(StoreError::Insecure {
            path: dir.to_owned(),
            why: "its mode gives access to group or others (it must be 0700)",
        });
    }
    Ok(())
}

/// Opens (creating if needed) a 0600 file without following links.
fn open_private(path: &Path, exclusive: bool) -> Result<File, StoreError> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC);
    if exclusive {
        options.create_new(true);
    } else {
        options.create(true);
    }
    options.open(path).map_err(|e| {
        if e.raw_os_error() == Some(nix::libc::ELOOP) {
            StoreError::Insecure {
                path: path.to_owned(),
                why: "it is a symbolic link",
            }
        } else {
            io_err(path)(e)
        }
    })
}

/// Decodes a state file's bytes, or says why they are not one.
pub fn decode(bytes: &[u8]) -> Result<UserState, String> {
    let body = bytes
        .strip_prefix(STATE_HEADER.as_bytes())
        .ok_or_else(|| "it does not start with the deadbolt-state 1 header".to_owned())?;
    serde_json::from_slice(body).map_err(|e| format!("it does not decode: {e}"))
}
