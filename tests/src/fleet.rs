//! Hosts of a fleet for the tests: a [`PamEnv`] (its own state directory
//! and PAM service) whose configuration points at a test directory, and
//! the real `deadbolt-syncd` running for it.

use crate::slapd::{wait_until, Directory};
use crate::PamEnv;
use deadbolt_core::store::{Loaded, Pending};
use deadbolt_core::{LockoutPolicy, StateStore, Timestamp, UnlockAfter, UserName};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// How long a test waits for something to cross the fleet before failing.
/// Loopback delivery takes milliseconds; the margin is for a loaded CI box.
pub const PROPAGATION: Duration = Duration::from_secs(20);

/// The built sync daemon: the debug build, or `DEADBOLT_SYNCD` (the
/// benchmarks run the release build).
pub fn syncd_path() -> PathBuf {
    match std::env::var_os("DEADBOLT_SYNCD") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => crate::built_path("deadbolt-syncd"),
    }
}

/// `deadbolt-syncd --check` on `env`'s configuration: its exit code and
/// what it wrote on stderr.
pub fn syncd_check(env: &PamEnv) -> (i32, String) {
    let out = Command::new(syncd_path())
        .arg("--config")
        .arg(env.config_path())
        .arg("--check")
        .output()
        .expect("run deadbolt-syncd --check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `[lockout]` keys and their TOML values.
pub type Lockout<'a> = &'a [(&'a str, &'a str)];

/// Locked after 3 failures until reactivated: what the seed product does.
pub const UNTIL_REACTIVATED: Lockout<'static> = &[("deny", "3"), ("unlock_after", "\"never\"")];

/// Whether `user` is locked in `store` under [`UNTIL_REACTIVATED`] (and
/// the default `fail_interval`), read directly: no process is spawned, so
/// a poll costs microseconds.
pub fn locked_in(store: &StateStore, user: &UserName) -> bool {
    let policy = LockoutPolicy {
        unlock_after: UnlockAfter::Never,
        ..LockoutPolicy::default()
    };
    match store.load_counting(user, Pending::All, Timestamp::now()) {
        Ok(Loaded::Present(state)) => policy.evaluate(&state, Timestamp::now()).locked,
        _ => false,
    }
}

/// A host: its name, its PAM environment and its directory identity.
#[derive(Debug)]
pub struct FleetHost {
    pub name: String,
    pub env: PamEnv,
    pub bind_dn: String,
}

/// The `[host]`, `[directory]` and `[sync]` sections for `name`, bound as
/// `bind_dn` with the password in `password_file`, to `uris` in order.
pub fn fleet_toml(
    name: &str,
    uris: &[String],
    base_dn: &str,
    bind_dn: &str,
    password_file: &Path,
) -> String {
    let uris: Vec<String> = uris.iter().map(|u| crate::toml_string(u)).collect();
    format!(
        "[host]\nname = {}\n\n[directory]\nuri = [{}]\nbase_dn = {}\nbind_dn = {}\nbind_password_file = {}\n",
        crate::toml_string(name),
        uris.join(", "),
        crate::toml_string(base_dn),
        crate::toml_string(bind_dn),
        crate::toml_string(&password_file.display().to_string()),
    )
}

impl FleetHost {
    /// A host named `name` on `directory`, with the users of `users` (name,
    /// password) known to its NSS, and the `[lockout]` keys of `lockout`
    /// (values in TOML).
    pub fn new(
        directory: &Directory,
        name: &str,
        users: &[(&str, &str)],
        lockout: Lockout,
    ) -> Self {
        Self::on(directory, &[directory.uri()], name, users, lockout)
    }

    /// As [`FleetHost::new`], with the servers to try in order.
    pub fn on(
        directory: &Directory,
        uris: &[String],
        name: &str,
        users: &[(&str, &str)],
        lockout: Lockout,
    ) -> Self {
        let host = directory.add_host(name);
        Self::with_identity(uris, &directory.people_dn(), name, &host, users, lockout)
    }

    /// A host bound as `host` (made on any provider) to `uris`.
    pub fn with_identity(
        uris: &[String],
        base_dn: &str,
        name: &str,
        host: &crate::slapd::Host,
        users: &[(&str, &str)],
        lockout: Lockout,
    ) -> Self {
        Self::with_directory_keys(uris, base_dn, name, host, users, lockout, "")
    }

    /// [`FleetHost::with_identity`] with more `[directory]` lines
    /// (`timeout = "1s"`).
    pub fn with_directory_keys(
        uris: &[String],
        base_dn: &str,
        name: &str,
        host: &crate::slapd::Host,
        users: &[(&str, &str)],
        lockout: Lockout,
        directory_keys: &str,
    ) -> Self {
        let mut builder = PamEnv::builder();
        for (key, value) in lockout {
            builder = builder.lockout(key, value);
        }
        for (user, password) in users {
            builder = builder.user(user, password);
        }
        let mut toml = fleet_toml(name, uris, base_dn, &host.dn, &host.password_file);
        toml.push_str(directory_keys);
        let env = builder.toml(&toml).build();
        FleetHost {
            name: name.to_owned(),
            env,
            bind_dn: host.dn.clone(),
        }
    }

    pub fn sync_dir(&self) -> PathBuf {
        self.env.state_dir().join(".sync")
    }

    pub fn start_syncd(&self) -> Syncd {
        Syncd::start(
            self.env.config_path(),
            &self.sync_dir(),
            &self.env.root().join(format!("syncd-{}.log", self.name)),
        )
    }

    pub fn locked(&self, user: &str) -> bool {
        self.env.is_locked(user)
    }

    /// Waits until `user`'s lock on this host is `locked`.
    pub fn wait_locked(&self, user: &str, locked: bool, why: &str) {
        wait_until(
            &format!(
                "{why}: {user} {} on {}",
                if locked { "locked" } else { "unlocked" },
                self.name
            ),
            PROPAGATION,
            || (self.env.is_locked(user) == locked).then_some(()),
        );
    }
}

impl FleetHost {
    /// Waits until this host counts `n` failures of `user`.
    pub fn wait_locked_count(&self, user: &str, n: u64) {
        wait_until(
            &format!("{n} failures of {user} on {}", self.name),
            PROPAGATION,
            || (self.env.failures(user) == n).then_some(()),
        );
    }
}

/// A running `deadbolt-syncd`, stopped (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Syncd {
    child: Option<Child>,
    envs: Vec<(String, String)>,
    config: PathBuf,
    sync_dir: PathBuf,
    log: PathBuf,
}

impl Syncd {
    pub fn start(config: &Path, sync_dir: &Path, log: &Path) -> Syncd {
        Syncd::start_with_env(config, sync_dir, log, &[])
    }

    /// [`Syncd::start`] with more environment variables (libfaketime's).
    pub fn start_with_env(
        config: &Path,
        sync_dir: &Path,
        log: &Path,
        envs: &[(&str, &str)],
    ) -> Syncd {
        let mut syncd = Syncd {
            child: None,
            envs: envs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            config: config.to_owned(),
            sync_dir: sync_dir.to_owned(),
            log: log.to_owned(),
        };
        syncd.spawn();
        syncd
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the daemon's log");
        let child = Command::new(syncd_path())
            .arg("--config")
            .arg(&self.config)
            .arg("--verbose")
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start deadbolt-syncd");
        self.child = Some(child);
    }

    /// The daemon's status file, parsed, once it exists.
    pub fn status(&self) -> Option<serde_json::Value> {
        let text = fs::read_to_string(self.sync_dir.join("status.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Waits until the daemon has loaded the directory and is connected.
    pub fn wait_ready(&mut self) {
        self.wait_ready_within(PROPAGATION);
    }

    /// [`Syncd::wait_ready`] with a deadline of its own (large loads).
    pub fn wait_ready_within(&mut self, deadline: Duration) {
        let log = self.log.clone();
        let mut seen_exit = None;
        wait_until("deadbolt-syncd connected and loaded", deadline, || {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    seen_exit = Some(status);
                    panic!(
                        "deadbolt-syncd exited ({status}):\n{}",
                        fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
            let status = self.status()?;
            (status["connected"] == true && status["refreshed"] == true).then_some(())
        });
        let _ = seen_exit;
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How the daemon exited, if it did: `None` while it runs.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGKILL: the crash case.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the daemon runs");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        child.wait().expect("wait for deadbolt-syncd")
    }

    /// Starts it again with the same files.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Syncd {
    fn drop(&mut self) {
        self.kill();
        // A failing test shows what the daemon said.
        if std::thread::panicking() {
            eprintln!("--- {} ---\n{}", self.log.display(), self.log_text());
        }
    }
}

/// Writes `secret` to a new 0600 file in `dir` and returns its path.
pub fn secret_file(dir: &Path, name: &str, secret: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, secret).expect("write the secret file");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod 0600");
    path
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB; `None`
/// once the process is gone.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
