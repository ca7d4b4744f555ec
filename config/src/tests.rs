use super::*;
use deadbolt_core::password::{Ageing, HashParams, PasswordRules};
use std::cell::RefCell;
use std::io::Write;

const SHIPPED: &str = include_str!("../deadbolt.toml");
const REFERENCE: &str = include_str!("../../docs/reference.md");

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "test.toml")
}

/// Parses `text`, which must be refused, and returns (line, column, message).
fn refused(text: &str) -> (usize, usize, String) {
    let error = parse(text).expect_err(text);
    let line = error.line().unwrap_or_else(|| panic!("no line: {error}"));
    let column = error
        .column()
        .unwrap_or_else(|| panic!("no column: {error}"));
    assert_eq!(error.origin(), "test.toml");
    assert!(!error.message().contains('\n'), "{error}");
    (line, column, error.message().to_owned())
}

/// Asserts that `text` is refused at `line:column` with a message containing
/// every one of `needles`.
fn assert_refused(text: &str, line: usize, column: usize, needles: &[&str]) {
    let (l, c, message) = refused(text);
    assert_eq!((l, c), (line, column), "{text:?}: {message}");
    for needle in needles {
        assert!(
            message.contains(needle),
            "{text:?}: {message:?} lacks {needle:?}"
        );
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// ---- defaults ----------------------------------------------------------

#[test]
fn compiled_defaults_are_those_of_the_reference() {
    let config = Config::default();
    let lockout = &config.lockout;
    assert!(lockout.enabled);
    assert_eq!(lockout.deny, 3);
    assert_eq!(lockout.fail_interval, secs(15 * 60));
    assert_eq!(lockout.unlock_after, UnlockAfter::After(secs(10 * 60)));
    assert!(!lockout.even_deny_root);
    assert_eq!(lockout.admin_group, None);
    assert!(!lockout.silent);
    assert!(lockout.refuse_in_account);
    assert_eq!(
        lockout.delay,
        DelayPolicy {
            mode: DelayMode::Fixed,
            delay: secs(2),
            max_delay: secs(30)
        }
    );
    assert_eq!(config.state.dir, PathBuf::from("/var/lib/deadbolt"));
    assert!(!config.state.track_unknown_users);
    assert!(config.policies.is_empty());
    assert_eq!(config.overrides(), &LockoutOverrides::default());
    assert_eq!(DEFAULT_CONFIG_PATH, "/etc/deadbolt/deadbolt.toml");

    let password = &config.password;
    assert_eq!(
        password.rules,
        PasswordRules {
            min_length: 12,
            max_length: 128,
            min_upper: 0,
            min_lower: 0,
            min_digits: 0,
            min_special: 0,
            min_classes: 0,
            max_repeat: 3,
            remember: 5,
        }
    );
    assert_eq!(password.min_strength, 3);
    assert!(password.enforce_for_root);
    assert_eq!(password.retry, 3);
    assert_eq!(
        password.ageing,
        Ageing {
            min_age: Duration::ZERO,
            max_age: None,
            warn_age: secs(7 * 86_400),
            temporary_valid_for: Some(Duration::from_secs(7 * 86_400)),
        }
    );
    assert_eq!(
        password.hash,
        HashParams {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    );
    assert_eq!(
        password.checker,
        PathBuf::from("/usr/libexec/deadbolt/deadbolt-pwcheck")
    );
    assert_eq!(
        password.lists,
        [PathBuf::from("/usr/share/deadbolt/common-passwords.txt")]
    );
    assert_eq!(config.password_overrides(), &PasswordOverrides::default());
}

#[test]
fn defaults_agree_with_the_engine() {
    let effective = Config::default().effective_lockout(|_| true);
    assert_eq!(effective.lockout, LockoutPolicy::default());
    assert_eq!(effective.policy_name, "default");
    let password = Config::default().effective_password(|_| true);
    assert_eq!(password.policy_name, "default");
    assert_eq!(password.rules, PasswordRules::default());
    assert_eq!(password.ageing, Ageing::default());
    assert_eq!(password.hash, HashParams::default());
}

#[test]
fn shipped_file_is_the_compiled_defaults() {
    assert_eq!(parse(SHIPPED).unwrap(), Config::default());
}

#[test]
fn shipped_example_policy_parses_when_uncommented() {
    let start = SHIPPED.find("# [[policy]]").expect("example policy");
    let example: String = SHIPPED[start..]
        .lines()
        .map(|line| line.trim_start_matches("# "))
        .collect::<Vec<_>>()
        .join("\n");
    let config = parse(&format!("{SHIPPED}\n{example}\n")).unwrap();
    assert_eq!(config.policies.len(), 1);
    assert_eq!(config.policies[0].name, "contractors");
    assert_eq!(config.policies[0].lockout.deny, Some(5));
    assert_eq!(
        config.policies[0].lockout.unlock_after,
        Some(UnlockAfter::Never)
    );
    assert_eq!(
        config.policies[0].password,
        PasswordOverrides {
            min_length: Some(16),
            min_classes: Some(3),
            max_age: Some(Some(secs(90 * 86_400))),
            ..PasswordOverrides::default()
        }
    );
}

#[test]
fn reference_example_parses() {
    let start = REFERENCE.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = start + REFERENCE[start..].find("```").expect("its end");
    let config = parse(&REFERENCE[start..end]).unwrap();
    let mut expected = Config::default();
    expected.policies.push(Policy {
        name: "contractors".into(),
        groups: vec!["contractors".into(), "interns".into()],
        lockout: LockoutOverrides {
            deny: Some(5),
            unlock_after: Some(UnlockAfter::Never),
            ..LockoutOverrides::default()
        },
        password: PasswordOverrides {
            min_length: Some(16),
            max_age: Some(Some(secs(90 * 86_400))),
            ..PasswordOverrides::default()
        },
    });
    assert_eq!(config, expected);
}

#[test]
fn empty_file_is_the_defaults() {
    assert_eq!(parse("").unwrap(), Config::default());
    assert_eq!(parse("# nothing\n\n").unwrap(), Config::default());
    assert_eq!(
        parse("[lockout]\n[password]\n[state]\n").unwrap(),
        Config::default()
    );
}

// ---- every key ---------------------------------------------------------

#[test]
fn every_key_is_read() {
    let config = parse(
        r#"
[lockout]
enabled = false
deny = 7
fail_interval = "1h"
unlock_after = "never"
even_deny_root = true
admin_group = "wheel"
silent = true
refuse_in_account = false
delay = "500ms"
delay_mode = "backoff"
max_delay = "1m"

[state]
dir = "/srv/deadbolt"
track_unknown_users = true

[[policy]]
name = "contractors"
groups = ["contractors", "interns"]
[policy.lockout]
enabled = true
deny = 5
fail_interval = "2d"
unlock_after = "90s"
delay = "0"
delay_mode = "none"
max_delay = "0"

[[policy]]
name = "staff"
groups = ["staff"]
"#,
    )
    .unwrap();
    assert_eq!(
        config.lockout,
        LockoutSettings {
            enabled: false,
            deny: 7,
            fail_interval: secs(3600),
            unlock_after: UnlockAfter::Never,
            even_deny_root: true,
            admin_group: Some("wheel".into()),
            silent: true,
            refuse_in_account: false,
            delay: DelayPolicy {
                mode: DelayMode::Backoff,
                delay: Duration::from_millis(500),
                max_delay: secs(60),
            },
        }
    );
    assert_eq!(
        config.state,
        StateSettings {
            dir: "/srv/deadbolt".into(),
            track_unknown_users: true
        }
    );
    assert_eq!(
        config.policies,
        vec![
            Policy {
                name: "contractors".into(),
                groups: vec!["contractors".into(), "interns".into()],
                lockout: LockoutOverrides {
                    enabled: Some(true),
                    deny: Some(5),
                    fail_interval: Some(secs(2 * 86_400)),
                    unlock_after: Some(UnlockAfter::After(secs(90))),
                    delay: Some(Duration::ZERO),
                    delay_mode: Some(DelayMode::None),
                    max_delay: Some(Duration::ZERO),
                },
                password: PasswordOverrides::default(),
            },
            Policy {
                name: "staff".into(),
                groups: vec!["staff".into()],
                lockout: LockoutOverrides::default(),
                password: PasswordOverrides::default(),
            },
        ]
    );
}

#[test]
fn inline_and_dotted_forms_are_the_same_file() {
    let dotted = parse("lockout.deny = 4\nstate.dir = \"/x\"\n").unwrap();
    let inline = parse("lockout = { deny = 4 }\nstate = { dir = \"/x\" }\n").unwrap();
    assert_eq!(dotted, inline);
    assert_eq!(dotted.lockout.deny, 4);
    let policy =
        parse("policy = [{ name = \"a\", groups = [\"g\"], lockout = { deny = 9 } }]\n").unwrap();
    assert_eq!(policy.policies[0].lockout.deny, Some(9));
}

#[test]
fn empty_admin_group_is_none() {
    let config = parse("[lockout]\nadmin_group = \"\"\n").unwrap();
    assert_eq!(config.lockout.admin_group, None);
    let config = parse("[lockout]\nadmin_group = \"domain admins@example.com\"\n").unwrap();
    assert_eq!(
        config.lockout.admin_group.as_deref(),
        Some("domain admins@example.com")
    );
}

#[test]
fn deny_bounds() {
    assert_eq!(parse("lockout.deny = 1").unwrap().lockout.deny, 1);
    assert_eq!(parse("lockout.deny = 10000").unwrap().lockout.deny, 10_000);
    assert_refused(
        "[lockout]\ndeny = 0\n",
        2,
        8,
        &["deny = 0 would never lock", "1 to 10000", "enabled = false"],
    );
    assert_refused(
        "[lockout]\ndeny = 10001\n",
        2,
        8,
        &["out of range", "1 to 10000"],
    );
    assert_refused(
        "[lockout]\ndeny = -1\n",
        2,
        8,
        &["deny = -1 is out of range"],
    );
    assert_refused("[lockout]\ndeny = 4294967299\n", 2, 8, &["out of range"]);
}

// ---- unknown keys ------------------------------------------------------

#[test]
fn unknown_keys_are_refused_where_they_are() {
    assert_refused(
        "[lockout]\ndeny = 3\nunlock_time = \"10m\"\n",
        3,
        1,
        &["unknown field `unlock_time`", "unlock_after"],
    );
    assert_refused(
        "# comment\n[lockout]\n  deny = 3\n  dney = 4\n",
        4,
        3,
        &["unknown field `dney`", "`deny`"],
    );
    assert_refused(
        "[lockotu]\ndeny = 3\n",
        1,
        2,
        &[
            "unknown field `lockotu`",
            "`lockout`",
            "`password`",
            "`state`",
            "`policy`",
        ],
    );
    assert_refused(
        "[state]\ndirectory = \"/x\"\n",
        2,
        1,
        &["unknown field `directory`", "`dir`"],
    );
    assert_refused(
        "[[policy]]\nname = \"a\"\ngroups = [\"g\"]\ngroup = \"x\"\n",
        4,
        1,
        &["unknown field `group`", "`groups`"],
    );
    // Global settings cannot be set per group.
    assert_refused(
        "[[policy]]\nname = \"a\"\ngroups = [\"g\"]\n[policy.lockout]\nsilent = true\n",
        5,
        1,
        &["unknown field `silent`", "`deny`", "`max_delay`"],
    );
}

#[test]
fn unknown_key_column_counts_characters() {
    assert_refused(
        "# é\n\tstate = { dir = \"/é\", bogus = 1 }\n",
        2,
        24,
        &["unknown field `bogus`"],
    );
    assert_refused("[lockout]\n\t  \"ü\" = 1\n", 2, 4, &["unknown field `ü`"]);
}

// ---- wrong types -------------------------------------------------------

#[test]
fn wrong_types_say_what_is_accepted() {
    assert_refused(
        "[lockout]\ndeny = \"3\"\n",
        2,
        8,
        &[
            "deny must be an integer from 1 to 10000",
            "the string \"3\"",
        ],
    );
    assert_refused("[lockout]\ndeny = 3.5\n", 2, 8, &["integer", "3.5"]);
    assert_refused(
        "[lockout]\nenabled = \"yes\"\n",
        2,
        11,
        &["enabled must be true or false", "\"yes\""],
    );
    assert_refused(
        "[lockout]\nsilent = 1\n",
        2,
        10,
        &["silent must be true or false"],
    );
    assert_refused(
        "[lockout]\nfail_interval = 900\n",
        2,
        17,
        &[
            "fail_interval must be a duration in quotes",
            "the integer 900",
        ],
    );
    assert_refused(
        "[lockout]\nunlock_after = false\n",
        2,
        16,
        &["\"never\"", "not false"],
    );
    assert_refused(
        "[lockout]\ndelay_mode = \"exponential\"\n",
        2,
        14,
        &["\"fixed\", \"backoff\" or \"none\"", "exponential"],
    );
    assert_refused("[lockout]\ndelay_mode = 2\n", 2, 14, &["\"fixed\""]);
    assert_refused("[lockout]\nadmin_group = []\n", 2, 15, &["an array"]);
    assert_refused("[state]\ndir = 5\n", 2, 7, &["absolute path"]);
    assert_refused(
        "[state]\ntrack_unknown_users = \"no\"\n",
        2,
        23,
        &["true or false"],
    );
    assert_refused("[lockout]\ndeny = 1979-05-27\n", 2, 8, &["a date"]);
    assert_refused("[lockout]\ndeny = { n = 3 }\n", 2, 8, &["a table"]);
}

#[test]
fn wrong_shapes_say_what_is_accepted() {
    // `[policy]` instead of `[[policy]]`: the most likely slip.
    let (line, _, message) = refused("[policy]\nname = \"a\"\ngroups = [\"g\"]\n");
    assert_eq!(line, 1, "{message}");
    assert!(
        message.contains("[[policy]] line (two brackets)"),
        "{message}"
    );
    let (_, _, message) = refused("[[policy]]\nname = \"a\"\ngroups = \"g\"\n");
    assert!(message.contains("groups = [\"contractors\"]"), "{message}");
    let (line, _, message) = refused("[[policy]]\nname = \"a\"\ngroups = [\"g\", 5]\n");
    assert_eq!(line, 3);
    assert!(message.contains("not the integer 5"), "{message}");
    assert_refused(
        "lockout = 3\n",
        1,
        11,
        &["expected a table, starting with a [lockout] line"],
    );
    assert_refused(
        "[[lockout]]\ndeny = 3\n",
        1,
        1,
        &["expected a table, starting with a [lockout] line (one pair of brackets)"],
    );
    assert_refused("[[state]]\n", 1, 1, &["[state] line"]);
    // serde would read an array as a struct by position: not here.
    let (line, _, message) = refused("policy = [[\"a\", [\"g\"]]]\n");
    assert_eq!(line, 1);
    assert!(
        message.contains("expected a table with name, groups"),
        "{message}"
    );
    let (line, _, message) =
        refused("[[policy]]\nname = \"a\"\ngroups = [\"g\"]\n[[policy.lockout]]\ndeny = 3\n");
    assert_eq!(line, 4, "{message}");
    assert!(message.contains("[policy.lockout] line"), "{message}");
}

#[test]
fn toml_syntax_errors_have_positions() {
    let (line, _, _) = refused("[lockout]\ndeny = \n");
    assert_eq!(line, 2);
    let (line, _, message) = refused("[lockout]\ndeny = 3\ndeny = 4\n");
    assert_eq!(line, 3, "{message}");
    let (line, _, _) = refused("[lockout\n");
    assert_eq!(line, 1);
    let (line, _, _) = refused("[lockout]\nsilent = True\n");
    assert_eq!(line, 2);
}

// ---- values ------------------------------------------------------------

#[test]
fn durations_in_the_file() {
    assert_refused(
        "[lockout]\nunlock_after = \"0\"\n",
        2,
        16,
        &["would unlock at once", "\"never\""],
    );
    assert_refused("[lockout]\nunlock_after = \"0s\"\n", 2, 16, &["\"never\""]);
    assert_refused(
        "[lockout]\nfail_interval = \"0\"\n",
        2,
        17,
        &["fail_interval must be longer than 0"],
    );
    assert_refused(
        "[lockout]\nfail_interval = \"15\"\n",
        2,
        17,
        &["fail_interval:", "no unit", "e.g. \"90s\""],
    );
    assert_refused(
        "[lockout]\ndelay = \"-2s\"\n",
        2,
        9,
        &["delay:", "negative"],
    );
    assert_refused(
        "[lockout]\nmax_delay = \"99999999999999999999d\"\n",
        2,
        13,
        &["max_delay:", "too large"],
    );
    assert_refused(
        "[lockout]\nunlock_after = \"forever\"\n",
        2,
        16,
        &["unlock_after:", "or \"never\""],
    );
    assert_eq!(
        parse("lockout.delay = \"0\"").unwrap().lockout.delay.delay,
        Duration::ZERO
    );
}

#[test]
fn backoff_ceiling_below_delay_is_refused() {
    assert_refused(
        "[lockout]\ndelay_mode = \"backoff\"\ndelay = \"1m\"\nmax_delay = \"30s\"\n",
        4,
        13,
        &["max_delay (30s) is shorter than delay (1m)", "backoff"],
    );
    // Only delay is written: the error points at it.
    assert_refused(
        "[lockout]\ndelay_mode = \"backoff\"\ndelay = \"1m\"\n",
        3,
        9,
        &["max_delay (30s) is shorter than delay (1m)"],
    );
    // With a fixed delay, max_delay means nothing and is not checked.
    let fixed = parse("[lockout]\ndelay = \"1m\"\n").unwrap();
    assert_eq!(fixed.lockout.delay.delay, secs(60));
    // A policy that turns on backoff is checked against [lockout]'s values.
    assert_refused(
        "[lockout]\ndelay = \"1m\"\n[[policy]]\nname = \"a\"\ngroups = [\"g\"]\n[policy.lockout]\ndelay_mode = \"backoff\"\n",
        7,
        14,
        &["in [[policy]] \"a\"", "max_delay (30s) is shorter than delay (1m)"],
    );
    let fine = parse(
        "[lockout]\ndelay = \"1m\"\n[[policy]]\nname = \"a\"\ngroups = [\"g\"]\n[policy.lockout]\ndelay_mode = \"backoff\"\nmax_delay = \"5m\"\n",
    )
    .unwrap();
    assert_eq!(fine.policies[0].lockout.max_delay, Some(secs(300)));
}

#[test]
fn paths_and_group_names() {
    assert_refused(
        "[state]\ndir = \"var/lib/deadbolt\"\n",
        2,
        7,
        &["relative", "absolute path"],
    );
    assert_refused("[state]\ndir = \"\"\n", 2, 7, &["empty", "absolute path"]);
    assert_refused(
        "[state]\ndir = \"/var/lib\\u0000/x\"\n",
        2,
        7,
        &["control character"],
    );
    assert_refused(
        "[lockout]\nadmin_group = \"wheel:x\"\n",
        2,
        15,
        &["admin_group:", "':' or ','"],
    );
    assert_refused(
        "[lockout]\nadmin_group = \"-wheel\"\n",
        2,
        15,
        &["starts with '-'"],
    );
    assert_refused(
        "[[policy]]\nname = \"a\"\ngroups = [\"ok\", \"bad\\ngroup\"]\n",
        3,
        17,
        &["control character", "a group name is 1 to 256 bytes"],
    );
    assert_refused(
        &format!(
            "[[policy]]\nname = \"a\"\ngroups = [\"{}\"]\n",
            "g".repeat(257)
        ),
        3,
        11,
        &["longer than 256 bytes"],
    );
    assert_refused(
        "[[policy]]\nname = \"a\"\ngroups = [\" staff\"]\n",
        3,
        11,
        &["space"],
    );
}

#[test]
fn policy_rules() {
    assert_refused(
        "[[policy]]\nname = \"a\"\ngroups = []\n",
        3,
        10,
        &["empty groups list", "at least one group"],
    );
    let (line, _, message) = refused("[[policy]]\nname = \"a\"\n");
    assert_eq!(line, 1, "{message}");
    assert!(message.contains("has no groups"), "{message}");
    let (line, _, message) = refused("[lockout]\n\n[[policy]]\ngroups = [\"g\"]\n");
    assert_eq!(line, 3, "{message}");
    assert!(message.contains("has no name"), "{message}");
    assert_refused(
        "[[policy]]\nname = \"a\"\ngroups = [\"g\"]\n\n[[policy]]\nname = \"a\"\ngroups = [\"h\"]\n",
        6,
        8,
        &["named \"a\" already exists"],
    );
    assert_refused(
        "[[policy]]\nname = \"default\"\ngroups = [\"g\"]\n",
        2,
        8,
        &["\"default\" is the name of the [lockout] rules"],
    );
    assert_refused(
        "[[policy]]\nname = \"\"\ngroups = [\"g\"]\n",
        2,
        8,
        &["1 to 64 letters"],
    );
    assert_refused(
        "[[policy]]\nname = \"two words\"\ngroups = [\"g\"]\n",
        2,
        8,
        &["1 to 64 letters"],
    );
    assert_refused(
        "[[policy]]\nname = \"a\"\ngroups = [\"g\"]\n[policy.lockout]\ndeny = 0\n",
        5,
        8,
        &["deny = 0"],
    );
    assert_refused(
        "[[policy]]\nname = \"a\"\ngroups = [\"g\"]\n[policy.lockout]\nunlock_after = \"0\"\n",
        5,
        16,
        &["\"never\""],
    );
    // The same group in two policies is allowed: the first wins.
    let config = parse(
        "[[policy]]\nname = \"a\"\ngroups = [\"g\"]\n[[policy]]\nname = \"b\"\ngroups = [\"g\"]\n",
    )
    .unwrap();
    assert_eq!(config.policies.len(), 2);
}

// ---- hostile input -----------------------------------------------------

#[test]
fn a_file_over_one_mebibyte_is_refused() {
    let mut text = String::from("[lockout]\n");
    while text.len() as u64 <= MAX_CONFIG_SIZE {
        text.push_str("# padding padding padding padding padding padding padding\n");
    }
    let error = parse(&text).unwrap_err();
    assert_eq!(error.line(), None);
    assert!(
        error.message().contains("larger than 1048576 bytes"),
        "{error}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.toml");
    std::fs::write(&path, &text).unwrap();
    let error = Config::load(&path).unwrap_err();
    assert!(error.message().contains("larger than"), "{error}");
    assert_eq!(
        error.to_string(),
        format!("{}: {}", path.display(), error.message())
    );

    // Exactly at the cap is still read.
    let mut exact = String::from("[lockout]\n");
    exact.push_str(&"#".repeat(MAX_CONFIG_SIZE as usize - exact.len() - 1));
    exact.push('\n');
    assert_eq!(exact.len() as u64, MAX_CONFIG_SIZE);
    assert_eq!(parse(&exact).unwrap(), Config::default());
}

#[test]
fn nul_bytes_are_refused() {
    let (line, _, _) = refused("[lockout]\ndeny = 3\0\n");
    assert_eq!(line, 2);
    let (line, _, _) = refused("[lockout]\nadmin_group = \"wh\0eel\"\n");
    assert_eq!(line, 2);
    let (line, _, _) = refused("\0");
    assert_eq!(line, 1);
    assert_refused(
        "[lockout]\nadmin_group = \"wh\\u0000eel\"\n",
        2,
        15,
        &["control character"],
    );
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    for depth in [100, 10_000, 100_000] {
        for value in [
            format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
            format!("{}1{}", "{ a = ".repeat(depth), "}".repeat(depth)),
        ] {
            let (line, _, message) = refused(&format!("[lockout]\ndeny = {value}\n"));
            assert_eq!(line, 2);
            assert!(message.contains("recursion"), "{message}");
        }
        let keys = vec!["a"; depth].join(".");
        for text in [
            format!("lockout.{keys} = 1\n"),
            format!("[lockout.{keys}]\n"),
        ] {
            let error = parse(&text).unwrap_err();
            assert!(error.message().contains("nested too deeply"), "{error}");
        }
    }
    // Shallow enough to be read: refused as an unknown key, with its position.
    assert_refused("lockout.a.b.c = 1\n", 1, 9, &["unknown field `a`"]);
}

#[test]
fn huge_integers_are_refused() {
    for n in [
        "99999999999999999999",
        "-99999999999999999999",
        "9223372036854775808",
        "18446744073709551615",
        "-9223372036854775809",
    ] {
        let (line, column, message) = refused(&format!("[lockout]\ndeny = {n}\n"));
        assert_eq!((line, column), (2, 8), "{message}");
        assert!(message.contains(n), "{message}");
        assert!(message.contains("1 to 10000"), "{message}");
    }
    let (line, _, _) = refused(&format!("[lockout]\ndeny = {}\n", "9".repeat(100_000)));
    assert_eq!(line, 2);
    assert_refused(
        "[lockout]\ndeny = 9223372036854775807\n",
        2,
        8,
        &["out of range"],
    );
    assert_refused(
        "[lockout]\ndeny = -9223372036854775808\n",
        2,
        8,
        &["out of range"],
    );
}

#[test]
fn many_policies_parse() {
    let mut text = String::new();
    for i in 0..5_000 {
        text.push_str(&format!(
            "[[policy]]\nname = \"p{i}\"\ngroups = [\"g{i}\"]\n"
        ));
    }
    let config = parse(&text).unwrap();
    assert_eq!(config.policies.len(), 5_000);
    let effective = config.effective_lockout(|group| group == "g4999");
    assert_eq!(effective.policy_name, "p4999");
}

#[test]
fn non_utf8_file_is_refused_at_the_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.toml");
    std::fs::write(&path, b"[lockout]\nadmin_group = \"caf\xe9\"\n").unwrap();
    let error = Config::load(&path).unwrap_err();
    assert_eq!(
        (error.line(), error.column()),
        (Some(2), Some(19)),
        "{error}"
    );
    assert!(error.message().contains("UTF-8"), "{error}");
    assert_eq!(
        error.to_string(),
        format!("{}:2:19: {}", path.display(), error.message())
    );
}

#[test]
fn load_reads_a_file_and_names_it_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deadbolt.toml");
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(b"[lockout]\ndeny = 5\n").unwrap();
    drop(file);
    assert_eq!(Config::load(&path).unwrap().lockout.deny, 5);

    std::fs::write(&path, "[lockout]\ndeny = 0\n").unwrap();
    let error = Config::load(&path).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("{}:2:8: {}", path.display(), error.message())
    );

    let missing = dir.path().join("missing.toml");
    let error = Config::load(&missing).unwrap_err();
    assert_eq!(error.line(), None);
    assert!(error
        .to_string()
        .starts_with(&format!("{}: cannot read", missing.display())));

    let error = Config::load(dir.path()).unwrap_err();
    assert!(error.message().contains("not a regular file"), "{error}");
}

