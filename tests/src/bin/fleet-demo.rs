//! The fleet part of `make demo`: a throwaway slapd with a few employees,
//! two hosts each with its own state and its own deadbolt-syncd, and real
//! PAM logins through pamtester.

use deadbolt_tests::fleet::{secret_file, FleetHost, UNTIL_REACTIVATED};
use deadbolt_tests::slapd::Directory;
use deadbolt_tests::Outcome;

fn step(text: &str) {
    println!("\n== {text}");
}

fn login(host: &FleetHost, user: &str, password: &str) -> Outcome {
    let out = host.env.authenticate(user, password);
    let verdict = if out.succeeded() {
        "logged in"
    } else {
        "refused"
    };
    let said = out
        .stdout
        .lines()
        .chain(out.stderr.lines())
        .find(|l| l.contains("locked") || l.contains("disabled"))
        .map(|l| format!(": \"{}\"", l.trim().trim_start_matches("Password: ")))
        .unwrap_or_default();
    println!(
        "   {user} on {} with {}: {verdict}{said}",
        host.name,
        if password == "secret" {
            "the right password"
        } else {
            "a wrong password"
        }
    );
    out
}

fn main() {
    let directory = Directory::start();
    let boss = directory.add_employee("boss", "boss-directory-pw", None);
    directory.add_employee("alice", "alice-directory-pw", Some(&boss));
    directory.add_employee("bob", "bob-directory-pw", Some(&boss));
    println!(
        "A throwaway slapd at {} holds boss, and alice and bob who report to him.",
        directory.uri()
    );
    let users = [("alice", "secret"), ("bob", "secret")];
    let a = FleetHost::new(&directory, "host-a", &users, UNTIL_REACTIVATED);
    let b = FleetHost::new(&directory, "host-b", &users, UNTIL_REACTIVATED);
    let mut sa = a.start_syncd();
    let mut sb = b.start_syncd();
    sa.wait_ready();
    sb.wait_ready();
    println!("host-a and host-b each run deadbolt-syncd (deny = 3, locked until reactivated).");

    step("1. alice fails twice on host-a and once on host-b");
    login(&a, "alice", "wrong1");
    login(&a, "alice", "wrong2");
    b.wait_locked_count("alice", 2);
    login(&b, "alice", "wrong3");
    a.wait_locked("alice", true, "demo");
    login(&a, "alice", "secret");
    login(&b, "alice", "secret");

    step("2. her manager reactivates her with his own directory identity");
    let pw = secret_file(a.env.root(), "boss.pw", "boss-directory-pw");
    println!("   $ deadboltctl reactivate alice --as {boss} --password-file boss.pw");
    let out = a.env.deadboltctl(&[
        "reactivate",
        "alice",
        "--as",
        &boss,
        "--password-file",
        &pw.display().to_string(),
    ]);
    println!("   {}", out.stdout.trim());
    b.wait_locked("alice", false, "demo");
    login(&a, "alice", "secret");
    login(&b, "alice", "secret");

    step("3. a directory administrator disables bob with pwdAccountLockedTime");
    let ldif = format!(
        "dn: {}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n",
        directory.employee_dn("bob")
    );
    println!("   $ ldapmodify (add pwdAccountLockedTime: 000001010000Z to bob)");
    directory
        .modify(directory.admin_dn(), directory.admin_password(), &ldif)
        .expect("ldapmodify");
    a.wait_locked("bob", true, "demo");
    b.wait_locked("bob", true, "demo");
    login(&a, "bob", "secret");
    login(&b, "bob", "secret");

    step("sync status on host-b");
    let out = b.env.deadboltctl(&["sync-status"]);
    print!("{}", out.stdout);
    let ok = sa.terminate().success() & sb.terminate().success();
    println!("\nBoth daemons stopped cleanly on SIGTERM: {ok}");
}
