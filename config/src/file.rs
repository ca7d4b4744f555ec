//! The file's schema and its validation.
//!
//! Values are first read as spanned TOML values with every unknown key
//! refused, then checked one by one, so each error points at the value that
//! caused it and says in the file's own words what is accepted (`deny must be
//! an integer from 1 to 10000, not the string "3"`), rather than in serde's.

use crate::args::absolute_path;
use crate::duration::{echo, parse_duration};
use crate::error::ConfigError;
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    lockout: Table<RawLockout, LockoutWords>,
    #[serde(default)]
    state: Table<RawState, StateWords>,
    #[serde(default)]
    policy: SpannedList<Table<RawPolicy, PolicyTableWords>, PolicyWords>,
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

struct StateWords;
impl Expecting for StateWords {
    const EXPECTING: &'static str = "a table, starting with a [state] line (one pair of brackets)";
}

struct PolicyTableWords;
impl Expecting for PolicyTableWords {
    const EXPECTING: &'static str = "a table with name, groups and [policy.lockout]";
}

struct PolicyLockoutWords;
impl Expecting for PolicyLockoutWords {
    const EXPECTING: &'static str =
        "a table, starting with a [policy.lockout] line (one pair of brackets)";
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
    let raw: RawFile = toml::from_str(text)
        .map_err(|e| ConfigError::spanned(origin, text, e.span(), toml_message(&e, text)))?;
    let check = Checker { text, origin };
    let lockout = check.lockout(&raw.lockout)?;
    let state = check.state(&raw.state)?;
    let mut policies = Vec::with_capacity(raw.policy.items.len());
    let mut names = HashSet::new();
    for policy in &raw.policy.items {
        policies.push(check.policy(policy, &lockout, &mut names)?);
    }
    Ok(Config {
        lockout,
        state,
        policies,
        ..Config::default()
    })
}

/// The parser's message, reworded where it would leave an administrator
/// guessing.
fn toml_message(error: &toml::de::Error, text: &str) -> String {
    let message = error.message();
    if error.span().is_none() && message == "recursion limit" {
        return "tables are nested too deeply (recursion limit): the deepest table deadbolt reads is [policy.lockout]".to_owned();
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
        return format!(
            "the integer {} does not fit in 64 bits (signed): the only integer setting, deny, takes 1 to {MAX_DENY}",
            echo(digits)
        );
    }
    message.to_owned()
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
            absolute_path(dir)
                .map_err(|problem| self.error(v.span(), format!("dir: the {problem}")))?;
            settings.dir = PathBuf::from(dir);
        }
        if let Some(v) = &raw.track_unknown_users {
            settings.track_unknown_users = self.boolean("track_unknown_users", v)?;
        }
        Ok(settings)
    }

    fn policy(
        &self,
        raw: &Spanned<Table<RawPolicy, PolicyTableWords>>,
        lockout: &LockoutSettings,
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
        Ok(Policy {
            name: name.to_owned(),
            groups,
            lockout: overrides,
        })
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
