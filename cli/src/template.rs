//! The welcome message's template: `[mail] subject` and the body (`[mail]
//! template`, or the built-in one), each with `{placeholders}`.
//!
//! The template is checked whole before anything is set or sent: an
//! unknown placeholder, a body without the password or a subject with it,
//! is refused with the line it is on.

use deadbolt_config::MailSettings;
use std::io::Read;
use std::path::Path;
use zeroize::Zeroizing;

/// The largest template file read, in bytes.
const MAX_TEMPLATE_BYTES: u64 = 64 * 1024;

/// What a template may name, each written `{name}`; `{{` and `}}` are
/// braces.
const PLACEHOLDERS: &[(&str, Field)] = &[
    ("name", Field::Name),
    ("login", Field::Login),
    ("password", Field::Password),
    ("valid_for", Field::ValidFor),
    ("valid_until", Field::ValidUntil),
    ("login_url", Field::LoginUrl),
];

/// The message when `[mail] template` is not set.
const BUILT_IN: &str = "Hello {name},

Your account is ready.

  Login:              {login}
  Temporary password: {password}

The temporary password works until {valid_until} ({valid_for}), and you
must choose a new one when you first log in. After that date it no longer
works: ask for a new message.
";
const BUILT_IN_LOGIN_URL: &str = "\nLog in at {login_url}\n";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Name,
    Login,
    Password,
    ValidFor,
    ValidUntil,
    LoginUrl,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(Field),
}

/// The subject and body, checked.
#[derive(Clone, Debug)]
pub struct Template {
    subject: Vec<Piece>,
    body: Vec<Piece>,
}

/// What fills a template's placeholders for one employee.
pub struct Fields<'a> {
    pub name: &'a str,
    pub login: &'a str,
    pub password: &'a str,
    pub valid_for: &'a str,
    pub valid_until: &'a str,
    pub login_url: Option<&'a str>,
}

// Written by hand: the password is never shown.
impl std::fmt::Debug for Fields<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fields")
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

impl Template {
    /// The template of `settings`: its file, or the built-in one.
    pub fn load(settings: &MailSettings) -> Result<Template, String> {
        let (body, origin) = match &settings.template {
            Some(path) => (read_template(path)?, path.display().to_string()),
            None => {
                let mut text = BUILT_IN.to_owned();
                if settings.login_url.is_some() {
                    text.push_str(BUILT_IN_LOGIN_URL);
                }
                (text, "the built-in template".to_owned())
            }
        };
        Template::parse(
            &settings.subject,
            &body,
            &origin,
            settings.login_url.is_some(),
        )
    }

    /// The template made of `subject` and `body`; `origin` names the body
    /// in errors, `has_login_url` says whether `{login_url}` has a value.
    pub fn parse(
        subject: &str,
        body: &str,
        origin: &str,
        has_login_url: bool,
    ) -> Result<Template, String> {
        let subject = parse_pieces(subject, "[mail] subject", has_login_url)?;
        if subject.contains(&Piece::Field(Field::Password)) {
            return Err(
                "[mail] subject names {password}: a subject is shown in mail listings and logs; \
                 put the password in the template's body only"
                    .to_owned(),
            );
        }
        let body = parse_pieces(body, origin, has_login_url)?;
        if !body.contains(&Piece::Field(Field::Password)) {
            return Err(format!(
                "{origin} never names {{password}}: the message would not give the temporary \
                 password"
            ));
        }
        Ok(Template { subject, body })
    }

    pub fn subject(&self, fields: &Fields) -> String {
        render(&self.subject, fields).to_string()
    }

    /// The body, wiped when dropped: it holds the password.
    pub fn body(&self, fields: &Fields) -> Zeroizing<String> {
        render(&self.body, fields)
    }
}

fn read_template(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("{shown}: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_TEMPLATE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{shown}: {e}"))?;
    if bytes.len() as u64 > MAX_TEMPLATE_BYTES {
        return Err(format!(
            "{shown} is larger than {} KiB: a message template is a page of text",
            MAX_TEMPLATE_BYTES / 1024
        ));
    }
    String::from_utf8(bytes).map_err(|_| format!("{shown} is not UTF-8 text"))
}

