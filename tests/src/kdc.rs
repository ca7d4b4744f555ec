//! A throwaway MIT Kerberos KDC per test, and a test directory that takes
//! Kerberos (SASL GSSAPI) binds from its principals.
//!
//! The KDC lives in a temporary directory with its own `krb5.conf` and
//! `kdc.conf` (`KRB5_CONFIG`, `KRB5_KDC_PROFILE`), its database made by
//! `kdb5_util create -s` and its principals by `kadmin.local`, every key
//! random (`-randkey`) and kept only in keytabs. `krb5kdc -n` runs in the
//! foreground on a loopback port as the test's child. No name is looked up
//! in DNS (`rdns = false`, `dns_canonicalize_hostname = false`): the
//! directory server is `ldap/ldap.deadbolt.test` whatever address it
//! listens on.

use crate::slapd::{allocate_port, wait_until, Directory, HOSTS_DN};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The test realm.
pub const REALM: &str = "DEADBOLT.TEST";

/// The directory server's name in its service principal, `ldap/<name>`.
pub const LDAP_HOST: &str = "ldap.deadbolt.test";

/// How long the KDC may take to listen.
const STARTUP_DEADLINE: Duration = Duration::from_secs(10);

/// The principal of the host named `name`: `host/<name>.deadbolt.test`, as
/// a host's keytab holds it.
pub fn host_principal(name: &str) -> String {
    format!("host/{name}.deadbolt.test")
}

/// A running `krb5kdc`, stopped when dropped.
pub struct Kdc {
    child: Option<Child>,
    root: tempfile::TempDir,
}

impl std::fmt::Debug for Kdc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kdc")
            .field("dir", &self.root.path())
            .finish_non_exhaustive()
    }
}

