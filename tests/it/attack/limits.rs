//! Bounded work before authentication: every endpoint that parses a query
//! or a form refuses too many or too large parameters with a 400 before it
//! does anything else.

use crate::common::{Backend, TestServer};

/// 60,000 distinct keys in about 236 KB, the review's request.
fn flood() -> String {
    (0..60_000)
        .map(|i| format!("k{i}="))
        .collect::<Vec<_>>()
        .join("&")
}

/// 65 short parameters: over the count, under every size.
fn many() -> String {
    (0..65)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_parameters_get_a_400_everywhere() {
    let srv = TestServer::start(Backend::Embedded).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form_routes = [
        "/authorize",
        "/token",
        "/introspect",
        "/revoke",
        "/end-session",
        "/login",
        "/login/second-factor",
        "/saml/sso",
        "/saml/slo",
        "/authorize/consent",
        "/pim/request",
    ];
    for path in form_routes {
        for body in [flood(), many()] {
            let r = http
                .post(srv.url(path))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            assert!(status == 400 || status == 413, "POST {path}: {status}");
            let text = r.text().await.unwrap();
            assert!(text.contains("too"), "POST {path}: {text}");
        }
    }
    let query_routes = [
        "/authorize",
        "/saml/sso",
        "/saml/slo",
        "/end-session",
        "/userinfo",
        "/login",
    ];
    for path in query_routes {
        let r = http
            .get(format!("{}?{}", srv.url(path), many()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "GET {path}");
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("too many parameters (at most ")
        );
    }
    // OAuth endpoints answer in their own JSON error form.
    let r = http
        .post(srv.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(many())
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request");
    // A JSON body over its bound is refused too.
    let r = http
        .post(srv.url("/register"))
        .header("content-type", "application/json")
        .body(format!("{{\"client_name\":\"{}\"}}", "x".repeat(70 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_does_not_starve_the_health_check() {
    let srv = TestServer::start(Backend::Embedded).await;
    let http = reqwest::Client::new();
    // Four floods in parallel, as in the review, then the health check: all
    // refused at once, so the checks that follow still answer.
    let floods: Vec<_> = (0..4)
        .map(|_| {
            http.post(srv.url("/authorize"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(flood())
                .send()
        })
        .collect();
    for r in futures_util::future::join_all(floods).await {
        let s = r.unwrap().status().as_u16();
        assert!(s == 413 || s == 400, "{s}");
    }
    let r = http.get(srv.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Ordinary requests within the bounds still work.
    let r = http
        .get(srv.url("/login?next=%2Faccount"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
