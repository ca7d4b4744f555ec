//! Setting an employee's password as a person, with his own identity: an
//! administrator for anyone, a manager for his reports, nobody for himself
//! (he changes his own with the old one, through PAM). The directory's ACL
//! decides, and the directory hashes the password: it goes there with the
//! RFC 3062 password-modify operation, never as a value we wrote.
//!
//! The password is then marked as reset (`pwdReset: TRUE`), so the next
//! login on every host must change it. With ppolicy's `pwdMustChange: TRUE`
//! slapd marks it itself; otherwise the person sets it, as the ACL lets
//! him.
//!
//! One [`Session`] is one bind, kept for a whole batch.

use super::{connect, AdminError, Person};
use deadbolt_config::DirectorySettings;
use ldap3::exop::{PasswordModify, WhoAmI, WhoAmIResp};
use ldap3::{Ldap, Mod, Scope, SearchEntry};
use std::collections::{BTreeMap, HashSet};
use tokio::runtime::Runtime;

/// The LDAP result code insufficientAccess.
const INSUFFICIENT_ACCESS: u32 = 50;
/// sizeLimitExceeded.
const SIZE_LIMIT_EXCEEDED: u32 = 4;

/// An employee's entry, as a reset and a welcome kit need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Employee {
    pub dn: String,
    /// The login name (the value of `user_attribute`).
    pub user: String,
    /// `displayName`, else `cn`, else the login name.
    pub name: String,
    /// The first `mail` value, as the directory holds it: not yet checked.
    pub mail: Option<String>,
}

/// Whom a batch is for.
#[derive(Clone, Copy, Debug)]
pub enum Selection<'a> {
    /// These login names.
    Users(&'a [String]),
    /// The members of a group: its DN, or the `cn` of a groupOfNames,
    /// groupOfUniqueNames or posixGroup.
    Group(&'a str),
    /// The employees an LDAP filter matches, under the base DN.
    Filter(&'a str),
    /// Every employee under the base DN.
    Everyone,
}

/// The employees found, and the names given that no entry has.
#[derive(Debug, Default)]
pub struct Selected {
    pub employees: Vec<Employee>,
    pub unknown: Vec<String>,
}

/// A person bound to one server.
pub struct Session {
    runtime: Runtime,
    ldap: Ldap,
    directory: DirectorySettings,
    person: String,
    /// Who the directory says we are (Who Am I), normalised.
    bound_dn: Option<String>,
    server: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Session {{ person: {:?}, server: {:?} }}",
            self.person, self.server
        )
    }
}

