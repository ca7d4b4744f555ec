//! The password phase through real libpam: the rules with their messages,
//! the strength checker and its lists, the history, a change that fails
//! further down the stack, retries, and the account phase's ageing and
//! expiry.
//!
//! pamtester runs as root, so every change here is root changing alice's
//! password: the rules bind because `enforce_for_root = true` by default, and
//! `min_age` never does (root may always change a password). The old
//! password pam_matrix asks for is zeroed by pam_matrix itself (see the
//! harness), so the rules against the old password are driven with
//! [`Stack::PasswordOldFromEnv`] instead.

use deadbolt_core::password::format_date;
use deadbolt_core::Timestamp;
use deadbolt_tests::{
    contains_bytes, days_ago, minutes_ago, PamEnv, PamEnvBuilder, Stack, MSG_ACCT_EXPIRED,
    MSG_CHAUTHTOK_OK, MSG_MAXTRIES, MSG_NEW_AUTHTOK_REQD,
};

/// alice's password in pam_matrix's file before any change.
const INITIAL: &str = "Initial-Pass-1";
/// Strong passwords (zxcvbn 4) with nothing of alice in them.
const A: &str = "quartz-Nimbus-falcon-Tepid-41";
const B: &str = "Velvet-Compass-Orbit-73";
const C: &str = "Tangerine-Harbour-Moss-58";

const BAD: &str = "BAD PASSWORD: ";
const MSG_COMMON: &str = "BAD PASSWORD: it is one of the most commonly used passwords.";
const MSG_EMPTY: &str = "BAD PASSWORD: it is empty.";
/// pam_strerror(PAM_AUTHTOK_ERR), as pamtester prints it.
const MSG_AUTHTOK_ERR: &str = "Authentication token manipulation error";
/// libpam's own words when the retyped password differs.
const MSG_MISMATCH: &str = "Sorry, passwords do not match.";
const MSG_RESET: &str =
    "You are required to change your password now: it was reset by an administrator.";
const MSG_AGED: &str = "You are required to change your password now: it has expired.";
const MSG_ROOT_WARNED: &str = "Accepted anyway: enforce_for_root = false lets root set it.";
const MSG_TOO_SOON: &str = "The password was changed too recently";

/// alice with the password stack, pam_matrix storing.
fn alice() -> PamEnvBuilder {
    PamEnv::builder()
        .user("alice", INITIAL)
        .stack(Stack::Password)
}

/// Today, in days since 1970-01-01 (UTC).
fn today() -> i64 {
    Timestamp::now().as_micros().div_euclid(86_400_000_000)
}

fn assert_changed(out: &deadbolt_tests::Outcome) {
    out.assert_exited_normally();
    assert!(out.succeeded(), "the change failed\n{out}");
    assert!(out.shows(MSG_CHAUTHTOK_OK), "{out}");
}

fn assert_not_changed(out: &deadbolt_tests::Outcome) {
    out.assert_exited_normally();
    assert!(!out.succeeded(), "the change succeeded\n{out}");
    assert!(!out.shows(MSG_CHAUTHTOK_OK), "{out}");
}

/// `status USER --json` field `key`.
fn status(env: &PamEnv, key: &str) -> serde_json::Value {
    let status = env.status_json("alice");
    assert!(
        status.get(key).is_some(),
        "no {key} in status --json: {status}"
    );
    status[key].clone()
}

fn history_entries(env: &PamEnv) -> u64 {
    status(env, "history_entries")
        .as_u64()
        .expect("history_entries is a number")
}

/// One rule at its boundary: with `key = value` (and strength not judged),
/// `refused` is refused with exactly `message`, and `accepted`, typed at
/// the next try of the same change, is accepted and stored.
fn boundary(key: &str, value: &str, refused: &str, accepted: &str, message: &str) {
    let env = alice()
        .password(key, value)
        .password("min_strength", "0")
        .password("retry", "2")
        .build();
    let out = env.change_password("alice", INITIAL, &[refused, accepted]);
    assert_changed(&out);
    assert!(
        out.shows(&format!("{BAD}{message}")),
        "{key} = {value}: no \"{message}\" for {refused:?}\n{out}"
    );
    assert_eq!(
        out.count(BAD),
        1,
        "{key} = {value}: {accepted:?} was refused too, or {refused:?} for more than one reason\n{out}"
    );
    assert_eq!(env.passdb_password("alice").as_deref(), Some(accepted));
    assert_eq!(history_entries(&env), 1);
}

