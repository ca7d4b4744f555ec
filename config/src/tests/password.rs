//! `[password]`, `[policy.password]` and the password module arguments.

use super::*;

fn days(n: u64) -> Duration {
    secs(n * 86_400)
}

// ---- every key ---------------------------------------------------------

#[test]
fn every_password_key_is_read() {
    let config = parse(
        r#"
[password]
min_length = 10
max_length = 64
min_upper = 1
min_lower = 2
min_digits = 3
min_special = 4
min_classes = 4
max_repeat = 0
min_strength = 4
remember = 24
enforce_for_root = false
retry = 5
min_age = "1d"
max_age = "90d"
warn_age = "14d"
hash_memory_kib = 65536
hash_iterations = 3
hash_parallelism = 4
checker = "/opt/deadbolt/bin/pwcheck"
lists = ["/usr/share/deadbolt/common-passwords.txt", "/etc/deadbolt/site-passwords.txt"]

[[policy]]
name = "contractors"
groups = ["contractors"]
[policy.password]
min_length = 16
max_length = 100
min_upper = 2
min_lower = 3
min_digits = 4
min_special = 5
min_classes = 3
max_repeat = 2
min_strength = 2
remember = 0
enforce_for_root = true
retry = 1
min_age = "0"
max_age = "never"
warn_age = "0"
"#,
    )
    .unwrap();
    assert_eq!(
        config.password,
        PasswordSettings {
            rules: PasswordRules {
                min_length: 10,
                max_length: 64,
                min_upper: 1,
                min_lower: 2,
                min_digits: 3,
                min_special: 4,
                min_classes: 4,
                max_repeat: 0,
                remember: 24,
            },
            min_strength: 4,
            enforce_for_root: false,
            retry: 5,
            ageing: Ageing {
                min_age: days(1),
                max_age: Some(days(90)),
                warn_age: days(14),
                temporary_valid_for: Some(Duration::from_secs(7 * 86_400)),
            },
            hash: HashParams {
                memory_kib: 65_536,
                iterations: 3,
                parallelism: 4,
            },
            checker: "/opt/deadbolt/bin/pwcheck".into(),
            lists: vec![
                "/usr/share/deadbolt/common-passwords.txt".into(),
                "/etc/deadbolt/site-passwords.txt".into(),
            ],
        }
    );
    assert_eq!(
        config.policies[0].password,
        PasswordOverrides {
            min_length: Some(16),
            max_length: Some(100),
            min_upper: Some(2),
            min_lower: Some(3),
            min_digits: Some(4),
            min_special: Some(5),
            min_classes: Some(3),
            max_repeat: Some(2),
            min_strength: Some(2),
            remember: Some(0),
            enforce_for_root: Some(true),
            retry: Some(1),
            min_age: Some(Duration::ZERO),
            max_age: Some(None),
            warn_age: Some(Duration::ZERO),
        }
    );
    // The policy's lockout is untouched by its password part.
    assert_eq!(config.policies[0].lockout, LockoutOverrides::default());

    let contractor = config.effective_password(|group| group == "contractors");
    assert_eq!(
        contractor,
        EffectivePassword {
            policy_name: "contractors".into(),
            settings: PasswordSettings {
                rules: PasswordRules {
                    min_length: 16,
                    max_length: 100,
                    min_upper: 2,
                    min_lower: 3,
                    min_digits: 4,
                    min_special: 5,
                    min_classes: 3,
                    max_repeat: 2,
                    remember: 0,
                },
                min_strength: 2,
                enforce_for_root: true,
                retry: 1,
                ageing: Ageing {
                    min_age: Duration::ZERO,
                    max_age: None,
                    warn_age: Duration::ZERO,
                    temporary_valid_for: Some(Duration::from_secs(7 * 86_400)),
                },
                // Global only: the same for everyone.
                hash: config.password.hash,
                checker: config.password.checker.clone(),
                lists: config.password.lists.clone(),
            },
        }
    );
}

