//! What of deadboltctl is a library: the welcome message's template, so
//! that the fuzz targets (fuzz/) reach the parser the command uses.
#![forbid(unsafe_code)]

pub mod template;

/// Text made fit for one line of a terminal or a log: line breaks become
/// spaces, other control characters `?`.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last_space = false;
    for c in text.trim().chars() {
        let c = match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() => '?',
            c => c,
        };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        out.push(c);
    }
    out
}
