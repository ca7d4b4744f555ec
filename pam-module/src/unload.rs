//! What the dynamic loader runs as it unloads an object of deadbolt's:
//! both objects (the login module and the password phase's) compile this
//! file, each for its own copy of the cached configuration.
#![allow(unsafe_code)]

/// Run by the dynamic loader when libpam unloads the module (pam_end) and
/// at exit: a process that calls pam_start again loads a fresh copy of the
/// module, so what the old copy's statics hold would be lost for good, in
/// every cycle (found by tests/tests/memcheck.rs).
extern "C" fn release_caches() {
    crate::settings::release_cache();
}

// SAFETY: an entry in `.fini_array` is called once, with no arguments, when
// the object is unloaded, which is the signature of `release_caches`; it
// runs after the last call into the module, so no call is using the cache.
// It cannot unwind: `release_cache` takes a lock that is never held across
// unwinding code and drops plain data.
#[used]
#[link_section = ".fini_array"]
static RELEASE_CACHES: extern "C" fn() = release_caches;
