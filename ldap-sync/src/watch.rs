//! Wakes the daemon when the PAM module notes a changed user, so that a
//! lock reached here is pushed within milliseconds rather than at the next
//! tick. The tick still runs: a missed wake-up only delays, never loses.

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::path::PathBuf;
use tokio::sync::mpsc;

/// Watches `dir` on a thread of its own; each batch of events sends one
/// wake-up (dropped when one is already waiting).
pub fn spawn(dir: PathBuf, wake: mpsc::Sender<()>) {
    let inotify = match Inotify::init(InitFlags::IN_CLOEXEC) {
        Ok(i) => i,
        Err(e) => {
            crate::log::warning(&format!(
                "inotify is not available ({e}): changes are picked up each second"
            ));
            return;
        }
    };
    if let Err(e) = inotify.add_watch(
        &dir,
        AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_ATTRIB,
    ) {
        crate::log::warning(&format!(
            "{} cannot be watched ({e}): changes are picked up each second",
            dir.display()
        ));
        return;
    }
    std::thread::spawn(move || loop {
        match inotify.read_events() {
            Ok(_) => {
                if wake.try_send(()).is_err() && wake.is_closed() {
                    return;
                }
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
    });
}
