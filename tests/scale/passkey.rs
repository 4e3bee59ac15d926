//! Passkeys through the balancer with webauthn-rs' software authenticator:
//! every ceremony is begun on one node and finished on another, so its
//! state must travel through Redis.

use crate::cluster::Cluster;
use crate::http::Browser;
use crate::oidc::signed_in;
use crate::require_environment;
use serde_json::{Value, json};
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::{
    AllowCredentials, CreationChallengeResponse, PublicKeyCredential, RequestChallengeResponse,
    ResidentKeyRequirement,
};

/// A software authenticator holding one credential. It cannot keep
/// resident keys, so (as in the single-node suite) creation is relaxed to a
/// non-resident key and a usernameless answer is given the user handle a
/// resident key would return; neither is covered by a signature.
struct Key {
    auth: SoftPasskey,
    origin: Url,
    cred_id: Option<Vec<u8>>,
    user_handle: Vec<u8>,
}

impl Key {
    fn new(c: &Cluster) -> Self {
        Self {
            auth: SoftPasskey::new(true),
            origin: Url::parse(&c.issuer).unwrap(),
            cred_id: None,
            user_handle: vec![],
        }
    }

    fn create(&mut self, options: &Value) -> Value {
        let mut ccr: CreationChallengeResponse = serde_json::from_value(options.clone()).unwrap();
        if let Some(s) = ccr.public_key.authenticator_selection.as_mut() {
            s.require_resident_key = false;
            s.resident_key = Some(ResidentKeyRequirement::Discouraged);
        }
        self.user_handle = ccr.public_key.user.id.to_vec();
        let cred = self
            .auth
            .do_registration(self.origin.clone(), ccr)
            .expect("soft authenticator registers");
        self.cred_id = Some(cred.raw_id.to_vec());
        serde_json::to_value(cred).unwrap()
    }

    fn get(&mut self, options: &Value) -> Value {
        let mut rcr: RequestChallengeResponse = serde_json::from_value(options.clone()).unwrap();
        assert!(rcr.public_key.allow_credentials.is_empty(), "usernameless");
        rcr.public_key.allow_credentials = vec![AllowCredentials {
            type_: "public-key".into(),
            id: self.cred_id.clone().expect("registered"),
            transports: None,
        }];
        rcr.mediation = None;
        let mut cred: PublicKeyCredential = self
            .auth
            .do_authentication(self.origin.clone(), rcr)
            .expect("soft authenticator signs");
        cred.response.user_handle = Some(self.user_handle.clone());
        serde_json::to_value(cred).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts three servers and nginx: make scale-test"]
async fn passkey_ceremonies_begun_on_one_node_finish_on_another() {
    require_environment!();
    let c = Cluster::start();
    let b = signed_in(&c, "pia").await;
    let mut key = Key::new(&c);

    // Enrollment.
    let csrf = b.get("/account/security").await.csrf();
    let start = b
        .send(
            b.http
                .post(c.url("/webauthn/register/start"))
                .json(&json!({"csrf": csrf, "kind": "passkey"})),
        )
        .await;
    assert_eq!(start.status, 200, "{}", start.body);
    let options = start.json();
    let cred = key.create(&options["options"]);
    let finish = b
        .send(b.http.post(c.url("/webauthn/register/finish")).json(
            &json!({"csrf": csrf, "ceremony": options["ceremony"], "name": "Laptop", "credential": cred}),
        ))
        .await;
    assert_eq!(finish.status, 200, "{}", finish.body);
    assert_ne!(
        start.node, finish.node,
        "registration finished on another node"
    );

    // Usernameless sign-in in a browser that knows nobody.
    let fresh = Browser::new(&c);
    let csrf = fresh.get("/login").await.csrf();
    let start = fresh
        .send(
            fresh
                .http
                .post(c.url("/webauthn/login/start"))
                .json(&json!({"csrf": csrf})),
        )
        .await;
    assert_eq!(start.status, 200, "{}", start.body);
    let options = start.json();
    let answer = key.get(&options["options"]);
    let body = json!({"csrf": csrf, "ceremony": options["ceremony"], "credential": answer, "next": "/account"});
    let finish = fresh
        .send(fresh.http.post(c.url("/webauthn/login/finish")).json(&body))
        .await;
    assert_eq!(finish.status, 200, "{}", finish.body);
    assert_ne!(start.node, finish.node, "sign-in finished on another node");
    assert_eq!(finish.json()["redirect"], "/account");
    let account = fresh.get("/account").await;
    assert!(account.body.contains("id=\"who\">pia<"), "{}", account.body);

    // The ceremony is spent on every node: the same answer again is refused.
    for _ in 0..2 {
        let again = fresh
            .send(fresh.http.post(c.url("/webauthn/login/finish")).json(&body))
            .await;
        assert_eq!(again.status, 400, "{}", again.body);
    }
    assert_eq!(fresh.nodes_seen(), 3, "{:?}", fresh.served_by);
}