#[test]
fn min_length_counts_characters() {
    // 14 characters but 15 bytes: "é" counts once.
    boundary(
        "min_length",
        "14",
        "Orchard-Lante",
        "Orchard-Lantér",
        "it is 13 characters long; at least 14 are required.",
    );
}

#[test]
fn max_length_boundary() {
    boundary(
        "max_length",
        "16",
        "Orchard-Lantern42",
        "Orchard-Lantern4",
        "it is longer than the 16 characters allowed.",
    );
}

#[test]
fn min_upper_boundary() {
    boundary(
        "min_upper",
        "2",
        "Orchard-lantern-42",
        "Orchard-Lantern-42",
        "it needs at least 2 upper-case letters.",
    );
}

#[test]
fn min_lower_boundary() {
    boundary(
        "min_lower",
        "2",
        "ORCHARD-LANTERN-42x",
        "ORCHARD-LANTERN-4xy",
        "it needs at least 2 lower-case letters.",
    );
}

#[test]
fn min_digits_boundary() {
    boundary(
        "min_digits",
        "2",
        "orchard-lantern-4",
        "orchard-lantern-42",
        "it needs at least 2 digits.",
    );
}

#[test]
fn min_special_boundary() {
    boundary(
        "min_special",
        "2",
        "orchard-lantern42",
        "orchard-lantern-42",
        "it needs at least 2 special characters (not a letter or digit).",
    );
}

#[test]
fn min_classes_boundary() {
    boundary(
        "min_classes",
        "3",
        "orchardlantern42",
        "Orchardlantern42",
        "it uses 2 of the 4 kinds of character (upper case, lower case, digits, others); \
         at least 3 are required.",
    );
}

#[test]
fn max_repeat_boundary() {
    boundary(
        "max_repeat",
        "2",
        "orchaaard-lantern-42",
        "orchaard-lantern-42",
        "it repeats a character more than 2 times in a row.",
    );
}

#[test]
fn the_user_name_is_refused_in_any_case() {
    // No real name: the harness's default GECOS is the user name, which
    // would refuse it a second time.
    let env = alice().gecos("alice", "").password("retry", "2").build();
    let out = env.change_password("alice", INITIAL, &["Orchard-ALICE-Lantern-42", A]);
    assert_changed(&out);
    assert!(
        out.shows("BAD PASSWORD: it contains the user name."),
        "{out}"
    );
    assert_eq!(out.count(BAD), 1, "{out}");
}

#[test]
fn a_part_of_the_real_name_is_refused() {
    let env = alice()
        .gecos("alice", "Alice Liddell,Room 1,,")
        .password("retry", "2")
        .build();
    let out = env.change_password("alice", INITIAL, &["Liddell-Orchard-Lantern", A]);
    assert_changed(&out);
    assert!(
        out.shows("BAD PASSWORD: it contains part of the real name."),
        "{out}"
    );
    assert_eq!(out.count(BAD), 1, "{out}");
}

#[test]
fn the_current_password_and_small_variations_are_refused() {
    // pam_set_items gives PAM_OLDAUTHTOK, as pam_unix does once it has
    // checked the current password.
    let env = PamEnv::builder()
        .user("alice", INITIAL)
        .stack(Stack::PasswordOldFromEnv)
        .password("min_strength", "0")
        .password("retry", "4")
        .build();
    let current = "Tangerine-Harbour-42";
    let out = env.change_password(
        "alice",
        current,
        &[
            current,
            "tangerine-harbour-42",
            "Tangerine-Harbour-43",
            "Velvet-Compass-Orbit",
        ],
    );
    assert_changed(&out);
    assert_eq!(
        out.count("BAD PASSWORD: it is the same as the current password."),
        1,
        "{out}"
    );
    assert_eq!(
        out.count("BAD PASSWORD: it is too similar to the current password."),
        2,
        "{out}"
    );
    assert_eq!(out.count(BAD), 3, "{out}");
    assert_eq!(history_entries(&env), 1);
}

#[test]
fn an_old_password_zeroed_by_the_storing_module_is_no_old_password() {
    // pam_matrix zeroes PAM_OLDAUTHTOK once it has checked it: the empty
    // string left behind must not count as the old password, or every new
    // password under 3 characters would be "too similar" to it.
    let env = alice()
        .password("min_length", "1")
        .password("min_strength", "0")
        .password("lists", "[]")
        .password("retry", "1")
        .build();
    let out = env.change_password("alice", INITIAL, &["ab"]);
    assert_changed(&out);
    assert_eq!(out.count(BAD), 0, "{out}");
}

