//! `deadbolt-syncd --config PATH [--verbose]`: keeps this host and the
//! directory consistent. Runs in the foreground (systemd Type=notify) and
//! stops cleanly on SIGTERM. A configuration it cannot honour is refused
//! at start with one line and exit status 2.
#![forbid(unsafe_code)]

use clap::Parser;
use deadbolt_config::PasswordStore;
use deadbolt_ldap_sync::daemon::{Daemon, Metrics};
use deadbolt_ldap_sync::settings::{BindWith, Settings};
use deadbolt_ldap_sync::{log, metrics, notify, password};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(
    name = "deadbolt-syncd",
    version,
    about = "Keeps this host's deadbolt state and the LDAP directory consistent"
)]
struct Args {
    /// The configuration file.
    #[arg(long, value_name = "PATH", default_value = deadbolt_config::DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    /// Also log to stderr.
    #[arg(long, short)]
    verbose: bool,
    /// Check the configuration and exit: 0 when the daemon could start.
    #[arg(long)]
    check: bool,
}

fn refuse(why: &str) -> ExitCode {
    log::error(&format!("not started: {why}"));
    eprintln!("deadbolt-syncd: {why}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args = Args::parse();
    log::init(args.verbose);
    let config = match deadbolt_config::Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => return refuse(&e.to_string()),
    };
    let owner = nix::unistd::geteuid().as_raw();
    let (settings, bind) = match Settings::resolve(config, owner) {
        Ok(s) => s,
        Err(why) => return refuse(&why),
    };
    if args.check {
        println!("deadbolt-syncd: the configuration can be used");
        return ExitCode::SUCCESS;
    }
    if let BindWith::Gssapi { keytab, .. } = &bind {
        // Before the runtime exists: no other thread reads the environment.
        deadbolt_ldap_sync::conn::use_keytab(keytab);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return refuse(&format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(async move {
        let metrics_counters = Arc::new(Metrics::default());
        if let Some(listen) = settings.metrics_listen {
            if let Err(e) = metrics::serve(listen, metrics_counters.clone()).await {
                return refuse(&format!("metrics_listen {listen}: {e}"));
            }
        }
        if settings.password_store == PasswordStore::Directory {
            let listening = password::Service::new(settings.clone(), bind.clone())
                .and_then(password::Service::listen);
            if let Err(why) = listening {
                return refuse(&format!("the password socket: {why}"));
            }
        }
        let daemon = match Daemon::new(settings, bind, metrics_counters) {
            Ok(d) => d,
            Err(why) => return refuse(&why),
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let signals = tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            let _ = stop_tx.send(true);
        });
        notify::ready();
        log::info("started");
        daemon.run(stop_rx).await;
        notify::stopping();
        signals.abort();
        log::info("stopped");
        ExitCode::SUCCESS
    })
}