#[test]
fn load_of_the_shipped_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deadbolt.toml");
    assert_eq!(Config::load(&path).unwrap(), Config::default());
}

#[test]
fn display_of_a_parse_error() {
    let error = Config::parse("[lockout]\nbogus = 1\n", "<stdin>").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("<stdin>:2:1: unknown field `bogus`"),
        "{error}"
    );
}

// ---- per-group policies ------------------------------------------------

const POLICIES: &str = r#"
[lockout]
deny = 3
silent = true

[[policy]]
name = "contractors"
groups = ["contractors", "interns"]
[policy.lockout]
deny = 7
unlock_after = "never"

[[policy]]
name = "ops"
groups = ["ops"]
[policy.lockout]
enabled = false
delay_mode = "backoff"
delay = "1s"
max_delay = "8s"
"#;

#[test]
fn first_matching_policy_wins() {
    let config = parse(POLICIES).unwrap();

    let nobody = config.effective_lockout(|_| false);
    assert_eq!(nobody.policy_name, "default");
    assert_eq!(nobody.lockout.deny, 3);
    assert!(nobody.silent);

    let intern = config.effective_lockout(|group| group == "interns");
    assert_eq!(intern.policy_name, "contractors");
    assert_eq!(intern.lockout.deny, 7);
    assert_eq!(intern.lockout.unlock_after, UnlockAfter::Never);
    // What the policy does not set comes from [lockout] and the defaults.
    assert_eq!(intern.lockout.fail_interval, secs(900));
    assert!(intern.silent);
    assert_eq!(intern.delay, DelayPolicy::default());

    let both = config.effective_lockout(|group| group == "ops" || group == "contractors");
    assert_eq!(both.policy_name, "contractors");

    let ops = config.effective_lockout(|group| group == "ops");
    assert_eq!(ops.policy_name, "ops");
    assert!(!ops.lockout.enabled);
    assert_eq!(ops.lockout.deny, 3);
    assert_eq!(
        ops.delay,
        DelayPolicy {
            mode: DelayMode::Backoff,
            delay: secs(1),
            max_delay: secs(8)
        }
    );
}

