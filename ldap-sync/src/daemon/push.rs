//! What this host recorded and the directory lacks, planned against the
//! view and written: one user at a time, each operation bounded by
//! `[directory] timeout`, planned again from a fresh read when the
//! provider refuses a write as stale.

use super::*;

impl Daemon {
    /// Pushes every dirty user; a user whose push fails stays dirty.
    pub(super) async fn push_dirty(&mut self, ldap: &mut Ldap) -> Result<(), String> {
        if self.skew_exceeded {
            return Ok(());
        }
        let users: Vec<UserName> = self.dirty.drain().collect();
        let mut failed = Vec::new();
        let mut lost = None;
        for user in users {
            if lost.is_some() {
                failed.push(user);
                continue;
            }
            match self.push_user(ldap, &user).await {
                Ok(()) => {}
                Err(PushError::Connection(why)) => {
                    lost = Some(why);
                    failed.push(user);
                }
                Err(PushError::Refused(why) | PushError::Stale(why)) => {
                    log::error(&format!(
                        "{user}: the directory refused this host's records: {why}"
                    ));
                    failed.push(user);
                }
            }
        }
        self.dirty.extend(failed);
        self.save_sync_files();
        match lost {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    pub(super) fn plan(&self, user: &UserName, entry: &UserEntry, now: Timestamp) -> Option<Push> {
        let local = match self.store.load_counting(user, Pending::Settled, now) {
            Ok(Loaded::Present(state)) => state,
            _ => return None,
        };
        let records = self.view.records(user);
        let me = self.settings.host.to_ascii_lowercase();
        let mine = records.and_then(|r| r.get(&me));
        let others_login = records.and_then(|r| {
            r.iter()
                .filter(|(host, _)| **host != me)
                .flat_map(|(_, rec)| rec.logins.iter())
                .filter_map(|v| encoding::parse_time_value(v).ok())
                .max()
        });
        let elsewhere: BTreeSet<String> = records
            .into_iter()
            .flat_map(|r| r.iter())
            .filter(|(host, _)| **host != me)
            .flat_map(|(_, rec)| rec.passwords.iter().cloned())
            .collect();
        let policy = self.settings.policy(user);
        Some(model::plan_push(
            &self.settings.host,
            &local,
            entry,
            mine,
            others_login,
            &elsewhere,
            &policy,
            now,
        ))
    }

    pub(super) async fn push_user(
        &mut self,
        ldap: &mut Ldap,
        user: &UserName,
    ) -> Result<(), PushError> {
        if self.absent.contains(user) {
            return Ok(());
        }
        if self.view.entry(user).is_none() && !self.fetch_user(ldap, user).await? {
            self.absent.insert(user.clone());
            return Ok(());
        }
        match self.push_planned(ldap, user).await {
            // The provider holds something other than the view says (a
            // value already there, one already gone, a record it does not
            // have yet): read it afresh and plan again, once.
            Err(PushError::Stale(_)) => {
                if !self.fetch_user(ldap, user).await? {
                    self.absent.insert(user.clone());
                    return Ok(());
                }
                match self.push_planned(ldap, user).await {
                    Err(PushError::Stale(why)) => Err(PushError::Refused(format!(
                        "{why}, again after reading the provider's copy afresh"
                    ))),
                    other => other,
                }
            }
            other => other,
        }
    }

    /// Plans `user`'s push against the view and applies it.
    pub(super) async fn push_planned(
        &mut self,
        ldap: &mut Ldap,
        user: &UserName,
    ) -> Result<(), PushError> {
        let now = Timestamp::now();
        let limit = self.settings.timeout;
        let Some(entry) = self.view.entry(user).cloned() else {
            return Ok(());
        };
        let Some(mut push) = self.plan(user, &entry, now) else {
            return Ok(());
        };
        if push.is_empty() {
            return Ok(());
        }
        if self.no_ppolicy {
            push.lock = None;
        }
        let record_dn = format!(
            "deadboltHost={},{}",
            ldap3::dn_escape(&self.settings.host),
            entry.dn
        );
        if !push.record_is_unchanged() {
            let result = if push.create_record {
                let mut attrs: Vec<(String, HashSet<String>)> = vec![
                    (
                        "objectClass".into(),
                        HashSet::from([RECORD_CLASS.to_owned()]),
                    ),
                    (
                        "deadboltHost".into(),
                        HashSet::from([self.settings.host.clone()]),
                    ),
                ];
                for (attribute, values) in [
                    ("deadboltFailure", &push.add_failures),
                    ("deadboltLogin", &push.add_logins),
                    ("deadboltPassword", &push.add_passwords),
                ] {
                    if !values.is_empty() {
                        attrs.push((attribute.into(), values.iter().cloned().collect()));
                    }
                }
                ldap.with_timeout(limit).add(&record_dn, attrs).await
            } else {
                ldap.with_timeout(limit)
                    .modify(&record_dn, record_mods(&push))
                    .await
            };
            check(result, limit)?;
            let me = self.settings.host.to_ascii_lowercase();
            let before = self
                .view
                .records(user)
                .and_then(|r| r.get(&me))
                .cloned()
                .unwrap_or_else(|| HostRecord {
                    host: self.settings.host.clone(),
                    ..HostRecord::default()
                });
            self.view.set_record(user, model::applied(&before, &push));
            self.metrics
                .failures_pushed
                .fetch_add(push.add_failures.len() as u64, Ordering::Relaxed);
        }
        if let Some(lock) = &push.lock {
            let mods = vec![Mod::Add(
                "pwdAccountLockedTime".to_owned(),
                HashSet::from([lock.clone()]),
            )];
            match ldap.with_timeout(limit).modify(&entry.dn, mods).await {
                Ok(r) if r.rc == 0 => {
                    if let Some(at) = entry_csn_time(ldap, &entry.dn, limit).await {
                        self.own_locks.insert(user.clone(), at);
                    }
                    log::notice(&format!(
                        "{user}: locked; pwdAccountLockedTime set in the directory"
                    ));
                    self.remember_lock(user, Some(lock.clone()));
                    self.metrics.locks.fetch_add(1, Ordering::Relaxed);
                }
                // Locked meanwhile, by another host through this provider
                // (the attribute is single-valued): read it and plan again.
                Ok(r) if r.rc == 19 => {
                    return Err(PushError::Stale(format!("rc=19 {}", r.text)));
                }
                // No ppolicy schema: say so once.
                Ok(r) if r.rc == 17 || r.rc == 21 || r.rc == 65 => {
                    if !self.no_ppolicy {
                        log::warning(
                            "the directory has no ppolicy (pwdAccountLockedTime is not known): \
                             locks are kept by deadbolt alone, LDAP binds are not refused",
                        );
                    }
                    self.no_ppolicy = true;
                }
                other => check(other, limit)?,
            }
            if let Some(e) = self.view.entry_mut(user) {
                if !self.no_ppolicy {
                    e.locked_time = push.lock.clone();
                }
            }
        }
        Ok(())
    }

    /// Reads `user`'s entry and its host records into the view: what a
    /// resumed session did not send because it did not change.
    pub(super) async fn fetch_user(
        &mut self,
        ldap: &mut Ldap,
        user: &UserName,
    ) -> Result<bool, PushError> {
        let filter = format!(
            "({}={})",
            self.settings.user_attribute,
            ldap3::ldap_escape(user.as_str())
        );
        let attrs = sync_attributes(&self.settings);
        let limit = self.settings.timeout;
        let found = ldap
            .with_timeout(limit)
            .search(
                &self.settings.base_dn,
                Scope::Subtree,
                &filter,
                attrs.clone(),
            )
            .await
            .map_err(|e| PushError::Connection(op_error(&e, limit)))?;
        let (entries, _) = found
            .success()
            .map_err(|e| PushError::Refused(e.to_string()))?;
        let Some(entry) = entries.into_iter().next() else {
            return Ok(false);
        };
        let entry = SearchEntry::construct(entry);
        let dn = entry.dn.clone();
        self.take_entry(entry, None);
        self.view.forget_records(user);
        let children = ldap
            .with_timeout(limit)
            .search(
                &dn,
                Scope::OneLevel,
                &format!("(objectClass={RECORD_CLASS})"),
                attrs,
            )
            .await
            .map_err(|e| PushError::Connection(op_error(&e, limit)))?;
        if let Ok((records, _)) = children.success() {
            for record in records {
                self.take_entry(SearchEntry::construct(record), None);
            }
        }
        Ok(self.view.entry(user).is_some())
    }
}

pub(super) enum PushError {
    Connection(String),
    Refused(String),
    /// The provider's copy differs from the view: a value to add already
    /// there (rc=20), one to delete already gone (rc=16), the record to
    /// modify absent (rc=32) or the one to create present (rc=68).
    Stale(String),
}

fn check(
    result: ldap3::result::Result<ldap3::LdapResult>,
    limit: Duration,
) -> Result<(), PushError> {
    match result {
        Err(e) => Err(PushError::Connection(op_error(&e, limit))),
        Ok(r) if r.rc == 0 => Ok(()),
        Ok(r) if matches!(r.rc, 16 | 20 | 32 | 68) => {
            Err(PushError::Stale(format!("rc={} {}", r.rc, r.text)))
        }
        Ok(r) => Err(PushError::Refused(format!("rc={} {}", r.rc, r.text))),
    }
}

/// An operation's failure in words: a server that stops answering within
/// a session is given up on after `[directory] timeout`, as one that never
/// answers the bind is, and the session ends.
fn op_error(e: &ldap3::result::LdapError, limit: Duration) -> String {
    match e {
        ldap3::result::LdapError::Timeout { .. } => format!(
            "no answer to an operation within {} ms (timeout)",
            limit.as_millis()
        ),
        other => other.to_string(),
    }
}

/// The directory's time of the latest change of `dn`, from its entryCSN.
async fn entry_csn_time(ldap: &mut Ldap, dn: &str, limit: Duration) -> Option<Timestamp> {
    let (entries, _) = ldap
        .with_timeout(limit)
        .search(dn, Scope::Base, "(objectClass=*)", vec!["entryCSN"])
        .await
        .ok()?
        .success()
        .ok()?;
    let entry = entries.into_iter().next().map(SearchEntry::construct)?;
    let csn = entry.attrs.get("entryCSN")?.first()?;
    encoding::parse_csn_time(csn).ok()
}

fn record_mods(push: &Push) -> Vec<Mod<String>> {
    let mut mods = Vec::new();
    let set = |v: &Vec<String>| v.iter().cloned().collect::<HashSet<_>>();
    if !push.add_failures.is_empty() {
        mods.push(Mod::Add("deadboltFailure".into(), set(&push.add_failures)));
    }
    if !push.delete_failures.is_empty() {
        mods.push(Mod::Delete(
            "deadboltFailure".into(),
            set(&push.delete_failures),
        ));
    }
    if !push.add_logins.is_empty() {
        mods.push(Mod::Add("deadboltLogin".into(), set(&push.add_logins)));
    }
    if !push.delete_logins.is_empty() {
        mods.push(Mod::Delete(
            "deadboltLogin".into(),
            set(&push.delete_logins),
        ));
    }
    if !push.add_passwords.is_empty() {
        mods.push(Mod::Add(
            "deadboltPassword".into(),
            set(&push.add_passwords),
        ));
    }
    if !push.delete_passwords.is_empty() {
        mods.push(Mod::Delete(
            "deadboltPassword".into(),
            set(&push.delete_passwords),
        ));
    }
    mods
}
