//! The shape of an incoming SAML protocol message and of its XML signature,
//! checked before anything is handed to a third-party parser or verifier.
//!
//! A verifier checks *some* signature in a document; the application uses
//! the root. They agree only when the document holds exactly one signature,
//! a direct child of the root, with one Reference to the root's own ID, and
//! no ID appears twice. Everything else is refused here (signature wrapping),
//! as are algorithms and transforms outside a short list.

use super::MAX_XML;
use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

pub const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const EXC_C14N_NS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";

/// Elements deeper than this are refused: no SAML request needs them.
pub const MAX_DEPTH: usize = 32;
/// Elements beyond this many are refused.
pub const MAX_ELEMENTS: usize = 2_000;

/// Signature algorithms accepted in an XML signature.
pub const SIGNATURE_METHODS: &[&str] = &[
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
];

/// Digest algorithms accepted in a Reference.
pub const DIGEST_METHODS: &[&str] = &[
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];

const C14N: &[&str] = &[
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments",
];
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// `SigAlg` values accepted on the HTTP-Redirect binding.
pub const REDIRECT_SIG_ALGS: &[&str] = &[
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
];

/// Whether `alg` may be used to sign an HTTP-Redirect message.
pub fn redirect_sig_alg_allowed(alg: &str) -> bool {
    REDIRECT_SIG_ALGS.contains(&alg)
}

#[derive(Debug)]
struct El {
    parent: Option<usize>,
    ns: Option<String>,
    local: String,
    /// (namespace, local name, value)
    attrs: Vec<(Option<String>, String, String)>,
}

impl El {
    fn attr(&self, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(ns, l, _)| ns.is_none() && l == local)
            .map(|(_, _, v)| v.as_str())
    }

    fn is(&self, ns: &str, local: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.local == local
    }
}

/// What the shape check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// The root element's ID.
    pub id: String,
    /// Whether the message carries an XML signature (of the one accepted shape).
    pub signed: bool,
}

fn bad(msg: &str) -> String {
    format!("the message is not acceptable: {msg}")
}

fn ns_of(r: ResolveResult<'_>) -> Result<Option<String>, String> {
    match r {
        ResolveResult::Bound(ns) => Ok(Some(String::from_utf8_lossy(ns.as_ref()).into_owned())),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(_) => Err(bad("an XML namespace prefix is not declared")),
    }
}

/// Reads the document into a flat list of elements, bounded in size and
/// depth; refuses DTDs, duplicate attributes and content outside the root.
fn elements(xml: &str) -> Result<Vec<El>, String> {
    if xml.len() > MAX_XML {
        return Err(bad("too large"));
    }
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut els: Vec<El> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    let mut root_done = false;
    loop {
        let ev = reader
            .read_event()
            .map_err(|_| bad("the XML is not well-formed"))?;
        let (e, empty) = match ev {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                stack.pop();
                if stack.is_empty() {
                    root_done = true;
                }
                continue;
            }
            Event::Text(t) => {
                if stack.is_empty() && !t.iter().all(|b| b.is_ascii_whitespace()) {
                    return Err(bad("text outside the root element"));
                }
                continue;
            }
            Event::CData(_) | Event::GeneralRef(_) => {
                if stack.is_empty() {
                    return Err(bad("text outside the root element"));
                }
                continue;
            }
            Event::DocType(_) => {
                return Err(bad("a document type declaration (DTD) is not accepted"));
            }
            Event::Decl(d) => {
                // Another declared encoding would make other parsers read
                // other characters than this check did.
                let utf8 = match d.encoding() {
                    None => true,
                    Some(Ok(enc)) => enc.eq_ignore_ascii_case(b"utf-8"),
                    Some(Err(_)) => false,
                };
                if !utf8 {
                    return Err(bad("only UTF-8 XML is accepted"));
                }
                continue;
            }
            Event::PI(_) | Event::Comment(_) => continue,
            Event::Eof => break,
        };
        if root_done {
            return Err(bad("content after the root element"));
        }
        if stack.len() >= MAX_DEPTH || els.len() >= MAX_ELEMENTS {
            return Err(bad("too deeply nested or too many elements"));
        }
        let (ns, local) = reader.resolver().resolve_element(e.name());
        let ns = ns_of(ns)?;
        let local = String::from_utf8_lossy(local.as_ref()).into_owned();
        let mut attrs = Vec::new();
        for a in e.attributes().with_checks(true) {
            let a = a.map_err(|_| bad("an attribute is malformed or repeated"))?;
            let key = a.key;
            if key.as_namespace_binding().is_some() {
                continue;
            }
            let (ans, alocal) = reader.resolver().resolve_attribute(key);
            let ans = ns_of(ans)?;
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|_| bad("an attribute value cannot be read"))?
                .into_owned();
            attrs.push((
                ans,
                String::from_utf8_lossy(alocal.as_ref()).into_owned(),
                value,
            ));
        }
        els.push(El {
            parent: stack.last().copied(),
            ns,
            local,
            attrs,
        });
        if empty {
            if stack.is_empty() {
                root_done = true;
            }
        } else {
            stack.push(els.len() - 1);
        }
    }
    if !root_done || !stack.is_empty() {
        return Err(bad("the XML ends early"));
    }
    Ok(els)
}

