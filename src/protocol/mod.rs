//! Pure protocol rules: inputs plus `now` in, decisions out. No actix, diesel
//! or redis here, so every security rule is unit-testable.

pub mod client_ip;
pub mod lifecycle;
pub mod login;
pub mod mfa;
pub mod oidc;
pub mod params;
pub mod pim;
pub mod saml;
pub mod text;
pub mod webauthn;

#[cfg(test)]
mod proptests;
