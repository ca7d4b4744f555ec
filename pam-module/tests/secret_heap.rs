//! No heap block freed while the rules judge a password still holds it, or
//! the forms derived from it (as text, lower-cased, letters only, as the
//! characters of the edit distance).
//!
//! The allocator of this test binary wraps the system's. While a thread has
//! asked for it, every block that thread frees is searched for the first
//! bytes of each form before it goes back to the system; a reallocation is
//! an allocation, a copy and such a free, whether or not the system could
//! have grown the block in place. Buffers that are wiped before they are
//! freed show nothing; a `String` that grew and freed its former buffer as
//! it was does.
//!
//! The passwords are built at run time from scrambled literals, before the
//! search starts, and live until it stops: the search cannot find the
//! test's own copies. A positive control frees an unwiped copy on purpose
//! and must be caught.
//!
//! A global allocator cannot be written without `unsafe`, so this test of
//! core's rules lives beside the PAM shell, the one crate allowed unsafe
//! code; each block says why it is sound.

use deadbolt_core::password::{ChangeContext, PasswordRules};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use zeroize::Zeroizing;

/// How many bytes of each form are searched for: a growing `String` first
/// frees a buffer of 8 bytes, a growing `Vec<char>` one of 4 characters.
const NEEDLE_BYTES: usize = 8;
const NEEDLE_CHARS: usize = 4;

struct Scanning;

thread_local! {
    /// Only the test's own thread is searched: the harness's threads
    /// allocate too.
    static SEARCHING: Cell<bool> = const { Cell::new(false) };
}

/// The byte strings searched for, set while no search runs.
static NEEDLES: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
/// One search at a time: the needles and the counts are the binary's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
/// Freed blocks that held a needle, and which needle was seen last.
static HITS: AtomicUsize = AtomicUsize::new(0);
static LAST_HIT: AtomicUsize = AtomicUsize::new(usize::MAX);

fn search(block: &[u8]) {
    // Searching is turned off while searching: the lock and the loop do
    // not allocate, but nothing here may recurse into the search.
    SEARCHING.with(|on| on.set(false));
    if let Ok(needles) = NEEDLES.lock() {
        for (i, needle) in needles.iter().enumerate() {
            if !needle.is_empty() && block.windows(needle.len()).any(|w| w == needle.as_slice()) {
                HITS.fetch_add(1, Ordering::SeqCst);
                LAST_HIT.store(i, Ordering::SeqCst);
            }
        }
    }
    SEARCHING.with(|on| on.set(true));
}

