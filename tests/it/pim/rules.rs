//! Rules 1-4 on both protocols with a fixed clock, the window's end to the
//! second, and the network and time-of-day conditions across a daylight
//! saving change.

use super::*;
use crate::common::{Backend, TestEnv, backends};
use crate::saml::{authn_request, decode, redirect_url, register_sp, until_response};
use chrono::{DateTime, Duration, TimeZone, Utc};
use portcullis::domain::NameIdFormat;

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

fn roles(c: &Value) -> Vec<String> {
    c["roles"]
        .as_array()
        .map(|a| a.iter().map(|r| r.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// A SAML assertion for the signed-in browser: (xml, every NotOnOrAfter).
async fn assertion(srv: &TestServer, b: &Browser, n: u32) -> (String, Vec<DateTime<Utc>>) {
    let page = b
        .get_url(&redirect_url(
            srv,
            &authn_request(srv, &format!("_req{n}"), ""),
            "r",
        ))
        .await;
    let (resp, _) = until_response(b, page, "ada").await;
    let xml = decode(&resp);
    let limits = xml
        .split("NotOnOrAfter=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().parse().unwrap())
        .collect();
    (xml, limits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_exist_only_inside_the_window_on_oidc_and_saml() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        let b = signed_in(&srv, "ada").await;
        privileged_role(&srv, open_policy(), "ada").await;
        register_sp(&srv, NameIdFormat::Persistent).await;
        let c = rp_client(&srv).await;
        let scope = "openid offline_access";

        // Eligible is not active: nothing is emitted.
        let t = tokens(&srv, &b, &c, scope).await;
        assert!(claims(t["id_token"].as_str().unwrap())["pim"].is_null());
        assert!(!roles(&claims(t["access_token"].as_str().unwrap())).contains(&ROLE.into()));
        let (xml, _) = assertion(&srv, &b, 1).await;
        assert!(!xml.contains(ROLE), "{backend:?}");

        let (st, q) = request(&b, 2, None).await;
        assert_eq!(st, 201, "{q}");
        assert_eq!(q["state"], "active");
        let end = at(&q["ends_at"]);
        assert_eq!(end, crate::common::t0() + Duration::seconds(120));

        // Rule 1 and 2 on OIDC: the role is there, nothing outlives the window.
        let t = tokens(&srv, &b, &c, scope).await;
        for jwt in [&t["id_token"], &t["access_token"]] {
            let cl = claims(jwt.as_str().unwrap());
            assert!(roles(&cl).contains(&ROLE.into()), "{cl}");
            assert_eq!(cl["pim"][0]["role"], ROLE);
            assert_eq!(cl["pim"][0]["activation"], q["id"]);
            assert_eq!(cl["pim"][0]["until"], end.timestamp());
            assert!(cl["exp"].as_i64().unwrap() <= end.timestamp(), "{cl}");
        }
        assert!(t["expires_in"].as_i64().unwrap() <= 120);
        let info: Value = reqwest::Client::new()
            .get(srv.url("/userinfo"))
            .bearer_auth(t["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(roles(&info).contains(&ROLE.into()), "{info}");
        // ... and on SAML: the role attribute, and every NotOnOrAfter capped.
        let (xml, limits) = assertion(&srv, &b, 2).await;
        assert!(
            xml.contains(&format!(">{ROLE}</saml:AttributeValue>")),
            "{xml}"
        );
        assert!(xml.contains("SessionNotOnOrAfter"));
        assert!(
            limits.len() >= 3 && limits.iter().all(|l| *l <= end),
            "{limits:?}"
        );

        // One second before the end a refresh still carries the role,
        // expiring exactly at the end.
        srv.clock.advance(Duration::seconds(119));
        let (st, r1) = refresh(&srv, &c, t["refresh_token"].as_str().unwrap()).await;
        assert_eq!(st, 200, "{r1}");
        let cl = claims(r1["access_token"].as_str().unwrap());
        assert!(roles(&cl).contains(&ROLE.into()));
        assert_eq!(cl["exp"].as_i64().unwrap(), end.timestamp());
        let (xml, limits) = assertion(&srv, &b, 3).await;
        assert!(xml.contains(ROLE) && limits.iter().all(|l| *l <= end));

        // One second after: rule 3, the refresh works but the role is gone;
        // rule 4, the elevated token is inactive; SAML carries no role.
        srv.clock.advance(Duration::seconds(2));
        let (st, r2) = refresh(&srv, &c, r1["refresh_token"].as_str().unwrap()).await;
        assert_eq!(st, 200, "{r2}");
        for jwt in [&r2["id_token"], &r2["access_token"]] {
            let cl = claims(jwt.as_str().unwrap());
            assert!(cl["pim"].is_null(), "{cl}");
            assert!(!roles(&cl).contains(&ROLE.into()));
        }
        assert!(
            r2["expires_in"].as_i64().unwrap() > 120,
            "back to the client's own lifetime"
        );
        let i = introspect(&srv, &c, r1["access_token"].as_str().unwrap()).await;
        assert_eq!(i["active"], false, "{i}");
        let (xml, _) = assertion(&srv, &b, 4).await;
        assert!(!xml.contains(ROLE));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_and_time_of_day_conditions_across_daylight_saving() {
    let mut env = TestEnv::new(Backend::Embedded);
    env.settings.trusted_proxies =
        vec!["127.0.0.1/32".parse().unwrap(), "::1/128".parse().unwrap()];
    // Friday before the spring change (CET, UTC+1), 13:30 in Berlin.
    let friday = Utc.with_ymd_and_hms(2026, 3, 27, 12, 30, 0).unwrap();
    let srv = TestServer::start_at(env, friday).await;
    let policy = PolicyInput {
        windows: vec!["Mon-Fri 14:00-16:00 Europe/Berlin".into()],
        networks: vec!["203.0.113.0/24".into()],
        ..open_policy()
    };
    let b = signed_in(&srv, "ada").await;
    privileged_role(&srv, policy, "ada").await;
    let c = rp_client(&srv).await;
    let vpn = Some("203.0.113.9");
    let cafe = Some("198.51.100.7");

    let (st, e) = request(&b, 120, vpn).await;
    assert_eq!(st, 403, "{e}");
    assert_eq!(e["error"], "outside_window");
    assert_eq!(
        e["error_description"],
        "outside the allowed window Mon–Fri 14:00–16:00 Europe/Berlin"
    );

    // 13:30 UTC is 14:30 in Berlin before the change: allowed, and the
    // window stops at 16:00 Berlin = 15:00 UTC although 2h were asked.
    srv.clock.advance(Duration::hours(1));
    let (st, q) = request(&b, 120, vpn).await;
    assert_eq!(st, 201, "{q}");
    assert_eq!(
        at(&q["ends_at"]),
        Utc.with_ymd_and_hms(2026, 3, 27, 15, 0, 0).unwrap()
    );
    assert_eq!(end_elevation(&b, &q["id"]).await.0, 200);

    // Monday after the change (CEST, UTC+2): 12:30 UTC is 14:30 in Berlin.
    srv.clock
        .set(Utc.with_ymd_and_hms(2026, 3, 30, 12, 30, 0).unwrap());
    assert_eq!(
        b.login("ada", PASSWORD).await.status,
        303,
        "a new day, a new sign-in"
    );
    let (st, e) = request(&b, 120, cafe).await;
    assert_eq!(st, 403, "{e}");
    assert_eq!(e["error"], "network_not_allowed");
    assert_eq!(
        e["error_description"],
        "your address 198.51.100.7 is not in an allowed network"
    );
    let (st, q) = request(&b, 120, vpn).await;
    assert_eq!(st, 201, "{q}");
    assert_eq!(
        at(&q["ends_at"]),
        Utc.with_ymd_and_hms(2026, 3, 30, 14, 0, 0).unwrap()
    );

    // Rule 1's conditions hold per issuance: from the café no role, from
    // the VPN the role.
    let from_cafe = tokens_from(&srv, &b, &c, "openid", cafe).await;
    assert!(claims(from_cafe["id_token"].as_str().unwrap())["pim"].is_null());
    // A privileged app says why it refuses: the window is there, its
    // network is not.
    let opts = portcullis::service::oidc::clients::ClientOptions {
        consent_required: false,
        required_role: Some(ROLE.into()),
        ..Default::default()
    };
    let gated = srv
        .services
        .create_client(&Actor::cli(), draft("ledger"), opts)
        .await
        .unwrap();
    let r = b
        .http
        .get(crate::oidc::authorize_url(&srv, &gated, &[]))
        .header("X-Forwarded-For", "198.51.100.7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("its conditions do not hold")
    );
    let from_vpn = tokens_from(&srv, &b, &c, "openid", vpn).await;
    assert_eq!(
        claims(from_vpn["id_token"].as_str().unwrap())["pim"][0]["role"],
        ROLE
    );
    // Outside the time-of-day window (after 16:00 Berlin) nothing, though
    // the network is right: the window itself has ended.
    srv.clock.advance(Duration::minutes(91));
    let late = tokens_from(&srv, &b, &c, "openid", vpn).await;
    assert!(claims(late["id_token"].as_str().unwrap())["pim"].is_null());
}
