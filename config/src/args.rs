//! PAM module arguments, pam_faillock style: `conf=PATH` picks the file, and
//! `key=value` or bare flags override it.

use crate::duration::{echo, parse_duration};
use crate::password::{self, IntegerKey};
use crate::{check_group_name, Config, DelayMode, DEFAULT_POLICY_NAME, MAX_DENY};
use deadbolt_core::UnlockAfter;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A module argument that was refused. The PAM module logs it and ignores
/// the argument, as the reference says: a typo in `/etc/pam.d` must not lock
/// everyone out, nor turn lockout off.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgError {
    /// The argument as written, e.g. `deny=abc`.
    pub arg: String,
    /// What was wrong and what is accepted.
    pub message: String,
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "module argument `{}`: {}",
            self.arg.escape_debug(),
            self.message
        )
    }
}

impl std::error::Error for ArgError {}

/// The module arguments split into the file to read and everything else.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModuleArgs<'a> {
    /// The last valid `conf=PATH`, if any.
    pub conf: Option<PathBuf>,
    /// Every other argument, in order: mode words (`preauth`, `authfail`,
    /// `authsucc`, ...) for the module to interpret, overrides for
    /// [`Config::apply_module_arg`], and any `conf=` whose path was refused,
    /// which `apply_module_arg` then reports as an [`ArgError`].
    pub rest: Vec<&'a str>,
}

/// Pulls `conf=PATH` out of the module arguments, since the file must be
/// read before the other arguments can override it.
///
/// Only an absolute path is taken: a relative one would be resolved against
/// the working directory of whatever program loaded the module. When `conf=`
/// is repeated, the last valid one wins, as with the other arguments.
pub fn split_module_args<'a>(args: &[&'a str]) -> ModuleArgs<'a> {
    let mut split = ModuleArgs::default();
    for &arg in args {
        match arg.strip_prefix("conf=") {
            Some(path) if conf_path(path).is_ok() => split.conf = Some(PathBuf::from(path)),
            _ => split.rest.push(arg),
        }
    }
    split
}

/// The example in messages about the state directory.
pub(crate) const STATE_DIR_EXAMPLE: &str = "/var/lib/deadbolt";

fn conf_path(path: &str) -> Result<(), String> {
    absolute_path(path, crate::DEFAULT_CONFIG_PATH)
        .map_err(|problem| format!("the configuration file {problem}"))
}

/// Checks a path given for the state directory, the file or a program:
/// absolute, and free of characters that would garble a log line. `example`
/// is a path of the kind wanted, for the message.
pub(crate) fn absolute_path(path: &str, example: &str) -> Result<(), String> {
    if path.is_empty() {
        Err(format!(
            "path is empty: write an absolute path such as \"{example}\""
        ))
    } else if path.chars().any(char::is_control) {
        Err(format!(
            "path contains a control character: write an absolute path such as \"{example}\""
        ))
    } else if !Path::new(path).is_absolute() {
        Err(format!(
            "path `{}` is relative: write an absolute path such as \"{example}\"",
            echo(path)
        ))
    } else {
        Ok(())
    }
}

/// [`Config::apply_override`]: every check comes before the first change, so
/// a refused argument changes nothing.
pub(crate) fn apply(config: &mut Config, key: &str, value: Option<&str>) -> Result<(), ArgError> {
    apply_checked(config, key, value).map_err(|message| ArgError {
        arg: match value {
            Some(value) => format!("{key}={value}"),
            None => key.to_owned(),
        },
        message,
    })
}

