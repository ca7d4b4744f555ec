//! The daemon's log: syslog (daemon facility), and stderr too with
//! `--verbose`. Values read from the directory are never logged, only the
//! entry and attribute they came from.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use syslog::{Facility, Formatter3164, Logger, LoggerBackend, Severity};

static VERBOSE: AtomicBool = AtomicBool::new(false);
static SYSLOG: Mutex<Option<Logger<LoggerBackend, Formatter3164>>> = Mutex::new(None);

/// Opens syslog once; `verbose` copies every line to stderr as well.
pub fn init(verbose: bool) {
    VERBOSE.store(verbose, Ordering::Relaxed);
    let formatter = Formatter3164 {
        facility: Facility::LOG_DAEMON,
        hostname: None,
        process: "deadbolt-syncd".into(),
        pid: std::process::id(),
    };
    if let Ok(logger) = syslog::unix(formatter) {
        if let Ok(mut slot) = SYSLOG.lock() {
            *slot = Some(logger);
        }
    }
}

fn send(severity: Severity, text: &str) {
    if VERBOSE.load(Ordering::Relaxed) {
        let level = match severity {
            Severity::LOG_ERR | Severity::LOG_CRIT => "error",
            Severity::LOG_WARNING => "warning",
            Severity::LOG_NOTICE => "notice",
            _ => "info",
        };
        eprintln!("deadbolt-syncd: {level}: {text}");
    }
    if let Ok(mut slot) = SYSLOG.lock() {
        if let Some(logger) = slot.as_mut() {
            let _ = match severity {
                Severity::LOG_ERR => logger.err(text),
                Severity::LOG_WARNING => logger.warning(text),
                Severity::LOG_NOTICE => logger.notice(text),
                _ => logger.info(text),
            };
        }
    }
}

pub fn error(text: &str) {
    send(Severity::LOG_ERR, text);
}

pub fn warning(text: &str) {
    send(Severity::LOG_WARNING, text);
}

/// Locks, reactivations and connection changes.
pub fn notice(text: &str) {
    send(Severity::LOG_NOTICE, text);
}

pub fn info(text: &str) {
    send(Severity::LOG_INFO, text);
}