#[test]
fn each_password_key_alone() {
    type Check = fn(&PasswordSettings) -> bool;
    let table: &[(&str, Check)] = &[
        ("min_length = 8", |p| p.rules.min_length == 8),
        ("max_length = 512", |p| p.rules.max_length == 512),
        ("min_upper = 1", |p| p.rules.min_upper == 1),
        ("min_lower = 1", |p| p.rules.min_lower == 1),
        ("min_digits = 1", |p| p.rules.min_digits == 1),
        ("min_special = 1", |p| p.rules.min_special == 1),
        ("min_classes = 3", |p| p.rules.min_classes == 3),
        ("max_repeat = 0", |p| p.rules.max_repeat == 0),
        ("min_strength = 0", |p| p.min_strength == 0),
        ("remember = 0", |p| p.rules.remember == 0),
        ("enforce_for_root = false", |p| !p.enforce_for_root),
        ("retry = 10", |p| p.retry == 10),
        ("min_age = \"12h\"", |p| p.ageing.min_age == secs(12 * 3600)),
        ("max_age = \"90d\"", |p| p.ageing.max_age == Some(days(90))),
        ("warn_age = \"0\"", |p| p.ageing.warn_age == Duration::ZERO),
        ("hash_memory_kib = 8", |p| p.hash.memory_kib == 8),
        ("hash_iterations = 1", |p| p.hash.iterations == 1),
        ("hash_parallelism = 2", |p| p.hash.parallelism == 2),
        ("checker = \"/usr/local/bin/pwcheck\"", |p| {
            p.checker == Path::new("/usr/local/bin/pwcheck")
        }),
        ("lists = []", |p| p.lists.is_empty()),
    ];
    for (line, check) in table {
        let text = format!("[password]\n{line}\n");
        let config = parse(&text).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(check(&config.password), "{line}: {:?}", config.password);
        assert!(
            !check(&PasswordSettings::default()),
            "{line} is the default"
        );
        assert_eq!(
            parse(&format!("password.{line}\n")).unwrap(),
            config,
            "dotted form of {line}"
        );
    }
}

#[test]
fn password_is_a_table() {
    assert_refused(
        "password = 12\n",
        1,
        12,
        &["expected a table, starting with a [password] line"],
    );
    assert_refused("[[password]]\n", 1, 1, &["[password] line"]);
    let (line, _, message) =
        refused("[[policy]]\nname = \"a\"\ngroups = [\"g\"]\n[[policy.password]]\nretry = 2\n");
    assert_eq!(line, 4, "{message}");
    assert!(message.contains("[policy.password] line"), "{message}");
    let inline = parse("password = { min_length = 14, lists = [] }\n").unwrap();
    assert_eq!(inline.password.rules.min_length, 14);
    assert!(inline.password.lists.is_empty());
}

#[test]
fn unknown_password_keys_are_refused() {
    assert_refused(
        "[password]\nminlen = 14\n",
        2,
        1,
        &["unknown field `minlen`", "`min_length`", "`lists`"],
    );
    // Global settings cannot be set per group.
    for key in [
        "hash_memory_kib = 65536",
        "hash_iterations = 3",
        "hash_parallelism = 2",
        "checker = \"/x\"",
        "lists = []",
    ] {
        let text =
            format!("[[policy]]\nname = \"a\"\ngroups = [\"g\"]\n[policy.password]\n{key}\n");
        let name = key.split(' ').next().unwrap();
        assert_refused(
            &text,
            5,
            1,
            &[
                &format!("unknown field `{name}`"),
                "`min_length`",
                "`warn_age`",
            ],
        );
    }
}

// ---- boundaries --------------------------------------------------------

#[test]
fn integer_boundaries() {
    // (key, lowest accepted, highest accepted)
    let table: &[(&str, i64, i64)] = &[
        ("min_length", 1, 128),
        ("max_length", 12, 512),
        ("min_upper", 0, 128),
        ("min_lower", 0, 128),
        ("min_digits", 0, 128),
        ("min_special", 0, 128),
        ("min_classes", 0, 4),
        ("max_repeat", 0, 512),
        ("min_strength", 0, 4),
        ("remember", 0, 400),
        ("retry", 1, 10),
        ("hash_memory_kib", 8, 1_048_576),
        ("hash_iterations", 1, 100),
        ("hash_parallelism", 1, 64),
    ];
    for &(key, low, high) in table {
        for n in [low, high] {
            let text = format!("[password]\n{key} = {n}\n");
            parse(&text).unwrap_or_else(|e| panic!("{key} = {n}: {e}"));
        }
    }
    // Refused for their own range, pointing at the value.
    let refusals: &[(&str, i64, &str)] = &[
        ("min_length", 0, "from 1 to 512 (characters)"),
        ("min_length", 513, "from 1 to 512"),
        ("max_length", 0, "from 1 to 512"),
        ("max_length", 513, "from 1 to 512"),
        ("min_upper", -1, "from 0 to 512"),
        ("min_digits", 513, "from 0 to 512"),
        ("min_classes", 5, "from 0 to 4 (of the 4 kinds of character"),
        ("max_repeat", 513, "0 for no limit"),
        ("min_strength", 5, "from 0 to 4 (a zxcvbn score"),
        ("min_strength", -1, "from 0 to 4"),
        ("remember", 401, "from 0 to 400"),
        ("retry", 0, "from 1 to 10"),
        ("retry", 11, "from 1 to 10"),
        ("hash_memory_kib", 7, "from 8 to 1048576"),
        ("hash_memory_kib", 1_048_577, "from 8 to 1048576"),
        ("hash_iterations", 0, "from 1 to 100"),
        ("hash_iterations", 101, "from 1 to 100"),
        ("hash_parallelism", 0, "from 1 to 64"),
        ("hash_parallelism", 65, "from 1 to 64"),
        ("retry", 4_294_967_297, "from 1 to 10"),
        ("remember", i64::MAX, "from 0 to 400"),
        ("remember", i64::MIN, "from 0 to 400"),
    ];
    for &(key, n, needle) in refusals {
        let text = format!("[password]\n{key} = {n}\n");
        let column = key.len() + 4;
        assert_refused(
            &text,
            2,
            column,
            &[&format!("{key} = {n} is out of range"), needle],
        );
    }
}

