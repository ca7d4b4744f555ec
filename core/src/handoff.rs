//! The password hand-off between the PAM module and the local
//! deadbolt-syncd (`[directory] password_store = "directory"`): one request,
//! one answer, on a unix socket only root can reach.
//!
//! A request is `DBPW`, a version byte, then the user name, the current
//! password and the new one, each as a big-endian `u16` length and its
//! bytes. An answer is `DBPW`, the version, an [`Outcome`] byte and a
//! message for the user of at most [`MAX_MESSAGE`] bytes of UTF-8, which
//! never holds a password. Decoding takes bytes from anyone and checks
//! every length before it reads.

use std::fmt;
use zeroize::Zeroizing;

const MAGIC: &[u8; 4] = b"DBPW";
const VERSION: u8 = 1;

/// The longest password either side sends: past any `max_length` the
/// policy accepts, and what a `u16` length holds.
pub const MAX_SECRET: usize = 4096;
/// The longest user name: the store's own bound.
pub const MAX_USER: usize = 256;
/// The longest message of an answer.
pub const MAX_MESSAGE: usize = 1024;
/// The longest request on the wire.
pub const MAX_REQUEST: usize = 5 + 3 * 2 + MAX_USER + 2 * MAX_SECRET;

/// A password change to make in the directory. Both passwords are wiped
/// when dropped, and never printed.
pub struct ChangeRequest {
    pub user: String,
    pub current: Zeroizing<Vec<u8>>,
    pub new: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for ChangeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChangeRequest {{ user: {:?}, .. }}", self.user)
    }
}

/// What the daemon did with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The directory holds the new password.
    Changed = 0,
    /// The directory refused it: the current password is wrong, or its
    /// policy or access control said no. Nothing changed.
    Refused = 1,
    /// The directory could not be reached, or did not answer in time.
    /// Nothing changed, or the daemon cannot tell: see the message.
    Unavailable = 2,
    /// The request made no sense (a malformed request, an unknown user).
    Invalid = 3,
}

impl Outcome {
    fn from_byte(b: u8) -> Option<Outcome> {
        match b {
            0 => Some(Outcome::Changed),
            1 => Some(Outcome::Refused),
            2 => Some(Outcome::Unavailable),
            3 => Some(Outcome::Invalid),
            _ => None,
        }
    }
}

/// The daemon's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub outcome: Outcome,
    pub message: String,
}

/// Why bytes were not a request or an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// More bytes are needed.
    Incomplete,
    /// Not this protocol, or not this version of it.
    BadHeader,
    /// A field longer than its bound.
    TooLong(&'static str),
    /// A field that must be text is not UTF-8, or the outcome is unknown.
    BadField(&'static str),
    /// Bytes after the end.
    Trailing,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Incomplete => f.write_str("it ended too early"),
            FrameError::BadHeader => f.write_str("it is not a deadbolt password request"),
            FrameError::TooLong(what) => write!(f, "its {what} is too long"),
            FrameError::BadField(what) => write!(f, "its {what} is not valid"),
            FrameError::Trailing => f.write_str("bytes follow its end"),
        }
    }
}

impl std::error::Error for FrameError {}

fn put(out: &mut Vec<u8>, field: &[u8]) {
    let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&field[..usize::from(len)]);
}

/// The request as bytes, in a buffer wiped when dropped. `None` when a
/// field is over its bound: the caller refuses the change itself.
pub fn encode_request(request: &ChangeRequest) -> Option<Zeroizing<Vec<u8>>> {
    if request.user.len() > MAX_USER
        || request.current.len() > MAX_SECRET
        || request.new.len() > MAX_SECRET
    {
        return None;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(MAX_REQUEST));
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    put(&mut out, request.user.as_bytes());
    put(&mut out, &request.current);
    put(&mut out, &request.new);
    Some(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn header(&mut self) -> Result<(), FrameError> {
        if self.bytes.len() < 5 {
            return Err(FrameError::Incomplete);
        }
        if &self.bytes[..4] != MAGIC || self.bytes[4] != VERSION {
            return Err(FrameError::BadHeader);
        }
        self.bytes = &self.bytes[5..];
        Ok(())
    }

    fn field(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], FrameError> {
        let [hi, lo, rest @ ..] = self.bytes else {
            return Err(FrameError::Incomplete);
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if len > max {
            return Err(FrameError::TooLong(what));
        }
        if rest.len() < len {
            return Err(FrameError::Incomplete);
        }
        let (field, rest) = rest.split_at(len);
        self.bytes = rest;
        Ok(field)
    }

    fn end(&self) -> Result<(), FrameError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Trailing)
        }
    }
}

