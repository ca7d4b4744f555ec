//! An employee's own password change, handed over by the PAM module
//! (`[directory] password_store = "directory"`) and made in the directory
//! as the employee himself: a bind with his current password, then the
//! RFC 3062 password-modify operation. The directory checks the current
//! password, hashes the new one, and applies its own ACL and ppolicy; no
//! host identity can set anyone's password (design principle 8).
//!
//! The socket is `<sync dir>/password.sock`, in a directory only root can
//! enter, and a peer that is neither root nor the daemon's own user is
//! refused before a byte is read. Passwords live in wiped buffers here,
//! though ldap3 copies them into its own request buffers on the way out.

use crate::conn::{self, ConnError};
use crate::log;
use crate::settings::{BindWith, Settings};
use deadbolt_core::handoff::{self, Answer, ChangeRequest, FrameError, Outcome, MAX_REQUEST};
use deadbolt_core::UserName;
use ldap3::exop::PasswordModify;
use ldap3::{Ldap, Scope, SearchEntry};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use zeroize::Zeroizing;

/// The socket's name in the sync directory.
pub const SOCKET_NAME: &str = "password.sock";

/// How long a peer has to send its whole request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What the daemon needs to change passwords.
pub struct Service {
    settings: Settings,
    bind: BindWith,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// Where the socket of `sync_dir` is.
pub fn socket_path(sync_dir: &Path) -> PathBuf {
    sync_dir.join(SOCKET_NAME)
}

impl Service {
    pub fn new(settings: Settings, bind: BindWith) -> Result<Service, String> {
        let tls = conn::tls_config(settings.tls_ca_file.as_deref()).map_err(|e| e.to_string())?;
        Ok(Service {
            settings,
            bind,
            tls,
        })
    }

