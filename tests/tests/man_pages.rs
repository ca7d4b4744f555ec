//! The man pages cannot drift from the commands: every option the argument
//! definitions accept is described in the page's OPTIONS, every option the
//! page names in its SYNOPSIS or OPTIONS exists, and each SYNOPSIS line of
//! deadboltctl names only options its command accepts.
//!
//! The commands' own `--help` is the argument definitions as clap renders
//! them, so the built binaries are asked, each subcommand in turn: adding an
//! option to cli/src/args.rs or ldap-sync/src/main.rs without its page, or
//! removing one the page still shows, fails here with what is missing where.
#![forbid(unsafe_code)]

use deadbolt_tests::{built_path, workspace_dir};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// The options clap lists under "Options:" in `program args... --help`.
fn options_in_help(program: &Path, args: &[&str]) -> BTreeSet<String> {
    let help = help_text(program, args);
    let mut options = BTreeSet::new();
    for line in section_lines(&help, "Options:") {
        // "-v, --verbose  Also log..." or "--as <DN>  Act in...": the option
        // names come first; the description may name other options.
        for token in line.split_whitespace() {
            let token = token.trim_end_matches(',');
            if is_option(token) {
                options.insert(token.to_owned());
            } else if !(token.starts_with('<') || token.starts_with('[')) {
                break;
            }
        }
    }
    assert!(
        !options.is_empty(),
        "no options found in {} {args:?} --help:\n{help}",
        program.display()
    );
    options
}

/// The entries of one section of clap's help ("Options:", "Commands:"):
/// the lines at its first indent, without it; wrapped descriptions, deeper,
/// are left out.
fn section_lines<'a>(help: &'a str, title: &str) -> Vec<&'a str> {
    let mut lines = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        if line.is_empty() {
            // Long help separates entries with blank lines.
            continue;
        }
        if !line.starts_with(' ') {
            inside = line.trim_end() == title;
        } else if inside {
            let entry = line.trim_start();
            // Entries start with a name or an option; a long option without a
            // short one is indented further, past the "-x, " column.
            if line.len() - entry.len() <= 6 && !entry.is_empty() {
                lines.push(entry);
            }
        }
    }
    lines
}

