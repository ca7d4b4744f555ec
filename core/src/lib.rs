//! deadbolt's core: the mergeable per-user state, the lock derived from it, and
//! the root-only store that keeps it on disk.
//!
//! Nothing here touches the network, the PAM library or an async runtime, and
//! every decision takes the current time from its caller, so tests move time
//! instead of sleeping.
#![forbid(unsafe_code)]

pub mod handoff;
pub mod identity;
pub mod lockout;
pub mod password;
pub mod state;
pub mod store;
pub mod time;
pub mod username;

pub use lockout::LockReason;
pub use lockout::{LockStatus, LockoutPolicy, UnlockAfter};
pub use state::{Failure, PasswordRecord, Stamped, UserState};
pub use store::{StateStore, StoreError};
pub use time::Timestamp;
pub use username::{UserName, UserNameError};
