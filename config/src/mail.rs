//! `[mail]`, the SMTP server the welcome kit goes through, and `[welcome]`,
//! how long its temporary password works.
//!
//! A child of the file's schema, so that each value is checked with the
//! same file:line:column messages as the rest.

use super::{Checker, Field, Table};
use crate::duration::echo;
use crate::error::ConfigError;
use serde::Deserialize;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;
use toml::{Spanned, Value};

/// How long a welcome kit's temporary password works unless `[welcome]
/// temporary_valid_for` says otherwise.
pub const DEFAULT_TEMPORARY_VALID_FOR: Duration = Duration::from_secs(7 * 86_400);
/// `temporary_valid_for` from an hour to 90 days.
pub const TEMPORARY_VALID_FOR_RANGE: (Duration, Duration) =
    (Duration::from_secs(3600), Duration::from_secs(90 * 86_400));
/// The subject of a welcome kit unless `[mail] subject` says otherwise.
pub const DEFAULT_SUBJECT: &str = "Your login information";
/// How long the SMTP server may take to answer, unless `[mail] timeout`
/// says otherwise.
pub const DEFAULT_MAIL_TIMEOUT: Duration = Duration::from_secs(30);
const MAIL_TIMEOUT_RANGE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(300));
/// RFC 5322's limit on a line, which a subject is.
const MAX_HEADER_TEXT: usize = 998;

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailTls {
    /// Plain connection, then STARTTLS, which the server must offer: never a
    /// fall back to clear text.
    StartTls,
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
    /// No TLS at all: only to a server on this machine.
    None,
}

impl MailTls {
    pub fn as_str(self) -> &'static str {
        match self {
            MailTls::StartTls => "starttls",
            MailTls::Implicit => "implicit",
            MailTls::None => "none",
        }
    }

    /// The port used when `smtp_port` is not given: submission, SMTPS, or
    /// plain SMTP.
    pub fn default_port(self) -> u16 {
        match self {
            MailTls::StartTls => 587,
            MailTls::Implicit => 465,
            MailTls::None => 25,
        }
    }
}

/// `[mail]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailSettings {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub tls: MailTls,
    /// The only CA trusted for the server's certificate; `None`: the
    /// system's roots.
    pub tls_ca_file: Option<PathBuf>,
    /// SMTP authentication, with the password read from `password_file`
    /// (0600, the caller's own) when the kit is sent.
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// The sender, `Name <address>` or `address`.
    pub from: String,
    /// May hold the template's placeholders, but never `{password}`.
    pub subject: String,
    /// The message template; `None`: the built-in one.
    pub template: Option<PathBuf>,
    /// Where to log in, for the template's `{login_url}`.
    pub login_url: Option<String>,
    pub timeout: Duration,
}

/// `[welcome]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WelcomeSettings {
    /// How long a temporary password works: after that the account refuses
    /// it until a new kit is sent.
    pub temporary_valid_for: Duration,
}

