//! Resource limits a caller set before exec'ing a setuid program (`ulimit -f
//! 0; su alice`) must not stop deadbolt from recording an attempt: a file
//! size limit would kill the process with SIGXFSZ in the middle of a write,
//! a small open-file limit would fail every open, the log's socket included.
//!
//! For the length of one module call, each limit below a floor deadbolt
//! needs is raised to that floor (root may raise the hard limit too), then
//! put back exactly as it was. The rest of the host program runs under the
//! caller's limits. Whatever cannot be raised is left alone: the attempt was
//! recorded before the password check, so a process that dies of it counts
//! as a failure (see `phases::preauth`).

use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};

/// A limit and the least deadbolt needs of it.
const FLOORS: [(Resource, u64); 6] = [
    // A state file is at most 4 MiB.
    (Resource::RLIMIT_FSIZE, 16 * 1024 * 1024),
    // Files, directories, the log socket, the checker's pipes.
    (Resource::RLIMIT_NOFILE, 256),
    // argon2 needs 19 MiB per hash in the password phase.
    (Resource::RLIMIT_AS, RLIM_INFINITY),
    (Resource::RLIMIT_DATA, RLIM_INFINITY),
    (Resource::RLIMIT_STACK, 8 * 1024 * 1024),
    // A password change hashes the history; SIGXCPU must not end it.
    (Resource::RLIMIT_CPU, RLIM_INFINITY),
];

/// The limits as they were before [`raise`], restored when dropped.
#[derive(Debug)]
pub struct Raised {
    saved: Vec<(Resource, u64, u64)>,
}

fn at_least(current: u64, floor: u64) -> bool {
    current == RLIM_INFINITY || (floor != RLIM_INFINITY && current >= floor)
}

/// Raises every limit below its floor, as far as this process may.
pub fn raise() -> Raised {
    let mut saved = Vec::new();
    for (resource, floor) in FLOORS {
        let Ok((soft, hard)) = getrlimit(resource) else {
            continue;
        };
        if at_least(soft, floor) {
            continue;
        }
        let new_hard = if at_least(hard, floor) { hard } else { floor };
        let attempt = setrlimit(resource, floor, new_hard)
            // Not root: as far as the hard limit goes.
            .or_else(|_| setrlimit(resource, hard, hard));
        if attempt.is_ok() {
            saved.push((resource, soft, hard));
        }
    }
    Raised { saved }
}

impl Drop for Raised {
    fn drop(&mut self) {
        for &(resource, soft, hard) in self.saved.iter().rev() {
            let _ = setrlimit(resource, soft, hard);
        }
    }
}

/// The least file size limit under which the module writes anything: a
/// state file is at most 4 MiB. Under a lower one (that this process could
/// not raise), a write would be cut short or end the process with SIGXFSZ.
const WRITE_FLOOR: u64 = 4 * 1024 * 1024 + 4096;

/// Whether the current file size limit lets the module write its files.
pub fn writes_allowed() -> bool {
    getrlimit(Resource::RLIMIT_FSIZE).is_ok_and(|(soft, _)| at_least(soft, WRITE_FLOOR))
}