#[test]
fn a_common_password_is_refused_whatever_its_case() {
    // Strength not judged: the list alone refuses it.
    let env = alice()
        .password("min_strength", "0")
        .password("retry", "2")
        .build();
    let out = env.change_password("alice", INITIAL, &["PassWord1234", A]);
    assert_changed(&out);
    assert!(out.shows(MSG_COMMON), "{out}");
    assert_eq!(out.count(BAD), 1, "{out}");
}

#[test]
fn a_weak_password_is_refused_with_zxcvbn_feedback() {
    let env = alice().password("retry", "2").build();
    let out = env.change_password("alice", INITIAL, &["abcdefghijkl", A]);
    assert_changed(&out);
    assert!(
        out.shows(
            "BAD PASSWORD: it is too easy to guess (strength 0 of 4, at least 3 required). \
             Sequences like abc or 6543 are easy to guess."
        ),
        "{out}"
    );
    assert_eq!(out.count(BAD), 1, "{out}");
}

#[test]
fn a_missing_list_does_not_block_a_strong_password() {
    let env = alice().password("lists", "[\"/nonexistent\"]").build();
    // The file is valid: the module reads it rather than its defaults.
    let check = env.deadboltctl(&["check-config"]);
    assert!(check.succeeded(), "{check}");
    let out = env.change_password("alice", INITIAL, &[A]);
    assert_changed(&out);
    assert_eq!(out.count(BAD), 0, "{out}");
    // The harness's argon2 parameters: the file was used, not the defaults.
    let phc = env.history_phc("alice");
    assert_eq!(phc.len(), 1);
    assert!(
        phc[0].starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
        "{phc:?}"
    );
}

#[test]
fn history_refuses_reuse_until_a_password_falls_out() {
    let mut env = alice()
        .password("remember", "2")
        .password("retry", "1")
        .build();
    assert_changed(&env.change_password("alice", INITIAL, &[A]));
    assert_eq!(history_entries(&env), 1);
    assert_changed(&env.change_password("alice", A, &[B]));
    assert_changed(&env.change_password("alice", B, &[C]));
    assert_eq!(history_entries(&env), 2);
    assert_eq!(env.passdb_password("alice").as_deref(), Some(C));
    let changed_at = status(&env, "password_changed_at");

    // B is one of the last two.
    let out = env.change_password("alice", C, &[B]);
    assert_not_changed(&out);
    assert!(
        out.shows("BAD PASSWORD: it was used before; the last 2 passwords cannot be reused."),
        "{out}"
    );
    assert!(out.shows(MSG_MAXTRIES), "{out}");
    assert_eq!(env.passdb_password("alice").as_deref(), Some(C));
    assert_eq!(history_entries(&env), 2);
    assert_eq!(status(&env, "password_changed_at"), changed_at);

    // A is not any more.
    assert_changed(&env.change_password("alice", C, &[A]));
    assert_eq!(history_entries(&env), 2);

    // History is now [C, A]: C is refused...
    let out = env.change_password("alice", A, &[C]);
    assert_not_changed(&out);
    assert!(out.shows("it was used before"), "{out}");

    // ...until remember drops to 1, which frees it at once and trims the
    // history at the next change.
    env.set_password_key("remember", "1");
    let out = env.change_password("alice", A, &[C]);
    assert_changed(&out);
    assert_eq!(out.count(BAD), 0, "{out}");
    assert_eq!(history_entries(&env), 1);
    let out = env.change_password("alice", C, &[C]);
    assert_not_changed(&out);
    assert!(
        out.shows("BAD PASSWORD: it was used before; the last 1 password cannot be reused."),
        "{out}"
    );
}

#[test]
fn remember_zero_keeps_no_history() {
    let env = alice().password("remember", "0").build();
    assert_changed(&env.change_password("alice", INITIAL, &[A]));
    assert_changed(&env.change_password("alice", A, &[B]));
    // Reuse is allowed.
    let out = env.change_password("alice", B, &[A]);
    assert_changed(&out);
    assert_eq!(out.count(BAD), 0, "{out}");
    assert_eq!(history_entries(&env), 0);
    assert!(status(&env, "password_changed_at").is_string());
    assert!(env.history_phc("alice").is_empty());
    assert!(!contains_bytes(&env.state_bytes(), b"argon2"));
}

