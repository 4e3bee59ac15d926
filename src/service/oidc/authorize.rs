//! The authorization endpoint's journey: validate, sign in, consent, code.
//! The validated request waits in the ephemeral store (a login transaction)
//! while the user signs in and consents, so any node can continue it.

use crate::crypto::{random_token, sha256_hex};
use crate::domain::{Session, User};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::oidc::authorize::{
    AuthorizeError, AuthorizeParams, AuthorizeRequest, ResponseMode, validate,
};
use crate::protocol::oidc::claims::{acr_for, needs_step_up};
use crate::protocol::oidc::uri::destination;
use crate::service::{Actor, Services, record};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::IpAddr;
use std::time::Duration;

const TX_TTL: Duration = Duration::from_secs(30 * 60);

/// What to send the client at its redirect URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientResponse {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub params: Vec<(String, String)>,
}

#[derive(Debug)]
pub enum AuthorizeOutcome {
    /// The request cannot be answered at the redirect URI: show this.
    Page(Error),
    /// The user must sign in (again, when `reauth`), then open `resume`.
    Login {
        resume: String,
        login_hint: Option<String>,
        reauth: bool,
    },
    /// Ask the user to approve the scopes.
    Consent {
        tx: String,
        client_name: String,
        scopes: Vec<String>,
        /// Where the browser will be sent (the host of the request's
        /// redirect URI): the name alone can be anyone's.
        destination: String,
        /// The client registered itself (RFC 7591): no administrator
        /// vouches for it.
        self_registered: bool,
    },
    Respond(ClientResponse),
    /// A privileged client and no active elevation: offer to request
    /// `role` (as `gate` allows), then continue at `resume`.
    NeedsElevation {
        role: String,
        app: String,
        resume: String,
        gate: crate::service::pim::Gate,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Transaction {
    request: AuthorizeRequest,
    /// A session that is too old for this request (prompt=login / max_age):
    /// signing in again replaces it.
    stale_session: Option<String>,
    /// SHA-256 of the binding cookie of the browser that started it: no
    /// other browser may continue it.
    browser: String,
    /// The session whose user answered the consent page in this
    /// transaction; it counts for that session only.
    consented_in: Option<String>,
}

/// What an authorization code stands for, kept until it is redeemed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub user_id: String,
    pub session_digest: String,
    pub scope: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub acr: String,
    pub expires_at: i64,
    /// The browser's address: elevation conditions are checked against it.
    #[serde(default)]
    pub ip: Option<String>,
}

pub fn code_key(code: &str) -> String {
    format!("code:{}", sha256_hex(code.as_bytes()))
}

pub fn code_used_key(code: &str) -> String {
    format!("code-used:{}", sha256_hex(code.as_bytes()))
}

fn tx_key(tx: &str) -> String {
    format!("authz:{}", sha256_hex(tx.as_bytes()))
}

fn error_response(
    r: &AuthorizeRequest,
    issuer: &str,
    error: &str,
    description: &str,
) -> ClientResponse {
    let mut params = vec![
        ("error".to_string(), error.to_string()),
        ("error_description".into(), description.into()),
    ];
    if let Some(s) = &r.state {
        params.push(("state".into(), s.clone()));
    }
    params.push(("iss".into(), issuer.into()));
    ClientResponse {
        redirect_uri: r.redirect_uri.clone(),
        mode: r.response_mode,
        params,
    }
}

impl Services {
    /// Starts (or restarts) an authorization request.
    pub async fn authorize(
        &self,
        params: AuthorizeParams,
        session: Option<(Session, User)>,
        browser: &str,
        ip: Option<IpAddr>,
    ) -> Result<AuthorizeOutcome> {
        let client = match params.get("client_id") {
            Some(id) => self.client(id).await?,
            None => None,
        };
        let request = match validate(&params, client.as_ref()) {
            Ok(r) => r,
            Err(AuthorizeError::Page(msg)) => {
                return Ok(AuthorizeOutcome::Page(Error::oauth(
                    ErrorKind::InvalidInput,
                    "invalid_request",
                    msg,
                )));
            }
            Err(AuthorizeError::Redirect {
                redirect_uri,
                response_mode,
                state,
                error,
                description,
            }) => {
                let mut p = vec![
                    ("error".to_string(), error.to_string()),
                    ("error_description".into(), description),
                ];
                if let Some(s) = state {
                    p.push(("state".into(), s));
                }
                p.push(("iss".into(), self.issuer.clone()));
                return Ok(AuthorizeOutcome::Respond(ClientResponse {
                    redirect_uri,
                    mode: response_mode,
                    params: p,
                }));
            }
        };
        let now = self.now().timestamp();
        let stale = match &session {
            Some((s, u)) => {
                let too_old = request
                    .max_age
                    .is_some_and(|m| now - s.auth_time.timestamp() > m);
                let required = self
                    .required_acr(u, client.as_ref().and_then(|c| c.required_acr.as_deref()))
                    .await?;
                let weaker = needs_step_up(&request.acr_values, &s.amr)
                    || required.is_some_and(|l| needs_step_up(&[l.to_string()], &s.amr));
                (request.prompt.login || too_old || weaker).then(|| s.id_digest.clone())
            }
            None => None,
        };
        self.spend_start(ip.map(|i| i.to_string()).as_deref())
            .await?;
        let tx = random_token();
        let t = Transaction {
            request,
            stale_session: stale,
            browser: sha256_hex(browser.as_bytes()),
            consented_in: None,
        };
        self.put_tx(&tx, &t).await?;
        self.continue_authorize(&tx, session, browser, ip).await
    }

