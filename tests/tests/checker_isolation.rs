//! What the strength checker, run as root from a setuid `passwd`, may
//! reach: no descriptor of the host program but its standard input (the
//! password), output (the verdict) and error; and nothing that someone
//! other than root could have written. A checker, a directory above it or
//! a list that another user could change is refused before the new password
//! is asked for, and the checker is not run. `deadboltctl check-config`
//! says so too.
//!
//! The checkers are small shell scripts in directories of their own. They
//! run with an empty environment, so they name every program by its path.

use deadbolt_tests::{toml_string, Outcome, PamEnv, PamEnvBuilder, Stack, MSG_CHAUTHTOK_OK};
use nix::fcntl::{fcntl, FcntlArg};
use std::fs;
use std::os::unix::fs::{chown, symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// alice's password in pam_matrix's file before any change.
const INITIAL: &str = "Initial-Pass-1";
/// A strong password (zxcvbn 4) with nothing of alice in it.
const A: &str = "quartz-Nimbus-falcon-Tepid-41";
/// An accepting verdict, as deadbolt-pwcheck writes it.
const ACCEPTED: &str = r#"{"accepted":true,"score":4,"reasons":[],"list_problems":[]}"#;
/// What the user is told when the checker or a list is not safe to use.
const MSG_UNTRUSTED: &str = "The password cannot be changed: the strength checker or a list it \
                             reads is not safe to use; ask an administrator.";
/// An ordinary user's uid (nobody's).
const NOBODY: u32 = 65534;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn alice() -> PamEnvBuilder {
    PamEnv::builder()
        .user("alice", INITIAL)
        .stack(Stack::Password)
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A checker in a root-owned 0755 directory of its own: a root-owned 0755
/// script that runs `record` (with `$RAN` naming a file in that
/// directory), reads the password and accepts it.
struct Checker {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl Checker {
    fn new(record: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("deadbolt-checker.")
            .tempdir()
            .expect("create a directory for the checker");
        chmod(dir.path(), 0o755);
        let path = dir.path().join("checker");
        let ran = dir.path().join("ran");
        fs::write(
            &path,
            format!(
                "#!/bin/sh\nRAN='{}'\n{record}\n/bin/cat >/dev/null\necho '{ACCEPTED}'\n",
                ran.display()
            ),
        )
        .expect("write the checker");
        chmod(&path, 0o755);
        Checker { dir, path }
    }

    /// One that only leaves a mark that it ran.
    fn marking() -> Self {
        Checker::new("/bin/touch \"$RAN\"")
    }

    fn ran(&self) -> bool {
        self.dir.path().join("ran").exists()
    }

    fn record(&self) -> String {
        fs::read_to_string(self.dir.path().join("ran")).unwrap_or_default()
    }
}

fn toml_path(path: &Path) -> String {
    toml_string(&path.to_string_lossy())
}

fn change(env: &PamEnv) -> Outcome {
    let out = env.change_password("alice", INITIAL, &[A]);
    out.assert_exited_normally();
    out
}

fn assert_changed(env: &PamEnv, out: &Outcome) {
    assert!(out.succeeded(), "the change failed\n{out}");
    assert!(out.shows(MSG_CHAUTHTOK_OK), "{out}");
    assert_eq!(env.passdb_password("alice").as_deref(), Some(A));
}

/// Refused as not safe, before the checker ran and with nothing stored.
fn assert_refused_untrusted(what: &str, env: &PamEnv, checker: &Checker, out: &Outcome) {
    assert!(!out.succeeded(), "{what}: the change succeeded\n{out}");
    assert!(out.shows(MSG_UNTRUSTED), "{what}\n{out}");
    assert!(!checker.ran(), "{what}: the checker ran\n{out}");
    assert_eq!(
        env.passdb_password("alice").as_deref(),
        Some(INITIAL),
        "{what}"
    );
    assert!(
        env.load_state("alice").is_none(),
        "{what}: a change was recorded"
    );
}

/// A file of this test process that every program it starts inherits (no
/// close-on-exec), as a careless host program's socket or log would be;
/// numbered 100 or more so it takes no descriptor the tests use. Its name
/// is what the checker must not see. Opened once and never closed.
fn inherited_file() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let path =
            std::env::temp_dir().join(format!("deadbolt-host-descriptor.{}", std::process::id()));
        fs::write(&path, "").expect("write the host's file");
        let file = fs::File::open(&path).expect("open the host's file");
        // The duplicate has no close-on-exec; it stays open in this
        // process to its end (only its number is kept).
        fcntl(&file, FcntlArg::F_DUPFD(100)).expect("F_DUPFD");
        path
    })
}

