//! Client metadata (RFC 7591 section 2) and its validation. The CLI and the
//! registration endpoint both build clients through [`check_draft`].

use super::{outbound, scope, uri};
use crate::domain::{AuthMethod, Client, GrantType, SigningAlg};
use serde_json::{Map, Value, json};

/// Scopes a client gets when it names none.
pub const DEFAULT_SCOPES: &str = "openid profile email offline_access";

/// A client as requested, before the server assigns IDs and secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientDraft {
    pub name: String,
    pub auth_method: AuthMethod,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub scopes: Vec<String>,
    pub id_token_alg: SigningAlg,
    pub jwks: Option<Value>,
    pub backchannel_logout_uri: Option<String>,
}

/// A refusal: (`invalid_redirect_uri` | `invalid_client_metadata`, why).
pub type MetadataError = (&'static str, String);

fn meta(msg: impl Into<String>) -> MetadataError {
    ("invalid_client_metadata", msg.into())
}

fn check_jwks(jwks: &Value) -> Result<(), MetadataError> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| meta("jwks must be a JWK Set: an object with a keys array"))?;
    if keys.is_empty() || keys.len() > 20 {
        return Err(meta("jwks must hold between 1 and 20 keys"));
    }
    for k in keys {
        let kty = k.get("kty").and_then(Value::as_str).unwrap_or("");
        if !matches!(kty, "RSA" | "EC" | "OKP") {
            return Err(meta(format!(
                "jwks: key type {kty:?} is not supported (RSA, EC, OKP)"
            )));
        }
        if k.get("d").is_some() {
            return Err(meta("jwks must hold public keys only"));
        }
        if k.get("use")
            .and_then(Value::as_str)
            .is_some_and(|u| u != "sig")
        {
            return Err(meta("jwks: keys must be for signatures (use = sig)"));
        }
    }
    Ok(())
}

/// Checks a draft for consistency and safety.
pub fn check_draft(d: &ClientDraft) -> Result<(), MetadataError> {
    if d.name.trim().is_empty() || d.name.chars().count() > 200 {
        return Err(meta("client_name must be 1 to 200 characters"));
    }
    // The name is shown on the consent page and printed by the CLI.
    if !crate::protocol::text::readable(&d.name, 200, false) {
        return Err(meta(
            "client_name must not contain control, invisible or text-direction characters",
        ));
    }
    let code = d.grant_types.contains(&GrantType::AuthorizationCode);
    if d.grant_types.is_empty() {
        return Err(meta("grant_types must not be empty"));
    }
    if code && d.redirect_uris.is_empty() {
        return Err((
            "invalid_redirect_uri",
            "redirect_uris is required for the authorization_code grant".into(),
        ));
    }
    if d.redirect_uris.len() > 20 || d.post_logout_redirect_uris.len() > 20 {
        return Err(meta("at most 20 redirect URIs of each kind"));
    }
    for u in &d.redirect_uris {
        uri::check_redirect_uri(u).map_err(|e| ("invalid_redirect_uri", e))?;
    }
    for u in &d.post_logout_redirect_uris {
        uri::check_redirect_uri(u).map_err(|e| meta(format!("post_logout_redirect_uris: {e}")))?;
    }
    if d.grant_types.contains(&GrantType::RefreshToken) && !code {
        return Err(meta("refresh_token needs the authorization_code grant"));
    }
    if d.auth_method == AuthMethod::None && d.grant_types.contains(&GrantType::ClientCredentials) {
        return Err(meta(
            "a public client (token_endpoint_auth_method none) cannot use client_credentials",
        ));
    }
    match (&d.jwks, d.auth_method) {
        (None, AuthMethod::PrivateKeyJwt) => {
            return Err(meta(
                "private_key_jwt needs jwks (the client's public keys)",
            ));
        }
        (Some(j), _) => check_jwks(j)?,
        _ => {}
    }
    scope::check_allowed(&d.scopes, &d.scopes).map_err(meta)?;
    if let Some(u) = &d.backchannel_logout_uri {
        uri::check_redirect_uri(u).map_err(|e| meta(format!("backchannel_logout_uri: {e}")))?;
        if !(u.starts_with("https://") || u.starts_with("http://")) {
            return Err(meta("backchannel_logout_uri must be an http(s) URL"));
        }
    }
    Ok(())
}