impl Session {
    /// Binds as `person`, trying each server in turn.
    pub fn open(directory: &DirectorySettings, person: &Person) -> Result<Session, AdminError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| AdminError::Other(format!("cannot start: {e}")))?;
        let external = matches!(person, Person::External);
        let (ldap, server) = runtime.block_on(async {
            let mut last = AdminError::Unreachable("no uri is configured".into());
            for uri in &directory.uris {
                if external && !uri.text.starts_with("ldapi://") {
                    continue;
                }
                match connect(directory, &uri.text, person).await {
                    Ok(ldap) => return Ok((ldap, uri.text.clone())),
                    Err(e @ AdminError::BadCredentials(_)) => return Err(e),
                    Err(e) => last = e,
                }
            }
            if external
                && !directory
                    .uris
                    .iter()
                    .any(|u| u.text.starts_with("ldapi://"))
            {
                last = AdminError::Other(
                    "SASL EXTERNAL needs an ldapi:// uri in [directory]".to_owned(),
                );
            }
            Err(last)
        })?;
        let mut session = Session {
            runtime,
            ldap,
            directory: directory.clone(),
            person: person.name(),
            bound_dn: None,
            server,
        };
        // Who Am I names the identity the directory gave us; a server that
        // does not answer it still bound the DN we gave.
        session.bound_dn = session.who_am_i().or(match person {
            Person::Password { dn, .. } => Some(normalise_dn(dn)),
            Person::External | Person::Gssapi { .. } => None,
        });
        Ok(session)
    }

    /// The server bound to.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// How the person is named in messages.
    pub fn person(&self) -> &str {
        &self.person
    }

    fn who_am_i(&mut self) -> Option<String> {
        let ldap = &mut self.ldap;
        self.runtime.block_on(async {
            let (exop, _) = ldap.extended(WhoAmI).await.ok()?.success().ok()?;
            let authzid = exop.parse::<WhoAmIResp>().authzid;
            authzid.strip_prefix("dn:").map(normalise_dn)
        })
    }

    /// The employee whose `user_attribute` is `user`.
    pub fn find(&mut self, user: &str) -> Result<Employee, AdminError> {
        let filter = format!(
            "({}={})",
            self.directory.user_attribute,
            ldap3::ldap_escape(user)
        );
        let base = self.directory.base_dn.clone();
        let mut found = self.search(&base, Scope::Subtree, &filter)?;
        match found.len() {
            0 => Err(AdminError::NoSuchUser(user.to_owned())),
            1 => Ok(found.remove(0)),
            _ => Err(AdminError::Other(format!(
                "more than one employee entry has {}={user}: fix the directory first",
                self.directory.user_attribute
            ))),
        }
    }

    /// The employees `selection` names, sorted by login name, each once.
    pub fn select(&mut self, selection: Selection) -> Result<Selected, AdminError> {
        let base = self.directory.base_dn.clone();
        let attr = self.directory.user_attribute.clone();
        let mut selected = Selected::default();
        match selection {
            Selection::Users(users) => {
                for user in users {
                    match self.find(user) {
                        Ok(employee) => selected.employees.push(employee),
                        Err(AdminError::NoSuchUser(name)) => selected.unknown.push(name),
                        Err(e) => return Err(e),
                    }
                }
            }
            Selection::Everyone => {
                selected.employees = self.search(&base, Scope::Subtree, &format!("({attr}=*)"))?;
            }
            Selection::Filter(filter) => {
                // Whole and parenthesised: it is put inside an AND of ours,
                // where a bare "uid=*" or a dangling ")(" would change the
                // meaning of the rest.
                let enclosed = filter.starts_with('(') && filter.ends_with(')');
                ldap3::parse_filter(filter)
                    .ok()
                    .filter(|_| enclosed)
                    .ok_or(())
                    .map_err(|()| {
                        AdminError::Other(
                            "--filter is not an LDAP filter (RFC 4515): write e.g. \
                         \"(departmentNumber=42)\", with its parentheses"
                                .to_owned(),
                        )
                    })?;
                let filter = format!("(&({attr}=*){filter})");
                selected.employees = self.search(&base, Scope::Subtree, &filter)?;
            }
            Selection::Group(group) => selected = self.members(group)?,
        }
        let mut seen = HashSet::new();
        selected
            .employees
            .retain(|e| seen.insert(normalise_dn(&e.dn)));
        selected.employees.sort_by(|a, b| a.user.cmp(&b.user));
        Ok(selected)
    }

    fn members(&mut self, group: &str) -> Result<Selected, AdminError> {
        let attrs = vec!["member", "uniqueMember", "memberUid"];
        let entry = if group.contains('=') {
            let ldap = &mut self.ldap;
            let found = self.runtime.block_on(async {
                ldap.search(group, Scope::Base, "(objectClass=*)", attrs)
                    .await
                    .map_err(|e| AdminError::Unreachable(e.to_string()))
            })?;
            if found.1.rc == 32 {
                return Err(AdminError::Other(format!("no group entry {group}")));
            }
            found.0.into_iter().next().map(SearchEntry::construct)
        } else {
            let root = self.naming_context();
            let filter = format!(
                "(&(cn={})(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)\
                 (objectClass=posixGroup)))",
                ldap3::ldap_escape(group)
            );
            let ldap = &mut self.ldap;
            let found = self.runtime.block_on(async {
                ldap.search(&root, Scope::Subtree, &filter, attrs)
                    .await
                    .map_err(|e| AdminError::Unreachable(e.to_string()))?
                    .success()
                    .map_err(|e| AdminError::Other(e.to_string()))
            })?;
            if found.0.len() > 1 {
                return Err(AdminError::Other(format!(
                    "more than one group under {root} is named {group}: give its DN"
                )));
            }
            found.0.into_iter().next().map(SearchEntry::construct)
        };
        let Some(entry) = entry else {
            return Err(AdminError::Other(format!("no group named {group}")));
        };
        let values = |name: &str| -> Vec<String> {
            entry
                .attrs
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .flat_map(|(_, v)| v.iter().cloned())
                .collect()
        };
        let mut selected = Selected::default();
        let base = normalise_dn(&self.directory.base_dn);
        let attr = self.directory.user_attribute.clone();
        for dn in values("member").into_iter().chain(values("uniqueMember")) {
            // Members outside the employees' base (the rootdn, a host) are
            // nobody a kit is for.
            if !normalise_dn(&dn).ends_with(&base) {
                continue;
            }
            selected
                .employees
                .extend(self.search(&dn, Scope::Base, &format!("({attr}=*)"))?);
        }
        let uids = values("memberUid");
        let found = self.select(Selection::Users(&uids))?;
        selected.employees.extend(found.employees);
        selected.unknown.extend(found.unknown);
        Ok(selected)
    }

    /// The naming context that holds the base DN, where groups are looked
    /// for; the base DN itself when the root DSE does not say.
    fn naming_context(&mut self) -> String {
        let base = self.directory.base_dn.clone();
        let ldap = &mut self.ldap;
        let contexts: Vec<String> = self.runtime.block_on(async {
            let Ok(Ok((entries, _))) = ldap
                .search("", Scope::Base, "(objectClass=*)", vec!["namingContexts"])
                .await
                .map(|r| r.success())
            else {
                return Vec::new();
            };
            entries
                .into_iter()
                .map(SearchEntry::construct)
                .flat_map(|e| e.attrs.into_values().flatten())
                .collect()
        });
        let wanted = normalise_dn(&base);
        contexts
            .into_iter()
            .find(|c| wanted.ends_with(&normalise_dn(c)))
            .unwrap_or(base)
    }

    fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
    ) -> Result<Vec<Employee>, AdminError> {
        let attr = self.directory.user_attribute.clone();
        let attrs = vec![attr.as_str(), "mail", "cn", "displayName"];
        let ldap = &mut self.ldap;
        let result = self.runtime.block_on(async {
            ldap.search(base, scope, filter, attrs)
                .await
                .map_err(|e| AdminError::Unreachable(e.to_string()))
        })?;
        match result.1.rc {
            0 => {}
            // A member's entry that is gone.
            32 if scope == Scope::Base => return Ok(Vec::new()),
            SIZE_LIMIT_EXCEEDED => {
                return Err(AdminError::Other(format!(
                    "the directory stopped the search at its size limit (sizeLimitExceeded): \
                     let {} read more entries (olcLimits), or select fewer",
                    self.person
                )))
            }
            rc => {
                return Err(AdminError::Other(format!(
                    "the search failed (rc={rc} {})",
                    result.1.text
                )))
            }
        }
        Ok(result
            .0
            .into_iter()
            .map(SearchEntry::construct)
            .filter_map(|entry| employee_of(entry, &attr))
            .collect())
    }

    /// Sets `employee`'s password to `password` and marks it reset, so that
    /// his next login must change it. Refused for the person's own entry.
    pub fn set_password(&mut self, employee: &Employee, password: &str) -> Result<(), AdminError> {
        self.replace_password(employee, password)?;
        self.mark_reset(employee)
    }

    /// The first half of [`Session::set_password`]: the password set, not
    /// yet marked reset. Nothing is changed when it fails.
    pub fn replace_password(
        &mut self,
        employee: &Employee,
        password: &str,
    ) -> Result<(), AdminError> {
        let Some(me) = &self.bound_dn else {
            return Err(AdminError::Other(
                "the directory did not say whom SASL EXTERNAL made you (Who Am I), so it cannot \
                 be told that you are not resetting your own password: nothing was changed"
                    .to_owned(),
            ));
        };
        if *me == normalise_dn(&employee.dn) {
            return Err(AdminError::Other(format!(
                "{} is your own entry: an employee does not reset his own password; he \
                 changes it with passwd, which asks for the old one (an administrator or his \
                 manager resets it)",
                employee.user
            )));
        }
        let not_allowed = || AdminError::NotAllowed {
            person: self.person.clone(),
            action: "set the password of",
            user: employee.user.clone(),
        };
        let ldap = &mut self.ldap;
        let dn = employee.dn.as_str();
        let done = self.runtime.block_on(async {
            ldap.extended(PasswordModify {
                user_id: Some(dn),
                old_pass: None,
                new_pass: Some(password),
            })
            .await
            .map_err(|e| AdminError::Unreachable(e.to_string()))
        })?;
        match done.1.rc {
            0 => {}
            INSUFFICIENT_ACCESS => return Err(not_allowed()),
            rc => {
                return Err(AdminError::Other(format!(
                    "the directory refused the new password of {} (rc={rc} {})",
                    employee.user, done.1.text
                )))
            }
        }
        Ok(())
    }

    /// Ensures `pwdReset: TRUE`: slapd's ppolicy sets it itself with
    /// `pwdMustChange: TRUE`; otherwise the person writes it. The error
    /// says that the password was set all the same.
    pub fn mark_reset(&mut self, employee: &Employee) -> Result<(), AdminError> {
        let ldap = &mut self.ldap;
        let dn = employee.dn.as_str();
        let marked = self.runtime.block_on(async {
            let found = ldap
                .search(dn, Scope::Base, "(objectClass=*)", vec!["pwdReset"])
                .await
                .ok()?
                .success()
                .ok()?;
            let entry = found.0.into_iter().next().map(SearchEntry::construct)?;
            Some(
                entry
                    .attrs
                    .get("pwdReset")
                    .is_some_and(|v| v.iter().any(|x| x == "TRUE")),
            )
        });
        if marked == Some(true) {
            return Ok(());
        }
        let mods = vec![Mod::Replace(
            "pwdReset".to_owned(),
            HashSet::from(["TRUE".to_owned()]),
        )];
        let done = self.runtime.block_on(async {
            ldap.modify(dn, mods)
                .await
                .map_err(|e| AdminError::Unreachable(e.to_string()))
        });
        match done {
            Ok(result) if result.rc == 0 => Ok(()),
            Ok(result) => Err(AdminError::Other(format!(
                "the password of {} was set, but the directory refused to mark it reset \
                 (pwdReset: rc={} {}): he will not be made to change it; set pwdReset: TRUE \
                 on his entry as an administrator",
                employee.user, result.rc, result.text
            ))),
            Err(e) => Err(AdminError::Other(format!(
                "the password of {} was set, but marking it reset failed ({e}): set pwdReset: \
                 TRUE on his entry as an administrator",
                employee.user
            ))),
        }
    }
}

