//! A real headless Chromium, driven over WebDriver: Debian's `chromedriver`
//! on a loopback port of its own, spoken to in plain HTTP JSON. Killed with
//! its browser (one process group) when dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use base64::Engine;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use weft_tests::{PATIENCE, closed_port, eventually, http1};

const INSTALL: &str = "`apt-get install -y chromium chromium-driver` (`cargo xtask test` \
                       installs them as root)";

/// The key WebDriver names an element reference by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: SocketAddr,
    session: String,
    child: Child,
    _profile: Profile,
}

impl Browser {
    /// Starts chromedriver and one headless Chromium session.
    pub async fn start() -> Self {
        let [driver_binary, chromium] = ["chromedriver", "chromium"].map(|name| {
            find(name).unwrap_or_else(|| panic!("{name} is not installed: run {INSTALL}"))
        });
        let driver = closed_port();
        let child = Command::new(driver_binary)
            .arg(format!("--port={}", driver.port()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group, so that the browser it starts dies with it.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("starting chromedriver");
        eventually("chromedriver is ready", || async {
            if tokio::net::TcpStream::connect(driver).await.is_err() {
                return Err("not listening yet".into());
            }
            let status = call(driver, "GET", "/status", None).await?;
            match status["value"]["ready"].as_bool() {
                Some(true) => Ok(()),
                _ => Err(status.to_string()),
            }
        })
        .await;
        let profile = Profile::new(driver.port());
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,1100",
                         format!("--user-data-dir={}", profile.0.display())],
            },
        }}});
        let mut browser = Browser {
            driver,
            session: String::new(),
            child,
            _profile: profile,
        };
        let created = call(driver, "POST", "/session", Some(capabilities))
            .await
            .unwrap_or_else(|e| panic!("chromedriver cannot start chromium: {e}"));
        browser.session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        browser
    }

    async fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        call(self.driver, method, &path, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))["value"]
            .take()
    }

    pub async fn open(&self, url: &str) {
        self.command("POST", "/url", Some(json!({"url": url})))
            .await;
    }

    /// Runs `script` (a function body) in the page and returns its value.
    pub async fn eval(&self, script: &str) -> Value {
        let body = json!({"script": script, "args": []});
        self.command("POST", "/execute/sync", Some(body)).await
    }

    async fn element(&self, css: &str) -> String {
        let body = json!({"using": "css selector", "value": css});
        let found = self.command("POST", "/element", Some(body)).await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_string()
    }

    /// Clicks the element `css` selects, as a user would.
    pub async fn click(&self, css: &str) {
        let element = self.element(css).await;
        self.command(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Types `text` into the element `css` selects.
    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css).await;
        let body = json!({"text": text});
        self.command("POST", &format!("/element/{element}/value"), Some(body))
            .await;
    }

    /// The page as a PNG.
    pub async fn screenshot(&self) -> Vec<u8> {
        let png = self.command("GET", "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64"))
            .expect("a base64 screenshot")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let group = nix::unistd::Pid::from_raw(pid as i32);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Chromium's profile directory, removed when dropped.
struct Profile(PathBuf);

impl Profile {
    fn new(port: u16) -> Self {
        let dir = std::env::temp_dir().join(format!("weft-chromium-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Profile(dir)
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn find(name: &str) -> Option<PathBuf> {
    ["/usr/bin", "/usr/local/bin"]
        .into_iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.exists())
}

/// One WebDriver request: its JSON answer, or the driver's error.
async fn call(
    driver: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut request = http1::request(method, &driver.to_string(), path, body);
    request.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    let reply = tokio::time::timeout(PATIENCE, async {
        http1::Connection::open(driver).await.send(request).await
    })
    .await
    .map_err(|_| format!("no answer within {PATIENCE:?}"))?;
    let value: Value =
        serde_json::from_slice(&reply.body).map_err(|e| format!("{e}: {}", reply.text()))?;
    if !reply.status.is_success() {
        return Err(value["value"]["message"]
            .as_str()
            .map_or_else(|| value.to_string(), String::from));
    }
    Ok(value)
}
