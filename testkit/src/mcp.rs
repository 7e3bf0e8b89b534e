//! Real MCP servers from the npm registry for the MCP tests: Node 22 (the npm package `node`) and the reference
//! servers, pinned, installed once under `target/mcp-node/` and reused. A machine without npm, or a registry that
//! cannot be reached, fails the test that asked, loudly.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// The packages, pinned: what the MCP tests are checked against.
pub const PACKAGES: [&str; 5] = [
    "node@22.23.3",
    "@modelcontextprotocol/server-filesystem@2026.8.31",
    "@modelcontextprotocol/server-everything@2026.8.31",
    "@modelcontextprotocol/server-memory@2026.8.31",
    "@modelcontextprotocol/conformance@0.1.16",
];

/// Where they are installed.
pub fn prefix() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/mcp-node")
}

/// The Node 22 binary the servers run on.
pub fn node() -> PathBuf {
    prefix().join("node_modules/.bin/node")
}

/// The command line of `@modelcontextprotocol/server-filesystem` serving `root`, on Node 22.
pub fn filesystem_server(root: &std::path::Path) -> Vec<String> {
    let script =
        prefix().join("node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");
    vec![
        node().display().to_string(),
        script.display().to_string(),
        root.display().to_string(),
    ]
}

/// The command line of `@modelcontextprotocol/server-everything` on stdio, on Node 22.
pub fn everything_server() -> Vec<String> {
    let script =
        prefix().join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    vec![
        node().display().to_string(),
        script.display().to_string(),
        "stdio".to_owned(),
    ]
}

/// The command line of `@modelcontextprotocol/server-memory` (a knowledge graph kept in `file`), on Node 22.
pub fn memory_server() -> Vec<String> {
    let script = prefix().join("node_modules/@modelcontextprotocol/server-memory/dist/index.js");
    vec![node().display().to_string(), script.display().to_string()]
}

/// The server half of `@modelcontextprotocol/conformance` against `url`, its results written under `out`: the
/// status of each check, keyed `scenario/check`.
pub fn conformance(url: &str, out: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    let script = prefix().join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    let ran = Command::new(node())
        .arg(&script)
        .args(["server", "--url", url, "--output-dir"])
        .arg(out)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    let mut checks = std::collections::BTreeMap::new();
    let scenarios = std::fs::read_dir(out).unwrap_or_else(|e| {
        panic!(
            "the conformance suite wrote no results ({e}):\n{}\n{}",
            String::from_utf8_lossy(&ran.stdout),
            String::from_utf8_lossy(&ran.stderr)
        )
    });
    for scenario in scenarios.flatten() {
        let dir = scenario.file_name().to_string_lossy().into_owned();
        // `<scenario>-<YYYY-MM-DDTHH-MM-SS-mmmZ>`.
        let name = dir
            .get(..dir.len().saturating_sub(25))
            .unwrap_or(&dir)
            .to_owned();
        let text = std::fs::read_to_string(scenario.path().join("checks.json"))
            .unwrap_or_else(|e| panic!("{dir}/checks.json: {e}"));
        let found: Vec<serde_json::Value> =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{dir}/checks.json: {e}"));
        for check in found {
            checks.insert(
                format!("{name}/{}", check["id"].as_str().unwrap_or("?")),
                check["status"].as_str().unwrap_or("?").to_owned(),
            );
        }
    }
    assert!(!checks.is_empty(), "the conformance suite ran no checks");
    checks
}

/// `@modelcontextprotocol/server-everything` on streamable HTTP, on a free loopback port: the process and its
/// `http://127.0.0.1:PORT/mcp`. It is killed when the returned guard drops.
pub fn everything_over_http() -> (KillOnDrop, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"));
    let mut words = everything_server();
    words.pop();
    let child = Command::new(&words[0])
        .args(&words[1..])
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", words[0]));
    let guard = KillOnDrop(child);
    crate::eventually(
        "server-everything listening",
        std::time::Duration::from_secs(20),
        || std::net::TcpStream::connect(("127.0.0.1", port)).ok(),
    );
    (guard, format!("http://127.0.0.1:{port}/mcp"))
}

/// A child process killed (and reaped) when dropped.
#[derive(Debug)]
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

static INSTALL: Mutex<()> = Mutex::new(());

/// Installs the pinned packages unless the installed ones are those.
///
/// # Panics
/// When npm is missing or fails: the MCP tests cannot run without the real servers.
pub fn install() {
    let _once = INSTALL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let prefix = prefix();
    let stamp = prefix.join("installed.txt");
    let wanted = PACKAGES.join("\n");
    if std::fs::read_to_string(&stamp).is_ok_and(|found| found == wanted) && node().exists() {
        return;
    }
    std::fs::create_dir_all(&prefix).unwrap_or_else(|e| panic!("{}: {e}", prefix.display()));
    if let Err(why) = crate::apt::ensure("the MCP tests", &["npm"], || crate::apt::runs("npm")) {
        panic!("{why}");
    }
    let output = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&prefix)
        .args(PACKAGES)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "the MCP tests need npm (Debian: apt-get install npm) to install {PACKAGES:?}: {e}"
            )
        });
    assert!(
        output.status.success(),
        "npm install {PACKAGES:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let version = Command::new(node())
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", node().display()));
    assert!(
        String::from_utf8_lossy(&version.stdout).starts_with("v22."),
        "the npm package `node` did not give Node 22: {version:?}"
    );
    std::fs::write(&stamp, wanted).unwrap_or_else(|e| panic!("{}: {e}", stamp.display()));
}

/// The official Python MCP client, pinned: the agent of the interoperability tests.
pub const PYTHON_CLIENT: &str = "mcp==2.3.0";

/// The official Python MCP client installed in its venv (`target/mcp-python/venv`, made once): its python.
///
/// # Panics
/// When Python 3, its venv or pip is missing, or PyPI unreachable: the interoperability tests need the client.
pub fn python_client() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/mcp-python/venv");
    crate::python::venv_with(&venv, PYTHON_CLIENT, "mcp")
}
