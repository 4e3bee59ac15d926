//! A browser-like HTTP client with its own cookies (handled by hand, so a
//! sign-in can start from an empty jar without a new connection), and the
//! OAuth/OIDC steps the scenarios repeat.

use reqwest::header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

pub const REDIRECT: &str = "http://localhost:9999/cb";
/// RFC 7636 appendix B's verifier and its S256 challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub type Res<T> = Result<T, String>;

/// A confidential client's credentials.
#[derive(Clone, Debug)]
pub struct Creds {
    pub id: String,
    pub secret: String,
}

pub struct Resp {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

#[derive(Clone)]
pub struct Browser {
    http: reqwest::Client,
    pub base: String,
    cookies: BTreeMap<String, String>,
}

/// One keep-alive connection's client; redirects are not followed.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("HTTP client")
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Self {
            http: http(),
            base: base.to_string(),
            cookies: BTreeMap::new(),
        }
    }

    /// Drops every cookie: the next request comes from a stranger.
    pub fn forget(&mut self) {
        self.cookies.clear();
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    async fn send(&mut self, mut rb: reqwest::RequestBuilder) -> Res<Resp> {
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            rb = rb.header(COOKIE, jar.join("; "));
        }
        let r = rb.send().await.map_err(|e| format!("request: {e}"))?;
        let status = r.status().as_u16();
        self.absorb(r.headers());
        let location = r
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = r.text().await.map_err(|e| format!("body: {e}"))?;
        Ok(Resp {
            status,
            location,
            body,
        })
    }

    fn absorb(&mut self, headers: &HeaderMap) {
        for v in headers.get_all(SET_COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            let mut parts = v.split(';');
            let Some((name, value)) = parts.next().and_then(|kv| kv.split_once('=')) else {
                continue;
            };
            let gone =
                value.is_empty() || parts.any(|p| p.trim().eq_ignore_ascii_case("max-age=0"));
            if gone {
                self.cookies.remove(name.trim());
            } else {
                self.cookies
                    .insert(name.trim().to_string(), value.to_string());
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> Res<Resp> {
        let rb = self.http.get(self.url(path));
        self.send(rb).await
    }

    pub async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> Res<Resp> {
        let rb = self.http.post(self.url(path)).form(form);
        self.send(rb).await
    }

    /// POSTs JSON as the pages' script does; the answer must be 200 JSON.
    pub async fn post_json(&mut self, path: &str, body: &Value) -> Res<Value> {
        let rb = self.http.post(self.url(path)).json(body);
        let r = self.send(rb).await?;
        expect(&r, 200, path)?;
        serde_json::from_str(&r.body).map_err(|e| format!("{path}: not JSON: {e}"))
    }

    /// A back-channel call with HTTP Basic client authentication; 200 JSON.
    pub async fn backchannel(
        &mut self,
        path: &str,
        c: &Creds,
        form: &[(&str, &str)],
    ) -> Res<Value> {
        let rb = self
            .http
            .post(self.url(path))
            .basic_auth(&c.id, Some(&c.secret))
            .form(form);
        let r = self.send(rb).await?;
        expect(&r, 200, path)?;
        serde_json::from_str(&r.body).map_err(|e| format!("{path}: not JSON: {e}"))
    }

    /// The sign-in page, then the password form: a new session.
    pub async fn password_sign_in(&mut self, user: &str, password: &str) -> Res<()> {
        let page = self.get("/login").await?;
        expect(&page, 200, "GET /login")?;
        let csrf = field_value(&page.body, "csrf").ok_or("no CSRF field on /login")?;
        let r = self
            .post_form(
                "/login",
                &[("username", user), ("password", password), ("csrf", &csrf)],
            )
            .await?;
        expect(&r, 303, "POST /login")
    }

    /// `/authorize` in the current session, straight back with a code.
    pub async fn authorize(&mut self, web: &Creds, scope: &str) -> Res<String> {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &web.id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("response_type", "code")
            .append_pair("scope", scope)
            .append_pair("state", "bench")
            .append_pair("nonce", "bench")
            .append_pair("code_challenge", CHALLENGE)
            .append_pair("code_challenge_method", "S256")
            .finish();
        let r = self.get(&format!("/authorize?{q}")).await?;
        let loc = r.location.clone().unwrap_or_default();
        if !(r.status == 302 || r.status == 303) || !loc.starts_with(REDIRECT) {
            return Err(format!("/authorize: {} to {loc:?}", r.status));
        }
        url::Url::parse(&loc)
            .ok()
            .and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "code")
                    .map(|(_, v)| v.into_owned())
            })
            .ok_or_else(|| format!("/authorize: no code in {loc}"))
    }

    /// Redeems a code (PKCE); returns the token response.
    pub async fn redeem(&mut self, web: &Creds, code: &str) -> Res<Value> {
        self.backchannel(
            "/token",
            web,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await
    }

    /// The whole code flow in the current session.
    pub async fn code_flow(&mut self, web: &Creds, scope: &str) -> Res<Value> {
        let code = self.authorize(web, scope).await?;
        self.redeem(web, &code).await
    }
}

pub fn expect(r: &Resp, status: u16, what: &str) -> Res<()> {
    if r.status == status {
        Ok(())
    } else {
        let body: String = r.body.chars().take(160).collect();
        Err(format!("{what}: {} (wanted {status}): {body}", r.status))
    }
}

/// The value of a form field `name` on a page.
pub fn field_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// A string field of a JSON answer.
pub fn str_field(v: &Value, k: &str) -> Res<String> {
    v[k].as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no {k} in the answer"))
}