#[test]
fn membership_is_asked_in_order_and_no_further_than_needed() {
    let config = parse(POLICIES).unwrap();
    let asked = RefCell::new(Vec::new());
    let effective = config.effective_lockout(|group| {
        asked.borrow_mut().push(group.to_owned());
        group == "interns"
    });
    assert_eq!(effective.policy_name, "contractors");
    assert_eq!(*asked.borrow(), ["contractors", "interns"]);
}

// ---- module arguments --------------------------------------------------

#[test]
fn module_arguments_beat_every_policy() {
    let mut config = parse(POLICIES).unwrap();
    config.apply_override("deny", Some("5")).unwrap();
    config.apply_override("unlock_after", Some("1h")).unwrap();
    config.apply_override("nodelay", None).unwrap();
    for effective in [
        config.effective_lockout(|_| false),
        config.effective_lockout(|group| group == "interns"),
        config.effective_lockout(|group| group == "ops"),
    ] {
        assert_eq!(effective.lockout.deny, 5, "{}", effective.policy_name);
        assert_eq!(
            effective.lockout.unlock_after,
            UnlockAfter::After(secs(3600))
        );
        assert_eq!(effective.delay.mode, DelayMode::None);
        assert_eq!(effective.delay.after_failures(3), Duration::ZERO);
    }
    // What the arguments do not set still comes from the policy.
    assert!(
        !config
            .effective_lockout(|group| group == "ops")
            .lockout
            .enabled
    );
    assert_eq!(config.lockout.deny, 5);
    assert_eq!(config.overrides().deny, Some(5));
}

