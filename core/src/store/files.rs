//! The store's own files: private (0600 files, 0700 directories), never
//! reached through a link, root:root when running as root.

use super::io_err;
use super::{StoreError, MAX_STATE_FILE_BYTES, STATE_HEADER};
use crate::state::UserState;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Running as root, what the store creates is root:root, not root:<the
/// caller's group>. Otherwise (tests, an administrator's own store) it is
/// left as created.
pub(super) fn own_by_root(file: &impl AsFd) -> io::Result<()> {
    if nix::unistd::geteuid().is_root() {
        nix::unistd::fchown(
            file.as_fd(),
            Some(nix::unistd::Uid::from_raw(0)),
            Some(nix::unistd::Gid::from_raw(0)),
        )
        .map_err(io::Error::from)?;
    }
    Ok(())
}

/// Creates a private directory (0700) if missing, owned by root:root when
/// running as root, and checks whatever is there.
pub(super) fn ensure_private_dir(path: &Path) -> Result<(), StoreError> {
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {
            let dir = open_dir(path)?;
            own_by_root(&dir).map_err(io_err(path))?;
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(path)(e)),
    }
    let meta = fs::symlink_metadata(path).map_err(io_err(path))?;
    check_dir(path, &meta)
}

pub(super) fn open_dir(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC | nix::libc::O_DIRECTORY)
        .open(path)
        .map_err(io_err(path))
}

pub(super) fn sync_dir(path: &Path) -> Result<(), StoreError> {
    open_dir(path)?.sync_all().map_err(io_err(path))
}

/// Reads one of the store's files: a private regular file of ours, at most
/// [`MAX_STATE_FILE_BYTES`]. `Ok(None)` when it does not exist; `Err(why)`
/// (a sentence) when it is not what it should be.
pub(super) fn read_private(path: &Path) -> Result<Option<Vec<u8>>, Result<String, StoreError>> {
    // O_NONBLOCK: opening a FIFO planted here must not hang the login (it is
    // refused below as not a regular file); it changes nothing for a
    // regular file.
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC | nix::libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(Ok("it is a symbolic link".to_owned()))
        }
        Err(e) => return Err(Err(io_err(path)(e))),
    };
    let meta = file.metadata().map_err(|e| Err(io_err(path)(e)))?;
    if !meta.is_file() {
        return Err(Ok("it is not a regular file".to_owned()));
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o022 != 0 {
        return Err(Ok(
            "it is owned by another user or writable by others".to_owned()
        ));
    }
    if meta.len() > MAX_STATE_FILE_BYTES {
        return Err(Ok(format!(
            "{} bytes, more than the {MAX_STATE_FILE_BYTES} allowed",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    Read::by_ref(&mut file)
        .take(MAX_STATE_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Err(io_err(path)(e)))?;
    Ok(Some(bytes))
}

pub(super) fn encode(state: &UserState) -> Result<Vec<u8>, serde_json::Error> {
    let mut bytes = STATE_HEADER.as_bytes().to_vec();
    serde_json::to_writer(&mut bytes, state)?;
    bytes.push(b'\n');
    Ok(bytes)
}

pub(super) fn check_dir(dir: &Path, meta: &fs::Metadata) -> Result<(), StoreError> {
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

/// Opens (creating if needed) a 0600 file without following links, owned
/// by root:root when running as root.
pub(super) fn open_private(path: &Path, exclusive: bool) -> Result<File, StoreError> {
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
    let file = options.open(path).map_err(|e| {
        if e.raw_os_error() == Some(nix::libc::ELOOP) {
            StoreError::Insecure {
                path: path.to_owned(),
                why: "it is a symbolic link",
            }
        } else {
            io_err(path)(e)
        }
    })?;
    own_by_root(&file).map_err(io_err(path))?;
    Ok(file)
}