/// Whether two client names would read the same on a consent page: equal
/// after trimming, folding case and collapsing runs of whitespace.
pub fn same_name(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    norm(a) == norm(b)
}

fn strings(v: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, MetadataError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| meta(format!("{key} must be an array of strings")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(meta(format!("{key} must be an array of strings"))),
    }
}

fn string<'a>(v: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, MetadataError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(meta(format!("{key} must be a string"))),
    }
}

/// Reads RFC 7591 registration metadata into a checked draft.
pub fn from_metadata(body: &Value) -> Result<ClientDraft, MetadataError> {
    let m = body
        .as_object()
        .ok_or_else(|| meta("the request body must be a JSON object"))?;
    if m.contains_key("jwks_uri") {
        return Err(meta(
            "jwks_uri is not supported; send the keys inline as jwks",
        ));
    }
    if let Some(rt) = strings(m, "response_types")?
        && rt.iter().any(|t| t != "code")
    {
        return Err(meta("only the response type code is supported"));
    }
    let auth_method = match string(m, "token_endpoint_auth_method")? {
        None => AuthMethod::ClientSecretBasic,
        Some(s) => AuthMethod::parse(s)
            .ok_or_else(|| meta(format!("token_endpoint_auth_method {s} is not supported")))?,
    };
    let grant_types = match strings(m, "grant_types")? {
        None => vec![GrantType::AuthorizationCode],
        Some(list) => list
            .iter()
            .map(|g| {
                GrantType::parse(g).ok_or_else(|| meta(format!("grant type {g} is not supported")))
            })
            .collect::<Result<_, _>>()?,
    };
    let id_token_alg = match string(m, "id_token_signed_response_alg")? {
        None => SigningAlg::RS256,
        Some(a) => SigningAlg::parse(a)
            .ok_or_else(|| meta(format!("id_token_signed_response_alg {a} is not supported")))?,
    };
    let draft = ClientDraft {
        name: string(m, "client_name")?
            .unwrap_or("Unnamed client")
            .to_string(),
        auth_method,
        redirect_uris: strings(m, "redirect_uris")?.unwrap_or_default(),
        post_logout_redirect_uris: strings(m, "post_logout_redirect_uris")?.unwrap_or_default(),
        grant_types,
        scopes: scope::parse(string(m, "scope")?.unwrap_or(DEFAULT_SCOPES)),
        id_token_alg,
        jwks: m.get("jwks").filter(|j| !j.is_null()).cloned(),
        backchannel_logout_uri: string(m, "backchannel_logout_uri")?.map(str::to_string),
    };
    if let Some(s) = draft
        .scopes
        .iter()
        .find(|s| scope::ADMIN_REGISTERED_ONLY.contains(&s.as_str()))
    {
        // Acting on elevations (one's own, others' requests, everyone's)
        // is for applications an administrator vouched for.
        return Err(meta(format!(
            "the {s} scope is only for clients an administrator registers"
        )));
    }
    check_draft(&draft)?;
    // The server calls this URL itself: a self-registered client may not
    // aim it at loopback or internal addresses (an administrator may).
    if let Some(u) = &draft.backchannel_logout_uri {
        outbound::check_public_url(u).map_err(|e| meta(format!("backchannel_logout_uri: {e}")))?;
    }
    Ok(draft)
}

