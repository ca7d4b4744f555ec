//! The file's schema and its validation.
//!
//! Values are first read as spanned TOML values with every unknown key
//! refused, then checked one by one, so each error points at the value that
//! caused it and says in the file's own words what is accepted (`deny must be
//! an integer from 1 to 10000, not the string "3"`), rather than in serde's.

use crate::args::{absolute_path, STATE_DIR_EXAMPLE};
use crate::directory;
use crate::duration::{echo, format_duration, parse_duration};
use crate::error::ConfigError;
use crate::password::{self, Conflict, IntegerKey, PasswordOverrides, PasswordSettings};
use crate::{
    check_group_name, Config, DelayMode, DelayPolicy, LockoutOverrides, LockoutSettings, Policy,
    StateSettings, DEFAULT_POLICY_NAME, MAX_DENY,
};
use deadbolt_core::UnlockAfter;
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;
use toml::{Spanned, Value};

type Field = Option<Spanned<Value>>;

// `[mail]` and `[welcome]`: a child module, so that it checks its values
// with the same `Checker` as the rest of the file.
#[path = "mail.rs"]
pub(crate) mod mail;

// `[host]`, `[directory]` and `[sync]`, a child module for the same reason.
#[path = "fleet_keys.rs"]
mod fleet_keys;
use fleet_keys::{DirectoryWords, HostWords, RawDirectory, RawHost, RawSync, SyncWords};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    lockout: Table<RawLockout, LockoutWords>,
    #[serde(default)]
    password: Table<RawPassword, PasswordWords>,
    #[serde(default)]
    state: Table<RawState, StateWords>,
    #[serde(default)]
    policy: SpannedList<Table<RawPolicy, PolicyTableWords>, PolicyWords>,
    #[serde(default)]
    host: Table<RawHost, HostWords>,
    #[serde(default)]
    directory: Option<Spanned<Table<RawDirectory, DirectoryWords>>>,
    #[serde(default)]
    sync: Table<RawSync, SyncWords>,
    #[serde(default)]
    mail: Option<mail::MailTable>,
    #[serde(default)]
    welcome: mail::WelcomeTable,
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawLockout {
    enabled: Field,
    deny: Field,
    fail_interval: Field,
    unlock_after: Field,
    even_deny_root: Field,
    admin_group: Field,
    silent: Field,
    refuse_in_account: Field,
    delay: Field,
    delay_mode: Field,
    max_delay: Field,
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawPassword {
    min_length: Field,
    max_length: Field,
    min_upper: Field,
    min_lower: Field,
    min_digits: Field,
    min_special: Field,
    min_classes: Field,
    max_repeat: Field,
    min_strength: Field,
    remember: Field,
    enforce_for_root: Field,
    retry: Field,
    min_age: Field,
    max_age: Field,
    warn_age: Field,
    hash_memory_kib: Field,
    hash_iterations: Field,
    hash_parallelism: Field,
    checker: Field,
    lists: Option<Spanned<SpannedList<Value, ListWords>>>,
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawState {
    dir: Field,
    track_unknown_users: Field,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    name: Field,
    #[serde(default)]
    groups: Option<Spanned<SpannedList<Value, GroupWords>>>,
    #[serde(default)]
    lockout: Table<RawPolicyLockout, PolicyLockoutWords>,
    #[serde(default)]
    password: Table<RawPolicyPassword, PolicyPasswordWords>,
}

/// `[policy.lockout]`: only what may differ per group. `silent`, `admin_group`
/// and the like are global, and refused here as unknown keys.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawPolicyLockout {
    enabled: Field,
    deny: Field,
    fail_interval: Field,
    unlock_after: Field,
    delay: Field,
    delay_mode: Field,
    max_delay: Field,
}

/// `[policy.password]`: only what may differ per group. The hashing
/// parameters, `checker` and `lists` are global, and refused here as
/// unknown keys.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawPolicyPassword {
    min_length: Field,
    max_length: Field,
    min_upper: Field,
    min_lower: Field,
    min_digits: Field,
    min_special: Field,
    min_classes: Field,
    max_repeat: Field,
    min_strength: Field,
    remember: Field,
    enforce_for_root: Field,
    retry: Field,
    min_age: Field,
    max_age: Field,
    warn_age: Field,
}

/// An array whose elements keep their positions, with an "expected ..."
/// message in the file's words when the value is not an array.
struct SpannedList<T, W> {
    items: Vec<Spanned<T>>,
    words: PhantomData<W>,
}

