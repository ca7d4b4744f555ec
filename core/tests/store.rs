//! The root-only state store (design principle 2): private files, no links
//! followed, corrupt states moved aside, no update lost to a race, and no
//! login held up for long by a stuck holder of a lock.

use deadbolt_core::state::{PasswordRecord, MAX_FAILURES_KEPT};
use deadbolt_core::store::{decode, Loaded, LOCK_WAIT, STATE_HEADER};
use deadbolt_core::username::MAX_USER_NAME_LEN;
use deadbolt_core::{Failure, StateStore, StoreError, Timestamp, UserName, UserState};
use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A fresh state directory, mode 0700.
fn private_dir() -> TempDir {
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o700)).unwrap();
    tmp
}

fn user(name: &str) -> UserName {
    UserName::parse(name).unwrap()
}

fn failure(secs: i64, pid: u32) -> Failure {
    Failure {
        time: Timestamp::from_secs(secs),
        host: "web1".into(),
        source: "198.51.100.4".into(),
        service: "sshd".into(),
        pid,
    }
}

/// Every entry of a directory, hidden ones included, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn present(loaded: Loaded) -> UserState {
    match loaded {
        Loaded::Present(state) => state,
        other => panic!("expected a stored state, got {other:?}"),
    }
}

fn assert_insecure<T: std::fmt::Debug>(result: Result<T, StoreError>, expected_path: &Path) {
    match result {
        Err(StoreError::Insecure { path, why }) => {
            assert_eq!(path, expected_path, "{why}");
        }
        other => panic!(
            "expected Insecure for {}, got {other:?}",
            expected_path.display()
        ),
    }
}

fn add_failure(f: Failure) -> impl FnOnce(&mut UserState) -> bool {
    move |state| state.failures.insert(f)
}

#[test]
fn round_trip() {
    let tmp = private_dir();
    let store = StateStore::open_existing(tmp.path()).unwrap();
    let alice = user("alice");
    let now = Timestamp::from_secs(1_000);
    let updated = store
        .update(&alice, now, |state| {
            state.failures.insert(failure(900, 1));
            state.failures.insert(failure(950, 2));
            state.last_password_change = Some(Timestamp::from_secs(10));
            state.last_disable = Some(Timestamp::from_secs(20));
            state.password_history.insert(PasswordRecord {
                changed_at: Timestamp::from_secs(10),
                phc: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            });
            true
        })
        .unwrap();
    assert!(updated.written);
    assert!(updated.quarantined.is_empty());
    assert_eq!(updated.state.failures.len(), 2);

    let loaded = present(store.load(&alice).unwrap());
    assert_eq!(loaded, updated.state);
    // A second handle on the same directory reads the same.
    let again = StateStore::open_existing(tmp.path()).unwrap();
    assert_eq!(present(again.load(&alice).unwrap()), updated.state);
    assert!(store.has_state(&alice));
    assert_eq!(store.users().unwrap(), vec![alice.clone()]);

    // A later update starts from what is stored.
    let next = store
        .update(&alice, now, add_failure(failure(990, 3)))
        .unwrap();
    assert_eq!(next.state.failures.len(), 3);
    assert_eq!(next.state.last_disable, Some(Timestamp::from_secs(20)));
    assert_eq!(present(store.load(&alice).unwrap()), next.state);

    // No temporary file is left behind.
    assert_eq!(listing(tmp.path()), vec!["alice.lock", "alice.state"]);
}

#[test]
fn load_of_an_unknown_user_is_absent_and_creates_nothing() {
    let tmp = private_dir();
    let store = StateStore::open_existing(tmp.path()).unwrap();
    fs::write(tmp.path().join("bob.state"), b"unrelated").unwrap();
    let before = listing(tmp.path());
    assert!(matches!(
        store.load(&user("alice")).unwrap(),
        Loaded::Absent
    ));
    assert!(!store.has_state(&user("alice")));
    assert_eq!(listing(tmp.path()), before);
}

