//! A small synchronous Chrome DevTools Protocol client for browser tests.
//!
//! It launches a headless Chromium with a throw-away profile, attaches to the
//! page target over a websocket and offers a handful of helpers (navigate,
//! evaluate, poll, fill, click, screenshot, virtual WebAuthn authenticator).
//! Every blocking step is bounded by a timeout so a test never hangs.

use serde_json::{Value, json};
use std::fmt::Display;
use std::fs::{self, File};
use std::io::ErrorKind::{TimedOut, WouldBlock};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket, protocol::WebSocketConfig};

/// Upper bound for browser start-up, one CDP round trip and a navigation.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Interval between polls (start-up files, `wait_for` conditions).
const POLL: Duration = Duration::from_millis(100);
/// Headless, quiet (no background networking), debugging port chosen by Chromium.
const FLAGS: &str = "--headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --remote-debugging-port=0";

/// A headless Chromium plus a websocket attached to its page target.
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    next_id: u64,
    /// Removed when dropped, i.e. after `Drop::drop` has killed the child.
    profile: tempfile::TempDir,
}

/// Outcome of a round trip whose transport worked: `Err` is a CDP error or a
/// JavaScript exception, which pollers treat as "not yet".
type Soft = Result<Value, String>;

impl Browser {
    /// Starts Chromium and connects to its page. `Ok(None)` when no binary is
    /// found (`PORTCULLIS_CHROMIUM`, else `chromium` / `chromium-browser` on PATH).
    pub fn launch() -> Result<Option<Browser>, String> {
        let Some(bin) = find_chromium()? else {
            return Ok(None);
        };
        let profile = tempfile::Builder::new().prefix("cdp-profile-").tempdir();
        let profile = profile.ctx("creating profile dir")?;
        let log_path = profile.path().join("chromium.log");
        let log = File::create(&log_path).ctx("creating chromium.log")?;
        let mut child = Command::new(&bin)
            .args(FLAGS.split_whitespace())
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            // Chromium leaves org.chromium.* dirs in $TMPDIR when killed: keep them in the profile.
            .env("TMPDIR", profile.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().ctx("cloning log handle")?)
            .stderr(log)
            .spawn()
            .ctx(format_args!("starting {}", bin.display()))?;
        let ws = match connect(&mut child, profile.path()) {
            Ok(ws) => ws,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = fs::read_to_string(&log_path).unwrap_or_default();
                let log = log
                    .char_indices()
                    .nth_back(2000)
                    .map_or(&log[..], |(i, _)| &log[i..]);
                let bin = bin.display();
                return Err(format!(
                    "launching {bin}: {e}\n--- chromium log tail ---\n{log}"
                ));
            }
        };
        let next_id = 0;
        Ok(Some(Browser {
            child,
            ws,
            next_id,
            profile,
        }))
    }

    /// The throw-away profile directory (also holds `chromium.log`).
    pub fn profile_dir(&self) -> &Path {
        self.profile.path()
    }

    /// Sends one CDP command and returns its `result`; CDP errors become `Err`.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.call_soft(method, params)?.ctx(method)
    }

    /// Like `call`, but keeps transport failures (outer) apart from CDP errors (inner).
    fn call_soft(&mut self, method: &str, params: Value) -> Result<Soft, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method });
        if !params.is_null() {
            msg["params"] = params;
        }
        let sent = self.ws.send(Message::text(msg.to_string()));
        sent.ctx(format_args!("{method}: sending"))?;
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("{method}: no response within {TIMEOUT:?}"));
            }
            let stream = self.ws.get_ref();
            stream
                .set_read_timeout(Some(left))
                .ctx("set_read_timeout")?;
            let text = match self.ws.read() {
                Ok(Message::Text(text)) => text,
                Ok(Message::Close(f)) => return Err(format!("{method}: websocket closed {f:?}")),
                // Ping/pong/binary (tungstenite answers pings), or a read timeout: re-check deadline.
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e)) if matches!(e.kind(), WouldBlock | TimedOut) => {
                    continue;
                }
                Err(e) => return Err(format!("{method}: reading: {e}")),
            };
            let reply: Value = serde_json::from_str(&text).ctx("bad JSON from browser")?;
            if reply["id"].as_u64() != Some(id) {
                continue; // an event, or a late reply to an earlier timed-out call
            }
            return Ok(match reply.get("error") {
                Some(err) => Err(format!("CDP error {err}")),
                None => Ok(reply["result"].clone()),
            });
        }
    }

    /// `Runtime.evaluate` by value, awaiting promises, as a user gesture.
    fn eval_soft(&mut self, js: &str) -> Result<Soft, String> {
        let params = json!({
            "expression": js, "returnByValue": true, "awaitPromise": true, "userGesture": true,
        });
        let r = match self.call_soft("Runtime.evaluate", params)? {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        let Some(ex) = r.get("exceptionDetails") else {
            return Ok(Ok(r["result"]["value"].clone()));
        };
        // Error objects have a description (with stack); `throw "x"` only a value.
        let ex = &ex["exception"];
        let text = ex["description"]
            .as_str()
            .map_or_else(|| ex["value"].to_string(), str::to_owned);
        Ok(Err(format!("JS exception: {text}")))
    }

    /// Evaluates `js` in the page; a thrown exception or rejected promise is `Err`.
    pub fn eval(&mut self, js: &str) -> Result<Value, String> {
        self.eval_soft(js)?
            .ctx(format_args!("eval `{}`", head(js, 200)))
    }

    /// Polls every 100 ms until the (synchronous) JS expression is truthy.
    /// Exceptions while polling count as "not yet". The timeout error names
    /// the current URL, the last error and the start of the page text.
    pub fn wait_for(&mut self, js_condition: &str, timeout: Duration) -> Result<(), String> {
        let expr = format!("!!(\n{js_condition}\n)");
        let deadline = Instant::now() + timeout;
        let mut last_err = String::from("none");
        loop {
            match self.eval_soft(&expr)? {
                Ok(Value::Bool(true)) => return Ok(()),
                Ok(_) => {}
                Err(e) => last_err = e,
            }
            if Instant::now() >= deadline {
                break;
            }
            sleep(POLL);
        }
        let url = self.url().unwrap_or_else(|e| format!("<{e}>"));
        let text = head(&self.text().unwrap_or_else(|e| format!("<{e}>")), 500);
        Err(format!(
            "timed out after {timeout:?} waiting for `{js_condition}`\n  url: {url}\n  \
             last error: {last_err}\n  page text: {text}"
        ))
    }

    /// Navigates and waits until the new document has finished loading.
    pub fn goto(&mut self, url: &str) -> Result<(), String> {
        // Mark the old document so we can tell when it has been replaced.
        self.eval("document.__cdpStale = true")?;
        let r = self.call("Page.navigate", json!({ "url": url }))?;
        if let Some(err) = r["errorText"].as_str() {
            return Err(format!("navigating to {url}: {err}"));
        }
        // Same-document navigations (e.g. to a #fragment) have no loaderId.
        let cond = match r.get("loaderId") {
            Some(_) => "!document.__cdpStale && document.readyState === 'complete'",
            None => "document.readyState === 'complete'",
        };
        self.wait_for(cond, TIMEOUT)
            .ctx(format_args!("navigating to {url}"))
    }

    /// Sets a form control's value through the native setter (so frameworks
    /// notice), then dispatches bubbling `input` and `change` events.
    pub fn fill(&mut self, css_selector: &str, value: &str) -> Result<(), String> {
        let js = format!(
            "(() => {{ const el = {}; el.focus();
               const d = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(el), 'value');
               if (d && d.set) d.set.call(el, {v}); else el.value = {v};
               el.dispatchEvent(new Event('input', {{ bubbles: true }}));
               el.dispatchEvent(new Event('change', {{ bubbles: true }})); }})()",
            query(css_selector),
            v = js_str(value)
        );
        self.eval(&js).map(drop)
    }

    /// Clicks the first element matching the selector via `element.click()`.
    pub fn click(&mut self, css_selector: &str) -> Result<(), String> {
        self.eval(&format!("{}.click()", query(css_selector)))
            .map(drop)
    }

    /// `document.body.innerText` (empty while there is no body).
    pub fn text(&mut self) -> Result<String, String> {
        self.eval_string("document.body ? document.body.innerText : ''")
    }

    /// `location.href` of the page.
    pub fn url(&mut self) -> Result<String, String> {
        self.eval_string("location.href")
    }

    pub fn eval_string(&mut self, js: &str) -> Result<String, String> {
        match self.eval(js)? {
            Value::String(s) => Ok(s),
            v => Err(format!("`{js}` gave {v}, not a string")),
        }
    }

    /// Saves a PNG screenshot of the viewport, creating parent directories.
    pub fn screenshot(&mut self, path: &Path) -> Result<(), String> {
        let r = self.call("Page.captureScreenshot", json!({ "format": "png" }))?;
        let png = base64_decode(&str_field(&r, "data")?)?;
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).ctx(format_args!("creating {}", dir.display()))?;
        }
        fs::write(path, png).ctx(format_args!("writing {}", path.display()))
    }

    /// Enables the WebAuthn domain and adds a CTAP2 platform authenticator with
    /// resident keys whose user verification always succeeds. Returns its id.
    pub fn add_virtual_authenticator(&mut self) -> Result<String, String> {
        self.call("WebAuthn.enable", json!({}))?;
        let options = json!({
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
            "hasUserVerification": true, "isUserVerified": true,
            "automaticPresenceSimulation": true,
        });
        let r = self.call(
            "WebAuthn.addVirtualAuthenticator",
            json!({ "options": options }),
        )?;
        str_field(&r, "authenticatorId")
    }

    /// The credentials stored in a virtual authenticator.
    pub fn credentials(&mut self, authenticator_id: &str) -> Result<Vec<Value>, String> {
        let params = json!({ "authenticatorId": authenticator_id });
        let r = self.call("WebAuthn.getCredentials", params)?;
        let creds = r["credentials"].as_array().cloned();
        creds.ok_or_else(|| format!("WebAuthn.getCredentials: unexpected reply {r}"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ask for a clean exit first, so helper processes stop writing to the profile.
        let close = json!({ "id": 0, "method": "Browser.close" }).to_string();
        let closing = self.ws.send(Message::text(close)).is_ok();
        let deadline = Instant::now() + Duration::from_secs(5);
        while closing && matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            sleep(POLL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A helper can outlive the browser process by a moment: retry the removal.
        let dir = self.profile.path();
        let deadline = Instant::now() + Duration::from_secs(5);
        while fs::remove_dir_all(dir).is_err() && dir.exists() && Instant::now() < deadline {
            sleep(POLL);
        }
    }
}

/// Finds the Chromium binary; a configured but missing one is an error.
fn find_chromium() -> Result<Option<PathBuf>, String> {
    if let Some(p) = std::env::var_os("PORTCULLIS_CHROMIUM").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(format!("PORTCULLIS_CHROMIUM={} is not a file", p.display()));
        }
        return Ok(Some(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let in_path = |name| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    };
    Ok(in_path("chromium").or_else(|| in_path("chromium-browser")))
}

/// Waits for `DevToolsActivePort`, finds the page target and opens its websocket.
fn connect(child: &mut Child, profile: &Path) -> Result<WebSocket<TcpStream>, String> {
    let deadline = Instant::now() + TIMEOUT;
    let port_file = profile.join("DevToolsActivePort");
    let port: u16 = loop {
        if let Some(status) = child.try_wait().ctx("checking child")? {
            return Err(format!("chromium exited early ({status})"));
        }
        // Complete once the first line (the port) is newline-terminated.
        let content = fs::read_to_string(&port_file).unwrap_or_default();
        if let Some(port) = content.split_once('\n').and_then(|(p, _)| p.parse().ok()) {
            break port;
        }
        if Instant::now() >= deadline {
            return Err(format!("no {} after {TIMEOUT:?}", port_file.display()));
        }
        sleep(POLL);
    };
    let ws_url = loop {
        let list: Value = serde_json::from_str(&http_get(port, "/json/list")?).ctx("/json/list")?;
        // Take the tab; skip "browser_ui" and other target types.
        let mut targets = list.as_array().into_iter().flatten();
        if let Some(t) = targets.find(|t| t["type"] == "page") {
            break str_field(t, "webSocketDebuggerUrl")?;
        }
        if Instant::now() >= deadline {
            return Err(format!("no page target in /json/list: {list}"));
        }
        sleep(POLL);
    };
    let stream =
        TcpStream::connect(("127.0.0.1", port)).ctx(format_args!("connecting {ws_url}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .ctx("set_read_timeout")?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .ctx("set_write_timeout")?;
    // A screenshot arrives as one large frame: allow up to 256 MiB.
    let big = Some(256 << 20);
    let config = WebSocketConfig::default()
        .max_message_size(big)
        .max_frame_size(big);
    let ws = tungstenite::client::client_with_config(ws_url.as_str(), stream, Some(config));
    Ok(ws.ctx(format_args!("websocket handshake with {ws_url}"))?.0)
}

/// Minimal HTTP/1.1 GET against the DevTools endpoint; returns the body.
/// Chromium keeps the connection open, so the body is read by Content-Length.
fn http_get(port: u16, path: &str) -> Result<String, String> {
    let what = format!("GET http://127.0.0.1:{port}{path}");
    let mut s = TcpStream::connect(("127.0.0.1", port)).ctx(&what)?;
    s.set_read_timeout(Some(TIMEOUT)).ctx(&what)?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").ctx(&what)?;
    let mut r = BufReader::new(s);
    let (mut status, mut len, mut line) = (String::new(), 0, String::new());
    r.read_line(&mut status).ctx(&what)?;
    while r.read_line(&mut line).ctx(&what)? > 0 && line != "\r\n" {
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().ctx("bad Content-Length")?;
        }
        line.clear();
    }
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("{what}: unexpected status {}", status.trim()));
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ctx(&what)?;
    String::from_utf8(body).ctx(&what)
}

/// JS expression for the first element matching `sel`, throwing if none does.
fn query(sel: &str) -> String {
    let s = js_str(sel);
    format!(
        "(document.querySelector({s}) ?? (() => {{ throw new Error('no element matches ' + {s}) }})())"
    )
}

/// A JS string literal (JSON is valid JavaScript).
fn js_str(s: &str) -> String {
    Value::from(s).to_string()
}

/// A string field of a JSON object, or an error showing the object.
fn str_field(v: &Value, key: &str) -> Result<String, String> {
    let s = v[key].as_str().map(str::to_owned);
    s.ok_or_else(|| format!("expected a string `{key}` in {}", head(&v.to_string(), 300)))
}

/// `map_err` shorthand: prefixes an error with what was being done.
trait Context<T> {
    fn ctx(self, what: impl Display) -> Result<T, String>;
}

impl<T, E: Display> Context<T> for Result<T, E> {
    fn ctx(self, what: impl Display) -> Result<T, String> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// At most `n` characters from the start of `s`.
fn head(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// Decodes standard base64 (padding optional).
fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("invalid base64 byte {c:#04x}")),
        };
        acc = ((acc << 6) | u32::from(v)) & 0xFFFF;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}
