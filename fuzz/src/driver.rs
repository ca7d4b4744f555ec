//! Runs a target over its corpus, then over inputs proptest generates: most
//! are corpus entries mutated libFuzzer's way (bytes flipped, set to
//! boundary values, inserted from the dictionary, deleted, repeated, or
//! spliced from another entry), the rest arbitrary bytes. A panic fails the
//! run with the input shrunk to a small one, to be checked in under
//! `fuzz/corpus/<target>/` as a regression.

use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};

use crate::Target;

/// Bytes at the edges of what parsers expect.
const BOUNDARY_BYTES: &[u8] = &[
    0, 0x7f, 0x80, 0xff, b'\n', b'"', b'\\', b' ', b'#', b'%', b'=',
];

/// The corpus directory of `target` in this checkout.
pub fn corpus_dir(target: &Target) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target.name)
}

/// The corpus of `target`, in file-name order so a run is reproducible.
pub fn corpus(target: &Target) -> Result<Vec<(PathBuf, Vec<u8>)>, String> {
    let dir = corpus_dir(target);
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let bytes = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok((path, bytes))
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Edit {
    SetByte(Index, u8),
    Boundary(Index, Index),
    Insert(Index, Index),
    Delete(Index, usize),
    Repeat(Index, usize, usize),
    Splice(Index, Index, Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        1 => (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Edit::SetByte(at, b)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(at, b)| Edit::Boundary(at, b)),
        3 => (any::<Index>(), any::<Index>()).prop_map(|(at, word)| Edit::Insert(at, word)),
        1 => (any::<Index>(), 1usize..16).prop_map(|(at, n)| Edit::Delete(at, n)),
        1 => (any::<Index>(), 1usize..32, 2usize..64).prop_map(|(at, n, times)| Edit::Repeat(at, n, times)),
        1 => (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(at, other, from)| Edit::Splice(at, other, from)),
    ]
}

fn apply(seed: &[u8], edits: &[Edit], target: &Target, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for edit in edits {
        let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len) };
        match edit {
            Edit::SetByte(i, b) if !bytes.is_empty() => {
                let i = at(i, bytes.len());
                bytes[i] = *b;
            }
            Edit::Boundary(i, b) if !bytes.is_empty() => {
                let i = at(i, bytes.len());
                bytes[i] = BOUNDARY_BYTES[b.index(BOUNDARY_BYTES.len())];
            }
            Edit::Insert(i, word) if !target.dictionary.is_empty() => {
                let word = target.dictionary[word.index(target.dictionary.len())];
                let i = at(i, bytes.len() + 1);
                bytes.splice(i..i, word.iter().copied());
            }
            Edit::Delete(i, n) if !bytes.is_empty() => {
                let i = at(i, bytes.len());
                let end = (i + n).min(bytes.len());
                bytes.drain(i..end);
            }
            Edit::Repeat(i, n, times) if !bytes.is_empty() => {
                let i = at(i, bytes.len());
                let piece = bytes[i..(i + n).min(bytes.len())].to_vec();
                let repeated: Vec<u8> = piece.repeat(*times);
                bytes.splice(i..i, repeated);
            }
            Edit::Splice(i, other, from) if !corpus.is_empty() => {
                let other = &corpus[other.index(corpus.len())];
                let from = at(from, other.len());
                let i = at(i, bytes.len() + 1);
                bytes.truncate(i);
                bytes.extend_from_slice(&other[from..]);
            }
            _ => {}
        }
    }
    bytes
}

fn input(target: Target, corpus: Vec<Vec<u8>>) -> BoxedStrategy<Vec<u8>> {
    let arbitrary = proptest::collection::vec(any::<u8>(), 0..512);
    if corpus.is_empty() {
        return arbitrary.boxed();
    }
    let mutated =
        (any::<Index>(), proptest::collection::vec(edit(), 1..8)).prop_map(move |(seed, edits)| {
            let seed = &corpus[seed.index(corpus.len())];
            apply(seed, &edits, &target, &corpus)
        });
    prop_oneof![1 => arbitrary, 4 => mutated].boxed()
}

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Executions {
    pub corpus: usize,
    pub generated: u32,
}

/// Runs `target` over its corpus, then `cases` generated inputs. The error
/// names the input that made it panic: the corpus file, or the shrunk
/// generated bytes.
pub fn run(target: &Target, cases: u32) -> Result<Executions, String> {
    let corpus = corpus(target)?;
    if corpus.is_empty() {
        return Err(format!(
            "{}: the corpus is empty",
            corpus_dir(target).display()
        ));
    }
    for (path, bytes) in &corpus {
        panic::catch_unwind(|| (target.run)(bytes))
            .map_err(|_| format!("{} panics on {}", target.name, path.display()))?;
    }

    let corpus_len = corpus.len();
    let seeds: Vec<Vec<u8>> = corpus.into_iter().map(|(_, bytes)| bytes).collect();
    let mut runner = TestRunner::new(Config {
        cases,
        // A failure is reported with its input, to be checked in as corpus;
        // proptest's own regression files would be a second place for it.
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    });
    let run = target.run;
    runner
        .run(&input(*target, seeds), |bytes| {
            run(&bytes);
            Ok(())
        })
        .map_err(|e| format!("{} failed: {e}", target.name))?;
    Ok(Executions {
        corpus: corpus_len,
        generated: cases,
    })
}

/// `DEADBOLT_FUZZ_SCALE`: how many times each target's short run to make.
pub fn scale_from_env() -> Result<u32, String> {
    match std::env::var("DEADBOLT_FUZZ_SCALE") {
        Ok(text) => {
            text.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                format!("DEADBOLT_FUZZ_SCALE must be a positive number, not {text:?}")
            })
        }
        Err(_) => Ok(1),
    }
}
