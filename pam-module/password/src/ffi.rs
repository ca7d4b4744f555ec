//! The libpam functions the password phase needs that `pam-bindings` does
//! not wrap, and the descriptors a helper it starts may inherit. With the
//! login module's `ffi` and `unload`, the only code of deadbolt allowed to be
//! unsafe; each block says why it is sound.
#![allow(unsafe_code)]

use pam::constants::PamResultCode;
use pam::module::PamHandle;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_uint, c_void};
use zeroize::Zeroize;

/// `PAM_AUTHTOK`, the item holding the password being set.
const PAM_AUTHTOK: c_int = 6;
/// `PAM_OLDAUTHTOK`, the item holding the current password.
const PAM_OLDAUTHTOK: c_int = 7;

#[link(name = "pam")]
extern "C" {
    /// Linux-PAM's extensions: prompt for the new password ("New password:")
    /// unless an earlier module already set PAM_AUTHTOK, and store it there.
    fn pam_get_authtok_noverify(
        pamh: *mut PamHandle,
        authtok: *mut *const c_char,
        prompt: *const c_char,
    ) -> c_int;
    /// Asks for it again ("Retype new password:") and compares.
    fn pam_get_authtok_verify(
        pamh: *mut PamHandle,
        authtok: *mut *const c_char,
        prompt: *const c_char,
    ) -> c_int;
    fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
    /// Returns the item (PAM_OLDAUTHTOK here), prompting for it ("Current
    /// password:") and storing it when no earlier module set it.
    fn pam_get_authtok(
        pamh: *mut PamHandle,
        item: c_int,
        authtok: *mut *const c_char,
        prompt: *const c_char,
    ) -> c_int;
}

/// A password held by deadbolt: zeroed when dropped, never printed.
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// libpam's return value as pam-bindings' enum (whose own conversion is
/// private). Anything unknown is a system error, never a success.
fn code(raw: c_int) -> PamResultCode {
    match raw {
        0 => PamResultCode::PAM_SUCCESS,
        1 => PamResultCode::PAM_OPEN_ERR,
        2 => PamResultCode::PAM_SYMBOL_ERR,
        3 => PamResultCode::PAM_SERVICE_ERR,
        4 => PamResultCode::PAM_SYSTEM_ERR,
        5 => PamResultCode::PAM_BUF_ERR,
        6 => PamResultCode::PAM_PERM_DENIED,
        7 => PamResultCode::PAM_AUTH_ERR,
        8 => PamResultCode::PAM_CRED_INSUFFICIENT,
        9 => PamResultCode::PAM_AUTHINFO_UNAVAIL,
        10 => PamResultCode::PAM_USER_UNKNOWN,
        11 => PamResultCode::PAM_MAXTRIES,
        12 => PamResultCode::PAM_NEW_AUTHTOK_REQD,
        13 => PamResultCode::PAM_ACCT_EXPIRED,
        14 => PamResultCode::PAM_SESSION_ERR,
        15 => PamResultCode::PAM_CRED_UNAVAIL,
        16 => PamResultCode::PAM_CRED_EXPIRED,
        17 => PamResultCode::PAM_CRED_ERR,
        18 => PamResultCode::PAM_NO_MODULE_DATA,
        19 => PamResultCode::PAM_CONV_ERR,
        20 => PamResultCode::PAM_AUTHTOK_ERR,
        21 => PamResultCode::PAM_AUTHTOK_RECOVERY_ERR,
        22 => PamResultCode::PAM_AUTHTOK_LOCK_BUSY,
        23 => PamResultCode::PAM_AUTHTOK_DISABLE_AGING,
        24 => PamResultCode::PAM_TRY_AGAIN,
        25 => PamResultCode::PAM_IGNORE,
        26 => PamResultCode::PAM_ABORT,
        27 => PamResultCode::PAM_AUTHTOK_EXPIRED,
        28 => PamResultCode::PAM_MODULE_UNKNOWN,
        29 => PamResultCode::PAM_BAD_ITEM,
        30 => PamResultCode::PAM_CONV_AGAIN,
        31 => PamResultCode::PAM_INCOMPLETE,
        _ => PamResultCode::PAM_SYSTEM_ERR,
    }
}

/// Copies a NUL-terminated string libpam owns into a [`Secret`].
///
/// # Safety
/// `ptr` must be null or point to a NUL-terminated string that stays valid
/// for the duration of the call.
unsafe fn copy_secret(ptr: *const c_char) -> Option<Secret> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null, and the caller promises a live NUL-terminated string.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    Some(Secret(bytes.to_vec()))
}

