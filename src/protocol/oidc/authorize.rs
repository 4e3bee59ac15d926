//! Validation of authorization requests (OpenID Connect Core 3.1.2.1,
//! RFC 6749 4.1.1, RFC 7636, RFC 9207).
//!
//! The order matters: until the client and its redirect URI are known good,
//! nothing may be sent to the redirect URI (that would be an open redirect),
//! so those failures become an error page. Everything after goes back to the
//! client as an error response.

use super::{pkce, scope};
use crate::domain::{Client, GrantType};
use serde::{Deserialize, Serialize};

/// How the response reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseMode {
    Query,
    FormPost,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A validated request, kept in the login transaction while the user signs in
/// and consents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub acr_values: Vec<String>,
    pub code_challenge: Option<String>,
    pub response_mode: ResponseMode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: show a page, redirect nowhere.
    Page(String),
    /// Tell the client, at its validated redirect URI.
    Redirect {
        redirect_uri: String,
        response_mode: ResponseMode,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

/// The raw parameters, each at most once.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeParams {
    pairs: Vec<(String, String)>,
}

const MAX_PARAM: usize = 2048;

impl AuthorizeParams {
    /// Refuses a parameter given twice (RFC 6749 3.1) by leaving it out of
    /// lookups and reporting it in [`AuthorizeParams::duplicate`].
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        let mut it = self.pairs.iter().filter(|(k, _)| k == name);
        let first = it.next()?;
        Some(first.1.as_str()).filter(|v| !v.is_empty())
    }

    /// Linear in the number of pairs (the request bounds keep that small).
    fn duplicate(&self) -> Option<&str> {
        let mut seen = std::collections::HashSet::with_capacity(self.pairs.len());
        self.pairs
            .iter()
            .find(|(k, _)| !seen.insert(k.as_str()))
            .map(|(k, _)| k.as_str())
    }

    fn too_long(&self) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(_, v)| v.len() > MAX_PARAM)
            .map(|(k, _)| k.as_str())
    }
}

fn parse_prompt(s: &str) -> Result<Prompt, String> {
    let mut p = Prompt::default();
    for v in s.split(' ').filter(|v| !v.is_empty()) {
        match v {
            "none" => p.none = true,
            "login" => p.login = true,
            "consent" => p.consent = true,
            // Only one account per session: nothing to select.
            "select_account" => {}
            other => return Err(format!("unsupported prompt value {other}")),
        }
    }
    if p.none && (p.login || p.consent) {
        return Err("prompt=none cannot be combined with other values".into());
    }
    Ok(p)
}

