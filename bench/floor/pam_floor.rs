//! The floor of a Rust PAM module: std, `panic = "unwind"` and one panic
//! boundary, and nothing else. Every hook says PAM_IGNORE, so a stack with it
//! costs what loading such a module costs and no more. bench/run builds it
//! with plain rustc, with the same link arguments as pam_deadbolt.so.
#![deny(unsafe_code)]

use std::os::raw::{c_char, c_int, c_void};
use std::panic::catch_unwind;

const PAM_IGNORE: c_int = 25;
const PAM_ABORT: c_int = 26;

/// The one boundary: what a real module's hooks all go through.
fn hook(argc: c_int) -> c_int {
    catch_unwind(|| {
        if argc > 64 {
            panic!("more module arguments than any stack gives");
        }
        PAM_IGNORE
    })
    .unwrap_or(PAM_ABORT)
}

/// The hooks a stack with the module in `auth` and `account` calls.
macro_rules! hooks {
    ($($name:ident),*) => {$(
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn $name(
            _pamh: *mut c_void,
            _flags: c_int,
            argc: c_int,
            _argv: *const *const c_char,
        ) -> c_int {
            hook(argc)
        }
    )*};
}

hooks!(pam_sm_authenticate, pam_sm_acct_mgmt, pam_sm_setcred);