#[test]
fn history_is_hashed_with_owasp_parameters_by_default() {
    let env = alice()
        .unset_password("hash_memory_kib")
        .unset_password("hash_iterations")
        .build();
    assert_changed(&env.change_password("alice", INITIAL, &[A]));
    let phc = env.history_phc("alice");
    assert_eq!(phc.len(), 1);
    assert!(
        phc[0].starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{phc:?}"
    );
    assert!(!phc[0].contains(A));
}

#[test]
fn a_change_denied_by_the_next_module_records_nothing() {
    // pam_deny fails the preliminary pass: no new password is even asked.
    let env = PamEnv::builder()
        .user("alice", INITIAL)
        .stack(Stack::PasswordDeny)
        .build();
    let out = env.change_password("alice", INITIAL, &[A]);
    assert_not_changed(&out);
    assert!(out.shows(MSG_AUTHTOK_ERR), "{out}");
    assert!(!out.shows("New password"), "{out}");
    assert_eq!(env.state_files(), Vec::<String>::new());
    assert!(status(&env, "password_changed_at").is_null());
    assert_eq!(history_entries(&env), 0);
}

#[test]
fn a_change_that_fails_to_store_records_nothing() {
    // deadbolt approves the new password, then the storing module fails the
    // update: the commit line is never reached.
    let env = PamEnv::builder()
        .user("alice", INITIAL)
        .stack(Stack::PasswordStoreFails)
        .build();
    let out = env.change_password("alice", INITIAL, &[A]);
    assert_not_changed(&out);
    assert!(out.shows("Retype new password"), "not approved\n{out}");
    assert!(out.shows(MSG_AUTHTOK_ERR), "{out}");
    assert_eq!(out.count(BAD), 0, "{out}");
    assert_eq!(env.state_files(), Vec::<String>::new());
    assert!(status(&env, "password_changed_at").is_null());
    assert_eq!(history_entries(&env), 0);
}

#[test]
fn retry_two_bad_passwords_fail_the_change() {
    let env = alice().password("retry", "2").build();
    let out = env.change_password("alice", INITIAL, &["short", "abcdefghijkl", A]);
    assert_not_changed(&out);
    assert!(out.shows(MSG_MAXTRIES), "{out}");
    assert_eq!(out.count(BAD), 2, "{out}");
    assert_eq!(out.count("New password: "), 2, "{out}");
    assert_eq!(env.passdb_password("alice").as_deref(), Some(INITIAL));
    assert_eq!(env.state_files(), Vec::<String>::new());
}

#[test]
fn retry_one_bad_then_a_good_one_succeeds() {
    let env = alice().password("retry", "2").build();
    let out = env.change_password("alice", INITIAL, &["short", A]);
    assert_changed(&out);
    assert!(
        out.shows("BAD PASSWORD: it is 5 characters long; at least 12 are required."),
        "{out}"
    );
    assert_eq!(env.passdb_password("alice").as_deref(), Some(A));
    assert_eq!(history_entries(&env), 1);
}

#[test]
fn a_mistyped_confirmation_uses_a_try() {
    let env = alice().password("retry", "2").build();
    let input = format!("{INITIAL}\n{A}\n{B}\n{C}\n{C}\n{C}\n{C}\n");
    let out = env.chauthtok("alice", input);
    assert_changed(&out);
    assert!(out.shows(MSG_MISMATCH), "{out}");
    assert_eq!(env.passdb_password("alice").as_deref(), Some(C));
    let phc = env.history_phc("alice");
    assert_eq!(phc.len(), 1);
}

#[test]
fn root_is_only_warned_without_enforce_for_root() {
    let env = alice()
        .password("enforce_for_root", "false")
        .password("retry", "1")
        .build();
    let out = env.change_password("alice", INITIAL, &["short"]);
    assert_changed(&out);
    assert!(
        out.shows("BAD PASSWORD: it is 5 characters long; at least 12 are required."),
        "{out}"
    );
    assert!(out.shows(MSG_ROOT_WARNED), "{out}");
    assert_eq!(env.passdb_password("alice").as_deref(), Some("short"));
    assert_eq!(history_entries(&env), 1);
}

