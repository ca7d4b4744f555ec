//! The example ACL (packaging/ldap/acl.ldif), the whole table: every
//! identity against every operation on one employee, alice, whose manager is
//! bob, and on host-a's record under her entry. Each cell starts from the
//! same state (set as the rootdn), runs the operation as the identity, and
//! checks both the answer (success, or insufficientAccess) and what the
//! directory holds afterwards, so a refusal that still changed something, or
//! a success that changed nothing, fails too. The table is printed and must
//! match the one in docs/directory.md.

use deadbolt_tests::slapd::{
    hash_password, Directory, DirectoryOptions, Entry, INSUFFICIENT_ACCESS,
};
use std::fmt::Write as _;

/// Who acts, in the table's column order.
const IDENTITIES: [&str; 8] = [
    "admin",
    "manager",
    "other manager",
    "host A",
    "host B",
    "employee himself",
    "other employee",
    "anonymous",
];

/// Yes and no, to keep the table readable.
const Y: bool = true;
const N: bool = false;

/// Each operation and, per identity in [`IDENTITIES`] order, whether the ACL
/// allows it. "A's record" is `deadboltHost=host-a,uid=alice,...`: host A's
/// own, host B's other host's. "himself" is alice.
#[rustfmt::skip]
const TABLE: &[(&str, Op, [bool; 8])] = &[
    ("add deadboltFailure to A's record", Op::Value(RecordA, "add", "deadboltFailure", NEW_FAILURE), [Y, N, N, Y, N, N, N, N]),
    ("delete a deadboltFailure from A's record", Op::Value(RecordA, "delete", "deadboltFailure", FAILURE), [Y, N, N, Y, N, N, N, N]),
    ("add deadboltLogin to A's record", Op::Value(RecordA, "add", "deadboltLogin", NEW_TIME), [Y, N, N, Y, N, N, N, N]),
    ("add deadboltPassword to A's record", Op::Value(RecordA, "add", "deadboltPassword", NEW_FORMER), [Y, N, N, Y, N, N, N, N]),
    ("read deadboltPassword in A's record", Op::Read(RecordA, "deadboltPassword"), [Y, N, N, Y, Y, N, N, N]),
    ("create A's record", Op::CreateRecordA(""), [Y, N, N, Y, N, N, N, N]),
    ("create A's record carrying a userPassword", Op::CreateRecordA(PLANTED), [Y, N, N, N, N, N, N, N]),
    ("delete A's record", Op::DeleteRecordA, [Y, N, N, Y, N, N, N, N]),
    ("rename A's record to host B's name", Op::RenameRecordAToB, [Y, N, N, N, N, N, N, N]),
    ("add deadboltReactivated", Op::Value(Alice, "add", "deadboltReactivated", NEW_TIME), [Y, Y, N, N, N, N, N, N]),
    ("delete a deadboltReactivated value", Op::Value(Alice, "delete", "deadboltReactivated", REACTIVATED), [Y, N, N, N, N, N, N, N]),
    ("add deadboltDisabled", Op::Value(Alice, "add", "deadboltDisabled", NEW_TIME), [Y, N, N, N, N, N, N, N]),
    ("delete a deadboltDisabled value", Op::Value(Alice, "delete", "deadboltDisabled", DISABLED), [Y, N, N, N, N, N, N, N]),
    ("add deadboltEnabled", Op::Value(Alice, "add", "deadboltEnabled", NEW_TIME), [Y, N, N, N, N, N, N, N]),
    ("delete a deadboltEnabled value", Op::Value(Alice, "delete", "deadboltEnabled", ENABLED), [Y, N, N, N, N, N, N, N]),
    ("add pwdAccountLockedTime", Op::Value(Alice, "add", "pwdAccountLockedTime", LOCKED), [Y, N, N, Y, Y, N, N, N]),
    ("delete pwdAccountLockedTime", Op::Value(Alice, "delete", "pwdAccountLockedTime", LOCKED), [Y, Y, N, N, N, N, N, N]),
    ("add objectClass deadboltAccount", Op::Value(Alice, "add", "objectClass", "deadboltAccount"), [Y, Y, N, N, N, N, N, N]),
    ("add objectClass extensibleObject", Op::Value(Alice, "add", "objectClass", "extensibleObject"), [N, N, N, N, N, N, N, N]),
    ("read deadboltReactivated", Op::Read(Alice, "deadboltReactivated"), [Y, Y, N, Y, Y, Y, N, N]),
    ("read A's record", Op::Read(RecordA, "deadboltFailure"), [Y, Y, N, Y, Y, Y, N, N]),
    ("replace userPassword", Op::ReplacePassword, [Y, Y, N, N, N, Y, N, N]),
    ("set the password (RFC 3062 password modify)", Op::PasswordModify, [Y, Y, N, N, N, Y, N, N]),
    ("add pwdReset TRUE", Op::Value(Alice, "add", "pwdReset", "TRUE"), [Y, Y, N, N, N, N, N, N]),
    ("delete pwdReset", Op::Value(Alice, "delete", "pwdReset", "TRUE"), [Y, Y, N, N, N, N, N, N]),
];

