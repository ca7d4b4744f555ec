//! Writes failures into a user's state through the library, the three ways
//! deadbolt does (a login's attempt settled, a record merged in, a
//! read-modify-write under the user's lock, folding as the module does),
//! until it is killed. After each write returns it prints the write's
//! mark (`<pid>.<sequence>`, also the failure's source), so whoever kills
//! it knows which writes were acknowledged.
//!
//! Usage: store-writer STATE_DIR USER

#![forbid(unsafe_code)]

use deadbolt_core::store::FOLD_AT;
use deadbolt_core::{Failure, StateStore, Timestamp, UserName, UserState};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, user] = args.as_slice() else {
        eprintln!("usage: store-writer STATE_DIR USER");
        return ExitCode::from(2);
    };
    let user = match UserName::parse(user) {
        Ok(user) => user,
        Err(e) => {
            eprintln!("store-writer: {user:?}: {e}");
            return ExitCode::from(2);
        }
    };
    match write_until_killed(std::path::Path::new(dir), &user) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("store-writer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write_until_killed(
    dir: &std::path::Path,
    user: &UserName,
) -> Result<(), Box<dyn std::error::Error>> {
    let store = StateStore::open_or_create(dir)?;
    let pid = std::process::id();
    let mut out = std::io::stdout().lock();
    for sequence in 0u64.. {
        let now = Timestamp::now();
        let mark = format!("{pid}.{sequence}");
        let failure = Failure {
            time: now,
            host: "store-writer".to_owned(),
            source: mark.clone(),
            service: "crash".to_owned(),
            pid,
        };
        match sequence % 3 {
            0 => {
                let id = store.begin_attempt(user, &failure)?;
                store.settle_attempt(user, &id, sequence % 6 == 0)?;
            }
            1 => {
                let mut delta = UserState::default();
                delta.failures.insert(failure);
                store.merge_in(user, &delta, now, false)?;
            }
            _ => {
                store.update(user, now, |state| state.failures.insert(failure))?;
            }
        }
        writeln!(out, "{mark}")?;
        out.flush()?;
        if store.records(user) > FOLD_AT {
            store.fold(user, now)?;
        }
    }
    Ok(())
}
