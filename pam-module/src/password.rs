//! The password phase (`pam_sm_chauthtok`): judge the new password before the
//! module that stores it sees it, and record the change once it happened.
//!
//! libpam calls every password module twice: first with PAM_PRELIM_CHECK
//! (may a change happen at all?), then with PAM_UPDATE_AUTHTOK (do it). The
//! stack has deadbolt twice:
//!
//! ```text
//! password requisite pam_deadbolt.so            # judge, then hand on PAM_AUTHTOK
//! password requisite pam_unix.so use_authtok    # store
//! password optional  pam_deadbolt.so commit     # record history and change time
//! ```
//!
//! The `commit` line is reached only when the storing module succeeded, so a
//! change that failed leaves no history behind.

use crate::ffi::{self, Secret};
use crate::log;
use crate::phases::load_config;
use deadbolt_config::EffectivePassword;
use deadbolt_core::identity;
use deadbolt_core::password::{ChangeContext, PasswordHistory, RuleFailure};
use deadbolt_core::store::Loaded;
use deadbolt_core::{StateStore, Timestamp, UserName, UserState};
use pam::constants::{PamFlag, PamResultCode, PAM_ERROR_MSG, PAM_SILENT, PAM_TEXT_INFO};
use pam::conv::Conv;
use pam::items::OldAuthTok;
use pam::module::PamHandle;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Linux-PAM's flags for the two passes of `pam_chauthtok`.
const PAM_PRELIM_CHECK: PamFlag = 0x4000;
const PAM_UPDATE_AUTHTOK: PamFlag = 0x2000;

/// The strength checker must answer within this; a hung helper must not
/// hang `passwd`.
const CHECKER_TIMEOUT: Duration = Duration::from_secs(10);

fn tell(pamh: &PamHandle, flags: PamFlag, style: pam::constants::PamMessageStyle, text: &str) {
    if flags & PAM_SILENT != 0 {
        return;
    }
    if let Ok(Some(conv)) = pamh.get_item::<Conv>() {
        let _ = conv.send(style, text);
    }
}

struct Changer {
    name: UserName,
    real_name: String,
    policy: EffectivePassword,
    state: Option<UserState>,
    store_dir: std::path::PathBuf,
    /// Service, rhost, tty and the caller's uid, for the log.
    origin: String,
}

pub fn chauthtok(
    pamh: &mut PamHandle,
    user: &[u8],
    origin: &str,
    args: &[&str],
    flags: PamFlag,
) -> PamResultCode {
    let name = match UserName::from_bytes(user) {
        Ok(name) => name,
        Err(why) => {
            log::notice(&format!("password change refused: {why}"));
            return PamResultCode::PAM_USER_UNKNOWN;
        }
    };
    let config = load_config(args);
    let Some(account) = identity::lookup(name.as_str()) else {
        // Not an account of this host: the storing module will say so.
        return PamResultCode::PAM_IGNORE;
    };
    let membership = identity::Membership::of(name.as_str(), account.gid);
    let policy = config.effective_password(|group| membership.contains(group));
    let state = StateStore::open_existing(&config.state.dir)
        .ok()
        .and_then(|store| match store.load(&name) {
            Ok(Loaded::Present(state)) => Some(state),
            _ => None,
        });
    let changer = Changer {
        name,
        real_name: account.real_name,
        policy,
        state,
        store_dir: config.state.dir.clone(),
        origin: origin.to_owned(),
    };
    let now = Timestamp::now();
    let caller_is_root = nix::unistd::getuid().is_root();
    if args.contains(&"commit") {
        if flags & PAM_UPDATE_AUTHTOK != 0 {
            if let Some(approved) = ffi::approved(pamh) {
                commit(pamh, approved, &changer, now);
            }
        }
        return PamResultCode::PAM_SUCCESS;
    }
    if flags & PAM_PRELIM_CHECK != 0 {
        return prelim(pamh, &changer, flags, now, caller_is_root);
    }
    if flags & PAM_UPDATE_AUTHTOK == 0 {
        return PamResultCode::PAM_IGNORE;
    }
    update(pamh, &changer, flags, caller_is_root)
}

