//! One user's answer to "is he locked, until when, why, from where", with
//! the state of his password and his account's expiry: the JSON object of
//! docs/reference.md and its text form.

use crate::error::one_line;
use crate::subject::Subject;
use crate::timefmt::{clock, clock_and_relative, relative_day, Zone};
use deadbolt_core::password::{day_start, format_date, AgeStatus};
use deadbolt_core::{Failure, LockStatus, Timestamp, UserName, UserState};
use serde::Serialize;
use std::time::Duration;

/// What is known of one user at one instant.
#[derive(Debug, Clone)]
pub struct UserView {
    pub user: String,
    pub status: LockStatus,
    /// A login would be refused now for a lock or for being disabled (the
    /// JSON `locked`).
    pub refused: bool,
    /// The password and the account's expiry, by the user's policy.
    pub age: AgeStatus,
    /// A login would be refused now because the account expired (never
    /// root's).
    pub expired: bool,
    /// The departure date, days since 1970-01-01.
    pub expires_on: Option<i64>,
    pub password_changed_at: Option<Timestamp>,
    /// The policy's `max_age`: `None`, passwords never expire by age.
    pub max_age: Option<Duration>,
    /// How many former passwords the history holds.
    pub history_entries: usize,
    /// `exempt`, `is_root` and `known_to_nss`: in a listing, a user whose
    /// row nothing about his account can change is not looked up (see
    /// `Resolver::for_anyone`), and these are then those of a user NSS does
    /// not know; no row and no JSON shows them.
    pub exempt: bool,
    pub is_root: bool,
    pub known_to_nss: bool,
    pub policy: String,
    /// The failures that may still count (after the last reactivation or
    /// successful login), oldest first.
    pub failures: Vec<Failure>,
    pub last_success: Option<Timestamp>,
    pub last_reactivation: Option<Timestamp>,
    pub last_disable: Option<Timestamp>,
    /// The state could not be read; it is reported, never changed.
    pub error: Option<String>,
}

impl UserView {
    /// The view of `state` (empty when the user has none) at `now`.
    pub fn new(user: &UserName, subject: &Subject, state: &UserState, now: Timestamp) -> Self {
        let status = subject.policy.lockout.evaluate(state, now);
        let age = subject.password.ageing.evaluate(state, now);
        UserView {
            user: user.as_str().to_owned(),
            refused: subject.refused_by(&status),
            status,
            expired: subject.refused_by_expiry(&age),
            age,
            expires_on: state.expires_on.as_ref().and_then(|e| e.value),
            password_changed_at: state.last_password_change,
            max_age: subject.password.ageing.max_age,
            history_entries: state.password_history.len(),
            exempt: subject.exempt,
            is_root: subject.is_root(),
            known_to_nss: subject.account.is_some(),
            policy: subject.policy.policy_name.clone(),
            failures: state.live_failures().cloned().collect(),
            last_success: state.last_success,
            last_reactivation: state.last_reactivation,
            last_disable: if state.is_disabled() {
                state.last_disable
            } else {
                None
            },
            error: None,
        }
    }

    /// A user whose state could not be read: reported as having none.
    pub fn unreadable(user: &UserName, subject: &Subject, why: String, now: Timestamp) -> Self {
        let mut view = UserView::new(user, subject, &UserState::default(), now);
        view.error = Some(one_line(&why));
        view
    }

    /// Locked by failures, and that lock is enforced (not exempt).
    fn failure_lock_enforced(&self) -> bool {
        self.status.failure_locked && !self.exempt
    }

    pub fn to_json(&self) -> UserJson {
        let enforced = self.failure_lock_enforced();
        UserJson {
            user: self.user.clone(),
            locked: self.refused,
            disabled: self.status.disabled,
            locked_in_directory: self.status.directory_locked && !self.exempt,
            failures: self.status.failures,
            locked_until: self
                .status
                .locked_until
                .filter(|_| enforced)
                .map(Timestamp::to_rfc3339),
            locked_since: self
                .status
                .locked_since
                .filter(|_| enforced)
                .map(Timestamp::to_rfc3339),
            until_reactivated: enforced && self.status.until_reactivated(),
            policy: self.policy.clone(),
            failure_events: self
                .failures
                .iter()
                .map(|f| FailureJson {
                    time: f.time.to_rfc3339(),
                    host: f.host.clone(),
                    source: f.source.clone(),
                    service: f.service.clone(),
                })
                .collect(),
            last_success: self.last_success.map(Timestamp::to_rfc3339),
            last_reactivation: self.last_reactivation.map(Timestamp::to_rfc3339),
            refused: self.refused || self.expired,
            account_expired: self.age.account_expired,
            expires_on: self.expires_on.map(format_date),
            must_change: self.age.must_change,
            password_changed_at: self.password_changed_at.map(Timestamp::to_rfc3339),
            password_expires_at: self.age.password_expires_at.map(Timestamp::to_rfc3339),
            history_entries: self.history_entries,
            error: self.error.clone(),
        }
    }

