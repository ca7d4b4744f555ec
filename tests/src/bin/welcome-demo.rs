//! The welcome-kit part of `make demo`: a throwaway slapd with two new
//! employees and one without an address, a throwaway SMTP server with
//! STARTTLS on a certificate made here, `deadboltctl welcome` as an
//! administrator, and one of the messages the server received.
//!
//! `welcome-demo --bench N` instead times `deadboltctl welcome --group` for
//! N employees (one in seven without `mail`), three runs each over plain
//! SMTP on loopback and over STARTTLS, for docs/performance.md. The
//! deadboltctl run is `$DEADBOLTCTL` when set (a release build), else the
//! debug build.

use deadbolt_tests::fleet::{fleet_toml, secret_file};
use deadbolt_tests::slapd::{hash_password, ldif_line, Directory, ADMINS_GROUP_DN};
use deadbolt_tests::smtp::{SmtpOptions, SmtpServer};
use deadbolt_tests::{deadboltctl_path, toml_string, PamEnv};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

struct Setup {
    directory: Directory,
    admin: String,
    admin_pw_file: PathBuf,
    _files: tempfile::TempDir,
}

/// A directory with an administrator and `people` (login, mail, name) in
/// the group `cn=newhires`.
fn setup(people: &[(String, Option<String>, String)]) -> Setup {
    let directory = Directory::start();
    let admin = directory.add_admin("adm", "adm-directory-pw");
    let mut ldif = String::new();
    let mut members = Vec::new();
    let hash = hash_password("Not-Yet-Known-123");
    for (uid, mail, name) in people {
        let dn = directory.employee_dn(uid);
        ldif_line(&mut ldif, "dn", &dn);
        ldif.push_str("objectClass: inetOrgPerson\n");
        ldif_line(&mut ldif, "uid", uid);
        ldif_line(&mut ldif, "cn", name);
        ldif_line(&mut ldif, "sn", name);
        if let Some(mail) = mail {
            ldif_line(&mut ldif, "mail", mail);
        }
        ldif_line(&mut ldif, "userPassword", &hash);
        ldif.push('\n');
        members.push(dn);
    }
    let group = ADMINS_GROUP_DN.replace("cn=deadbolt-admins", "cn=newhires");
    ldif_line(&mut ldif, "dn", &group);
    ldif.push_str("objectClass: groupOfNames\ncn: newhires\n");
    for dn in &members {
        ldif_line(&mut ldif, "member", dn);
    }
    directory
        .add(directory.admin_dn(), directory.admin_password(), &ldif)
        .expect("ldapadd the employees");
    let files = tempfile::tempdir().expect("a temporary directory");
    let admin_pw_file = secret_file(files.path(), "adm.pw", "adm-directory-pw");
    Setup {
        directory,
        admin,
        admin_pw_file,
        _files: files,
    }
}

/// The configuration for `setup`'s directory and `smtp`.
fn env(setup: &Setup, smtp: &SmtpServer, tls: &str) -> PamEnv {
    let host = setup.directory.add_host(&format!("host-{}", smtp.port()));
    let mut toml = fleet_toml(
        &host.name,
        &[setup.directory.uri()],
        &setup.directory.people_dn(),
        &host.dn,
        &host.password_file,
    );
    toml.push_str(&format!(
        "\n[mail]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\ntls = {}\n\
         from = \"IT <it@example.com>\"\nsubject = \"Welcome to Example, {{name}}\"\n\
         login_url = \"ssh login.example.com\"\n",
        smtp.port(),
        toml_string(tls)
    ));
    if let Some(ca) = smtp.ca_file() {
        toml.push_str(&format!(
            "tls_ca_file = {}\n",
            toml_string(&ca.display().to_string())
        ));
    }
    toml.push_str("\n[welcome]\ntemporary_valid_for = \"7d\"\n");
    PamEnv::builder().toml(&toml).build()
}

fn ctl() -> PathBuf {
    std::env::var_os("DEADBOLTCTL").map_or_else(deadboltctl_path, PathBuf::from)
}

fn welcome(setup: &Setup, env: &PamEnv, args: &[&str]) -> std::process::Output {
    Command::new(ctl())
        .arg("--config")
        .arg(env.config_path())
        .arg("welcome")
        .args(args)
        .arg("--as")
        .arg(&setup.admin)
        .arg("--password-file")
        .arg(&setup.admin_pw_file)
        .env("LD_PRELOAD", "")
        .output()
        .expect("run deadboltctl")
}

