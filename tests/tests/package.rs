//! The distribution packages, as a sysadmin meets them (docs/packaging.md).
//!
//! Every test here is `#[ignore]`d: `make test` runs them alone, after the
//! workspace's tests, with `--ignored --test-threads 1`, because the main
//! one installs the .deb on this host and changes its real PAM stack
//! (/etc/pam.d/common-*), which other PAM tests must not meet half-changed.
//!
//! The main test, as root: builds the packages (`make package`), installs
//! the .deb with dpkg, creates a local user with a password, enables the
//! profile with `pam-auth-update --enable deadbolt`, and then, through a
//! service that includes Debian's common-auth, common-account and
//! common-password: three wrong passwords lock the user, the right one is
//! refused, `deadboltctl reactivate` lets him in, and his own `passwd` (on a
//! terminal, under script) refuses a common password through the installed
//! checker and takes a strong one. Removing the package must leave a stack
//! that still checks passwords with pam_unix; purging keeps the state
//! directory unless debconf says otherwise. A guard puts back every system
//! file it touched, even when the test fails midway.
#![forbid(unsafe_code)]

use deadbolt_tests::workspace_dir;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// The exposure `systemd-analyze security --offline=true` gave the shipped
/// unit (docs/packaging.md). A change that weakens the unit raises it.
const MAX_EXPOSURE: f64 = 1.4;

const PACKAGE: &str = "deadbolt";
const USER: &str = "deadbolt-pkgtest";
const SERVICE_FILE: &str = "/etc/pam.d/deadbolt-pkgtest";
const STATE_DIR: &str = "/var/lib/deadbolt";
const CONFIG_DIR: &str = "/etc/deadbolt";
/// This test's own passwords, for a user that exists only while it runs.
const PASSWORD: &str = "Stable-Ledger-Quartz-81";
const NEW_PASSWORD: &str = "Violet-Harbour-Engine-27";
/// Long enough for the rules; on the shipped common-password list, which
/// only the installed checker reads.
const COMMON_PASSWORD: &str = "qwerty123456";

/// What pam-auth-update manages, saved before the test and put back after.
const SYSTEM_FILES: &[&str] = &[
    "/etc/pam.d/common-auth",
    "/etc/pam.d/common-account",
    "/etc/pam.d/common-password",
    "/etc/pam.d/common-session",
    "/etc/pam.d/common-session-noninteractive",
    "/var/lib/pam/seen",
    "/var/lib/pam/auth",
    "/var/lib/pam/account",
    "/var/lib/pam/password",
    "/var/lib/pam/session",
    "/var/lib/pam/session-noninteractive",
];

/// Installed at the same path by the .deb and the .rpm: where the
/// configuration's defaults and the man pages look for them.
const SHARED_PATHS: &[&str] = &[
    "/usr/sbin/deadboltctl",
    "/usr/sbin/deadbolt-syncd",
    "/usr/libexec/deadbolt/deadbolt-pwcheck",
    "/usr/share/deadbolt/common-passwords.txt",
    "/etc/deadbolt/deadbolt.toml",
    "/usr/share/deadbolt/ldap/deadbolt.ldif",
    "/usr/share/deadbolt/ldap/deadbolt.schema",
    "/usr/share/doc/deadbolt/examples/acl.ldif",
];
const MAN_PAGES: &[&str] = &[
    "/usr/share/man/man8/pam_deadbolt.8",
    "/usr/share/man/man5/deadbolt.toml.5",
    "/usr/share/man/man8/deadboltctl.8",
    "/usr/share/man/man8/deadbolt-syncd.8",
];

/// Panics naming each of `expected` missing from a listing of paths.
fn assert_lists(what: &str, listing: &str, expected: impl IntoIterator<Item = String>) {
    let missing: Vec<String> = expected
        .into_iter()
        .filter(|path| !listing.lines().any(|l| l == path))
        .collect();
    assert!(
        missing.is_empty(),
        "{what} lacks {missing:?}; it has:\n{listing}"
    );
}

