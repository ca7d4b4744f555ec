//! Whether a file deadbolt reads or runs as root could have been written by
//! someone other than root: the configuration, the strength `checker` (run
//! as root from a setuid `passwd`) and the password lists.
//!
//! The rule is that of sshd's StrictModes and sudo's checks on sudoers: the
//! file and every directory above it must be owned by root and writable by
//! neither group nor others. Whoever can write any of them can replace the
//! file, and whoever can replace the checker runs code as root.
//!
//! - A directory owned by root with the sticky bit (`/tmp`, mode 1777) is
//!   accepted even though others may write to it: there, only an entry's
//!   owner (and root) may remove or rename it, so what root owns there
//!   stays root's. The entries below it are checked as usual.
//! - The group write bit is refused whatever the group, root's included:
//!   a rule with no exceptions is one an administrator can check by eye.
//!   A POSIX ACL that lets anyone else write shows in that bit (the ACL
//!   mask), so it is refused too.
//! - Symbolic links are followed, as the kernel would, and every component
//!   of where they lead is checked too; each link must itself be root's,
//!   since in a sticky directory another user could own (and swap) it. The
//!   path returned is the one reached without links: open or execute that
//!   one, so that what runs is what was checked.
//! - A relative path is refused: its meaning depends on the directory the
//!   host program happens to run in.
//!
//! The walk costs one `lstat` per component (plus a `readlink` per link)
//! and reads nothing else, so it is cheap enough for every login.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// As the kernel's MAXSYMLINKS: more links than this in one path is a loop.
pub const MAX_LINKS: u32 = 40;

const GROUP_WRITE: u32 = 0o020;
const OTHER_WRITE: u32 = 0o002;
const STICKY: u32 = 0o1000;

/// Why a path is not trusted. Each names the path at fault, which may be a
/// directory above the file asked about.
#[derive(Debug)]
pub enum Untrusted {
    /// The path is not absolute.
    Relative(PathBuf),
    /// A component could not be examined: missing (see
    /// [`Untrusted::is_missing`]), not a directory, or not searchable.
    Inaccessible { path: PathBuf, error: io::Error },
    /// Owned by someone other than root.
    NotRoots { path: PathBuf, uid: u32 },
    /// Writable by group or others (and not a sticky directory of root's).
    Writable { path: PathBuf, mode: u32 },
    /// More than [`MAX_LINKS`] symbolic links: a loop.
    TooManyLinks(PathBuf),
}

impl Untrusted {
    /// The file, or a directory above it, does not exist. Callers that
    /// accept a missing file (a checker not installed, a configuration
    /// never written) tell this apart from a file they must refuse.
    pub fn is_missing(&self) -> bool {
        matches!(self, Untrusted::Inaccessible { error, .. } if error.kind() == io::ErrorKind::NotFound)
    }

    /// The path at fault.
    pub fn path(&self) -> &Path {
        match self {
            Untrusted::Relative(path) | Untrusted::TooManyLinks(path) => path,
            Untrusted::Inaccessible { path, .. }
            | Untrusted::NotRoots { path, .. }
            | Untrusted::Writable { path, .. } => path,
        }
    }
}

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path().display();
        match self {
            Untrusted::Relative(_) => write!(f, "{path}: not an absolute path"),
            Untrusted::Inaccessible { error, .. } => {
                write!(f, "{path}: cannot be examined: {}", os_message(error))
            }
            Untrusted::NotRoots { uid, .. } => {
                write!(f, "{path}: owned by uid {uid}, not by root")
            }
            Untrusted::Writable { mode, .. } => {
                let who = match (mode & GROUP_WRITE != 0, mode & OTHER_WRITE != 0) {
                    (true, true) => "group and others",
                    (true, false) => "its group",
                    _ => "others",
                };
                write!(f, "{path}: writable by {who} (mode {:04o})", mode & 0o7777)
            }
            Untrusted::TooManyLinks(_) => {
                write!(f, "{path}: too many symbolic links (a loop?)")
            }
        }
    }
}

impl std::error::Error for Untrusted {}

/// An I/O error as the C library words it, without Rust's "(os error N)".
pub(crate) fn os_message(err: &io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error ") {
        Some(at) if err.raw_os_error().is_some() => text[..at].to_owned(),
        _ => text,
    }
}

