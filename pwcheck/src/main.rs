//! `deadbolt-pwcheck`: judges a new password read from standard input and
//! writes the verdict as one line of JSON. Run by pam_deadbolt.so in the
//! password phase; see [`deadbolt_pwcheck::protocol`] for the protocol.
#![forbid(unsafe_code)]

use deadbolt_pwcheck::protocol::{self, Command, EXIT_ACCEPTED, EXIT_REFUSED, EXIT_USAGE, USAGE};
use deadbolt_pwcheck::{check, CheckRequest};
use std::io::{self, Write};
use std::process::ExitCode;

const NAME: &str = "deadbolt-pwcheck";

fn main() -> ExitCode {
    let options = match protocol::parse_args(std::env::args_os().skip(1)) {
        Ok(Command::Check(options)) => options,
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::from(EXIT_ACCEPTED);
        }
        Ok(Command::Version) => {
            println!("{NAME} {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::from(EXIT_ACCEPTED);
        }
        Err(err) => {
            eprintln!("{NAME}: {err}\nTry '{NAME} --help'.");
            return ExitCode::from(EXIT_USAGE);
        }
    };

    let verdict = {
        let password = match protocol::read_password(io::stdin().lock()) {
            Ok(password) => password,
            Err(err) => {
                eprintln!("{NAME}: cannot read the password from standard input: {err}");
                return ExitCode::from(EXIT_USAGE);
            }
        };
        check(&CheckRequest {
            password: &password,
            user: &options.user,
            real_name: &options.real_name,
            min_strength: options.min_strength,
            lists: &options.lists,
        })
        // `password` is zeroed here, before anything is written.
    };

    let line = match serde_json::to_string(&verdict) {
        Ok(line) => line,
        Err(err) => {
            eprintln!("{NAME}: cannot encode the verdict: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut stdout = io::stdout().lock();
    if let Err(err) = writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        eprintln!("{NAME}: cannot write the verdict: {err}");
        return ExitCode::from(EXIT_USAGE);
    }
    ExitCode::from(if verdict.accepted {
        EXIT_ACCEPTED
    } else {
        EXIT_REFUSED
    })
}