fn children(els: &[El], of: usize) -> impl Iterator<Item = (usize, &El)> {
    els.iter()
        .enumerate()
        .filter(move |(_, e)| e.parent == Some(of))
}

/// Whether `ancestor` is `i` or one of its ancestors.
fn within(els: &[El], mut i: usize, ancestor: usize) -> bool {
    loop {
        if i == ancestor {
            return true;
        }
        match els[i].parent {
            Some(p) => i = p,
            None => return false,
        }
    }
}

/// A usable ID: an XML name without surprises, so `#ID` means one thing.
fn plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 256
        && id
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Checks the message's shape: the root is `samlp:{root}` with an ID, no ID
/// is repeated, and any signature has the one accepted form (see the module
/// documentation). Returns the root's ID and whether it is signed.
pub fn check(xml: &str, root: &str) -> Result<Shape, String> {
    let els = elements(xml)?;
    let r = els.first().ok_or_else(|| bad("no root element"))?;
    if !r.is(SAMLP, root) {
        return Err(format!("the message is not a SAML {root}"));
    }
    let id = r
        .attr("ID")
        .filter(|i| !i.is_empty() && i.len() <= 256)
        .ok_or_else(|| bad("the root element has no usable ID"))?
        .to_string();
    // Every ID-like attribute (ID, Id, id, xml:id) is unique in the document.
    let mut ids: Vec<&str> = els
        .iter()
        .flat_map(|e| e.attrs.iter())
        .filter(|(_, l, _)| l.eq_ignore_ascii_case("id"))
        .map(|(_, _, v)| v.trim())
        .collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(bad("an ID appears more than once"));
    }
    let sigs: Vec<usize> = els
        .iter()
        .enumerate()
        .filter(|(_, e)| e.local == "Signature")
        .map(|(i, _)| i)
        .collect();
    let sig = match sigs.as_slice() {
        [] => return Ok(Shape { id, signed: false }),
        [one] => *one,
        _ => return Err(bad("more than one signature")),
    };
    if !els[sig].is(DSIG, "Signature") || els[sig].parent != Some(0) {
        return Err(bad(
            "the signature is not a direct child of the root element",
        ));
    }
    if !plain_id(&id) {
        return Err(bad("a signed message needs a plain ID"));
    }
    check_signature(&els, sig, &id)?;
    Ok(Shape { id, signed: true })
}

/// One child of `parent` with this dsig name, exactly.
fn only(els: &[El], parent: usize, local: &str) -> Result<usize, String> {
    let found: Vec<usize> = children(els, parent)
        .filter(|(_, e)| e.is(DSIG, local))
        .map(|(i, _)| i)
        .collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(bad(&format!("the signature has no {local}"))),
        _ => Err(bad(&format!("the signature has more than one {local}"))),
    }
}

