//! What reaches syslog: every lock, timed unlock, refusal and administrator's
//! change, with who, where from and when, and never a password.
//!
//! The module and deadboltctl log to `/dev/log`, which containers (and CI)
//! lack. Each program here runs in a private mount namespace (`unshare
//! --mount`) where `/dev/log` is a datagram socket this test binds in a
//! temporary directory: when the machine has a `/dev/log`, the socket is
//! bound over it; when it has none, a tmpfs replaces `/dev` in that
//! namespace only, holding the few device nodes the programs use (bound from
//! the real `/dev`) and an empty file the socket is bound onto. The host's
//! `/dev` is never touched.
//!
//! A datagram is in the socket's queue once `send` returns, so when the
//! program has exited everything it logged is queued: the test then sends a
//! mark of its own and reads up to it. Nothing waits on a clock.
//!
//! This needs `unshare` and root allowed to mount (CAP_SYS_ADMIN, which a
//! default Docker container lacks). Without them the tests say why on
//! stderr and pass without checking anything; set
//! `DEADBOLT_REQUIRE_SYSLOG_TESTS=1` to make that a failure instead (for CI
//! that must not skip them silently).
//!
//! The harness's own runners do not go through the namespace, so the
//! pamtester and deadboltctl command lines are built here with the same
//! environment as `PamEnv`'s (pam_wrapper, nss_wrapper, the service
//! directory, the config).

use deadbolt_core::time::days_from_civil;
use deadbolt_core::Timestamp;
use deadbolt_tests::{
    contains_bytes, deadboltctl_path, failures_at, minutes_ago, module_path, Outcome, PamEnv,
    Stack, StartupLock, SERVICE,
};
use std::fs;
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// authpriv (10) shifted left by 3, plus the severity.
const AUTHPRIV: u8 = 10 << 3;
const LOG_ERR: u8 = 3;
const LOG_NOTICE: u8 = 5;
const LOG_INFO: u8 = 6;

/// Where the logins in these tests come from (`pamtester -I`).
const RHOST: &str = "203.0.113.7";
const TTY: &str = "pts/9";

/// Run inside the new mount namespace: `$1` is the socket, `$2` an empty
/// directory for the real `/dev`, the rest the command to run.
/// `DEADBOLT_TEST_PRELOAD` becomes `LD_PRELOAD` only for that command, so
/// pam_wrapper and nss_wrapper are not loaded into `mount` and `sh`.
const NAMESPACE_SETUP: &str = r#"set -e
sock=$1; saved=$2; shift 2
if [ -e /dev/log ]; then
    mount --bind "$sock" /dev/log
else
    mount --rbind /dev "$saved"
    mount -t tmpfs -o mode=755,size=64k deadbolt-dev /dev
    for node in null zero full random urandom tty; do
        if [ -e "$saved/$node" ]; then
            touch "/dev/$node"
            mount --bind "$saved/$node" "/dev/$node"
        fi
    done
    for dir in pts shm; do
        if [ -d "$saved/$dir" ]; then
            mkdir "/dev/$dir"
            mount --rbind "$saved/$dir" "/dev/$dir"
        fi
    done
    ln -s /proc/self/fd /dev/fd
    ln -s /proc/self/fd/0 /dev/stdin
    ln -s /proc/self/fd/1 /dev/stdout
    ln -s /proc/self/fd/2 /dev/stderr
    touch /dev/log
    mount --bind "$sock" /dev/log
fi
export LD_PRELOAD="$DEADBOLT_TEST_PRELOAD"
unset DEADBOLT_TEST_PRELOAD
exec "$@"
"#;

/// The first byte of the marks the test sends itself: no syslog line starts
/// with it.
const MARK: u8 = 0;
const STOP: &[u8] = b"\0stop";

/// A syslog line as RFC 3164 has it: `<PRI>Mmm dd hh:mm:ss TAG[PID]: TEXT`.
#[derive(Debug, Clone)]
struct Line {
    /// The whole datagram.
    raw: String,
    priority: u8,
    /// The header's time, in seconds since the epoch, read as UTC.
    time: i64,
    tag: String,
    pid: u32,
    text: String,
}