/// Checks that only root can have written `path`: see the module
/// documentation for the rule. Returns the path with its symbolic links
/// resolved, which callers should open or execute instead of `path`.
pub fn check_trusted(path: &Path) -> Result<PathBuf, Untrusted> {
    if !path.is_absolute() {
        return Err(Untrusted::Relative(path.to_owned()));
    }
    let mut resolved = PathBuf::from("/");
    check_entry(&resolved)?;
    // Steps still to walk, the next one last.
    let mut pending = Vec::new();
    push_steps(&mut pending, path);
    let mut links = 0;
    while let Some(step) = pending.pop() {
        match step {
            // The root was checked first, and every prefix of `resolved`
            // when it was reached.
            Step::Root => resolved = PathBuf::from("/"),
            Step::Parent => {
                resolved.pop();
            }
            Step::Name(name) => {
                let next = resolved.join(name);
                if check_entry(&next)? {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(Untrusted::TooManyLinks(path.to_owned()));
                    }
                    let target =
                        std::fs::read_link(&next).map_err(|error| Untrusted::Inaccessible {
                            path: next.clone(),
                            error,
                        })?;
                    // A relative target continues from the link's directory.
                    push_steps(&mut pending, &target);
                } else {
                    resolved = next;
                }
            }
        }
    }
    Ok(resolved)
}

/// One component of a path still to walk.
enum Step {
    Root,
    Parent,
    Name(OsString),
}

/// Adds `path`'s components to `pending` so that its first is popped next.
fn push_steps(pending: &mut Vec<Step>, path: &Path) {
    let start = pending.len();
    for component in path.components() {
        pending.push(match component {
            Component::RootDir => Step::Root,
            Component::ParentDir => Step::Parent,
            Component::Normal(name) => Step::Name(name.to_owned()),
            // `.`, and `C:`, which Unix paths never have.
            Component::CurDir | Component::Prefix(_) => continue,
        });
    }
    pending[start..].reverse();
}

