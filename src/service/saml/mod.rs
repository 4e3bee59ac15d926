//! SAML 2.0 identity provider services.

pub mod certs;
pub mod registry;
mod respond;
pub mod slo;
pub mod sso;
mod verify;
