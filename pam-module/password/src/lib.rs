//! `pam_deadbolt_password.so`: deadbolt's password phase, in an object of
//! its own. Every login loads pam_deadbolt.so afresh, and pays for every
//! symbol it imports and every page it touches; what only a password change
//! needs (starting the strength checker, the hand-off socket to
//! deadbolt-syncd, argon2) is here instead, and pam_deadbolt.so loads it from
//! beside itself when `pam_sm_chauthtok` is called.
//!
//! The entry point comes from `pam-bindings`, which wraps it in
//! `catch_unwind` (a panic returns PAM_ABORT): the boundary of this object.
//! The files shared with the login module are compiled here from
//! pam-module/src.
#![deny(unsafe_code)]

mod ffi;
#[path = "../../src/items.rs"]
mod items;
// The login module uses the rest of these three: the floor on writes, one
// more log level, and whether the configuration is trusted (which
// `password` judges by itself).
#[allow(dead_code)]
#[path = "../../src/limits.rs"]
mod limits;
#[allow(dead_code)]
#[path = "../../src/log.rs"]
mod log;
mod password;
#[allow(dead_code)]
#[path = "../../src/settings.rs"]
mod settings;
#[path = "../../src/unload.rs"]
mod unload;

use items::{module_args, origin_items, panic_if_asked, user_name};
use pam::constants::{PamFlag, PamResultCode};
use pam::module::{PamHandle, PamHooks};
use std::ffi::CStr;

/// The exported `pam_sm_*` functions. The macro's functions are `unsafe
/// extern "C"` by nature; each only forwards to pam-bindings' `invoke_hook`,
/// which checks the handle for null and catches any panic (PAM_ABORT). Only
/// `pam_sm_chauthtok` does anything: the others return PAM_IGNORE.
#[allow(unsafe_code)]
mod entry {
    pub struct PasswordPhase;
    pam::pam_hooks!(PasswordPhase);
}

use entry::PasswordPhase;

impl PamHooks for PasswordPhase {
    fn sm_chauthtok(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        let args = module_args(&args);
        let _limits = limits::raise();
        panic_if_asked(&args);
        let user = match user_name(pamh) {
            Ok(user) => user,
            Err(code) => return code,
        };
        let (service, rhost, tty) = origin_items(pamh);
        let origin = format!(
            "{} uid={}",
            log::origin(
                service.as_deref().unwrap_or(""),
                rhost.as_deref().unwrap_or(""),
                tty.as_deref().unwrap_or("")
            ),
            nix::unistd::getuid()
        );
        password::chauthtok(pamh, &user, &origin, &args, flags)
    }
}
