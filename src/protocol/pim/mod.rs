//! Privileged Identity Management rules: pure, take `now`, return decisions.
//!
//! Nothing here reads the clock, the network or storage; callers pass in what
//! they know and act on the decision, which keeps every rule testable with
//! fixed instants.

pub mod policy;
pub mod request;
pub mod risk;
pub mod state;
pub mod webhook;
pub mod window;
