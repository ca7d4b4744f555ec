//! The daemon's own files in `[sync] dir`: the sync cookie, the
//! `pwdAccountLockedTime` values last seen, and the status that
//! `deadboltctl sync-status` reads. Each is replaced whole, through a
//! temporary file, fsync and rename, so a crash leaves the old or the new.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const COOKIE: &str = "cookie";
pub const LOCKS: &str = "locks-seen.json";
pub const STATUS: &str = "status.json";

/// The largest file of ours read back, in bytes.
const MAX_FILE: u64 = 64 << 20;

/// Creates the directory 0700 if missing and refuses one others can write.
pub fn ensure_dir(dir: &Path) -> Result<(), String> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    }
    let meta = fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(format!(
            "{} can be written by others (mode {:04o}); make it 0700",
            dir.display(),
            meta.permissions().mode() & 0o7777
        ));
    }
    Ok(())
}

/// Replaces `dir/name` with `bytes`, durably.
pub fn replace(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> io::Result<()> {
    let tmp = dir.join(format!(".tmp.{name}"));
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join(name))?;
    fs::File::open(dir)?.sync_all()
}

/// Reads `dir/name`, `None` when absent.
pub fn read(dir: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let path: PathBuf = dir.join(name);
    match fs::symlink_metadata(&path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
        Ok(meta) if !meta.is_file() || meta.len() > MAX_FILE => {
            return Err(io::Error::other(format!(
                "{} is not a regular file of a sane size",
                path.display()
            )))
        }
        Ok(_) => {}
    }
    fs::read(&path).map(Some)
}

/// The `pwdAccountLockedTime` last seen on each user's entry: how the
/// daemon tells that one was deleted (a reactivation) even when the
/// deletion happened while it was away.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SeenLocks {
    pub users: BTreeMap<String, String>,
}

/// What `deadboltctl sync-status` shows, as the daemon last wrote it.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct Status {
    pub pid: u32,
    pub host: String,
    pub connected: bool,
    /// The server in use, or last tried.
    pub server: Option<String>,
    pub last_error: Option<String>,
    /// The initial refresh is done and changes arrive as they are made.
    pub refreshed: bool,
    /// Users with something this host recorded that the directory lacks.
    pub pending_users: usize,
    /// Records (failures, logins) the directory lacks.
    pub pending_records: usize,
    /// The time of the oldest of them (RFC 3339 UTC).
    pub oldest_pending: Option<String>,
    /// Its age when the status was written, in seconds.
    pub oldest_pending_age_s: Option<u64>,
    pub last_change_applied: Option<String>,
    /// This host's clock minus the directory's, in milliseconds, as seen in
    /// the directory's stamp on this host's own latest write.
    pub clock_skew_ms: Option<i64>,
    /// Pushes are held back because the skew exceeds `max_clock_skew`.
    pub skew_exceeded: bool,
    pub entries_known: usize,
    pub updated_at: String,
}
