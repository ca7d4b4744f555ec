//! `[host]`, `[directory]` and `[sync]`: how this host names itself, which
//! directory it keeps in step with and how it reaches it, and where the sync
//! daemon keeps its own files.
//!
//! The PAM module reads only `[host] name` (the host of the failures it
//! records) and never the network; `deadbolt-syncd` and `deadboltctl` read
//! the rest. What the file says is checked here, when it is parsed; whether
//! the daemon may use it over the network it names is
//! [`DirectorySettings::transport_problems`], and whether the bind password
//! file is fit to be read is [`check_secret_file`]: neither belongs in the
//! parse, which runs at every login and must not depend on the network or
//! on files other than the configuration.

use crate::duration::echo;
use crate::trust::os_message;
use nix::fcntl::OFlag;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest `[host] name`, as the longest DNS name.
pub const MAX_HOST_NAME: usize = 253;

/// The longest `base_dn` or `bind_dn`, in bytes.
pub const MAX_DN_BYTES: usize = 1024;

/// The most servers `uri` may list.
pub const MAX_URIS: usize = 16;

/// The longest single URI, in bytes.
pub const MAX_URI_BYTES: usize = 1024;

/// The longest `user_attribute`, in bytes.
pub const MAX_ATTRIBUTE_BYTES: usize = 128;

/// `sun_path` holds 108 bytes, the last of them the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// The name a host takes when `[host] name` is absent and the machine's
/// hostname cannot be used. Only without a directory: with one, such a
/// file is refused, since every host of the fleet would share this name.
pub const FALLBACK_HOST_NAME: &str = "localhost";

/// `max_clock_skew` unless the file says otherwise, and its bounds.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(120);
pub(crate) const MAX_CLOCK_SKEW_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(3600));

/// `timeout` unless the file says otherwise, and its bounds.
pub const DEFAULT_DIRECTORY_TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const TIMEOUT_RANGE: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(600));

/// `full_scan_every` unless the file says otherwise, and its bounds.
pub const DEFAULT_FULL_SCAN_EVERY: Duration = Duration::from_secs(300);
pub(crate) const FULL_SCAN_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(7 * 86_400));

/// `user_attribute` unless the file says otherwise.
pub const DEFAULT_USER_ATTRIBUTE: &str = "uid";

/// The `[sync] dir` below the `[state] dir`, unless the file says otherwise.
pub const SYNC_SUBDIR: &str = ".sync";

/// `[host]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSettings {
    /// How this host is named in the failures it records and, as an RDN
    /// value, in the directory. Checked by the rules of `[host] name`.
    pub name: String,
}

impl Default for HostSettings {
    /// The machine's hostname when it is a valid name, else
    /// [`FALLBACK_HOST_NAME`].
    fn default() -> Self {
        HostSettings {
            name: machine_hostname().unwrap_or_else(|_| FALLBACK_HOST_NAME.to_owned()),
        }
    }
}

/// The machine's hostname, if it passes the checks of `[host] name`; else
/// why not.
pub(crate) fn machine_hostname() -> Result<String, String> {
    let name =
        nix::unistd::gethostname().map_err(|errno| format!("cannot be read ({})", errno.desc()))?;
    let name = name
        .into_string()
        .map_err(|_| "is not valid UTF-8".to_owned())?;
    check_host_name(&name)?;
    Ok(name)
}

/// Checks a `[host] name`: it ends up in every failure record and as an
/// RDN value in the directory, so only the characters of host names, and
/// nothing an RDN would need to escape.
pub(crate) fn check_host_name(name: &str) -> Result<(), String> {
    const ACCEPTED: &str = "a host name is 1 to 253 letters, digits, '.', '-' or '_', \
                            not starting with '-' or '.', e.g. \"web1\"";
    let problem = match host_name_problem(name) {
        Some(problem) => problem,
        None => return Ok(()),
    };
    Err(format!(
        "the host name `{}` {problem}: {ACCEPTED}",
        echo(name)
    ))
}

/// What is wrong with `name` as a host name, if anything: shared by
/// `[host] name` and the host part of `uri`.
fn host_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("is empty".to_owned())
    } else if name.len() > MAX_HOST_NAME {
        Some(format!("is longer than {MAX_HOST_NAME} characters"))
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        Some(format!("contains `{}`", c.escape_debug()))
    } else if name.starts_with(['-', '.']) {
        Some("starts with '-' or '.'".to_owned())
    } else {
        None
    }
}

