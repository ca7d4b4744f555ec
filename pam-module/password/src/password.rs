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
//!
//! With `[directory] password_store = "directory"` deadbolt is the storing
//! module: the stack is the first line alone. The update pass asks for the
//! current password, hands both to deadbolt-syncd ([`handoff`]) and records
//! the change only once the directory holds it.

mod handoff;

use crate::ffi::{self, Secret};
use crate::log;
use crate::settings::load_config;
use deadbolt_config::{check_trusted, EffectivePassword, PasswordStore, Untrusted};
use deadbolt_core::identity;
use deadbolt_core::password::{
    self as rules, ChangeContext, HistoryVerdict, PasswordHistory, RuleFailure, HISTORY_TIME_LIMIT,
};
use deadbolt_core::store::Loaded;
use deadbolt_core::{StateStore, Timestamp, UserName, UserState};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal};
use nix::sys::socket::{
    send, shutdown, socketpair, AddressFamily, MsgFlags, Shutdown, SockFlag, SockType,
};
use nix::unistd::Pid;
use pam::constants::{
    PamFlag, PamResultCode, PAM_CHANGE_EXPIRED_AUTHTOK, PAM_ERROR_MSG, PAM_SILENT, PAM_TEXT_INFO,
};
use pam::conv::Conv;
use pam::items::OldAuthTok;
use pam::module::PamHandle;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Linux-PAM's flags for the two passes of `pam_chauthtok`.
const PAM_PRELIM_CHECK: PamFlag = 0x4000;
const PAM_UPDATE_AUTHTOK: PamFlag = 0x2000;

/// The strength checker must answer within this; a hung helper must not
/// hang `passwd`.
const CHECKER_TIMEOUT: Duration = Duration::from_secs(10);

/// The most output read from the strength checker: its verdict is one short
/// line, so more than this is not a verdict.
const MAX_VERDICT_BYTES: usize = 64 * 1024;

/// The daemon's password socket in the sync directory (deadbolt-syncd's
/// `password::SOCKET_NAME`).
const HANDOFF_SOCKET: &str = "password.sock";

/// What the user is told when the strength checker gave no verdict.
const MSG_UNCHECKED: &str =
    "BAD PASSWORD: its strength could not be checked; try again, or ask an administrator.";

/// What the user is told when the checker or a list could have been
/// changed by someone other than root.
const MSG_UNTRUSTED: &str = "The password cannot be changed: the strength checker or a list it \
                             reads is not safe to use; ask an administrator.";

/// What the user is told when some history entry could not be compared.
const MSG_HISTORY_UNCHECKED: &str =
    "BAD PASSWORD: the password history could not be checked; try again, or ask an \
     administrator.";

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
    /// Where the password is stored when deadbolt stores it.
    directory: Option<DirectoryStore>,
}

/// `password_store = "directory"`: the daemon's socket, and how long its
/// answer may take (every server of `uri` tried, each with `timeout` to
/// connect and to answer).
struct DirectoryStore {
    socket: PathBuf,
    timeout: Duration,
}

