//! `deadboltctl set-password USER --as DN`: an administrator's or a
//! manager's reset, against a real slapd with ppolicy and the example ACL.
//! The directory hashes the new password (RFC 3062), the entry is marked
//! `pwdReset: TRUE`, a manager is refused for someone else's report and an
//! employee for himself, a password the policy refuses changes nothing, and
//! no new password appears in any output or process argument list.

use deadbolt_tests::fleet::{fleet_toml, secret_file};
use deadbolt_tests::slapd::{Directory, POLICY_DN};
use deadbolt_tests::{deadboltctl_path, Outcome, PamEnv};
use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const NEW: &str = "Quiet-Harbour-Lantern-58";

struct World {
    dir: Directory,
    env: PamEnv,
    admin: String,
    boss: String,
    alice: String,
    dave: String,
    files: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let dir = Directory::start();
        let admin = dir.add_admin("adm", "pw-adm");
        let boss = dir.add_employee("boss", "pw-boss", None);
        let carol = dir.add_employee("carol", "pw-carol", None);
        let alice = dir.add_employee("alice", "pw-alice", Some(&boss));
        let dave = dir.add_employee("dave", "pw-dave", Some(&carol));
        let host = dir.add_host("host-a");
        let toml = fleet_toml(
            "host-a",
            &[dir.uri()],
            &dir.people_dn(),
            &host.dn,
            &host.password_file,
        );
        let env = PamEnv::builder().toml(&toml).build();
        let files = tempfile::tempdir().expect("a directory for password files");
        World {
            dir,
            env,
            admin,
            boss,
            alice,
            dave,
            files,
        }
    }

    /// A 0600 file holding `secret`.
    fn file(&self, name: &str, secret: &str) -> PathBuf {
        secret_file(self.files.path(), name, secret)
    }

    /// `set-password` as `dn` (password `pw`), with `extra` arguments.
    fn set_password(&self, dn: &str, pw: &str, extra: &[&str]) -> Outcome {
        let pw_file = self.file(
            &format!("bind-{}.pw", deadbolt_tests::slapd::random_secret()),
            pw,
        );
        let pw_file = pw_file.to_str().unwrap().to_owned();
        let mut args = vec!["set-password"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--as", dn, "--password-file", &pw_file]);
        self.env.deadboltctl(&args)
    }

    fn binds(&self, dn: &str, password: &str) -> bool {
        self.dir.try_bind(dn, password).is_ok()
    }
}

fn assert_no_secret(out: &Outcome, secret: &str) {
    assert!(!out.shows(secret), "the password was shown:\n{out}");
}

#[test]
fn a_manager_resets_his_report_and_is_refused_for_others_and_himself() {
    let w = World::new();
    let new = w.file("new.pw", NEW);
    let new = new.to_str().unwrap();

    let out = w.set_password(&w.boss, "pw-boss", &["alice", "--new-password-file", new]);
    assert!(out.succeeded(), "{out}");
    assert!(
        out.stdout
            .contains("alice: password set in the directory by"),
        "{out}"
    );
    assert_no_secret(&out, NEW);
    assert!(w.binds(&w.alice, NEW), "the new password does not bind");
    assert!(
        !w.binds(&w.alice, "pw-alice"),
        "the old password still binds"
    );
    assert!(w.dir.pwd_reset(&w.alice), "alice is not marked pwdReset");
    // The directory hashed it: the value stored is not the password.
    let stored = w.dir.entry(&w.alice, &["userPassword"]).expect("alice");
    let stored = stored.first("userPassword").expect("a userPassword");
    assert!(stored.starts_with('{') && !stored.contains(NEW), "{stored}");

    // dave's manager is carol, not boss.
    let out = w.set_password(&w.boss, "pw-boss", &["dave", "--new-password-file", new]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("insufficient access"), "{out}");
    assert!(w.binds(&w.dave, "pw-dave") && !w.dir.pwd_reset(&w.dave));

    // Nobody resets his own password, not even through the ACL's `self write`.
    let out = w.set_password(&w.alice, NEW, &["alice", "--new-password-file", new]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("your own entry"), "{out}");
    assert!(w.binds(&w.alice, NEW));
}

