//! Redirect URIs: which may be registered, and how responses are appended.

use url::Url;

/// Checks a redirect URI a client wants to register (RFC 8252, RFC 9700):
/// absolute, no fragment, https — except loopback http for native apps and
/// local development, and private-use schemes (`com.example.app:/cb`).
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let u = Url::parse(uri).map_err(|e| format!("{uri:?} is not an absolute URI: {e}"))?;
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
    if uri.len() > 2000 {
        return Err("redirect URIs must be at most 2000 characters".into());
    }
    Ok(())
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
