//! What each PAM call decides, in safe code with the time passed in.

use crate::log::{self, clean, origin};
use crate::settings;
use deadbolt_config::{Config, EffectiveLockout};
use deadbolt_core::identity::{self, Account};
use deadbolt_core::password::{format_date, Ageing};
use deadbolt_core::store::{AttemptId, DecodeCache, Loaded, Pending};
use deadbolt_core::{Failure, LockStatus, StateStore, Timestamp, UserName, UserState};
use pam::constants::PamResultCode;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    PreAuth,
    AuthFail,
    AuthSucc,
    Account,
}

/// Everything a decision needs, fetched from PAM by the caller.
#[derive(Debug)]
pub struct Request<'a> {
    pub phase: Phase,
    /// The user name exactly as PAM holds it: not yet checked.
    pub user: &'a [u8],
    pub service: &'a str,
    pub rhost: &'a str,
    pub tty: &'a str,
    /// Whether the password module received a password (PAM_AUTHTOK set).
    /// When it did not, the conversation was aborted or timed out.
    pub password_given: bool,
    /// An earlier call in this transaction (preauth) already refused the
    /// account, and logged why.
    pub refused_earlier: bool,
    pub args: &'a [&'a str],
    pub now: Timestamp,
    /// The attempt preauth recorded in this transaction, if it did.
    pub attempt: Option<AttemptId>,
}

/// What to answer libpam, and what to tell the user.
#[derive(Debug)]
pub struct Verdict {
    pub code: PamResultCode,
    /// An error message (PAM_ERROR_MSG).
    pub message: Option<String>,
    /// An informational message (PAM_TEXT_INFO).
    pub warning: Option<String>,
    pub delay: Option<Duration>,
    /// An attempt preauth recorded, for authfail or authsucc to settle or
    /// withdraw later in the transaction.
    pub attempt: Option<AttemptId>,
}

impl Verdict {
    fn code(code: PamResultCode) -> Self {
        Verdict {
            code,
            message: None,
            warning: None,
            delay: None,
            attempt: None,
        }
    }
}

/// What a login gets when deadbolt cannot keep count (the state directory is
/// unusable or tampered with, an attempt cannot be recorded): refused, unless
/// the account is exempt (root, `admin_group`), who must be able to repair it.
fn cannot_count(subject: &Subject, why: &str, request: &Request) -> Verdict {
    if subject.exempt || subject.account.uid == 0 {
        log::error(&format!(
            "{why}; {} let in as exempt ({})",
            subject.name,
            subject.where_from(request)
        ));
        return Verdict::code(PamResultCode::PAM_SUCCESS);
    }
    log::critical(&format!(
        "{why}; refused {} ({})",
        subject.name,
        subject.where_from(request)
    ));
    Verdict {
        message: Some(
            "Login refused: deadbolt cannot record login attempts on this host; ask an \
             administrator."
                .to_owned(),
        ),
        ..Verdict::code(PamResultCode::PAM_AUTH_ERR)
    }
}

struct Subject {
    name: UserName,
    account: Account,
    policy: EffectiveLockout,
    /// Root or a member of `admin_group`, without `even_deny_root`: failures
    /// are counted and logged but never lock.
    exempt: bool,
    /// `[host] name`: the host a failure recorded here names, the same
    /// name the sync daemon pushes this host's records under.
    host: String,
}

impl Subject {
    /// Whether this status refuses a login. A disabled account is refused
    /// whoever it is, except root: disabling root would lock out the one
    /// account that can undo it.
    fn refused_by(&self, status: &LockStatus) -> bool {
        (status.disabled && self.account.uid != 0) || (status.locked_out() && !self.exempt)
    }

    fn where_from(&self, request: &Request) -> String {
        origin(request.service, request.rhost, request.tty)
    }
}

/// `cache` lives as long as the PAM transaction: see [`DecodeCache`].
pub fn decide(request: &Request, cache: &mut DecodeCache) -> Verdict {
    decide_on(request, &System, cache)
}

