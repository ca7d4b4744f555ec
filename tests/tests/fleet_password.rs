//! Credentials through the directory, through real slapd (ppolicy and the
//! argon2 module, `olcPasswordHash: {ARGON2}`), real deadbolt-syncd and
//! real libpam: an employee's change with `password_store = "directory"`
//! reaches the directory as himself, history and change times are shared,
//! a reset in the directory forces a change on every host, a departure
//! date ends access everywhere, and the hand-off socket refuses strangers.

use deadbolt_tests::fleet::{fleet_toml, secret_file, Syncd, PROPAGATION};
use deadbolt_tests::slapd::{wait_until, Directory};
use deadbolt_tests::{PamEnv, Stack};
use std::path::PathBuf;
use std::process::Command;

const LOCAL_PW: &str = "local-Login-1";
const FIRST: &str = "Start-Blue-Heron-41";
const SECOND: &str = "Second-Green-Otter-52";
const THIRD: &str = "Third-Amber-Lynx-63";

struct Host {
    env: PamEnv,
    syncd: Syncd,
}

impl Host {
    fn status(&self) -> serde_json::Value {
        self.env.status_json("alice")
    }
}

/// A directory with slapd hashing passwords with argon2, alice (password
/// [`FIRST`]) and her manager, and two hosts whose module stores passwords
/// in the directory, each with its daemon running.
fn fleet() -> (Directory, String, Host, Host) {
    let directory = Directory::start();
    directory
        .config_modify(
            "dn: olcDatabase={-1}frontend,cn=config\nchangetype: modify\n\
             replace: olcPasswordHash\nolcPasswordHash: {ARGON2}\n",
        )
        .expect("slapd takes olcPasswordHash: {ARGON2}");
    let boss = directory.add_employee("boss", "boss-pw", None);
    let alice = directory.add_employee("alice", FIRST, Some(&boss));
    let a = host(&directory, "host-a");
    let b = host(&directory, "host-b");
    (directory, alice, a, b)
}

fn host(directory: &Directory, name: &str) -> Host {
    let identity = directory.add_host(name);
    let toml = fleet_toml(
        name,
        &[directory.uri()],
        &directory.people_dn(),
        &identity.dn,
        &identity.password_file,
    ) + "password_store = \"directory\"\n";
    let env = PamEnv::builder()
        .user("alice", LOCAL_PW)
        .password("remember", "5")
        .password("min_length", "8")
        .stack(Stack::DirectoryStore)
        .toml(&toml)
        .build();
    let mut syncd = Syncd::start(
        env.config_path(),
        &env.state_dir().join(".sync"),
        &env.root().join(format!("syncd-{name}.log")),
    );
    syncd.wait_ready();
    Host { env, syncd }
}

fn socket_of(host: &Host) -> PathBuf {
    host.env.state_dir().join(".sync/password.sock")
}

#[test]
fn a_change_reaches_the_directory_hashed_by_it_and_its_reuse_is_refused_on_another_host() {
    let (directory, alice, a, b) = fleet();

    let out = a.env.change_password("alice", FIRST, &[SECOND]);
    assert!(out.succeeded(), "the change through host-a failed\n{out}");
    assert!(
        directory.try_bind(&alice, SECOND).is_ok(),
        "an LDAP bind with the new password fails"
    );
    assert!(
        !directory.try_bind(&alice, FIRST).is_ok(),
        "the old password still binds"
    );
    let entry = directory
        .entry(&alice, &["userPassword", "pwdChangedTime"])
        .expect("alice's entry");
    let stored = entry.first("userPassword").expect("a userPassword");
    assert!(
        stored.starts_with("{ARGON2}$argon2"),
        "the directory did not hash it with argon2: {}",
        &stored[..stored.len().min(12)]
    );
    assert!(
        entry.first("pwdChangedTime").is_some(),
        "ppolicy keeps the change time"
    );
    let status = a.status();
    assert_eq!(status["history_entries"], 1, "{status}");
    assert!(!status["password_changed_at"].is_null(), "{status}");

    // The second change, then host-b learns both from the directory.
    let out = a.env.change_password("alice", SECOND, &[THIRD]);
    assert!(out.succeeded(), "the second change failed\n{out}");
    wait_until("host-b holds host-a's history", PROPAGATION, || {
        (b.status()["history_entries"] == 2).then_some(())
    });
    assert!(!b.status()["password_changed_at"].is_null());

    // On host-b, going back to SECOND is refused before the directory is
    // asked: the directory keeps THIRD.
    let out = b.env.change_password("alice", THIRD, &[SECOND]);
    assert!(
        !out.succeeded(),
        "a former password was taken on host-b\n{out}"
    );
    assert!(
        out.shows("used recently") || out.shows("reused") || out.shows("former"),
        "no word of reuse\n{out}"
    );
    assert!(directory.try_bind(&alice, THIRD).is_ok());
    assert!(!directory.try_bind(&alice, SECOND).is_ok());
    for host in [&a, &b] {
        let log = host.syncd.log_text();
        for secret in [FIRST, SECOND, THIRD] {
            assert!(!log.contains(secret), "a password is in the daemon's log");
        }
    }
}