#[test]
fn wrong_password_types_say_what_is_accepted() {
    assert_refused(
        "[password]\nmin_length = \"12\"\n",
        2,
        14,
        &[
            "min_length must be an integer from 1 to 512",
            "the string \"12\"",
        ],
    );
    assert_refused(
        "[password]\nmin_strength = 3.5\n",
        2,
        16,
        &["min_strength must be an integer from 0 to 4", "3.5"],
    );
    assert_refused(
        "[password]\nenforce_for_root = \"yes\"\n",
        2,
        20,
        &["enforce_for_root must be true or false"],
    );
    assert_refused(
        "[password]\nmax_age = 90\n",
        2,
        11,
        &["max_age must be a duration in quotes, e.g. \"90d\", or \"never\""],
    );
    assert_refused(
        "[password]\nmin_age = true\n",
        2,
        11,
        &["min_age must be a duration"],
    );
    assert_refused(
        "[password]\nchecker = [\"/x\"]\n",
        2,
        11,
        &["checker must be an absolute path", "an array"],
    );
    assert_refused(
        "[password]\nlists = \"/usr/share/deadbolt/common-passwords.txt\"\n",
        2,
        9,
        &["an array of absolute paths"],
    );
    assert_refused(
        "[password]\nlists = [\"/a\", 5]\n",
        2,
        16,
        &["each of lists must be an absolute path", "the integer 5"],
    );
}

#[test]
fn min_length_above_max_length_points_at_min_length() {
    assert_refused(
        "[password]\nmin_length = 20\nmax_length = 16\n",
        2,
        14,
        &["min_length (20) is more than max_length (16)"],
    );
    // Written after max_length: still min_length.
    assert_refused(
        "[password]\nmax_length = 16\nmin_length = 20\n",
        3,
        14,
        &["min_length (20) is more than max_length (16)"],
    );
    // Only max_length written, below the default minimum: it is the culprit.
    assert_refused(
        "[password]\nmax_length = 8\n",
        2,
        14,
        &["min_length (12) is more than max_length (8)"],
    );
    let equal = parse("[password]\nmin_length = 16\nmax_length = 16\n").unwrap();
    assert_eq!(equal.password.rules.max_length, 16);
}

#[test]
fn class_minimums_must_fit_in_max_length() {
    assert_refused(
        "[password]\nmax_length = 20\nmin_upper = 10\nmin_digits = 11\n",
        3,
        13,
        &["need at least 21 characters", "max_length (20)"],
    );
    parse("[password]\nmax_length = 21\nmin_upper = 10\nmin_digits = 11\n").unwrap();
    // min_classes asks for one character of each further kind.
    assert_refused(
        "[password]\nmin_length = 4\nmax_length = 4\nmin_upper = 2\nmin_classes = 4\n",
        4,
        13,
        &["need at least 5 characters"],
    );
    parse("[password]\nmin_length = 4\nmax_length = 5\nmin_upper = 2\nmin_classes = 4\n").unwrap();
    assert_refused(
        "[password]\nmin_length = 1\nmax_length = 3\nmin_classes = 4\n",
        4,
        15,
        &["need at least 4 characters"],
    );
}

