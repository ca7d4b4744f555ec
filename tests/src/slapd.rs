//! A real OpenLDAP server per test.
//!
//! [`Directory::start`] builds a cn=config in a temporary directory with
//! `slapadd -n0` (Debian's modules and schemas, deadbolt's schema from
//! `packaging/ldap/deadbolt.ldif`), starts `slapd` as a child process on a
//! loopback port and on an ldapi socket in that directory, adds the base
//! entries, and loads `packaging/ldap/constraint.ldif` and (unless told
//! otherwise) `packaging/ldap/acl.ldif` with `ldapmodify -Y EXTERNAL` as a
//! site would. The test's own user manages cn=config over ldapi
//! ([`Directory::config_modify`]). The employees' database
//! (`dc=example,dc=com`) has the syncprov and ppolicy overlays; the default
//! policy locks an account after three failed binds until an administrator
//! deletes `pwdAccountLockedTime`.
//!
//! The layout the ACL expects:
//!
//! ```text
//! dc=example,dc=com
//!   ou=people     uid=<user>: inetOrgPerson + posixAccount, manager = supervisor's DN
//!                   deadboltHost=<host>: one record per host (deadboltHostRecord)
//!   ou=hosts      cn=<host>: device + simpleSecurityObject
//!   ou=groups     cn=deadbolt-admins: groupOfNames, the administrators
//!   ou=policies   cn=default: the ppolicy default policy
//! ```
//!
//! Every password the harness handles reaches the LDAP tools through a 0600
//! file (`-y`), never a command line, and is stored as an argon2id hash.
//! Ports come from a counter shared by every test process (below the
//! kernel's ephemeral range), so tests may run in parallel.
//! [`provider_pair`] makes two such servers replicate each other
//! (multi-provider syncrepl, plain or delta).
//!
//! Dropping a [`Directory`] stops its slapd (SIGTERM, SIGKILL if it lingers)
//! and removes the temporary directory; [`Directory::stop`] waits for a
//! clean exit.

use deadbolt_core::password::HashParams;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The employees' database suffix.
pub const SUFFIX: &str = "dc=example,dc=com";
/// The rootdn of the employees' database.
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=com";
/// The administrators' group the example ACL names.
pub const ADMINS_GROUP_DN: &str = "cn=deadbolt-admins,ou=groups,dc=example,dc=com";
/// The ppolicy default policy.
pub const POLICY_DN: &str = "cn=default,ou=policies,dc=example,dc=com";
/// The hosts' identities live here.
pub const HOSTS_DN: &str = "ou=hosts,dc=example,dc=com";

/// How long slapd may take to come up, or a replica to catch up.
const STARTUP_DEADLINE: Duration = Duration::from_secs(10);

/// argon2id parameters for the test passwords: cheap, so that every bind
/// (slapd verifies the hash each time) stays fast.
const TEST_HASH: HashParams = HashParams {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

/// What [`Directory::start_with`] sets up.
#[derive(Clone, Copy, Debug)]
pub struct DirectoryOptions {
    /// The ppolicy overlay with the default policy (three failures lock
    /// until an administrator acts). Default true.
    pub ppolicy: bool,
    /// A test CA, a server certificate for 127.0.0.1 and localhost, an
    /// ldaps port and StartTLS on the ldap port. Default false.
    pub tls: bool,
    /// Load `packaging/ldap/acl.ldif`. Default true; without it slapd's
    /// default (everyone reads everything, only the rootdn writes) applies,
    /// and without `ppolicy` too the ppolicy module is not even loaded.
    pub acl: bool,
}

impl Default for DirectoryOptions {
    fn default() -> Self {
        DirectoryOptions {
            ppolicy: true,
            tls: false,
            acl: true,
        }
    }
}

/// How two providers replicate: see [`provider_pair`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replication {
    /// Syncrepl of whole entries: concurrent changes to one entry through
    /// different providers can lose values.
    Plain,
    /// Delta-syncrepl through an accesslog database on each provider.
    Delta,
}

/// One side of a replicated pair, decided before either server starts.
#[derive(Clone, Debug)]
struct Peer {
    server_id: u32,
    other_port: u16,
    mode: Replication,
}

/// Everything [`Directory::configure`] needs.
struct Setup {
    opts: DirectoryOptions,
    peer: Option<Peer>,
    /// deadbolt.ldif in the initial cn=config, and constraint.ldif loaded.
    deadbolt_schema: bool,
    /// The ldap port, when the peer's config already names it.
    port: Option<u16>,
    admin_password: String,
}

/// A host's directory identity, made by [`Directory::add_host`]. Its Debug
/// output leaves the password out.
#[derive(Clone)]
pub struct Host {
    /// The host's name (the `cn` of its identity).
    pub name: String,
    pub dn: String,
    pub password: String,
    /// A 0600 file holding exactly the password (no newline), as a bind
    /// secret file would.
    pub password_file: PathBuf,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("name", &self.name)
            .field("dn", &self.dn)
            .field("password_file", &self.password_file)
            .finish_non_exhaustive()
    }
}

/// An entry as `ldapsearch` returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    /// Attribute names lower-cased; values in the order slapd sent them.
    pub attrs: BTreeMap<String, Vec<String>>,
}

