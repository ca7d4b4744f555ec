//! Outage chaos: two providers in delta-syncrepl multi-provider
//! replication, two hosts each with its real deadbolt-syncd (host-a tries
//! the first provider then the second, host-b the other way round), and a
//! stream of failed logins, reactivations by a manager and password
//! changes, while the providers are killed with SIGKILL and restarted,
//! alternately, twenty times. Afterwards nothing is lost, nothing is
//! applied twice, and both hosts and both providers say the same.

use deadbolt_core::{Failure, StateStore, Timestamp, UserName, UserState};
use deadbolt_ldap_sync::encoding;
use deadbolt_tests::fleet::{fleet_toml, secret_file, FleetHost, Syncd};
use deadbolt_tests::slapd::{provider_pair, wait_until, Directory, Host, Replication};
use deadbolt_tests::{PamEnv, Stack};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const PW: &str = "Local-Start-Pass-1";
const ROUNDS: usize = 20;
const USERS: [&str; 4] = ["ann", "ben", "cid", "dot"];
const CHANGER: &str = "pat";
/// Far above what the stream reaches, so that no account locks and every
/// failure stays counted until a reactivation clears it.
const NO_LOCK: &[(&str, &str)] = &[("deny", "1000"), ("unlock_after", "\"never\"")];
/// How long the fleet may take to agree once the chaos is over: both
/// providers must first finish replicating what the other missed (each
/// retries its peer every second) and each daemon push what it queued.
const SETTLE: Duration = Duration::from_secs(90);
/// The login lines and the password lines together, pam_matrix checking
/// and storing: failed logins and password changes on one host.
const LOGIN_AND_PASSWORD: &str = "\
auth     required                   @MODULE@ preauth @ARGS@
auth     [success=1 default=bad]    @MATRIX@
auth     [default=die]              @MODULE@ authfail @ARGS@
auth     [success=done default=die] @MODULE@ authsucc @ARGS@
account  required                   @MODULE@ @ARGS@
password requisite                  @MODULE@ @ARGS@
password requisite                  @MATRIX@
password optional                   @MODULE@ commit @ARGS@
";

/// What the stream did and had acknowledged, per user.
#[derive(Default, Debug)]
struct Expected {
    /// Failures each host recorded since the user's last reactivation.
    failures: BTreeMap<(&'static str, &'static str), usize>,
    /// Users reactivated at least once.
    reactivated: BTreeSet<&'static str>,
    /// Password changes acknowledged on any host.
    password_changes: usize,
}

/// A host bound as `identity` to `uris` in that order, whose users log in
/// and change passwords through [`LOGIN_AND_PASSWORD`].
fn host(name: &str, uris: &[String], directory: &Directory, identity: &Host) -> FleetHost {
    let mut builder = PamEnv::builder().stack(Stack::Password);
    for (key, value) in NO_LOCK {
        builder = builder.lockout(key, value);
    }
    for user in USERS.iter().chain([&CHANGER]) {
        builder = builder.user(user, PW);
    }
    let toml = fleet_toml(
        name,
        uris,
        &directory.people_dn(),
        &identity.dn,
        &identity.password_file,
    );
    let env = builder.toml(&toml).build();
    env.write_service(Some(LOGIN_AND_PASSWORD));
    FleetHost {
        name: name.to_owned(),
        env,
        bind_dn: identity.dn.clone(),
    }
}

fn state_of(host: &FleetHost, user: &str) -> UserState {
    let store = StateStore::open_existing(host.env.state_dir()).expect("the state directory");
    let name = UserName::parse(user).expect("a user name");
    match store.load(&name).expect("the state loads") {
        deadbolt_core::store::Loaded::Present(state) => state,
        _ => UserState::default(),
    }
}

/// The failures after the last reactivation or successful login: those
/// the lock is computed from.
fn counting(state: &UserState) -> BTreeSet<Failure> {
    let reset = state.last_reactivation.max(state.last_success);
    state
        .failures
        .iter()
        .filter(|f| reset.is_none_or(|r| f.time > r))
        .cloned()
        .collect()
}

/// What `provider` holds of `user`: the failures of every host record
/// after `reset`, and the latest `deadboltReactivated`.
fn directory_view(
    provider: &Directory,
    user: &str,
    reset: Option<Timestamp>,
) -> Option<(BTreeSet<Failure>, Option<Timestamp>)> {
    let dn = provider.employee_dn(user);
    let entry = provider.entry(&dn, &["deadboltReactivated"])?;
    let reactivated = entry
        .values("deadboltReactivated")
        .iter()
        .filter_map(|v| encoding::parse_time_value(v).ok())
        .max();
    let mut failures = BTreeSet::new();
    for host in ["host-a", "host-b"] {
        let Some(record) =
            provider.entry(&provider.host_record_dn(&dn, host), &["deadboltFailure"])
        else {
            continue;
        };
        for value in record.values("deadboltFailure") {
            let failure = encoding::parse_failure(value, host).ok()?;
            if reset.is_none_or(|r| failure.time > r) {
                // A value twice (under two encodings) would be one too many.
                if !failures.insert(failure) {
                    return None;
                }
            }
        }
    }
    Some((failures, reactivated))
}

