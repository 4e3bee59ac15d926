//! Redirect URIs: which may be registered, and how responses are appended.

use url::Url;

/// Query parameters the server itself adds to a redirect (authorization
/// responses, RFC 9207 `iss`, session management, logout `state`): a
/// registered URI carrying one would send the client two of them.
pub const RESERVED_PARAMS: [&str; 6] = [
    "code",
    "state",
    "iss",
    "error",
    "error_description",
    "session_state",
];

/// Longest redirect URI a client may register.
const MAX_LEN: usize = 2000;

/// Checks a redirect URI a client wants to register (RFC 8252, RFC 9700):
/// absolute, no fragment, https — except loopback http for native apps and
/// local development, and private-use schemes (`com.example.app:/cb`).
/// It must also be stored exactly as it will be used: no control characters
/// or whitespace, nothing a URL parser would rewrite, no user name or
/// password before the host (`https://rp.example@evil.example/`), no `*` in
/// the host, and none of the [`RESERVED_PARAMS`] in its query.
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    check_uri(uri, true)
}

/// The same rules for a SAML endpoint from an SP's metadata (ACS, SOAP
/// logout), except the normal form: SPs compare those URLs with what they
/// send in their own requests (`https://sp.example:443/acs`), so the
/// registered string is kept as the SP wrote it.
pub fn check_endpoint_url(uri: &str) -> Result<(), String> {
    check_uri(uri, false)
}

fn check_uri(uri: &str, exact: bool) -> Result<(), String> {
    if uri.len() > MAX_LEN {
        return Err(format!(
            "redirect URIs must be at most {MAX_LEN} characters"
        ));
    }
    if uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "{uri:?} must not contain control characters or whitespace"
        ));
    }
    let u = Url::parse(uri).map_err(|e| format!("{uri:?} is not an absolute URI: {e}"))?;
    if exact && u.as_str() != uri {
        return Err(format!(
            "{uri:?} is not in normal form (it would be used as {:?}); register it exactly as it is to be used",
            u.as_str()
        ));
    }
    if u.fragment().is_some() {
        return Err(format!("{uri:?} must not contain a fragment"));
    }
    match u.scheme() {
        "https" => {}
        "http" => {
            let loopback = matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
            if !loopback {
                return Err(format!(
                    "{uri:?} must use https (http is only for localhost)"
                ));
            }
        }
        "javascript" | "data" | "file" | "vbscript" | "blob" | "about" => {
            return Err(format!("{uri:?} uses a scheme that is never allowed"));
        }
        // Private-use schemes of native apps must look like a reversed domain.
        s if s.contains('.') => {}
        _ => {
            return Err(format!(
                "{uri:?} must use https, loopback http, or a reverse-domain app scheme"
            ));
        }
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!(
            "{uri:?} must not contain a user name or password before the host"
        ));
    }
    if u.host_str().is_some_and(|h| h.contains('*')) {
        return Err(format!(
            "{uri:?} must name one host: wildcards are not allowed"
        ));
    }
    if let Some((k, _)) = u
        .query_pairs()
        .find(|(k, _)| RESERVED_PARAMS.iter().any(|r| k.eq_ignore_ascii_case(r)))
    {
        return Err(format!(
            "{uri:?} must not carry the query parameter {k:?}: the server adds it to the response"
        ));
    }
    Ok(())
}

/// Where a redirect URI sends the browser, as a user should read it: the
/// host (and a port other than the scheme's default), or for a native app's
/// private-use scheme the scheme itself.
pub fn destination(uri: &str) -> String {
    match Url::parse(uri) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => format!("{}:", u.scheme()),
        },
        Err(_) => uri.chars().take(80).collect(),
    }
}

