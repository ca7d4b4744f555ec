//! `deadboltctl`: the administrator's command for deadbolt.
//!
//! `status` answers "is this user locked, until when, why, from where", with
//! the state of his password and his account's expiry, in text or JSON, and
//! never creates or changes a file. `reactivate`, `disable`, `enable`,
//! `reset-password` and `expire` change a user's state under his lock and
//! log who did it to authpriv. `check-config` validates a configuration file
//! and says what it means. See `deadboltctl(8)` and docs/reference.md.
//!
//! Everything below `main` takes the current time as a parameter, so the
//! tests use fixed times.
#![forbid(unsafe_code)]

mod args;
mod audit;
mod change;
mod check;
mod error;
mod fleet;
mod mail;
mod parallel;
mod progress;
mod report;
mod setpass;
mod settings;
mod status;
mod subject;
mod timefmt;
mod welcome;

use args::{Args, Command};
use clap::Parser;
use deadbolt_core::{Timestamp, UserName};
use error::CliError;
use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::ExitCode;
use subject::Nss;

fn main() -> ExitCode {
    // A usage error exits 2 here, with clap's message.
    let args = Args::parse();
    let now = Timestamp::now();
    match run(args, now) {
        Ok(code) => code,
        Err(CliError::Output(err)) if err.kind() == io::ErrorKind::BrokenPipe => ExitCode::FAILURE,
        Err(err) => {
            let _ = writeln!(io::stderr(), "deadboltctl: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Checks USER before anything else is done. The name is never echoed back:
/// it may be a password typed at the wrong prompt.
pub(crate) fn user_name(raw: &OsStr) -> Result<UserName, CliError> {
    Ok(UserName::from_bytes(raw.as_bytes())?)
}

pub(crate) fn print(text: &str) -> Result<(), CliError> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(CliError::Output)
}

pub(crate) fn note(text: &str) {
    let _ = writeln!(io::stderr(), "deadboltctl: {}", error::one_line(text));
}

pub(crate) fn json_line<T: serde::Serialize>(value: &T) -> Result<String, CliError> {
    let mut text =
        serde_json::to_string(value).map_err(|e| CliError::Output(io::Error::other(e)))?;
    text.push('\n');
    Ok(text)
}

/// The zone text shows times in; JSON, always UTC, never asks for it.
fn local_zone() -> timefmt::Zone {
    let (zone, why_utc) = timefmt::Zone::of_system();
    if let Some(text) = why_utc {
        note(text);
    }
    zone
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn run(args: Args, now: Timestamp) -> Result<ExitCode, CliError> {
    let config_path = args.config.as_deref();
    match args.command {
        Command::Status { user, locked, json } => {
            let user = user.as_deref().map(user_name).transpose()?;
            status(config_path, user, locked, json, now)
        }
        Command::Reactivate { user, identity } => fleet::act(
            config_path,
            change::Action::Reactivate,
            &user,
            &identity,
            now,
        ),
        Command::Disable { user, identity } => {
            fleet::act(config_path, change::Action::Disable, &user, &identity, now)
        }
        Command::Enable { user, identity } => {
            fleet::act(config_path, change::Action::Enable, &user, &identity, now)
        }
        Command::SyncStatus { json } => fleet::sync_status(config_path, json),
        Command::ResetPassword { user } => {
            change(config_path, change::Action::ResetPassword, &user, now)
        }
        Command::Expire {
            user,
            on,
            never,
            identity,
        } => {
            // Both checked before anything is read or written.
            user_name(&user)?;
            let day = match (on, never) {
                (Some(on), false) => Some(timefmt::parse_day(&on)?),
                (None, true) => None,
                // clap lets only one through; never guess which was meant.
                _ => {
                    return Err(CliError::InvalidDate(
                        "give exactly one of --on YYYY-MM-DD and --never".to_owned(),
                    ))
                }
            };
            fleet::expire(config_path, &user, day, &identity, now)
        }
        Command::CheckConfig { file, json } => check_config(file.as_deref().or(config_path), json),
        Command::SetPassword {
            user,
            generate,
            new_password_file,
            print,
            json,
            identity,
        } => setpass::run(setpass::Request {
            config_path,
            user: &user,
            generate,
            new_password_file,
            print,
            json,
            identity: &identity,
        }),
        Command::Welcome {
            users,
            group,
            filter,
            missing_mail,
            dry_run,
            print,
            json,
            identity,
        } => welcome::run(
            welcome::Request {
                config_path,
                users,
                group,
                filter,
                missing_mail,
                dry_run,
                print,
                json,
                identity: &identity,
            },
            now,
        ),
    }
}

fn status(
    config_path: Option<&Path>,
    user: Option<UserName>,
    only_locked: bool,
    json: bool,
    now: Timestamp,
) -> Result<ExitCode, CliError> {
    let settings = settings::load(config_path)?;
    let config = &settings.config;
    let store = status::open_for_reading(&config.state.dir, euid())?;
    let text = match user {
        Some(user) => {
            let user = subject::canonical_name(&Nss, user);
            // --locked filters a listing; one user is always answered.
            let view = status::view_user(store.as_ref(), config, &Nss, &user, now);
            if json {
                json_line(&view.to_json())?
            } else {
                view.render_detail(&local_zone(), now)
            }
        }
        None => {
            let users = status::listed_users(store.as_ref())?;
            let listing = {
                let bar = progress::Bar::for_listing(users.len());
                status::list(
                    store.as_ref(),
                    &users,
                    config,
                    &Nss,
                    now,
                    only_locked,
                    &|done| bar.advance(done),
                )
            };
            // Left out as not locked, but someone should look at them.
            for view in &listing.unreadable {
                let why = view.error.as_deref().unwrap_or_default();
                note(&format!(
                    "{}: the state file cannot be read ({why})",
                    view.user
                ));
            }
            let views = listing.views;
            if json {
                report::json_array_line(&views)
                    .map_err(|e| CliError::Output(io::Error::other(e)))?
            } else {
                report::render_list(&views, &local_zone(), now, only_locked)
            }
        }
    };
    print(&text)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn change(
    config_path: Option<&Path>,
    action: change::Action,
    user: &OsStr,
    now: Timestamp,
) -> Result<ExitCode, CliError> {
    let user = subject::canonical_name(&Nss, user_name(user)?);
    let settings = settings::load(config_path)?;
    let actor = audit::Actor::current();
    let outcome = change::apply(&change::Request {
        action,
        user: &user,
        config: &settings.config,
        directory: &Nss,
        euid: euid(),
        actor: &actor,
        now,
        zone: &local_zone(),
    })?;
    if let Some(line) = &outcome.log {
        audit::log_change(line);
    }
    for text in &outcome.notes {
        note(text);
    }
    print(&format!("{}\n", outcome.message))?;
    Ok(ExitCode::SUCCESS)
}

fn check_config(file: Option<&Path>, json: bool) -> Result<ExitCode, CliError> {
    let settings = match settings::load(file) {
        Ok(settings) => settings,
        Err(err) => {
            if json {
                let shown = file.map_or_else(
                    || deadbolt_config::DEFAULT_CONFIG_PATH.to_owned(),
                    |p| p.display().to_string(),
                );
                // Best effort: the reason also goes to stderr below.
                let _ = print(&json_line(&check::Refusal {
                    file: shown,
                    ok: false,
                    error: err.to_string(),
                })?);
            }
            return Err(err);
        }
    };
    let summary = check::summarize(
        &settings.config,
        &settings.path,
        settings.defaults_used,
        &Nss,
        &check::trust_of,
    );
    for warning in &summary.warnings {
        note(&format!("warning: {warning}"));
    }
    for error in &summary.errors {
        note(&format!("error: {error}"));
    }
    let text = if json {
        json_line(&summary)?
    } else {
        summary.render()
    };
    print(&text)?;
    Ok(if summary.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn hostile_user_names_are_refused_without_echoing_them() {
        let names: Vec<OsString> = vec![
            "a/b".into(),
            "../escape".into(),
            "..".into(),
            ".".into(),
            "".into(),
            "a\x1bb".into(),
            "a\nb".into(),
            "a\0b".into(),
            "-rf".into(),
            "hunter2 secret".into(),
            "y".repeat(257).into(),
            "y".repeat(10 * 1024).into(),
            OsString::from_vec(vec![b'a', 0xff, 0xfe]),
        ];
        for name in &names {
            let err = user_name(name).unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with("invalid user name: "), "{text}");
            assert!(!text.contains('\n'));
            let shown = name.to_string_lossy();
            if shown.len() > 2 {
                assert!(!text.contains(shown.as_ref()), "{text}");
            }
        }
        assert_eq!(user_name(OsStr::new("alice")).unwrap().as_str(), "alice");
        assert!(user_name(OsStr::new(&"y".repeat(200))).is_ok());
    }

    /// A configuration whose state directory does not exist yet, in a
    /// private temporary directory.
    fn private_config() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let state = parent.path().join("state");
        let config = parent.path().join("deadbolt.toml");
        std::fs::write(&config, format!("[state]\ndir = \"{}\"\n", state.display())).unwrap();
        (parent, config, state)
    }

    fn run_with(config: &Path, argv: &[&OsStr]) -> Result<ExitCode, CliError> {
        let mut full: Vec<&OsStr> = vec![
            OsStr::new("deadboltctl"),
            OsStr::new("--config"),
            config.as_os_str(),
        ];
        full.extend_from_slice(argv);
        run(Args::try_parse_from(full).unwrap(), report::tests::NOW)
    }

    #[test]
    fn hostile_user_names_change_nothing() {
        let (_parent, config, state) = private_config();
        let names: Vec<OsString> = vec![
            "../escape".into(),
            "a/b".into(),
            "..".into(),
            "a\nb".into(),
            "-rf".into(),
            "hunter2 secret".into(),
            "y".repeat(257).into(),
            OsString::from_vec(vec![b'a', 0xff]),
        ];
        for name in &names {
            for argv in [
                vec![OsStr::new("reset-password"), OsStr::new("--"), name],
                vec![
                    OsStr::new("expire"),
                    OsStr::new("--never"),
                    OsStr::new("--"),
                    name,
                ],
                vec![
                    OsStr::new("expire"),
                    OsStr::new("--on"),
                    OsStr::new("2027-03-31"),
                    OsStr::new("--"),
                    name,
                ],
                // The name is checked before the date.
                vec![
                    OsStr::new("expire"),
                    OsStr::new("--on"),
                    OsStr::new("tomorrow"),
                    OsStr::new("--"),
                    name,
                ],
            ] {
                let err = run_with(&config, &argv).unwrap_err();
                assert!(matches!(err, CliError::InvalidUser(_)), "{err}");
                let shown = name.to_string_lossy();
                if shown.len() > 2 {
                    assert!(!err.to_string().contains(shown.as_ref()), "{err}");
                }
            }
        }
        assert!(!state.exists());
    }

    #[test]
    fn bad_dates_are_refused_before_anything_is_touched() {
        let (_parent, config, state) = private_config();
        for bad in [
            "2026-02-30",
            "tomorrow",
            "26-1-1",
            "2026-13-01",
            "",
            "2026-01-01 ",
        ] {
            let argv = [
                OsStr::new("expire"),
                OsStr::new("root"),
                OsStr::new("--on"),
                OsStr::new(bad),
            ];
            let err = run_with(&config, &argv).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, CliError::InvalidDate(_)), "{bad}: {text}");
            assert!(text.starts_with("invalid date for --on: "), "{text}");
            assert!(
                text.ends_with("(write YYYY-MM-DD, such as 2027-03-31)"),
                "{text}"
            );
        }
        assert!(!state.exists());
    }
}
