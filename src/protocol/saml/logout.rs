//! Single Logout messages (SAML Core 3.7): reading LogoutRequests and
//! LogoutResponses, writing both.

use super::dsig;
use super::request::CLOCK_SKEW;
use super::response::{Status, instant, new_id, status_xml};
use super::{guard, reject_dtd, xml_escape};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Text {
    #[serde(rename = "$text", default)]
    value: String,
}

#[derive(Debug, Deserialize)]
struct StatusCodeXml {
    #[serde(rename = "@Value")]
    value: String,
}

#[derive(Debug, Deserialize)]
struct StatusXml {
    #[serde(rename = "StatusCode")]
    code: StatusCodeXml,
}

#[derive(Debug, Deserialize)]
struct MessageXml {
    #[serde(rename = "@ID")]
    id: String,
    #[serde(rename = "@Version")]
    version: String,
    #[serde(rename = "@IssueInstant")]
    issue_instant: DateTime<Utc>,
    #[serde(rename = "@Destination")]
    destination: Option<String>,
    #[serde(rename = "@InResponseTo")]
    in_response_to: Option<String>,
    #[serde(rename = "Issuer")]
    issuer: Option<Text>,
    #[serde(rename = "NameID")]
    name_id: Option<Text>,
    #[serde(rename = "SessionIndex", default)]
    session_indexes: Vec<Text>,
    #[serde(rename = "Status")]
    status: Option<StatusXml>,
}

/// A LogoutRequest or LogoutResponse, as far as SLO needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutMessage {
    pub id: String,
    pub issue_instant: DateTime<Utc>,
    pub destination: Option<String>,
    pub issuer: String,
    pub in_response_to: Option<String>,
    pub name_id: Option<String>,
    pub session_indexes: Vec<String>,
    pub status: Option<String>,
    /// Whether the message carries an XML signature (of the one shape
    /// [`dsig::check`] accepts; whether it verifies is the caller's check).
    pub signed: bool,
}

/// Parses either message; `root` says which element is expected.
pub fn parse(xml: &str, root: &str) -> Result<LogoutMessage, String> {
    reject_dtd(xml)?;
    let shape = dsig::check(xml, root)?;
    let m: MessageXml = guard("logout message", || {
        quick_xml::de::from_str(xml).map_err(|_| format!("the message is not a valid SAML {root}"))
    })?;
    if m.id != shape.id {
        return Err("the message's ID cannot be read unambiguously".into());
    }
    if m.version != "2.0" {
        return Err("only SAML 2.0 messages are accepted".into());
    }
    let issuer = m
        .issuer
        .map(|t| t.value.trim().to_string())
        .filter(|i| !i.is_empty())
        .ok_or("the message has no Issuer")?;
    Ok(LogoutMessage {
        signed: shape.signed,
        id: m.id,
        issue_instant: m.issue_instant,
        destination: m.destination,
        issuer,
        in_response_to: m.in_response_to,
        name_id: m.name_id.map(|t| t.value.trim().to_string()),
        session_indexes: m
            .session_indexes
            .into_iter()
            .map(|t| t.value.trim().to_string())
            .collect(),
        status: m.status.map(|s| s.code.value),
    })
}

/// Checks a logout message's timing and Destination. `signed` says whether a
/// signature on it verified: a signed message must name `slo_url` as its
/// Destination; an unsigned one may omit it, but never name another.
pub fn check_message(
    m: &LogoutMessage,
    slo_url: &str,
    now: DateTime<Utc>,
    signed: bool,
) -> Result<(), String> {
    let skew = Duration::seconds(CLOCK_SKEW);
    if m.issue_instant > now + skew || m.issue_instant < now - skew - Duration::minutes(5) {
        return Err("the logout message is too old or from the future".into());
    }
    match m.destination.as_deref() {
        None if signed => Err("a signed logout message must carry a Destination".into()),
        Some(d) if d != slo_url => Err("the logout message is addressed to someone else".into()),
        _ => Ok(()),
    }
}