    /// `LOCKED`, `disabled`, `expired` (the account's last day has passed),
    /// `ok`, `exempt` (enough failures to lock, but root or admin_group) or
    /// `unreadable`: the STATUS column.
    pub fn state_word(&self) -> &'static str {
        if self.error.is_some() {
            "unreadable"
        } else if self.status.disabled && self.refused {
            "disabled"
        } else if self.refused {
            "LOCKED"
        } else if self.expired {
            "expired"
        } else if self.status.failure_locked {
            "exempt"
        } else {
            "ok"
        }
    }

    /// Until when logins are refused: the UNTIL column.
    pub fn until_text(&self, zone: &Zone, now: Timestamp) -> String {
        if !self.refused {
            return match self.expires_on.filter(|_| self.expired) {
                Some(day) => format!("expired since {}", format_date(day)),
                None => "-".to_owned(),
            };
        }
        if self.status.disabled && !self.is_root {
            return "until enabled".to_owned();
        }
        match self.status.locked_until {
            Some(until) => clock_and_relative(zone, now, until),
            None => "until reactivated".to_owned(),
        }
    }

    /// The first line of the text form: the user and the answer.
    fn headline(&self, zone: &Zone, now: Timestamp) -> String {
        let user = &self.user;
        let n = self.status.failures;
        let failures = plural_failures(n);
        if let Some(why) = &self.error {
            return format!(
                "{user}: the state file cannot be read ({why}); it is left as it is \
                 and counts as no state"
            );
        }
        if self.refused && self.status.disabled {
            let since = self
                .last_disable
                .map(|t| format!(" since {}", clock(zone, t)))
                .unwrap_or_default();
            return format!("{user}: disabled{since}: every login is refused until enabled");
        }
        if self.refused && !self.status.failure_locked && self.status.directory_locked {
            return format!(
                "{user}: LOCKED in the directory (pwdAccountLockedTime), until unlocked there \
                 or reactivated"
            );
        }
        if self.refused {
            return match self.status.locked_until {
                Some(until) => format!(
                    "{user}: LOCKED after {failures}, until {}",
                    clock_and_relative(zone, now, until)
                ),
                None => format!("{user}: LOCKED after {failures}, until reactivated"),
            };
        }
        if let Some(day) = self.expires_on.filter(|_| self.expired) {
            return format!(
                "{user}: the account expired on {} ({}): every login is refused",
                format_date(day),
                relative_day(now, day)
            );
        }
        let mut line = format!("{user}: not locked");
        if self.status.failure_locked {
            let who = if self.is_root { "root" } else { "admin_group" };
            line.push_str(&format!(
                " ({failures} would lock, but {who} is exempt: even_deny_root is off)"
            ));
        } else if self.status.disabled {
            line.push_str(" (disabled, but root is never refused for it)");
        } else if n > 0 {
            line.push_str(&format!(", {failures} counting"));
        }
        line
    }

    /// The text form for one user: the answer, then the details.
    pub fn render_detail(&self, zone: &Zone, now: Timestamp) -> String {
        let mut out = self.headline(zone, now);
        out.push('\n');
        let mut field = |name: &str, value: String| {
            out.push_str(&format!("  {name:<18} {value}\n"));
        };
        if self.refused && !self.status.disabled {
            if let Some(since) = self.status.locked_since {
                field("locked since:", clock_and_relative(zone, now, since));
            }
        }
        if self.status.disabled && self.refused && self.status.failure_locked && !self.exempt {
            field(
                "also locked:",
                match self.status.locked_until {
                    Some(until) => format!("until {}", clock_and_relative(zone, now, until)),
                    None => "until reactivated".to_owned(),
                },
            );
        }
        let policy = if self.known_to_nss {
            self.policy.clone()
        } else {
            format!("{} (NSS does not know this user)", self.policy)
        };
        field("policy:", policy);
        field("failures counting:", self.status.failures.to_string());
        field(
            "last success:",
            self.last_success
                .map_or("never".to_owned(), |t| clock_and_relative(zone, now, t)),
        );
        field(
            "last reactivation:",
            self.last_reactivation
                .map_or("never".to_owned(), |t| clock_and_relative(zone, now, t)),
        );
        field("account expires:", self.expiry_text(zone, now));
        field("password changed:", {
            self.password_changed_at
                .map_or("not recorded".to_owned(), |t| {
                    clock_and_relative(zone, now, t)
                })
        });
        field("password expires:", self.password_expiry_text(zone, now));
        field("must change:", self.must_change_text());
        field(
            "password history:",
            match self.history_entries {
                0 => "none kept".to_owned(),
                1 => "1 former password kept".to_owned(),
                n => format!("{n} former passwords kept"),
            },
        );
        if self.failures.is_empty() {
            out.push_str("  no failed logins since the last success or reactivation\n");
        } else {
            out.push_str("  failed logins since the last success or reactivation:\n");
            let rows: Vec<[String; 4]> = self
                .failures
                .iter()
                .map(|f| {
                    [
                        clock(zone, f.time),
                        one_line(&f.host),
                        one_line(&f.source),
                        one_line(&f.service),
                    ]
                })
                .collect();
            out.push_str(&table(
                &["TIME", "HOST", "SOURCE", "SERVICE"],
                &rows,
                "    ",
            ));
        }
        out
    }
}

