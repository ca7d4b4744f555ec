//! deadbolt-syncd's transport and configuration: TLS verified against a CA
//! the test makes, a certificate from another CA refused, configurations it
//! cannot honour refused in one line, and a directory without ppolicy.

use deadbolt_tests::fleet::{
    fleet_toml, secret_file, syncd_check, FleetHost, Syncd, PROPAGATION, UNTIL_REACTIVATED,
};
use deadbolt_tests::slapd::{wait_until, Directory, DirectoryOptions, Host};
use deadbolt_tests::{toml_string, PamEnv};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn host_env(toml: &str) -> PamEnv {
    let mut builder = PamEnv::builder().user("alice", "secret");
    for (key, value) in UNTIL_REACTIVATED {
        builder = builder.lockout(key, value);
    }
    builder.toml(toml).build()
}

/// host-a binding with SASL EXTERNAL over the directory's ldapi socket.
fn external_toml(directory: &Directory) -> String {
    format!(
        "[host]\nname = \"host-a\"\n\n[directory]\nuri = {}\nbase_dn = {}\nsasl_mech = \"EXTERNAL\"\n",
        toml_string(&directory.ldapi_uri()),
        toml_string(&directory.people_dn()),
    )
}

/// Maps this process's peer credentials to `dn` for SASL EXTERNAL.
fn map_peer_to(directory: &Directory, dn: &str) {
    let peer = deadbolt_tests::slapd::peercred_dn().replace('+', "\\+");
    directory
        .config_modify(&format!(
            "dn: cn=config\nchangetype: modify\nadd: olcAuthzRegexp\nolcAuthzRegexp: \"^{peer}$\" \"{dn}\"\n"
        ))
        .expect("olcAuthzRegexp");
}

#[test]
fn tls_is_verified_against_the_configured_ca_and_another_ca_is_refused() {
    let directory = Directory::start_with(DirectoryOptions {
        tls: true,
        ..DirectoryOptions::default()
    });
    directory.add_employee("alice", "x", None);
    let ldaps = directory.ldaps_uri().expect("ldaps");
    let good_ca = directory.ca_file().expect("the test CA");
    let bad_ca = directory.other_ca_file();
    // ldaps with the test's CA, StartTLS on the plain port with it, then
    // ldaps and StartTLS with a CA that did not sign the server's certificate.
    let cases = [
        ("ldaps-good", ldaps.clone(), false, &good_ca, true),
        ("starttls-good", directory.uri(), true, &good_ca, true),
        ("ldaps-bad", ldaps.clone(), false, &bad_ca, false),
        ("starttls-bad", directory.uri(), true, &bad_ca, false),
    ];
    for (name, uri, starttls, ca, works) in cases {
        let host = directory.add_host(name);
        let toml = format!(
            "{}tls_ca_file = {}\nstarttls = {starttls}\n",
            fleet_toml(
                &host.name,
                std::slice::from_ref(&uri),
                &directory.people_dn(),
                &host.dn,
                &host.password_file
            ),
            toml_string(&ca.display().to_string())
        );
        let env = host_env(&toml);
        let mut syncd = Syncd::start(
            env.config_path(),
            &env.state_dir().join(".sync"),
            &env.root().join("syncd.log"),
        );
        if works {
            syncd.wait_ready();
        } else {
            wait_until(
                &format!("{name}: the other CA's certificate is refused"),
                PROPAGATION,
                || {
                    let log = syncd.log_text();
                    (log.contains("cannot connect") && log.to_lowercase().contains("certificate"))
                        .then_some(())
                },
            );
            assert_ne!(
                syncd.status().map(|s| s["connected"] == true),
                Some(true),
                "{name}"
            );
        }
    }
}

#[test]
fn a_config_it_cannot_honour_is_refused_in_one_line() {
    let directory = Directory::start();
    let host = directory.add_host("host-a");
    let base = directory.people_dn();
    // Accepted as it is.
    let env = host_env(&fleet_toml(
        "host-a",
        &[directory.uri()],
        &base,
        &host.dn,
        &host.password_file,
    ));
    let (code, err) = syncd_check(&env);
    assert_eq!(code, 0, "{err}");

    // A password file others can read.
    let loose = secret_file(env.root(), "loose.secret", &host.password);
    fs::set_permissions(&loose, fs::Permissions::from_mode(0o644)).unwrap();
    // Plain LDAP to a host that is not the loopback.
    let remote = "ldap://192.0.2.10".to_owned();
    let cases = [
        (
            fleet_toml("host-a", &[directory.uri()], &base, &host.dn, &loose),
            "0644",
        ),
        (
            fleet_toml("host-a", &[remote], &base, &host.dn, &host.password_file),
            "allow_insecure",
        ),
        (
            fleet_toml(
                "host-a",
                &[directory.uri()],
                &base,
                &host.dn,
                &env.root().join("missing"),
            ),
            "missing",
        ),
    ];
    for (toml, says) in cases {
        let env = host_env(&toml);
        let (code, err) = syncd_check(&env);
        assert_eq!(code, 2, "{toml}\n{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(
            err.contains(says) || err.contains("No such file"),
            "{says}: {err}"
        );
        assert!(!err.contains(&host.password), "the secret was shown");
    }
    // No [directory] at all.
    let env = host_env("");
    let (code, err) = syncd_check(&env);
    assert_eq!(code, 2);
    assert!(err.contains("no [directory]"), "{err}");
}

