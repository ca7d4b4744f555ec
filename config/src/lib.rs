//! deadbolt's configuration: `/etc/deadbolt/deadbolt.toml` and the PAM module
//! arguments that override it: lockout after failed logins (`[lockout]`), the
//! password policy (`[password]`), per-group variations of both
//! (`[[policy]]`), and for a fleet, the host's name (`[host]`), the
//! directory it keeps in step with (`[directory]`) and the sync daemon's
//! own settings (`[sync]`).
//!
//! The PAM module, `deadboltctl` and the sync daemon all read the file through
//! [`Config::load`], so one file means the same thing to every program. Every
//! mistake is refused with `FILE:LINE:COLUMN: message` saying what was wrong
//! and what is accepted; the caller then logs it and falls back to
//! [`Config::default`], whose lockout stays on and whose password rules still
//! apply (fail safe, never fail open).
//!
//! The compiled defaults and the shipped `config/deadbolt.toml` are the same
//! thing written twice; a test keeps them from drifting apart.
#![forbid(unsafe_code)]

mod args;
mod directory;
mod duration;
mod error;
mod file;
mod password;
mod trust;

pub use args::{split_module_args, ArgError, ModuleArgs};
pub use directory::{
    check_keytab_file_owned_by, check_secret_file, check_secret_file_owned_by,
    open_secret_file_owned_by, Bind, DirectorySettings, HostSettings, LdapUri, PasswordStore,
    Scheme, SyncSettings, DEFAULT_DIRECTORY_TIMEOUT, DEFAULT_FULL_SCAN_EVERY, DEFAULT_KEYTAB,
    DEFAULT_MAX_CLOCK_SKEW, DEFAULT_USER_ATTRIBUTE, FALLBACK_HOST_NAME, MAX_ATTRIBUTE_BYTES,
    MAX_DN_BYTES, MAX_HOST_NAME, MAX_URIS, MAX_URI_BYTES, SYNC_SUBDIR,
};
pub use duration::{format_duration, parse_duration};
pub use error::ConfigError;
pub use file::mail::{
    MailSettings, MailTls, WelcomeSettings, DEFAULT_MAIL_TIMEOUT, DEFAULT_SUBJECT,
    DEFAULT_TEMPORARY_VALID_FOR, TEMPORARY_VALID_FOR_RANGE,
};
pub use password::{
    EffectivePassword, PasswordOverrides, PasswordSettings, DEFAULT_CHECKER, DEFAULT_LIST,
    HASH_MEMORY_KIB_PER_LANE, MAX_HASH_ITERATIONS, MAX_HASH_MEMORY_KIB, MAX_HASH_PARALLELISM,
    MAX_LENGTH, MAX_LISTS, MAX_PATH_BYTES, MAX_REMEMBER, MAX_RETRY, MAX_STRENGTH,
};
pub use trust::{check_trusted, Untrusted, MAX_LINKS};

use deadbolt_core::{LockoutPolicy, UnlockAfter};
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the file is read from unless `conf=` or `--config` says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/deadbolt/deadbolt.toml";

/// The largest file accepted, in bytes. A real configuration is a few
/// kilobytes; the cap keeps a runaway or hostile file from costing every
/// login the time and memory to parse it.
pub const MAX_CONFIG_SIZE: u64 = 1 << 20;

/// The largest `deny` accepted. The engine keeps up to `deny` failures in
/// memory while deriving a lock, and no real policy needs more.
pub const MAX_DENY: u32 = 10_000;

/// The [`EffectiveLockout::policy_name`] of users no `[[policy]]` matches,
/// and therefore a name no `[[policy]]` may take.
pub const DEFAULT_POLICY_NAME: &str = "default";

