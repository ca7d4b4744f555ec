//! The daemon's loop: one RFC 4533 refreshAndPersist session on the
//! employees' base, whose changes are merged into local state through the
//! core's merge, and the pushes of what this host recorded and the
//! directory lacks.
//!
//! Nothing is lost across crashes or outages: local state is the durable
//! record (the PAM module writes it, never waiting on us), every push is
//! computed by comparing it with the provider's copy, and the cookie is
//! saved only after what it covers has been merged durably. A push never
//! writes a value the provider already has: see [`model::Push`] for why a
//! no-op write is worse than a refused one under delta-syncrepl.

use crate::conn::{self, ConnError};
use crate::contain::{contained, AbortOnDrop};
use crate::encoding;
use crate::files::{self, SeenLocks, Status};
use crate::log;
use crate::model::{self, HostRecord, LockKind, Push, UserEntry};
use crate::settings::{BindWith, Settings};
use crate::view::{RawEntry, Seen, View, RECORD_CLASS, SYNC_ATTRIBUTES};
use deadbolt_core::store::{Loaded, Pending};
use deadbolt_core::{StateStore, Timestamp, UserName, UserState};
use ldap3::controls::{
    Control, ControlType, EntryState, RefreshMode, SyncDone, SyncInfo, SyncRequest, SyncState,
};
use ldap3::{Ldap, Mod, ResultEntry, Scope, SearchEntry};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

mod inbound;
mod push;

/// The sync cookie no longer resumes: RFC 4533's e-syncRefreshRequired.
const SYNC_REFRESH_REQUIRED: u32 = 4096;

/// How many users a full comparison pushes between two looks at the
/// stream, so that a large scan does not hold inbound changes back.
const SCAN_BATCH: usize = 256;

/// Counters for the metrics endpoint.
#[derive(Debug, Default)]
pub struct Metrics {
    pub locks: AtomicU64,
    pub failures_pushed: AtomicU64,
    pub failures_received: AtomicU64,
    pub reactivations: AtomicU64,
    pub pending_records: AtomicU64,
    /// Milliseconds from the directory's stamp on a change to its merge here.
    pub sync_lag_ms: AtomicU64,
    pub connected: AtomicU64,
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "# HELP deadbolt_locks_total Locks reached or learnt from the directory.\n\
             # TYPE deadbolt_locks_total counter\n\
             deadbolt_locks_total {}\n\
             # HELP deadbolt_failures_pushed_total Failures this host wrote to the directory.\n\
             # TYPE deadbolt_failures_pushed_total counter\n\
             deadbolt_failures_pushed_total {}\n\
             # HELP deadbolt_failures_received_total Failures of other hosts merged here.\n\
             # TYPE deadbolt_failures_received_total counter\n\
             deadbolt_failures_received_total {}\n\
             # HELP deadbolt_reactivations_total Reactivations learnt from the directory.\n\
             # TYPE deadbolt_reactivations_total counter\n\
             deadbolt_reactivations_total {}\n\
             # HELP deadbolt_pending_records Records the directory still lacks.\n\
             # TYPE deadbolt_pending_records gauge\n\
             deadbolt_pending_records {}\n\
             # HELP deadbolt_sync_lag_seconds Delay of the latest change applied.\n\
             # TYPE deadbolt_sync_lag_seconds gauge\n\
             deadbolt_sync_lag_seconds {:.3}\n\
             # HELP deadbolt_connected 1 while a sync session is up.\n\
             # TYPE deadbolt_connected gauge\n\
             deadbolt_connected {}\n",
            get(&self.locks),
            get(&self.failures_pushed),
            get(&self.failures_received),
            get(&self.reactivations),
            get(&self.pending_records),
            get(&self.sync_lag_ms) as f64 / 1000.0,
            get(&self.connected),
        )
    }
}

/// What the stream's reader hands the loop.
enum Inbound {
    Entry(Box<SearchEntry>, Option<SyncState>),
    Info(SyncInfo),
    /// The search ended: its result code and SyncDone cookie.
    Done(u32, String, Option<Vec<u8>>),
    Failed(String),
}

/// How an attempt at a session went.
enum Attempt {
    Refused(ConnError),
    Session(Ended),
}

/// Why a session ended.
enum Ended {
    Shutdown,
    Lost(String),
}

