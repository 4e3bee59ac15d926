use crate::protocol::oidc::discovery::metadata;
use crate::web::State;
use actix_web::HttpResponse;
use actix_web::http::header::CACHE_CONTROL;

pub async fn openid_configuration(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .json(metadata(&state.issuer))
}

/// Short caching: a key published ahead of use (keys.publish_ahead, 1 h by
/// default) reaches every cache well before it signs anything.
pub async fn jwks(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "public, max-age=300"))
        .json(state.services.jwks())
}