#[test]
fn reset_password_forces_a_change_at_the_next_login() {
    let env = alice().build();
    assert!(env.acct_mgmt("alice").succeeded());
    let ctl = env.deadboltctl(&["reset-password", "alice"]);
    assert!(ctl.succeeded(), "{ctl}");
    assert!(
        ctl.shows("alice must change the password at the next login"),
        "{ctl}"
    );
    assert_eq!(status(&env, "must_change"), true);

    let out = env.acct_mgmt("alice");
    out.assert_exited_normally();
    assert!(!out.succeeded(), "{out}");
    assert!(out.shows(MSG_NEW_AUTHTOK_REQD), "{out}");
    assert!(out.shows(MSG_RESET), "{out}");

    assert_changed(&env.change_password("alice", INITIAL, &[A]));
    let out = env.acct_mgmt("alice");
    assert!(out.succeeded(), "{out}");
    assert!(!out.shows(MSG_RESET), "{out}");
    assert_eq!(status(&env, "must_change"), false);
    assert!(status(&env, "password_changed_at").is_string());
}

#[test]
fn an_account_expired_yesterday_is_refused_until_never() {
    let env = alice().build();
    let yesterday = format_date(today() - 1);
    let ctl = env.deadboltctl(&["expire", "alice", "--on", &yesterday]);
    assert!(ctl.succeeded(), "{ctl}");
    assert_eq!(status(&env, "account_expired"), true);
    assert_eq!(status(&env, "expires_on"), yesterday.as_str());

    let out = env.acct_mgmt("alice");
    out.assert_exited_normally();
    assert!(!out.succeeded(), "{out}");
    assert!(out.shows(MSG_ACCT_EXPIRED), "{out}");
    assert!(
        out.shows(&format!(
            "The account expired on {yesterday}: ask your manager or an administrator."
        )),
        "{out}"
    );

    let ctl = env.deadboltctl(&["expire", "alice", "--never"]);
    assert!(ctl.succeeded(), "{ctl}");
    assert!(status(&env, "expires_on").is_null());
    assert_eq!(status(&env, "account_expired"), false);
    let out = env.acct_mgmt("alice");
    assert!(out.succeeded(), "{out}");
}

#[test]
fn an_account_expiring_in_the_future_is_let_in() {
    let env = alice().build();
    let later = format_date(today() + 30);
    let ctl = env.deadboltctl(&["expire", "alice", "--on", &later]);
    assert!(ctl.succeeded(), "{ctl}");
    assert_eq!(status(&env, "account_expired"), false);
    let out = env.acct_mgmt("alice");
    assert!(out.succeeded(), "{out}");
}

#[test]
fn root_is_never_refused_for_an_expired_account() {
    let env = PamEnv::builder()
        .root("rootpw")
        .stack(Stack::Password)
        .build();
    let yesterday = format_date(today() - 1);
    let ctl = env.deadboltctl(&["expire", "root", "--on", &yesterday]);
    assert!(ctl.succeeded(), "{ctl}");
    let status = env.status_json("root");
    assert_eq!(status["account_expired"], true, "{status}");
    let out = env.acct_mgmt("root");
    assert!(out.succeeded(), "{out}");
    assert!(!out.shows(MSG_ACCT_EXPIRED), "{out}");
}

#[test]
fn a_password_older_than_max_age_must_change() {
    let env = alice().password("max_age", "\"90d\"").build();
    env.seed_state("alice", |state| {
        state.last_password_change = Some(days_ago(100));
    });
    assert_eq!(status(&env, "must_change"), true);
    assert!(status(&env, "password_expires_at").is_string());
    let out = env.acct_mgmt("alice");
    out.assert_exited_normally();
    assert!(!out.succeeded(), "{out}");
    assert!(out.shows(MSG_NEW_AUTHTOK_REQD), "{out}");
    assert!(out.shows(MSG_AGED), "{out}");

    assert_changed(&env.change_password("alice", INITIAL, &[A]));
    let out = env.acct_mgmt("alice");
    assert!(out.succeeded(), "{out}");
    assert_eq!(status(&env, "must_change"), false);
}

#[test]
fn a_password_close_to_max_age_is_warned_about() {
    let env = alice().password("max_age", "\"90d\"").build();
    env.seed_state("alice", |state| {
        state.last_password_change = Some(days_ago(85));
    });
    let out = env.acct_mgmt("alice");
    assert!(out.succeeded(), "{out}");
    assert!(
        out.shows("Warning: your password will expire in 5 days."),
        "{out}"
    );
    // Outside warn_age: nothing said.
    let env = alice().password("max_age", "\"90d\"").build();
    env.seed_state("alice", |state| {
        state.last_password_change = Some(days_ago(80));
    });
    let out = env.acct_mgmt("alice");
    assert!(out.succeeded(), "{out}");
    assert!(!out.shows("expire"), "{out}");
}

