//! Kerberos binds (SASL GSSAPI) against a throwaway MIT KDC and slapd: a
//! host's deadbolt-syncd with its keytab, a manager's deadboltctl with his
//! own ticket, and the configurations deadbolt-syncd refuses.

use deadbolt_tests::fleet::{syncd_check, Syncd, PROPAGATION, UNTIL_REACTIVATED};
use deadbolt_tests::kdc::{host_principal, kerberize, Kdc, LDAP_HOST};
use deadbolt_tests::slapd::{wait_until, Directory, DirectoryOptions};
use deadbolt_tests::{toml_string, PamEnv};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A KDC and a directory that takes its principals' binds.
fn kerberos_directory() -> (Kdc, Directory) {
    kerberos_directory_with(DirectoryOptions::default())
}

fn kerberos_directory_with(opts: DirectoryOptions) -> (Kdc, Directory) {
    let kdc = Kdc::start();
    let mut directory = Directory::start_with(opts);
    kerberize(&mut directory, &kdc);
    (kdc, directory)
}

/// host-a with its keytab, its daemon bound over the directory's ldaps
/// port (verified with the test's CA) and the directory loaded.
fn host_a_ready_over_ldaps(kdc: &Kdc, directory: &Directory) -> (PamEnv, Syncd) {
    directory.add_host("host-a");
    let keytab = kdc.principal_with_keytab(&host_principal("host-a"));
    let ldaps = directory.ldaps_uri().expect("ldaps");
    let ca = directory.ca_file().expect("the test CA");
    let toml = format!(
        "{}tls_ca_file = {}\n",
        gssapi_toml(directory, &keytab).replace(&directory.uri(), &ldaps),
        toml_string(&ca.display().to_string())
    );
    let env = host_env(&toml);
    let mut syncd = start_syncd(&env, kdc);
    syncd.wait_ready();
    (env, syncd)
}

/// host-a, binding with SASL GSSAPI and the keys in `keytab` over the
/// directory's plain loopback port.
fn gssapi_toml(directory: &Directory, keytab: &Path) -> String {
    format!(
        "[host]\nname = \"host-a\"\n\n[directory]\nuri = {}\nbase_dn = {}\nsasl_mech = \
         \"GSSAPI\"\nkeytab = {}\nsasl_host = {}\n",
        toml_string(&directory.uri()),
        toml_string(&directory.people_dn()),
        toml_string(&keytab.display().to_string()),
        toml_string(LDAP_HOST),
    )
}

fn host_env(toml: &str) -> PamEnv {
    let mut builder = PamEnv::builder().user("alice", "secret");
    for (key, value) in UNTIL_REACTIVATED {
        builder = builder.lockout(key, value);
    }
    builder.toml(toml).build()
}

/// The real daemon for `env`, its Kerberos library reading `kdc`'s realm.
fn start_syncd(env: &PamEnv, kdc: &Kdc) -> Syncd {
    Syncd::start_with_env(
        env.config_path(),
        &env.state_dir().join(".sync"),
        &env.root().join("syncd.log"),
        &[("KRB5_CONFIG", &kdc.krb5_config().display().to_string())],
    )
}

/// Waits until host-a's record under alice holds one failure.
fn wait_for_one_failure_in_host_a_record(directory: &Directory, what: &str) {
    let record = directory.host_record_dn(&directory.employee_dn("alice"), "host-a");
    wait_until(what, PROPAGATION, || {
        directory
            .entry(&record, &["deadboltFailure"])
            .filter(|e| e.values("deadboltFailure").len() == 1)
    });
}

/// LDAP's confidentialityRequired, as ldapmodify exits with it.
const CONFIDENTIALITY_REQUIRED: i32 = 13;

/// From here on the directory refuses every write made without a security
/// layer: what deadbolt writes then went through GSSAPI's encryption.
fn require_a_security_layer_for_writes(directory: &Directory) {
    directory
        .config_modify(
            "dn: cn=config\nchangetype: modify\nreplace: olcSecurity\nolcSecurity: update_ssf=1\n",
        )
        .expect("olcSecurity");
}