fn help_text(program: &Path, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .arg("--help")
        .output()
        .expect("run the built command");
    assert!(
        out.status.success(),
        "{} {args:?} --help failed: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The subcommands clap lists under "Commands:", but `help`.
fn subcommands(program: &Path) -> Vec<String> {
    section_lines(&help_text(program, &[]), "Commands:")
        .iter()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

fn is_option(token: &str) -> bool {
    let bytes = token.as_bytes();
    match bytes {
        [b'-', b'-', first, rest @ ..] => {
            first.is_ascii_lowercase()
                && rest
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        }
        [b'-', letter] => letter.is_ascii_alphabetic(),
        _ => false,
    }
}

/// A man page, split into its sections (`.SH NAME` to the next `.SH`), with
/// groff's `\-` read as `-`.
struct ManPage {
    file: String,
    sections: BTreeMap<String, String>,
}

impl ManPage {
    fn read(name: &str) -> ManPage {
        let path = workspace_dir().join("packaging/man").join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let mut sections = BTreeMap::new();
        let mut current: Option<(String, String)> = None;
        for line in text.replace("\\-", "-").lines() {
            if let Some(title) = line.strip_prefix(".SH ") {
                if let Some((name, body)) = current.take() {
                    sections.insert(name, body);
                }
                current = Some((title.trim_matches('"').to_owned(), String::new()));
            } else if let Some((_, body)) = current.as_mut() {
                body.push_str(line);
                body.push('\n');
            }
        }
        if let Some((name, body)) = current {
            sections.insert(name, body);
        }
        ManPage {
            file: format!("packaging/man/{name}"),
            sections,
        }
    }

    fn section(&self, name: &str) -> &str {
        self.sections
            .get(name)
            .unwrap_or_else(|| panic!("{} has no {name} section", self.file))
    }

    /// The options OPTIONS describes: those in the tag line after each `.TP`.
    fn described_options(&self) -> BTreeSet<String> {
        let mut options = BTreeSet::new();
        let mut lines = self.section("OPTIONS").lines();
        while let Some(line) = lines.next() {
            if line.trim() == ".TP" {
                if let Some(tag) = lines.next() {
                    options.extend(options_in_text(tag));
                }
            }
        }
        options
    }

    /// SYNOPSIS split at `.br`: one invocation each.
    fn synopsis_lines(&self) -> Vec<String> {
        self.section("SYNOPSIS")
            .split(".br\n")
            .map(str::to_owned)
            .filter(|s| !s.trim().is_empty())
            .collect()
    }
}

/// Every option named in a piece of roff: `--word` and `-x` tokens.
fn options_in_text(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|t| is_option(t))
        .map(str::to_owned)
        .collect()
}

/// The words of a SYNOPSIS invocation that are not roff requests or
/// options: the program, then the command.
fn words_in_text(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        .filter(|t| !t.is_empty() && !t.starts_with('.') && !t.starts_with('-'))
        .map(str::to_owned)
        .collect()
}

fn assert_same(what: &str, in_definitions: &BTreeSet<String>, in_page: &BTreeSet<String>) {
    let undocumented: Vec<_> = in_definitions.difference(in_page).collect();
    let unknown: Vec<_> = in_page.difference(in_definitions).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "{what}:\n  accepted by the command but not described in the page's OPTIONS: \
         {undocumented:?}\n  named in the page but not accepted by the command: {unknown:?}"
    );
}

#[test]
fn deadboltctl_8_describes_every_option_and_no_other() {
    let ctl = built_path("deadboltctl");
    let page = ManPage::read("deadboltctl.8");
    let global = options_in_help(&ctl, &[]);
    let commands = subcommands(&ctl);
    assert!(
        commands.iter().any(|c| c == "status") && commands.iter().any(|c| c == "reactivate"),
        "deadboltctl --help lists no commands as expected: {commands:?}"
    );

    let mut accepted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut every = global.clone();
    for command in &commands {
        let options = options_in_help(&ctl, &[command]);
        every.extend(options.iter().cloned());
        accepted.insert(command.clone(), options);
    }
    assert_same(
        "deadboltctl and packaging/man/deadboltctl.8",
        &every,
        &page.described_options(),
    );

    // Each invocation in SYNOPSIS names a command and only options it takes;
    // every command has one.
    let mut shown = BTreeSet::new();
    for line in page.synopsis_lines() {
        let words = words_in_text(&line);
        let command = words
            .iter()
            .find(|w| accepted.contains_key(*w))
            .unwrap_or_else(|| {
                panic!(
                    "a SYNOPSIS line of {} names no command deadboltctl has \
                     (its words: {words:?}; the commands: {commands:?})",
                    page.file
                )
            });
        let takes = &accepted[command];
        let foreign: Vec<_> = options_in_text(&line)
            .into_iter()
            .filter(|o| !takes.contains(o))
            .collect();
        assert!(
            foreign.is_empty(),
            "{}: the SYNOPSIS of `{command}` shows {foreign:?}, which \
             `deadboltctl {command}` does not accept",
            page.file
        );
        shown.insert(command.clone());
    }
    let missing: Vec<_> = commands.iter().filter(|c| !shown.contains(*c)).collect();
    assert!(
        missing.is_empty(),
        "{}: no SYNOPSIS line for the commands {missing:?}",
        page.file
    );
    // ...and a COMMANDS entry.
    let described = words_in_text(page.section("COMMANDS"));
    let missing: Vec<_> = commands
        .iter()
        .filter(|c| !described.contains(*c))
        .collect();
    assert!(
        missing.is_empty(),
        "{}: COMMANDS does not describe {missing:?}",
        page.file
    );
}

#[test]
fn deadbolt_syncd_8_describes_every_option_and_no_other() {
    let syncd = built_path("deadbolt-syncd");
    let page = ManPage::read("deadbolt-syncd.8");
    let accepted = options_in_help(&syncd, &[]);
    assert_same(
        "deadbolt-syncd and packaging/man/deadbolt-syncd.8",
        &accepted,
        &page.described_options(),
    );
    let in_synopsis = options_in_text(page.section("SYNOPSIS"));
    let unknown: Vec<_> = in_synopsis.difference(&accepted).collect();
    assert!(
        unknown.is_empty(),
        "{}: SYNOPSIS shows {unknown:?}, which deadbolt-syncd does not accept",
        page.file
    );
}

#[test]
fn the_option_parser_reads_what_clap_prints() {
    // The parsing above, against help text of the shape clap prints, so a
    // change of layout fails loudly here rather than passing with nothing.
    let tokens: Vec<_> = "-v, --verbose  also --not-this"
        .split_whitespace()
        .map(|t| t.trim_end_matches(','))
        .take_while(|t| is_option(t))
        .collect();
    assert_eq!(tokens, ["-v", "--verbose"]);
    assert!(is_option("--password-file"));
    assert!(!is_option("--"));
    assert!(!is_option("-rf"));
    assert!(!is_option("--Config"));
    assert_eq!(
        options_in_text(".BR -h \", \" --help"),
        BTreeSet::from(["-h".to_owned(), "--help".to_owned()])
    );
}