fn apply_checked(config: &mut Config, key: &str, value: Option<&str>) -> Result<(), String> {
    match key {
        "deny" => {
            let deny = deny(required(key, "N", value)?)?;
            config.lockout.deny = deny;
            config.overrides_mut().deny = Some(deny);
        }
        "fail_interval" => {
            let interval = duration(required(key, "DURATION", value)?)?;
            if interval.is_zero() {
                return Err(
                    "fail_interval must be longer than 0, e.g. fail_interval=15m".to_owned(),
                );
            }
            config.lockout.fail_interval = interval;
            config.overrides_mut().fail_interval = Some(interval);
        }
        "unlock_after" => {
            let unlock_after = unlock_after(required(key, "DURATION|never", value)?)?;
            config.lockout.unlock_after = unlock_after;
            config.overrides_mut().unlock_after = Some(unlock_after);
        }
        "enabled" => {
            let enabled = flag(value)?;
            config.lockout.enabled = enabled;
            config.overrides_mut().enabled = Some(enabled);
        }
        "delay" => {
            let delay = duration(required(key, "DURATION", value)?)?;
            config.lockout.delay.delay = delay;
            config.overrides_mut().delay = Some(delay);
        }
        "max_delay" => {
            let max_delay = duration(required(key, "DURATION", value)?)?;
            config.lockout.delay.max_delay = max_delay;
            config.overrides_mut().max_delay = Some(max_delay);
        }
        "delay_mode" => {
            let text = required(key, "fixed|backoff|none", value)?;
            let mode = DelayMode::parse(text).ok_or_else(|| {
                format!(
                    "`{}` is not a delay mode: write fixed, backoff or none",
                    echo(text)
                )
            })?;
            config.lockout.delay.mode = mode;
            config.overrides_mut().delay_mode = Some(mode);
        }
        "nodelay" => {
            // `nodelay=false` asks for nothing: it leaves the delay as it is.
            if flag(value)? {
                config.lockout.delay.mode = DelayMode::None;
                config.overrides_mut().delay_mode = Some(DelayMode::None);
            }
        }
        "even_deny_root" => config.lockout.even_deny_root = flag(value)?,
        "silent" => config.lockout.silent = flag(value)?,
        "refuse_in_account" => config.lockout.refuse_in_account = flag(value)?,
        "track_unknown_users" => config.state.track_unknown_users = flag(value)?,
        "admin_group" => {
            let name = required(key, "NAME", value)?;
            if name.is_empty() {
                config.lockout.admin_group = None;
            } else {
                check_group_name(name)?;
                config.lockout.admin_group = Some(name.to_owned());
            }
        }
        "dir" => {
            let dir = required(key, "PATH", value)?;
            absolute_path(dir, STATE_DIR_EXAMPLE)
                .map_err(|problem| format!("the state directory {problem}"))?;
            config.state.dir = PathBuf::from(dir);
        }
        "min_length" => {
            let min_length = integer(key, &password::MIN_LENGTH, value)?;
            check_min_length(config, min_length)?;
            config.password.rules.min_length = min_length;
            config.password_overrides_mut().min_length = Some(min_length);
        }
        "remember" => {
            let remember = integer(key, &password::REMEMBER, value)?;
            config.password.rules.remember = remember;
            config.password_overrides_mut().remember = Some(remember);
        }
        "min_strength" => {
            // At most MAX_STRENGTH, so it fits.
            let score = integer(key, &password::MIN_STRENGTH, value)? as u8;
            config.password.min_strength = score;
            config.password_overrides_mut().min_strength = Some(score);
        }
        "retry" => {
            let retry = integer(key, &password::RETRY, value)?;
            config.password.retry = retry;
            config.password_overrides_mut().retry = Some(retry);
        }
        "enforce_for_root" => {
            let enforce = flag(value)?;
            config.password.enforce_for_root = enforce;
            config.password_overrides_mut().enforce_for_root = Some(enforce);
        }
        "checker" => {
            let path = required(key, "PATH", value)?;
            password::file_path(path, password::DEFAULT_CHECKER)
                .map_err(|problem| format!("the checker {problem}"))?;
            config.password.checker = PathBuf::from(path);
        }
        "list" => {
            let path = required(key, "PATH", value)?;
            password::file_path(path, password::DEFAULT_LIST)
                .map_err(|problem| format!("the word list {problem}"))?;
            let path = PathBuf::from(path);
            // Naming a list twice reads it once.
            if !config.password.lists.contains(&path) {
                if config.password.lists.len() >= password::MAX_LISTS {
                    return Err(format!(
                        "there are already {} word lists, the most deadbolt reads",
                        password::MAX_LISTS
                    ));
                }
                config.password.lists.push(path);
            }
        }
        "conf" => {
            let path = required(key, "PATH", value)?;
            conf_path(path)?;
            return Err(
                "conf= picks the file before it is read: pass the arguments through split_module_args"
                    .to_owned(),
            );
        }
        _ => {
            return Err(format!(
                "unknown argument `{}`: the arguments are preauth, authfail, authsucc, conf=PATH, \
                 deny=N, fail_interval=DURATION, unlock_after=DURATION|never, even_deny_root, \
                 admin_group=NAME, silent, dir=PATH, nodelay, delay=DURATION, \
                 delay_mode=fixed|backoff|none, max_delay=DURATION, refuse_in_account=BOOL, \
                 track_unknown_users, enabled=BOOL, min_length=N, remember=N, \
                 min_strength=N, retry=N, enforce_for_root, checker=PATH, list=PATH",
                echo(key)
            ))
        }
    }
    Ok(())
}