#[test]
fn ages() {
    let config = parse("[password]\nmax_age = \"never\"\n").unwrap();
    assert_eq!(config.password.ageing.max_age, None);
    assert_refused(
        "[password]\nmax_age = \"0\"\n",
        2,
        11,
        &["would expire every password at once", "\"never\""],
    );
    assert_refused(
        "[password]\nmax_age = \"90\"\n",
        2,
        11,
        &["max_age:", "no unit", "or \"never\""],
    );
    assert_refused(
        "[password]\nmin_age = \"-1d\"\n",
        2,
        11,
        &["min_age:", "negative"],
    );
    assert_refused(
        "[password]\nwarn_age = \"1.5d\"\n",
        2,
        12,
        &["warn_age:", "fraction"],
    );
    assert_refused(
        "[password]\nmin_age = \"30d\"\nmax_age = \"30d\"\n",
        2,
        11,
        &["min_age (30d) is not shorter than max_age (30d)"],
    );
    assert_refused(
        "[password]\nmax_age = \"1d\"\nmin_age = \"2d\"\n",
        3,
        11,
        &["min_age (2d) is not shorter than max_age (1d)"],
    );
    let fine = parse("[password]\nmin_age = \"1d\"\nmax_age = \"90d\"\n").unwrap();
    assert_eq!(fine.password.ageing.min_age, days(1));
    // A min_age with no expiry is fine.
    parse("[password]\nmin_age = \"3650d\"\n").unwrap();
}

#[test]
fn hash_parameters_within_argon2_limits() {
    assert_refused(
        "[password]\nhash_memory_kib = 16\nhash_parallelism = 4\n",
        2,
        19,
        &[
            "hash_memory_kib (16)",
            "hash_parallelism (4)",
            "32",
            "OWASP",
        ],
    );
    // Written after the lanes: the memory is still the culprit.
    assert_refused(
        "[password]\nhash_parallelism = 64\nhash_memory_kib = 511\n",
        3,
        19,
        &["hash_memory_kib (511)", "512"],
    );
    // Memory × passes is bounded as a whole: the history would ignore an
    // entry costing more. Pointing at the passes when they were set.
    assert_refused(
        "[password]\nhash_memory_kib = 1048576\nhash_iterations = 3\n",
        3,
        19,
        &[
            "hash_memory_kib × hash_iterations (1048576 × 3 = 3145728)",
            "2097152",
        ],
    );
    parse("[password]\nhash_memory_kib = 1048576\nhash_iterations = 2\n")
        .expect("exactly the most work an entry may cost");
    // What the file accepts, argon2id accepts: lowest memory per lane, 1 pass.
    for (memory, lanes) in [(8, 1), (32, 4), (512, 64)] {
        let config = parse(&format!(
            "[password]\nhash_memory_kib = {memory}\nhash_iterations = 1\nhash_parallelism = {lanes}\n"
        ))
        .unwrap();
        let phc = config.password.hash.hash(b"pw").unwrap();
        assert!(
            phc.starts_with(&format!("$argon2id$v=19$m={memory},t=1,p={lanes}$")),
            "{phc}"
        );
    }
}

#[test]
fn checker_and_list_paths() {
    assert_refused(
        "[password]\nchecker = \"deadbolt-pwcheck\"\n",
        2,
        11,
        &[
            "checker:",
            "relative",
            "/usr/libexec/deadbolt/deadbolt-pwcheck",
        ],
    );
    assert_refused(
        "[password]\nchecker = \"./pwcheck\"\n",
        2,
        11,
        &["relative"],
    );
    assert_refused("[password]\nchecker = \"\"\n", 2, 11, &["empty"]);
    assert_refused(
        "[password]\nchecker = \"/usr/libexec/deadbolt/\"\n",
        2,
        11,
        &["names a directory"],
    );
    assert_refused(
        "[password]\nchecker = \"/\"\n",
        2,
        11,
        &["names a directory"],
    );
    assert_refused(
        "[password]\nchecker = \"/usr/bin/..\"\n",
        2,
        11,
        &["names a directory"],
    );
    assert_refused(
        "[password]\nchecker = \"/usr/bin/pw\\ncheck\"\n",
        2,
        11,
        &["control character"],
    );
    assert_refused(
        "[password]\nlists = [\"/usr/share/a.txt\", \"site.txt\"]\n",
        2,
        30,
        &[
            "lists:",
            "relative",
            "/usr/share/deadbolt/common-passwords.txt",
        ],
    );
    assert_refused(
        "[password]\nlists = [\"/a.txt\", \"/b.txt\", \"/a.txt\"]\n",
        2,
        30,
        &["lists names `/a.txt` twice"],
    );
    let long = format!("/{}", "a".repeat(MAX_PATH_BYTES));
    assert_refused(
        &format!("[password]\nchecker = \"{long}\"\n"),
        2,
        11,
        &["longer than 4096 bytes"],
    );
    let longest = format!("/{}", "a".repeat(MAX_PATH_BYTES - 1));
    parse(&format!("[password]\nchecker = \"{longest}\"\n")).unwrap();

    let lists = |n: usize| {
        let paths: Vec<String> = (0..n).map(|i| format!("\"/l{i}\"")).collect();
        format!("[password]\nlists = [{}]\n", paths.join(", "))
    };
    assert_eq!(parse(&lists(MAX_LISTS)).unwrap().password.lists.len(), 64);
    assert_refused(&lists(MAX_LISTS + 1), 2, 9, &["65 files, more than the 64"]);
    // The most a 1 MiB file can hold, refused at once.
    let (line, _, message) = refused(&lists(80_000));
    assert_eq!(line, 2);
    assert!(message.contains("more than the 64"), "{message}");
}

