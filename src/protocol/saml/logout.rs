//! Single Logout messages (SAML Core 3.7): reading LogoutRequests and
//! LogoutResponses, writing both.

use super::reject_dtd;
use super::response::{instant, new_id};
use super::xml_escape;
use chrono::{DateTime, Utc};
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
struct ReferenceXml {
    #[serde(rename = "@URI")]
    uri: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SignedInfoXml {
    #[serde(rename = "Reference", default)]
    references: Vec<ReferenceXml>,
}

#[derive(Debug, Deserialize)]
struct SignatureXml {
    #[serde(rename = "SignedInfo")]
    signed_info: SignedInfoXml,
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
    #[serde(rename = "Signature")]
    signature: Option<SignatureXml>,
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
    /// Whether an XML signature covers the message's own element.
    pub signed_root: bool,
    pub has_signature: bool,
}

/// Parses either message; `root` says which element is expected.
pub fn parse(xml: &str, root: &str) -> Result<LogoutMessage, String> {
    reject_dtd(xml)?;
    let trimmed = xml.trim_start();
    let body = trimmed
        .strip_prefix("<?xml")
        .map(|r| r.split_once("?>").map(|x| x.1).unwrap_or(""))
        .unwrap_or(trimmed);
    let start = body.trim_start();
    let name_ok = start
        .strip_prefix('<')
        .and_then(|r| r.split([' ', '>', '/']).next())
        .is_some_and(|n| n == root || n.ends_with(&format!(":{root}")));
    if !name_ok {
        return Err(format!("the message is not a SAML {root}"));
    }
    let m: MessageXml = quick_xml::de::from_str(xml)
        .map_err(|_| format!("the message is not a valid SAML {root}"))?;
    if m.version != "2.0" {
        return Err("only SAML 2.0 messages are accepted".into());
    }
    let issuer = m
        .issuer
        .map(|t| t.value.trim().to_string())
        .filter(|i| !i.is_empty())
        .ok_or("the message has no Issuer")?;
    let signed_root = m.signature.as_ref().is_some_and(|s| {
        s.signed_info.references.len() == 1
            && s.signed_info.references[0].uri.as_deref() == Some(&format!("#{}", m.id))
    });
    Ok(LogoutMessage {
        has_signature: m.signature.is_some(),
        signed_root,
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
    status: &str,
    now: DateTime<Utc>,
    signature: impl Fn(&str) -> String,
) -> String {
    let id = new_id();
    let e = xml_escape;
    format!(
        "<samlp:LogoutResponse xmlns:samlp=\"{SAMLP}\" xmlns:saml=\"{SAML}\" ID=\"{id}\" InResponseTo=\"{irt}\" Version=\"2.0\" IssueInstant=\"{now}\" Destination=\"{dest}\">\
<saml:Issuer>{idp}</saml:Issuer>{sig}<samlp:Status><samlp:StatusCode Value=\"{status}\"/></samlp:Status></samlp:LogoutResponse>",
        irt = e(in_response_to),
        now = instant(now),
        dest = e(destination),
        idp = e(idp),
        sig = signature(&id),
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
        assert!(!m.has_signature);
        let r = logout_response(
            "idp",
            "https://sp/slo",
            &id,
            "urn:oasis:names:tc:SAML:2.0:status:Success",
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