fn package_dir() -> PathBuf {
    workspace_dir().join("target/package")
}

/// `make package`, once per test binary; the path of the file it made
/// whose name ends with `suffix`.
fn built_package(suffix: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = Command::new("make")
            .arg("package")
            .current_dir(workspace_dir())
            .output()
            .map_err(|e| format!("run make: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "make package failed ({}):\n{}\n{}",
                out.status,
                tail(&out.stdout),
                tail(&out.stderr)
            ))
        }
    });
    if let Err(why) = built {
        panic!("{why}");
    }
    let found: Vec<PathBuf> = fs::read_dir(package_dir())
        .expect("make package made target/package")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one *{suffix} in target/package: {found:?}"
    );
    found[0].clone()
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a command, feeding `input` on stdin (passwords go there, never in
/// arguments), non-interactive for debconf. One that has not finished within
/// five minutes is killed and fails the test, so the guard still cleans up.
fn run(program: &str, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    // A program that exits before reading all of it is judged by its output.
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the command") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{program} {args:?} did not finish within 300 s; it printed:\n{}{}",
                // Whatever it started may still hold the pipes open.
                String::from_utf8_lossy(
                    &stdout
                        .recv_timeout(Duration::from_secs(1))
                        .unwrap_or_default()
                ),
                String::from_utf8_lossy(
                    &stderr
                        .recv_timeout(Duration::from_secs(1))
                        .unwrap_or_default()
                )
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.recv().unwrap_or_default(),
        stderr: stderr.recv().unwrap_or_default(),
    }
}

/// Reads a pipe to its end on a thread of its own, so that a full pipe
/// never stalls the program writing to it.
fn drain(mut pipe: impl Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut all = Vec::new();
        let _ = pipe.read_to_end(&mut all);
        let _ = tx.send(all);
    });
    rx
}

fn run_ok(program: &str, args: &[&str], input: &str) -> String {
    let out = run(program, args, input);
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{}",
        out.status,
        text(&out)
    );
    text(&out)
}

/// A deadboltctl command that prints JSON on stdout.
fn ctl_json(args: &[&str]) -> serde_json::Value {
    let out = run("/usr/sbin/deadboltctl", args, "");
    assert!(
        out.status.success(),
        "deadboltctl {args:?} failed ({}):\n{}",
        out.status,
        text(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "deadboltctl {args:?} printed no JSON ({e}):\n{}",
            text(&out)
        )
    })
}

/// One login through the test's service: authenticate, then the account
/// phase, each pamtester run a process of its own, as each login is.
fn login(password: &str) -> Output {
    run(
        "pamtester",
        &["-v", "deadbolt-pkgtest", USER, "authenticate", "acct_mgmt"],
        &format!("{password}\n"),
    )
}

fn logged_in(out: &Output) -> bool {
    out.status.success() && text(out).contains("successfully authenticated")
}

