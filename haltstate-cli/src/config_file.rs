//! Where `serve`'s settings come from: its flags, `HALTSTATE_*` variables and a `--config` TOML file, in that
//! order of precedence, and `--print-config`'s view of the result.
//!
//! clap reads flags and variables; the file is read here and its settings handed to clap as flags, for the
//! settings no flag and no variable gave. So every value, wherever it came from, goes through the same parser
//! and the same checks, and a typo in the file is refused as a flag typo would be, with the file's line.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgMatches, Command};
use toml::Spanned;

/// Flags a file may not set: they say where the file is, or what to do instead of serving.
const NOT_IN_FILE: &[&str] = &["config", "print-config", "help", "version"];

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// It could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// It is not TOML, or a key or value is not one `serve` takes.
    #[error("{path}:{line}: {why}")]
    Invalid {
        /// The file.
        path: String,
        /// The line the problem is on (1-based).
        line: usize,
        /// What is wrong.
        why: String,
    },
}

/// Gives each `serve` flag its `HALTSTATE_<FLAG>` variable (those without one of their own), values hidden from
/// `--help`: a variable may hold a secret.
pub fn with_variables(command: Command) -> Command {
    command.mut_subcommand("serve", |serve| {
        serve.mut_args(|arg| {
            let id = arg.get_id().as_str().to_owned();
            // `--config` may come from HALTSTATE_CONFIG (a container's environment); what to do instead of
            // serving may not.
            let long = arg.get_long().unwrap_or("");
            if long.is_empty() || ["print-config", "help", "version"].contains(&long) {
                return arg;
            }
            let arg = if arg.get_env().is_none() {
                arg.env(format!("HALTSTATE_{}", id.to_uppercase()))
            } else {
                arg
            };
            arg.hide_env_values(true)
        })
    })
}

/// `command` with nothing of `serve` required: to find the `--config` file before the flags it may supply are
/// checked for.
pub fn relaxed(command: &Command) -> Command {
    command.clone().mut_subcommand("serve", |serve| {
        serve.mut_args(|arg| {
            arg.required(false)
                .requires(clap::builder::Resettable::Reset)
        })
    })
}

/// The settings of `file` that neither a flag nor a variable gave, as flags to parse again: `--name=value`.
///
/// `serve` is the `serve` subcommand's definition, `matches` what flags and variables gave.
pub fn file_flags(
    serve: &Command,
    matches: &ArgMatches,
    file: &Path,
) -> Result<(Vec<OsString>, BTreeSet<String>), ConfigError> {
    let path = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let invalid = |offset: usize, why: String| ConfigError::Invalid {
        path: path.clone(),
        line: line_of(offset),
        why,
    };
    // With spans, for each key's line.
    let spanned: std::collections::BTreeMap<Spanned<String>, Spanned<toml::Value>> =
        toml::from_str(&text).map_err(|e: toml::de::Error| {
            invalid(
                e.span().map_or(0, |span| span.start),
                e.message().to_owned(),
            )
        })?;
    let known: Vec<&str> = serve
        .get_arguments()
        .filter_map(|arg| arg.get_long())
        .filter(|long| !NOT_IN_FILE.contains(long))
        .collect();
    let mut flags = Vec::new();
    let mut from_file = BTreeSet::new();
    for (key, value) in &spanned {
        let name = key.get_ref().as_str();
        let Some(arg) = serve
            .get_arguments()
            .find(|arg| arg.get_long() == Some(name) && !NOT_IN_FILE.contains(&name))
        else {
            return Err(invalid(
                key.span().start,
                format!(
                    "unknown key `{name}`: the keys are serve's flags without their dashes ({})",
                    known.join(", ")
                ),
            ));
        };
        let id = arg.get_id().as_str();
        // A flag or a variable gave it: they win.
        if matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let takes_value = arg.get_action().takes_values();
        let at = value.span().start;
        let text = match value.get_ref() {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(x) => x.to_string(),
            toml::Value::Boolean(b) if !takes_value => {
                if *b {
                    flags.push(OsString::from(format!("--{name}")));
                    from_file.insert(id.to_owned());
                }
                continue;
            }
            other => {
                return Err(invalid(
                    at,
                    format!(
                        "`{name}`: expected a string or a number, found a {}",
                        other.type_str()
                    ),
                ));
            }
        };
        if !takes_value {
            return Err(invalid(
                at,
                format!("`{name}` is a switch: write `{name} = true`"),
            ));
        }
        flags.push(OsString::from(format!("--{name}={text}")));
        from_file.insert(id.to_owned());
    }
    Ok((flags, from_file))
}

/// The effective configuration, as a `--config` file would say it: every setting, its source beside it, the
/// database URL's password and any URL's credentials masked.
pub fn print(serve: &Command, matches: &ArgMatches, from_file: &BTreeSet<String>) -> String {
    let mut out = String::from("# haltstate serve: the effective configuration\n");
    for arg in serve.get_arguments() {
        let (id, Some(long)) = (arg.get_id().as_str(), arg.get_long()) else {
            continue;
        };
        if NOT_IN_FILE.contains(&long) {
            continue;
        }
        let source = if from_file.contains(id) {
            "file"
        } else {
            match matches.value_source(id) {
                Some(ValueSource::CommandLine) => "flag",
                Some(ValueSource::EnvVariable) => "environment",
                Some(ValueSource::DefaultValue) => "default",
                _ => {
                    out.push_str(&format!("# {long} =  (not set)\n"));
                    continue;
                }
            }
        };
        let raw: Vec<String> = matches
            .get_raw(id)
            .map(|values| values.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let takes_value = arg.get_action().takes_values();
        let value = if !takes_value {
            // A switch: set, or not.
            matches.get_flag(id).to_string()
        } else {
            let value = raw.join(",");
            let value = if id == "db" {
                haltstate_authority::Database::parse(&value).to_string()
            } else {
                mask_credentials(&value)
            };
            if value.parse::<i64>().is_ok() {
                value
            } else {
                toml::Value::String(value).to_string()
            }
        };
        out.push_str(&format!("{long} = {value}  # {source}\n"));
    }
    out
}

/// `scheme://user:password@host...` with the password masked (a witness or webhook URL may carry one).
fn mask_credentials(value: &str) -> String {
    // A secrets key given as its text (from the environment).
    if value.trim_start().starts_with("hssk_") {
        return "hssk_***".to_owned();
    }
    let Some(start) = value.find("://").map(|i| i + 3) else {
        return value.to_owned();
    };
    let authority_end = value[start..]
        .find(['/', '?', '#'])
        .map_or(value.len(), |i| start + i);
    let Some(at) = value[start..authority_end].rfind('@').map(|i| start + i) else {
        return value.to_owned();
    };
    match value[start..at].find(':') {
        Some(colon) => format!("{}***{}", &value[..start + colon + 1], &value[at..]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::mask_credentials;

    #[test]
    fn url_passwords_are_masked_and_the_rest_kept() {
        assert_eq!(
            mask_credentials("https://w:s3cret@witness.example/add?x=1"),
            "https://w:***@witness.example/add?x=1"
        );
        assert_eq!(
            mask_credentials("https://witness.example/a@b"),
            "https://witness.example/a@b"
        );
        assert_eq!(mask_credentials("127.0.0.1:8787"), "127.0.0.1:8787");
    }
}