impl Kdc {
    /// Makes the realm's database and starts the KDC on a loopback port.
    pub fn start() -> Kdc {
        let root = tempfile::Builder::new()
            .prefix("deadbolt-kdc.")
            .tempdir()
            .expect("make a temporary directory for the KDC");
        let port = allocate_port();
        let dir = root.path().display().to_string();
        // TCP first (udp_preference_limit = 1): the port was checked free
        // for TCP.
        fs::write(
            root.path().join("krb5.conf"),
            format!(
                "[libdefaults]\n default_realm = {REALM}\n dns_lookup_kdc = false\n \
                 dns_lookup_realm = false\n rdns = false\n dns_canonicalize_hostname = false\n \
                 udp_preference_limit = 1\n\n[realms]\n {REALM} = {{\n  kdc = 127.0.0.1:{port}\n }}\n"
            ),
        )
        .expect("write krb5.conf");
        fs::write(
            root.path().join("kdc.conf"),
            format!(
                "[kdcdefaults]\n kdc_ports = {port}\n kdc_tcp_ports = {port}\n\n[realms]\n \
                 {REALM} = {{\n  database_name = {dir}/principal\n  key_stash_file = \
                 {dir}/stash\n  acl_file = {dir}/kadm5.acl\n }}\n\n[logging]\n kdc = \
                 FILE:{dir}/kdc.log\n"
            ),
        )
        .expect("write kdc.conf");
        let mut kdc = Kdc { child: None, root };
        // The master key's password goes in on standard input, never as an
        // argument; the stash file (-s) lets krb5kdc start without it.
        let master = crate::slapd::random_secret();
        let mut create = kdc
            .command("kdb5_util")
            .args(["create", "-s"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kdb5_util (install krb5-kdc: scripts/setup-deps)");
        create
            .stdin
            .take()
            .expect("a piped stdin")
            .write_all(format!("{master}\n{master}\n").as_bytes())
            .expect("give kdb5_util the master password");
        let out = create.wait_with_output().expect("wait for kdb5_util");
        assert!(
            out.status.success(),
            "kdb5_util create failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let child = kdc
            .command("krb5kdc")
            .arg("-n")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(kdc.root.path().join("krb5kdc.err")).expect("stderr file"))
            .spawn()
            .expect("start krb5kdc (install krb5-kdc: scripts/setup-deps)");
        kdc.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_until("krb5kdc listening", STARTUP_DEADLINE, || {
            if let Some(status) = kdc.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("krb5kdc exited at start ({status}):\n{}", kdc.log());
            }
            TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                .ok()
                .map(drop)
        });
        kdc
    }

    /// A Kerberos tool with the realm's files.
    fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(tool);
        cmd.env("KRB5_CONFIG", self.krb5_config())
            .env("KRB5_KDC_PROFILE", self.root.path().join("kdc.conf"))
            .current_dir(self.root.path());
        cmd
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self
            .command(tool)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {tool}: {e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        // kadmin.local exits 0 even when its query fails: its errors are on
        // standard error.
        assert!(
            out.status.success() && !stderr.contains("rror"),
            "{tool} {args:?} failed:\n{stderr}"
        );
    }

    /// The realm's `krb5.conf`, for `KRB5_CONFIG` of every client.
    pub fn krb5_config(&self) -> PathBuf {
        self.root.path().join("krb5.conf")
    }

    /// What the KDC logged.
    pub fn log(&self) -> String {
        let read = |name| fs::read_to_string(self.root.path().join(name)).unwrap_or_default();
        format!("{}{}", read("krb5kdc.err"), read("kdc.log"))
    }

    /// Adds `principal` with a random key, and writes its key to a new
    /// keytab (0600, this process's) in the KDC's directory.
    pub fn principal_with_keytab(&self, principal: &str) -> PathBuf {
        let file = format!("{}.keytab", principal.replace(['/', '.'], "_"));
        let keytab = self.root.path().join(file);
        let text = keytab.display().to_string();
        self.run(
            "kadmin.local",
            &["-q", &format!("addprinc -randkey {principal}")],
        );
        self.run(
            "kadmin.local",
            &["-q", &format!("ktadd -k {text} {principal}")],
        );
        keytab
    }

    /// `kinit -k -t keytab principal` into a new credential cache in
    /// `dir`: a person's ticket. Returns its `KRB5CCNAME`.
    pub fn kinit(&self, principal: &str, keytab: &Path, dir: &Path) -> String {
        let cache = format!(
            "FILE:{}",
            dir.join(format!("{}.ccache", principal.replace('/', "_")))
                .display()
        );
        let out = self
            .command("kinit")
            .env("KRB5CCNAME", &cache)
            .arg("-k")
            .arg("-t")
            .arg(keytab)
            .arg(principal)
            .stdin(Stdio::null())
            .output()
            .expect("run kinit (install krb5-user: scripts/setup-deps)");
        assert!(
            out.status.success(),
            "kinit {principal} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        cache
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let _ = child.wait();
        }
    }
}

/// Makes `directory` take GSSAPI binds as `ldap/`[`LDAP_HOST`] of `kdc`'s
/// realm and map principals to entries as docs/directory.md shows it:
/// `host/<name>.deadbolt.test` to `cn=<name>,ou=hosts,...`, a person's
/// `<uid>` to `uid=<uid>,ou=people,...`; restarts slapd with its keytab.
pub fn kerberize(directory: &mut Directory, kdc: &Kdc) {
    let keytab = kdc.principal_with_keytab(&format!("ldap/{LDAP_HOST}"));
    let people = directory.people_dn();
    // slapd names a GSSAPI user uid=<principal>[,cn=<realm>],cn=gssapi,cn=auth
    // (normalised to lower case), the realm left out when it is olcSaslRealm.
    let realm = REALM.to_ascii_lowercase().replace('.', "\\.");
    let ldif = format!(
        "dn: cn=config\nchangetype: modify\nreplace: olcSaslHost\nolcSaslHost: {LDAP_HOST}\n-\n\
         replace: olcSaslRealm\nolcSaslRealm: {REALM}\n-\nadd: olcAuthzRegexp\n\
         olcAuthzRegexp: \"^uid=host/([^,/.]+)\\.deadbolt\\.test,(cn={realm},)?cn=gssapi,cn=auth$\" \"cn=$1,{HOSTS_DN}\"\n\
         olcAuthzRegexp: \"^uid=([^,/]+),(cn={realm},)?cn=gssapi,cn=auth$\" \"uid=$1,{people}\"\n"
    );
    directory
        .config_modify(&ldif)
        .unwrap_or_else(|e| panic!("the Kerberos settings of slapd:\n{e}"));
    let keytab = format!("FILE:{}", keytab.display());
    let config = kdc.krb5_config().display().to_string();
    directory.restart_with_env(&[("KRB5_KTNAME", &keytab), ("KRB5_CONFIG", &config)]);
}