#[test]
fn every_module_argument() {
    let mut config = Config::default();
    for arg in [
        "deny=9",
        "fail_interval=1h",
        "unlock_after=never",
        "even_deny_root",
        "admin_group=wheel",
        "silent",
        "dir=/srv/state",
        "delay=3s",
        "delay_mode=backoff",
        "max_delay=1m",
        "refuse_in_account=false",
        "track_unknown_users",
        "enabled=false",
    ] {
        config
            .apply_module_arg(arg)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let effective = config.effective_lockout(|_| true);
    assert_eq!(
        effective,
        EffectiveLockout {
            policy_name: "default".into(),
            lockout: LockoutPolicy {
                enabled: false,
                deny: 9,
                fail_interval: secs(3600),
                unlock_after: UnlockAfter::Never,
            },
            delay: DelayPolicy {
                mode: DelayMode::Backoff,
                delay: secs(3),
                max_delay: secs(60),
            },
            even_deny_root: true,
            admin_group: Some("wheel".into()),
            silent: true,
            refuse_in_account: false,
        }
    );
    assert_eq!(config.state.dir, PathBuf::from("/srv/state"));
    assert!(config.state.track_unknown_users);

    config.apply_module_arg("silent=false").unwrap();
    config.apply_module_arg("even_deny_root=false").unwrap();
    config.apply_module_arg("admin_group=").unwrap();
    config
        .apply_module_arg("track_unknown_users=false")
        .unwrap();
    config.apply_module_arg("nodelay=false").unwrap();
    assert!(!config.lockout.silent);
    assert!(!config.lockout.even_deny_root);
    assert_eq!(config.lockout.admin_group, None);
    assert!(!config.state.track_unknown_users);
    assert_eq!(config.lockout.delay.mode, DelayMode::Backoff);
    config.apply_module_arg("nodelay").unwrap();
    assert_eq!(config.lockout.delay.mode, DelayMode::None);
    config.apply_module_arg("delay_mode=fixed").unwrap();
    assert_eq!(config.lockout.delay.mode, DelayMode::Fixed);
}

#[test]
fn bad_module_arguments_change_nothing() {
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("deny", Some("abc"), "1 to 10000"),
        ("deny", Some("0"), "would never lock"),
        ("deny", Some("10001"), "1 to 10000"),
        ("deny", Some("-1"), "1 to 10000"),
        ("deny", Some("99999999999999999999999"), "1 to 10000"),
        ("deny", None, "needs a value: write deny=N"),
        ("fail_interval", Some("0"), "longer than 0"),
        ("fail_interval", Some("15"), "no unit"),
        ("unlock_after", Some("0"), "never"),
        ("unlock_after", Some("soon"), "\"never\""),
        ("unlock_after", None, "needs a value"),
        ("delay", Some("-1s"), "negative"),
        ("max_delay", Some("1.5s"), "fraction"),
        ("delay_mode", Some("exponential"), "fixed, backoff or none"),
        ("silent", Some("yes"), "true or false"),
        ("even_deny_root", Some("1"), "true or false"),
        ("enabled", Some("no"), "true or false"),
        ("refuse_in_account", Some("False"), "true or false"),
        ("nodelay", Some("please"), "true or false"),
        ("track_unknown_users", Some(""), "true or false"),
        ("admin_group", Some("a:b"), "':' or ','"),
        ("admin_group", None, "needs a value"),
        ("dir", Some("relative/path"), "relative"),
        ("dir", Some(""), "empty"),
        ("dir", None, "needs a value"),
        ("conf", Some("relative.toml"), "relative"),
        ("conf", Some("/etc/other.toml"), "split_module_args"),
        ("unlock_time", Some("10m"), "unknown argument `unlock_time`"),
        ("preauth", None, "unknown argument"),
        ("", None, "unknown argument"),
    ];
    let pristine = parse(POLICIES).unwrap();
    for &(key, value, needle) in cases {
        let mut config = pristine.clone();
        let error = config.apply_override(key, value).unwrap_err();
        assert!(error.message.contains(needle), "{key}={value:?}: {error}");
        let written = match value {
            Some(value) => format!("{key}={value}"),
            None => key.to_owned(),
        };
        assert_eq!(error.arg, written);
        assert!(
            error
                .to_string()
                .starts_with(&format!("module argument `{written}`: ")),
            "{error}"
        );
        assert_eq!(config, pristine, "{key}={value:?} changed the config");
    }
}

