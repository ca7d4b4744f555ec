//! The libpam functions the login phases need that `pam-bindings` does not
//! wrap, and the loading of the password phase's object. With `unload` (and
//! the password object's own `ffi`), the only code of deadbolt allowed to be
//! unsafe; each block says why it is sound.
#![allow(unsafe_code)]

use deadbolt_core::store::DecodeCache;
use pam::constants::{PamFlag, PamResultCode};
use pam::module::PamHandle;
use std::cell::RefCell;
use std::ffi::{CStr, CString, OsStr};
use std::fmt;
use std::os::raw::{c_char, c_int, c_uint, c_void};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

#[link(name = "pam")]
extern "C" {
    /// `int pam_fail_delay(pam_handle_t *pamh, unsigned int musec_delay);`
    /// libpam keeps the largest delay requested by any module and waits that
    /// long (randomised by up to 25%) before returning a failure.
    fn pam_fail_delay(pamh: *mut PamHandle, musec_delay: c_uint) -> c_int;
}

/// Asks libpam to pause before it reports this failure.
pub fn fail_delay(pamh: &mut PamHandle, delay: Duration) {
    let micros = c_uint::try_from(delay.as_micros()).unwrap_or(c_uint::MAX);
    let handle: *mut PamHandle = pamh;
    // SAFETY: `handle` comes from a live `&mut PamHandle`, which pam-bindings
    // only builds from the non-null handle libpam passed to this module; the
    // call reads nothing else and keeps no pointer.
    unsafe {
        pam_fail_delay(handle, micros);
    }
}

/// Marks this PAM transaction (`pam_set_data`) so a later call of the module
/// in the same transaction can tell. `key` must start with `pam_deadbolt_`.
pub fn set_mark(pamh: &mut PamHandle, key: &'static str) -> Result<(), PamResultCode> {
    debug_assert!(key.starts_with("pam_deadbolt_"));
    pamh.set_data(key, Box::new(Mark))
}

/// Whether [`set_mark`] ran earlier in this transaction with `key`.
pub fn has_mark(pamh: &PamHandle, key: &'static str) -> bool {
    // SAFETY: only `set_mark` stores data under `pam_deadbolt_` keys, and
    // always a `Mark`, the type `get_data` is told to expect.
    unsafe { pamh.get_data::<Mark>(key) }.is_ok()
}

/// The value stored by [`set_mark`]: its presence is the whole message.
pub struct Mark;

/// Set once preauth refused the account (and logged why).
pub const REFUSED: &str = "pam_deadbolt_refused";
/// Set once the user was told why the account refuses logins, so later
/// calls in the same transaction do not say it again.
pub const TOLD_WHY: &str = "pam_deadbolt_told_why";

/// Where preauth keeps the id of the attempt it recorded, for authfail or
/// authsucc to settle or withdraw in the same transaction.
const ATTEMPT: &str = "pam_deadbolt_attempt";

/// The value stored under [`ATTEMPT`]: an attempt id, or empty once used.
struct AttemptMark(String);

/// Keeps `id` for the rest of this transaction, replacing any earlier one.
pub fn set_attempt(pamh: &mut PamHandle, id: &str) -> Result<(), PamResultCode> {
    pamh.set_data(ATTEMPT, Box::new(AttemptMark(id.to_owned())))
}

/// The attempt id [`set_attempt`] kept in this transaction, if any.
pub fn attempt(pamh: &PamHandle) -> Option<String> {
    // SAFETY: only `set_attempt` stores data under this key, always an
    // `AttemptMark`, the type `get_data` is told to expect.
    unsafe { pamh.get_data::<AttemptMark>(ATTEMPT) }
        .ok()
        .map(|mark| mark.0.clone())
        .filter(|id| !id.is_empty())
}

/// Where the transaction keeps the state its calls last decoded.
const STATE_CACHE: &str = "pam_deadbolt_state_cache";

/// The value stored under [`STATE_CACHE`]. libpam hands its data back by
/// shared pointer, and one handle is used by one thread at a time.
struct StateCache(RefCell<DecodeCache>);

/// What earlier calls in this transaction decoded, or an empty cache.
pub fn take_state_cache(pamh: &PamHandle) -> DecodeCache {
    // SAFETY: only `keep_state_cache` stores data under this key, always a
    // `StateCache`, the type `get_data` is told to expect.
    unsafe { pamh.get_data::<StateCache>(STATE_CACHE) }
        .map(|kept| kept.0.take())
        .unwrap_or_default()
}

/// Keeps `cache` for the later calls of this transaction; libpam drops it
/// at pam_end.
pub fn keep_state_cache(pamh: &mut PamHandle, cache: DecodeCache) {
    // SAFETY: as in `take_state_cache`.
    if let Ok(kept) = unsafe { pamh.get_data::<StateCache>(STATE_CACHE) } {
        kept.0.replace(cache);
        return;
    }
    // Without it the next call decodes again: slower, no less right.
    let _ = pamh.set_data(STATE_CACHE, Box::new(StateCache(RefCell::new(cache))));
}

/// What the password phase's object is called, beside this one:
/// `pam_deadbolt.so` finds `pam_deadbolt_password.so` (and, as cargo names
/// them, `libpam_deadbolt.so` finds `libpam_deadbolt_password.so`).
const PASSWORD_OBJECT_SUFFIX: &str = "_password.so";

/// The signature of `pam_sm_chauthtok` as pam-bindings' macro exports it.
type Chauthtok = unsafe extern "C" fn(
    pamh: *mut PamHandle,
    flags: PamFlag,
    argc: c_int,
    argv: *const *const c_char,
) -> PamResultCode;

