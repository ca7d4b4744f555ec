//! What a person does to an account through the directory, with his own
//! identity (design principle 8): reactivate, disable, enable. The
//! directory's ACL decides; a host's root is not asked.
//!
//! Used by `deadboltctl`, which has no runtime of its own: each call runs
//! on a small runtime of its own and returns when the directory answered.

use crate::encoding;
use crate::view::ACCOUNT_CLASS;
use deadbolt_config::{DirectorySettings, LdapUri, Scheme};
use deadbolt_core::Timestamp;
use ldap3::result::LdapError;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry};
use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;
use zeroize::Zeroizing;

mod credentials;
pub use credentials::{Employee, Selected, Selection, Session};

/// What a person asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Reactivate,
    Disable,
    Enable,
}

impl Action {
    fn attribute(self) -> &'static str {
        match self {
            Action::Reactivate => "deadboltReactivated",
            Action::Disable => "deadboltDisabled",
            Action::Enable => "deadboltEnabled",
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            Action::Reactivate => "reactivate",
            Action::Disable => "disable",
            Action::Enable => "enable",
        }
    }
}

/// The person's own directory identity. The password is wiped when
/// dropped and never printed.
pub enum Person {
    /// A simple bind as `dn`.
    Password {
        dn: String,
        password: Zeroizing<String>,
    },
    /// SASL EXTERNAL over ldapi://: the directory maps the caller's uid
    /// (olcAuthzRegexp) to his own entry.
    External,
    /// SASL GSSAPI with the caller's own Kerberos ticket (kinit): the
    /// directory maps his principal (olcAuthzRegexp) to his own entry.
    /// `identity` is what the directory answers to "Who am I?" once bound.
    Gssapi { identity: OnceLock<String> },
}

impl Person {
    /// A person known by his Kerberos ticket, not yet bound.
    pub fn gssapi() -> Person {
        Person::Gssapi {
            identity: OnceLock::new(),
        }
    }

    /// How the person is named in messages: for GSSAPI, the identity the
    /// directory answered "Who am I?" with, once it has.
    pub fn name(&self) -> String {
        match self {
            Person::Password { dn, .. } => dn.clone(),
            Person::External => "the identity SASL EXTERNAL maps you to".to_owned(),
            Person::Gssapi { identity } => identity
                .get()
                .cloned()
                .unwrap_or_else(|| "the identity your Kerberos ticket maps to".to_owned()),
        }
    }
}

impl fmt::Debug for Person {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Person::Password { dn, .. } => write!(f, "Person {{ dn: {dn:?}, password: <hidden> }}"),
            Person::External => f.write_str("Person::External"),
            Person::Gssapi { identity } => write!(f, "Person::Gssapi {{ {:?} }}", identity.get()),
        }
    }
}

/// Why the directory did not do it.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminError {
    /// No server of `uri` could be reached.
    Unreachable(String),
    /// The person's DN or password was refused.
    BadCredentials(String),
    /// No employee entry names the user.
    NoSuchUser(String),
    /// The ACL does not let this person do it.
    NotAllowed {
        person: String,
        action: &'static str,
        user: String,
    },
    /// This host's clock is too far from the directory's: the hosts would
    /// ignore the change, so it was taken back.
    ClockSkew {
        skew: Duration,
    },
    Other(String),
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminError::Unreachable(why) => write!(f, "the directory cannot be reached: {why}"),
            AdminError::BadCredentials(dn) => {
                write!(f, "the directory refused the password of {dn}")
            }
            AdminError::NoSuchUser(user) => {
                write!(f, "no employee entry of the directory names {user}")
            }
            AdminError::NotAllowed {
                person,
                action,
                user,
            } => write!(
                f,
                "the directory does not let {person} {action} {user} (insufficient access): \
                 only administrators, and a manager for his own reports, may"
            ),
            AdminError::ClockSkew { skew } => write!(
                f,
                "this host's clock is {} away from the directory's, more than max_clock_skew: \
                 the change was taken back, since hosts would ignore it; fix the clock (NTP)",
                deadbolt_config::format_duration(*skew)
            ),
            AdminError::Other(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for AdminError {}

/// What was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acted {
    pub entry_dn: String,
    pub server: String,
    pub at: Timestamp,
    /// The directory's lock (`pwdAccountLockedTime`) was removed as well.
    pub lock_removed: bool,
}