impl UserView {
    /// The `account expires:` line.
    fn expiry_text(&self, zone: &Zone, now: Timestamp) -> String {
        let Some(day) = self.expires_on else {
            return "never".to_owned();
        };
        let date = format!("{} ({})", format_date(day), relative_day(now, day));
        if self.expired {
            format!("{date}: expired, every login is refused")
        } else if self.age.account_expired {
            format!("{date}: passed, but root is never refused for it")
        } else {
            // The day begins at 00:00 UTC on every host; when that is here.
            format!("{date}, from {}", clock(zone, day_start(day)))
        }
    }

    /// The `password expires:` line: by `max_age`, from the last change.
    fn password_expiry_text(&self, zone: &Zone, now: Timestamp) -> String {
        match self.age.password_expires_at {
            Some(at) if at <= now => format!("expired {}", clock_and_relative(zone, now, at)),
            Some(at) => clock_and_relative(zone, now, at),
            None if self.max_age.is_none() => "never (no max_age)".to_owned(),
            None => "not known (no change recorded)".to_owned(),
        }
    }

    /// The `must change:` line.
    fn must_change_text(&self) -> String {
        if !self.age.must_change {
            "no".to_owned()
        } else if self.age.reset_by_admin {
            "yes, at the next login (set by an administrator)".to_owned()
        } else {
            "yes, at the next login (it has expired)".to_owned()
        }
    }
}

fn plural_failures(n: u32) -> String {
    if n == 1 {
        "1 failed login".to_owned()
    } else {
        format!("{n} failed logins")
    }
}

/// The text form of a listing: one row per user, then a line for each
/// state that could not be read.
pub fn render_list(views: &[UserView], zone: &Zone, now: Timestamp, only_locked: bool) -> String {
    if views.is_empty() {
        return if only_locked {
            "no user is locked\n".to_owned()
        } else {
            "no user has state\n".to_owned()
        };
    }
    let rows: Vec<[String; 5]> = views
        .iter()
        .map(|v| {
            [
                v.user.clone(),
                v.state_word().to_owned(),
                v.status.failures.to_string(),
                v.until_text(zone, now),
                v.policy.clone(),
            ]
        })
        .collect();
    let mut out = table(
        &["USER", "STATUS", "FAILURES", "UNTIL", "POLICY"],
        &rows,
        "",
    );
    for view in views {
        if let Some(why) = &view.error {
            out.push_str(&format!(
                "{}: the state file cannot be read ({why}); it is left as it is\n",
                view.user
            ));
        }
    }
    out
}