/// The LDAP result code strongerAuthRequired.
const STRONGER_AUTH_REQUIRED: i32 = 8;

const REACTIVATED: &str = "20260101000000.000000Z";
const DISABLED: &str = "20260102000000.000000Z";
const ENABLED: &str = "20260103000000.000000Z";
const FAILURE: &str = "20260104000000.000000Z 1000 sshd 192.0.2.1";
const NEW_FAILURE: &str = "20261202120000.000000Z 4242 sshd 192.0.2.7";
const LOGIN: &str = "20260105000000.000000Z";
const FORMER: &str = "20260106000000.000000Z $argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";
const NEW_FORMER: &str = "20261202150000.000000Z $argon2id$v=19$m=64,t=1,p=1$bmV3c2FsdA$bmV3aGFzaA";
const LOCKED: &str = "000001010000Z";
const NEW_TIME: &str = "20261202140000.000000Z";
/// Extra lines of a host record that tries to become a bind identity.
const PLANTED: &str = "objectClass: extensibleObject\nuserPassword: {CRYPT}x\n";

struct Identity {
    dn: String,
    password: String,
}

struct World {
    dir: Directory,
    alice: String,
    alice_password_hash: String,
    record_a: String,
    record_b: String,
    identities: Vec<Identity>,
}

/// Which entry an operation is about.
#[derive(Clone, Copy)]
enum Target {
    Alice,
    RecordA,
}
use Target::{Alice, RecordA};

