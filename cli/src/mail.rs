//! The welcome kit's recipient and the SMTP connection it goes through
//! (`[mail]`); its template is [`deadboltctl::template`].
//!
//! A `mail` value is parsed as one address; anything else it carries (a
//! line break and a `Bcc:` header, a second address) refuses that
//! recipient alone.

mod relay;

use deadbolt_config::{MailSettings, MailTls};
pub use deadboltctl::template::{Fields, Template};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    Certificate, CertificateStore, SmtpConnection, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::ClientId;
use lettre::Message;
use relay::{Cut, Relay};
use std::fmt;
use std::time::Duration;
use zeroize::Zeroizing;

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
    /// What the connection goes through, and why it was cut if it was.
    relay: Option<Relay>,
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
            relay: None,
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
        let s = &self.settings;
        let server = format!("{}:{}", s.smtp_host, s.smtp_port);
        let relay = Relay::start((s.smtp_host.as_str(), s.smtp_port), s.timeout).map_err(|e| {
            MailError(format!(
                "the mail server {server}: {}",
                crate::error::one_line(&e.to_string())
            ))
        })?;
        let connected = self.connect(&relay, &server);
        self.relay = Some(relay);
        self.connection = Some(connected?);
        Ok(())
    }

    fn connect(&self, relay: &Relay, server: &str) -> Result<SmtpConnection, MailError> {
        let s = &self.settings;
        let shown = |e: lettre::transport::smtp::Error| {
            MailError(format!(
                "the mail server {server}: {}",
                why(&e, Some(relay), s.timeout)
            ))
        };
        let implicit = (s.tls == MailTls::Implicit)
            .then_some(self.tls.as_ref())
            .flatten();
        let mut connection =
            SmtpConnection::connect(relay.local, Some(s.timeout), &self.hello, implicit, None)
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
        let (relay, timeout) = (self.relay.as_ref(), self.settings.timeout);
        let refused = |e: lettre::transport::smtp::Error| {
            MailError(if e.is_permanent() || e.is_transient() {
                format!(
                    "the mail server refused it: {}",
                    crate::error::one_line(&e.to_string())
                )
            } else {
                format!("the mail server failed: {}", why(&e, relay, timeout))
            })
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

/// What went wrong with the server, in one line: a timeout and a cut are
/// said in words (a read timeout is only "Resource temporarily
/// unavailable" otherwise).
fn why(e: &lettre::transport::smtp::Error, relay: Option<&Relay>, timeout: Duration) -> String {
    match relay.and_then(Relay::cut) {
        Some(Cut::Endless) => {
            return format!(
                "it was still sending its answer {timeout:?} after the command: given up \
                 ([mail] timeout)"
            )
        }
        Some(Cut::TooLarge) => {
            return "its answer to one command passed 1 MiB: given up".to_owned();
        }
        None => {}
    }
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                return format!("no answer within {timeout:?} ([mail] timeout)");
            }
        }
        source = cause.source();
    }
    crate::error::one_line(&e.to_string())
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
