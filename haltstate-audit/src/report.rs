//! The audit's answer: each sink with its place, its function, its status and why, and the summary line; as a
//! table for people, JSON for tools, SARIF for code-scanning pages.

use std::path::PathBuf;

use serde::Serialize;

use crate::catalogue::SinkKind;

/// Whether a guard covers a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A guard covers it.
    Covered,
    /// Nothing covers it: it runs without authority.
    Uncovered,
    /// The audit cannot tell (public, called through a trait, used as a value, too deep).
    Unknown,
    /// Deliberately unguarded (`// haltstate: allow(reason)`).
    Allowed,
}

impl Status {
    /// Its name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Covered => "covered",
            Status::Uncovered => "uncovered",
            Status::Unknown => "unknown",
            Status::Allowed => "allowed",
        }
    }
}

/// One sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The file, relative to the audited root when it is under it.
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// 1-based.
    pub column: usize,
    /// What kind of side effect.
    pub kind: SinkKind,
    /// What is called (`std::fs::write`, `.post`, a project sink's path).
    pub sink: String,
    /// The function it is in (`crate::module::Type::name`), or `-` outside any.
    pub function: String,
    /// Covered or not.
    pub status: Status,
    /// Why (the guard, the caller that is not, the reason of an allow comment).
    pub why: String,
}

/// Everything an audit found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every sink, by file and line.
    pub findings: Vec<Finding>,
    /// Source files read.
    pub files: usize,
    /// Their lines.
    pub lines: usize,
}

impl Report {
    /// How many sinks have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.findings.iter().filter(|f| f.status == status).count()
    }

    /// `N sinks: C covered, U uncovered, K unknown, A allowed`.
    pub fn summary(&self) -> String {
        format!(
            "{} sinks: {} covered, {} uncovered, {} unknown, {} allowed",
            self.findings.len(),
            self.count(Status::Covered),
            self.count(Status::Uncovered),
            self.count(Status::Unknown),
            self.count(Status::Allowed)
        )
    }

    /// A table for a terminal: place, sink, function, status, why; then the summary.
    pub fn table(&self) -> String {
        let rows: Vec<[String; 5]> = self
            .findings
            .iter()
            .map(|f| {
                [
                    format!("{}:{}", f.file.display(), f.line),
                    format!("{} ({})", f.sink, f.kind.as_str()),
                    f.function.clone(),
                    f.status.as_str().to_owned(),
                    f.why.clone(),
                ]
            })
            .collect();
        let header = ["PLACE", "SINK", "FUNCTION", "STATUS", "WHY"].map(str::to_owned);
        let mut widths = [0usize; 4];
        for row in rows.iter().chain(std::iter::once(&header)) {
            for (i, width) in widths.iter_mut().enumerate() {
                *width = (*width).max(row[i].chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&rows) {
            for (i, width) in widths.iter().enumerate() {
                out.push_str(&format!("{:<width$}  ", row[i]));
            }
            out.push_str(&row[4]);
            out.push('\n');
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    /// The report as JSON: `{"summary": .., "files": .., "lines": .., "findings": [..]}`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "summary": {
                "sinks": self.findings.len(),
                "covered": self.count(Status::Covered),
                "uncovered": self.count(Status::Uncovered),
                "unknown": self.count(Status::Unknown),
                "allowed": self.count(Status::Allowed),
            },
            "files": self.files,
            "lines": self.lines,
            "findings": self.findings,
        })
    }
}
