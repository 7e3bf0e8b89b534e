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
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--no-first-run"],
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot open a Chromium session: {e}"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
