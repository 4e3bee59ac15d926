//! The integration suite: real servers on port 0, real HTTP, real databases.
//! PostgreSQL and Redis cases run when `PORTCULLIS_TEST_DATABASE_URL` /
//! `PORTCULLIS_TEST_REDIS_URL` are set and say that they were skipped otherwise.

mod attack;
mod attestation;
mod audit_chain;
mod browser;
mod browser_pim;
#[allow(dead_code)]
mod cdp;
mod cli;
mod common;
pub mod cuttable;
mod ephemeral;
mod faults;
mod lifecycle;
mod login;
mod mfa;
mod nodes;
pub mod oidc;
mod ops;
mod outbound;
mod passkey;
pub mod pim;
mod policy;
mod privileged_app;
pub mod saml;
mod saml_logout_scope;
mod saml_signed;
mod saml_slo;
mod saml_wrapping;
mod serve;
mod store;
