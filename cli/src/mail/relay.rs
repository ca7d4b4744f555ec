//! A loopback relay between lettre and the mail server that holds the
//! server to `[mail] timeout` for a whole answer.
//!
//! lettre's timeout applies to each read of the socket, so a server that
//! sends a line every second (`220-` continuation lines, forever) keeps it
//! reading for hours, and one that sends a reply without a line break has
//! it buffering without end. lettre owns its socket, so the bound is kept
//! here: lettre talks to this relay, and the relay cuts both connections
//! when the server is still sending `timeout` after the client last wrote,
//! or has sent more than [`MAX_ANSWER_BYTES`] since then. Bytes pass
//! through unchanged, TLS included: the server's certificate is still
//! checked by lettre against the server's name.
//!
//! The relay accepts one connection, at once, and stops listening: a local
//! process that connected first would only be talking to the mail server
//! itself, and lettre's own connection would then fail, so nothing of the
//! message can go anywhere but the server.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The most a server may send in answer to one command: far above any
/// real answer (lettre itself refuses one of more than 100,000 bytes).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// How often the relay looks at a silent server, to see the client gone.
const TICK: Duration = Duration::from_millis(200);

/// Why the relay cut a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Still sending `timeout` after the client's last command.
    Endless,
    /// More than [`MAX_ANSWER_BYTES`] for one command.
    TooLarge,
}

#[derive(Debug)]
struct Exchange {
    client_wrote: Instant,
    answered: usize,
    cut: Option<Cut>,
}

/// One relayed connection: where lettre connects, and why it was cut.
#[derive(Debug, Clone)]
pub struct Relay {
    pub local: SocketAddr,
    exchange: Arc<Mutex<Exchange>>,
}

impl Relay {
    /// Connects to the server (within `timeout`) and starts relaying for
    /// the one connection that comes to [`Relay::local`].
    pub fn start(server: (&str, u16), timeout: Duration) -> io::Result<Relay> {
        let upstream = connect(server, timeout)?;
        upstream.set_nodelay(true)?;
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let local = listener.local_addr()?;
        let exchange = Arc::new(Mutex::new(Exchange {
            client_wrote: Instant::now(),
            answered: 0,
            cut: None,
        }));
        let shared = exchange.clone();
        thread::spawn(move || {
            let Ok((client, _)) = listener.accept() else {
                return;
            };
            drop(listener);
            let _ = client.set_nodelay(true);
            let (Ok(client_in), Ok(upstream_in)) = (client.try_clone(), upstream.try_clone())
            else {
                return;
            };
            let forward = shared.clone();
            thread::spawn(move || commands(client_in, upstream, &forward));
            answers(upstream_in, client, &shared, timeout);
        });
        Ok(Relay { local, exchange })
    }

    /// Why the relay cut the connection, if it did.
    pub fn cut(&self) -> Option<Cut> {
        self.exchange.lock().map(|e| e.cut).unwrap_or(None)
    }
}

fn connect(server: (&str, u16), timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address for the name");
    for address in server.to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Client to server: each write restarts the server's time to answer.
fn commands(mut client: TcpStream, mut upstream: TcpStream, exchange: &Mutex<Exchange>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Ok(mut e) = exchange.lock() {
            e.client_wrote = Instant::now();
            e.answered = 0;
        }
        if upstream.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = upstream.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Both);
}

/// Server to client, within the bounds.
fn answers(
    mut upstream: TcpStream,
    mut client: TcpStream,
    exchange: &Mutex<Exchange>,
    timeout: Duration,
) {
    let _ = upstream.set_read_timeout(Some(TICK));
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match upstream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                // Silence is lettre's to time out; the relay goes on
                // until one side closes.
                continue;
            }
            Err(_) => break,
        };
        let cut = match exchange.lock() {
            Ok(mut e) => {
                e.answered += n;
                let cut = if e.answered > MAX_ANSWER_BYTES {
                    Some(Cut::TooLarge)
                } else if e.client_wrote.elapsed() > timeout {
                    Some(Cut::Endless)
                } else {
                    None
                };
                e.cut = e.cut.or(cut);
                cut
            }
            Err(_) => Some(Cut::Endless),
        };
        if cut.is_some() || client.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = upstream.shutdown(Shutdown::Both);
}