#[test]
fn an_update_that_changes_nothing_writes_no_state() {
    let tmp = private_dir();
    let store = StateStore::open_existing(tmp.path()).unwrap();
    let mystery = user("mystery");
    let updated = store
        .update(&mystery, Timestamp::from_secs(1), |_| false)
        .unwrap();
    assert!(!updated.written);
    assert!(updated.state.is_empty());
    assert!(!store.has_state(&mystery));
    assert!(store.users().unwrap().is_empty());
    assert!(!listing(tmp.path()).iter().any(|n| n.ends_with(".state")));
}

#[test]
fn update_writes_a_private_file_with_the_header() {
    let tmp = private_dir();
    let store = StateStore::open_existing(tmp.path()).unwrap();
    let alice = user("alice");
    store
        .update(&alice, Timestamp::from_secs(5), add_failure(failure(5, 7)))
        .unwrap();
    let path = tmp.path().join("alice.state");
    let meta = fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(meta.mode() & 0o7777, 0o600);
    assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
    assert_eq!(mode(&tmp.path().join("alice.lock")), 0o600);

    let bytes = fs::read(&path).unwrap();
    assert!(bytes.starts_with(b"deadbolt-state 1\n"));
    assert_eq!(STATE_HEADER, "deadbolt-state 1\n");
    let body: serde_json::Value = serde_json::from_slice(&bytes[STATE_HEADER.len()..]).unwrap();
    assert_eq!(body["failures"].as_array().unwrap().len(), 1);
    assert_eq!(decode(&bytes).unwrap().failures.len(), 1);
    // The directory is as it was made.
    assert_eq!(mode(tmp.path()), 0o700);
}

#[test]
fn open_or_create_makes_a_private_directory() {
    let tmp = private_dir();
    let dir = tmp.path().join("deadbolt");
    let store = StateStore::open_or_create(&dir).unwrap();
    assert_eq!(store.dir(), dir);
    let meta = fs::symlink_metadata(&dir).unwrap();
    assert!(meta.is_dir());
    assert_eq!(meta.mode() & 0o7777, 0o700);
    // Opening it again is fine.
    StateStore::open_or_create(&dir).unwrap();
}

#[test]
fn open_existing_never_creates_the_directory() {
    let tmp = private_dir();
    let dir = tmp.path().join("absent");
    match StateStore::open_existing(&dir) {
        Err(StoreError::Missing { path }) => assert_eq!(path, dir),
        other => panic!("expected Missing, got {other:?}"),
    }
    assert!(listing(tmp.path()).is_empty());
}

#[test]
fn a_directory_open_to_others_is_refused() {
    for bits in [0o755, 0o750, 0o710, 0o701, 0o707, 0o770, 0o777, 0o1777] {
        let tmp = private_dir();
        let dir = tmp.path().join("state");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(bits)).unwrap();
        assert_insecure(StateStore::open_existing(&dir), &dir);
        assert_insecure(StateStore::open_or_create(&dir), &dir);
        // Refusing changes nothing.
        assert_eq!(mode(&dir), bits);
        assert!(listing(&dir).is_empty());
    }
}

#[test]
fn a_directory_owned_by_someone_else_is_refused() {
    let tmp = private_dir();
    let dir = tmp.path().join("state");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).expect("chown needs root");
    assert_insecure(StateStore::open_existing(&dir), &dir);
}

#[test]
fn a_symlinked_or_non_directory_state_dir_is_refused() {
    let tmp = private_dir();
    let real = tmp.path().join("real");
    fs::create_dir(&real).unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).unwrap();
    let link = tmp.path().join("link");
    symlink(&real, &link).unwrap();
    assert_insecure(StateStore::open_existing(&link), &link);
    assert_insecure(StateStore::open_or_create(&link), &link);

    let file = tmp.path().join("file");
    fs::write(&file, b"").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    assert_insecure(StateStore::open_existing(&file), &file);
    assert!(listing(&real).is_empty());
}

/// A file outside the store that an attacker would like root to overwrite.
struct Victim {
    path: PathBuf,
    content: &'static [u8],
    mode: u32,
}