/// Validates an authorization request against the client it names.
pub fn validate(
    params: &AuthorizeParams,
    client: Option<&Client>,
) -> Result<AuthorizeRequest, AuthorizeError> {
    let page = |m: &str| Err(AuthorizeError::Page(m.to_string()));
    let Some(client_id) = params.get("client_id") else {
        return page("The request names no client (client_id is missing).");
    };
    let Some(client) = client.filter(|c| c.client_id == client_id) else {
        return page("The application that sent you here is not registered.");
    };
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return page("The request has no redirect_uri.");
    };
    if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
        return page(
            "The redirect URI is not registered for this application, so you were not sent back to it.",
        );
    }
    if let Some(name) = params
        .duplicate()
        .filter(|n| *n == "client_id" || *n == "redirect_uri")
    {
        return page(&format!("The parameter {name} was given more than once."));
    }

    let response_mode = match params.get("response_mode") {
        None | Some("query") => Ok(ResponseMode::Query),
        Some("form_post") => Ok(ResponseMode::FormPost),
        Some(other) => Err(format!("unsupported response_mode {other}")),
    };
    let state = params
        .get("state")
        .map(|s| s.chars().take(MAX_PARAM).collect());
    let error_mode = *response_mode.as_ref().unwrap_or(&ResponseMode::Query);
    let fail = |error: &'static str, description: String| {
        Err(AuthorizeError::Redirect {
            redirect_uri: redirect_uri.to_string(),
            response_mode: error_mode,
            state: state.clone(),
            error,
            description,
        })
    };
    let response_mode = match response_mode {
        Ok(m) => m,
        Err(e) => return fail("invalid_request", e),
    };
    if let Some(name) = params.duplicate() {
        return fail(
            "invalid_request",
            format!("parameter {name} was given more than once"),
        );
    }
    if let Some(name) = params.too_long() {
        return fail("invalid_request", format!("parameter {name} is too long"));
    }
    if params.get("request").is_some() {
        return fail(
            "request_not_supported",
            "request objects are not supported".into(),
        );
    }
    if params.get("request_uri").is_some() {
        return fail(
            "request_uri_not_supported",
            "request_uri is not supported".into(),
        );
    }
    match params.get("response_type") {
        Some("code") => {}
        Some(other) => {
            return fail(
                "unsupported_response_type",
                format!("response_type {other} is not supported; use code"),
            );
        }
        None => return fail("invalid_request", "response_type is missing".into()),
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return fail(
            "unauthorized_client",
            "this client may not use the authorization code flow".into(),
        );
    }
    let scope = scope::parse(params.get("scope").unwrap_or(""));
    if scope.is_empty() {
        return fail("invalid_scope", "scope is missing".into());
    }
    if let Err(e) = scope::check_allowed(&scope, &client.scopes) {
        return fail("invalid_scope", e);
    }
    let code_challenge = match params.get("code_challenge") {
        Some(c) => match pkce::check_challenge(c, params.get("code_challenge_method")) {
            Ok(()) => Some(c.to_string()),
            Err(e) => return fail("invalid_request", e.into()),
        },
        None if client.is_public() || client.require_pkce => {
            return fail(
                "invalid_request",
                "code_challenge is required (PKCE with S256)".into(),
            );
        }
        None => None,
    };
    let prompt = match parse_prompt(params.get("prompt").unwrap_or("")) {
        Ok(p) => p,
        Err(e) => return fail("invalid_request", e),
    };
    let max_age = match params.get("max_age").map(str::parse::<i64>) {
        None => None,
        Some(Ok(n)) if n >= 0 => Some(n),
        Some(_) => {
            return fail(
                "invalid_request",
                "max_age must be a non-negative integer".into(),
            );
        }
    };
    Ok(AuthorizeRequest {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_string(),
        scope,
        state,
        nonce: params.get("nonce").map(str::to_string),
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(str::to_string),
        acr_values: params
            .get("acr_values")
            .map(|v| {
                v.split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        code_challenge,
        response_mode,
    })
}

#[cfg(test)]
pub(in crate::protocol) mod tests {
    use super::*;
    use crate::domain::{AuthMethod, SigningAlg};

    pub(in crate::protocol) fn client(public: bool) -> Client {
        let now = chrono::DateTime::from_timestamp(0, 0).unwrap();
        Client {
            client_id: "app".into(),
            name: "App".into(),
            secret_hash: None,
            auth_method: if public {
                AuthMethod::None
            } else {
                AuthMethod::ClientSecretBasic
            },
            redirect_uris: vec!["https://app.example/cb".into()],
            post_logout_redirect_uris: vec![],
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scopes: scope::parse("openid profile email offline_access"),
            require_pkce: true,
            id_token_alg: SigningAlg::RS256,
            access_token_alg: SigningAlg::RS256,
            access_token_ttl: 300,
            id_token_ttl: 300,
            refresh_token_ttl: 3600,
            consent_required: true,
            backchannel_logout_uri: None,
            jwks: None,
            registration_token_hash: None,
            required_acr: None,
            required_role: None,
            registered_dynamically: false,
            created_at: now,
            updated_at: now,
        }
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn params(extra: &[(&str, &str)]) -> AuthorizeParams {
        let mut pairs: Vec<(String, String)> = [
            ("client_id", "app"),
            ("redirect_uri", "https://app.example/cb"),
            ("response_type", "code"),
            ("scope", "openid email"),
            ("state", "xyz"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            pairs.retain(|(pk, _)| pk != k);
            if !v.is_empty() {
                pairs.push((k.to_string(), v.to_string()));
            }
        }
        AuthorizeParams::from_pairs(pairs)
    }

    fn error_code(r: Result<AuthorizeRequest, AuthorizeError>) -> &'static str {
        match r {
            Err(AuthorizeError::Redirect { error, state, .. }) => {
                assert_eq!(state.as_deref(), Some("xyz"), "state is echoed");
                error
            }
            other => panic!("expected a redirect error, got {other:?}"),
        }
    }

    #[test]
    fn a_good_request_validates() {
        let r = validate(
            &params(&[("nonce", "n1"), ("max_age", "60"), ("prompt", "login")]),
            Some(&client(true)),
        )
        .unwrap();
        assert_eq!(r.scope, ["openid", "email"]);
        assert_eq!(r.nonce.as_deref(), Some("n1"));
        assert_eq!(r.max_age, Some(60));
        assert!(r.prompt.login);
        assert_eq!(r.response_mode, ResponseMode::Query);
    }

    #[test]
    fn untrusted_client_or_redirect_uri_never_redirects() {
        let c = client(true);
        assert!(matches!(
            validate(&params(&[("client_id", "other")]), Some(&c)),
            Err(AuthorizeError::Page(_))
        ));
        assert!(matches!(
            validate(&params(&[]), None),
            Err(AuthorizeError::Page(_))
        ));
        for bad in [
            "https://app.example/cb/",
            "https://app.example/cb?x=1",
            "https://evil.example/cb",
            "https://APP.example/cb",
        ] {
            assert!(
                matches!(
                    validate(&params(&[("redirect_uri", bad)]), Some(&c)),
                    Err(AuthorizeError::Page(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            validate(&params(&[("redirect_uri", "")]), Some(&c)),
            Err(AuthorizeError::Page(_))
        ));
    }

    #[test]
    fn pkce_rules() {
        let c = client(true);
        assert_eq!(
            error_code(validate(&params(&[("code_challenge", "")]), Some(&c))),
            "invalid_request"
        );
        assert_eq!(
            error_code(validate(
                &params(&[("code_challenge_method", "plain")]),
                Some(&c)
            )),
            "invalid_request"
        );
        assert_eq!(
            error_code(validate(
                &params(&[("code_challenge_method", "")]),
                Some(&c)
            )),
            "invalid_request"
        );
        let mut legacy = client(false);
        legacy.require_pkce = false;
        assert!(
            validate(
                &params(&[("code_challenge", ""), ("code_challenge_method", "")]),
                Some(&legacy)
            )
            .is_ok()
        );
        // A confidential client still needs PKCE by default.
        assert_eq!(
            error_code(validate(
                &params(&[("code_challenge", "")]),
                Some(&client(false))
            )),
            "invalid_request"
        );
    }

    #[test]
    fn request_errors_go_back_to_the_client() {
        let c = client(true);
        assert_eq!(
            error_code(validate(&params(&[("response_type", "token")]), Some(&c))),
            "unsupported_response_type"
        );
        assert_eq!(
            error_code(validate(&params(&[("response_type", "")]), Some(&c))),
            "invalid_request"
        );
        assert_eq!(
            error_code(validate(&params(&[("scope", "openid groups")]), Some(&c))),
            "invalid_scope"
        );
        assert_eq!(
            error_code(validate(&params(&[("scope", "")]), Some(&c))),
            "invalid_scope"
        );
        assert_eq!(
            error_code(validate(&params(&[("prompt", "none login")]), Some(&c))),
            "invalid_request"
        );
        assert_eq!(
            error_code(validate(&params(&[("prompt", "bogus")]), Some(&c))),
            "invalid_request"
        );
        assert_eq!(
            error_code(validate(&params(&[("max_age", "-1")]), Some(&c))),
            "invalid_request"
        );
        assert_eq!(
            error_code(validate(&params(&[("request", "eyJ")]), Some(&c))),
            "request_not_supported"
        );
        assert_eq!(
            error_code(validate(
                &params(&[("response_mode", "fragment")]),
                Some(&c)
            )),
            "invalid_request"
        );
        let mut no_code = client(true);
        no_code.grant_types = vec![GrantType::ClientCredentials];
        assert_eq!(
            error_code(validate(&params(&[]), Some(&no_code))),
            "unauthorized_client"
        );
    }

    #[test]
    fn duplicated_parameters_are_refused() {
        let c = client(true);
        let mut p = params(&[]);
        p.pairs.push(("scope".into(), "openid".into()));
        assert_eq!(error_code(validate(&p, Some(&c))), "invalid_request");
        let mut p = params(&[]);
        p.pairs
            .push(("redirect_uri".into(), "https://evil.example/".into()));
        assert!(matches!(
            validate(&p, Some(&c)),
            Err(AuthorizeError::Page(_))
        ));
    }

    #[test]
    fn form_post_mode_is_kept_for_errors() {
        let c = client(true);
        match validate(
            &params(&[("response_mode", "form_post"), ("response_type", "token")]),
            Some(&c),
        ) {
            Err(AuthorizeError::Redirect { response_mode, .. }) => {
                assert_eq!(response_mode, ResponseMode::FormPost)
            }
            other => panic!("{other:?}"),
        }
    }
}
