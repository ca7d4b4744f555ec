//! deadbolt's schema (packaging/ldap/deadbolt.ldif and deadbolt.schema)
//! against a real slapd: it loads into a fresh cn=config the way a site
//! loads it, the two files say the same thing (as slapd reads them), an
//! employee entry can take the auxiliary class without anything else in it
//! changing, a host can create its record, and slapd refuses values the
//! schema and constraint.ldif do not allow. Also ppolicy as the harness
//! sets it up: three bad binds lock, deleting the lock unlocks.

use deadbolt_tests::slapd::{
    constraint_ldif_path, schema_conf_path, schema_ldif_path, Directory, Entry,
};
use std::fs;
use std::process::Command;

const ARC: &str = "2.25.313249848536972795824585976278192667498";

/// Joins folded LDIF lines (RFC 2849: a line starting with one space
/// continues the previous one, that space removed); drops comments.
fn unfold(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(' ') {
            if let Some(last) = lines.last_mut() {
                last.push_str(rest);
            }
        } else if !line.starts_with('#') {
            lines.push(line.to_owned());
        }
    }
    lines
}

/// Collapses runs of white space, so that layout does not count.
fn normalize(definition: &str) -> String {
    definition.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The attribute type and object class definitions of an LDIF, with a
/// `{n}` ordering prefix removed, in file order: ("attributetype" or
/// "objectclass", definition).
fn ldif_definitions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in unfold(text) {
        let Some((attr, value)) = line.split_once(':') else {
            continue;
        };
        let kind = match attr.to_ascii_lowercase().as_str() {
            "olcattributetypes" => "attributetype",
            "olcobjectclasses" => "objectclass",
            _ => continue,
        };
        let value = value.trim_start();
        let value = match value.strip_prefix('{') {
            Some(rest) => rest.split_once('}').map_or(value, |(_, def)| def),
            None => value,
        };
        out.push((kind.to_owned(), normalize(value)));
    }
    out
}

/// The definitions of a slapd.conf schema file, in file order.
fn schema_definitions(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            let last = out.last_mut().expect("a continuation line after a keyword");
            last.1 = normalize(&format!("{} {line}", last.1));
            continue;
        }
        let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        out.push((keyword.to_ascii_lowercase(), normalize(rest)));
    }
    out
}