/// How a [`LdapUri`] reaches the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `ldap://`: plain TCP, unless `starttls` upgrades it.
    Ldap,
    /// `ldaps://`: TLS from the first byte.
    Ldaps,
    /// `ldapi://`: a local Unix socket.
    Ldapi,
}

impl Scheme {
    /// As written before `://`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Ldap => "ldap",
            Scheme::Ldaps => "ldaps",
            Scheme::Ldapi => "ldapi",
        }
    }

    /// 389, 636, or 0 for a socket, which has no port.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Ldap => 389,
            Scheme::Ldaps => 636,
            Scheme::Ldapi => 0,
        }
    }
}

/// One server of `uri`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LdapUri {
    pub scheme: Scheme,
    /// The host name or IP address, lower case, IPv6 without brackets; for
    /// `ldapi`, the socket's path, decoded.
    pub host: String,
    /// The port, defaulted to 389 or 636; 0 for `ldapi`.
    pub port: u16,
    /// The URI in one spelling per server: scheme and host in lower case,
    /// the port always written, IPv6 in brackets, the socket path
    /// percent-encoded, no trailing `/`. What to hand an LDAP library.
    pub text: String,
}

impl fmt::Display for LdapUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl LdapUri {
    /// Reads `ldap://HOST[:PORT]`, `ldaps://HOST[:PORT]` or
    /// `ldapi://PATH` (the path percent-encoded, as OpenLDAP writes it).
    /// Only the server's address: the DN, attributes and filter of an LDAP
    /// URL mean nothing here (`base_dn` names the base), so they are
    /// refused rather than silently dropped.
    pub fn parse(text: &str) -> Result<LdapUri, String> {
        const ACCEPTED: &str = "write ldaps://HOST[:PORT], ldap://HOST[:PORT] or \
                                ldapi://PATH with the socket's path percent-encoded, e.g. \
                                \"ldaps://ldap.example.com\" or \"ldapi://%2Frun%2Fslapd%2Fldapi\"";
        let shown = echo(text);
        if text.is_empty() {
            return Err(format!("the URI is empty: {ACCEPTED}"));
        }
        if text.len() > MAX_URI_BYTES {
            return Err(format!(
                "the URI `{shown}` is longer than {MAX_URI_BYTES} bytes: {ACCEPTED}"
            ));
        }
        if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!(
                "the URI `{shown}` contains a space or a control character: {ACCEPTED}"
            ));
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(format!(
                "the URI `{shown}` does not start with ldaps://, ldap:// or ldapi://: {ACCEPTED}"
            ));
        };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "ldap" => Scheme::Ldap,
            "ldaps" => Scheme::Ldaps,
            "ldapi" => Scheme::Ldapi,
            _ => {
                return Err(format!(
                    "the URI `{shown}` has the scheme `{}`, which is not LDAP: {ACCEPTED}",
                    echo(scheme)
                ))
            }
        };
        let address = rest.strip_suffix('/').unwrap_or(rest);
        if scheme == Scheme::Ldapi {
            return Self::socket(address, &shown);
        }
        if address.contains(['/', '?', '#']) {
            return Err(format!(
                "the URI `{shown}` goes on past the server's address: write only \
                 scheme://HOST[:PORT] (base_dn names the base)"
            ));
        }
        if address.contains('@') {
            return Err(format!(
                "the URI `{shown}` names a user: write only scheme://HOST[:PORT], and the \
                 host's identity in bind_dn"
            ));
        }
        let (host, port) = split_host_port(address, &shown)?;
        let port = match port {
            None => scheme.default_port(),
            Some(digits) => parse_port(digits).ok_or_else(|| {
                format!(
                    "the URI `{shown}` has the port `{}`: write a port from 1 to 65535, or \
                     none for {}",
                    echo(digits),
                    scheme.default_port()
                )
            })?,
        };
        let host = host.to_ascii_lowercase();
        let written = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        Ok(LdapUri {
            scheme,
            text: format!("{}://{written}:{port}", scheme.as_str()),
            host,
            port,
        })
    }

    fn socket(encoded: &str, shown: &str) -> Result<LdapUri, String> {
        const ENCODE: &str =
            "percent-encode the socket's path, each '/' as %2F, e.g. \"ldapi://%2Frun%2Fslapd%2Fldapi\"";
        if encoded.is_empty() {
            return Err(format!("the URI `{shown}` names no socket: {ENCODE}"));
        }
        if encoded.contains(['/', '?', '#']) {
            return Err(format!(
                "the URI `{shown}` has a '/', '?' or '#' after ldapi://: {ENCODE}"
            ));
        }
        let path = percent_decode(encoded).ok_or_else(|| {
            format!("the URI `{shown}` has a '%' not followed by two hex digits: {ENCODE}")
        })?;
        let path = String::from_utf8(path)
            .map_err(|_| format!("the socket path of `{shown}` is not valid UTF-8: {ENCODE}"))?;
        if path.chars().any(char::is_control) {
            return Err(format!(
                "the socket path of `{shown}` contains a control character: {ENCODE}"
            ));
        }
        if !path.starts_with('/') {
            return Err(format!(
                "the socket path of `{shown}` is relative: {ENCODE}"
            ));
        }
        if path.len() > MAX_SOCKET_PATH {
            return Err(format!(
                "the socket path of `{shown}` is longer than {MAX_SOCKET_PATH} bytes, more \
                 than a Unix socket's address holds"
            ));
        }
        Ok(LdapUri {
            scheme: Scheme::Ldapi,
            text: format!("ldapi://{}", percent_encode(&path)),
            host: path,
            port: 0,
        })
    }

    /// The server is this machine: a socket, `localhost`, 127.0.0.0/8 or
    /// `::1` (also as `::ffff:127.x.y.z`). What goes there in clear does not
    /// cross the network.
    pub fn is_loopback(&self) -> bool {
        if self.scheme == Scheme::Ldapi || self.host == "localhost" {
            return true;
        }
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => v4.is_loopback(),
            Ok(IpAddr::V6(v6)) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
            Err(_) => false,
        }
    }
}

