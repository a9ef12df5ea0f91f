//! Headless Chromium over WebDriver: one chromedriver per test process (on a free loopback
//! port, stopped when the process exits), one browser session per test with a fresh
//! profile, waits on elements with a deadline, and what a failed test saw (a screenshot
//! and the page source) saved under `target/browser-failures/<test>/`.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};

/// How long a step may take to show its page (a page load, a redirect chain, a form post).
const STEP: Duration = Duration::from_secs(20);
/// How long chromedriver may take to start listening.
const DRIVER_START: Duration = Duration::from_secs(30);

/// Why these tests are ignored unless asked for.
pub(crate) const NEEDS: &str = "needs chromium and chromedriver: apt-get install chromium chromium-driver, then --include-ignored";

/// The first of `names` found in `PATH`, or the program `env` names.
fn program(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let dirs: Vec<PathBuf> = std::env::split_paths(&std::env::var_os("PATH")?).collect();
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|path| path.is_file())
}

/// Chromium's binary (`CHROME_BIN`, or `chromium`, `chromium-browser`, `google-chrome` in
/// `PATH`).
fn chromium() -> Option<PathBuf> {
    program(
        "CHROME_BIN",
        &["chromium", "chromium-browser", "google-chrome"],
    )
}

/// A chromedriver listening on loopback.
pub(crate) struct Driver {
    pub(crate) url: String,
    chromium: PathBuf,
    /// The shell that owns chromedriver: it stops it when our end of its stdin closes,
    /// that is when this process exits, however it exits.
    _shell: Mutex<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The chromedriver of this test process, started on first use.
pub(crate) fn driver() -> &'static Driver {
    static DRIVER: OnceLock<Driver> = OnceLock::new();
    DRIVER.get_or_init(start_driver)
}

fn start_driver() -> Driver {
    let chromedriver = program("CHROMEDRIVER", &["chromedriver"]).unwrap_or_else(|| {
        panic!("no chromedriver in PATH: apt-get install chromium-driver (or CHROMEDRIVER=<path>)")
    });
    let chromium = chromium().unwrap_or_else(|| {
        panic!("no Chromium in PATH: apt-get install chromium (or CHROME_BIN=<path>)")
    });
    let port = free_port();
    let script = format!(
        "'{}' --port={port} --allowed-ips=127.0.0.1 & pid=$!; cat >/dev/null; exec 2>/dev/null; kill $pid; wait $pid",
        chromedriver.display()
    );
    // Never waited for: it lives until this process exits (then it stops chromedriver).
    #[allow(clippy::zombie_processes)]
    let mut shell = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("sh runs");
    // chromedriver says on stdout when it listens; the rest of its stdout is drained so
    // that it never blocks on a full pipe.
    let stdout = shell.stdout.take().expect("piped");
    let (ready, started) = mpsc::channel();
    std::thread::spawn(move || {
        let mut said = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("started successfully") {
                let _ = ready.send(Ok(()));
            } else {
                said.push(line);
            }
        }
        let _ = ready.send(Err(said.join("\n")));
    });
    match started.recv_timeout(DRIVER_START) {
        Ok(Ok(())) => {}
        Ok(Err(said)) => panic!("{} exited: {said}", chromedriver.display()),
        Err(_) => panic!(
            "{} did not listen on port {port} within {DRIVER_START:?}",
            chromedriver.display()
        ),
    }
    Driver {
        url: format!("http://127.0.0.1:{port}"),
        chromium,
        _shell: Mutex::new(shell),
    }
}

/// One browser: headless Chromium with a profile of its own, removed when closed.
pub(crate) struct Browser {
    pub(crate) client: Client,
    profile: PathBuf,
}

impl Browser {
    /// A new session on `driver`, with a fresh, empty profile.
    pub(crate) async fn open(driver: &Driver) -> Self {
        let profile = std::env::temp_dir().join(format!(
            "act-chromium-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            // The network here is closed: without these Chromium floods refused
            // connections (updates, sync, field trials).
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            "--password-store=basic",
            "--window-size=1280,900",
        ]
        .map(String::from)
        .to_vec();
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": driver.chromium, "args": args }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| panic!("no Chromium session from {}: {e}", driver.url));
        // Every command has a deadline: a page that never loads fails the step.
        client
            .update_timeouts(TimeoutConfiguration::new(
                Some(Duration::from_secs(30)),
                Some(STEP),
                Some(Duration::ZERO),
            ))
            .await
            .unwrap();
        Self { client, profile }
    }

    /// Ends the session (Chromium exits) and removes the profile.
    pub(crate) async fn close(self) {
        let _ = self.client.close().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }

    /// Saves what the browser shows (a screenshot and the page source, with its URL) under
    /// `target/browser-failures/<test>/`; returns where, and the URL.
    pub(crate) async fn save_failure(&self, test: &str) -> String {
        let dir = failures_dir().join(test.replace("::", "-"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let url = match self.client.current_url().await {
            Ok(url) => url.to_string(),
            Err(e) => format!("(no URL: {e})"),
        };
        let mut saved = Vec::new();
        if let Ok(png) = self.client.screenshot().await {
            std::fs::write(dir.join("screenshot.png"), png).unwrap();
            saved.push("screenshot.png");
        }
        if let Ok(source) = self.client.source().await {
            std::fs::write(dir.join("page.html"), format!("<!-- {url} -->\n{source}")).unwrap();
            saved.push("page.html");
        }
        // The visible text too: CI keeps the log, not the files.
        let text = match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        format!(
            "the browser was at {url}; saved {} in {}; the page said:\n{}",
            saved.join(" and "),
            dir.display(),
            text.chars().take(2000).collect::<String>()
        )
    }

    /// The element `css` once it is on the page (within a step's deadline).
    pub(crate) async fn wait(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(STEP)
            .every(Duration::from_millis(50))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => {
                let url = self.client.current_url().await.map(|u| u.to_string());
                panic!("no `{css}` within {STEP:?} (at {url:?}): {e}")
            }
        }
    }

    /// Waits for the mock Entra's page `name` (`<body data-page=name>`).
    pub(crate) async fn wait_page(&self, name: &str) -> Element {
        self.wait(&format!("body[data-page=\"{name}\"]")).await
    }

    /// Clicks `css` once it is there.
    pub(crate) async fn click(&self, css: &str) {
        let element = self.wait(css).await;
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking `{css}`: {e}"));
    }

    /// Types `text` into the field `css` once it is there.
    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let element = self.wait(css).await;
        element.clear().await.unwrap();
        element
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("typing into `{css}`: {e}"));
    }

    /// The visible text of `css`, once it is there.
    pub(crate) async fn text(&self, css: &str) -> String {
        self.wait(css).await.text().await.unwrap()
    }

    /// The attribute `name` of `css`, once it is there.
    pub(crate) async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.wait(css).await.attr(name).await.unwrap()
    }

    /// Whether `css` is on the page now (no wait: for what must be absent once the page
    /// that would show it has been waited for).
    pub(crate) async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .is_empty()
    }
}

/// `target/browser-failures` (this test's target directory, whichever it is).
fn failures_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("browser-failures")
}