#[test]
fn arg_error_display() {
    let error = Config::default().apply_module_arg("deny=abc").unwrap_err();
    assert_eq!(
        error.to_string(),
        "module argument `deny=abc`: `abc` is not a number of failures from 1 to 10000"
    );
    let error = Config::default().apply_module_arg("deny=a\nb").unwrap_err();
    assert!(!error.to_string().contains('\n'));
}

#[test]
fn split_module_args_takes_out_conf() {
    let split = split_module_args(&["preauth", "conf=/etc/a.toml", "deny=5", "silent"]);
    assert_eq!(split.conf, Some(PathBuf::from("/etc/a.toml")));
    assert_eq!(split.rest, ["preauth", "deny=5", "silent"]);

    let split = split_module_args(&["conf=/a", "authfail", "conf=/b"]);
    assert_eq!(split.conf, Some(PathBuf::from("/b")));
    assert_eq!(split.rest, ["authfail"]);

    // A relative or empty path is not taken, and is reported when applied.
    let split = split_module_args(&["conf=deadbolt.toml", "conf=", "authsucc"]);
    assert_eq!(split.conf, None);
    assert_eq!(split.rest, ["conf=deadbolt.toml", "conf=", "authsucc"]);
    let mut config = Config::default();
    assert!(config.apply_module_arg(split.rest[0]).is_err());
    assert!(config.apply_module_arg(split.rest[1]).is_err());
    assert_eq!(config, Config::default());

    let split = split_module_args(&[]);
    assert_eq!(split, ModuleArgs::default());
}