#[test]
fn a_host_syncs_a_failure_with_its_keytab_as_its_mapped_identity() {
    let (kdc, directory) = kerberos_directory();
    directory.add_employee("alice", "x", None);
    // The host identity the principal maps to; its password is not used.
    let host = directory.add_host("host-a");
    let keytab = kdc.principal_with_keytab(&host_principal("host-a"));
    require_a_security_layer_for_writes(&directory);
    // A plain simple bind may no longer write: the check below means something.
    let plain = directory.try_modify(
        directory.admin_dn(),
        directory.admin_password(),
        &format!(
            "dn: {}\nchangetype: modify\nreplace: description\ndescription: x\n",
            directory.employee_dn("alice")
        ),
    );
    assert_eq!(plain.code, CONFIDENTIALITY_REQUIRED, "{plain:?}");
    let env = host_env(&gssapi_toml(&directory, &keytab));
    let (code, err) = syncd_check(&env);
    assert_eq!(code, 0, "{err}");
    let root_cache = format!("/tmp/krb5cc_{}", nix::unistd::geteuid());
    let root_had_a_cache = Path::new(&root_cache).exists();
    let mut syncd = start_syncd(&env, &kdc);
    syncd.wait_ready();
    env.fail_logins("alice", 1);
    // The ACL lets only cn=host-a,ou=hosts write host-a's record: the
    // principal was mapped to that identity.
    wait_for_one_failure_in_host_a_record(&directory, "host-a's record written over GSSAPI");
    let record = directory.host_record_dn(&directory.employee_dn("alice"), "host-a");
    let creator = directory
        .entry(&record, &["creatorsName"])
        .and_then(|e| e.first("creatorsName").map(str::to_owned));
    assert_eq!(creator.as_deref(), Some(host.dn.as_str()), "{record}");
    assert!(
        syncd.log_text().contains(&format!("bound as {}", host.dn)),
        "{}",
        syncd.log_text()
    );
    // The daemon got its ticket from the keytab into its own memory: root's
    // own credential cache was not made for it.
    if !root_had_a_cache {
        assert!(!Path::new(&root_cache).exists(), "{root_cache} was written");
    }
}

#[test]
fn over_ldaps_a_host_binds_with_its_keytab_and_syncs() {
    let (kdc, directory) = kerberos_directory_with(DirectoryOptions {
        tls: true,
        ..DirectoryOptions::default()
    });
    directory.add_employee("alice", "x", None);
    let (env, _syncd) = host_a_ready_over_ldaps(&kdc, &directory);
    env.fail_logins("alice", 1);
    wait_for_one_failure_in_host_a_record(&directory, "host-a's record written over ldaps");
}

#[test]
fn a_host_whose_principal_maps_to_another_host_cannot_write_as_this_one() {
    let (kdc, directory) = kerberos_directory();
    directory.add_employee("alice", "x", None);
    directory.add_host("host-a");
    directory.add_host("host-b");
    // host-b's keys, in a file that says it is host-a.
    let keytab = kdc.principal_with_keytab(&host_principal("host-b"));
    let env = host_env(&gssapi_toml(&directory, &keytab));
    let syncd = start_syncd(&env, &kdc);
    env.fail_logins("alice", 1);
    wait_until("the write as host-a refused", PROPAGATION, || {
        let log = syncd.log_text();
        (log.contains("nsufficient") || log.contains("rc=50")).then_some(())
    });
    let record = directory.host_record_dn(&directory.employee_dn("alice"), "host-a");
    assert!(
        directory.entry(&record, &["deadboltFailure"]).is_none(),
        "host-b wrote host-a's record"
    );
}

