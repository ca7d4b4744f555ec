//! The `deadbolt-pwcheck` program as the PAM module runs it: arguments,
//! the password on standard input, one line of JSON and an exit status.

use deadbolt_pwcheck::CheckVerdict;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_deadbolt-pwcheck");
const SHIPPED_LIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/common-passwords.txt");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn verdict(&self) -> CheckVerdict {
        assert!(self.stdout.ends_with('\n'), "{:?}", self.stdout);
        assert_eq!(
            self.stdout.lines().count(),
            1,
            "one line: {:?}",
            self.stdout
        );
        serde_json::from_str(self.stdout.trim_end()).expect("the verdict is JSON")
    }
}

fn run(args: &[&str], password: &[u8]) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting deadbolt-pwcheck");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = password.to_vec();
    // A thread writes, so that a large input cannot dead-lock against the
    // program's output.
    let writer = std::thread::spawn(move || {
        let result = stdin.write_all(&input);
        drop(stdin);
        result
    });
    let output = child
        .wait_with_output()
        .expect("waiting for deadbolt-pwcheck");
    let written = writer.join().expect("writer thread");
    let run = Run {
        code: output.status.code().expect("an exit code, not a signal"),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
    };
    if run.code == 0 || run.code == 1 {
        // A check was made: the whole input was read, however long.
        written.expect("the program reads all of its input");
    }
    if password.len() >= 6 {
        let shown = String::from_utf8_lossy(password);
        for text in [&run.stdout, &run.stderr] {
            assert!(!text.contains(shown.as_ref()), "password leaked: {text:?}");
        }
        if let Ok(lower) = std::str::from_utf8(password).map(str::to_lowercase) {
            assert!(!run.stdout.to_lowercase().contains(&lower));
        }
    }
    run
}

fn check_args<'a>(user: &'a str, strength: &'a str) -> Vec<&'a str> {
    vec![
        "--user",
        user,
        "--real-name",
        "Jane Doe",
        "--min-strength",
        strength,
        "--list",
        SHIPPED_LIST,
    ]
}

#[test]
fn a_strong_password_is_accepted_with_exit_0() {
    let run = run(&check_args("jdoe", "3"), b"quartz-Nimbus-falcon-Tepid-41");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "");
    assert_eq!(
        run.verdict(),
        CheckVerdict {
            accepted: true,
            score: 4,
            reasons: vec![],
            list_problems: vec![],
        }
    );
}

#[test]
fn a_common_password_is_refused_with_exit_1() {
    let run = run(&check_args("jdoe", "0"), b"PassWord1");
    assert_eq!(run.code, 1);
    assert_eq!(run.stderr, "");
    let verdict = run.verdict();
    assert!(!verdict.accepted);
    assert_eq!(
        verdict.reasons,
        vec!["BAD PASSWORD: it is one of the most commonly used passwords."]
    );
}

#[test]
fn a_weak_password_gets_its_reasons() {
    let run = run(&check_args("jdoe", "3"), b"janedoe1985");
    assert_eq!(run.code, 1);
    let verdict = run.verdict();
    assert!(verdict.score < 3);
    assert_eq!(verdict.reasons.len(), 1, "{:?}", verdict.reasons);
    let reason = &verdict.reasons[0];
    assert!(
        reason.starts_with("BAD PASSWORD: it is too easy to guess (strength "),
        "{reason}"
    );
    assert!(reason.contains("It contains your name."), "{reason}");
}

#[test]
fn the_user_name_as_password_is_refused() {
    let run = run(&check_args("kowalczyk-ops", "3"), b"kowalczyk-ops");
    assert_eq!(run.code, 1);
    let verdict = run.verdict();
    assert!(verdict.score <= 1, "{verdict:?}");
    assert!(verdict.reasons[0].contains("It contains your user name."));
}

