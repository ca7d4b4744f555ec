//! The daemon's picture of the directory: the employee entries and host
//! records the sync stream has shown, by DN and by user.
//!
//! It is a cache, rebuilt from the stream: after a restart that resumes
//! from a cookie it holds only what changed, and the daemon fetches what
//! else it needs when it needs it.

use crate::model::{HostRecord, UserEntry};
use deadbolt_core::UserName;
use std::collections::{BTreeMap, HashMap};

/// The object class of a host's record under an employee entry.
pub const RECORD_CLASS: &str = "deadboltHostRecord";
/// The auxiliary class an employee entry gains on the first write.
pub const ACCOUNT_CLASS: &str = "deadboltAccount";

/// The attributes the sync search asks for: the user attribute is added.
pub const SYNC_ATTRIBUTES: &[&str] = &[
    "objectClass",
    "deadboltHost",
    "deadboltFailure",
    "deadboltLogin",
    "deadboltPassword",
    "deadboltReactivated",
    "deadboltDisabled",
    "deadboltEnabled",
    "pwdAccountLockedTime",
    "pwdReset",
    "pwdChangedTime",
    "pwdEndTime",
    "shadowExpire",
    "entryCSN",
    "entryUUID",
];

/// An entry as the stream delivers it, attribute names lower-cased.
#[derive(Clone, Debug, Default)]
pub struct RawEntry {
    pub dn: String,
    pub attrs: HashMap<String, Vec<String>>,
}

impl RawEntry {
    pub fn values(&self, name: &str) -> &[String] {
        self.attrs
            .get(&name.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    pub fn first(&self, name: &str) -> Option<&str> {
        self.values(name).first().map(String::as_str)
    }

    fn has_class(&self, class: &str) -> bool {
        self.values("objectClass")
            .iter()
            .any(|c| c.eq_ignore_ascii_case(class))
    }
}

/// What an entry of the stream turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// An employee entry or a record under one: the user to merge again.
    User(UserName),
    /// Not ours to use: why, for the log (never a value).
    Ignored(String),
}

#[derive(Debug, Default)]
pub struct View {
    users: HashMap<UserName, UserEntry>,
    dn_user: HashMap<String, UserName>,
    records: HashMap<UserName, BTreeMap<String, HostRecord>>,
    uuid_dn: HashMap<Vec<u8>, String>,
}

/// The parent of `dn`: what follows its first comma not escaped.
pub fn parent_dn(dn: &str) -> Option<&str> {
    let bytes = dn.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b',' => return Some(&dn[i + 1..]),
            _ => i += 1,
        }
    }
    None
}

/// DNs compare without regard to case here: the server returns each in one
/// form, and our own attribute names and the users' RDNs are case-blind.
fn key(dn: &str) -> String {
    dn.to_ascii_lowercase()
}

impl View {
    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub fn entry(&self, user: &UserName) -> Option<&UserEntry> {
        self.users.get(user)
    }

    pub fn records(&self, user: &UserName) -> Option<&BTreeMap<String, HostRecord>> {
        self.records.get(user)
    }

    pub fn set_record(&mut self, user: &UserName, record: HostRecord) {
        self.records
            .entry(user.clone())
            .or_default()
            .insert(record.host.to_ascii_lowercase(), record);
    }

    /// Forgets `user`'s host records, before a fresh read of them.
    pub fn forget_records(&mut self, user: &UserName) {
        self.records.remove(user);
    }

    pub fn entry_mut(&mut self, user: &UserName) -> Option<&mut UserEntry> {
        self.users.get_mut(user)
    }

