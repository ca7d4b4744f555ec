//! Advisories and licences of every crate deadbolt is built from.
//!
//! `cargo audit` reads the workspace's Cargo.lock against the RustSec
//! snapshot in `../shared/advisory-db` (or `DEADBOLT_ADVISORY_DB`), offline,
//! with the settings in `.cargo/audit.toml`: a vulnerability, an unmaintained
//! or an unsound crate fails the run unless that file ignores its advisory
//! with a reason on the same line. `cargo deny` checks licences against the
//! list in `deny.toml`. Both tools are installed by `scripts/setup-deps
//! --audit`, which `make test` runs.
//!
//! Each check is also shown to fail: a lock file naming a crate with a
//! known advisory, and a crate under a licence outside the list, each in a
//! throwaway project that uses the workspace's own settings.
#![forbid(unsafe_code)]

use deadbolt_tests::workspace_dir;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// RUSTSEC-2020-0071: `time` 0.1 before 0.2.23 may segfault (a vulnerability).
const VULNERABLE: (&str, &str, &str) = ("time", "0.1.43", "RUSTSEC-2020-0071");
/// RUSTSEC-2021-0139: `ansi_term` is unmaintained (informational).
const UNMAINTAINED: (&str, &str, &str) = ("ansi_term", "0.12.1", "RUSTSEC-2021-0139");

fn advisory_db() -> PathBuf {
    let db = match std::env::var_os("DEADBOLT_ADVISORY_DB") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_dir().join("../shared/advisory-db"),
    };
    assert!(
        db.join("crates").is_dir(),
        "no RustSec advisory snapshot at {}: set DEADBOLT_ADVISORY_DB to one",
        db.display()
    );
    db
}

