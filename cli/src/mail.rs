//! The welcome kit's message: its template, its recipient, and the SMTP
//! connection it goes through (`[mail]`).
//!
//! The template is checked whole before anything is set or sent: an
//! unknown placeholder, a body without the password or a subject with it,
//! is refused with the line it is on. A `mail` value is parsed as one
//! address; anything else it carries (a line break and a `Bcc:` header,
//! a second address) refuses that recipient alone.

use deadbolt_config::{MailSettings, MailTls};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    Certificate, CertificateStore, SmtpConnection, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use lettre::Message;
use std::fmt;
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

    fn parse(
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
                        crate::error::one_line(&name.chars().take(40).collect::<String>()),
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

/// The recipient of `mail`, named `name`: one address, nothing more.
pub fn recipient(name: &str, mail: &str) -> Result<Mailbox, String> {
    if mail.chars().any(char::is_control) {
        return Err(
            "the mail value holds a line break or another control character (it could add \
             headers such as Bcc:): fix the entry's mail"
                .to_owned(),
        );
    }
    let address = mail.trim().parse().map_err(|e| {
        format!("the mail value is not one email address ({e}): fix the entry's mail")
    })?;
    let name = crate::error::one_line(name);
    Ok(Mailbox::new(Some(name), address))
}

/// Why a message did not go.
#[derive(Debug)]
pub struct MailError(pub String);

impl fmt::Display for MailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One SMTP connection, kept for a whole batch and opened again when it
/// breaks.
pub struct Mailer {
    settings: MailSettings,
    from: Mailbox,
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    hello: ClientId,
    connection: Option<SmtpConnection>,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Mailer {{ {}:{} }}",
            self.settings.smtp_host, self.settings.smtp_port
        )
    }
}

impl Mailer {
    /// Checks what can be checked without the server: the sender, the CA
    /// file, the SMTP password file (0600, the caller's own).
    pub fn new(settings: &MailSettings, hello: &str) -> Result<Mailer, String> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| format!("[mail] from is not an address ({e})"))?;
        let tls = match settings.tls {
            MailTls::None => None,
            MailTls::StartTls | MailTls::Implicit => Some(tls_parameters(settings)?),
        };
        let credentials = match (&settings.username, &settings.password_file) {
            (Some(user), Some(path)) => {
                let password = crate::fleet::password_from_file(path).map_err(|e| e.to_string())?;
                Some(Credentials::new(user.clone(), password.as_str().to_owned()))
            }
            _ => None,
        };
        let hello = ClientId::Domain(if hello.is_empty() { "localhost" } else { hello }.to_owned());
        Ok(Mailer {
            settings: settings.clone(),
            from,
            tls,
            credentials,
            hello,
            connection: None,
        })
    }

    /// A connection that answers now: the one kept, if it still answers a
    /// NOOP, else a new one.
    pub fn ready(&mut self) -> Result<(), MailError> {
        if let Some(connection) = &mut self.connection {
            if !connection.has_broken() && connection.test_connected() {
                return Ok(());
            }
            connection.abort();
            self.connection = None;
        }
        self.connection = Some(self.connect()?);
        Ok(())
    }

    fn connect(&self) -> Result<SmtpConnection, MailError> {
        let s = &self.settings;
        let server = format!("{}:{}", s.smtp_host, s.smtp_port);
        let shown = |e: lettre::transport::smtp::Error| {
            MailError(format!(
                "the mail server {server}: {}",
                crate::error::one_line(&e.to_string())
            ))
        };
        let address = (s.smtp_host.as_str(), s.smtp_port);
        let implicit = (s.tls == MailTls::Implicit)
            .then_some(self.tls.as_ref())
            .flatten();
        let mut connection =
            SmtpConnection::connect(address, Some(s.timeout), &self.hello, implicit, None)
                .map_err(shown)?;
        if s.tls == MailTls::StartTls {
            if !connection.can_starttls() {
                connection.abort();
                return Err(MailError(format!(
                    "the mail server {server} does not offer STARTTLS: nothing is sent in clear \
                     (tls = \"implicit\" if it speaks TLS from the start)"
                )));
            }
            let tls = self.tls.as_ref().expect("STARTTLS has its parameters");
            connection.starttls(tls, &self.hello).map_err(shown)?;
        }
        if let Some(credentials) = &self.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .map_err(shown)?;
        }
        Ok(connection)
    }

    /// Sends one message on the connection made ready.
    pub fn send(&mut self, to: &Mailbox, subject: &str, body: &str) -> Result<(), MailError> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(to.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| MailError(format!("the message cannot be made: {e}")))?;
        // The formatted message holds the password: wiped when sent.
        let bytes = Zeroizing::new(message.formatted());
        self.ready()?;
        let connection = self.connection.as_mut().expect("ready made a connection");
        let refused = |e: lettre::transport::smtp::Error| {
            MailError(format!(
                "the mail server refused it: {}",
                crate::error::one_line(&e.to_string())
            ))
        };
        let Some(data) = DataBlock::of(&bytes) else {
            // Not 7-bit: lettre's own send negotiates 8BITMIME.
            return connection
                .send(message.envelope(), &bytes)
                .map(drop)
                .map_err(refused);
        };
        // MAIL, RCPT and DATA as lettre's send does, then the message and
        // its final dot in one write: lettre writes them apart, and the
        // second write then waits for the delayed ACK of the first (Nagle),
        // 40 ms a message on Linux.
        let envelope = message.envelope();
        let mut sent = connection
            .command(Mail::new(envelope.from().cloned(), Vec::new()))
            .map(drop);
        for to in envelope.to() {
            sent = sent.and_then(|()| {
                connection
                    .command(Rcpt::new(to.clone(), Vec::new()))
                    .map(drop)
            });
        }
        let sent = sent
            .and_then(|()| connection.command(Data).map(drop))
            .and_then(|()| connection.command(&data).map(drop));
        if sent.is_err() {
            // The server's state is unknown: start afresh for the next one.
            connection.abort();
        }
        sent.map_err(refused)
    }
}