#[test]
fn the_empty_password_is_refused() {
    let run = run(&check_args("jdoe", "0"), b"");
    assert_eq!(run.code, 1);
    assert_eq!(run.verdict().reasons, vec!["BAD PASSWORD: it is empty."]);
}

#[test]
fn a_1_mib_password_is_refused_cleanly() {
    let huge = vec![b'x'; 1 << 20];
    let started = std::time::Instant::now();
    let run = run(&check_args("jdoe", "3"), &huge);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(run.code, 1);
    assert_eq!(run.stderr, "");
    let verdict = run.verdict();
    assert_eq!(
        verdict,
        CheckVerdict {
            accepted: false,
            score: 0,
            reasons: vec!["BAD PASSWORD: the password is longer than 4096 bytes.".into()],
            list_problems: vec![],
        }
    );
}

#[test]
fn exactly_4096_bytes_are_judged() {
    let password = "quartz-Nimbus-falcon-Tepid-41 "
        .repeat(200)
        .into_bytes()
        .into_iter()
        .take(4096)
        .collect::<Vec<u8>>();
    let run = run(&check_args("jdoe", "3"), &password);
    assert_eq!(run.code, 0, "{}", run.stdout);
}

#[test]
fn non_utf8_bytes_are_judged() {
    let mut password = b"\xff\xfe\x80".to_vec();
    password.extend_from_slice(b"quartz-Nimbus-falcon-Tepid-41");
    let run = run(&check_args("jdoe", "3"), &password);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.verdict().accepted);
}

#[test]
fn a_missing_list_is_reported_and_does_not_refuse() {
    let args = [
        "--user",
        "jdoe",
        "--min-strength",
        "3",
        "--list",
        "/nonexistent/deadbolt/site-list.txt",
    ];
    let run = run(&args, b"quartz-Nimbus-falcon-Tepid-41");
    assert_eq!(run.code, 0);
    let verdict = run.verdict();
    assert!(verdict.accepted);
    assert_eq!(
        verdict.list_problems,
        vec!["/nonexistent/deadbolt/site-list.txt: No such file or directory"]
    );
}

#[test]
fn without_list_the_default_path_is_read() {
    let run = run(
        &["--user", "jdoe", "--min-strength", "3"],
        b"quartz-Nimbus-falcon-Tepid-41",
    );
    assert_eq!(run.code, 0);
    let verdict = run.verdict();
    if Path::new(deadbolt_pwcheck::DEFAULT_LIST_PATH).exists() {
        assert!(verdict.list_problems.is_empty(), "{verdict:?}");
    } else {
        assert_eq!(
            verdict.list_problems,
            vec![format!(
                "{}: No such file or directory",
                deadbolt_pwcheck::DEFAULT_LIST_PATH
            )]
        );
    }
}

#[test]
fn usage_errors_exit_2_with_a_message_and_no_verdict() {
    let cases: &[&[&str]] = &[
        &[],
        &["--user", "jdoe"],
        &["--user", "jdoe", "--min-strength", "9"],
        &["--user", "jdoe", "--min-strength", "3", "--bogus"],
        &["--user", "jdoe", "--min-strength", "3", "--list"],
    ];
    for args in cases {
        let run = run(args, b"quartz-Nimbus-falcon-Tepid-41");
        assert_eq!(run.code, 2, "{args:?}");
        assert_eq!(run.stdout, "", "{args:?}");
        assert!(
            run.stderr.starts_with("deadbolt-pwcheck: "),
            "{:?}",
            run.stderr
        );
        assert!(run.stderr.contains("--help"), "{:?}", run.stderr);
    }
}

#[test]
fn help_and_version_exit_0() {
    let help = run(&["--help"], b"");
    assert_eq!(help.code, 0);
    assert!(help
        .stdout
        .starts_with("Usage: deadbolt-pwcheck --user NAME"));
    let version = run(&["--version"], b"");
    assert_eq!(version.code, 0);
    assert!(version.stdout.starts_with("deadbolt-pwcheck "));
}