/// What a decision learns from the host around it: the configuration and
/// who a user is. The module asks the files and NSS ([`System`]); the unit
/// tests answer from a table, so that every decision can be played without
/// libpam, with a real store in a temporary directory.
pub(crate) trait Host {
    type Groups: Groups;
    /// The configuration for this call, module arguments applied.
    fn config(&self, args: &[&str]) -> Arc<Config>;
    /// Why the configuration file cannot be trusted, if it cannot.
    fn config_untrusted(&self) -> Option<String>;
    fn lookup(&self, name: &str) -> Option<Account>;
    fn groups(&self, account: &Account) -> Self::Groups;
}

/// A user's groups, asked one name at a time.
pub(crate) trait Groups {
    fn contains(&self, group: &str) -> bool;
}

/// The configuration file and NSS.
struct System;

impl Host for System {
    type Groups = identity::Membership;

    fn config(&self, args: &[&str]) -> Arc<Config> {
        settings::load_config(args)
    }

    fn config_untrusted(&self) -> Option<String> {
        settings::config_untrusted()
    }

    fn lookup(&self, name: &str) -> Option<Account> {
        identity::lookup(name)
    }

    fn groups(&self, account: &Account) -> identity::Membership {
        identity::Membership::of(&account.name, account.gid)
    }
}

impl Groups for identity::Membership {
    fn contains(&self, group: &str) -> bool {
        identity::Membership::contains(self, group)
    }
}

pub(crate) fn decide_on(request: &Request, host: &impl Host, cache: &mut DecodeCache) -> Verdict {
    let name = match UserName::from_bytes(request.user) {
        Ok(name) => name,
        Err(why) => {
            log::notice(&format!(
                "refusing a user name from service={}: {why}",
                clean(request.service)
            ));
            return Verdict::code(PamResultCode::PAM_USER_UNKNOWN);
        }
    };
    let config = host.config(request.args);
    if let Some(why) = host.config_untrusted() {
        let root = host.lookup(name.as_str()).is_some_and(|a| a.uid == 0);
        if root {
            return Verdict::code(if request.phase == Phase::AuthFail {
                PamResultCode::PAM_AUTH_ERR
            } else {
                PamResultCode::PAM_SUCCESS
            });
        }
        log::critical(&format!(
            "refused {name}: the configuration is not safe to use ({why})"
        ));
        let code = match request.phase {
            Phase::Account => PamResultCode::PAM_PERM_DENIED,
            _ => PamResultCode::PAM_AUTH_ERR,
        };
        return Verdict {
            message: Some(
                "Login refused: deadbolt's configuration is not safe to use; ask an \
                 administrator."
                    .to_owned(),
            ),
            delay: delay_after(&config.effective_lockout(|_| false), 1),
            ..Verdict::code(code)
        };
    }
    let Some(account) = host.lookup(name.as_str()) else {
        return unknown_user(request, &config, &name, cache);
    };
    // State is kept under the account's own name, so `ALICE` and
    // `alice@corp.example` meet alice's tally, lock and disable.
    let name = if account.name == name.as_str() {
        name
    } else {
        match UserName::parse(&account.name) {
            Ok(own) => {
                log::info(&format!(
                    "{own} logging in as {name} ({})",
                    origin(request.service, request.rhost, request.tty)
                ));
                own
            }
            Err(why) => {
                log::error(&format!(
                    "refusing {name}: NSS names the account in a way deadbolt cannot \
                     store ({why})"
                ));
                return Verdict::code(PamResultCode::PAM_USER_UNKNOWN);
            }
        }
    };
    let membership = host.groups(&account);
    let policy = config.effective_lockout(|group| membership.contains(group));
    let exempt = !policy.even_deny_root
        && (account.uid == 0
            || policy
                .admin_group
                .as_deref()
                .is_some_and(|g| membership.contains(g)));
    let subject = Subject {
        name,
        account,
        policy,
        exempt,
        host: clean(&config.host.name),
    };
    let store_dir = config.state.dir.as_path();
    match request.phase {
        Phase::PreAuth => preauth(request, &subject, store_dir, cache),
        Phase::AuthFail => authfail(request, &subject, store_dir, cache),
        Phase::AuthSucc => authsucc(request, &subject, store_dir, cache),
        Phase::Account => account_phase(request, &subject, store_dir, cache, || {
            config
                .effective_password(|group| membership.contains(group))
                .ageing
        }),
    }
}