#[derive(Debug)]
pub struct Daemon {
    settings: Arc<Settings>,
    bind: BindWith,
    store: StateStore,
    view: View,
    seen_locks: SeenLocks,
    /// `seen_locks` changed since it was last written.
    seen_locks_unsaved: bool,
    cookie: Option<Vec<u8>>,
    /// `cookie` is newer than the saved one.
    cookie_unsaved: bool,
    status: Status,
    metrics: Arc<Metrics>,
    /// Users noted as changed, or whose push failed, still to push.
    dirty: HashSet<UserName>,
    /// Users known to have no entry under the base.
    absent: HashSet<UserName>,
    /// Logged once: the directory has no ppolicy overlay.
    no_ppolicy: bool,
    skew_exceeded: bool,
    /// Directory-side skips already logged, so a bad value is logged once.
    logged_skips: HashSet<String>,
    /// The directory's time (entryCSN) of each lock this daemon wrote, so a
    /// stream message older than that write, still in flight when it was
    /// made, is not taken for the lock's deletion.
    own_locks: HashMap<UserName, Timestamp>,
}

impl Daemon {
    pub fn new(settings: Settings, bind: BindWith, metrics: Arc<Metrics>) -> Result<Self, String> {
        // Never waits for a user's lock (a login may hold it while the
        // password is checked): a merge made while it is held is recorded
        // beside the state instead, and folded later.
        let store = StateStore::open_or_create(&settings.state_dir)
            .map_err(|e| format!("the state directory cannot be used: {e}"))?
            .with_lock_wait(Duration::ZERO);
        store
            .enable_change_feed()
            .map_err(|e| format!("the change feed cannot be set up: {e}"))?;
        files::ensure_dir(&settings.sync_dir)?;
        let cookie = files::read(&settings.sync_dir, files::COOKIE)
            .map_err(|e| format!("the saved cookie cannot be read: {e}"))?;
        let seen_locks = match files::read(&settings.sync_dir, files::LOCKS)
            .map_err(|e| format!("{}: {e}", files::LOCKS))?
        {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{} does not decode: {e}", files::LOCKS))?,
            None => SeenLocks::default(),
        };
        let status = Status {
            pid: std::process::id(),
            host: settings.host.clone(),
            ..Status::default()
        };
        Ok(Daemon {
            settings: Arc::new(settings),
            bind,
            store,
            view: View::default(),
            seen_locks,
            seen_locks_unsaved: false,
            cookie,
            cookie_unsaved: false,
            status,
            metrics,
            dirty: HashSet::new(),
            absent: HashSet::new(),
            no_ppolicy: false,
            skew_exceeded: false,
            logged_skips: HashSet::new(),
            own_locks: HashMap::new(),
        })
    }