/// Does `action` to `user` as `person`, trying each server in turn.
pub fn act(
    directory: &DirectorySettings,
    person: &Person,
    user: &str,
    action: Action,
    now: Timestamp,
) -> Result<Acted, AdminError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AdminError::Other(format!("cannot start: {e}")))?;
    runtime.block_on(async {
        let mut last = AdminError::Unreachable("no uri is configured".into());
        let external = matches!(person, Person::External);
        if external
            && !directory
                .uris
                .iter()
                .any(|u| u.text.starts_with("ldapi://"))
        {
            return Err(AdminError::Other(
                "SASL EXTERNAL needs an ldapi:// uri in [directory]".to_owned(),
            ));
        }
        for uri in &directory.uris {
            if external && !uri.text.starts_with("ldapi://") {
                continue;
            }
            match connect(directory, &uri.text, person).await {
                Ok(mut ldap) => {
                    // Read and written again when the entry changed under it.
                    let mut result = Ok(None);
                    for _ in 0..3 {
                        result = act_once(&mut ldap, directory, person, user, action, now).await;
                        if !matches!(result, Ok(None)) {
                            break;
                        }
                    }
                    let _ = ldap.unbind().await;
                    let done = result?.ok_or_else(|| {
                        AdminError::Other(format!(
                            "{user}'s entry kept changing while this was written: try again"
                        ))
                    });
                    return done.map(|(entry_dn, lock_removed)| Acted {
                        entry_dn,
                        server: uri.text.clone(),
                        at: now,
                        lock_removed,
                    });
                }
                Err(e @ AdminError::BadCredentials(_)) => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    })
}

async fn connect(
    directory: &DirectorySettings,
    uri: &str,
    person: &Person,
) -> Result<Ldap, AdminError> {
    let tls = crate::conn::tls_config(directory.tls_ca_file.as_deref())
        .map_err(|e| AdminError::Unreachable(e.to_string()))?;
    let mut conn_settings = LdapConnSettings::new()
        .set_conn_timeout(directory.timeout)
        .set_starttls(directory.starttls && uri.starts_with("ldap://"));
    if let Some(config) = tls {
        conn_settings = conn_settings.set_config(config);
    }
    let (conn, mut ldap) = LdapConnAsync::with_settings(conn_settings, uri)
        .await
        .map_err(|e| AdminError::Unreachable(format!("{uri}: {e}")))?;
    ldap3::drive!(conn);
    let unreachable = |e: LdapError| AdminError::Unreachable(format!("{uri}: {e}"));
    let bound = match person {
        Person::Password { dn, password } => ldap
            .simple_bind(dn, password.as_str())
            .await
            .map_err(unreachable),
        Person::External => ldap.sasl_external_bind().await.map_err(unreachable),
        Person::Gssapi { .. } => {
            let parsed = LdapUri::parse(uri).map_err(AdminError::Other)?;
            if parsed.scheme == Scheme::Ldapi && directory.sasl_host.is_none() {
                return Err(AdminError::Other(format!(
                    "SASL GSSAPI over {uri} needs the server's name for its ldap/<name> \
                     principal: set sasl_host in [directory]"
                )));
            }
            let host = directory.sasl_host_for(&parsed).to_owned();
            ldap.sasl_gssapi_bind(&host).await.map_err(|e| match e {
                // The Kerberos library's own words: no ticket, an expired
                // one, no such service principal.
                LdapError::GssapiOperationError(why) => AdminError::Other(format!(
                    "no Kerberos ticket for ldap/{host} could be used ({}): get yours with \
                     kinit, then try again",
                    crate::conn::one_line(&why)
                )),
                e => unreachable(e),
            })
        }
    }?;
    match bound.rc {
        0 if matches!(person, Person::Gssapi { .. }) => {
            name_from_who_am_i(&mut ldap, person).await;
            Ok(ldap)
        }
        0 => Ok(ldap),
        49 if matches!(person, Person::Gssapi { .. }) => Err(AdminError::Other(format!(
            "{uri}: the directory refused your Kerberos ticket ({}): check that slapd has \
             the ldap/ service keys and olcSaslRealm",
            crate::conn::one_line(&bound.text)
        ))),
        49 => Err(AdminError::BadCredentials(person.name())),
        rc => Err(AdminError::Other(format!(
            "{uri}: the bind failed (rc={rc} {})",
            bound.text
        ))),
    }
}

/// Reads `user`'s entry and writes `action` to it; `None` when the entry
/// changed between the read and the write, which then changed nothing.
async fn act_once(
    ldap: &mut Ldap,
    directory: &DirectorySettings,
    person: &Person,
    user: &str,
    action: Action,
    now: Timestamp,
) -> Result<Option<(String, bool)>, AdminError> {
    let filter = format!(
        "({}={})",
        directory.user_attribute,
        ldap3::ldap_escape(user)
    );
    let attribute = action.attribute();
    let found = ldap
        .search(
            &directory.base_dn,
            Scope::Subtree,
            &filter,
            vec![attribute, "pwdAccountLockedTime", "objectClass"],
        )
        .await
        .map_err(|e| AdminError::Unreachable(e.to_string()))?
        .success()
        .map_err(|e| AdminError::Other(e.to_string()))?;
    let mut entries = found.0.into_iter();
    let Some(entry) = entries.next().map(SearchEntry::construct) else {
        return Err(AdminError::NoSuchUser(user.to_owned()));
    };
    if entries.next().is_some() {
        return Err(AdminError::Other(format!(
            "more than one employee entry has {}={user}: fix the directory first",
            directory.user_attribute
        )));
    }
    let value = encoding::format_time(now);
    let values_of = |name: &str| -> HashSet<String> {
        entry
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.iter().cloned().collect())
            .unwrap_or_default()
    };
    let present = values_of(attribute);
    if present.contains(&value) {
        // The same action in the same microsecond: already done.
        return Ok(Some((entry.dn, false)));
    }
    let older: HashSet<String> = present.into_iter().filter(|old| *old < value).collect();
    let has_class = values_of("objectClass")
        .iter()
        .any(|c| c.eq_ignore_ascii_case(ACCOUNT_CLASS));
    let locked = entry
        .attrs
        .keys()
        .any(|k| k.eq_ignore_ascii_case("pwdAccountLockedTime"));
    // Nothing already there is written again: under delta-syncrepl a
    // no-op change is logged all the same, and its replay on the other
    // provider fails and knocks that provider into a full refresh.
    let mut mods = Vec::new();
    if !has_class {
        mods.push(Mod::Add(
            "objectClass".to_owned(),
            HashSet::from([ACCOUNT_CLASS.to_owned()]),
        ));
    }
    mods.push(Mod::Add(
        attribute.to_owned(),
        HashSet::from([value.clone()]),
    ));
    if action == Action::Reactivate && locked {
        mods.push(Mod::Delete(
            "pwdAccountLockedTime".to_owned(),
            HashSet::new(),
        ));
    }
    // Older values can no longer change any answer (the latest wins), so
    // they go with this change, where the ACL lets this person delete them.
    let mut tidied = mods.clone();
    if !older.is_empty() {
        tidied.push(Mod::Delete(attribute.to_owned(), older.clone()));
    }
    let mut done = ldap
        .modify(&entry.dn, tidied)
        .await
        .map_err(|e| AdminError::Unreachable(e.to_string()))?;
    // A manager may add a reactivation, not delete one (the example ACL
    // grants `add`): his second reactivation of an employee leaves the
    // older values in place rather than fail.
    if done.rc == 50 && !older.is_empty() {
        done = ldap
            .modify(&entry.dn, mods)
            .await
            .map_err(|e| AdminError::Unreachable(e.to_string()))?;
    }
    match done.rc {
        0 => {}
        // Someone changed the entry between our read and our write (a
        // value there now, or gone): the modify changed nothing.
        16 | 20 => return Ok(None),
        50 => {
            return Err(AdminError::NotAllowed {
                person: person.name(),
                action: action.verb(),
                user: user.to_owned(),
            })
        }
        rc => {
            return Err(AdminError::Other(format!(
                "the directory refused (rc={rc} {})",
                done.text
            )))
        }
    }
    // The directory's stamp on this change tells how far our clock is.
    let stamped = ldap
        .search(&entry.dn, Scope::Base, "(objectClass=*)", vec!["entryCSN"])
        .await
        .ok()
        .and_then(|r| r.success().ok())
        .and_then(|(entries, _)| entries.into_iter().next())
        .map(SearchEntry::construct)
        .and_then(|e| e.attrs.get("entryCSN").and_then(|v| v.first().cloned()))
        .and_then(|csn| encoding::parse_csn_time(&csn).ok());
    if let Some(server_time) = stamped {
        let skew = if now > server_time {
            server_time.until(now)
        } else {
            now.until(server_time)
        };
        if now > server_time.saturating_add(directory.max_clock_skew) {
            let undo = vec![Mod::Delete(attribute.to_owned(), HashSet::from([value]))];
            let _ = ldap.modify(&entry.dn, undo).await;
            return Err(AdminError::ClockSkew { skew });
        }
    }
    Ok(Some((entry.dn, action == Action::Reactivate && locked)))
}

/// Names `person` by the directory's answer to "Who am I?", the identity
/// its ACL will judge. No answer leaves the generic name.
async fn name_from_who_am_i(ldap: &mut Ldap, person: &Person) {
    if let (Person::Gssapi { identity }, Some(authzid)) =
        (person, crate::conn::who_am_i(ldap).await)
    {
        let _ = identity.set(authzid);
    }
}
