//! `[host]`, `[directory]` and `[sync]`: how this host is named in the
//! directory, how it reaches the directory, and where deadbolt-syncd keeps
//! its own files.
//!
//! A child of the file's schema, so that each value is checked with the
//! same file:line:column messages as the rest.

use super::{Checker, Expecting, Field, Table};
use crate::args::absolute_path;
use crate::directory::{
    self, Bind, DirectorySettings, HostSettings, LdapUri, PasswordStore, SyncSettings,
    FALLBACK_HOST_NAME, MAX_URIS,
};
use crate::duration::echo;
use crate::error::ConfigError;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use toml::{Spanned, Value};

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawHost {
    name: Field,
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawDirectory {
    uri: Option<Spanned<Uris>>,
    base_dn: Field,
    bind_dn: Field,
    bind_password_file: Field,
    sasl_mech: Field,
    keytab: Field,
    sasl_host: Field,
    tls_ca_file: Field,
    starttls: Field,
    allow_insecure: Field,
    max_clock_skew: Field,
    user_attribute: Field,
    timeout: Field,
    password_store: Field,
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawSync {
    dir: Field,
    metrics_listen: Field,
    full_scan_every: Field,
}

/// `uri`: one server, or a list tried in order. A value of another type is
/// kept whole, for a message in the file's words.
enum Uris {
    One(Value),
    Many(Vec<Spanned<Value>>),
}

/// What `uri` takes, for messages.
const URI_ACCEPTED: &str = "a URI in quotes, e.g. \"ldaps://ldap.example.com\", or an array \
                            of them tried in order, e.g. [\"ldaps://ldap1.example.com\", \
                            \"ldaps://ldap2.example.com\"]";

impl<'de> Deserialize<'de> for Uris {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UrisVisitor;
        impl<'de> Visitor<'de> for UrisVisitor {
            type Value = Uris;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(URI_ACCEPTED)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Uris, E> {
                Ok(Uris::One(Value::String(v.to_owned())))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Uris, E> {
                Ok(Uris::One(Value::Integer(v)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Uris, E> {
                Ok(Uris::One(Value::Float(v)))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Uris, E> {
                Ok(Uris::One(Value::Boolean(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Uris, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Uris::Many(items))
            }
        }
        deserializer.deserialize_any(UrisVisitor)
    }
}

pub(super) struct HostWords;
impl Expecting for HostWords {
    const EXPECTING: &'static str = "a table, starting with a [host] line (one pair of brackets)";
}

pub(super) struct DirectoryWords;
impl Expecting for DirectoryWords {
    const EXPECTING: &'static str =
        "a table, starting with a [directory] line (one pair of brackets)";
}

pub(super) struct SyncWords;
impl Expecting for SyncWords {
    const EXPECTING: &'static str = "a table, starting with a [sync] line (one pair of brackets)";
}

impl Checker<'_> {
    /// Without `[host] name`, the machine's hostname; when that cannot
    /// serve, [`FALLBACK_HOST_NAME`] for a host on its own, but a refusal
    /// with a directory, where every such host would share one name.
    pub(super) fn host(
        &self,
        raw: &RawHost,
        directory: Option<&Spanned<Table<RawDirectory, DirectoryWords>>>,
        hostname: &dyn Fn() -> Result<String, String>,
    ) -> Result<HostSettings, ConfigError> {
        if let Some(v) = &raw.name {
            let name = self.string("name", v, "a host name in quotes, e.g. \"web1\"")?;
            directory::check_host_name(name)
                .map_err(|m| self.error(v.span(), format!("name: {m}")))?;
            return Ok(HostSettings {
                name: name.to_owned(),
            });
        }
        match (hostname(), directory) {
            (Ok(name), _) => Ok(HostSettings { name }),
            (Err(_), None) => Ok(HostSettings {
                name: FALLBACK_HOST_NAME.to_owned(),
            }),
            (Err(why), Some(table)) => Err(self.error(
                table.span(),
                format!(
                    "the machine's hostname {why}, so it cannot name this host in the \
                     directory: set one under [host], e.g. name = \"web1\""
                ),
            )),
        }
    }

    pub(super) fn directory(
        &self,
        raw: &Spanned<Table<RawDirectory, DirectoryWords>>,
    ) -> Result<DirectorySettings, ConfigError> {
        let table = raw.span();
        let raw = raw.get_ref();
        let Some(uri) = &raw.uri else {
            return Err(self.error(
                table,
                "[directory] has no uri: add the directory's address, e.g. uri = \
                 \"ldaps://ldap.example.com\" (or remove [directory] to run without one)",
            ));
        };
        let uris = self.uris(uri)?;
        let Some(base) = &raw.base_dn else {
            return Err(self.error(
                table,
                "[directory] has no base_dn: add where the employees' entries are, e.g. \
                 base_dn = \"ou=people,dc=example,dc=com\"",
            ));
        };
        let base_dn = self.dn("base_dn", base, "\"ou=people,dc=example,dc=com\"")?;
        let bind = self.bind(raw, &uris, table)?;
        let mut settings = DirectorySettings {
            uris,
            base_dn,
            bind,
            tls_ca_file: None,
            starttls: false,
            allow_insecure: false,
            max_clock_skew: directory::DEFAULT_MAX_CLOCK_SKEW,
            user_attribute: directory::DEFAULT_USER_ATTRIBUTE.to_owned(),
            timeout: directory::DEFAULT_DIRECTORY_TIMEOUT,
            password_store: PasswordStore::None,
            sasl_host: None,
        };
        if let Some(v) = &raw.sasl_host {
            let name = self.string(
                "sasl_host",
                v,
                "a host name in quotes, e.g. \"ldap.example.com\"",
            )?;
            directory::check_sasl_host(name)
                .map_err(|m| self.error(v.span(), format!("sasl_host: {m}")))?;
            settings.sasl_host = Some(name.to_owned());
        }
        if let Some(v) = &raw.tls_ca_file {
            settings.tls_ca_file =
                Some(self.file_path("tls_ca_file", v, "/etc/deadbolt/ca.pem")?);
        }
        if let Some(v) = &raw.starttls {
            settings.starttls = self.boolean("starttls", v)?;
        }
        if let Some(v) = &raw.allow_insecure {
            settings.allow_insecure = self.boolean("allow_insecure", v)?;
        }
        if let Some(v) = &raw.max_clock_skew {
            settings.max_clock_skew =
                self.bounded_duration("max_clock_skew", v, directory::MAX_CLOCK_SKEW_RANGE, "2m")?;
        }
        if let Some(v) = &raw.user_attribute {
            let name = self.string(
                "user_attribute",
                v,
                "an attribute name in quotes, e.g. \"uid\"",
            )?;
            directory::check_user_attribute(name)
                .map_err(|m| self.error(v.span(), format!("user_attribute: {m}")))?;
            settings.user_attribute = name.to_owned();
        }
        if let Some(v) = &raw.timeout {
            settings.timeout =
                self.bounded_duration("timeout", v, directory::TIMEOUT_RANGE, "10s")?;
        }
        if let Some(v) = &raw.password_store {
            let expected = "\"none\" or \"directory\"";
            settings.password_store = match self.string("password_store", v, expected)? {
                "none" => PasswordStore::None,
                "directory" => PasswordStore::Directory,
                other => {
                    return Err(self.error(
                        v.span(),
                        format!("password_store = {other:?} is not known: write {expected}"),
                    ))
                }
            };
        }
        Ok(settings)
    }

    fn uris(&self, uri: &Spanned<Uris>) -> Result<Vec<LdapUri>, ConfigError> {
        let one;
        let items: &[Spanned<Value>] = match uri.get_ref() {
            Uris::One(value) => {
                one = [Spanned::new(uri.span(), value.clone())];
                &one
            }
            Uris::Many(items) => items,
        };
        if items.is_empty() {
            return Err(self.error(
                uri.span(),
                format!("uri is an empty list, so there is no server to reach: uri takes {URI_ACCEPTED}"),
            ));
        }
        if items.len() > MAX_URIS {
            return Err(self.error(
                uri.span(),
                format!(
                    "uri lists {} servers, more than the {MAX_URIS} deadbolt tries: keep the nearest",
                    items.len()
                ),
            ));
        }
        let key = match uri.get_ref() {
            Uris::One(_) => "uri",
            Uris::Many(_) => "each of uri",
        };
        let mut uris: Vec<LdapUri> = Vec::with_capacity(items.len());
        for item in items {
            let text = self.string(
                key,
                item,
                "a URI in quotes, e.g. \"ldaps://ldap.example.com\"",
            )?;
            let parsed =
                LdapUri::parse(text).map_err(|m| self.error(item.span(), format!("uri: {m}")))?;
            if uris.contains(&parsed) {
                return Err(self.error(
                    item.span(),
                    format!("uri names {parsed} twice: name each server once"),
                ));
            }
            uris.push(parsed);
        }
        Ok(uris)
    }

    fn bind(
        &self,
        raw: &RawDirectory,
        uris: &[LdapUri],
        table: Range<usize>,
    ) -> Result<Bind, ConfigError> {
        let gssapi = match &raw.sasl_mech {
            Some(v) => {
                let mech = self.string("sasl_mech", v, "\"EXTERNAL\" or \"GSSAPI\"")?;
                if mech != "EXTERNAL" && mech != "GSSAPI" {
                    return Err(self.error(
                        v.span(),
                        format!(
                            "sasl_mech must be \"EXTERNAL\" (over ldapi://) or \"GSSAPI\" (the \
                             host's Kerberos keys), not \"{}\"; or bind with bind_dn and \
                             bind_password_file",
                            echo(mech)
                        ),
                    ));
                }
                if raw.bind_dn.is_some() || raw.bind_password_file.is_some() {
                    return Err(self.error(
                        v.span(),
                        format!(
                            "sasl_mech and bind_dn are two ways to bind: keep one, either \
                             sasl_mech = \"{mech}\", or bind_dn with bind_password_file"
                        ),
                    ));
                }
                mech == "GSSAPI"
            }
            None => false,
        };
        if let (Some(v), false) = (&raw.keytab, gssapi) {
            return Err(self.error(
                v.span(),
                "keytab holds the keys of a GSSAPI bind: set sasl_mech = \"GSSAPI\" too, or \
                 remove keytab",
            ));
        }
        if gssapi {
            let keytab = match &raw.keytab {
                Some(v) => self.file_path("keytab", v, directory::DEFAULT_KEYTAB)?,
                None => PathBuf::from(directory::DEFAULT_KEYTAB),
            };
            return Ok(Bind::SaslGssapi { keytab });
        }
        if raw.sasl_mech.is_some() {
            return Ok(Bind::SaslExternal);
        }
        match (&raw.bind_dn, &raw.bind_password_file) {
            (Some(dn), Some(file)) => Ok(Bind::Simple {
                dn: self.dn("bind_dn", dn, "\"cn=web1,ou=hosts,dc=example,dc=com\"")?,
                password_file: self.file_path(
                    "bind_password_file",
                    file,
                    "/etc/deadbolt/ldap.secret",
                )?,
            }),
            (Some(dn), None) => Err(self.error(
                dn.span(),
                "bind_dn needs bind_password_file: the absolute path of the file holding its \
                 password, e.g. bind_password_file = \"/etc/deadbolt/ldap.secret\"",
            )),
            (None, Some(file)) => Err(self.error(
                file.span(),
                "bind_password_file needs bind_dn: the identity the password is for, e.g. \
                 bind_dn = \"cn=web1,ou=hosts,dc=example,dc=com\"",
            )),
            (None, None) => match uris
                .iter()
                .find(|uri| uri.scheme != directory::Scheme::Ldapi)
            {
                None => Ok(Bind::SaslExternal),
                Some(uri) => Err(self.error(
                    table,
                    format!(
                        "[directory] does not say how to bind to {uri}: set bind_dn and \
                         bind_password_file (without them, deadbolt binds with SASL EXTERNAL, \
                         which only ldapi:// offers)"
                    ),
                )),
            },
        }
    }

    fn dn(&self, key: &str, v: &Spanned<Value>, example: &str) -> Result<String, ConfigError> {
        let dn = self.string(key, v, &format!("a DN in quotes, e.g. {example}"))?;
        directory::check_dn(dn).map_err(|m| self.error(v.span(), format!("{key}: {m}")))?;
        Ok(dn.to_owned())
    }

    pub(super) fn sync(
        &self,
        raw: &RawSync,
        state_dir: &std::path::Path,
    ) -> Result<SyncSettings, ConfigError> {
        let mut settings = SyncSettings::under(state_dir);
        if let Some(v) = &raw.dir {
            let example = "/var/lib/deadbolt/.sync";
            let dir = self.string("dir", v, &format!("an absolute path such as \"{example}\""))?;
            absolute_path(dir, example)
                .map_err(|problem| self.error(v.span(), format!("dir: the {problem}")))?;
            settings.dir = PathBuf::from(dir);
        }
        if let Some(v) = &raw.metrics_listen {
            let text = self.string(
                "metrics_listen",
                v,
                "a loopback address and port in quotes, e.g. \"127.0.0.1:9477\"",
            )?;
            let addr = directory::parse_metrics_listen(text)
                .map_err(|m| self.error(v.span(), format!("metrics_listen: {m}")))?;
            settings.metrics_listen = Some(addr);
        }
        if let Some(v) = &raw.full_scan_every {
            settings.full_scan_every =
                self.bounded_duration("full_scan_every", v, directory::FULL_SCAN_RANGE, "5m")?;
        }
        Ok(settings)
    }
}
