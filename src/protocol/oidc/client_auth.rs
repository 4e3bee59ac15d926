//! Client authentication rules (RFC 6749 2.3, RFC 7523, OIDC Core 9) that do
//! not need I/O: parsing Basic credentials and checking assertion claims.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde_json::Value;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest accepted assertion lifetime: a long-lived assertion is a password.
const MAX_ASSERTION_LIFETIME: i64 = 600;

/// Decodes `Authorization: Basic …` into (client_id, secret). Both halves
/// are form-urlencoded per RFC 6749 2.3.1.
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| -> Option<String> {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    let id = unescape(id)?;
    if id.is_empty() {
        return None;
    }
    Some((id, unescape(secret)?))
}

/// Checks the claims of a verified `private_key_jwt` assertion. `audiences`
/// are the values we accept in `aud` (the token endpoint, the issuer).
/// Returns the `jti` and `exp` for the replay cache.
pub fn check_assertion_claims(
    claims: &Value,
    client_id: &str,
    audiences: &[String],
    now: DateTime<Utc>,
) -> Result<(String, i64), String> {
    let s = |k: &str| claims.get(k).and_then(Value::as_str);
    if s("iss") != Some(client_id) || s("sub") != Some(client_id) {
        return Err("client assertion iss and sub must both be the client_id".into());
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => audiences.contains(a),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| audiences.iter().any(|x| x == a)),
        _ => false,
    };
    if !aud_ok {
        return Err("client assertion aud must be the token endpoint or the issuer".into());
    }
    let now = now.timestamp();
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or("client assertion has no exp")?;
    if exp <= now {
        return Err("client assertion has expired".into());
    }
    if exp > now + MAX_ASSERTION_LIFETIME {
        return Err("client assertion lives too long (at most 10 minutes)".into());
    }
    if claims
        .get("nbf")
        .and_then(Value::as_i64)
        .is_some_and(|nbf| nbf > now + 60)
    {
        return Err("client assertion is not valid yet".into());
    }
    // Issued in the future means a wrong clock or a token made to be
    // replayed later; either way it is not this moment's proof.
    match claims.get("iat") {
        None => {}
        Some(v) => match v.as_i64() {
            Some(iat) if (0..=now + 60).contains(&iat) => {}
            Some(_) => return Err("client assertion was issued in the future (iat)".into()),
            None => return Err("client assertion iat must be a number of seconds".into()),
        },
    }
    let jti = s("jti")
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or("client assertion has no jti")?;
    Ok((jti.to_string(), exp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_assertion_issued_in_the_future_is_refused() {
        let t = now().timestamp();
        let claims = |iat: i64| {
            json!({"iss": "c", "sub": "c", "aud": "https://id.example/token",
                   "exp": t + 60, "iat": iat, "jti": "j"})
        };
        let aud = ["https://id.example/token".to_string()];
        assert!(check_assertion_claims(&claims(t), "c", &aud, now()).is_ok());
        assert!(check_assertion_claims(&claims(t + 61), "c", &aud, now()).is_err());
        assert!(check_assertion_claims(&claims(-1), "c", &aud, now()).is_err());
        let mut text = claims(t);
        text["iat"] = json!("soon");
        assert!(check_assertion_claims(&text, "c", &aud, now()).is_err());
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    #[test]
    fn basic_credentials_are_url_decoded() {
        let h = format!("Basic {}", STANDARD.encode("my%20app:s%3Acret"));
        assert_eq!(parse_basic(&h), Some(("my app".into(), "s:cret".into())));
        assert_eq!(parse_basic("Basic !!!"), None);
        assert_eq!(parse_basic("Bearer x"), None);
        assert_eq!(
            parse_basic(&format!("Basic {}", STANDARD.encode("nocolon"))),
            None
        );
        assert_eq!(
            parse_basic(&format!("Basic {}", STANDARD.encode(":secret"))),
            None
        );
    }

    #[test]
    fn assertion_claims() {
        let aud = vec!["https://id.example/token".to_string()];
        let t = now().timestamp();
        let good = json!({"iss": "c", "sub": "c", "aud": "https://id.example/token", "exp": t + 60, "jti": "j1"});
        assert_eq!(
            check_assertion_claims(&good, "c", &aud, now()).unwrap(),
            ("j1".into(), t + 60)
        );
        let mut arr = good.clone();
        arr["aud"] = json!(["x", "https://id.example/token"]);
        assert!(check_assertion_claims(&arr, "c", &aud, now()).is_ok());
        for (k, v) in [
            ("iss", json!("other")),
            ("sub", json!("other")),
            ("aud", json!("https://elsewhere/")),
            ("exp", json!(t - 1)),
            ("exp", json!(t + 3600)),
            ("jti", json!("")),
            ("nbf", json!(t + 600)),
        ] {
            let mut bad = good.clone();
            bad[k] = v;
            assert!(
                check_assertion_claims(&bad, "c", &aud, now()).is_err(),
                "{k}"
            );
        }
    }
}
