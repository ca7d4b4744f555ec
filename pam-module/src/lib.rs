//! `pam_deadbolt.so`: the PAM shell around deadbolt's core.
//!
//! The entry points come from `pam-bindings`, which wraps each in
//! `catch_unwind` (a panic returns PAM_ABORT) and checks the handle for null.
//! The few libpam calls it lacks are declared in the `ffi` module, which
//! with `unload` is the only code allowed to be unsafe. Everything else is
//! ordinary safe Rust: `phases` decides, this file only fetches PAM items and
//! delivers the verdict. The password phase is another object,
//! `pam_deadbolt_password.so` (pam-module/password), loaded only by a
//! password change.
#![deny(unsafe_code)]

mod ffi;
mod items;
mod limits;
mod log;
mod phases;
mod settings;
mod unload;

use items::{module_args, origin_items, panic_if_asked, user_name};
use pam::constants::{PamFlag, PamResultCode, PAM_ERROR_MSG, PAM_SILENT, PAM_TEXT_INFO};
use pam::conv::Conv;
use pam::items::AuthTok;
use pam::module::{PamHandle, PamHooks};
use phases::{Phase, Request, Verdict};
use std::ffi::CStr;

/// The exported `pam_sm_*` functions. The macro's functions are `unsafe
/// extern "C"` by nature; each only forwards to pam-bindings' `invoke_hook`,
/// which checks the handle for null and catches any panic (PAM_ABORT).
#[allow(unsafe_code)]
mod entry {
    pub struct Deadbolt;
    pam::pam_hooks!(Deadbolt);
}

use entry::Deadbolt;

impl PamHooks for Deadbolt {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        let args = module_args(&args);
        let phase = if args.contains(&"authfail") {
            Phase::AuthFail
        } else if args.contains(&"authsucc") {
            Phase::AuthSucc
        } else if args.contains(&"preauth") {
            Phase::PreAuth
        } else {
            log::error("no mode given in the auth stack: use preauth, authfail or authsucc");
            return PamResultCode::PAM_SERVICE_ERR;
        };
        run(pamh, phase, &args, flags)
    }

    fn acct_mgmt(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        run(pamh, Phase::Account, &module_args(&args), flags)
    }

    /// Only a password change needs the password phase: it lives in an
    /// object of its own, loaded here (see `ffi::chauthtok_in_password_object`).
    fn sm_chauthtok(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        match ffi::chauthtok_in_password_object(pamh, &args, flags) {
            Ok(code) => code,
            Err(why) => {
                log::error(&format!("the password phase cannot run: {why}"));
                PamResultCode::PAM_SYSTEM_ERR
            }
        }
    }

    fn sm_setcred(_pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        PamResultCode::PAM_SUCCESS
    }
}

fn run(pamh: &mut PamHandle, phase: Phase, args: &[&str], flags: PamFlag) -> PamResultCode {
    let _limits = limits::raise();
    panic_if_asked(args);
    let user = match user_name(pamh) {
        Ok(user) => user,
        Err(code) => return code,
    };
    let (service, rhost, tty) = origin_items(pamh);
    // Only whether a password was typed matters; the token itself is never read.
    let password_given = matches!(pamh.get_item::<AuthTok>(), Ok(Some(_)));
    let request = Request {
        phase,
        user: &user,
        service: service.as_deref().unwrap_or(""),
        rhost: rhost.as_deref().unwrap_or(""),
        tty: tty.as_deref().unwrap_or(""),
        password_given,
        refused_earlier: ffi::has_mark(pamh, ffi::REFUSED),
        args,
        now: deadbolt_core::Timestamp::now(),
        attempt: ffi::attempt(pamh)
            .as_deref()
            .and_then(deadbolt_core::store::AttemptId::parse),
    };
    let Verdict {
        code,
        message,
        warning,
        delay,
        attempt,
    } = {
        let mut cache = ffi::take_state_cache(pamh);
        let verdict = phases::decide(&request, &mut cache);
        ffi::keep_state_cache(pamh, cache);
        verdict
    };
    // Kept for authfail or authsucc; a later preauth (sshd retries in one
    // transaction) replaces it, and authfail or authsucc use it up.
    let kept = match (&attempt, phase) {
        (Some(id), _) => ffi::set_attempt(pamh, id.as_str()),
        (None, Phase::AuthFail | Phase::AuthSucc | Phase::Account) if request.attempt.is_some() => {
            ffi::set_attempt(pamh, "")
        }
        _ => Ok(()),
    };
    if kept.is_err() && attempt.is_some() {
        // The attempt stays recorded as a failure: fail closed.
        log::error("could not keep the attempt's id in the PAM transaction");
    }
    if phase == Phase::PreAuth && code != PamResultCode::PAM_SUCCESS {
        let _ = ffi::set_mark(pamh, ffi::REFUSED);
    }
    let quiet = flags & PAM_SILENT != 0;
    // preauth, authfail and authsucc run in one transaction: say why the
    // account is refused once, not at every step.
    let message = message.filter(|_| !ffi::has_mark(pamh, ffi::TOLD_WHY));
    if message.is_some() {
        let _ = ffi::set_mark(pamh, ffi::TOLD_WHY);
    }
    if !quiet {
        if let Ok(Some(conv)) = pamh.get_item::<Conv>() {
            if let Some(text) = message {
                let _ = conv.send(PAM_ERROR_MSG, &text);
            }
            if let Some(text) = warning {
                let _ = conv.send(PAM_TEXT_INFO, &text);
            }
        }
    }
    if let Some(delay) = delay {
        ffi::fail_delay(pamh, delay);
    }
    code
}