/// The whole configuration: the file's settings plus the module arguments
/// applied on top of them.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `[lockout]`: the rules for users no `[[policy]]` matches, and the
    /// global lockout settings (root, admin group, messages, account phase).
    pub lockout: LockoutSettings,
    /// `[password]`: the password rules for users no `[[policy]]` matches,
    /// and the global password settings (hashing, the checker, its lists).
    pub password: PasswordSettings,
    /// `[state]`: where the per-user state lives.
    pub state: StateSettings,
    /// `[host]`: how this host names itself in failures and the directory.
    pub host: HostSettings,
    /// `[directory]`; `None`: no directory, deadbolt runs alone on the host.
    pub directory: Option<DirectorySettings>,
    /// `[sync]`: the sync daemon's own settings.
    pub sync: SyncSettings,
    /// `[mail]`: the SMTP server welcome kits go through; `None`: no kit
    /// can be sent.
    pub mail: Option<MailSettings>,
    /// `[welcome]`: how long a welcome kit's temporary password works.
    pub welcome: WelcomeSettings,
    /// `[[policy]]`, in file order: the first that matches a user applies.
    pub policies: Vec<Policy>,
    /// Lockout settings given as module arguments. Kept apart from `lockout`
    /// (where they are also applied) because they must beat every per-group
    /// policy too, as pam_faillock's arguments beat its file.
    overrides: LockoutOverrides,
    /// Password settings given as module arguments, kept apart from
    /// `password` for the same reason.
    password_overrides: PasswordOverrides,
}

impl Default for Config {
    /// The compiled defaults, used when the file is missing, unreadable or
    /// invalid. They are those of `config/deadbolt.toml`, keep lockout on and
    /// still judge new passwords.
    fn default() -> Self {
        Config {
            lockout: LockoutSettings::default(),
            password: PasswordSettings::default(),
            state: StateSettings::default(),
            host: HostSettings::default(),
            directory: None,
            sync: SyncSettings::default(),
            mail: None,
            welcome: WelcomeSettings::default(),
            policies: Vec::new(),
            overrides: LockoutOverrides::default(),
            password_overrides: PasswordOverrides::default(),
        }
    }
}

/// `[lockout]`.
#[derive(Clone, Debug, PartialEq)]
pub struct LockoutSettings {
    /// `false`: failures never lock (disabling an account still does).
    pub enabled: bool,
    /// Failures within `fail_interval` that lock the account, 1 to [`MAX_DENY`].
    pub deny: u32,
    /// How far back failures count towards `deny`; never zero.
    pub fail_interval: Duration,
    pub unlock_after: UnlockAfter,
    /// Lock root and `admin_group` members too. Off by default: locking the
    /// last administrator out is the worse failure.
    pub even_deny_root: bool,
    /// Members are exempt from failure locks, like root. `""` in the file
    /// means none.
    pub admin_group: Option<String>,
    /// Tell the user nothing about locks, so a locked account cannot be told
    /// from a wrong password at the prompt.
    pub silent: bool,
    /// The account phase refuses locked accounts (instead of only warning),
    /// so a login that skips the password, like an SSH key, is refused too.
    pub refuse_in_account: bool,
    /// The pause after a failed login.
    pub delay: DelayPolicy,
}

impl Default for LockoutSettings {
    fn default() -> Self {
        let engine = LockoutPolicy::default();
        LockoutSettings {
            enabled: engine.enabled,
            deny: engine.deny,
            fail_interval: engine.fail_interval,
            unlock_after: engine.unlock_after,
            even_deny_root: false,
            admin_group: None,
            silent: false,
            refuse_in_account: true,
            delay: DelayPolicy::default(),
        }
    }
}

impl LockoutSettings {
    /// Lays the overrides that are set over these settings.
    fn apply(&mut self, overrides: &LockoutOverrides) {
        let LockoutOverrides {
            enabled,
            deny,
            fail_interval,
            unlock_after,
            delay,
            delay_mode,
            max_delay,
        } = *overrides;
        if let Some(enabled) = enabled {
            self.enabled = enabled;
        }
        if let Some(deny) = deny {
            self.deny = deny;
        }
        if let Some(fail_interval) = fail_interval {
            self.fail_interval = fail_interval;
        }
        if let Some(unlock_after) = unlock_after {
            self.unlock_after = unlock_after;
        }
        if let Some(delay) = delay {
            self.delay.delay = delay;
        }
        if let Some(mode) = delay_mode {
            self.delay.mode = mode;
        }
        if let Some(max_delay) = max_delay {
            self.delay.max_delay = max_delay;
        }
    }
}

/// How the pause after a failure grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DelayMode {
    /// The same `delay` after every failure.
    Fixed,
    /// `delay`, doubled for each further failure, up to `max_delay`: slows a
    /// password guesser without making a single typo costly.
    Backoff,
    /// No pause.
    None,
}