#[test]
fn an_administrator_resets_anyone_with_a_generated_password() {
    let w = World::new();
    let out = w.set_password(
        &w.admin,
        "pw-adm",
        &["dave", "--generate", "--print", "--json"],
    );
    assert!(out.succeeded(), "{out}");
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    assert_eq!(v["user"], "dave");
    assert_eq!(v["must_change"], true);
    assert_eq!(v["generated"], true);
    let generated = v["password"].as_str().expect("the printed password");
    assert!(generated.len() >= 16, "{generated}");
    assert!(w.binds(&w.dave, generated) && w.dir.pwd_reset(&w.dave));

    // Without --print and without a terminal, --generate refuses before
    // anything is changed.
    let out = w.set_password(&w.admin, "pw-adm", &["dave", "--generate"]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("add --print"), "{out}");
    assert!(w.binds(&w.dave, generated));
}

#[test]
fn with_pwd_must_change_the_reset_is_marked_and_slapd_marks_only_the_rootdns() {
    let w = World::new();
    w.dir
        .modify(
            w.dir.admin_dn(),
            w.dir.admin_password(),
            &format!(
                "dn: {POLICY_DN}\nchangetype: modify\nadd: pwdMustChange\npwdMustChange: TRUE\n"
            ),
        )
        .expect("pwdMustChange");
    let new = w.file("new.pw", NEW);
    let out = w.set_password(
        &w.admin,
        "pw-adm",
        &["alice", "--new-password-file", new.to_str().unwrap()],
    );
    assert!(out.succeeded(), "{out}");
    assert!(w.dir.pwd_reset(&w.alice));
    // What slapd 2.5 does by itself, and why deadboltctl does not rely on
    // it: with pwdMustChange it marks a password set by the rootdn, not
    // one set by an administrator the ACL lets write it.
    let result = w.dir.try_password_modify(&w.admin, "pw-adm", &w.dave, NEW);
    assert!(result.is_ok(), "{}", result.stderr);
    assert!(
        !w.dir.pwd_reset(&w.dave),
        "slapd marked an administrator's ldappasswd"
    );
    let result = w.dir.try_password_modify(
        w.dir.admin_dn(),
        w.dir.admin_password(),
        &w.dave,
        "Other-Harbour-Lantern-77",
    );
    assert!(result.is_ok(), "{}", result.stderr);
    assert!(
        w.dir.pwd_reset(&w.dave),
        "slapd did not mark the rootdn's ldappasswd"
    );
    // pwdReset is an ordinary attribute to a modify (no NO-USER-MODIFICATION):
    // an administrator sets it by hand, the employee cannot clear it.
    let clear = format!("dn: {}\nchangetype: modify\ndelete: pwdReset\n", w.dave);
    let refused = w
        .dir
        .try_modify(&w.dave, "Other-Harbour-Lantern-77", &clear);
    assert_eq!(
        refused.code,
        deadbolt_tests::slapd::INSUFFICIENT_ACCESS,
        "{}",
        refused.stderr
    );
    w.dir
        .modify(&w.admin, "pw-adm", &clear)
        .expect("an administrator clears it");
    let set = format!(
        "dn: {}\nchangetype: modify\nreplace: pwdReset\npwdReset: TRUE\n",
        w.dave
    );
    w.dir
        .modify(&w.admin, "pw-adm", &set)
        .expect("an administrator sets it");
    assert!(w.dir.pwd_reset(&w.dave));
}

