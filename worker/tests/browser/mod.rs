//! A headless Chromium driven over the DevTools protocol: navigate, evaluate, screenshot, and
//! every URL the page asked for. Chromium is Debian's package (`chromium`); without it,
//! [`Browser::start`] says so and returns `None`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    ws: Ws,
    next: u64,
    /// Every URL a request was made for, in order.
    pub requested: Vec<String>,
    /// Page load events seen and not yet waited for.
    loads: usize,
    /// What the pages logged as errors (a resource the Content-Security-Policy blocked, a
    /// failed load) and scripts' uncaught exceptions.
    pub errors: Vec<String>,
}

/// The browser binary: `CHROMIUM` where set, else the first of Debian's names on PATH.
pub fn find() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

impl Browser {
    pub async fn start(bin: &Path) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(bin)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--metrics-recording-only",
                // Nothing but loopback resolves: a page asking for anything else fails to load
                // it (and the test sees that it asked).
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--window-size=1400,1000",
                "--remote-debugging-port=0",
                "about:blank",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID"
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(i) = line.find("ws://") {
                        let _ = tx.send(line[i..].trim().to_string());
                        sent = true;
                    }
                }
            }
        });
        let browser_ws = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("chromium said where DevTools listens");
        let port = browser_ws
            .trim_start_matches("ws://127.0.0.1:")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let list: Value = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
            .await
            .unwrap()
            .text()
            .await
            .map(|t| serde_json::from_str(&t).unwrap())
            .unwrap();
        let page = list
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .expect("a page target")["webSocketDebuggerUrl"]
            .as_str()
            .unwrap()
            .to_string();
        let (ws, _) = tokio_tungstenite::connect_async(page).await.unwrap();
        let mut b = Browser {
            child,
            _profile: profile,
            ws,
            next: 0,
            requested: Vec::new(),
            loads: 0,
            errors: Vec::new(),
        };
        b.call("Network.enable", json!({})).await;
        b.call("Page.enable", json!({})).await;
        b.call("Log.enable", json!({})).await;
        b.call("Runtime.enable", json!({})).await;
        b
    }

    fn note(&mut self, event: &Value) {
        match event["method"].as_str() {
            Some("Network.requestWillBeSent") => {
                if let Some(u) = event["params"]["request"]["url"].as_str() {
                    self.requested.push(u.to_string());
                }
            }
            Some("Page.loadEventFired") => self.loads += 1,
            Some("Log.entryAdded") if event["params"]["entry"]["level"] == "error" => {
                let e = &event["params"]["entry"];
                // The login page is served with 401, which Chromium logs as a failed load.
                let text = e["text"].as_str().unwrap_or("");
                if !text.contains("401") {
                    self.errors
                        .push(format!("{}: {text} ({})", e["source"], e["url"]));
                }
            }
            Some("Runtime.exceptionThrown") => {
                self.errors
                    .push(event["params"]["exceptionDetails"].to_string());
            }
            _ => {}
        }
    }

    /// Sends a command and waits for its answer (noting the events that come before it).
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let msg = json!({"id": id, "method": method, "params": params});
        self.ws.send(Message::text(msg.to_string())).await.unwrap();
        loop {
            let m = tokio::time::timeout(Duration::from_secs(60), self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method}"))
                .expect("the browser's socket is open")
                .unwrap();
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    panic!("{method}: {e}");
                }
                return v["result"].clone();
            }
            self.note(&v);
        }
    }

    /// Drains events for `d`.
    async fn pump(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match tokio::time::timeout(left, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    self.note(&v);
                }
                Ok(Some(Ok(_))) => {}
                _ => return,
            }
        }
    }

    /// Waits for the next page load.
    pub async fn loaded(&mut self) {
        let start = Instant::now();
        while self.loads == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the page did not load"
            );
            self.pump(Duration::from_millis(100)).await;
        }
        self.loads -= 1;
    }

    pub async fn goto(&mut self, url: &str) {
        self.loads = 0;
        self.call("Page.navigate", json!({ "url": url })).await;
        self.loaded().await;
    }

    /// Evaluates `js` in the page and returns its value.
    pub async fn eval(&mut self, js: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{js}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Waits until `js` is true in the page.
    pub async fn until(&mut self, js: &str, limit: Duration) {
        let start = Instant::now();
        while self.eval(js).await != Value::Bool(true) {
            assert!(
                start.elapsed() < limit,
                "still not true after {limit:?}: {js}"
            );
            self.pump(Duration::from_millis(200)).await;
        }
    }

    pub async fn screenshot(&mut self, to: &Path) {
        let r = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(to, png).unwrap();
    }

    /// Requests for anything but `origin`, `data:` and `about:` URLs.
    pub fn foreign_requests(&self, origin: &str) -> Vec<String> {
        self.requested
            .iter()
            .filter(|u| {
                !(u.starts_with(origin) || u.starts_with("data:") || u.starts_with("about:"))
            })
            .cloned()
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Counts of each value, for messages.
pub fn tally(v: &[String]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for s in v {
        *m.entry(s.clone()).or_default() += 1;
    }
    m
}