#[test]
fn a_value_may_contain_equals_signs() {
    let mut config = Config::default();
    config.apply_module_arg("dir=/srv/a=b").unwrap();
    assert_eq!(config.state.dir, PathBuf::from("/srv/a=b"));
}

// ---- delays ------------------------------------------------------------

#[test]
fn pauses_after_failures() {
    let fixed = DelayPolicy::default();
    for n in [0, 1, 2, 10, u32::MAX] {
        assert_eq!(fixed.after_failures(n), secs(2));
    }
    let none = DelayPolicy {
        mode: DelayMode::None,
        ..fixed
    };
    assert_eq!(none.after_failures(5), Duration::ZERO);

    let backoff = DelayPolicy {
        mode: DelayMode::Backoff,
        delay: secs(2),
        max_delay: secs(30),
    };
    let expected = [
        (0, 2),
        (1, 2),
        (2, 4),
        (3, 8),
        (4, 16),
        (5, 30),
        (6, 30),
        (64, 30),
    ];
    for (n, s) in expected {
        assert_eq!(backoff.after_failures(n), secs(s), "n = {n}");
    }
    assert_eq!(backoff.after_failures(u32::MAX), secs(30));
}

#[test]
fn backoff_never_overflows() {
    let tiny = DelayPolicy {
        mode: DelayMode::Backoff,
        delay: Duration::from_nanos(1),
        max_delay: Duration::MAX,
    };
    assert_eq!(tiny.after_failures(1), Duration::from_nanos(1));
    assert_eq!(tiny.after_failures(11), Duration::from_nanos(1024));
    assert_eq!(tiny.after_failures(u32::MAX), Duration::MAX);
    let huge = DelayPolicy {
        mode: DelayMode::Backoff,
        delay: Duration::MAX,
        max_delay: Duration::MAX,
    };
    assert_eq!(huge.after_failures(u32::MAX), Duration::MAX);
    let zero = DelayPolicy {
        mode: DelayMode::Backoff,
        delay: Duration::ZERO,
        max_delay: secs(30),
    };
    assert_eq!(zero.after_failures(u32::MAX), Duration::ZERO);
    // max_delay below delay (possible through module arguments): never less than delay.
    let inverted = DelayPolicy {
        mode: DelayMode::Backoff,
        delay: secs(60),
        max_delay: secs(30),
    };
    assert_eq!(inverted.after_failures(1), secs(60));
    assert_eq!(inverted.after_failures(5), secs(60));
}

