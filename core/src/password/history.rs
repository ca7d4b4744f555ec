//! The password history: how former passwords are hashed, and how a new one
//! is compared with them without letting a hostile entry hang the change.
//!
//! Every entry names its own argon2 parameters, and an entry may come from
//! anywhere the state does (another host, the directory). Its cost is
//! therefore bounded before anything is computed: memory, passes, lanes and
//! memory × passes, each with a documented maximum that is also the most the
//! configuration may set, so that deadbolt never writes an entry it would
//! refuse to read. On top of that the whole comparison has a deadline.
//!
//! What an entry that cannot be compared does to the change:
//!
//! - An entry deadbolt could never have written (not an argon2 PHC string, or
//!   beyond the bounds) is *ignored*: it matches nothing and the caller logs
//!   it. It cannot stand for a password deadbolt recorded, and histories
//!   merge as a union, so planting it removes no real entry; refusing instead
//!   would let whoever can plant one block every change of that user,
//!   including the change forced at login.
//! - An entry within the bounds that was not computed (the system refused
//!   its memory, the deadline came first, a worker died) may be the very
//!   password being reused: the verdict is [`HistoryVerdict::Unchecked`],
//!   and the change is refused until it can be checked.

use super::MAX_PASSWORD_BYTES;
use crate::state::{PasswordRecord, UserState};
use crate::time::Timestamp;
use argon2::password_hash::phc::{Output, PasswordHash};
use argon2::password_hash::PasswordHasher;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use zeroize::{Zeroize, Zeroizing};

/// The most memory a history entry may ask for, in KiB (1 GiB), and so the
/// most the configuration may set for new entries. Verification runs in the
/// process that changes the password (passwd, sshd...), on up to four
/// threads at once, each with its own memory: a larger bound would let one
/// entry ask for more than a host can spare.
pub const MAX_HASH_MEMORY_KIB: u32 = 1024 * 1024;

/// The most argon2 passes a history entry may ask for, and so the most
/// `hash_iterations` may set.
pub const MAX_HASH_ITERATIONS: u32 = 100;

/// The most argon2 lanes a history entry may ask for, and so the most
/// `hash_parallelism` may set.
pub const MAX_HASH_PARALLELISM: u32 = 64;

/// The most work one entry may ask for: memory in KiB times passes (2 GiB
/// passed over twice, or 19 MiB a hundred times). An argon2 run takes time
/// in proportion to it, whatever the lanes: at this bound about 5 s on a
/// slow core, so one entry cannot outlast [`HISTORY_TIME_LIMIT`] by much.
pub const MAX_HASH_WORK: u64 = 2 * 1024 * 1024;

/// How long the password phase lets the whole history comparison run. An
/// entry is never started after it; one already running finishes, which
/// [`MAX_HASH_WORK`] keeps short. The default parameters (20 to 90 ms an
/// entry) check the longest history allowed (400 entries) well within it.
pub const HISTORY_TIME_LIMIT: Duration = Duration::from_secs(15);

/// argon2id parameters for the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashParams {
    /// OWASP's minimum for argon2id: 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        HashParams {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
        }
    }
}

/// Why a password could not be hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashError(String);

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "argon2id: {}", self.0)
    }
}

impl std::error::Error for HashError {}

impl HashParams {
    /// Whether an entry with these parameters is within the bounds, so that
    /// the history will compute it.
    pub fn within_bounds(&self) -> Result<(), Unusable> {
        if self.memory_kib > MAX_HASH_MEMORY_KIB {
            return Err(Unusable::Memory(self.memory_kib));
        }
        if self.iterations > MAX_HASH_ITERATIONS {
            return Err(Unusable::Iterations(self.iterations));
        }
        if self.parallelism > MAX_HASH_PARALLELISM {
            return Err(Unusable::Lanes(self.parallelism));
        }
        if u64::from(self.memory_kib) * u64::from(self.iterations) > MAX_HASH_WORK {
            return Err(Unusable::Work {
                memory_kib: self.memory_kib,
                iterations: self.iterations,
            });
        }
        Ok(())
    }