impl DelayMode {
    /// The word used in the file and in module arguments.
    pub fn as_str(self) -> &'static str {
        match self {
            DelayMode::Fixed => "fixed",
            DelayMode::Backoff => "backoff",
            DelayMode::None => "none",
        }
    }

    /// Reads the word used in the file and in module arguments.
    pub(crate) fn parse(text: &str) -> Option<DelayMode> {
        match text {
            "fixed" => Some(DelayMode::Fixed),
            "backoff" => Some(DelayMode::Backoff),
            "none" => Some(DelayMode::None),
            _ => None,
        }
    }
}

impl fmt::Display for DelayMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The pause after a failed login.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DelayPolicy {
    pub mode: DelayMode,
    /// The pause after a failure (the first one, with backoff).
    pub delay: Duration,
    /// The ceiling for backoff.
    pub max_delay: Duration,
}

impl Default for DelayPolicy {
    fn default() -> Self {
        DelayPolicy {
            mode: DelayMode::Fixed,
            delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl DelayPolicy {
    /// The pause after the `n`-th counted failure (`n` from 1; 0 is taken as 1).
    ///
    /// `Fixed`: `delay`. `Backoff`: `delay * 2^(n-1)`, capped at `max_delay`,
    /// without overflow for any `n`. `None`: zero.
    ///
    /// The file refuses a backoff `max_delay` below `delay`, but module
    /// arguments are applied one at a time and can still produce one; then
    /// the cap is `delay` itself, so the pause never drops below the one the
    /// administrator asked for.
    pub fn after_failures(&self, n: u32) -> Duration {
        match self.mode {
            DelayMode::None => Duration::ZERO,
            DelayMode::Fixed => self.delay,
            DelayMode::Backoff => {
                let cap = self.max_delay.max(self.delay);
                let mut pause = self.delay;
                // Doubling one step at a time cannot overflow, and ends soon:
                // a non-zero delay of at least 1ns passes any Duration within
                // 128 doublings, and a zero delay stays zero.
                for _ in 0..n.saturating_sub(1).min(128) {
                    if pause >= cap {
                        break;
                    }
                    pause = pause.saturating_mul(2);
                }
                pause.min(cap)
            }
        }
    }
}

/// `[state]`.
#[derive(Clone, Debug, PartialEq)]
pub struct StateSettings {
    /// The per-user state directory; always an absolute path.
    pub dir: PathBuf,
    /// Keep state for user names NSS does not know. Off by default: otherwise
    /// anyone could fill the disk by failing logins as made-up users.
    pub track_unknown_users: bool,
}

impl Default for StateSettings {
    fn default() -> Self {
        StateSettings {
            dir: PathBuf::from("/var/lib/deadbolt"),
            track_unknown_users: false,
        }
    }
}

/// One `[[policy]]`: lockout and password rules for the members of some
/// groups.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Unique, and never `"default"`: it is what `deadboltctl status` and the
    /// log show as the policy that applied.
    pub name: String,
    /// Unix groups (resolved through NSS); never empty.
    pub groups: Vec<String>,
    /// `[policy.lockout]`: only the keys the policy overrides.
    pub lockout: LockoutOverrides,
    /// `[policy.password]`: only the keys the policy overrides.
    pub password: PasswordOverrides,
}

/// Lockout settings that replace those of `[lockout]` where set: a
/// `[policy.lockout]`, or the module arguments.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LockoutOverrides {
    pub enabled: Option<bool>,
    pub deny: Option<u32>,
    pub fail_interval: Option<Duration>,
    pub unlock_after: Option<UnlockAfter>,
    pub delay: Option<Duration>,
    pub delay_mode: Option<DelayMode>,
    pub max_delay: Option<Duration>,
}

/// Everything the PAM module needs to decide about one user.
#[derive(Clone, Debug, PartialEq)]
pub struct EffectiveLockout {
    /// [`DEFAULT_POLICY_NAME`] or the name of the `[[policy]]` that applied.
    pub policy_name: String,
    /// What the engine evaluates.
    pub lockout: LockoutPolicy,
    pub delay: DelayPolicy,
    pub even_deny_root: bool,
    pub admin_group: Option<String>,
    pub silent: bool,
    pub refuse_in_account: bool,
}

impl Config {
    /// Reads and parses the file at `path`.
    ///
    /// Refuses anything but a regular file (a FIFO would hang every login),
    /// a file larger than [`MAX_CONFIG_SIZE`], and text that is not UTF-8.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let cannot_read =
            |e: std::io::Error| ConfigError::new(&origin, format!("cannot read the file: {e}"));
        let metadata = std::fs::metadata(path).map_err(cannot_read)?;
        if !metadata.is_file() {
            return Err(ConfigError::new(
                &origin,
                "not a regular file: the configuration must be a plain file",
            ));
        }
        if metadata.len() > MAX_CONFIG_SIZE {
            return Err(too_large(&origin));
        }
        let mut bytes = Vec::new();
        // Read one byte past the cap: the file may have grown since `metadata`.
        File::open(path)
            .and_then(|file| file.take(MAX_CONFIG_SIZE + 1).read_to_end(&mut bytes))
            .map_err(cannot_read)?;
        if bytes.len() as u64 > MAX_CONFIG_SIZE {
            return Err(too_large(&origin));
        }
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let prefix = String::from_utf8_lossy(&e.as_bytes()[..valid]);
                return Err(ConfigError::at(
                    &origin,
                    &prefix,
                    valid,
                    "the file is not valid UTF-8 here: write it in UTF-8",
                ));
            }
        };
        Self::parse(&text, &origin)
    }

    /// Parses configuration text; `origin` names it in errors (a path, or a
    /// label like `<stdin>`). Without `[host] name`, the machine's hostname
    /// is read now.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        if text.len() as u64 > MAX_CONFIG_SIZE {
            return Err(too_large(origin));
        }
        file::parse(text, origin)
    }

    /// Applies one module argument: `key=value`, or a bare flag (`value`
    /// `None`). Lockout and password keys are also recorded so that they
    /// beat every per-group policy in [`Config::effective_lockout`] and
    /// [`Config::effective_password`].
    ///
    /// A refused argument changes nothing; the PAM module logs the
    /// [`ArgError`] and goes on without it.
    pub fn apply_override(&mut self, key: &str, value: Option<&str>) -> Result<(), ArgError> {
        args::apply(self, key, value)
    }

    /// Applies one module argument as written in the PAM stack (`deny=5`,
    /// `silent`): [`Config::apply_override`] after splitting at the first `=`.
    pub fn apply_module_arg(&mut self, arg: &str) -> Result<(), ArgError> {
        match arg.split_once('=') {
            Some((key, value)) => self.apply_override(key, Some(value)),
            None => self.apply_override(arg, None),
        }
    }

    /// The rules for a user: the first `[[policy]]` with a group for which
    /// `is_member` is true (asked in file order, stopping at the first yes,
    /// since each question may be an NSS lookup), else `[lockout]`; then the
    /// module arguments, which beat both.
    pub fn effective_lockout(&self, is_member: impl Fn(&str) -> bool) -> EffectiveLockout {
        let mut settings = self.lockout.clone();
        let matched = self.policy_for(is_member);
        if let Some(policy) = matched {
            settings.apply(&policy.lockout);
        }
        settings.apply(&self.overrides);
        let policy_name = Self::policy_name(matched);
        EffectiveLockout {
            policy_name,
            lockout: LockoutPolicy {
                enabled: settings.enabled,
                deny: settings.deny,
                fail_interval: settings.fail_interval,
                unlock_after: settings.unlock_after,
            },
            delay: settings.delay,
            even_deny_root: settings.even_deny_root,
            admin_group: settings.admin_group,
            silent: settings.silent,
            refuse_in_account: settings.refuse_in_account,
        }
    }

    /// The password rules for a user, chosen as in
    /// [`Config::effective_lockout`] (the same policy applies to both): the
    /// first `[[policy]]` with a group for which `is_member` is true, whose
    /// `[policy.password]` is laid over `[password]`; then the module
    /// arguments, which beat both.
    pub fn effective_password(&self, is_member: impl Fn(&str) -> bool) -> EffectivePassword {
        let mut settings = self.password.clone();
        let matched = self.policy_for(is_member);
        if let Some(policy) = matched {
            settings.apply(&policy.password);
        }
        settings.apply(&self.password_overrides);
        settings.ageing.temporary_valid_for = Some(self.welcome.temporary_valid_for);
        EffectivePassword::new(Self::policy_name(matched), settings)
    }

    /// The first `[[policy]]`, in file order, with a group for which
    /// `is_member` is true; asking no further than the first yes, since each
    /// question may be an NSS lookup.
    fn policy_for(&self, is_member: impl Fn(&str) -> bool) -> Option<&Policy> {
        self.policies
            .iter()
            .find(|policy| policy.groups.iter().any(|group| is_member(group)))
    }

    /// What the log and `deadboltctl` call the rules that applied.
    fn policy_name(matched: Option<&Policy>) -> String {
        matched.map_or_else(|| DEFAULT_POLICY_NAME.to_owned(), |p| p.name.clone())
    }

    /// The lockout keys set by module arguments so far.
    pub fn overrides(&self) -> &LockoutOverrides {
        &self.overrides
    }

    /// The password keys set by module arguments so far.
    pub fn password_overrides(&self) -> &PasswordOverrides {
        &self.password_overrides
    }

    /// For [`args`]: the password overrides to record a module argument in.
    pub(crate) fn password_overrides_mut(&mut self) -> &mut PasswordOverrides {
        &mut self.password_overrides
    }

    /// For [`args`]: the overrides to record a module argument in.
    pub(crate) fn overrides_mut(&mut self) -> &mut LockoutOverrides {
        &mut self.overrides
    }
}