pub fn chauthtok(
    pamh: &mut PamHandle,
    user: &[u8],
    origin: &str,
    args: &[&str],
    flags: PamFlag,
) -> PamResultCode {
    let typed = match UserName::from_bytes(user) {
        Ok(name) => name,
        Err(why) => {
            log::notice(&format!("password change refused: {why}"));
            return PamResultCode::PAM_USER_UNKNOWN;
        }
    };
    let config = load_config(args);
    let Some(account) = identity::lookup(typed.as_str()) else {
        // Not an account of this host: the storing module will say so.
        return PamResultCode::PAM_IGNORE;
    };
    // State is kept under the account's own name (NSS's spelling), so
    // `ALICE` and `alice` share one history and one change time.
    let name = if account.name == typed.as_str() {
        typed
    } else {
        match UserName::parse(&account.name) {
            Ok(own) => {
                log::info(&format!(
                    "password change of {own}, named {typed} at the prompt ({origin})"
                ));
                own
            }
            Err(why) => {
                log::error(&format!(
                    "password change of {typed} refused: NSS names the account in a way \
                     deadbolt cannot store ({why}) ({origin})"
                ));
                return PamResultCode::PAM_USER_UNKNOWN;
            }
        }
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
        directory: config
            .directory
            .as_ref()
            .filter(|d| d.password_store == PasswordStore::Directory)
            .map(|d| DirectoryStore {
                socket: config.sync.dir.join(HANDOFF_SOCKET),
                timeout: d
                    .timeout
                    .saturating_mul(3 * d.uris.len().max(1) as u32)
                    .saturating_add(Duration::from_secs(5)),
            }),
    };
    let now = Timestamp::now();
    // Root changing a password by choice (`passwd alice`), not sshd or login
    // running as root to make the user change an expired one: then the user
    // is at the prompt, and min_age and the rules hold for him, as in
    // pam_unix and pam_pwquality.
    let caller_is_root = nix::unistd::getuid().is_root() && flags & PAM_CHANGE_EXPIRED_AUTHTOK == 0;
    if args.contains(&"commit") {
        // With the directory as the store, the update pass recorded it.
        if flags & PAM_UPDATE_AUTHTOK != 0 && changer.directory.is_none() {
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
/// required. Root may always change a password (but not a user whose
/// expired password root's sshd or login asks him to change).
fn prelim(
    pamh: &mut PamHandle,
    changer: &Changer,
    flags: PamFlag,
    now: Timestamp,
    caller_is_root: bool,
) -> PamResultCode {
    // Before the new password is even asked for: it could not be judged.
    // (A checker that is not installed is said in the update pass.)
    match trusted_helper(&changer.policy) {
        Err(why) if !why.is_missing() => {
            log_untrusted(changer, &why);
            tell(pamh, flags, PAM_ERROR_MSG, MSG_UNTRUSTED);
            return PamResultCode::PAM_AUTHTOK_ERR;
        }
        _ => {}
    }
    if let Some(code) = too_soon(pamh, changer, flags, now, caller_is_root) {
        return code;
    }
    // The directory checks it at the end; asked first, as pam_unix does.
    if changer.directory.is_some() {
        if let Err(code) = ffi::current_password(pamh) {
            return code;
        }
    }
    PamResultCode::PAM_SUCCESS
}

/// `min_age`'s refusal, when the change comes too soon.
fn too_soon(
    pamh: &PamHandle,
    changer: &Changer,
    flags: PamFlag,
    now: Timestamp,
    caller_is_root: bool,
) -> Option<PamResultCode> {
    let state = changer.state.as_ref()?;
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
        return Some(PamResultCode::PAM_AUTHTOK_ERR);
    }
    None
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
        Ok(Some(token)) if !token.as_bytes().is_empty() => {
            Some(Zeroizing::new(token.as_bytes().to_vec()))
        }
        _ if changer.directory.is_some() => match ffi::current_password(pamh) {
            Ok(current) => Some(Zeroizing::new(current.as_bytes().to_vec())),
            Err(code) => return code,
        },
        _ => None,
    };
    for _ in 0..changer.policy.retry.max(1) {
        let new = match ffi::new_password(pamh) {
            Ok(new) => new,
            // The user gave up or the conversation failed: nothing to judge.
            Err(code) => return code,
        };
        let reasons = judge(changer, &new, old.as_deref().map(Vec::as_slice));
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
        // Only the hash is kept for `commit`: the password itself must not
        // stay in the host's memory until pam_end, hours later in login or
        // gdm.
        let phc = match changer.policy.hash.hash(new.as_bytes()) {
            Ok(phc) => phc,
            Err(err) => {
                log::error(&format!(
                    "password change of {} refused: the new password could not be hashed: \
                     {err} ({})",
                    changer.name, changer.origin
                ));
                tell(
                    pamh,
                    flags,
                    PAM_ERROR_MSG,
                    "The new password could not be processed; ask an administrator.",
                );
                ffi::clear_new_password(pamh);
                return PamResultCode::PAM_AUTHTOK_ERR;
            }
        };
        if let Some(directory) = &changer.directory {
            let current = old.as_deref().map_or(&[][..], Vec::as_slice);
            let stored = handoff::store(
                &directory.socket,
                changer.name.as_str(),
                current,
                new.as_bytes(),
                directory.timeout,
            );
            drop(new);
            ffi::clear_new_password(pamh);
            return match stored {
                Ok(()) => {
                    record(changer, Some(phc), Timestamp::now(), "in the directory");
                    PamResultCode::PAM_SUCCESS
                }
                Err(handoff::NotStored::Refused(why) | handoff::NotStored::Unavailable(why)) => {
                    log::notice(&format!(
                        "password of {} not changed in the directory; nothing recorded ({})",
                        changer.name, changer.origin
                    ));
                    tell(pamh, flags, PAM_ERROR_MSG, &why);
                    PamResultCode::PAM_AUTHTOK_ERR
                }
            };
        }
        drop(new);
        if let Err(code) = ffi::set_approved(pamh, phc) {
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
            let deadline = Instant::now() + HISTORY_TIME_LIMIT;
            let check =
                PasswordHistory::check(state, new.as_bytes(), remember, deadline, &Instant::now);
            if let Some(problems) = check.problems() {
                log::error(&format!(
                    "password history of {}: {problems} ({})",
                    changer.name, changer.origin
                ));
            }
            match check.verdict() {
                HistoryVerdict::Reused => reasons.push(RuleFailure::Reused(remember).to_string()),
                HistoryVerdict::Unchecked => reasons.push(MSG_HISTORY_UNCHECKED.to_owned()),
                HistoryVerdict::NotReused => {}
            }
        }
    }
    reasons
}

/// Asks the strength checker, and refuses the password unless it answered.
///
/// Only a verdict read from its standard output counts: a checker that was
/// killed, stopped, timed out, ran out of a resource or wrote anything else
/// refuses the password, since the user running a setuid `passwd` could
/// otherwise get any password through by breaking it. The one exception is
/// a checker that is not installed at all: then the rules alone apply and
/// the log says so, so that a missing package never blocks every change.
/// A checker or list that someone other than root could have written is
/// not used at all: the change is refused (see [`trusted_helper`]).
fn strength(changer: &Changer, new: &Secret) -> Vec<String> {
    let checker = &changer.policy.checker;
    let verdict = match ask_checker(changer, new) {
        Ok(verdict) => verdict,
        Err(NoVerdict::NotInstalled(err)) => {
            log::error(&format!(
                "strength checker {} not installed ({err}); only the rules were applied",
                checker.display()
            ));
            return Vec::new();
        }
        Err(NoVerdict::Untrusted(why)) => {
            // Only if it changed since the preliminary pass checked it.
            log_untrusted(changer, &why);
            return vec![MSG_UNTRUSTED.to_owned()];
        }
        Err(NoVerdict::Failed(why)) => {
            log::error(&format!(
                "strength checker {} gave no verdict ({why}); the new password of {} was \
                 refused ({})",
                checker.display(),
                changer.name,
                changer.origin
            ));
            return vec![MSG_UNCHECKED.to_owned()];
        }
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

/// Why the strength checker gave no verdict.
enum NoVerdict {
    /// The program does not exist: the rules alone apply.
    NotInstalled(String),
    /// Someone other than root could have written the checker or a list:
    /// it is not run, and the password is refused.
    Untrusted(Untrusted),
    /// Anything else, for the log: the password is refused.
    Failed(String),
}

/// Runs the strength checker on `new` and returns its verdict, a JSON
/// object whose `accepted` is a boolean. Its exit status is not looked at:
/// the verdict alone decides, and a host that ignores SIGCHLD cannot even
/// learn it.
fn ask_checker(changer: &Changer, new: &Secret) -> Result<serde_json::Value, NoVerdict> {
    // Looked for first, so that a missing checker, the one failure that
    // must not refuse the change, is not left to exec: when exec fails,
    // std's spawn (forking, as it does once `uid` is set) reaps the failed
    // child and panics if it cannot, as in a host that ignores SIGCHLD.
    let helper = match trusted_helper(&changer.policy) {
        Ok(helper) => helper,
        Err(why) if why.is_missing() => return Err(NoVerdict::NotInstalled(why.to_string())),
        Err(why) => return Err(NoVerdict::Untrusted(why)),
    };
    // The password goes through a socket, never argv or the environment; a
    // socket rather than a pipe so that writing to a checker that already
    // exited fails with EPIPE (MSG_NOSIGNAL) instead of killing the host
    // with SIGPIPE.
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|err| NoVerdict::Failed(format!("no socket to hand it the password: {err}")))?;
    let deadline = Instant::now() + CHECKER_TIMEOUT;
    let mut child = spawn_checker(changer, &helper, theirs).map_err(|err| {
        if err.kind() == io::ErrorKind::NotFound {
            NoVerdict::NotInstalled(err.to_string())
        } else {
            NoVerdict::Failed(format!("cannot run it: {err}"))
        }
    })?;
    let output = match child.stdout.take() {
        Some(stdout) => exchange(ours, stdout, new.as_bytes(), deadline),
        None => Err("its standard output was not captured".to_owned()),
    };
    let status = reap(&mut child, output.is_ok());
    let exited = match status {
        Some(status) => format!("; {status}"),
        None => String::new(),
    };
    let output = output.map_err(|why| NoVerdict::Failed(format!("{why}{exited}")))?;
    match serde_json::from_slice::<serde_json::Value>(&output) {
        Ok(verdict) if verdict["accepted"].is_boolean() => Ok(verdict),
        _ => Err(NoVerdict::Failed(format!(
            "its output ({} bytes) is not a verdict{exited}",
            output.len()
        ))),
    }
}

/// The checker and lists as they are run and read: each path with its
/// symbolic links resolved, so that what runs is what was checked.
struct TrustedHelper {
    checker: PathBuf,
    lists: Vec<PathBuf>,
}

/// Checks that only root can have written the checker (run as root) and
/// the lists (see [`check_trusted`]). An error that
/// [`Untrusted::is_missing`] says the checker is not installed; a missing
/// list keeps its path instead, for the checker to report it missing.
fn trusted_helper(policy: &EffectivePassword) -> Result<TrustedHelper, Untrusted> {
    let checker = check_trusted(&policy.checker)?;
    let mut lists = Vec::with_capacity(policy.lists.len());
    for list in &policy.lists {
        lists.push(match check_trusted(list) {
            Ok(list) => list,
            Err(why) if why.is_missing() => list.clone(),
            Err(why) => return Err(why),
        });
    }
    Ok(TrustedHelper { checker, lists })
}

/// Tampering, or a mistake that allows it: whoever could write the file
/// could run code as root through the next `passwd`.
fn log_untrusted(changer: &Changer, why: &Untrusted) {
    log::error(&format!(
        "password change of {} refused: the strength checker {} is not run, since someone \
         other than root could have changed it or a list it reads: {why} ({})",
        changer.name,
        changer.policy.checker.display(),
        changer.origin
    ));
}

/// Starts the checker with `stdin` as its standard input. The `Command`,
/// which holds this process's copy of `stdin`, is gone when this returns,
/// so the checker's end is then open in the checker alone.
fn spawn_checker(changer: &Changer, helper: &TrustedHelper, stdin: OwnedFd) -> io::Result<Child> {
    let policy = &changer.policy;
    let mut command = Command::new(&helper.checker);
    command
        .arg("--user")
        .arg(changer.name.as_str())
        .arg("--real-name")
        .arg(&changer.real_name)
        .arg("--min-strength")
        .arg(policy.min_strength.to_string());
    if helper.lists.is_empty() {
        command.arg("--no-lists");
    }
    for list in &helper.lists {
        command.arg("--list").arg(list);
    }
    command
        .env_clear()
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Out of the terminal's foreground group: ^C and ^Z at the prompt
        // do not reach it.
        .process_group(0);
    // Nothing of the host's (its sockets, its terminal, its log) but the
    // three descriptors above.
    ffi::close_other_fds(&mut command);
    if nix::unistd::geteuid().is_root() {
        // Under a setuid `passwd` the real uid is the invoking user's, who
        // may signal any process with that real uid: the checker gets root
        // as its real uid too, so he cannot stop or kill it.
        command.uid(0).gid(0);
    }
    command.spawn()
}

/// Hands `password` to the checker over `socket` (then shuts the socket
/// for writing, so it sees the end of its input) while reading its standard
/// output to the end, all by `deadline`. Returns that output.
///
/// A checker that stops reading early (it exited, or closed its standard
/// input) is no error here: what it wrote decides.
fn exchange(
    socket: OwnedFd,
    mut stdout: ChildStdout,
    password: &[u8],
    deadline: Instant,
) -> Result<Vec<u8>, String> {
    let mut socket = Some(socket);
    let mut sent = 0;
    let mut output = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if sent == password.len() {
            if let Some(socket) = socket.take() {
                let _ = shutdown(socket.as_raw_fd(), Shutdown::Write);
            }
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(format!("no answer within {} s", CHECKER_TIMEOUT.as_secs()));
        }
        // Rounded up, so the last wait does not spin on a zero timeout.
        let millis = u16::try_from(remaining.as_millis().saturating_add(1)).unwrap_or(u16::MAX);
        let (readable, writable) = {
            let mut fds = vec![PollFd::new(stdout.as_fd(), PollFlags::POLLIN)];
            if let Some(socket) = &socket {
                fds.push(PollFd::new(socket.as_fd(), PollFlags::POLLOUT));
            }
            match poll(&mut fds, PollTimeout::from(millis)) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(err) => return Err(format!("poll failed: {err}")),
            }
            // Any event (POLLHUP and POLLERR included) is worth a read or a
            // write: its result tells what happened.
            let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), fds.get(1).is_some_and(ready))
        };
        if writable {
            if let Some(open) = &socket {
                match send(
                    open.as_raw_fd(),
                    &password[sent..],
                    MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
                ) {
                    Ok(n) => sent += n,
                    Err(Errno::EAGAIN | Errno::EINTR) => {}
                    // EPIPE, ECONNRESET: the checker no longer reads.
                    Err(_) => socket = None,
                }
            }
        }
        if readable {
            match stdout.read(&mut chunk) {
                Ok(0) => return Ok(output),
                Ok(n) => {
                    output.extend_from_slice(&chunk[..n]);
                    if output.len() > MAX_VERDICT_BYTES {
                        return Err(format!("it wrote more than {MAX_VERDICT_BYTES} bytes"));
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(format!("reading its output failed: {err}")),
            }
        }
    }
}