/// Users NSS does not know are not tracked unless configured, so guessing
/// names cannot fill the disk; the password module refuses them anyway.
/// Tracked, they go through the same steps as a known user under the
/// default policy, so neither the pause nor the lock tells them apart.
fn unknown_user(
    request: &Request,
    config: &Config,
    name: &UserName,
    cache: &mut DecodeCache,
) -> Verdict {
    if config.state.track_unknown_users && request.phase != Phase::Account {
        let subject = Subject {
            name: name.clone(),
            account: Account {
                name: name.as_str().to_owned(),
                uid: u32::MAX,
                gid: u32::MAX,
                real_name: String::new(),
            },
            policy: config.effective_lockout(|_| false),
            exempt: false,
            host: clean(&config.host.name),
        };
        let dir = config.state.dir.as_path();
        return match request.phase {
            Phase::PreAuth => preauth(request, &subject, dir, cache),
            Phase::AuthFail => authfail(request, &subject, dir, cache),
            _ => authsucc(request, &subject, dir, cache),
        };
    }
    match request.phase {
        Phase::Account => Verdict::code(PamResultCode::PAM_IGNORE),
        Phase::AuthFail => Verdict {
            // As long as a known user's first failure. With `delay_mode =
            // "backoff"` a known user's pause grows and this one does not:
            // docs/reference.md says so, and `track_unknown_users` closes it.
            delay: delay_after(&config.effective_lockout(|_| false), 1),
            ..Verdict::code(PamResultCode::PAM_AUTH_ERR)
        },
        Phase::PreAuth | Phase::AuthSucc => Verdict::code(PamResultCode::PAM_SUCCESS),
    }
}

/// What the store holds for a user, as a login sees it.
enum Current {
    /// Nothing recorded (or no store yet).
    Nothing,
    State(StateStore, Box<UserState>),
    /// The store cannot be used: what was wrong, for the log.
    Unusable(String),
}

/// The user's state as it is now, every attempt in flight counted but the
/// caller's own (`pending`). A state that cannot be decoded, or that is not
/// a private file of root's (tampering is treated as corruption), is set
/// aside and the account disabled. A state directory that is not root's
/// alone is unusable: the caller refuses non-exempt accounts. The files are
/// read afresh at every call, so a decision never rests on what another
/// login changed since an earlier call; `cache` only spares decoding bytes
/// already decoded.
fn current_state(
    subject: &Subject,
    dir: &Path,
    now: Timestamp,
    pending: Pending,
    cache: &mut DecodeCache,
) -> Current {
    let store = match StateStore::open_existing(dir) {
        Ok(store) => store,
        Err(deadbolt_core::StoreError::Missing { .. }) => return Current::Nothing,
        Err(err) => return Current::Unusable(format!("state store unusable: {err}")),
    };
    match store.load_counting_cached(&subject.name, pending, now, cache) {
        Ok(Loaded::Present(state)) => Current::State(store, Box::new(state)),
        Ok(Loaded::Absent) => Current::Nothing,
        Ok(Loaded::Corrupt(why)) => {
            let state = set_aside_unreadable(&store, subject, &why, now);
            Current::State(store, Box::new(state))
        }
        Err(err) => Current::Unusable(format!("state of {}: {err}", subject.name)),
    }
}

