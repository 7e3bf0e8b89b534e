//! `haltstate-audit.toml`: the project's own side-effecting functions (sinks beside the built-in catalogue) and the
//! names of any extra guard attributes (a project's own wrapper of the guard macros).
//!
//! ```toml
//! [[sink]]
//! path = "crate::billing::issue_refund"   # calls to this function are side effects
//! kind = "payment"                         # shown in the report (default "project")
//!
//! guard_attributes = ["audited_guard"]     # attributes that guard a function, besides HaltState's
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::AuditError;

/// The configuration file's name, looked for at the audited workspace's root.
pub const CONFIG_FILE: &str = "haltstate-audit.toml";

/// What a project adds to the audit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The project's own sinks.
    #[serde(default, rename = "sink")]
    pub sinks: Vec<ProjectSink>,
    /// Attribute names (the last segment) that guard the function they are on.
    #[serde(default)]
    pub guard_attributes: Vec<String>,
}

/// A function of the project whose calls are side effects.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectSink {
    /// Its path: `crate::module::function`, `crate::module::Type::method`, or another crate's `name::path`.
    pub path: String,
    /// What kind of side effect (shown in the report).
    #[serde(default = "project_kind")]
    pub kind: String,
}

fn project_kind() -> String {
    "project".to_owned()
}

impl ProjectSink {
    /// The path's segments without a leading `crate`.
    pub(crate) fn segments(&self) -> Vec<&str> {
        self.path
            .split("::")
            .filter(|segment| *segment != "crate")
            .collect()
    }
}

impl Config {
    /// Reads `file`; a missing file is no configuration, anything unreadable is an error naming the file.
    pub fn read(file: &Path) -> Result<Config, AuditError> {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Config::default());
            }
            Err(source) => {
                return Err(AuditError::Read {
                    path: file.to_owned(),
                    source,
                });
            }
        };
        Config::parse(&text, file)
    }

    /// Parses the text of a configuration file (`origin` names it in errors).
    pub fn parse(text: &str, origin: &Path) -> Result<Config, AuditError> {
        let config: Config = toml::from_str(text).map_err(|error| AuditError::Config {
            path: PathBuf::from(origin),
            message: error.to_string(),
        })?;
        for sink in &config.sinks {
            if sink.segments().is_empty() || sink.path.split("::").any(str::is_empty) {
                return Err(AuditError::Config {
                    path: PathBuf::from(origin),
                    message: format!("sink path {:?} is not a Rust path", sink.path),
                });
            }
        }
        Ok(config)
    }
}
