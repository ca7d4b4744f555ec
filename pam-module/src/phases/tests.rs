//! Every phase's decision as a table: (configuration, state, now, request)
//! -> verdict, played without libpam against a real store in a temporary
//! directory. The host's configuration and accounts come from a table
//! instead of the file and NSS (see [`Host`]); time is a parameter, so a
//! lock runs out by moving `at`, not by waiting.
//!
//! A step either stands alone (a stack without preauth, or the account
//! phase) or follows a preauth in the same transaction, whose attempt it
//! settles or withdraws, as `run` in the PAM shell passes it on.

use super::*;
use deadbolt_core::state::Stamped;
use std::cell::Cell;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// The instant every row is measured from: 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000;

fn t(offset_secs: i64) -> Timestamp {
    Timestamp::from_secs(T0 + offset_secs)
}

fn secs(n: u64) -> Option<Duration> {
    Some(Duration::from_secs(n))
}

const LOCKED_6_MIN: &str = "The account is locked after 3 failed logins; it unlocks in 6 minutes.";
const LOCKED_10_MIN: &str =
    "The account is locked after 3 failed logins; it unlocks in 10 minutes.";
const LOCKED_FOR_GOOD: &str = "The account is locked after 3 failed logins until it is \
                               reactivated: ask your manager or an administrator.";
const DISABLED: &str = "The account is disabled: ask your manager or an administrator.";
const CANNOT_COUNT: &str = "Login refused: deadbolt cannot record login attempts on this host; \
                            ask an administrator.";
const UNTRUSTED: &str =
    "Login refused: deadbolt's configuration is not safe to use; ask an administrator.";

/// The accounts NSS would know: alice; root; ops, in `wheel`; `ALICE` is
/// another spelling of alice, as a case-insensitive directory answers.
fn account(name: &str) -> Option<(Account, &'static [&'static str])> {
    let (own, uid, groups): (&str, u32, &'static [&'static str]) = match name {
        "alice" | "ALICE" => ("alice", 1000, &["staff"]),
        "ops" => ("ops", 1001, &["staff", "wheel"]),
        "root" => ("root", 0, &["root"]),
        _ => return None,
    };
    Some((
        Account {
            name: own.to_owned(),
            uid,
            gid: uid,
            real_name: String::new(),
        },
        groups,
    ))
}

struct TableGroups(&'static [&'static str]);

impl Groups for TableGroups {
    fn contains(&self, group: &str) -> bool {
        self.0.contains(&group)
    }
}

/// The configuration file's defaults with `state.dir` in the fixture, the
/// request's module arguments on top, as `settings::load_config` lays them.
struct TableHost {
    dir: PathBuf,
    untrusted: bool,
    /// How often the configuration or an account was asked for.
    asked: Cell<u32>,
}

impl Host for TableHost {
    type Groups = TableGroups;

    fn config(&self, args: &[&str]) -> Arc<Config> {
        self.asked.set(self.asked.get() + 1);
        let mut config = Config::default();
        config.state.dir = self.dir.clone();
        for arg in args {
            config.apply_module_arg(arg).expect(arg);
        }
        Arc::new(config)
    }

    fn config_untrusted(&self) -> Option<String> {
        self.asked.set(self.asked.get() + 1);
        self.untrusted
            .then(|| "/etc/deadbolt/deadbolt.toml is writable by group staff".to_owned())
    }

    fn lookup(&self, name: &str) -> Option<Account> {
        self.asked.set(self.asked.get() + 1);
        account(name).map(|(account, _)| account)
    }

    fn groups(&self, account: &Account) -> TableGroups {
        TableGroups(self::account(&account.name).map_or(&[], |(_, groups)| groups))
    }
}

/// One row's world: a state directory of root's (0700, as the package
/// makes it) and the host around it.
struct Fixture {
    _tmp: tempfile::TempDir,
    host: TableHost,
    args: &'static [&'static str],
}