/// What slapd makes of deadbolt.schema: slaptest converts a slapd.conf that
/// includes it into cn=config, and the converted entry is read back.
fn slaptest_definitions() -> Vec<(String, String)> {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let mut conf = String::new();
    for schema in ["core", "cosine", "inetorgperson"] {
        conf.push_str(&format!("include /etc/ldap/schema/{schema}.schema\n"));
    }
    conf.push_str(&format!("include {}\n", schema_conf_path().display()));
    fs::write(tmp.path().join("slapd.conf"), conf).expect("write slapd.conf");
    fs::create_dir(tmp.path().join("slapd.d")).expect("make slapd.d");
    let out = Command::new("slaptest")
        .arg("-f")
        .arg(tmp.path().join("slapd.conf"))
        .arg("-F")
        .arg(tmp.path().join("slapd.d"))
        .output()
        .expect("run slaptest");
    assert!(
        out.status.success(),
        "slaptest refused deadbolt.schema:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let converted = tmp
        .path()
        .join("slapd.d/cn=config/cn=schema/cn={3}deadbolt.ldif");
    let text = fs::read_to_string(&converted)
        .unwrap_or_else(|e| panic!("read {}: {e}", converted.display()));
    ldif_definitions(&text)
}

/// The definitions under deadbolt's arc that a server publishes in its
/// subschema entry.
fn published_definitions(dir: &Directory) -> Vec<(String, String)> {
    let subschema = dir.search(
        "cn=Subschema",
        "base",
        "(objectClass=subschema)",
        &["attributeTypes", "objectClasses"],
    );
    let entry = subschema.first().expect("the subschema entry");
    let mut out = Vec::new();
    for (attr, kind) in [
        ("attributetypes", "attributetype"),
        ("objectclasses", "objectclass"),
    ] {
        for def in entry.values(attr) {
            if def.starts_with(&format!("( {ARC}.")) {
                out.push((kind.to_owned(), normalize(def)));
            }
        }
    }
    out
}

fn sorted(mut defs: Vec<(String, String)>) -> Vec<(String, String)> {
    defs.sort();
    defs
}

fn root_modify(dir: &Directory, ldif: &str) -> Result<(), String> {
    dir.modify(dir.admin_dn(), dir.admin_password(), ldif)
}

#[test]
fn the_ldif_loads_into_a_fresh_cn_config_with_ldapadd_over_ldapi() {
    let dir = Directory::start_without_deadbolt_schema();
    assert!(
        published_definitions(&dir).is_empty(),
        "the server already knows deadbolt's schema"
    );
    let ldif = fs::read_to_string(schema_ldif_path()).expect("read deadbolt.ldif");
    dir.config_add(&ldif)
        .unwrap_or_else(|e| panic!("ldapadd -Y EXTERNAL of deadbolt.ldif failed: {e}"));
    let expected = ldif_definitions(&ldif);
    assert_eq!(expected.len(), 9, "seven attribute types and two classes");
    assert_eq!(sorted(published_definitions(&dir)), sorted(expected));

    // slapd parses the {n} length bound and stores any length regardless:
    // constraint.ldif is what enforces it.
    let alice = dir.add_employee("alice", "pw-alice", None);
    let record = dir.host_record_dn(&alice, "web1");
    let long = "9".repeat(65);
    let add_long = format!(
        "dn: {record}\nobjectClass: deadboltHostRecord\ndeadboltHost: web1\ndeadboltLogin: {long}\n"
    );
    dir.add(dir.admin_dn(), dir.admin_password(), &add_long)
        .expect("without constraints slapd stores a 65-character deadboltLogin");
    dir.delete(dir.admin_dn(), dir.admin_password(), &record)
        .expect("delete the record");
    let constraints = fs::read_to_string(constraint_ldif_path()).expect("read constraint.ldif");
    dir.config_modify(&constraints)
        .unwrap_or_else(|e| panic!("loading constraint.ldif failed: {e}"));
    let refused = dir.try_add(dir.admin_dn(), dir.admin_password(), &add_long);
    assert_eq!(refused.code, 19, "constraintViolation: {}", refused.stderr);
    assert!(dir.entry(&record, &["1.1"]).is_none());
}

#[test]
fn the_schema_file_and_the_ldif_define_the_same_types() {
    let ldif = ldif_definitions(&fs::read_to_string(schema_ldif_path()).expect("read .ldif"));
    let conf = schema_definitions(&fs::read_to_string(schema_conf_path()).expect("read .schema"));
    assert_eq!(conf, ldif, "the files differ as text");
    // And as slapd reads them: the .schema converted by slaptest, the .ldif
    // as a running server publishes it.
    assert_eq!(slaptest_definitions(), ldif);
    let dir = Directory::start_with(Default::default());
    assert_eq!(sorted(published_definitions(&dir)), sorted(ldif.clone()));
    for (kind, def) in &ldif {
        assert!(
            def.starts_with(&format!("( {ARC}.")),
            "{kind} outside the arc: {def}"
        );
    }
}

/// An entry's user attributes, objectClass left out.
fn without_object_class(entry: &Entry) -> Vec<(String, Vec<String>)> {
    entry
        .attrs
        .iter()
        .filter(|(name, _)| name.as_str() != "objectclass")
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect()
}

#[test]
fn an_employee_entry_gains_deadbolt_account_and_nothing_else_changes() {
    let dir = Directory::start();
    let admin = dir.add_admin("adm", "pw-adm");
    let manager = dir.add_employee("bob", "pw-bob", None);
    let alice = dir.add_employee("alice", "pw-alice", Some(&manager));
    let before = dir.entry(&alice, &["*", "entryUUID"]).expect("alice");
    dir.modify(
        &admin,
        "pw-adm",
        &format!(
            "dn: {alice}\nchangetype: modify\nadd: objectClass\nobjectClass: deadboltAccount\n"
        ),
    )
    .expect("an administrator adds the class");
    let after = dir.entry(&alice, &["*", "entryUUID"]).expect("alice");
    let mut classes = before.values("objectClass").to_vec();
    classes.push("deadboltAccount".to_owned());
    assert_eq!(after.values("objectClass"), classes.as_slice());
    assert_eq!(without_object_class(&after), without_object_class(&before));
    assert_eq!(after.dn, before.dn);
    // Its attributes are now allowed on the entry.
    root_modify(
        &dir,
        &format!(
            "dn: {alice}\nchangetype: modify\nadd: deadboltReactivated\n\
             deadboltReactivated: 20261202120000.000000Z\n"
        ),
    )
    .expect("deadboltReactivated on a deadboltAccount entry");
}

#[test]
fn a_host_creates_its_record_under_an_employee() {
    let dir = Directory::start();
    let alice = dir.add_employee("alice", "pw-alice", None);
    let host = dir.add_host("web1");
    let record = dir.host_record_dn(&alice, &host.name);
    let failure = "20261202120000.123456Z 4242 sshd 192.0.2.7";
    dir.add(
        &host.dn,
        &host.password,
        &format!(
            "dn: {record}\nobjectClass: deadboltHostRecord\ndeadboltHost: web1\n\
             deadboltFailure: {failure}\ndeadboltLogin: 20261202110000.000000Z\n"
        ),
    )
    .expect("the host creates its own record");
    let seen = dir
        .search_as(
            &host.dn,
            &host.password,
            &alice,
            "one",
            "(objectClass=deadboltHostRecord)",
            &["*", "structuralObjectClass"],
        )
        .expect("the host reads its record back");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].values("deadboltFailure"), [failure]);
    assert_eq!(seen[0].first("deadboltHost"), Some("web1"));
    assert_eq!(
        seen[0].first("structuralObjectClass"),
        Some("deadboltHostRecord")
    );
    let parent = dir.entry(&alice, &["hasSubordinates"]).expect("alice");
    assert_eq!(parent.first("hasSubordinates"), Some("TRUE"));
}

