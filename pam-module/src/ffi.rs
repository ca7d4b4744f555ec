//! The libpam functions that `pam-bindings` does not wrap. This is the only
//! module of deadbolt with unsafe code; each block says why it is sound.
#![allow(unsafe_code)]

use pam::constants::PamResultCode;
use pam::module::PamHandle;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_uint, c_void};
use std::time::Duration;
use zeroize::Zeroize;

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

/// `PAM_AUTHTOK`, the item holding the password being set.
const PAM_AUTHTOK: c_int = 6;

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