// ---- per-group policies ------------------------------------------------

const PASSWORD_POLICIES: &str = r#"
[password]
min_length = 12
max_length = 64
max_age = "180d"

[[policy]]
name = "contractors"
groups = ["contractors", "interns"]
[policy.password]
min_length = 16
max_age = "90d"
remember = 10

[[policy]]
name = "ops"
groups = ["ops"]
[policy.lockout]
deny = 5

[[policy]]
name = "robots"
groups = ["robots"]
[policy.password]
max_age = "never"
enforce_for_root = false
min_strength = 4
"#;

#[test]
fn first_matching_policy_wins_for_passwords() {
    let config = parse(PASSWORD_POLICIES).unwrap();

    let nobody = config.effective_password(|_| false);
    assert_eq!(nobody.policy_name, "default");
    assert_eq!(nobody.rules.min_length, 12);
    assert_eq!(nobody.rules.max_length, 64);
    assert_eq!(nobody.ageing.max_age, Some(days(180)));

    let intern = config.effective_password(|group| group == "interns");
    assert_eq!(intern.policy_name, "contractors");
    assert_eq!(intern.rules.min_length, 16);
    assert_eq!(intern.rules.remember, 10);
    assert_eq!(intern.ageing.max_age, Some(days(90)));
    // What the policy does not set comes from [password] and the defaults.
    assert_eq!(intern.rules.max_length, 64);
    assert_eq!(intern.min_strength, 3);
    assert_eq!(intern.ageing.warn_age, days(7));

    // A member of two policies gets the first, for passwords as for lockout.
    let both = |group: &str| group == "robots" || group == "contractors";
    assert_eq!(config.effective_password(both).policy_name, "contractors");
    assert_eq!(config.effective_lockout(both).policy_name, "contractors");

    // A policy without [policy.password] still takes its members: they get
    // [password], and the policy's name.
    let ops = config.effective_password(|group| group == "ops");
    assert_eq!(ops.policy_name, "ops");
    assert_eq!(ops.rules, config.effective_password(|_| false).rules);
    assert_eq!(ops.ageing.max_age, Some(days(180)));
    let ops_and_robots = config.effective_password(|g| g == "ops" || g == "robots");
    assert_eq!(ops_and_robots.policy_name, "ops");
    assert!(ops_and_robots.enforce_for_root);

    let robot = config.effective_password(|group| group == "robots");
    assert_eq!(robot.policy_name, "robots");
    assert_eq!(robot.ageing.max_age, None, "\"never\" beats [password]");
    assert!(!robot.enforce_for_root);
    assert_eq!(robot.min_strength, 4);
}

#[test]
fn password_membership_is_asked_in_order_and_no_further_than_needed() {
    let config = parse(PASSWORD_POLICIES).unwrap();
    let asked = RefCell::new(Vec::new());
    let effective = config.effective_password(|group| {
        asked.borrow_mut().push(group.to_owned());
        group == "ops"
    });
    assert_eq!(effective.policy_name, "ops");
    assert_eq!(*asked.borrow(), ["contractors", "interns", "ops"]);
}

#[test]
fn policy_contradictions_are_checked_with_password() {
    let policy = |body: &str| {
        format!(
            "[password]\nmin_length = 12\nmax_length = 20\nmin_age = \"2d\"\n\
             [[policy]]\nname = \"a\"\ngroups = [\"g\"]\n[policy.password]\n{body}\n"
        )
    };
    assert_refused(
        &policy("min_length = 24"),
        9,
        14,
        &[
            "in [[policy]] \"a\" (with [password])",
            "min_length (24) is more than max_length (20)",
        ],
    );
    assert_refused(
        &policy("max_length = 10"),
        9,
        14,
        &[
            "in [[policy]] \"a\"",
            "min_length (12) is more than max_length (10)",
        ],
    );
    assert_refused(
        &policy("min_upper = 11\nmin_lower = 10"),
        9,
        13,
        &["in [[policy]] \"a\"", "need at least 21 characters"],
    );
    assert_refused(
        &policy("max_age = \"1d\""),
        9,
        11,
        &[
            "in [[policy]] \"a\"",
            "min_age (2d) is not shorter than max_age (1d)",
        ],
    );
    // Raising both together is fine.
    let config = parse(&policy("min_length = 24\nmax_length = 30")).unwrap();
    assert_eq!(config.policies[0].password.min_length, Some(24));
    // Each value on its own is checked too.
    assert_refused(&policy("min_strength = 5"), 9, 16, &["from 0 to 4"]);
    assert_refused(&policy("retry = 0"), 9, 9, &["from 1 to 10"]);
    assert_refused(&policy("max_age = \"0\""), 9, 11, &["at once"]);
}

