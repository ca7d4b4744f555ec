//! `deadboltctl welcome` against SMTP servers that misbehave, run here on
//! a loopback port: one that answers garbage, one that accepts the
//! connection and never speaks, one that stops answering in the middle of
//! DATA, one that answers a line at a time forever. Each ends in a clear
//! error once `[mail] timeout` has passed, exit status 1, and the
//! documented state: before the server took a message the password is not
//! changed; once the message was handed over, "password set, mail not sent".
//! The directory is a real slapd; nothing of the password is printed.

use deadbolt_tests::fleet::{fleet_toml, secret_file};
use deadbolt_tests::slapd::{hash_password, ldif_line, Directory};
use deadbolt_tests::{deadboltctl_path, Outcome, PamEnv};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const OLD: &str = "Old-Pass-Word-1234";
const ADMIN_PW: &str = "pw-adm";
/// `[mail] timeout` in these tests.
const TIMEOUT_SECS: u64 = 2;
/// How long a run may take before the test calls it hung: far past the
/// timeout, so a slow machine does not fail it, but it ends.
const HUNG: Duration = Duration::from_secs(60);

/// How the fake server misbehaves.
#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    /// Greets with text that is not an SMTP reply.
    Garbage,
    /// Greets with bytes that are not even text.
    Binary,
    /// Accepts the connection and never writes a byte.
    Silent,
    /// Speaks SMTP up to `354`, reads the message, and never answers it.
    HangsInData,
    /// Greets with a continuation line (`220-`) every half second, forever:
    /// each read arrives well within the timeout, the reply never ends.
    Trickles,
}

/// A server on a loopback port that misbehaves for every connection; it
/// keeps what clients sent.
struct FakeSmtp {
    port: u16,
    received: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
}

impl FakeSmtp {
    fn start(how: Misbehaviour) -> FakeSmtp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (kept, stopping) = (received.clone(), stop.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let (kept, stopping) = (kept.clone(), stopping.clone());
                thread::spawn(move || serve(stream, how, &kept, &stopping));
            }
        });
        FakeSmtp {
            port,
            received,
            stop,
        }
    }

    fn received(&self) -> String {
        String::from_utf8_lossy(&self.received.lock().unwrap()).into_owned()
    }
}

impl Drop for FakeSmtp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(stream: TcpStream, how: Misbehaviour, kept: &Mutex<Vec<u8>>, stop: &AtomicBool) {
    let mut writer = stream.try_clone().expect("clone the connection");
    let mut reader = BufReader::new(stream);
    let idle = |reader: &mut BufReader<TcpStream>| {
        // Reads whatever comes until the client goes or the test ends.
        let _ = reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)));
        let mut buf = [0u8; 4096];
        while !stop.load(Ordering::SeqCst) {
            match reader.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => kept.lock().unwrap().extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
    };
    match how {
        Misbehaviour::Garbage => {
            let _ = writer.write_all(b"hello, this is not SMTP at all\r\n");
            idle(&mut reader);
        }
        Misbehaviour::Binary => {
            let _ = writer.write_all(b"\xff\xfe\x00\x01\x1b[2J\x80\x81\r\n");
            idle(&mut reader);
        }
        Misbehaviour::Silent => idle(&mut reader),
        Misbehaviour::Trickles => {
            while !stop.load(Ordering::SeqCst)
                && writer.write_all(b"220-still greeting\r\n").is_ok()
            {
                thread::sleep(Duration::from_millis(500));
            }
        }
        Misbehaviour::HangsInData => {
            let _ = writer.write_all(b"220 fake.example ESMTP\r\n");
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                kept.lock().unwrap().extend_from_slice(&line);
                let command = String::from_utf8_lossy(&line).to_ascii_uppercase();
                let answer: &[u8] = if command.starts_with("EHLO") {
                    b"250-fake.example\r\n250 8BITMIME\r\n"
                } else if command.starts_with("DATA") {
                    let _ = writer.write_all(b"354 go ahead\r\n");
                    return idle(&mut reader);
                } else {
                    b"250 ok\r\n"
                };
                if writer.write_all(answer).is_err() {
                    return;
                }
            }
        }
    }
}