impl Line {
    fn parse(raw: &[u8]) -> Line {
        let whole = String::from_utf8(raw.to_vec())
            .unwrap_or_else(|_| panic!("a syslog line that is not UTF-8: {raw:?}"));
        let bad = |why: &str| -> ! { panic!("malformed syslog line ({why}): {whole:?}") };
        let rest = whole.strip_prefix('<').unwrap_or_else(|| bad("no <PRI>"));
        let (pri, rest) = rest.split_once('>').unwrap_or_else(|| bad("no <PRI>"));
        let priority: u8 = pri.parse().unwrap_or_else(|_| bad("PRI"));
        if rest.len() < 16 || !rest.is_char_boundary(15) || rest.as_bytes()[15] != b' ' {
            bad("no timestamp");
        }
        let time = header_time(&rest[..15]).unwrap_or_else(|| bad("timestamp"));
        let rest = &rest[16..];
        let (tag_pid, text) = rest
            .split_once(": ")
            .unwrap_or_else(|| bad("no TAG[PID]: "));
        let (tag, pid) = tag_pid
            .strip_suffix(']')
            .and_then(|t| t.split_once('['))
            .unwrap_or_else(|| bad("no TAG[PID]"));
        Line {
            raw: whole.clone(),
            priority,
            time,
            tag: tag.to_owned(),
            pid: pid.parse().unwrap_or_else(|_| bad("PID")),
            text: text.to_owned(),
        }
    }