fn package_status() -> String {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Status}", PACKAGE])
        .output()
        .expect("run dpkg-query");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn user_exists() -> bool {
    Command::new("id")
        .arg(USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run id")
        .success()
}

/// The lines of a PAM file that are not comments, whitespace collapsed.
fn stack(path: &str) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

fn position(lines: &[String], needle: &str, path: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{path} has no line with {needle:?}:\n{}", lines.join("\n")))
}

fn mentions_deadbolt(path: &str) -> bool {
    stack(path).iter().any(|l| l.contains("pam_deadbolt"))
}

/// Everything this test changes on the host, undone when dropped, on
/// success or panic alike: the package purged (its prerm rewrites common-*,
/// so the saved files go back after it), pam-auth-update's files restored,
/// the user, the service file, the state and the configuration removed.
struct HostChanges {
    saved: Vec<(PathBuf, Option<Vec<u8>>)>,
}

impl HostChanges {
    /// Refuses to start on a host where undoing would destroy something
    /// that was there before.
    fn begin() -> HostChanges {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the package test installs a .deb and changes /etc/pam.d: run it as root \
             (make test does, on CI)"
        );
        for program in ["dpkg", "pam-auth-update", "pamtester", "script", "useradd"] {
            assert!(
                Command::new("sh")
                    .args(["-c", &format!("command -v {program}")])
                    .stdout(Stdio::null())
                    .status()
                    .expect("run sh")
                    .success(),
                "{program} is missing: run scripts/setup-deps --package"
            );
        }
        let status = package_status();
        assert!(
            status.is_empty() || status == "not-installed",
            "{PACKAGE} is already on this host ({status}); the test would purge it: \
             remove it first"
        );
        for path in [STATE_DIR, CONFIG_DIR, SERVICE_FILE] {
            assert!(
                !Path::new(path).exists(),
                "{path} exists; the test would remove it: move it away first"
            );
        }
        assert!(
            !user_exists(),
            "a user {USER} exists; the test would remove it"
        );
        let saved = SYSTEM_FILES
            .iter()
            .map(|p| (PathBuf::from(p), fs::read(p).ok()))
            .collect();
        HostChanges { saved }
    }
}

impl Drop for HostChanges {
    fn drop(&mut self) {
        let status = package_status();
        if !status.is_empty() && status != "not-installed" {
            let out = run("dpkg", &["--purge", PACKAGE], "");
            if !out.status.success() {
                eprintln!("cleanup: dpkg --purge failed:\n{}", text(&out));
                let out = run("dpkg", &["--purge", "--force-all", PACKAGE], "");
                if !out.status.success() {
                    eprintln!("cleanup: dpkg --purge --force-all failed:\n{}", text(&out));
                }
            }
        }
        // What debconf holds for the package (a preseed) goes with it.
        let _ = run("debconf-communicate", &[PACKAGE], "PURGE\n");
        for (path, content) in &self.saved {
            let result = match content {
                Some(bytes) => fs::write(path, bytes),
                None => fs::remove_file(path).or_else(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => Ok(()),
                    _ => Err(e),
                }),
            };
            if let Err(e) = result {
                eprintln!("cleanup: restore {}: {e}", path.display());
            }
        }
        if user_exists() {
            // --force: a passwd the test abandoned may still be exiting.
            let out = run("userdel", &["--remove", "--force", USER], "");
            if !out.status.success() {
                eprintln!("cleanup: userdel failed:\n{}", text(&out));
            }
        }
        let _ = fs::remove_file(SERVICE_FILE);
        for dir in [STATE_DIR, CONFIG_DIR] {
            if Path::new(dir).exists() {
                if let Err(e) = fs::remove_dir_all(dir) {
                    eprintln!("cleanup: remove {dir}: {e}");
                }
            }
        }
        for path in ["/etc/pam.d/common-auth", "/etc/pam.d/common-password"] {
            if Path::new(path).exists() && mentions_deadbolt(path) {
                eprintln!("cleanup: {path} still names pam_deadbolt");
            }
        }
    }
}

/// A program on a terminal of its own (util-linux `script`), answered
/// prompt by prompt: libpam turns echo off with TCSAFLUSH, which throws
/// away anything typed ahead.
struct Terminal {
    child: Child,
    input: ChildStdin,
    output: Receiver<Vec<u8>>,
    seen: String,
    read_up_to: usize,
}

