//! OpenID Connect provider services.

pub mod authorize;
pub mod client_auth;
pub mod clients;
pub mod logout;
pub mod resource;
pub mod token;
pub mod tokens;