    /// Runs until `shutdown` turns true: sessions with the servers in turn,
    /// with backoff and jitter between rounds.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let (changes_tx, mut changes) = mpsc::channel(1);
        crate::watch::spawn(self.store.changed_dir(), changes_tx);
        let tls = match conn::tls_config(self.settings.tls_ca_file.as_deref()) {
            Ok(tls) => tls,
            Err(e) => {
                log::error(&e.to_string());
                return;
            }
        };
        let mut failures_in_a_row = 0u32;
        loop {
            let uris = self.settings.uris.clone();
            for uri in &uris {
                if *shutdown.borrow() {
                    return;
                }
                self.status.server = Some(uri.clone());
                let attempt =
                    contained(self.attempt(uri, tls.clone(), &mut shutdown, &mut changes));
                match attempt.await {
                    Ok(Attempt::Session(Ended::Shutdown)) => {
                        self.write_status();
                        return;
                    }
                    Ok(Attempt::Session(Ended::Lost(why))) => {
                        failures_in_a_row = 0;
                        log::warning(&format!("the session with {uri} ended: {why}"));
                        self.status.last_error = Some(why);
                    }
                    Ok(Attempt::Refused(e)) => {
                        log::warning(&format!("{uri}: {e}"));
                        self.status.last_error = Some(e.to_string());
                        if matches!(e, ConnError::Tls(_)) {
                            log::error("TLS is not set up correctly: fix tls_ca_file");
                        }
                    }
                    // What was being pushed is pushed again after the next
                    // refresh, whose full comparison sees every user.
                    Err(why) => {
                        let why = format!("{uri} sent an answer that does not parse ({why})");
                        log::error(&format!("{why}: the session ends, a new one starts"));
                        self.status.last_error = Some(why);
                    }
                }
                self.set_connected(false);
                self.note_pending();
                self.write_status();
            }
            failures_in_a_row = failures_in_a_row.saturating_add(1);
            let pause = backoff(failures_in_a_row);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Connects to `uri`, binds, and runs a session until it ends.
    async fn attempt(
        &mut self,
        uri: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
        shutdown: &mut watch::Receiver<bool>,
        changes: &mut mpsc::Receiver<()>,
    ) -> Attempt {
        match conn::connect(&self.settings, uri, tls, &self.bind).await {
            Ok(ldap) => {
                log::notice(&format!("connected to {uri}"));
                Attempt::Session(self.session(ldap, uri, shutdown, changes).await)
            }
            Err(e) => Attempt::Refused(e),
        }
    }

    fn set_connected(&mut self, up: bool) {
        self.status.connected = up;
        self.metrics
            .connected
            .store(u64::from(up), Ordering::Relaxed);
    }

    async fn session(
        &mut self,
        ldap: Ldap,
        uri: &str,
        shutdown: &mut watch::Receiver<bool>,
        changes: &mut mpsc::Receiver<()>,
    ) -> Ended {
        let (tx, mut inbound) = mpsc::channel(1024);
        let reader = AbortOnDrop(tokio::spawn(read_stream(
            ldap.clone(),
            self.settings.clone(),
            self.cookie.as_deref().map(encoding::cookie_to_send),
            tx,
        )));
        self.set_connected(true);
        self.status.server = Some(uri.to_owned());
        self.status.last_error = None;
        self.status.refreshed = false;
        self.write_status();
        let mut ldap = ldap;
        let mut scan = tokio::time::interval(self.settings.full_scan_every);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut scan_queue: Vec<UserName> = Vec::new();
        let ended = 'session: loop {
            // A full comparison runs in batches, between looks at the stream.
            let batch_ready = self.status.refreshed && !scan_queue.is_empty();
            tokio::select! {
                biased;
                _ = shutdown.changed() => break Ended::Shutdown,
                message = inbound.recv() => match message {
                    None => break Ended::Lost("the sync stream closed".into()),
                    Some(message) => {
                        if let Some(end) = self.inbound(message, &mut scan_queue) {
                            break end;
                        }
                        // Whatever the stream had ready is taken in before
                        // pushing, so a push sees the latest picture.
                        while let Ok(more) = inbound.try_recv() {
                            if let Some(end) = self.inbound(more, &mut scan_queue) {
                                break 'session end;
                            }
                        }
                        self.save_sync_files();
                        if self.status.refreshed {
                            if let Err(why) = self.push_dirty(&mut ldap).await {
                                break Ended::Lost(why);
                            }
                        }
                    }
                },
                Some(()) = changes.recv() => {
                    self.take_changed();
                    if self.status.refreshed {
                        if let Err(why) = self.push_dirty(&mut ldap).await {
                            break Ended::Lost(why);
                        }
                    }
                }
                _ = scan.tick() => {
                    if self.status.refreshed {
                        scan_queue = self.all_users();
                    }
                }
                _ = tick.tick() => {
                    self.take_changed();
                    if self.status.refreshed {
                        if let Err(why) = self.push_dirty(&mut ldap).await {
                            break Ended::Lost(why);
                        }
                    }
                    self.note_pending();
                    self.write_status();
                }
                _ = std::future::ready(()), if batch_ready => {
                    let split = scan_queue.len().saturating_sub(SCAN_BATCH);
                    for user in scan_queue.split_off(split) {
                        self.dirty.insert(user);
                    }
                    if let Err(why) = self.push_dirty(&mut ldap).await {
                        break Ended::Lost(why);
                    }
                    if scan_queue.is_empty() {
                        self.note_pending();
                    }
                }
            }
        };
        self.save_sync_files();
        drop(reader);
        let _ = ldap.unbind().await;
        ended
    }

    fn all_users(&self) -> Vec<UserName> {
        match self.store.users() {
            Ok(users) => users,
            Err(e) => {
                log::error(&format!("the state directory cannot be listed: {e}"));
                Vec::new()
            }
        }
    }

    fn take_changed(&mut self) {
        match self.store.take_changed() {
            Ok(users) => self.dirty.extend(users),
            Err(e) => log::error(&format!("the change feed cannot be read: {e}")),
        }
    }

