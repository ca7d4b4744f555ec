//! deadbolt-syncd's library: keeps a host's deadbolt state and the LDAP
//! employee directory consistent (design principles 3, 4 and 8).
//!
//! The only crate with tokio and ldap3. The PAM module never waits on it:
//! the host's state files are the durable record, and this crate pushes
//! what the directory lacks and merges what the directory says, through the
//! core's own merge.
#![forbid(unsafe_code)]

pub mod admin;
pub mod conn;
pub mod contain;
pub mod daemon;
pub mod encoding;
pub mod files;
pub mod log;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod password;
pub mod settings;
pub mod view;
mod watch;
