//! Bounds on query strings and form bodies, checked before any other work.
//!
//! One pass over the raw bytes, no allocation: the count of pairs, the
//! length of each encoded name and value, and the total. Encoded lengths
//! bound decoded ones, so nothing decoded afterwards can be larger.

/// Limits for one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most `name=value` pairs.
    pub max_pairs: usize,
    /// Longest encoded name.
    pub max_name: usize,
    /// Longest encoded value.
    pub max_value: usize,
    /// Longest query string or form body, in bytes.
    pub max_total: usize,
}

impl Limits {
    /// Every endpoint's default: enough for any real OAuth, OIDC or form
    /// request.
    pub const DEFAULT: Limits = Limits {
        max_pairs: 64,
        max_name: 128,
        max_value: 8 * 1024,
        max_total: 32 * 1024,
    };

    /// SAML bindings carry a whole message (deflated in a query, or base64
    /// in a form) in one value.
    pub const SAML: Limits = Limits {
        max_pairs: 16,
        max_name: 64,
        max_value: super::saml::MAX_ENCODED,
        max_total: super::saml::MAX_ENCODED + 8 * 1024,
    };

    /// WebAuthn answers and dynamic registration are JSON: no pairs, but a
    /// total.
    pub const JSON: Limits = Limits {
        max_pairs: 64,
        max_name: 128,
        max_value: 8 * 1024,
        max_total: 64 * 1024,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamError {
    TooLarge { max: usize },
    TooMany { max: usize },
    NameTooLong { max: usize },
    ValueTooLong { max: usize },
}

impl ParamError {
    pub fn describe(&self) -> String {
        match self {
            ParamError::TooLarge { max } => {
                format!("the request is too large (at most {max} bytes)")
            }
            ParamError::TooMany { max } => format!("too many parameters (at most {max})"),
            ParamError::NameTooLong { max } => {
                format!("a parameter name is too long (at most {max} bytes)")
            }
            ParamError::ValueTooLong { max } => {
                format!("a parameter value is too long (at most {max} bytes)")
            }
        }
    }
}

/// Checks `raw` (a query string or an `application/x-www-form-urlencoded`
/// body) against `limits` in one linear pass.
pub fn check(raw: &[u8], limits: &Limits) -> Result<(), ParamError> {
    if raw.len() > limits.max_total {
        return Err(ParamError::TooLarge {
            max: limits.max_total,
        });
    }
    let mut pairs = 0;
    for pair in raw.split(|&b| b == b'&' || b == b';') {
        if pair.is_empty() {
            continue;
        }
        pairs += 1;
        if pairs > limits.max_pairs {
            return Err(ParamError::TooMany {
                max: limits.max_pairs,
            });
        }
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[..0]),
        };
        if name.len() > limits.max_name {
            return Err(ParamError::NameTooLong {
                max: limits.max_name,
            });
        }
        if value.len() > limits.max_value {
            return Err(ParamError::ValueTooLong {
                max: limits.max_value,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_requests_pass() {
        let q =
            b"client_id=app&redirect_uri=https%3A%2F%2Fa.example%2Fcb&scope=openid+email&state=x";
        assert_eq!(check(q, &Limits::DEFAULT), Ok(()));
        assert_eq!(check(b"", &Limits::DEFAULT), Ok(()));
        assert_eq!(check(b"a&&b=&=c", &Limits::DEFAULT), Ok(()));
    }

    #[test]
    fn each_bound_is_named() {
        let many: Vec<u8> = (0..65)
            .flat_map(|i| format!("k{i}=v&").into_bytes())
            .collect();
        assert_eq!(
            check(&many, &Limits::DEFAULT),
            Err(ParamError::TooMany { max: 64 })
        );
        let name = format!("{}=v", "n".repeat(129));
        assert_eq!(
            check(name.as_bytes(), &Limits::DEFAULT),
            Err(ParamError::NameTooLong { max: 128 })
        );
        let value = format!("v={}", "x".repeat(8 * 1024 + 1));
        assert_eq!(
            check(value.as_bytes(), &Limits::DEFAULT),
            Err(ParamError::ValueTooLong { max: 8192 })
        );
        let big = vec![b'x'; 32 * 1024 + 1];
        assert!(matches!(
            check(&big, &Limits::DEFAULT),
            Err(ParamError::TooLarge { .. })
        ));
        // Semicolons separate pairs for some parsers: counted too.
        let semis: Vec<u8> = (0..65)
            .flat_map(|i| format!("k{i}=v;").into_bytes())
            .collect();
        assert!(check(&semis, &Limits::DEFAULT).is_err());
    }

    #[test]
    fn the_review_s_flood_is_refused_at_once() {
        // 60,000 distinct keys in 236 KB: refused by size before anything else.
        let flood: Vec<u8> = (0..60_000)
            .flat_map(|i| format!("k{i}&").into_bytes())
            .collect();
        assert!(check(&flood, &Limits::SAML).is_err());
        assert!(check(&flood, &Limits::DEFAULT).is_err());
    }
}