    /// Takes one message of the stream in; `Some` ends the session.
    fn inbound(&mut self, message: Inbound, scan_queue: &mut Vec<UserName>) -> Option<Ended> {
        match message {
            Inbound::Entry(entry, state) => {
                let cookie = state.as_ref().and_then(|s| s.cookie.clone());
                match state.as_ref().map(|s| &s.state) {
                    Some(EntryState::Delete) => {
                        if let Some(user) =
                            state.as_ref().and_then(|s| self.view.delete(&s.entry_uuid))
                        {
                            self.absent.remove(&user);
                        }
                    }
                    _ => self.take_entry(*entry, state.map(|s| s.entry_uuid)),
                }
                if let Some(cookie) = cookie {
                    self.save_cookie(cookie);
                }
            }
            Inbound::Info(info) => {
                let (cookie, done) = match info {
                    SyncInfo::NewCookie(c) => (Some(c), false),
                    SyncInfo::RefreshDelete {
                        cookie,
                        refresh_done,
                    }
                    | SyncInfo::RefreshPresent {
                        cookie,
                        refresh_done,
                    } => (cookie, refresh_done),
                    SyncInfo::SyncIdSet {
                        cookie,
                        sync_uuids,
                        refresh_deletes,
                    } => {
                        if refresh_deletes {
                            for uuid in sync_uuids {
                                self.view.delete(&uuid);
                            }
                        }
                        (cookie, false)
                    }
                };
                if let Some(cookie) = cookie {
                    self.save_cookie(cookie);
                }
                if done && !self.status.refreshed {
                    self.status.refreshed = true;
                    log::info(&format!(
                        "the directory is loaded ({} employee entries seen); changes now arrive as they are made",
                        self.view.len()
                    ));
                    *scan_queue = self.all_users();
                    self.write_status();
                }
            }
            Inbound::Done(code, text, cookie) => {
                if let Some(cookie) = cookie {
                    self.save_cookie(cookie);
                }
                // 53, "consumer state is newer than provider": this provider
                // is behind the cookie (it lost its state in a crash, or
                // has not caught up with the one that gave the cookie). A
                // full load is safe (a merge only adds what is newer) and
                // the pushes then give it back whatever it lacks.
                if code == SYNC_REFRESH_REQUIRED || code == 53 {
                    log::notice("the saved cookie no longer resumes: reloading from the directory");
                    self.cookie = None;
                    self.cookie_unsaved = false;
                    let _ = std::fs::remove_file(self.settings.sync_dir.join(files::COOKIE));
                }
                let hint = if code == 4 {
                    ": the directory's size limit for this host's identity is too small \
                     (give hosts size=unlimited with olcLimits, as packaging/ldap/acl.ldif does)"
                } else {
                    ""
                };
                return Some(Ended::Lost(format!(
                    "the sync search ended (rc={code}: {text}){hint}"
                )));
            }
            Inbound::Failed(why) => return Some(Ended::Lost(why)),
        }
        None
    }

    /// Keeps the stream's latest cookie; [`Self::save_sync_files`] writes
    /// it once the messages it covers are taken in.
    fn save_cookie(&mut self, cookie: Vec<u8>) {
        if self.cookie.as_ref() != Some(&cookie) {
            self.cookie = Some(cookie);
            self.cookie_unsaved = true;
        }
    }

    /// Writes what changed of the locks seen and the cookie, in that order,
    /// once for a whole batch of messages rather than twice a message (each
    /// write is two fsyncs). The cookie goes last and only when the locks
    /// are saved: every message it covers has been merged into the store
    /// (durably) by then, and a crash before it replays those messages,
    /// which merge again to the same state.
    fn save_sync_files(&mut self) {
        if self.seen_locks_unsaved {
            let bytes = serde_json::to_vec(&self.seen_locks).unwrap_or_default();
            match files::replace(&self.settings.sync_dir, files::LOCKS, &bytes, 0o600) {
                Ok(()) => self.seen_locks_unsaved = false,
                Err(e) => {
                    log::error(&format!("{}: {e}", files::LOCKS));
                    return;
                }
            }
        }
        if self.cookie_unsaved {
            if let Some(cookie) = &self.cookie {
                match files::replace(&self.settings.sync_dir, files::COOKIE, cookie, 0o600) {
                    Ok(()) => self.cookie_unsaved = false,
                    Err(e) => log::error(&format!("the sync cookie cannot be saved: {e}")),
                }
            }
        }
    }