impl Session {
    /// Sets the employee's departure date (`shadowExpire`, days since
    /// 1970-01-01, adding the `shadowAccount` class it needs), or removes
    /// it with `None`. Every host refuses the account from that day.
    pub fn set_departure(
        &mut self,
        employee: &Employee,
        day: Option<i64>,
    ) -> Result<(), AdminError> {
        let ldap = &mut self.ldap;
        let dn = employee.dn.as_str();
        // Nothing already there is written again, and a replace (with no
        // value, to remove) is no error whether or not the date is set: a
        // no-op write would still be logged under delta-syncrepl, and its
        // replay would fail on the other provider.
        let done = self.runtime.block_on(async {
            let mut mods = Vec::new();
            if let Some(day) = day {
                let (found, _) = ldap
                    .search(dn, Scope::Base, "(objectClass=shadowAccount)", vec!["1.1"])
                    .await
                    .map_err(|e| AdminError::Unreachable(e.to_string()))?
                    .success()
                    .map_err(|e| AdminError::Other(e.to_string()))?;
                if found.is_empty() {
                    mods.push(Mod::Add(
                        "objectClass".to_owned(),
                        HashSet::from(["shadowAccount".to_owned()]),
                    ));
                }
                mods.push(Mod::Replace(
                    "shadowExpire".to_owned(),
                    HashSet::from([day.to_string()]),
                ));
            } else {
                mods.push(Mod::Replace("shadowExpire".to_owned(), HashSet::new()));
            }
            ldap.modify(dn, mods)
                .await
                .map_err(|e| AdminError::Unreachable(e.to_string()))
        })?;
        match done.rc {
            0 => Ok(()),
            50 => Err(AdminError::NotAllowed {
                person: self.person.clone(),
                action: "set the departure date of",
                user: employee.user.clone(),
            }),
            rc => Err(AdminError::Other(format!(
                "the directory refused the departure date (rc={rc} {})",
                done.text
            ))),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let ldap = &mut self.ldap;
        let _ = self.runtime.block_on(async { ldap.unbind().await });
    }
}

fn employee_of(entry: SearchEntry, user_attribute: &str) -> Option<Employee> {
    let attrs: BTreeMap<String, Vec<String>> = entry
        .attrs
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let first = |name: &str| attrs.get(name).and_then(|v| v.first()).cloned();
    let user = first(&user_attribute.to_ascii_lowercase())?;
    let name = first("displayname")
        .or_else(|| first("cn"))
        .unwrap_or_else(|| user.clone());
    Some(Employee {
        dn: entry.dn,
        user,
        name,
        mail: first("mail"),
    })
}

/// A DN compared loosely: lower case, no spaces around `,` and `=`.
/// Enough to recognise one's own entry; the directory's ACL decides the rest.
fn normalise_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| {
            rdn.split('=')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("=")
                .to_lowercase()
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_differing_in_case_and_spaces_are_the_same_entry() {
        assert_eq!(
            normalise_dn("uid=Boss, ou=People,dc=example, dc=com"),
            normalise_dn("UID=boss,ou=people,DC=example,dc=com")
        );
        assert_ne!(
            normalise_dn("uid=boss,ou=people,dc=example,dc=com"),
            normalise_dn("uid=bossy,ou=people,dc=example,dc=com")
        );
    }

    #[test]
    fn an_entry_without_the_login_attribute_is_no_employee() {
        let entry = SearchEntry {
            dn: "cn=x,dc=example,dc=com".into(),
            attrs: [("cn".to_owned(), vec!["x".to_owned()])].into(),
            bin_attrs: Default::default(),
        };
        assert_eq!(employee_of(entry, "uid"), None);
        let entry = SearchEntry {
            dn: "uid=a,dc=example,dc=com".into(),
            attrs: [
                ("UID".to_owned(), vec!["a".to_owned()]),
                ("cn".to_owned(), vec!["Alice A".to_owned()]),
                ("mail".to_owned(), vec!["a@example.com".to_owned()]),
            ]
            .into(),
            bin_attrs: Default::default(),
        };
        let employee = employee_of(entry, "uid").unwrap();
        assert_eq!(employee.name, "Alice A");
        assert_eq!(employee.mail.as_deref(), Some("a@example.com"));
    }
}