// ---- module arguments --------------------------------------------------

#[test]
fn password_module_arguments_beat_every_policy() {
    let mut config = parse(PASSWORD_POLICIES).unwrap();
    for arg in [
        "min_length=14",
        "remember=7",
        "min_strength=2",
        "retry=4",
        "enforce_for_root",
    ] {
        config
            .apply_module_arg(arg)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    for effective in [
        config.effective_password(|_| false),
        config.effective_password(|group| group == "interns"),
        config.effective_password(|group| group == "ops"),
        config.effective_password(|group| group == "robots"),
    ] {
        let name = &effective.policy_name;
        assert_eq!(effective.rules.min_length, 14, "{name}");
        assert_eq!(effective.rules.remember, 7, "{name}");
        assert_eq!(effective.min_strength, 2, "{name}");
        assert_eq!(effective.retry, 4, "{name}");
        assert!(effective.enforce_for_root, "{name}");
    }
    // What the arguments do not set still comes from the policy.
    let intern = config.effective_password(|group| group == "interns");
    assert_eq!(intern.ageing.max_age, Some(days(90)));
    assert_eq!(config.password.rules.min_length, 14);
    assert_eq!(
        config.password_overrides(),
        &PasswordOverrides {
            min_length: Some(14),
            remember: Some(7),
            min_strength: Some(2),
            retry: Some(4),
            enforce_for_root: Some(true),
            ..PasswordOverrides::default()
        }
    );
    config.apply_module_arg("enforce_for_root=false").unwrap();
    assert!(!config.effective_password(|_| false).enforce_for_root);
    config.apply_module_arg("remember=0").unwrap();
    assert_eq!(config.effective_password(|_| false).rules.remember, 0);
}

#[test]
fn checker_and_list_arguments() {
    let mut config = Config::default();
    config
        .apply_module_arg("checker=/opt/deadbolt/pwcheck")
        .unwrap();
    config
        .apply_module_arg("list=/etc/deadbolt/site-passwords.txt")
        .unwrap();
    config
        .apply_module_arg("list=/etc/deadbolt/more.txt")
        .unwrap();
    // Naming a list again reads it once.
    config
        .apply_module_arg("list=/usr/share/deadbolt/common-passwords.txt")
        .unwrap();
    let effective = config.effective_password(|_| true);
    assert_eq!(effective.checker, Path::new("/opt/deadbolt/pwcheck"));
    assert_eq!(
        effective.lists,
        [
            PathBuf::from("/usr/share/deadbolt/common-passwords.txt"),
            PathBuf::from("/etc/deadbolt/site-passwords.txt"),
            PathBuf::from("/etc/deadbolt/more.txt"),
        ]
    );
    // A value may contain '='.
    config.apply_module_arg("checker=/opt/a=b").unwrap();
    assert_eq!(config.password.checker, Path::new("/opt/a=b"));

    let mut full = Config::default();
    for i in 1..MAX_LISTS {
        full.apply_module_arg(&format!("list=/l{i}")).unwrap();
    }
    assert_eq!(full.password.lists.len(), MAX_LISTS);
    let before = full.clone();
    let error = full.apply_module_arg("list=/one-too-many").unwrap_err();
    assert!(error.message.contains("already 64 word lists"), "{error}");
    assert_eq!(full, before);
    full.apply_module_arg("list=/l1").unwrap();
    assert_eq!(full, before);
}

#[test]
fn min_length_argument_must_fit_every_max_length() {
    let mut config = parse(
        "[password]\nmax_length = 40\n[[policy]]\nname = \"short\"\ngroups = [\"g\"]\n[policy.password]\nmax_length = 20\n",
    )
    .unwrap();
    let pristine = config.clone();
    let error = config.apply_module_arg("min_length=41").unwrap_err();
    assert!(
        error.message.contains("max_length (40) of [password]"),
        "{error}"
    );
    let error = config.apply_module_arg("min_length=21").unwrap_err();
    assert!(
        error
            .message
            .contains("max_length (20) of [[policy]] \"short\""),
        "{error}"
    );
    assert_eq!(config, pristine);
    config.apply_module_arg("min_length=20").unwrap();
    let short = config.effective_password(|_| true);
    assert_eq!((short.rules.min_length, short.rules.max_length), (20, 20));
}

#[test]
fn effective_password_never_has_min_above_max() {
    // The fields are public: a caller may break the invariant the file and
    // the arguments keep. The minimum then wins.
    let mut config = Config::default();
    config.password.rules.min_length = 200;
    let effective = config.effective_password(|_| false);
    assert_eq!(effective.rules.min_length, 200);
    assert_eq!(effective.rules.max_length, 200);
}

#[test]
fn bad_password_arguments_change_nothing() {
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("min_length", Some("0"), "min_length=0 is out of range"),
        ("min_length", Some("513"), "from 1 to 512"),
        ("min_length", Some("65"), "max_length (64) of [password]"),
        (
            "min_length",
            Some("abc"),
            "`abc` is not an integer from 1 to 512",
        ),
        ("min_length", Some("-1"), "not an integer"),
        ("min_length", Some("+14"), "not an integer"),
        ("min_length", Some(" 14"), "not an integer"),
        (
            "min_length",
            Some("99999999999999999999999"),
            "not an integer",
        ),
        ("min_length", None, "needs a value: write min_length=N"),
        ("remember", Some("401"), "from 0 to 400"),
        ("remember", Some(""), "not an integer"),
        ("min_strength", Some("5"), "from 0 to 4"),
        ("min_strength", Some("256"), "from 0 to 4"),
        ("retry", Some("0"), "from 1 to 10"),
        ("retry", Some("11"), "from 1 to 10"),
        ("retry", None, "needs a value"),
        ("enforce_for_root", Some("yes"), "true or false"),
        ("checker", Some("pwcheck"), "relative"),
        ("checker", Some(""), "empty"),
        ("checker", Some("/usr/libexec/"), "names a directory"),
        ("checker", Some("/usr/bin/a\u{7}b"), "control character"),
        ("checker", None, "needs a value: write checker=PATH"),
        ("list", Some("words.txt"), "relative"),
        ("list", Some("/etc/deadbolt/"), "names a directory"),
        ("list", None, "needs a value: write list=PATH"),
        ("lists", Some("/a"), "unknown argument `lists`"),
        ("minlen", Some("14"), "unknown argument `minlen`"),
    ];
    let pristine = parse(PASSWORD_POLICIES).unwrap();
    for &(key, value, needle) in cases {
        let mut config = pristine.clone();
        let error = config.apply_override(key, value).unwrap_err();
        assert!(error.message.contains(needle), "{key}={value:?}: {error}");
        assert_eq!(config, pristine, "{key}={value:?} changed the config");
    }
    let error = pristine.clone().apply_module_arg("bogus").unwrap_err();
    assert!(error.message.contains("min_strength=N"), "{error}");
    assert!(error.message.contains("list=PATH"), "{error}");
}