/// The NameID a LogoutRequest names: required, so that a logout ends only
/// the session of the subject the SP was given.
pub fn request_name_id(m: &LogoutMessage) -> Result<&str, String> {
    m.name_id
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| "the LogoutRequest names no NameID".to_string())
}

const SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";

/// A LogoutRequest from the IdP to an SP; `signature` is a template or empty.
#[allow(clippy::too_many_arguments)]
pub fn logout_request(
    idp: &str,
    destination: &str,
    name_id: &str,
    name_id_format: &str,
    sp: &str,
    session_index: &str,
    now: DateTime<Utc>,
    signature: impl Fn(&str) -> String,
) -> (String, String) {
    let id = new_id();
    let e = xml_escape;
    let xml = format!(
        "<samlp:LogoutRequest xmlns:samlp=\"{SAMLP}\" xmlns:saml=\"{SAML}\" ID=\"{id}\" Version=\"2.0\" IssueInstant=\"{now}\" Destination=\"{dest}\">\
<saml:Issuer>{idp}</saml:Issuer>{sig}<saml:NameID Format=\"{fmt}\" SPNameQualifier=\"{sp}\">{nid}</saml:NameID>\
<samlp:SessionIndex>{si}</samlp:SessionIndex></samlp:LogoutRequest>",
        now = instant(now),
        dest = e(destination),
        idp = e(idp),
        sig = signature(&id),
        fmt = e(name_id_format),
        sp = e(sp),
        nid = e(name_id),
        si = e(session_index),
    );
    (id, xml)
}

/// A LogoutResponse; `signature` is a template or empty.
pub fn logout_response(
    idp: &str,
    destination: &str,
    in_response_to: &str,
    status: &Status<'_>,
    now: DateTime<Utc>,
    signature: impl Fn(&str) -> String,
) -> String {
    let id = new_id();
    let e = xml_escape;
    format!(
        "<samlp:LogoutResponse xmlns:samlp=\"{SAMLP}\" xmlns:saml=\"{SAML}\" ID=\"{id}\" InResponseTo=\"{irt}\" Version=\"2.0\" IssueInstant=\"{now}\" Destination=\"{dest}\">\
<saml:Issuer>{idp}</saml:Issuer>{sig}{status}</samlp:LogoutResponse>",
        irt = e(in_response_to),
        now = instant(now),
        dest = e(destination),
        idp = e(idp),
        sig = signature(&id),
        status = status_xml(status),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_round_trip() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let (id, xml) = logout_request(
            "idp",
            "https://sp/slo",
            "n1",
            "fmt",
            "sp",
            "s1",
            now,
            |_| String::new(),
        );
        let m = parse(&xml, "LogoutRequest").unwrap();
        assert_eq!(m.id, id);
        assert_eq!(m.issuer, "idp");
        assert_eq!(m.name_id.as_deref(), Some("n1"));
        assert_eq!(m.session_indexes, ["s1"]);
        assert!(!m.signed);
        let r = logout_response(
            "idp",
            "https://sp/slo",
            &id,
            &crate::protocol::saml::response::SUCCESS,
            now,
            |_| String::new(),
        );
        let m = parse(&r, "LogoutResponse").unwrap();
        assert_eq!(m.in_response_to.as_deref(), Some(id.as_str()));
        assert_eq!(
            m.status.as_deref(),
            Some("urn:oasis:names:tc:SAML:2.0:status:Success")
        );
        assert!(
            parse(&r, "LogoutRequest").is_err(),
            "the root element is checked"
        );
    }

    #[test]
    fn junk_is_refused() {
        assert!(parse("<x/>", "LogoutRequest").is_err());
        assert!(parse("<!DOCTYPE x><samlp:LogoutRequest/>", "LogoutRequest").is_err());
        assert!(
            parse(
                "<samlp:LogoutRequest ID=\"a\" Version=\"2.0\" IssueInstant=\"bad\"/>",
                "LogoutRequest"
            )
            .is_err()
        );
    }
}