impl Victim {
    fn new(dir: &Path) -> Self {
        let path = dir.join("victim");
        let content: &'static [u8] = b"root:$6$precious:19000:0:99999:7:::\n";
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        Victim {
            path,
            content,
            mode: 0o640,
        }
    }

    fn assert_untouched(&self) {
        assert_eq!(fs::read(&self.path).unwrap(), self.content);
        assert_eq!(mode(&self.path), self.mode);
    }
}

#[test]
fn a_symlink_planted_as_the_state_file_is_never_followed_and_moved_aside() {
    let outside = private_dir();
    let victim = Victim::new(outside.path());
    let tmp = private_dir();
    let store = StateStore::open_existing(tmp.path()).unwrap();
    let alice = user("alice");
    let link = tmp.path().join("alice.state");
    symlink(&victim.path, &link).unwrap();

    assert_corrupt(store.load(&alice), "symbolic link");
    let updated = store
        .update(&alice, Timestamp::from_secs(1), add_failure(failure(1, 1)))
        .unwrap();
    victim.assert_untouched();
    // The link itself was moved aside, still pointing where it did.
    let kept = &updated
        .quarantined
        .first()
        .expect("not moved aside")
        .kept_at;
    assert!(fs::symlink_metadata(kept).unwrap().file_type().is_symlink());
    assert_eq!(fs::read_link(kept).unwrap(), victim.path);
    assert!(!fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(present(store.load(&alice).unwrap()).failures.len(), 1);
}

fn assert_corrupt(result: Result<Loaded, StoreError>, why: &str) {
    match result {
        Ok(Loaded::Corrupt(text)) => assert!(text.contains(why), "{text}"),
        other => panic!("expected Corrupt ({why}), got {other:?}"),
    }
}

#[test]
fn a_dangling_symlink_planted_as_the_state_file_is_never_followed() {
    let outside = private_dir();
    let target = outside.path().join("created-by-root");
    let tmp = private_dir();
    let store = StateStore::open_existing(tmp.path()).unwrap();
    let alice = user("alice");
    let link = tmp.path().join("alice.state");
    symlink(&target, &link).unwrap();

    assert_corrupt(store.load(&alice), "symbolic link");
    store
        .update(&alice, Timestamp::from_secs(1), add_failure(failure(1, 1)))
        .unwrap();
    assert!(!target.exists());
    assert!(listing(outside.path()).is_empty());
}

#[test]
fn a_symlink_planted_as_the_lock_file_is_refused() {
    let outside = private_dir();
    let victim = Victim::new(outside.path());
    let tmp = private_dir();
    let store = StateStore::open_existing(tmp.path()).unwrap();
    let alice = user("alice");
    let link = tmp.path().join("alice.lock");
    symlink(&victim.path, &link).unwrap();

    assert_insecure(store.lock(&alice), &link);
    assert_insecure(
        store.update(&alice, Timestamp::from_secs(1), add_failure(failure(1, 1))),
        &link,
    );
    victim.assert_untouched();
    assert!(!store.has_state(&alice));

    // Dangling: the target is not created either.
    let target = outside.path().join("created-by-root");
    let bob = user("bob");
    symlink(&target, tmp.path().join("bob.lock")).unwrap();
    assert_insecure(
        store.update(&bob, Timestamp::from_secs(1), add_failure(failure(1, 1))),
        &tmp.path().join("bob.lock"),
    );
    assert!(!target.exists());
    assert!(!store.has_state(&bob));
}

#[test]
fn a_symlink_planted_as_the_temporary_file_is_not_followed() {
    let outside = private_dir();
    let victim = Victim::new(outside.path());
    let tmp = private_dir();
    let store = StateStore::open_existing(tmp.path()).unwrap();
    let alice = user("alice");
    let link = tmp.path().join(".tmp.alice");
    symlink(&victim.path, &link).unwrap();

    store
        .update(&alice, Timestamp::from_secs(1), add_failure(failure(1, 1)))
        .unwrap();
    victim.assert_untouched();
    assert!(!fs::symlink_metadata(tmp.path().join("alice.state"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(present(store.load(&alice).unwrap()).failures.len(), 1);
    assert_eq!(listing(tmp.path()), vec!["alice.lock", "alice.state"]);
}

#[test]
fn a_state_file_writable_by_others_or_owned_by_another_user_is_moved_aside_unread() {
    let tmp = private_dir();
    let store = StateStore::open_existing(tmp.path()).unwrap();
    let alice = user("alice");
    let path = tmp.path().join("alice.state");

    for (i, bits) in [0o620, 0o602, 0o666].into_iter().enumerate() {
        store
            .update(&alice, Timestamp::from_secs(1), add_failure(failure(1, 1)))
            .unwrap();
        let bytes = fs::read(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(bits)).unwrap();
        assert_corrupt(store.load(&alice), "writable by others");
        let now = Timestamp::from_secs(10 + i as i64);
        let updated = store
            .update(&alice, now, add_failure(failure(2, 2)))
            .unwrap();
        let kept = &updated
            .quarantined
            .first()
            .expect("not moved aside")
            .kept_at;
        assert_eq!(fs::read(kept).unwrap(), bytes, "kept as it was");
        // Nothing of the tampered file was trusted.
        assert_eq!(updated.state.failures.len(), 1);
        assert_eq!(mode(&path), 0o600);
    }

    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&path, Some(65534), None).expect("chown needs root");
    assert_corrupt(store.load(&alice), "owned by another user");
}

#[test]
fn a_directory_at_the_state_path_is_refused() {
    let tmp = private_dir();
    let store = StateStore::open_existing(tmp.path()).unwrap();
    let path = tmp.path().join("alice.state");
    fs::create_dir(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
    assert_corrupt(store.load(&user("alice")), "not a regular file");
}

/// A FIFO in place of a state file must not hang a login: opening one for
/// reading blocks until a writer comes, unless the store refuses it first.
#[test]
fn a_fifo_at_the_state_path_is_refused_without_blocking() {
    let tmp = private_dir();
    let store = StateStore::open_existing(tmp.path()).unwrap();
    let path = tmp.path().join("alice.state");
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();

    let (done, result) = std::sync::mpsc::channel();
    let reader = {
        let store = store.clone();
        std::thread::spawn(move || {
            let outcome = store.load(&user("alice"));
            done.send(format!("{outcome:?}")).unwrap();
        })
    };
    let outcome = match result.recv_timeout(std::time::Duration::from_secs(20)) {
        Ok(outcome) => outcome,
        Err(_) => {
            // Unblock the reader so the test ends, then fail.
            let _writer = fs::OpenOptions::new().write(true).open(&path);
            reader.join().unwrap();
            panic!("loading a FIFO blocked");
        }
    };
    reader.join().unwrap();
    assert!(outcome.starts_with("Ok(Corrupt"), "{outcome}");
}

/// Each corrupt content, and why it is corrupt.
fn corrupt_contents() -> Vec<(&'static str, Vec<u8>)> {
    let mut valid = STATE_HEADER.as_bytes().to_vec();
    let mut state = UserState::default();
    state.failures.insert(failure(1, 1));
    state.failures.insert(failure(2, 2));
    serde_json::to_writer(&mut valid, &state).unwrap();
    let truncated = valid[..valid.len() - 20].to_vec();

    // Valid JSON padded with whitespace past the size limit.
    let mut huge = STATE_HEADER.as_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    huge.resize(5 * 1024 * 1024, b' ');

    vec![
        (
            "garbage",
            b"\x7fELF\x02\x01\x01\0 not a state at all".to_vec(),
        ),
        ("empty", Vec::new()),
        ("wrong header", b"deadbolt-state 2\n{}\n".to_vec()),
        ("no header", b"{}\n".to_vec()),
        ("truncated JSON", truncated),
        (
            "known field of the wrong type",
            b"deadbolt-state 1\n{\"last_success\":\"yesterday\",\"locked\":true}\n".to_vec(),
        ),
        ("not UTF-8", b"deadbolt-state 1\n{\"\xff\":1}".to_vec()),
        ("5 MiB", huge),
    ]
}

#[test]
fn load_reports_a_corrupt_state_and_changes_nothing() {
    for (what, content) in corrupt_contents() {
        let tmp = private_dir();
        let store = StateStore::open_existing(tmp.path()).unwrap();
        let path = tmp.path().join("alice.state");
        fs::write(&path, &content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let before = listing(tmp.path());

        match store.load(&user("alice")).unwrap() {
            Loaded::Corrupt(why) => assert!(!why.is_empty(), "{what}"),
            other => panic!("{what}: expected Corrupt, got {other:?}"),
        }
        assert_eq!(listing(tmp.path()), before, "{what}");
        assert!(
            fs::read(&path).unwrap() == content,
            "{what}: content changed"
        );
    }
}

#[test]
fn update_moves_a_corrupt_state_aside_and_writes_the_new_one() {
    for (what, content) in corrupt_contents() {
        let tmp = private_dir();
        let store = StateStore::open_existing(tmp.path()).unwrap();
        let alice = user("alice");
        let path = tmp.path().join("alice.state");
        fs::write(&path, &content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();

        let now = Timestamp(1_795_820_709_000_123);
        let updated = store
            .update(&alice, now, add_failure(failure(100, 1)))
            .unwrap();
        let kept_at = tmp.path().join(".corrupt.alice.1795820709000123");
        let quarantined = updated
            .quarantined
            .first()
            .cloned()
            .unwrap_or_else(|| panic!("{what}: not quarantined"));
        assert_eq!(quarantined.kept_at, kept_at, "{what}");
        assert!(!quarantined.why.is_empty());
        assert!(
            fs::read(&kept_at).unwrap() == content,
            "{what}: kept copy differs"
        );

        assert!(updated.written);
        assert_eq!(updated.state.failures.len(), 1, "{what}");
        let loaded = present(store.load(&alice).unwrap());
        assert_eq!(loaded, updated.state, "{what}");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            listing(tmp.path()),
            vec![
                ".corrupt.alice.1795820709000123",
                "alice.lock",
                "alice.state"
            ],
            "{what}"
        );
        assert_eq!(store.users().unwrap(), vec![alice.clone()]);
    }
}

/// A state written by a newer version, with fields this one does not know,
/// is read, not quarantined, and an update writes those fields back as they
/// were.
#[test]
fn unknown_fields_are_kept_across_an_update() {
    let tmp = private_dir();
    let store = StateStore::open_existing(tmp.path()).unwrap();
    let alice = user("alice");
    let path = tmp.path().join("alice.state");
    let newer = concat!(
        "deadbolt-state 1\n",
        r#"{"failures":[{"time":1000000,"host":"web1","source":"198.51.100.4","service":"sshd","pid":1}],"#,
        r#""last_disable":20000000,"mfa":{"enrolled":true,"at":[1,2.5,"x"]},"zz_flag":null}"#,
        "\n"
    );
    fs::write(&path, newer).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();

    let loaded = present(store.load(&alice).unwrap());
    assert_eq!(loaded.failures.len(), 1);
    assert_eq!(loaded.last_disable, Some(Timestamp::from_secs(20)));
    assert!(loaded.is_disabled());
    assert_eq!(
        loaded.extra.keys().collect::<Vec<_>>(),
        vec!["mfa", "zz_flag"]
    );
    assert!(!loaded.is_empty());

    let updated = store
        .update(
            &alice,
            Timestamp::from_secs(30),
            add_failure(failure(25, 2)),
        )
        .unwrap();
    assert!(updated.quarantined.is_empty());
    assert!(updated.written);
    assert_eq!(updated.state.failures.len(), 2);
    assert_eq!(updated.state.extra, loaded.extra);
    assert_eq!(present(store.load(&alice).unwrap()), updated.state);

    // On disk, the unknown fields are there as the newer version wrote them.
    let bytes = fs::read(&path).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&bytes[STATE_HEADER.len()..]).unwrap();
    assert_eq!(
        body["mfa"],
        serde_json::json!({"enrolled": true, "at": [1, 2.5, "x"]})
    );
    assert!(body.as_object().unwrap().contains_key("zz_flag"));
    assert!(body["zz_flag"].is_null());
    assert_eq!(body["last_disable"], 20_000_000);
    assert_eq!(body["failures"].as_array().unwrap().len(), 2);
    assert_eq!(listing(tmp.path()), vec!["alice.lock", "alice.state"]);

    // A state of nothing but unknown fields is kept too.
    let bob = user("bob");
    let bob_path = tmp.path().join("bob.state");
    fs::write(&bob_path, "deadbolt-state 1\n{\"zz_flag\":1}\n").unwrap();
    fs::set_permissions(&bob_path, fs::Permissions::from_mode(0o600)).unwrap();
    let bob_state = present(store.load(&bob).unwrap());
    assert!(!bob_state.is_empty());
    let updated = store
        .update(&bob, Timestamp::from_secs(30), add_failure(failure(25, 2)))
        .unwrap();
    assert!(updated.quarantined.is_empty());
    assert_eq!(updated.state.extra["zz_flag"], 1);
}

/// The longest accepted name, in bytes, with the widest time in the name of
/// a quarantined state: every file of the store fits in NAME_MAX.
#[test]
fn the_longest_user_name_can_be_stored_and_quarantined() {
    for name in [
        "a".repeat(MAX_USER_NAME_LEN),
        "é".repeat(MAX_USER_NAME_LEN / 2),
    ] {
        let tmp = private_dir();
        let store = StateStore::open_existing(tmp.path()).unwrap();
        let long = user(&name);
        store
            .update(&long, Timestamp::from_secs(1), add_failure(failure(1, 1)))
            .unwrap();
        assert_eq!(present(store.load(&long).unwrap()).failures.len(), 1);

        fs::write(tmp.path().join(format!("{name}.state")), b"garbage").unwrap();
        for now in [Timestamp(i64::MAX), Timestamp(i64::MIN)] {
            let updated = store
                .update(&long, now, add_failure(failure(2, 2)))
                .unwrap();
            let kept_at = updated
                .quarantined
                .first()
                .expect("not quarantined")
                .kept_at
                .clone();
            assert_eq!(
                kept_at,
                tmp.path()
                    .join(format!(".corrupt.{name}.{}", now.as_micros()))
            );
            assert!(kept_at.exists());
            fs::write(tmp.path().join(format!("{name}.state")), b"garbage").unwrap();
        }
        assert_eq!(store.users().unwrap(), vec![long]);
    }
}

/// A holder of a user's lock that never lets go (stopped with SIGSTOP, say)
/// does not hang an update, nor lose it: after the wait, the change is
/// recorded as an event, which every read sees.
#[test]
fn a_lock_held_too_long_gives_busy_and_the_update_becomes_a_record() {
    let tmp = private_dir();
    let store = StateStore::open_existing(tmp.path()).unwrap();
    let alice = user("alice");
    let held = store.lock(&alice).unwrap();

    let wait = Duration::from_millis(50);
    let impatient = store.clone().with_lock_wait(wait);
    let waiter = {
        let alice = alice.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let result =
                impatient.update(&alice, Timestamp::from_secs(1), add_failure(failure(1, 1)));
            (result, started.elapsed())
        })
    };
    let (result, waited) = waiter.join().unwrap();
    let updated = result.unwrap();
    assert!(updated.as_record && updated.written);
    assert_eq!(present(store.load(&alice).unwrap()).failures.len(), 1);
    let err = store
        .clone()
        .with_lock_wait(wait)
        .lock(&alice)
        .expect_err("locked through a held lock");
    let text = err.to_string();
    match err {
        StoreError::Busy { path } => assert_eq!(path, tmp.path().join("alice.lock")),
        other => panic!("expected Busy, got {other:?}"),
    }
    assert!(
        text.ends_with(
            "alice.lock: another process holds the lock of this user's state for more than 2 s"
        ),
        "{text}"
    );
    assert!(waited >= wait, "gave up after {waited:?}");
    // The wait set for the store, not the 2 s of production.
    assert!(waited < LOCK_WAIT, "waited {waited:?}");
    assert!(!tmp.path().join("alice.state").exists());
    // Trying the lock itself gives the same, and a zero wait tries once.
    assert!(matches!(
        store.clone().with_lock_wait(Duration::ZERO).lock(&alice),
        Err(StoreError::Busy { .. })
    ));

    // Once the holder lets go, the lock is had at the first try, and the
    // record is folded into the state file.
    drop(held);
    let updated = store
        .clone()
        .with_lock_wait(Duration::ZERO)
        .update(&alice, Timestamp::from_secs(1), add_failure(failure(1, 1)))
        .unwrap();
    assert!(!updated.as_record);
    assert_eq!(present(store.load(&alice).unwrap()).failures.len(), 1);
    assert_eq!(store.records(&alice), 0);
    assert!(tmp.path().join("alice.state").exists());
    assert_eq!(LOCK_WAIT, Duration::from_secs(2));
}

/// A holder that lets go within the wait is waited for: the update is made.
#[test]
fn a_lock_released_within_the_wait_is_taken() {
    let tmp = private_dir();
    let store = StateStore::open_existing(tmp.path()).unwrap();
    let alice = user("alice");
    let held = store.lock(&alice).unwrap();
    let waiter = {
        let store = store.clone();
        let alice = alice.clone();
        std::thread::spawn(move || {
            store.update(&alice, Timestamp::from_secs(1), add_failure(failure(1, 1)))
        })
    };
    std::thread::sleep(Duration::from_millis(150));
    assert!(!store.has_state(&alice), "written while the lock was held");
    drop(held);
    let updated = waiter.join().unwrap().unwrap();
    assert!(updated.written);
    assert_eq!(present(store.load(&alice).unwrap()).failures.len(), 1);
}

#[test]
fn users_lists_valid_state_files_only() {
    let tmp = private_dir();
    let store = StateStore::open_existing(tmp.path()).unwrap();
    for name in ["bob", "alice", "émile", "x.state", "j-doe"] {
        store
            .update(
                &user(name),
                Timestamp::from_secs(1),
                add_failure(failure(1, 1)),
            )
            .unwrap();
    }
    // The store's own files and strangers.
    for junk in [
        ".tmp.carol.1234",
        ".tmp.carol.state",
        ".corrupt.dave.1795820709000123",
        ".corrupt.dave.state",
        "erin.lock",
        ".state",
        ".hidden.state",
        "-rf.state",
        "two words.state",
        "tab\tin.state",
        "notes.txt",
        "alice.state~",
        "alice.state.bak",
    ] {
        fs::write(tmp.path().join(junk), b"junk").unwrap();
    }
    let users: Vec<String> = store
        .users()
        .unwrap()
        .into_iter()
        .map(|u| u.to_string())
        .collect();
    assert_eq!(users, vec!["alice", "bob", "j-doe", "x.state", "émile"]);
}

#[test]
fn concurrent_threads_lose_no_failure() {
    let tmp = private_dir();
    let store = StateStore::open_existing(tmp.path()).unwrap();
    let alice = user("alice");
    let writers = 16u32;
    let barrier = Arc::new(Barrier::new(writers as usize));
    let handles: Vec<_> = (0..writers)
        .map(|i| {
            let store = store.clone();
            let alice = alice.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let f = failure(1_000 + i64::from(i), 10_000 + i);
                store
                    .update(&alice, Timestamp::from_secs(2_000), add_failure(f))
                    .unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let state = present(store.load(&alice).unwrap());
    let pids: BTreeSet<u32> = state.failures.iter().map(|f| f.pid).collect();
    assert_eq!(pids, (10_000..10_000 + writers).collect());
    assert_eq!(state.failures.len(), writers as usize);
    assert_eq!(listing(tmp.path()), vec!["alice.lock", "alice.state"]);
}

const CHILD_DIR: &str = "DEADBOLT_STORE_TEST_CHILD_DIR";
const CHILD_INDEX: &str = "DEADBOLT_STORE_TEST_CHILD_INDEX";

/// Run as a child of itself (the test binary re-executed with `--exact`),
/// this test makes one update: it says it is ready, waits for the word from
/// the parent, updates and exits. Run normally, it is the parent: it starts
/// 16 such children, lets them all go at once, and counts the failures.
#[test]
fn concurrent_processes_lose_no_failure() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let index: u32 = std::env::var(CHILD_INDEX).unwrap().parse().unwrap();
        let store = StateStore::open_existing(Path::new(&dir)).unwrap();
        println!("ready {index}");
        std::io::stdout().flush().unwrap();
        let mut go = String::new();
        std::io::stdin().read_line(&mut go).unwrap();
        assert_eq!(go.trim(), "go");
        let f = failure(1_000 + i64::from(index), std::process::id());
        store
            .update(&user("alice"), Timestamp::from_secs(2_000), add_failure(f))
            .unwrap();
        return;
    }

    let tmp = private_dir();
    let store = StateStore::open_existing(tmp.path()).unwrap();
    let exe = std::env::current_exe().unwrap();
    let children = 16u32;
    let mut running = Vec::new();
    for index in 0..children {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "concurrent_processes_lose_no_failure",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR, tmp.path())
            .env(CHILD_INDEX, index.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the child has opened the store and is waiting to go.
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            assert_ne!(
                out.read_line(&mut line).unwrap(),
                0,
                "child {index} ended early"
            );
            if line.trim_end().ends_with(&format!("ready {index}")) {
                break;
            }
        }
        running.push((child, out));
    }
    // All at once.
    for (child, _) in &mut running {
        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    }
    let mut pids = BTreeSet::new();
    for (mut child, mut out) in running {
        pids.insert(child.id());
        drop(child.stdin.take());
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "child failed: {rest}");
        assert!(rest.contains("1 passed"), "the child ran no test: {rest}");
    }

    let state = present(store.load(&user("alice")).unwrap());
    assert_eq!(state.failures.len(), children as usize);
    let recorded: BTreeSet<u32> = state.failures.iter().map(|f| f.pid).collect();
    assert_eq!(recorded, pids);
    let times: BTreeSet<i64> = state.failures.iter().map(|f| f.time.as_micros()).collect();
    assert_eq!(times.len(), children as usize);
    assert_eq!(listing(tmp.path()), vec!["alice.lock", "alice.state"]);
}

