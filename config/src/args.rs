//! PAM module arguments, pam_faillock style: `conf=PATH` picks the file, and
//! `key=value` or bare flags override it.

use crate::duration::{echo, parse_duration};
use crate::{check_group_name, Config, DelayMode, MAX_DENY};
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

fn conf_path(path: &str) -> Result<(), String> {
    absolute_path(path).map_err(|problem| format!("the configuration file {problem}"))
}

/// Checks a path given for the state directory or the file: absolute, and
/// free of characters that would garble a log line.
pub(crate) fn absolute_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        Err("path is empty: write an absolute path such as \"/var/lib/deadbolt\"".to_owned())
    } else if path.chars().any(char::is_control) {
        Err("path contains a control character: write an absolute path such as \"/var/lib/deadbolt\"".to_owned())
    } else if !Path::new(path).is_absolute() {
        Err(format!(
            "path `{}` is relative: write an absolute path such as \"/var/lib/deadbolt\"",
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
            absolute_path(dir).map_err(|problem| format!("the state directory {problem}"))?;
            config.state.dir = PathBuf::from(dir);
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
                 track_unknown_users, enabled=BOOL",
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