/// `HOST[:PORT]` or `[IPV6][:PORT]`, the port not yet read.
fn split_host_port<'a>(
    address: &'a str,
    shown: &str,
) -> Result<(&'a str, Option<&'a str>), String> {
    if let Some(inside) = address.strip_prefix('[') {
        let Some((v6, after)) = inside.split_once(']') else {
            return Err(format!(
                "the URI `{shown}` opens an IPv6 address with '[' and never closes it: write \
                 e.g. \"ldap://[::1]:389\""
            ));
        };
        if v6.parse::<Ipv6Addr>().is_err() {
            return Err(format!(
                "the URI `{shown}` has `{}` in brackets, which is not an IPv6 address",
                echo(v6)
            ));
        }
        return match after {
            "" => Ok((v6, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((v6, Some(port))),
                None => Err(format!(
                    "the URI `{shown}` has `{}` after the IPv6 address: write \
                     [ADDRESS]:PORT",
                    echo(after)
                )),
            },
        };
    }
    let (host, port) = match address.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (address, None),
    };
    if port.is_some_and(|port| port.contains(':')) {
        return Err(format!(
            "the URI `{shown}` has more than one ':': an IPv6 address goes in brackets, e.g. \
             \"ldap://[::1]:389\""
        ));
    }
    if host.is_empty() {
        return Err(format!(
            "the URI `{shown}` names no host: write the server's name, e.g. \
             \"ldaps://ldap.example.com\""
        ));
    }
    if let Some(problem) = host_name_problem(host) {
        return Err(format!(
            "the host `{}` of the URI `{shown}` {problem}: a server is a host name or an IP \
             address (IPv6 in brackets)",
            echo(host)
        ));
    }
    Ok((host, port))
}

fn parse_port(digits: &str) -> Option<u16> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 5 {
        return None;
    }
    digits.parse::<u16>().ok().filter(|&port| port != 0)
}

fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Everything but RFC 3986's unreserved characters, as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How the host proves who it is to the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bind {
    /// A simple bind as `dn`, with the password read from `password_file`
    /// (see [`check_secret_file`]).
    Simple { dn: String, password_file: PathBuf },
    /// SASL EXTERNAL: over `ldapi://`, the server knows the connecting
    /// process's user.
    SaslExternal,
    /// SASL GSSAPI: the host's own Kerberos principal, its keys in
    /// `keytab` (see [`check_keytab_file_owned_by`]); the directory maps
    /// the principal to the host's identity (olcAuthzRegexp).
    SaslGssapi { keytab: PathBuf },
}