#[test]
fn update_prunes_to_the_newest_failures() {
    let tmp = private_dir();
    let store = StateStore::open_existing(tmp.path()).unwrap();
    let alice = user("alice");
    let total = MAX_FAILURES_KEPT + 76;
    let updated = store
        .update(&alice, Timestamp::from_secs(10_000), |state| {
            for i in 0..total {
                state.failures.insert(failure(
                    i64::try_from(i).unwrap(),
                    u32::try_from(i).unwrap(),
                ));
            }
            true
        })
        .unwrap();
    assert_eq!(updated.state.failures.len(), MAX_FAILURES_KEPT);
    let stored = present(store.load(&alice).unwrap());
    assert_eq!(stored, updated.state);
    let oldest_kept = stored.failures.first().unwrap();
    assert_eq!(oldest_kept.time, Timestamp::from_secs(76));
    assert_eq!(
        stored.failures.last().unwrap().time,
        Timestamp::from_secs(i64::try_from(total - 1).unwrap())
    );
}

#[test]
fn update_drops_failures_before_the_reset_point() {
    let tmp = private_dir();
    let store = StateStore::open_existing(tmp.path()).unwrap();
    let alice = user("alice");
    store
        .update(&alice, Timestamp::from_secs(10), |state| {
            state.failures.insert(failure(1, 1));
            state.failures.insert(failure(2, 2));
            state.failures.insert(failure(5, 3));
            state.last_success = Some(Timestamp::from_secs(2));
            true
        })
        .unwrap();
    let stored = present(store.load(&alice).unwrap());
    let times: Vec<_> = stored.failures.iter().map(|f| f.time).collect();
    assert_eq!(times, vec![Timestamp::from_secs(5)]);
    assert_eq!(stored.last_success, Some(Timestamp::from_secs(2)));
}
