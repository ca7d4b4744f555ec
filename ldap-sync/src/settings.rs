//! What the daemon runs with, resolved from `deadbolt.toml` and checked
//! before it starts: a config it cannot honour is refused with one line.

use deadbolt_config::{Bind, Config, PasswordStore};
use deadbolt_core::{LockoutPolicy, UserName};
use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use zeroize::Zeroizing;

/// How the host proves who it is.
#[derive(Clone)]
pub enum BindWith {
    Simple {
        dn: String,
        /// Read from `bind_password_file`; wiped when dropped.
        password: Zeroizing<String>,
    },
    External,
    /// SASL GSSAPI with the host's keys in `keytab`, for the `ldap/<name>`
    /// principal of `sasl_host`, or of the uri's host without one.
    Gssapi {
        keytab: PathBuf,
        sasl_host: Option<String>,
    },
}

impl std::fmt::Debug for BindWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindWith::Simple { dn, .. } => write!(f, "Simple {{ dn: {dn:?}, password: <hidden> }}"),
            BindWith::External => f.write_str("External"),
            BindWith::Gssapi { keytab, sasl_host } => write!(
                f,
                "Gssapi {{ keytab: {keytab:?}, sasl_host: {sasl_host:?} }}"
            ),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub host: String,
    pub uris: Vec<String>,
    pub base_dn: String,
    pub user_attribute: String,
    pub tls_ca_file: Option<PathBuf>,
    pub starttls: bool,
    pub max_clock_skew: Duration,
    pub timeout: Duration,
    pub state_dir: PathBuf,
    pub sync_dir: PathBuf,
    pub metrics_listen: Option<SocketAddr>,
    pub full_scan_every: Duration,
    pub password_store: PasswordStore,
    config: Config,
}

/// The largest bind password file read, in bytes.
const MAX_SECRET_LEN: u64 = 4096;

impl Settings {
    /// Resolves `config` for the daemon, or says in one line why it cannot
    /// be honoured. `secret_owner` is the uid the password file must belong
    /// to (root in production).
    pub fn resolve(config: Config, secret_owner: u32) -> Result<(Settings, BindWith), String> {
        let Some(directory) = config.directory.clone() else {
            return Err("no [directory] is configured: there is nothing to sync with".into());
        };
        if let Some(problem) = directory.transport_problems().into_iter().next() {
            return Err(problem);
        }
        if !crate::encoding::valid_host_name(&config.host.name) {
            return Err(format!(
                "[host] name {:?} cannot name a host record",
                config.host.name
            ));
        }
        let bind = match &directory.bind {
            Bind::Simple { dn, password_file } => {
                deadbolt_config::check_secret_file_owned_by(password_file, secret_owner)?;
                let mut text = Zeroizing::new(String::new());
                File::open(password_file)
                    .and_then(|f| f.take(MAX_SECRET_LEN).read_to_string(&mut text))
                    .map_err(|e| format!("{}: {e}", password_file.display()))?;
                let trimmed = Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_owned());
                if trimmed.is_empty() {
                    return Err(format!("{} is empty", password_file.display()));
                }
                BindWith::Simple {
                    dn: dn.clone(),
                    password: trimmed,
                }
            }
            Bind::SaslExternal => BindWith::External,
            Bind::SaslGssapi { keytab } => {
                deadbolt_config::check_keytab_file_owned_by(keytab, secret_owner)
                    .map_err(|why| format!("keytab: {why}"))?;
                BindWith::Gssapi {
                    keytab: keytab.clone(),
                    sasl_host: directory.sasl_host.clone(),
                }
            }
        };
        let settings = Settings {
            host: config.host.name.clone(),
            uris: directory.uris.iter().map(|u| u.text.clone()).collect(),
            base_dn: directory.base_dn.clone(),
            user_attribute: directory.user_attribute.clone(),
            tls_ca_file: directory.tls_ca_file.clone(),
            starttls: directory.starttls,
            max_clock_skew: directory.max_clock_skew,
            timeout: directory.timeout,
            state_dir: config.state.dir.clone(),
            sync_dir: config.sync.dir.clone(),
            metrics_listen: config.sync.metrics_listen,
            full_scan_every: config.sync.full_scan_every,
            password_store: directory.password_store,
            config,
        };
        Ok((settings, bind))
    }

    /// The lockout rules of `user`, by his groups as NSS tells them, as the
    /// PAM module chooses them.
    pub fn policy(&self, user: &UserName) -> LockoutPolicy {
        let account = deadbolt_core::identity::lookup(user.as_str());
        let membership = account
            .as_ref()
            .map(|a| deadbolt_core::identity::Membership::of(&a.name, a.gid));
        self.config
            .effective_lockout(|group| membership.as_ref().is_some_and(|m| m.contains(group)))
            .lockout
    }
}