#[test]
fn a_manager_reactivates_with_his_ticket_and_an_employee_is_refused() {
    let (kdc, directory) = kerberos_directory();
    let boss = directory.add_employee("boss", "boss-pw", None);
    let eve = directory.add_employee("eve", "eve-pw", None);
    let alice = directory.add_employee("alice", "x", Some(&boss));
    directory.lock_for_good(&alice);
    require_a_security_layer_for_writes(&directory);
    let host_keytab = kdc.principal_with_keytab(&host_principal("host-a"));
    let env = host_env(&gssapi_toml(&directory, &host_keytab));
    let krb5_config = kdc.krb5_config().display().to_string();
    let tickets = tempfile::tempdir().expect("a directory for the tickets");
    let ticket_of = |who: &str| {
        let keytab = kdc.principal_with_keytab(who);
        kdc.kinit(who, &keytab, tickets.path())
    };
    let alice_state = |directory: &Directory| {
        directory
            .entry(&alice, &["deadboltReactivated", "pwdAccountLockedTime"])
            .expect("alice")
    };

    // Another employee's ticket: refused by the ACL, named as the
    // directory knows him, and nothing changes.
    let eve_cache = ticket_of("eve");
    let out = env.deadboltctl_with_env(
        &["reactivate", "alice", "--sasl-gssapi"],
        &[("KRB5_CONFIG", &krb5_config), ("KRB5CCNAME", &eve_cache)],
    );
    assert!(!out.succeeded(), "{out}");
    assert!(
        out.stderr
            .contains(&format!("does not let {eve} reactivate alice")),
        "{out}"
    );
    let entry = alice_state(&directory);
    assert!(entry.values("deadboltReactivated").is_empty(), "{entry:?}");
    assert_eq!(entry.values("pwdAccountLockedTime").len(), 1, "{entry:?}");

    // No ticket at all: one line that says what to run.
    let none = format!("FILE:{}", tickets.path().join("none.ccache").display());
    let out = env.deadboltctl_with_env(
        &["reactivate", "alice", "--sasl-gssapi"],
        &[("KRB5_CONFIG", &krb5_config), ("KRB5CCNAME", &none)],
    );
    assert!(!out.succeeded(), "{out}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    assert!(out.stderr.contains("kinit"), "{out}");
    assert_eq!(
        alice_state(&directory).values("deadboltReactivated").len(),
        0
    );

    // The manager's own ticket: done, and said in his name.
    let boss_cache = ticket_of("boss");
    let out = env.deadboltctl_with_env(
        &["reactivate", "alice", "--sasl-gssapi"],
        &[("KRB5_CONFIG", &krb5_config), ("KRB5CCNAME", &boss_cache)],
    );
    assert!(out.succeeded(), "{out}");
    assert!(out.stdout.contains(&format!("by {boss}")), "{out}");
    let entry = alice_state(&directory);
    assert_eq!(entry.values("deadboltReactivated").len(), 1, "{entry:?}");
    assert!(entry.values("pwdAccountLockedTime").is_empty(), "{entry:?}");

    // His ticket and a password identity are two ways to say who acts.
    let out = env.deadboltctl_with_env(
        &["reactivate", "alice", "--sasl-gssapi", "--as", &boss],
        &[("KRB5_CONFIG", &krb5_config), ("KRB5CCNAME", &boss_cache)],
    );
    assert_eq!(out.code(), Some(2), "{out}");
}

#[test]
fn an_administrator_disables_and_enables_with_his_ticket() {
    let (kdc, directory) = kerberos_directory();
    let admin = directory.add_admin("root-admin", "admin-pw");
    let alice = directory.add_employee("alice", "x", None);
    require_a_security_layer_for_writes(&directory);
    let host_keytab = kdc.principal_with_keytab(&host_principal("host-a"));
    let env = host_env(&gssapi_toml(&directory, &host_keytab));
    let tickets = tempfile::tempdir().expect("a directory for the tickets");
    let keytab = kdc.principal_with_keytab("root-admin");
    let cache = kdc.kinit("root-admin", &keytab, tickets.path());
    let krb5_config = kdc.krb5_config().display().to_string();
    for (verb, attribute) in [
        ("disable", "deadboltDisabled"),
        ("enable", "deadboltEnabled"),
    ] {
        let out = env.deadboltctl_with_env(
            &[verb, "alice", "--sasl-gssapi"],
            &[("KRB5_CONFIG", &krb5_config), ("KRB5CCNAME", &cache)],
        );
        assert!(out.succeeded(), "{out}");
        assert!(out.stdout.contains(&format!("by {admin}")), "{out}");
        let entry = directory.entry(&alice, &[attribute]).expect("alice");
        assert_eq!(entry.values(attribute).len(), 1, "{verb}: {entry:?}");
    }
}

#[test]
fn a_keytab_others_can_read_or_that_is_missing_is_refused_in_one_line() {
    let directory = Directory::start();
    let root = tempfile::tempdir().expect("a temporary directory");
    // What kadmin's ktadd writes is binary; these checks look only at the
    // file's kind, owner and mode.
    let keytab = root.path().join("krb5.keytab");
    fs::write(&keytab, b"\x05\x02").expect("write the keytab");
    fs::set_permissions(&keytab, fs::Permissions::from_mode(0o600)).expect("chmod");
    let (code, err) = syncd_check(&host_env(&gssapi_toml(&directory, &keytab)));
    assert_eq!(code, 0, "{err}");

    let loose = root.path().join("loose.keytab");
    fs::copy(&keytab, &loose).expect("copy the keytab");
    fs::set_permissions(&loose, fs::Permissions::from_mode(0o644)).expect("chmod");
    let link = root.path().join("link.keytab");
    std::os::unix::fs::symlink(&keytab, &link).expect("symlink");
    let missing = root.path().join("missing.keytab");
    let cases = [
        (gssapi_toml(&directory, &loose), "readable by"),
        (gssapi_toml(&directory, &missing), "does not exist"),
        (gssapi_toml(&directory, &link), "symbolic link"),
        (gssapi_toml(&directory, root.path()), "is a directory"),
    ];
    for (toml, says) in cases {
        let (code, err) = syncd_check(&host_env(&toml));
        assert_eq!(code, 2, "{toml}\n{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(
            err.contains("keytab") && err.contains(says),
            "{says}: {err}"
        );
    }
}

#[test]
fn gssapi_settings_it_cannot_use_are_refused_in_one_line() {
    let directory = Directory::start();
    let uri = toml_string(&directory.uri());
    let base = toml_string(&directory.people_dn());
    let ldapi = toml_string(&directory.ldapi_uri());
    let cases = [
        // A name that is no host name, as a principal's host part.
        (
            format!("uri = {uri}\nsasl_mech = \"GSSAPI\"\nsasl_host = \"ldap/evil@OTHER\"\n"),
            "sasl_host",
        ),
        (
            format!("uri = {uri}\nsasl_mech = \"GSSAPI\"\nsasl_host = \"{}\"\n", "a".repeat(300)),
            "sasl_host",
        ),
        // A keytab without the mechanism that reads it.
        (
            format!("uri = {uri}\nbind_dn = \"cn=h\"\nbind_password_file = \"/x\"\nkeytab = \"/etc/krb5.keytab\"\n"),
            "sasl_mech = \"GSSAPI\"",
        ),
        // Two ways to bind.
        (
            format!("uri = {uri}\nsasl_mech = \"GSSAPI\"\nbind_dn = \"cn=h\"\n"),
            "two ways to bind",
        ),
        // A mechanism spelled otherwise, and one deadbolt has not.
        (format!("uri = {uri}\nsasl_mech = \"gssapi\"\n"), "\"GSSAPI\""),
        (format!("uri = {uri}\nsasl_mech = \"DIGEST-MD5\"\n"), "\"GSSAPI\""),
        // A relative keytab path.
        (
            format!("uri = {uri}\nsasl_mech = \"GSSAPI\"\nkeytab = \"krb5.keytab\"\n"),
            "keytab",
        ),
        // Plain LDAP to another host: ldap3's GSSAPI layer is not relied on.
        (
            "uri = \"ldap://192.0.2.10\"\nsasl_mech = \"GSSAPI\"\nkeytab = \"/nonexistent\"\n"
                .to_owned(),
            "GSSAPI layer",
        ),
        // A socket has no host name for the service principal.
        (
            format!("uri = {ldapi}\nsasl_mech = \"GSSAPI\"\nkeytab = \"/nonexistent\"\n"),
            "sasl_host",
        ),
    ];
    for (directory_keys, says) in cases {
        let toml =
            format!("[host]\nname = \"host-a\"\n\n[directory]\nbase_dn = {base}\n{directory_keys}");
        let (code, err) = syncd_check(&host_env(&toml));
        assert_eq!(code, 2, "{toml}\n{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(says), "{says}: {err}");
    }
}

/// A host record bigger than the SASL buffer ldap3 announces (0x9FFFB8
/// bytes) loads over ldaps with GSSAPI. Over the plain port (ldap3's
/// GSSAPI layer) the same refresh stalls with no error, which is why
/// GSSAPI to another host still needs TLS: docs/directory.md, "Kerberos".
#[test]
fn over_ldaps_a_record_larger_than_a_sasl_buffer_loads() {
    let (kdc, directory) = kerberos_directory_with(DirectoryOptions {
        tls: true,
        ..DirectoryOptions::default()
    });
    let alice = directory.add_employee("alice", "x", None);
    let mut ldif = format!(
        "dn: deadboltHost=host-z,{alice}\nobjectClass: deadboltHostRecord\ndeadboltHost: host-z\n"
    );
    let padding = "x".repeat(900);
    for i in 0..12_000 {
        ldif.push_str(&format!(
            "deadboltFailure: 20261203120000.{i:06}Z 1 sshd {padding}\n"
        ));
    }
    assert!(ldif.len() > 0x9F_FFB8, "{} bytes", ldif.len());
    directory
        .add(directory.admin_dn(), directory.admin_password(), &ldif)
        .expect("the large record");
    // Found after the large record in the refresh, so only a refresh that
    // got past it knows bob.
    directory.add_employee("bob", "x", None);
    let (_env, syncd) = host_a_ready_over_ldaps(&kdc, &directory);
    assert_eq!(
        syncd.status().map(|s| s["entries_known"].clone()),
        Some(serde_json::json!(2))
    );
}
