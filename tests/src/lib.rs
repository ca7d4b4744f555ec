//! Test harness for deadbolt's integration tests.
//!
//! Nothing is mocked: every test drives the built `libpam_deadbolt.so` through
//! the real libpam with `pamtester`, and the built `deadboltctl`, inside a
//! throwaway directory:
//!
//! - a pam_wrapper service directory (an empty `other` and one service file
//!   whose lines name the modules by absolute path);
//! - nss_wrapper `passwd` and `group` files, so root exemption, `admin_group`
//!   and per-group policies see the test's users and groups;
//! - a pam_matrix password file (`user:password:service`), pam_matrix standing
//!   in for pam_unix;
//! - a state directory (0700) and a `deadbolt.toml`, whose `[password]`
//!   names the built strength checker and the shipped common-password list,
//!   with cheap argon2 parameters so history tests stay fast.
//!
//! [`Stack`] picks the service file: the login stack of docs/reference.md, or
//! a password stack for `chauthtok` (see [`PamEnv::change_password`]).
//!
//! The workspace must be built first (`cargo build --workspace`): `cargo test`
//! does not build a cdylib.
//!
//! Note on pam_matrix: after checking a password it zeroes the `PAM_AUTHTOK`
//! item in place, so the module after it sees a token that is present but
//! empty. A password that was typed (even wrongly) leaves a non-null token; an
//! aborted conversation leaves none. The same holds for `PAM_OLDAUTHTOK` in
//! the password phase: pam_matrix asks "Old password: " in the preliminary
//! pass, checks it and zeroes it, so the modules after it see an empty old
//! password. In the update pass it ignores the `PAM_AUTHTOK` an earlier
//! module set and asks "New Password :" and "Verify New Password :" itself,
//! stores that answer as `PAM_AUTHTOK` and writes it to its password file
//! (when the two answers differ, Debian's pam_matrix 1.1.4 crashes).
#![forbid(unsafe_code)]

use deadbolt_core::store::Loaded;
use deadbolt_core::{Failure, StateStore, Timestamp, UserName, UserState};
use nix::fcntl::{Flock, FlockArg};
use std::fmt;
use std::fs;
use std::io::Write;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

pub mod crash;
pub mod fake_ldap;
pub mod fleet;
pub mod kdc;
pub mod slapd;
pub mod smtp;

/// The PAM service name the harness configures.
pub const SERVICE: &str = "deadbolt-test";

/// The message shown for an account disabled by an administrator.
pub const MSG_DISABLED: &str = "The account is disabled: ask your manager or an administrator.";

/// The start of the message for a timed lock after `n` failures
/// (the rest says in how many minutes it unlocks).
pub fn msg_timed_lock_prefix(n: u32) -> String {
    format!("The account is locked after {n} failed logins; it unlocks in ")
}

/// The message for a lock that lasts until an administrator reactivates.
pub fn msg_until_reactivated(n: u32) -> String {
    format!(
        "The account is locked after {n} failed logins until it is reactivated: \
         ask your manager or an administrator."
    )
}

/// pam_strerror(PAM_MAXTRIES), as pamtester prints it: a password change
/// that used up its `retry` tries.
pub const MSG_MAXTRIES: &str = "Have exhausted maximum number of retries for service";

/// pam_strerror(PAM_NEW_AUTHTOK_REQD), as pamtester prints it.
pub const MSG_NEW_AUTHTOK_REQD: &str = "Authentication token is no longer valid; new one required";

/// pam_strerror(PAM_ACCT_EXPIRED), as pamtester prints it.
pub const MSG_ACCT_EXPIRED: &str = "User account has expired";

/// What pamtester prints after a successful `chauthtok`.
pub const MSG_CHAUTHTOK_OK: &str = "authentication token altered successfully";

/// A time `days` days before now.
pub fn days_ago(days: u64) -> Timestamp {
    Timestamp::now().saturating_sub(Duration::from_secs(days * 86_400))
}

/// A time `minutes` minutes before now.
pub fn minutes_ago(minutes: u64) -> Timestamp {
    Timestamp::now().saturating_sub(Duration::from_secs(minutes * 60))
}

/// `n` failure times one microsecond apart, the first at `first`.
pub fn failures_at(first: Timestamp, n: usize) -> Vec<Timestamp> {
    (0..n as i64).map(|i| Timestamp(first.0 + i)).collect()
}

/// The workspace root (the parent of this crate).
pub fn workspace_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .expect("the tests crate lives inside the workspace")
        .to_path_buf()
}

/// Cargo's target directory (`CARGO_TARGET_DIR` when set).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_dir().join(dir),
        _ => workspace_dir().join("target"),
    }
}

/// A binary or library of the workspace's debug build; panics with what to
/// do when it was not built.
pub fn built_path(name: &str) -> PathBuf {
    built(name)
}

fn built(name: &str) -> PathBuf {
    let path = target_dir().join("debug").join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the workspace first (cargo build --workspace)",
        path.display()
    );
    path
}

/// The built PAM module.
pub fn module_path() -> PathBuf {
    built("libpam_deadbolt.so")
}

/// The built administrator's command.
pub fn deadboltctl_path() -> PathBuf {
    built("deadboltctl")
}

/// The built strength checker (`[password] checker`).
pub fn pwcheck_path() -> PathBuf {
    built("deadbolt-pwcheck")
}

/// The common-password list shipped in the source tree.
pub fn common_list_path() -> PathBuf {
    workspace_dir().join("pwcheck/data/common-passwords.txt")
}