/// `min_age`: no change too soon after the last one, unless one is
/// required. Root may always change a password.
fn prelim(
    pamh: &PamHandle,
    changer: &Changer,
    flags: PamFlag,
    now: Timestamp,
    caller_is_root: bool,
) -> PamResultCode {
    let Some(state) = &changer.state else {
        return PamResultCode::PAM_SUCCESS;
    };
    let age = changer.policy.ageing.evaluate(state, now);
    if age.too_soon_to_change && !caller_is_root {
        let wait_until = state
            .last_password_change
            .map(|t| t.saturating_add(changer.policy.ageing.min_age))
            .unwrap_or(now);
        tell(
            pamh,
            flags,
            PAM_ERROR_MSG,
            &format!(
                "The password was changed too recently; it can change again in {}.",
                deadbolt_core::lockout::minutes_text(now.until(wait_until))
            ),
        );
        log::notice(&format!(
            "password change of {} refused: min_age not reached ({})",
            changer.name, changer.origin
        ));
        return PamResultCode::PAM_AUTHTOK_ERR;
    }
    PamResultCode::PAM_SUCCESS
}

fn update(
    pamh: &mut PamHandle,
    changer: &Changer,
    flags: PamFlag,
    caller_is_root: bool,
) -> PamResultCode {
    let enforced = !caller_is_root || changer.policy.enforce_for_root;
    let old = match pamh.get_item::<OldAuthTok>() {
        // Empty: no old password to compare (a module may zero it once checked).
        Ok(Some(token)) if !token.as_bytes().is_empty() => Some(token.to_owned_secret()),
        _ => None,
    };
    for _ in 0..changer.policy.retry.max(1) {
        let new = match ffi::new_password(pamh) {
            Ok(new) => new,
            // The user gave up or the conversation failed: nothing to judge.
            Err(code) => return code,
        };
        let reasons = judge(changer, &new, old.as_ref().map(|o| o.as_bytes()));
        if !reasons.is_empty() {
            for reason in &reasons {
                tell(pamh, flags, PAM_ERROR_MSG, reason);
            }
            if enforced {
                log::info(&format!(
                    "new password for {} refused: {} rule(s) broken ({})",
                    changer.name,
                    reasons.len(),
                    changer.origin
                ));
                ffi::clear_new_password(pamh);
                continue;
            }
            tell(
                pamh,
                flags,
                PAM_TEXT_INFO,
                "Accepted anyway: enforce_for_root = false lets root set it.",
            );
        }
        match ffi::confirm_new_password(pamh) {
            PamResultCode::PAM_SUCCESS => {}
            // libpam said "Sorry, passwords do not match" and cleared it.
            PamResultCode::PAM_TRY_AGAIN | PamResultCode::PAM_AUTHTOK_RECOVERY_ERR => {
                ffi::clear_new_password(pamh);
                continue;
            }
            code => return code,
        }
        if let Err(code) = ffi::set_approved(pamh, new) {
            return code;
        }
        return PamResultCode::PAM_SUCCESS;
    }
    log::notice(&format!(
        "password change of {} refused after {} attempts ({})",
        changer.name, changer.policy.retry, changer.origin
    ));
    PamResultCode::PAM_MAXTRIES
}

/// Every reason to refuse `new`, as sentences for the user. The cheap rules
/// first; the strength checker and the history (an argon2 run per entry)
/// only for a password that passed them.
fn judge(changer: &Changer, new: &Secret, old: Option<&[u8]>) -> Vec<String> {
    let ctx = ChangeContext {
        user: changer.name.as_str(),
        real_name: &changer.real_name,
        old_password: old,
    };
    let policy = &changer.policy;
    let mut reasons: Vec<String> = policy
        .rules
        .check(new.as_bytes(), &ctx)
        .iter()
        .map(ToString::to_string)
        .collect();
    if !reasons.is_empty() {
        return reasons;
    }
    reasons.extend(strength(changer, new));
    if !reasons.is_empty() {
        return reasons;
    }
    let remember = policy.rules.remember;
    if remember > 0 {
        if let Some(state) = &changer.state {
            if PasswordHistory::reused(state, new.as_bytes(), remember) {
                reasons.push(RuleFailure::Reused(remember).to_string());
            }
        }
    }
    reasons
}