/// `keytab` unless the file says otherwise: where Debian and most
/// distributions keep the host's keys.
pub const DEFAULT_KEYTAB: &str = "/etc/krb5.keytab";

/// `[directory]`: present when the host keeps in step with a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectorySettings {
    /// Tried in order: the first that answers is used.
    pub uris: Vec<LdapUri>,
    /// Where the employees' entries are.
    pub base_dn: String,
    pub bind: Bind,
    /// The CA certificates TLS is verified against; `None`: the system's.
    pub tls_ca_file: Option<PathBuf>,
    /// Upgrade `ldap://` with StartTLS before anything else is sent.
    pub starttls: bool,
    /// Allow plain `ldap://` to a host other than this one.
    pub allow_insecure: bool,
    /// How far the directory's clock may be from this host's.
    pub max_clock_skew: Duration,
    /// The attribute holding the login name.
    pub user_attribute: String,
    /// For connecting and for each operation.
    pub timeout: Duration,
    /// The server's name in its Kerberos service principal
    /// (`ldap/<sasl_host>`), for GSSAPI binds; `None`: the host of the uri
    /// in use.
    pub sasl_host: Option<String>,
    /// Where an employee's own password change is stored.
    pub password_store: PasswordStore,
}

/// `password_store`: which module stores the password a user changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PasswordStore {
    /// Another module of the stack (pam_unix, pam_sss, pam_ldap) stores
    /// it; deadbolt judges it and records the change.
    #[default]
    None,
    /// deadbolt hands it to the local deadbolt-syncd, which changes it in
    /// the directory as the user himself (RFC 3062).
    Directory,
}

impl DirectorySettings {
    /// Why these settings must not be used to reach the directory, one
    /// line each; empty when they may. The file parses either way, so the
    /// PAM module, which never connects, is not hindered by them; the sync
    /// daemon and `deadboltctl` refuse to connect while any remain.
    pub fn transport_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        // GSSAPI over a plain connection does get ldap3's Kerberos
        // confidentiality layer, but that layer does not put back together
        // an LDAP message split across SASL buffers, and its check of the
        // layers the server offers cannot fail (docs/directory.md,
        // "Kerberos"): it is not what keeps the state private across a
        // network.
        let gssapi = matches!(self.bind, Bind::SaslGssapi { .. });
        for uri in &self.uris {
            match uri.scheme {
                Scheme::Ldap if !self.starttls && !self.allow_insecure && !uri.is_loopback() => {
                    let exposed = if gssapi {
                        "every user's state would cross the network guarded only by ldap3's \
                         GSSAPI layer, which deadbolt does not rely on"
                    } else {
                        "the bind password and every user's state would cross the network in \
                         clear"
                    };
                    problems.push(format!(
                        "{uri} is plain LDAP to another host: {exposed}; write ldaps://, set \
                         starttls = true, or set allow_insecure = true if the network is trusted"
                    ))
                }
                Scheme::Ldaps if self.starttls => problems.push(format!(
                    "starttls = true means nothing with {uri}, which is TLS from the start: \
                     remove starttls, or write ldap:// to upgrade a plain connection"
                )),
                Scheme::Ldapi if self.starttls => problems.push(format!(
                    "starttls = true means nothing with {uri}, a local socket: remove starttls, \
                     or write ldap:// to upgrade a plain connection"
                )),
                _ => {}
            }
        }
        let tls = |uri: &LdapUri| {
            uri.scheme == Scheme::Ldaps || (uri.scheme == Scheme::Ldap && self.starttls)
        };
        if self.tls_ca_file.is_some() && !self.uris.iter().any(tls) {
            problems.push(
                "tls_ca_file is set but no uri uses TLS (ldaps://, or ldap:// with starttls = \
                 true), so it would never be read: remove it, or use TLS"
                    .to_owned(),
            );
        }
        if self.bind == Bind::SaslExternal {
            for uri in self.uris.iter().filter(|uri| uri.scheme != Scheme::Ldapi) {
                problems.push(format!(
                    "SASL EXTERNAL over {uri} would need a TLS client certificate, which \
                     [directory] cannot name: bind over ldapi://, or set bind_dn and \
                     bind_password_file"
                ));
            }
        }
        if gssapi && self.sasl_host.is_none() {
            for uri in self.uris.iter().filter(|uri| uri.scheme == Scheme::Ldapi) {
                problems.push(format!(
                    "SASL GSSAPI over {uri} needs the server's name for its service principal \
                     (ldap/<name>), which a socket path is not: set sasl_host, e.g. sasl_host \
                     = \"ldap.example.com\""
                ));
            }
        }
        problems
    }

    /// The name whose `ldap/<name>` service principal a GSSAPI bind to
    /// `uri` asks a ticket for: `sasl_host`, else the uri's host.
    pub fn sasl_host_for<'a>(&'a self, uri: &'a LdapUri) -> &'a str {
        self.sasl_host.as_deref().unwrap_or(&uri.host)
    }
}