#[test]
fn delay_mode_words() {
    for mode in [DelayMode::Fixed, DelayMode::Backoff, DelayMode::None] {
        assert_eq!(DelayMode::parse(mode.as_str()), Some(mode));
        assert_eq!(mode.to_string(), mode.as_str());
    }
}

mod password;

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parse_never_panics(text in any::<String>()) {
            let _ = parse(&text);
        }

        #[test]
        fn parse_never_panics_on_tomlish_text(
            text in "(\\[{1,2}(lockout|state|policy|policy\\.lockout)\\]{1,2}\n|(deny|delay|name|groups|dir|silent) = (\"[a-z0-9]{0,4}\"|-?[0-9]{1,22}|true|\\[\\]|\\{\\})\n){0,8}"
        ) {
            if let Err(error) = parse(&text) {
                prop_assert!(!error.to_string().contains('\n'));
            }
        }

        #[test]
        fn module_arguments_never_panic_and_refusals_change_nothing(
            key in prop::sample::select(vec![
                "deny", "fail_interval", "unlock_after", "even_deny_root", "admin_group",
                "silent", "dir", "nodelay", "delay", "delay_mode", "max_delay",
                "refuse_in_account", "track_unknown_users", "enabled", "conf", "bogus",
            ]),
            value in proptest::option::of(any::<String>()),
        ) {
            let mut config = Config::default();
            if config.apply_override(key, value.as_deref()).is_err() {
                prop_assert_eq!(config, Config::default());
            }
        }

        #[test]
        fn backoff_is_monotonic_and_capped(
            delay_ms in 0u64..100_000,
            max_ms in 0u64..1_000_000,
            n in any::<u32>(),
        ) {
            let policy = DelayPolicy {
                mode: DelayMode::Backoff,
                delay: Duration::from_millis(delay_ms),
                max_delay: Duration::from_millis(max_ms),
            };
            let pause = policy.after_failures(n);
            prop_assert!(pause <= policy.max_delay.max(policy.delay));
            prop_assert!(pause >= policy.delay);
            prop_assert!(policy.after_failures(n.saturating_add(1)) >= pause);
        }
    }
}