fn required<'v>(key: &str, what: &str, value: Option<&'v str>) -> Result<&'v str, String> {
    value.ok_or_else(|| format!("needs a value: write {key}={what}"))
}

/// A flag alone means true; `=true` and `=false` say it explicitly.
fn flag(value: Option<&str>) -> Result<bool, String> {
    match value {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(format!(
            "`{}` is not a boolean: write true or false, or the bare flag for true",
            echo(other)
        )),
    }
}

fn deny(text: &str) -> Result<u32, String> {
    match text.parse::<u64>() {
        Ok(0) => Err(format!(
            "deny=0 would never lock: write a number of failures from 1 to {MAX_DENY} (enabled=false turns lockout off)"
        )),
        Ok(n) if n <= u64::from(MAX_DENY) => Ok(n as u32),
        _ => Err(format!(
            "`{}` is not a number of failures from 1 to {MAX_DENY}",
            echo(text)
        )),
    }
}

/// An integer argument within `spec`'s range.
fn integer(key: &str, spec: &IntegerKey, value: Option<&str>) -> Result<u32, String> {
    let text = required(key, "N", value)?;
    // Digits only: no sign, no spaces, no `0x`.
    let n = match text.parse::<i64>() {
        Ok(n) if text.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => return Err(format!("`{}` is not {}", echo(text), spec.accepted())),
    };
    spec.check(n)
        .map_err(|problem| format!("{key}={n} {problem}"))
}

/// `min_length=N` may not exceed the `max_length` of `[password]`, nor that
/// of any `[[policy]]`: the file refuses that contradiction, and so do the
/// arguments.
fn check_min_length(config: &Config, min_length: u32) -> Result<(), String> {
    let global = config.password.rules.max_length;
    let mut maxima = vec![(DEFAULT_POLICY_NAME, global)];
    for policy in &config.policies {
        maxima.push((&policy.name, policy.password.max_length.unwrap_or(global)));
    }
    match maxima.into_iter().find(|&(_, max)| min_length > max) {
        Some((name, max)) => {
            let whose = if name == DEFAULT_POLICY_NAME {
                "of [password]".to_owned()
            } else {
                format!("of [[policy]] \"{name}\"")
            };
            Err(format!(
                "min_length={min_length} is more than the max_length ({max}) {whose}: no password could be both"
            ))
        }
        None => Ok(()),
    }
}

fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text)
}

fn unlock_after(text: &str) -> Result<UnlockAfter, String> {
    if text == "never" {
        return Ok(UnlockAfter::Never);
    }
    let after = parse_duration(text).map_err(|message| format!("{message}; or \"never\""))?;
    if after.is_zero() {
        return Err(
            "unlock_after=0 would unlock at once: write a duration such as 10m, or never to lock until the account is reactivated"
                .to_owned(),
        );
    }
    Ok(UnlockAfter::After(after))
}
