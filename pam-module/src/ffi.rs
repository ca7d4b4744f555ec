//! The libpam functions that `pam-bindings` does not wrap. This is the only
//! module of deadbolt with unsafe code; each block says why it is sound.
#![allow(unsafe_code)]

use pam::module::PamHandle;
use std::os::raw::{c_int, c_uint};
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