/// A module of Linux-PAM itself (`pam_deny.so`, `pam_permit.so`,
/// `pam_debug.so`), wherever the distribution puts it.
pub fn system_module_path(name: &str) -> PathBuf {
    let mut candidates = Vec::new();
    for root in ["/usr/lib", "/usr/lib64", "/lib", "/lib64"] {
        candidates.push(Path::new(root).join("security").join(name));
        if let Ok(entries) = fs::read_dir(root) {
            let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            dirs.sort();
            candidates.extend(dirs.into_iter().map(|d| d.join("security").join(name)));
        }
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found: install libpam-modules"))
}

/// pam_wrapper's pam_matrix module, wherever the distribution puts it
/// (`/usr/lib/<triplet>/pam_wrapper/pam_matrix.so` on Debian).
pub fn pam_matrix_path() -> PathBuf {
    pam_wrapper_module_path("pam_matrix.so")
}

/// One of pam_wrapper's test modules (`pam_matrix.so`, `pam_set_items.so`).
pub fn pam_wrapper_module_path(name: &str) -> PathBuf {
    let mut candidates = Vec::new();
    for root in ["/usr/lib", "/usr/lib64", "/lib"] {
        candidates.push(Path::new(root).join("pam_wrapper").join(name));
        if let Ok(entries) = fs::read_dir(root) {
            let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            dirs.sort();
            candidates.extend(dirs.into_iter().map(|d| d.join("pam_wrapper").join(name)));
        }
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found: install libpam-wrapper (scripts/setup-deps)"))
}

/// What a program run by the harness did.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Exit status 0.
    pub fn succeeded(&self) -> bool {
        self.status.success()
    }

    /// The exit code, `None` when killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The signal that killed the program, if one did.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    /// Whether stdout or stderr contains `text`.
    pub fn shows(&self, text: &str) -> bool {
        self.stdout.contains(text) || self.stderr.contains(text)
    }

    /// How many times `text` occurs in stdout and stderr together.
    pub fn count(&self, text: &str) -> usize {
        self.stdout.matches(text).count() + self.stderr.matches(text).count()
    }

    /// Panics unless the program exited on its own with status 0 or 1 (a
    /// refusal), in particular not killed by a signal.
    pub fn assert_exited_normally(&self) {
        assert!(
            matches!(self.code(), Some(0) | Some(1)),
            "expected exit status 0 or 1, got {:?} (signal {:?})\n{self}",
            self.code(),
            self.signal()
        );
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

#[derive(Debug, Clone)]
struct UserSpec {
    name: String,
    uid: u32,
    gid: u32,
    /// `false`: in passdb but unknown to NSS.
    in_nss: bool,
    password: Option<String>,
    /// The passwd GECOS field; the user name when not set.
    gecos: Option<String>,
}

#[derive(Debug, Clone)]
struct GroupSpec {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Which service file [`PamEnv`] writes. Every password stack ends with
/// `account required pam_deadbolt.so`, so `acct_mgmt` works with it too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stack {
    /// The auth and account lines of docs/reference.md, pam_matrix in place
    /// of pam_unix.
    #[default]
    Login,
    /// The password stack of pam-module/src/password.rs, pam_matrix storing:
    ///
    /// ```text
    /// password requisite pam_deadbolt.so
    /// password requisite pam_matrix.so passdb=...
    /// password optional  pam_deadbolt.so commit
    /// account  required  pam_deadbolt.so
    /// ```
    Password,
    /// pam_deny.so as the storing module: it fails the preliminary pass, so
    /// the change stops before any new password is asked for.
    PasswordDeny,
    /// pam_debug.so as the storing module, accepting the preliminary pass
    /// and failing the update (`PAM_AUTHTOK_ERR`) after deadbolt approved
    /// the new password. It prints its arguments as it runs.
    PasswordStoreFails,
    /// pam_set_items.so first, which copies the `PAM_OLDAUTHTOK` environment
    /// variable into the item (as pam_unix would after asking for the
    /// current password), and pam_permit.so storing. Nothing asks for the
    /// old password.
    PasswordOldFromEnv,
    /// `[directory] password_store = "directory"`: the login lines of
    /// [`Stack::Login`], and deadbolt alone storing the password (it asks
    /// for the current one and hands both to deadbolt-syncd):
    ///
    /// ```text
    /// password requisite pam_deadbolt.so
    /// account  required  pam_deadbolt.so
    /// ```
    DirectoryStore,
}

impl Stack {
    fn asks_old_password(self) -> bool {
        matches!(self, Stack::Password | Stack::DirectoryStore)
    }
}

/// Builds a [`PamEnv`]. By default the config has `[state] dir` pointing
/// into the temporary directory, `[lockout] delay_mode = "none"`, and a
/// `[password]` naming the built checker and the shipped list with cheap
/// argon2 parameters (see [`PamEnvBuilder::password`]); every deadbolt line
/// of the service file has `nodelay`.
#[derive(Debug, Default)]
pub struct PamEnvBuilder {
    users: Vec<UserSpec>,
    groups: Vec<GroupSpec>,
    lockout: Vec<(String, String)>,
    state: Vec<(String, String)>,
    password: Vec<(String, String)>,
    unset_password: Vec<String>,
    extra_toml: String,
    raw_config: Option<String>,
    module_args: Vec<String>,
    keep_delay: bool,
    stack: Stack,
}

/// The `[password]` keys every generated config starts with: the built
/// checker, the shipped list, and argon2id at 64 KiB and 1 pass, so a
/// history entry costs well under a millisecond.
fn default_password_keys() -> Vec<(String, String)> {
    vec![
        (
            "checker".to_owned(),
            toml_string(
                &target_dir()
                    .join("debug/deadbolt-pwcheck")
                    .to_string_lossy(),
            ),
        ),
        (
            "lists".to_owned(),
            format!("[{}]", toml_string(&common_list_path().to_string_lossy())),
        ),
        ("hash_memory_kib".to_owned(), "64".to_owned()),
        ("hash_iterations".to_owned(), "1".to_owned()),
    ]
}

fn set_key(list: &mut Vec<(String, String)>, key: &str, value: &str) {
    list.retain(|(k, _)| k != key);
    list.push((key.to_owned(), value.to_owned()));
}

/// A TOML basic string holding `s`.
pub fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl PamEnvBuilder {
    /// A user known to NSS (uid from 1000 up, a primary group of the same
    /// name) whose password pam_matrix accepts.
    pub fn user(mut self, name: &str, password: &str) -> Self {
        let id = 1000 + self.users.iter().filter(|u| u.uid >= 1000).count() as u32;
        self.users.push(UserSpec {
            name: name.to_owned(),
            uid: id,
            gid: id,
            in_nss: true,
            password: Some(password.to_owned()),
            gecos: None,
        });
        self
    }

    /// Sets the passwd GECOS field (the real name, "Alice Liddell,Room 1,,")
    /// of a user added before.
    pub fn gecos(mut self, user: &str, gecos: &str) -> Self {
        let spec = self
            .users
            .iter_mut()
            .find(|u| u.name == user)
            .unwrap_or_else(|| panic!("gecos for {user}, who was not added"));
        spec.gecos = Some(gecos.to_owned());
        self
    }

    /// `root`, uid 0, with this password.
    pub fn root(mut self, password: &str) -> Self {
        self.users.push(UserSpec {
            name: "root".to_owned(),
            uid: 0,
            gid: 0,
            in_nss: true,
            password: Some(password.to_owned()),
            gecos: None,
        });
        self
    }

    /// A user pam_matrix knows (so a password is asked and checked) but NSS
    /// does not.
    pub fn unknown_user(mut self, name: &str, password: &str) -> Self {
        self.users.push(UserSpec {
            name: name.to_owned(),
            uid: u32::MAX,
            gid: u32::MAX,
            in_nss: false,
            password: Some(password.to_owned()),
            gecos: None,
        });
        self
    }

    /// A group (gid from 2000 up) with these supplementary members.
    pub fn group(mut self, name: &str, members: &[&str]) -> Self {
        let gid = 2000 + self.groups.len() as u32;
        self.groups.push(GroupSpec {
            name: name.to_owned(),
            gid,
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        });
        self
    }

    /// Sets `key = value` in `[lockout]`; `value` is TOML (`"5"`, `"\"never\""`).
    pub fn lockout(mut self, key: &str, value: &str) -> Self {
        set_key(&mut self.lockout, key, value);
        self
    }

    /// Sets `key = value` in `[state]`; `value` is TOML.
    pub fn state(mut self, key: &str, value: &str) -> Self {
        set_key(&mut self.state, key, value);
        self
    }

    /// Sets `key = value` in `[password]`; `value` is TOML (`"2"`,
    /// `"\"90d\""`, `"[]"`). Replaces a default key of the same name.
    pub fn password(mut self, key: &str, value: &str) -> Self {
        set_key(&mut self.password, key, value);
        self
    }

    /// Leaves `key` out of `[password]`, so its compiled default applies
    /// (e.g. `hash_memory_kib`, which the harness sets low).
    pub fn unset_password(mut self, key: &str) -> Self {
        self.unset_password.push(key.to_owned());
        self
    }

    /// The service file to write (the login stack by default).
    pub fn stack(mut self, stack: Stack) -> Self {
        self.stack = stack;
        self
    }

    /// TOML appended after `[lockout]`, `[state]` and `[password]` (e.g.
    /// `[[policy]]` tables).
    pub fn toml(mut self, text: &str) -> Self {
        self.extra_toml.push_str(text);
        self.extra_toml.push('\n');
        self
    }

    /// Writes exactly this text as the config file (`@STATE_DIR@` is replaced
    /// by the state directory).
    pub fn raw_config(mut self, text: &str) -> Self {
        self.raw_config = Some(text.to_owned());
        self
    }

    /// An argument added to every deadbolt line of the service file.
    pub fn module_arg(mut self, arg: &str) -> Self {
        self.module_args.push(arg.to_owned());
        self
    }

    /// Leaves out the `nodelay` argument every deadbolt line gets by
    /// default, so the delay settings of the file apply.
    pub fn with_delay(mut self) -> Self {
        self.keep_delay = true;
        self
    }

    pub fn build(self) -> PamEnv {
        let dir = tempfile::Builder::new()
            .prefix("deadbolt-test.")
            .tempdir()
            .expect("create a temporary directory");
        let root = dir.path().to_path_buf();
        let service_dir = root.join("pam.d");
        let passwd = root.join("passwd");
        let group = root.join("group");
        let passdb = root.join("passdb");
        let state_dir = root.join("state");
        let config = root.join("deadbolt.toml");

        fs::create_dir(&service_dir).expect("create the service directory");
        fs::write(service_dir.join("other"), "").expect("write the other service");
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&state_dir)
            .expect("create the state directory");
        fs::set_permissions(&state_dir, fs::Permissions::from_mode(0o700))
            .expect("chmod the state directory");

        // nss_wrapper passwd and group.
        let mut passwd_text = String::new();
        let mut group_text = String::new();
        for u in self.users.iter().filter(|u| u.in_nss) {
            let home = if u.uid == 0 {
                "/root".to_owned()
            } else {
                format!("/home/{}", u.name)
            };
            passwd_text.push_str(&format!(
                "{}:x:{}:{}:{}:{home}:/bin/sh\n",
                u.name,
                u.uid,
                u.gid,
                u.gecos.as_deref().unwrap_or(&u.name)
            ));
            let primary_taken = self.groups.iter().any(|g| g.name == u.name);
            if !primary_taken {
                group_text.push_str(&format!("{}:x:{}:\n", u.name, u.gid));
            }
        }
        for g in &self.groups {
            group_text.push_str(&format!("{}:x:{}:{}\n", g.name, g.gid, g.members.join(",")));
        }
        fs::write(&passwd, passwd_text).expect("write passwd");
        fs::write(&group, group_text).expect("write group");

        // pam_matrix password file.
        let mut passdb_text = String::new();
        for u in &self.users {
            if let Some(pw) = &u.password {
                passdb_text.push_str(&format!("{}:{pw}:{SERVICE}\n", u.name));
            }
        }
        fs::write(&passdb, passdb_text).expect("write passdb");

        let mut env = PamEnv {
            root,
            service_dir,
            passwd,
            group,
            passdb,
            state_dir,
            config,
            module_args: if self.keep_delay {
                self.module_args
            } else {
                std::iter::once("nodelay".to_owned())
                    .chain(self.module_args)
                    .collect()
            },
            stack: self.stack,
            config_parts: None,
            runner: Vec::new(),
            _dir: dir,
        };

        match self.raw_config {
            Some(raw) => {
                env.write_config(&raw.replace("@STATE_DIR@", &env.state_dir.to_string_lossy()))
            }
            None => {
                let mut lockout = vec![("delay_mode".to_owned(), "\"none\"".to_owned())];
                for (k, v) in self.lockout {
                    set_key(&mut lockout, &k, &v);
                }
                let mut state = vec![(
                    "dir".to_owned(),
                    toml_string(&env.state_dir.to_string_lossy()),
                )];
                for (k, v) in self.state {
                    set_key(&mut state, &k, &v);
                }
                let mut password = default_password_keys();
                for (k, v) in self.password {
                    set_key(&mut password, &k, &v);
                }
                password.retain(|(k, _)| !self.unset_password.contains(k));
                env.config_parts = Some(ConfigParts {
                    lockout,
                    state,
                    password,
                    extra_toml: self.extra_toml,
                });
                env.rewrite_config();
            }
        }
        env.write_service(None);
        env
    }
}

/// The pieces of a generated config, kept so a test can change one key and
/// write the file again ([`PamEnv::set_password_key`]).
#[derive(Debug, Clone)]
struct ConfigParts {
    lockout: Vec<(String, String)>,
    state: Vec<(String, String)>,
    password: Vec<(String, String)>,
    extra_toml: String,
}

impl ConfigParts {
    fn text(&self) -> String {
        let mut text = String::new();
        for (table, keys) in [
            ("lockout", &self.lockout),
            ("state", &self.state),
            ("password", &self.password),
        ] {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&format!("[{table}]\n"));
            for (k, v) in keys {
                text.push_str(&format!("{k} = {v}\n"));
            }
        }
        if !self.extra_toml.is_empty() {
            text.push('\n');
            text.push_str(&self.extra_toml);
        }
        text
    }
}

/// A temporary PAM world: see the crate documentation.
#[derive(Debug)]
pub struct PamEnv {
    root: PathBuf,
    service_dir: PathBuf,
    passwd: PathBuf,
    group: PathBuf,
    passdb: PathBuf,
    state_dir: PathBuf,
    config: PathBuf,
    module_args: Vec<String>,
    stack: Stack,
    /// `None` for a raw config.
    config_parts: Option<ConfigParts>,
    /// A program and its arguments that run pamtester (valgrind): empty
    /// to run it directly.
    runner: Vec<String>,
    _dir: tempfile::TempDir,
}

impl PamEnv {
    pub fn builder() -> PamEnvBuilder {
        PamEnvBuilder::default()
    }

    /// Runs pamtester from now on as `runner... pamtester ARGS`, under the
    /// same environment (valgrind, for instance).
    pub fn run_pamtester_by(&mut self, runner: &[&str]) {
        self.runner = runner.iter().map(|&a| a.to_owned()).collect();
    }

    /// The temporary directory holding everything.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The passwd file nss_wrapper answers from.
    pub fn passwd_path(&self) -> &Path {
        &self.passwd
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The service file in use.
    pub fn service_file(&self) -> PathBuf {
        self.service_dir.join(SERVICE)
    }

    /// Replaces the config file.
    pub fn write_config(&self, text: &str) {
        fs::write(&self.config, text).expect("write deadbolt.toml");
    }

    fn rewrite_config(&self) {
        let parts = self
            .config_parts
            .as_ref()
            .expect("a generated config, not a raw one");
        self.write_config(&parts.text());
    }

    /// Sets `key = value` in `[password]` (as [`PamEnvBuilder::password`])
    /// and writes the config again; the next PAM call reads it.
    pub fn set_password_key(&mut self, key: &str, value: &str) {
        let parts = self
            .config_parts
            .as_mut()
            .expect("a generated config, not a raw one");
        set_key(&mut parts.password, key, value);
        self.rewrite_config();
    }

    /// The config file as written.
    pub fn config_text(&self) -> String {
        fs::read_to_string(&self.config).expect("read deadbolt.toml")
    }

    /// Writes the service file: the [`Stack`] chosen at build time (by
    /// default the stack of docs/reference.md with pam_matrix in place of
    /// pam_unix), or `custom` verbatim (`@MODULE@`, `@MATRIX@` and `@ARGS@`
    /// replaced).
    pub fn write_service(&self, custom: Option<&str>) {
        let module = module_path_unchecked();
        let matrix = pam_matrix_path();
        let mut args = format!("conf={}", self.config.display());
        for a in &self.module_args {
            args.push(' ');
            args.push_str(a);
        }
        let matrix_args = format!("passdb={}", self.passdb.display());
        let text = match custom {
            Some(text) => text
                .replace("@MODULE@", &module.to_string_lossy())
                .replace("@MATRIX@", &format!("{} {matrix_args}", matrix.display()))
                .replace("@ARGS@", &args),
            None => {
                let m = module.display();
                let x = matrix.display();
                let password_lines = |store: String| {
                    format!(
                        "password requisite {m} {args}\n\
                         password requisite {store}\n\
                         password optional  {m} commit {args}\n\
                         account  required  {m} {args}\n"
                    )
                };
                let login = format!(
                    "auth     required                {m} preauth {args}\n\
                     auth     [success=1 default=bad] {x} {matrix_args}\n\
                     auth     [default=die]           {m} authfail {args}\n\
                     auth     [success=done default=die] {m} authsucc {args}\n\
                     account  required                {m} {args}\n"
                );
                match self.stack {
                    Stack::Login => login,
                    Stack::DirectoryStore => format!("{login}password requisite {m} {args}\n"),
                    Stack::Password => password_lines(format!("{x} {matrix_args}")),
                    Stack::PasswordDeny => {
                        password_lines(system_module_path("pam_deny.so").display().to_string())
                    }
                    Stack::PasswordStoreFails => password_lines(format!(
                        "{} prechauthtok=success chauthtok=authtok_err",
                        system_module_path("pam_debug.so").display()
                    )),
                    Stack::PasswordOldFromEnv => format!(
                        "password optional  {}\n{}",
                        pam_wrapper_module_path("pam_set_items.so").display(),
                        password_lines(system_module_path("pam_permit.so").display().to_string())
                    ),
                }
            }
        };
        fs::write(self.service_file(), text).expect("write the service file");
    }

    fn pam_command(
        &self,
        user: &str,
        ops: &[&str],
        envs: &[(&str, &str)],
        shell: Option<&str>,
    ) -> Command {
        // Fail now, with a clear message, if the module was not built.
        module_path();
        let mut cmd = match shell {
            // As a caller would prepare a setuid program: `ulimit`, `trap`,
            // then exec.
            Some(prefix) => {
                let mut cmd = Command::new("bash");
                cmd.arg("-c")
                    // pamtester's own output is a file the limits would
                    // kill it for writing to: only its exit status counts.
                    .arg(format!("{prefix}\nexec \"$@\" >/dev/null 2>&1"))
                    .arg("bash")
                    .arg("pamtester");
                cmd
            }
            None => match self.runner.split_first() {
                Some((program, args)) => {
                    let mut cmd = Command::new(program);
                    cmd.args(args).arg("pamtester");
                    cmd
                }
                None => Command::new("pamtester"),
            },
        };
        cmd.arg("-v").arg(SERVICE).arg(user).args(ops);
        cmd.env("LD_PRELOAD", "libpam_wrapper.so libnss_wrapper.so")
            .env("PAM_WRAPPER", "1")
            .env("PAM_WRAPPER_SERVICE_DIR", &self.service_dir)
            .env("NSS_WRAPPER_PASSWD", &self.passwd)
            .env("NSS_WRAPPER_GROUP", &self.group)
            .env_remove("PAM_WRAPPER_KEEP_DIR")
            .env_remove("DEADBOLT_CONFIG")
            .env_remove("PAM_OLDAUTHTOK")
            .envs(envs.iter().copied())
            .current_dir(&self.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if shell.is_some() {
            // pam_wrapper writes its copy of the service files as the
            // process starts, under the caller's limits: a file size limit
            // would kill it before any module runs. The real libpam reads
            // /etc/pam.d instead (see `start_pamtester_under`).
            cmd.env("LD_PRELOAD", "libnss_wrapper.so")
                .env_remove("PAM_WRAPPER");
        }
        cmd
    }

    /// Starts `pamtester -v SERVICE user ops...` and returns once libpam has
    /// read the service file and loaded the modules (or pamtester ended);
    /// the process then waits for its input: see [`Running::send`].
    ///
    /// Starts are serialized (see [`StartupLock`]): pam_wrapper gives each
    /// process a directory `/tmp/pam.X` for its copy of the service files,
    /// choosing the letter from its pid, and two processes starting at the
    /// same instant can pick the same one and read each other's service file.
    pub fn start_pamtester(&self, user: &str, ops: &[&str]) -> Running {
        self.start_pamtester_with(user, ops, &[])
    }

    /// [`PamEnv::start_pamtester`] with more environment variables.
    pub fn start_pamtester_with(&self, user: &str, ops: &[&str], envs: &[(&str, &str)]) -> Running {
        self.start_pamtester_full(user, ops, envs, None)
    }

    /// [`PamEnv::start_pamtester`] run by `bash -c "SHELL; exec pamtester ..."`:
    /// the shell commands set what the caller controls (limits, ignored
    /// signals, groups) before the exec.
    ///
    /// The service is installed in /etc/pam.d for the run (root only), so
    /// that the real libpam, not pam_wrapper, loads it.
    pub fn start_pamtester_under(&self, shell: &str, user: &str, ops: &[&str]) -> Running {
        // One service name for every test: one such run at a time, machine-wide.
        let exclusive = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open("/tmp/deadbolt-tests.etc-pam.lock")
            .ok()
            .and_then(|f| Flock::lock(f, FlockArg::LockExclusive).ok());
        let system = self.system_service_path();
        fs::copy(self.service_file(), &system).expect("install the service in /etc/pam.d (root)");
        let mut running = self.start_pamtester_full(user, ops, &[], Some(shell));
        running.system_service = Some((system, exclusive));
        running
    }

    fn system_service_path(&self) -> PathBuf {
        Path::new("/etc/pam.d").join(SERVICE)
    }

    fn start_pamtester_full(
        &self,
        user: &str,
        ops: &[&str],
        envs: &[(&str, &str)],
        shell: Option<&str>,
    ) -> Running {
        let lock = StartupLock::take();
        let mut child = self
            .pam_command(user, ops, envs, shell)
            .spawn()
            .expect("start pamtester (install it with scripts/setup-deps)");
        let stderr = child.stderr.take().expect("pamtester's stderr");
        let (started_tx, started_rx) = mpsc::channel();
        let stderr_reader = thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut all = Vec::new();
            let mut line = Vec::new();
            let mut started = Some(started_tx);
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        all.extend_from_slice(&line);
                        // pamtester -v says this once pam_start has returned.
                        if line.windows(20).any(|w| w == b"performing operation") {
                            if let Some(tx) = started.take() {
                                let _ = tx.send(());
                            }
                        }
                    }
                }
            }
            String::from_utf8_lossy(&all).into_owned()
        });
        // Returns on the signal, or when the reader ends without one.
        let _ = started_rx.recv();
        drop(lock);
        let stdin = child.stdin.take();
        Running {
            child,
            stdin,
            stderr_reader,
            system_service: None,
        }
    }

    /// Starts pamtester (see [`PamEnv::start_pamtester`]) and gives it
    /// `stdin` as its input.
    pub fn spawn_pamtester(&self, user: &str, ops: &[&str], stdin: &str) -> Running {
        let mut running = self.start_pamtester(user, ops);
        running.send(stdin);
        running
    }

    /// Runs `pamtester -v SERVICE user ops...` with `stdin` as its input.
    pub fn pamtester(&self, user: &str, ops: &[&str], stdin: &str) -> Outcome {
        self.spawn_pamtester(user, ops, stdin).wait()
    }

    /// One login attempt: `authenticate` with `password` typed at the prompt.
    pub fn authenticate(&self, user: &str, password: &str) -> Outcome {
        self.pamtester(user, &["authenticate"], &format!("{password}\n"))
    }

    /// The account phase alone (as after an SSH key login).
    pub fn acct_mgmt(&self, user: &str) -> Outcome {
        self.pamtester(user, &["acct_mgmt"], "")
    }

    /// `pamtester -v SERVICE user chauthtok` with exactly these bytes as its
    /// input, one answer a line (see [`PamEnv::change_password`] for the
    /// prompts of each [`Stack`]).
    pub fn chauthtok(&self, user: &str, stdin: impl AsRef<[u8]>) -> Outcome {
        let mut running = self.start_pamtester(user, &["chauthtok"]);
        running.send_bytes(stdin.as_ref());
        running.wait()
    }

    /// A password change by `pamtester chauthtok` (as root, like `passwd
    /// USER` run by root), trying `attempts` in turn; returns how it ended.
    ///
    /// The input is built for the stack: with [`Stack::Password`],
    /// `current` answers pam_matrix's "Old password: " (it must be the
    /// password in pam_matrix's file); with [`Stack::PasswordOldFromEnv`] it
    /// becomes `PAM_OLDAUTHTOK`; other stacks ignore it. Then each attempt
    /// but the last answers one "New password: " (a refused password is not
    /// asked again); the last is given four times: "New password: ",
    /// "Retype new password: ", and pam_matrix's own "New Password :" and
    /// "Verify New Password :". Extra lines are never read.
    pub fn change_password(&self, user: &str, current: &str, attempts: &[&str]) -> Outcome {
        self.change_password_bytes(
            user,
            current,
            &attempts.iter().map(|a| a.as_bytes()).collect::<Vec<_>>(),
        )
    }

    /// [`PamEnv::change_password`] with attempts that need not be UTF-8.
    pub fn change_password_bytes(&self, user: &str, current: &str, attempts: &[&[u8]]) -> Outcome {
        let input = change_input(self.stack, current, attempts);
        let envs: &[(&str, &str)] = if self.stack == Stack::PasswordOldFromEnv {
            &[("PAM_OLDAUTHTOK", current)]
        } else {
            &[]
        };
        let mut running = self.start_pamtester_with(user, &["chauthtok"], envs);
        running.send_bytes(&input);
        running.wait()
    }

    /// `n` logins with a wrong password, each of which must be refused
    /// without the process dying.
    pub fn fail_logins(&self, user: &str, n: usize) {
        for i in 0..n {
            let out = self.authenticate(user, "wrong password");
            out.assert_exited_normally();
            assert!(
                !out.succeeded(),
                "wrong password number {} for {user} was accepted\n{out}",
                i + 1
            );
        }
    }

    fn ctl_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(deadboltctl_path());
        self.ctl_setup(&mut cmd, args);
        cmd
    }

    fn ctl_setup(&self, cmd: &mut Command, args: &[&str]) {
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .env("LD_PRELOAD", "libnss_wrapper.so")
            .env("NSS_WRAPPER_PASSWD", &self.passwd)
            .env("NSS_WRAPPER_GROUP", &self.group)
            .env_remove("DEADBOLT_CONFIG")
            .current_dir(&self.root)
            .stdin(Stdio::null());
    }

    /// Runs `deadboltctl --config <tmp>/deadbolt.toml args...`.
    pub fn deadboltctl(&self, args: &[&str]) -> Outcome {
        outcome(self.ctl_command(args).output().expect("run deadboltctl"))
    }

    /// [`PamEnv::deadboltctl`] with more environment variables.
    pub fn deadboltctl_with_env(&self, args: &[&str], envs: &[(&str, &str)]) -> Outcome {
        let mut cmd = self.ctl_command(args);
        cmd.envs(envs.iter().copied());
        outcome(cmd.output().expect("run deadboltctl"))
    }

    /// Runs deadboltctl as another user (numeric ids, through `setpriv`).
    pub fn deadboltctl_as(&self, uid: u32, gid: u32, args: &[&str]) -> Outcome {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .arg("--")
            .arg(deadboltctl_path());
        self.ctl_setup(&mut cmd, args);
        outcome(cmd.output().expect("run setpriv"))
    }

    /// `deadboltctl status USER --json`, parsed; panics unless it succeeds.
    pub fn status_json(&self, user: &str) -> serde_json::Value {
        let out = self.deadboltctl(&["status", user, "--json"]);
        assert!(
            out.succeeded(),
            "deadboltctl status {user} --json failed\n{out}"
        );
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("status --json is not JSON: {e}\n{out}"))
    }

    /// The failure count `status --json` reports.
    pub fn failures(&self, user: &str) -> u64 {
        let status = self.status_json(user);
        status["failures"]
            .as_u64()
            .unwrap_or_else(|| panic!("no failures count in {status}"))
    }

    /// Whether `status --json` reports the user locked.
    pub fn is_locked(&self, user: &str) -> bool {
        let status = self.status_json(user);
        status["locked"]
            .as_bool()
            .unwrap_or_else(|| panic!("no locked flag in {status}"))
    }

    /// The names in the state directory, sorted (dot files included).
    pub fn state_files(&self) -> Vec<String> {
        list_dir(&self.state_dir)
    }

    /// Every path under the temporary directory, relative and sorted.
    pub fn tree(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.root, &self.root, &mut out);
        out.sort();
        out
    }

    /// The path of a user's state file.
    pub fn state_file(&self, user: &str) -> PathBuf {
        self.state_dir.join(format!("{user}.state"))
    }

    /// Writes raw bytes as a user's state file (0600), e.g. garbage.
    pub fn write_state_file(&self, user: &str, bytes: &[u8]) {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(self.state_file(user))
            .expect("write the state file");
        file.write_all(bytes).expect("write the state file");
    }

    /// Records failures dated `times` for `user` through the core store, as
    /// the module would have (other host, so they never collide with its own).
    pub fn seed_failures(&self, user: &str, times: &[Timestamp]) {
        let name = UserName::parse(user).expect("a valid user name");
        let store = StateStore::open_or_create(&self.state_dir).expect("open the state store");
        store
            .update(&name, Timestamp::now(), |state| {
                for (i, t) in times.iter().enumerate() {
                    state.failures.insert(Failure {
                        time: *t,
                        host: "seeded-host".to_owned(),
                        source: "seeded".to_owned(),
                        service: SERVICE.to_owned(),
                        pid: i as u32,
                    });
                }
                true
            })
            .expect("seed failures");
    }

    /// Changes a user's state through the core store, as the module or
    /// deadboltctl would (e.g. a password change dated long ago).
    pub fn seed_state(&self, user: &str, change: impl FnOnce(&mut UserState)) {
        let name = UserName::parse(user).expect("a valid user name");
        let store = StateStore::open_or_create(&self.state_dir).expect("open the state store");
        store
            .update(&name, Timestamp::now(), |state| {
                change(state);
                true
            })
            .expect("seed the state");
    }

    /// A user's state as the core store reads it; `None` when there is no
    /// state file. Panics when the file does not decode.
    pub fn load_state(&self, user: &str) -> Option<UserState> {
        let name = UserName::parse(user).expect("a valid user name");
        let store = StateStore::open_existing(&self.state_dir).expect("open the state store");
        match store.load(&name).expect("load the state") {
            Loaded::Present(state) => Some(state),
            Loaded::Absent => None,
            Loaded::Corrupt(why) => panic!("the state of {user} does not decode: {why}"),
        }
    }

    /// The PHC strings of a user's password history, oldest first.
    pub fn history_phc(&self, user: &str) -> Vec<String> {
        self.load_state(user)
            .map(|state| state.password_history.into_iter().map(|r| r.phc).collect())
            .unwrap_or_default()
    }

    /// The password pam_matrix holds for `user` now (it writes the new one
    /// after a successful change), `None` when the user has no line.
    pub fn passdb_password(&self, user: &str) -> Option<String> {
        let text = fs::read_to_string(&self.passdb).expect("read passdb");
        text.lines().find_map(|line| {
            let mut fields = line.splitn(3, ':');
            (fields.next() == Some(user)).then(|| fields.next().unwrap_or("").to_owned())
        })
    }

    /// Every byte of every file under the state directory (dot files and
    /// files set aside included), for looking for what must never be there.
    pub fn state_bytes(&self) -> Vec<u8> {
        let mut paths = Vec::new();
        walk(&self.state_dir, &self.state_dir, &mut paths);
        paths.sort();
        let mut all = Vec::new();
        for rel in paths {
            let path = self.state_dir.join(rel);
            if path.is_file() {
                all.extend(fs::read(&path).unwrap_or_default());
            }
        }
        all
    }

    /// Makes the temporary directory and the config readable by other users
    /// (for running deadboltctl as someone else); the state directory stays 0700.
    pub fn open_to_others(&self) {
        fs::set_permissions(&self.root, fs::Permissions::from_mode(0o755)).expect("chmod");
        fs::set_permissions(&self.config, fs::Permissions::from_mode(0o644)).expect("chmod");
        fs::set_permissions(&self.passwd, fs::Permissions::from_mode(0o644)).expect("chmod");
        fs::set_permissions(&self.group, fs::Permissions::from_mode(0o644)).expect("chmod");
    }
}

