//! A real SMTP server per test: `tests/smtp_server.py` on Debian's
//! python3-aiosmtpd, started as a child process on a loopback port in a
//! temporary directory. Each message it accepts is saved as a JSON file
//! (envelope, headers, decoded body), read back by [`SmtpServer::messages`].
//! It can offer STARTTLS or implicit TLS with a certificate made by the test
//! ([`crate::slapd::make_tls`]), require AUTH, and go away or refuse
//! recipients after a number of messages.
//!
//! Dropping it kills the process and removes the directory.

use crate::slapd::{allocate_port, make_tls, wait_until, write_secret_file};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long the server may take to listen.
const STARTUP: Duration = Duration::from_secs(10);

/// How the server is protected and when it misbehaves.
#[derive(Clone, Debug, Default)]
pub struct SmtpOptions {
    /// Offer and require STARTTLS.
    pub starttls: bool,
    /// TLS from the first byte.
    pub implicit_tls: bool,
    /// Require AUTH with this login and password.
    pub auth: Option<(String, String)>,
    /// After this many messages, exit at the next command.
    pub exit_after: Option<usize>,
    /// After this many messages, refuse every recipient.
    pub reject_after: Option<usize>,
}

/// One message as the server received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub from: String,
    pub to: String,
    pub cc: String,
    pub bcc: String,
    pub subject: String,
    pub body: String,
    pub tls: bool,
    pub authenticated: bool,
}

pub struct SmtpServer {
    child: Option<Child>,
    root: tempfile::TempDir,
    port: u16,
    ca: Option<PathBuf>,
}

impl std::fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SmtpServer {{ port: {} }}", self.port)
    }
}

/// `tests/smtp_server.py`.
pub fn server_script() -> PathBuf {
    crate::workspace_dir().join("tests/smtp_server.py")
}

impl SmtpServer {
    /// A plain server (for `tls = "none"` on loopback).
    pub fn start() -> SmtpServer {
        SmtpServer::start_with(SmtpOptions::default())
    }

    pub fn start_with(opts: SmtpOptions) -> SmtpServer {
        let root = tempfile::Builder::new()
            .prefix("deadbolt-smtp.")
            .tempdir()
            .expect("make a temporary directory for the SMTP server");
        let port = allocate_port();
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(server_script())
            .arg("--dir")
            .arg(root.path())
            .arg("--port")
            .arg(port.to_string());
        let mut ca = None;
        if opts.starttls || opts.implicit_tls {
            let files = make_tls(root.path());
            cmd.arg("--tls")
                .arg(root.path().join("server.crt"))
                .arg(root.path().join("server.key"));
            if opts.implicit_tls {
                cmd.arg("--implicit");
            }
            ca = Some(files.ca);
        }
        if let Some((user, password)) = &opts.auth {
            let file = root.path().join("auth.pw");
            write_secret_file(&file, password);
            cmd.arg("--auth").arg(user).arg(&file);
        }
        if let Some(n) = opts.exit_after {
            cmd.arg("--exit-after").arg(n.to_string());
        }
        if let Some(n) = opts.reject_after {
            cmd.arg("--reject-after").arg(n.to_string());
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(root.path().join("smtp.log")).expect("smtp.log"))
            .spawn()
            .expect("start the SMTP server (install python3-aiosmtpd: scripts/setup-deps)");
        let mut server = SmtpServer {
            child: Some(child),
            root,
            port,
            ca,
        };
        let ready = server.root.path().join("ready");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_until("the SMTP server to listen", STARTUP, || {
            if let Some(status) = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "the SMTP server exited at start ({status}):\n{}",
                    server.log()
                );
            }
            (ready.exists()
                && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok())
            .then_some(())
        });
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA that signed the server's certificate, with TLS.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    /// A CA that did not sign it, with TLS.
    pub fn other_ca_file(&self) -> PathBuf {
        self.root.path().join("other-ca.crt")
    }

    /// The server's standard error.
    pub fn log(&self) -> String {
        fs::read_to_string(self.root.path().join("smtp.log")).unwrap_or_default()
    }

    /// Every message received so far, in the order received.
    pub fn messages(&self) -> Vec<Received> {
        let mut names: Vec<PathBuf> = fs::read_dir(self.root.path())
            .expect("read the SMTP server's directory")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("msg-") && n.ends_with(".json"))
            })
            .collect();
        names.sort();
        names
            .iter()
            .map(|path| {
                let text = fs::read_to_string(path).expect("read a saved message");
                let v: serde_json::Value = serde_json::from_str(&text).expect("a saved message");
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                Received {
                    mail_from: s("mail_from"),
                    rcpt_tos: v["rcpt_tos"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                    from: s("from"),
                    to: s("to"),
                    cc: s("cc"),
                    bcc: s("bcc"),
                    subject: s("subject"),
                    body: s("body"),
                    tls: v["tls"].as_bool().unwrap_or(false),
                    authenticated: v["authenticated"].as_bool().unwrap_or(false),
                }
            })
            .collect()
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }
}
