//! Times whole PAM logins (pam_start, pam_authenticate, pam_acct_mgmt,
//! pam_end) for several services in one process, rounds interleaved, so that
//! the cost a module adds is the difference against a baseline stack measured
//! under the same conditions.
//!
//! Usage: `pam-login-bench ROUNDS USER PASSWORD SERVICE...`; prints one JSON
//! object per service with the median and mean microseconds per login.
//! libpam loads every module at pam_start and unloads it at pam_end, so each
//! login pays for loading the module, as each sshd connection does.
#![deny(unsafe_code)]

mod pam;

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: pam-login-bench ROUNDS USER PASSWORD SERVICE...");
        std::process::exit(2);
    }
    let rounds: usize = match args[1].parse() {
        Ok(n) if n > 0 => n,
        _ => {
            eprintln!("pam-login-bench: ROUNDS must be a positive integer");
            std::process::exit(2);
        }
    };
    let (user, password, services) = (&args[2], &args[3], &args[4..]);
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); services.len()];
    // One unmeasured login per service warms the page cache and NSS.
    for service in services {
        if let Err(err) = pam::login(service, user, password) {
            eprintln!("pam-login-bench: {service}: the login failed: {err}");
            std::process::exit(1);
        }
    }
    for _ in 0..rounds {
        for (i, service) in services.iter().enumerate() {
            let started = Instant::now();
            let result = pam::login(service, user, password);
            let micros = started.elapsed().as_secs_f64() * 1e6;
            if let Err(err) = result {
                eprintln!("pam-login-bench: {service}: the login failed: {err}");
                std::process::exit(1);
            }
            samples[i].push(micros);
        }
    }
    for (service, mut times) in services.iter().zip(samples) {
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        let p90 = times[times.len() * 9 / 10];
        println!(
            "{{\"service\":\"{service}\",\"rounds\":{rounds},\"median_us\":{median:.1},\"mean_us\":{mean:.1},\"p90_us\":{p90:.1}}}"
        );
    }
}
