//! The command line, as `deadboltctl(8)` and docs/reference.md describe it.

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

/// Account lockout: ask whether a user is locked, until when and why;
/// reactivate, disable and enable accounts; check the configuration.
#[derive(Debug, Parser)]
#[command(name = "deadboltctl", version, about, max_term_width = 100)]
pub struct Args {
    /// The configuration file [default: /etc/deadbolt/deadbolt.toml].
    #[arg(long, global = true, value_name = "PATH", env = "DEADBOLT_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Whether users are locked, until when and why, with their failed logins.
    Status {
        /// One user; without it, every user with state.
        #[arg(value_name = "USER")]
        user: Option<OsString>,
        /// Only users whose logins are refused now.
        #[arg(long)]
        locked: bool,
        /// JSON instead of text: one object for USER, else an array.
        #[arg(long)]
        json: bool,
    },
    /// Clear a user's failures, ending a lock (needs root).
    Reactivate {
        #[arg(value_name = "USER")]
        user: OsString,
    },
    /// Refuse every login of a user until he is enabled (needs root).
    Disable {
        #[arg(value_name = "USER")]
        user: OsString,
    },
    /// Undo `disable` (needs root).
    Enable {
        #[arg(value_name = "USER")]
        user: OsString,
    },
    /// Check a configuration file and summarise the policies it sets.
    CheckConfig {
        /// The file to check [default: the --config file].
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn subcommands_and_flags_parse() {
        let args = Args::try_parse_from([
            "deadboltctl",
            "--config",
            "/tmp/x.toml",
            "status",
            "alice",
            "--locked",
            "--json",
        ])
        .unwrap();
        assert_eq!(args.config, Some(PathBuf::from("/tmp/x.toml")));
        match args.command {
            Command::Status { user, locked, json } => {
                assert_eq!(user, Some(OsString::from("alice")));
                assert!(locked && json);
            }
            other => panic!("{other:?}"),
        }
        // --config is global: it may follow the subcommand too.
        let args =
            Args::try_parse_from(["deadboltctl", "check-config", "--config", "/c", "--json"])
                .unwrap();
        assert_eq!(args.config, Some(PathBuf::from("/c")));
        assert!(matches!(
            args.command,
            Command::CheckConfig {
                file: None,
                json: true
            }
        ));
        for verb in ["reactivate", "disable", "enable"] {
            assert!(Args::try_parse_from(["deadboltctl", verb, "bob"]).is_ok());
            // USER is required.
            let err = Args::try_parse_from(["deadboltctl", verb]).unwrap_err();
            assert_eq!(err.exit_code(), 2);
        }
    }

    #[test]
    fn usage_errors_exit_2() {
        let err = Args::try_parse_from(["deadboltctl", "frobnicate"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let err = Args::try_parse_from(["deadboltctl", "status", "--bogus"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn a_user_after_double_dash_reaches_the_name_check() {
        let args = Args::try_parse_from(["deadboltctl", "disable", "--", "-rf"]).unwrap();
        assert!(matches!(args.command, Command::Disable { user } if user == "-rf"));
    }
}