    fn facility(&self) -> u8 {
        self.priority >> 3
    }
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

/// `Mmm dd hh:mm:ss` (day zero- or space-padded), UTC, in the current year
/// or, just after New Year, the one before; seconds since the epoch.
fn header_time(text: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    if !text.is_ascii() {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == &text[..3])? as u32 + 1;
    let day: u32 = text[4..6].trim().parse().ok()?;
    let clock: Vec<i64> = text[7..]
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = clock[..] else { return None };
    let now = unix_now();
    let year = deadbolt_core::time::civil_from_days(now.div_euclid(86_400)).0;
    [year, year - 1]
        .into_iter()
        .map(|y| days_from_civil(y, month, day) * 86_400 + h * 3600 + m * 60 + s)
        .find(|t| *t <= now + 86_400)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What one program did and what it logged.
#[derive(Debug)]
struct Run {
    out: Outcome,
    pid: u32,
    lines: Vec<Line>,
    /// Every datagram as received, for looking for what must never be there.
    raw: Vec<Vec<u8>>,
}

impl Run {
    /// The lines tagged `tag` whose text contains `needle`.
    fn find(&self, tag: &str, needle: &str) -> Vec<&Line> {
        self.lines
            .iter()
            .filter(|l| l.tag == tag && l.text.contains(needle))
            .collect()
    }

    /// The one line tagged `tag` containing `needle`; panics unless exactly
    /// one is there.
    fn one(&self, tag: &str, needle: &str) -> &Line {
        let found = self.find(tag, needle);
        assert_eq!(
            found.len(),
            1,
            "expected one {tag} line containing {needle:?}\n{self}"
        );
        found[0]
    }

    fn lines_of(&self, tag: &str) -> Vec<&Line> {
        self.lines.iter().filter(|l| l.tag == tag).collect()
    }

    /// Panics if any datagram holds `secret`.
    fn assert_never_logged(&self, secret: &str) {
        for raw in &self.raw {
            assert!(
                !contains_bytes(raw, secret.as_bytes()),
                "a password reached syslog: {:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "pid {}; {}", self.pid, self.out)?;
        writeln!(f, "--- syslog ---")?;
        for line in &self.lines {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// A datagram socket standing in for syslog, and a thread reading it (so a
/// program logging more than the socket queues never blocks).
struct Syslog {
    socket: PathBuf,
    saved_dev: PathBuf,
    received: mpsc::Receiver<Vec<u8>>,
    reader: Option<thread::JoinHandle<()>>,
    marks: u64,
    /// Passwords the tests type: no datagram may hold one.
    secrets: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Syslog {
    /// The socket and its reader, or `None` (said on stderr) when this
    /// machine cannot run programs in a mount namespace of their own.
    fn start() -> Option<Syslog> {
        let skip = |why: String| -> Option<Syslog> {
            if std::env::var_os("DEADBOLT_REQUIRE_SYSLOG_TESTS").is_some_and(|v| v == "1") {
                panic!("syslog tests cannot run: {why}");
            }
            // Straight to stderr, past the test harness's capture, so the
            // skip shows in a normal `cargo test` run.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: syslog tests need a private /dev/log: {why}"
            );
            None
        };
        if !nix::unistd::geteuid().is_root() {
            return skip("not root (mounting needs it)".to_owned());
        }
        let dir = tempfile::Builder::new()
            .prefix("deadbolt-syslog.")
            .tempdir()
            .expect("create a temporary directory");
        let socket = dir.path().join("log");
        let saved_dev = dir.path().join("dev");
        fs::create_dir(&saved_dev).expect("create the directory for /dev");
        let listener = UnixDatagram::bind(&socket).expect("bind the syslog socket");
        let (tx, received) = mpsc::channel();
        let reader = thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while let Ok(n) = listener.recv(&mut buf) {
                if &buf[..n] == STOP || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut log = Syslog {
            socket,
            saved_dev,
            received,
            reader: Some(reader),
            marks: 0,
            secrets: Vec::new(),
            _dir: dir,
        };
        let probe = log.command(&["true"]).output();
        match probe {
            Err(e) => return skip(format!("cannot run unshare: {e}")),
            Ok(out) if !out.status.success() => {
                return skip(format!(
                    "unshare --mount failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
            Ok(_) => {}
        }
        assert!(log.take().is_empty(), "the probe logged something");
        Some(log)
    }

    /// Checks every datagram received from now on for `password`.
    fn never_log(&mut self, password: &str) {
        self.secrets.push(password.to_owned());
    }

    /// `program args...` in a mount namespace where `/dev/log` is the socket.
    fn command(&self, program_and_args: &[&str]) -> Command {
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(NAMESPACE_SETUP)
            .arg("sh")
            .arg(&self.socket)
            .arg(&self.saved_dev)
            .args(program_and_args)
            .env_remove("LD_PRELOAD")
            .env_remove("DEADBOLT_TEST_PRELOAD")
            .env_remove("SUDO_USER")
            .env_remove("SSH_CONNECTION")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Every datagram received since the last call: a mark is sent, and
    /// everything before it is returned.
    fn take(&mut self) -> Vec<Vec<u8>> {
        self.marks += 1;
        let mut mark = vec![MARK];
        mark.extend_from_slice(format!("mark {}", self.marks).as_bytes());
        UnixDatagram::unbound()
            .and_then(|s| s.send_to(&mark, &self.socket))
            .expect("send a mark to the syslog socket");
        let mut got = Vec::new();
        loop {
            let datagram = self
                .received
                .recv()
                .expect("the syslog reader stopped before the mark");
            if datagram == mark {
                return got;
            }
            got.push(datagram);
        }
    }

    /// Runs `cmd`, feeding it `stdin`, and collects what it logged.
    fn run(&mut self, mut cmd: Command, stdin: &[u8]) -> Run {
        // Held for the whole run, which is short: it keeps pam_wrapper
        // start-ups of other test binaries apart (see the harness).
        let lock = StartupLock::take();
        let started = unix_now();
        let mut child = cmd.stdin(Stdio::piped()).spawn().expect("start unshare");
        let pid = child.id();
        if let Some(mut input) = child.stdin.take() {
            // The program may exit before reading everything.
            let _ = input.write_all(stdin);
        }
        let output = child.wait_with_output().expect("wait for the program");
        drop(lock);
        let ended = unix_now();
        remove_pam_wrapper_dirs(pid);
        let out = Outcome {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        assert!(
            !out.stderr.contains("mount:") && !out.stderr.contains("unshare:"),
            "setting up /dev/log failed\n{out}"
        );
        let raw = self.take();
        let lines: Vec<Line> = raw.iter().map(|r| Line::parse(r)).collect();
        let run = Run {
            out,
            pid,
            lines,
            raw,
        };
        for secret in &self.secrets {
            run.assert_never_logged(secret);
        }
        for line in &run.lines {
            // Everything this program logged, and only it: same process.
            assert_eq!(line.pid, pid, "a line from another process\n{run}");
            if line.tag != "pam_deadbolt" && line.tag != "deadboltctl" {
                continue;
            }
            assert_eq!(line.facility(), 10, "not authpriv: {line}\n{run}");
            // When: the header's time is that of the run, to the second. The
            // syslog crate writes it in UTC (libc's syslog(3), which libpam
            // uses, writes local time: its lines are not checked here).
            assert!(
                (started - 1..=ended + 1).contains(&line.time),
                "the header time {} is not within {started}..={ended} (UTC)\n{run}",
                line.time
            );
        }
        run
    }

    /// `pamtester -v [-I item=value]... SERVICE user ops...` as the harness
    /// runs it, with `stdin` as its input.
    fn pamtester(
        &mut self,
        env: &PamEnv,
        items: &[(&str, &str)],
        user: &str,
        ops: &[&str],
        stdin: &str,
    ) -> Run {
        module_path();
        let mut args = vec!["pamtester".to_owned(), "-v".to_owned()];
        for (item, value) in items {
            args.push("-I".to_owned());
            args.push(format!("{item}={value}"));
        }
        args.push(SERVICE.to_owned());
        args.push(user.to_owned());
        args.extend(ops.iter().map(|s| (*s).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = self.command(&args);
        let service_file = env.service_file();
        let service_dir = service_file
            .parent()
            .expect("the service file is in a directory");
        cmd.env(
            "DEADBOLT_TEST_PRELOAD",
            "libpam_wrapper.so libnss_wrapper.so",
        )
        .env("PAM_WRAPPER", "1")
        .env("PAM_WRAPPER_SERVICE_DIR", service_dir)
        .env_remove("PAM_WRAPPER_KEEP_DIR")
        .env_remove("DEADBOLT_CONFIG")
        .env_remove("PAM_OLDAUTHTOK")
        .current_dir(env.root());
        nss_env(&mut cmd, env);
        let run = self.run(cmd, stdin.as_bytes());
        run.out.assert_exited_normally();
        run
    }

    /// One login from [`RHOST`] on [`TTY`] with `password` typed.
    fn login(&mut self, env: &PamEnv, user: &str, password: &str) -> Run {
        self.pamtester(
            env,
            &[("rhost", RHOST), ("tty", TTY)],
            user,
            &["authenticate"],
            &format!("{password}\n"),
        )
    }

    /// `deadboltctl --config CONFIG args...` as root, with `SUDO_USER` set
    /// when `sudo_user` is given.
    fn deadboltctl(&mut self, env: &PamEnv, sudo_user: Option<&str>, args: &[&str]) -> Run {
        let program = deadboltctl_path();
        let config = env.config_path().to_string_lossy().into_owned();
        let mut all = vec![program.to_str().expect("a UTF-8 path"), "--config", &config];
        all.extend_from_slice(args);
        let mut cmd = self.command(&all);
        cmd.env("DEADBOLT_TEST_PRELOAD", "libnss_wrapper.so")
            .env_remove("DEADBOLT_CONFIG")
            .current_dir(env.root());
        if let Some(who) = sudo_user {
            // As when an administrator ran sudo in an SSH session.
            cmd.env("SUDO_USER", who)
                .env("SSH_CONNECTION", "192.0.2.9 50022 192.0.2.1 22");
        }
        nss_env(&mut cmd, env);
        let run = self.run(cmd, b"");
        assert!(run.out.succeeded(), "deadboltctl {args:?} failed\n{run}");
        run
    }
}

impl Drop for Syslog {
    fn drop(&mut self) {
        let stopped = UnixDatagram::unbound().and_then(|s| s.send_to(STOP, &self.socket));
        if let (Ok(_), Some(reader)) = (stopped, self.reader.take()) {
            let _ = reader.join();
        }
    }
}

/// nss_wrapper's files: the harness writes them as `passwd` and `group` in
/// the environment's directory.
fn nss_env(cmd: &mut Command, env: &PamEnv) {
    let passwd = env.root().join("passwd");
    let group = env.root().join("group");
    assert!(
        passwd.is_file() && group.is_file(),
        "nss_wrapper files not found in {}",
        env.root().display()
    );
    cmd.env("NSS_WRAPPER_PASSWD", passwd)
        .env("NSS_WRAPPER_GROUP", group);
}

/// Removes the `/tmp/pam.X` directory pam_wrapper made for process `pid`
/// if it was left behind.
fn remove_pam_wrapper_dirs(pid: u32) {
    let Ok(entries) = fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with("pam.") && name.len() == 5) {
            continue;
        }
        let path: &Path = &entry.path();
        if fs::read_to_string(path.join("pid"))
            .ok()
            .and_then(|owner| owner.trim().parse::<u32>().ok())
            == Some(pid)
        {
            let _ = fs::remove_dir_all(path);
        }
    }
}

/// `service=deadbolt-test rhost=203.0.113.7 tty=pts/9`, as the module writes
/// where a login came from.
fn where_from() -> String {
    format!("service={SERVICE} rhost={RHOST} tty={TTY}")
}

fn assert_authpriv(line: &Line, severity: u8, run: &Run) {
    assert_eq!(
        line.priority,
        AUTHPRIV + severity,
        "facility authpriv ({}) and severity {severity} expected: {line}\n{run}",
        AUTHPRIV >> 3
    );
}

/// A wrong password no one would log by accident.
const WRONG: &str = "Tr0ub4dor&3-wrong";
/// alice's real password.
const RIGHT: &str = "c0rrect-H0rse-battery";

/// The socket, checking every datagram for [`WRONG`] and [`RIGHT`]; `None`
/// when the test must be skipped.
fn syslog() -> Option<Syslog> {
    let mut log = Syslog::start()?;
    log.never_log(WRONG);
    log.never_log(RIGHT);
    Some(log)
}

#[test]
fn a_lock_is_logged_with_the_count_the_service_the_rhost_and_the_tty() {
    let Some(mut log) = syslog() else {
        return;
    };
    let env = PamEnv::builder().user("alice", RIGHT).build();

    for n in 1..=2 {
        let run = log.login(&env, "alice", WRONG);
        assert!(!run.out.succeeded(), "{run}");
        assert_eq!(run.lines_of("pam_deadbolt").len(), 1, "{run}");
        let line = run.one(
            "pam_deadbolt",
            &format!("failure {n} of 3 for alice ({})", where_from()),
        );
        assert_authpriv(line, LOG_INFO, &run);
    }

    // The third failure locks: one notice saying so, and nothing else.
    let run = log.login(&env, "alice", WRONG);
    assert!(!run.out.succeeded(), "{run}");
    assert_eq!(run.lines_of("pam_deadbolt").len(), 1, "{run}");
    let line = run.one("pam_deadbolt", "locked alice: ");
    assert_authpriv(line, LOG_NOTICE, &run);
    let until = env.status_json("alice")["locked_until"]
        .as_str()
        .expect("a timed lock has an end")
        .to_owned();
    assert_eq!(
        line.text,
        format!(
            "locked alice: locked until {until} after 3 failures (uid 1000, policy default) ({})",
            where_from()
        ),
        "{run}"
    );

    // The right password while locked is refused in preauth, and logged.
    let run = log.login(&env, "alice", RIGHT);
    assert!(!run.out.succeeded(), "{run}");
    let line = run.one("pam_deadbolt", "refused alice: ");
    assert_authpriv(line, LOG_NOTICE, &run);
    assert_eq!(
        line.text,
        format!(
            "refused alice: locked until {until} after 3 failures ({})",
            where_from()
        ),
        "{run}"
    );

    // A login that skipped the password (an SSH key) from elsewhere is
    // refused in the account phase, and the log says where it came from.
    let run = log.pamtester(
        &env,
        &[("rhost", "198.51.100.23"), ("tty", "ssh")],
        "alice",
        &["acct_mgmt"],
        "",
    );
    assert!(!run.out.succeeded(), "{run}");
    let line = run.one("pam_deadbolt", "refused alice in the account phase: ");
    assert_authpriv(line, LOG_NOTICE, &run);
    assert_eq!(
        line.text,
        format!(
            "refused alice in the account phase: locked until {until} after 3 failures \
             (service={SERVICE} rhost=198.51.100.23 tty=ssh)"
        ),
        "{run}"
    );
}

#[test]
fn a_silent_lock_is_still_logged() {
    let Some(mut log) = syslog() else {
        return;
    };
    let env = PamEnv::builder()
        .user("alice", RIGHT)
        .lockout("silent", "true")
        .build();
    for _ in 0..2 {
        log.login(&env, "alice", WRONG);
    }
    let run = log.login(&env, "alice", WRONG);
    assert!(!run.out.succeeded(), "{run}");
    assert!(
        !run.out.shows("locked"),
        "silent, yet the user is told\n{run}"
    );
    let line = run.one("pam_deadbolt", "locked alice: ");
    assert_authpriv(line, LOG_NOTICE, &run);
    assert!(line.text.contains("after 3 failures"), "{run}");
    assert!(line.text.ends_with(&format!("({})", where_from())), "{run}");
}

#[test]
fn an_exempt_root_reaching_deny_is_logged() {
    let Some(mut log) = syslog() else {
        return;
    };
    let env = PamEnv::builder().root(RIGHT).build();
    for n in 1..=2 {
        let run = log.login(&env, "root", WRONG);
        run.one(
            "pam_deadbolt",
            &format!("failure {n} of 3 for root ({})", where_from()),
        );
    }
    let run = log.login(&env, "root", WRONG);
    assert!(!run.out.succeeded(), "{run}");
    assert_eq!(run.lines_of("pam_deadbolt").len(), 1, "{run}");
    let line = run.one("pam_deadbolt", "root reached 3 failures");
    assert_authpriv(line, LOG_NOTICE, &run);
    assert_eq!(
        line.text,
        format!(
            "root reached 3 failures but is exempt (root or admin_group) ({})",
            where_from()
        ),
        "{run}"
    );
    let run = log.login(&env, "root", RIGHT);
    assert!(run.out.succeeded(), "exempt root refused\n{run}");
}

#[test]
fn a_timed_unlock_is_logged_once() {
    let Some(mut log) = syslog() else {
        return;
    };
    let env = PamEnv::builder()
        .user("alice", RIGHT)
        .lockout("unlock_after", "\"10m\"")
        .build();
    // Three failures 11 minutes ago: the lock they made ran out a minute ago.
    let first = minutes_ago(11);
    env.seed_failures("alice", &failures_at(first, 3));
    let lock_end = Timestamp(first.0 + 2).saturating_add(Duration::from_secs(600));

    // Looking does not log it: only a login sees it.
    let run = log.deadboltctl(&env, None, &["status", "alice"]);
    assert!(run.lines.is_empty(), "{run}");

    let run = log.login(&env, "alice", RIGHT);
    assert!(run.out.succeeded(), "the lock should have run out\n{run}");
    let line = run.one("pam_deadbolt", "timed unlock of alice");
    assert_authpriv(line, LOG_NOTICE, &run);
    assert_eq!(
        line.text,
        format!(
            "timed unlock of alice: the lock ran out at {lock_end}; noticed at the login ({})",
            where_from()
        ),
        "{run}"
    );

    // The next logins do not log it again, whether they succeed or fail.
    let run = log.login(&env, "alice", RIGHT);
    assert!(run.out.succeeded(), "{run}");
    assert!(run.find("pam_deadbolt", "timed unlock").is_empty(), "{run}");
    let run = log.login(&env, "alice", WRONG);
    assert!(!run.out.succeeded(), "{run}");
    assert!(run.find("pam_deadbolt", "timed unlock").is_empty(), "{run}");
    run.one(
        "pam_deadbolt",
        &format!("failure 1 of 3 for alice ({})", where_from()),
    );
}

#[test]
fn administrators_changes_are_logged_with_who_made_them() {
    let Some(mut log) = syslog() else {
        return;
    };
    log.never_log("r00t-Pass-phrase");
    let env = PamEnv::builder()
        .root("r00t-Pass-phrase")
        .user("alice", RIGHT)
        .lockout("unlock_after", "\"never\"")
        .build();
    let by = "by root (uid 0, SUDO_USER=bob, from=192.0.2.9)";

    // One notice from deadboltctl with exactly this text, and nothing else.
    let check = |run: &Run, text: &str| {
        let lines = run.lines_of("deadboltctl");
        assert_eq!(lines.len(), 1, "{run}");
        assert_eq!(lines[0].text, text, "{run}");
        assert_authpriv(lines[0], LOG_NOTICE, run);
        assert_eq!(run.lines.len(), 1, "{run}");
    };

    let run = log.deadboltctl(&env, Some("bob"), &["disable", "alice"]);
    check(&run, &format!("alice disabled {by}"));

    // The refused login says why and where from.
    let run = log.login(&env, "alice", RIGHT);
    assert!(!run.out.succeeded(), "disabled alice let in\n{run}");
    let line = run.one("pam_deadbolt", "refused alice: ");
    assert_eq!(
        line.text,
        format!("refused alice: disabled ({})", where_from()),
        "{run}"
    );
    assert_authpriv(line, LOG_NOTICE, &run);

    // Disabling a disabled account changes nothing and logs nothing.
    let run = log.deadboltctl(&env, Some("bob"), &["disable", "alice"]);
    assert!(run.lines.is_empty(), "{run}");

    let run = log.deadboltctl(&env, Some("bob"), &["enable", "alice"]);
    check(&run, &format!("alice enabled {by}"));
    let run = log.deadboltctl(&env, Some("bob"), &["enable", "alice"]);
    assert!(run.lines.is_empty(), "{run}");

    // Locked until reactivated, then reactivated.
    for _ in 0..3 {
        log.login(&env, "alice", WRONG);
    }
    assert!(env.is_locked("alice"));
    let run = log.deadboltctl(&env, Some("bob"), &["reactivate", "alice"]);
    check(&run, &format!("alice reactivated {by}; 3 failures cleared"));
    assert!(!env.is_locked("alice"));

    // Without sudo: the real user alone.
    let run = log.deadboltctl(&env, None, &["reset-password", "alice"]);
    check(&run, "alice marked for a password change by root (uid 0)");
    let run = log.deadboltctl(&env, None, &["expire", "alice", "--on", "2999-01-01"]);
    check(&run, "alice set to expire on 2999-01-01 by root (uid 0)");
}

#[test]
fn a_password_change_logs_no_password() {
    let Some(mut log) = syslog() else {
        return;
    };
    const INITIAL: &str = "Initial-Pass-1";
    // Refused: 11 characters, 12 required.
    const SHORT: &str = "Tr0ub4dor&3";
    const NEW: &str = "quartz-Nimbus-falcon-Tepid-41";
    for secret in [INITIAL, SHORT, NEW] {
        log.never_log(secret);
    }
    let env = PamEnv::builder()
        .user("alice", INITIAL)
        .stack(Stack::Password)
        .build();
    // pam_matrix's "Old password: ", the refused new password, then the
    // accepted one for deadbolt's two prompts and pam_matrix's two.
    let input = format!("{INITIAL}\n{SHORT}\n{NEW}\n{NEW}\n{NEW}\n{NEW}\n");
    let run = log.pamtester(
        &env,
        &[("rhost", RHOST), ("tty", TTY)],
        "alice",
        &["chauthtok"],
        &input,
    );
    assert!(run.out.succeeded(), "the change failed\n{run}");
    let refused = run.one("pam_deadbolt", "new password for alice refused: ");
    assert_authpriv(refused, LOG_INFO, &run);
    let changed = run.one("pam_deadbolt", "password of alice changed");
    assert_authpriv(changed, LOG_NOTICE, &run);
    assert_eq!(run.lines_of("pam_deadbolt").len(), 2, "{run}");
    assert_eq!(env.history_phc("alice").len(), 1);
}

#[test]
fn an_unusable_config_and_a_bad_argument_are_logged_as_errors() {
    let Some(mut log) = syslog() else {
        return;
    };
    let env = PamEnv::builder().user("alice", RIGHT).build();
    env.write_config("[lockout]\ndeny = \"three\"\n");
    // The compiled defaults' state directory is the system's: the arguments
    // keep the test's.
    let args = format!(
        "@ARGS@ dir={} no_such_argument=1",
        env.state_dir().display()
    );
    env.write_service(Some(&format!(
        "auth     required                @MODULE@ preauth {args}\n\
         auth     [success=1 default=bad] @MATRIX@\n\
         auth     [default=die]           @MODULE@ authfail {args}\n\
         auth     [success=done default=die] @MODULE@ authsucc {args}\n"
    )));
    let run = log.login(&env, "alice", WRONG);
    assert!(!run.out.succeeded(), "{run}");
    let errors: Vec<&Line> = run
        .lines_of("pam_deadbolt")
        .into_iter()
        .filter(|l| l.priority == AUTHPRIV + LOG_ERR)
        .collect();
    let config = env.config_path().display().to_string();
    let bad_file = errors
        .iter()
        .filter(|l| {
            l.text.starts_with(&format!("{config}:2:"))
                && l.text
                    .ends_with("; using the compiled defaults (lockout stays on)")
        })
        .count();
    let bad_arg = errors
        .iter()
        .filter(|l| l.text.starts_with("module argument `no_such_argument=1`"))
        .count();
    assert!(bad_file >= 1, "the bad file is not logged\n{run}");
    assert!(bad_arg >= 1, "the bad argument is not logged\n{run}");
    assert_eq!(bad_file + bad_arg, errors.len(), "other errors\n{run}");
    // The compiled defaults (deny = 3) count the failure.
    run.one(
        "pam_deadbolt",
        &format!("failure 1 of 3 for alice ({})", where_from()),
    );
    // In the test's state directory (deadboltctl refuses the file).
    let state = env.load_state("alice").expect("alice has state");
    assert_eq!(state.failures.len(), 1);
}

#[test]
fn a_stored_password_deadbolt_did_not_judge_is_logged_without_it() {
    let Some(mut log) = syslog() else {
        return;
    };
    const INITIAL: &str = "Initial-Pass-1";
    const JUDGED: &str = "quartz-Nimbus-falcon-Tepid-41";
    const STORED: &str = "Velvet-Compass-Orbit-73";
    for secret in [INITIAL, JUDGED, STORED] {
        log.never_log(secret);
    }
    let env = PamEnv::builder()
        .user("alice", INITIAL)
        .stack(Stack::Password)
        .build();
    // deadbolt approves JUDGED; pam_matrix (no use_authtok) asks again and
    // stores STORED.
    let input = format!("{INITIAL}\n{JUDGED}\n{JUDGED}\n{STORED}\n{STORED}\n");
    let run = log.pamtester(
        &env,
        &[("rhost", RHOST), ("tty", TTY)],
        "alice",
        &["chauthtok"],
        &input,
    );
    assert!(run.out.succeeded(), "the change failed\n{run}");
    assert_eq!(env.passdb_password("alice").as_deref(), Some(STORED));
    let line = run.one("pam_deadbolt", "password of alice changed to one");
    assert_authpriv(line, LOG_ERR, &run);
    assert!(line.text.contains("use_authtok"), "{run}");
}
