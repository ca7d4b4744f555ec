//! `password_store = "directory"`: the approved new password and the
//! current one go to the local deadbolt-syncd, which changes the password
//! in the directory as the user (see deadbolt-syncd(8)). This is the only
//! place the module waits on the daemon, and only for a password change,
//! never for a login (design principle 1).

use deadbolt_core::handoff::{self, Answer, ChangeRequest, FrameError, Outcome};
use nix::sys::socket::{getsockopt, send, sockopt::PeerCredentials, MsgFlags};
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Why the directory does not hold the new password, for the user.
#[derive(Debug, PartialEq, Eq)]
pub enum NotStored {
    /// The directory said no: its message, for the user.
    Refused(String),
    /// The daemon or the directory could not be asked, or did not answer.
    Unavailable(String),
}

/// Hands `current` and `new` for `user` to the daemon listening on
/// `socket`, and waits for its answer until `timeout` has passed.
pub fn store(
    socket: &Path,
    user: &str,
    current: &[u8],
    new: &[u8],
    timeout: Duration,
) -> Result<(), NotStored> {
    let request = ChangeRequest {
        user: user.to_owned(),
        current: Zeroizing::new(current.to_vec()),
        new: Zeroizing::new(new.to_vec()),
    };
    let Some(bytes) = handoff::encode_request(&request) else {
        return Err(NotStored::Refused(
            "The password is too long for the directory.".to_owned(),
        ));
    };
    drop(request);
    let unavailable = |why: String| {
        NotStored::Unavailable(format!(
            "The password could not be changed: deadbolt-syncd {why}. Try again later, or ask \
             an administrator."
        ))
    };
    let mut stream = UnixStream::connect(socket)
        .map_err(|e| unavailable(format!("cannot be reached at {} ({e})", socket.display())))?;
    // Only a root daemon gets a password (or, for tests, one of our own uid).
    let peer = getsockopt(&stream.as_fd(), PeerCredentials)
        .map_err(|e| unavailable(format!("cannot be identified ({e})")))?;
    let own = nix::unistd::geteuid().as_raw();
    if peer.uid() != 0 && peer.uid() != own {
        return Err(unavailable(format!(
            "at {} is not run by root",
            socket.display()
        )));
    }
    let deadline = Instant::now() + timeout;
    let mut sent = 0;
    while sent < bytes.len() {
        stream
            .set_write_timeout(Some(remaining(deadline)))
            .map_err(|e| unavailable(e.to_string()))?;
        // MSG_NOSIGNAL: a daemon that went away must not kill the host
        // program with SIGPIPE.
        match send(
            std::os::fd::AsRawFd::as_raw_fd(&stream),
            &bytes[sent..],
            MsgFlags::MSG_NOSIGNAL,
        ) {
            Ok(n) => sent += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(unavailable(format!("did not take the request ({e})"))),
        }
    }
    drop(bytes);
    let answer = read_answer(&mut stream, deadline)
        .map_err(|why| unavailable(format!("did not answer ({why})")))?;
    match answer.outcome {
        Outcome::Changed => Ok(()),
        Outcome::Refused => Err(NotStored::Refused(answer.message)),
        Outcome::Unavailable | Outcome::Invalid => Err(NotStored::Unavailable(answer.message)),
    }
}

fn remaining(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

fn read_answer(stream: &mut UnixStream, deadline: Instant) -> Result<Answer, String> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        match handoff::decode_answer(&bytes) {
            Err(FrameError::Incomplete) => {}
            other => return other.map_err(|e| e.to_string()),
        }
        if Instant::now() >= deadline {
            return Err("no answer in time".to_owned());
        }
        stream
            .set_read_timeout(Some(remaining(deadline)))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut chunk) {
            Ok(0) => return Err("the connection closed".to_owned()),
            Ok(n) => {
                if bytes.len() + n > 8 + handoff::MAX_MESSAGE {
                    return Err("the answer is too long".to_owned());
                }
                bytes.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err("no answer in time".to_owned())
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}