fn cargo_tool(tool: &str, args: &[&str], dir: &Path) -> Output {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    Command::new(cargo)
        .arg(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cargo {tool}: {e}"))
}

fn audit(dir: &Path) -> Output {
    let db = advisory_db();
    let out = cargo_tool("audit", &["--db", db.to_str().unwrap()], dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("no such command"),
        "cargo-audit is not installed: run scripts/setup-deps --audit"
    );
    out
}

fn deny_licences(dir: &Path) -> Output {
    let out = cargo_tool("deny", &["--offline", "check", "licenses"], dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("no such command"),
        "cargo-deny is not installed: run scripts/setup-deps --audit"
    );
    out
}

fn report(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A throwaway project with the workspace's `.cargo/audit.toml` (or the
/// given one) and a lock file naming `crates` as the dependencies of one
/// package.
fn audited_project(crates: &[(&str, &str, &str)], audit_toml: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut lock =
        String::from("version = 3\n\n[[package]]\nname = \"canary\"\nversion = \"0.1.0\"\n");
    let names: Vec<String> = crates
        .iter()
        .map(|(name, ..)| format!("\"{name}\""))
        .collect();
    lock.push_str(&format!("dependencies = [{}]\n", names.join(", ")));
    for (name, version, _) in crates {
        lock.push_str(&format!(
            "\n[[package]]\nname = \"{name}\"\nversion = \"{version}\"\n\
             source = \"registry+https://github.com/rust-lang/crates.io-index\"\n"
        ));
    }
    fs::write(dir.path().join("Cargo.lock"), lock).unwrap();
    fs::create_dir(dir.path().join(".cargo")).unwrap();
    let settings = match audit_toml {
        Some(text) => text.to_owned(),
        None => fs::read_to_string(workspace_dir().join(".cargo/audit.toml")).unwrap(),
    };
    fs::write(dir.path().join(".cargo/audit.toml"), settings).unwrap();
    dir
}

/// The advisories `ignore` lists, each with the reason written on its
/// line after `# reason:`; an entry without one is an error.
fn ignored_advisories(audit_toml: &str) -> Result<Vec<(String, String)>, String> {
    let mut ignored = Vec::new();
    let mut in_list = false;
    for (number, line) in audit_toml.lines().enumerate() {
        let trimmed = line.trim();
        if !in_list {
            if let Some(rest) = trimmed.strip_prefix("ignore") {
                let rest = rest.trim_start();
                let Some(list) = rest.strip_prefix('=') else {
                    continue;
                };
                let list = list.trim_start();
                if !list.starts_with('[') {
                    return Err(format!("line {}: ignore is not a list", number + 1));
                }
                in_list = !list.contains(']');
                if list.trim_start_matches('[').trim_start().starts_with('"') {
                    return Err(format!(
                        "line {}: write one advisory per line, each with its reason",
                        number + 1
                    ));
                }
            }
            continue;
        }
        if trimmed.starts_with(']') {
            in_list = false;
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (entry, comment) = trimmed.split_once('#').unwrap_or((trimmed, ""));
        let id = entry.trim().trim_end_matches(',').trim().trim_matches('"');
        let reason = comment.trim().strip_prefix("reason:").map(str::trim);
        match reason {
            Some(reason) if !reason.is_empty() => ignored.push((id.to_owned(), reason.to_owned())),
            _ => {
                return Err(format!(
                    "line {}: {id} is ignored without a reason: add `# reason: ...`",
                    number + 1
                ))
            }
        }
    }
    Ok(ignored)
}

#[test]
fn the_workspace_has_no_advisory_left_unexplained() {
    let out = audit(&workspace_dir());
    assert!(out.status.success(), "cargo audit found:\n{}", report(&out));
    let settings = fs::read_to_string(workspace_dir().join(".cargo/audit.toml")).unwrap();
    let ignored =
        ignored_advisories(&settings).unwrap_or_else(|e| panic!(".cargo/audit.toml: {e}"));
    for (id, reason) in ignored {
        println!("ignored {id}: {reason}");
    }
}

#[test]
fn a_crate_with_a_known_vulnerability_fails_the_audit() {
    let project = audited_project(&[VULNERABLE], None);
    let out = audit(project.path());
    assert!(!out.status.success(), "passed:\n{}", report(&out));
    assert!(report(&out).contains(VULNERABLE.2), "{}", report(&out));
}

#[test]
fn an_unmaintained_crate_fails_the_audit_too() {
    let project = audited_project(&[UNMAINTAINED], None);
    let out = audit(project.path());
    assert!(!out.status.success(), "passed:\n{}", report(&out));
    assert!(report(&out).contains(UNMAINTAINED.2), "{}", report(&out));
}

#[test]
fn an_advisory_ignored_with_its_reason_passes() {
    let workspace_settings = fs::read_to_string(workspace_dir().join(".cargo/audit.toml")).unwrap();
    let with_ignore = workspace_settings.replace(
        "ignore = []",
        &format!(
            "ignore = [\n    \"{}\",  # reason: a test's canary\n]",
            VULNERABLE.2
        ),
    );
    assert_ne!(
        with_ignore, workspace_settings,
        "the settings have no `ignore = []` line"
    );
    assert_eq!(
        ignored_advisories(&with_ignore).unwrap(),
        vec![(VULNERABLE.2.to_owned(), "a test's canary".to_owned())]
    );
    let project = audited_project(&[VULNERABLE], Some(&with_ignore));
    let out = audit(project.path());
    assert!(out.status.success(), "{}", report(&out));
}

#[test]
fn an_ignore_without_a_reason_is_refused() {
    for settings in [
        "[advisories]\nignore = [\n    \"RUSTSEC-2020-0071\",\n]\n",
        "[advisories]\nignore = [\n    \"RUSTSEC-2020-0071\",  # reason:\n]\n",
        "[advisories]\nignore = [\n    \"RUSTSEC-2020-0071\",  # old\n]\n",
        "[advisories]\nignore = [\"RUSTSEC-2020-0071\"]\n",
        "[advisories]\nignore = \"RUSTSEC-2020-0071\"\n",
    ] {
        assert!(
            ignored_advisories(settings).is_err(),
            "accepted: {settings}"
        );
    }
}

#[test]
fn every_licence_is_on_the_list() {
    let out = deny_licences(&workspace_dir());
    assert!(out.status.success(), "cargo deny:\n{}", report(&out));
}

#[test]
fn a_licence_off_the_list_fails() {
    let project = tempfile::tempdir().unwrap();
    let root = project.path();
    fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"canary\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
         license = \"MIT\"\n\n[dependencies]\ncopyleft = { path = \"copyleft\" }\n",
    )
    .unwrap();
    fs::create_dir_all(root.join("src")).unwrap();
    fs::write(root.join("src/lib.rs"), "").unwrap();
    fs::create_dir_all(root.join("copyleft/src")).unwrap();
    fs::write(
        root.join("copyleft/Cargo.toml"),
        "[package]\nname = \"copyleft\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
         license = \"GPL-3.0-only\"\n",
    )
    .unwrap();
    fs::write(root.join("copyleft/src/lib.rs"), "").unwrap();
    fs::copy(workspace_dir().join("deny.toml"), root.join("deny.toml")).unwrap();
    let out = deny_licences(root);
    assert!(!out.status.success(), "passed:\n{}", report(&out));
    assert!(report(&out).contains("GPL-3.0-only"), "{}", report(&out));
}
