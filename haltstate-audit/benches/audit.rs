//! Time to audit a 50,000-line workspace: two crates (a library and a binary) of 50 modules each, every module
//! 500 lines of functions that call each other, write files, post HTTP requests and hold permits.
//!
//! `cargo bench -p haltstate-audit --bench audit`

// criterion_group! generates an undocumented fn.
#![allow(missing_docs, clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};

/// One module of about 500 lines: 40 functions of 12 lines.
fn module(index: usize) -> String {
    let mut source = String::from(
        "use std::fs;\nuse reqwest::Client;\nuse haltstate::{Action, HaltStateClient};\n\n",
    );
    for f in 0..40 {
        let next = (f + 1) % 40;
        let attribute = if f % 7 == 0 {
            "#[haltstate::guard(action = \"export.write\")]\n"
        } else {
            ""
        };
        let _ = write!(
            source,
            "{attribute}pub(crate) async fn m{index}_f{f}(client: &HaltStateClient, rows: &[u8]) -> Result<(), haltstate::GuardError> {{\n\
             \x20   if rows.len() > {f} {{\n\
             \x20       let _permit = client.guard(Action::new(\"export.write\", \"k\")).await?;\n\
             \x20       fs::write(\"/tmp/m{index}_{f}\", rows).unwrap();\n\
             \x20   }}\n\
             \x20   Client::new().post(\"https://example.com/{f}\");\n\
             \x20   let total: usize = rows.iter().map(|b| usize::from(*b)).sum();\n\
             \x20   if total % 3 == 0 {{\n\
             \x20       Box::pin(m{index}_f{next}(client, rows)).await?;\n\
             \x20   }}\n\
             \x20   Ok(())\n\
             }}\n\n"
        );
    }
    source
}

fn crate_at(dir: &Path, name: &str, library: bool) -> usize {
    let src = dir.join(name).join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        dir.join(name).join("Cargo.toml"),
        format!("[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\n"),
    )
    .unwrap();
    let mut root = String::new();
    let mut lines = 0;
    for m in 0..50 {
        let text = module(m);
        lines += text.lines().count();
        std::fs::write(src.join(format!("m{m}.rs")), text).unwrap();
        let _ = writeln!(root, "mod m{m};");
    }
    if !library {
        root.push_str("fn main() {}\n");
    }
    std::fs::write(src.join(if library { "lib.rs" } else { "main.rs" }), root).unwrap();
    lines
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[workspace]\nmembers = [\"billing\", \"exporter\"]\nresolver = \"3\"\n",
    )
    .unwrap();
    let lines = crate_at(dir.path(), "billing", true) + crate_at(dir.path(), "exporter", false);
    let report = haltstate_audit::audit(dir.path()).unwrap();
    assert!(lines >= 50_000, "{lines} lines");
    assert_eq!(report.lines, lines + 100 + 1);
    println!("{lines} lines, {}", report.summary());
    let mut group = c.benchmark_group("audit");
    group.sample_size(10);
    group.bench_function("50,000-line workspace", |b| {
        b.iter(|| haltstate_audit::audit(dir.path()).unwrap());
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