// ---- hostile input -----------------------------------------------------

#[test]
fn huge_integers_name_the_key_and_its_range() {
    for (text, needle) in [
        (
            "[password]\nmin_length = 99999999999999999999\n",
            "min_length takes an integer from 1 to 512",
        ),
        (
            "password.retry = 18446744073709551615\n",
            "retry takes an integer from 1 to 10",
        ),
        (
            "[password]\n\"remember\" = -99999999999999999999\n",
            "remember takes an integer from 0 to 400",
        ),
        (
            "password = { hash_iterations = 9223372036854775808 }\n",
            "hash_iterations takes an integer from 1 to 100",
        ),
        (
            "policy = [{ name = \"a\", groups = [\"g\"], password = { min_strength = 99999999999999999999 } }]\n",
            "min_strength takes an integer from 0 to 4",
        ),
        (
            "[lockout]\ndeny = 99999999999999999999\n",
            "deny takes an integer from 1 to 10000",
        ),
        (
            "[password]\nlists = [99999999999999999999]\n",
            "no setting takes an integer this large",
        ),
        (
            "[lockout]\ndelay = 99999999999999999999\n",
            "no setting takes an integer this large",
        ),
    ] {
        let (line, _, message) = refused(text);
        assert_eq!(line, text.lines().count(), "{text}: {message}");
        assert!(message.contains("does not fit in 64 bits"), "{message}");
        assert!(message.contains(needle), "{text}: {message}");
    }
}