impl<T, W> Default for SpannedList<T, W> {
    fn default() -> Self {
        SpannedList {
            items: Vec::new(),
            words: PhantomData,
        }
    }
}

/// What a [`SpannedList`] expects, for type errors.
trait Expecting {
    const EXPECTING: &'static str;
}

struct PolicyWords;
impl Expecting for PolicyWords {
    const EXPECTING: &'static str =
        "an array of tables, each starting with a [[policy]] line (two brackets)";
}

struct LockoutWords;
impl Expecting for LockoutWords {
    const EXPECTING: &'static str =
        "a table, starting with a [lockout] line (one pair of brackets)";
}

struct PasswordWords;
impl Expecting for PasswordWords {
    const EXPECTING: &'static str =
        "a table, starting with a [password] line (one pair of brackets)";
}

struct StateWords;
impl Expecting for StateWords {
    const EXPECTING: &'static str = "a table, starting with a [state] line (one pair of brackets)";
}

struct PolicyTableWords;
impl Expecting for PolicyTableWords {
    const EXPECTING: &'static str =
        "a table with name, groups, [policy.lockout] and [policy.password]";
}

struct PolicyLockoutWords;
impl Expecting for PolicyLockoutWords {
    const EXPECTING: &'static str =
        "a table, starting with a [policy.lockout] line (one pair of brackets)";
}

struct PolicyPasswordWords;
impl Expecting for PolicyPasswordWords {
    const EXPECTING: &'static str =
        "a table, starting with a [policy.password] line (one pair of brackets)";
}

struct ListWords;
impl Expecting for ListWords {
    const EXPECTING: &'static str =
        "an array of absolute paths, e.g. lists = [\"/usr/share/deadbolt/common-passwords.txt\"]";
}

struct GroupWords;
impl Expecting for GroupWords {
    const EXPECTING: &'static str = "an array of group names, e.g. groups = [\"contractors\"]";
}

impl<'de, T: Deserialize<'de>, W: Expecting> Deserialize<'de> for SpannedList<T, W> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor<T, W>(PhantomData<(T, W)>);
        impl<'de, T: Deserialize<'de>, W: Expecting> Visitor<'de> for ListVisitor<T, W> {
            type Value = SpannedList<T, W>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(W::EXPECTING)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(SpannedList {
                    items,
                    words: PhantomData,
                })
            }
        }
        deserializer.deserialize_seq(ListVisitor(PhantomData))
    }
}

/// A table and nothing else. serde's derived structs also accept an array
/// and read it by position, so `policy = [["a", ["g"]]]` would otherwise
/// pass for a policy named "a".
struct Table<T, W> {
    inner: T,
    words: PhantomData<W>,
}

impl<T: Default, W> Default for Table<T, W> {
    fn default() -> Self {
        Table {
            inner: T::default(),
            words: PhantomData,
        }
    }
}

impl<T, W> std::ops::Deref for Table<T, W> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<'de, T: Deserialize<'de>, W: Expecting> Deserialize<'de> for Table<T, W> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TableVisitor<T, W>(PhantomData<(T, W)>);
        impl<'de, T: Deserialize<'de>, W: Expecting> Visitor<'de> for TableVisitor<T, W> {
            type Value = Table<T, W>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(W::EXPECTING)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Ok(Table {
                    inner: T::deserialize(MapAccessDeserializer::new(map))?,
                    words: PhantomData,
                })
            }
        }
        deserializer.deserialize_map(TableVisitor(PhantomData))
    }
}

/// Parses and validates the file text into a [`Config`].
pub(crate) fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    parse_with(text, origin, &directory::machine_hostname)
}

