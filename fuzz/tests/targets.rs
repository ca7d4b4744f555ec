//! Each fuzz target over its checked-in corpus and its short run of
//! generated inputs, times `DEADBOLT_FUZZ_SCALE` (`make fuzz` runs more).

use std::time::Instant;

use deadbolt_fuzz::{driver, targets, Target};

fn fuzz(name: &str) {
    let target: &Target = targets::ALL
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no fuzz target {name}"));
    let scale = driver::scale_from_env().unwrap_or_else(|e| panic!("{e}"));
    let cases = target.cases.saturating_mul(scale);
    let started = Instant::now();
    let done = driver::run(target, cases).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "fuzz {name}: {} corpus inputs, {} generated inputs in {:.1} s",
        done.corpus,
        done.generated,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn config() {
    fuzz("config");
}

#[test]
fn state() {
    fuzz("state");
}

#[test]
fn checker() {
    fuzz("checker");
}

#[test]
fn directory() {
    fuzz("directory");
}

#[test]
fn handoff() {
    fuzz("handoff");
}

#[test]
fn welcome_template() {
    fuzz("welcome_template");
}

#[test]
fn every_target_has_a_test_here() {
    let source = include_str!("targets.rs");
    for target in targets::ALL {
        assert!(
            source.contains(&format!("fuzz(\"{}\")", target.name)),
            "{} has no test",
            target.name
        );
    }
}
