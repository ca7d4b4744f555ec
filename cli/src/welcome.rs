//! `welcome`: the welcome kit by email. For each employee: a random
//! temporary password that meets the policy, set in the directory as the
//! person named by `--as` and marked reset (changed at the first login),
//! then mailed to the entry's `mail` through `[mail]`.
//!
//! The order, and what a failure leaves: the mail server must answer just
//! before a password is set, or the password is not touched; the password
//! is set before the message goes, so no message ever promises a password
//! the directory refused. When the message then fails, the password stays
//! set, known to nobody (it was never shown nor stored), and the table says
//! "password set, mail not sent": the account cannot be used until a new
//! kit is sent, which sets a new password.
//!
//! Everything that can be checked before any change is checked first: the
//! template, the sender, the SMTP password file, the user names, the
//! selection. A temporary password is never printed without `--print`,
//! and never logged.

use crate::args::Identity;
use crate::error::{one_line, CliError};
use crate::mail::{recipient, Fields, Mailer, Template};
use crate::setpass::{directory_of, generate_for, person_of};
use crate::{json_line, print, progress, settings, timefmt, user_name};
use deadbolt_core::Timestamp;
use deadbolt_ldap_sync::admin::{Employee, Selection, Session};
use serde::Serialize;
use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;
use zeroize::Zeroizing;

pub(crate) struct Request<'a> {
    pub config_path: Option<&'a Path>,
    pub users: Vec<OsString>,
    pub group: Option<String>,
    pub filter: Option<String>,
    pub missing_mail: bool,
    pub dry_run: bool,
    pub print: bool,
    pub json: bool,
    pub identity: &'a Identity,
}

/// What became of one employee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Sent,
    /// `--dry-run`: everything checked, nothing done.
    WouldSend,
    /// No email address: nothing done.
    Skipped,
    Failed,
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::WouldSend => "would send",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
        }
    }
}

#[derive(Debug, Serialize)]
struct Row {
    user: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    dn: Option<String>,
    mail: Option<String>,
    result: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// The directory holds a new temporary password for him.
    password_set: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
}

impl Row {
    fn of(employee: &Employee, result: Outcome) -> Row {
        Row {
            user: employee.user.clone(),
            dn: Some(employee.dn.clone()),
            mail: employee.mail.clone(),
            result,
            reason: None,
            password_set: false,
            password: None,
        }
    }

    fn because(mut self, reason: impl Into<String>) -> Row {
        self.reason = Some(one_line(&reason.into()));
        self
    }
}