    /// Takes in an entry added, changed or present in the stream.
    pub fn upsert(
        &mut self,
        entry: &RawEntry,
        uuid: Option<Vec<u8>>,
        user_attribute: &str,
        changed_at: Option<deadbolt_core::Timestamp>,
    ) -> Seen {
        if let Some(uuid) = uuid {
            self.uuid_dn.insert(uuid, entry.dn.clone());
        }
        if entry.has_class(RECORD_CLASS) {
            let Some(host) = entry.first("deadboltHost") else {
                return Seen::Ignored("a host record without deadboltHost".into());
            };
            let Some(user) = parent_dn(&entry.dn).and_then(|p| self.dn_user.get(&key(p))) else {
                return Seen::Ignored("a host record whose employee entry is not known".into());
            };
            let user = user.clone();
            let record = HostRecord {
                host: host.to_owned(),
                failures: entry.values("deadboltFailure").iter().cloned().collect(),
                logins: entry.values("deadboltLogin").iter().cloned().collect(),
                passwords: entry.values("deadboltPassword").iter().cloned().collect(),
                changed_at,
            };
            self.set_record(&user, record);
            return Seen::User(user);
        }
        let Some(name) = entry.first(user_attribute) else {
            return Seen::Ignored(format!("an entry without {user_attribute}"));
        };
        if entry.values(user_attribute).len() > 1 {
            return Seen::Ignored(format!("an entry with more than one {user_attribute}"));
        }
        let Some(user) = crate::model::user_of(name) else {
            return Seen::Ignored(format!(
                "an entry whose {user_attribute} is not a valid user name"
            ));
        };
        if let Some(other) = self.users.get(&user) {
            if key(&other.dn) != key(&entry.dn) {
                return Seen::Ignored(format!(
                    "a second entry with the same {user_attribute}; the first one is used"
                ));
            }
        }
        let set = |name: &str| entry.values(name).iter().cloned().collect();
        let parsed = UserEntry {
            dn: entry.dn.clone(),
            reactivated: set("deadboltReactivated"),
            disabled: set("deadboltDisabled"),
            enabled: set("deadboltEnabled"),
            locked_time: entry.first("pwdAccountLockedTime").map(str::to_owned),
            pwd_reset: entry
                .first("pwdReset")
                .is_some_and(|v| v.eq_ignore_ascii_case("TRUE")),
            pwd_changed: entry.first("pwdChangedTime").map(str::to_owned),
            shadow_expire: entry.first("shadowExpire").map(str::to_owned),
            pwd_end: entry.first("pwdEndTime").map(str::to_owned),
            changed_at,
        };
        self.dn_user.insert(key(&entry.dn), user.clone());
        self.users.insert(user.clone(), parsed);
        Seen::User(user)
    }

    /// Forgets the entry the stream says was deleted.
    pub fn delete(&mut self, uuid: &[u8]) -> Option<UserName> {
        let dn = self.uuid_dn.remove(uuid)?;
        if let Some(user) = self.dn_user.remove(&key(&dn)) {
            self.users.remove(&user);
            self.records.remove(&user);
            return Some(user);
        }
        let user = parent_dn(&dn)
            .and_then(|p| self.dn_user.get(&key(p)))?
            .clone();
        let host = dn
            .split_once(',')
            .and_then(|(rdn, _)| rdn.split_once('='))
            .map(|(_, v)| v.to_ascii_lowercase())?;
        if let Some(records) = self.records.get_mut(&user) {
            records.remove(&host);
        }
        Some(user)
    }

    /// Every user the view knows.
    pub fn users(&self) -> impl Iterator<Item = &UserName> {
        self.users.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(dn: &str, attrs: &[(&str, &[&str])]) -> RawEntry {
        RawEntry {
            dn: dn.into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_ascii_lowercase(),
                        v.iter().map(|s| s.to_string()).collect(),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn parents_respect_escaped_commas() {
        assert_eq!(
            parent_dn(r"deadboltHost=a,uid=x\,y,ou=people"),
            Some(r"uid=x\,y,ou=people")
        );
        assert_eq!(parent_dn(r"uid=x\,y"), None);
    }

    #[test]
    fn records_attach_to_their_employee_and_deletions_are_forgotten() {
        let mut view = View::default();
        let alice = raw(
            "uid=alice,ou=people,dc=x",
            &[("uid", &["alice"]), ("objectClass", &["inetOrgPerson"])],
        );
        assert!(matches!(
            view.upsert(&alice, Some(vec![1]), "uid", None),
            Seen::User(_)
        ));
        let rec = raw(
            "deadboltHost=web1,uid=alice,ou=people,dc=x",
            &[
                ("objectClass", &["deadboltHostRecord"]),
                ("deadboltHost", &["web1"]),
                ("deadboltFailure", &["f"]),
            ],
        );
        let user = UserName::parse("alice").unwrap();
        assert_eq!(
            view.upsert(&rec, Some(vec![2]), "uid", None),
            Seen::User(user.clone())
        );
        assert_eq!(view.records(&user).unwrap()["web1"].failures.len(), 1);
        assert_eq!(view.delete(&[2]), Some(user.clone()));
        assert!(view.records(&user).unwrap().is_empty());
        let orphan = raw(
            "deadboltHost=web1,uid=bob,ou=people,dc=x",
            &[
                ("objectClass", &["deadboltHostRecord"]),
                ("deadboltHost", &["web1"]),
            ],
        );
        assert!(matches!(
            view.upsert(&orphan, None, "uid", None),
            Seen::Ignored(_)
        ));
        let bad = raw("uid=..,ou=people,dc=x", &[("uid", &["../etc"])]);
        assert!(matches!(
            view.upsert(&bad, None, "uid", None),
            Seen::Ignored(_)
        ));
        let twice = raw("uid=alice,ou=other,dc=x", &[("uid", &["alice"])]);
        assert!(matches!(
            view.upsert(&twice, None, "uid", None),
            Seen::Ignored(_)
        ));
    }
}
