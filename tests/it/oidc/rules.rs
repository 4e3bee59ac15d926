//! Every refusal the provider owes: redirect URIs, PKCE, codes, secrets,
//! refresh reuse, assertions, introspection, prompts.

use super::flow::decode_payload;
use super::{
    REDIRECT, VERIFIER, authorize_as, authorize_url, client, draft, param, post_token, redeem,
};
use crate::common::{Backend, Browser, PASSWORD, TestServer};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis::crypto::jws::SigningKey;
use portcullis::domain::{AuthMethod, SigningAlg};
use portcullis::service::oidc::clients::NewClient;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

async fn code(srv: &TestServer, b: &Browser, c: &NewClient, user: &str) -> String {
    let back = authorize_as(b, &authorize_url(srv, c, &[]), user).await;
    param(&back, "code").unwrap_or_else(|| panic!("no code in {back}"))
}

pub async fn introspect(srv: &TestServer, c: &NewClient, token: &str) -> Value {
    let secret = c.secret.as_deref().unwrap_or_default();
    as_client(
        &srv.url("/introspect"),
        &c.client.client_id,
        secret,
        &[("token", token)],
    )
    .await
}

/// A form POSTed with the client's Basic credentials; the JSON answer.
pub async fn as_client(url: &str, id: &str, secret: &str, form: &[(&str, &str)]) -> Value {
    reqwest::Client::new()
        .post(url)
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn setup() -> (TestServer, NewClient, Browser) {
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("carol").await;
    let c = client(&srv, draft("rules")).await;
    let b = srv.browser();
    (srv, c, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistered_redirect_uris_get_a_page_never_a_redirect() {
    let (srv, c, b) = setup().await;
    for bad in [
        "http://localhost:9999/cb/extra",
        "https://evil.example/cb",
        "",
    ] {
        let page = b
            .get_url(&authorize_url(&srv, &c, &[("redirect_uri", bad)]))
            .await;
        assert_eq!(page.status, 400, "{bad}");
        assert!(page.location.is_none());
        assert!(
            page.body
                .contains("This sign-in request cannot be completed"),
            "{}",
            page.body
        );
    }
    let page = b
        .get_url(&authorize_url(&srv, &c, &[("client_id", "nope")]))
        .await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("not registered"));
    // With client and redirect URI valid, errors go back to the client.
    let page = b
        .get_url(&authorize_url(&srv, &c, &[("response_type", "token")]))
        .await;
    let loc = page.location.unwrap();
    assert!(loc.starts_with(REDIRECT));
    assert_eq!(
        param(&loc, "error").as_deref(),
        Some("unsupported_response_type")
    );
    assert_eq!(param(&loc, "state").as_deref(), Some("st"));
    assert_eq!(param(&loc, "iss").as_deref(), Some(srv.base.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkce_is_required_and_must_be_s256_and_must_match() {
    let (srv, c, b) = setup().await;
    for (extra, what) in [
        (
            vec![("code_challenge", ""), ("code_challenge_method", "")],
            "missing",
        ),
        (vec![("code_challenge_method", "plain")], "plain"),
    ] {
        let page = b.get_url(&authorize_url(&srv, &c, &extra)).await;
        let loc = page
            .location
            .unwrap_or_else(|| panic!("{what}: {}", page.body));
        assert_eq!(
            param(&loc, "error").as_deref(),
            Some("invalid_request"),
            "{what}"
        );
    }
    let mut public = draft("spa");
    public.auth_method = AuthMethod::None;
    public
        .grant_types
        .retain(|g| *g != portcullis::domain::GrantType::ClientCredentials);
    let p = client(&srv, public).await;
    let page = b
        .get_url(&authorize_url(&srv, &p, &[("code_challenge", "")]))
        .await;
    assert_eq!(
        param(&page.location.unwrap(), "error").as_deref(),
        Some("invalid_request")
    );

    let code = code(&srv, &b, &c, "carol").await;
    let wrong = "x".repeat(43);
    let (s, v) = redeem(&srv, &c, &code, &wrong).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    let (srv, c, b) = setup().await;
    let code = code(&srv, &b, &c, "carol").await;
    let (s, first) = redeem(&srv, &c, &code, VERIFIER).await;
    assert_eq!(s, 200, "{first}");
    let at = first["access_token"].as_str().unwrap();
    assert_eq!(introspect(&srv, &c, at).await["active"], true);
    let (s, again) = redeem(&srv, &c, &code, VERIFIER).await;
    assert_eq!((s, again["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(
        introspect(&srv, &c, at).await["active"],
        false,
        "tokens from the code are revoked"
    );
    let rt = first["refresh_token"].as_str().unwrap();
    let (s, v, _) = post_token(
        &srv,
        &c,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_expire_and_bind_to_client_and_redirect_uri() {
    let (srv, c, b) = setup().await;
    let other = client(&srv, draft("other")).await;
    let code1 = code(&srv, &b, &c, "carol").await;
    let (s, v) = redeem(&srv, &other, &code1, VERIFIER).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "another client's code"
    );

    let code2 = code(&srv, &b, &c, "carol").await;
    let (s, v, _) = post_token(
        &srv,
        &c,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code2),
            ("redirect_uri", "http://localhost:9999/x"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "redirect_uri mismatch"
    );

    let code3 = code(&srv, &b, &c, "carol").await;
    srv.clock.advance(chrono::Duration::seconds(61));
    let (s, v) = redeem(&srv, &c, &code3, VERIFIER).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "expired code: {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_client_secret_is_invalid_client_with_a_challenge() {
    let (srv, c, _) = setup().await;
    let r = reqwest::Client::new()
        .post(srv.url("/token"))
        .basic_auth(&c.client.client_id, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Basic realm=\"portcullis\""
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_client");
    // client_secret_post for a basic client is refused too.
    let r = reqwest::Client::new()
        .post(srv.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &c.client.client_id),
            ("client_secret", c.secret.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = reqwest::Client::new()
        .post(srv.url("/token"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_token_reuse_revokes_the_whole_grant() {
    let (srv, c, b) = setup().await;
    let code = code(&srv, &b, &c, "carol").await;
    let (_, first) = redeem(&srv, &c, &code, VERIFIER).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_string();
    let (s, second, _) = post_token(
        &srv,
        &c,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt1)],
    )
    .await;
    assert_eq!(s, 200);
    let rt2 = second["refresh_token"].as_str().unwrap().to_string();
    let at2 = second["access_token"].as_str().unwrap().to_string();
    // An attacker replays the old token: refused, and the grant dies.
    let (s, v, _) = post_token(
        &srv,
        &c,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt1)],
    )
    .await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")));
    let (s, v, _) = post_token(
        &srv,
        &c,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt2)],
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "the newest token died too"
    );
    assert_eq!(introspect(&srv, &c, &at2).await["active"], false);
    // A refresh cannot widen the scope.
    let code = super::rules::code(&srv, &b, &c, "carol").await;
    let (_, t) = redeem(&srv, &c, &code, VERIFIER).await;
    let (s, v, _) = post_token(
        &srv,
        &c,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("scope", "openid groups"),
        ],
    )
    .await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_scope")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_and_revocation() {
    let (srv, c, b) = setup().await;
    let code = code(&srv, &b, &c, "carol").await;
    let (_, t) = redeem(&srv, &c, &code, VERIFIER).await;
    let at = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    let v = introspect(&srv, &c, at).await;
    assert_eq!(v["active"], true);
    assert_eq!(v["username"], "carol");
    assert_eq!(v["client_id"], c.client.client_id.as_str());
    assert_eq!(
        introspect(&srv, &c, rt).await["token_type"],
        "refresh_token"
    );
    // Foreign and garbage tokens are simply inactive.
    let other = client(&srv, draft("other")).await;
    assert_eq!(introspect(&srv, &other, at).await["active"], false);
    assert_eq!(introspect(&srv, &c, "garbage").await["active"], false);
    assert_eq!(introspect(&srv, &c, "a.b.c").await["active"], false);

    // Revoking the access token ends it alone.
    let r = reqwest::Client::new()
        .post(srv.url("/revoke"))
        .basic_auth(&c.client.client_id, c.secret.as_deref())
        .form(&[("token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(introspect(&srv, &c, at).await["active"], false);
    let ui = reqwest::Client::new()
        .get(srv.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), 401);
    assert!(
        ui.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer error=\"invalid_token\"")
    );
    assert_eq!(introspect(&srv, &c, rt).await["active"], true);
    // Revoking the refresh token ends the grant.
    reqwest::Client::new()
        .post(srv.url("/revoke"))
        .basic_auth(&c.client.client_id, c.secret.as_deref())
        .form(&[("token", rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(introspect(&srv, &c, rt).await["active"], false);
    // Expired access tokens are inactive.
    let code = super::rules::code(&srv, &b, &c, "carol").await;
    let (_, t) = redeem(&srv, &c, &code, VERIFIER).await;
    srv.clock
        .advance(chrono::Duration::seconds(c.client.access_token_ttl + 1));
    assert_eq!(
        introspect(&srv, &c, t["access_token"].as_str().unwrap()).await["active"],
        false
    );
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::digest([ipad.as_slice(), msg].concat());
    Sha256::digest([opad.as_slice(), inner.as_slice()].concat()).to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_accepts_real_signatures_and_refuses_none_and_hmac() {
    let srv = TestServer::start(Backend::Embedded).await;
    let key = SigningKey::generate(SigningAlg::ES256).unwrap();
    let rsa = SigningKey::generate(SigningAlg::RS256).unwrap();
    let mut d = draft("pkjwt");
    d.auth_method = AuthMethod::PrivateKeyJwt;
    d.jwks = Some(json!({"keys": [key.public_jwk(), rsa.public_jwk()]}));
    let c = client(&srv, d).await;
    let id = c.client.client_id.clone();
    let now = srv.clock_now();
    let claims = |jti: &str| json!({"iss": id, "sub": id, "aud": srv.url("/token"), "exp": now + 60, "iat": now, "jti": jti});
    let send = |assertion: String| {
        let url = srv.url("/token");
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.as_str()),
                ])
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap())
        }
    };
    let good = key.sign("JWT", &claims("j1")).unwrap();
    let (s, v) = send(good.clone()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        decode_payload(v["access_token"].as_str().unwrap())["sub"],
        id.as_str()
    );
    let (s, _) = send(good).await;
    assert_eq!(s, 401, "an assertion is single use");

    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims("j2"))
    );
    assert_eq!(send(none).await.0, 401, "alg none");

    // HS256 keyed with the client's public RSA key: classic algorithm confusion.
    let signing_input = format!(
        "{}.{}",
        b64(&json!({"alg": "HS256", "typ": "JWT", "kid": rsa.kid()})),
        b64(&claims("j3"))
    );
    let public_bytes = rsa.public_jwk().to_string();
    let mac = URL_SAFE_NO_PAD.encode(hmac_sha256(
        public_bytes.as_bytes(),
        signing_input.as_bytes(),
    ));
    assert_eq!(
        send(format!("{signing_input}.{mac}")).await.0,
        401,
        "HS256 with the public key"
    );
    let n = rsa.public_jwk()["n"].as_str().unwrap().to_string();
    let mac = URL_SAFE_NO_PAD.encode(hmac_sha256(n.as_bytes(), signing_input.as_bytes()));
    assert_eq!(
        send(format!("{signing_input}.{mac}")).await.0,
        401,
        "HS256 with the modulus"
    );

    let stranger = SigningKey::generate(SigningAlg::ES256).unwrap();
    assert_eq!(
        send(stranger.sign("JWT", &claims("j4")).unwrap()).await.0,
        401,
        "unregistered key"
    );
    let mut wrong_aud = claims("j5");
    wrong_aud["aud"] = json!("https://elsewhere.example/token");
    assert_eq!(
        send(key.sign("JWT", &wrong_aud).unwrap()).await.0,
        401,
        "wrong audience"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_none_login_and_max_age() {
    let (srv, c, b) = setup().await;
    let page = b
        .get_url(&authorize_url(&srv, &c, &[("prompt", "none")]))
        .await;
    assert_eq!(
        param(&page.location.unwrap(), "error").as_deref(),
        Some("login_required")
    );

    b.login("carol", PASSWORD).await;
    let page = b
        .get_url(&authorize_url(&srv, &c, &[("prompt", "none")]))
        .await;
    assert!(
        param(page.location.as_deref().unwrap(), "code").is_some(),
        "a signed-in user gets a code silently"
    );

    // prompt=login shows the sign-in form again even though signed in.
    let page = b
        .get_url(&authorize_url(&srv, &c, &[("prompt", "login")]))
        .await;
    let loc = page.location.unwrap();
    assert!(
        loc.starts_with("/login?") && loc.contains("reauth=1"),
        "{loc}"
    );
    let form = b.get(&loc).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("sign in again"));
    assert_eq!(
        crate::common::field_value(&form.body, "username").as_deref(),
        Some("carol")
    );
    let back = authorize_as(
        &b,
        &authorize_url(&srv, &c, &[("prompt", "login")]),
        "carol",
    )
    .await;
    assert!(param(&back, "code").is_some());

    // max_age: an old sign-in must be repeated.
    srv.clock.advance(chrono::Duration::minutes(10));
    let page = b
        .get_url(&authorize_url(&srv, &c, &[("max_age", "300")]))
        .await;
    assert!(page.location.unwrap().contains("reauth=1"));
    let page = b
        .get_url(&authorize_url(&srv, &c, &[("max_age", "3600")]))
        .await;
    assert!(param(&page.location.unwrap(), "code").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_is_asked_once_and_remembered() {
    let srv = TestServer::start(Backend::Embedded).await;
    srv.user("dana").await;
    let opts = portcullis::service::oidc::clients::ClientOptions::default();
    let c = srv
        .services
        .create_client(
            &portcullis::service::Actor::cli(),
            draft("Third Party"),
            opts,
        )
        .await
        .unwrap();
    let b = srv.browser();
    b.login("dana", PASSWORD).await;
    let page = b.get_url(&authorize_url(&srv, &c, &[])).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("Third Party wants to access your account"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Your e-mail address"));
    let tx = crate::common::field_value(&page.body, "tx").unwrap();
    let denied = b
        .post(
            "/authorize/consent",
            &[("csrf", &page.csrf()), ("tx", &tx), ("decision", "deny")],
        )
        .await;
    assert_eq!(
        param(&denied.location.unwrap(), "error").as_deref(),
        Some("access_denied")
    );

    let page = b.get_url(&authorize_url(&srv, &c, &[])).await;
    let tx = crate::common::field_value(&page.body, "tx").unwrap();
    let ok = b
        .post(
            "/authorize/consent",
            &[("csrf", &page.csrf()), ("tx", &tx), ("decision", "allow")],
        )
        .await;
    assert!(param(&ok.location.unwrap(), "code").is_some());
    // Remembered: the next request goes straight through; prompt=consent asks again.
    let page = b.get_url(&authorize_url(&srv, &c, &[])).await;
    assert!(param(&page.location.unwrap(), "code").is_some());
    let page = b
        .get_url(&authorize_url(&srv, &c, &[("prompt", "consent")]))
        .await;
    assert_eq!(page.status, 200);
    let page = b
        .get_url(&authorize_url(
            &srv,
            &c,
            &[("prompt", "none"), ("scope", "openid email offline_access")],
        ))
        .await;
    assert!(param(&page.location.unwrap(), "code").is_some());
}