/// Gets the new password (prompting if no earlier module did), which libpam
/// stores in PAM_AUTHTOK. Returns the PAM error when the conversation failed.
pub fn new_password(pamh: &mut PamHandle) -> Result<Secret, PamResultCode> {
    let handle: *mut PamHandle = pamh;
    let mut token: *const c_char = std::ptr::null();
    // SAFETY: `handle` is the live handle libpam gave this module; `token` is
    // a valid out-pointer; a null prompt asks libpam for its default prompt.
    let rc = code(unsafe { pam_get_authtok_noverify(handle, &mut token, std::ptr::null()) });
    if rc != PamResultCode::PAM_SUCCESS {
        return Err(rc);
    }
    // SAFETY: on success `token` points at the PAM_AUTHTOK item, a string
    // libpam owns and keeps until the item changes, which cannot happen
    // during this copy.
    unsafe { copy_secret(token) }.ok_or(PamResultCode::PAM_AUTHTOK_ERR)
}

/// Gets the current password (prompting if no earlier module did), which
/// libpam stores in PAM_OLDAUTHTOK.
pub fn current_password(pamh: &mut PamHandle) -> Result<Secret, PamResultCode> {
    let handle: *mut PamHandle = pamh;
    let mut token: *const c_char = std::ptr::null();
    // SAFETY: `handle` is the live handle libpam gave this module; `token` is
    // a valid out-pointer; a null prompt asks libpam for its default prompt.
    let rc = code(unsafe { pam_get_authtok(handle, PAM_OLDAUTHTOK, &mut token, std::ptr::null()) });
    if rc != PamResultCode::PAM_SUCCESS {
        return Err(rc);
    }
    // SAFETY: on success `token` points at the PAM_OLDAUTHTOK item, a string
    // libpam owns and keeps until the item changes, which cannot happen
    // during this copy.
    unsafe { copy_secret(token) }.ok_or(PamResultCode::PAM_AUTHTOK_ERR)
}

/// Asks for the new password again; libpam compares it with PAM_AUTHTOK and
/// returns an error (clearing the item) when they differ.
pub fn confirm_new_password(pamh: &mut PamHandle) -> PamResultCode {
    // libpam compares the answer with the string `*authtok` points at, so it
    // must point at the current PAM_AUTHTOK, not be null.
    let mut token: *const c_char = match pamh.get_item::<pam::items::AuthTok>() {
        Ok(Some(current)) => current.as_bytes().as_ptr().cast(),
        _ => return PamResultCode::PAM_AUTHTOK_ERR,
    };
    let handle: *mut PamHandle = pamh;
    // SAFETY: `handle` is live; `token` points at the NUL-terminated
    // PAM_AUTHTOK item, which libpam owns and does not change before it has
    // compared it; the pointer is not used after the call.
    code(unsafe { pam_get_authtok_verify(handle, &mut token, std::ptr::null()) })
}

/// Forgets a refused new password so the next attempt prompts again and the
/// modules after this one never see it.
pub fn clear_new_password(pamh: &mut PamHandle) {
    let handle: *mut PamHandle = pamh;
    // SAFETY: `handle` is live; libpam accepts null to clear a string item
    // and overwrites the old value before freeing it.
    unsafe {
        pam_set_item(handle, PAM_AUTHTOK, std::ptr::null());
    }
}

/// Where the password phase keeps the argon2id hash (a PHC string) of the
/// new password it approved, for `commit` to check that the storing module
/// stored that one. Only the hash: the password itself is not kept in the
/// host's memory until pam_end.
const APPROVED_HASH: &str = "pam_deadbolt_approved_hash";

/// The value stored under [`APPROVED_HASH`].
struct ApprovedHash(String);

/// Keeps the hash of the approved new password for the rest of this
/// transaction.
pub fn set_approved(pamh: &mut PamHandle, phc: String) -> Result<(), PamResultCode> {
    pamh.set_data(APPROVED_HASH, Box::new(ApprovedHash(phc)))
}

/// The hash of the new password the password phase approved in this
/// transaction.
pub fn approved(pamh: &PamHandle) -> Option<&str> {
    // SAFETY: only `set_approved` stores data under this key, always an
    // `ApprovedHash`, the type `get_data` is told to expect.
    unsafe { pamh.get_data::<ApprovedHash>(APPROVED_HASH) }
        .ok()
        .map(|hash| hash.0.as_str())
}

