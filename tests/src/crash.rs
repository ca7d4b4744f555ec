//! Killing writers at random points: a seeded random source (the seed is
//! printed, so a failing run can be repeated), processes killed with SIGKILL
//! after a random delay, and the PAM service installed in `/etc/pam.d` under
//! a name of its own, so the real libpam loads it and any number of logins
//! start at once (pam_wrapper serializes start-ups, see
//! [`crate::StartupLock`]).

use crate::{deadboltctl_path, PamEnv, SERVICE};
use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A small seeded generator (SplitMix64): reproducible from its seed, and
/// good enough to spread kill points; not for anything secret.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The seed from `DEADBOLT_CRASH_SEED`, or one taken from the clock;
    /// printed either way, with how to run again with it.
    pub fn from_env(what: &str) -> Self {
        let seed = std::env::var("DEADBOLT_CRASH_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("{what}: seed {seed} (DEADBOLT_CRASH_SEED={seed} runs it again)");
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A delay in `0..=max`, to the microsecond.
    pub fn delay(&mut self, max: Duration) -> Duration {
        Duration::from_micros(self.below(max.as_micros() as u64 + 1))
    }

    /// A delay in `low..=high`, to the microsecond.
    pub fn delay_between(&mut self, low: Duration, high: Duration) -> Duration {
        low + self.delay(high.saturating_sub(low))
    }

    /// A generator of its own for a worker thread, derived from this one.
    pub fn fork(&mut self) -> Rng {
        Rng(self.next_u64())
    }
}

/// `DEADBOLT_CRASH_SCALE` (default 1): multiplies the number of kills.
pub fn scale() -> u64 {
    std::env::var("DEADBOLT_CRASH_SCALE")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

/// The mean duration of the runs that ended by themselves so far: under
/// load a process runs longer, and the kill delays drawn from it follow.
#[derive(Debug, Default)]
pub struct RunTimes {
    micros: AtomicU64,
    runs: AtomicU64,
}

impl RunTimes {
    pub fn add(&self, ran: Duration) {
        self.micros
            .fetch_add(ran.as_micros() as u64, Ordering::Relaxed);
        self.runs.fetch_add(1, Ordering::Relaxed);
    }

    /// Zero before the first run.
    pub fn mean(&self) -> Duration {
        let runs = self.runs.load(Ordering::Relaxed).max(1);
        Duration::from_micros(self.micros.load(Ordering::Relaxed) / runs)
    }
}

/// How a process started by [`run_killed_after`] ended.
#[derive(Debug)]
pub struct Ended {
    pub pid: u32,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// How long it ran.
    pub ran: Duration,
}

impl Ended {
    /// SIGKILL ended it: it never answered.
    pub fn killed(&self) -> bool {
        self.status.signal() == Some(9)
    }
}

/// Starts `cmd` with `input` on its standard input, kills it with SIGKILL
/// after `kill_after` (if given and it still runs), and waits for it. A
/// process that ended before the signal reports its own exit status.
pub fn run_killed_after(mut cmd: Command, input: &[u8], kill_after: Option<Duration>) -> Ended {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the process");
    let pid = child.id();
    if let Some(mut stdin) = child.stdin.take() {
        // A process killed or finished before reading: a broken pipe.
        let _ = stdin.write_all(input);
    }
    if let Some(delay) = kill_after {
        std::thread::sleep(delay.saturating_sub(started.elapsed()));
        // On a process that has exited but is not yet reaped this does
        // nothing: its own status stands.
        let _ = child.kill();
    }
    let output = child.wait_with_output().expect("wait for the process");
    Ended {
        pid,
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        ran: started.elapsed(),
    }
}

/// `env`'s PAM service, installed in `/etc/pam.d` under a name of its own
/// (root only) with a pam_matrix password file for that name; removed when
/// dropped. The real libpam loads it: no pam_wrapper, no start-up lock, no
/// `/tmp/pam.X` left by a killed process.
#[derive(Debug)]
pub struct SystemService {
    pub name: String,
    path: PathBuf,
    passdb: PathBuf,
    root: PathBuf,
    config: PathBuf,
}

impl SystemService {
    pub fn install(env: &PamEnv) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "deadbolt-crash-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let root = env.root().to_owned();
        let passdb = root.join(format!("passdb.{name}"));
        let original = fs::read_to_string(root.join("passdb")).expect("read passdb");
        let own: String = original
            .lines()
            .map(|line| match line.rsplit_once(':') {
                Some((head, service)) if service == SERVICE => format!("{head}:{name}\n"),
                _ => format!("{line}\n"),
            })
            .collect();
        fs::write(&passdb, own).expect("write the service's passdb");
        let text = fs::read_to_string(env.service_file()).expect("read the service file");
        let from = format!("passdb={}", root.join("passdb").display());
        let text = text.replace(&from, &format!("passdb={}", passdb.display()));
        let path = PathBuf::from("/etc/pam.d").join(&name);
        fs::write(&path, text).expect("install the service in /etc/pam.d (root)");
        SystemService {
            name,
            path,
            passdb,
            root,
            config: env.config_path().to_owned(),
        }
    }

    /// `pamtester -v SERVICE user ops...` through the real libpam, users
    /// from nss_wrapper's files.
    pub fn pamtester(&self, user: &str, ops: &[&str]) -> Command {
        let mut cmd = Command::new("pamtester");
        cmd.arg("-v").arg(&self.name).arg(user).args(ops);
        self.nss(&mut cmd);
        cmd
    }

    /// `deadboltctl --config <the env's config> args...`, as
    /// [`PamEnv::deadboltctl`] runs it.
    pub fn deadboltctl(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(deadboltctl_path());
        cmd.arg("--config").arg(&self.config).args(args);
        self.nss(&mut cmd);
        cmd
    }

    fn nss(&self, cmd: &mut Command) {
        cmd.env("LD_PRELOAD", "libnss_wrapper.so")
            .env("NSS_WRAPPER_PASSWD", self.root.join("passwd"))
            .env("NSS_WRAPPER_GROUP", self.root.join("group"))
            .env_remove("PAM_WRAPPER")
            .env_remove("DEADBOLT_CONFIG")
            .env_remove("PAM_OLDAUTHTOK")
            .current_dir(&self.root);
    }

    /// The password pam_matrix holds for `user` in this service's file.
    pub fn password(&self, user: &str) -> Option<String> {
        let text = fs::read_to_string(&self.passdb).ok()?;
        text.lines().find_map(|line| {
            let mut fields = line.splitn(3, ':');
            (fields.next() == Some(user)).then(|| fields.next().unwrap_or("").to_owned())
        })
    }
}

impl Drop for SystemService {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}
