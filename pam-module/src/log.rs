//! Events to syslog (authpriv), where pam_faillock's go. A missing syslog
//! socket (a container) must never fail a login, so errors are dropped.

use syslog::{Facility, Formatter3164, Severity};

fn send(severity: Severity, text: &str) {
    let formatter = Formatter3164 {
        facility: Facility::LOG_AUTHPRIV,
        hostname: None,
        process: "pam_deadbolt".into(),
        pid: std::process::id(),
    };
    if let Ok(mut logger) = syslog::unix(formatter) {
        let _ = match severity {
            Severity::LOG_CRIT => logger.crit(text),
            Severity::LOG_ERR => logger.err(text),
            Severity::LOG_WARNING => logger.warning(text),
            Severity::LOG_NOTICE => logger.notice(text),
            _ => logger.info(text),
        };
    }
}

/// Something an administrator must fix (a bad config, an unusable state
/// directory): logged at LOG_ERR.
pub fn error(text: &str) {
    send(Severity::LOG_ERR, text);
}

/// Something that weakens the lockout without being an error: a failure
/// that could not be counted.
pub fn warning(text: &str) {
    send(Severity::LOG_WARNING, text);
}

/// A security event: a lock, a timed unlock, a refused login.
pub fn notice(text: &str) {
    send(Severity::LOG_NOTICE, text);
}

pub fn info(text: &str) {
    send(Severity::LOG_INFO, text);
}

/// Tampering, or a state deadbolt cannot keep: logged at LOG_CRIT.
pub fn critical(text: &str) {
    send(Severity::LOG_CRIT, text);
}

/// Rhost, tty and service come from the application and, through reverse
/// DNS, from the network: keep them short and free of control characters
/// before they reach the state or the log.
pub fn clean(text: &str) -> String {
    text.chars()
        .take(128)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Where a request came from, as every log line says it.
pub fn origin(service: &str, rhost: &str, tty: &str) -> String {
    format!(
        "service={} rhost={} tty={}",
        clean(service),
        clean(rhost),
        clean(tty)
    )
}