#[test]
fn a_refused_or_unreachable_directory_changes_and_records_nothing() {
    let (mut directory, alice, a, _b) = fleet();

    let out = a
        .env
        .change_password("alice", "not-her-password", &[SECOND]);
    assert!(
        !out.succeeded(),
        "a wrong current password was taken\n{out}"
    );
    assert!(out.shows("current password is not right"), "{out}");
    let status = a.status();
    assert_eq!(status["history_entries"], 0, "{status}");
    assert!(status["password_changed_at"].is_null(), "{status}");
    assert!(directory.try_bind(&alice, FIRST).is_ok());

    directory.stop();
    let out = a.env.change_password("alice", FIRST, &[SECOND]);
    assert!(
        !out.succeeded(),
        "a change with the directory down succeeded\n{out}"
    );
    assert!(out.shows("cannot be reached"), "{out}");
    let status = a.status();
    assert_eq!(status["history_entries"], 0, "{status}");
    assert!(status["password_changed_at"].is_null(), "{status}");
    directory.restart();
    assert!(directory.try_bind(&alice, FIRST).is_ok());
}

#[test]
fn a_reset_in_the_directory_forces_a_change_on_every_host_until_one_is_made() {
    let (directory, alice, a, b) = fleet();
    for host in [&a, &b] {
        assert_eq!(host.status()["must_change"], false);
    }
    directory
        .modify(
            directory.admin_dn(),
            directory.admin_password(),
            &format!("dn: {alice}\nchangetype: modify\nreplace: pwdReset\npwdReset: TRUE\n"),
        )
        .expect("the administrator sets pwdReset");
    for host in [&a, &b] {
        wait_until("pwdReset reaches the host", PROPAGATION, || {
            (host.status()["must_change"] == true).then_some(())
        });
        let out = host.env.acct_mgmt("alice");
        assert!(
            !out.succeeded()
                && out.shows("Authentication token is no longer valid; new one required"),
            "the account phase does not demand a change\n{out}"
        );
    }
    let out = a.env.change_password("alice", FIRST, &[SECOND]);
    assert!(out.succeeded(), "the required change failed\n{out}");
    let entry = directory.entry(&alice, &["pwdReset"]).expect("alice");
    assert!(entry.first("pwdReset").is_none(), "slapd keeps pwdReset");
    assert_eq!(a.status()["must_change"], false);
    wait_until("host-b learns of the change", PROPAGATION, || {
        (b.status()["must_change"] == false).then_some(())
    });
}

#[test]
fn a_departure_date_in_the_directory_ends_access_on_every_host_and_its_removal_restores_it() {
    let (directory, alice, a, b) = fleet();
    let yesterday = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        / 86_400
        - 1;
    directory
        .modify(
            directory.admin_dn(),
            directory.admin_password(),
            &format!(
                "dn: {alice}\nchangetype: modify\nadd: objectClass\nobjectClass: shadowAccount\n-\n\
                 replace: shadowExpire\nshadowExpire: {yesterday}\n"
            ),
        )
        .expect("the administrator sets shadowExpire");
    for host in [&a, &b] {
        wait_until("shadowExpire reaches the host", PROPAGATION, || {
            (host.status()["account_expired"] == true).then_some(())
        });
        let out = host.env.acct_mgmt("alice");
        assert!(!out.succeeded(), "an expired account is let in\n{out}");
    }
    directory
        .modify(
            directory.admin_dn(),
            directory.admin_password(),
            &format!("dn: {alice}\nchangetype: modify\ndelete: shadowExpire\n"),
        )
        .expect("the administrator removes shadowExpire");
    for host in [&a, &b] {
        wait_until("the removal reaches the host", PROPAGATION, || {
            (host.status()["account_expired"] == false).then_some(())
        });
        let out = host.env.acct_mgmt("alice");
        assert!(out.succeeded(), "the account stays expired\n{out}");
    }
}