/// The children of `parent` are exactly these dsig names (each at most once,
/// in any order), or refuse.
fn only_children(els: &[El], parent: usize, allowed: &[&str]) -> Result<(), String> {
    let mut seen: Vec<&str> = Vec::new();
    for (_, c) in children(els, parent) {
        let name = allowed
            .iter()
            .find(|a| c.is(DSIG, a))
            .ok_or_else(|| bad(&format!("unexpected {} in the signature", c.local)))?;
        if seen.contains(name) {
            return Err(bad(&format!("more than one {name} in the signature")));
        }
        seen.push(name);
    }
    Ok(())
}

/// Allows only exclusive-c14n InclusiveNamespaces under a c14n element.
fn c14n_children_ok(els: &[El], parent: usize) -> Result<(), String> {
    if children(els, parent).all(|(_, c)| c.is(EXC_C14N_NS, "InclusiveNamespaces")) {
        Ok(())
    } else {
        Err(bad("unexpected content in a canonicalization method"))
    }
}

fn algorithm<'a>(e: &'a El, what: &str, allowed: &[&str]) -> Result<&'a str, String> {
    let alg = e
        .attr("Algorithm")
        .ok_or_else(|| bad(&format!("the {what} names no algorithm")))?;
    if !allowed.contains(&alg) {
        return Err(bad(&format!("the {what} {alg} is not accepted")));
    }
    Ok(alg)
}

fn check_signature(els: &[El], sig: usize, root_id: &str) -> Result<(), String> {
    // Nothing in the signature may pull content from elsewhere.
    for (i, e) in els.iter().enumerate() {
        if within(els, i, sig)
            && matches!(
                e.local.as_str(),
                "Object" | "Manifest" | "RetrievalMethod" | "XPath" | "XSLT" | "EncryptedKey"
            )
        {
            return Err(bad(&format!(
                "{} in the signature is not accepted",
                e.local
            )));
        }
    }
    only_children(els, sig, &["SignedInfo", "SignatureValue", "KeyInfo"])?;
    let info = only(els, sig, "SignedInfo")?;
    only(els, sig, "SignatureValue")?;
    only_children(
        els,
        info,
        &["CanonicalizationMethod", "SignatureMethod", "Reference"],
    )?;
    let c14n = only(els, info, "CanonicalizationMethod")?;
    algorithm(&els[c14n], "canonicalization", C14N)?;
    c14n_children_ok(els, c14n)?;
    let method = only(els, info, "SignatureMethod")?;
    algorithm(&els[method], "signature algorithm", SIGNATURE_METHODS)?;
    if children(els, method).next().is_some() {
        return Err(bad("unexpected content in the signature method"));
    }
    let reference = only(els, info, "Reference")?;
    let uri = els[reference]
        .attr("URI")
        .ok_or_else(|| bad("the signature's Reference has no URI"))?;
    if uri != format!("#{root_id}") {
        return Err(bad(
            "the signature does not reference the root element's ID",
        ));
    }
    only_children(
        els,
        reference,
        &["Transforms", "DigestMethod", "DigestValue"],
    )?;
    let digest = only(els, reference, "DigestMethod")?;
    algorithm(&els[digest], "digest algorithm", DIGEST_METHODS)?;
    only(els, reference, "DigestValue")?;
    let transforms = only(els, reference, "Transforms")?;
    let list: Vec<usize> = children(els, transforms).map(|(i, _)| i).collect();
    if list.is_empty() || list.len() > 2 {
        return Err(bad("the signature's transforms are not accepted"));
    }
    let mut enveloped = false;
    for t in list {
        if !els[t].is(DSIG, "Transform") {
            return Err(bad("unexpected content in the signature's transforms"));
        }
        let mut allowed = C14N.to_vec();
        allowed.push(ENVELOPED);
        let alg = algorithm(&els[t], "transform", &allowed)?;
        enveloped |= alg == ENVELOPED;
        c14n_children_ok(els, t)?;
    }
    if !enveloped {
        return Err(bad("the signature is not an enveloped signature"));
    }
    if let Ok(key_info) = only(els, sig, "KeyInfo") {
        only_children(els, key_info, &["X509Data", "KeyName", "KeyValue"])?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "dsig_tests.rs"]
mod tests;
