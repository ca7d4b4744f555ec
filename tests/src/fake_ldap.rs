//! A small LDAP server that speaks garbage on purpose, on a loopback port:
//! each connection it accepts is answered by the [`Garbage`] case set at
//! that moment, or passed through to a real slapd ([`Garbage::Proxy`]).
//!
//! Messages are written in BER by hand, so that each case is exactly the
//! malformed message it names: the parsers under test never saw it built.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// The content sync controls and intermediate message of RFC 4533.
const SYNC_STATE_OID: &str = "1.3.6.1.4.1.4203.1.9.1.2";
const SYNC_DONE_OID: &str = "1.3.6.1.4.1.4203.1.9.1.3";

/// What the server answers a connection with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Garbage {
    /// 4 KiB of pseudo-random bytes in answer to the bind, then close.
    RandomBytes,
    /// The first half of a well-formed BindResponse, then close.
    TruncatedBind,
    /// A BindResponse whose sequence is empty: no result code, no DN, no
    /// message. ldap3 decodes it in the task that awaits the bind.
    BindWithoutResult,
    /// A successful bind, then a SearchResultDone carrying a syncDone
    /// control whose value is not BER.
    BadSyncDone,
    /// A successful bind, then a search entry carrying a syncState control
    /// whose value is an octet string where a sequence belongs.
    BadSyncState,
    /// A length prefix of 2 GiB, a few bytes of it, and silence.
    AbsurdLength,
    /// Accepts, reads, never answers.
    Silent,
    /// A successful bind, then an intermediate message of another
    /// extension (not a syncInfoMessage) on the sync search.
    ForeignIntermediate,
    /// A successful bind, then an ExtendedResponse, a message no search
    /// has, on the sync search's message id.
    WrongResponseToSearch,
    /// Bytes passed through both ways to this address.
    Proxy(SocketAddr),
    /// As `Proxy`, but the client's add and modify requests are swallowed:
    /// a server that stops answering writes within a working session,
    /// while the bind, searches and the sync stream go on.
    ProxyDroppingWrites(SocketAddr),
}

impl Garbage {
    /// Whether the bind succeeds before the garbage: what the daemon's
    /// backoff depends on.
    pub fn binds(self) -> bool {
        matches!(
            self,
            Garbage::BadSyncDone
                | Garbage::BadSyncState
                | Garbage::ForeignIntermediate
                | Garbage::WrongResponseToSearch
                | Garbage::Proxy(_)
                | Garbage::ProxyDroppingWrites(_)
        )
    }
}

#[derive(Debug)]
struct Shared {
    case: Garbage,
    /// Each connection accepted, with the case that served it.
    served: Vec<Garbage>,
}

/// The running server; stops accepting when dropped.
#[derive(Debug)]
pub struct FakeLdap {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
}

