//! Property tests for the parsers that take input from the network outside
//! SAML (see `saml::proptests` for those): authorization and token
//! parameters, client assertions, redirect URIs, the client address
//! headers. Whatever arrives, each answers without panicking and in time
//! that grows no faster than the input. Few cases by default so `cargo test`
//! stays fast; `PROPTEST_CASES` (e.g. from `make fuzz`) asks for more.

use super::client_ip;
use super::oidc::authorize::{AuthorizeParams, validate};
use super::oidc::{client_auth, scope, uri};
use super::params::{Limits, check};
use proptest::prelude::*;
use std::time::{Duration, Instant};

/// Generous for an unoptimised build; every reader here is linear.
const BOUND: Duration = Duration::from_secs(2);

/// `default_cases` cases, or `PROPTEST_CASES` when set (`make fuzz`).
pub(super) fn cases(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn config() -> ProptestConfig {
    cases(64)
}

/// Runs `f`, failing when it takes longer than a linear reader ever would.
pub(super) fn timed<T>(f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    assert!(start.elapsed() < BOUND, "took {:?}", start.elapsed());
    out
}

/// Names a request might carry, including repeats and near-misses.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("client_id".to_string()),
        Just("redirect_uri".to_string()),
        Just("response_type".to_string()),
        Just("scope".to_string()),
        Just("state".to_string()),
        Just("nonce".to_string()),
        Just("prompt".to_string()),
        Just("max_age".to_string()),
        Just("code_challenge".to_string()),
        Just("code_challenge_method".to_string()),
        Just("response_mode".to_string()),
        Just("acr_values".to_string()),
        Just("request".to_string()),
        "[a-z_]{0,12}",
        ".{0,8}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("app".to_string()),
        Just("https://app.example/cb".to_string()),
        Just("code".to_string()),
        Just("openid email".to_string()),
        Just("none login consent".to_string()),
        Just("S256".to_string()),
        Just("plain".to_string()),
        Just("form_post".to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999".to_string()),
        ".{0,40}",
        "[ -~]{0,300}",
    ]
}

fn raw_query() -> impl Strategy<Value = String> {
    prop::collection::vec((name(), value()), 0..80).prop_map(|pairs| {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parameter_bounds_never_panic(raw in prop::collection::vec(any::<u8>(), 0..70_000)) {
        timed(|| {
            let _ = check(&raw, &Limits::DEFAULT);
            let _ = check(&raw, &Limits::SAML);
        });
    }

    #[test]
    fn authorize_validation_never_panics(q in raw_query(), public in any::<bool>()) {
        let client = super::oidc::authorize::tests::client(public);
        timed(|| {
            if check(q.as_bytes(), &Limits::DEFAULT).is_ok() {
                let pairs = url::form_urlencoded::parse(q.as_bytes()).into_owned().collect();
                let _ = validate(&AuthorizeParams::from_pairs(pairs), Some(&client));
            }
        });
    }

    #[test]
    fn redirect_uris_and_scopes_never_panic(u in ".{0,300}", s in "[ -~\\t]{0,400}") {
        timed(|| {
            let _ = uri::check_redirect_uri(&u);
            let scopes = scope::parse(&s);
            let _ = scope::check_allowed(&scopes, &["openid".to_string()]);
        });
    }

    #[test]
    fn client_authentication_never_panics(basic in "[ -~]{0,300}", claims in ".{0,300}") {
        timed(|| {
            let _ = client_auth::parse_basic(&basic);
            let _ = client_auth::parse_basic(&format!("Basic {basic}"));
            let v = serde_json::from_str(&claims).unwrap_or(serde_json::Value::String(claims.clone()));
            let _ = client_auth::check_assertion_claims(
                &v,
                "app",
                &["https://id.example/token".to_string()],
                chrono::DateTime::from_timestamp(1_772_445_600, 0).unwrap(),
            );
            let _ = crate::crypto::jws::decode_header(&claims);
            let _ = crate::crypto::jws::verify(&claims, &[], &[]);
        });
    }

    #[test]
    fn client_address_headers_never_panic(
        lines in prop::collection::vec("[ -~]{0,200}", 0..6),
        peer in any::<[u8; 4]>(),
    ) {
        let trusted = ["10.0.0.0/8".parse().unwrap(), "127.0.0.0/8".parse().unwrap()];
        let peer = std::net::IpAddr::from(peer);
        timed(|| {
            let xff = client_ip::join_lines(lines.iter().map(String::as_str));
            let fwd = client_ip::forwarded_to_list(lines.iter().map(String::as_str));
            let a = client_ip::resolve(peer, xff.as_deref(), &trusted);
            let _ = client_ip::resolve(peer, fwd.as_deref(), &trusted);
            let _ = client_ip::throttle_unit(&a.to_string());
        });
    }
}

/// Linear time: a request ten times larger costs about ten times as much,
/// never a hundred. Measured as a ratio in one run, so a busy machine
/// shifts both sides alike.
#[test]
fn parameter_checks_grow_linearly() {
    let keys = |n| -> String {
        let mut s = String::from("client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb");
        for i in 0..n {
            s.push_str(&format!("&k{i}="));
        }
        s
    };
    let (small, large) = (keys(6_000), keys(60_000));
    let unbounded = Limits {
        max_pairs: usize::MAX,
        max_name: usize::MAX,
        max_value: usize::MAX,
        max_total: usize::MAX,
    };
    let client = super::oidc::authorize::tests::client(false);
    let cost = |s: &str| {
        let start = Instant::now();
        for _ in 0..5 {
            let _ = check(s.as_bytes(), &unbounded);
            let pairs: Vec<(String, String)> = url::form_urlencoded::parse(s.as_bytes())
                .into_owned()
                .collect();
            // Includes the duplicate-parameter check, once quadratic.
            let _ = validate(&AuthorizeParams::from_pairs(pairs), Some(&client));
        }
        start.elapsed().as_secs_f64()
    };
    let (a, b) = (cost(&small), cost(&large));
    assert!(b / a < 40.0, "10x input cost {:.1}x", b / a);
}
