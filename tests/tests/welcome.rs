//! `deadboltctl welcome`: the welcome kit by email, against a real slapd
//! (ppolicy, the example ACL) and a real SMTP server (aiosmtpd, started
//! here, with STARTTLS or implicit TLS on a certificate made here). The
//! tests read what the server received: recipients, subjects, bodies; and
//! what the directory holds: the temporary password binds, `pwdReset` is
//! set, and nothing changed for whoever was skipped or failed.

use deadbolt_tests::fleet::{fleet_toml, secret_file};
use deadbolt_tests::slapd::{hash_password, ldif_line, Directory, ADMINS_GROUP_DN};
use deadbolt_tests::smtp::{Received, SmtpOptions, SmtpServer};
use deadbolt_tests::{deadboltctl_path, toml_string, Outcome, PamEnv};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};

/// Every employee's password before a kit.
const OLD: &str = "Old-Pass-Word-1234";
const ADMIN_PW: &str = "pw-adm";

struct World {
    dir: Directory,
    smtp: SmtpServer,
    admin: String,
    files: tempfile::TempDir,
    host: deadbolt_tests::slapd::Host,
}

/// One employee to add: login, `mail` (none when `None`), display name.
struct Person<'a>(&'a str, Option<&'a str>, &'a str);

impl World {
    fn new(opts: SmtpOptions) -> World {
        let dir = Directory::start();
        let admin = dir.add_admin("adm", ADMIN_PW);
        let host = dir.add_host("host-a");
        World {
            dir,
            smtp: SmtpServer::start_with(opts),
            admin,
            files: tempfile::tempdir().expect("a directory for files"),
            host,
        }
    }

    /// Adds `people` in one ldapadd, and a group `cn=<group>` of them all.
    fn add(&self, people: &[Person], group: &str) -> Vec<String> {
        let mut ldif = String::new();
        let mut dns = Vec::new();
        let hash = hash_password(OLD);
        for Person(uid, mail, name) in people {
            let dn = self.dir.employee_dn(uid);
            ldif_line(&mut ldif, "dn", &dn);
            ldif.push_str("objectClass: inetOrgPerson\n");
            ldif_line(&mut ldif, "uid", uid);
            ldif_line(&mut ldif, "cn", name);
            ldif_line(&mut ldif, "sn", name);
            ldif_line(&mut ldif, "displayName", name);
            if let Some(mail) = mail {
                ldif_line(&mut ldif, "mail", mail);
            }
            ldif_line(&mut ldif, "userPassword", &hash);
            ldif.push('\n');
            dns.push(dn);
        }
        let group_dn = ADMINS_GROUP_DN.replace("cn=deadbolt-admins", &format!("cn={group}"));
        ldif_line(&mut ldif, "dn", &group_dn);
        ldif.push_str("objectClass: groupOfNames\n");
        ldif_line(&mut ldif, "cn", group);
        for dn in &dns {
            ldif_line(&mut ldif, "member", dn);
        }
        self.dir
            .add(self.dir.admin_dn(), self.dir.admin_password(), &ldif)
            .expect("add the employees");
        dns
    }

    /// Adds `people`, each with `<login>@example.com`, in a group.
    fn add_mailed<S: AsRef<str>>(&self, people: &[S], group: &str) -> Vec<String> {
        let mails: Vec<String> = people
            .iter()
            .map(|p| format!("{}@example.com", p.as_ref()))
            .collect();
        let list: Vec<Person> = people
            .iter()
            .zip(&mails)
            .map(|(p, m)| Person(p.as_ref(), Some(m), p.as_ref()))
            .collect();
        self.add(&list, group)
    }

    /// The configuration: this directory, and `[mail]` towards the test
    /// server with `tls` and `extra` keys.
    fn env(&self, tls: &str, ca: Option<&Path>, extra: &str) -> PamEnv {
        let mut toml = fleet_toml(
            "host-a",
            &[self.dir.uri()],
            &self.dir.people_dn(),
            &self.host.dn,
            &self.host.password_file,
        );
        toml.push_str(&format!(
            "\n[mail]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\ntls = {}\nfrom = \"IT <it@example.com>\"\n\
             subject = \"Welcome, {{name}}\"\nlogin_url = \"ssh login.example.com\"\ntimeout = \"5s\"\n",
            self.smtp.port(),
            toml_string(tls)
        ));
        if let Some(ca) = ca {
            toml.push_str(&format!(
                "tls_ca_file = {}\n",
                toml_string(&ca.display().to_string())
            ));
        }
        toml.push_str(extra);
        PamEnv::builder().toml(&toml).build()
    }