/// [`parse`], with `hostname` standing in for the machine's: the name, or
/// why it cannot serve as one. Asked only when `[host] name` is absent.
pub(crate) fn parse_with(
    text: &str,
    origin: &str,
    hostname: &dyn Fn() -> Result<String, String>,
) -> Result<Config, ConfigError> {
    let raw: RawFile = toml::from_str(text)
        .map_err(|e| ConfigError::spanned(origin, text, e.span(), toml_message(&e, text)))?;
    let check = Checker { text, origin };
    let lockout = check.lockout(&raw.lockout)?;
    let password = check.password(&raw.password)?;
    let state = check.state(&raw.state)?;
    let mut policies = Vec::with_capacity(raw.policy.items.len());
    let mut names = HashSet::new();
    for policy in &raw.policy.items {
        policies.push(check.policy(policy, &lockout, &password, &mut names)?);
    }
    let directory = raw
        .directory
        .as_ref()
        .map(|table| check.directory(table))
        .transpose()?;
    let host = check.host(&raw.host, raw.directory.as_ref(), hostname)?;
    let sync = check.sync(&raw.sync, &state.dir)?;
    let mail = raw.mail.as_ref().map(|t| check.mail(t)).transpose()?;
    let welcome = check.welcome(&raw.welcome)?;
    Ok(Config {
        lockout,
        password,
        state,
        host,
        directory,
        sync,
        mail,
        welcome,
        policies,
        overrides: Default::default(),
        password_overrides: Default::default(),
    })
}

/// The parser's message, reworded where it would leave an administrator
/// guessing.
fn toml_message(error: &toml::de::Error, text: &str) -> String {
    let message = error.message();
    if error.span().is_none() && message == "recursion limit" {
        return "tables are nested too deeply (recursion limit): the deepest tables deadbolt reads are [policy.lockout] and [policy.password]".to_owned();
    }
    // An integer beyond i64 reaches serde as a u64 or an i128 that no TOML
    // value accepts; only its digits are worth repeating.
    let too_wide = match message {
        "u64 value was too large" => error.span().and_then(|span| text.get(span)),
        _ => message
            .strip_prefix("invalid type: integer `")
            .and_then(|rest| rest.split_once("` as "))
            .filter(|(_, kind)| kind.starts_with("i128") || kind.starts_with("u128"))
            .map(|(digits, _)| digits),
    };
    if let Some(digits) = too_wide {
        let accepted = error
            .span()
            .and_then(|span| key_before(text, span.start))
            .and_then(|key| {
                if key == "deny" {
                    Some(format!("an integer from 1 to {MAX_DENY}"))
                } else {
                    password::INTEGER_KEYS
                        .iter()
                        .find(|spec| spec.name == key)
                        .map(IntegerKey::accepted)
                }
                .map(|accepted| format!("{key} takes {accepted}"))
            })
            .unwrap_or_else(|| "no setting takes an integer this large".to_owned());
        return format!(
            "the integer {} does not fit in 64 bits (signed): {accepted}",
            echo(digits)
        );
    }
    message.to_owned()
}

/// The key whose value starts at byte `offset` of `text`: `deny` in
/// `deny = 99`, `lockout.deny = 99` or `{ deny = 99 }`. `None` when the
/// value does not directly follow `key =` (an array element, say).
fn key_before(text: &str, offset: usize) -> Option<&str> {
    let before = text.get(..offset)?;
    let equals = before.rfind('=')?;
    if !before[equals + 1..].trim().is_empty() {
        return None;
    }
    let written = &before[..equals];
    let start = written.rfind(['\n', '{', ',']).map_or(0, |i| i + 1);
    let key = written[start..].trim().rsplit('.').next()?.trim();
    Some(key.trim_matches(['"', '\'']))
}