impl Drop for Terminal {
    /// A test that fails at a prompt leaves no program behind: without
    /// script, the terminal closes and what runs on it gets SIGHUP.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Terminal {
    fn start(command_line: &str) -> Terminal {
        let mut child = Command::new("script")
            .args(["-qefc", command_line, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start script");
        let input = child.stdin.take().expect("piped stdin");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let (tx, output) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal {
            child,
            input,
            output,
            seen: String::new(),
            read_up_to: 0,
        }
    }

    /// Waits until `text` appears after what was already matched.
    fn expect(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(at) = self.seen[self.read_up_to..].find(text) {
                self.read_up_to += at + text.len();
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(chunk) => self.seen.push_str(&String::from_utf8_lossy(&chunk)),
                Err(_) => panic!(
                    "waited for {text:?} on the terminal; it showed:\n{}",
                    self.seen
                ),
            }
        }
    }

    fn answer(&mut self, line: &str) {
        self.input
            .write_all(format!("{line}\n").as_bytes())
            .expect("type on the terminal");
    }

    /// The exit status and all the terminal showed.
    fn finish(mut self) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for script") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the terminal program did not exit; it showed:\n{}",
                self.seen
            );
            while let Ok(chunk) = self.output.recv_timeout(Duration::from_millis(100)) {
                self.seen.push_str(&String::from_utf8_lossy(&chunk));
            }
        };
        while let Ok(chunk) = self.output.recv_timeout(Duration::from_secs(1)) {
            self.seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        (status, std::mem::take(&mut self.seen))
    }
}