    fn hasher(&self) -> Result<Argon2<'static>, HashError> {
        self.within_bounds()
            .map_err(|why| HashError(format!("the parameters are refused: {why}")))?;
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| HashError(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    /// An argon2id PHC string of `password` with a fresh random salt.
    pub fn hash(&self, password: &[u8]) -> Result<String, HashError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(HashError("the password is too long to hash".to_owned()));
        }
        self.hasher()?
            .hash_password(password)
            .map(|h| h.to_string())
            .map_err(|e| HashError(e.to_string()))
    }
}

/// Why a history entry is not computed at all: deadbolt could never have
/// written it. Its text names the numbers, never the hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unusable {
    /// Not an argon2 PHC string with a salt and a hash.
    Malformed,
    Memory(u32),
    Iterations(u32),
    Lanes(u32),
    Work {
        memory_kib: u32,
        iterations: u32,
    },
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::Malformed => write!(f, "it is not an argon2 hash deadbolt can read"),
            Unusable::Memory(kib) => write!(
                f,
                "it asks for {kib} KiB of memory, more than {MAX_HASH_MEMORY_KIB}"
            ),
            Unusable::Iterations(t) => {
                write!(f, "it asks for {t} passes, more than {MAX_HASH_ITERATIONS}")
            }
            Unusable::Lanes(p) => {
                write!(f, "it asks for {p} lanes, more than {MAX_HASH_PARALLELISM}")
            }
            Unusable::Work {
                memory_kib,
                iterations,
            } => write!(
                f,
                "it asks for {memory_kib} KiB × {iterations} passes, more than \
                 {MAX_HASH_WORK} KiB-passes in all"
            ),
        }
    }
}

/// What comparing a password with one entry found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Comparison {
    Match,
    NoMatch,
    Unusable(Unusable),
    /// Within the bounds, but the system refused the memory.
    NoMemory,
}

/// Whether `password` matches the PHC string. An entry that cannot be
/// computed matches nothing; [`PasswordHistory::check`] tells these apart.
pub fn verify(password: &[u8], phc: &str) -> bool {
    compare(password, phc, &mut MemoryBlocks::default()) == Comparison::Match
}

/// argon2's working memory, kept between verifications: allocating (and
/// faulting in) 19 MiB afresh costs a third of each run. Zeroed on drop.
/// It only grows with `try_reserve_exact`: memory the system refuses leaves
/// the entry uncomputed instead of aborting the host process.
#[derive(Default)]
struct MemoryBlocks(Vec<Block>);

impl Drop for MemoryBlocks {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(Zeroize::zeroize);
    }
}

impl MemoryBlocks {
    /// At least `blocks` blocks, or `None` when the system refuses them.
    /// Growing moves to a new buffer: the old one, which holds the last
    /// entry's argon2 state, is wiped before it is freed (a `Vec` that
    /// reallocates would free it as it is).
    fn at_least(&mut self, blocks: usize) -> Option<&mut [Block]> {
        if self.0.len() < blocks {
            let mut grown = Vec::new();
            grown.try_reserve_exact(blocks).ok()?;
            grown.resize(blocks, Block::default());
            // The old buffer is wiped by MemoryBlocks' drop.
            drop(std::mem::replace(self, MemoryBlocks(grown)));
        }
        Some(&mut self.0[..blocks])
    }
}

/// The entry's parameters, checked against the bounds before anything
/// costly happens.
fn parse(phc: &str) -> Result<(PasswordHash, Algorithm, Version, Params), Unusable> {
    let hash = PasswordHash::new(phc).map_err(|_| Unusable::Malformed)?;
    let algorithm =
        Algorithm::try_from(hash.algorithm.as_str()).map_err(|_| Unusable::Malformed)?;
    let version = hash
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|_| Unusable::Malformed)?
        .unwrap_or_default();
    let params = Params::try_from(&hash).map_err(|_| Unusable::Malformed)?;
    HashParams {
        memory_kib: params.m_cost(),
        iterations: params.t_cost(),
        parallelism: params.p_cost(),
    }
    .within_bounds()?;
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err(Unusable::Malformed);
    }
    Ok((hash, algorithm, version, params))
}

