//! Full flows driven by the openidconnect crate: discovery, code + PKCE,
//! ID-token validation for every signing algorithm, userinfo, refresh,
//! client credentials.

use super::{authorize_as, client, draft, http, param, rp};
use crate::common::{Backend, TestServer, backends};
use openidconnect::core::{CoreAuthenticationFlow, CoreJwsSigningAlgorithm, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    Scope, TokenResponse,
};
use portcullis::domain::SigningAlg;
use portcullis::service::Actor;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_flow_with_pkce_for_every_signing_algorithm() {
    for backend in backends() {
        let srv = TestServer::start_now(backend).await;
        srv.user("alice").await;
        srv.services
            .create_group(&Actor::cli(), "ops", "")
            .await
            .unwrap();
        srv.services
            .set_membership(&Actor::cli(), "ops", "alice", true)
            .await
            .unwrap();
        srv.services
            .create_role(&Actor::cli(), "billing:viewer", "")
            .await
            .unwrap();
        srv.services
            .set_role_assignment(&Actor::cli(), "billing:viewer", "alice", true)
            .await
            .unwrap();
        let alice_id = srv
            .services
            .user_details("alice")
            .await
            .unwrap()
            .user
            .id
            .to_string();

        for (alg, rp_alg) in [
            (
                SigningAlg::RS256,
                CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            ),
            (SigningAlg::ES256, CoreJwsSigningAlgorithm::EcdsaP256Sha256),
            (SigningAlg::EdDSA, CoreJwsSigningAlgorithm::EdDsa),
        ] {
            let mut d = draft(&format!("app-{alg}"));
            d.id_token_alg = alg;
            let c = client(&srv, d).await;
            let rp = rp(&srv, &c).await;
            let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
            let (url, state, nonce) = rp
                .authorize_url(
                    CoreAuthenticationFlow::AuthorizationCode,
                    CsrfToken::new_random,
                    Nonce::new_random,
                )
                .add_scope(Scope::new("profile".into()))
                .add_scope(Scope::new("email".into()))
                .add_scope(Scope::new("groups".into()))
                .add_scope(Scope::new("roles".into()))
                .add_scope(Scope::new("offline_access".into()))
                .set_pkce_challenge(challenge)
                .url();
            let b = srv.browser();
            let back = authorize_as(&b, url.as_str(), "alice").await;
            assert!(back.starts_with(super::REDIRECT), "{back}");
            assert_eq!(
                param(&back, "state").as_deref(),
                Some(state.secret().as_str())
            );
            assert_eq!(
                param(&back, "iss").as_deref(),
                Some(srv.base.as_str()),
                "RFC 9207 iss"
            );
            let code = param(&back, "code").expect("a code");

            let tokens = rp
                .exchange_code(AuthorizationCode::new(code))
                .unwrap()
                .set_pkce_verifier(verifier)
                .request_async(&http())
                .await
                .unwrap_or_else(|e| panic!("{backend:?} {alg}: token exchange: {e:?}"));
            let id_token = tokens.id_token().expect("an ID token");
            let verifier = rp.id_token_verifier().set_allowed_algs(vec![rp_alg]);
            let claims = id_token
                .claims(&verifier, &nonce)
                .unwrap_or_else(|e| panic!("{alg}: {e:?}"));
            assert_eq!(
                claims.subject().as_str(),
                alice_id,
                "sub is the opaque user id"
            );
            assert_ne!(claims.subject().as_str(), "alice");
            assert_eq!(claims.preferred_username().unwrap().as_str(), "alice");
            assert_eq!(claims.email().unwrap().as_str(), "alice@example.test");
            assert_eq!(
                claims.auth_context_ref().unwrap().as_str(),
                "urn:portcullis:acr:pwd"
            );
            assert_eq!(claims.auth_method_refs().unwrap()[0].as_str(), "pwd");
            assert!(claims.auth_time().is_some());
            let expected = AccessTokenHash::from_token(
                tokens.access_token(),
                id_token.signing_alg().unwrap(),
                id_token.signing_key(&verifier).unwrap(),
            )
            .unwrap();
            assert_eq!(
                claims.access_token_hash(),
                Some(&expected),
                "{alg}: at_hash"
            );

            // The raw ID token carries sid, groups and roles.
            let raw: serde_json::Value = decode_payload(&id_token.to_string());
            assert!(raw["sid"].as_str().is_some_and(|s| !s.is_empty()));
            assert_eq!(raw["groups"], serde_json::json!(["ops"]));
            assert_eq!(raw["roles"], serde_json::json!(["billing:viewer"]));

            // The access token is an RFC 9068 JWT.
            let at = tokens.access_token().secret();
            let header = decode_header(at);
            assert_eq!(header["typ"], "at+jwt");
            let at_claims = decode_payload(at);
            assert_eq!(at_claims["client_id"], c.client.client_id.as_str());
            assert_eq!(at_claims["sub"], alice_id.as_str());
            assert!(at_claims["jti"].as_str().is_some());
            assert!(at_claims["scope"].as_str().unwrap().contains("email"));

            let info: CoreUserInfoClaims = rp
                .user_info(
                    tokens.access_token().clone(),
                    Some(claims.subject().clone()),
                )
                .unwrap()
                .request_async(&http())
                .await
                .unwrap();
            assert_eq!(info.email().unwrap().as_str(), "alice@example.test");

            // Refresh: new tokens, the ID token still names alice.
            let refreshed = rp
                .exchange_refresh_token(
                    tokens
                        .refresh_token()
                        .expect("offline_access gives a refresh token"),
                )
                .unwrap()
                .request_async(&http())
                .await
                .unwrap();
            assert_ne!(
                refreshed.access_token().secret(),
                tokens.access_token().secret()
            );
            assert_ne!(
                refreshed.refresh_token().unwrap().secret(),
                tokens.refresh_token().unwrap().secret()
            );
            let again = refreshed.id_token().unwrap();
            let c2 = again.claims(&verifier, |_: Option<&Nonce>| Ok(())).unwrap();
            assert_eq!(c2.subject().as_str(), alice_id);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_and_form_post() {
    let srv = TestServer::start_now(Backend::Embedded).await;
    srv.user("bob").await;
    let c = client(&srv, draft("service")).await;
    let rp = rp(&srv, &c).await;
    let t = rp
        .exchange_client_credentials()
        .unwrap()
        .add_scope(Scope::new("groups".into()))
        .request_async(&http())
        .await
        .unwrap();
    let claims = decode_payload(t.access_token().secret());
    assert_eq!(claims["sub"], c.client.client_id.as_str());
    assert_eq!(claims["scope"], "groups");
    assert!(t.refresh_token().is_none());

    // form_post: the code arrives in an auto-submitting form, not the URL.
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (url, _, _) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .add_extra_param("response_mode", "form_post")
        .url();
    let b = srv.browser();
    b.login("bob", crate::common::PASSWORD).await;
    let page = b.get_url(url.as_str()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains(&format!("action=\"{}\"", super::REDIRECT)),
        "{}",
        page.body
    );
    assert!(crate::common::field_value(&page.body, "code").is_some());
    assert_eq!(
        crate::common::field_value(&page.body, "iss").as_deref(),
        Some(srv.base.as_str())
    );
    assert!(
        page.body
            .contains("<noscript><button type=\"submit\">Continue</button></noscript>")
    );
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("form-action http://localhost:9999"), "{csp}");
}

pub fn decode_part(jwt: &str, i: usize) -> serde_json::Value {
    use base64::Engine;
    let part = jwt.split('.').nth(i).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

pub fn decode_payload(jwt: &str) -> serde_json::Value {
    decode_part(jwt, 1)
}

pub fn decode_header(jwt: &str) -> serde_json::Value {
    decode_part(jwt, 0)
}