/// Checks a `sasl_host`: a host name, as DNS writes it.
pub(crate) fn check_sasl_host(name: &str) -> Result<(), String> {
    match host_name_problem(name) {
        None => Ok(()),
        Some(problem) => Err(format!(
            "the name `{}` {problem}: write the directory server's own name, as its \
             ldap/<name> principal has it, e.g. \"ldap.example.com\"",
            echo(name)
        )),
    }
}

/// `[sync]`: the sync daemon's own settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncSettings {
    /// The daemon's queue, cookie and the like; absolute. By default
    /// [`SYNC_SUBDIR`] in the `[state] dir`.
    pub dir: PathBuf,
    /// Where Prometheus metrics are served; always a loopback address.
    /// `None`: not served.
    pub metrics_listen: Option<SocketAddr>,
    /// How often every user's state is compared with the directory's, for
    /// what replication may have lost.
    pub full_scan_every: Duration,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings::under(&crate::StateSettings::default().dir)
    }
}

impl SyncSettings {
    /// The defaults, with `dir` in `state_dir`.
    pub(crate) fn under(state_dir: &Path) -> Self {
        SyncSettings {
            dir: state_dir.join(SYNC_SUBDIR),
            metrics_listen: None,
            full_scan_every: DEFAULT_FULL_SCAN_EVERY,
        }
    }
}

/// Checks `base_dn` or `bind_dn` loosely by RFC 4514: `attribute=value`
/// pairs separated by `,` (or `+` within one RDN), attributes named by a
/// letter then letters, digits or '-' (or a numeric OID), values non-empty,
/// with `,+"\;<>` escaped by `\` (or as `\XX`), or a `#` and hex digits.
/// Spaces around the separators are taken, as most tools write them.
pub(crate) fn check_dn(dn: &str) -> Result<(), String> {
    const ACCEPTED: &str =
        "write attribute=value pairs separated by commas, e.g. \"ou=people,dc=example,dc=com\"";
    let shown = echo(dn);
    let problem = if dn.trim().is_empty() {
        "is empty".to_owned()
    } else if dn.len() > MAX_DN_BYTES {
        format!("is longer than {MAX_DN_BYTES} bytes")
    } else if dn.chars().any(char::is_control) {
        "contains a control character".to_owned()
    } else {
        match dn_problem(dn) {
            Some(problem) => problem,
            None => return Ok(()),
        }
    };
    Err(format!("the DN `{shown}` {problem}: {ACCEPTED}"))
}