fn compare(password: &[u8], phc: &str, memory: &mut MemoryBlocks) -> Comparison {
    if password.len() > MAX_PASSWORD_BYTES {
        return Comparison::NoMatch;
    }
    let (hash, algorithm, version, params) = match parse(phc) {
        Ok(parsed) => parsed,
        Err(why) => return Comparison::Unusable(why),
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return Comparison::Unusable(Unusable::Malformed);
    };
    let Some(blocks) = memory.at_least(params.block_count()) else {
        return Comparison::NoMemory;
    };
    let mut computed = Zeroizing::new(vec![0u8; expected.len()]);
    let computed_ok = Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt.as_ref(), &mut computed, blocks)
        .is_ok();
    // Output's comparison is constant-time.
    if computed_ok && Output::new(&computed).is_ok_and(|computed| computed == *expected) {
        Comparison::Match
    } else {
        Comparison::NoMatch
    }
}

/// What the history says about a new password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryVerdict {
    /// It is one of the last `remember` passwords.
    Reused,
    /// It is none of those that could be compared, and every entry within
    /// the bounds was.
    NotReused,
    /// Some entry within the bounds was not compared: it may be this one.
    Unchecked,
}

/// The outcome of [`PasswordHistory::check`], with what the log needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryCheck {
    /// The password matched an entry.
    pub reused: bool,
    /// Entries ignored because deadbolt could never have written them.
    pub ignored: Vec<Unusable>,
    /// Entries within the bounds whose memory the system refused.
    pub out_of_memory: usize,
    /// Entries not compared: the deadline came first, or the worker that
    /// had them died. Meaningless once `reused` is set (the search stops).
    pub not_reached: usize,
    /// The deadline came before every entry was started.
    pub deadline_reached: bool,
}

impl HistoryCheck {
    pub fn verdict(&self) -> HistoryVerdict {
        if self.reused {
            HistoryVerdict::Reused
        } else if self.out_of_memory > 0 || self.not_reached > 0 {
            HistoryVerdict::Unchecked
        } else {
            HistoryVerdict::NotReused
        }
    }