/// The most descriptors the fallback of [`close_other_fds`] walks, should
/// the limit on open files be unlimited: the kernel's default `nr_open`,
/// above which no descriptor can exist unless an administrator raised it.
const MAX_FALLBACK_FDS: c_uint = 1 << 20;

/// Makes the program `command` starts receive no descriptor of this
/// process but its standard input, output and error: a host's sockets,
/// files or terminals must not reach a helper, which may misuse or hold
/// them open.
///
/// Descriptors 3 and up are marked close-on-exec in the child rather than
/// closed, so that the one std keeps open to report a failed exec still
/// works; the exec itself then closes them all.
pub fn close_other_fds(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // Read before the fork: getrlimit is not on the list of functions that
    // may run in a child of a threaded process.
    let limit = open_files_limit();
    let mark = move || {
        mark_cloexec_from(3, limit, true);
        Ok(())
    };
    // SAFETY: `mark` runs in the child between fork and exec, where only
    // async-signal-safe code may run: it makes the close_range and fcntl
    // system calls and reads errno, and neither allocates nor takes a lock.
    unsafe {
        command.pre_exec(mark);
    }
}

/// The soft limit on open files: no descriptor at or above it can be
/// opened (or had been, unless the limit was lowered since).
fn open_files_limit() -> c_uint {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the call to fill.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if rc != 0 {
        return MAX_FALLBACK_FDS;
    }
    c_uint::try_from(limit.rlim_cur)
        .unwrap_or(c_uint::MAX)
        .min(MAX_FALLBACK_FDS)
}

/// Marks every descriptor from `first` close-on-exec, with one
/// close_range call (Linux 5.11 and later), or else one fcntl per number
/// below `limit`. `use_close_range` false forces the fallback, for tests.
/// Async-signal-safe.
fn mark_cloexec_from(first: c_uint, limit: c_uint, use_close_range: bool) {
    if use_close_range {
        // SAFETY: close_range takes plain integers and touches only this
        // process's descriptor table; the raw system call does not need a
        // C library recent enough to wrap it.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                first,
                c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        };
        // ENOSYS (before 5.9) or EINVAL (the flag, before 5.11): the loop.
        if rc == 0 {
            return;
        }
    }
    for fd in first..limit {
        let Ok(fd) = c_int::try_from(fd) else { break };
        // SAFETY: fcntl on any number is sound: one that is not open
        // fails with EBADF, which is ignored. FD_CLOEXEC is the only
        // descriptor flag, so setting it alone loses nothing.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    /// A descriptor of this process that its children inherit (no
    /// close-on-exec), numbered 100 or more so it collides with nothing.
    fn inheritable_fd() -> c_int {
        // SAFETY: F_DUPFD on standard error, which is open in a test
        // process, returns a new descriptor or -1; it is never closed, so
        // nothing else can come to own the number.
        let fd = unsafe { libc::fcntl(2, libc::F_DUPFD, 100) };
        assert!(fd >= 100, "F_DUPFD failed");
        fd
    }

    /// The descriptors `sh` has when it runs, as listed by `ls` (a child
    /// of the shell, so its own directory descriptor is not among them).
    fn fds_of_shell(command: &mut Command) -> Vec<String> {
        let out = command
            .arg("-c")
            .arg("ls /proc/$$/fd")
            .output()
            .expect("run sh");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_child_keeps_only_its_standard_descriptors() {
        let leaked = inheritable_fd().to_string();
        let before = fds_of_shell(&mut Command::new("/bin/sh"));
        assert!(before.contains(&leaked), "the test's premise: {before:?}");

        let mut command = Command::new("/bin/sh");
        close_other_fds(&mut command);
        assert_eq!(fds_of_shell(&mut command), ["0", "1", "2"]);
    }

    #[test]
    fn the_fallback_without_close_range_marks_them_too() {
        let leaked = inheritable_fd();
        let limit = open_files_limit();
        assert!(c_uint::try_from(leaked).unwrap() < limit);
        let mut command = Command::new("/bin/sh");
        // SAFETY: as in close_other_fds, with the fallback forced.
        unsafe {
            command.pre_exec(move || {
                mark_cloexec_from(3, limit, false);
                Ok(())
            });
        }
        assert_eq!(fds_of_shell(&mut command), ["0", "1", "2"]);
    }

    #[test]
    fn a_failed_exec_is_still_reported() {
        let mut command = Command::new("/nonexistent/deadbolt-checker");
        close_other_fds(&mut command);
        let err = command.spawn().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }
}
