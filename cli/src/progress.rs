//! A progress bar on stderr while a long listing is made, for whoever
//! watches a terminal: never on stdout, never when stderr is a file or a
//! pipe (scripts, tests), so what the listing prints is the same with or
//! without it.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// Listings of at most this many users take well under a second: no bar.
pub const MIN_USERS: usize = 1000;

/// The bar, when there is one; cleared from the terminal when dropped.
#[derive(Debug)]
pub struct Bar(Option<ProgressBar>);

impl Bar {
    /// A bar for a listing of `users` users: only with more than
    /// [`MIN_USERS`] of them and stderr a terminal.
    pub fn for_listing(users: usize) -> Bar {
        if !wanted(users, std::io::stderr().is_terminal()) {
            return Bar(None);
        }
        let bar = ProgressBar::with_draw_target(Some(users as u64), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("listing {bar:40} {human_pos}/{human_len} users")
        {
            bar.set_style(style);
        }
        Bar(Some(bar))
    }

    /// A bar for a batch of `items` employees (welcome kits), each of which
    /// waits on the directory and a mail server: shown for any batch of more
    /// than one, stderr a terminal.
    pub fn for_batch(items: usize, what: &str) -> Bar {
        if !(std::io::stderr().is_terminal() && items > 1) {
            return Bar(None);
        }
        let bar = ProgressBar::with_draw_target(Some(items as u64), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template(&format!("{what} {{bar:40}} {{human_pos}}/{{human_len}}"))
        {
            bar.set_style(style);
        }
        Bar(Some(bar))
    }

    /// `done` more users are done.
    pub fn advance(&self, done: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(done);
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

fn wanted(users: usize, stderr_is_terminal: bool) -> bool {
    stderr_is_terminal && users > MIN_USERS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_long_listings_on_a_terminal_get_a_bar() {
        assert!(wanted(MIN_USERS + 1, true));
        assert!(!wanted(MIN_USERS, true));
        assert!(!wanted(100_000, false));
        assert!(!wanted(0, false));
    }

    #[test]
    fn without_a_terminal_there_is_no_bar() {
        // The tests' stderr is captured, not a terminal.
        if std::io::stderr().is_terminal() {
            return;
        }
        let bar = Bar::for_listing(100_000);
        assert!(bar.0.is_none());
        bar.advance(10);
    }
}