/// A state that cannot be decoded may have said "disabled" or "expired":
/// letting the user in would fail open. It is kept aside for inspection and
/// replaced by one that disables the account until an administrator looks
/// (`deadboltctl enable`). Root is never refused for being disabled. When it
/// cannot even be set aside (its lock is held), the account is refused as
/// disabled all the same, for this login.
fn set_aside_unreadable(
    store: &StateStore,
    subject: &Subject,
    why: &str,
    now: Timestamp,
) -> UserState {
    // Never waiting: with the lock busy the update becomes a record, which
    // moves nothing aside.
    let result = store
        .clone()
        .with_lock_wait(Duration::ZERO)
        .update(&subject.name, now, |state| {
            state.last_disable = Some(now);
            true
        });
    match result {
        Ok(updated) if !updated.as_record => {
            for kept in &updated.quarantined {
                log::critical(&format!(
                    "state of {} was unusable ({}); kept aside at {}; the account is \
                     disabled until an administrator runs deadboltctl enable {}",
                    subject.name,
                    kept.why,
                    kept.kept_at.display(),
                    subject.name
                ));
            }
            updated.state
        }
        _ => {
            log::critical(&format!(
                "state of {} is unusable ({why}) and could not be set aside now; the \
                 login is refused as for a disabled account",
                subject.name
            ));
            UserState {
                last_disable: Some(now),
                ..UserState::default()
            }
        }
    }
}

/// The pause after the `failures`-th failure; `None` for no pause.
fn delay_after(policy: &EffectiveLockout, failures: u32) -> Option<Duration> {
    Some(policy.delay.after_failures(failures.max(1))).filter(|d| !d.is_zero())
}

fn refusal(subject: &Subject, status: &LockStatus, now: Timestamp, code: PamResultCode) -> Verdict {
    Verdict {
        message: if subject.policy.silent {
            None
        } else {
            status.user_message(now)
        },
        ..Verdict::code(code)
    }
}

fn describe(status: &LockStatus) -> String {
    if status.disabled {
        "disabled".to_owned()
    } else if !status.failure_locked && status.directory_locked {
        "locked in the directory".to_owned()
    } else {
        match status.locked_until {
            Some(until) => format!("locked until {until} after {} failures", status.failures),
            None => format!(
                "locked until reactivated after {} failures",
                status.failures
            ),
        }
    }
}

/// Before the password is checked: refuses a locked or disabled account,
/// then records the attempt as a failure in flight. Whatever happens to the
/// process from here on (killed, out of a resource, stopped for good), the
/// attempt counts, unless authsucc or authfail takes it back.
fn preauth(request: &Request, subject: &Subject, dir: &Path, cache: &mut DecodeCache) -> Verdict {
    match current_state(subject, dir, request.now, Pending::All, cache) {
        Current::Unusable(why) => return cannot_count(subject, &why, request),
        Current::Nothing => {}
        Current::State(store, state) => {
            let status = subject.policy.lockout.evaluate(&state, request.now);
            if subject.refused_by(&status) {
                log::notice(&format!(
                    "refused {}: {} ({})",
                    subject.name,
                    describe(&status),
                    subject.where_from(request)
                ));
                let mut verdict =
                    refusal(subject, &status, request.now, PamResultCode::PAM_AUTH_ERR);
                verdict.delay = delay_after(&subject.policy, status.failures);
                return verdict;
            }
            note_timed_unlock(request, subject, &store, &state, &status);
        }
    }
    if !subject.policy.lockout.enabled {
        return Verdict::code(PamResultCode::PAM_SUCCESS);
    }
    if !crate::limits::writes_allowed() {
        return cannot_count(
            subject,
            "the attempt could not be recorded: the caller's file size limit is too low",
            request,
        );
    }
    let recorded = StateStore::open_or_create(dir)
        .and_then(|store| store.begin_attempt(&subject.name, &new_failure(request, subject)));
    match recorded {
        Ok(id) => Verdict {
            attempt: Some(id),
            ..Verdict::code(PamResultCode::PAM_SUCCESS)
        },
        Err(err) => cannot_count(
            subject,
            &format!("the attempt could not be recorded: {err}"),
            request,
        ),
    }
}