pub(crate) fn run(req: Request, now: Timestamp) -> Result<ExitCode, CliError> {
    let mut users = Vec::with_capacity(req.users.len());
    for raw in &req.users {
        users.push(user_name(raw)?.as_str().to_owned());
    }
    let settings = settings::load(req.config_path)?;
    let config = &settings.config;
    let directory = directory_of(config)?;
    if req.missing_mail {
        return missing_mail(&req, directory, &users);
    }
    let Some(mail) = config.mail.as_ref() else {
        return Err(CliError::Directory(
            "no [mail] is configured: set smtp_host and from there to send welcome kits".to_owned(),
        ));
    };
    let template = Template::load(mail).map_err(CliError::Directory)?;
    let mut mailer = match req.dry_run {
        true => None,
        false => Some(Mailer::new(mail, &config.host.name).map_err(CliError::Directory)?),
    };
    let person = person_of(req.identity)?;
    let mut session =
        Session::open(directory, &person).map_err(|e| CliError::Directory(e.to_string()))?;
    let selected = session
        .select(selection(&req, &users))
        .map_err(|e| CliError::Directory(e.to_string()))?;
    let valid_for_duration = config.welcome.temporary_valid_for;
    let valid_for = deadbolt_config::format_duration(valid_for_duration);
    let valid_until = timefmt::clock(
        &timefmt::Zone::utc(),
        now.saturating_add(valid_for_duration),
    );
    let mut rows = Vec::with_capacity(selected.employees.len() + selected.unknown.len());
    {
        let bar = progress::Bar::for_batch(selected.employees.len(), "welcome kits");
        for employee in &selected.employees {
            let kit = Kit {
                config,
                template: &template,
                valid_for: &valid_for,
                valid_until: &valid_until,
                login_url: mail.login_url.as_deref(),
                print: req.print,
            };
            let row = kit.send(&mut session, mailer.as_mut(), employee);
            if row.password_set {
                crate::audit::log_change(&format!(
                    "{}: temporary password set in the directory by {} for a welcome kit ({}{})",
                    employee.user,
                    session.person(),
                    row.result.word(),
                    row.reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ));
            }
            rows.push(row);
            bar.advance(1);
        }
    }
    for name in selected.unknown {
        rows.push(Row {
            user: name.clone(),
            dn: None,
            mail: None,
            result: Outcome::Failed,
            reason: Some(one_line(&format!(
                "no employee entry of the directory names {name}"
            ))),
            password_set: false,
            password: None,
        });
    }
    drop(mailer);
    let failed = rows.iter().any(|r| r.result == Outcome::Failed);
    let text = if req.json {
        json_report(&rows, req.dry_run)?
    } else {
        table(&rows, req.print)
    };
    print(&text)?;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn selection<'a>(req: &'a Request, users: &'a [String]) -> Selection<'a> {
    match (&req.group, &req.filter) {
        (Some(group), _) => Selection::Group(group),
        (None, Some(filter)) => Selection::Filter(filter),
        (None, None) if users.is_empty() => Selection::Everyone,
        (None, None) => Selection::Users(users),
    }
}

/// What every kit of a batch shares.
struct Kit<'a> {
    config: &'a deadbolt_config::Config,
    template: &'a Template,
    valid_for: &'a str,
    valid_until: &'a str,
    login_url: Option<&'a str>,
    print: bool,
}

impl Kit<'_> {
    /// One employee's kit; `mailer` is `None` for a dry run.
    fn send(&self, session: &mut Session, mailer: Option<&mut Mailer>, employee: &Employee) -> Row {
        let Some(mail) = &employee.mail else {
            return Row::of(employee, Outcome::Skipped).because("no email address");
        };
        let to = match recipient(&employee.name, mail) {
            Ok(to) => to,
            Err(why) => {
                return Row::of(employee, Outcome::Failed)
                    .because(format!("{why}; the password was not changed"))
            }
        };
        let password: Zeroizing<String> = match generate_for(self.config, employee) {
            Ok(password) => password,
            Err(why) => {
                return Row::of(employee, Outcome::Failed)
                    .because(format!("{why}; the password was not changed"))
            }
        };
        let fields = Fields {
            name: &employee.name,
            login: &employee.user,
            password: &password,
            valid_for: self.valid_for,
            valid_until: self.valid_until,
            login_url: self.login_url,
        };
        let subject = self.template.subject(&fields);
        let body = self.template.body(&fields);
        let Some(mailer) = mailer else {
            return Row::of(employee, Outcome::WouldSend);
        };
        if let Err(why) = mailer.ready() {
            return Row::of(employee, Outcome::Failed)
                .because(format!("{why}; the password was not changed"));
        }
        if let Err(why) = session.replace_password(employee, &password) {
            return Row::of(employee, Outcome::Failed).because(format!("{why}; nothing was sent"));
        }
        let mut row = Row::of(employee, Outcome::Sent);
        row.password_set = true;
        if self.print {
            row.password = Some(password.as_str().to_owned());
        }
        if let Err(why) = session.mark_reset(employee) {
            // The kit still goes: the password works, and the table says it
            // need not be changed.
            row.reason = Some(one_line(&why.to_string()));
        }
        match mailer.send(&to, &subject, &body) {
            Ok(()) => row,
            Err(why) => {
                row.result = Outcome::Failed;
                row.because(format!(
                    "password set, mail not sent ({why}): nobody knows that password; run \
                     welcome again for him"
                ))
            }
        }
    }
}