/// Asks the strength checker. When it cannot answer, the rules alone apply
/// and the log says why: a broken checker must not block every change.
fn strength(changer: &Changer, new: &Secret) -> Vec<String> {
    let policy = &changer.policy;
    let mut command = Command::new(&policy.checker);
    command
        .arg("--user")
        .arg(changer.name.as_str())
        .arg("--real-name")
        .arg(&changer.real_name)
        .arg("--min-strength")
        .arg(policy.min_strength.to_string());
    if policy.lists.is_empty() {
        command.arg("--no-lists");
    }
    for list in &policy.lists {
        command.arg("--list").arg(list);
    }
    let mut child = match command
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(err) => {
            log::error(&format!(
                "strength checker {} unavailable ({err}); only the rules were applied",
                policy.checker.display()
            ));
            return Vec::new();
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // The password goes through a pipe: never argv, never the environment.
        let _ = stdin.write_all(new.as_bytes());
    }
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() < CHECKER_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(2));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let mut output = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = stdout.take(64 * 1024).read_to_end(&mut output);
    }
    let verdict: Option<serde_json::Value> = status
        .filter(|s| s.code() == Some(0) || s.code() == Some(1))
        .and_then(|_| serde_json::from_slice(&output).ok());
    let Some(verdict) = verdict else {
        log::error(&format!(
            "strength checker {} gave no verdict; only the rules were applied",
            policy.checker.display()
        ));
        return Vec::new();
    };
    for problem in verdict["list_problems"].as_array().into_iter().flatten() {
        if let Some(text) = problem.as_str() {
            log::error(&format!("password list: {text}"));
        }
    }
    if verdict["accepted"].as_bool() == Some(true) {
        return Vec::new();
    }
    let reasons: Vec<String> = verdict["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect();
    if reasons.is_empty() {
        vec!["BAD PASSWORD: it is too easy to guess.".to_owned()]
    } else {
        reasons
    }
}

/// The storing module succeeded: keep the new password's hash and the time.
fn commit(pamh: &PamHandle, approved: &Secret, changer: &Changer, now: Timestamp) {
    let stored = pamh.get_item::<pam::items::AuthTok>().ok().flatten();
    if stored
        .as_ref()
        .is_some_and(|token| token.as_bytes() != approved.as_bytes())
    {
        // The storing module asked for a password of its own: the stack
        // lacks `use_authtok`, and the password it stored was never judged.
        log::error(&format!(
            "password of {} changed to one deadbolt did not judge: give the storing \
             module use_authtok ({})",
            changer.name, changer.origin
        ));
    }
    let remember = changer.policy.rules.remember;
    let phc = if remember == 0 {
        None
    } else {
        match stored {
            Some(token) => match changer.policy.hash.hash(token.as_bytes()) {
                Ok(phc) => Some(phc),
                Err(err) => {
                    log::error(&format!("history of {} not kept: {err}", changer.name));
                    None
                }
            },
            _ => None,
        }
    };
    let result = StateStore::open_or_create(&changer.store_dir).and_then(|store| {
        store.update(&changer.name, now, |state| {
            PasswordHistory::record_change(state, phc, remember, now);
            true
        })
    });
    match result {
        Ok(_) => log::notice(&format!(
            "password of {} changed; the history keeps the last {remember} ({})",
            changer.name, changer.origin
        )),
        Err(err) => log::error(&format!(
            "password of {} changed but not recorded: {err} ({})",
            changer.name, changer.origin
        )),
    }
}
