//! Policy load errors that point at the file, line and column, with the offending line and a caret.

use std::fmt;
use std::path::PathBuf;

/// One problem found in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDiagnostic {
    /// The file (or source name) the problem is in.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when known.
    pub help: Option<String>,
    /// The offending source line.
    pub source_line: String,
}

impl PolicyDiagnostic {
    /// A diagnostic at byte `offset` of `source`.
    pub(crate) fn at(
        file: &str,
        source: &str,
        offset: usize,
        message: String,
        help: Option<String>,
    ) -> Self {
        let offset = offset.min(source.len());
        let line_start = source[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[offset..]
            .find('\n')
            .map_or(source.len(), |i| offset + i);
        Self {
            file: file.to_owned(),
            line: source[..offset].matches('\n').count() + 1,
            column: source[line_start..offset].chars().count() + 1,
            message,
            help,
            source_line: source[line_start..line_end]
                .trim_end_matches('\r')
                .to_owned(),
        }
    }
}

impl fmt::Display for PolicyDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}:{}:{}: error: {}",
            self.file, self.line, self.column, self.message
        )?;
        writeln!(f, "   | {}", self.source_line)?;
        write!(f, "   | {}^", " ".repeat(self.column.saturating_sub(1)))?;
        if let Some(help) = &self.help {
            write!(f, "\n   = help: {help}")?;
        }
        Ok(())
    }
}

/// Why a policy set could not be loaded. The old set stays in force when a reload fails.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but holds errors.
    #[error("{}", render(.0))]
    Invalid(Vec<PolicyDiagnostic>),
    /// A reload found no policies where the live set has some: refused, the live set stays.
    #[error(
        "the new policy set holds no policies (the live one holds {current}); refusing to deny every action by \
         reload: the live set stays. To stop every action, use the kill switch"
    )]
    Empty {
        /// How many policies the live set holds.
        current: usize,
    },
}

impl PolicyError {
    /// The diagnostics, when the file was readable.
    pub fn diagnostics(&self) -> &[PolicyDiagnostic] {
        match self {
            PolicyError::Invalid(diagnostics) => diagnostics,
            PolicyError::Read { .. } | PolicyError::Empty { .. } => &[],
        }
    }
}

fn render(diagnostics: &[PolicyDiagnostic]) -> String {
    let mut out = String::new();
    for (i, d) in diagnostics.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&d.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_line_and_column() {
        let source = "permit(\n  principal,\n  actoin,\n  resource\n);";
        let offset = source.find("actoin").unwrap();
        let d = PolicyDiagnostic::at("p.cedar", source, offset, "unexpected token".into(), None);
        assert_eq!((d.line, d.column), (3, 3));
        assert_eq!(d.source_line, "  actoin,");
        assert!(
            d.to_string()
                .starts_with("p.cedar:3:3: error: unexpected token")
        );
        assert!(d.to_string().contains("\n   |   ^"));
    }
}