struct World {
    dir: Directory,
    admin: String,
    host: deadbolt_tests::slapd::Host,
    files: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let dir = Directory::start();
        let admin = dir.add_admin("adm", ADMIN_PW);
        let host = dir.add_host("host-a");
        World {
            dir,
            admin,
            host,
            files: tempfile::tempdir().expect("a directory for files"),
        }
    }

    /// Adds an employee `uid` with a mail address and `OLD` as password.
    fn add(&self, uid: &str) -> String {
        let dn = self.dir.employee_dn(uid);
        let mut ldif = String::new();
        ldif_line(&mut ldif, "dn", &dn);
        ldif.push_str("objectClass: inetOrgPerson\n");
        ldif_line(&mut ldif, "uid", uid);
        ldif_line(&mut ldif, "cn", uid);
        ldif_line(&mut ldif, "sn", uid);
        ldif_line(&mut ldif, "mail", &format!("{uid}@example.com"));
        ldif_line(&mut ldif, "userPassword", &hash_password(OLD));
        self.dir
            .add(self.dir.admin_dn(), self.dir.admin_password(), &ldif)
            .expect("add the employee");
        dn
    }

    fn env(&self, smtp_port: u16) -> PamEnv {
        let mut toml = fleet_toml(
            "host-a",
            &[self.dir.uri()],
            &self.dir.people_dn(),
            &self.host.dn,
            &self.host.password_file,
        );
        toml.push_str(&format!(
            "\n[mail]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {smtp_port}\ntls = \"none\"\n\
             from = \"IT <it@example.com>\"\ntimeout = \"{TIMEOUT_SECS}s\"\n"
        ));
        PamEnv::builder().toml(&toml).build()
    }

    /// `deadboltctl welcome USER --json` as the administrator; fails the
    /// test if it has not ended after [`HUNG`].
    fn welcome(&self, env: &PamEnv, user: &str) -> Outcome {
        let password_file = secret_file(self.files.path(), "adm.pw", ADMIN_PW);
        let mut child = Command::new(deadboltctl_path())
            .arg("--config")
            .arg(env.config_path())
            .args(["welcome", user, "--json", "--as", &self.admin])
            .arg("--password-file")
            .arg(password_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run deadboltctl");
        let started = Instant::now();
        while child.try_wait().expect("wait for deadboltctl").is_none() {
            if started.elapsed() > HUNG {
                let _ = child.kill();
                let out = child.wait_with_output().expect("its output");
                panic!(
                    "deadboltctl welcome still runs after {HUNG:?} with a {TIMEOUT_SECS} s \
                     timeout\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().expect("its output");
        Outcome {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The one employee's line of the JSON report.
fn only_employee(out: &Outcome) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"));
    let employees = v["employees"].as_array().expect("employees");
    assert_eq!(employees.len(), 1, "{out}");
    employees[0].clone()
}

/// The server never took the message: a clear failure, the password not
/// changed.
fn assert_refused_before_anything(how: Misbehaviour, why: &[&str]) {
    let w = World::new();
    let dn = w.add("ann");
    let smtp = FakeSmtp::start(how);
    let env = w.env(smtp.port);
    let out = w.welcome(&env, "ann");
    assert_eq!(out.code(), Some(1), "{how:?}\n{out}");
    let ann = only_employee(&out);
    assert_eq!(ann["result"], "failed", "{how:?}\n{out}");
    assert_eq!(ann["password_set"], false, "{how:?}\n{out}");
    let reason = ann["reason"].as_str().expect("a reason");
    assert!(
        reason.contains(&format!("the mail server 127.0.0.1:{}", smtp.port)),
        "{how:?}: {reason}"
    );
    assert!(
        why.iter().any(|w| reason.contains(w)),
        "{how:?}: {reason} (expected one of {why:?})"
    );
    assert!(reason.contains("the password was not changed"), "{reason}");
    assert!(
        !reason.chars().any(char::is_control),
        "{how:?}: the server's bytes reach the terminal: {reason:?}"
    );
    assert!(
        w.dir.try_bind(&dn, OLD).is_ok(),
        "{how:?}: the password changed"
    );
    assert!(!w.dir.pwd_reset(&dn), "{how:?}: marked reset");
    assert!(
        !smtp.received().contains("DATA"),
        "{how:?}: {}",
        smtp.received()
    );
}

#[test]
fn a_server_that_answers_garbage_is_a_clear_error_and_changes_nothing() {
    assert_refused_before_anything(Misbehaviour::Garbage, &["response", "parse", "invalid"]);
}

#[test]
fn a_server_that_answers_bytes_that_are_not_text_is_a_clear_error() {
    assert_refused_before_anything(
        Misbehaviour::Binary,
        &["response", "parse", "invalid", "UTF-8", "utf-8"],
    );
}

#[test]
fn a_server_that_never_speaks_times_out_and_changes_nothing() {
    assert_refused_before_anything(Misbehaviour::Silent, &["timed out", "timeout"]);
}

#[test]
fn a_server_whose_greeting_never_ends_is_given_up_on() {
    assert_refused_before_anything(Misbehaviour::Trickles, &["timed out", "timeout"]);
}

#[test]
fn a_server_that_hangs_in_data_leaves_the_password_set_and_says_so() {
    let w = World::new();
    let dn = w.add("bob");
    let smtp = FakeSmtp::start(Misbehaviour::HangsInData);
    let env = w.env(smtp.port);
    let out = w.welcome(&env, "bob");
    assert_eq!(out.code(), Some(1), "{out}");
    let bob = only_employee(&out);
    assert_eq!(bob["result"], "failed", "{out}");
    // The message was handed over, so the password had been set first: the
    // documented "password set, mail not sent" (deadboltctl(8)).
    assert_eq!(bob["password_set"], true, "{out}");
    let reason = bob["reason"].as_str().expect("a reason");
    assert!(
        reason.contains("timed out") || reason.contains("timeout"),
        "{reason}"
    );
    assert!(
        !w.dir.try_bind(&dn, OLD).is_ok(),
        "the old password still binds"
    );
    assert!(
        w.dir.pwd_reset(&dn),
        "not marked for a change at first login"
    );
    // The message reached the server, with the password; the report and the
    // error output never show it.
    let received = smtp.received();
    let password = received
        .lines()
        .find_map(|l| l.trim().strip_prefix("Temporary password:"))
        .map(|p| p.trim().to_owned())
        .unwrap_or_else(|| panic!("no password in what the server read:\n{received}"));
    assert!(
        w.dir.try_bind(&dn, &password).is_ok(),
        "the mailed password does not bind"
    );
    assert!(
        !out.stdout.contains(&password) && !out.stderr.contains(&password),
        "the password is shown\n{out}"
    );
}
