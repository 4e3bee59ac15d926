//! Password sign-in as a person in a browser experiences it.

use crate::common::{Backend, PASSWORD, TestEnv, TestServer, backends};
use std::time::{Duration, Instant};

const COOKIE: &str = "portcullis_session";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_shows_the_account_and_sign_out_ends_it() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        srv.user("alice").await;
        let b = srv.browser();

        let res = b.login("Alice", PASSWORD).await;
        assert_eq!(res.status, 303, "{backend:?}: {}", res.body);
        assert_eq!(res.location.as_deref(), Some("/account"));
        let set_cookie = res
            .headers
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
        assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
        assert!(
            !set_cookie.contains("Secure"),
            "http issuer must not set Secure: {set_cookie}"
        );

        let account = b.get("/account").await;
        assert_eq!(account.status, 200);
        assert!(
            account
                .body
                .contains("Signed in as <span id=\"who\">alice</span>"),
            "{}",
            account.body
        );
        assert!(account.body.contains("alice@example.test"));
        assert_eq!(account.headers["cache-control"], "no-store");

        let logout = b.post("/logout", &[("csrf", &account.csrf())]).await;
        assert_eq!(logout.status, 303);
        assert_eq!(logout.location.as_deref(), Some("/login?signed_out=1"));
        assert!(b.cookie(COOKIE).is_none(), "the session cookie is removed");
        let after = b.get("/account").await;
        assert_eq!(after.status, 303);
        assert_eq!(after.location.as_deref(), Some("/login?next=/account"));
        let login = b.get("/login?signed_out=1").await;
        assert!(login.body.contains("You have signed out."));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_session_cookie_is_dead_after_logout() {
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("bob").await;
    let b = srv.browser();
    b.login("bob", PASSWORD).await;
    let token = b.cookie(COOKIE).unwrap();
    let account = b.get("/account").await;
    b.post("/logout", &[("csrf", &account.csrf())]).await;

    // Someone who copied the cookie before logout gets nothing.
    let thief = srv.browser();
    thief
        .jar
        .add_cookie_str(&format!("{COOKIE}={token}"), &srv.base.parse().unwrap());
    assert_eq!(thief.get("/account").await.status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_look_the_same() {
    let mut env = TestEnv::new(Backend::Embedded);
    env.settings.login.max_failures_per_account = 100;
    env.settings.login.max_failures_per_ip = 100;
    let srv = TestServer::start_with(env).await;
    srv.user("carol").await;
    let b = srv.browser();

    let wrong = b.login("carol", "not the password").await;
    let unknown = b.login("nobody-here", "not the password").await;
    let invalid_name = b.login("bad name!", "x").await;
    for p in [&wrong, &unknown, &invalid_name] {
        assert_eq!(p.status, 401);
        assert!(
            p.body.contains("Incorrect username or password."),
            "{}",
            p.body
        );
        assert!(b.cookie(COOKIE).is_none());
    }
    // The form keeps what was typed as the username, escaped.
    assert!(wrong.body.contains("value=\"carol\""));
    assert!(invalid_name.body.contains("value=\"bad name!\""));

    // Unknown users cost a password hash too. Take the fastest of several
    // tries each so scheduling noise does not decide; without the dummy hash
    // the unknown user would answer tens of times faster.
    let fastest = |name: &'static str| {
        let b = &b;
        async move {
            let mut best = Duration::MAX;
            for _ in 0..4 {
                let form = b.get("/login").await;
                let started = Instant::now();
                b.post(
                    "/login",
                    &[
                        ("username", name),
                        ("password", "nope nope"),
                        ("csrf", &form.csrf()),
                    ],
                )
                .await;
                best = best.min(started.elapsed());
            }
            best
        }
    };
    let known = fastest("carol").await;
    let unknown = fastest("nobody-here").await;
    let ratio = known.as_secs_f64() / unknown.as_secs_f64();
    assert!(
        (0.33..3.0).contains(&ratio),
        "known {known:?} vs unknown {unknown:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_lock_the_account_until_the_lockout_passes() {
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("dave").await;
    srv.user("erin").await;
    let b = srv.browser();
    for _ in 0..5 {
        assert_eq!(b.login("dave", "guess guess").await.status, 401);
    }
    // (Each successful sign-in below uses a fresh browser: a signed-in one
    // skips the form.)
    // Locked: even the right password is refused, with a clear message.
    let locked = b.login("dave", PASSWORD).await;
    assert_eq!(locked.status, 429);
    assert!(
        locked
            .body
            .contains("Too many failed sign-in attempts. Try again in 15 minutes."),
        "{}",
        locked.body
    );
    assert!(b.cookie(COOKIE).is_none());
    // Another account from the same address is unaffected.
    assert_eq!(srv.browser().login("erin", PASSWORD).await.status, 303);

    srv.clock.advance(chrono::Duration::minutes(14));
    let still = b.login("dave", PASSWORD).await;
    assert_eq!(still.status, 429);
    assert!(
        still.body.contains("Try again in 1 minute."),
        "{}",
        still.body
    );
    srv.clock.advance(chrono::Duration::minutes(1));
    assert_eq!(b.login("dave", PASSWORD).await.status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_from_one_address_lock_that_address() {
    for backend in backends() {
        let mut env = TestEnv::new(backend);
        env.settings.login.max_failures_per_ip = 3;
        env.settings.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        let srv = TestServer::start_with(env).await;
        srv.user("frank").await;
        let attacker = srv.browser();
        for name in ["u1", "u2", "u3"] {
            let form = attacker.get("/login").await;
            let res = attacker
                .http
                .post(srv.url("/login"))
                .header("x-forwarded-for", "203.0.113.9")
                .form(&[
                    ("username", name),
                    ("password", "x"),
                    ("csrf", &form.csrf()),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 401);
        }
        let form = attacker.get("/login").await;
        let res = attacker
            .http
            .post(srv.url("/login"))
            .header("x-forwarded-for", "203.0.113.9")
            .form(&[
                ("username", "frank"),
                ("password", PASSWORD),
                ("csrf", &form.csrf()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 429, "{backend:?}");
        // A different client behind the same proxy signs in fine.
        let form = attacker.get("/login").await;
        let res = attacker
            .http
            .post(srv.url("/login"))
            .header("x-forwarded-for", "198.51.100.20")
            .form(&[
                ("username", "frank"),
                ("password", PASSWORD),
                ("csrf", &form.csrf()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_a_valid_csrf_token_are_refused() {
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("gina").await;
    let b = srv.browser();
    b.get("/login").await;
    let missing = b
        .post("/login", &[("username", "gina"), ("password", PASSWORD)])
        .await;
    assert_eq!(missing.status, 403);
    assert!(
        missing
            .body
            .contains("This form has expired or did not come from this site.")
    );
    let forged = b
        .post(
            "/login",
            &[
                ("username", "gina"),
                ("password", PASSWORD),
                ("csrf", "forged"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(b.cookie(COOKIE).is_none());

    // A token issued to another browser does not work in this one.
    let other = srv.browser();
    let token = other.get("/login").await.csrf();
    let stolen = b
        .post(
            "/login",
            &[
                ("username", "gina"),
                ("password", PASSWORD),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(stolen.status, 403);

    // Logout needs the token too: a cross-site POST cannot sign a user out.
    assert_eq!(b.login("gina", PASSWORD).await.status, 303);
    let res = b.post("/logout", &[("csrf", "nope")]).await;
    assert_eq!(res.status, 403);
    assert_eq!(b.get("/account").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_replaces_any_session_the_browser_had() {
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("hana").await;
    srv.user("ivan").await;
    let b = srv.browser();

    // A session ID planted in the browser before sign-in (fixation) is not kept.
    let url = srv.base.parse().unwrap();
    b.jar
        .add_cookie_str(&format!("{COOKIE}=planted-by-attacker"), &url);
    assert_eq!(b.login("hana", PASSWORD).await.status, 303);
    let first = b.cookie(COOKIE).unwrap();
    assert_ne!(first, "planted-by-attacker");

    // Signing in again, as someone else, rotates the session and ends the old one.
    let form = b.get("/login").await;
    assert_eq!(form.status, 303, "signed-in users skip the form");
    let csrf = b.get("/account").await.csrf();
    let res = b
        .post(
            "/login",
            &[
                ("username", "ivan"),
                ("password", PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let second = b.cookie(COOKIE).unwrap();
    assert_ne!(first, second);
    let old = srv.browser();
    old.jar.add_cookie_str(&format!("{COOKIE}={first}"), &url);
    assert_eq!(
        old.get("/account").await.status,
        303,
        "the previous session ended"
    );
    assert!(b.get("/account").await.body.contains(">ivan</span>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_after_the_idle_timeout() {
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("jo").await;
    let b = srv.browser();
    b.login("jo", PASSWORD).await;
    srv.clock.advance(chrono::Duration::hours(7));
    assert_eq!(
        b.get("/account").await.status,
        200,
        "use keeps the session alive"
    );
    srv.clock.advance(chrono::Duration::hours(7));
    assert_eq!(b.get("/account").await.status, 200);
    srv.clock
        .advance(chrono::Duration::hours(8) + chrono::Duration::seconds(1));
    assert_eq!(b.get("/account").await.status, 303, "idle for 8 hours");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_administrator_must_replace_the_one_time_password() {
    let srv = TestServer::start(Backend::Embedded).await;
    // The bootstrap password went to the log; set a known one-time one the same way.
    srv.services
        .set_password(
            &portcullis::service::Actor::cli(),
            "admin",
            "one-time-secret-1",
            true,
        )
        .await
        .unwrap();
    let b = srv.browser();
    let res = b.login("admin", "one-time-secret-1").await;
    assert_eq!(res.location.as_deref(), Some("/account/password"));
    let acct = b.get("/account").await;
    assert_eq!(acct.location.as_deref(), Some("/account/password"));
    let form = b.get("/account/password").await;
    assert!(form.body.contains("Choose a new password"));

    let csrf = form.csrf();
    let mismatch = b
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", "one-time-secret-1"),
                ("new", "a new passphrase"),
                ("confirm", "different"),
            ],
        )
        .await;
    assert_eq!(mismatch.status, 400);
    assert!(mismatch.body.contains("differ"));
    let short = b
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", "one-time-secret-1"),
                ("new", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, 400);
    assert!(
        short.body.contains("at least 10 characters"),
        "{}",
        short.body
    );
    let ok = b
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", "one-time-secret-1"),
                ("new", "a new passphrase"),
                ("confirm", "a new passphrase"),
            ],
        )
        .await;
    assert_eq!(ok.location.as_deref(), Some("/account"), "{}", ok.body);
    let acct = b.get("/account").await;
    assert!(acct.body.contains(">admin</span>"));
    assert!(acct.body.contains("admins"), "admin is in the admins group");
    // The old password is gone, the new one works.
    let b2 = srv.browser();
    assert_eq!(b2.login("admin", "one-time-secret-1").await.status, 401);
    assert_eq!(b2.login("admin", "a new passphrase").await.status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_users_cannot_sign_in_and_lose_their_sessions() {
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("kim").await;
    let b = srv.browser();
    b.login("kim", PASSWORD).await;
    assert_eq!(b.get("/account").await.status, 200);
    srv.services
        .set_user_status(
            &portcullis::service::Actor::cli(),
            "kim",
            portcullis::domain::UserStatus::Disabled,
        )
        .await
        .unwrap();
    assert_eq!(b.get("/account").await.status, 303);
    let res = srv.browser().login("kim", PASSWORD).await;
    assert_eq!(res.status, 403);
    assert!(res.body.contains("This account is disabled"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_security_headers_and_never_redirect_off_site() {
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("lee").await;
    let b = srv.browser();
    let page = b.get("/login?next=https://evil.example/").await;
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert!(!page.body.contains("evil.example"));

    let form = b.get("/login").await;
    let res = b
        .post(
            "/login",
            &[
                ("username", "lee"),
                ("password", PASSWORD),
                ("csrf", &form.csrf()),
                ("next", "//evil.example/x"),
            ],
        )
        .await;
    assert_eq!(res.location.as_deref(), Some("/account"));

    let b2 = srv.browser();
    let form = b2.get("/login?next=/account/password").await;
    assert_eq!(
        crate::common::field_value(&form.body, "next").as_deref(),
        Some("/account/password")
    );
    let res = b2
        .post(
            "/login",
            &[
                ("username", "lee"),
                ("password", PASSWORD),
                ("csrf", &form.csrf()),
                ("next", "/account/password"),
            ],
        )
        .await;
    assert_eq!(res.location.as_deref(), Some("/account/password"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_clear_errors_not_server_errors() {
    let srv = TestServer::start(Backend::Embedded).await;
    let b = srv.browser();
    let res = b
        .http
        .post(srv.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("%%%=%%%&username=%ff")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    let huge = "a".repeat(200 * 1024);
    let res = b
        .http
        .post(srv.url("/login"))
        .form(&[("username", huge.as_str())])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    let missing = b.get("/no/such/page").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("Page not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_secure_when_the_issuer_is_https() {
    let mut env = TestEnv::new(Backend::Embedded);
    env.settings.issuer = Some("https://id.example.test".into());
    let srv = TestServer::start_with(env).await;
    srv.user("pat").await;
    // Behind a TLS-terminating proxy: talk plain HTTP to the port.
    let b = crate::common::Browser::new(&format!("http://127.0.0.1:{}", srv.port));
    let form = b.get("/login").await;
    let csrf_cookie = form.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(csrf_cookie.contains("; Secure"), "{csrf_cookie}");
    let res = b
        .http
        .post(format!("http://127.0.0.1:{}/login", srv.port))
        .header("cookie", csrf_cookie.split(';').next().unwrap())
        .form(&[
            ("username", "pat"),
            ("password", PASSWORD),
            ("csrf", &form.csrf()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let session = res.headers()["set-cookie"].to_str().unwrap();
    assert!(session.starts_with("portcullis_session="), "{session}");
    assert!(
        session.contains("; Secure") && session.contains("HttpOnly"),
        "{session}"
    );
}
