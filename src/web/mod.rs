//! HTTP: actix handlers that extract, call the service and map the result.
//! Only this module knows actix, cookies and askama.

mod account;
pub mod limits;
mod login;
pub mod metrics;
mod middleware;
mod oidc;
mod ops;
mod page;
mod passkey_pages;
mod passkeys;
pub(crate) mod pim;
mod pim_api;
pub(crate) mod saml;
mod security;

pub use limits::bound_params;
pub use metrics::Metrics;
pub use middleware::observe;

use crate::service::Services;
use actix_web::{HttpResponse, web};
use std::sync::Arc;

pub struct AppState {
    pub services: Services,
    pub metrics: Arc<Metrics>,
    pub issuer: String,
    /// Whether cookies carry `Secure`: when the issuer is https, unless configured.
    pub secure_cookies: bool,
}

pub type State = web::Data<AppState>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::FormConfig::default()
            .limit(64 * 1024)
            .error_handler(|err, _req| {
                page::PageError::bad_request(format!("The form could not be read: {err}")).into()
            }),
    )
    .route("/", web::get().to(login::root))
    .route("/login", web::get().to(login::show))
    .route("/login", web::post().to(login::submit))
    .route("/login/second-factor", web::post().to(login::second_factor))
    .route("/logout", web::post().to(login::logout))
    .route("/account", web::get().to(account::show))
    .route("/account/password", web::get().to(account::password_form))
    .route(
        "/account/password",
        web::post().to(account::change_password),
    )
    .route("/healthz", web::get().to(ops::healthz))
    .route("/readyz", web::get().to(ops::readyz))
    .route("/metrics", web::get().to(ops::metrics))
    .route("/static/{file}", web::get().to(ops::static_file))
    .configure(oidc::routes)
    .configure(saml::routes)
    .configure(security::routes)
    .configure(passkeys::routes)
    .configure(passkey_pages::routes)
    .configure(pim::routes)
    .configure(pim_api::routes)
    .default_service(web::to(not_found));
}

async fn not_found() -> HttpResponse {
    page::error_page(
        actix_web::http::StatusCode::NOT_FOUND,
        "Page not found",
        "There is nothing at this address.",
    )
}

/// Headers every response carries unless a handler set its own.
/// Headers every response carries; HSTS when the issuer is https (a
/// browser that once reached it never again tries plain http).
pub fn security_headers(issuer: &str) -> actix_web::middleware::DefaultHeaders {
    let headers = actix_web::middleware::DefaultHeaders::new()
        .add(("Content-Security-Policy", page::csp("'self'")))
        .add(("X-Frame-Options", "DENY"))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"));
    if issuer.starts_with("https://") {
        headers.add(("Strict-Transport-Security", "max-age=31536000"))
    } else {
        headers
    }
}