    async fn put_tx(&self, tx: &str, t: &Transaction) -> Result<()> {
        let bytes = serde_json::to_vec(t).map_err(|e| Error::internal(e.to_string()))?;
        self.ephemeral.begin(&tx_key(tx), &bytes, TX_TTL).await
    }

    /// The origin a pending authorization ends at, when `next` continues one
    /// (`/authorize/resume?tx=…`). A page whose form leads there must allow
    /// it in CSP `form-action`: browsers apply that to the redirects that
    /// follow a form submission, not only to its first target.
    pub async fn authorization_return_origin(&self, next: &str) -> Option<String> {
        let tx = next.strip_prefix("/authorize/resume?tx=")?;
        let t = self.get_tx(tx).await.ok()?;
        url::Url::parse(&t.request.redirect_uri)
            .ok()
            .map(|u| u.origin().ascii_serialization())
            .filter(|o| o != "null")
    }

    /// The transaction, only for the browser that started it.
    async fn get_own_tx(&self, tx: &str, browser: &str) -> Result<Transaction> {
        let t = self.get_tx(tx).await?;
        crate::service::same_browser(&t.browser, browser)?;
        Ok(t)
    }

    async fn get_tx(&self, tx: &str) -> Result<Transaction> {
        let gone = || {
            Error::invalid(
                "This sign-in request has expired or was already completed. Go back to the application and start again.",
            )
        };
        let bytes = self.ephemeral.get(&tx_key(tx)).await?.ok_or_else(gone)?;
        serde_json::from_slice(&bytes).map_err(|_| gone())
    }