/// Logs, once for the whole fleet, that a timed lock ran out.
fn note_timed_unlock(
    request: &Request,
    subject: &Subject,
    store: &StateStore,
    state: &UserState,
    status: &LockStatus,
) {
    let Some(end) = status.lapsed_lock_end else {
        return;
    };
    if state.last_timed_unlock.is_some_and(|logged| logged >= end) {
        return;
    }
    let note = UserState {
        last_timed_unlock: Some(end),
        ..UserState::default()
    };
    match store.merge_in(&subject.name, &note, request.now, false) {
        Ok(()) => log::notice(&format!(
            "timed unlock of {}: the lock ran out at {end}; noticed at the login ({})",
            subject.name,
            subject.where_from(request)
        )),
        Err(err) => log::error(&format!("state of {}: {err}", subject.name)),
    }
}

/// The failure this request would be, with where it came from.
fn new_failure(request: &Request, subject: &Subject) -> Failure {
    let source = if request.rhost.is_empty() {
        request.tty
    } else {
        request.rhost
    };
    Failure {
        time: request.now,
        host: subject.host.clone(),
        source: clean(source),
        service: clean(request.service),
        pid: std::process::id(),
    }
}

/// After a wrong password. The attempt preauth recorded becomes a failure
/// for good; without preauth in the stack, the failure is recorded now.
fn authfail(request: &Request, subject: &Subject, dir: &Path, cache: &mut DecodeCache) -> Verdict {
    // Every failed attempt waits alike, recorded or not, so the time an
    // answer takes does not tell an unknown or locked account from another.
    let mut failed = Verdict::code(PamResultCode::PAM_AUTH_ERR);
    failed.delay = delay_after(&subject.policy, 1);
    let store = StateStore::open_or_create(dir);
    if !request.password_given {
        // No password reached the password module: the user gave up or the
        // prompt timed out. That is not a guess, so it is not counted; but a
        // password module that never sets PAM_AUTHTOK would leave every
        // failure uncounted, so say so.
        if let (Ok(store), Some(id)) = (&store, &request.attempt) {
            if let Err(err) = store.withdraw_attempt(&subject.name, id) {
                log::error(&format!("state of {}: {err}", subject.name));
            }
        }
        log::warning(&format!(
            "failure of {} not counted: no password reached the password module (an \
             aborted prompt, or a module such as pam_sss without forward_pass) ({})",
            subject.name,
            subject.where_from(request)
        ));
        return failed;
    }
    if !subject.policy.lockout.enabled {
        return failed;
    }
    let store = match store {
        Ok(store) => store,
        Err(err) => {
            log::critical(&format!(
                "state store unusable, failure of {} not recorded: {err}",
                subject.name
            ));
            return failed;
        }
    };
    let own = request.attempt.as_ref();
    // One read for both sides: with an attempt of its own in flight, that
    // attempt is this failure; without, the failure is added now.
    let mut after_state =
        match store.load_counting_cached(&subject.name, Pending::All, request.now, cache) {
            Ok(Loaded::Present(state)) => state,
            Ok(_) => UserState::default(),
            Err(err) => {
                log::critical(&format!("state of {}: {err}", subject.name));
                return failed;
            }
        };
    let failure = new_failure(request, subject);
    let mut before_state = after_state.clone();
    match own {
        Some(id) => before_state.failures.retain(|f| !id.recorded(f)),
        None => {
            after_state.failures.insert(failure.clone());
        }
    }
    let before = subject.policy.lockout.evaluate(&before_state, request.now);
    let after = subject.policy.lockout.evaluate(&after_state, request.now);
    let locks = after.failure_locked && !before.failure_locked;
    // A lock must survive a crash of the machine; a failure below `deny`
    // costs no sync.
    let recorded = match own {
        Some(id) => store.settle_attempt(&subject.name, id, locks),
        None if !crate::limits::writes_allowed() => {
            log::critical(&format!(
                "failure of {} not recorded: the caller's file size limit is too low",
                subject.name
            ));
            return failed;
        }
        None => {
            let mut delta = UserState::default();
            delta.failures.insert(failure);
            store.merge_in(&subject.name, &delta, request.now, locks)
        }
    };
    if let Err(err) = recorded {
        log::critical(&format!(
            "state of {}: {err}; failure not recorded",
            subject.name
        ));
        return failed;
    }
    if store.records(&subject.name) > deadbolt_core::store::FOLD_AT {
        if let Err(err) = store.fold(&subject.name, request.now) {
            log::error(&format!("state of {}: {err}", subject.name));
        }
    }
    let mut verdict = failed;
    verdict.delay =
        Some(subject.policy.delay.after_failures(after.failures)).filter(|d| !d.is_zero());
    if locks {
        if subject.exempt {
            log::notice(&format!(
                "{} reached {} failures but is exempt (root or admin_group) ({})",
                subject.name,
                after.failures,
                subject.where_from(request)
            ));
        } else {
            log::notice(&format!(
                "locked {}: {} (uid {}, policy {}) ({})",
                subject.name,
                describe(&after),
                subject.account.uid,
                subject.policy.policy_name,
                subject.where_from(request)
            ));
            if !subject.policy.silent {
                verdict.message = after.user_message(request.now);
            }
        }
    } else {
        log::info(&format!(
            "failure {} of {} for {} ({})",
            after.failures,
            subject.policy.lockout.deny,
            subject.name,
            subject.where_from(request)
        ));
    }
    verdict
}