#[test]
fn deadboltctl_expire_as_an_administrator_sets_the_date_for_every_host_and_a_manager_is_refused() {
    let (directory, alice, a, b) = fleet();
    let admin = directory.add_admin("carol", "carol-pw");
    let admin_pw = secret_file(a.env.root(), "carol.pw", "carol-pw");
    let boss_pw = secret_file(a.env.root(), "boss.pw", "boss-pw");
    let boss = directory.employee_dn("boss");

    let out = a.env.deadboltctl(&[
        "expire",
        "alice",
        "--on",
        "2020-01-01",
        "--as",
        &boss,
        "--password-file",
        &boss_pw.display().to_string(),
    ]);
    assert!(!out.succeeded(), "a manager set a departure date\n{out}");
    assert!(out.shows("does not let"), "{out}");
    let entry = directory.entry(&alice, &["shadowExpire"]).expect("alice");
    assert!(
        entry.first("shadowExpire").is_none(),
        "the refusal changed the entry"
    );

    let out = a
        .env
        .deadboltctl(&["expire", "alice", "--on", "2020-01-01"]);
    assert!(
        !out.succeeded(),
        "expire without --as or --local changed something\n{out}"
    );
    assert!(out.shows("--local"), "{out}");

    let admin_file = admin_pw.display().to_string();
    let out = a.env.deadboltctl(&[
        "expire",
        "alice",
        "--on",
        "2020-01-01",
        "--as",
        &admin,
        "--password-file",
        &admin_file,
    ]);
    assert!(out.succeeded(), "the administrator's expire failed\n{out}");
    let entry = directory.entry(&alice, &["shadowExpire"]).expect("alice");
    assert_eq!(
        entry.first("shadowExpire"),
        Some("18262"),
        "2020-01-01 is day 18262"
    );
    for host in [&a, &b] {
        wait_until("the date reaches the host", PROPAGATION, || {
            (host.status()["account_expired"] == true).then_some(())
        });
        assert!(!host.env.acct_mgmt("alice").succeeded());
    }
    let out = a.env.deadboltctl(&[
        "expire",
        "alice",
        "--never",
        "--as",
        &admin,
        "--password-file",
        &admin_file,
    ]);
    assert!(out.succeeded(), "the administrator's --never failed\n{out}");
    for host in [&a, &b] {
        wait_until("the removal reaches the host", PROPAGATION, || {
            (host.status()["account_expired"] == false).then_some(())
        });
        assert!(host.env.acct_mgmt("alice").succeeded());
    }
}

/// Sends `bytes` to the socket as `uid` (through setpriv and python3's
/// socket module) and returns what came back, as Python's repr of it. The
/// daemon may answer and close before it has read everything.
fn send_as(uid: u32, socket: &std::path::Path, bytes: &[u8]) -> String {
    let script = format!(
        "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect({:?})\n\
         try:\n  s.sendall(sys.stdin.buffer.read())\n  s.shutdown(socket.SHUT_WR)\n\
         except BrokenPipeError:\n  pass\n\
         data=b''\nwhile True:\n  c=s.recv(4096)\n  if not c: break\n  data+=c\nprint(repr(data))\n",
        socket.display().to_string()
    );
    let mut child = Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg("--")
        .arg("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python3 through setpriv");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(bytes)
        .expect("hand the client its bytes");
    let out = child.wait_with_output().expect("wait for the client");
    assert!(
        out.status.success(),
        "the client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_socket_refuses_other_users_and_garbage_and_the_daemon_keeps_serving() {
    let (directory, alice, a, _b) = fleet();
    let socket = socket_of(&a);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&socket)
        .expect("the socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is not 0600");
    let sync_dir = socket.parent().expect("the sync directory");
    let dir_mode = std::fs::metadata(sync_dir)
        .expect("sync dir")
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o077, 0, "others can enter the sync directory");

    // Opened up by hand, the socket still refuses a user who is not root.
    let opened = [a.env.root(), a.env.state_dir(), sync_dir];
    for dir in opened {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut request = b"DBPW\x01".to_vec();
    for field in ["alice", FIRST, SECOND] {
        request.extend_from_slice(&(field.len() as u16).to_be_bytes());
        request.extend_from_slice(field.as_bytes());
    }
    let answer = send_as(4242, &socket, &request);
    assert!(answer.contains("only root"), "{answer}");
    assert!(
        directory.try_bind(&alice, FIRST).is_ok(),
        "a stranger changed it"
    );

    for garbage in [
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        b"DBPW\x01\xff\xff".to_vec(),
        vec![0u8; 70_000],
    ] {
        let answer = send_as(0, &socket, &garbage);
        assert!(answer.contains("refused"), "{answer}");
    }
    // Still serving: a real change goes through.
    for dir in opened {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let out = a.env.change_password("alice", FIRST, &[SECOND]);
    assert!(out.succeeded(), "the daemon stopped serving\n{out}");
    assert!(directory.try_bind(&alice, SECOND).is_ok());
}
