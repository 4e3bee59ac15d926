//! Tests of the JWS module (kept apart: they outweigh the code).

use super::*;
use serde_json::json;
use std::sync::OnceLock;

/// RSA generation costs time: one key per alg, shared by the tests.
fn key(alg: Alg) -> &'static SigningKey {
    static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| Alg::ALL.map(|a| SigningKey::generate(a).unwrap()).to_vec());
    keys.iter().find(|k| k.alg() == alg).unwrap()
}

fn jwks() -> Vec<Value> {
    Alg::ALL.iter().map(|a| key(*a).public_jwk()).collect()
}

fn claims() -> Value {
    json!({"iss": "https://idp.example", "sub": "u1", "aud": ["c1"], "exp": 1_900_000_000, "n": "ü\"x"})
}

fn seg(t: &str, i: usize) -> &str {
    t.split('.').nth(i).unwrap()
}

/// The error `verify` gives (panics if it accepts).
fn err(t: &str, jwks: &[Value], allowed: &[Alg]) -> JwsError {
    verify(t, jwks, allowed).unwrap_err()
}

fn is_malformed(e: JwsError) -> bool {
    matches!(e, JwsError::Malformed(_))
}

fn is_key(e: JwsError) -> bool {
    matches!(e, JwsError::Key(_))
}

fn forge(header: &Value, claims: &Value, sig: &[u8]) -> String {
    let (h, c) = (header.to_string(), claims.to_string());
    format!("{}.{}.{}", b64(h.as_bytes()), b64(c.as_bytes()), b64(sig))
}

