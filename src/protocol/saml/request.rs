//! Decoding and checking AuthnRequests (SAML Bindings 3.4 and 3.5, Core 3.4).

use super::dsig::{self, Shape};
use super::{MAX_ENCODED, MAX_XML, guard, reject_dtd};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use samael::schema::AuthnRequest;
use std::io::Read;
use std::str::FromStr;

/// Allowed difference between the SP's clock and ours.
pub const CLOCK_SKEW: i64 = 180;

fn base64(encoded: &str) -> Result<Vec<u8>, String> {
    if encoded.len() > MAX_ENCODED {
        return Err("the SAML message is too large".into());
    }
    let compact: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD
        .decode(compact)
        .map_err(|_| "the SAML message is not valid base64".to_string())
}

/// HTTP-Redirect: base64 of raw DEFLATE. Inflation stops at [`MAX_XML`], so a
/// small message cannot expand into a huge one.
pub fn decode_redirect(encoded: &str) -> Result<String, String> {
    let raw = base64(encoded)?;
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(raw.as_slice())
        .take(MAX_XML as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| "the SAML message is not valid DEFLATE data".to_string())?;
    if out.len() > MAX_XML {
        return Err("the SAML message inflates beyond the size limit".into());
    }
    String::from_utf8(out).map_err(|_| "the SAML message is not UTF-8".into())
}

/// HTTP-POST: plain base64.
pub fn decode_post(encoded: &str) -> Result<String, String> {
    let raw = base64(encoded)?;
    if raw.len() > MAX_XML {
        return Err("the SAML message is too large".into());
    }
    String::from_utf8(raw).map_err(|_| "the SAML message is not UTF-8".into())
}

/// Parses an AuthnRequest after its shape (and any signature's) passed
/// [`dsig::check`]; returns the request and that shape.
pub fn parse(xml: &str) -> Result<(AuthnRequest, Shape), String> {
    reject_dtd(xml)?;
    let shape = dsig::check(xml, "AuthnRequest")?;
    let req = guard("AuthnRequest", || {
        AuthnRequest::from_str(xml).map_err(|_| "the message is not a SAML AuthnRequest".into())
    })?;
    if req.id != shape.id {
        return Err("the AuthnRequest's ID cannot be read unambiguously".into());
    }
    if req.version != "2.0" {
        return Err("only SAML 2.0 requests are accepted".into());
    }
    if req.id.is_empty() || req.id.len() > 256 {
        return Err("the AuthnRequest has no usable ID".into());
    }
    Ok((req, shape))
}

/// Checks timing and destination: a signed request must name this endpoint
/// as its Destination (so a signature made for another IdP or endpoint
/// cannot be replayed here); an unsigned one may omit it.
pub fn check(
    req: &AuthnRequest,
    sso_url: &str,
    now: DateTime<Utc>,
    signed: bool,
) -> Result<(), String> {
    let skew = Duration::seconds(CLOCK_SKEW);
    if req.issue_instant > now + skew {
        return Err("the AuthnRequest was issued in the future".into());
    }
    if req.issue_instant < now - skew - Duration::minutes(5) {
        return Err("the AuthnRequest has expired (IssueInstant too old)".into());
    }
    if signed && req.destination.is_none() {
        return Err("a signed AuthnRequest must carry a Destination".into());
    }
    if let Some(d) = &req.destination
        && d != sso_url
    {
        return Err(format!(
            "the AuthnRequest's Destination {d} is not this IdP's {sso_url}"
        ));
    }
    Ok(())
}

/// The AuthnContextClassRefs an SP asked for.
pub fn requested_classes(req: &AuthnRequest) -> Vec<String> {
    req.requested_authn_context
        .as_ref()
        .and_then(|r| r.authn_context_class_refs.as_ref())
        .map(|v| v.iter().filter_map(|c| c.value.clone()).collect())
        .unwrap_or_default()
}

/// Longest RelayState the SAML bindings let us rely on (SAML 2.0
/// Bindings, 3.4.3 and 3.5.3).
pub const MAX_RELAY_STATE: usize = 80;