    /// What an administrator should hear about, in one sentence; `None`
    /// when every entry was compared.
    pub fn problems(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(first) = self.ignored.first() {
            parts.push(format!(
                "{} entr{} ignored ({first})",
                self.ignored.len(),
                if self.ignored.len() == 1 { "y" } else { "ies" }
            ));
        }
        if self.reused {
            return (!parts.is_empty()).then(|| parts.join("; "));
        }
        if self.out_of_memory > 0 {
            parts.push(format!(
                "{} not compared (the system refused the memory)",
                self.out_of_memory
            ));
        }
        if self.not_reached > 0 {
            parts.push(format!(
                "{} not compared ({})",
                self.not_reached,
                if self.deadline_reached {
                    "the time allowed ran out"
                } else {
                    "a worker died"
                }
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// What one worker saw.
#[derive(Default)]
struct Tally {
    compared: usize,
    reused: bool,
    ignored: Vec<Unusable>,
    out_of_memory: usize,
    deadline_reached: bool,
}

/// The password history kept in a user's state.
#[derive(Debug)]
pub struct PasswordHistory;

impl PasswordHistory {
    /// The newest `remember` entries, newest first.
    pub fn recent(state: &UserState, remember: u32) -> impl Iterator<Item = &PasswordRecord> {
        state.password_history.iter().rev().take(remember as usize)
    }

    /// Compares `password` with the last `remember` passwords, newest
    /// first. Each entry costs a full argon2 run (about 20 ms at OWASP's
    /// parameters), so the entries are shared among the machine's cores,
    /// four at most. No entry is started once `now()` has reached
    /// `deadline`; the search stops at the first match.
    pub fn check(
        state: &UserState,
        password: &[u8],
        remember: u32,
        deadline: Instant,
        now: &(dyn Fn() -> Instant + Sync),
    ) -> HistoryCheck {
        let entries: Vec<&str> = Self::recent(state, remember)
            .map(|record| record.phc.as_str())
            .collect();
        let next = AtomicUsize::new(0);
        let found = AtomicBool::new(false);
        let work = || {
            let mut tally = Tally::default();
            let mut memory = MemoryBlocks::default();
            while !found.load(Ordering::Relaxed) {
                if now() >= deadline {
                    tally.deadline_reached = true;
                    break;
                }
                let Some(phc) = entries.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    break;
                };
                tally.compared += 1;
                match compare(password, phc, &mut memory) {
                    Comparison::Match => {
                        tally.reused = true;
                        found.store(true, Ordering::Relaxed);
                    }
                    Comparison::NoMatch => {}
                    Comparison::Unusable(why) => tally.ignored.push(why),
                    Comparison::NoMemory => tally.out_of_memory += 1,
                }
            }
            tally
        };
        let workers = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, 4)
            .min(entries.len().max(1));
        let tallies: Vec<Option<Tally>> = std::thread::scope(|scope| {
            // A thread the system will not start leaves its share to the
            // others: the entries are taken from one queue.
            let helpers: Vec<_> = (1..workers)
                .filter_map(|_| std::thread::Builder::new().spawn_scoped(scope, work).ok())
                .collect();
            let mut tallies = vec![Some(work())];
            // A worker that died cannot vouch for what it took: its entries
            // count as not reached.
            tallies.extend(helpers.into_iter().map(|h| h.join().ok()));
            tallies
        });
        let mut check = HistoryCheck::default();
        let mut compared = 0;
        for tally in tallies.into_iter().flatten() {
            compared += tally.compared;
            check.reused |= tally.reused;
            check.ignored.extend(tally.ignored);
            check.out_of_memory += tally.out_of_memory;
            check.deadline_reached |= tally.deadline_reached;
        }
        check.not_reached = entries.len().saturating_sub(compared);
        check
    }

    /// Records a completed change: the hash joins the history, which is
    /// trimmed to `remember` entries (so lowering `remember` frees old
    /// passwords), and the change time is set.
    pub fn record_change(
        state: &mut UserState,
        phc: Option<String>,
        remember: u32,
        now: Timestamp,
    ) {
        if let Some(phc) = phc {
            state.password_history.insert(PasswordRecord {
                changed_at: now,
                phc,
            });
        }
        Self::trim(state, remember);
        state.last_password_change = Some(state.last_password_change.map_or(now, |t| t.max(now)));
    }

    /// Keeps only the newest `remember` entries.
    pub fn trim(state: &mut UserState, remember: u32) {
        while state.password_history.len() > remember as usize {
            state.password_history.pop_first();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn cheap() -> HashParams {
        HashParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    /// A history of `phcs`, the first the oldest.
    fn history(phcs: &[String]) -> UserState {
        let mut state = UserState::default();
        for (i, phc) in phcs.iter().enumerate() {
            state.password_history.insert(PasswordRecord {
                changed_at: Timestamp(i as i64 + 1),
                phc: phc.clone(),
            });
        }
        state
    }

    /// The check on a clock that never moves.
    fn unhurried(state: &UserState, password: &[u8], remember: u32) -> HistoryCheck {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(1);
        PasswordHistory::check(state, password, remember, deadline, &|| start)
    }

    /// A clock that moves one second each time it is read, from `start`.
    fn ticking(start: Instant) -> impl Fn() -> Instant + Sync {
        let reads = AtomicU32::new(0);
        move || start + Duration::from_secs(reads.fetch_add(1, Ordering::SeqCst).into())
    }

    /// An entry with these parameters, a made-up salt and hash.
    fn entry(params: &str) -> String {
        format!("$argon2id$v=19${params}$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA")
    }

    #[test]
    fn history_refuses_reuse_and_trims_when_remember_drops() {
        let mut state = UserState::default();
        for (i, pw) in ["first-pass", "second-pass", "third-pass"]
            .iter()
            .enumerate()
        {
            let phc = cheap().hash(pw.as_bytes()).unwrap();
            assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
            assert!(!phc.contains(pw));
            PasswordHistory::record_change(&mut state, Some(phc), 3, Timestamp(i as i64 + 1));
        }
        let verdict = |pw: &[u8], remember| unhurried(&state, pw, remember).verdict();
        assert_eq!(verdict(b"first-pass", 3), HistoryVerdict::Reused);
        assert_eq!(verdict(b"first-pass", 2), HistoryVerdict::NotReused);
        assert_eq!(verdict(b"never-used", 3), HistoryVerdict::NotReused);
        assert_eq!(unhurried(&state, b"never-used", 3), HistoryCheck::default());
        PasswordHistory::trim(&mut state, 1);
        assert_eq!(state.password_history.len(), 1);
        assert_eq!(
            unhurried(&state, b"third-pass", 3).verdict(),
            HistoryVerdict::Reused
        );
        assert_eq!(
            unhurried(&state, b"second-pass", 3).verdict(),
            HistoryVerdict::NotReused
        );
        PasswordHistory::record_change(&mut state, None, 0, Timestamp(10));
        assert!(state.password_history.is_empty());
        assert_eq!(state.last_password_change, Some(Timestamp(10)));
    }

    #[test]
    fn default_hash_uses_owasp_minimum() {
        let phc = HashParams::default().hash(b"pw").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify(b"pw", &phc));
    }

    #[test]
    fn bounds_at_their_edges() {
        let at = |memory_kib, iterations, parallelism| {
            HashParams {
                memory_kib,
                iterations,
                parallelism,
            }
            .within_bounds()
        };
        assert_eq!(at(MAX_HASH_MEMORY_KIB, 2, 1), Ok(()));
        assert_eq!(
            at(MAX_HASH_MEMORY_KIB + 1, 1, 1),
            Err(Unusable::Memory(MAX_HASH_MEMORY_KIB + 1))
        );
        assert_eq!(
            at(MAX_HASH_MEMORY_KIB, 3, 1),
            Err(Unusable::Work {
                memory_kib: MAX_HASH_MEMORY_KIB,
                iterations: 3
            })
        );
        assert_eq!(at(19_456, MAX_HASH_ITERATIONS, 1), Ok(()));
        assert_eq!(
            at(19_456, MAX_HASH_ITERATIONS + 1, 1),
            Err(Unusable::Iterations(101))
        );
        assert_eq!(at(19_456, 2, MAX_HASH_PARALLELISM), Ok(()));
        assert_eq!(at(19_456, 2, 65), Err(Unusable::Lanes(65)));
        // Memory × passes is computed without overflow.
        assert_eq!(
            at(MAX_HASH_MEMORY_KIB, u32::MAX, 1),
            Err(Unusable::Iterations(u32::MAX))
        );
        assert!(HashParams::default().within_bounds().is_ok());
        // deadbolt writes no entry it would refuse to read.
        let too_slow = HashParams {
            iterations: MAX_HASH_ITERATIONS + 1,
            ..cheap()
        };
        let err = too_slow.hash(b"pw").unwrap_err();
        assert_eq!(
            err.to_string(),
            "argon2id: the parameters are refused: it asks for 101 passes, more than 100"
        );
    }

    #[test]
    fn hostile_entries_are_ignored_without_being_computed() {
        let huge = vec![b'a'; 1 << 20];
        assert!(HashParams::default().hash(&huge).is_err());
        assert!(!verify(&huge, &entry("m=8,t=1,p=1")));
        let former = cheap().hash(b"former").unwrap();
        // Four thousand million passes would run for days; 8 GiB would be
        // allocated.
        for (params, why) in [
            ("m=64,t=4000000000,p=1", Unusable::Iterations(4_000_000_000)),
            ("m=8388608,t=1,p=1", Unusable::Memory(8_388_608)),
            ("m=1048577,t=1,p=1", Unusable::Memory(1_048_577)),
            (
                "m=1048576,t=3,p=1",
                Unusable::Work {
                    memory_kib: 1_048_576,
                    iterations: 3,
                },
            ),
            ("m=4096,t=1,p=65", Unusable::Lanes(65)),
        ] {
            let hostile = entry(params);
            assert!(!verify(b"former", &hostile), "{params}");
            // Newest first: the hostile entry is reached first.
            let state = history(&[former.clone(), hostile]);
            let check = unhurried(&state, b"new-one", 10);
            assert_eq!(check.ignored, vec![why], "{params}");
            assert_eq!(check.verdict(), HistoryVerdict::NotReused, "{params}");
            assert_eq!(
                check.problems(),
                Some(format!("1 entry ignored ({why})")),
                "{params}"
            );
            // The real entry beside it still counts.
            let check = unhurried(&state, b"former", 10);
            assert_eq!(check.verdict(), HistoryVerdict::Reused, "{params}");
        }
        assert_eq!(
            Unusable::Iterations(4_000_000_000).to_string(),
            "it asks for 4000000000 passes, more than 100"
        );
        let right = cheap().hash(b"right").unwrap();
        assert!(verify(b"right", &right));
        // Whatever field is damaged, the entry matches nothing.
        // A shorter hash (16 bytes) is still one argon2 can compute: it is
        // compared, not ignored.
        let salted = &right[..right.rfind('$').unwrap()];
        for (damaged, ignored) in [
            (right.replace("argon2id", "argon2x"), 1),
            (right.replace("v=19", "v=99"), 1),
            (right.replace("t=1", "t=0"), 1),
            ("not a phc string".to_owned(), 1),
            (format!("{salted}$aGFzaGhhc2hoYXNoaGFzaA"), 0),
        ] {
            assert!(!verify(b"right", &damaged), "{damaged}");
            let check = unhurried(&history(std::slice::from_ref(&damaged)), b"right", 10);
            assert_eq!(check.verdict(), HistoryVerdict::NotReused, "{damaged}");
            assert_eq!(check.ignored.len(), ignored, "{damaged}");
        }
    }

    #[test]
    fn nothing_is_started_past_the_deadline() {
        let phcs: Vec<String> = (0..5)
            .map(|i| cheap().hash(format!("password-{i}").as_bytes()).unwrap())
            .collect();
        let state = history(&phcs);
        let start = Instant::now();
        // Already past: nothing is compared, and nothing vouches for the
        // password.
        let check = PasswordHistory::check(&state, b"password-4", 5, start, &|| start);
        assert_eq!(check.verdict(), HistoryVerdict::Unchecked);
        assert_eq!(check.not_reached, 5);
        assert!(check.deadline_reached);
        assert_eq!(
            check.problems().as_deref(),
            Some("5 not compared (the time allowed ran out)")
        );
        // Time for two entries: the two newest are compared (one clock
        // read before each entry, whichever worker takes it), the rest not.
        let deadline = start + Duration::from_secs(2);
        let check = PasswordHistory::check(&state, b"password-0", 5, deadline, &ticking(start));
        assert_eq!(check.verdict(), HistoryVerdict::Unchecked);
        assert_eq!(check.not_reached, 3);
        let check = PasswordHistory::check(&state, b"password-3", 5, deadline, &ticking(start));
        assert_eq!(check.verdict(), HistoryVerdict::Reused);
        assert_eq!(check.problems(), None);
        // An ignored entry does not count against the password; one not
        // reached does.
        let with_hostile = history(&[phcs[0].clone(), entry("m=64,t=4000000000,p=1")]);
        let check = PasswordHistory::check(
            &with_hostile,
            b"fresh",
            5,
            start + Duration::from_secs(1),
            &ticking(start),
        );
        assert_eq!(check.ignored.len(), 1);
        assert_eq!(check.not_reached, 1);
        assert_eq!(check.verdict(), HistoryVerdict::Unchecked);
        assert_eq!(
            check.problems().as_deref(),
            Some(
                "1 entry ignored (it asks for 4000000000 passes, more than 100); \
                 1 not compared (the time allowed ran out)"
            )
        );
    }

    #[test]
    fn working_memory_grows_into_a_new_buffer() {
        let mut memory = MemoryBlocks::default();
        let small = memory.at_least(8).unwrap().as_ptr();
        assert_eq!(memory.at_least(4).unwrap().as_ptr(), small);
        assert_eq!(memory.0.capacity(), 8);
        memory.at_least(64).unwrap();
        assert_eq!(memory.0.capacity(), 64);
    }
}