/// RFC 2104 by hand: the crate has no HMAC dependency of its own.
fn hs256(secret: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(&Sha256::digest(secret));
    let pad = |b: u8| k.map(|x| x ^ b);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

#[test]
fn alg_names_and_serde() {
    for a in Alg::ALL {
        assert_eq!(Alg::parse(a.as_str()), Some(a));
        assert_eq!(serde_json::to_value(a).unwrap(), json!(a.as_str()));
        assert_eq!(serde_json::from_value::<Alg>(json!(a.as_str())).unwrap(), a);
    }
    for s in ["rs256", "none", "HS256", "EDDSA", ""] {
        assert_eq!(Alg::parse(s), None);
    }
}

#[test]
fn round_trip_each_alg_with_exact_header() {
    for alg in Alg::ALL {
        let k = key(alg);
        let t = k.sign("at+jwt", &claims()).unwrap();
        assert_eq!(verify(&t, &jwks(), &Alg::ALL).unwrap(), claims(), "{alg:?}");
        let h = URL_SAFE_NO_PAD.decode(seg(&t, 0)).unwrap();
        let want = format!(
            r#"{{"alg":"{}","kid":"{}","typ":"at+jwt"}}"#,
            alg.as_str(),
            k.kid()
        );
        assert_eq!(String::from_utf8(h).unwrap(), want);
        assert_eq!(decode_unverified_claims(&t).unwrap(), claims());
        let hd = decode_header(&t).unwrap();
        assert_eq!(
            (hd.alg.as_str(), hd.kid.as_deref()),
            (alg.as_str(), Some(k.kid()))
        );
        assert_eq!(hd.typ.as_deref(), Some("at+jwt"));
        // kid is the thumbprint of the published key.
        assert_eq!(k.kid(), jwk_thumbprint(&k.public_jwk()).unwrap());
        let jwk = k.public_jwk();
        assert_eq!(
            (&jwk["use"], &jwk["alg"], &jwk["kid"]),
            (&json!("sig"), &json!(alg.as_str()), &json!(k.kid()))
        );
        assert!(jwk.get("d").is_none());
    }
    assert!(is_malformed(
        key(Alg::EdDSA).sign("JWT", &json!([1])).unwrap_err()
    ));
}

#[test]
fn rfc7638_vector() {
    let jwk = json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    });
    assert_eq!(
        jwk_thumbprint(&jwk).unwrap(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn pkcs8_round_trip_keeps_kid() {
    for alg in Alg::ALL {
        let k = key(alg);
        let der = k.to_pkcs8_der().unwrap();
        let k2 = SigningKey::from_pkcs8_der(alg, &der).unwrap();
        assert_eq!((k2.kid(), k2.public_jwk()), (k.kid(), k.public_jwk()));
        let t = k2.sign("JWT", &claims()).unwrap();
        assert_eq!(verify(&t, &[k.public_jwk()], &[alg]).unwrap(), claims());
        // DER of another kind of key is refused, not misread.
        let other = Alg::ALL.into_iter().find(|a| *a != alg).unwrap();
        assert!(is_key(SigningKey::from_pkcs8_der(other, &der).unwrap_err()));
    }
    assert!(is_key(
        SigningKey::from_pkcs8_der(Alg::RS256, b"garbage").unwrap_err()
    ));
}

#[test]
fn signature_sizes() {
    for (alg, len) in [(Alg::RS256, 256), (Alg::ES256, 64), (Alg::EdDSA, 64)] {
        let t = key(alg).sign("JWT", &claims()).unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(seg(&t, 2)).unwrap().len(),
            len,
            "{alg:?}"
        );
    }
}

#[test]
fn tampering_refused() {
    for alg in Alg::ALL {
        let k = key(alg);
        let jwks = [k.public_jwk()];
        let t = k.sign("JWT", &claims()).unwrap();
        let (h, p, s) = (seg(&t, 0), seg(&t, 1), seg(&t, 2));
        let mut c = claims();
        c["sub"] = json!("admin");
        let bad = format!("{h}.{}.{s}", b64(c.to_string().as_bytes()));
        assert_eq!(err(&bad, &jwks, &Alg::ALL), JwsError::BadSignature);
        let mut sig = URL_SAFE_NO_PAD.decode(s).unwrap();
        sig[10] ^= 1;
        assert_eq!(
            err(&format!("{h}.{p}.{}", b64(&sig)), &jwks, &Alg::ALL),
            JwsError::BadSignature
        );
        let h2 = json!({"alg": alg.as_str(), "kid": k.kid(), "typ": "other"});
        let bad = format!("{}.{p}.{s}", b64(h2.to_string().as_bytes()));
        assert_eq!(err(&bad, &jwks, &Alg::ALL), JwsError::BadSignature);
        // Extra or missing segments, and padding, are malformed.
        assert!(is_malformed(err(&format!("{t}.x"), &jwks, &Alg::ALL)));
        assert!(is_malformed(err(&format!("{h}.{p}"), &jwks, &Alg::ALL)));
        assert!(is_malformed(err(&format!("{t}="), &jwks, &Alg::ALL)));
    }
}

#[test]
fn other_key_and_unknown_kid_refused() {
    for alg in Alg::ALL {
        let k = key(alg);
        let other = SigningKey::generate(alg).unwrap();
        let t = other.sign("JWT", &claims()).unwrap();
        assert_eq!(err(&t, &[k.public_jwk()], &Alg::ALL), JwsError::UnknownKey);
        // The other key's kid claimed by our key: the signature does not verify.
        let mut jwk = k.public_jwk();
        jwk["kid"] = json!(other.kid());
        assert_eq!(err(&t, &[jwk], &Alg::ALL), JwsError::BadSignature);
        // The right key is picked by kid among several.
        let t = k.sign("JWT", &claims()).unwrap();
        assert_eq!(
            verify(&t, &[other.public_jwk(), k.public_jwk()], &Alg::ALL).unwrap(),
            claims()
        );
    }
}

#[test]
fn header_without_kid_tries_fitting_keys() {
    let k = SigningKey::generate(Alg::EdDSA).unwrap();
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"EdDSA"}"#),
        b64(claims().to_string().as_bytes())
    );
    let t = format!("{input}.{}", b64(&k.sign_bytes(input.as_bytes()).unwrap()));
    let set = [
        key(Alg::RS256).public_jwk(),
        key(Alg::EdDSA).public_jwk(),
        k.public_jwk(),
    ];
    assert_eq!(verify(&t, &set, &Alg::ALL).unwrap(), claims());
    assert_eq!(err(&t, &set[..2], &Alg::ALL), JwsError::BadSignature);
    assert_eq!(err(&t, &set[..1], &Alg::ALL), JwsError::UnknownKey);
}