impl Entry {
    /// The values of `attr` (any case), none when absent.
    pub fn values(&self, attr: &str) -> &[String] {
        self.attrs
            .get(&attr.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The first value of `attr`, if any.
    pub fn first(&self, attr: &str) -> Option<&str> {
        self.values(attr).first().map(String::as_str)
    }

    /// Whether `attr` has the value `value` (compared exactly).
    pub fn has(&self, attr: &str, value: &str) -> bool {
        self.values(attr).iter().any(|v| v == value)
    }
}

/// The result of an LDAP command-line tool: its exit status is the LDAP
/// result code (0 success, 50 insufficientAccess, 19 constraintViolation...).
#[derive(Debug, Clone)]
pub struct LdapResult {
    /// The exit code; -1 when the tool was killed by a signal.
    pub code: i32,
    pub stderr: String,
}

impl LdapResult {
    pub fn is_ok(&self) -> bool {
        self.code == 0
    }

    /// `Ok` on success, else the tool's standard error.
    pub fn into_result(self) -> Result<(), String> {
        if self.code == 0 {
            Ok(())
        } else {
            Err(self.stderr)
        }
    }
}

/// The LDAP result code for insufficientAccess.
pub const INSUFFICIENT_ACCESS: i32 = 50;

/// What [`make_tls`] wrote: besides these, `server.crt` and `server.key`
/// (for 127.0.0.1 and localhost, signed by `ca`) in the same directory.
#[derive(Debug)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub other_ca: PathBuf,
}

/// A running slapd owned by the test: see the module documentation. Its
/// Debug output leaves the rootdn's password out.
pub struct Directory {
    child: Option<Child>,
    root: tempfile::TempDir,
    port: u16,
    tls_port: Option<u16>,
    admin_password: String,
    admin_password_file: PathBuf,
    tls: Option<TlsFiles>,
    next_id: AtomicU32,
    /// More environment for slapd (the Kerberos library's files).
    envs: Vec<(String, String)>,
}

impl fmt::Debug for Directory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Directory")
            .field("dir", &self.root.path())
            .field("port", &self.port)
            .field("tls_port", &self.tls_port)
            .field("pid", &self.child.as_ref().map(Child::id))
            .finish_non_exhaustive()
    }
}

impl Directory {
    /// A directory with the default options (ppolicy and the example ACL, no TLS).
    pub fn start() -> Directory {
        Directory::start_with(DirectoryOptions::default())
    }

    /// A directory with `opts`.
    pub fn start_with(opts: DirectoryOptions) -> Directory {
        let dir = Directory::configure(Setup {
            opts,
            peer: None,
            deadbolt_schema: true,
            port: None,
            admin_password: random_secret(),
        });
        dir.add_base_entries(opts.ppolicy || opts.acl);
        dir
    }

    /// A directory as a site has it before installing deadbolt: the base
    /// entries, ppolicy, but neither deadbolt's schema nor its ACL nor its
    /// constraints (load them with [`Directory::config_modify`]).
    pub fn start_without_deadbolt_schema() -> Directory {
        let dir = Directory::configure(Setup {
            opts: DirectoryOptions {
                acl: false,
                ..DirectoryOptions::default()
            },
            peer: None,
            deadbolt_schema: false,
            port: None,
            admin_password: random_secret(),
        });
        dir.add_base_entries(true);
        dir
    }

    /// Writes the configuration, starts slapd, loads the constraints and
    /// the ACL; adds no entries (a replica gets them from its peer).
    fn configure(setup: Setup) -> Directory {
        let Setup {
            opts,
            peer,
            deadbolt_schema,
            port,
            admin_password,
        } = setup;
        let admin_password = admin_password.as_str();
        let root = tempfile::Builder::new()
            .prefix("deadbolt-slapd.")
            .tempdir()
            .expect("make a temporary directory for slapd");
        let port = port.unwrap_or_else(allocate_port);
        let tls_port = opts.tls.then(allocate_port);
        let tls = opts.tls.then(|| make_tls(root.path()));
        let admin_password_file = root.path().join("admin.pw");
        write_secret_file(&admin_password_file, admin_password);
        for sub in ["slapd.d", "db", "accesslog"] {
            fs::create_dir(root.path().join(sub)).expect("make a slapd directory");
        }
        let ldif = config_ldif(
            root.path(),
            opts,
            peer.as_ref(),
            deadbolt_schema,
            admin_password,
        );
        let config = root.path().join("config.ldif");
        fs::write(&config, ldif).expect("write config.ldif");
        run_checked(
            Command::new("slapadd")
                .arg("-n0")
                .arg("-F")
                .arg(root.path().join("slapd.d"))
                .arg("-l")
                .arg(&config),
            "slapadd -n0 (the configuration)",
        );
        // slapadd's input; slapd reads slapd.d.
        let _ = fs::remove_file(&config);
        let mut dir = Directory {
            child: None,
            root,
            port,
            tls_port,
            admin_password: admin_password.to_owned(),
            admin_password_file,
            tls,
            next_id: AtomicU32::new(10_000),
            envs: Vec::new(),
        };
        dir.spawn();
        if deadbolt_schema {
            dir.load_config_file(&constraint_ldif_path());
        }
        if opts.acl {
            dir.load_config_file(&acl_ldif_path());
        }
        dir
    }