/// Where the descriptors of the shell running the script point (`ls -l`
/// of its /proc fd directory), into `$RAN`.
const RECORD_FDS: &str = "/bin/ls -l /proc/$$/fd/ > \"$RAN\"";

#[test]
fn the_checker_gets_none_of_the_hosts_descriptors() {
    if !is_root() {
        eprintln!("skipped: needs root (files owned by root)");
        return;
    }
    let inherited = inherited_file().to_string_lossy().into_owned();
    let checker = Checker::new(RECORD_FDS);

    // The premise: run straight from this process, the same script sees
    // the file (and so would pamtester, and so would the checker it
    // starts, unless the module closes it).
    // Another test thread forking while the script was being written may
    // hold it open for writing until its child execs: ETXTBSY, briefly.
    let direct = loop {
        match Command::new(&checker.path)
            .stdin(std::process::Stdio::null())
            .output()
        {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => continue,
            other => break other.expect("run the checker"),
        }
    };
    assert!(direct.status.success(), "{direct:?}");
    assert!(
        checker.record().contains(&inherited),
        "the test's premise: the script inherits the file\n{}",
        checker.record()
    );
    fs::remove_file(checker.dir.path().join("ran")).unwrap();

    let env = alice()
        .password("checker", &toml_path(&checker.path))
        .build();
    let out = change(&env);
    assert_changed(&env, &out);
    let seen = checker.record();
    assert!(checker.ran(), "the checker did not run\n{out}");
    assert!(
        !seen.contains(&inherited),
        "the checker inherited the host's file:\n{seen}"
    );
    // Its own are there: the password socket and /dev/null. (Standard
    // output is the record file while `ls` runs, the shell having moved
    // the verdict pipe aside.)
    for (fd, target) in [("0", "socket:"), ("2", "/dev/null")] {
        assert!(
            seen.lines()
                .any(|l| l.contains(&format!(" {fd} -> {target}"))),
            "descriptor {fd} is not {target}\n{seen}"
        );
    }
}

#[test]
fn a_checker_others_can_write_is_not_run() {
    if !is_root() {
        eprintln!("skipped: needs root (files owned by root)");
        return;
    }
    let checker = Checker::marking();
    let env = alice()
        .password("checker", &toml_path(&checker.path))
        .build();

    // The control: as installed, it runs and the change goes through.
    let out = change(&env);
    assert_changed(&env, &out);
    assert!(checker.ran(), "{out}");
    fs::remove_file(checker.dir.path().join("ran")).unwrap();
    // A fresh world, alice's password as it was.
    let env = alice()
        .password("checker", &toml_path(&checker.path))
        .build();

    // 0777: anyone could put his own code there, to run as root.
    chmod(&checker.path, 0o777);
    let out = change(&env);
    assert_refused_untrusted("a 0777 checker", &env, &checker, &out);

    // Root's and 0755, but owned by an ordinary user.
    chmod(&checker.path, 0o755);
    chown(&checker.path, Some(NOBODY), None).unwrap();
    let out = change(&env);
    assert_refused_untrusted("a checker owned by nobody", &env, &checker, &out);
}