fn dn_problem(dn: &str) -> Option<String> {
    let mut chars = dn.chars().peekable();
    let mut part = 1;
    loop {
        let mut attribute = String::new();
        while let Some(&c) = chars.peek() {
            if matches!(c, '=' | ',' | '+') {
                break;
            }
            attribute.push(c);
            chars.next();
        }
        let attribute = attribute.trim();
        if chars.next() != Some('=') {
            return Some(
                if attribute.is_empty() && chars.peek().is_none() && part > 1 {
                    "ends with a separator".to_owned()
                } else {
                    format!("has no '=' in its part {part}")
                },
            );
        }
        if attribute.is_empty() {
            return Some(format!(
                "has no attribute name before the '=' of its part {part}"
            ));
        }
        if !is_attribute_type(attribute) {
            return Some(format!(
                "has `{}` in its part {part}, which is not an attribute name",
                echo(attribute)
            ));
        }
        let mut shown_chars = 0usize;
        if chars.peek() == Some(&'#') {
            chars.next();
            let mut digits = 0;
            while chars.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                chars.next();
                digits += 1;
            }
            if digits == 0 || digits % 2 != 0 {
                return Some(format!(
                    "has a '#' value in its part {part} that is not an even number of hex digits"
                ));
            }
            shown_chars = digits;
        }
        loop {
            match chars.peek() {
                None | Some(',') | Some('+') => break,
                Some('\\') => {
                    chars.next();
                    match chars.next() {
                        Some(c) if " \"#+,;<=>\\".contains(c) => {}
                        Some(high) if high.is_ascii_hexdigit() => {
                            let low = chars.next().filter(char::is_ascii_hexdigit)?;
                            if high == '0' && low == '0' {
                                return Some(format!("escapes a NUL (\\00) in its part {part}"));
                            }
                        }
                        _ => {
                            return Some(format!(
                                "has a '\\' in its part {part} that escapes nothing: write \\, for \
                                 a comma, \\\\ for a backslash, or \\XX in hex"
                            ))
                        }
                    }
                    shown_chars += 1;
                }
                Some(&c) if matches!(c, '"' | ';' | '<' | '>') => {
                    return Some(format!(
                        "has `{c}` unescaped in its part {part}: write \\{c}"
                    ));
                }
                Some(&c) => {
                    if !c.is_whitespace() {
                        shown_chars += 1;
                    }
                    chars.next();
                }
            }
        }
        if shown_chars == 0 {
            return Some(format!(
                "has an empty value for `{}` in its part {part}",
                echo(attribute)
            ));
        }
        match chars.next() {
            None => return None,
            Some(',') => part += 1,
            // `+`: another pair of the same RDN.
            _ => {}
        }
    }
}

/// RFC 4512's `descr` (a letter, then letters, digits or '-') or a numeric
/// OID.
fn is_attribute_type(name: &str) -> bool {
    let descr = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let oid = !name.is_empty()
        && name
            .split('.')
            .all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()));
    descr || oid
}

/// Checks `user_attribute`: a `descr` only, since it goes into search
/// filters where a numeric OID or anything else would surprise.
pub(crate) fn check_user_attribute(name: &str) -> Result<(), String> {
    let fine = name.len() <= MAX_ATTRIBUTE_BYTES
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if fine {
        Ok(())
    } else {
        Err(format!(
            "the attribute name `{}` is refused: an attribute name is a letter, then letters, \
             digits or '-', at most {MAX_ATTRIBUTE_BYTES} bytes, e.g. \"uid\"",
            echo(name)
        ))
    }
}

/// Reads `metrics_listen`: an IP address and port on this machine only,
/// since the metrics name users and are served without authentication.
pub(crate) fn parse_metrics_listen(text: &str) -> Result<SocketAddr, String> {
    const ACCEPTED: &str =
        "write a loopback address and a port, e.g. \"127.0.0.1:9477\" or \"[::1]:9477\"";
    let addr: SocketAddr = text
        .parse()
        .map_err(|_| format!("`{}` is not an IP address and port: {ACCEPTED}", echo(text)))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{addr} is not a loopback address: the metrics are served without authentication, \
             so only to this host; {ACCEPTED}"
        ));
    }
    if addr.port() == 0 {
        return Err(format!(
            "port 0 would be a different port at every start: write a port from 1 to 65535, \
             e.g. \"{}:9477\"",
            match addr {
                SocketAddr::V4(v4) => v4.ip().to_string(),
                SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
            }
        ));
    }
    Ok(addr)
}

/// Checks that the bind password file at `path` is root's alone: see
/// [`check_secret_file_owned_by`].
pub fn check_secret_file(path: &Path) -> Result<(), String> {
    check_secret_file_owned_by(path, 0)
}

/// Checks that the file at `path` is a regular file, not a symbolic link,
/// owned by `uid`, and neither readable nor writable by group or others
/// (0600 or 0400). The error says what is wrong and how to fix it.
pub fn check_secret_file_owned_by(path: &Path, uid: u32) -> Result<(), String> {
    open_secret_file_owned_by(path, uid).map(drop)
}

/// As [`check_secret_file_owned_by`], returning the file opened for
/// reading: read the secret from it rather than opening the path again,
/// so that what is read is what was checked.
pub fn open_secret_file_owned_by(path: &Path, uid: u32) -> Result<File, String> {
    open_owned_by(path, uid, "the bind password")
}

/// Checks the `keytab` at `path` as a bind password file is checked: its
/// keys are the host's identity, as good as a password to whoever reads
/// them.
pub fn check_keytab_file_owned_by(path: &Path, uid: u32) -> Result<(), String> {
    open_owned_by(
        path,
        uid,
        "the host's Kerberos keys (kadmin's ktadd writes them)",
    )
    .map(drop)
}