/// `base` with `params` appended to its query, keeping any query it has.
pub fn with_query(base: &str, params: &[(&str, &str)]) -> String {
    if params.is_empty() {
        return base.to_string();
    }
    match Url::parse(base) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        // Registered URIs always parse; keep a safe fallback anyway.
        Err(_) => base.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_rules() {
        for ok in [
            "https://app.example/cb",
            "http://localhost:8080/cb",
            "http://127.0.0.1:5000/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/relative",
            "http://app.example/cb",
            "https://app.example/cb#frag",
            "javascript:alert(1)",
            "myapp:/cb",
            "not a uri",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn saml_endpoints_keep_the_form_the_sp_wrote() {
        assert!(check_endpoint_url("https://sp.example:443/acs").is_ok());
        assert!(check_redirect_uri("https://sp.example:443/acs").is_err());
        assert!(check_endpoint_url("https://sp.example@evil.example/acs").is_err());
        assert!(check_endpoint_url("https://sp.example/acs\r\nX: y").is_err());
    }

    #[test]
    fn only_uris_used_exactly_as_registered() {
        for ok in [
            "https://app.example/cb?tenant=1",
            "https://app.example:8443/cb?a=1&b=2",
            "https://app.example/cb?codec=x&stated=y",
            "http://[::1]:5000/cb",
            "com.example.app:/cb?x=1",
        ] {
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
        }
        let why = |bad: &str| check_redirect_uri(bad).unwrap_err();
        for (bad, because) in [
            (
                "https://evil.example/cb\r\nSet-Cookie: x=1",
                "control characters",
            ),
            ("https://evil.example/cb\tx", "control characters"),
            ("https://evil.example/c b", "whitespace"),
            ("https://evil.example/cb\u{85}", "control characters"),
            ("https://evil.example/cb\u{a0}", "whitespace"),
            ("https://*.evil.example/cb", "wildcards"),
            ("https://rp.example*/cb", "wildcards"),
            ("https://rp.example@evil.example/cb", "user name"),
            ("https://rp.example:pw@evil.example/cb", "user name"),
            ("https://@evil.example/cb", "normal form"),
            ("https://app.example/cb#", "fragment"),
            ("https://App.Example/cb", "normal form"),
            ("https://app.example:443/cb", "normal form"),
            ("https://app.example", "normal form"),
            ("https://app.example/a/../cb", "normal form"),
            ("https://app.example/caf\u{e9}", "normal form"),
            ("https://b\u{fc}cher.example/cb", "normal form"),
            ("https://app.example/cb?a=1&code=FAKE&state=zz", "\"code\""),
            ("https://app.example/cb?state=1", "\"state\""),
            ("https://app.example/cb?iss=https://evil.example", "\"iss\""),
            ("https://app.example/cb?error=x", "\"error\""),
            (
                "https://app.example/cb?error_description=x",
                "\"error_description\"",
            ),
            (
                "https://app.example/cb?session_state=x",
                "\"session_state\"",
            ),
            ("https://app.example/cb?c%6Fde=x", "\"code\""),
            ("https://app.example/cb?CODE=x", "\"CODE\""),
        ] {
            let e = why(bad);
            assert!(e.contains(because), "{bad}: {e}");
            assert!(!e.contains('\n') && !e.contains('\r'), "one line: {e}");
        }
        assert!(why(&format!("https://app.example/{}", "a".repeat(2000))).contains("at most"));
    }

    #[test]
    fn destination_is_what_the_user_should_read() {
        assert_eq!(destination("https://rp.example/cb?x=1"), "rp.example");
        assert_eq!(destination("https://rp.example:8443/cb"), "rp.example:8443");
        assert_eq!(destination("http://localhost:9999/cb"), "localhost:9999");
        assert_eq!(destination("com.example.app:/cb"), "com.example.app:");
    }

    #[test]
    fn query_is_appended_and_encoded() {
        assert_eq!(
            with_query(
                "https://app.example/cb",
                &[("code", "a b"), ("state", "x&y")]
            ),
            "https://app.example/cb?code=a+b&state=x%26y"
        );
        assert_eq!(
            with_query("https://app.example/bye", &[]),
            "https://app.example/bye"
        );
        assert_eq!(
            with_query("https://app.example/cb?tenant=1", &[("code", "c")]),
            "https://app.example/cb?tenant=1&code=c"
        );
    }
}