    /// Continues a transaction after sign-in or consent.
    pub async fn continue_authorize(
        &self,
        tx: &str,
        session: Option<(Session, User)>,
        browser: &str,
        ip: Option<IpAddr>,
    ) -> Result<AuthorizeOutcome> {
        let t = self.get_own_tx(tx, browser).await?;
        let r = &t.request;
        let resume = format!("/authorize/resume?tx={tx}");
        let login = |reauth| AuthorizeOutcome::Login {
            resume: resume.clone(),
            login_hint: r.login_hint.clone(),
            reauth,
        };
        let Some((session, user)) =
            session.filter(|(s, _)| Some(&s.id_digest) != t.stale_session.as_ref())
        else {
            if r.prompt.none {
                return self
                    .finish_with_error(tx, r, "login_required", "the user is not signed in")
                    .await;
            }
            return Ok(login(t.stale_session.is_some()));
        };
        let client = self.need_client(&r.client_id).await?;
        if let Some(level) = self
            .required_acr(&user, client.required_acr.as_deref())
            .await?
            && needs_step_up(&[level.to_string()], &session.amr)
        {
            let why = format!(
                "{} requires signing in with {level}; set up an authenticator app on your account's security page",
                client.name
            );
            return self.finish_with_error(tx, r, "access_denied", &why).await;
        }
        if let Some(role) = client.required_role.clone()
            && let Some(gate) = self
                .elevation_gate(&user, &role, &client.client_id, ip)
                .await?
        {
            if r.prompt.none {
                let why = format!("{} needs an active elevation of {role}", client.name);
                return self.finish_with_error(tx, r, "access_denied", &why).await;
            }
            return Ok(AuthorizeOutcome::NeedsElevation {
                role,
                app: client.name,
                resume,
                gate,
            });
        }
        if client.consent_required {
            // Consent is this user's, stored per user and client; a
            // `prompt=consent` is answered only by the session at hand.
            let (uid, cid) = (user.id.clone(), client.client_id.clone());
            let granted = self
                .db(move |x| x.consent(&uid, &cid))
                .await?
                .unwrap_or_default();
            let covered = r.scope.iter().all(|s| granted.contains(s));
            let asked_here = t.consented_in.as_deref() == Some(session.id_digest.as_str());
            if !covered || (r.prompt.consent && !asked_here) {
                if r.prompt.none {
                    return self
                        .finish_with_error(
                            tx,
                            r,
                            "consent_required",
                            "the user has not approved this application",
                        )
                        .await;
                }
                return Ok(AuthorizeOutcome::Consent {
                    tx: tx.to_string(),
                    client_name: client.name,
                    scopes: r.scope.clone(),
                    destination: destination(&r.redirect_uri),
                    self_registered: client.registered_dynamically,
                });
            }
        }
        // Single use from here: a second tab cannot finish the same request.
        if self.ephemeral.take(&tx_key(tx)).await?.is_none() {
            return Err(self
                .get_tx(tx)
                .await
                .err()
                .unwrap_or_else(|| Error::invalid("request already completed")));
        }
        let code = random_token();
        let now = self.now();
        let grant = CodeGrant {
            client_id: client.client_id.clone(),
            redirect_uri: r.redirect_uri.clone(),
            user_id: user.id.to_string(),
            session_digest: session.id_digest.clone(),
            scope: r.scope.clone(),
            nonce: r.nonce.clone(),
            code_challenge: r.code_challenge.clone(),
            auth_time: session.auth_time.timestamp(),
            acr: acr_for(&session.amr).to_string(),
            amr: session.amr.clone(),
            expires_at: now.timestamp() + self.settings.oidc.code_lifetime.as_secs() as i64,
            ip: ip.map(|i| i.to_string()),
        };
        let bytes = serde_json::to_vec(&grant).map_err(|e| Error::internal(e.to_string()))?;
        self.ephemeral
            .put_ttl(&code_key(&code), &bytes, self.settings.oidc.code_lifetime)
            .await?;
        let mut params = vec![("code".to_string(), code)];
        if let Some(s) = &r.state {
            params.push(("state".into(), s.clone()));
        }
        params.push(("iss".into(), self.issuer.clone()));
        Ok(AuthorizeOutcome::Respond(ClientResponse {
            redirect_uri: r.redirect_uri.clone(),
            mode: r.response_mode,
            params,
        }))
    }

    async fn finish_with_error(
        &self,
        tx: &str,
        r: &AuthorizeRequest,
        error: &str,
        description: &str,
    ) -> Result<AuthorizeOutcome> {
        self.ephemeral.delete(&tx_key(tx)).await?;
        Ok(AuthorizeOutcome::Respond(error_response(
            r,
            &self.issuer,
            error,
            description,
        )))
    }

    /// The user's answer on the consent page.
    pub async fn answer_consent(
        &self,
        tx: &str,
        session: Option<(Session, User)>,
        browser: &str,
        approve: bool,
        ip: Option<IpAddr>,
    ) -> Result<AuthorizeOutcome> {
        let mut t = self.get_own_tx(tx, browser).await?;
        let Some((s, user)) = session else {
            return self.continue_authorize(tx, None, browser, ip).await;
        };
        if !approve {
            let r = t.request.clone();
            let (actor, cid, now) = (
                Actor::user(user.username.as_str(), None),
                r.client_id.clone(),
                self.now(),
            );
            self.db(move |x| record(x, now, &actor, "consent.deny", &cid, json!({})))
                .await?;
            return self
                .finish_with_error(tx, &r, "access_denied", "the user declined")
                .await;
        }
        let (uid, cid, scopes, now) = (
            user.id.clone(),
            t.request.client_id.clone(),
            t.request.scope.clone(),
            self.now(),
        );
        let actor = Actor::user(user.username.as_str(), None);
        self.db(move |x| {
            let mut all = x.consent(&uid, &cid)?.unwrap_or_default();
            for sc in &scopes {
                if !all.contains(sc) {
                    all.push(sc.clone());
                }
            }
            x.set_consent(&uid, &cid, &all, now)?;
            record(
                x,
                now,
                &actor,
                "consent.grant",
                &cid,
                json!({"scopes": scopes}),
            )
        })
        .await?;
        t.consented_in = Some(s.id_digest.clone());
        self.put_tx(tx, &t).await?;
        self.continue_authorize(tx, Some((s, user)), browser, ip)
            .await
    }
}
