//! The application side of libpam: just enough to log in once.
#![allow(unsafe_code)]

use libc::{c_char, c_int, c_void};
use std::ffi::CString;

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

#[repr(C)]
struct PamConv {
    conv: extern "C" fn(c_int, *mut *const PamMessage, *mut *mut PamResponse, *mut c_void) -> c_int,
    appdata_ptr: *mut c_void,
}

#[link(name = "pam")]
extern "C" {
    fn pam_start(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        pamh: *mut *mut c_void,
    ) -> c_int;
    fn pam_authenticate(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_acct_mgmt(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
}

const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_CONV_ERR: c_int = 19;

/// Answers every prompt with the password in `appdata`; other messages get
/// an empty response. Responses are allocated with malloc: libpam frees them.
extern "C" fn answer(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    if num_msg <= 0 || msg.is_null() || resp.is_null() || appdata.is_null() {
        return PAM_CONV_ERR;
    }
    let count = num_msg as usize;
    // SAFETY: calloc of `count` zeroed responses; checked for null below.
    let replies =
        unsafe { libc::calloc(count, std::mem::size_of::<PamResponse>()) } as *mut PamResponse;
    if replies.is_null() {
        return PAM_CONV_ERR;
    }
    for i in 0..count {
        // SAFETY: libpam passes `num_msg` message pointers (Linux-PAM layout:
        // an array of pointers), each valid for this call.
        let style = unsafe { (**msg.add(i)).msg_style };
        if style == PAM_PROMPT_ECHO_OFF || style == PAM_PROMPT_ECHO_ON {
            // SAFETY: `appdata` is the NUL-terminated password owned by
            // `login` for the whole transaction; strdup copies it for libpam.
            let copy = unsafe { libc::strdup(appdata as *const c_char) };
            // SAFETY: `i < count`, inside the calloc'd array.
            unsafe { (*replies.add(i)).resp = copy };
        }
    }
    // SAFETY: `resp` is libpam's out-pointer, checked non-null above.
    unsafe { *resp = replies };
    0
}

/// One login; `Err` carries libpam's code when a step fails.
pub fn login(service: &str, user: &str, password: &str) -> Result<(), String> {
    let service = CString::new(service).map_err(|e| e.to_string())?;
    let user = CString::new(user).map_err(|e| e.to_string())?;
    let password = CString::new(password).map_err(|e| e.to_string())?;
    let conv = PamConv {
        conv: answer,
        appdata_ptr: password.as_ptr() as *mut c_void,
    };
    let mut pamh: *mut c_void = std::ptr::null_mut();
    // SAFETY: all strings are NUL-terminated and outlive the transaction;
    // `conv` lives until pam_end below.
    let rc = unsafe { pam_start(service.as_ptr(), user.as_ptr(), &conv, &mut pamh) };
    if rc != 0 || pamh.is_null() {
        return Err(format!("pam_start returned {rc}"));
    }
    // SAFETY: `pamh` is the live handle from pam_start.
    let mut rc = unsafe { pam_authenticate(pamh, 0) };
    let step = if rc == 0 {
        // SAFETY: as above.
        rc = unsafe { pam_acct_mgmt(pamh, 0) };
        "pam_acct_mgmt"
    } else {
        "pam_authenticate"
    };
    // SAFETY: ends the transaction started above; `pamh` is not used after.
    unsafe { pam_end(pamh, rc) };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!("{step} returned {rc}"))
    }
}