/// The input of a password change: see [`PamEnv::change_password`].
fn change_input(stack: Stack, current: &str, attempts: &[&[u8]]) -> Vec<u8> {
    let mut input = Vec::new();
    if stack.asks_old_password() {
        input.extend_from_slice(current.as_bytes());
        input.push(b'\n');
    }
    if let Some((last, refused)) = attempts.split_last() {
        for attempt in refused {
            input.extend_from_slice(attempt);
            input.push(b'\n');
        }
        for _ in 0..4 {
            input.extend_from_slice(last);
            input.push(b'\n');
        }
    }
    input
}

/// Whether `needle` occurs in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn module_path_unchecked() -> PathBuf {
    target_dir().join("debug").join("libpam_deadbolt.so")
}

fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| {
            e.expect("read a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if let Ok(rel) = path.strip_prefix(base) {
            out.push(rel.to_string_lossy().into_owned());
        }
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            walk(base, &path, out);
        }
    }
}

fn outcome(output: std::process::Output) -> Outcome {
    Outcome {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A pamtester process started by [`PamEnv::start_pamtester`].
#[derive(Debug)]
pub struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    stderr_reader: thread::JoinHandle<String>,
    /// A service file installed in /etc/pam.d for this run, removed after it.
    system_service: Option<(PathBuf, Option<Flock<fs::File>>)>,
}

impl Running {
    /// Writes `input` to the process and closes its standard input (an
    /// empty `input` makes the conversation fail at once). Only the first
    /// call writes anything.
    pub fn send(&mut self, input: &str) {
        self.send_bytes(input.as_bytes());
    }

    /// [`Running::send`] with bytes that need not be UTF-8.
    pub fn send_bytes(&mut self, input: &[u8]) {
        if let Some(mut stdin) = self.stdin.take() {
            // pamtester may exit before reading everything: ignore a broken pipe.
            let _ = stdin.write_all(input);
        }
    }

    /// Kills the process (SIGKILL, as a caller may kill his own setuid
    /// `su` at any moment) and waits for it.
    pub fn kill(mut self) -> Outcome {
        let _ = self.child.kill();
        self.wait()
    }

    /// Closes the input if still open, waits for the process and removes
    /// the `/tmp/pam.X` directory pam_wrapper made for it if it was left
    /// behind (a process killed by a signal never runs pam_wrapper's cleanup).
    pub fn wait(mut self) -> Outcome {
        drop(self.stdin.take());
        let pid = self.child.id();
        let output = self.child.wait_with_output().expect("wait for pamtester");
        let stderr = self.stderr_reader.join().unwrap_or_default();
        remove_pam_wrapper_dirs(pid);
        if let Some((path, exclusive)) = self.system_service.take() {
            let _ = fs::remove_file(path);
            drop(exclusive);
        }
        Outcome {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr,
        }
    }
}

/// A machine-wide lock (`flock` on a file in `/tmp`) held while a pamtester
/// process starts, so that no two processes of this harness, in any test
/// binary, pick a pam_wrapper directory at the same instant.
#[derive(Debug)]
pub struct StartupLock {
    _flock: Option<Flock<fs::File>>,
}

impl StartupLock {
    const PATH: &'static str = "/tmp/deadbolt-tests.pam_wrapper.lock";

    /// Waits for the lock. Should the lock file be unusable, goes on
    /// without it (starts may then race, as they would without the lock).
    pub fn take() -> Self {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o666)
            .open(Self::PATH)
            .or_else(|_| fs::File::open(Self::PATH));
        let flock = file
            .ok()
            .and_then(|f| Flock::lock(f, FlockArg::LockExclusive).ok());
        StartupLock { _flock: flock }
    }
}

/// Removes pam_wrapper's `/tmp/pam.X` directories whose pid file names `pid`
/// (a process that has ended).
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
        let path = entry.path();
        let Ok(owner) = fs::read_to_string(path.join("pid")) else {
            continue;
        };
        if owner.trim().parse::<u32>().ok() == Some(pid) {
            let _ = fs::remove_dir_all(&path);
        }
    }
}