    /// Listens on the socket until the runtime ends. The socket replaces a
    /// stale one a previous run left, and is 0600 from its creation on.
    pub fn listen(self) -> Result<(), String> {
        crate::files::ensure_dir(&self.settings.sync_dir)?;
        let path = socket_path(&self.settings.sync_dir);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        let listener = {
            // The directory is already private; the mask closes the short
            // window before the chmod as well.
            let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
            let bound = UnixListener::bind(&path);
            nix::sys::stat::umask(old);
            bound.map_err(|e| format!("{}: {e}", path.display()))?
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let service = Arc::new(self);
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let service = service.clone();
                        tokio::spawn(async move { service.serve(stream).await });
                    }
                    Err(e) => {
                        log::warning(&format!("password socket: {e}"));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok(())
    }

    async fn serve(&self, mut stream: UnixStream) {
        let own = nix::unistd::geteuid().as_raw();
        let peer = stream.peer_cred().map(|c| c.uid());
        let answer = match peer {
            Ok(uid) if uid == 0 || uid == own => match read_request(&mut stream).await {
                Ok(request) => self.change(request).await,
                Err(why) => {
                    log::warning(&format!("password socket: a request was refused: {why}"));
                    invalid(&format!("the request was refused: {why}"))
                }
            },
            Ok(uid) => {
                log::warning(&format!(
                    "password socket: a process of uid {uid} was refused: only root may hand \
                     over a password"
                ));
                invalid("only root may hand over a password")
            }
            Err(e) => invalid(&format!("the caller cannot be identified: {e}")),
        };
        let _ = stream.write_all(&handoff::encode_answer(&answer)).await;
        let _ = stream.shutdown().await;
        // Closing with unread input would reset the connection and lose
        // the answer before the peer reads it: what is left is drained,
        // within bounds.
        let drain = async {
            let mut sink = [0u8; 4096];
            let mut left = 1usize << 20;
            while left > 0 {
                match stream.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    }

    async fn change(&self, request: ChangeRequest) -> Answer {
        let Ok(user) = UserName::parse(&request.user) else {
            return invalid("the user name cannot be an account's");
        };
        let (Ok(current), Ok(new)) = (
            std::str::from_utf8(&request.current),
            std::str::from_utf8(&request.new),
        ) else {
            return answer(
                Outcome::Refused,
                "The directory takes only passwords that are valid UTF-8 text.",
            );
        };
        let mut last = answer(Outcome::Unavailable, "no directory server is configured");
        for uri in &self.settings.uris {
            match self.change_on(uri, &user, current, new).await {
                Attempt::Done(answer) => {
                    let verdict = match answer.outcome {
                        Outcome::Changed => "changed in the directory".to_owned(),
                        _ => format!("not changed: {}", answer.message),
                    };
                    log::notice(&format!("password of {user}: {verdict} ({uri})"));
                    return answer;
                }
                Attempt::NextServer(why) => {
                    log::warning(&format!("password of {user}: {uri}: {why}"));
                    last = answer(
                        Outcome::Unavailable,
                        "The directory cannot be reached; the password was not changed. Try \
                         again later.",
                    );
                }
            }
        }
        log::error(&format!(
            "password of {user} not changed: no directory server could be reached"
        ));
        last
    }

    async fn change_on(&self, uri: &str, user: &UserName, current: &str, new: &str) -> Attempt {
        let dn = match self.find_dn(uri, user).await {
            Ok(Some(dn)) => dn,
            Ok(None) => {
                return Attempt::Done(answer(
                    Outcome::Invalid,
                    "The account has no entry in the directory.",
                ))
            }
            Err(why) => return Attempt::NextServer(why),
        };
        let as_user = BindWith::Simple {
            dn,
            password: Zeroizing::new(current.to_owned()),
        };
        let mut ldap = match conn::connect(&self.settings, uri, self.tls.clone(), &as_user).await {
            Ok(ldap) => ldap,
            Err(ConnError::Bind(why)) if why.contains("rc=49") => {
                return Attempt::Done(answer(
                    Outcome::Refused,
                    "The current password is not right; the password was not changed.",
                ))
            }
            Err(ConnError::Bind(why)) => {
                return Attempt::Done(answer(
                    Outcome::Refused,
                    &format!("The directory refused the current password: {why}"),
                ))
            }
            Err(e) => return Attempt::NextServer(e.to_string()),
        };
        let modify = PasswordModify {
            user_id: None,
            old_pass: Some(current),
            new_pass: Some(new),
        };
        let result = tokio::time::timeout(self.settings.timeout, ldap.extended(modify)).await;
        let _ = ldap.unbind().await;
        match result {
            Ok(Ok(result)) => match result.1.rc {
                0 => Attempt::Done(answer(Outcome::Changed, "")),
                rc => {
                    let text = result.1.text.trim();
                    let why = if text.is_empty() {
                        format!("rc={rc}")
                    } else {
                        format!("{text} (rc={rc})")
                    };
                    Attempt::Done(answer(
                        Outcome::Refused,
                        &format!("The directory refused the new password: {why}"),
                    ))
                }
            },
            // Sent, but no answer: the directory may have changed it. The
            // host records nothing; the next sync brings the change time if
            // it happened.
            Ok(Err(e)) => Attempt::Done(answer(
                Outcome::Unavailable,
                &format!(
                    "The directory did not answer ({e}); the password may or may not have \
                     changed there. Try logging in with the old one."
                ),
            )),
            Err(_) => Attempt::Done(answer(
                Outcome::Unavailable,
                "The directory did not answer in time; the password may or may not have \
                 changed there. Try logging in with the old one.",
            )),
        }
    }

    /// The employee's DN, found as the host (which may read the people's
    /// base); `None` when the directory has no such employee.
    async fn find_dn(&self, uri: &str, user: &UserName) -> Result<Option<String>, String> {
        let mut ldap: Ldap = conn::connect(&self.settings, uri, self.tls.clone(), &self.bind)
            .await
            .map_err(|e| e.to_string())?;
        let filter = format!(
            "({}={})",
            self.settings.user_attribute,
            ldap3::ldap_escape(user.as_str())
        );
        let found = tokio::time::timeout(
            self.settings.timeout,
            ldap.search(&self.settings.base_dn, Scope::Subtree, &filter, vec!["1.1"]),
        )
        .await;
        let _ = ldap.unbind().await;
        let (entries, _) = found
            .map_err(|_| "the search did not answer in time".to_owned())?
            .and_then(|r| r.success())
            .map_err(|e| e.to_string())?;
        let mut entries = entries.into_iter().map(SearchEntry::construct);
        match (entries.next(), entries.next()) {
            (Some(entry), None) => Ok(Some(entry.dn)),
            (None, _) => Ok(None),
            (Some(_), Some(_)) => Err(format!(
                "more than one entry has {}={user}",
                self.settings.user_attribute
            )),
        }
    }
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("uris", &self.settings.uris)
            .field("bind", &self.bind)
            .finish_non_exhaustive()
    }
}

enum Attempt {
    Done(Answer),
    NextServer(String),
}

fn answer(outcome: Outcome, message: &str) -> Answer {
    Answer {
        outcome,
        message: message.to_owned(),
    }
}

fn invalid(message: &str) -> Answer {
    answer(Outcome::Invalid, message)
}

async fn read_request(stream: &mut UnixStream) -> Result<ChangeRequest, String> {
    let mut buffer = Zeroizing::new(Vec::with_capacity(MAX_REQUEST));
    let read = async {
        let mut chunk = Zeroizing::new([0u8; 1024]);
        loop {
            match handoff::decode_request(&buffer) {
                Err(FrameError::Incomplete) => {}
                other => return other.map_err(|e| e.to_string()),
            }
            let n = stream
                .read(&mut chunk[..])
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(FrameError::Incomplete.to_string());
            }
            if buffer.len() + n > MAX_REQUEST {
                return Err("it is longer than any request".to_owned());
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT, read)
        .await
        .map_err(|_| "it did not arrive in time".to_owned())?
}