/// Checks the RelayState of IdP-initiated SSO, which portcullis itself
/// starts: many service providers send the user to it after sign-in, so it
/// must be a path on the SP's own site (`/dashboard`), never an address
/// elsewhere (`https://evil.example/`, `//evil.example`, `/\evil.example`).
/// An SP-initiated RelayState is the SP's own and passes back unchanged.
pub fn check_idp_relay_state(relay_state: &str) -> Result<(), String> {
    if relay_state.len() > MAX_RELAY_STATE {
        return Err(format!("RelayState may be at most {MAX_RELAY_STATE} bytes"));
    }
    if relay_state.chars().any(char::is_control) {
        return Err("RelayState must not contain control characters".into());
    }
    if !relay_state.starts_with('/')
        || relay_state.starts_with("//")
        || relay_state.starts_with("/\\")
    {
        return Err(
            "RelayState must be a path on the service provider's site, starting with a single /"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn deflate(s: &[u8]) -> String {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(s).unwrap();
        STANDARD.encode(e.finish().unwrap())
    }

    #[test]
    fn redirect_round_trip() {
        assert_eq!(decode_redirect(&deflate(b"<x/>")).unwrap(), "<x/>");
        assert!(decode_redirect("!!!").is_err());
        assert!(decode_redirect(&STANDARD.encode(b"not deflate")).is_err());
    }

    #[test]
    fn deflate_bombs_are_refused() {
        let bomb = deflate(&vec![b'a'; MAX_XML * 4]);
        assert!(bomb.len() < MAX_ENCODED, "the bomb itself is small");
        assert!(decode_redirect(&bomb).unwrap_err().contains("inflates"));
    }

    #[test]
    fn oversized_messages_are_refused() {
        assert!(
            decode_post(&"A".repeat(MAX_ENCODED + 4))
                .unwrap_err()
                .contains("too large")
        );
    }

    fn request(instant: &str, dest: &str) -> AuthnRequest {
        parse_req(&format!(r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_abc" Version="2.0" IssueInstant="{instant}" Destination="{dest}"><saml:Issuer>https://sp.example</saml:Issuer></samlp:AuthnRequest>"#)).unwrap()
    }

    fn parse_req(xml: &str) -> Result<AuthnRequest, String> {
        parse(xml).map(|(r, _)| r)
    }

    #[test]
    fn timing_and_destination() {
        let now = DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let sso = "https://id.example/saml/sso";
        assert!(check(&request("2026-03-02T09:59:00Z", sso), sso, now, true).is_ok());
        assert!(
            check(&request("2026-03-02T10:10:00Z", sso), sso, now, false)
                .unwrap_err()
                .contains("future")
        );
        assert!(
            check(&request("2026-03-02T09:40:00Z", sso), sso, now, false)
                .unwrap_err()
                .contains("expired")
        );
        assert!(
            check(
                &request("2026-03-02T10:00:00Z", "https://other/sso"),
                sso,
                now,
                false
            )
            .unwrap_err()
            .contains("Destination")
        );
        let mut undirected = request("2026-03-02T10:00:00Z", sso);
        undirected.destination = None;
        assert!(check(&undirected, sso, now, false).is_ok());
        assert!(
            check(&undirected, sso, now, true)
                .unwrap_err()
                .contains("must carry a Destination")
        );
    }

    #[test]
    fn junk_is_refused() {
        assert!(parse_req("<foo/>").is_err());
        assert!(parse_req("<!DOCTYPE foo><foo/>").is_err());
    }

    #[test]
    fn idp_relay_state_is_a_local_path() {
        for ok in [
            "/",
            "/dashboard",
            "/a/b?x=1#top",
            &format!("/{}", "a".repeat(79)),
        ] {
            assert!(check_idp_relay_state(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("https://evil.example/x", "single /"),
            ("//evil.example/x", "single /"),
            ("/\\evil.example/x", "single /"),
            ("evil.example", "single /"),
            ("", "single /"),
            ("javascript:alert(1)", "single /"),
            ("/a\r\nSet-Cookie: x=1", "control"),
            ("/\t/evil.example", "control"),
            (&format!("/{}", "a".repeat(80)), "at most 80"),
        ] {
            let e = check_idp_relay_state(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }
}
