//! A headless Chromium driven over WebDriver: Debian's `chromedriver` on a
//! free loopback port, one browser session on it, both stopped at the end.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The chromedriver process and the session's client.
pub struct Browser {
    pub client: Client,
    /// Dropped last: a failing test still stops its chromedriver.
    _driver: DriverGuard,
}

impl Browser {
    pub async fn start() -> Browser {
        let port = switchboard_tests::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (make browser installs Debian's chromium-driver)");
        let guard = DriverGuard {
            child: Some(driver),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut options = json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,800", "--hide-scrollbars", "--lang=en-US"],
        });
        if std::path::Path::new("/usr/bin/chromium").exists() {
            options["binary"] = json!("/usr/bin/chromium");
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        caps.insert("unhandledPromptBehavior".into(), json!("accept"));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        Browser {
            client,
            _driver: guard,
        }
    }

    /// Closes the session, then stops chromedriver and anything it started.
    pub async fn stop(self) {
        let Browser { client, _driver } = self;
        let _ = client.close().await;
        drop(_driver);
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Waits (up to 15 s) for an element matching `css`.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    /// Clicks the element `css` once it is there.
    pub async fn click(&self, css: &str) {
        self.wait_for(css).await.click().await.unwrap();
    }

    /// Picks the option `value` of the select `css` once it is there.
    pub async fn select(&self, css: &str, value: &str) {
        self.wait_for(css)
            .await
            .select_by_value(value)
            .await
            .unwrap();
    }

    /// Replaces the text of the input `css` with `text`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let input = self.wait_for(css).await;
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    /// Waits (up to 15 s) until `script` (a function body) returns true.
    pub async fn wait_until(&self, what: &str, script: &str, args: Vec<Value>) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let value = self
                .client
                .execute(script, args.clone())
                .await
                .expect("script");
            if value == Value::Bool(true) {
                return;
            }
            assert!(Instant::now() < deadline, "not within 15 s: {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.expect("script")
    }

    /// Saves a screenshot when `SWITCHBOARD_SCREENSHOTS` names a folder
    /// (how docs/screenshots is made; a relative one is taken from the
    /// checkout's root, not the tests crate cargo runs in); otherwise takes none.
    pub async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("SWITCHBOARD_SCREENSHOTS") else {
            return;
        };
        let png = self.client.screenshot().await.expect("screenshot");
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let path = root.join(dir).join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
    }
}

/// Stops chromedriver through its own `/shutdown`, which ends its sessions
/// and the browsers they started; only if it does not exit in time is the
/// process itself (and nothing else) killed.
struct DriverGuard {
    child: Option<Child>,
    port: u16,
}

impl Drop for DriverGuard {
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = stream.write_all(
                b"GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            );
            let _ = stream.read_to_end(&mut Vec::new());
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
