//! Fuzz targets for what deadbolt reads from outside: the config file, state
//! files, the password checker's command line and input, values from the
//! directory, and the module's password hand-off frames.
//!
//! Each target has libFuzzer's shape, a function of one byte slice that
//! panics when it finds a bug, so it can be wrapped in `fuzz_target!` as it
//! is. Here they run on the stable toolchain: [`driver::run`] feeds each the
//! checked-in corpus (`fuzz/corpus/<target>/`), then inputs generated and
//! mutated from it by proptest.

#![forbid(unsafe_code)]

pub mod driver;
pub mod targets;

/// One fuzz target: its name (the corpus directory's) and its function.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
    /// Byte strings the mutator inserts, like a libFuzzer dictionary: what
    /// random bytes would take too long to hit.
    pub dictionary: &'static [&'static [u8]],
    /// Generated inputs in the short run `cargo test` makes: a few seconds
    /// in a debug build. `DEADBOLT_FUZZ_SCALE` multiplies it (`make fuzz`).
    pub cases: u32,
}
