//! Who makes a change, and the authpriv log line that records it.

use crate::error::one_line;
use std::fmt;
use syslog::{Facility, Formatter3164};

/// The person behind a change: the real uid (which sudo makes root) and
/// `SUDO_USER`, which names who ran sudo. `SUDO_USER` is only a hint, set by
/// whoever started the program, so the real uid is always logged too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub uid: u32,
    /// The login name of the real uid, when NSS knows it.
    pub name: Option<String>,
    pub sudo_user: Option<String>,
    /// The terminal on standard input, when there is one.
    pub tty: Option<String>,
    /// The SSH client's address (`SSH_CONNECTION`'s first field): a hint
    /// like `SUDO_USER`, so it is cleaned and bounded the same way.
    pub ssh_from: Option<String>,
}

/// The longest `SUDO_USER` value logged, in bytes.
const MAX_SUDO_USER: usize = 64;

impl Actor {
    /// The real user of this process.
    pub fn current() -> Actor {
        let uid = nix::unistd::getuid();
        let name = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map(|u| u.name);
        let mut actor = Actor::new(uid.as_raw(), name, std::env::var_os("SUDO_USER"));
        actor.tty = nix::unistd::ttyname(std::io::stdin())
            .ok()
            .map(|path| bounded(&path.to_string_lossy()));
        actor.ssh_from = std::env::var_os("SSH_CONNECTION")
            .and_then(|raw| {
                raw.to_string_lossy()
                    .split_whitespace()
                    .next()
                    .map(str::to_owned)
            })
            .map(|addr| bounded(&addr))
            .filter(|s| !s.is_empty());
        actor
    }

    pub fn new(uid: u32, name: Option<String>, sudo_user: Option<std::ffi::OsString>) -> Actor {
        let sudo_user = sudo_user
            .map(|raw| bounded(&raw.to_string_lossy()))
            .filter(|s| !s.is_empty());
        Actor {
            uid,
            name: name.map(|n| one_line(&n)),
            sudo_user,
            tty: None,
            ssh_from: None,
        }
    }
}

/// One line, no spaces, at most [`MAX_SUDO_USER`] bytes: a value from the
/// environment cannot forge or flood a log line.
fn bounded(raw: &str) -> String {
    let mut text = one_line(raw).replace(' ', "?");
    if text.len() > MAX_SUDO_USER {
        let mut end = MAX_SUDO_USER;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

impl fmt::Display for Actor {
    /// `root (uid 0, SUDO_USER=bob, tty=/dev/pts/1, from=192.0.2.9)`,
    /// `alice (uid 1000)`, `uid 4242`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut details = Vec::new();
        match &self.name {
            Some(name) => {
                write!(f, "{name}")?;
                details.push(format!("uid {}", self.uid));
            }
            None => write!(f, "uid {}", self.uid)?,
        }
        if let Some(sudo_user) = &self.sudo_user {
            details.push(format!("SUDO_USER={sudo_user}"));
        }
        if let Some(tty) = &self.tty {
            details.push(format!("tty={tty}"));
        }
        if let Some(from) = &self.ssh_from {
            details.push(format!("from={from}"));
        }
        if !details.is_empty() {
            write!(f, " ({})", details.join(", "))?;
        }
        Ok(())
    }
}

/// Sends one line to syslog's authpriv facility, where pam_faillock and
/// pam_deadbolt log. No syslog socket (a container) is not an error: the
/// change is made and confirmed on stdout anyway.
pub fn log_change(text: &str) {
    let formatter = Formatter3164 {
        facility: Facility::LOG_AUTHPRIV,
        hostname: None,
        process: "deadboltctl".into(),
        pid: std::process::id(),
    };
    if let Ok(mut logger) = syslog::unix(formatter) {
        let _ = logger.notice(one_line(text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn actor_text() {
        let root = Actor::new(0, Some("root".into()), Some(OsString::from("bob")));
        assert_eq!(root.to_string(), "root (uid 0, SUDO_USER=bob)");
        let alice = Actor::new(1000, Some("alice".into()), None);
        assert_eq!(alice.to_string(), "alice (uid 1000)");
        let nameless = Actor::new(4242, None, Some(OsString::new()));
        assert_eq!(nameless.to_string(), "uid 4242");
        let mut remote = Actor::new(0, Some("root".into()), None);
        remote.tty = Some("/dev/pts/3".into());
        remote.ssh_from = Some("192.0.2.9".into());
        assert_eq!(
            remote.to_string(),
            "root (uid 0, tty=/dev/pts/3, from=192.0.2.9)"
        );
    }

    #[test]
    fn a_forged_sudo_user_cannot_forge_log_lines() {
        let actor = Actor::new(
            0,
            Some("root".into()),
            Some(OsString::from("bob\nFeb 1 deadboltctl: mallory enabled")),
        );
        let text = actor.to_string();
        assert!(!text.contains('\n'));
        assert!(text.len() < 100, "{text}");
        assert!(text.starts_with("root (uid 0, SUDO_USER=bob?Feb?1?deadboltctl:"));
    }
}
