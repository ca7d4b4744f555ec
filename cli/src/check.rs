//! `deadboltctl check-config`: does the file parse, and what does it mean?

use crate::subject::Directory;
use deadbolt_config::{
    check_trusted, format_duration, Config, EffectiveLockout, EffectivePassword, Policy, Untrusted,
};
use deadbolt_core::password::PasswordRules;
use deadbolt_core::UnlockAfter;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// What a valid configuration sets, for people (`render`) and scripts
/// (JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub file: String,
    /// No errors.
    pub ok: bool,
    /// The file does not exist and the compiled defaults apply.
    pub defaults_used: bool,
    pub state: StateSummary,
    /// The rules for users no `[[policy]]` matches.
    pub default: LockoutSummary,
    /// The password rules for users no `[[policy]]` matches.
    pub default_password: PasswordSummary,
    /// Hashing, checker and lists: the same for everyone.
    pub password_globals: PasswordGlobals,
    pub policies: Vec<PolicySummary>,
    pub warnings: Vec<String>,
    /// Files someone other than root could have written: the module does
    /// not use them (the checker is not run, a change is refused).
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StateSummary {
    pub dir: String,
    pub track_unknown_users: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicySummary {
    pub name: String,
    pub groups: Vec<String>,
    #[serde(flatten)]
    pub lockout: LockoutSummary,
    pub password: PasswordSummary,
}

/// One effective set of password rules, in the words of the file.
#[derive(Debug, Clone, Serialize)]
pub struct PasswordSummary {
    #[serde(flatten)]
    pub rules: PasswordRules,
    pub min_strength: u8,
    pub enforce_for_root: bool,
    pub retry: u32,
    pub min_age: String,
    /// A duration, or `never`.
    pub max_age: String,
    pub warn_age: String,
}

/// The password settings every policy shares.
#[derive(Debug, Clone, Serialize)]
pub struct PasswordGlobals {
    /// `argon2id m=19456 t=2 p=1`.
    pub hash: String,
    pub checker: String,
    pub lists: Vec<String>,
}

impl PasswordSummary {
    fn of(effective: &EffectivePassword) -> Self {
        let ageing = &effective.ageing;
        PasswordSummary {
            rules: effective.rules.clone(),
            min_strength: effective.min_strength,
            enforce_for_root: effective.enforce_for_root,
            retry: effective.retry,
            min_age: format_duration(ageing.min_age),
            max_age: ageing
                .max_age
                .map_or_else(|| "never".to_owned(), format_duration),
            warn_age: format_duration(ageing.warn_age),
        }
    }

    /// `12 to 128 characters, strength 3 of 4, the last 5 not reusable,
    /// never expires`.
    fn rules_text(&self) -> String {
        let rules = &self.rules;
        let mut parts = vec![format!(
            "{} to {} characters",
            rules.min_length, rules.max_length
        )];
        for (n, what) in [
            (rules.min_upper, "upper case"),
            (rules.min_lower, "lower case"),
            (rules.min_digits, "digits"),
            (rules.min_special, "special"),
        ] {
            if n > 0 {
                parts.push(format!("{n}+ {what}"));
            }
        }
        if rules.min_classes > 0 {
            parts.push(format!("{} of 4 kinds of character", rules.min_classes));
        }
        parts.push(format!("strength {} of 4 or more", self.min_strength));
        parts.push(if rules.remember == 0 {
            "no history".to_owned()
        } else {
            format!("the last {} not reusable", rules.remember)
        });
        parts.push(if self.max_age == "never" {
            "never expires".to_owned()
        } else {
            format!("expires after {}", self.max_age)
        });
        parts.join(", ")
    }
}

/// One effective set of lockout rules, in the words of the file.
#[derive(Debug, Clone, Serialize)]
pub struct LockoutSummary {
    pub enabled: bool,
    pub deny: u32,
    pub fail_interval: String,
    /// A duration, or `never` (until reactivated).
    pub unlock_after: String,
    pub delay_mode: String,
    pub delay: String,
    pub max_delay: String,
    pub even_deny_root: bool,
    pub admin_group: Option<String>,
    pub silent: bool,
    pub refuse_in_account: bool,
}

impl LockoutSummary {
    fn of(effective: &EffectiveLockout) -> Self {
        let lockout = &effective.lockout;
        LockoutSummary {
            enabled: lockout.enabled,
            deny: lockout.deny,
            fail_interval: format_duration(lockout.fail_interval),
            unlock_after: match lockout.unlock_after {
                UnlockAfter::Never => "never".to_owned(),
                UnlockAfter::After(d) => format_duration(d),
            },
            delay_mode: effective.delay.mode.as_str().to_owned(),
            delay: format_duration(effective.delay.delay),
            max_delay: format_duration(effective.delay.max_delay),
            even_deny_root: effective.even_deny_root,
            admin_group: effective.admin_group.clone(),
            silent: effective.silent,
            refuse_in_account: effective.refuse_in_account,
        }
    }

    /// `3 failures within 15m lock for 10m; delay fixed 2s`.
    fn rules_text(&self) -> String {
        let mut text = if self.enabled {
            let lock = if self.unlock_after == "never" {
                "until reactivated".to_owned()
            } else {
                format!("for {}", self.unlock_after)
            };
            format!(
                "{} within {} lock {lock}",
                if self.deny == 1 {
                    "1 failure".to_owned()
                } else {
                    format!("{} failures", self.deny)
                },
                self.fail_interval
            )
        } else {
            "lockout off (failures never lock; disabling still does)".to_owned()
        };
        let delay = match self.delay_mode.as_str() {
            "none" => "no delay after a failure".to_owned(),
            "backoff" => format!(
                "delay {} after a failure, doubling up to {}",
                self.delay, self.max_delay
            ),
            _ => format!("delay {} after a failure", self.delay),
        };
        let _ = write!(text, "; {delay}");
        text
    }
}

/// The rules a member of `policy` gets, whether or not an earlier policy
/// takes him first.
fn effective_for(config: &Config, policy: &Policy) -> (EffectiveLockout, EffectivePassword) {
    let mut alone = config.clone();
    alone.policies = vec![policy.clone()];
    let member = |group: &str| policy.groups.iter().any(|g| g == group);
    (
        alone.effective_lockout(member),
        alone.effective_password(member),
    )
}

/// Whether only root can have written `path` (see [`check_trusted`]); a
/// relative path is taken from the current directory, as it was read.
pub fn trust_of(path: &Path) -> Result<(), Untrusted> {
    let absolute = std::path::absolute(path).map_err(|error| Untrusted::Inaccessible {
        path: path.to_owned(),
        error,
    })?;
    check_trusted(&absolute).map(drop)
}

/// `trust` says whether a file (the configuration, the checker, a list) is
/// safe for root to read or run ([`trust_of`]).
pub fn summarize(
    config: &Config,
    file: &Path,
    defaults_used: bool,
    directory: &dyn Directory,
    trust: &dyn Fn(&Path) -> Result<(), Untrusted>,
) -> Summary {
    let default = config.effective_lockout(|_| false);
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    if !defaults_used {
        if let Err(why) = trust(file) {
            errors.push(format!(
                "{} is not safe to use: someone other than root could have written it: {why}",
                file.display()
            ));
        }
    }
    if let Some(group) = &default.admin_group {
        if !directory.group_exists(group) {
            warnings.push(format!(
                "admin_group {group} is not known to NSS: nobody is exempt through it"
            ));
        }
    }
    let mut policies = Vec::new();
    for (i, policy) in config.policies.iter().enumerate() {
        for group in &policy.groups {
            if !directory.group_exists(group) {
                warnings.push(format!(
                    "policy {}: group {group} is not known to NSS: nobody gets the policy through it",
                    policy.name
                ));
            }
        }
        let earlier = &config.policies[..i];
        let shadowed = policy
            .groups
            .iter()
            .all(|g| earlier.iter().any(|e| e.groups.contains(g)));
        if shadowed {
            warnings.push(format!(
                "policy {}: never applies: each of its groups belongs to an earlier policy, \
                 and the first policy that matches a user wins",
                policy.name
            ));
        }
        let (lockout, password) = effective_for(config, policy);
        policies.push(PolicySummary {
            name: policy.name.clone(),
            groups: policy.groups.clone(),
            lockout: LockoutSummary::of(&lockout),
            password: PasswordSummary::of(&password),
        });
    }
    let default_password = config.effective_password(|_| false);
    // A missing checker or list never blocks a change, so it must be said
    // here: the policy would be weaker than the file reads. One others
    // could have written blocks every change.
    match trust(&default_password.checker) {
        Ok(()) => {}
        Err(why) if why.is_missing() => warnings.push(format!(
            "checker {} does not exist: passwords would be judged by the rules alone, \
             without strength or lists",
            default_password.checker.display()
        )),
        Err(why) => errors.push(format!(
            "checker {} is not safe to run as root: {why}; every password change is refused",
            default_password.checker.display()
        )),
    }
    for list in &default_password.lists {
        match trust(list) {
            Ok(()) => {}
            Err(why) if why.is_missing() => warnings.push(format!(
                "list {} does not exist: it would be skipped",
                list.display()
            )),
            Err(why) => errors.push(format!(
                "list {} is not safe to read: {why}; every password change is refused",
                list.display()
            )),
        }
    }
    let hash = &default_password.hash;
    let password_globals = PasswordGlobals {
        hash: format!(
            "argon2id m={} t={} p={}",
            hash.memory_kib, hash.iterations, hash.parallelism
        ),
        checker: default_password.checker.display().to_string(),
        lists: default_password
            .lists
            .iter()
            .map(|l| l.display().to_string())
            .collect(),
    };
    Summary {
        file: file.display().to_string(),
        ok: errors.is_empty(),
        defaults_used,
        default_password: PasswordSummary::of(&default_password),
        password_globals,
        state: StateSummary {
            dir: config.state.dir.display().to_string(),
            track_unknown_users: config.state.track_unknown_users,
        },
        default: LockoutSummary::of(&default),
        policies,
        warnings,
        errors,
    }
}

impl Summary {
    /// The text form: `FILE: OK` (or `NOT SAFE`, see [`Summary::errors`]),
    /// then what the file sets.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.defaults_used {
            let _ = writeln!(out, "{}: not found: the compiled defaults apply", self.file);
        } else if self.ok {
            let _ = writeln!(out, "{}: OK", self.file);
        } else {
            // The errors themselves go to stderr, as the warnings do.
            let _ = writeln!(out, "{}: NOT SAFE", self.file);
        }
        let d = &self.default;
        let _ = writeln!(
            out,
            "state: {} ({})",
            self.state.dir,
            if self.state.track_unknown_users {
                "users NSS does not know are tracked too"
            } else {
                "users NSS does not know are not tracked"
            }
        );
        let _ = writeln!(out, "default policy: {}", d.rules_text());
        let _ = writeln!(
            out,
            "default password rules: {}",
            self.default_password.rules_text()
        );
        let g = &self.password_globals;
        let _ = writeln!(
            out,
            "password history: {}; checker {}; lists: {}",
            g.hash,
            g.checker,
            if g.lists.is_empty() {
                "none".to_owned()
            } else {
                g.lists.join(", ")
            }
        );
        let exempt = match (&d.admin_group, d.even_deny_root) {
            (_, true) => {
                "nobody: root and admin_group are locked like anyone (even_deny_root)".to_owned()
            }
            (Some(group), false) => format!("root and members of {group}"),
            (None, false) => "root (no admin_group)".to_owned(),
        };
        let _ = writeln!(out, "exempt from failure locks: {exempt}");
        let _ = writeln!(
            out,
            "messages at the prompt: {}",
            if d.silent {
                "none (silent)"
            } else {
                "why and for how long"
            }
        );
        let _ = writeln!(
            out,
            "account phase: {}",
            if d.refuse_in_account {
                "refuses locked accounts (SSH keys included)"
            } else {
                "only warns"
            }
        );
        if self.policies.is_empty() {
            let _ = writeln!(out, "no [[policy]]: everyone gets the default policy");
        }
        for policy in &self.policies {
            let _ = writeln!(
                out,
                "policy {} (groups: {}): {}; passwords: {}",
                policy.name,
                policy.groups.join(", "),
                policy.lockout.rules_text(),
                policy.password.rules_text()
            );
        }
        out
    }
}