fn searching() -> bool {
    SEARCHING.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: every call is passed on to `System` with the caller's layout;
// `realloc` is done as `alloc` + copy + `dealloc`, which `GlobalAlloc`
// allows, and reads the old block only while it is still allocated.
unsafe impl GlobalAlloc for Scanning {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc`, passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if searching() {
            // SAFETY: `ptr` is a live block of `layout.size()` bytes, ours
            // until the `dealloc` below.
            search(unsafe { std::slice::from_raw_parts(ptr, layout.size()) });
        }
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees a valid non-zero `new_size` for
        // `layout.align()`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as `alloc`.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live, distinct, and at least this long.
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: `ptr` is the caller's live block with `layout`.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Scanning = Scanning;

/// The needles for `password`: the first bytes of its raw form, its text,
/// its lower case and its letters, and the first characters of its lower
/// case as `char`s.
fn needles_of(password: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(password).into_owned();
    let lower: String = text.chars().flat_map(char::to_lowercase).collect();
    let letters: String = text
        .chars()
        .filter(|c| c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect();
    let chars: Vec<u8> = lower
        .chars()
        .take(NEEDLE_CHARS)
        .flat_map(|c| u32::from(c).to_ne_bytes())
        .collect();
    let mut needles: Vec<Vec<u8>> = [
        password,
        text.as_bytes(),
        lower.as_bytes(),
        letters.as_bytes(),
    ]
    .iter()
    .map(|form| form[..form.len().min(NEEDLE_BYTES)].to_vec())
    .collect();
    needles.push(chars);
    needles
}

/// What a search saw: how many freed blocks held a needle, and the last
/// needle seen (its form is `% 5`, its password `/ 5`).
struct Seen {
    hits: usize,
    last: usize,
}

/// Runs `f` with the search on, for the needles of `passwords`. The needles
/// are in place (and every copy the test made of the passwords allocated)
/// before the search starts.
fn hits_while(passwords: &[&[u8]], f: impl FnOnce()) -> Seen {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let needles: Vec<Vec<u8>> = passwords.iter().flat_map(|p| needles_of(p)).collect();
    let previous = std::mem::replace(&mut *NEEDLES.lock().unwrap(), needles);
    drop(previous);
    HITS.store(0, Ordering::SeqCst);
    LAST_HIT.store(usize::MAX, Ordering::SeqCst);
    SEARCHING.with(|on| on.set(true));
    f();
    SEARCHING.with(|on| on.set(false));
    Seen {
        hits: HITS.load(Ordering::SeqCst),
        last: LAST_HIT.load(Ordering::SeqCst),
    }
}

/// A password from a literal kept reversed, character by character, so
/// that no copy of it in clear exists before this runs.
fn unscramble(reversed: &str) -> Zeroizing<Vec<u8>> {
    let mut password = Zeroizing::new(Vec::with_capacity(reversed.len()));
    let mut utf8 = [0; 4];
    for c in reversed.chars().rev() {
        password.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
    }
    password
}

/// [`unscramble`] for a password that is not UTF-8: byte by byte.
fn unscramble_bytes(reversed: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut password = Zeroizing::new(Vec::with_capacity(reversed.len()));
    password.extend(reversed.iter().rev());
    password
}

fn judge(new: &[u8], old: &[u8]) {
    let ctx = ChangeContext {
        user: "alice",
        real_name: "Alice Liddell",
        old_password: Some(old),
    };
    // The verdict itself holds no secret; only the search's count matters.
    let verdict = PasswordRules::default().check(new, &ctx);
    drop(verdict);
}

#[test]
fn the_search_catches_an_unwiped_copy() {
    let password = unscramble("!9xQpFwkZ-rovalF-miuqK");
    // A `String` grown one character at a time frees its 8-byte buffer
    // when it needs 16.
    let seen = hits_while(&[&password], || {
        let mut grown = String::new();
        for &b in password.iter() {
            grown.push(char::from(b));
        }
        drop(grown);
    });
    assert!(seen.hits > 0, "a freed, unwiped copy went unseen");
    assert_eq!(seen.last % 5, 1, "the hit was not on the text form");
    // So does a `Vec<char>` of it, in the edit distance's form.
    let seen = hits_while(&[&password], || {
        let mut grown: Vec<char> = Vec::new();
        for &b in password.iter() {
            grown.push(char::from(b).to_ascii_lowercase());
        }
        drop(grown);
    });
    assert!(seen.hits > 0, "a freed Vec<char> went unseen");
    assert_eq!(seen.last % 5, 4, "the hit was not on the char form");
    // The same copy wiped before it is freed is not seen.
    let seen = hits_while(&[&password], || {
        let mut wiped = Zeroizing::new(String::with_capacity(password.len()));
        for &b in password.iter() {
            wiped.push(char::from(b));
        }
        drop(wiped);
    });
    assert_eq!(seen.hits, 0);
}

#[test]
fn judging_a_password_frees_no_copy_of_it() {
    // ASCII; letters whose lower case is longer (İ, Ⱥ) and characters that
    // are not letters; bytes that are not UTF-8.
    let cases = [
        (
            unscramble("!9xQpFwkZ-rovalF-miuqK"),
            unscramble("!8xQpFwkZ-rovalF-miuqK"),
        ),
        (
            unscramble("7ƎwdÄ-ȺzqWVİ-İȺkJx"),
            unscramble("8ƎwdÄ-ȺzqWVİ-İȺkJx"),
        ),
        (
            unscramble_bytes(b"!v\xfeW\xffqZ-jx\xc3Kh-wQ"),
            unscramble_bytes(b"!v\xfeW\xffqZ-jx\xc3Kh-wR"),
        ),
    ];
    assert!(std::str::from_utf8(&cases[1].0).is_ok());
    assert!(std::str::from_utf8(&cases[2].0).is_err());
    let mut found = Vec::new();
    for (case, (new, old)) in cases.iter().enumerate() {
        let seen = hits_while(&[new, old], || judge(new, old));
        if seen.hits > 0 {
            found.push(format!(
                "case {case}: {} freed block(s) (the last: form {} of password {})",
                seen.hits,
                seen.last % 5,
                seen.last / 5
            ));
        }
    }
    assert!(found.is_empty(), "freed copies of a password: {found:#?}");
}