/// Why the fleet does not agree yet on `user`, or `None` once it does.
fn disagreement(
    user: &'static str,
    expected: &Expected,
    hosts: [&FleetHost; 2],
    providers: [&Directory; 2],
) -> Option<String> {
    let states = hosts.map(|h| state_of(h, user));
    if states[0].last_reactivation != states[1].last_reactivation {
        return Some(format!("{user}: the hosts' last reactivations differ"));
    }
    let reset = states[0].last_reactivation.max(states[0].last_success);
    if reset.is_some() != expected.reactivated.contains(user) {
        return Some(format!("{user}: reactivated {reset:?}, expected otherwise"));
    }
    let counted = states.each_ref().map(counting);
    if counted[0] != counted[1] {
        return Some(format!(
            "{user}: host-a counts {}, host-b {}",
            counted[0].len(),
            counted[1].len()
        ));
    }
    for host in ["host-a", "host-b"] {
        let want = expected.failures.get(&(user, host)).copied().unwrap_or(0);
        let have = counted[0].iter().filter(|f| f.host == host).count();
        if have != want {
            return Some(format!(
                "{user}: {have} failures of {host} counted, {want} made"
            ));
        }
    }
    for provider in providers {
        let Some((failures, reactivated)) = directory_view(provider, user, reset) else {
            return Some(format!("{user}: not readable on {}", provider.uri()));
        };
        if failures != counted[0] {
            return Some(format!(
                "{user}: {} holds {} failures, the hosts {}",
                provider.uri(),
                failures.len(),
                counted[0].len()
            ));
        }
        if reactivated != states[0].last_reactivation {
            return Some(format!(
                "{user}: {} says reactivated {reactivated:?}, the hosts {:?}",
                provider.uri(),
                states[0].last_reactivation
            ));
        }
    }
    None
}

#[test]
fn providers_killed_twenty_times_lose_nothing_and_apply_nothing_twice() {
    let (mut one, mut two) = provider_pair(Replication::Delta);
    let boss = one.add_employee("boss", "boss-pw", None);
    for user in USERS.iter().chain([&CHANGER]) {
        one.add_employee(user, "ldap-pw", Some(&boss));
    }
    let id_a = one.add_host("host-a");
    let id_b = one.add_host("host-b");
    wait_until("the entries on the second provider", SETTLE, || {
        two.entry(&id_b.dn, &["cn"])
            .and(two.entry(&two.employee_dn(CHANGER), &["uid"]))
            .map(|_| ())
    });
    let a = host("host-a", &[one.uri(), two.uri()], &one, &id_a);
    let b = host("host-b", &[two.uri(), one.uri()], &two, &id_b);
    let boss_pw = secret_file(a.env.root(), "boss.pw", "boss-pw");
    let mut sa = a.start_syncd();
    let mut sb = b.start_syncd();
    sa.wait_ready();
    sb.wait_ready();

    let mut expected = Expected::default();
    let mut current = [PW.to_owned(), PW.to_owned()];
    let hosts = [&a, &b];
    let names = ["host-a", "host-b"];
    for round in 0..ROUNDS {
        // Alternate: the first provider on even rounds, the second on odd.
        let victim = if round % 2 == 0 { &mut one } else { &mut two };
        victim.kill();
        let user = USERS[round % USERS.len()];
        for (host, name) in hosts.iter().zip(names) {
            host.env.fail_logins(user, 1);
            *expected.failures.entry((user, name)).or_default() += 1;
        }
        if round % 3 == 2 {
            // A manager's reactivation, through whichever provider is up.
            let target = USERS[(round / 3) % USERS.len()];
            let on = hosts[round % 2];
            let out = on.env.deadboltctl(&[
                "reactivate",
                target,
                "--as",
                &boss,
                "--password-file",
                &boss_pw.display().to_string(),
            ]);
            assert!(out.succeeded(), "round {round}: reactivate {target}\n{out}");
            expected.reactivated.insert(target);
            for name in names {
                expected.failures.insert((target, name), 0);
            }
        }
        if round % 5 == 4 {
            let side = (round / 5) % 2;
            let next = format!("Chaos-Round-{round}-Heron-{side}x");
            let out = hosts[side]
                .env
                .change_password(CHANGER, &current[side], &[&next]);
            assert!(out.succeeded(), "round {round}: a password change\n{out}");
            current[side] = next;
            expected.password_changes += 1;
        }
        victim.restart();
        assert_alive(&mut sa, round);
        assert_alive(&mut sb, round);
    }

    let providers = [&one, &two];
    for user in USERS {
        wait_until(
            &format!("the fleet agrees on {user}"),
            SETTLE,
            || match disagreement(user, &expected, [&a, &b], providers) {
                None => Some(()),
                Some(why) => {
                    eprintln!("{why}");
                    None
                }
            },
        );
    }
    // Every change of password is in both hosts' history, once.
    wait_until("both hosts hold every password change", SETTLE, || {
        let [ha, hb] = [&a, &b].map(|h| state_of(h, CHANGER).password_history);
        (ha == hb && ha.len() == expected.password_changes).then_some(())
    });
    assert_eq!(
        state_of(&a, CHANGER).last_password_change,
        state_of(&b, CHANGER).last_password_change
    );
    assert_eq!(sa.terminate().code(), Some(0));
    assert_eq!(sb.terminate().code(), Some(0));
}

fn assert_alive(syncd: &mut Syncd, round: usize) {
    if let Some(status) = syncd.exited() {
        panic!(
            "round {round}: deadbolt-syncd exited ({status}):\n{}",
            syncd.log_text()
        );
    }
}
