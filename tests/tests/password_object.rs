//! The password phase lives in `pam_deadbolt_password.so`, which the module
//! loads from beside itself for a password change only. Copies of the two
//! built objects in a directory of the test's show that the module finds
//! its companion there, that the account phase needs nothing of it, and that a
//! companion that is missing or that others could write is refused: the
//! password change fails and nothing of that file runs.

use deadbolt_tests::{built_path, module_path, PamEnv, PamEnvBuilder, Stack, MSG_CHAUTHTOK_OK};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const INITIAL: &str = "Initial-Pass-1";
const NEW: &str = "quartz-Nimbus-falcon-Tepid-41";

fn alice() -> PamEnvBuilder {
    PamEnv::builder()
        .user("alice", INITIAL)
        .stack(Stack::Password)
}

/// The environment's service file, with the module replaced by a copy in
/// `dir` (and, when `companion_mode` is given, a copy of the password
/// object beside it with that mode).
fn with_copies(env: &PamEnv, dir: &Path, companion_mode: Option<u32>) -> PathBuf {
    fs::create_dir_all(dir).expect("mkdir");
    let module = dir.join("pam_deadbolt.so");
    fs::copy(module_path(), &module).expect("copy the module");
    if let Some(mode) = companion_mode {
        let companion = dir.join("pam_deadbolt_password.so");
        fs::copy(built_path("libpam_deadbolt_password.so"), &companion)
            .expect("copy the password object");
        fs::set_permissions(&companion, fs::Permissions::from_mode(mode)).expect("chmod");
    }
    let service = fs::read_to_string(env.service_file()).expect("read the service");
    let built = module_path().display().to_string();
    assert!(service.contains(&built), "the premise: {service}");
    let copied = service.replace(&built, &module.display().to_string());
    fs::write(env.service_file(), copied).expect("write the service");
    module
}

#[test]
fn the_companion_beside_the_module_changes_the_password() {
    let env = alice().build();
    with_copies(&env, &env.root().join("lib"), Some(0o644));
    let out = env.change_password("alice", INITIAL, &[NEW]);
    out.assert_exited_normally();
    assert!(out.succeeded(), "{out}");
    assert!(out.shows(MSG_CHAUTHTOK_OK), "{out}");
    assert_eq!(env.passdb_password("alice").as_deref(), Some(NEW));
}

#[test]
fn without_the_companion_the_account_phase_works_and_a_change_fails() {
    let env = alice().build();
    with_copies(&env, &env.root().join("lib"), None);
    // The stack's account line: the module loads and judges without it.
    let login = env.acct_mgmt("alice");
    login.assert_exited_normally();
    assert!(login.succeeded(), "{login}");
    let out = env.change_password("alice", INITIAL, &[NEW]);
    out.assert_exited_normally();
    assert!(!out.succeeded(), "{out}");
    assert_eq!(env.passdb_password("alice").as_deref(), Some(INITIAL));
}

#[test]
fn a_companion_others_could_write_is_not_loaded() {
    for mode in [0o664, 0o646] {
        let env = alice().build();
        with_copies(&env, &env.root().join("lib"), Some(mode));
        let out = env.change_password("alice", INITIAL, &[NEW]);
        out.assert_exited_normally();
        assert!(!out.succeeded(), "mode {mode:o}: {out}");
        assert!(!out.shows(MSG_CHAUTHTOK_OK), "mode {mode:o}: {out}");
        assert_eq!(env.passdb_password("alice").as_deref(), Some(INITIAL));
    }
}
