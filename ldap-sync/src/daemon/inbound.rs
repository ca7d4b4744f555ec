//! What the stream brings in: each entry into the view, and what it says
//! of an employee merged into local state through the core's merge (locks
//! seen and deleted, resets, departures).

use super::*;

impl Daemon {
    pub(super) fn take_entry(&mut self, entry: SearchEntry, uuid: Option<Vec<u8>>) {
        let raw = RawEntry {
            dn: entry.dn,
            attrs: entry
                .attrs
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
        };
        let changed_at = raw
            .first("entryCSN")
            .and_then(|csn| encoding::parse_csn_time(csn).ok());
        let ours = raw
            .first("deadboltHost")
            .is_some_and(|h| h.eq_ignore_ascii_case(&self.settings.host))
            && raw
                .values("objectClass")
                .iter()
                .any(|c| c.eq_ignore_ascii_case(RECORD_CLASS));
        match self
            .view
            .upsert(&raw, uuid, &self.settings.user_attribute, changed_at)
        {
            Seen::Ignored(why) => {
                if self.logged_skips.insert(format!("{}\0{why}", raw.dn)) {
                    log::warning(&format!("skipped {}: {why}", raw.dn));
                }
            }
            Seen::User(user) => {
                self.absent.remove(&user);
                let now = Timestamp::now();
                if let Some(at) = changed_at {
                    let lag = at.until(now).as_millis();
                    self.metrics
                        .sync_lag_ms
                        .store(u64::try_from(lag).unwrap_or(u64::MAX), Ordering::Relaxed);
                    self.status.last_change_applied = Some(at.to_rfc3339());
                    if ours {
                        self.note_skew(now, at);
                    }
                }
                self.merge_from_directory(&user, now);
            }
        }
    }

    /// The skew of this host's clock, as the directory's stamp on the
    /// latest version of this host's own record shows it (the stamp was
    /// made within a round trip of our write, which is when it arrives).
    pub(super) fn note_skew(&mut self, now: Timestamp, stamped: Timestamp) {
        let skew_ms = (now.as_micros() - stamped.as_micros()) / 1000;
        self.status.clock_skew_ms = Some(skew_ms);
        let limit = i64::try_from(self.settings.max_clock_skew.as_millis()).unwrap_or(i64::MAX);
        let exceeded = skew_ms.abs() > limit;
        if exceeded != self.skew_exceeded {
            if exceeded {
                log::error(&format!(
                    "this host's clock is {} ms off the directory's, more than max_clock_skew: \
                     its records are no longer pushed until the clock is fixed",
                    skew_ms
                ));
            } else {
                log::notice("the clock skew is back within max_clock_skew: pushing again");
            }
        }
        self.skew_exceeded = exceeded;
        self.status.skew_exceeded = exceeded;
    }

    /// Merges what the directory says of `user` into local state, through
    /// the core's merge; only what local state lacks is written.
    pub(super) fn merge_from_directory(&mut self, user: &UserName, now: Timestamp) {
        let Some(entry) = self.view.entry(user).cloned() else {
            return;
        };
        let empty = Default::default();
        let records = self.view.records(user).unwrap_or(&empty);
        let (mut delta, skipped) =
            model::directory_state(&entry, records, self.settings.max_clock_skew);
        for skip in skipped {
            let line = format!(
                "{}: a value of {}{} was skipped: {}",
                entry.dn,
                skip.attribute,
                skip.host
                    .map(|h| format!(" (host {h})"))
                    .unwrap_or_default(),
                skip.why
            );
            if self.logged_skips.insert(line.clone()) {
                log::warning(&line);
            }
        }
        let local = match self.store.load_counting(user, Pending::Settled, now) {
            Ok(Loaded::Present(state)) => state,
            Ok(Loaded::Absent) => UserState::default(),
            Ok(Loaded::Corrupt(why)) => {
                log::error(&format!(
                    "{user}: local state is unusable ({why}); not merged"
                ));
                return;
            }
            Err(e) => {
                log::error(&format!("{user}: local state cannot be read: {e}"));
                return;
            }
        };
        let changed_at = entry.changed_at.unwrap_or(now);
        let mut known = local.clone();
        known.merge(&delta);
        let seen = self.seen_locks.users.get(user.as_str()).cloned();
        match (&entry.locked_time, seen) {
            (Some(value), seen) => {
                if seen.as_deref() != Some(value.as_str()) {
                    if let LockKind::Foreign(at) = model::classify_lock(value, &known, changed_at) {
                        log::notice(&format!(
                            "{user}: locked in the directory (pwdAccountLockedTime)"
                        ));
                        delta.merge(&model::foreign_lock(at, changed_at));
                        self.metrics.locks.fetch_add(1, Ordering::Relaxed);
                    }
                    self.remember_lock(user, Some(value.clone()));
                }
            }
            (None, Some(_))
                if self
                    .own_locks
                    .get(user)
                    .is_some_and(|&written| entry.changed_at.is_none_or(|at| at <= written)) => {}
            (None, Some(_)) => {
                self.own_locks.remove(user);
                log::notice(&format!(
                    "{user}: pwdAccountLockedTime was deleted in the directory: reactivated"
                ));
                delta.merge(&model::lock_deleted(changed_at));
                self.remember_lock(user, None);
            }
            (None, None) => {}
        }
        if let Some(reset) = model::reset_seen(&entry, &known) {
            log::notice(&format!(
                "{user}: the password was reset in the directory (pwdReset): it must change \
                 at the next login"
            ));
            delta.last_admin_reset = Some(reset);
        }
        if let Some(answered) = model::reset_answered(&entry, &known) {
            delta.last_password_change = delta.last_password_change.max(Some(answered));
        }
        if let Some(removed) = model::departure_removed(&entry, &known) {
            delta.expires_on = Some(removed);
        }
        let mut merged = local.clone();
        merged.merge(&delta);
        if merged == local {
            return;
        }
        let new_failures = merged.failures.len().saturating_sub(local.failures.len());
        self.metrics
            .failures_received
            .fetch_add(new_failures as u64, Ordering::Relaxed);
        if merged.last_reactivation > local.last_reactivation {
            self.metrics.reactivations.fetch_add(1, Ordering::Relaxed);
        }
        let policy = self.settings.policy(user);
        let was = policy.evaluate(&local, now);
        let is = policy.evaluate(&merged, now);
        if is.failure_locked && !was.failure_locked {
            log::notice(&format!("{user}: locked by failures seen across the fleet"));
            self.metrics.locks.fetch_add(1, Ordering::Relaxed);
        }
        if was.locked && !is.locked {
            log::notice(&format!("{user}: unlocked by a change in the directory"));
        }
        // One durable write of the state file, with the user's records
        // folded in, when the user's lock is free; a durable record beside
        // it when a login holds the lock.
        let merged_in = self.store.update(user, now, |state| {
            let before = state.clone();
            state.merge(&delta);
            *state != before
        });
        if let Err(e) = merged_in {
            log::error(&format!(
                "{user}: the directory's state cannot be merged: {e}"
            ));
        }
    }

    /// Notes the lock last seen on `user`'s entry; written by
    /// [`Self::save_sync_files`].
    pub(super) fn remember_lock(&mut self, user: &UserName, value: Option<String>) {
        match value {
            Some(v) => self.seen_locks.users.insert(user.as_str().to_owned(), v),
            None => self.seen_locks.users.remove(user.as_str()),
        };
        self.seen_locks_unsaved = true;
    }
}