    fn spawn(&mut self) {
        let mut urls = format!("ldap://127.0.0.1:{}/ {}", self.port, self.ldapi_uri());
        if let Some(p) = self.tls_port {
            write!(urls, " ldaps://127.0.0.1:{p}/").expect("write to a String");
        }
        // DEADBOLT_TEST_SLAPD_DEBUG (slapd's -d: "sync", "stats,sync", ...)
        // writes slapd's trace to slapd.log, for a test being diagnosed.
        let debug = std::env::var("DEADBOLT_TEST_SLAPD_DEBUG").unwrap_or_else(|_| "0".into());
        let child = Command::new("slapd")
            .arg("-d")
            .arg(debug)
            .arg("-h")
            .arg(&urls)
            .arg("-F")
            .arg(self.root.path().join("slapd.d"))
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.root.path().join("slapd.log"))
                    .expect("slapd.log"),
            )
            .spawn()
            .expect("start slapd (install slapd: scripts/setup-deps)");
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let socket = self.root.path().join("ldapi");
        let started = Instant::now();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!(
                    "slapd exited at start ({status}) on port {}:\n{}",
                    self.port,
                    self.log()
                );
            }
            // The ldapi socket is ours alone: a port someone else took in
            // the meantime would answer the TCP connect, never this socket.
            if socket.exists()
                && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
                && std::os::unix::net::UnixStream::connect(&socket).is_ok()
            {
                break;
            }
            assert!(
                started.elapsed() < STARTUP_DEADLINE,
                "slapd did not listen on port {} within {:?}:\n{}",
                self.port,
                STARTUP_DEADLINE,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // slapd opens every listener before it serves any: if the TCP port
        // had been taken, it would have exited instead.
        if let Some(status) = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            self.child = None;
            panic!("slapd exited at start ({status}):\n{}", self.log());
        }
    }

    /// slapd's standard error over every start (debug level 0: errors only).
    pub fn log(&self) -> String {
        fs::read_to_string(self.root.path().join("slapd.log")).unwrap_or_default()
    }

    fn load_config_file(&self, path: &Path) {
        let ldif =
            fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        if let Err(e) = self.config_modify(&ldif) {
            panic!("loading {} failed:\n{e}", path.display());
        }
    }

    /// `ldapmodify -Y EXTERNAL -H ldapi://...` as the test's own user, who
    /// manages cn=config (as root does on a Debian install): how a site
    /// loads deadbolt's LDIF files. Records need a `changetype`.
    pub fn config_modify(&self, ldif: &str) -> Result<(), String> {
        self.run_ldap_output(
            "ldapmodify",
            &["-Y", "EXTERNAL", "-H", &self.ldapi_uri(), "-Q"],
            Some(ldif),
        )
        .0
        .into_result()
    }

    /// `ldapadd -Y EXTERNAL -H ldapi://...`: [`Directory::config_modify`]
    /// for records without a `changetype` (such as deadbolt.ldif).
    pub fn config_add(&self, ldif: &str) -> Result<(), String> {
        self.run_ldap_output(
            "ldapmodify",
            &["-a", "-Y", "EXTERNAL", "-H", &self.ldapi_uri(), "-Q"],
            Some(ldif),
        )
        .0
        .into_result()
    }

    fn add_base_entries(&self, with_policy: bool) {
        let mut ldif = format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n"
        );
        for ou in ["people", "hosts", "groups", "policies"] {
            writeln!(
                ldif,
                "dn: ou={ou},{SUFFIX}\nobjectClass: organizationalUnit\nou: {ou}\n"
            )
            .expect("write to a String");
        }
        // groupOfNames needs a member: the rootdn, which needs no group anyway.
        writeln!(
            ldif,
            "dn: {ADMINS_GROUP_DN}\nobjectClass: groupOfNames\ncn: deadbolt-admins\nmember: {ADMIN_DN}\n"
        )
        .expect("write to a String");
        if with_policy {
            writeln!(
                ldif,
                "dn: {POLICY_DN}\nobjectClass: device\nobjectClass: pwdPolicy\ncn: default\n\
                 pwdAttribute: userPassword\npwdMaxFailure: 3\npwdLockout: TRUE\n\
                 pwdLockoutDuration: 0\npwdFailureCountInterval: 0\n"
            )
            .expect("write to a String");
        }
        self.add(ADMIN_DN, &self.admin_password, &ldif)
            .unwrap_or_else(|e| panic!("adding the base entries failed: {e}"));
    }

    /// `ldap://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// The TCP port of [`Directory::uri`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ldapi://` on the socket in the temporary directory (URL-encoded path).
    pub fn ldapi_uri(&self) -> String {
        let path = self.root.path().join("ldapi");
        format!("ldapi://{}", url_encode(&path.to_string_lossy()))
    }

    /// `ldaps://127.0.0.1:PORT`, when started with `tls`.
    pub fn ldaps_uri(&self) -> Option<String> {
        self.tls_port.map(|p| format!("ldaps://127.0.0.1:{p}"))
    }

    /// The test CA that signed the server certificate, when started with `tls`.
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.tls.as_ref().map(|t| t.ca.clone())
    }

    /// A second CA, which did not sign the server certificate: a client
    /// trusting only it must refuse the server. Panics unless started with `tls`.
    pub fn other_ca_file(&self) -> PathBuf {
        self.tls
            .as_ref()
            .map(|t| t.other_ca.clone())
            .expect("other_ca_file: start the directory with tls: true")
    }

    /// The temporary directory (slapd.d, the databases, the ldapi socket).
    pub fn dir(&self) -> &Path {
        self.root.path()
    }

    /// `dc=example,dc=com`.
    pub fn suffix(&self) -> &str {
        SUFFIX
    }

    /// `ou=people,dc=example,dc=com`.
    pub fn people_dn(&self) -> String {
        format!("ou=people,{SUFFIX}")
    }

    /// The rootdn of the employees' database.
    pub fn admin_dn(&self) -> &str {
        ADMIN_DN
    }

    /// The rootdn's password.
    pub fn admin_password(&self) -> &str {
        &self.admin_password
    }

    /// A 0600 file holding the rootdn's password.
    pub fn admin_password_file(&self) -> &Path {
        &self.admin_password_file
    }

    /// The DN of employee `uid` (escaped as RFC 4514 says).
    pub fn employee_dn(&self, uid: &str) -> String {
        format!("uid={},{}", dn_escape(uid), self.people_dn())
    }

    /// The DN of host `host`'s record under the employee entry `employee_dn`.
    pub fn host_record_dn(&self, employee_dn: &str, host: &str) -> String {
        format!("deadboltHost={},{employee_dn}", dn_escape(host))
    }

    /// Adds an employee (inetOrgPerson + posixAccount) with an argon2id
    /// `userPassword`; `manager` is the supervisor's DN. Returns the DN.
    /// `uid` may hold DN or filter metacharacters.
    pub fn add_employee(&self, uid: &str, password: &str, manager: Option<&str>) -> String {
        let dn = self.employee_dn(uid);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut ldif = String::new();
        ldif_line(&mut ldif, "dn", &dn);
        ldif.push_str("objectClass: inetOrgPerson\nobjectClass: posixAccount\n");
        ldif_line(&mut ldif, "uid", uid);
        ldif_line(&mut ldif, "cn", uid);
        ldif_line(&mut ldif, "sn", uid);
        writeln!(
            ldif,
            "uidNumber: {id}\ngidNumber: {id}\nhomeDirectory: /home/u{id}"
        )
        .expect("write to a String");
        ldif_line(&mut ldif, "userPassword", &hash_password(password));
        if let Some(manager) = manager {
            ldif_line(&mut ldif, "manager", manager);
        }
        self.add(ADMIN_DN, &self.admin_password, &ldif)
            .unwrap_or_else(|e| panic!("adding employee {uid:?} failed: {e}"));
        dn
    }

    /// Adds a host identity `cn=<name>,ou=hosts,...` with a random password.
    pub fn add_host(&self, name: &str) -> Host {
        let dn = format!("cn={},{HOSTS_DN}", dn_escape(name));
        let password = random_secret();
        let mut ldif = String::new();
        ldif_line(&mut ldif, "dn", &dn);
        ldif.push_str("objectClass: device\nobjectClass: simpleSecurityObject\n");
        ldif_line(&mut ldif, "cn", name);
        ldif_line(&mut ldif, "userPassword", &hash_password(&password));
        self.add(ADMIN_DN, &self.admin_password, &ldif)
            .unwrap_or_else(|e| panic!("adding host {name:?} failed: {e}"));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let password_file = self.root.path().join(format!("host-{id}.pw"));
        write_secret_file(&password_file, &password);
        Host {
            name: name.to_owned(),
            dn,
            password,
            password_file,
        }
    }

    /// An employee who is also a member of `cn=deadbolt-admins`. Returns the DN.
    pub fn add_admin(&self, uid: &str, password: &str) -> String {
        let dn = self.add_employee(uid, password, None);
        let mut ldif = format!("dn: {ADMINS_GROUP_DN}\nchangetype: modify\nadd: member\n");
        ldif_line(&mut ldif, "member", &dn);
        self.modify(ADMIN_DN, &self.admin_password, &ldif)
            .unwrap_or_else(|e| panic!("adding {uid:?} to the administrators failed: {e}"));
        dn
    }

    /// `ldapmodify` bound as `bind_dn` (anonymous when empty); `Err` holds
    /// its standard error.
    pub fn modify(&self, bind_dn: &str, password: &str, ldif: &str) -> Result<(), String> {
        self.try_modify(bind_dn, password, ldif).into_result()
    }

    /// `ldapmodify` (`-a`: `add`) of `ldif` as the rootdn, read from a
    /// file and its output dropped: thousands of entries print more than a
    /// pipe holds. Panics if any change fails.
    pub fn bulk_modify(&self, ldif: &str, add: bool) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let file = self.root.path().join(format!("bulk-{id}.ldif"));
        fs::write(&file, ldif).expect("write the LDIF");
        let mut cmd = Command::new("ldapmodify");
        cmd.env("LDAPNOINIT", "1")
            .args(["-x", "-H", &self.uri(), "-D", ADMIN_DN, "-y"])
            .arg(self.admin_password_file())
            .arg("-f")
            .arg(&file)
            .stdout(Stdio::null());
        if add {
            cmd.arg("-a");
        }
        let status = cmd.status().expect("run ldapmodify (install ldap-utils)");
        assert!(status.success(), "ldapmodify -f {} failed", file.display());
        let _ = fs::remove_file(&file);
    }

    /// `ldapadd` bound as `bind_dn` (anonymous when empty).
    pub fn add(&self, bind_dn: &str, password: &str, ldif: &str) -> Result<(), String> {
        self.try_add(bind_dn, password, ldif).into_result()
    }

    /// `ldapdelete` of `dn` bound as `bind_dn` (anonymous when empty).
    pub fn delete(&self, bind_dn: &str, password: &str, dn: &str) -> Result<(), String> {
        self.try_delete(bind_dn, password, dn).into_result()
    }

    /// [`Directory::modify`] with the result code.
    pub fn try_modify(&self, bind_dn: &str, password: &str, ldif: &str) -> LdapResult {
        self.bound_output("ldapmodify", bind_dn, password, &[], Some(ldif))
            .0
    }

    /// [`Directory::add`] with the result code.
    pub fn try_add(&self, bind_dn: &str, password: &str, ldif: &str) -> LdapResult {
        self.bound_output("ldapmodify", bind_dn, password, &["-a"], Some(ldif))
            .0
    }

    /// [`Directory::delete`] with the result code.
    pub fn try_delete(&self, bind_dn: &str, password: &str, dn: &str) -> LdapResult {
        self.bound_output("ldapdelete", bind_dn, password, &[dn], None)
            .0
    }

    /// `ldapmodrdn -r` of `dn` to `new_rdn` (under `new_superior` when
    /// given), bound as `bind_dn` (anonymous when empty).
    pub fn try_rename(
        &self,
        bind_dn: &str,
        password: &str,
        dn: &str,
        new_rdn: &str,
        new_superior: Option<&str>,
    ) -> LdapResult {
        let mut args = vec!["-r"];
        if let Some(sup) = new_superior {
            args.extend_from_slice(&["-s", sup]);
        }
        args.extend_from_slice(&[dn, new_rdn]);
        self.bound_output("ldapmodrdn", bind_dn, password, &args, None)
            .0
    }

    /// `ldappasswd` (the RFC 3062 password-modify operation) bound as
    /// `bind_dn`: sets `target`'s password to `new_password`, which reaches
    /// the tool through a 0600 file, and the directory hashes it.
    pub fn try_password_modify(
        &self,
        bind_dn: &str,
        password: &str,
        target: &str,
        new_password: &str,
    ) -> LdapResult {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let path = self.root.path().join(format!("new-{id}.pw"));
        write_secret_file(&path, new_password);
        let file = TempFile(path.clone());
        let path = path.to_str().expect("a UTF-8 temporary path").to_owned();
        let (mut result, stdout) = self.bound_output(
            "ldappasswd",
            bind_dn,
            password,
            &["-T", &path, target],
            None,
        );
        drop(file);
        // ldappasswd exits 1 whatever the directory answered; the LDAP
        // result is in its message, "Result: Insufficient access (50)".
        if result.code == 1 {
            let code = result
                .stderr
                .lines()
                .chain(stdout.lines())
                .filter_map(|l| l.trim().strip_prefix("Result: "))
                .filter_map(|r| r.rsplit_once('(').and_then(|(_, n)| n.strip_suffix(')')))
                .find_map(|n| n.parse::<i32>().ok());
            if let Some(code) = code {
                result.code = code;
            }
        }
        result
    }

    /// Whether the entry `dn` carries ppolicy's `pwdReset: TRUE` (must
    /// change at the next login).
    pub fn pwd_reset(&self, dn: &str) -> bool {
        self.entry(dn, &["pwdReset"])
            .is_some_and(|e| e.has("pwdReset", "TRUE"))
    }

    /// A simple bind as `dn`, nothing else (`ldapwhoami`).
    pub fn try_bind(&self, dn: &str, password: &str) -> LdapResult {
        self.bound_output("ldapwhoami", dn, password, &[], None).0
    }

    /// Searches as the rootdn; panics on any error but noSuchObject (an
    /// empty result). `scope`: base, one, sub or children. `attrs` may
    /// name `+` for the operational attributes, `*` for the others.
    pub fn search(&self, base: &str, scope: &str, filter: &str, attrs: &[&str]) -> Vec<Entry> {
        self.search_as(ADMIN_DN, &self.admin_password, base, scope, filter, attrs)
            .unwrap_or_else(|e| panic!("search of {base} failed: {e}"))
    }

    /// Searches bound as `bind_dn` (anonymous when empty): what that
    /// identity may read. noSuchObject is an empty result.
    pub fn search_as(
        &self,
        bind_dn: &str,
        password: &str,
        base: &str,
        scope: &str,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<Entry>, String> {
        let mut args = vec![
            "-LLL",
            "-o",
            "ldif-wrap=no",
            "-b",
            base,
            "-s",
            scope,
            "-z",
            "0",
            filter,
        ];
        args.extend_from_slice(attrs);
        let (result, stdout) = self.bound_output("ldapsearch", bind_dn, password, &args, None);
        match result.code {
            0 => Ok(parse_ldif(&stdout)),
            32 => Ok(Vec::new()),
            _ => Err(result.stderr),
        }
    }

    /// The entry `dn` with the attributes `attrs`, as the rootdn sees it.
    pub fn entry(&self, dn: &str, attrs: &[&str]) -> Option<Entry> {
        self.search(dn, "base", "(objectClass=*)", attrs)
            .into_iter()
            .next()
    }

    fn bound_output(
        &self,
        tool: &str,
        bind_dn: &str,
        password: &str,
        extra: &[&str],
        stdin: Option<&str>,
    ) -> (LdapResult, String) {
        let uri = self.uri();
        let mut args: Vec<&str> = vec!["-x", "-H", &uri];
        let pw_file;
        let pw_path;
        if !bind_dn.is_empty() {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            pw_path = self.root.path().join(format!("bind-{id}.pw"));
            write_secret_file(&pw_path, password);
            pw_file = TempFile(pw_path.clone());
            args.extend_from_slice(&["-D", bind_dn, "-y"]);
            args.push(pw_path.to_str().expect("a UTF-8 temporary path"));
        } else {
            pw_file = TempFile(PathBuf::new());
        }
        args.extend_from_slice(extra);
        let out = self.run_ldap_output(tool, &args, stdin);
        drop(pw_file);
        out
    }

    fn run_ldap_output(
        &self,
        tool: &str,
        args: &[&str],
        stdin: Option<&str>,
    ) -> (LdapResult, String) {
        let mut cmd = Command::new(tool);
        cmd.args(args)
            // Keep the machine's ldap.conf (a default URI, TLS settings) out.
            .env("LDAPNOINIT", "1")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("run {tool} (install ldap-utils): {e}"));
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().expect("a piped stdin");
            // The tool may stop reading at its first error.
            let _ = pipe.write_all(text.as_bytes());
        }
        let out = child.wait_with_output().expect("wait for an LDAP tool");
        (
            LdapResult {
                code: out.status.code().unwrap_or(-1),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Stops slapd (SIGTERM, then waits); the data stays for [`Directory::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let _ = child.wait();
        }
    }

    /// SIGKILL, then waits: the crash case. [`Directory::restart`] brings
    /// it back on the same data.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts slapd again on the same ports with the same data.
    pub fn restart(&mut self) {
        self.stop();
        // The ldapi socket of the stopped server would look ready at once.
        let _ = fs::remove_file(self.root.path().join("ldapi"));
        self.spawn();
    }

    /// Locks the entry `dn` for good, as ppolicy does (`pwdAccountLockedTime:
    /// 000001010000Z`), as the rootdn.
    pub fn lock_for_good(&self, dn: &str) {
        self.modify(
            ADMIN_DN,
            &self.admin_password,
            &format!(
                "dn: {dn}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: \
                 000001010000Z\n"
            ),
        )
        .unwrap_or_else(|e| panic!("locking {dn} in the directory failed: {e}"));
    }

    /// Reactivates the entry `dn` by hand, as a directory administrator
    /// does with ldapmodify: deletes its `pwdAccountLockedTime`, as the
    /// rootdn.
    pub fn unlock_by_hand(&self, dn: &str) {
        self.modify(
            ADMIN_DN,
            &self.admin_password,
            &format!("dn: {dn}\nchangetype: modify\ndelete: pwdAccountLockedTime\n"),
        )
        .unwrap_or_else(|e| panic!("deleting the lock of {dn} failed: {e}"));
    }

    /// [`Directory::restart`] with `envs` added to slapd's environment
    /// from now on (KRB5_KTNAME, read only at start).
    pub fn restart_with_env(&mut self, envs: &[(&str, &str)]) {
        self.envs
            .extend(envs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        self.restart();
    }

    /// Whether slapd is running (started and not stopped).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// slapd's process id. Panics when stopped.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("slapd is stopped").id()
    }
}

impl Drop for Directory {
    /// SIGTERM, and SIGKILL if slapd is still there after a moment: with a
    /// live syncrepl session slapd waits out its consumer's timeout before
    /// it exits, and the data is thrown away here anyway. [`Directory::stop`]
    /// always waits for a clean exit.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let started = Instant::now();
            while matches!(child.try_wait(), Ok(None)) {
                if started.elapsed() > Duration::from_millis(300) {
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = child.wait();
        }
    }
}

/// Removes a file when dropped (an empty path: nothing).
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.0);
        }
    }
}