#[test]
fn none_hs256_and_disallowed_alg_refused() {
    let k = key(Alg::RS256);
    let jwks = [k.public_jwk()];
    let unsupported = |s: &str| JwsError::UnsupportedAlg(s.into());
    for sig in [&b""[..], b"x"] {
        let t = forge(&json!({"alg": "none", "kid": k.kid()}), &claims(), sig);
        assert!(verify(&t, &jwks, &Alg::ALL).is_err());
    }
    let t = forge(&json!({"alg": "none", "kid": k.kid()}), &claims(), b"x");
    assert_eq!(err(&t, &jwks, &Alg::ALL), unsupported("none"));

    // Algorithm confusion: HS256 keyed with the RSA public key's encodings.
    let signing::Private::Rsa(sk) = &k.key else {
        unreachable!()
    };
    let der = sk.public_key_to_der().unwrap();
    let pem = sk.public_key_to_pem().unwrap();
    let h = b64(json!({"alg": "HS256", "kid": k.kid(), "typ": "JWT"})
        .to_string()
        .as_bytes());
    let input = format!("{h}.{}", b64(claims().to_string().as_bytes()));
    for secret in [&der[..], &pem[..], jwks[0].to_string().as_bytes()] {
        let t = format!("{input}.{}", b64(&hs256(secret, input.as_bytes())));
        assert_eq!(err(&t, &jwks, &Alg::ALL), unsupported("HS256"));
    }

    let t = k.sign("JWT", &claims()).unwrap();
    assert_eq!(
        err(&t, &jwks, &[Alg::ES256, Alg::EdDSA]),
        unsupported("RS256")
    );
    assert_eq!(err(&t, &jwks, &[]), unsupported("RS256"));
}

#[test]
fn unfit_or_broken_jwks_refused() {
    let k = key(Alg::ES256);
    let t = k.sign("JWT", &claims()).unwrap();
    let cases = [
        ("alg", json!("ES384")),
        ("alg", json!(null)),
        ("use", json!("enc")),
        ("crv", json!("P-384")),
        ("kty", json!("OKP")),
        ("key_ops", json!(["sign"])),
        ("x", json!("AAAA")),
        ("y", json!(b64(&[0; 32]))),
    ];
    for (member, value) in cases {
        let mut jwk = k.public_jwk();
        jwk[member] = value;
        assert!(is_key(err(&t, &[jwk], &Alg::ALL)), "{member}");
    }
    // An RSA key with the EC key's kid does not fit ES256.
    let mut rsa = key(Alg::RS256).public_jwk();
    rsa["kid"] = json!(k.kid());
    assert!(is_key(err(&t, &[rsa], &Alg::ALL)));
    let t = key(Alg::RS256).sign("JWT", &claims()).unwrap();
    for n in ["AQAB", &b64(&[0xff; 128])] {
        let mut jwk = key(Alg::RS256).public_jwk();
        jwk["n"] = json!(n);
        assert!(is_key(err(&t, &[jwk], &Alg::ALL)), "{n}");
    }
}

