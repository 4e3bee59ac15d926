//! Each client's access tokens are signed with the algorithm set for it
//! (`--access-token-alg`), under a key the JWKS publishes, and every
//! resource path of the server accepts them.

use super::flow::{decode_header, decode_payload};
use super::rules::introspect;
use super::{draft, http, post_token};
use crate::common::{TestServer, backends};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis::domain::SigningAlg;
use portcullis::protocol::oidc::registration::ClientDraft;
use portcullis::service::Actor;
use portcullis::service::oidc::clients::{ClientOptions, NewClient};
use serde_json::Value;

/// The JWK members a key for `alg` must have: `kty` and, but for RSA, `crv`.
pub fn key_type(alg: &str) -> (&'static str, Option<&'static str>) {
    match alg {
        "RS256" => ("RSA", None),
        "ES256" => ("EC", Some("P-256")),
        "EdDSA" => ("OKP", Some("Ed25519")),
        other => panic!("unexpected alg {other}"),
    }
}

/// The JWK Set as a resource server finds it: discovery's `jwks_uri`.
pub async fn discovered_jwks(srv: &TestServer) -> Vec<Value> {
    let get = |url: String| async move {
        let r = http().get(url).send().await.unwrap();
        r.json::<Value>().await.unwrap()
    };
    let meta = get(srv.url("/.well-known/openid-configuration")).await;
    let set = get(meta["jwks_uri"].as_str().unwrap().to_string()).await;
    set["keys"].as_array().unwrap().clone()
}

/// Verifies a JWS with OpenSSL directly, from the JWK alone (not with the
/// server's own verifier).
pub fn openssl_verifies(jwt: &str, jwk: &Value) -> bool {
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::ecdsa::EcdsaSig;
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::{Id, PKey};
    use openssl::rsa::Rsa;
    use openssl::sign::Verifier;

    let member = |name: &str| {
        let bytes = URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
        BigNum::from_slice(&bytes).unwrap()
    };
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
        return false;
    };
    match jwk["kty"].as_str().unwrap() {
        "RSA" => {
            let rsa = Rsa::from_public_components(member("n"), member("e")).unwrap();
            let key = PKey::from_rsa(rsa).unwrap();
            let mut v = Verifier::new(MessageDigest::sha256(), &key).unwrap();
            v.set_rsa_padding(openssl::rsa::Padding::PKCS1).unwrap();
            v.verify_oneshot(&sig, input.as_bytes()).unwrap_or(false)
        }
        "EC" => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
            let key = EcKey::from_public_key_affine_coordinates(&group, &member("x"), &member("y"))
                .unwrap();
            // JWS carries r || s, 32 bytes each (RFC 7518 3.4).
            if sig.len() != 64 {
                return false;
            }
            let rs = EcdsaSig::from_private_components(
                BigNum::from_slice(&sig[..32]).unwrap(),
                BigNum::from_slice(&sig[32..]).unwrap(),
            )
            .unwrap();
            rs.verify(&openssl::sha::sha256(input.as_bytes()), &key)
                .unwrap_or(false)
        }
        "OKP" => {
            let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
            let key = PKey::public_key_from_raw_bytes(&x, Id::ED25519).unwrap();
            let mut v = Verifier::new_without_digest(&key).unwrap();
            v.verify_oneshot(&sig, input.as_bytes()).unwrap_or(false)
        }
        other => panic!("unexpected kty {other}"),
    }
}

/// Checks what a resource server would: `typ`, `alg`, a published key for
/// the `kid` that fits the `alg`, and the signature under it.
pub fn assert_signed_with(jwt: &str, alg: SigningAlg, keys: &[Value]) {
    let h = decode_header(jwt);
    assert_eq!(h["typ"], "at+jwt", "{h}");
    assert_eq!(h["alg"], alg.as_str(), "{h}");
    let kid = h["kid"].as_str().expect("a kid");
    let jwk = keys
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("{alg}: kid {kid} is not in the JWKS"));
    let (kty, crv) = key_type(alg.as_str());
    assert_eq!(jwk["alg"], alg.as_str(), "{jwk}");
    assert_eq!(jwk["kty"], kty, "{jwk}");
    assert_eq!(jwk["crv"].as_str(), crv, "{jwk}");
    assert!(openssl_verifies(jwt, jwk), "{alg}: the signature verifies");
    // And the verifier does check: one changed claim and it fails.
    let (head, rest) = jwt.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let mut claims = decode_payload(jwt);
    claims["scope"] = Value::from("openid admin");
    let forged = format!(
        "{head}.{}.{sig}",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    assert!(!openssl_verifies(&forged, jwk), "{alg}: a forgery fails");
}