    fn admin_args(&self) -> Vec<String> {
        let file = self.files.path().join("adm.pw");
        if !file.exists() {
            secret_file(self.files.path(), "adm.pw", ADMIN_PW);
        }
        vec![
            "--as".into(),
            self.admin.clone(),
            "--password-file".into(),
            file.display().to_string(),
        ]
    }

    fn welcome(&self, env: &PamEnv, args: &[&str]) -> Outcome {
        let mut all: Vec<String> = vec!["welcome".into()];
        all.extend(args.iter().map(|s| s.to_string()));
        all.extend(self.admin_args());
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        env.deadboltctl(&all)
    }

    fn binds(&self, dn: &str, password: &str) -> bool {
        self.dir.try_bind(dn, password).is_ok()
    }
}

/// The temporary password a message gives.
fn password_in(message: &Received) -> String {
    message
        .body
        .lines()
        .find_map(|l| l.trim().strip_prefix("Temporary password:"))
        .map(|p| p.trim().to_owned())
        .unwrap_or_else(|| panic!("no password in:\n{}", message.body))
}

/// The result column of each user in the table.
fn table_rows(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .skip(1)
        .filter(|l| !l.ends_with("failed") && !l.contains(" employees:"))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let user = words.next()?.to_owned();
            let result = match words.next()? {
                "would" => "would send".to_owned(),
                other => other.to_owned(),
            };
            Some((user, result))
        })
        .collect()
}

