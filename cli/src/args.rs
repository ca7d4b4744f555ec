//! The command line, as `deadboltctl(8)` and docs/reference.md describe it.

use clap::{ArgGroup, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

/// Account lockout and password policy: ask whether a user is locked, until
/// when and why; reactivate, disable, enable and expire accounts; require a
/// password change; check the configuration.
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
    /// Whether users are locked, until when and why, with their failed logins
    /// and the state of their password and account expiry.
    Status {
        /// One user; without it, every user with state.
        #[arg(value_name = "USER")]
        user: Option<OsString>,
        /// Only users locked or disabled now (whose `locked` is true).
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
    /// Require a password change at the next login (needs root).
    ///
    /// Marks the password as set by an administrator: the next login is told
    /// to change it, and sshd and login make the user do so. It does not set
    /// a password: set the temporary one first (passwd, the directory), then
    /// run this.
    ResetPassword {
        #[arg(value_name = "USER")]
        user: OsString,
    },
    /// Set or remove the day an account expires (needs root).
    ///
    /// From that day, at 00:00 UTC, every login is refused (root's excepted).
    #[command(group(ArgGroup::new("when").required(true).args(["on", "never"])))]
    Expire {
        #[arg(value_name = "USER")]
        user: OsString,
        /// The day the account expires, YYYY-MM-DD (UTC); a past day expires it
        /// at once.
        #[arg(long, value_name = "YYYY-MM-DD")]
        on: Option<OsString>,
        /// The account never expires: removes the date.
        #[arg(long)]
        never: bool,
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
        for verb in ["reactivate", "disable", "enable", "reset-password"] {
            assert!(Args::try_parse_from(["deadboltctl", verb, "bob"]).is_ok());
            // USER is required.
            let err = Args::try_parse_from(["deadboltctl", verb]).unwrap_err();
            assert_eq!(err.exit_code(), 2);
        }
    }

    #[test]
    fn expire_takes_exactly_one_of_on_and_never() {
        let args =
            Args::try_parse_from(["deadboltctl", "expire", "alice", "--on", "2027-03-31"]).unwrap();
        match args.command {
            Command::Expire { user, on, never } => {
                assert_eq!(user, "alice");
                assert_eq!(on, Some(OsString::from("2027-03-31")));
                assert!(!never);
            }
            other => panic!("{other:?}"),
        }
        let args = Args::try_parse_from(["deadboltctl", "expire", "--never", "alice"]).unwrap();
        assert!(matches!(
            args.command,
            Command::Expire {
                on: None,
                never: true,
                ..
            }
        ));
        // The date is checked later, so that a bad one exits 1 with a reason.
        let args =
            Args::try_parse_from(["deadboltctl", "expire", "alice", "--on", "tomorrow"]).unwrap();
        assert!(matches!(args.command, Command::Expire { on: Some(_), .. }));
        for argv in [
            &["deadboltctl", "expire", "alice"][..],
            &[
                "deadboltctl",
                "expire",
                "alice",
                "--on",
                "2027-03-31",
                "--never",
            ],
            &["deadboltctl", "expire", "alice", "--never", "--never"],
            &["deadboltctl", "expire", "alice", "--on"],
            &["deadboltctl", "expire", "--never"],
            &["deadboltctl", "expire", "--on", "2027-03-31"],
        ] {
            let err = Args::try_parse_from(argv).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{argv:?}");
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