fn too_large(origin: &str) -> ConfigError {
    ConfigError::new(
        origin,
        format!("the file is larger than {MAX_CONFIG_SIZE} bytes (1 MiB): a configuration is a few kilobytes"),
    )
}

/// Checks a Unix group name as it may come from NSS (local files, LDAP, sssd
/// with `name@domain` or names with spaces), refusing only what no group
/// database can hold or what would garble a log line.
pub(crate) fn check_group_name(name: &str) -> Result<(), String> {
    const ACCEPTED: &str = "a group name is 1 to 256 bytes, without control characters, ':' or ',', and does not start with '-' or end in a space";
    let problem = if name.is_empty() {
        "is empty"
    } else if name.len() > 256 {
        "is longer than 256 bytes"
    } else if name.chars().any(char::is_control) {
        "contains a control character"
    } else if name.contains([':', ',']) {
        "contains ':' or ','"
    } else if name.starts_with('-') {
        "starts with '-'"
    } else if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        "starts or ends with a space"
    } else {
        return Ok(());
    };
    Err(format!(
        "the group name `{}` {problem}: {ACCEPTED}",
        duration::echo(name)
    ))
}

#[cfg(test)]
mod tests;

/// The `[state] dir` an invalid file names, if it can still be read: an
/// invalid file must not make the module forget every lock, disable and
/// expiry by moving to the default directory. Read from the TOML when it
/// parses (another key was wrong), else from the first `dir = "..."` line
/// of the `[state]` table. Only an absolute path without `..` is taken.
pub fn salvage_state_dir(text: &str) -> Option<PathBuf> {
    let from_toml = text
        .parse::<toml::Table>()
        .ok()
        .and_then(|table| table.get("state")?.get("dir")?.as_str().map(str::to_owned));
    let dir = from_toml.or_else(|| {
        let mut in_state = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_state = line.trim_start_matches('[').trim_end_matches(']').trim() == "state";
                continue;
            }
            if !in_state {
                continue;
            }
            let Some(value) = line
                .strip_prefix("dir")
                .map(str::trim_start)
                .and_then(|rest| rest.strip_prefix('='))
            else {
                continue;
            };
            let value = value.trim();
            return value
                .strip_prefix('"')
                .and_then(|v| v.split_once('"'))
                .map(|(inside, _)| inside.to_owned());
        }
        None
    })?;
    let path = PathBuf::from(dir);
    (path.is_absolute()
        && !path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir)))
    .then_some(path)
}

#[cfg(test)]
mod salvage_tests {
    use super::salvage_state_dir;
    use std::path::PathBuf;

    #[test]
    fn the_state_dir_of_an_invalid_file_is_kept() {
        let valid_toml = "[state]\ndir = \"/srv/db\"\n[lockout]\ndeny = \"many\"\n";
        assert_eq!(
            salvage_state_dir(valid_toml),
            Some(PathBuf::from("/srv/db"))
        );
        let broken = "[lockout\ndeny = = 3\n[state]\ndir = \"/srv/db\" # ours\n";
        assert_eq!(salvage_state_dir(broken), Some(PathBuf::from("/srv/db")));
        assert_eq!(salvage_state_dir("[other]\ndir = \"/x\"\n"), None);
        assert_eq!(salvage_state_dir("[state]\ndir = \"relative\"\n"), None);
        assert_eq!(salvage_state_dir("[state]\ndir = \"/a/../etc\"\n"), None);
        assert_eq!(salvage_state_dir("[state]\ndir = \"/unterminated\n"), None);
        assert_eq!(salvage_state_dir("\u{0}\u{ffff}[[[["), None);
    }
}