/// Why the password phase could not be reached.
#[derive(Debug)]
pub enum PasswordObjectError {
    /// The loader does not say which file this object was loaded from.
    NoOwnPath,
    /// The object beside this one is missing, or could have been written by
    /// someone other than who installed this one.
    Untrusted(PathBuf, String),
    /// The loader refused it, in its own words.
    Load(PathBuf, String),
}

impl fmt::Display for PasswordObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoOwnPath => f.write_str("the loader does not say where pam_deadbolt.so is"),
            Self::Untrusted(path, why) => write!(f, "{}: {why}", path.display()),
            Self::Load(path, why) => write!(f, "loading {}: {why}", path.display()),
        }
    }
}

/// The file this object was loaded from, as the loader recorded it.
fn own_path() -> Option<PathBuf> {
    let mut info = libc::Dl_info {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    };
    let inside = own_path as fn() -> Option<PathBuf>;
    // SAFETY: dladdr only looks the address up among the loaded objects and
    // fills `info`, a valid, writable Dl_info.
    let found = unsafe { libc::dladdr(inside as *const c_void, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: `dli_fname` is the loader's NUL-terminated name of the object
    // holding `inside`, this one, which stays loaded during this call.
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    Some(PathBuf::from(OsStr::from_bytes(name.to_bytes())))
}

/// The password phase's object beside this one, checked as the loader
/// cannot: a regular file of the owner of this object, that nobody else
/// may write.
fn password_object() -> Result<PathBuf, PasswordObjectError> {
    let own = own_path().ok_or(PasswordObjectError::NoOwnPath)?;
    let stem = own
        .to_str()
        .and_then(|text| text.strip_suffix(".so"))
        .ok_or(PasswordObjectError::NoOwnPath)?;
    let path = PathBuf::from(format!("{stem}{PASSWORD_OBJECT_SUFFIX}"));
    let untrusted = |why: String| PasswordObjectError::Untrusted(path.clone(), why);
    let own_meta = std::fs::metadata(&own).map_err(|e| untrusted(e.to_string()))?;
    let meta = std::fs::metadata(&path).map_err(|e| untrusted(e.to_string()))?;
    if !meta.is_file() {
        return Err(untrusted("not a regular file".to_owned()));
    }
    if meta.uid() != own_meta.uid() || meta.mode() & 0o022 != 0 {
        return Err(untrusted(format!(
            "owned by uid {} with mode {:o}: only the owner of pam_deadbolt.so (uid {}) \
             may write it",
            meta.uid(),
            meta.mode() & 0o7777,
            own_meta.uid()
        )));
    }
    Ok(path)
}

/// The loader's last error, in its words.
fn loader_error() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated message that stays
    // valid until the next dl* call in this thread; it is copied at once.
    let text = unsafe { libc::dlerror() };
    if text.is_null() {
        return "no reason given".to_owned();
    }
    // SAFETY: non-null, so the message described above.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

/// Runs the password phase, which lives in an object of its own so that a
/// login, which loads this module afresh each time, does not pay for what
/// only a password change needs (the checker's process and socket, argon2):
/// the object is loaded here, at the first password change in the process,
/// and called with the arguments libpam gave this module. Its
/// `pam_sm_chauthtok` has its own panic boundary.
pub fn chauthtok_in_password_object(
    pamh: &mut PamHandle,
    args: &[&CStr],
    flags: PamFlag,
) -> Result<PamResultCode, PasswordObjectError> {
    let path = password_object()?;
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| PasswordObjectError::Load(path.clone(), "a NUL in its path".to_owned()))?;
    // RTLD_NODELETE: what the password phase keeps in the PAM handle
    // (pam_set_data) is freed by its own code at pam_end, after this call
    // has returned, so its code must stay mapped; a second load finds it.
    // SAFETY: `c_path` is NUL-terminated; the object's initialisers are
    // those of Rust's std and of deadbolt, which keep to themselves.
    let handle = unsafe {
        libc::dlopen(
            c_path.as_ptr(),
            libc::RTLD_NOW | libc::RTLD_LOCAL | libc::RTLD_NODELETE,
        )
    };
    if handle.is_null() {
        return Err(PasswordObjectError::Load(path, loader_error()));
    }
    // SAFETY: `handle` is the live handle dlopen returned; the name is
    // NUL-terminated.
    let symbol = unsafe { libc::dlsym(handle, c"pam_sm_chauthtok".as_ptr()) };
    if symbol.is_null() {
        let why = loader_error();
        // SAFETY: `handle` came from dlopen and is closed once.
        unsafe { libc::dlclose(handle) };
        return Err(PasswordObjectError::Load(path, why));
    }
    // SAFETY: the object is deadbolt's password phase, checked above to be
    // installed as this one is; its `pam_sm_chauthtok` comes from
    // pam-bindings' macro with exactly the signature of `Chauthtok`.
    let entry = unsafe { std::mem::transmute::<*mut c_void, Chauthtok>(symbol) };
    let argv: Vec<*const c_char> = args.iter().map(|arg| arg.as_ptr()).collect();
    let argc = c_int::try_from(argv.len()).unwrap_or(c_int::MAX);
    let handle_of_pam: *mut PamHandle = pamh;
    // SAFETY: the handle is the live one libpam gave this module; `argv`
    // holds `argc` pointers to the NUL-terminated arguments libpam gave,
    // all of which outlive the call; the callee catches its own panics.
    let code = unsafe { entry(handle_of_pam, flags, argc, argv.as_ptr()) };
    // SAFETY: `handle` came from dlopen and is closed once; RTLD_NODELETE
    // keeps the object mapped.
    unsafe { libc::dlclose(handle) };
    Ok(code)
}
