//! `set-password`: an administrator's or a manager's reset of an employee's
//! password in the directory, with the person's own identity. The new
//! password meets the same policy a change through PAM meets (the rules,
//! the common-password lists and the strength estimate), goes to the
//! directory with the RFC 3062 password-modify operation (the directory
//! hashes it), and is marked reset so the next login must change it.
//!
//! The new password never comes from the command line: a prompt (twice),
//! a 0600 file, or `--generate`, which shows it once.

use crate::args::Identity;
use crate::error::CliError;
use crate::{json_line, print, settings, subject, user_name};
use deadbolt_config::{Config, DirectorySettings, EffectivePassword};
use deadbolt_core::password::generate::generate;
use deadbolt_core::password::{ChangeContext, MAX_PASSWORD_BYTES};
use deadbolt_core::UserName;
use deadbolt_ldap_sync::admin::{Employee, Person, Session};
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Generated passwords the strength check may refuse before giving up; a
/// random one of 16 characters from four kinds is refused by none.
const MAX_GENERATE_TRIES: usize = 8;

/// The directory acted in, checked as `reactivate --as` checks it.
pub(crate) fn directory_of(config: &Config) -> Result<&DirectorySettings, CliError> {
    let Some(directory) = config.directory.as_ref() else {
        return Err(CliError::Directory(
            "no [directory] is configured: passwords are set in the directory".to_owned(),
        ));
    };
    if let Some(problem) = directory.transport_problems().into_iter().next() {
        return Err(CliError::Directory(problem));
    }
    Ok(directory)
}

/// The person who acts, from `--as` (with his password from a file or the
/// terminal) or `--sasl-external`.
pub(crate) fn person_of(identity: &Identity) -> Result<Person, CliError> {
    if identity.local {
        return Err(CliError::Directory(
            "--local has no meaning here: passwords are set in the directory, as the person \
             named by --as DN (or --sasl-external)"
                .to_owned(),
        ));
    }
    match &identity.as_dn {
        Some(dn) => Ok(Person::Password {
            dn: dn.clone(),
            password: match &identity.password_file {
                Some(path) => crate::fleet::password_from_file(path)?,
                None => crate::fleet::prompt(&format!("Directory password for {dn}: "))?,
            },
        }),
        None if identity.sasl_external => Ok(Person::External),
        None if identity.sasl_gssapi => Ok(Person::gssapi()),
        None => Err(CliError::Directory(
            "give --as DN (your own identity in the directory) or --sasl-external: the \
             directory's ACL decides who may set whose password"
                .to_owned(),
        )),
    }
}

/// The password policy of `employee` (by his groups, as PAM finds them),
/// and who he is for the rules that compare against him.
fn policy_for<'a>(
    config: &Config,
    employee: &'a Employee,
) -> (Arc<EffectivePassword>, ChangeContext<'a>) {
    let policy = match UserName::parse(&employee.user) {
        Ok(user) => subject::Subject::resolve(config, &subject::Nss, &user).password,
        Err(_) => Arc::new(config.effective_password(|_| false)),
    };
    let ctx = ChangeContext {
        user: &employee.user,
        real_name: &employee.name,
        old_password: None,
    };
    (policy, ctx)
}

/// Why `password` would be refused for `employee`, as a change through PAM
/// would refuse it; empty when it is acceptable.
pub(crate) fn judge(config: &Config, employee: &Employee, password: &[u8]) -> Vec<String> {
    let (policy, ctx) = policy_for(config, employee);
    let mut reasons: Vec<String> = policy
        .rules
        .check(password, &ctx)
        .iter()
        .map(ToString::to_string)
        .collect();
    if reasons.is_empty() {
        let verdict = deadbolt_pwcheck::check(&deadbolt_pwcheck::CheckRequest {
            password,
            user: &employee.user,
            real_name: &employee.name,
            min_strength: policy.min_strength,
            lists: &policy.lists,
        });
        reasons.extend(verdict.reasons);
    }
    reasons
}

/// A random password `judge` accepts for `employee`, from the OS random
/// source.
pub(crate) fn generate_for(
    config: &Config,
    employee: &Employee,
) -> Result<Zeroizing<String>, String> {
    let (policy, ctx) = policy_for(config, employee);
    let mut random = |buf: &mut [u8]| getrandom::fill(buf).map_err(|e| e.to_string());
    let mut last = String::new();
    for _ in 0..MAX_GENERATE_TRIES {
        let candidate = generate(&policy.rules, &ctx, &mut random).map_err(|e| e.to_string())?;
        match judge(config, employee, candidate.as_bytes())
            .into_iter()
            .next()
        {
            None => return Ok(candidate),
            Some(reason) => last = reason,
        }
    }
    Err(format!("no generated password passed the policy: {last}"))
}

