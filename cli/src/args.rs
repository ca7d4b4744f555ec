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
    /// Clear a user's failures, ending a lock: on this host (needs root), or
    /// with a directory on every host, as the person named by --as.
    Reactivate {
        #[arg(value_name = "USER")]
        user: OsString,
        #[command(flatten)]
        identity: Identity,
    },
    /// Refuse every login of a user until he is enabled: on this host (needs
    /// root), or with a directory on every host, as the person named by --as.
    Disable {
        #[arg(value_name = "USER")]
        user: OsString,
        #[command(flatten)]
        identity: Identity,
    },
    /// Undo `disable`, as `disable` does it.
    Enable {
        #[arg(value_name = "USER")]
        user: OsString,
        #[command(flatten)]
        identity: Identity,
    },
    /// Whether deadbolt-syncd is connected, what it still has to push, and
    /// when it last applied a change from the directory.
    SyncStatus {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
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
        #[command(flatten)]
        identity: Identity,
    },
    /// Set a user's password in the directory, as the person named by --as,
    /// and require him to change it at his next login on every host.
    ///
    /// An administrator may set anyone's, a manager his reports' (the
    /// directory's ACL decides); nobody his own. The new password is asked
    /// twice, read from --new-password-file, or made with --generate; it
    /// must meet the password policy, and is never an argument.
    #[command(group(ArgGroup::new("source").args(["generate", "new_password_file"])))]
    SetPassword {
        #[arg(value_name = "USER")]
        user: OsString,
        /// Make a random password that meets the policy. It is shown once,
        /// on the terminal, or on standard output with --print.
        #[arg(long)]
        generate: bool,
        /// Read the new password from FILE (mode 0600, yours): its first
        /// line.
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<PathBuf>,
        /// Print the generated password on standard output.
        #[arg(long, requires = "generate")]
        print: bool,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        identity: Identity,
    },
    /// Send new employees their login information by email: a temporary
    /// password, set in the directory as the person named by --as, that
    /// must be changed at the first login and works only for
    /// `[welcome] temporary_valid_for`.
    ///
    /// Ends with a table of who was sent the kit, who has no email address
    /// and was skipped, and who failed and why. The temporary passwords are
    /// never shown unless --print is given.
    #[command(group(ArgGroup::new("whom").required(true).multiple(true).args(["users", "group", "filter", "missing_mail"])))]
    Welcome {
        /// The employees' login names.
        #[arg(value_name = "USER")]
        users: Vec<OsString>,
        /// Every member of a group: its cn, or its DN.
        #[arg(long, value_name = "GROUP", conflicts_with_all = ["users", "filter"])]
        group: Option<String>,
        /// Every employee an LDAP filter matches, e.g. "(departmentNumber=42)".
        #[arg(long, value_name = "FILTER", conflicts_with = "users")]
        filter: Option<String>,
        /// Only list the employees (of the selection, or all) who have no
        /// email address; change nothing, send nothing.
        #[arg(long)]
        missing_mail: bool,
        /// Say what would be done: look the employees up and check their
        /// addresses and the template; set no password, send no mail.
        #[arg(long)]
        dry_run: bool,
        /// Show each temporary password in the table (or the JSON).
        #[arg(long, conflicts_with_all = ["dry_run", "missing_mail"])]
        print: bool,
        /// JSON instead of the table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        identity: Identity,
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

/// Who acts, when a directory is configured.
#[derive(Debug, Clone, Default, clap::Args)]
#[group(multiple = true)]
pub struct Identity {
    /// Act in the directory as this person (your own DN): the directory's
    /// ACL decides, and every host applies the change.
    #[arg(long = "as", value_name = "DN")]
    pub as_dn: Option<String>,
    /// Read the password of --as from FILE (mode 0600, yours) instead of
    /// asking for it; never give a password as an argument.
    #[arg(long, value_name = "FILE", requires = "as_dn")]
    pub password_file: Option<PathBuf>,
    /// Act in the directory with SASL EXTERNAL over ldapi:// instead of
    /// --as: the directory maps your uid to your own identity.
    #[arg(long, conflicts_with_all = ["as_dn", "password_file"])]
    pub sasl_external: bool,
    /// Act in the directory with your own Kerberos ticket (kinit) instead
    /// of --as: the directory maps your principal to your own identity.
    #[arg(long, conflicts_with_all = ["as_dn", "password_file", "sasl_external"])]
    pub sasl_gssapi: bool,
    /// Change this host's state alone, even with a directory configured
    /// (needs root); other hosts are not told.
    #[arg(long, conflicts_with_all = ["as_dn", "sasl_external", "sasl_gssapi"])]
    pub local: bool,
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
            Command::Expire {
                user, on, never, ..
            } => {
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
        assert!(matches!(args.command, Command::Disable { user, .. } if user == "-rf"));
    }

    #[test]
    fn as_takes_a_dn_and_a_password_only_from_a_file() {
        let args = Args::try_parse_from([
            "deadboltctl",
            "reactivate",
            "alice",
            "--as",
            "uid=boss,ou=people,dc=example,dc=com",
            "--password-file",
            "/root/pw",
        ])
        .unwrap();
        match args.command {
            Command::Reactivate { user, identity } => {
                assert_eq!(user, "alice");
                assert_eq!(
                    identity.as_dn.as_deref(),
                    Some("uid=boss,ou=people,dc=example,dc=com")
                );
                assert_eq!(identity.password_file, Some(PathBuf::from("/root/pw")));
            }
            other => panic!("{other:?}"),
        }
        for argv in [
            &[
                "deadboltctl",
                "reactivate",
                "alice",
                "--password-file",
                "/p",
            ][..],
            &[
                "deadboltctl",
                "reactivate",
                "alice",
                "--as",
                "uid=b",
                "--local",
            ],
            &["deadboltctl", "reactivate", "alice", "--password", "x"],
            &[
                "deadboltctl",
                "reactivate",
                "alice",
                "--sasl-gssapi",
                "--as",
                "uid=b",
            ],
            &[
                "deadboltctl",
                "reactivate",
                "alice",
                "--sasl-gssapi",
                "--sasl-external",
            ],
            &[
                "deadboltctl",
                "disable",
                "alice",
                "--sasl-gssapi",
                "--local",
            ],
            &[
                "deadboltctl",
                "enable",
                "alice",
                "--sasl-gssapi",
                "--password-file",
                "/p",
            ],
        ] {
            assert_eq!(
                Args::try_parse_from(argv).unwrap_err().exit_code(),
                2,
                "{argv:?}"
            );
        }
    }
}