/// Reads a request; [`FrameError::Incomplete`] until all of it is there.
pub fn decode_request(bytes: &[u8]) -> Result<ChangeRequest, FrameError> {
    let mut reader = Reader { bytes };
    reader.header()?;
    let user = reader.field("user name", MAX_USER)?;
    let current = reader.field("current password", MAX_SECRET)?;
    let new = reader.field("new password", MAX_SECRET)?;
    reader.end()?;
    let user = std::str::from_utf8(user).map_err(|_| FrameError::BadField("user name"))?;
    Ok(ChangeRequest {
        user: user.to_owned(),
        current: Zeroizing::new(current.to_vec()),
        new: Zeroizing::new(new.to_vec()),
    })
}

/// The answer as bytes; a message past [`MAX_MESSAGE`] is cut at a
/// character boundary.
pub fn encode_answer(answer: &Answer) -> Vec<u8> {
    let mut end = answer.message.len().min(MAX_MESSAGE);
    while !answer.message.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = Vec::with_capacity(8 + end);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(answer.outcome as u8);
    put(&mut out, &answer.message.as_bytes()[..end]);
    out
}

/// Reads an answer; [`FrameError::Incomplete`] until all of it is there.
pub fn decode_answer(bytes: &[u8]) -> Result<Answer, FrameError> {
    let mut reader = Reader { bytes };
    reader.header()?;
    let [code, rest @ ..] = reader.bytes else {
        return Err(FrameError::Incomplete);
    };
    let outcome = Outcome::from_byte(*code).ok_or(FrameError::BadField("outcome"))?;
    reader.bytes = rest;
    let message = reader.field("message", MAX_MESSAGE)?;
    reader.end()?;
    let message = std::str::from_utf8(message).map_err(|_| FrameError::BadField("message"))?;
    Ok(Answer {
        outcome,
        message: message.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request(user: &str, current: &[u8], new: &[u8]) -> ChangeRequest {
        ChangeRequest {
            user: user.to_owned(),
            current: Zeroizing::new(current.to_vec()),
            new: Zeroizing::new(new.to_vec()),
        }
    }

    #[test]
    fn a_request_reads_back_and_every_prefix_is_incomplete() {
        let bytes = encode_request(&request("alice", b"old pw", "nëw\0pw".as_bytes())).unwrap();
        let back = decode_request(&bytes).unwrap();
        assert_eq!(back.user, "alice");
        assert_eq!(&back.current[..], b"old pw");
        assert_eq!(&back.new[..], "nëw\0pw".as_bytes());
        for end in 0..bytes.len() {
            assert_eq!(
                decode_request(&bytes[..end]).err(),
                Some(FrameError::Incomplete),
                "prefix of {end} bytes"
            );
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert_eq!(decode_request(&longer).err(), Some(FrameError::Trailing));
    }

    #[test]
    fn passwords_past_the_bound_are_not_sent() {
        let huge = vec![b'a'; 1 << 20];
        assert!(encode_request(&request("alice", b"old", &huge)).is_none());
        assert!(encode_request(&request("alice", &huge, b"new")).is_none());
        assert!(encode_request(&request(&"a".repeat(MAX_USER + 1), b"o", b"n")).is_none());
    }

    #[test]
    fn hostile_requests_are_refused() {
        assert_eq!(
            decode_request(b"HTTP/1.1 GET /").err(),
            Some(FrameError::BadHeader)
        );
        assert_eq!(
            decode_request(b"DBPW\x02").err(),
            Some(FrameError::BadHeader)
        );
        let mut long_user = b"DBPW\x01".to_vec();
        long_user.extend_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(
            decode_request(&long_user).err(),
            Some(FrameError::TooLong("user name"))
        );
        let mut not_utf8 = b"DBPW\x01\x00\x02\xff\xfe".to_vec();
        not_utf8.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(
            decode_request(&not_utf8).err(),
            Some(FrameError::BadField("user name"))
        );
    }

    #[test]
    fn an_answer_reads_back_and_a_long_message_is_cut() {
        let answer = Answer {
            outcome: Outcome::Refused,
            message: "the current password is wrong".into(),
        };
        assert_eq!(decode_answer(&encode_answer(&answer)), Ok(answer));
        let long = Answer {
            outcome: Outcome::Unavailable,
            message: "é".repeat(MAX_MESSAGE),
        };
        let back = decode_answer(&encode_answer(&long)).unwrap();
        assert!(back.message.len() <= MAX_MESSAGE);
        assert!(long.message.starts_with(&back.message));
        assert_eq!(
            decode_answer(b"DBPW\x01\x09\x00\x00").err(),
            Some(FrameError::BadField("outcome"))
        );
    }

    #[test]
    fn a_request_never_shows_its_passwords() {
        let shown = format!("{:?}", request("alice", b"s3cret-old", b"s3cret-new"));
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut framed = b"DBPW\x01".to_vec();
            framed.extend_from_slice(&bytes);
            let _ = decode_request(&bytes);
            let _ = decode_request(&framed);
            let _ = decode_answer(&bytes);
            let _ = decode_answer(&framed);
        }
    }
}