#[test]
fn without_ppolicy_it_says_so_once_and_still_locks_the_fleet() {
    // No ppolicy module, hence no ACL naming its attributes: the hosts bind
    // as the directory's manager, the one identity slapd's default lets write.
    let directory = Directory::start_with(DirectoryOptions {
        ppolicy: false,
        acl: false,
        ..DirectoryOptions::default()
    });
    directory.add_employee("alice", "x", None);
    directory.add_employee("bob", "x", None);
    let users = [("alice", "secret"), ("bob", "secret")];
    let manager = Host {
        name: "manager".into(),
        dn: directory.admin_dn().to_owned(),
        password: directory.admin_password().to_owned(),
        password_file: directory.admin_password_file().to_owned(),
    };
    let uris = [directory.uri()];
    let people = directory.people_dn();
    let a = FleetHost::with_identity(
        &uris,
        &people,
        "host-a",
        &manager,
        &users,
        UNTIL_REACTIVATED,
    );
    let b = FleetHost::with_identity(
        &uris,
        &people,
        "host-b",
        &manager,
        &users,
        UNTIL_REACTIVATED,
    );
    let mut sa = a.start_syncd();
    let mut sb = b.start_syncd();
    sa.wait_ready();
    sb.wait_ready();
    for user in ["alice", "bob"] {
        a.env.fail_logins(user, 3);
        b.wait_locked(user, true, "a lock without ppolicy");
    }
    let said = sa.log_text().matches("has no ppolicy").count();
    assert_eq!(said, 1, "{}", sa.log_text());
}

#[test]
fn it_tells_systemd_when_ready_and_serves_metrics_on_loopback() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixDatagram;
    let directory = Directory::start();
    directory.add_employee("alice", "x", None);
    let host = directory.add_host("host-a");
    let port = directory.port() + 10_000;
    let toml = format!(
        "{}\n[sync]\nmetrics_listen = \"127.0.0.1:{port}\"\n",
        fleet_toml(
            "host-a",
            &[directory.uri()],
            &directory.people_dn(),
            &host.dn,
            &host.password_file
        )
    );
    let env = host_env(&toml);
    let socket_path = env.root().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    socket.set_read_timeout(Some(PROPAGATION)).expect("timeout");
    let mut child = Command::new(deadbolt_tests::fleet::syncd_path())
        .arg("--config")
        .arg(env.config_path())
        .env("NOTIFY_SOCKET", &socket_path)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start deadbolt-syncd");
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("a notification");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));

    env.fail_logins("alice", 1);
    let metrics = wait_until("one failure pushed, in the metrics", PROPAGATION, || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        text.contains("deadbolt_failures_pushed_total 1")
            .then_some(text)
    });
    for name in [
        "deadbolt_locks_total",
        "deadbolt_reactivations_total",
        "deadbolt_pending_records",
        "deadbolt_sync_lag_seconds",
        "deadbolt_connected 1",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success());
    let n = socket.recv(&mut buf).expect("the stopping notification");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
}

#[test]
fn a_host_binds_with_sasl_external_over_ldapi() {
    let directory = Directory::start();
    directory.add_employee("alice", "x", None);
    let host = directory.add_host("host-a");
    // The directory maps this process's peer credentials to host-a's entry.
    map_peer_to(&directory, &host.dn);
    let toml = external_toml(&directory);
    let env = host_env(&toml);
    let mut syncd = Syncd::start(
        env.config_path(),
        &env.state_dir().join(".sync"),
        &env.root().join("syncd.log"),
    );
    syncd.wait_ready();
    env.fail_logins("alice", 1);
    // The record was written as host-a: under host-a's own name, which the
    // ACL lets only host-a's identity write.
    let record = directory.host_record_dn(&directory.employee_dn("alice"), "host-a");
    wait_until("host-a's record written over ldapi", PROPAGATION, || {
        directory
            .entry(&record, &["deadboltFailure"])
            .filter(|e| e.values("deadboltFailure").len() == 1)
    });
}

#[test]
fn a_manager_reactivates_with_sasl_external_mapped_to_his_own_entry() {
    let directory = Directory::start();
    let boss = directory.add_employee("boss", "boss-pw", None);
    let alice = directory.add_employee("alice", "x", Some(&boss));
    directory.lock_for_good(&alice);
    map_peer_to(&directory, &boss);
    let toml = external_toml(&directory);
    let env = host_env(&toml);
    let out = env.deadboltctl(&["reactivate", "alice", "--sasl-external"]);
    assert!(out.succeeded(), "{out}");
    let entry = directory
        .entry(&alice, &["deadboltReactivated", "pwdAccountLockedTime"])
        .expect("alice");
    assert_eq!(entry.values("deadboltReactivated").len(), 1, "{entry:?}");
    assert!(entry.values("pwdAccountLockedTime").is_empty(), "{entry:?}");
    // The example ACL lets a manager add a reactivation, not delete one: his
    // second reactivation of alice keeps the older value rather than fail.
    directory.lock_for_good(&alice);
    let out = env.deadboltctl(&["reactivate", "alice", "--sasl-external"]);
    assert!(out.succeeded(), "the second reactivation: {out}");
    let entry = directory
        .entry(&alice, &["deadboltReactivated", "pwdAccountLockedTime"])
        .expect("alice");
    assert_eq!(entry.values("deadboltReactivated").len(), 2, "{entry:?}");
    assert!(entry.values("pwdAccountLockedTime").is_empty(), "{entry:?}");
    // Without --as or --sasl-external, a configured directory is not ignored.
    let out = env.deadboltctl(&["reactivate", "alice"]);
    assert!(!out.succeeded() && out.stderr.contains("--local"), "{out}");
}
