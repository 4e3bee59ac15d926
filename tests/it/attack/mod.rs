//! Attacks from the outsider's review, each performed over HTTP against a
//! real server. Every test here failed on the release it was written for.

mod client_ip;
mod consent;
mod guessing;
mod hashing;
mod headers;
mod input;
mod limits;
mod logout_hint;
mod outbox;
mod pim_text;
mod reauth;
pub mod registration;
mod relay_state;
mod sessions;
mod store;