/// A first-party client whose access tokens are signed with `alg`.
pub async fn client_signing_with(srv: &TestServer, d: ClientDraft, alg: SigningAlg) -> NewClient {
    let opts = ClientOptions {
        consent_required: false,
        access_token_alg: alg,
        ..ClientOptions::default()
    };
    srv.services
        .create_client(&Actor::cli(), d, opts)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tokens_are_signed_with_the_clients_algorithm() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        let keys = discovered_jwks(&srv).await;
        for alg in SigningAlg::ALL {
            let (kty, crv) = key_type(alg.as_str());
            assert!(
                keys.iter().any(|k| k["alg"] == alg.as_str()
                    && k["kty"] == kty
                    && k["crv"].as_str() == crv
                    && k["use"] == "sig"),
                "{backend:?}: the JWKS publishes a {alg} key: {keys:?}"
            );
        }
        let b = crate::pim::signed_in(&srv, "ada").await;
        for alg in SigningAlg::ALL {
            let mut d = draft(&format!("api-{alg}"));
            d.scopes.push("pim".into());
            let c = client_signing_with(&srv, d, alg).await;
            assert_eq!(c.client.access_token_alg, alg);
            let stored = srv.services.need_client(&c.client.client_id).await.unwrap();
            assert_eq!(stored.access_token_alg, alg, "{backend:?}: stored");

            // Client credentials: signed with alg, live at /introspect.
            let (st, t, _) = post_token(&srv, &c, &[("grant_type", "client_credentials")]).await;
            assert_eq!(st, 200, "{t}");
            let at = t["access_token"].as_str().unwrap();
            assert_signed_with(at, alg, &keys);
            let claims = decode_payload(at);
            assert_eq!(claims["iss"], srv.base.as_str());
            assert_eq!(claims["aud"], c.client.client_id.as_str());
            assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
            let i = introspect(&srv, &c, at).await;
            assert_eq!(i["active"], true, "{backend:?} {alg}: {i}");

            // A user's token from the code flow: /userinfo, /introspect and
            // the PIM API take it.
            let t = crate::pim::tokens(&srv, &b, &c, "openid email pim").await;
            let at = t["access_token"].as_str().unwrap();
            assert_signed_with(at, alg, &keys);
            let id_token = t["id_token"].as_str().unwrap();
            assert_eq!(
                decode_header(id_token)["alg"],
                "RS256",
                "the ID token keeps its own algorithm"
            );
            let r = http()
                .get(srv.url("/userinfo"))
                .bearer_auth(at)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{backend:?} {alg}: /userinfo");
            let info: Value = r.json().await.unwrap();
            assert_eq!(info["email"], "ada@example.test");
            assert_eq!(introspect(&srv, &c, at).await["active"], true);
            let (st, e) = crate::pim::call(&srv, at, false, "/api/v1/me/elevations").await;
            assert_eq!(st, 200, "{backend:?} {alg}: PIM API: {e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_algorithm_affects_new_tokens_only() {
    let srv = TestServer::start(crate::common::Backend::Embedded).await;
    let keys = discovered_jwks(&srv).await;
    let c = client_signing_with(&srv, draft("switching"), SigningAlg::ES256).await;
    let cc = [("grant_type", "client_credentials")];
    let before = post_token(&srv, &c, &cc).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_signed_with(&before, SigningAlg::ES256, &keys);

    let changes = portcullis::service::oidc::clients::ClientChanges {
        access_token_alg: Some(SigningAlg::EdDSA),
    };
    let updated = srv
        .services
        .update_client(&Actor::cli(), &c.client.client_id, changes)
        .await
        .unwrap();
    assert_eq!(updated.access_token_alg, SigningAlg::EdDSA);
    assert_eq!(updated.id_token_alg, c.client.id_token_alg, "nothing else");
    assert_eq!(updated.redirect_uris, c.client.redirect_uris);

    let after = post_token(&srv, &c, &cc).await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_signed_with(&after, SigningAlg::EdDSA, &keys);
    for t in [&before, &after] {
        assert_eq!(introspect(&srv, &c, t).await["active"], true, "{t}");
    }

    // Nothing to change is an error, and changes nothing.
    let none = portcullis::service::oidc::clients::ClientChanges::default();
    assert!(
        srv.services
            .update_client(&Actor::cli(), &c.client.client_id, none)
            .await
            .is_err()
    );
    let missing = portcullis::service::oidc::clients::ClientChanges {
        access_token_alg: Some(SigningAlg::RS256),
    };
    let e = srv
        .services
        .update_client(&Actor::cli(), "no-such-client", missing)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no client"), "{e}");
}