#[test]
#[ignore = "as root, installs the .deb on this host: make test runs it alone"]
fn the_deb_locks_a_real_user_through_debians_common_stacks_and_leaves_them_working() {
    let _host = HostChanges::begin();
    let deb = built_package(".deb");
    let deb = deb.to_str().expect("a UTF-8 path");

    // Installed: the files where the configuration's defaults expect them,
    // the state directory root's alone, the unit not enabled, and only the
    // inert history profile turned on.
    run_ok("dpkg", &["-i", deb], "");
    let listed = run_ok("dpkg", &["-L", PACKAGE], "");
    let deb_only = [
        "/usr/lib/x86_64-linux-gnu/security/pam_deadbolt.so",
        "/usr/lib/x86_64-linux-gnu/security/pam_deadbolt_password.so",
        "/usr/share/pam-configs/deadbolt",
        "/usr/share/pam-configs/deadbolt-history",
        "/usr/lib/systemd/system/deadbolt-syncd.service",
    ];
    assert_lists(
        "the .deb",
        &listed,
        SHARED_PATHS
            .iter()
            .chain(&deb_only)
            .map(|p| p.to_string())
            .chain(MAN_PAGES.iter().map(|p| format!("{p}.gz"))),
    );
    let conffiles = fs::read_to_string("/var/lib/dpkg/info/deadbolt.conffiles")
        .expect("the package has conffiles");
    assert!(conffiles
        .lines()
        .any(|l| l == "/etc/deadbolt/deadbolt.toml"));
    let state = fs::symlink_metadata(STATE_DIR).expect("postinst made the state directory");
    assert!(state.is_dir());
    assert_eq!(state.permissions().mode() & 0o7777, 0o700);
    assert_eq!((state.uid(), state.gid()), (0, 0));
    assert!(
        !Path::new("/etc/systemd/system/multi-user.target.wants/deadbolt-syncd.service").exists(),
        "the unit must not be enabled before a directory is configured"
    );
    let check = run(
        "/usr/sbin/deadbolt-syncd",
        &["--config", "/etc/deadbolt/deadbolt.toml", "--check"],
        "",
    );
    assert_eq!(
        check.status.code(),
        Some(2),
        "the unit's ExecStartPre must refuse a configuration without [directory]:\n{}",
        text(&check)
    );
    // The shipped file's checker and list are where the package put them,
    // and root's alone: no warning, nothing unsafe.
    let checked = ctl_json(&["check-config", "/etc/deadbolt/deadbolt.toml", "--json"]);
    assert_eq!(checked["ok"], true, "{checked}");
    assert_eq!(checked["warnings"], serde_json::json!([]), "{checked}");
    assert!(
        !mentions_deadbolt("/etc/pam.d/common-auth")
            && !mentions_deadbolt("/etc/pam.d/common-account"),
        "installing must not turn deadbolt on"
    );
    // The inert history profile is on from the start, so enabling deadbolt
    // is one step.
    position(
        &stack("/etc/pam.d/common-password"),
        "pam_deadbolt.so commit",
        "common-password",
    );

    run_ok(
        "useradd",
        &["--create-home", "--shell", "/bin/sh", USER],
        "",
    );
    run_ok("chpasswd", &[], &format!("{USER}:{PASSWORD}\n"));
    fs::write(
        SERVICE_FILE,
        "@include common-auth\n@include common-account\n@include common-password\n",
    )
    .expect("write the test's PAM service");
    assert!(
        logged_in(&login(PASSWORD)),
        "pam_unix alone lets the user in"
    );

    run_ok("pam-auth-update", &["--enable", PACKAGE], "");
    let auth = stack("/etc/pam.d/common-auth");
    assert!(
        position(&auth, "pam_deadbolt.so preauth", "common-auth")
            < position(&auth, "pam_unix.so", "common-auth")
    );
    position(
        &stack("/etc/pam.d/common-account"),
        "pam_deadbolt.so",
        "common-account",
    );
    let password = stack("/etc/pam.d/common-password");
    let judge = position(&password, "requisite pam_deadbolt.so", "common-password");
    let unix = position(&password, "pam_unix.so", "common-password");
    let permit = position(&password, "pam_permit.so", "common-password");
    let commit = position(&password, "pam_deadbolt.so commit", "common-password");
    assert!(
        judge < unix && unix < permit && permit < commit,
        "common-password:\n{}",
        password.join("\n")
    );
    assert!(password[unix].contains("use_authtok"), "{}", password[unix]);

    // 1. Three wrong passwords lock the user.
    for attempt in 1..=3 {
        let out = login("not-the-password");
        assert!(!logged_in(&out), "wrong password {attempt} let the user in");
    }
    // 2. The right one is refused, and the user is told why.
    let out = login(PASSWORD);
    assert!(!logged_in(&out), "a locked user got in:\n{}", text(&out));
    assert!(
        text(&out).contains("The account is locked after 3 failed logins"),
        "{}",
        text(&out)
    );
    let status = ctl_json(&["status", USER, "--json"]);
    assert_eq!(status["locked"], true, "{status}");

    // 3. Reactivated, he gets in.
    run_ok("/usr/sbin/deadboltctl", &["reactivate", USER], "");
    let out = login(PASSWORD);
    assert!(
        logged_in(&out),
        "reactivated, the user is refused:\n{}",
        text(&out)
    );

    // 4. His own passwd: the installed checker refuses a common password,
    // and a strong one is stored by pam_unix.
    let mut terminal = Terminal::start(&format!("runuser -u {USER} -- passwd"));
    terminal.expect("Current password: ");
    terminal.answer(PASSWORD);
    // Judged as soon as it is typed, before it is asked again.
    terminal.expect("New password: ");
    terminal.answer(COMMON_PASSWORD);
    terminal.expect("BAD PASSWORD: it is one of the most commonly used passwords.");
    terminal.expect("New password: ");
    terminal.answer(NEW_PASSWORD);
    terminal.expect("Retype new password: ");
    terminal.answer(NEW_PASSWORD);
    let (exit, shown) = terminal.finish();
    assert!(
        exit.success() && shown.contains("password updated successfully"),
        "passwd ({exit}):\n{shown}"
    );
    assert!(!shown.contains(NEW_PASSWORD) && !shown.contains(PASSWORD));
    assert!(logged_in(&login(NEW_PASSWORD)), "the new password works");
    assert!(!logged_in(&login(PASSWORD)), "the old password is gone");
    let status = ctl_json(&["status", USER, "--json"]);
    assert_eq!(
        status["history_entries"], 1,
        "commit recorded the change: {status}"
    );

    // Removed: the same service authenticates through pam_unix alone, and
    // still refuses a wrong password.
    let removed = run_ok("dpkg", &["--remove", PACKAGE], "");
    for path in SYSTEM_FILES.iter().filter(|p| p.starts_with("/etc/pam.d/")) {
        assert!(
            !Path::new(path).exists() || !mentions_deadbolt(path),
            "{path} still names pam_deadbolt after removal:\n{removed}"
        );
    }
    assert!(
        logged_in(&login(NEW_PASSWORD)),
        "after removal the user cannot log in"
    );
    assert!(
        !logged_in(&login("not-the-password")),
        "after removal a wrong password is accepted"
    );

    // Purged without a word from debconf: the state stays, and it says where.
    let purged = run_ok("dpkg", &["--purge", PACKAGE], "");
    assert!(
        Path::new(STATE_DIR).is_dir(),
        "purge removed the state unasked"
    );
    assert!(
        purged.contains("kept") && purged.contains(STATE_DIR),
        "purge does not say where the state is:\n{purged}"
    );
    assert!(!Path::new("/etc/deadbolt/deadbolt.toml").exists());

    // Purged when debconf says so: the state goes.
    run_ok(
        "debconf-set-selections",
        &[],
        "deadbolt deadbolt/purge-state boolean true\n",
    );
    run_ok("dpkg", &["-i", deb], "");
    run_ok("dpkg", &["--purge", PACKAGE], "");
    assert!(
        !Path::new(STATE_DIR).exists(),
        "purge kept the state though debconf said to remove it"
    );
}

