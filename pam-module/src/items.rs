//! What both objects (the login module and the password phase's) read
//! from libpam at the start of a call: the module arguments, the user and
//! where the request comes from.

use crate::log;
use pam::constants::PamResultCode;
use pam::items::{RHost, Service, Tty, User};
use pam::module::PamHandle;
use std::ffi::CStr;

/// Module arguments that are not UTF-8 cannot be ours: they are logged and
/// skipped, like any other unknown argument.
pub fn module_args<'a>(args: &[&'a CStr]) -> Vec<&'a str> {
    args.iter()
        .filter_map(|a| match a.to_str() {
            Ok(s) => Some(s),
            Err(_) => {
                log::error("ignoring a module argument that is not UTF-8");
                None
            }
        })
        .collect()
}

fn item_text(item: Option<&CStr>) -> Option<String> {
    item.map(|c| String::from_utf8_lossy(c.to_bytes()).into_owned())
}

/// PAM_SERVICE, PAM_RHOST and PAM_TTY: where a request comes from.
pub fn origin_items(pamh: &PamHandle) -> (Option<String>, Option<String>, Option<String>) {
    (
        item_text(pamh.get_item::<Service>().ok().flatten().map(|s| s.0)),
        item_text(pamh.get_item::<RHost>().ok().flatten().map(|s| s.0)),
        item_text(pamh.get_item::<Tty>().ok().flatten().map(|s| s.0)),
    )
}

/// The `test_panic` argument lets the test suite prove that a panic ends
/// as PAM_ABORT at the boundary rather than killing the host program.
pub fn panic_if_asked(args: &[&str]) {
    if args.contains(&"test_panic") {
        panic!("test_panic: deliberate panic requested by the module arguments");
    }
}

/// The user name as raw bytes: checked by the caller, never trusted here.
pub fn user_name(pamh: &mut PamHandle) -> Result<Vec<u8>, PamResultCode> {
    match pamh.get_item::<User>()? {
        Some(User(name)) => Ok(name.to_bytes().to_vec()),
        // Not set yet: ask the application, as pam_faillock does.
        None => pamh.get_user(None).map(String::into_bytes),
    }
}