/// Columns padded to their widest cell; the last column is not padded.
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]], indent: &str) -> String {
    let mut widths: [usize; N] = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = indent.to_owned();
        for (i, cell) in cells.enumerate() {
            if i + 1 < N {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            } else {
                text.push_str(cell);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// What `status --json` prints for a listing: the array of [`UserJson`]
/// on one line, byte for byte what serializing the array at once gives;
/// the objects are serialized on every core.
pub fn json_array_line(views: &[UserView]) -> serde_json::Result<String> {
    let objects: Vec<String> = crate::parallel::map(
        views,
        |view| serde_json::to_string(&view.to_json()),
        &|_| {},
    )
    .into_iter()
    .collect::<serde_json::Result<_>>()?;
    let mut out = String::with_capacity(objects.iter().map(|o| o.len() + 1).sum::<usize>() + 2);
    out.push('[');
    for (i, object) in objects.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(object);
    }
    out.push_str("]\n");
    Ok(out)
}

/// The object `status --json` prints for one user (docs/reference.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserJson {
    pub user: String,
    pub locked: bool,
    pub disabled: bool,
    /// The directory holds a lock of its own (ppolicy's
    /// `pwdAccountLockedTime`, not deadbolt's), refused like a failure lock.
    pub locked_in_directory: bool,
    pub failures: u32,
    pub locked_until: Option<String>,
    pub locked_since: Option<String>,
    pub until_reactivated: bool,
    pub policy: String,
    pub failure_events: Vec<FailureJson>,
    pub last_success: Option<String>,
    pub last_reactivation: Option<String>,
    /// A login would be refused now for any reason: `locked`, or the
    /// account expired (never root's).
    pub refused: bool,
    /// The account's last day has passed (root's included).
    pub account_expired: bool,
    /// `YYYY-MM-DD`: from that day, 00:00 UTC, the account is expired.
    pub expires_on: Option<String>,
    /// The password must change at the next login.
    pub must_change: bool,
    pub password_changed_at: Option<String>,
    /// When the password expires by `max_age`.
    pub password_expires_at: Option<String>,
    /// How many former passwords the history holds (never the hashes).
    pub history_entries: usize,
    /// Only when the state could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureJson {
    pub time: String,
    pub host: String,
    pub source: String,
    pub service: String,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::subject::fake::FakeDirectory;
    use deadbolt_config::Config;
    use serde_json::{json, Value};
    use std::time::Duration;

    /// 2026-11-27T23:05:09.000123Z
    pub const NOW: Timestamp = Timestamp(1_795_820_709_000_123);

    pub fn ago(secs: u64) -> Timestamp {
        NOW.saturating_sub(Duration::from_secs(secs))
    }

    pub fn failure(time: Timestamp, source: &str) -> Failure {
        Failure {
            time,
            host: "web1".to_owned(),
            source: source.to_owned(),
            service: "sshd".to_owned(),
            pid: 42,
        }
    }

    /// Three failures within the default 15 minutes: locked for 10 minutes
    /// after the last one.
    pub fn locked_state() -> UserState {
        let mut state = UserState::default();
        for (secs, source) in [(180, "10.0.0.7"), (120, "10.0.0.7"), (60, "10.0.0.8")] {
            state.failures.insert(failure(ago(secs), source));
        }
        state
    }

    fn directory() -> FakeDirectory {
        FakeDirectory::default()
            .with_user("alice", 1001, &[])
            .with_user("root", 0, &[])
            .with_user("carol", 1003, &["contractors"])
    }

    fn config() -> Config {
        Config::parse(
            "[[policy]]\nname = \"contractors\"\ngroups = [\"contractors\"]\n\
             [policy.lockout]\nunlock_after = \"never\"\n\
             [policy.password]\nmax_age = \"30d\"\n",
            "test.toml",
        )
        .unwrap()
    }

    fn view(name: &str, state: &UserState) -> UserView {
        let user = UserName::parse(name).unwrap();
        let subject = Subject::resolve(&config(), &directory(), &user);
        UserView::new(&user, &subject, state, NOW)
    }

    fn as_value(view: &UserView) -> Value {
        serde_json::to_value(view.to_json()).unwrap()
    }

    const KEYS: [&str; 19] = [
        "user",
        "locked",
        "disabled",
        "locked_in_directory",
        "failures",
        "locked_until",
        "locked_since",
        "until_reactivated",
        "policy",
        "failure_events",
        "last_success",
        "last_reactivation",
        "refused",
        "account_expired",
        "expires_on",
        "must_change",
        "password_changed_at",
        "password_expires_at",
        "history_entries",
    ];

    #[test]
    fn json_of_a_locked_user() {
        let value = as_value(&view("alice", &locked_state()));
        assert_eq!(
            value,
            json!({
                "user": "alice",
                "locked": true,
                "disabled": false,
                "locked_in_directory": false,
                "failures": 3,
                "locked_until": "2026-11-27T23:14:09.000123Z",
                "locked_since": "2026-11-27T23:04:09.000123Z",
                "until_reactivated": false,
                "policy": "default",
                "failure_events": [
                    {"time": "2026-11-27T23:02:09.000123Z", "host": "web1", "source": "10.0.0.7", "service": "sshd"},
                    {"time": "2026-11-27T23:03:09.000123Z", "host": "web1", "source": "10.0.0.7", "service": "sshd"},
                    {"time": "2026-11-27T23:04:09.000123Z", "host": "web1", "source": "10.0.0.8", "service": "sshd"},
                ],
                "last_success": null,
                "last_reactivation": null,
                "refused": true,
                "account_expired": false,
                "expires_on": null,
                "must_change": false,
                "password_changed_at": null,
                "password_expires_at": null,
                "history_entries": 0,
            })
        );
        // Exactly the keys of the reference, in its order.
        let text = serde_json::to_string(&view("alice", &locked_state()).to_json()).unwrap();
        let mut at = 0;
        for key in KEYS {
            let found = text[at..].find(&format!("\"{key}\":")).expect(key);
            at += found;
        }
        assert_eq!(value.as_object().unwrap().len(), KEYS.len());
    }

    #[test]
    fn json_of_a_user_locked_until_reactivated() {
        let value = as_value(&view("carol", &locked_state()));
        assert_eq!(value["locked"], true);
        assert_eq!(value["until_reactivated"], true);
        assert_eq!(value["locked_until"], Value::Null);
        assert_eq!(value["locked_since"], "2026-11-27T23:04:09.000123Z");
        assert_eq!(value["policy"], "contractors");
    }

    #[test]
    fn json_of_an_unlocked_user_with_history() {
        let mut state = locked_state();
        state.last_reactivation = Some(ago(90));
        state.last_success = Some(ago(30));
        state.failures.insert(failure(ago(10), "10.0.0.9"));
        let value = as_value(&view("alice", &state));
        assert_eq!(value["locked"], false);
        assert_eq!(value["failures"], 1);
        assert_eq!(value["locked_until"], Value::Null);
        assert_eq!(value["locked_since"], Value::Null);
        assert_eq!(value["last_success"], "2026-11-27T23:04:39.000123Z");
        assert_eq!(value["last_reactivation"], "2026-11-27T23:03:39.000123Z");
        // Only the failure after the last success is still shown.
        assert_eq!(value["failure_events"].as_array().unwrap().len(), 1);
        assert_eq!(value["failure_events"][0]["source"], "10.0.0.9");
    }

    #[test]
    fn json_of_a_user_never_seen() {
        let value = as_value(&view("alice", &UserState::default()));
        assert_eq!(
            value,
            json!({
                "user": "alice", "locked": false, "disabled": false,
                "locked_in_directory": false, "failures": 0,
                "locked_until": null, "locked_since": null, "until_reactivated": false,
                "policy": "default", "failure_events": [], "last_success": null,
                "last_reactivation": null, "refused": false, "account_expired": false,
                "expires_on": null, "must_change": false, "password_changed_at": null,
                "password_expires_at": null, "history_entries": 0,
            })
        );
    }

    #[test]
    fn json_of_a_disabled_user() {
        let state = UserState {
            last_disable: Some(ago(3600)),
            ..UserState::default()
        };
        let value = as_value(&view("alice", &state));
        assert_eq!(value["locked"], true);
        assert_eq!(value["disabled"], true);
        assert_eq!(value["failures"], 0);
        assert_eq!(value["locked_until"], Value::Null);
        assert_eq!(value["until_reactivated"], false);
        // Enabled since: no longer disabled.
        let state = UserState {
            last_disable: Some(ago(3600)),
            last_enable: Some(ago(60)),
            ..UserState::default()
        };
        let value = as_value(&view("alice", &state));
        assert_eq!(value["locked"], false);
        assert_eq!(value["disabled"], false);
    }

    #[test]
    fn a_lock_that_ran_out_is_no_lock() {
        let mut state = UserState::default();
        for secs in [1000, 990, 980] {
            state.failures.insert(failure(ago(secs), "10.0.0.7"));
        }
        let value = as_value(&view("alice", &state));
        assert_eq!(value["locked"], false);
        assert_eq!(value["locked_until"], Value::Null);
    }

    #[test]
    fn root_is_exempt_from_failure_locks_and_from_disabling() {
        let value = as_value(&view("root", &locked_state()));
        assert_eq!(value["locked"], false);
        assert_eq!(value["failures"], 3);
        assert_eq!(value["locked_until"], Value::Null);
        assert_eq!(value["until_reactivated"], false);
        let text = view("root", &locked_state()).render_detail(&Zone::utc(), NOW);
        assert!(
            text.starts_with("root: not locked (3 failed logins would lock, but root is exempt")
        );
        let disabled = UserState {
            last_disable: Some(ago(10)),
            ..UserState::default()
        };
        let value = as_value(&view("root", &disabled));
        assert_eq!(value["locked"], false);
        assert_eq!(value["disabled"], true);
    }

    #[test]
    fn unreadable_state_is_reported_in_an_error_field() {
        let user = UserName::parse("alice").unwrap();
        let subject = Subject::resolve(&config(), &directory(), &user);
        let view = UserView::unreadable(&user, &subject, "it does not\ndecode".to_owned(), NOW);
        let value = as_value(&view);
        assert_eq!(value["error"], "it does not decode");
        assert_eq!(value["locked"], false);
        let text = view.render_detail(&Zone::utc(), NOW);
        assert!(text.starts_with("alice: the state file cannot be read (it does not decode)"));
    }

    #[test]
    fn text_of_a_locked_user() {
        let text = view("alice", &locked_state()).render_detail(&Zone::utc(), NOW);
        let expected = "\
alice: LOCKED after 3 failed logins, until 2026-11-27 23:14:09 UTC (in 9 minutes)
  locked since:      2026-11-27 23:04:09 UTC (1 minute ago)
  policy:            default
  failures counting: 3
  last success:      never
  last reactivation: never
  account expires:   never
  password changed:  not recorded
  password expires:  never (no max_age)
  must change:       no
  password history:  none kept
  failed logins since the last success or reactivation:
    TIME                     HOST  SOURCE    SERVICE
    2026-11-27 23:02:09 UTC  web1  10.0.0.7  sshd
    2026-11-27 23:03:09 UTC  web1  10.0.0.7  sshd
    2026-11-27 23:04:09 UTC  web1  10.0.0.8  sshd
";
        assert_eq!(text, expected);
    }

    /// Every time of the text is in the zone given, the day of the
    /// expiry excepted (a UTC day, as stored); the JSON does not change.
    #[test]
    fn text_in_the_administrators_zone() {
        let paris = Zone::named("Europe/Paris");
        let mut state = locked_state();
        state.last_success = Some(ago(7200));
        state.last_reactivation = Some(ago(3600));
        state.last_password_change = Some(ago(86_400));
        state.expires_on = Some(deadbolt_core::state::Stamped {
            set_at: ago(10),
            value: Some(today() + 124),
        });
        let view = view("alice", &state);
        let text = view.render_detail(&paris, NOW);
        let expected = "\
alice: LOCKED after 3 failed logins, until 2026-11-28 00:14:09 CET (in 9 minutes)
  locked since:      2026-11-28 00:04:09 CET (1 minute ago)
  policy:            default
  failures counting: 3
  last success:      2026-11-27 22:05:09 CET (2 hours ago)
  last reactivation: 2026-11-27 23:05:09 CET (60 minutes ago)
  account expires:   2027-03-31 (in 124 days), from 2027-03-31 02:00:00 CEST
  password changed:  2026-11-27 00:05:09 CET (24 hours ago)
  password expires:  never (no max_age)
  must change:       no
  password history:  none kept
  failed logins since the last success or reactivation:
    TIME                     HOST  SOURCE    SERVICE
    2026-11-28 00:02:09 CET  web1  10.0.0.7  sshd
    2026-11-28 00:03:09 CET  web1  10.0.0.7  sshd
    2026-11-28 00:04:09 CET  web1  10.0.0.8  sshd
";
        assert_eq!(text, expected);
        let listing = render_list(std::slice::from_ref(&view), &paris, NOW, false);
        assert!(
            listing.contains("  2026-11-28 00:14:09 CET (in 9 minutes)  "),
            "{listing}"
        );
        let json = as_value(&view);
        assert_eq!(json["locked_until"], "2026-11-27T23:14:09.000123Z");
        assert_eq!(json["last_success"], "2026-11-27T21:05:09.000123Z");
        assert_eq!(json["expires_on"], "2027-03-31");
        // West of Greenwich the UTC day begins the evening before.
        let new_york = Zone::named("America/New_York");
        let text = view.render_detail(&new_york, NOW);
        assert!(
            text.contains(
                "\n  account expires:   2027-03-31 (in 124 days), from 2027-03-30 20:00:00 EDT\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn text_of_other_users() {
        let text = view("carol", &locked_state()).render_detail(&Zone::utc(), NOW);
        assert!(text.starts_with("carol: LOCKED after 3 failed logins, until reactivated\n"));
        let text = view("alice", &UserState::default()).render_detail(&Zone::utc(), NOW);
        assert!(text.starts_with("alice: not locked\n"));
        assert!(text.contains("no failed logins"));
        let text = view("ghost", &UserState::default()).render_detail(&Zone::utc(), NOW);
        assert!(text.contains("default (NSS does not know this user)"));
        let disabled = UserState {
            last_disable: Some(ago(3600)),
            ..UserState::default()
        };
        let text = view("alice", &disabled).render_detail(&Zone::utc(), NOW);
        assert!(text.starts_with(
            "alice: disabled since 2026-11-27 22:05:09 UTC: every login is refused until enabled\n"
        ));
        let mut one = UserState::default();
        one.failures.insert(failure(ago(5), "tty1"));
        let text = view("alice", &one).render_detail(&Zone::utc(), NOW);
        assert!(text.starts_with("alice: not locked, 1 failed login counting\n"));
    }

    #[test]
    fn the_json_of_a_listing_is_that_of_the_whole_array() {
        let kinds = [locked_state(), UserState::default()];
        for n in [0, 1, 2, 600] {
            let views: Vec<UserView> = (0..n)
                .map(|i| {
                    let name = ["alice", "carol", "root", "ghost"][i % 4];
                    view(name, &kinds[i % 2])
                })
                .collect();
            let all: Vec<UserJson> = views.iter().map(UserView::to_json).collect();
            let mut expected = serde_json::to_string(&all).unwrap();
            expected.push('\n');
            assert_eq!(json_array_line(&views).unwrap(), expected);
        }
    }

    #[test]
    fn text_of_a_listing() {
        let disabled = UserState {
            last_disable: Some(ago(3600)),
            ..UserState::default()
        };
        let views = vec![
            view("alice", &locked_state()),
            view("bob", &UserState::default()),
            view("carol", &locked_state()),
            view("dave", &disabled),
            view("root", &locked_state()),
        ];
        let expected = "\
USER   STATUS    FAILURES  UNTIL                                   POLICY
alice  LOCKED    3         2026-11-27 23:14:09 UTC (in 9 minutes)  default
bob    ok        0         -                                       default
carol  LOCKED    3         until reactivated                       contractors
dave   disabled  0         until enabled                           default
root   exempt    3         -                                       default
";
        assert_eq!(render_list(&views, &Zone::utc(), NOW, false), expected);
        assert_eq!(
            render_list(&[], &Zone::utc(), NOW, false),
            "no user has state\n"
        );
        assert_eq!(
            render_list(&[], &Zone::utc(), NOW, true),
            "no user is locked\n"
        );
    }

    #[test]
    fn hostile_failure_fields_cannot_forge_lines() {
        let mut state = UserState::default();
        state.failures.insert(Failure {
            time: ago(5),
            host: "web1\nalice: not locked".to_owned(),
            source: "\x1b[2J".to_owned(),
            service: "sshd".to_owned(),
            pid: 1,
        });
        let text = view("alice", &state).render_detail(&Zone::utc(), NOW);
        assert!(!text.contains('\x1b'));
        assert!(!text.contains("\nalice: not locked"));
    }

    fn days(n: u64) -> Duration {
        Duration::from_secs(n * 86_400)
    }

    /// Days since 1970-01-01 of NOW's day, 2026-11-27.
    fn today() -> i64 {
        deadbolt_core::password::parse_date("2026-11-27").unwrap()
    }

    fn expiring(day: Option<i64>) -> UserState {
        UserState {
            expires_on: Some(deadbolt_core::state::Stamped {
                set_at: ago(3600),
                value: day,
            }),
            ..UserState::default()
        }
    }

    #[test]
    fn json_of_a_password_reset_by_an_administrator() {
        let state = UserState {
            last_password_change: Some(ago(600)),
            last_admin_reset: Some(ago(60)),
            ..UserState::default()
        };
        let value = as_value(&view("alice", &state));
        assert_eq!(value["must_change"], true);
        assert_eq!(value["password_changed_at"], "2026-11-27T22:55:09.000123Z");
        // The default policy has no max_age.
        assert_eq!(value["password_expires_at"], Value::Null);
        // Having to change the password refuses nothing.
        assert_eq!(value["locked"], false);
        assert_eq!(value["refused"], false);
        let text = view("alice", &state).render_detail(&Zone::utc(), NOW);
        assert!(text.starts_with("alice: not locked\n"), "{text}");
        assert!(
            text.contains(
                "\n  must change:       yes, at the next login (set by an administrator)\n"
            ),
            "{text}"
        );
        // A change after the reset ends it.
        let changed = UserState {
            last_password_change: Some(ago(10)),
            ..state
        };
        assert_eq!(as_value(&view("alice", &changed))["must_change"], false);
    }

    #[test]
    fn json_of_a_password_aged_out_by_the_users_policy() {
        // carol's policy has max_age = 30d; alice's has none.
        let state = UserState {
            last_password_change: Some(ago(31 * 86_400)),
            ..UserState::default()
        };
        let carol = as_value(&view("carol", &state));
        assert_eq!(carol["must_change"], true);
        assert_eq!(carol["password_changed_at"], "2026-10-27T23:05:09.000123Z");
        assert_eq!(carol["password_expires_at"], "2026-11-26T23:05:09.000123Z");
        let text = view("carol", &state).render_detail(&Zone::utc(), NOW);
        assert!(
            text.contains("\n  must change:       yes, at the next login (it has expired)\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "\n  password expires:  expired 2026-11-26 23:05:09 UTC (24 hours ago)\n"
            ),
            "{text}"
        );
        let alice = as_value(&view("alice", &state));
        assert_eq!(alice["must_change"], false);
        assert_eq!(alice["password_expires_at"], Value::Null);

        let recent = UserState {
            last_password_change: Some(NOW.saturating_sub(days(10))),
            ..UserState::default()
        };
        let carol = as_value(&view("carol", &recent));
        assert_eq!(carol["must_change"], false);
        assert_eq!(carol["password_expires_at"], "2026-12-17T23:05:09.000123Z");
        // No change recorded: nothing to count max_age from.
        let text = view("carol", &UserState::default()).render_detail(&Zone::utc(), NOW);
        assert!(
            text.contains("\n  password expires:  not known (no change recorded)\n"),
            "{text}"
        );
    }

    #[test]
    fn json_of_an_account_expiry() {
        // Tomorrow: not yet.
        let value = as_value(&view("alice", &expiring(Some(today() + 1))));
        assert_eq!(value["expires_on"], "2026-11-28");
        assert_eq!(value["account_expired"], false);
        assert_eq!(value["refused"], false);
        // Today, since 00:00 UTC: expired, refused, but not locked.
        let value = as_value(&view("alice", &expiring(Some(today()))));
        assert_eq!(value["expires_on"], "2026-11-27");
        assert_eq!(value["account_expired"], true);
        assert_eq!(value["refused"], true);
        assert_eq!(value["locked"], false);
        assert_eq!(value["disabled"], false);
        assert_eq!(value["must_change"], false);
        // Removed with --never.
        let value = as_value(&view("alice", &expiring(None)));
        assert_eq!(value["expires_on"], Value::Null);
        assert_eq!(value["account_expired"], false);
        assert_eq!(value["refused"], false);
        // Root is never refused for it.
        let value = as_value(&view("root", &expiring(Some(today() - 3))));
        assert_eq!(value["account_expired"], true);
        assert_eq!(value["refused"], false);
        // Locked and expired: both said.
        let mut both = locked_state();
        both.expires_on = expiring(Some(today() - 3)).expires_on;
        let value = as_value(&view("alice", &both));
        assert_eq!(value["locked"], true);
        assert_eq!(value["account_expired"], true);
        assert_eq!(value["refused"], true);
    }

    #[test]
    fn text_of_an_account_expiry() {
        let text = view("alice", &expiring(Some(today() - 3))).render_detail(&Zone::utc(), NOW);
        assert!(
            text.starts_with(
                "alice: the account expired on 2026-11-24 (3 days ago): every login is refused\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "\n  account expires:   2026-11-24 (3 days ago): expired, every login is refused\n"
            ),
            "{text}"
        );
        let text = view("alice", &expiring(Some(today() + 124))).render_detail(&Zone::utc(), NOW);
        assert!(text.starts_with("alice: not locked\n"), "{text}");
        assert!(
            text.contains(
                "\n  account expires:   2027-03-31 (in 124 days), from 2027-03-31 00:00:00 UTC\n"
            ),
            "{text}"
        );
        let text = view("root", &expiring(Some(today()))).render_detail(&Zone::utc(), NOW);
        assert!(text.starts_with("root: not locked\n"), "{text}");
        assert!(
            text.contains(
                "\n  account expires:   2026-11-27 (today): passed, but root is never refused for it\n"
            ),
            "{text}"
        );
        let views = vec![
            view("alice", &expiring(Some(today() - 3))),
            view("bob", &expiring(Some(today() + 1))),
        ];
        let expected = "\
USER   STATUS   FAILURES  UNTIL                     POLICY
alice  expired  0         expired since 2026-11-24  default
bob    ok       0         -                         default
";
        assert_eq!(render_list(&views, &Zone::utc(), NOW, false), expected);
    }

    #[test]
    fn the_history_is_counted_never_shown() {
        let mut state = UserState::default();
        for (i, phc) in [
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$SECRETONE",
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$SECRETTWO",
        ]
        .iter()
        .enumerate()
        {
            state
                .password_history
                .insert(deadbolt_core::state::PasswordRecord {
                    changed_at: ago(1000 - i as u64),
                    phc: (*phc).to_owned(),
                });
        }
        let view = view("alice", &state);
        let json = serde_json::to_string(&view.to_json()).unwrap();
        assert!(json.contains("\"history_entries\":2"), "{json}");
        let text = view.render_detail(&Zone::utc(), NOW);
        assert!(
            text.contains("\n  password history:  2 former passwords kept\n"),
            "{text}"
        );
        for shown in [&json, &text] {
            assert!(!shown.contains("argon2"), "{shown}");
            assert!(!shown.contains("SECRET"), "{shown}");
        }
    }
}