/// After a right password: the account may have been locked meanwhile by a
/// failure elsewhere; otherwise the attempt preauth recorded is withdrawn,
/// and earlier failures are forgiven with a success time.
fn authsucc(request: &Request, subject: &Subject, dir: &Path, cache: &mut DecodeCache) -> Verdict {
    let own = request.attempt.as_ref();
    let pending = own.map_or(Pending::All, Pending::AllBut);
    let (store, state) = match current_state(subject, dir, request.now, pending, cache) {
        Current::Unusable(why) => return cannot_count(subject, &why, request),
        Current::Nothing => return Verdict::code(PamResultCode::PAM_SUCCESS),
        Current::State(store, state) => (store, state),
    };
    let status = subject.policy.lockout.evaluate(&state, request.now);
    if subject.refused_by(&status) {
        // With preauth `required`, the password is still asked for: preauth
        // has logged the refusal. Otherwise the account was locked between
        // preauth and now, by a failure elsewhere. The right password is no
        // guess: the attempt is withdrawn.
        if let Some(id) = own {
            let _ = store.withdraw_attempt(&subject.name, id);
        }
        if !request.refused_earlier {
            log::notice(&format!(
                "refused {} after a right password: {} ({})",
                subject.name,
                describe(&status),
                subject.where_from(request)
            ));
        }
        return refusal(subject, &status, request.now, PamResultCode::PAM_AUTH_ERR);
    }
    let withdrawn = match own {
        None => true,
        Some(id) => match store.withdraw_attempt(&subject.name, id) {
            Ok(found) => found,
            Err(err) => {
                log::error(&format!("state of {}: {err}", subject.name));
                false
            }
        },
    };
    // Only write when failures are pending (or the attempt was already
    // folded as one): a write on every login would cost more than the rest
    // of the module together.
    let cleared = state.live_failures().count();
    if cleared > 0 || !withdrawn {
        let success = UserState {
            last_success: Some(request.now),
            ..UserState::default()
        };
        match store.merge_in(&subject.name, &success, request.now, false) {
            Ok(()) => log::info(&format!(
                "{} logged in; {cleared} earlier failure{} no longer count ({})",
                subject.name,
                if cleared == 1 { "" } else { "s" },
                subject.where_from(request)
            )),
            Err(err) => log::error(&format!("state of {}: {err}", subject.name)),
        }
    }
    // After a success no failure held counts again, but every read decodes
    // them until a fold drops them, and only the failure path folds: a user
    // who once held hundreds would pay for them at every login. Dropped
    // once, now, with the fold's two syncs; never waiting for the lock.
    if state.failures.len() > deadbolt_core::store::FOLD_AT {
        if let Err(err) = store.fold(&subject.name, request.now) {
            log::error(&format!("state of {}: {err}", subject.name));
        }
    }
    Verdict::code(PamResultCode::PAM_SUCCESS)
}