impl Default for WelcomeSettings {
    fn default() -> Self {
        WelcomeSettings {
            temporary_valid_for: DEFAULT_TEMPORARY_VALID_FOR,
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawMail {
    smtp_host: Field,
    smtp_port: Field,
    tls: Field,
    tls_ca_file: Field,
    username: Field,
    password_file: Field,
    from: Field,
    subject: Field,
    template: Field,
    login_url: Field,
    timeout: Field,
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawWelcome {
    temporary_valid_for: Field,
}

pub(super) struct MailWords;
impl super::Expecting for MailWords {
    const EXPECTING: &'static str = "a table, starting with a [mail] line (one pair of brackets)";
}

pub(super) struct WelcomeWords;
impl super::Expecting for WelcomeWords {
    const EXPECTING: &'static str =
        "a table, starting with a [welcome] line (one pair of brackets)";
}

pub(super) type MailTable = Spanned<Table<RawMail, MailWords>>;
pub(super) type WelcomeTable = Table<RawWelcome, WelcomeWords>;

impl Checker<'_> {
    pub(super) fn mail(&self, raw: &MailTable) -> Result<MailSettings, ConfigError> {
        let table = raw.span();
        let raw = raw.get_ref();
        let Some(host) = &raw.smtp_host else {
            return Err(self.error(
                table,
                "[mail] has no smtp_host: add the mail server's name, e.g. smtp_host = \
                 \"smtp.example.com\"",
            ));
        };
        let smtp_host = self.smtp_host(host)?;
        let Some(from) = &raw.from else {
            return Err(self.error(
                table,
                "[mail] has no from: add the sender of the welcome kits, e.g. from = \
                 \"IT <it@example.com>\"",
            ));
        };
        let from = self.header_text("from", from, "\"IT <it@example.com>\"")?;
        if !from.contains('@') {
            return Err(self.error(
                raw.from.as_ref().map_or(table.clone(), |v| v.span()),
                format!(
                    "from = \"{}\" has no address: write e.g. \"IT <it@example.com>\"",
                    echo(&from)
                ),
            ));
        }
        let tls = match &raw.tls {
            None => MailTls::StartTls,
            Some(v) => {
                let accepted = "\"starttls\", \"implicit\" or \"none\"";
                match self.string("tls", v, accepted)? {
                    "starttls" => MailTls::StartTls,
                    "implicit" => MailTls::Implicit,
                    "none" if is_loopback(&smtp_host) => MailTls::None,
                    "none" => {
                        return Err(self.error(
                            v.span(),
                            format!(
                                "tls = \"none\" sends the temporary passwords in clear: it is \
                                 allowed only for a server on this machine (localhost, \
                                 127.0.0.1, ::1), not {}; write \"starttls\" or \"implicit\"",
                                echo(&smtp_host)
                            ),
                        ))
                    }
                    other => {
                        return Err(self.error(
                            v.span(),
                            format!("tls must be {accepted}, not \"{}\"", echo(other)),
                        ))
                    }
                }
            }
        };
        let smtp_port = match &raw.smtp_port {
            None => tls.default_port(),
            Some(v) => match v.get_ref() {
                Value::Integer(n) if (1..=65535).contains(n) => *n as u16,
                other => {
                    return Err(self.error(
                        v.span(),
                        format!(
                            "smtp_port must be a port number from 1 to 65535, e.g. 587, not {}",
                            super::describe(other)
                        ),
                    ))
                }
            },
        };
        let (username, password_file) = match (&raw.username, &raw.password_file) {
            (Some(user), Some(file)) => (
                Some(self.header_text("username", user, "\"deadbolt\"")?),
                Some(self.file_path("password_file", file, "/etc/deadbolt/smtp.secret")?),
            ),
            (None, None) => (None, None),
            (Some(user), None) => {
                return Err(self.error(
                    user.span(),
                    "username needs password_file: the absolute path of a 0600 file holding \
                     the SMTP password, e.g. password_file = \"/etc/deadbolt/smtp.secret\"",
                ))
            }
            (None, Some(file)) => {
                return Err(self.error(
                    file.span(),
                    "password_file needs username: the SMTP login it is the password of",
                ))
            }
        };
        let mut settings = MailSettings {
            smtp_host,
            smtp_port,
            tls,
            tls_ca_file: None,
            username,
            password_file,
            from,
            subject: DEFAULT_SUBJECT.to_owned(),
            template: None,
            login_url: None,
            timeout: DEFAULT_MAIL_TIMEOUT,
        };
        if let Some(v) = &raw.tls_ca_file {
            settings.tls_ca_file =
                Some(self.file_path("tls_ca_file", v, "/etc/deadbolt/smtp-ca.pem")?);
        }
        if let Some(v) = &raw.subject {
            settings.subject = self.header_text("subject", v, "\"Your login information\"")?;
        }
        if let Some(v) = &raw.template {
            settings.template = Some(self.file_path("template", v, "/etc/deadbolt/welcome.txt")?);
        }
        if let Some(v) = &raw.login_url {
            let url = self.header_text("login_url", v, "\"ssh login.example.com\"")?;
            settings.login_url = Some(url);
        }
        if let Some(v) = &raw.timeout {
            settings.timeout = self.bounded_duration("timeout", v, MAIL_TIMEOUT_RANGE, "30s")?;
        }
        Ok(settings)
    }

    pub(super) fn welcome(&self, raw: &WelcomeTable) -> Result<WelcomeSettings, ConfigError> {
        let mut settings = WelcomeSettings::default();
        if let Some(v) = &raw.temporary_valid_for {
            settings.temporary_valid_for =
                self.bounded_duration("temporary_valid_for", v, TEMPORARY_VALID_FOR_RANGE, "7d")?;
        }
        Ok(settings)
    }

    /// A host name or address: no spaces, no control characters.
    fn smtp_host(&self, v: &Spanned<Value>) -> Result<String, ConfigError> {
        let host = self.string(
            "smtp_host",
            v,
            "a host name or address in quotes, e.g. \"smtp.example.com\"",
        )?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let fine = !bare.is_empty()
            && bare.len() <= 253
            && bare
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'));
        if !fine {
            return Err(self.error(
                v.span(),
                format!(
                    "smtp_host = \"{}\" is not a host name or address: write e.g. \
                     \"smtp.example.com\" or \"127.0.0.1\"",
                    echo(host)
                ),
            ));
        }
        Ok(bare.to_owned())
    }

    /// Text that goes into a mail header or a message: one line, no control
    /// characters (a line break would start another header).
    fn header_text(
        &self,
        key: &str,
        v: &Spanned<Value>,
        example: &str,
    ) -> Result<String, ConfigError> {
        let text = self.string(key, v, &format!("a string, e.g. {example}"))?;
        if text.trim().is_empty() {
            return Err(self.error(
                v.span(),
                format!("{key} is empty: write e.g. {key} = {example}"),
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(self.error(
                v.span(),
                format!(
                    "{key} holds a line break or another control character, which would \
                     change the message's headers: write one line, e.g. {example}"
                ),
            ));
        }
        if text.len() > MAX_HEADER_TEXT {
            return Err(self.error(
                v.span(),
                format!("{key} is longer than {MAX_HEADER_TEXT} bytes"),
            ));
        }
        Ok(text.to_owned())
    }
}

/// `localhost`, 127.0.0.0/8 or `::1`: a server on this machine.
pub fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, "deadbolt.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_mail_table_is_read_as_written() {
        let config = parse(
            "[mail]\nsmtp_host = \"smtp.example.com\"\nsmtp_port = 2525\ntls = \"implicit\"\n\
             tls_ca_file = \"/etc/deadbolt/smtp-ca.pem\"\nusername = \"deadbolt\"\n\
             password_file = \"/etc/deadbolt/smtp.secret\"\nfrom = \"IT <it@example.com>\"\n\
             subject = \"Welcome, {name}\"\ntemplate = \"/etc/deadbolt/welcome.txt\"\n\
             login_url = \"https://login.example.com\"\ntimeout = \"10s\"\n\n\
             [welcome]\ntemporary_valid_for = \"3d\"\n",
        )
        .unwrap();
        let mail = config.mail.unwrap();
        assert_eq!(mail.smtp_host, "smtp.example.com");
        assert_eq!(mail.smtp_port, 2525);
        assert_eq!(mail.tls, MailTls::Implicit);
        assert_eq!(mail.username.as_deref(), Some("deadbolt"));
        assert_eq!(mail.subject, "Welcome, {name}");
        assert_eq!(mail.timeout, Duration::from_secs(10));
        assert_eq!(
            config.welcome.temporary_valid_for,
            Duration::from_secs(3 * 86_400)
        );
    }

    #[test]
    fn defaults_are_starttls_on_587_and_seven_days() {
        let config = parse("[mail]\nsmtp_host = \"mx\"\nfrom = \"it@example.com\"\n").unwrap();
        let mail = config.mail.unwrap();
        assert_eq!((mail.tls, mail.smtp_port), (MailTls::StartTls, 587));
        assert_eq!(mail.subject, DEFAULT_SUBJECT);
        assert_eq!(config.welcome, WelcomeSettings::default());
        assert_eq!(
            Config::default().welcome.temporary_valid_for,
            Duration::from_secs(7 * 86_400)
        );
        assert!(Config::default().mail.is_none());
    }

    #[test]
    fn clear_text_is_only_for_this_machine() {
        for host in ["127.0.0.1", "localhost", "::1"] {
            let text = format!("[mail]\nsmtp_host = \"{host}\"\ntls = \"none\"\nfrom = \"a@b\"\n");
            let mail = parse(&text).unwrap().mail.unwrap();
            assert_eq!((mail.tls, mail.smtp_port), (MailTls::None, 25));
        }
        let err =
            parse("[mail]\nsmtp_host = \"smtp.example.com\"\ntls = \"none\"\nfrom = \"a@b\"\n")
                .unwrap_err();
        assert!(
            err.starts_with("deadbolt.toml:3:7: tls = \"none\""),
            "{err}"
        );
        assert!(err.contains("only for a server on this machine"), "{err}");
    }

    #[test]
    fn mistakes_are_refused_at_their_place() {
        for (text, expected) in [
            (
                "[mail]\nfrom = \"a@b\"\n",
                "deadbolt.toml:1:1: [mail] has no smtp_host",
            ),
            ("[mail]\nsmtp_host = \"mx\"\n", "[mail] has no from"),
            (
                "[mail]\nsmtp_host = \"mx\"\nfrom = \"nobody\"\n",
                "has no address",
            ),
            (
                "[mail]\nsmtp_host = \"mx\"\nfrom = \"a@b\\r\\nBcc: x@evil\"\n",
                "deadbolt.toml:3:8: from holds a line break",
            ),
            (
                "[mail]\nsmtp_host = \"mx\"\nfrom = \"a@b\"\nsubject = \"hi\\nBcc: x@evil\"\n",
                "subject holds a line break",
            ),
            (
                "[mail]\nsmtp_host = \"mx; rm\"\nfrom = \"a@b\"\n",
                "is not a host name",
            ),
            (
                "[mail]\nsmtp_host = \"mx\"\nfrom = \"a@b\"\ntls = \"ssl\"\n",
                "tls must be",
            ),
            (
                "[mail]\nsmtp_host = \"mx\"\nfrom = \"a@b\"\nsmtp_port = 0\n",
                "smtp_port must be",
            ),
            (
                "[mail]\nsmtp_host = \"mx\"\nfrom = \"a@b\"\nusername = \"u\"\n",
                "username needs password_file",
            ),
            (
                "[mail]\nsmtp_host = \"mx\"\nfrom = \"a@b\"\npassword_file = \"/p\"\n",
                "password_file needs username",
            ),
            (
                "[mail]\nsmtp_host = \"mx\"\nfrom = \"a@b\"\ntemplate = \"welcome.txt\"\n",
                "template: the path",
            ),
            (
                "[mail]\nsmtp_host = \"mx\"\nfrom = \"a@b\"\nbcc = \"x\"\n",
                "unknown field `bcc`",
            ),
            (
                "[welcome]\ntemporary_valid_for = \"1m\"\n",
                "is out of range",
            ),
            (
                "[welcome]\ntemporary_valid_for = \"1y\"\n",
                "temporary_valid_for",
            ),
            ("mail = 3\n", "a table, starting with a [mail] line"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