/// Two providers of `dc=example,dc=com` in multi-provider replication
/// (olcServerID 1 and 2, olcMultiProvider, each a syncrepl consumer of the
/// other as the rootdn; `Delta` adds an accesslog database to each), both
/// with the schema, the constraints, the example ACL and ppolicy. The base
/// entries are added on the first; returns once they are on the second and
/// a change made on the second (a `description` on the suffix entry) is on
/// the first, so replication runs both ways.
pub fn provider_pair(mode: Replication) -> (Directory, Directory) {
    let password = random_secret();
    let port_a = allocate_port();
    let port_b = allocate_port();
    let opts = DirectoryOptions::default();
    let side = |server_id, port, other_port| {
        Directory::configure(Setup {
            opts,
            peer: Some(Peer {
                server_id,
                other_port,
                mode,
            }),
            deadbolt_schema: true,
            port: Some(port),
            admin_password: password.clone(),
        })
    };
    let a = side(1, port_a, port_b);
    let b = side(2, port_b, port_a);
    // A consumer whose provider lacks the suffix entry fails and waits out
    // its retry interval: the base entries go on the first provider, the
    // second copies them, and only then does the first consume from it.
    a.add_base_entries(true);
    let consume = |dir: &Directory, server_id, other_port| {
        let peer = Peer {
            server_id,
            other_port,
            mode,
        };
        dir.config_modify(&syncrepl_ldif(&peer, &password))
            .unwrap_or_else(|e| panic!("starting replication failed: {e}"));
    };
    consume(&b, 2, port_a);
    wait_until(
        "the base entries to replicate to the second provider",
        STARTUP_DEADLINE,
        || {
            b.search(
                &format!("ou=policies,{SUFFIX}"),
                "sub",
                "(objectClass=pwdPolicy)",
                &["cn"],
            )
            .first()
            .map(|_| ())
        },
    );
    consume(&a, 1, port_b);
    // And the other way, so that a test may write on either side at once.
    let marker = "replication is running both ways";
    b.modify(
        ADMIN_DN,
        &password,
        &format!("dn: {SUFFIX}\nchangetype: modify\nreplace: description\ndescription: {marker}\n"),
    )
    .unwrap_or_else(|e| panic!("writing on the second provider failed: {e}"));
    wait_until(
        "a change on the second provider to reach the first",
        STARTUP_DEADLINE,
        || {
            a.entry(SUFFIX, &["description"])
                .filter(|e| e.has("description", marker))
                .map(|_| ())
        },
    );
    (a, b)
}