/// Checks one entry without following it. Returns whether it is a
/// symbolic link (whose mode means nothing: only its owner counts).
fn check_entry(path: &Path) -> Result<bool, Untrusted> {
    let meta = std::fs::symlink_metadata(path).map_err(|error| Untrusted::Inaccessible {
        path: path.to_owned(),
        error,
    })?;
    if meta.uid() != 0 {
        return Err(Untrusted::NotRoots {
            path: path.to_owned(),
            uid: meta.uid(),
        });
    }
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Ok(true);
    }
    let mode = meta.mode();
    let sticky_dir = kind.is_dir() && mode & STICKY != 0;
    if mode & (GROUP_WRITE | OTHER_WRITE) != 0 && !sticky_dir {
        return Err(Untrusted::Writable {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{chown, symlink, PermissionsExt};

    /// An ordinary user's uid (nobody's).
    const NOBODY: u32 = 65534;

    fn is_root() -> bool {
        fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false)
    }

    /// A root-owned 0755 directory under the system's temporary directory
    /// (as root), holding a root-owned 0755 file `checker`.
    fn setup() -> Option<(tempfile::TempDir, PathBuf)> {
        if !is_root() {
            eprintln!("skipped: the tests need root to chown");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let file = dir.path().join("checker");
        fs::write(&file, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).unwrap();
        Some((dir, file))
    }

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_root_file_in_root_directories_is_trusted() {
        let Some((dir, file)) = setup() else { return };
        assert_eq!(check_trusted(&file).unwrap(), file);
        // /tmp (or wherever the temporary directory is) is sticky: fine.
        assert_eq!(check_trusted(dir.path()).unwrap(), dir.path());
        assert_eq!(check_trusted(Path::new("/")).unwrap(), Path::new("/"));
    }

    #[test]
    fn a_file_writable_by_others_or_its_group_is_refused() {
        let Some((_dir, file)) = setup() else { return };
        for (mode, who) in [
            (0o666, "group and others (mode 0666)"),
            (0o757, "others (mode 0757)"),
            (0o775, "its group (mode 0775)"),
        ] {
            chmod(&file, mode);
            let err = check_trusted(&file).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("{}: writable by {who}", file.display())
            );
            assert!(!err.is_missing());
        }
        // Even sticky: the exception is for directories.
        chmod(&file, 0o1777);
        assert!(matches!(
            check_trusted(&file),
            Err(Untrusted::Writable { .. })
        ));
    }

    #[test]
    fn a_file_owned_by_another_user_is_refused() {
        let Some((_dir, file)) = setup() else { return };
        chown(&file, Some(NOBODY), None).unwrap();
        let err = check_trusted(&file).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: owned by uid {NOBODY}, not by root", file.display())
        );
    }

    #[test]
    fn a_directory_above_that_others_can_write_is_refused() {
        let Some((dir, _)) = setup() else { return };
        let sub = dir.path().join("libexec");
        fs::create_dir(&sub).unwrap();
        let file = sub.join("checker");
        fs::write(&file, "").unwrap();
        chmod(&file, 0o755);
        chmod(&sub, 0o777);
        let err = check_trusted(&file).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: writable by group and others (mode 0777)",
                sub.display()
            )
        );
        chmod(&sub, 0o755);
        chown(&sub, Some(NOBODY), None).unwrap();
        assert!(matches!(
            check_trusted(&file),
            Err(Untrusted::NotRoots { path, uid: NOBODY }) if path == sub
        ));
    }

    #[test]
    fn a_sticky_directory_must_still_be_roots() {
        let Some((dir, _)) = setup() else { return };
        let shared = dir.path().join("shared");
        fs::create_dir(&shared).unwrap();
        let file = shared.join("list.txt");
        fs::write(&file, "").unwrap();
        chmod(&file, 0o644);
        chmod(&shared, 0o1777);
        assert_eq!(check_trusted(&file).unwrap(), file);
        chown(&shared, Some(NOBODY), None).unwrap();
        assert!(matches!(
            check_trusted(&file),
            Err(Untrusted::NotRoots { path, .. }) if path == shared
        ));
        // And what another user owns inside it is his, not root's.
        chown(&shared, Some(0), None).unwrap();
        chown(&file, Some(NOBODY), None).unwrap();
        assert!(matches!(
            check_trusted(&file),
            Err(Untrusted::NotRoots { path, .. }) if path == file
        ));
    }

    #[test]
    fn links_are_followed_and_where_they_lead_is_checked() {
        let Some((dir, file)) = setup() else { return };
        let real = dir.path().join("real");
        fs::create_dir(&real).unwrap();
        chmod(&real, 0o755);
        let target = real.join("pwcheck");
        fs::write(&target, "").unwrap();
        chmod(&target, 0o755);
        // An absolute link, and a relative one through `..`.
        let absolute = dir.path().join("absolute");
        symlink(&target, &absolute).unwrap();
        assert_eq!(check_trusted(&absolute).unwrap(), target);
        let relative = dir.path().join("relative");
        symlink("real/../real/pwcheck", &relative).unwrap();
        assert_eq!(check_trusted(&relative).unwrap(), target);
        // A link to a directory, in the middle of the path.
        let via = dir.path().join("via");
        symlink("real", &via).unwrap();
        assert_eq!(check_trusted(&via.join("pwcheck")).unwrap(), target);

        // The target's directory turns writable: the link is refused.
        chmod(&real, 0o777);
        assert!(matches!(
            check_trusted(&absolute),
            Err(Untrusted::Writable { path, .. }) if path == real
        ));
        chmod(&real, 0o755);

        // A link someone else owns could be swapped (in a sticky directory).
        let foreign = dir.path().join("foreign");
        symlink(&file, &foreign).unwrap();
        std::os::unix::fs::lchown(&foreign, Some(NOBODY), None).unwrap();
        assert!(matches!(
            check_trusted(&foreign),
            Err(Untrusted::NotRoots { path, .. }) if path == foreign
        ));
    }

    #[test]
    fn a_link_loop_is_refused() {
        let Some((dir, _)) = setup() else { return };
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        symlink(&b, &a).unwrap();
        symlink(&a, &b).unwrap();
        assert!(matches!(
            check_trusted(&a),
            Err(Untrusted::TooManyLinks(path)) if path == a
        ));
    }

    #[test]
    fn a_missing_file_is_told_apart() {
        let Some((dir, _)) = setup() else { return };
        let absent = dir.path().join("absent/checker");
        let err = check_trusted(&absent).unwrap_err();
        assert!(err.is_missing(), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: cannot be examined: No such file or directory",
                dir.path().join("absent").display()
            )
        );
        // Refusal comes first: a missing file under a writable directory
        // is not "not installed", since anyone could install it.
        let open = dir.path().join("open");
        fs::create_dir(&open).unwrap();
        chmod(&open, 0o777);
        assert!(!check_trusted(&open.join("checker"))
            .unwrap_err()
            .is_missing());
    }

    #[test]
    fn a_relative_path_is_refused() {
        let err = check_trusted(Path::new("bin/checker")).unwrap_err();
        assert_eq!(err.to_string(), "bin/checker: not an absolute path");
    }
}
