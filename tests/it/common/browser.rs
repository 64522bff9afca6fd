//! A real headless Chromium, driven over WebDriver (chromedriver) with
//! fantoccini. Debian's `chromium` and `chromium-driver` provide both
//! (`scripts/test` installs them when run as root); without them the tests
//! fail at once, saying so.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
}

fn chromium_binary() -> String {
    std::env::var("HOOKD_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// Where screenshots go: `$HOOKD_SCREENSHOT_DIR`, else `target/screenshots`.
pub fn screenshot_dir() -> PathBuf {
    std::env::var_os("HOOKD_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .parent()
                .expect("target dir")
                .join("screenshots")
        })
}

/// Whether `name` is an executable file in a directory of `$PATH`.
fn on_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(dir.join(name))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Fails, saying what to do, unless Chromium and chromedriver are installed.
fn require_chromium() {
    let chromium = chromium_binary();
    let missing: Vec<&str> = [
        (!Path::new(&chromium).exists()).then_some(chromium.as_str()),
        (!on_path("chromedriver")).then_some("chromedriver"),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(
        missing.is_empty(),
        "the admin page's browser tests need Chromium and chromedriver; missing: {}. \
         Run scripts/test, which installs them as root \
         (apt-get install -y chromium chromium-driver)",
        missing.join(", ")
    );
}

impl Browser {
    pub async fn start() -> Browser {
        Self::start_with_prefs(serde_json::json!({})).await
    }

    /// A browser that blocks third-party cookies, as more and more users'
    /// browsers do: a framed page from another site gets no cookie at all.
    pub async fn start_blocking_third_party_cookies() -> Browser {
        Self::start_with_prefs(serde_json::json!({
            "profile.block_third_party_cookies": true,
            "profile.cookie_controls_mode": 1,
        }))
        .await
    }

    async fn start_with_prefs(prefs: serde_json::Value) -> Browser {
        require_chromium();
        let port = super::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "chromedriver is needed for the admin page's browser tests \
                 (apt-get install -y chromium chromium-driver; scripts/test does it)",
            );
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium_binary(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-quic",
                    "--window-size=1366,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": prefs,
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("could not start a Chromium session: {e}"),
            }
        };
        let shots = screenshot_dir();
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            client,
            driver,
            _profile: profile,
            shots,
        }
    }

    /// Saves a PNG of the whole page as it is now, named `name.png` (the
    /// window grows to the page's height for the shot).
    pub async fn screenshot(&self, name: &str) {
        let height = self
            .client
            .execute("return document.documentElement.scrollHeight", vec![])
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(900)
            .clamp(900, 4000) as u32;
        let (w, h) = self.client.get_window_size().await.unwrap();
        self.client.set_window_size(w as u32, height).await.unwrap();
        let png = self.client.screenshot().await.expect("screenshot");
        self.client
            .set_window_size(w as u32, h as u32)
            .await
            .unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigating");
    }

    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    pub async fn css(&self, selector: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("no element {selector:?}: {e}"))
    }

    pub async fn all(&self, selector: &str) -> Vec<fantoccini::elements::Element> {
        self.client.find_all(Locator::Css(selector)).await.unwrap()
    }

    pub async fn text(&self, selector: &str) -> String {
        self.css(selector).await.text().await.unwrap()
    }

    /// Clicks an element, scrolled to the middle of the window first (the
    /// form's sticky button bar covers the bottom edge).
    pub async fn click(&self, selector: &str) {
        let e = self.css(selector).await;
        self.client
            .execute(
                "arguments[0].scrollIntoView({block: 'center'})",
                vec![serde_json::to_value(&e).unwrap()],
            )
            .await
            .unwrap();
        e.click().await.unwrap();
    }

    /// Replaces an input's value by typing, as a user would.
    /// Clicks something that loads a new page (a link, a form's button) and
    /// waits until the new page has loaded.
    pub async fn navigate_by(&self, selector: &str) {
        self.mark_page().await;
        self.click(selector).await;
        self.wait_new_page(selector).await;
    }

    /// Chooses an option of a select that loads a new page when changed
    /// (the list filters), and waits for it.
    pub async fn select_navigating(&self, selector: &str, value: &str) {
        self.mark_page().await;
        self.select(selector, value).await;
        self.wait_new_page(selector).await;
    }

    /// Clicks something that loads a new page by script (a clickable
    /// row), and waits until the new page has loaded.
    pub async fn mark_and_click(&self, selector: &str) {
        self.navigate_by(selector).await;
    }

    async fn mark_page(&self) {
        self.client
            .execute("window.__hookdOldPage = true", vec![])
            .await
            .unwrap();
    }

    async fn wait_new_page(&self, selector: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let loaded = self
                .client
                .execute(
                    "return window.__hookdOldPage === undefined && document.readyState === 'complete'",
                    vec![],
                )
                .await;
            if matches!(loaded, Ok(serde_json::Value::Bool(true))) {
                return;
            }
            if Instant::now() > deadline {
                panic!("using {selector:?} did not load a new page");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn fill(&self, selector: &str, value: &str) {
        let e = self.css(selector).await;
        e.clear().await.unwrap();
        e.send_keys(value).await.unwrap();
    }

    pub async fn value(&self, selector: &str) -> String {
        self.css(selector)
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    pub async fn checked(&self, selector: &str) -> bool {
        self.css(selector)
            .await
            .prop("checked")
            .await
            .unwrap()
            .is_some_and(|v| v == "true")
    }

    pub async fn select(&self, selector: &str, value: &str) {
        self.css(selector)
            .await
            .select_by_value(value)
            .await
            .unwrap();
    }

    /// A computed style property of the first element matching `selector`.
    pub async fn style(&self, selector: &str, property: &str) -> String {
        let e = self.css(selector).await;
        self.client
            .execute(
                "return getComputedStyle(arguments[0]).getPropertyValue(arguments[1])",
                vec![serde_json::to_value(&e).unwrap(), property.into()],
            )
            .await
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn body_text(&self) -> String {
        self.text("body").await
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