fn parse_pieces(text: &str, origin: &str, has_login_url: bool) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = text.char_indices().peekable();
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    while let Some((at, c)) = chars.next() {
        match c {
            '{' if chars.peek().is_some_and(|&(_, n)| n == '{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek().is_some_and(|&(_, n)| n == '}') => {
                chars.next();
                literal.push('}');
            }
            '{' => {
                let rest = &text[at + 1..];
                let Some(end) = rest.find('}') else {
                    return Err(format!(
                        "{origin}, line {}: a {{ that is never closed (write {{{{ for a brace)",
                        line_of(at)
                    ));
                };
                let name = &rest[..end];
                let Some(&(_, field)) = PLACEHOLDERS.iter().find(|(n, _)| *n == name) else {
                    let known: Vec<String> = PLACEHOLDERS
                        .iter()
                        .map(|(n, _)| format!("{{{n}}}"))
                        .collect();
                    return Err(format!(
                        "{origin}, line {}: unknown placeholder {{{}}}: the template may use {} \
                         (and {{{{ or }}}} for a brace)",
                        line_of(at),
                        crate::one_line(&name.chars().take(40).collect::<String>()),
                        known.join(", ")
                    ));
                };
                if field == Field::LoginUrl && !has_login_url {
                    return Err(format!(
                        "{origin}, line {}: {{login_url}} is used but [mail] login_url is not set",
                        line_of(at)
                    ));
                }
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Field(field));
                for _ in 0..name.chars().count() + 1 {
                    chars.next();
                }
            }
            '}' => {
                return Err(format!(
                    "{origin}, line {}: a }} that closes nothing (write }}}} for a brace)",
                    line_of(at)
                ))
            }
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

fn render(pieces: &[Piece], fields: &Fields) -> Zeroizing<String> {
    let value = |field: Field| match field {
        Field::Name => fields.name,
        Field::Login => fields.login,
        Field::Password => fields.password,
        Field::ValidFor => fields.valid_for,
        Field::ValidUntil => fields.valid_until,
        Field::LoginUrl => fields.login_url.unwrap_or_default(),
    };
    let part = |piece: &Piece| -> usize {
        match piece {
            Piece::Text(text) => text.len(),
            Piece::Field(field) => value(*field).len(),
        }
    };
    // Allocated once at its final size: no reallocation leaves a copy of
    // the password behind.
    let mut out = Zeroizing::new(String::with_capacity(pieces.iter().map(part).sum()));
    for piece in pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Field(field) => out.push_str(value(*field)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use deadbolt_config::MailTls;

    fn fields() -> Fields<'static> {
        Fields {
            name: "Alice Liddell",
            login: "alice",
            password: "Tmp-Secret-42x",
            valid_for: "7d",
            valid_until: "2026-12-10 12:00 UTC",
            login_url: Some("ssh login.example.com"),
        }
    }

    #[test]
    fn placeholders_are_filled_and_braces_escaped() {
        let t = Template::parse(
            "Welcome, {name}",
            "Hi {name} ({login}): {password} until {valid_until}, {valid_for}; {login_url} {{x}}",
            "t",
            true,
        )
        .unwrap();
        assert_eq!(t.subject(&fields()), "Welcome, Alice Liddell");
        assert_eq!(
            t.body(&fields()).as_str(),
            "Hi Alice Liddell (alice): Tmp-Secret-42x until 2026-12-10 12:00 UTC, 7d; \
             ssh login.example.com {x}"
        );
    }

    #[test]
    fn bad_templates_are_refused_with_their_line() {
        for (subject, body, login_url, expected) in [
            (
                "s",
                "line\n{password} {nmae}",
                true,
                "t, line 2: unknown placeholder {nmae}",
            ),
            ("s", "{password} {", true, "never closed"),
            ("s", "{password} }", true, "closes nothing"),
            (
                "s",
                "no password here {name}",
                true,
                "never names {password}",
            ),
            (
                "pw {password}",
                "{password}",
                true,
                "subject names {password}",
            ),
            ("s", "{password} {login_url}", false, "login_url is not set"),
            (
                "{bogus}",
                "{password}",
                true,
                "[mail] subject, line 1: unknown placeholder",
            ),
        ] {
            let err = Template::parse(subject, body, "t", login_url).unwrap_err();
            assert!(err.contains(expected), "{body}: {err}");
        }
    }

    #[test]
    fn the_built_in_template_is_valid_with_and_without_a_login_url() {
        let mut settings = MailSettings {
            smtp_host: "127.0.0.1".into(),
            smtp_port: 25,
            tls: MailTls::None,
            tls_ca_file: None,
            username: None,
            password_file: None,
            from: "it@example.com".into(),
            subject: deadbolt_config::DEFAULT_SUBJECT.into(),
            template: None,
            login_url: None,
            timeout: deadbolt_config::DEFAULT_MAIL_TIMEOUT,
        };
        let body = Template::load(&settings).unwrap().body(&fields());
        assert!(body.contains("Tmp-Secret-42x") && !body.contains("Log in at"));
        settings.login_url = Some("ssh login.example.com".into());
        let body = Template::load(&settings).unwrap().body(&fields());
        assert!(body.contains("Log in at ssh login.example.com"));
    }
}