#[test]
fn hostile_password_values() {
    // NUL and other control characters in paths.
    assert_refused(
        "[password]\nchecker = \"/usr/bin/pw\\u0000check\"\n",
        2,
        11,
        &["control character"],
    );
    assert_refused(
        "[password]\nlists = [\"/a\\u001b[31m\"]\n",
        2,
        10,
        &["control character"],
    );
    // A megabyte-sized path is not echoed whole.
    let huge = format!("{}x", "a".repeat(500_000));
    let (_, _, message) = refused(&format!("[password]\nchecker = \"{huge}\"\n"));
    assert!(message.len() < 400, "{}", message.len());
    assert!(message.contains("relative"), "{message}");
    let (_, _, message) = refused(&format!("[password]\nmax_age = \"{huge}\"\n"));
    assert!(message.len() < 600, "{}", message.len());
    // Nesting under the new tables.
    let keys = vec!["a"; 10_000].join(".");
    let error = parse(&format!("password.{keys} = 1\n")).unwrap_err();
    assert!(error.message().contains("nested too deeply"), "{error}");
    assert!(error.message().contains("[policy.password]"), "{error}");
    assert_refused("password.a.b = 1\n", 1, 10, &["unknown field `a`"]);
    assert_refused("[password]\nmin_length = { n = 1 }\n", 2, 14, &["a table"]);
    assert_refused("[password]\nmin_length = 1979-05-27\n", 2, 14, &["a date"]);
    // Durations that overflow.
    assert_refused(
        "[password]\nmax_age = \"213503982334602d\"\n",
        2,
        11,
        &["too large"],
    );
    let longest = parse("[password]\nmax_age = \"213503982334601d\"\n").unwrap();
    assert!(longest.password.ageing.max_age.is_some());
    // Many policies with password parts.
    let mut text = String::new();
    for i in 0..2_000 {
        text.push_str(&format!(
            "[[policy]]\nname = \"p{i}\"\ngroups = [\"g{i}\"]\n[policy.password]\nmin_length = {}\n",
            1 + i % 128
        ));
    }
    let config = parse(&text).unwrap();
    let last = config.effective_password(|group| group == "g1999");
    assert_eq!(last.policy_name, "p1999");
    assert_eq!(last.rules.min_length, 1 + 1999 % 128);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parse_never_panics_on_password_text(
            text in "(\\[{1,2}(password|policy|policy\\.password)\\]{1,2}\n|(name|groups|min_length|max_length|min_classes|min_strength|remember|retry|max_age|min_age|hash_memory_kib|hash_parallelism|checker|lists) = (\"[a-z0-9/]{0,5}\"|-?[0-9]{1,22}|true|\\[\\]|\\[\"/[a-z]{0,3}\"\\]|\\{\\})\n){0,10}"
        ) {
            match parse(&text) {
                Ok(config) => {
                    // Whatever is accepted is consistent, for every policy.
                    let mut checks = vec![config.effective_password(|_| false)];
                    for policy in &config.policies {
                        checks.push(config.effective_password(|g| policy.groups.iter().any(|p| p == g)));
                    }
                    for effective in checks {
                        let rules = &effective.rules;
                        prop_assert!(rules.min_length <= rules.max_length);
                        prop_assert!(rules.max_length <= MAX_LENGTH);
                        prop_assert!(rules.min_classes <= 4);
                        prop_assert!(effective.min_strength <= MAX_STRENGTH);
                        prop_assert!((1..=MAX_RETRY).contains(&effective.retry));
                        prop_assert!(rules.remember <= MAX_REMEMBER);
                        prop_assert!(effective.hash.memory_kib >= 8 * effective.hash.parallelism);
                        prop_assert!(effective.checker.is_absolute());
                        prop_assert!(effective.lists.iter().all(|l| l.is_absolute()));
                        if let Some(max_age) = effective.ageing.max_age {
                            prop_assert!(effective.ageing.min_age < max_age);
                        }
                    }
                }
                Err(error) => prop_assert!(!error.to_string().contains('\n')),
            }
        }

        #[test]
        fn password_arguments_never_panic_and_refusals_change_nothing(
            key in prop::sample::select(vec![
                "min_length", "remember", "min_strength", "retry", "enforce_for_root",
                "checker", "list",
            ]),
            value in proptest::option::of(prop_oneof![
                any::<String>(),
                "[0-9]{1,4}",
                "/[a-z/]{0,8}",
            ]),
        ) {
            let pristine = parse(PASSWORD_POLICIES).unwrap();
            let mut config = pristine.clone();
            match config.apply_override(key, value.as_deref()) {
                Err(_) => prop_assert_eq!(config, pristine),
                Ok(()) => {
                    let effective = config.effective_password(|_| true);
                    prop_assert!(effective.rules.min_length <= effective.rules.max_length);
                    prop_assert!(effective.min_strength <= MAX_STRENGTH);
                    prop_assert!((1..=MAX_RETRY).contains(&effective.retry));
                    prop_assert!(effective.rules.remember <= MAX_REMEMBER);
                }
            }
        }
    }
}
