//! OpenID Connect and OAuth 2.0 rules.

pub mod authorize;
pub mod claims;
pub mod client_auth;
pub mod discovery;
pub mod outbound;
pub mod pkce;
pub mod registration;
pub mod scope;
pub mod uri;