fn json_of(out: &Outcome) -> serde_json::Value {
    serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

/// Per result, the users the JSON gives it.
fn json_results(v: &serde_json::Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in v["employees"].as_array().expect("employees") {
        out.entry(e["result"].as_str().unwrap().to_owned())
            .or_default()
            .insert(e["user"].as_str().unwrap().to_owned());
    }
    out
}

#[test]
fn kits_go_over_starttls_with_authentication_to_exactly_the_right_people() {
    let w = World::new(SmtpOptions {
        starttls: true,
        auth: Some(("deadbolt".into(), "smtp-secret-9".into())),
        ..SmtpOptions::default()
    });
    let dns = w.add(
        &[
            Person("ann", Some("ann@example.com"), "Ann Example"),
            Person("ben", Some("ben@example.com"), "Ben Example"),
            Person("cid", None, "Cid Example"),
        ],
        "newhires",
    );
    let smtp_pw = secret_file(w.files.path(), "smtp.pw", "smtp-secret-9");
    let auth = format!(
        "username = \"deadbolt\"\npassword_file = {}\n",
        toml_string(&smtp_pw.display().to_string())
    );
    let env = w.env("starttls", w.smtp.ca_file(), &auth);
    let out = w.welcome(&env, &["ann", "ben", "cid"]);
    assert!(out.succeeded(), "{out}");
    let rows = table_rows(&out.stdout);
    assert_eq!(rows["ann"], "sent", "{out}");
    assert_eq!(rows["ben"], "sent", "{out}");
    assert_eq!(rows["cid"], "skipped", "{out}");
    assert!(out.stdout.contains("no email address"), "{out}");

    let messages = w.smtp.messages();
    assert_eq!(messages.len(), 2, "{messages:?}");
    for (message, (uid, name, dn)) in messages.iter().zip([
        ("ann", "Ann Example", &dns[0]),
        ("ben", "Ben Example", &dns[1]),
    ]) {
        let address = format!("{uid}@example.com");
        assert_eq!(message.rcpt_tos, vec![address.clone()]);
        assert_eq!(message.mail_from, "it@example.com");
        assert!(
            message.to.contains(&address) && message.to.contains(name),
            "{}",
            message.to
        );
        assert_eq!(message.subject, format!("Welcome, {name}"));
        assert!(
            message.body.contains(&format!("Hello {name},")),
            "{}",
            message.body
        );
        assert!(message.body.contains(&format!("Login:              {uid}")));
        assert!(message.body.contains("Log in at ssh login.example.com"));
        assert!(message.tls && message.authenticated, "{message:?}");
        let password = password_in(message);
        assert!(
            w.binds(dn, &password),
            "the mailed password does not bind for {uid}"
        );
        assert!(!w.binds(dn, OLD));
        assert!(w.dir.pwd_reset(dn), "{uid} is not marked pwdReset");
        assert!(
            !out.shows(&password),
            "a temporary password in the output:\n{out}"
        );
    }
    assert!(w.binds(&dns[2], OLD) && !w.dir.pwd_reset(&dns[2]));

    // An SMTP password file others can read is refused before anything.
    std::fs::set_permissions(
        &smtp_pw,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let out = w.welcome(&env, &["ann"]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("make it 0600"), "{out}");
    assert_eq!(w.smtp.messages().len(), 2);
    std::fs::set_permissions(
        &smtp_pw,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();

    // A server whose certificate another CA signed is refused before any
    // password is touched.
    let env = w.env("starttls", Some(&w.smtp.other_ca_file()), &auth);
    let out = w.welcome(&env, &["ann", "ben"]);
    assert_eq!(out.code(), Some(1), "{out}");
    let rows = table_rows(&out.stdout);
    assert_eq!(rows["ann"], "failed", "{out}");
    assert!(out.stdout.contains("the password was not changed"), "{out}");
    assert_eq!(w.smtp.messages().len(), 2);
    let password = password_in(&w.smtp.messages()[0]);
    assert!(w.binds(&dns[0], &password), "ann's password changed");
}

#[test]
fn kits_go_over_implicit_tls_and_a_dry_run_changes_nothing() {
    let w = World::new(SmtpOptions {
        implicit_tls: true,
        ..SmtpOptions::default()
    });
    let dns = w.add(
        &[Person("eva", Some("eva@example.com"), "Eva Example")],
        "newhires",
    );
    let env = w.env("implicit", w.smtp.ca_file(), "");
    let out = w.welcome(&env, &["--dry-run", "eva"]);
    assert!(out.succeeded(), "{out}");
    assert_eq!(table_rows(&out.stdout)["eva"], "would send", "{out}");
    assert!(w.smtp.messages().is_empty());
    assert!(w.binds(&dns[0], OLD) && !w.dir.pwd_reset(&dns[0]));

    let out = w.welcome(&env, &["eva", "--print"]);
    assert!(out.succeeded(), "{out}");
    let messages = w.smtp.messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].tls);
    // --print shows exactly the password that was mailed.
    let password = password_in(&messages[0]);
    assert!(out.stdout.contains(&password), "{out}");
    assert!(w.binds(&dns[0], &password));
}

#[test]
fn a_batch_of_200_says_exactly_who_was_sent_the_kit_and_who_was_not() {
    let w = World::new(SmtpOptions::default());
    let names: Vec<String> = (0..200).map(|i| format!("emp{i:03}")).collect();
    let mails: Vec<Option<String>> = (0..200)
        .map(|i| (i % 7 != 3).then(|| format!("emp{i:03}@example.com")))
        .collect();
    let people: Vec<Person> = names
        .iter()
        .zip(&mails)
        .map(|(n, m)| Person(n, m.as_deref(), n))
        .collect();
    let dns = w.add(&people, "newhires");
    let with_mail: BTreeSet<String> = names
        .iter()
        .zip(&mails)
        .filter(|(_, m)| m.is_some())
        .map(|(n, _)| n.clone())
        .collect();
    let without: BTreeSet<String> = names
        .iter()
        .filter(|n| !with_mail.contains(*n))
        .cloned()
        .collect();
    assert_eq!(without.len(), 29);
    let env = w.env("none", None, "");

    // Who has no address, changing nothing.
    let out = w.welcome(&env, &["--missing-mail", "--group", "newhires", "--json"]);
    assert!(out.succeeded(), "{out}");
    let v = json_of(&out);
    let listed: BTreeSet<String> = v["missing_mail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["user"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, without);
    assert_eq!(v["checked"], 200);

    // The table, watching every process's arguments as it runs.
    let (out, cmdlines) = run_watching(&env, &w, &["--group", "newhires"]);
    assert!(out.succeeded(), "{out}");
    let rows = table_rows(&out.stdout);
    let sent: BTreeSet<String> = rows
        .iter()
        .filter(|(_, r)| *r == "sent")
        .map(|(u, _)| u.clone())
        .collect();
    let skipped: BTreeSet<String> = rows
        .iter()
        .filter(|(_, r)| *r == "skipped")
        .map(|(u, _)| u.clone())
        .collect();
    assert_eq!(sent, with_mail);
    assert_eq!(skipped, without);
    assert_eq!(rows.len(), 200);
    assert!(
        out.stdout
            .contains("200 employees: 171 sent the kit, 29 skipped (no email address), 0 failed"),
        "{out}"
    );
    let messages = w.smtp.messages();
    let recipients: BTreeSet<String> = messages.iter().flat_map(|m| m.rcpt_tos.clone()).collect();
    let expected: BTreeSet<String> = with_mail
        .iter()
        .map(|u| format!("{u}@example.com"))
        .collect();
    assert_eq!(messages.len(), 171);
    assert_eq!(recipients, expected);
    let passwords: HashSet<String> = messages.iter().map(password_in).collect();
    assert_eq!(passwords.len(), 171, "temporary passwords repeat");
    for password in &passwords {
        assert!(!out.shows(password), "a temporary password in the output");
        assert!(
            !cmdlines.iter().any(|c| c.contains(password.as_str())),
            "a temporary password in a process's arguments"
        );
    }
    assert!(
        cmdlines.iter().any(|c| c.contains("welcome")),
        "deadboltctl never seen"
    );
    // Spot checks in the directory: the first mailed, the first skipped.
    let first = &messages[0];
    let i = names
        .iter()
        .position(|n| first.rcpt_tos[0].starts_with(n.as_str()))
        .unwrap();
    assert!(w.binds(&dns[i], &password_in(first)) && w.dir.pwd_reset(&dns[i]));
    assert!(w.binds(&dns[3], OLD) && !w.dir.pwd_reset(&dns[3]));

    // The same as JSON.
    let out = w.welcome(&env, &["--group", "newhires", "--json"]);
    assert!(out.succeeded(), "{out}");
    let v = json_of(&out);
    let results = json_results(&v);
    assert_eq!(results["sent"], with_mail);
    assert_eq!(results["skipped"], without);
    assert_eq!(
        (
            v["sent"].as_u64(),
            v["skipped"].as_u64(),
            v["failed"].as_u64()
        ),
        (Some(171), Some(29), Some(0))
    );
    assert!(v["employees"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e.get("password").is_none()));
    assert_eq!(w.smtp.messages().len(), 342);
}

/// Runs welcome with `args`, reading /proc/*/cmdline while it runs.
fn run_watching(env: &PamEnv, w: &World, args: &[&str]) -> (Outcome, HashSet<String>) {
    let mut child = Command::new(deadboltctl_path())
        .arg("--config")
        .arg(env.config_path())
        .arg("welcome")
        .args(args)
        .args(w.admin_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run deadboltctl");
    let mut seen = HashSet::new();
    while child.try_wait().expect("wait").is_none() {
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            if let Ok(bytes) = std::fs::read(entry.path().join("cmdline")) {
                seen.insert(String::from_utf8_lossy(&bytes).replace('\0', " "));
            }
        }
    }
    let out = child.wait_with_output().expect("output");
    (
        Outcome {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        seen,
    )
}

#[test]
fn a_mail_server_that_goes_away_mid_batch_leaves_the_rest_untouched() {
    let w = World::new(SmtpOptions {
        exit_after: Some(3),
        ..SmtpOptions::default()
    });
    let people: Vec<String> = (1..=6).map(|i| format!("p{i}")).collect();
    let dns = w.add_mailed(&people, "batch");
    let env = w.env("none", None, "");
    let out = w.welcome(&env, &["--group", "batch", "--json"]);
    assert_eq!(out.code(), Some(1), "{out}");
    let v = json_of(&out);
    let results = json_results(&v);
    let names = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(results["sent"], names(&["p1", "p2", "p3"]));
    assert_eq!(results["failed"], names(&["p4", "p5", "p6"]));
    for e in v["employees"].as_array().unwrap() {
        if e["result"] == "failed" {
            let reason = e["reason"].as_str().unwrap();
            assert!(reason.contains("the mail server 127.0.0.1:"), "{reason}");
            assert!(reason.contains("the password was not changed"), "{reason}");
            assert_eq!(e["password_set"], false);
        } else {
            assert_eq!(e["password_set"], true);
        }
    }
    assert_eq!(w.smtp.messages().len(), 3);
    for dn in &dns[3..] {
        assert!(w.binds(dn, OLD) && !w.dir.pwd_reset(dn), "{dn} was changed");
    }
}

#[test]
fn a_message_refused_after_the_password_was_set_is_said_so() {
    let w = World::new(SmtpOptions {
        reject_after: Some(2),
        ..SmtpOptions::default()
    });
    let people = ["q1", "q2", "q3", "q4"];
    let dns = w.add_mailed(&people, "batch");
    let env = w.env("none", None, "");
    let out = w.welcome(&env, &["--group", "batch"]);
    assert_eq!(out.code(), Some(1), "{out}");
    let rows = table_rows(&out.stdout);
    assert_eq!(
        (rows["q1"].as_str(), rows["q2"].as_str()),
        ("sent", "sent"),
        "{out}"
    );
    assert_eq!(
        (rows["q3"].as_str(), rows["q4"].as_str()),
        ("failed", "failed"),
        "{out}"
    );
    assert_eq!(
        out.stdout.matches("password set, mail not sent").count(),
        2,
        "{out}"
    );
    assert!(out.stdout.contains("run welcome again"), "{out}");
    assert!(
        out.stdout
            .contains("4 employees: 2 sent the kit, 0 skipped (no email address), 2 failed"),
        "{out}"
    );
    assert_eq!(w.smtp.messages().len(), 2);
    // As documented: the password stays set (known to nobody) and marked
    // reset; the old one no longer works.
    for dn in &dns[2..] {
        assert!(!w.binds(dn, OLD) && w.dir.pwd_reset(dn), "{dn}");
    }
}

#[test]
fn hostile_input_is_refused_and_changes_nothing() {
    let w = World::new(SmtpOptions::default());
    let dns = w.add(
        &[
            Person("fay", Some("fay@example.com"), "Fay Example"),
            Person(
                "gus",
                Some("gus@example.com\r\nBcc: eve@evil.example"),
                "Gus Example",
            ),
            Person("h*(x)", Some("hx@example.com"), "H X"),
        ],
        "hostile",
    );
    // A template with a placeholder nobody knows: refused before anything.
    let template = w.files.path().join("welcome.txt");
    std::fs::write(&template, "Hi {name}, {password}, see {manager_phone}\n").unwrap();
    let extra = format!(
        "template = {}\n",
        toml_string(&template.display().to_string())
    );
    let env = w.env("none", None, &extra);
    let out = w.welcome(&env, &["fay"]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stderr
            .contains("line 1: unknown placeholder {manager_phone}"),
        "{out}"
    );
    assert!(w.smtp.messages().is_empty() && w.binds(&dns[0], OLD) && !w.dir.pwd_reset(&dns[0]));

    let env = w.env("none", None, "");
    // A header injection in `mail` refuses that recipient alone.
    let out = w.welcome(&env, &["--group", "hostile", "--json"]);
    assert_eq!(out.code(), Some(1), "{out}");
    let v = json_of(&out);
    let results = json_results(&v);
    assert_eq!(
        results["sent"],
        ["fay", "h*(x)"].iter().map(|s| s.to_string()).collect()
    );
    assert_eq!(
        results["failed"],
        ["gus"].iter().map(|s| s.to_string()).collect()
    );
    let gus = v["employees"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["user"] == "gus")
        .unwrap();
    assert!(
        gus["reason"].as_str().unwrap().contains("line break"),
        "{gus}"
    );
    assert!(w.binds(&dns[1], OLD) && !w.dir.pwd_reset(&dns[1]));
    let messages = w.smtp.messages();
    assert_eq!(messages.len(), 2);
    for m in &messages {
        assert_eq!(m.rcpt_tos.len(), 1, "{m:?}");
        assert!(m.bcc.is_empty() && !m.rcpt_tos[0].contains("evil"), "{m:?}");
    }

    // Metacharacters in names are names; a filter is checked.
    let out = w.welcome(&env, &["h*"]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stdout
            .contains("no employee entry of the directory names h*"),
        "{out}"
    );
    for bad in [")(uid=*", "uid=*", "(uid=*", "(cn=x)(uid=*)"] {
        let out = w.welcome(&env, &["--filter", bad]);
        assert_eq!(out.code(), Some(1), "{bad}: {out}");
        assert!(
            out.stderr.contains("--filter is not an LDAP filter"),
            "{bad}: {out}"
        );
    }
    assert_eq!(w.smtp.messages().len(), 2);
    let out = w.welcome(&env, &["--dry-run", "--filter", "(cn=H X)"]);
    assert!(out.succeeded(), "{out}");
    assert_eq!(table_rows(&out.stdout).len(), 1, "{out}");
    // Without a selection there is nothing to do: a usage error.
    let out = env.deadboltctl(&["welcome"]);
    assert_eq!(out.code(), Some(2), "{out}");
}
