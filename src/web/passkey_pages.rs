//! Pages around a WebAuthn ceremony: the fresh passkey check and the
//! invitation link. The ceremony itself runs in `static/webauthn.js`.

use super::State;
use super::page::{CsrfForm, PageResult, error_page, render, see_other, signed_in, urlencode};
use crate::protocol::login::safe_return_path;
use crate::service::invite::InviteState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/account/verify", web::get().to(verify))
        .route("/invite/{token}", web::get().to(invite));
}

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage<'a> {
    csrf: &'a str,
    next: &'a str,
    reason: &'a str,
    has_passkey: bool,
}

#[derive(Deserialize)]
pub struct VerifyQuery {
    next: Option<String>,
    /// Why the check is asked for: one of a fixed set (`elevation`), never
    /// text from the link, so nobody can put words on this page.
    reason: Option<String>,
    /// With `reason=elevation`: the role, shown only when it is a role name.
    role: Option<String>,
}

/// The sentence shown for a `reason`; unknown reasons get the general one.
fn verify_reason(reason: Option<&str>, role: Option<&str>) -> String {
    let role = role.and_then(|r| crate::domain::RoleName::parse(r).ok());
    match (reason, role) {
        (Some("elevation"), Some(role)) => {
            format!("Requesting {role} needs a fresh check with your passkey.")
        }
        _ => "This step needs a fresh check with your passkey.".to_string(),
    }
}

/// "Confirm it's you": a user-verified passkey, recorded in the session.
/// Elevation requests and password changes send users here.
pub async fn verify(req: HttpRequest, state: State, q: web::Query<VerifyQuery>) -> PageResult {
    let next = safe_return_path(q.next.as_deref()).unwrap_or_else(|| "/account/security".into());
    let Some((_, user)) = signed_in(&req, &state).await? else {
        let back = format!("/account/verify?next={}", urlencode(&next));
        return Ok(see_other(&format!("/login?next={}", urlencode(&back))));
    };
    let status = state.services.mfa_status(&user).await?;
    let reason = verify_reason(q.reason.as_deref(), q.role.as_deref());
    let csrf = CsrfForm::issue(&req, &state).await?;
    let page = VerifyPage {
        csrf: &csrf.token,
        next: &next,
        reason: &reason,
        has_passkey: status.passkeys > 0,
    };
    Ok(csrf.attach(render(StatusCode::OK, &page)))
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage<'a> {
    csrf: &'a str,
    token: &'a str,
    username: &'a str,
    display_name: &'a str,
}

/// The enrollment link: create a passkey, then be signed in.
pub async fn invite(req: HttpRequest, state: State, token: web::Path<String>) -> PageResult {
    match state.services.invite_state(&token).await? {
        InviteState::Valid(user) => {
            let csrf = CsrfForm::issue(&req, &state).await?;
            let page = InvitePage {
                csrf: &csrf.token,
                token: &token,
                username: user.username.as_str(),
                display_name: &user.display_name,
            };
            Ok(csrf.attach(render(StatusCode::OK, &page)))
        }
        other => {
            let status = match other {
                InviteState::Unknown => StatusCode::NOT_FOUND,
                _ => StatusCode::GONE,
            };
            Ok(error_page(
                status,
                "This link cannot be used",
                other.refusal(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::verify_reason;

    #[test]
    fn the_verify_page_shows_only_its_own_words() {
        let general = "This step needs a fresh check with your passkey.";
        assert_eq!(
            verify_reason(Some("Your account is suspended; call +1 555"), None),
            general
        );
        assert_eq!(
            verify_reason(Some("elevation"), Some("Pay a fine at evil.example")),
            general
        );
        assert_eq!(
            verify_reason(Some("elevation"), Some("prod-admin")),
            "Requesting prod-admin needs a fresh check with your passkey."
        );
    }
}