impl Drop for Mailer {
    fn drop(&mut self) {
        if let Some(connection) = &mut self.connection {
            let _ = connection.quit();
        }
    }
}

/// A 7-bit message dot-stuffed (RFC 5321, 4.5.2) and ended with
/// `CRLF . CRLF`, to be written whole; wiped when dropped.
struct DataBlock(Zeroizing<String>);

impl DataBlock {
    fn of(message: &[u8]) -> Option<DataBlock> {
        let text = std::str::from_utf8(message).ok().filter(|t| t.is_ascii())?;
        let stuffed_dots = text.matches("\n.").count() + usize::from(text.starts_with('.'));
        let mut block = Zeroizing::new(String::with_capacity(text.len() + stuffed_dots + 5));
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                block.push('\n');
            }
            if line.starts_with('.') {
                block.push('.');
            }
            block.push_str(line);
        }
        if !block.ends_with("\r\n") {
            block.push_str("\r\n");
        }
        block.push_str(".\r\n");
        Some(DataBlock(block))
    }
}

impl fmt::Display for DataBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn tls_parameters(settings: &MailSettings) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(settings.smtp_host.clone());
    if let Some(path) = &settings.tls_ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let ca = Certificate::from_pem(&pem)
            .map_err(|e| format!("{}: not a PEM certificate ({e})", path.display()))?;
        // The CA given is the only one trusted.
        builder = builder
            .certificate_store(CertificateStore::None)
            .add_root_certificate(ca);
    }
    builder
        .build_rustls()
        .map_err(|e| format!("TLS cannot be set up for the mail server: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn the_data_block_is_dot_stuffed_and_ends_once() {
        let block = DataBlock::of(b".top\r\nline\r\n.dot\r\n..two\r\nend").unwrap();
        assert_eq!(
            block.to_string(),
            "..top\r\nline\r\n..dot\r\n...two\r\nend\r\n.\r\n"
        );
        let block = DataBlock::of(b"a\r\n").unwrap();
        assert_eq!(block.to_string(), "a\r\n.\r\n");
        assert!(DataBlock::of("caf\u{e9}".as_bytes()).is_none());
    }

    #[test]
    fn a_mail_value_is_one_address_and_nothing_more() {
        assert!(recipient("Alice", "alice@example.com").is_ok());
        for hostile in [
            "alice@example.com\r\nBcc: eve@evil.example",
            "alice@example.com\nBcc: eve@evil.example",
            "alice@example.com, eve@evil.example",
            "not an address",
            "",
        ] {
            let err = recipient("Alice", hostile).unwrap_err();
            assert!(err.contains("fix the entry's mail"), "{hostile:?}: {err}");
        }
        // A name with a line break cannot add a header either.
        let mailbox = recipient("Alice\r\nBcc: eve@evil.example", "alice@example.com").unwrap();
        assert!(!mailbox.to_string().contains('\n'));
    }
}