/// The new password's first line from a 0600 file of the caller's own.
/// Longer than deadbolt accepts is refused, never cut short.
fn new_password_from_file(path: &Path) -> Result<Zeroizing<String>, CliError> {
    let bad = |why: String| CliError::Directory(format!("{}: {why}", path.display()));
    let file = deadbolt_config::open_secret_file_owned_by(path, nix::unistd::getuid().as_raw())
        .map_err(CliError::Directory)?;
    // One byte more than a password and its line break: enough to know it
    // is too long, without reading a huge file.
    let limit = MAX_PASSWORD_BYTES + 2;
    let mut bytes = Zeroizing::new(Vec::with_capacity(limit));
    file.take(limit as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(e.to_string()))?;
    let line_end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let line = &bytes[..line_end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > MAX_PASSWORD_BYTES {
        return Err(bad(format!(
            "the new password is longer than {MAX_PASSWORD_BYTES} bytes, the most deadbolt \
             accepts; nothing was changed"
        )));
    }
    if line.is_empty() {
        return Err(bad("holds no password on its first line".into()));
    }
    let text =
        std::str::from_utf8(line).map_err(|_| bad("the new password is not UTF-8".into()))?;
    let mut password = Zeroizing::new(String::with_capacity(text.len()));
    password.push_str(text);
    Ok(password)
}

/// Asks twice on the terminal, as passwd does.
fn new_password_from_prompt(user: &str) -> Result<Zeroizing<String>, CliError> {
    let first = crate::fleet::prompt(&format!("New password for {user}: "))?;
    let second = crate::fleet::prompt(&format!("Retype the new password for {user}: "))?;
    if *first != *second {
        return Err(CliError::Directory(
            "the two passwords differ; nothing was changed".to_owned(),
        ));
    }
    Ok(first)
}

/// Where a generated password is shown: standard output with --print,
/// else the terminal (never a pipe or a log).
enum Show {
    Stdout,
    Tty(std::fs::File),
}

pub(crate) struct Request<'a> {
    pub config_path: Option<&'a Path>,
    pub user: &'a OsStr,
    pub generate: bool,
    pub new_password_file: Option<PathBuf>,
    pub print: bool,
    pub json: bool,
    pub identity: &'a Identity,
}

pub(crate) fn run(req: Request) -> Result<ExitCode, CliError> {
    let user = user_name(req.user)?;
    let settings = settings::load(req.config_path)?;
    let config = &settings.config;
    let directory = directory_of(config)?;
    // Where a generated password goes is settled before anything changes.
    let show = match (req.generate, req.print) {
        (true, true) => Some(Show::Stdout),
        (true, false) => Some(Show::Tty(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/tty")
                .map_err(|e| {
                    CliError::Directory(format!(
                        "--generate shows the password on the terminal, and there is none \
                         ({e}): add --print to have it on standard output"
                    ))
                })?,
        )),
        _ => None,
    };
    let given = match &req.new_password_file {
        Some(path) => Some(new_password_from_file(path)?),
        None => None,
    };
    let person = person_of(req.identity)?;
    let mut session =
        Session::open(directory, &person).map_err(|e| CliError::Directory(e.to_string()))?;
    let employee = session
        .find(user.as_str())
        .map_err(|e| CliError::Directory(e.to_string()))?;
    let password = match given {
        Some(password) => password,
        None if req.generate => generate_for(config, &employee).map_err(CliError::Directory)?,
        None => new_password_from_prompt(&employee.user)?,
    };
    let reasons = judge(config, &employee, password.as_bytes());
    if !reasons.is_empty() {
        return Err(CliError::Directory(format!(
            "{}; nothing was changed",
            reasons.join(" ")
        )));
    }
    session
        .set_password(&employee, &password)
        .map_err(|e| CliError::Directory(e.to_string()))?;
    let by = session.person().to_owned();
    crate::audit::log_change(&format!(
        "{}: password set in the directory by {by}, to be changed at the next login (entry {}, \
         via {})",
        employee.user,
        employee.dn,
        session.server()
    ));
    if let Some(Show::Tty(tty)) = &show {
        let mut tty: &std::fs::File = tty;
        let _ = writeln!(
            tty,
            "New password for {}: {}",
            employee.user,
            password.as_str()
        );
    }
    let shown = matches!(show, Some(Show::Stdout)).then_some(password.as_str());
    if req.json {
        let mut value = serde_json::json!({
            "user": employee.user,
            "dn": employee.dn,
            "server": session.server(),
            "set_by": by,
            "must_change": true,
            "generated": req.generate,
        });
        if let Some(password) = shown {
            value["password"] = serde_json::Value::from(password);
        }
        print(&json_line(&value)?)?;
    } else {
        let mut text = format!(
            "{}: password set in the directory by {by}; it must be changed at the next login \
             on every host\n",
            employee.user
        );
        if let Some(password) = shown {
            text.push_str(&format!("new password: {password}\n"));
        }
        print(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}