/// The client's metadata as registration responses show it.
pub fn to_metadata(c: &Client) -> Value {
    let mut v = json!({
        "client_id": c.client_id,
        "client_name": c.name,
        "client_id_issued_at": c.created_at.timestamp(),
        "token_endpoint_auth_method": c.auth_method.as_str(),
        "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "grant_types": c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "response_types": ["code"],
        "scope": scope::join(&c.scopes),
        "id_token_signed_response_alg": c.id_token_alg.as_str(),
    });
    if let Some(u) = &c.backchannel_logout_uri {
        v["backchannel_logout_uri"] = json!(u);
        v["backchannel_logout_session_required"] = json!(true);
    }
    if let Some(j) = &c.jwks {
        v["jwks"] = j.clone();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Value {
        json!({"client_name": "App", "redirect_uris": ["https://app.example/cb"]})
    }

    fn code_of(v: Value) -> &'static str {
        from_metadata(&v).unwrap_err().0
    }

    #[test]
    fn names_that_read_the_same() {
        assert!(same_name("RP1", "rp1"));
        assert!(same_name("  RP1 ", "RP1"));
        assert!(same_name("Big  Wiki", "big wiki"));
        assert!(same_name("ÉCOLE", "école"));
        assert!(!same_name("RP1", "RP2"));
        assert!(!same_name("RP 1", "RP1"));
    }

    #[test]
    fn defaults() {
        let d = from_metadata(&good()).unwrap();
        assert_eq!(d.auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(d.grant_types, [GrantType::AuthorizationCode]);
        assert_eq!(d.id_token_alg, SigningAlg::RS256);
        assert_eq!(d.scopes, scope::parse(DEFAULT_SCOPES));
    }

    #[test]
    fn bad_metadata_is_refused_with_the_right_code() {
        let with = |k: &str, v: Value| {
            let mut x = good();
            x[k] = v;
            x
        };
        assert_eq!(
            code_of(with("redirect_uris", json!(["http://app.example/cb"]))),
            "invalid_redirect_uri"
        );
        assert_eq!(
            code_of(with("redirect_uris", json!([]))),
            "invalid_redirect_uri"
        );
        assert_eq!(
            code_of(with("redirect_uris", json!("https://x/"))),
            "invalid_client_metadata"
        );
        assert_eq!(
            code_of(with("grant_types", json!(["implicit"]))),
            "invalid_client_metadata"
        );
        assert_eq!(
            code_of(with("response_types", json!(["token"]))),
            "invalid_client_metadata"
        );
        assert_eq!(
            code_of(with("token_endpoint_auth_method", json!("tls_client_auth"))),
            "invalid_client_metadata"
        );
        assert_eq!(
            code_of(with("token_endpoint_auth_method", json!("private_key_jwt"))),
            "invalid_client_metadata"
        );
        assert_eq!(
            code_of(with("id_token_signed_response_alg", json!("none"))),
            "invalid_client_metadata"
        );
        assert_eq!(
            code_of(with("id_token_signed_response_alg", json!("HS256"))),
            "invalid_client_metadata"
        );
        assert_eq!(
            code_of(with("jwks_uri", json!("https://app.example/jwks"))),
            "invalid_client_metadata"
        );
        assert_eq!(
            code_of(with("scope", json!("openid admin"))),
            "invalid_client_metadata"
        );
        assert_eq!(
            code_of(with("scope", json!("openid pim"))),
            "invalid_client_metadata"
        );
        assert_eq!(
            code_of(with("jwks", json!({"keys": [{"kty": "oct", "k": "AAAA"}]}))),
            "invalid_client_metadata"
        );
        assert_eq!(code_of(json!([])), "invalid_client_metadata");
        for internal in [
            "http://127.0.0.1:8080/internal/logout",
            "https://127.0.0.1/internal/logout",
            "https://localhost/logout",
            "https://[::ffff:127.0.0.1]/logout",
            "https://169.254.169.254/latest",
        ] {
            assert_eq!(
                code_of(with("backchannel_logout_uri", json!(internal))),
                "invalid_client_metadata",
                "{internal}"
            );
        }
        let public = with(
            "backchannel_logout_uri",
            json!("https://app.example/logout"),
        );
        assert!(from_metadata(&public).is_ok());
        let mut public_cc = with("token_endpoint_auth_method", json!("none"));
        public_cc["grant_types"] = json!(["client_credentials"]);
        assert_eq!(code_of(public_cc), "invalid_client_metadata");
    }
}
