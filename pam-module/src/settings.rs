//! The configuration a call runs under: the file, parsed once per version
//! of it in each process, checked for who could have written it, with the
//! module arguments on top.

use crate::log;
use deadbolt_config::{split_module_args, Config, DEFAULT_CONFIG_PATH};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Which version of a file a cached parse belongs to.
#[derive(Clone, PartialEq, Eq)]
struct FileVersion {
    path: PathBuf,
    device: u64,
    inode: u64,
    size: u64,
    modified_ns: i128,
}

impl FileVersion {
    fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        Some(FileVersion {
            path: path.to_owned(),
            device: meta.dev(),
            inode: meta.ino(),
            size: meta.size(),
            modified_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        })
    }
}

/// One login calls the module three times or more (preauth, authsucc, the
/// account phase): the file is parsed once for all of them, and parsed again
/// as soon as it changes.
static PARSED: Mutex<Option<(FileVersion, Arc<Config>)>> = Mutex::new(None);

/// Why the configuration file cannot be trusted (someone but root could
/// have written it or a directory above it), for the version of the file
/// [`parsed_config`] last read; `None` when it can.
static UNTRUSTED: Mutex<Option<String>> = Mutex::new(None);

/// Drops the cached configuration, as the module is unloaded.
pub(crate) fn release_cache() {
    let parsed = PARSED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take();
    let untrusted = UNTRUSTED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take();
    drop((parsed, untrusted));
}

/// Whether the configuration file in use could have been written by
/// someone other than root, and why.
pub(crate) fn config_untrusted() -> Option<String> {
    UNTRUSTED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
}

/// The file's configuration, or the compiled defaults when it is unusable,
/// logged loudly (once per version of the file).
fn parsed_config(path: &Path) -> Arc<Config> {
    let version = FileVersion::of(path);
    let mut cache = PARSED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let (Some(version), Some((cached_version, config))) = (&version, cache.as_ref()) {
        if version == cached_version {
            return Arc::clone(config);
        }
    }
    // A file others could have written may name a checker that runs as
    // root: none of it is used, and logins are refused but root's.
    let untrusted = match deadbolt_config::check_trusted(path) {
        Err(why) if path.exists() => {
            log::critical(&format!(
                "{why}; the configuration is not used and only root may log in"
            ));
            Some(why.to_string())
        }
        _ => None,
    };
    *UNTRUSTED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = untrusted.clone();
    let loaded = match untrusted {
        Some(_) => Ok(Config::default()),
        None => Config::load(path),
    };
    let config = Arc::new(match loaded {
        Ok(config) => config,
        Err(err) => {
            let mut defaults = Config::default();
            let kept = std::fs::read_to_string(path)
                .ok()
                .as_deref()
                .and_then(deadbolt_config::salvage_state_dir);
            match kept {
                Some(dir) => {
                    log::error(&format!(
                        "{err}; using the compiled defaults (lockout stays on) with the \
                         state directory the file names, {}",
                        dir.display()
                    ));
                    defaults.state.dir = dir;
                }
                None => log::error(&format!(
                    "{err}; using the compiled defaults (lockout stays on)"
                )),
            }
            defaults
        }
    });
    *cache = version.map(|version| (version, Arc::clone(&config)));
    config
}

/// The configuration for this call: the file (or the compiled defaults when
/// it is unusable, loudly) with the module arguments on top. Shared with the
/// cache unless an argument changes something.
pub(crate) fn load_config(args: &[&str]) -> Arc<Config> {
    let split = split_module_args(args);
    let path = split
        .conf
        .unwrap_or_else(|| Path::new(DEFAULT_CONFIG_PATH).to_owned());
    let mut config = parsed_config(&path);
    for arg in split.rest {
        let (key, value) = match arg.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (arg, None),
        };
        // The mode words are the entry points' business, not settings.
        if value.is_none()
            && matches!(
                key,
                "preauth" | "authfail" | "authsucc" | "commit" | "test_panic"
            )
        {
            continue;
        }
        if let Err(err) = Arc::make_mut(&mut config).apply_override(key, value) {
            log::error(&format!("{err}; ignored"));
        }
    }
    config
}