/// The JSON printed by `check-config --json` for a file that is refused.
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    pub file: String,
    pub ok: bool,
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subject::fake::FakeDirectory;

    const TEXT: &str = r#"
[lockout]
deny = 4
fail_interval = "10m"
unlock_after = "30m"
admin_group = "wheel"
delay_mode = "backoff"
delay = "1s"
max_delay = "16s"

[state]
dir = "/srv/deadbolt"

[[policy]]
name = "contractors"
groups = ["contractors", "interns"]
[policy.lockout]
deny = 5
unlock_after = "never"
[policy.password]
min_length = 14
min_digits = 1
max_age = "90d"

[[policy]]
name = "interns"
groups = ["interns"]
[policy.lockout]
enabled = false
"#;

    fn summary(directory: &FakeDirectory) -> Summary {
        let config = Config::parse(TEXT, "/etc/deadbolt/deadbolt.toml").unwrap();
        summarize(
            &config,
            Path::new("/etc/deadbolt/deadbolt.toml"),
            false,
            directory,
            &|_| Ok(()),
        )
    }

    #[test]
    fn the_text_summary() {
        let directory = FakeDirectory::default()
            .with_user("x", 1, &["wheel", "contractors"])
            .with_user("y", 2, &["interns"]);
        let text = summary(&directory).render();
        let expected = "\
/etc/deadbolt/deadbolt.toml: OK
state: /srv/deadbolt (users NSS does not know are not tracked)
default policy: 4 failures within 10m lock for 30m; delay 1s after a failure, doubling up to 16s
default password rules: 12 to 128 characters, strength 3 of 4 or more, the last 5 not reusable, never expires
password history: argon2id m=19456 t=2 p=1; checker /usr/libexec/deadbolt/deadbolt-pwcheck; lists: /usr/share/deadbolt/common-passwords.txt
exempt from failure locks: root and members of wheel
messages at the prompt: why and for how long
account phase: refuses locked accounts (SSH keys included)
policy contractors (groups: contractors, interns): 5 failures within 10m lock until reactivated; delay 1s after a failure, doubling up to 16s; passwords: 14 to 128 characters, 1+ digits, strength 3 of 4 or more, the last 5 not reusable, expires after 90d
policy interns (groups: interns): lockout off (failures never lock; disabling still does); delay 1s after a failure, doubling up to 16s; passwords: 12 to 128 characters, strength 3 of 4 or more, the last 5 not reusable, never expires
";
        assert_eq!(text, expected);
    }

    #[test]
    fn warnings_for_unknown_groups_and_shadowed_policies() {
        let directory = FakeDirectory::default().with_user("x", 1, &["contractors"]);
        let s = summary(&directory);
        assert_eq!(
            s.warnings,
            [
                "admin_group wheel is not known to NSS: nobody is exempt through it",
                "policy contractors: group interns is not known to NSS: nobody gets the policy through it",
                "policy interns: group interns is not known to NSS: nobody gets the policy through it",
                "policy interns: never applies: each of its groups belongs to an earlier policy, and the first policy that matches a user wins",
            ]
        );
    }

    #[test]
    fn the_json_summary() {
        let directory =
            FakeDirectory::default().with_user("x", 1, &["wheel", "contractors", "interns"]);
        let value = serde_json::to_value(summary(&directory)).unwrap();
        assert_eq!(value["ok"], true);
        assert_eq!(value["defaults_used"], false);
        assert_eq!(value["state"]["dir"], "/srv/deadbolt");
        assert_eq!(value["default"]["deny"], 4);
        assert_eq!(value["default"]["fail_interval"], "10m");
        assert_eq!(value["default"]["unlock_after"], "30m");
        assert_eq!(value["default"]["delay_mode"], "backoff");
        assert_eq!(value["default"]["admin_group"], "wheel");
        assert_eq!(value["policies"][0]["name"], "contractors");
        assert_eq!(value["policies"][0]["groups"][1], "interns");
        assert_eq!(value["policies"][0]["deny"], 5);
        assert_eq!(value["policies"][0]["unlock_after"], "never");
        assert_eq!(value["policies"][0]["fail_interval"], "10m");
        assert_eq!(value["policies"][1]["enabled"], false);
        assert_eq!(value["warnings"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn the_compiled_defaults() {
        let s = summarize(
            &Config::default(),
            Path::new("/etc/deadbolt/deadbolt.toml"),
            true,
            &FakeDirectory::default(),
            &|_| Ok(()),
        );
        let text = s.render();
        assert!(
            text.starts_with(
                "/etc/deadbolt/deadbolt.toml: not found: the compiled defaults apply\n\
             state: /var/lib/deadbolt (users NSS does not know are not tracked)\n\
             default policy: 3 failures within 15m lock for 10m; delay 2s after a failure\n\
             default password rules: 12 to 128 characters, strength 3 of 4 or more, \
             the last 5 not reusable, never expires\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("no [[policy]]: everyone gets the default policy\n"));
        assert!(s.warnings.is_empty());
        let value = serde_json::to_value(&s).unwrap();
        assert_eq!(value["default_password"]["min_length"], 12);
        assert_eq!(value["default_password"]["max_age"], "never");
        assert_eq!(
            value["password_globals"]["hash"],
            "argon2id m=19456 t=2 p=1"
        );
    }

    #[test]
    fn a_missing_checker_or_list_is_a_warning() {
        let s = summarize(
            &Config::default(),
            Path::new("/etc/deadbolt/deadbolt.toml"),
            false,
            &FakeDirectory::default(),
            &|path| {
                Err(Untrusted::Inaccessible {
                    path: path.to_owned(),
                    error: std::io::ErrorKind::NotFound.into(),
                })
            },
        );
        assert_eq!(
            s.warnings,
            [
                "checker /usr/libexec/deadbolt/deadbolt-pwcheck does not exist: passwords would \
                 be judged by the rules alone, without strength or lists",
                "list /usr/share/deadbolt/common-passwords.txt does not exist: it would be skipped",
            ]
        );
    }

    #[test]
    fn an_untrusted_file_is_an_error() {
        let writable = |path: &Path| {
            Err(Untrusted::Writable {
                path: path.to_owned(),
                mode: 0o100666,
            })
        };
        let s = summarize(
            &Config::default(),
            Path::new("/etc/deadbolt/deadbolt.toml"),
            false,
            &FakeDirectory::default(),
            &writable,
        );
        assert!(!s.ok);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert_eq!(
            s.errors,
            [
                "/etc/deadbolt/deadbolt.toml is not safe to use: someone other than root could \
                 have written it: /etc/deadbolt/deadbolt.toml: writable by group and others \
                 (mode 0666)",
                "checker /usr/libexec/deadbolt/deadbolt-pwcheck is not safe to run as root: \
                 /usr/libexec/deadbolt/deadbolt-pwcheck: writable by group and others (mode \
                 0666); every password change is refused",
                "list /usr/share/deadbolt/common-passwords.txt is not safe to read: \
                 /usr/share/deadbolt/common-passwords.txt: writable by group and others (mode \
                 0666); every password change is refused",
            ]
        );
        let text = s.render();
        assert!(
            text.starts_with("/etc/deadbolt/deadbolt.toml: NOT SAFE\nstate: "),
            "{text}"
        );
        let value = serde_json::to_value(&s).unwrap();
        assert_eq!(value["ok"], false);
        assert_eq!(value["errors"].as_array().unwrap().len(), 3);

        // The compiled defaults read no file: only the checker and list count.
        let s = summarize(
            &Config::default(),
            Path::new("/etc/deadbolt/deadbolt.toml"),
            true,
            &FakeDirectory::default(),
            &writable,
        );
        assert_eq!(s.errors.len(), 2);
    }
}