/// `secret` says what the file holds, for the messages.
fn open_owned_by(path: &Path, uid: u32, secret: &str) -> Result<File, String> {
    let shown = path.display();
    let fix = if uid == 0 {
        "make it 0600 root".to_owned()
    } else {
        format!("make it 0600, owned by uid {uid}")
    };
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
    // writer; it changes nothing for a regular file.
    let flags = OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)
        .map_err(|error| match error.kind() {
            _ if error.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) => format!(
                "{shown} is a symbolic link, which is not followed for a secret: put the file \
                 itself there and {fix}"
            ),
            io::ErrorKind::NotFound => {
                format!("{shown} does not exist: write {secret} there and {fix}")
            }
            _ => format!("{shown} cannot be opened: {}", os_message(&error)),
        })?;
    let meta = file
        .metadata()
        .map_err(|error| format!("{shown} cannot be examined: {}", os_message(&error)))?;
    if meta.is_dir() {
        return Err(format!(
            "{shown} is a directory: name the file that holds {secret}, and {fix}"
        ));
    }
    if !meta.is_file() {
        return Err(format!(
            "{shown} is not a regular file (a FIFO, socket or device): write {secret} in \
             a plain file and {fix}"
        ));
    }
    if meta.uid() != uid {
        let owner = if uid == 0 {
            "root".to_owned()
        } else {
            format!("uid {uid}")
        };
        return Err(format!(
            "{shown} is owned by uid {}, not {owner}; {fix}",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        let group = mode & 0o070 != 0;
        let others = mode & 0o007 != 0;
        let who = match (group, others) {
            (true, true) => "group and others",
            (true, false) => "its group",
            _ => "others",
        };
        let what = if mode & 0o044 != 0 {
            "readable"
        } else if mode & 0o022 != 0 {
            "writable"
        } else {
            "executable"
        };
        return Err(format!(
            "{shown} is {what} by {who} (mode {mode:04o}); {fix}"
        ));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn directory(keys: &str) -> DirectorySettings {
        let text = format!(
            "[host]\nname = \"web1\"\n\n[directory]\nbase_dn = \"ou=people,dc=example,dc=com\"\n{keys}"
        );
        Config::parse(&text, "test.toml")
            .unwrap_or_else(|e| panic!("{keys}: {e}"))
            .directory
            .expect("a [directory]")
    }

    #[test]
    fn gssapi_takes_the_default_keytab_and_the_uris_host() {
        let settings = directory("uri = \"ldaps://ldap1.example.com\"\nsasl_mech = \"GSSAPI\"\n");
        assert_eq!(
            settings.bind,
            Bind::SaslGssapi {
                keytab: PathBuf::from(DEFAULT_KEYTAB)
            }
        );
        assert_eq!(
            settings.sasl_host_for(&settings.uris[0]),
            "ldap1.example.com"
        );
        assert!(settings.transport_problems().is_empty());
    }

    #[test]
    fn sasl_host_names_the_principal_whatever_the_uri() {
        let settings = directory(
            "uri = [\"ldap://127.0.0.1:3890\", \"ldapi://%2Frun%2Fslapd%2Fldapi\"]\n\
             sasl_mech = \"GSSAPI\"\nkeytab = \"/etc/deadbolt/host.keytab\"\n\
             sasl_host = \"ldap.example.com\"\n",
        );
        assert_eq!(
            settings.bind,
            Bind::SaslGssapi {
                keytab: PathBuf::from("/etc/deadbolt/host.keytab")
            }
        );
        for uri in &settings.uris {
            assert_eq!(settings.sasl_host_for(uri), "ldap.example.com");
        }
        assert!(settings.transport_problems().is_empty());
    }

    #[test]
    fn gssapi_keeps_the_plain_ldap_rule_and_needs_a_name_over_a_socket() {
        let remote = directory("uri = \"ldap://192.0.2.10\"\nsasl_mech = \"GSSAPI\"\n");
        let problems = remote.transport_problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("GSSAPI layer"), "{problems:?}");
        let socket =
            directory("uri = \"ldapi://%2Frun%2Fslapd%2Fldapi\"\nsasl_mech = \"GSSAPI\"\n");
        let problems = socket.transport_problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("set sasl_host"), "{problems:?}");
    }
}
