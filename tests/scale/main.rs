//! Several nodes behind a load balancer: three `portcullis serve` processes
//! on one PostgreSQL database and one Redis, behind nginx doing plain round
//! robin. Each test starts its own environment (see `cluster.rs`) and talks
//! HTTP through the balancer, as users and relying parties do.
//!
//! Not part of `cargo test`: every test is ignored there and `make
//! scale-test` runs them one at a time. They need PostgreSQL
//! (`PORTCULLIS_TEST_DATABASE_URL`), `redis-server` and `nginx`, and say that
//! they were skipped without them.

mod cluster;
mod crash;
mod faults;
mod http;
mod journeys;
mod keys;
mod nginx;
mod oidc;
mod outbox;
mod passkey;
mod pim;
mod races;
mod resources;
mod saml;