#[test]
#[ignore = "builds the packages (make package) and needs rpm: make test runs it"]
fn the_rpm_carries_the_same_files_in_red_hat_paths() {
    let rpm = built_package(".rpm");
    let listed = run_ok("rpm", &["-qlp", rpm.to_str().expect("UTF-8 path")], "");
    let rpm_only = [
        "/usr/lib64/security/pam_deadbolt.so",
        "/usr/lib64/security/pam_deadbolt_password.so",
        "/usr/share/licenses/deadbolt/LICENSE-django",
        "/usr/lib/systemd/system/deadbolt-syncd.service",
    ];
    assert_lists(
        "the .rpm",
        &listed,
        SHARED_PATHS
            .iter()
            .chain(&rpm_only)
            .chain(MAN_PAGES)
            .map(|p| p.to_string()),
    );
    // cargo-generate-rpm takes a script path it cannot find as the script's
    // text: the scripts must be the files' contents.
    let scripts = run_ok(
        "rpm",
        &["-qp", "--scripts", rpm.to_str().expect("UTF-8 path")],
        "",
    );
    for expected in [
        "postinstall scriptlet",
        "install -d -m 0700 -o root -g root /var/lib/deadbolt",
        "preuninstall scriptlet",
        "postuninstall scriptlet",
        "kept the state in /var/lib/deadbolt",
    ] {
        assert!(
            scripts.contains(expected),
            "the .rpm's scripts lack {expected:?}:\n{scripts}"
        );
    }
    let config = run_ok("rpm", &["-qcp", rpm.to_str().expect("UTF-8 path")], "");
    assert!(
        config.lines().any(|l| l == "/etc/deadbolt/deadbolt.toml"),
        "the configuration is not marked %config:\n{config}"
    );
}

#[test]
#[ignore = "needs systemd-analyze (scripts/setup-deps --package): make test runs it"]
fn the_unit_keeps_its_hardening() {
    let unit = workspace_dir().join("packaging/systemd/deadbolt-syncd.service");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(&unit)
        .output()
        .expect("run systemd-analyze (scripts/setup-deps --package installs it)");
    let shown = text(&out);
    let exposure: f64 = shown
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for deadbolt-syncd.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{shown}"));
    assert!(
        exposure <= MAX_EXPOSURE,
        "the unit's exposure rose to {exposure} (at most {MAX_EXPOSURE}):\n{shown}"
    );
    for setting in [
        "Type=notify",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "StateDirectory=deadbolt",
        "RuntimeDirectory=deadbolt-syncd",
    ] {
        let content = fs::read_to_string(&unit).expect("read the unit");
        assert!(
            content.lines().any(|l| l == setting),
            "the unit lost {setting}"
        );
    }
}