#[test]
fn hostile_input_is_refused_and_changes_nothing() {
    let w = World::new();
    let huge = w.file("huge.pw", &"x".repeat(1 << 20));
    let out = w.set_password(
        &w.admin,
        "pw-adm",
        &["alice", "--new-password-file", huge.to_str().unwrap()],
    );
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("longer than 512 bytes"), "{out}");
    for weak in ["short1A!", "aliceAlice2026!!"] {
        let file = w.file(&format!("weak-{}.pw", weak.len()), weak);
        let out = w.set_password(
            &w.admin,
            "pw-adm",
            &["alice", "--new-password-file", file.to_str().unwrap()],
        );
        assert_eq!(out.code(), Some(1), "{weak}: {out}");
        assert!(out.stderr.contains("BAD PASSWORD"), "{out}");
        assert!(out.stderr.contains("nothing was changed"), "{out}");
        assert_no_secret(&out, weak);
    }
    // A password file others can read is refused.
    let open = w.file("open.pw", NEW);
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = w.set_password(
        &w.admin,
        "pw-adm",
        &["alice", "--new-password-file", open.to_str().unwrap()],
    );
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(w.binds(&w.alice, "pw-alice") && !w.dir.pwd_reset(&w.alice));

    // LDAP metacharacters are a name, never a filter.
    let star = w.dir.add_employee("st*r)(uid=*", "pw-star", Some(&w.boss));
    let new = w.file("new.pw", NEW);
    let new = new.to_str().unwrap();
    for name in ["*", "al*", "*)(uid=*"] {
        let out = w.set_password(&w.admin, "pw-adm", &[name, "--new-password-file", new]);
        assert_eq!(out.code(), Some(1), "{name}: {out}");
        assert!(out.stderr.contains("no employee entry"), "{name}: {out}");
    }
    assert!(w.binds(&w.alice, "pw-alice"));
    let out = w.set_password(
        &w.boss,
        "pw-boss",
        &["st*r)(uid=*", "--new-password-file", new],
    );
    assert!(out.succeeded(), "{out}");
    assert!(w.binds(&star, NEW));
    assert!(w.binds(&w.alice, "pw-alice") && !w.dir.pwd_reset(&w.alice));
    // A password given as an argument is a usage error.
    let out = w
        .env
        .deadboltctl(&["set-password", "alice", "--password", NEW, "--as", &w.admin]);
    assert_eq!(out.code(), Some(2), "{out}");
}

#[test]
fn no_new_password_appears_in_any_process_argument_list() {
    let w = World::new();
    // Its own password: the other tests run at the same time, and one of
    // them does give a password as an argument, to see it refused.
    let secret = format!("Tide-{}-Q7!", deadbolt_tests::slapd::random_secret());
    let new = w.file("new.pw", &secret);
    let bind = w.file("bind.pw", "pw-adm");
    let mut seen = HashSet::new();
    for _ in 0..3 {
        let mut child = Command::new(deadboltctl_path())
            .arg("--config")
            .arg(w.env.config_path())
            .args(["set-password", "alice", "--new-password-file"])
            .arg(&new)
            .args(["--as", &w.admin, "--password-file"])
            .arg(&bind)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run deadboltctl");
        // Read every process's arguments for as long as it runs.
        while child.try_wait().expect("wait").is_none() {
            seen.extend(all_cmdlines());
        }
        let out = child.wait_with_output().expect("deadboltctl output");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for stream in [&out.stdout, &out.stderr] {
            assert!(!String::from_utf8_lossy(stream).contains(&secret));
        }
    }
    assert!(
        seen.iter().any(|c| c.contains("set-password")),
        "deadboltctl was never seen running"
    );
    for cmdline in &seen {
        assert!(
            !cmdline.contains(&secret),
            "a new password in a command line: {cmdline}"
        );
        assert!(
            !cmdline.contains("pw-adm"),
            "a bind password in a command line: {cmdline}"
        );
    }
    assert!(w.binds(&w.alice, &secret));
    // Nor in this host's state files.
    for entry in walk(w.env.state_dir()) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&secret),
            "{}",
            entry.display()
        );
    }
}

