//! Which configuration the command reads. Unlike the PAM module, which must
//! let logins go on, the command never falls back silently: an invalid file
//! is an error. Only a missing file at the default path means the compiled
//! defaults, as it does for the module.

use crate::error::CliError;
use deadbolt_config::{Config, DEFAULT_CONFIG_PATH};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Settings {
    pub config: Config,
    pub path: PathBuf,
    /// No file at the default path: the compiled defaults apply.
    pub defaults_used: bool,
}

/// Loads `explicit` (from `--config`, `DEADBOLT_CONFIG` or `check-config
/// FILE`), or the default file. An explicit file must exist; the default
/// one may be missing.
pub fn load(explicit: Option<&Path>) -> Result<Settings, CliError> {
    let (path, required) = match explicit {
        Some(path) if !path.as_os_str().is_empty() => (path.to_owned(), true),
        _ => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
    };
    // Not following a link: a dangling link is a broken file, not a
    // missing one.
    if let Err(err) = std::fs::symlink_metadata(&path) {
        if err.kind() == ErrorKind::NotFound {
            if required {
                return Err(CliError::ConfigMissing(path));
            }
            return Ok(Settings {
                config: Config::default(),
                path,
                defaults_used: true,
            });
        }
    }
    let config = Config::load(&path).map_err(|e| CliError::Config(e.to_string()))?;
    Ok(Settings {
        config,
        path,
        defaults_used: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn an_explicit_file_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.toml");
        let err = load(Some(&path)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: the configuration file does not exist", path.display())
        );
    }

    #[test]
    fn an_invalid_file_is_an_error_with_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        fs::write(&path, "[lockout]\ndeny = \"three\"\n").unwrap();
        let err = load(Some(&path)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("{}:2:", path.display())),
            "{text}"
        );
        assert!(!text.contains('\n'));
    }

    #[test]
    fn a_valid_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("good.toml");
        fs::write(&path, "[lockout]\ndeny = 7\n").unwrap();
        let settings = load(Some(&path)).unwrap();
        assert!(!settings.defaults_used);
        assert_eq!(settings.config.lockout.deny, 7);
        assert_eq!(settings.path, path);
    }

    #[test]
    fn a_dangling_link_is_not_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("link.toml");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &path).unwrap();
        let err = load(Some(&path)).unwrap_err();
        assert!(matches!(err, CliError::Config(_)), "{err}");
    }

    #[test]
    fn an_empty_path_means_the_default() {
        let settings = load(Some(Path::new("")));
        // Whatever this machine has at the default path, it was the one read.
        if let Ok(settings) = settings {
            assert_eq!(settings.path, Path::new(DEFAULT_CONFIG_PATH));
        }
    }
}