#[test]
fn garbage_never_panics() {
    let good = key(Alg::ES256).sign("JWT", &claims()).unwrap();
    let (h, p, s) = (seg(&good, 0), seg(&good, 1), seg(&good, 2));
    let big = "A".repeat(4000);
    let z64 = [0u8; 64];
    let mut inputs: Vec<String> = vec![
        String::new(),
        ".".into(),
        "..".into(),
        "...".into(),
        "a.b.c".into(),
        format!("{h}..{s}"),
        format!("{h}.{p}."),
        format!(".{p}.{s}"),
        format!("{big}.{big}.{big}"),
        format!("{h}.{big}.{big}"),
        format!("{h}.{p}.{big}"),
        "é.é.é".into(),
        "\0.\0.\0".into(),
        "A".repeat(MAX_TOKEN_LEN + 1),
        forge(&json!({"alg": "ES256", "crit": ["b64"]}), &claims(), &z64),
        forge(&json!({"alg": 5}), &claims(), &z64),
        forge(&json!(["ES256"]), &claims(), &z64),
        forge(&json!({"alg": "ES256"}), &json!([1]), &z64),
        forge(&json!({"alg": "RS256"}), &claims(), &[0xff; 256]),
        forge(&json!({"alg": "RS256"}), &claims(), &[0; 1]),
        forge(&json!({"alg": "EdDSA"}), &claims(), &[0xff; 64]),
        format!("{}.{p}.{s}", b64(br#"{"alg":"ES256","alg":"none"}"#)),
    ];
    for i in 0..300usize {
        // Deterministic single-byte mutations of a valid token.
        let mut b = good.clone().into_bytes();
        let at = (i * 7919) % b.len();
        b[at] = b"A-_.=+/ \x01"[i % 9];
        inputs.push(String::from_utf8_lossy(&b).into_owned());
    }
    for t in &inputs {
        let _ = (decode_header(t), decode_unverified_claims(t));
        if let Ok(c) = verify(t, &jwks(), &Alg::ALL) {
            assert_eq!(c, claims(), "{t:.60}");
        }
    }
    for jwk in [
        json!(null),
        json!([]),
        json!({"kty": "EC", "crv": "P-256", "x": 1, "y": null}),
    ] {
        assert!(verify(&good, &[jwk], &Alg::ALL).is_err());
    }
}

#[test]
fn left_half_hash_values() {
    let at = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
    assert_eq!(left_half_hash(Alg::RS256, at), "77QmUPtjPfzWtF2AnpK9RQ");
    assert_eq!(left_half_hash(Alg::ES256, at), "77QmUPtjPfzWtF2AnpK9RQ");
    // SHA-512 half, the value openidconnect 4.1 computes for an Ed25519 key.
    assert_eq!(
        left_half_hash(Alg::EdDSA, at),
        "q7nS86GgvvFaZkzALLWqJYaJIKw2wCDAVfCAsm5CrBM"
    );
    for (alg, len) in [(Alg::RS256, 22), (Alg::ES256, 22), (Alg::EdDSA, 43)] {
        let a = left_half_hash(alg, "some-code");
        assert_eq!(
            (a.len(), a.clone()),
            (len, left_half_hash(alg, "some-code"))
        );
        assert_ne!(a, left_half_hash(alg, "other-code"));
    }
}

#[test]
fn signing_key_is_send_sync_clone_and_debug_hides_secrets() {
    fn assert_bounds<T: Send + Sync + Clone>() {}
    assert_bounds::<SigningKey>();
    let d = format!("{:?}", key(Alg::EdDSA));
    assert!(
        d.contains(key(Alg::EdDSA).kid()) && !d.contains("secret"),
        "{d}"
    );
}

/// Keys as stored by the previous backend (RustCrypto: PKCS#8, Ed25519 in
/// its v2 form with the public key) and a token each signed: after the move
/// to OpenSSL they load with the same kid and their tokens still verify.
const PREVIOUS_BACKEND: [(Alg, &str, &str, &str); 3] = [
    (
        Alg::RS256,
        "9srag_FRZWHkgcw4IvGPXOAvUm4FV59aRgsgntyAUFw",
        "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC842nbPnCZiOY9V22_Y1henkAhBAKYU9I7THUJctR1ecs65D87Nc0mpnQGF4bsg_xo7GFD0D4NLlz4W4dTxhn_EksiDb_6OM99ixL29kWb7Fkp1DyiuQEHehLCzC7ESDz3cXfHfJqK3UYdQUpk8d7a9e2W_7zRYnU4sBGJPesIg7hpJUab5vsQKy7xCf_hcj4cf7FUngTHJEvay5PBTToYGeusZ1DEspqe6O5Trgun203-IN0Tp_j2yeH-BfzHv2i1KuDoMh_loB6u8k7AEM7cV6ZbtiQcBbS9ZBMFUafG-46KUzy4e2osTG7EPHERdHx4vwt1Ur6JF2BxFpNJe459AgMBAAECggEBALaUS5o0_Lor7gGVJOw-pwiuhuZi7e839pqDCQ4dBOiY1a0TO1uMYcTeWIAa9bxgx_bTpiDahWBQVGVsc56yeiZoFF_SUqMXjtiXObmlyxswle8sy3-uvCPyB3hrzTjFasjz0QfulaNsx303wyVX9kZIOWQfxu_N7-jfp9O1Gh6bKuOjCSdX5FOgFRCkvltuUmZtpib4gDrGUNlYdfPQcMLS3nqbZY5kVtndN9e6QGwywZKjQaOWcwyan3XcxEi8rg0blNRUK6jNWhMYIzCpt5Glp_KF9Iw9r-fW9VId3Vi54EZ9dSYUnEofCr-7Rq5GfT_e4PsrRda1TvD7I_g4TAECgYEA3NcBpKJfMUjDs_-RU5FlLVSmbXxKRqBfrDJViUhYyJ2d2iF4msYQ9_LTO-ZlwfXYBss0Xk6lvLaMmJvSCAGtt6PtsEdVsi5aaudjhaRw7yeSmr1POpstU4sEtxT1B2OAMR2pyYY7am5JxvsiXUSvp8mUBDaCdOsA7Vz4MqNfeEECgYEA2vYgSI7rjtQLGKi5F-dyWJTEovSaxgrwOKh40vY8041ygotDq_tC8A9NotL7aHaHtUp47suiyddXDYo97-80Th26S_aUCw8XRAPgGdCd4nkNbKNwDIX13QtbBbZRWIKNtTJ6bat6XC1Oj6w9XwpJcp6p1jWp0-X5t92_maXqJz0CgYBpe0zunRvIx4-qfwykFNN11nPz4aT8nQd1kUkn3GWD1T0bfldD3g0m0VYxyzeZcFqxzAeEcB5bx_nZvruQVXTrPSJ_y2LUS62mWEVCBSxoHse4n2mjfZEl0UX8SMdMsyr8ysVZW4Mvr-QPZc6hK_iWtQK9DGg9fi4gMgLe9QfZwQKBgCQAxF4p4eGiTBDJ7WVY0RxvmcWRosFdmxI14WgOxQGkCGgergnhTqhaW9GiD2Sl2LqefDQHl8TIe6_mQzjohBk0GiXTbZRD7vdoC7ky7EMI1IRAe3QTstGdxGG0ELwU-2gH3MmboIr3iCtnjs_JyTnnjNWEDWCiN-VbuN1ywoWhAoGBAJiHZPDFYExzHl6-WW2jB4oIfMkKXDJ0LImAR6QkoKzSR4yBeCl6-AfGTB7fXBKzi2puuUiFFuVKzDar4tu-HZSHgbobp13deYofglzWzspqO0IG0C-e0ADQsUnKcjLZHhr2s0zTrHifZ2xo9257z-nmAa6BZFk9YtPhhc8ghcVS",
        "eyJhbGciOiJSUzI1NiIsImtpZCI6IjlzcmFnX0ZSWldIa2djdzRJdkdQWE9BdlVtNEZWNTlhUmdzZ250eUFVRnciLCJ0eXAiOiJhdCtqd3QifQ.eyJzdWIiOiJmaXh0dXJlIn0.BWlWt7cw43iAQ7VQYWnwhWl9S60vMjHeWIfRLMSHOgJQyF0DFGLrqp8eUj_4jKZo_B6TXwb4ihrGFeG_tZTd6wm-imx9RJ_AWooNefG9e2GSANz7eMVMPt8-cTcR26c-7Z7-dssOhE8f4iyKpNjKtki-5BDGNiXG6kGNqE3SWSDcmwD3ffdwHPBLmx-jqvpJywHIDnatcPfJCg-714yMlQkka2bEMgLFRqpolFUUgg6gFjWj0kcJPPBKgIv5e2g-4pPJ-ThQNKgZ4kgBofFzuRbvKGOVrO334CqEnMfjcIYrIxWOM4ShJEMQ7m7-_x8BW56JitBcOSXKXpMRZg2qdg",
    ),
    (
        Alg::ES256,
        "pbu15iF0e2-OYlGhk-R2fTEFLrMbyfNNZdwNnkOp6bg",
        "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQghQaP90lagTKcFOHEUVOfnkYRE6vJ12MejhhieP6F_pGhRANCAASPLeMXbfvIcAFt9VPFPDnVQJPhroPalZsn1ZHRLYlZLHdf4TizNOjT9oSUWY7LnTym4euJS_q8aNzh1Pkvy3v1",
        "eyJhbGciOiJFUzI1NiIsImtpZCI6InBidTE1aUYwZTItT1lsR2hrLVIyZlRFRkxyTWJ5Zk5OWmR3Tm5rT3A2YmciLCJ0eXAiOiJhdCtqd3QifQ.eyJzdWIiOiJmaXh0dXJlIn0.YrHVokiLW7yYliGD7vNTpO9IdgxwdWo4oHu1OO7441cQcd7NV3C-daxLZLhoLOD11wjIM00Hs8qsbu7alCcWWA",
    ),
    (
        Alg::EdDSA,
        "wHXjMVC1UvWgS-heQGxjcZ2K7_lQikEFz0tgDs3-odc",
        "MFECAQEwBQYDK2VwBCIEIP2t8bi_UEBpuLeWNrfpKHmsSkdP3TX5Iz0E5U2Sjw-SgSEAGZxCmZlhf8Sy5onK9aUA9xFYQo9ggXpCAD3tvVRzkVc",
        "eyJhbGciOiJFZERTQSIsImtpZCI6IndIWGpNVkMxVXZXZ1MtaGVRR3hqY1oySzdfbFFpa0VGejB0Z0RzMy1vZGMiLCJ0eXAiOiJhdCtqd3QifQ.eyJzdWIiOiJmaXh0dXJlIn0.EQZ0SFinpW4KcOtjYRgGyIvPWtz3J-Nc7n_8vP3-3oTIeH6NAC9yZNrCp1VNL4agBoYihNXcYywAOAFlmWJaAA",
    ),
];

#[test]
fn keys_and_tokens_of_the_previous_backend_stay_valid() {
    for (alg, kid, der, token) in PREVIOUS_BACKEND {
        let k = SigningKey::from_pkcs8_der(alg, &URL_SAFE_NO_PAD.decode(der).unwrap()).unwrap();
        assert_eq!(k.kid(), kid, "{alg:?}");
        let jwks = [k.public_jwk()];
        assert_eq!(
            verify(token, &jwks, &Alg::ALL).unwrap(),
            json!({"sub": "fixture"})
        );
        assert_eq!(
            verify_with(token, &[VerifyingKey::parse(k.public_jwk())], &Alg::ALL).unwrap(),
            json!({"sub": "fixture"})
        );
        // Written back by OpenSSL and read again: still the same key.
        let again = SigningKey::from_pkcs8_der(alg, &k.to_pkcs8_der().unwrap()).unwrap();
        let t = again.sign("JWT", &claims()).unwrap();
        assert_eq!(verify(&t, &jwks, &[alg]).unwrap(), claims());
    }
    // The hand-read Ed25519 v2 form refuses a public half that is not the
    // seed's, and any other length.
    let (_, _, der, _) = PREVIOUS_BACKEND[2];
    let der = URL_SAFE_NO_PAD.decode(der).unwrap();
    let mut other = der.clone();
    *other.last_mut().unwrap() ^= 1;
    for bad in [
        &other[..],
        &der[..der.len() - 1],
        &[&der[..], &[0][..]].concat(),
    ] {
        assert!(is_key(
            SigningKey::from_pkcs8_der(Alg::EdDSA, bad).unwrap_err()
        ));
    }
}

#[test]
fn verify_with_parsed_keys_matches_verify() {
    let keys: Vec<VerifyingKey> = Alg::ALL
        .iter()
        .map(|a| VerifyingKey::parse(key(*a).public_jwk()))
        .collect();
    for alg in Alg::ALL {
        let t = key(alg).sign("at+jwt", &claims()).unwrap();
        assert_eq!(verify_with(&t, &keys, &Alg::ALL).unwrap(), claims());
        let other = SigningKey::generate(alg)
            .unwrap()
            .sign("JWT", &claims())
            .unwrap();
        assert_eq!(
            verify_with(&other, &keys, &Alg::ALL).unwrap_err(),
            JwsError::UnknownKey
        );
    }
    // A broken key is kept, and refused only when a token picks it.
    let mut broken = key(Alg::ES256).public_jwk();
    broken["x"] = json!("AAAA");
    let t = key(Alg::ES256).sign("JWT", &claims()).unwrap();
    assert!(is_key(
        verify_with(&t, &[VerifyingKey::parse(broken)], &Alg::ALL).unwrap_err()
    ));
}

#[test]
fn ed25519_small_order_keys_and_r_refused() {
    let encodings: Vec<[u8; 32]> = curve25519_dalek::constants::EIGHT_TORSION
        .iter()
        .map(|p| p.compress().to_bytes())
        .collect();
    for enc in &encodings {
        for sign in [0u8, 0x80] {
            let mut e = *enc;
            e[31] |= sign;
            assert!(public::ed25519_small_order(&e), "{e:?}");
        }
    }
    let k = key(Alg::EdDSA);
    let good = k.sign("JWT", &claims()).unwrap();
    let pubkey = URL_SAFE_NO_PAD
        .decode(k.public_jwk()["x"].as_str().unwrap())
        .unwrap();
    assert!(!public::ed25519_small_order(&pubkey));
    // The identity as key with R = identity and s = 0 "verifies" any message
    // under a lax verifier: refused here, as key and as R.
    let identity = encodings[0];
    let mut forged_sig = identity.to_vec();
    forged_sig.extend([0u8; 32]);
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&identity)});
    let forged = forge(&json!({"alg": "EdDSA"}), &claims(), &forged_sig);
    assert!(is_key(err(&forged, &[jwk], &Alg::ALL)));
    let (h, p, s) = (seg(&good, 0), seg(&good, 1), seg(&good, 2));
    let mut sig = URL_SAFE_NO_PAD.decode(s).unwrap();
    for enc in &encodings {
        sig[..32].copy_from_slice(enc);
        let t = format!("{h}.{p}.{}", b64(&sig));
        assert_eq!(
            err(&t, &[k.public_jwk()], &Alg::ALL),
            JwsError::BadSignature
        );
    }
}