/// Turns spanned raw values into checked settings, with errors that point
/// into `text`.
struct Checker<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Checker<'_> {
    fn error(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        ConfigError::at(self.origin, self.text, span.start, message)
    }

    fn lockout(&self, raw: &RawLockout) -> Result<LockoutSettings, ConfigError> {
        let mut settings = LockoutSettings::default();
        let overrides = self.lockout_overrides(&LockoutFields {
            enabled: &raw.enabled,
            deny: &raw.deny,
            fail_interval: &raw.fail_interval,
            unlock_after: &raw.unlock_after,
            delay: &raw.delay,
            delay_mode: &raw.delay_mode,
            max_delay: &raw.max_delay,
        })?;
        settings.apply(&overrides);
        if let Some(v) = &raw.even_deny_root {
            settings.even_deny_root = self.boolean("even_deny_root", v)?;
        }
        if let Some(v) = &raw.admin_group {
            let name = self.string("admin_group", v, "a group name, or \"\" for none")?;
            settings.admin_group = if name.is_empty() {
                None
            } else {
                check_group_name(name)
                    .map_err(|m| self.error(v.span(), format!("admin_group: {m}")))?;
                Some(name.to_owned())
            };
        }
        if let Some(v) = &raw.silent {
            settings.silent = self.boolean("silent", v)?;
        }
        if let Some(v) = &raw.refuse_in_account {
            settings.refuse_in_account = self.boolean("refuse_in_account", v)?;
        }
        let culprit = [&raw.max_delay, &raw.delay, &raw.delay_mode];
        self.check_backoff(&settings.delay, &culprit, "")?;
        Ok(settings)
    }

    fn state(&self, raw: &RawState) -> Result<StateSettings, ConfigError> {
        let mut settings = StateSettings::default();
        if let Some(v) = &raw.dir {
            let dir = self.string("dir", v, "an absolute path such as \"/var/lib/deadbolt\"")?;
            absolute_path(dir, STATE_DIR_EXAMPLE)
                .map_err(|problem| self.error(v.span(), format!("dir: the {problem}")))?;
            settings.dir = PathBuf::from(dir);
        }
        if let Some(v) = &raw.track_unknown_users {
            settings.track_unknown_users = self.boolean("track_unknown_users", v)?;
        }
        Ok(settings)
    }

    fn file_path(
        &self,
        key: &str,
        v: &Spanned<Value>,
        example: &str,
    ) -> Result<PathBuf, ConfigError> {
        let path = self.string(
            key,
            v,
            &format!("an absolute path in quotes, e.g. \"{example}\""),
        )?;
        password::file_path(path, example)
            .map_err(|problem| self.error(v.span(), format!("{key}: the {problem}")))?;
        Ok(PathBuf::from(path))
    }

    /// A duration within `(min, max)`, both included.
    fn bounded_duration(
        &self,
        key: &str,
        v: &Spanned<Value>,
        (min, max): (Duration, Duration),
        example: &str,
    ) -> Result<Duration, ConfigError> {
        let duration = self.duration(key, v)?;
        if (min..=max).contains(&duration) {
            return Ok(duration);
        }
        let written = v.get_ref().as_str().unwrap_or_default();
        Err(self.error(
            v.span(),
            format!(
                "{key} = \"{}\" is out of range: write a duration from {} to {}, e.g. \"{example}\"",
                echo(written),
                format_duration(min),
                format_duration(max)
            ),
        ))
    }

    fn policy(
        &self,
        raw: &Spanned<Table<RawPolicy, PolicyTableWords>>,
        lockout: &LockoutSettings,
        password: &PasswordSettings,
        names: &mut HashSet<String>,
    ) -> Result<Policy, ConfigError> {
        let table = raw.span();
        let raw = raw.get_ref();
        let Some(name_value) = &raw.name else {
            return Err(self.error(
                table,
                "this [[policy]] has no name: add one, e.g. name = \"contractors\"",
            ));
        };
        let name = self.string(
            "name",
            name_value,
            "a policy name in quotes, e.g. \"contractors\"",
        )?;
        check_policy_name(name).map_err(|m| self.error(name_value.span(), m))?;
        if !names.insert(name.to_owned()) {
            return Err(self.error(
                name_value.span(),
                format!(
                    "a [[policy]] named \"{name}\" already exists: each policy needs its own name"
                ),
            ));
        }
        let Some(groups_value) = &raw.groups else {
            return Err(self.error(
                table,
                format!("[[policy]] \"{name}\" has no groups: add the groups it applies to, e.g. groups = [\"contractors\"]"),
            ));
        };
        if groups_value.get_ref().items.is_empty() {
            return Err(self.error(
                groups_value.span(),
                format!("[[policy]] \"{name}\" has an empty groups list, so it would apply to nobody: name at least one group, e.g. groups = [\"contractors\"]"),
            ));
        }
        let mut groups = Vec::with_capacity(groups_value.get_ref().items.len());
        for group in &groups_value.get_ref().items {
            let text = self.string("each of groups", group, "a group name in quotes")?;
            check_group_name(text).map_err(|m| self.error(group.span(), m))?;
            groups.push(text.to_owned());
        }
        let fields = &raw.lockout;
        let overrides = self.lockout_overrides(&LockoutFields {
            enabled: &fields.enabled,
            deny: &fields.deny,
            fail_interval: &fields.fail_interval,
            unlock_after: &fields.unlock_after,
            delay: &fields.delay,
            delay_mode: &fields.delay_mode,
            max_delay: &fields.max_delay,
        })?;
        let mut effective = lockout.clone();
        effective.apply(&overrides);
        let culprits = [&fields.max_delay, &fields.delay, &fields.delay_mode];
        if culprits.iter().any(|field| field.is_some()) {
            self.check_backoff(
                &effective.delay,
                &culprits,
                &format!("in [[policy]] \"{name}\" (with [lockout]): "),
            )?;
        }
        let fields = &raw.password;
        let fields = PasswordFields {
            min_length: &fields.min_length,
            max_length: &fields.max_length,
            min_upper: &fields.min_upper,
            min_lower: &fields.min_lower,
            min_digits: &fields.min_digits,
            min_special: &fields.min_special,
            min_classes: &fields.min_classes,
            max_repeat: &fields.max_repeat,
            min_strength: &fields.min_strength,
            remember: &fields.remember,
            enforce_for_root: &fields.enforce_for_root,
            retry: &fields.retry,
            min_age: &fields.min_age,
            max_age: &fields.max_age,
            warn_age: &fields.warn_age,
        };
        let password_overrides = self.password_overrides(&fields)?;
        let mut effective = password.clone();
        effective.apply(&password_overrides);
        self.check_password_rules(
            &effective,
            &fields,
            &format!("in [[policy]] \"{name}\" (with [password]): "),
        )?;
        Ok(Policy {
            name: name.to_owned(),
            groups,
            lockout: overrides,
            password: password_overrides,
        })
    }

    fn password(&self, raw: &RawPassword) -> Result<PasswordSettings, ConfigError> {
        let mut settings = PasswordSettings::default();
        let fields = PasswordFields {
            min_length: &raw.min_length,
            max_length: &raw.max_length,
            min_upper: &raw.min_upper,
            min_lower: &raw.min_lower,
            min_digits: &raw.min_digits,
            min_special: &raw.min_special,
            min_classes: &raw.min_classes,
            max_repeat: &raw.max_repeat,
            min_strength: &raw.min_strength,
            remember: &raw.remember,
            enforce_for_root: &raw.enforce_for_root,
            retry: &raw.retry,
            min_age: &raw.min_age,
            max_age: &raw.max_age,
            warn_age: &raw.warn_age,
        };
        settings.apply(&self.password_overrides(&fields)?);
        if let Some(v) = &raw.hash_memory_kib {
            settings.hash.memory_kib = self.integer(&password::HASH_MEMORY_KIB, v)?;
        }
        if let Some(v) = &raw.hash_iterations {
            settings.hash.iterations = self.integer(&password::HASH_ITERATIONS, v)?;
        }
        if let Some(v) = &raw.hash_parallelism {
            settings.hash.parallelism = self.integer(&password::HASH_PARALLELISM, v)?;
        }
        let hash = settings.hash;
        let needed = u64::from(hash.parallelism) * u64::from(password::HASH_MEMORY_KIB_PER_LANE);
        if u64::from(hash.memory_kib) < needed {
            let span = [&raw.hash_memory_kib, &raw.hash_parallelism]
                .iter()
                .find_map(|field| field.as_ref().map(Spanned::span));
            return Err(ConfigError::spanned(
                self.origin,
                self.text,
                span,
                format!(
                    "hash_memory_kib ({}) is less than argon2id needs for hash_parallelism ({}): \
                     at least {} KiB per lane, {needed} in all; OWASP's minimum is 19456 KiB with \
                     2 iterations and 1 lane",
                    hash.memory_kib,
                    hash.parallelism,
                    password::HASH_MEMORY_KIB_PER_LANE
                ),
            ));
        }
        let work = u64::from(hash.memory_kib) * u64::from(hash.iterations);
        if work > password::MAX_HASH_WORK {
            let span = [&raw.hash_iterations, &raw.hash_memory_kib]
                .iter()
                .find_map(|field| field.as_ref().map(Spanned::span));
            return Err(ConfigError::spanned(
                self.origin,
                self.text,
                span,
                format!(
                    "hash_memory_kib × hash_iterations ({} × {} = {work}) is more than the {} \
                     a history entry may cost; lower one of them",
                    hash.memory_kib,
                    hash.iterations,
                    password::MAX_HASH_WORK
                ),
            ));
        }
        if let Some(v) = &raw.checker {
            let example = password::DEFAULT_CHECKER;
            let path = self.string(
                "checker",
                v,
                &format!("an absolute path in quotes, e.g. \"{example}\""),
            )?;
            password::file_path(path, example)
                .map_err(|problem| self.error(v.span(), format!("checker: the {problem}")))?;
            settings.checker = PathBuf::from(path);
        }
        if let Some(lists) = &raw.lists {
            settings.lists = self.lists(lists)?;
        }
        self.check_password_rules(&settings, &fields, "")?;
        Ok(settings)
    }

    fn lists(
        &self,
        lists: &Spanned<SpannedList<Value, ListWords>>,
    ) -> Result<Vec<PathBuf>, ConfigError> {
        let items = &lists.get_ref().items;
        if items.len() > password::MAX_LISTS {
            return Err(self.error(
                lists.span(),
                format!(
                    "lists names {} files, more than the {} deadbolt reads: merge some of them",
                    items.len(),
                    password::MAX_LISTS
                ),
            ));
        }
        let example = password::DEFAULT_LIST;
        let mut paths: Vec<PathBuf> = Vec::with_capacity(items.len());
        for item in items {
            let path = self.string(
                "each of lists",
                item,
                &format!("an absolute path in quotes, e.g. \"{example}\""),
            )?;
            password::file_path(path, example)
                .map_err(|problem| self.error(item.span(), format!("lists: the {problem}")))?;
            let path = PathBuf::from(path);
            if paths.contains(&path) {
                return Err(self.error(
                    item.span(),
                    format!(
                        "lists names `{}` twice: name each list once",
                        echo(&path.to_string_lossy())
                    ),
                ));
            }
            paths.push(path);
        }
        Ok(paths)
    }

    fn password_overrides(
        &self,
        raw: &PasswordFields<'_>,
    ) -> Result<PasswordOverrides, ConfigError> {
        let integer = |spec: &IntegerKey, field: &Field| -> Result<Option<u32>, ConfigError> {
            field.as_ref().map(|v| self.integer(spec, v)).transpose()
        };
        let score = integer(&password::MIN_STRENGTH, raw.min_strength)?;
        let mut overrides = PasswordOverrides {
            min_length: integer(&password::MIN_LENGTH, raw.min_length)?,
            max_length: integer(&password::MAX_LENGTH_KEY, raw.max_length)?,
            min_upper: integer(&password::MIN_UPPER, raw.min_upper)?,
            min_lower: integer(&password::MIN_LOWER, raw.min_lower)?,
            min_digits: integer(&password::MIN_DIGITS, raw.min_digits)?,
            min_special: integer(&password::MIN_SPECIAL, raw.min_special)?,
            min_classes: integer(&password::MIN_CLASSES, raw.min_classes)?,
            max_repeat: integer(&password::MAX_REPEAT, raw.max_repeat)?,
            // At most MAX_STRENGTH, so it fits.
            min_strength: score.map(|n| n as u8),
            remember: integer(&password::REMEMBER, raw.remember)?,
            retry: integer(&password::RETRY, raw.retry)?,
            ..PasswordOverrides::default()
        };
        if let Some(v) = raw.enforce_for_root {
            overrides.enforce_for_root = Some(self.boolean("enforce_for_root", v)?);
        }
        if let Some(v) = raw.min_age {
            overrides.min_age = Some(self.duration("min_age", v)?);
        }
        if let Some(v) = raw.max_age {
            overrides.max_age = Some(self.max_age(v)?);
        }
        if let Some(v) = raw.warn_age {
            overrides.warn_age = Some(self.duration("warn_age", v)?);
        }
        Ok(overrides)
    }

    /// Refuses rules no password could meet and ageing that leaves no time
    /// to change, pointing at a key of `raw` that made them; `table` names
    /// the policy. Only a contradiction `raw` takes part in is reported, so
    /// a policy is not blamed for what `[password]` says alone.
    fn check_password_rules(
        &self,
        settings: &PasswordSettings,
        raw: &PasswordFields<'_>,
        table: &str,
    ) -> Result<(), ConfigError> {
        if let Some((conflict, message)) = password::rules_conflict(&settings.rules) {
            let culprits: &[&Field] = match conflict {
                Conflict::Lengths => &[raw.min_length, raw.max_length],
                Conflict::Classes => &[
                    raw.min_upper,
                    raw.min_lower,
                    raw.min_digits,
                    raw.min_special,
                    raw.min_classes,
                    raw.max_length,
                ],
            };
            self.blame(culprits, table, &message)?;
        }
        if let Some(message) = password::ageing_conflict(&settings.ageing) {
            self.blame(&[raw.min_age, raw.max_age], table, &message)?;
        }
        Ok(())
    }

    /// Refuses `message`, pointing at the first of `culprits` present, if
    /// any of them is: otherwise the contradiction is none of this table's
    /// making, and was already refused where it was made.
    fn blame(&self, culprits: &[&Field], table: &str, message: &str) -> Result<(), ConfigError> {
        match culprits
            .iter()
            .find_map(|field| field.as_ref().map(Spanned::span))
        {
            Some(span) => Err(self.error(span, format!("{table}{message}"))),
            // The compiled defaults contradict nothing, so [password] alone
            // always has a culprit; this is only a safety net.
            None if table.is_empty() => Err(ConfigError::new(self.origin, message)),
            None => Ok(()),
        }
    }

    fn lockout_overrides(&self, raw: &LockoutFields<'_>) -> Result<LockoutOverrides, ConfigError> {
        let mut overrides = LockoutOverrides::default();
        if let Some(v) = raw.enabled {
            overrides.enabled = Some(self.boolean("enabled", v)?);
        }
        if let Some(v) = raw.deny {
            overrides.deny = Some(self.deny(v)?);
        }
        if let Some(v) = raw.fail_interval {
            let interval = self.duration("fail_interval", v)?;
            if interval.is_zero() {
                return Err(self.error(
                    v.span(),
                    "fail_interval must be longer than 0: failures count for this long, e.g. \"15m\"",
                ));
            }
            overrides.fail_interval = Some(interval);
        }
        if let Some(v) = raw.unlock_after {
            overrides.unlock_after = Some(self.unlock_after(v)?);
        }
        if let Some(v) = raw.delay {
            overrides.delay = Some(self.duration("delay", v)?);
        }
        if let Some(v) = raw.delay_mode {
            let text = self.string("delay_mode", v, "\"fixed\", \"backoff\" or \"none\"")?;
            let mode = DelayMode::parse(text).ok_or_else(|| {
                self.error(
                    v.span(),
                    format!(
                        "delay_mode must be \"fixed\", \"backoff\" or \"none\", not \"{}\"",
                        echo(text)
                    ),
                )
            })?;
            overrides.delay_mode = Some(mode);
        }
        if let Some(v) = raw.max_delay {
            overrides.max_delay = Some(self.duration("max_delay", v)?);
        }
        Ok(overrides)
    }

    /// With backoff, `max_delay` below `delay` is a contradiction: refused,
    /// pointing at the first of `culprits` (the keys that made it) present.
    fn check_backoff(
        &self,
        delay: &DelayPolicy,
        culprits: &[&Field],
        table: &str,
    ) -> Result<(), ConfigError> {
        if delay.mode != DelayMode::Backoff || delay.max_delay >= delay.delay {
            return Ok(());
        }
        let span = culprits
            .iter()
            .find_map(|field| field.as_ref().map(Spanned::span));
        let message = format!(
            "{table}max_delay ({}) is shorter than delay ({}): with delay_mode = \"backoff\", max_delay is the ceiling and must be at least delay",
            crate::format_duration(delay.max_delay),
            crate::format_duration(delay.delay)
        );
        Err(ConfigError::spanned(self.origin, self.text, span, message))
    }

    fn boolean(&self, key: &str, v: &Spanned<Value>) -> Result<bool, ConfigError> {
        match v.get_ref() {
            Value::Boolean(b) => Ok(*b),
            other => Err(self.error(
                v.span(),
                format!("{key} must be true or false, not {}", describe(other)),
            )),
        }
    }

    fn string<'v>(
        &self,
        key: &str,
        v: &'v Spanned<Value>,
        accepted: &str,
    ) -> Result<&'v str, ConfigError> {
        match v.get_ref() {
            Value::String(s) => Ok(s),
            other => Err(self.error(
                v.span(),
                format!("{key} must be {accepted}, not {}", describe(other)),
            )),
        }
    }

    fn deny(&self, v: &Spanned<Value>) -> Result<u32, ConfigError> {
        match v.get_ref() {
            Value::Integer(0) => Err(self.error(
                v.span(),
                format!("deny = 0 would never lock: write a number of failures from 1 to {MAX_DENY} (to turn lockout off, write enabled = false)"),
            )),
            Value::Integer(n) if (1..=i64::from(MAX_DENY)).contains(n) => Ok(*n as u32),
            Value::Integer(n) => Err(self.error(
                v.span(),
                format!("deny = {n} is out of range: write a number of failures from 1 to {MAX_DENY}"),
            )),
            other => Err(self.error(
                v.span(),
                format!("deny must be an integer from 1 to {MAX_DENY}, not {}", describe(other)),
            )),
        }
    }

    fn integer(&self, spec: &IntegerKey, v: &Spanned<Value>) -> Result<u32, ConfigError> {
        let key = spec.name;
        match v.get_ref() {
            Value::Integer(n) => spec
                .check(*n)
                .map_err(|problem| self.error(v.span(), format!("{key} = {n} {problem}"))),
            other => Err(self.error(
                v.span(),
                format!("{key} must be {}, not {}", spec.accepted(), describe(other)),
            )),
        }
    }

    fn max_age(&self, v: &Spanned<Value>) -> Result<Option<Duration>, ConfigError> {
        let accepted = "a duration in quotes, e.g. \"90d\", or \"never\"";
        let text = self.string("max_age", v, accepted)?;
        if text == "never" {
            return Ok(None);
        }
        let age = parse_duration(text).map_err(|message| {
            self.error(
                v.span(),
                format!("max_age: {message}; or \"never\" for passwords that do not expire"),
            )
        })?;
        if age.is_zero() {
            return Err(self.error(
                v.span(),
                "max_age = \"0\" would expire every password at once: write a duration such as \"90d\", or \"never\" for passwords that do not expire",
            ));
        }
        Ok(Some(age))
    }

    fn duration(&self, key: &str, v: &Spanned<Value>) -> Result<Duration, ConfigError> {
        let text = self.string(key, v, "a duration in quotes, e.g. \"15m\"")?;
        parse_duration(text).map_err(|message| self.error(v.span(), format!("{key}: {message}")))
    }

    fn unlock_after(&self, v: &Spanned<Value>) -> Result<UnlockAfter, ConfigError> {
        let accepted = "a duration in quotes, e.g. \"10m\", or \"never\"";
        let text = self.string("unlock_after", v, accepted)?;
        if text == "never" {
            return Ok(UnlockAfter::Never);
        }
        let after = parse_duration(text).map_err(|message| {
            self.error(
                v.span(),
                format!("unlock_after: {message}; or \"never\" to lock until the account is reactivated"),
            )
        })?;
        if after.is_zero() {
            return Err(self.error(
                v.span(),
                "unlock_after = \"0\" would unlock at once: write a duration such as \"10m\", or \"never\" to lock until the account is reactivated",
            ));
        }
        Ok(UnlockAfter::After(after))
    }
}

