//! A real headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`), for the console's
//! tests. Installed with apt-get when missing and this process may (root, on Debian); otherwise the test fails
//! saying how to install them. Never a silent skip.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};

const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "/usr/bin/chromedriver";

fn installed() -> bool {
    Path::new(CHROMIUM).is_file() && Path::new(DRIVER).is_file()
}

fn install() -> Result<(), String> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            crate::apt::ensure(
                "the console tests",
                &["chromium", "chromium-driver"],
                installed,
            )
        })
        .clone()
}

/// A running ChromeDriver (killed when dropped) that opens headless Chromium sessions.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    url: String,
}

impl Browser {
    /// Starts ChromeDriver on a free loopback port and waits until it answers.
    ///
    /// # Panics
    /// When Chromium cannot be installed or the driver does not start.
    pub fn start() -> Browser {
        if let Err(why) = install() {
            panic!("{why}");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let driver = Command::new(DRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {DRIVER}: {e}"));
        let url = format!("http://127.0.0.1:{port}");
        crate::eventually("ChromeDriver to answer", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Browser { driver, url }
    }

    /// A new browser window (its own cookies): headless Chromium, 1280x900.
    ///
    /// # Panics
    /// When the session cannot be created.
    pub async fn window(&self) -> Client {
        self.open(serde_json::json!({})).await
    }

    /// A new window the size of a phone: Chromium's device emulation at 375x812 CSS pixels, pixel ratio 2, touch,
    /// as the approver who opens a notification link sees the console.
    ///
    /// # Panics
    /// When the session cannot be created.
    pub async fn phone(&self) -> Client {
        self.open(serde_json::json!({
            "mobileEmulation": {
                "deviceMetrics": {"width": PHONE_WIDTH, "height": 812, "pixelRatio": 2.0, "touch": true},
                "userAgent": "Mozilla/5.0 (Linux; Android 14) Mobile HaltStateTest"
            }
        }))
        .await
    }

    async fn open(&self, extra: serde_json::Value) -> Client {
        let mut options = serde_json::json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--no-first-run"],
        });
        if let (Some(options), Some(extra)) = (options.as_object_mut(), extra.as_object()) {
            options.extend(extra.clone());
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot open a Chromium session: {e}"))
    }
}

/// The width, in CSS pixels, of [`Browser::phone`]'s windows.
pub const PHONE_WIDTH: u32 = 375;

/// axe-core, pinned: the accessibility engine the console is checked with.
pub const AXE: &str = "axe-core@4.14.1";

/// axe-core's script, installed from the npm registry once under `target/axe-core/`.
///
/// # Panics
/// When npm is missing (and cannot be installed) or the registry cannot be reached.
pub fn axe_source() -> String {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE
        .get_or_init(|| {
            let prefix = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/axe-core");
            let script = prefix.join("node_modules/axe-core/axe.min.js");
            let stamp = prefix.join("installed.txt");
            if !(script.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == AXE)) {
                if let Err(why) = crate::apt::ensure("the accessibility check", &["npm"], || {
                    crate::apt::runs("npm")
                }) {
                    panic!("{why}");
                }
                std::fs::create_dir_all(&prefix)
                    .unwrap_or_else(|e| panic!("{}: {e}", prefix.display()));
                let output = Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund", "--prefix"])
                    .arg(&prefix)
                    .arg(AXE)
                    .output()
                    .unwrap_or_else(|e| {
                        panic!("the accessibility check needs npm to install {AXE}: {e}")
                    });
                assert!(
                    output.status.success(),
                    "npm install {AXE} failed:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                std::fs::write(&stamp, AXE).unwrap_or_else(|e| panic!("{}: {e}", stamp.display()));
            }
            std::fs::read_to_string(&script).unwrap_or_else(|e| panic!("{}: {e}", script.display()))
        })
        .clone()
}

/// The serious and critical accessibility violations axe-core finds on the window's page (WCAG 2.x A and AA
/// rules and best practices), each as `rule: help (targets)`.
///
/// # Panics
/// When the script cannot be run in the page.
pub async fn serious_violations(window: &Client) -> Vec<String> {
    // WebDriver's scripts run outside the page's Content-Security-Policy, which allows no inline script.
    window
        .execute(&format!("{}\nreturn true;", axe_source()), vec![])
        .await
        .unwrap_or_else(|e| panic!("axe-core did not load: {e}"));
    let found = window
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations']})
               .then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => v.id + ': ' + v.help + ' (' + v.nodes.map(n => n.target.join(' ')).join(', ') + ')')))
               .catch(e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await
        .unwrap_or_else(|e| panic!("axe-core did not run: {e}"));
    serde_json::from_value(found).unwrap_or_else(|e| panic!("axe-core's answer: {e}"))
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