/// The argument lists of every process, NULs as spaces.
pub fn all_cmdlines() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .collect()
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Runs deadboltctl under `script` (a pseudo-terminal of its own), and
/// answers each prompt once it has appeared: the prompt flushes what was
/// typed ahead, as passwd's does.
fn on_a_terminal(w: &World, args: &[&str], answers: &[(&str, &str)]) -> (bool, String) {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    let bind = w.file(
        &format!("tty-{}.pw", deadbolt_tests::slapd::random_secret()),
        "pw-adm",
    );
    let mut command = format!(
        "{} --config {} set-password",
        deadboltctl_path().display(),
        w.env.config_path().display()
    );
    for arg in args {
        command.push_str(&format!(" '{arg}'"));
    }
    command.push_str(&format!(
        " --as '{}' --password-file {}",
        w.admin,
        bind.display()
    ));
    let mut child = Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run script (util-linux)");
    let seen = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().expect("piped");
    let reader = {
        let seen = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let mut stdin = child.stdin.take().expect("piped");
    // Each prompt differs from the others, so it is seen once.
    for (prompt, answer) in answers {
        deadbolt_tests::slapd::wait_until(prompt, std::time::Duration::from_secs(20), || {
            seen.lock().unwrap().contains(prompt).then_some(())
        });
        stdin
            .write_all(format!("{answer}\n").as_bytes())
            .expect("type");
    }
    let status = child.wait().expect("wait for script");
    reader.join().expect("the reader");
    let text = seen.lock().unwrap().clone();
    (status.success(), text)
}

#[test]
fn the_new_password_is_asked_twice_on_the_terminal_and_never_echoed() {
    let w = World::new();
    let (ok, text) = on_a_terminal(
        &w,
        &["alice"],
        &[
            ("New password for alice: ", NEW),
            ("Retype the new password for alice: ", NEW),
        ],
    );
    assert!(ok, "{text}");
    assert!(!text.contains(NEW), "the password was echoed:\n{text}");
    assert!(w.binds(&w.alice, NEW) && w.dir.pwd_reset(&w.alice));

    let (ok, text) = on_a_terminal(
        &w,
        &["dave"],
        &[
            ("New password for dave: ", NEW),
            ("Retype the new password for dave: ", "Other-Harbour-99x"),
        ],
    );
    assert!(!ok && text.contains("the two passwords differ"), "{text}");
    assert!(w.binds(&w.dave, "pw-dave"));

    // A generated password is shown on the terminal, once.
    let (ok, text) = on_a_terminal(&w, &["dave", "--generate"], &[]);
    assert!(ok, "{text}");
    let shown = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("New password for dave: "))
        .expect("the password on the terminal")
        .to_owned();
    assert!(w.binds(&w.dave, &shown) && w.dir.pwd_reset(&w.dave));
}

/// A World whose configuration also names the ldapi socket, and whose
/// process is `dn` to SASL EXTERNAL there (olcAuthzRegexp).
fn external_as(pick: impl Fn(&World) -> String) -> (World, PamEnv) {
    let w = World::new();
    let dn = pick(&w);
    let peer = deadbolt_tests::slapd::peercred_dn().replace('+', "\\+");
    w.dir
        .config_modify(&format!(
            "dn: cn=config\nchangetype: modify\nadd: olcAuthzRegexp\nolcAuthzRegexp: \"^{peer}$\" \"{dn}\"\n"
        ))
        .expect("olcAuthzRegexp");
    let host = w.dir.add_host("host-x");
    let toml = fleet_toml(
        "host-x",
        &[w.dir.uri(), w.dir.ldapi_uri()],
        &w.dir.people_dn(),
        &host.dn,
        &host.password_file,
    );
    let env = PamEnv::builder().toml(&toml).build();
    (w, env)
}

#[test]
fn with_sasl_external_the_mapped_identity_acts_and_is_known_to_be_himself() {
    let (w, env) = external_as(|w| w.boss.clone());
    let new = w.file("new.pw", NEW);
    let new = new.to_str().unwrap();
    let out = env.deadboltctl(&[
        "set-password",
        "alice",
        "--sasl-external",
        "--new-password-file",
        new,
    ]);
    assert!(out.succeeded(), "{out}");
    assert!(w.binds(&w.alice, NEW) && w.dir.pwd_reset(&w.alice));
    let out = env.deadboltctl(&[
        "set-password",
        "dave",
        "--sasl-external",
        "--new-password-file",
        new,
    ]);
    assert!(out.stderr.contains("insufficient access"), "{out}");

    // Mapped to alice herself: Who Am I tells, and she is refused.
    let (w, env) = external_as(|w| w.alice.clone());
    let new = w.file("new.pw", NEW);
    let out = env.deadboltctl(&[
        "set-password",
        "alice",
        "--sasl-external",
        "--new-password-file",
        new.to_str().unwrap(),
    ]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("your own entry"), "{out}");
    assert!(w.binds(&w.alice, "pw-alice") && !w.dir.pwd_reset(&w.alice));
}