fn table(rows: &[Row], with_password: bool) -> String {
    let shown = |text: &str| one_line(text);
    let user_width = rows
        .iter()
        .map(|r| shown(&r.user).chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let mail_width = rows
        .iter()
        .map(|r| r.mail.as_deref().map_or(1, |m| shown(m).chars().count()))
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = format!(
        "{:<user_width$}  {:<10}  {:<mail_width$}",
        "USER", "RESULT", "MAIL"
    );
    if with_password {
        out.push_str("  PASSWORD");
    }
    out.push_str("  DETAIL\n");
    for row in rows {
        let mut line = format!(
            "{:<user_width$}  {:<10}  {:<mail_width$}",
            shown(&row.user),
            row.result.word(),
            row.mail
                .as_deref()
                .map(shown)
                .unwrap_or_else(|| "-".to_owned())
        );
        if with_password {
            line.push_str(&format!("  {}", row.password.as_deref().unwrap_or("-")));
        }
        line.push_str(&format!("  {}", row.reason.as_deref().unwrap_or("")));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let count = |o: Outcome| rows.iter().filter(|r| r.result == o).count();
    let mut summary = format!("{} employees:", rows.len());
    for (outcome, label) in [
        (Outcome::Sent, "sent the kit"),
        (Outcome::WouldSend, "would be sent the kit"),
        (Outcome::Skipped, "skipped (no email address)"),
        (Outcome::Failed, "failed"),
    ] {
        let n = count(outcome);
        if n > 0 || matches!(outcome, Outcome::Skipped | Outcome::Failed) {
            summary.push_str(&format!(" {n} {label},"));
        }
    }
    out.push_str(summary.trim_end_matches(','));
    out.push('\n');
    out
}

fn json_report(rows: &[Row], dry_run: bool) -> Result<String, CliError> {
    let count = |o: Outcome| rows.iter().filter(|r| r.result == o).count();
    json_line(&serde_json::json!({
        "dry_run": dry_run,
        "sent": count(Outcome::Sent),
        "would_send": count(Outcome::WouldSend),
        "skipped": count(Outcome::Skipped),
        "failed": count(Outcome::Failed),
        "employees": rows,
    }))
}

/// `--missing-mail`: who of the selection (everyone by default) has no
/// email address. Nothing is changed, and no mail settings are needed.
fn missing_mail(
    req: &Request,
    directory: &deadbolt_config::DirectorySettings,
    users: &[String],
) -> Result<ExitCode, CliError> {
    let person = person_of(req.identity)?;
    let mut session =
        Session::open(directory, &person).map_err(|e| CliError::Directory(e.to_string()))?;
    let selected = session
        .select(selection(req, users))
        .map_err(|e| CliError::Directory(e.to_string()))?;
    let missing: Vec<&Employee> = selected
        .employees
        .iter()
        .filter(|e| e.mail.is_none())
        .collect();
    let text = if req.json {
        let list: Vec<serde_json::Value> = missing
            .iter()
            .map(|e| serde_json::json!({"user": e.user, "dn": e.dn, "name": e.name}))
            .collect();
        json_line(&serde_json::json!({
            "checked": selected.employees.len(),
            "missing_mail": list,
            "unknown": selected.unknown,
        }))?
    } else {
        let mut out = String::new();
        for e in &missing {
            out.push_str(&format!("{}  {}\n", one_line(&e.user), one_line(&e.dn)));
        }
        out.push_str(&format!(
            "{} of {} employees have no email address\n",
            missing.len(),
            selected.employees.len()
        ));
        for name in &selected.unknown {
            out.push_str(&format!(
                "{}: no employee entry of the directory names him\n",
                one_line(name)
            ));
        }
        out
    };
    print(&text)?;
    Ok(if selected.unknown.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