fn demo() {
    let people = vec![
        (
            "alice".to_owned(),
            Some("alice@example.com".to_owned()),
            "Alice Liddell".to_owned(),
        ),
        (
            "bob".to_owned(),
            Some("bob@example.com".to_owned()),
            "Bob Builder".to_owned(),
        ),
        ("carol".to_owned(), None, "Carol Danvers".to_owned()),
    ];
    let setup = setup(&people);
    let smtp = SmtpServer::start_with(SmtpOptions {
        starttls: true,
        ..SmtpOptions::default()
    });
    println!(
        "A throwaway slapd at {} holds alice, bob and carol (who has no mail) in cn=newhires;",
        setup.directory.uri()
    );
    println!(
        "a throwaway SMTP server on 127.0.0.1:{} offers STARTTLS with a certificate from a CA made here.",
        smtp.port()
    );
    let env = env(&setup, &smtp, "starttls");
    println!(
        "\n   $ deadboltctl welcome --missing-mail --group newhires --as {} ...",
        setup.admin
    );
    let out = welcome(&setup, &env, &["--missing-mail", "--group", "newhires"]);
    print!("{}", indent(&String::from_utf8_lossy(&out.stdout)));
    println!(
        "\n   $ deadboltctl welcome --group newhires --as {} --password-file adm.pw",
        setup.admin
    );
    let out = welcome(&setup, &env, &["--group", "newhires"]);
    print!("{}", indent(&String::from_utf8_lossy(&out.stdout)));
    print!("{}", indent(&String::from_utf8_lossy(&out.stderr)));
    let messages = smtp.messages();
    let Some(first) = messages.first() else {
        println!("   no message arrived");
        std::process::exit(1);
    };
    println!(
        "\nThe server received {} messages; the first, over TLS: {}",
        messages.len(),
        first.tls
    );
    println!(
        "   From: {}\n   To: {}\n   Subject: {}\n",
        first.from, first.to, first.subject
    );
    // The temporary password is masked here: it is for alice alone. That
    // it is the one set in the directory is checked with a bind.
    let password = first
        .body
        .lines()
        .find_map(|l| l.trim().strip_prefix("Temporary password:"))
        .map(|p| p.trim().to_owned())
        .unwrap_or_default();
    let masked = first.body.replace(&password, &"*".repeat(password.len()));
    print!("{}", indent(&masked));
    let alice = setup.directory.employee_dn("alice");
    println!(
        "\n(the password is masked above.) A bind as alice with the mailed password: {}; \
         pwdReset (must change at the first login): {}",
        if setup.directory.try_bind(&alice, &password).is_ok() {
            "accepted"
        } else {
            "REFUSED"
        },
        setup.directory.pwd_reset(&alice)
    );
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("   {l}\n")).collect()
}

fn bench(n: usize) {
    let people: Vec<(String, Option<String>, String)> = (0..n)
        .map(|i| {
            let uid = format!("emp{i:04}");
            let mail = (i % 7 != 3).then(|| format!("{uid}@example.com"));
            (uid.clone(), mail, format!("Employee {i}"))
        })
        .collect();
    let with_mail = people.iter().filter(|p| p.1.is_some()).count();
    let setup = setup(&people);
    println!(
        "deadboltctl welcome --group newhires: {n} employees, {with_mail} with mail ({})",
        ctl().display()
    );
    for (label, opts, tls) in [
        ("plain SMTP on loopback", SmtpOptions::default(), "none"),
        (
            "STARTTLS on loopback",
            SmtpOptions {
                starttls: true,
                ..SmtpOptions::default()
            },
            "starttls",
        ),
    ] {
        let smtp = SmtpServer::start_with(opts);
        let env = env(&setup, &smtp, tls);
        let mut times = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            let out = welcome(&setup, &env, &["--group", "newhires", "--json"]);
            times.push(started.elapsed());
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("welcome --json");
            assert_eq!(v["sent"].as_u64(), Some(with_mail as u64), "{v}");
        }
        assert_eq!(smtp.messages().len(), 3 * with_mail);
        let shown: Vec<String> = times
            .iter()
            .map(|t| format!("{:.2} s", t.as_secs_f64()))
            .collect();
        println!("  {label}: {}", shown.join(", "));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => demo(),
        [flag, n] if flag == "--bench" => bench(n.parse().expect("--bench N: a number")),
        _ => {
            eprintln!("usage: welcome-demo [--bench N]");
            std::process::exit(2);
        }
    }
}
