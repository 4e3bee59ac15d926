//! A browser-like client for the balancer that notes which node served each
//! response, and the few page helpers the journeys need.

use crate::cluster::Cluster;
use reqwest::cookie::Jar;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

pub const PASSWORD: &str = "correct horse battery";

/// Who answered: nginx's `X-Served-By` (the upstream address).
pub type Nodes = Arc<Mutex<BTreeSet<String>>>;

pub struct Page {
    pub status: u16,
    /// The node that answered.
    pub node: String,
    pub location: Option<String>,
    pub body: String,
}

impl Page {
    pub fn csrf(&self) -> String {
        field_value(&self.body, "csrf").expect("page has a CSRF field")
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

pub fn field_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&amp;", "&"))
}

/// A client that reaches `localhost:<port>` (the issuer's host) at the
/// balancer's loopback address and follows no redirects.
pub fn client(c: &Cluster, jar: Option<Arc<Jar>>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve("localhost", ([127, 0, 0, 1], c.nginx.port).into())
        .timeout(std::time::Duration::from_secs(30));
    if let Some(jar) = jar {
        b = b.cookie_provider(jar);
    }
    b.build().unwrap()
}

pub struct Browser {
    pub http: reqwest::Client,
    base: String,
    pub served_by: Nodes,
}

impl Browser {
    pub fn new(c: &Cluster) -> Self {
        Self {
            http: client(c, Some(Arc::new(Jar::default()))),
            base: c.issuer.clone(),
            served_by: Nodes::default(),
        }
    }

    fn abs(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.base)
        }
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Page {
        let resp = req.send().await.expect("the balancer answers");
        let node = note_node(&self.served_by, &resp);
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Page {
            status,
            node,
            location,
            body: resp.text().await.unwrap_or_default(),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        self.send(self.http.get(self.abs(path))).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(self.http.post(self.abs(path)).form(form)).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let p = self.send(self.http.post(self.abs(path)).json(body)).await;
        (p.status, p.json())
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let p = self.get(path).await;
        (p.status, p.json())
    }

    pub async fn login(&self, user: &str) -> Page {
        let form = self.get("/login").await;
        assert_eq!(form.status, 200, "{}", form.body);
        self.post(
            "/login",
            &[
                ("username", user),
                ("password", PASSWORD),
                ("csrf", &form.csrf()),
            ],
        )
        .await
    }

    /// Follows redirects (signing in on the way when asked) until the
    /// browser is sent off this server or a page answers 200.
    pub async fn follow(&self, mut page: Page, user: &str) -> (Page, Option<String>) {
        for _ in 0..8 {
            let Some(loc) = page.location.clone() else {
                return (page, None);
            };
            if loc.starts_with("/login") {
                let form = self.get(&loc).await;
                let next = field_value(&form.body, "next").unwrap_or_default();
                page = self
                    .post(
                        "/login",
                        &[
                            ("username", user),
                            ("password", PASSWORD),
                            ("csrf", &form.csrf()),
                            ("next", &next),
                        ],
                    )
                    .await;
            } else if loc.starts_with('/') || loc.starts_with(&self.base) {
                page = self.get(&loc).await;
            } else {
                return (page, Some(loc));
            }
        }
        panic!("too many redirects");
    }

    /// How many different nodes have answered this browser.
    pub fn nodes_seen(&self) -> usize {
        spread(&self.served_by)
    }
}

/// Records (and returns) the node that sent `resp`.
pub fn note_node(nodes: &Nodes, resp: &reqwest::Response) -> String {
    let by = resp
        .headers()
        .get("x-served-by")
        .and_then(|v| v.to_str().ok())
        .expect("nginx names the node that answered")
        .to_string();
    nodes.lock().unwrap().insert(by.clone());
    by
}

/// How many different nodes answered the requests noted in `nodes`.
pub fn spread(nodes: &Nodes) -> usize {
    nodes.lock().unwrap().len()
}

/// A query parameter of a URL.
pub fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