/// Collects the checker's exit status, killing it first if it is still
/// running; with `finished` false (its output did not end), killing as well
/// whatever it started, which may hold its output open. Failures are
/// ignored: a host that ignores SIGCHLD has its children reaped by the
/// kernel, and waiting then fails with ECHILD.
fn reap(child: &mut Child, finished: bool) -> Option<ExitStatus> {
    if !finished {
        kill_group(child);
    }
    match child.try_wait() {
        Ok(Some(status)) => Some(status),
        Ok(None) => {
            kill_group(child);
            child.wait().ok()
        }
        Err(_) => None,
    }
}

/// SIGKILL to the checker's process group (`process_group(0)`), whose id is
/// the checker's pid: until the checker is reaped, that id cannot be given
/// to another process.
fn kill_group(child: &mut Child) {
    let group = i32::try_from(child.id()).map(Pid::from_raw);
    if group.map_or(true, |group| killpg(group, Signal::SIGKILL).is_err()) {
        let _ = child.kill();
    }
}

/// The storing module succeeded: keep the new password's hash and the time.
/// `approved` is the argon2id hash of the password the update pass approved.
fn commit(pamh: &PamHandle, approved: &str, changer: &Changer, now: Timestamp) {
    let remember = changer.policy.rules.remember;
    let stored = pamh.get_item::<pam::items::AuthTok>().ok().flatten();
    let phc = match stored {
        None => None,
        Some(token) if rules::verify(token.as_bytes(), approved) => {
            (remember > 0).then(|| approved.to_owned())
        }
        Some(token) => {
            // The storing module asked for a password of its own: the stack
            // lacks `use_authtok`, and the password it stored was never judged.
            log::error(&format!(
                "password of {} changed to one deadbolt did not judge: give the storing \
                 module use_authtok ({})",
                changer.name, changer.origin
            ));
            if remember == 0 {
                None
            } else {
                match changer.policy.hash.hash(token.as_bytes()) {
                    Ok(phc) => Some(phc),
                    Err(err) => {
                        log::error(&format!("history of {} not kept: {err}", changer.name));
                        None
                    }
                }
            }
        }
    };
    record(changer, phc, now, "");
}

/// Keeps the change: its time, and `phc` in the history when it keeps any.
/// `place` says where the password was stored, for the log.
fn record(changer: &Changer, phc: Option<String>, now: Timestamp, place: &str) {
    let remember = changer.policy.rules.remember;
    let phc = phc.filter(|_| remember > 0);
    let place = if place.is_empty() {
        String::new()
    } else {
        format!(" {place}")
    };
    let result = StateStore::open_or_create(&changer.store_dir).and_then(|store| {
        store.update(&changer.name, now, |state| {
            PasswordHistory::record_change(state, phc, remember, now);
            true
        })
    });
    match result {
        Ok(_) => log::notice(&format!(
            "password of {} changed{place}; the history keeps the last {remember} ({})",
            changer.name, changer.origin
        )),
        Err(err) => log::error(&format!(
            "password of {} changed but not recorded: {err} ({})",
            changer.name, changer.origin
        )),
    }
}