impl FakeLdap {
    /// Listens on a free loopback port, answering with `case`.
    pub fn start(case: Garbage) -> FakeLdap {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("its address");
        let shared = Arc::new(Mutex::new(Shared {
            case,
            served: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (accept_shared, accept_stop) = (shared.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if accept_stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let case = {
                    let mut shared = accept_shared.lock().expect("fake server state");
                    let case = shared.case;
                    shared.served.push(case);
                    case
                };
                thread::spawn(move || serve(conn, case));
            }
        });
        FakeLdap { addr, shared, stop }
    }

    pub fn uri(&self) -> String {
        format!("ldap://{}", self.addr)
    }

    /// Answers the connections accepted from now on with `case`.
    pub fn set(&self, case: Garbage) {
        self.shared.lock().expect("fake server state").case = case;
    }

    /// How many connections were served by `case` so far.
    pub fn served(&self, case: Garbage) -> usize {
        let shared = self.shared.lock().expect("fake server state");
        shared.served.iter().filter(|c| **c == case).count()
    }
}

impl Drop for FakeLdap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accepting thread so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(mut conn: TcpStream, case: Garbage) {
    match case {
        Garbage::Proxy(to) => return proxy(conn, to, false),
        Garbage::ProxyDroppingWrites(to) => return proxy(conn, to, true),
        _ => {}
    }
    let Some((bind_id, _)) = read_message(&mut conn) else {
        return;
    };
    let reply = match case {
        Garbage::RandomBytes => {
            let _ = conn.write_all(&pseudo_random(4096, bind_id as u64));
            return close(conn);
        }
        Garbage::TruncatedBind => {
            let whole = message(bind_id, &result_op(0x61, 0), None);
            let _ = conn.write_all(&whole[..whole.len() / 2]);
            return close(conn);
        }
        Garbage::BindWithoutResult => message(bind_id, &tlv(0x61, &[]), None),
        Garbage::AbsurdLength => {
            // 0x7fffffff bytes announced; seven of them sent.
            let _ = conn.write_all(&[0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x02, 0x01, 0x01]);
            return drain(conn);
        }
        Garbage::Silent => return drain(conn),
        _ => message(bind_id, &result_op(0x61, 0), None),
    };
    if conn.write_all(&reply).is_err() {
        return;
    }
    if !case.binds() {
        return drain(conn);
    }
    // The next message is the sync search (an unbind ends the story).
    let Some((search_id, op)) = read_message(&mut conn) else {
        return;
    };
    if op != 0x63 {
        return close(conn);
    }
    let answer = match case {
        Garbage::BadSyncDone => message(
            search_id,
            &result_op(0x65, 0),
            Some(&control(SYNC_DONE_OID, &[0xff, 0xff, 0xff])),
        ),
        Garbage::BadSyncState => {
            let entry = tlv(
                0x64,
                &[
                    octets(b"uid=alice,ou=people,dc=example,dc=com"),
                    tlv(0x30, &[]),
                ]
                .concat(),
            );
            message(
                search_id,
                &entry,
                Some(&control(SYNC_STATE_OID, &octets(b"\xff\xff"))),
            )
        }
        Garbage::ForeignIntermediate => {
            let inner = [tlv(0x80, b"1.2.3.4.5"), tlv(0x81, &[0x30, 0x00])].concat();
            message(search_id, &tlv(0x79, &inner), None)
        }
        Garbage::WrongResponseToSearch => message(search_id, &result_op(0x78, 0), None),
        _ => unreachable!("handled above"),
    };
    let _ = conn.write_all(&answer);
    drain(conn);
}

/// Reads until the peer closes: the daemon decides when to give up.
fn drain(mut conn: TcpStream) {
    let mut sink = [0u8; 4096];
    while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
}

fn close(conn: TcpStream) {
    let _ = conn.shutdown(Shutdown::Both);
}

/// ModifyRequest and AddRequest, as BER application tags.
const WRITE_OPS: [u8; 2] = [0x66, 0x68];

fn proxy(client: TcpStream, to: SocketAddr, drop_writes: bool) {
    let Ok(server) = TcpStream::connect(to) else {
        return close(client);
    };
    let (Ok(mut client_in), Ok(mut server_out)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let upstream = thread::spawn(move || {
        if drop_writes {
            while let Some((message, _, op)) = read_raw_message(&mut client_in) {
                if !WRITE_OPS.contains(&op) && server_out.write_all(&message).is_err() {
                    break;
                }
            }
        } else {
            let _ = std::io::copy(&mut client_in, &mut server_out);
        }
        let _ = server_out.shutdown(Shutdown::Write);
    });
    let (mut server_in, mut client_out) = (server, client);
    let _ = std::io::copy(&mut server_in, &mut client_out);
    let _ = client_out.shutdown(Shutdown::Both);
    let _ = upstream.join();
}

/// Reads one LDAPMessage: its message id and the tag of its protocol op.
fn read_message(conn: &mut TcpStream) -> Option<(i64, u8)> {
    read_raw_message(conn).map(|(_, id, op)| (id, op))
}

/// Reads one LDAPMessage whole (up to 1 MiB): its bytes as sent, its
/// message id and the tag of its protocol op.
fn read_raw_message(conn: &mut TcpStream) -> Option<(Vec<u8>, i64, u8)> {
    let mut message = vec![0u8; 2];
    conn.read_exact(&mut message).ok()?;
    if message[0] != 0x30 {
        return None;
    }
    let len = if message[1] < 0x80 {
        usize::from(message[1])
    } else {
        let n = usize::from(message[1] & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut bytes = [0u8; 4];
        conn.read_exact(&mut bytes[..n]).ok()?;
        message.extend_from_slice(&bytes[..n]);
        bytes[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    if len > 1 << 20 {
        return None;
    }
    let start = message.len();
    message.resize(start + len, 0);
    conn.read_exact(&mut message[start..]).ok()?;
    // INTEGER messageID, then the op's tag.
    let body = &message[start..];
    if body.first() != Some(&0x02) {
        return None;
    }
    let id_len = usize::from(*body.get(1)?);
    let id = body
        .get(2..2 + id_len)?
        .iter()
        .fold(0i64, |acc, b| (acc << 8) | i64::from(*b));
    let op = *body.get(2 + id_len)?;
    Some((message, id, op))
}

/// A BER TLV with a definite length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn octets(bytes: &[u8]) -> Vec<u8> {
    tlv(0x04, bytes)
}

fn integer(n: i64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let skip = bytes
        .windows(2)
        .take_while(|w| w[0] == 0 && w[1] & 0x80 == 0)
        .count();
    tlv(0x02, &bytes[skip..])
}

/// An LDAPResult-shaped op (BindResponse 0x61, SearchResultDone 0x65,
/// ExtendedResponse 0x78): result code, empty matched DN and message.
fn result_op(tag: u8, code: u8) -> Vec<u8> {
    tlv(
        tag,
        &[tlv(0x0a, &[code]), octets(b""), octets(b"")].concat(),
    )
}

/// A control: its OID, not critical, and `value` as its controlValue.
fn control(oid: &str, value: &[u8]) -> Vec<u8> {
    tlv(0x30, &[octets(oid.as_bytes()), octets(value)].concat())
}

fn message(id: i64, op: &[u8], control: Option<&[u8]>) -> Vec<u8> {
    let mut body = [integer(id), op.to_vec()].concat();
    if let Some(control) = control {
        body.extend(tlv(0xa0, control));
    }
    tlv(0x30, &body)
}

/// xorshift64: bytes that look random and are the same on every run.
fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bind_response_is_the_ber_ldap_expects() {
        // LDAPMessage { id 1, BindResponse { success, "", "" } }
        assert_eq!(
            message(1, &result_op(0x61, 0), None),
            [0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00]
        );
        assert_eq!(integer(128), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
    }
}
