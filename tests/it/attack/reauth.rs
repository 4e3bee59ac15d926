//! A session that has not proved who it is recently cannot change how the
//! user signs in: no new passkey, authenticator app or recovery codes for
//! whoever holds an old session cookie.

use crate::common::{PASSWORD, TestServer, backends};
use chrono::Duration;
use serde_json::json;

const REAUTH: &str = "/login?reauth=1&next=%2Faccount%2Fsecurity";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_session_cannot_change_sign_in_methods() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        srv.user("pat").await;
        let b = srv.browser();
        assert_eq!(b.login("pat", PASSWORD).await.status, 303);
        // Fresh: adding an authenticator app starts.
        let csrf = b.get("/account/security").await.csrf();
        let p = b.post("/account/security/totp", &[("csrf", &csrf)]).await;
        assert_eq!(p.status, 200, "{backend:?}: {}", p.body);

        // Six minutes later the session still works, but cannot change how
        // pat signs in.
        srv.clock.advance(Duration::minutes(6));
        let page = b.get("/account/security").await;
        assert_eq!(page.status, 200);
        let csrf = page.csrf();
        for path in [
            "/account/security/totp",
            "/account/security/recovery",
            "/account/security/totp/remove",
        ] {
            let p = b.post(path, &[("csrf", &csrf)]).await;
            assert_eq!(p.status, 303, "{backend:?} {path}: {}", p.body);
            assert_eq!(p.location.as_deref(), Some(REAUTH), "{path}");
        }
        let (status, body) = b
            .post_json("/webauthn/register/start", &json!({"csrf": csrf}))
            .await;
        assert_eq!(status, 403, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("confirm it's you again"),
            "{body}"
        );

        // Signing in again makes it possible.
        let login = b.get(REAUTH).await;
        assert_eq!(login.status, 200);
        let again = b
            .post(
                "/login",
                &[
                    ("username", "pat"),
                    ("password", PASSWORD),
                    ("csrf", &login.csrf()),
                    ("next", "/account/security"),
                ],
            )
            .await;
        assert_eq!(again.location.as_deref(), Some("/account/security"));
        let csrf = b.get("/account/security").await.csrf();
        let (status, body) = b
            .post_json("/webauthn/register/start", &json!({"csrf": csrf}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
}