/// The lockout keys shared by `[lockout]` and `[policy.lockout]`.
struct LockoutFields<'a> {
    enabled: &'a Field,
    deny: &'a Field,
    fail_interval: &'a Field,
    unlock_after: &'a Field,
    delay: &'a Field,
    delay_mode: &'a Field,
    max_delay: &'a Field,
}

/// The password keys shared by `[password]` and `[policy.password]`.
struct PasswordFields<'a> {
    min_length: &'a Field,
    max_length: &'a Field,
    min_upper: &'a Field,
    min_lower: &'a Field,
    min_digits: &'a Field,
    min_special: &'a Field,
    min_classes: &'a Field,
    max_repeat: &'a Field,
    min_strength: &'a Field,
    remember: &'a Field,
    enforce_for_root: &'a Field,
    retry: &'a Field,
    min_age: &'a Field,
    max_age: &'a Field,
    warn_age: &'a Field,
}

/// A value as the administrator wrote it, for "not ..." in messages.
fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("the string \"{}\"", echo(s)),
        Value::Integer(n) => format!("the integer {n}"),
        Value::Float(x) => format!("the number {x}"),
        Value::Boolean(b) => format!("{b}"),
        Value::Datetime(_) => "a date".to_owned(),
        Value::Array(_) => "an array".to_owned(),
        Value::Table(_) => "a table".to_owned(),
    }
}

/// Policy names show up in logs, `deadboltctl status` and JSON: short, plain
/// words, and never the name of the top-level rules.
fn check_policy_name(name: &str) -> Result<(), String> {
    const ACCEPTED: &str =
        "a policy name is 1 to 64 letters, digits, '-', '_' or '.', e.g. \"contractors\"";
    if name == DEFAULT_POLICY_NAME {
        return Err(format!(
            "\"{DEFAULT_POLICY_NAME}\" is the name of the [lockout] rules: choose another name for this [[policy]]"
        ));
    }
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "the policy name \"{}\" is refused: {ACCEPTED}",
            echo(name)
        ));
    }
    Ok(())
}