impl Fixture {
    fn new(row: &Row) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("state");
        std::fs::create_dir(&dir).expect("state dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        Fixture {
            _tmp: tmp,
            host: TableHost {
                dir,
                untrusted: false,
                asked: Cell::new(0),
            },
            args: row.args,
        }
    }

    fn dir(&self) -> &Path {
        &self.host.dir
    }

    fn store(&self) -> StateStore {
        StateStore::open_existing(self.dir()).expect("store")
    }

    fn request<'a>(
        &self,
        phase: Phase,
        user: &'a [u8],
        at: i64,
        password_given: bool,
        attempt: Option<AttemptId>,
    ) -> Request<'a> {
        Request {
            phase,
            user,
            service: "login",
            rhost: "",
            tty: "tty1",
            password_given,
            refused_earlier: false,
            args: self.args,
            now: t(at),
            attempt,
        }
    }

    /// Wrong passwords at each offset, each in a transaction of its own
    /// (preauth, then authfail), as a user typing them would leave them.
    fn fail(&self, user: &str, offsets: &[i64]) {
        for &at in offsets {
            let mut cache = DecodeCache::default();
            let pre = decide_on(
                &self.request(Phase::PreAuth, user.as_bytes(), at, true, None),
                &self.host,
                &mut cache,
            );
            assert_eq!(pre.code, PamResultCode::PAM_SUCCESS, "preauth at {at}");
            let failed = decide_on(
                &self.request(Phase::AuthFail, user.as_bytes(), at, true, pre.attempt),
                &self.host,
                &mut cache,
            );
            assert_eq!(failed.code, PamResultCode::PAM_AUTH_ERR, "authfail at {at}");
        }
    }

    /// What an administrator's command or the directory would record.
    fn merge(&self, user: &str, delta: UserState) {
        let name = UserName::parse(user).expect("name");
        self.store()
            .merge_in(&name, &delta, t(-3600), true)
            .expect("merge");
    }

    fn chmod(&self, mode: u32) {
        std::fs::set_permissions(self.dir(), std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// The user's state as a login at `at` would read it.
    fn state(&self, user: &str, at: i64) -> Option<UserState> {
        let name = UserName::parse(user).expect("name");
        match self.store().load_counting(&name, Pending::All, t(at)) {
            Ok(Loaded::Present(state)) => Some(state),
            Ok(Loaded::Absent) => None,
            other => panic!("state of {user}: {other:?}"),
        }
    }

    fn live_failures(&self, user: &str, at: i64) -> usize {
        self.state(user, at)
            .map_or(0, |state| state.live_failures().count())
    }

    /// Every path under the fixture (the state directory and beside it),
    /// with its mode and contents, to show a request wrote nothing.
    fn snapshot(&self) -> Vec<(PathBuf, u32, Vec<u8>)> {
        fn walk(path: &Path, out: &mut Vec<(PathBuf, u32, Vec<u8>)>) {
            let Ok(meta) = std::fs::symlink_metadata(path) else {
                return;
            };
            let contents = if meta.is_file() {
                std::fs::read(path).expect("read")
            } else {
                Vec::new()
            };
            out.push((path.to_owned(), meta.permissions().mode(), contents));
            if meta.is_dir() {
                let mut entries: Vec<_> = std::fs::read_dir(path)
                    .expect("list")
                    .map(|e| e.expect("entry").path())
                    .collect();
                entries.sort();
                for entry in entries {
                    walk(&entry, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(self._tmp.path(), &mut out);
        out
    }
}

/// Whether the request stands alone or follows a preauth in its
/// transaction (made at the same instant), whose attempt it carries.
#[derive(Clone, Copy, Debug)]
enum Step {
    Alone(Phase),
    AfterPreauth(Phase),
}

/// What the row's request must leave in the store.
enum Effect {
    /// Nothing under the fixture changed: no file, no mode, no byte.
    Untouched,
    /// Untouched, and neither the configuration nor NSS was asked.
    NothingAsked,
    /// The user's live failures (pending attempts counted), read at `at`.
    Failures(&'static str, usize),
    /// No state at all for the user.
    NoState(&'static str),
    /// The success is recorded at `at` and no failure counts any more.
    Succeeded(&'static str),
    /// The store holds no success time for the user.
    NoSuccess(&'static str),
    /// Anything else, asserted by the function.
    Check(fn(&Fixture)),
}

/// What a row sets up before its request.
type Setup = fn(&Fixture);

struct Row {
    what: &'static str,
    /// Module arguments over the compiled defaults (deny = 3, fail_interval
    /// = 15m, unlock_after = 10m, delay = 2s fixed, refuse_in_account).
    args: &'static [&'static str],
    untrusted: bool,
    /// The state before the request, made through the store or earlier
    /// transactions.
    given: Setup,
    /// Seconds after [`T0`].
    at: i64,
    user: Vec<u8>,
    step: Step,
    password_given: bool,
    code: PamResultCode,
    message: Option<&'static str>,
    warning: Option<&'static str>,
    delay: Option<Duration>,
    /// Whether the verdict hands on an attempt for authfail or authsucc.
    attempt: bool,
    effects: Vec<Effect>,
}

impl Default for Row {
    fn default() -> Self {
        Row {
            what: "",
            args: &[],
            untrusted: false,
            given: |_| {},
            at: 0,
            user: b"alice".to_vec(),
            step: Step::Alone(Phase::PreAuth),
            password_given: true,
            code: PamResultCode::PAM_SUCCESS,
            message: None,
            warning: None,
            delay: None,
            attempt: false,
            effects: Vec::new(),
        }
    }
}

fn play(rows: Vec<Row>) {
    for row in rows {
        let what = row.what;
        let mut fx = Fixture::new(&row);
        (row.given)(&fx);
        fx.host.untrusted = row.untrusted;
        // One transaction: its calls share what they decoded.
        let mut cache = DecodeCache::default();
        let (phase, attempt) = match row.step {
            Step::Alone(phase) => (phase, None),
            Step::AfterPreauth(phase) => {
                let pre = decide_on(
                    &fx.request(Phase::PreAuth, &row.user, row.at, true, None),
                    &fx.host,
                    &mut cache,
                );
                assert_eq!(pre.code, PamResultCode::PAM_SUCCESS, "{what}: preauth");
                assert!(pre.attempt.is_some(), "{what}: preauth recorded no attempt");
                (phase, pre.attempt)
            }
        };
        let before = fx.snapshot();
        fx.host.asked.set(0);
        let request = fx.request(phase, &row.user, row.at, row.password_given, attempt);
        let verdict = decide_on(&request, &fx.host, &mut cache);
        assert_eq!(verdict.code, row.code, "{what}: code");
        assert_eq!(verdict.message.as_deref(), row.message, "{what}: message");
        assert_eq!(verdict.warning.as_deref(), row.warning, "{what}: warning");
        assert_eq!(verdict.delay, row.delay, "{what}: delay");
        assert_eq!(verdict.attempt.is_some(), row.attempt, "{what}: attempt");
        for effect in &row.effects {
            match *effect {
                Effect::Untouched => assert!(before == fx.snapshot(), "{what}: store changed"),
                Effect::NothingAsked => {
                    assert!(before == fx.snapshot(), "{what}: store changed");
                    assert_eq!(fx.host.asked.get(), 0, "{what}: host asked");
                }
                Effect::Failures(user, n) => {
                    assert_eq!(fx.live_failures(user, row.at), n, "{what}: failures");
                }
                Effect::NoState(user) => {
                    assert!(fx.state(user, row.at).is_none(), "{what}: state of {user}");
                }
                Effect::Succeeded(user) => {
                    let state = fx.state(user, row.at).expect("state");
                    assert_eq!(state.last_success, Some(t(row.at)), "{what}: success");
                    assert_eq!(state.live_failures().count(), 0, "{what}: failures");
                }
                Effect::NoSuccess(user) => {
                    let success = fx.state(user, row.at).and_then(|s| s.last_success);
                    assert_eq!(success, None, "{what}: success");
                }
                Effect::Check(check) => check(&fx),
            }
        }
    }
}

/// Three failures, the last at T0: with the defaults, locked until T0+10m.
fn three_failures(fx: &Fixture) {
    fx.fail("alice", &[-2, -1, 0]);
}

/// Two failures, 20 and 10 seconds before T0: one more locks.
fn two_failures(fx: &Fixture) {
    fx.fail("alice", &[-20, -10]);
}

/// Twelve failures, 1,000 seconds apart (more than `fail_interval`): never
/// a lock, and more than a fold's worth.
fn spread_failures(fx: &Fixture) {
    let offsets: Vec<i64> = (1..=12).map(|i| -1000 * i).collect();
    fx.fail("alice", &offsets);
}

fn root_past_deny(fx: &Fixture) {
    fx.fail("root", &[-2, -1, 0]);
}

fn ops_past_deny(fx: &Fixture) {
    fx.fail("ops", &[-2, -1, 0]);
}

/// Locked by three failures, reactivated a minute later.
fn reactivated_at_60(fx: &Fixture) {
    three_failures(fx);
    fx.merge(
        "alice",
        UserState {
            last_reactivation: Some(t(60)),
            ..UserState::default()
        },
    );
}

fn disabled(fx: &Fixture, user: &str) {
    fx.merge(
        user,
        UserState {
            last_disable: Some(t(-60)),
            ..UserState::default()
        },
    );
}

fn alice_disabled(fx: &Fixture) {
    disabled(fx, "alice");
}

fn root_disabled(fx: &Fixture) {
    disabled(fx, "root");
}

/// The refusal of a locked account at T0+4m, in preauth: the time left,
/// the pause, and nothing recorded.
fn locked_at_240(what: &'static str) -> Row {
    Row {
        what,
        given: three_failures,
        at: 240,
        code: PamResultCode::PAM_AUTH_ERR,
        message: Some(LOCKED_6_MIN),
        delay: secs(2),
        effects: vec![Effect::Untouched],
        ..Row::default()
    }
}

#[test]
fn preauth() {
    use PamResultCode::*;
    play(vec![
        Row {
            what: "no state: the attempt is recorded before the password is checked",
            attempt: true,
            effects: vec![Effect::Failures("alice", 1)],
            ..Row::default()
        },
        Row {
            what: "a failure below deny does not refuse",
            given: |fx| fx.fail("alice", &[-60]),
            attempt: true,
            effects: vec![Effect::Failures("alice", 2)],
            ..Row::default()
        },
        locked_at_240("locked: refused with the time left, the pause, nothing recorded"),
        Row {
            what: "locked, with silent: refused without a word",
            args: &["silent"],
            given: three_failures,
            at: 240,
            code: PAM_AUTH_ERR,
            delay: secs(2),
            effects: vec![Effect::Untouched],
            ..Row::default()
        },
        Row {
            what: "another spelling of the name meets the same lock",
            given: three_failures,
            at: 240,
            user: b"ALICE".to_vec(),
            code: PAM_AUTH_ERR,
            message: Some(LOCKED_6_MIN),
            delay: secs(2),
            effects: vec![Effect::Untouched, Effect::NoState("ALICE")],
            ..Row::default()
        },
        Row {
            what: "a timed lock one second before its end",
            given: three_failures,
            at: 599,
            code: PAM_AUTH_ERR,
            message: Some(
                "The account is locked after 3 failed logins; it unlocks in less than a \
                 minute.",
            ),
            delay: secs(2),
            effects: vec![Effect::Untouched],
            ..Row::default()
        },
        Row {
            what: "a timed lock at its end: let through, the unlock noted once",
            given: three_failures,
            at: 600,
            attempt: true,
            effects: vec![Effect::Check(|fx| {
                let state = fx.state("alice", 600).expect("state");
                assert_eq!(state.last_timed_unlock, Some(t(600)));
            })],
            ..Row::default()
        },
        Row {
            what: "until reactivated: still locked a day later",
            args: &["unlock_after=never"],
            given: three_failures,
            at: 86_400,
            code: PAM_AUTH_ERR,
            message: Some(LOCKED_FOR_GOOD),
            delay: secs(2),
            effects: vec![Effect::Untouched],
            ..Row::default()
        },
        Row {
            what: "until reactivated, then reactivated: let through, the old failures gone",
            args: &["unlock_after=never"],
            given: reactivated_at_60,
            at: 120,
            attempt: true,
            effects: vec![Effect::Failures("alice", 1)],
            ..Row::default()
        },
        Row {
            what: "disabled: refused, with the message",
            given: alice_disabled,
            code: PAM_AUTH_ERR,
            message: Some(DISABLED),
            delay: secs(2),
            effects: vec![Effect::Untouched],
            ..Row::default()
        },
        Row {
            what: "disabled, then enabled: let through",
            given: |fx| {
                fx.merge(
                    "alice",
                    UserState {
                        last_disable: Some(t(-60)),
                        last_enable: Some(t(-30)),
                        ..UserState::default()
                    },
                );
            },
            attempt: true,
            ..Row::default()
        },
        Row {
            what: "root disabled: let through, disabling root locks out the one who can undo it",
            user: b"root".to_vec(),
            given: root_disabled,
            attempt: true,
            ..Row::default()
        },
        Row {
            what: "root past deny: exempt, let through",
            user: b"root".to_vec(),
            given: root_past_deny,
            at: 60,
            attempt: true,
            effects: vec![Effect::Failures("root", 4)],
            ..Row::default()
        },
        Row {
            args: &["even_deny_root"],
            user: b"root".to_vec(),
            given: root_past_deny,
            ..locked_at_240("root past deny with even_deny_root: refused")
        },
        Row {
            what: "a member of admin_group past deny: exempt, let through",
            args: &["admin_group=wheel"],
            user: b"ops".to_vec(),
            given: ops_past_deny,
            at: 60,
            attempt: true,
            ..Row::default()
        },
        Row {
            user: b"ops".to_vec(),
            given: ops_past_deny,
            ..locked_at_240("the same account without admin_group: refused")
        },
        Row {
            args: &["admin_group=wheel"],
            ..locked_at_240("admin_group names a group alice is not in: alice stays locked")
        },
        Row {
            what: "lockout off: nothing recorded",
            args: &["enabled=false"],
            effects: vec![Effect::Untouched],
            ..Row::default()
        },
        Row {
            what: "unknown user, not tracked: let through to the password module, no state",
            user: b"mallory".to_vec(),
            effects: vec![Effect::Untouched],
            ..Row::default()
        },
        Row {
            what: "unknown user, tracked: the attempt is recorded as for anyone",
            args: &["track_unknown_users"],
            user: b"mallory".to_vec(),
            attempt: true,
            effects: vec![Effect::Failures("mallory", 1)],
            ..Row::default()
        },
        Row {
            args: &["track_unknown_users"],
            user: b"mallory".to_vec(),
            given: |fx| fx.fail("mallory", &[-2, -1, 0]),
            ..locked_at_240("unknown user, tracked, past deny: locked like anyone")
        },
        Row {
            what: "delay_mode = backoff: the pause of a refusal grows with the failures",
            args: &["delay_mode=backoff"],
            given: three_failures,
            at: 240,
            code: PAM_AUTH_ERR,
            message: Some(LOCKED_6_MIN),
            delay: secs(8),
            ..Row::default()
        },
        Row {
            what: "delay_mode = none: a refusal without pause",
            args: &["delay_mode=none"],
            given: three_failures,
            at: 240,
            code: PAM_AUTH_ERR,
            message: Some(LOCKED_6_MIN),
            ..Row::default()
        },
    ]);
}

#[test]
fn authfail() {
    use PamResultCode::*;
    play(vec![
        Row {
            effects: vec![Effect::Failures("alice", 1)],
            ..wrong_password("under deny: the attempt becomes a failure, with the pause")
        },
        Row {
            what: "without preauth in the stack: the failure is recorded now",
            given: |fx| fx.fail("alice", &[-60]),
            step: Step::Alone(Phase::AuthFail),
            code: PAM_AUTH_ERR,
            delay: secs(2),
            effects: vec![Effect::Failures("alice", 2)],
            ..Row::default()
        },
        Row {
            given: two_failures,
            message: Some(LOCKED_10_MIN),
            effects: vec![Effect::Failures("alice", 3)],
            ..wrong_password("reaching deny: locked, and told so at once")
        },
        Row {
            args: &["unlock_after=never"],
            given: two_failures,
            message: Some(LOCKED_FOR_GOOD),
            effects: vec![Effect::Failures("alice", 3)],
            ..wrong_password("reaching deny with unlock_after = never: locked until reactivated")
        },
        Row {
            args: &["silent"],
            given: two_failures,
            effects: vec![Effect::Failures("alice", 3)],
            ..wrong_password("reaching deny, silent: locked without a word")
        },
        Row {
            args: &["fail_interval=15m"],
            given: |fx| fx.fail("alice", &[-1200, -600]),
            effects: vec![Effect::Failures("alice", 3)],
            ..wrong_password("fail_interval: the first failure is out of the window, no lock")
        },
        Row {
            args: &["fail_interval=15m"],
            given: |fx| fx.fail("alice", &[-800, -400]),
            message: Some(LOCKED_10_MIN),
            effects: vec![Effect::Failures("alice", 3)],
            ..wrong_password("fail_interval: three failures within it lock")
        },
        Row {
            given: |fx| {
                fx.fail("alice", &[-30, -20, -10]);
                fx.merge(
                    "alice",
                    UserState {
                        last_reactivation: Some(t(-5)),
                        ..UserState::default()
                    },
                );
            },
            effects: vec![Effect::Failures("alice", 1)],
            ..wrong_password("after a reactivation the count starts again")
        },
        Row {
            given: |fx| fx.fail("alice", &[-60]),
            password_given: false,
            effects: vec![Effect::Failures("alice", 1)],
            ..wrong_password("no password reached the password module: not counted")
        },
        Row {
            user: b"root".to_vec(),
            given: |fx| fx.fail("root", &[-20, -10]),
            effects: vec![Effect::Failures("root", 3)],
            ..wrong_password("root reaching deny: counted, exempt, no lock message")
        },
        Row {
            args: &["admin_group=wheel"],
            user: b"ops".to_vec(),
            given: |fx| fx.fail("ops", &[-20, -10]),
            effects: vec![Effect::Failures("ops", 3)],
            ..wrong_password("admin_group member reaching deny: counted, exempt, no lock message")
        },
        Row {
            what: "lockout off: refused with the pause, nothing recorded",
            args: &["enabled=false"],
            step: Step::Alone(Phase::AuthFail),
            code: PAM_AUTH_ERR,
            delay: secs(2),
            effects: vec![Effect::Untouched],
            ..Row::default()
        },
        Row {
            what: "unknown user, not tracked: the same pause, nothing recorded",
            user: b"mallory".to_vec(),
            step: Step::Alone(Phase::AuthFail),
            code: PAM_AUTH_ERR,
            delay: secs(2),
            effects: vec![Effect::Untouched],
            ..Row::default()
        },
        Row {
            args: &["track_unknown_users"],
            user: b"mallory".to_vec(),
            effects: vec![Effect::Failures("mallory", 1)],
            ..wrong_password("unknown user, tracked: counted")
        },
        Row {
            what: "delay_mode = fixed: the same pause at the second failure",
            args: &["delay_mode=fixed", "delay=3s"],
            given: |fx| fx.fail("alice", &[-60]),
            step: Step::AfterPreauth(Phase::AuthFail),
            code: PAM_AUTH_ERR,
            delay: secs(3),
            ..Row::default()
        },
        Row {
            what: "delay_mode = backoff: doubled at each failure",
            args: &["delay_mode=backoff", "deny=10"],
            given: |fx| fx.fail("alice", &[-60, -50]),
            step: Step::AfterPreauth(Phase::AuthFail),
            code: PAM_AUTH_ERR,
            delay: secs(8),
            ..Row::default()
        },
        Row {
            what: "delay_mode = backoff: capped at max_delay",
            args: &["delay_mode=backoff", "deny=10", "max_delay=30s"],
            given: |fx| fx.fail("alice", &[-60, -50, -40, -30]),
            step: Step::AfterPreauth(Phase::AuthFail),
            code: PAM_AUTH_ERR,
            delay: secs(30),
            ..Row::default()
        },
        Row {
            what: "delay_mode = none: no pause",
            args: &["delay_mode=none"],
            step: Step::AfterPreauth(Phase::AuthFail),
            code: PAM_AUTH_ERR,
            effects: vec![Effect::Failures("alice", 1)],
            ..Row::default()
        },
    ]);
}

#[test]
fn authsucc() {
    use PamResultCode::*;
    play(vec![
        Row {
            what: "more failures than a fold's worth: dropped at the success, not decoded again",
            given: spread_failures,
            step: Step::AfterPreauth(Phase::AuthSucc),
            effects: vec![
                Effect::Succeeded("alice"),
                Effect::Check(|fx| {
                    let held = fx.state("alice", 0).expect("state").failures.len();
                    assert_eq!(held, 0, "failures still held after the success");
                }),
            ],
            ..Row::default()
        },
        Row {
            what: "a few failures: forgiven, and kept until the next fold (no sync)",
            given: two_failures,
            step: Step::AfterPreauth(Phase::AuthSucc),
            effects: vec![
                Effect::Succeeded("alice"),
                Effect::Check(|fx| {
                    let held = fx.state("alice", 0).expect("state").failures.len();
                    assert_eq!(held, 2);
                }),
            ],
            ..Row::default()
        },
        Row {
            what: "a right password forgives the earlier failures",
            given: two_failures,
            step: Step::AfterPreauth(Phase::AuthSucc),
            effects: vec![Effect::Succeeded("alice")],
            ..Row::default()
        },
        Row {
            what: "nothing to forgive: the attempt is withdrawn, no success written",
            step: Step::AfterPreauth(Phase::AuthSucc),
            effects: vec![Effect::Failures("alice", 0), Effect::NoSuccess("alice")],
            ..Row::default()
        },
        Row {
            what: "without preauth in the stack: a right password forgives all the same",
            given: two_failures,
            step: Step::Alone(Phase::AuthSucc),
            at: 0,
            effects: vec![Effect::Succeeded("alice")],
            ..Row::default()
        },
        Row {
            what: "already locked: a right password does not unlock",
            given: three_failures,
            at: 240,
            step: Step::Alone(Phase::AuthSucc),
            code: PAM_AUTH_ERR,
            message: Some(LOCKED_6_MIN),
            effects: vec![Effect::Untouched],
            ..Row::default()
        },
        Row {
            what: "disabled: a right password is refused",
            given: alice_disabled,
            step: Step::Alone(Phase::AuthSucc),
            code: PAM_AUTH_ERR,
            message: Some(DISABLED),
            effects: vec![Effect::Untouched],
            ..Row::default()
        },
        Row {
            what: "root past deny: exempt, the failures forgiven",
            user: b"root".to_vec(),
            given: root_past_deny,
            at: 60,
            step: Step::AfterPreauth(Phase::AuthSucc),
            effects: vec![Effect::Succeeded("root")],
            ..Row::default()
        },
        Row {
            what: "unknown user, not tracked: nothing written",
            user: b"mallory".to_vec(),
            step: Step::Alone(Phase::AuthSucc),
            effects: vec![Effect::Untouched],
            ..Row::default()
        },
    ]);
}

#[test]
fn account_phase() {
    use PamResultCode::*;
    play(vec![
        Row {
            what: "no state: let through",
            step: Step::Alone(Phase::Account),
            effects: vec![Effect::Untouched],
            ..Row::default()
        },
        Row {
            what: "locked (an SSH key skips the password): refused with the message",
            given: three_failures,
            at: 240,
            step: Step::Alone(Phase::Account),
            code: PAM_PERM_DENIED,
            message: Some(LOCKED_6_MIN),
            effects: vec![Effect::Untouched],
            ..Row::default()
        },
        Row {
            what: "locked, refuse_in_account = false: let through with a warning",
            args: &["refuse_in_account=false"],
            given: three_failures,
            at: 240,
            step: Step::Alone(Phase::Account),
            warning: Some(LOCKED_6_MIN),
            effects: vec![Effect::Untouched],
            ..Row::default()
        },
        Row {
            what: "a timed lock run out: let through",
            given: three_failures,
            at: 601,
            step: Step::Alone(Phase::Account),
            ..Row::default()
        },
        Row {
            what: "until reactivated: refused",
            args: &["unlock_after=never"],
            given: three_failures,
            at: 86_400,
            step: Step::Alone(Phase::Account),
            code: PAM_PERM_DENIED,
            message: Some(LOCKED_FOR_GOOD),
            ..Row::default()
        },
        Row {
            what: "until reactivated, reactivated: let through",
            args: &["unlock_after=never"],
            given: reactivated_at_60,
            at: 86_400,
            step: Step::Alone(Phase::Account),
            ..Row::default()
        },
        Row {
            what: "disabled: refused with the message",
            given: alice_disabled,
            step: Step::Alone(Phase::Account),
            code: PAM_PERM_DENIED,
            message: Some(DISABLED),
            ..Row::default()
        },
        Row {
            what: "admin_group member locked: exempt, let through",
            args: &["admin_group=wheel"],
            user: b"ops".to_vec(),
            given: ops_past_deny,
            at: 60,
            step: Step::Alone(Phase::Account),
            ..Row::default()
        },
        Row {
            what: "after a successful authentication the attempt is withdrawn",
            step: Step::AfterPreauth(Phase::Account),
            effects: vec![Effect::Failures("alice", 0)],
            ..Row::default()
        },
        Row {
            what: "the departure date has come: refused, whatever refuse_in_account says",
            args: &["refuse_in_account=false"],
            given: |fx| {
                fx.merge(
                    "alice",
                    UserState {
                        expires_on: Some(Stamped {
                            set_at: t(-86_400),
                            value: Some(T0 / 86_400),
                        }),
                        ..UserState::default()
                    },
                );
            },
            step: Step::Alone(Phase::Account),
            code: PAM_ACCT_EXPIRED,
            message: Some(
                "The account expired on 2023-11-14: ask your manager or an administrator.",
            ),
            ..Row::default()
        },
        Row {
            what: "reset by an administrator: must change now",
            given: |fx| {
                fx.merge(
                    "alice",
                    UserState {
                        last_password_change: Some(t(-86_400)),
                        last_admin_reset: Some(t(-60)),
                        ..UserState::default()
                    },
                );
            },
            step: Step::Alone(Phase::Account),
            code: PAM_NEW_AUTHTOK_REQD,
            message: Some(
                "You are required to change your password now: it was reset by an \
                 administrator.",
            ),
            ..Row::default()
        },
        Row {
            what: "reset more than temporary_valid_for (7 days) ago and never changed: refused",
            given: |fx| {
                fx.merge(
                    "alice",
                    UserState {
                        last_password_change: Some(t(-30 * 86_400)),
                        last_admin_reset: Some(t(-7 * 86_400 - 1)),
                        ..UserState::default()
                    },
                );
            },
            step: Step::Alone(Phase::Account),
            code: PAM_ACCT_EXPIRED,
            message: Some(
                "The temporary password is no longer valid: ask your manager or an \
                 administrator for a new one.",
            ),
            ..Row::default()
        },
        Row {
            what: "reset just under temporary_valid_for ago: must change, not refused",
            given: |fx| {
                fx.merge(
                    "alice",
                    UserState {
                        last_admin_reset: Some(t(-7 * 86_400 + 60)),
                        ..UserState::default()
                    },
                );
            },
            step: Step::Alone(Phase::Account),
            code: PAM_NEW_AUTHTOK_REQD,
            message: Some(
                "You are required to change your password now: it was reset by an \
                 administrator.",
            ),
            ..Row::default()
        },
        Row {
            what: "changed since the reset: let through",
            given: |fx| {
                fx.merge(
                    "alice",
                    UserState {
                        last_admin_reset: Some(t(-120)),
                        last_password_change: Some(t(-60)),
                        ..UserState::default()
                    },
                );
            },
            step: Step::Alone(Phase::Account),
            ..Row::default()
        },
        Row {
            what: "unknown user, tracked or not: left to the other account modules",
            args: &["track_unknown_users"],
            user: b"mallory".to_vec(),
            step: Step::Alone(Phase::Account),
            code: PAM_IGNORE,
            effects: vec![Effect::Untouched],
            ..Row::default()
        },
    ]);
}

/// A state directory deadbolt must not use: readable by others, or a
/// regular file where the directory should be.
fn open_to_others(fx: &Fixture) {
    fx.chmod(0o755);
}

fn not_a_directory(fx: &Fixture) {
    std::fs::remove_dir(fx.dir()).expect("rmdir");
    std::fs::write(fx.dir(), b"").expect("file");
}

/// A wrong password after preauth, in a transaction of its own: refused
/// with the default pause.
fn wrong_password(what: &'static str) -> Row {
    Row {
        what,
        step: Step::AfterPreauth(Phase::AuthFail),
        code: PamResultCode::PAM_AUTH_ERR,
        delay: secs(2),
        ..Row::default()
    }
}

/// A row's text, made up from the loop that makes the row.
fn named(what: String) -> &'static str {
    Box::leak(what.into_boxed_str())
}

#[test]
fn cannot_count() {
    use PamResultCode::*;
    let faults: [(&str, Setup); 2] = [
        ("the state dir is open to others", open_to_others),
        ("the state dir is a file", not_a_directory),
    ];
    // alice is refused; root and an admin_group member must get in to
    // repair the host.
    let users: [(&str, bool); 3] = [("alice", false), ("root", true), ("ops", true)];
    let phases = [
        Phase::PreAuth,
        Phase::AuthFail,
        Phase::AuthSucc,
        Phase::Account,
    ];
    let mut rows = Vec::new();
    for (fault, given) in faults {
        for (user, exempt) in users {
            for phase in phases {
                let (code, message, delay) = match (phase, exempt) {
                    // A wrong password fails as ever, recorded or not.
                    (Phase::AuthFail, _) => (PAM_AUTH_ERR, None, secs(2)),
                    (_, true) => (PAM_SUCCESS, None, None),
                    (Phase::Account, false) => (PAM_PERM_DENIED, Some(CANNOT_COUNT), None),
                    (_, false) => (PAM_AUTH_ERR, Some(CANNOT_COUNT), None),
                };
                rows.push(Row {
                    what: named(format!("{phase:?}, {fault}: {user}")),
                    args: &["admin_group=wheel"],
                    given,
                    user: user.as_bytes().to_vec(),
                    step: Step::Alone(phase),
                    code,
                    message,
                    delay,
                    effects: vec![Effect::Untouched],
                    ..Row::default()
                });
            }
        }
    }
    rows.extend([
        Row {
            what: "configuration others could have written: refused",
            untrusted: true,
            code: PAM_AUTH_ERR,
            message: Some(UNTRUSTED),
            delay: secs(2),
            effects: vec![Effect::Untouched],
            ..Row::default()
        },
        Row {
            what: "configuration others could have written: refused in the account phase",
            untrusted: true,
            step: Step::Alone(Phase::Account),
            code: PAM_PERM_DENIED,
            message: Some(UNTRUSTED),
            delay: secs(2),
            effects: vec![Effect::Untouched],
            ..Row::default()
        },
        Row {
            what: "configuration others could have written: root let in",
            untrusted: true,
            user: b"root".to_vec(),
            effects: vec![Effect::Untouched],
            ..Row::default()
        },
        Row {
            what: "configuration others could have written: root's wrong password fails",
            untrusted: true,
            user: b"root".to_vec(),
            step: Step::Alone(Phase::AuthFail),
            code: PAM_AUTH_ERR,
            effects: vec![Effect::Untouched],
            ..Row::default()
        },
    ]);
    play(rows);
}

/// A state file that does not decode may have said "disabled": the account
/// is disabled until an administrator looks, and the file kept aside.
#[test]
fn unreadable_state_disables() {
    use PamResultCode::*;
    play(vec![
        Row {
            what: "a corrupt state: set aside, refused as disabled",
            given: |fx| std::fs::write(fx.dir().join("alice.state"), b"{not json").expect("write"),
            code: PAM_AUTH_ERR,
            message: Some(DISABLED),
            delay: secs(2),
            effects: vec![Effect::Check(|fx| {
                let state = fx.state("alice", 0).expect("state");
                assert!(state.is_disabled());
                let kept = fx
                    .dir()
                    .join(format!(".corrupt.alice.{}", t(0).as_micros()));
                assert_eq!(std::fs::read(kept).expect("kept aside"), b"{not json");
            })],
            ..Row::default()
        },
        Row {
            what: "a corrupt state of root's: set aside, root let in",
            user: b"root".to_vec(),
            given: |fx| std::fs::write(fx.dir().join("root.state"), b"{not json").expect("write"),
            attempt: true,
            ..Row::default()
        },
    ]);
}

/// Names that could reach outside the state directory, or fill a log:
/// refused as unknown before the configuration is even read.
#[test]
fn hostile_names() {
    use PamResultCode::*;
    let mut rows = Vec::new();
    let names: [(&str, Vec<u8>); 6] = [
        ("a path", b"../x".to_vec()),
        ("an absolute path", b"/etc/passwd".to_vec()),
        ("a NUL", b"al\0ice".to_vec()),
        ("10 KiB", vec![b'a'; 10 * 1024]),
        ("not UTF-8", b"al\xffice".to_vec()),
        ("a dot file", b".alice.state".to_vec()),
    ];
    for (what, user) in names {
        for phase in [
            Phase::PreAuth,
            Phase::AuthFail,
            Phase::AuthSucc,
            Phase::Account,
        ] {
            rows.push(Row {
                what,
                user: user.clone(),
                step: Step::Alone(phase),
                code: PAM_USER_UNKNOWN,
                effects: vec![Effect::NothingAsked],
                ..Row::default()
            });
        }
    }
    play(rows);
}

/// The calls of one transaction share what they decoded, but each reads the
/// files afresh: a lock that failures elsewhere completed between preauth
/// and authsucc, folded into the state file meanwhile, refuses the right
/// password.
#[test]
fn a_lock_completed_between_two_calls_is_seen() {
    let fx = Fixture::new(&Row::default());
    let alice = UserName::parse("alice").expect("name");
    two_failures(&fx);
    fx.store().fold(&alice, t(0)).expect("fold");
    let mut cache = DecodeCache::default();
    let pre = decide_on(
        &fx.request(Phase::PreAuth, b"alice", 0, true, None),
        &fx.host,
        &mut cache,
    );
    assert_eq!(pre.code, PamResultCode::PAM_SUCCESS);
    let elsewhere = UserState {
        failures: [Failure {
            time: t(-5),
            host: "other".to_owned(),
            source: "192.0.2.7".to_owned(),
            service: "sshd".to_owned(),
            pid: 7,
        }]
        .into(),
        ..UserState::default()
    };
    fx.merge("alice", elsewhere);
    fx.store().fold(&alice, t(0)).expect("fold");
    let after = decide_on(
        &fx.request(Phase::AuthSucc, b"alice", 0, true, pre.attempt),
        &fx.host,
        &mut cache,
    );
    assert_eq!(after.code, PamResultCode::PAM_AUTH_ERR);
    assert_eq!(after.message.as_deref(), Some(LOCKED_10_MIN));
}