#[test]
fn a_checker_in_a_directory_others_can_write_is_not_run() {
    if !is_root() {
        eprintln!("skipped: needs root (files owned by root)");
        return;
    }
    let checker = Checker::marking();
    let env = alice()
        .password("checker", &toml_path(&checker.path))
        .build();
    // The script itself is root's and 0755, but its directory is open.
    chmod(checker.dir.path(), 0o777);
    let out = change(&env);
    assert_refused_untrusted("a 0777 directory", &env, &checker, &out);

    // A link to it from a safe place does not help: where it leads counts.
    let safe = tempfile::Builder::new()
        .prefix("deadbolt-checker-link.")
        .tempdir()
        .unwrap();
    chmod(safe.path(), 0o755);
    let link = safe.path().join("checker");
    symlink(&checker.path, &link).unwrap();
    let env = alice().password("checker", &toml_path(&link)).build();
    let out = change(&env);
    assert_refused_untrusted("a link into a 0777 directory", &env, &checker, &out);

    // Once the directory is root's alone again, the link is followed.
    chmod(checker.dir.path(), 0o755);
    let out = change(&env);
    assert_changed(&env, &out);
    assert!(checker.ran(), "{out}");
}

#[test]
fn a_list_others_can_write_refuses_the_change() {
    if !is_root() {
        eprintln!("skipped: needs root (files owned by root)");
        return;
    }
    let checker = Checker::marking();
    let list = checker.dir.path().join("site-list.txt");
    fs::write(&list, "banned\n").unwrap();
    chmod(&list, 0o644);
    chown(&list, Some(NOBODY), None).unwrap();
    let env = alice()
        .password("checker", &toml_path(&checker.path))
        .password("lists", &format!("[{}]", toml_path(&list)))
        .build();
    let out = change(&env);
    assert_refused_untrusted("a list owned by nobody", &env, &checker, &out);

    // Root's again: the change goes through.
    chown(&list, Some(0), None).unwrap();
    let out = change(&env);
    assert_changed(&env, &out);
    assert!(checker.ran(), "{out}");
}

#[test]
fn check_config_says_an_untrusted_checker_or_list_is_an_error() {
    if !is_root() {
        eprintln!("skipped: needs root (files owned by root)");
        return;
    }
    let checker = Checker::marking();
    let list = checker.dir.path().join("site-list.txt");
    fs::write(&list, "banned\n").unwrap();
    chmod(&list, 0o644);
    let env = alice()
        .password("checker", &toml_path(&checker.path))
        .password("lists", &format!("[{}]", toml_path(&list)))
        .build();
    let out = env.deadboltctl(&["check-config"]);
    assert!(out.succeeded(), "{out}");

    chmod(&checker.path, 0o775);
    chmod(&list, 0o666);
    let out = env.deadboltctl(&["check-config"]);
    assert_eq!(out.code(), Some(1), "{out}");
    let config = env.config_path().display().to_string();
    assert!(
        out.stdout.starts_with(&format!("{config}: NOT SAFE\n")),
        "{out}"
    );
    let checker_error = format!(
        "deadboltctl: error: checker {0} is not safe to run as root: {0}: writable by its \
         group (mode 0775); every password change is refused",
        checker.path.display()
    );
    assert!(out.stderr.contains(&checker_error), "{out}");
    assert!(
        out.stderr.contains(&format!(
            "deadboltctl: error: list {0} is not safe to read: {0}: writable by group and \
             others (mode 0666)",
            list.display()
        )),
        "{out}"
    );

    let out = env.deadboltctl(&["check-config", "--json"]);
    assert_eq!(out.code(), Some(1), "{out}");
    let value: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(value["ok"], false);
    assert_eq!(value["errors"].as_array().map(Vec::len), Some(2), "{value}");

    // The configuration file itself, writable by others.
    chmod(&checker.path, 0o755);
    chmod(&list, 0o644);
    chmod(env.config_path(), 0o666);
    let out = env.deadboltctl(&["check-config", "--json"]);
    assert_eq!(out.code(), Some(1), "{out}");
    let value: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(
        value["errors"][0],
        format!(
            "{config} is not safe to use: someone other than root could have written it: \
             {config}: writable by group and others (mode 0666)"
        )
    );
}