#[test]
fn min_age_does_not_bind_root() {
    // pamtester runs as root, who may always change a password (as with
    // shadow's minimum age). A user changing his own password through a
    // setuid passwd is not root and would be refused; pam_wrapper cannot be
    // preloaded into a setuid program, so that case is left to the unit
    // tests of the ageing rules.
    let env = alice().password("min_age", "\"1d\"").build();
    let an_hour_ago = minutes_ago(60);
    env.seed_state("alice", |state| {
        state.last_password_change = Some(an_hour_ago);
    });
    let out = env.change_password("alice", INITIAL, &[A]);
    assert_changed(&out);
    assert!(!out.shows(MSG_TOO_SOON), "{out}");
    let changed = env
        .load_state("alice")
        .and_then(|s| s.last_password_change)
        .expect("a change time");
    assert!(changed > an_hour_ago, "the change was not recorded");
}

/// The state still decodes and says what it said before.
fn assert_state_intact(env: &PamEnv, entries: u64) {
    assert!(env.load_state("alice").is_some());
    assert_eq!(history_entries(env), entries);
    assert!(
        !env.state_files().iter().any(|f| f.starts_with(".corrupt")),
        "{:?}",
        env.state_files()
    );
}

#[test]
fn a_one_mebibyte_password_is_refused_cleanly() {
    let env = alice().build();
    assert_changed(&env.change_password("alice", INITIAL, &[A]));
    let mut input = format!("{A}\n").into_bytes();
    input.extend(std::iter::repeat_n(b'x', 1 << 20));
    input.push(b'\n');
    let out = env.chauthtok("alice", &input);
    assert_not_changed(&out);
    assert!(out.signal().is_none(), "{out}");
    assert!(out.shows("BAD PASSWORD: it is longer than"), "{out}");
    assert_eq!(env.passdb_password("alice").as_deref(), Some(A));
    assert_state_intact(&env, 1);
}

#[test]
fn an_empty_password_is_refused_cleanly() {
    let env = alice().build();
    assert_changed(&env.change_password("alice", INITIAL, &[A]));
    let out = env.chauthtok("alice", format!("{A}\n\n\n\n"));
    assert_not_changed(&out);
    assert_eq!(out.count(MSG_EMPTY), 3, "{out}");
    assert!(out.shows(MSG_MAXTRIES), "{out}");
    assert_state_intact(&env, 1);
}

#[test]
fn a_password_that_is_not_utf8_is_judged_like_any_other() {
    let env = alice().password("retry", "2").build();
    let short: &[u8] = b"\xff\xfe\xfd";
    let long: &[u8] = b"\xff\xfe\xfd-quite-long-one";
    let out = env.change_password_bytes("alice", INITIAL, &[short, long]);
    assert_changed(&out);
    assert!(
        out.shows("BAD PASSWORD: it is 3 characters long; at least 12 are required."),
        "{out}"
    );
    assert_eq!(out.count(BAD), 1, "{out}");
    assert_state_intact(&env, 1);
    let ctl = env.deadboltctl(&["status", "alice"]);
    assert!(ctl.succeeded(), "{ctl}");
    assert!(!contains_bytes(&env.state_bytes(), long));
}

#[test]
fn passwords_never_reach_the_state_or_deadboltctl() {
    let env = alice().password("retry", "2").build();
    let weak = "abcdefghijkl";
    // What the user is shown: prompts and reasons, never a password.
    let shown = [
        env.change_password("alice", INITIAL, &[weak, A]),
        env.change_password("alice", A, &[B]),
        env.change_password("alice", B, &[A]),
    ];
    assert_changed(&shown[0]);
    assert_changed(&shown[1]);
    assert_not_changed(&shown[2]);
    let state = env.state_bytes();
    assert!(!state.is_empty());
    let ctl = [
        env.deadboltctl(&["status", "alice"]),
        env.deadboltctl(&["status", "alice", "--json"]),
        env.deadboltctl(&["status", "--json"]),
    ];
    for out in &ctl {
        assert!(out.succeeded(), "{out}");
    }
    for password in [INITIAL, weak, A, B] {
        assert!(
            !contains_bytes(&state, password.as_bytes()),
            "{password} is in the state directory"
        );
        for out in ctl.iter().chain(&shown) {
            assert!(!out.shows(password), "{password} shown\n{out}");
        }
    }
}
