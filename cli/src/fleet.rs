//! With a directory: `reactivate`, `disable` and `enable` as a person, with
//! his own directory identity, so every host applies them; and
//! `sync-status`, what the host's deadbolt-syncd says of itself.

use crate::args::Identity;
use crate::error::CliError;
use crate::{change, json_line, note, print, settings, user_name};
use deadbolt_core::Timestamp;
use deadbolt_ldap_sync::admin::{self, Action, Person};
use deadbolt_ldap_sync::files::{Status, STATUS};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;
use zeroize::Zeroizing;

/// The longest password read from a file or the terminal, in bytes.
const MAX_PASSWORD: u64 = 4096;

pub fn act(
    config_path: Option<&Path>,
    action: change::Action,
    raw_user: &OsStr,
    identity: &Identity,
    now: Timestamp,
) -> Result<ExitCode, CliError> {
    let user = user_name(raw_user)?;
    let settings = settings::load(config_path)?;
    let directory = settings.config.directory.as_ref();
    if identity.as_dn.is_none() && !identity.sasl_external && !identity.sasl_gssapi {
        if directory.is_some() && !identity.local {
            return Err(CliError::Directory(
                "a directory is configured: give --as DN (your own identity), \
                 --sasl-external or --sasl-gssapi to act on every host through it, or --local \
                 to change this host alone"
                    .to_owned(),
            ));
        }
        return change(config_path, action, raw_user, now);
    }
    let Some(directory) = directory else {
        return Err(CliError::Directory(
            "--as, --sasl-external and --sasl-gssapi need a [directory] in the configuration"
                .to_owned(),
        ));
    };
    if let Some(problem) = directory.transport_problems().into_iter().next() {
        return Err(CliError::Directory(problem));
    }
    let verb = match action {
        change::Action::Reactivate => Action::Reactivate,
        change::Action::Disable => Action::Disable,
        change::Action::Enable => Action::Enable,
        _ => unreachable!("only these act through the directory"),
    };
    let person = match &identity.as_dn {
        Some(dn) => Person::Password {
            dn: dn.clone(),
            password: match &identity.password_file {
                Some(path) => password_from_file(path)?,
                None => prompt(&format!("Directory password for {dn}: "))?,
            },
        },
        None if identity.sasl_gssapi => Person::gssapi(),
        None => Person::External,
    };
    let done = admin::act(directory, &person, user.as_str(), verb, now)
        .map_err(|e| CliError::Directory(e.to_string()))?;
    // After the bind: a GSSAPI person is named by the directory's answer.
    let dn = person.name();
    crate::audit::log_change(&format!(
        "{user}: {} in the directory by {dn} (entry {}, via {})",
        past(verb),
        done.entry_dn,
        done.server
    ));
    let mut message = format!(
        "{user}: {} in the directory by {dn}; every host applies it as its deadbolt-syncd \
         receives it",
        past(verb)
    );
    if done.lock_removed {
        message.push_str(" (pwdAccountLockedTime removed)");
    }
    // Root on this host applies it here at once as well; the daemon's merge
    // of the same change later is a no-op.
    if nix::unistd::geteuid().is_root() {
        if let Err(e) = change(config_path, action, raw_user, now) {
            note(&format!("this host's own state was not changed: {e}"));
        }
    }
    print(&format!("{message}\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// `expire`: with a directory and a person's identity, the departure date
/// in the directory (`shadowExpire`), which every host applies; else this
/// host's alone, as `change` does it.
pub fn expire(
    config_path: Option<&Path>,
    raw_user: &OsStr,
    day: Option<i64>,
    identity: &Identity,
    now: Timestamp,
) -> Result<ExitCode, CliError> {
    let action = change::Action::Expire(day);
    let user = user_name(raw_user)?;
    let settings = settings::load(config_path)?;
    let Some(directory) = settings.config.directory.as_ref() else {
        if identity.as_dn.is_some() || identity.sasl_external || identity.sasl_gssapi {
            return Err(CliError::Directory(
                "--as, --sasl-external and --sasl-gssapi need a [directory] in the configuration"
                    .to_owned(),
            ));
        }
        return change(config_path, action, raw_user, now);
    };
    if identity.local {
        return change(config_path, action, raw_user, now);
    }
    if identity.as_dn.is_none() && !identity.sasl_external && !identity.sasl_gssapi {
        return Err(CliError::Directory(
            "a directory is configured: give --as DN (your own identity), --sasl-external or \
             --sasl-gssapi to set the departure date on every host through it, or --local to \
             change this host alone"
                .to_owned(),
        ));
    }
    if let Some(problem) = directory.transport_problems().into_iter().next() {
        return Err(CliError::Directory(problem));
    }
    let person = crate::setpass::person_of(identity)?;
    let mut session =
        admin::Session::open(directory, &person).map_err(|e| CliError::Directory(e.to_string()))?;
    let employee = session
        .find(user.as_str())
        .map_err(|e| CliError::Directory(e.to_string()))?;
    session
        .set_departure(&employee, day)
        .map_err(|e| CliError::Directory(e.to_string()))?;
    let what = match day {
        Some(day) => format!(
            "expires on {} (shadowExpire)",
            deadbolt_core::password::format_date(day)
        ),
        None => "no longer expires (shadowExpire removed)".to_owned(),
    };
    let by = session.person().to_owned();
    crate::audit::log_change(&format!(
        "{user}: {what} in the directory by {by} (entry {}, via {})",
        employee.dn,
        session.server()
    ));
    if nix::unistd::geteuid().is_root() {
        if let Err(e) = change(config_path, action, raw_user, now) {
            note(&format!("this host's own state was not changed: {e}"));
        }
    }
    print(&format!(
        "{user}: {what} in the directory by {by}; every host applies it as its deadbolt-syncd \
         receives it\n"
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn past(action: Action) -> &'static str {
    match action {
        Action::Reactivate => "reactivated",
        Action::Disable => "disabled",
        Action::Enable => "enabled",
    }
}

/// A password file must be the caller's own and not readable by others.
pub(crate) fn password_from_file(path: &Path) -> Result<Zeroizing<String>, CliError> {
    let bad = |why: String| CliError::Directory(format!("{}: {why}", path.display()));
    let file = File::open(path).map_err(|e| bad(e.to_string()))?;
    let meta = file.metadata().map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(bad(format!(
            "readable by others (mode {:04o}); make it 0600",
            meta.mode() & 0o7777
        )));
    }
    if meta.uid() != nix::unistd::getuid().as_raw() {
        return Err(bad("not owned by you".into()));
    }
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_PASSWORD)
        .read_to_string(&mut text)
        .map_err(|e| bad(e.to_string()))?;
    let line = Zeroizing::new(text.lines().next().unwrap_or("").to_owned());
    if line.is_empty() {
        return Err(bad("empty".into()));
    }
    Ok(line)
}

/// Asks on the terminal with echo off, as passwd does.
pub(crate) fn prompt(question: &str) -> Result<Zeroizing<String>, CliError> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| {
            CliError::Directory(format!(
                "no terminal to ask for the password ({e}): use --password-file"
            ))
        })?;
    let saved = tcgetattr(&tty).map_err(|e| CliError::Directory(e.to_string()))?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    tcsetattr(&tty, SetArg::TCSAFLUSH, &quiet).map_err(|e| CliError::Directory(e.to_string()))?;
    let mut out = &tty;
    let _ = out.write_all(question.as_bytes());
    let mut line = Zeroizing::new(String::new());
    let read = io::BufReader::new((&tty).take(MAX_PASSWORD)).read_line(&mut line);
    let _ = tcsetattr(&tty, SetArg::TCSAFLUSH, &saved);
    read.map_err(|e| CliError::Directory(e.to_string()))?;
    let trimmed = Zeroizing::new(line.trim_end_matches(['\n', '\r']).to_owned());
    if trimmed.is_empty() {
        return Err(CliError::Directory("no password given".into()));
    }
    Ok(trimmed)
}

pub fn sync_status(config_path: Option<&Path>, json: bool) -> Result<ExitCode, CliError> {
    let settings = settings::load(config_path)?;
    let config = &settings.config;
    if config.directory.is_none() {
        return Err(CliError::Directory(
            "no [directory] is configured: there is no sync to report on".to_owned(),
        ));
    }
    let path = config.sync.dir.join(STATUS);
    let status: Option<Status> = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let running = status.as_ref().is_some_and(|s| {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(s.pid as i32), None).is_ok()
    });
    if json {
        let value = serde_json::json!({
            "running": running,
            "status": status,
        });
        print(&json_line(&value)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(status) = status else {
        print(&format!(
            "deadbolt-syncd has not run here ({} is missing)\n",
            path.display()
        ))?;
        return Ok(ExitCode::FAILURE);
    };
    let mut out = String::new();
    let line = |out: &mut String, k: &str, v: String| out.push_str(&format!("  {k:<22} {v}\n"));
    out.push_str(&format!(
        "deadbolt-syncd on {}: {}\n",
        status.host,
        match (running, status.connected) {
            (false, _) => "NOT RUNNING (the status below is the last it wrote)",
            (true, true) => "connected",
            (true, false) => "DISCONNECTED",
        }
    ));
    line(
        &mut out,
        "server:",
        status.server.clone().unwrap_or_else(|| "-".into()),
    );
    if let Some(e) = &status.last_error {
        line(&mut out, "last error:", e.clone());
    }
    line(
        &mut out,
        "directory loaded:",
        if status.refreshed {
            format!("yes ({} entries)", status.entries_known)
        } else {
            "not yet".into()
        },
    );
    line(
        &mut out,
        "still to push:",
        format!(
            "{} records for {} users",
            status.pending_records, status.pending_users
        ),
    );
    if let Some(oldest) = &status.oldest_pending {
        let age = status
            .oldest_pending_age_s
            .map(|s| format!(" ({s} s old)"))
            .unwrap_or_default();
        line(&mut out, "oldest not pushed:", format!("{oldest}{age}"));
    }
    line(
        &mut out,
        "last change applied:",
        status
            .last_change_applied
            .clone()
            .unwrap_or_else(|| "-".into()),
    );
    line(
        &mut out,
        "clock skew:",
        match status.clock_skew_ms {
            Some(ms) if status.skew_exceeded => {
                format!("{ms} ms: MORE THAN max_clock_skew, pushes held back")
            }
            Some(ms) => format!("{ms} ms"),
            None => "not measured yet".into(),
        },
    );
    line(&mut out, "status written:", status.updated_at.clone());
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}