#[test]
fn es256_scalars_out_of_range_refused() {
    let k = key(Alg::ES256);
    let t = k.sign("JWT", &claims()).unwrap();
    let (h, p, s) = (seg(&t, 0), seg(&t, 1), seg(&t, 2));
    let sig = URL_SAFE_NO_PAD.decode(s).unwrap();
    // The order n of P-256.
    let n = hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    for (r, s) in [
        ([0u8; 32].to_vec(), sig[32..].to_vec()),
        (sig[..32].to_vec(), [0u8; 32].to_vec()),
        (n.clone(), sig[32..].to_vec()),
        (sig[..32].to_vec(), n.clone()),
        (vec![0xff; 32], vec![0xff; 32]),
    ] {
        let bad = format!("{h}.{p}.{}", b64(&[r, s].concat()));
        assert_eq!(
            err(&bad, &[k.public_jwk()], &Alg::ALL),
            JwsError::BadSignature
        );
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn rsa_keys_out_of_bounds_refused() {
    let k = key(Alg::RS256);
    let t = k.sign("JWT", &claims()).unwrap();
    let modulus = |bytes: usize| b64(&[&[0xc0u8][..], &vec![0xff; bytes - 1]].concat());
    let cases = [
        ("e", json!(b64(&[1]))),
        ("e", json!(b64(&[0x01, 0x00, 0x00]))),
        ("e", json!(b64(&[0x01, 0x00, 0x00, 0x00, 0x01, 0x01]))),
        ("n", json!(modulus(255))),
        ("n", json!(modulus(513))),
    ];
    for (member, value) in cases {
        let mut jwk = k.public_jwk();
        jwk[member] = value.clone();
        assert!(is_key(err(&t, &[jwk], &Alg::ALL)), "{member} {value}");
    }
    // A signature one byte short or long is refused before any arithmetic.
    let (h, p, s) = (seg(&t, 0), seg(&t, 1), seg(&t, 2));
    let sig = URL_SAFE_NO_PAD.decode(s).unwrap();
    for bad in [&sig[1..], &[&[0u8][..], &sig[..]].concat()[..]] {
        let bad = format!("{h}.{p}.{}", b64(bad));
        assert_eq!(
            err(&bad, &[k.public_jwk()], &Alg::ALL),
            JwsError::BadSignature
        );
    }
}