/// One row's operation.
#[derive(Clone, Copy)]
enum Op {
    /// A modify of one value: the target, `add` or `delete`, the attribute
    /// and the value.
    Value(Target, &'static str, &'static str, &'static str),
    /// Adding host A's record under alice, with these extra LDIF lines.
    CreateRecordA(&'static str),
    DeleteRecordA,
    /// Renaming host A's record to `deadboltHost=host-b` (B has none yet).
    RenameRecordAToB,
    /// Reading one attribute of the target: allowed when the value comes back.
    Read(Target, &'static str),
    /// Replacing alice's userPassword.
    ReplacePassword,
    /// Setting alice's password with the password-modify operation
    /// (`ldappasswd`), without her old one.
    PasswordModify,
}

impl Op {
    /// The state the operation must start from.
    fn prep(self) -> Prep {
        match self {
            Op::Value(Alice, "delete", "pwdAccountLockedTime", _) => Prep::Locked,
            Op::Value(Alice, "delete", "pwdReset", _) => Prep::Reset,
            Op::Value(Alice, "add", "objectClass", "deadboltAccount") => Prep::NoAccountClass,
            Op::CreateRecordA(_) => Prep::NoRecordA,
            Op::RenameRecordAToB => Prep::NoRecordB,
            _ => Prep::Base,
        }
    }
}

/// The state a row starts from, on top of [`World::reset`].
#[derive(Clone, Copy)]
enum Prep {
    /// alice has deadboltAccount and one value of each of its attributes, no
    /// lock; host A's and host B's records exist, each with one failure and
    /// one login.
    Base,
    /// Base, and alice carries pwdAccountLockedTime.
    Locked,
    /// Base, and alice carries pwdReset: TRUE.
    Reset,
    /// Base without host A's record.
    NoRecordA,
    /// Base without host B's record.
    NoRecordB,
    /// alice without the deadboltAccount class (nor its attributes).
    NoAccountClass,
}

impl World {
    fn new() -> World {
        // Without the ppolicy overlay (its schema stays, from the module), so
        // that alice, locked for the row that deletes her lock, can still
        // bind and meet the ACL itself; with it, she could not bind at all.
        let dir = Directory::start_with(DirectoryOptions {
            ppolicy: false,
            ..DirectoryOptions::default()
        });
        let admin = dir.add_admin("adm", "pw-adm");
        let bob = dir.add_employee("bob", "pw-bob", None);
        let carol = dir.add_employee("carol", "pw-carol", None);
        let alice = dir.add_employee("alice", "pw-alice", Some(&bob));
        dir.add_employee("dave", "pw-dave", Some(&carol));
        let eve = dir.add_employee("eve", "pw-eve", None);
        let host_a = dir.add_host("host-a");
        let host_b = dir.add_host("host-b");
        let alice_password_hash = dir
            .entry(&alice, &["userPassword"])
            .and_then(|e| e.first("userPassword").map(str::to_owned))
            .expect("alice has a password");
        let record_a = dir.host_record_dn(&alice, "host-a");
        let record_b = dir.host_record_dn(&alice, "host-b");
        let person = |dn: &str, password: &str| Identity {
            dn: dn.to_owned(),
            password: password.to_owned(),
        };
        let identities = vec![
            person(&admin, "pw-adm"),
            person(&bob, "pw-bob"),
            person(&carol, "pw-carol"),
            person(&host_a.dn, &host_a.password),
            person(&host_b.dn, &host_b.password),
            person(&alice, "pw-alice"),
            person(&eve, "pw-eve"),
            person("", ""),
        ];
        World {
            dir,
            alice,
            alice_password_hash,
            record_a,
            record_b,
            identities,
        }
    }

    fn root_modify(&self, ldif: &str) {
        self.dir
            .modify(self.dir.admin_dn(), self.dir.admin_password(), ldif)
            .unwrap_or_else(|e| panic!("resetting the state failed: {e}\n{ldif}"));
    }

    /// Puts alice and the two records back as `prep` says, as the rootdn.
    fn reset(&self, prep: Prep) {
        let root = (self.dir.admin_dn(), self.dir.admin_password());
        for record in [&self.record_a, &self.record_b] {
            let deleted = self.dir.try_delete(root.0, root.1, record);
            // 32: noSuchObject, the row before deleted or renamed it.
            assert!(
                matches!(deleted.code, 0 | 32),
                "deleting {record}: {}",
                deleted.stderr
            );
        }
        let lock = match prep {
            Prep::Locked => format!("pwdAccountLockedTime: {LOCKED}\n"),
            _ => String::new(),
        };
        let reset = match prep {
            Prep::Reset => "pwdReset: TRUE\n",
            _ => "",
        };
        let ours = match prep {
            Prep::NoAccountClass => "objectClass: inetOrgPerson\nobjectClass: posixAccount\n\
                 -\nreplace: deadboltReactivated\n-\nreplace: deadboltDisabled\n-\n\
                 replace: deadboltEnabled\n"
                .to_owned(),
            _ => format!(
                "objectClass: inetOrgPerson\nobjectClass: posixAccount\nobjectClass: deadboltAccount\n\
                 -\nreplace: deadboltReactivated\ndeadboltReactivated: {REACTIVATED}\n\
                 -\nreplace: deadboltDisabled\ndeadboltDisabled: {DISABLED}\n\
                 -\nreplace: deadboltEnabled\ndeadboltEnabled: {ENABLED}\n"
            ),
        };
        self.root_modify(&format!(
            "dn: {}\nchangetype: modify\nreplace: objectClass\n{ours}-\n\
             replace: pwdAccountLockedTime\n{lock}-\nreplace: pwdReset\n{reset}-\n\
             replace: userPassword\nuserPassword: {}\n",
            self.alice, self.alice_password_hash
        ));
        for (record, host) in [(&self.record_a, "host-a"), (&self.record_b, "host-b")] {
            match (prep, host) {
                (Prep::NoRecordA, "host-a") | (Prep::NoRecordB, "host-b") => continue,
                _ => {}
            }
            self.dir
                .add(
                    root.0,
                    root.1,
                    &format!(
                        "dn: {record}\nobjectClass: deadboltHostRecord\ndeadboltHost: {host}\n\
                         deadboltFailure: {FAILURE}\ndeadboltLogin: {LOGIN}\n\
                         deadboltPassword: {FORMER}\n"
                    ),
                )
                .unwrap_or_else(|e| panic!("adding {record}: {e}"));
        }
    }

    fn dn(&self, target: Target) -> &str {
        match target {
            Alice => &self.alice,
            RecordA => &self.record_a,
        }
    }

    /// Runs `op` as `who`: `Ok(code)` for an update, `Err(entries)` for a read.
    fn act(&self, op: Op, who: &Identity) -> Result<i32, Result<Vec<Entry>, String>> {
        let (dn, pw) = (who.dn.as_str(), who.password.as_str());
        let ldif = match op {
            Op::Value(target, change, attr, value) => format!(
                "dn: {}\nchangetype: modify\n{change}: {attr}\n{attr}: {value}\n",
                self.dn(target)
            ),
            Op::ReplacePassword => format!(
                "dn: {}\nchangetype: modify\nreplace: userPassword\nuserPassword: {}\n",
                self.alice,
                hash_password("changed")
            ),
            Op::CreateRecordA(extra) => {
                let ldif = format!(
                    "dn: {}\nobjectClass: deadboltHostRecord\ndeadboltHost: host-a\n\
                     deadboltFailure: {NEW_FAILURE}\n{extra}",
                    self.record_a
                );
                return Ok(self.dir.try_add(dn, pw, &ldif).code);
            }
            Op::DeleteRecordA => return Ok(self.dir.try_delete(dn, pw, &self.record_a).code),
            Op::PasswordModify => {
                let done = self
                    .dir
                    .try_password_modify(dn, pw, &self.alice, "Changed-Lantern-58");
                return Ok(done.code);
            }
            Op::RenameRecordAToB => {
                let renamed =
                    self.dir
                        .try_rename(dn, pw, &self.record_a, "deadboltHost=host-b", None);
                return Ok(renamed.code);
            }
            Op::Read(target, attr) => {
                return Err(self.dir.search_as(
                    dn,
                    pw,
                    self.dn(target),
                    "base",
                    "(objectClass=*)",
                    &[attr],
                ))
            }
        };
        Ok(self.dir.try_modify(dn, pw, &ldif).code)
    }

    /// Whether the directory shows the effect of the update `op`.
    fn changed(&self, op: Op) -> bool {
        match op {
            Op::Value(target, "add", attr, value) => self.has(self.dn(target), attr, value),
            Op::Value(target, _, attr, value) => !self.has(self.dn(target), attr, value),
            Op::CreateRecordA(_) => self.exists(&self.record_a),
            Op::DeleteRecordA => !self.exists(&self.record_a),
            Op::RenameRecordAToB => self.exists(&self.record_b) && !self.exists(&self.record_a),
            Op::ReplacePassword | Op::PasswordModify => self
                .entry(&self.alice, "userPassword")
                .is_some_and(|e| e.first("userPassword") != Some(&self.alice_password_hash)),
            Op::Read(..) => false,
        }
    }

    fn entry(&self, dn: &str, attr: &str) -> Option<Entry> {
        self.dir.entry(dn, &[attr])
    }

    fn exists(&self, dn: &str) -> bool {
        self.entry(dn, "1.1").is_some()
    }

    fn has(&self, dn: &str, attr: &str, value: &str) -> bool {
        self.entry(dn, attr).is_some_and(|e| e.has(attr, value))
    }
}

/// What one cell showed: `Ok(allowed)`, or why it is neither a clean
/// success nor a clean refusal.
fn observe(w: &World, op: Op, who: &Identity) -> Result<bool, String> {
    match w.act(op, who) {
        Ok(0) if w.changed(op) => Ok(true),
        Ok(0) => Err("succeeded but changed nothing".to_owned()),
        Ok(INSUFFICIENT_ACCESS) if !w.changed(op) => Ok(false),
        // slapd turns every anonymous update away before the ACL is read.
        Ok(STRONGER_AUTH_REQUIRED) if who.dn.is_empty() && !w.changed(op) => Ok(false),
        Ok(INSUFFICIENT_ACCESS | STRONGER_AUTH_REQUIRED) => {
            Err("refused, yet the change is there".to_owned())
        }
        Ok(code) => Err(format!("LDAP result {code}")),
        // A refused read: the entry hidden (no such object) or the
        // attribute left out of it.
        Err(Ok(entries)) => Ok(entries.iter().any(|e| !e.attrs.is_empty())),
        Err(Err(e)) => Err(format!("search failed: {e}")),
    }
}

/// The table as markdown, as docs/directory.md carries it.
fn render<'a>(rows: impl IntoIterator<Item = (&'a str, [bool; 8])>) -> String {
    let mut out = String::from("| operation on alice (manager: bob) |");
    for who in IDENTITIES {
        write!(out, " {who} |").expect("write to a String");
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(IDENTITIES.len()));
    out.push('\n');
    for (name, cells) in rows {
        write!(out, "| {name} |").expect("write to a String");
        for allowed in cells {
            out.push_str(if allowed { " yes |" } else { " no |" });
        }
        out.push('\n');
    }
    out
}

/// The table's names and answers, without the operations.
fn expected() -> impl Iterator<Item = (&'static str, [bool; 8])> {
    TABLE.iter().map(|(name, _, cells)| (*name, *cells))
}

#[test]
fn the_example_acl_answers_as_the_table_says() {
    let w = World::new();
    let mut seen = Vec::new();
    let mut wrong = Vec::new();
    for (name, op, expected) in TABLE {
        let mut row = [false; 8];
        for (i, who) in w.identities.iter().enumerate() {
            w.reset(op.prep());
            match observe(&w, *op, who) {
                Ok(allowed) => {
                    row[i] = allowed;
                    if allowed != expected[i] {
                        wrong.push(format!(
                            "{name} as {}: {} (the table says {})",
                            IDENTITIES[i],
                            if allowed { "allowed" } else { "refused" },
                            if expected[i] { "allowed" } else { "refused" }
                        ));
                    }
                }
                Err(why) => wrong.push(format!("{name} as {}: {why}", IDENTITIES[i])),
            }
        }
        seen.push((*name, row));
    }
    println!("{}", render(seen));
    assert!(
        wrong.is_empty(),
        "the ACL disagrees with the table:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_documented_table_is_the_tested_one() {
    let doc = std::fs::read_to_string(deadbolt_tests::workspace_dir().join("docs/directory.md"))
        .expect("read docs/directory.md");
    let table = render(expected());
    assert!(
        doc.contains(&table),
        "docs/directory.md must carry this table, as it is:\n{table}"
    );
}