/// `ageing` is asked for only when the user has state: most logins have
/// nothing for it to judge.
fn account_phase(
    request: &Request,
    subject: &Subject,
    dir: &Path,
    cache: &mut DecodeCache,
    ageing: impl FnOnce() -> Ageing,
) -> Verdict {
    if let Some(id) = &request.attempt {
        // The account phase runs after a successful authentication: a stack
        // without the authsucc line must not leave the attempt as a failure.
        if let Ok(store) = StateStore::open_existing(dir) {
            let _ = store.withdraw_attempt(&subject.name, id);
        }
    }
    let state = match current_state(subject, dir, request.now, Pending::All, cache) {
        Current::Unusable(why) => {
            let mut verdict = cannot_count(subject, &why, request);
            if verdict.code != PamResultCode::PAM_SUCCESS {
                verdict.code = PamResultCode::PAM_PERM_DENIED;
            }
            return verdict;
        }
        Current::Nothing => return Verdict::code(PamResultCode::PAM_SUCCESS),
        Current::State(_, state) => state,
    };
    let age = ageing().evaluate(&state, request.now);
    // The departure date ends the account for everyone but root, whatever
    // `refuse_in_account` says: it is not a lockout but the end of a contract.
    if age.account_expired && subject.account.uid != 0 {
        log::notice(&format!(
            "refused {}: the account expired ({})",
            subject.name,
            subject.where_from(request)
        ));
        let day = state
            .expires_on
            .as_ref()
            .and_then(|e| e.value)
            .map(format_date)
            .unwrap_or_default();
        return Verdict {
            message: Some(format!(
                "The account expired on {day}: ask your manager or an administrator."
            )),
            ..Verdict::code(PamResultCode::PAM_ACCT_EXPIRED)
        };
    }
    if age.temporary_expired && subject.account.uid != 0 {
        log::notice(&format!(
            "refused {}: the password set for them was never changed and is no longer \
             valid ({})",
            subject.name,
            subject.where_from(request)
        ));
        return Verdict {
            message: Some(
                "The temporary password is no longer valid: ask your manager or an \
                 administrator for a new one."
                    .to_owned(),
            ),
            ..Verdict::code(PamResultCode::PAM_ACCT_EXPIRED)
        };
    }
    let status = subject.policy.lockout.evaluate(&state, request.now);
    if subject.refused_by(&status) {
        if subject.policy.refuse_in_account {
            log::notice(&format!(
                "refused {} in the account phase: {} ({})",
                subject.name,
                describe(&status),
                subject.where_from(request)
            ));
            return refusal(
                subject,
                &status,
                request.now,
                PamResultCode::PAM_PERM_DENIED,
            );
        }
        return Verdict {
            warning: if subject.policy.silent {
                None
            } else {
                status.user_message(request.now)
            },
            ..Verdict::code(PamResultCode::PAM_SUCCESS)
        };
    }
    if age.must_change {
        let why = if age.reset_by_admin {
            "it was reset by an administrator"
        } else {
            "it has expired"
        };
        log::info(&format!("{} must change the password: {why}", subject.name));
        return Verdict {
            message: Some(format!(
                "You are required to change your password now: {why}."
            )),
            ..Verdict::code(PamResultCode::PAM_NEW_AUTHTOK_REQD)
        };
    }
    if let Some(left) = age.expires_soon {
        let days = left.as_secs().div_ceil(86_400);
        return Verdict {
            warning: Some(format!(
                "Warning: your password will expire in {days} day{}.",
                if days == 1 { "" } else { "s" }
            )),
            ..Verdict::code(PamResultCode::PAM_SUCCESS)
        };
    }
    Verdict::code(PamResultCode::PAM_SUCCESS)
}

#[cfg(test)]
mod tests;