    /// Counts what is still to push, for the status and the metrics.
    fn note_pending(&mut self) {
        let now = Timestamp::now();
        let mut users = 0;
        let mut records = 0;
        let mut oldest: Option<Timestamp> = None;
        for user in self.all_users() {
            let empty = UserEntry::default();
            let entry = self.view.entry(&user).cloned();
            if entry.is_none() && (self.absent.contains(&user) || self.status.refreshed) {
                // Not an employee of the directory: nothing to push.
                if self.absent.contains(&user) {
                    continue;
                }
            }
            let Some(push) = self.plan(&user, entry.as_ref().unwrap_or(&empty), now) else {
                continue;
            };
            if push.pending() > 0 {
                users += 1;
                records += push.pending();
                let first = push
                    .add_failures
                    .iter()
                    .chain(push.add_logins.iter())
                    .filter_map(|v| encoding::parse_time(v.split(' ').next().unwrap_or("")).ok())
                    .min();
                oldest = match (oldest, first) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        self.status.pending_users = users;
        self.status.pending_records = records;
        self.status.oldest_pending = oldest.map(Timestamp::to_rfc3339);
        self.status.oldest_pending_age_s = oldest.map(|t| t.until(now).as_secs());
        self.metrics
            .pending_records
            .store(records as u64, Ordering::Relaxed);
    }

    fn write_status(&mut self) {
        self.status.entries_known = self.view.len();
        self.status.updated_at = Timestamp::now().to_rfc3339();
        let bytes = serde_json::to_vec_pretty(&self.status).unwrap_or_default();
        if let Err(e) = files::replace(&self.settings.sync_dir, files::STATUS, &bytes, 0o644) {
            log::error(&format!("the status file cannot be written: {e}"));
        }
    }
}

fn sync_attributes(settings: &Settings) -> Vec<String> {
    let mut attrs: Vec<String> = SYNC_ATTRIBUTES.iter().map(|s| (*s).to_owned()).collect();
    attrs.push(settings.user_attribute.clone());
    attrs
}

/// Exponential backoff from 1 s to 60 s, with up to a quarter of jitter so
/// that a fleet does not reconnect in step after a server restart.
pub fn backoff(failures_in_a_row: u32) -> Duration {
    let base = Duration::from_secs(1u64 << failures_in_a_row.min(6).saturating_sub(1))
        .min(Duration::from_secs(60));
    let nanos = Instant::now().elapsed().subsec_nanos()
        ^ std::process::id().wrapping_mul(2_654_435_761)
        ^ Timestamp::now().as_micros() as u32;
    let jitter = base.mul_f64(f64::from(nanos % 1000) / 4000.0);
    base + jitter
}

/// Reads the sync stream and hands its messages over. The control parsers
/// of ldap3 panic on malformed input: a panic is contained here and ends
/// the session, never the daemon.
async fn read_stream(
    mut ldap: Ldap,
    settings: Arc<Settings>,
    cookie: Option<Vec<u8>>,
    tx: mpsc::Sender<Inbound>,
) {
    let request = SyncRequest {
        mode: RefreshMode::RefreshAndPersist,
        cookie,
        reload_hint: false,
    };
    let attrs = sync_attributes(&settings);
    let filter = format!(
        "(|({}=*)(objectClass={RECORD_CLASS}))",
        settings.user_attribute
    );
    let stream = ldap
        .with_controls(request)
        .streaming_search(&settings.base_dn, Scope::Subtree, &filter, attrs)
        .await;
    let mut stream = match stream {
        Ok(s) => s,
        Err(e) => {
            let _ = tx
                .send(Inbound::Failed(format!(
                    "the sync search cannot start: {e}"
                )))
                .await;
            return;
        }
    };
    loop {
        let next = match stream.next().await {
            Ok(next) => next,
            Err(e) => {
                let _ = tx
                    .send(Inbound::Failed(format!("the sync stream failed: {e}")))
                    .await;
                return;
            }
        };
        let Some(entry) = next else { break };
        let message = std::panic::catch_unwind(AssertUnwindSafe(|| parse_message(entry)));
        let message = match message {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(_) => Inbound::Failed("a malformed sync message arrived".into()),
        };
        let failed = matches!(message, Inbound::Failed(_));
        if tx.send(message).await.is_err() || failed {
            return;
        }
    }
    let result = stream.finish().await;
    let cookie = std::panic::catch_unwind(AssertUnwindSafe(|| {
        result
            .ctrls
            .iter()
            .find(|c| matches!(c.0, Some(ControlType::SyncDone)))
            .and_then(|c| c.1.parse::<SyncDone>().cookie)
    }))
    .unwrap_or(None);
    let _ = tx.send(Inbound::Done(result.rc, result.text, cookie)).await;
}

fn parse_message(entry: ResultEntry) -> Option<Inbound> {
    if entry.is_intermediate() {
        return Some(Inbound::Info(ldap3::controls::parse_syncinfo(entry)));
    }
    if entry.is_ref() {
        return None;
    }
    let state = entry
        .1
        .iter()
        .find(|Control(kind, _)| matches!(kind, Some(ControlType::SyncState)))
        .map(|Control(_, raw)| raw.parse::<SyncState>());
    let parsed = SearchEntry::construct(entry);
    Some(Inbound::Entry(Box::new(parsed), state))
}
