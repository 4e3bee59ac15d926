//! The one error type. It carries a public message (safe to show to a user or a
//! client) and a private detail (logged, never shown). The web layer maps it to
//! an HTML page, an OAuth2 JSON error or a SAML status as the endpoint requires.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller sent something wrong; retrying the same input will not help.
    InvalidInput,
    NotFound,
    /// A uniqueness rule was broken (e.g. the username is taken).
    Conflict,
    /// Credentials missing or wrong.
    Unauthenticated,
    /// Authenticated but not allowed.
    Forbidden,
    /// Too many attempts; try later.
    Throttled,
    /// A dependency (database, ephemeral store) cannot be reached.
    Unavailable,
    /// Two writers raced; the whole transaction may be retried.
    Contention,
    /// A bug or an unexpected state. The public message stays generic.
    Internal,
}

#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    public: String,
    detail: Option<String>,
    /// A protocol's own error code, when the rule that failed names one
    /// (OAuth 2.0 `error`, e.g. `invalid_grant`).
    code: Option<&'static str>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, public: impl Into<String>) -> Self {
        Self {
            kind,
            public: public.into(),
            detail: None,
            code: None,
        }
    }

    /// An OAuth 2.0 / OpenID Connect error with its registered code.
    pub fn oauth(kind: ErrorKind, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            code: Some(code),
            ..Self::new(kind, description)
        }
    }

    /// The protocol error code, if one was set.
    pub fn code(&self) -> Option<&'static str> {
        self.code
    }

    pub fn invalid(public: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, public)
    }

    pub fn not_found(public: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, public)
    }

    pub fn conflict(public: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, public)
    }

    pub fn forbidden(public: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, public)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, "a required service is unavailable").with_detail(detail)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, "internal error").with_detail(detail)
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The message that may be shown to whoever made the request.
    pub fn public(&self) -> &str {
        &self.public
    }

    /// The private detail, for logs only.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.public)?;
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_detail_from_the_public_message() {
        let e = Error::internal("connection refused at db:5432");
        assert_eq!(e.public(), "internal error");
        assert_eq!(e.detail(), Some("connection refused at db:5432"));
        assert!(e.to_string().contains("db:5432"));
    }
}