#[test]
fn values_outside_the_schema_are_refused_and_change_nothing() {
    let dir = Directory::start();
    let alice = dir.add_employee("alice", "pw-alice", None);
    let record = dir.host_record_dn(&alice, "web1");
    let add_as = |dn: &str, body: &str| {
        dir.try_add(
            dir.admin_dn(),
            dir.admin_password(),
            &format!("dn: {dn}\nobjectClass: deadboltHostRecord\n{body}"),
        )
    };
    let add = |body: &str| add_as(&record, body);
    let long_host = "h".repeat(256);
    let long_record = dir.host_record_dn(&alice, &long_host);
    let result = add_as(&long_record, &format!("deadboltHost: {long_host}\n"));
    assert_eq!(
        result.code, 19,
        "a 256-byte deadboltHost: {}",
        result.stderr
    );
    assert!(dir.entry(&long_record, &["1.1"]).is_none());
    let cases = [
        // (what, LDIF body, expected LDAP result)
        (
            "a 1025-byte deadboltFailure",
            format!(
                "deadboltHost: web1\ndeadboltFailure: {}\n",
                "x".repeat(1025)
            ),
            19,
        ),
        (
            "a 65-byte deadboltLogin",
            format!("deadboltHost: web1\ndeadboltLogin: {}\n", "1".repeat(65)),
            19,
        ),
        (
            "two deadboltHost values",
            "deadboltHost: web1\ndeadboltHost: web2\n".to_owned(),
            19,
        ),
        (
            "a deadboltLogin that is not UTF-8",
            "deadboltHost: web1\ndeadboltLogin:: gIE=\n".to_owned(),
            21,
        ),
        (
            "an empty deadboltFailure",
            "deadboltHost: web1\ndeadboltFailure:\n".to_owned(),
            21,
        ),
        (
            "an attribute the class does not allow",
            "deadboltHost: web1\nuserPassword: {CRYPT}x\n".to_owned(),
            65,
        ),
    ];
    for (what, body, code) in &cases {
        let result = add(body);
        assert_eq!(result.code, *code, "{what}: {}", result.stderr);
        assert!(dir.entry(&record, &["1.1"]).is_none(), "{what} was stored");
    }
    // The limits themselves are accepted.
    add(&format!(
        "deadboltHost: web1\ndeadboltFailure: {}\ndeadboltLogin: {}\n",
        "x".repeat(1024),
        "1".repeat(64)
    ))
    .into_result()
    .expect("values at the limits");

    // On the employee entry: a host's attribute is not allowed there, and an
    // over-long reactivation time is refused; the entry stays as it was.
    let before = dir.entry(&alice, &["*"]).expect("alice");
    for (ldif, code) in [
        (
            "add: deadboltFailure\ndeadboltFailure: 20261202120000.000000Z 1 sshd x\n".to_owned(),
            65,
        ),
        (
            format!(
                "add: objectClass\nobjectClass: deadboltAccount\n-\nadd: deadboltReactivated\n\
                 deadboltReactivated: {}\n",
                "2".repeat(65)
            ),
            19,
        ),
        (
            "add: deadboltReactivated\ndeadboltReactivated: 20261202120000.000000Z\n".to_owned(),
            65,
        ),
    ] {
        let result = dir.try_modify(
            dir.admin_dn(),
            dir.admin_password(),
            &format!("dn: {alice}\nchangetype: modify\n{ldif}"),
        );
        assert_eq!(result.code, code, "{ldif}: {}", result.stderr);
    }
    assert_eq!(dir.entry(&alice, &["*"]).expect("alice"), before);
}

#[test]
fn three_bad_binds_lock_and_deleting_the_lock_unlocks() {
    let dir = Directory::start();
    let admin = dir.add_admin("adm", "pw-adm");
    let alice = dir.add_employee("alice", "right-password", None);
    assert!(dir.try_bind(&alice, "right-password").is_ok());
    for _ in 0..3 {
        assert_eq!(dir.try_bind(&alice, "wrong").code, 49, "invalidCredentials");
    }
    let entry = dir
        .entry(&alice, &["pwdAccountLockedTime", "pwdFailureTime"])
        .expect("alice");
    assert_eq!(entry.values("pwdFailureTime").len(), 3);
    assert!(
        entry.first("pwdAccountLockedTime").is_some(),
        "ppolicy locked the account: {entry:?}"
    );
    assert_eq!(
        dir.try_bind(&alice, "right-password").code,
        49,
        "a locked account cannot bind, even with the right password"
    );
    dir.modify(
        &admin,
        "pw-adm",
        &format!("dn: {alice}\nchangetype: modify\ndelete: pwdAccountLockedTime\n"),
    )
    .expect("an administrator deletes the lock");
    assert!(dir.try_bind(&alice, "right-password").is_ok(), "unlocked");
}
