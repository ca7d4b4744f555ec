//! Connecting and binding to the directory: TLS verified by default, plain
//! LDAP only where the configuration allows it (checked before start).

use crate::settings::{BindWith, Settings};
use deadbolt_config::LdapUri;
use ldap3::exop::WhoAmI;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// Why a connection could not be used. Never holds a secret.
#[derive(Debug)]
pub enum ConnError {
    Connect(String),
    Bind(String),
    Tls(String),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Connect(why) => write!(f, "cannot connect: {why}"),
            ConnError::Bind(why) => write!(f, "the bind was refused: {why}"),
            ConnError::Tls(why) => write!(f, "TLS cannot be set up: {why}"),
        }
    }
}

impl std::error::Error for ConnError {}

/// The TLS client configuration for `tls_ca_file`: only that CA is trusted.
/// Without one, ldap3 trusts the system's roots.
pub fn tls_config(ca_file: Option<&Path>) -> Result<Option<Arc<rustls::ClientConfig>>, ConnError> {
    let Some(path) = ca_file else {
        return Ok(None);
    };
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| ConnError::Tls(format!("{}: {e}", path.display())))?;
    for cert in certs {
        let cert = cert.map_err(|e| ConnError::Tls(format!("{}: {e}", path.display())))?;
        roots
            .add(cert)
            .map_err(|e| ConnError::Tls(format!("{}: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(ConnError::Tls(format!(
            "{} holds no certificate",
            path.display()
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(Arc::new(config)))
}

/// Connects to `uri` and binds as the host: returns the handle, its
/// connection driven in the background.
///
/// The whole of it, TLS and bind included, must finish within the
/// configured `timeout`: a server that accepts and then never answers, or
/// announces a message longer than it ever sends, would otherwise hold the
/// daemon in its bind for good.
pub async fn connect(
    settings: &Settings,
    uri: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
    bind: &BindWith,
) -> Result<Ldap, ConnError> {
    tokio::time::timeout(settings.timeout, connect_and_bind(settings, uri, tls, bind))
        .await
        .unwrap_or_else(|_| {
            Err(ConnError::Connect(format!(
                "no complete answer within {} ms (timeout)",
                settings.timeout.as_millis()
            )))
        })
}

async fn connect_and_bind(
    settings: &Settings,
    uri: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
    bind: &BindWith,
) -> Result<Ldap, ConnError> {
    let mut conn_settings = LdapConnSettings::new()
        .set_conn_timeout(settings.timeout)
        .set_starttls(settings.starttls && uri.starts_with("ldap://"));
    if let Some(config) = tls {
        conn_settings = conn_settings.set_config(config);
    }
    let (conn, mut ldap) = LdapConnAsync::with_settings(conn_settings, uri)
        .await
        .map_err(|e| ConnError::Connect(e.to_string()))?;
    ldap3::drive!(conn);
    let result = match bind {
        BindWith::Simple { dn, password } => ldap.simple_bind(dn, password.as_str()).await,
        BindWith::External => ldap.sasl_external_bind().await,
        BindWith::Gssapi { sasl_host, .. } => {
            let host = match sasl_host {
                Some(name) => name.clone(),
                None => LdapUri::parse(uri)
                    .map_err(ConnError::Connect)?
                    .host
                    .clone(),
            };
            ldap.sasl_gssapi_bind(&host).await
        }
    };
    // A simple bind that got no result (the connection broke, the answer
    // did not decode) is not a refusal: whoever reads the log must look at
    // the server, not at the host's identity. A SASL bind's error may be
    // the local Kerberos library's, and stays a bind error.
    result
        .map_err(|e| {
            let why = one_line(&e.to_string());
            match bind {
                BindWith::Simple { .. } => {
                    ConnError::Connect(format!("no usable answer to the bind ({why})"))
                }
                _ => ConnError::Bind(why),
            }
        })?
        .success()
        .map_err(|e| ConnError::Bind(one_line(&e.to_string())))?;
    if !matches!(bind, BindWith::Simple { .. }) {
        // A SASL identity is whatever olcAuthzRegexp made of it: say which,
        // for whoever has to fix the mapping.
        if let Some(authzid) = who_am_i(&mut ldap).await {
            crate::log::info(&format!("{uri}: bound as {authzid}"));
        }
    }
    Ok(ldap)
}

/// The longest "Who am I?" answer taken, in bytes.
const MAX_AUTHZID: usize = 1024;

/// The directory's answer to "Who am I?" (RFC 4532) on this connection:
/// the identity its ACL judges, a DN without its `dn:`. `None` when the
/// server does not answer, or answers with something no DN looks like.
pub(crate) async fn who_am_i(ldap: &mut Ldap) -> Option<String> {
    let (exop, _) = ldap.extended(WhoAmI).await.ok()?.success().ok()?;
    // Read here rather than by ldap3's parser, which panics on bytes that
    // are not UTF-8.
    let answer = String::from_utf8(exop.val?).ok()?;
    let authzid = answer.strip_prefix("dn:").unwrap_or(&answer);
    let fits = !authzid.is_empty()
        && authzid.len() <= MAX_AUTHZID
        && !authzid.chars().any(char::is_control);
    fits.then(|| authzid.to_owned())
}

/// What the Kerberos library says, on one line: a log line or a message
/// must not be split by its newlines.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Points the Kerberos library at the host's keys, for a GSSAPI bind.
///
/// `KRB5_CLIENT_KTNAME` makes MIT's GSSAPI get the host's tickets from
/// `keytab` itself, and get new ones before they expire, with no kinit and
/// no renewal job; `KRB5CCNAME` keeps those tickets in this process's
/// memory, where they neither land in root's own credential cache nor
/// outlive the daemon. The library reads both from the environment when a
/// bind needs them, and the environment must not change while another
/// thread may read it: call this before the runtime starts any thread.
pub fn use_keytab(keytab: &Path) {
    std::env::set_var("KRB5_CLIENT_KTNAME", format!("FILE:{}", keytab.display()));
    std::env::set_var("KRB5CCNAME", "MEMORY:deadbolt-syncd");
}
