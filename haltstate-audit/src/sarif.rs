//! The report as SARIF 2.1.0, the format code-scanning pages (GitHub's among them) read: uncovered sinks are
//! errors, unknown ones warnings, allowed ones results suppressed in source with their reason; covered sinks are
//! not results.

use serde_json::{Value, json};

use crate::report::{Report, Status};

const UNCOVERED: &str = "haltstate/uncovered-side-effect";
const UNKNOWN: &str = "haltstate/unknown-coverage";

/// The SARIF log of `report`.
pub fn sarif(report: &Report) -> Value {
    let results: Vec<Value> = report
        .findings
        .iter()
        .filter(|f| f.status != Status::Covered)
        .map(|f| {
            let (rule, level) = match f.status {
                Status::Unknown => (UNKNOWN, "warning"),
                _ => (UNCOVERED, "error"),
            };
            let mut result = json!({
                "ruleId": rule,
                "level": level,
                "message": {"text": format!("{} ({}) in {}: {}", f.sink, f.kind.as_str(), f.function, f.why)},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": f.file.to_string_lossy().replace('\\', "/")},
                    "region": {"startLine": f.line, "startColumn": f.column}
                }}]
            });
            if f.status == Status::Allowed {
                result["suppressions"] = json!([{"kind": "inSource", "justification": f.why}]);
            }
            result
        })
        .collect();
    json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": {"driver": {
                "name": "haltstate-audit",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/haltstate/haltstate-rs",
                "rules": [
                    {"id": UNCOVERED, "shortDescription": {"text": "A side effect no HaltState guard covers"}},
                    {"id": UNKNOWN, "shortDescription": {"text": "A side effect whose coverage the audit cannot decide"}}
                ]
            }},
            "results": results
        }]
    })
}