/// Polls `f` every few milliseconds until it returns `Some`, and returns
/// that; panics naming `what` when `deadline` passes first.
pub fn wait_until<T>(what: &str, deadline: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(
            started.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `packaging/ldap/deadbolt.ldif`.
pub fn schema_ldif_path() -> PathBuf {
    crate::workspace_dir().join("packaging/ldap/deadbolt.ldif")
}

/// `packaging/ldap/deadbolt.schema`.
pub fn schema_conf_path() -> PathBuf {
    crate::workspace_dir().join("packaging/ldap/deadbolt.schema")
}

/// `packaging/ldap/constraint.ldif`.
pub fn constraint_ldif_path() -> PathBuf {
    crate::workspace_dir().join("packaging/ldap/constraint.ldif")
}

/// `packaging/ldap/acl.ldif`.
pub fn acl_ldif_path() -> PathBuf {
    crate::workspace_dir().join("packaging/ldap/acl.ldif")
}

/// The cn=config LDIF for one server.
fn config_ldif(
    root: &Path,
    opts: DirectoryOptions,
    peer: Option<&Peer>,
    deadbolt_schema: bool,
    admin_password: &str,
) -> String {
    let delta = peer.is_some_and(|p| p.mode == Replication::Delta);
    let dir = root.display();
    let mut l = String::new();
    let mut push = |s: &str| {
        l.push_str(s);
        l.push('\n');
    };
    push("dn: cn=config\nobjectClass: olcGlobal\ncn: config");
    push(&format!(
        "olcPidFile: {dir}/slapd.pid\nolcArgsFile: {dir}/slapd.args"
    ));
    if let Some(peer) = peer {
        push(&format!("olcServerID: {}", peer.server_id));
    }
    if opts.tls {
        push(&format!(
            "olcTLSCACertificateFile: {dir}/ca.crt\n\
             olcTLSCertificateFile: {dir}/server.crt\n\
             olcTLSCertificateKeyFile: {dir}/server.key"
        ));
    }
    push("");
    let mut modules = vec!["back_mdb", "syncprov", "argon2"];
    // The example ACL names pwdAccountLockedTime, whose schema the module
    // brings; without either, the directory has no ppolicy at all.
    if opts.ppolicy || opts.acl {
        modules.push("ppolicy");
    }
    if delta {
        modules.push("accesslog");
    }
    push("dn: cn=module{0},cn=config\nobjectClass: olcModuleList\ncn: module{0}\nolcModulePath: /usr/lib/ldap");
    for (i, m) in modules.iter().enumerate() {
        push(&format!("olcModuleLoad: {{{i}}}{m}"));
    }
    push("");
    push("dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n");
    for schema in ["core", "cosine", "nis", "inetorgperson"] {
        let path = format!("/etc/ldap/schema/{schema}.ldif");
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path} (slapd): {e}"));
        push(text.trim_end());
        push("");
    }
    if deadbolt_schema {
        let ours =
            fs::read_to_string(schema_ldif_path()).expect("read packaging/ldap/deadbolt.ldif");
        push(ours.trim_end());
        push("");
    }
    push("dn: olcDatabase={-1}frontend,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcFrontendConfig\nolcDatabase: {-1}frontend\n");
    // The test's own user manages cn=config over ldapi, as root does on a
    // Debian install.
    push(&format!(
        "dn: olcDatabase={{0}}config,cn=config\nobjectClass: olcDatabaseConfig\nolcDatabase: {{0}}config\n\
         olcAccess: {{0}}to * by dn.exact=\"{}\" manage by * none\n",
        peercred_dn()
    ));
    push(&format!(
        "dn: olcDatabase={{1}}mdb,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\n\
         olcDatabase: {{1}}mdb\nolcDbDirectory: {dir}/db\nolcSuffix: {SUFFIX}\nolcRootDN: {ADMIN_DN}"
    ));
    push(&format!("olcRootPW: {}", hash_password(admin_password)));
    push("olcDbMaxSize: 268435456");
    for index in ["objectClass eq", "uid eq", "entryCSN eq", "entryUUID eq"] {
        push(&format!("olcDbIndex: {index}"));
    }
    push("");
    push(
        "dn: olcOverlay={0}syncprov,olcDatabase={1}mdb,cn=config\nobjectClass: olcOverlayConfig\n\
         objectClass: olcSyncProvConfig\nolcOverlay: {0}syncprov\nolcSpCheckpoint: 1 1\n\
         olcSpSessionlog: 100\n",
    );
    let mut next_overlay = 1;
    if delta {
        push(&format!(
            "dn: olcOverlay={{{next_overlay}}}accesslog,olcDatabase={{1}}mdb,cn=config\n\
             objectClass: olcOverlayConfig\nobjectClass: olcAccessLogConfig\n\
             olcOverlay: {{{next_overlay}}}accesslog\nolcAccessLogDB: cn=accesslog\n\
             olcAccessLogOps: writes\nolcAccessLogSuccess: TRUE\n\
             olcAccessLogPurge: 07+00:00 01+00:00\n"
        ));
        next_overlay += 1;
    }
    if opts.ppolicy {
        push(&format!(
            "dn: olcOverlay={{{next_overlay}}}ppolicy,olcDatabase={{1}}mdb,cn=config\n\
             objectClass: olcOverlayConfig\nobjectClass: olcPPolicyConfig\n\
             olcOverlay: {{{next_overlay}}}ppolicy\nolcPPolicyDefault: {POLICY_DN}\n"
        ));
    }
    if delta {
        push(&format!(
            "dn: olcDatabase={{2}}mdb,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\n\
             olcDatabase: {{2}}mdb\nolcDbDirectory: {dir}/accesslog\nolcSuffix: cn=accesslog\n\
             olcRootDN: cn=accesslog\nolcDbMaxSize: 268435456\n\
             olcDbIndex: default eq\nolcDbIndex: entryCSN,objectClass,reqEnd,reqResult,reqStart,reqDN\n\
             olcAccess: {{0}}to * by dn.exact=\"{ADMIN_DN}\" read by * none\n\
             olcLimits: {{0}}dn.exact=\"{ADMIN_DN}\" time=unlimited size=unlimited\n"
        ));
        push(
            "dn: olcOverlay={0}syncprov,olcDatabase={2}mdb,cn=config\nobjectClass: olcOverlayConfig\n\
             objectClass: olcSyncProvConfig\nolcOverlay: {0}syncprov\nolcSpNoPresent: TRUE\n\
             olcSpReloadHint: TRUE\nolcSpCheckpoint: 1 1\n",
        );
    }
    l
}

/// The change that makes a server a consumer of its peer, applied once both
/// servers listen: a syncrepl in the initial config would find its peer
/// absent and wait out its retry interval.
fn syncrepl_ldif(peer: &Peer, admin_password: &str) -> String {
    let mut line = format!(
        "olcSyncrepl: {{0}}rid=001 provider=ldap://127.0.0.1:{}/ bindmethod=simple \
         binddn=\"{ADMIN_DN}\" credentials=\"{admin_password}\" searchbase=\"{SUFFIX}\" \
         type=refreshAndPersist retry=\"1 +\" timeout=1 network-timeout=1",
        peer.other_port
    );
    if peer.mode == Replication::Delta {
        line.push_str(
            " logbase=\"cn=accesslog\" \
             logfilter=\"(&(objectClass=auditWriteObject)(reqResult=0))\" syncdata=accesslog",
        );
    }
    format!(
        "dn: olcDatabase={{1}}mdb,cn=config\nchangetype: modify\nadd: olcSyncrepl\n{line}\n-\n\
         replace: olcMultiProvider\nolcMultiProvider: TRUE\n"
    )
}

/// The identity slapd gives this process on ldapi with SASL EXTERNAL.
pub fn peercred_dn() -> String {
    format!(
        "gidNumber={}+uidNumber={},cn=peercred,cn=external,cn=auth",
        nix::unistd::getegid(),
        nix::unistd::geteuid()
    )
}

/// The CA, the server certificate (127.0.0.1 and localhost) and a second,
/// unrelated CA, made with openssl in `root`.
/// A test CA, an unrelated second CA, and a server certificate signed by
/// the first, made with openssl in `root`.
pub fn make_tls(root: &Path) -> TlsFiles {
    let run = |args: &[&str]| {
        run_checked(
            Command::new("openssl").args(args).current_dir(root),
            &format!("openssl {args:?}"),
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    for (name, subject) in [
        ("ca", "/CN=deadbolt test CA"),
        ("other-ca", "/CN=deadbolt unrelated CA"),
    ] {
        let key = format!("{name}.key");
        let crt = format!("{name}.crt");
        let mut args = vec!["req", "-x509"];
        args.extend_from_slice(&ec);
        args.extend_from_slice(&[
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "2",
            "-subj",
            subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        run(&args);
    }
    let mut args = vec!["req"];
    args.extend_from_slice(&ec);
    args.extend_from_slice(&[
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&args);
    fs::write(
        root.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    TlsFiles {
        ca: root.join("ca.crt"),
        other_ca: root.join("other-ca.crt"),
    }
}

/// A free loopback port below the kernel's ephemeral range (so outgoing
/// connections never take it), handed out once across every test process
/// through a counter file in /tmp, read and written under the harness's
/// machine-wide lock.
pub fn allocate_port() -> u16 {
    const FIRST: u16 = 20_000;
    const LAST: u16 = 32_000;
    const COUNTER: &str = "/tmp/deadbolt-tests.ports";
    let _lock = crate::StartupLock::take();
    let mut next = fs::read_to_string(COUNTER)
        .ok()
        .and_then(|t| t.trim().parse::<u16>().ok())
        .unwrap_or(FIRST);
    let port = loop {
        if !(FIRST..LAST).contains(&next) {
            next = FIRST;
        }
        let candidate = next;
        next += 1;
        if TcpListener::bind(("127.0.0.1", candidate)).is_ok() {
            break candidate;
        }
    };
    // Should the counter be unwritable, the bind check above still skips
    // the ports in use; only a port picked but not yet listening can clash,
    // and slapd then exits at start with a clear message.
    let _ = fs::write(COUNTER, next.to_string());
    port
}

/// Runs `cmd` (no input) and panics with its standard error unless it
/// succeeds: `what` names it in the message.
fn run_checked(cmd: &mut Command, what: &str) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run it (scripts/setup-deps): {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// 32 random hex digits from /dev/urandom.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `{ARGON2}` and an argon2id PHC string of `password`, as slapd's argon2
/// module verifies it.
pub fn hash_password(password: &str) -> String {
    let phc = TEST_HASH
        .hash(password.as_bytes())
        .expect("hash a test password");
    format!("{{ARGON2}}{phc}")
}

/// A 0600 file holding exactly `secret`, created afresh.
pub fn write_secret_file(path: &Path, secret: &str) {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    // -y uses the whole file as the password: no newline.
    file.write_all(secret.as_bytes())
        .expect("write a secret file");
}

/// `value` escaped for use as an RDN value (RFC 4514, section 2.4).
pub fn dn_escape(value: &str) -> String {
    let mut out = String::new();
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// `value` escaped for use inside a search filter (RFC 4515, section 3).
pub fn filter_escape(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        match c {
            '*' | '(' | ')' | '\\' | '\0' => {
                write!(out, "\\{:02x}", c as u32).expect("write to a String")
            }
            c => out.push(c),
        }
    }
    out
}

/// Appends `attr: value`, or `attr:: base64` when the value is not an
/// LDIF SAFE-STRING (RFC 2849).
pub fn ldif_line(out: &mut String, attr: &str, value: &str) {
    let safe = value
        .bytes()
        .all(|b| (1..0x80).contains(&b) && b != b'\n' && b != b'\r')
        && !value.starts_with([' ', ':', '<'])
        && !value.ends_with(' ');
    if safe {
        writeln!(out, "{attr}: {value}").expect("write to a String");
    } else {
        writeln!(out, "{attr}:: {}", base64_encode(value.as_bytes())).expect("write to a String");
    }
}

/// Parses `ldapsearch -LLL -o ldif-wrap=no` output.
pub fn parse_ldif(text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut current: Option<Entry> = None;
    for line in text.lines() {
        if line.is_empty() {
            entries.extend(current.take());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let value = if let Some(b64) = rest.strip_prefix(':') {
            String::from_utf8_lossy(&base64_decode(b64.trim())).into_owned()
        } else {
            rest.strip_prefix(' ').unwrap_or(rest).to_owned()
        };
        if name.eq_ignore_ascii_case("dn") {
            entries.extend(current.take());
            current = Some(Entry {
                dn: value,
                attrs: BTreeMap::new(),
            });
        } else if let Some(entry) = current.as_mut() {
            entry
                .attrs
                .entry(name.to_ascii_lowercase())
                .or_default()
                .push(value);
        }
    }
    entries.extend(current);
    entries
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= n {
                out.push(B64[(v >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let Some(v) = B64.iter().position(|&x| x == c) else {
            continue;
        };
        acc = acc << 6 | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Percent-encodes a socket path for an `ldapi://` URL.
fn url_encode(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            write!(out, "%{b:02X}").expect("write to a String");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for s in ["", "a", "ab", "abc", "abcd", " lead", "é\0x"] {
            assert_eq!(base64_decode(&base64_encode(s.as_bytes())), s.as_bytes());
        }
        assert_eq!(
            base64_encode(b"any carnal pleas"),
            "YW55IGNhcm5hbCBwbGVhcw=="
        );
    }

    #[test]
    fn dn_values_are_escaped() {
        assert_eq!(dn_escape("a,b+c"), "a\\,b\\+c");
        assert_eq!(dn_escape("#x "), "\\#x\\ ");
        assert_eq!(filter_escape("a*(b)\\"), "a\\2a\\28b\\29\\5c");
    }
}
