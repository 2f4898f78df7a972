//! Keyless (Fulcio) certificates: chain at signing time, SCT, identity policy.

use jiff::Timestamp;
use regex::Regex;
use x509_cert::der::asn1::{OctetString, Utf8StringRef};
use x509_cert::der::{Decode, Encode};

use super::certs::{Cert, San};
use super::certs::{ChainError, LeafEku, verify_chain};
use super::encoding::{clip, from_unix, sha256};
use super::trusted_root::TrustedRoot;
use super::{Keyless, Outcome, Rejection, Signer, fail};

const OID_ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";
const OID_ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
const OID_SCT_LIST: &str = "1.3.6.1.4.1.11129.2.4.2";

/// What is wrong with a matcher the caller configured.
#[derive(Debug, thiserror::Error)]
#[error("invalid regular expression {pattern:?}: {message}")]
pub struct MatcherError {
    pub pattern: String,
    pub message: String,
}

/// An exact string or an anchored regular expression.
///
/// Regexes are anchored: [`Matcher::regex`] compiles `^(?:pattern)$`, so
/// `https://github.com/acme/.*` cannot match `https://evil.example/?https://github.com/acme/x`
/// (Go's `MatchString` and Rust's `is_match` are unanchored; cosign users are told
/// to write `^…$` themselves, and many forget).
#[derive(Clone, Debug)]
pub enum Matcher {
    Exact(String),
    Regex { pattern: String, regex: Regex },
}

impl Matcher {
    pub fn exact(value: impl Into<String>) -> Self {
        Matcher::Exact(value.into())
    }

    /// Compiles `^(?:pattern)$`.
    pub fn regex(pattern: &str) -> Result<Self, MatcherError> {
        let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| MatcherError {
            pattern: pattern.to_string(),
            message: e.to_string(),
        })?;
        Ok(Matcher::Regex {
            pattern: pattern.to_string(),
            regex,
        })
    }

    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(s) => s == value,
            Matcher::Regex { regex, .. } => regex.is_match(value),
        }
    }

    fn describe(&self) -> String {
        match self {
            Matcher::Exact(s) => format!("{s:?}"),
            Matcher::Regex { pattern, .. } => format!("/^(?:{pattern})$/"),
        }
    }
}

/// A keyless identity: all given parts must match. `None` means "any".
#[derive(Clone, Debug, Default)]
pub struct Identity {
    /// OIDC issuer (`1.3.6.1.4.1.57264.1.8`, else `.1`).
    pub issuer: Option<Matcher>,
    /// Any subject alternative name (email, URI, Fulcio OtherName, DNS).
    pub subject: Option<Matcher>,
    /// Further Fulcio claims by OID (`.9`–`.24` DER UTF8String, `.2`–`.6` raw),
    /// e.g. [`Identity::SOURCE_REPOSITORY_URI`].
    pub claims: Vec<(String, Matcher)>,
}

impl Identity {
    /// Build Signer URI: the workflow that signed (GitHub: `https://github.com/o/r/.github/workflows/x.yml@refs/…`).
    pub const BUILD_SIGNER_URI: &'static str = "1.3.6.1.4.1.57264.1.9";
    /// Source Repository URI (`https://github.com/o/r`).
    pub const SOURCE_REPOSITORY_URI: &'static str = "1.3.6.1.4.1.57264.1.12";
    /// Source Repository Ref (`refs/heads/main`).
    pub const SOURCE_REPOSITORY_REF: &'static str = "1.3.6.1.4.1.57264.1.14";

    pub fn new(issuer: Matcher, subject: Matcher) -> Self {
        Identity {
            issuer: Some(issuer),
            subject: Some(subject),
            claims: Vec::new(),
        }
    }

    /// Adds a claim that must match (see the OID constants).
    pub fn with_claim(mut self, oid: &str, matcher: Matcher) -> Self {
        self.claims.push((oid.to_string(), matcher));
        self
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(i) = &self.issuer {
            parts.push(format!("issuer {}", i.describe()));
        }
        if let Some(s) = &self.subject {
            parts.push(format!("subject {}", s.describe()));
        }
        for (oid, m) in &self.claims {
            parts.push(format!("{oid} {}", m.describe()));
        }
        if parts.is_empty() {
            "any identity".into()
        } else {
            parts.join(" and ")
        }
    }
}

/// A Fulcio claim value by OID: `.1`–`.6` are raw bytes, `.8` on DER UTF8String.
fn claim(leaf: &Cert, oid: &str) -> Option<String> {
    let raw = leaf.extension(oid)?;
    let last: u32 = oid.rsplit('.').next()?.parse().ok()?;
    if oid.starts_with("1.3.6.1.4.1.57264.1.") && last <= 6 {
        String::from_utf8(raw.to_vec()).ok()
    } else {
        Utf8StringRef::from_der(raw)
            .ok()
            .map(|s| s.as_str().to_string())
    }
}

/// The certificate's OIDC issuer; an error when `.1` and `.8` disagree.
fn issuer(leaf: &Cert) -> Result<Option<String>, String> {
    match (claim(leaf, OID_ISSUER_V1), claim(leaf, OID_ISSUER_V2)) {
        (Some(a), Some(b)) if a != b => Err(format!(
            "the certificate's issuer extensions disagree ({:?} vs {:?})",
            clip(&a),
            clip(&b)
        )),
        (a, b) => Ok(b.or(a)),
    }
}

/// Matches the leaf against the identities; the signer on success.
pub(crate) fn match_identity(leaf: &Cert, identities: &[Identity]) -> Outcome<Signer> {
    let issuer =
        issuer(leaf).map_err(|m| super::Unverified::new(Rejection::IdentityMismatch, m))?;
    let sans = leaf.sans();
    let subject = sans.first().map(San::value).unwrap_or("").to_string();
    let ok = |id: &Identity| {
        let issuer_ok = match (&id.issuer, &issuer) {
            (None, _) => true,
            (Some(m), Some(i)) => m.matches(i),
            (Some(_), None) => false,
        };
        let san_ok = id
            .subject
            .as_ref()
            .is_none_or(|m| sans.iter().any(|s| m.matches(s.value())));
        let claims_ok = id
            .claims
            .iter()
            .all(|(oid, m)| claim(leaf, oid).is_some_and(|v| m.matches(&v)));
        issuer_ok && san_ok && claims_ok
    };
    if identities.iter().any(ok) {
        return Ok(Signer::Identity { issuer, subject });
    }
    let wanted = identities
        .iter()
        .take(5)
        .map(Identity::describe)
        .collect::<Vec<_>>()
        .join("; ");
    fail(
        Rejection::IdentityMismatch,
        format!(
            "certificate identity (issuer {}, subject {:?}) matches none of: {}",
            issuer
                .as_deref()
                .map(clip)
                .map(|s| format!("{s:?}"))
                .unwrap_or_else(|| "none".into()),
            clip(&subject),
            if wanted.is_empty() {
                "no identity configured".into()
            } else {
                wanted
            }
        ),
    )
}

/// Checks a Fulcio leaf: valid at `signed_at`, chains (EKU codeSigning) to a
/// certificate authority of the root valid then, KU digitalSignature, SCT, identity.
pub(crate) fn verify_leaf(
    leaf: &Cert,
    keyless: &Keyless,
    root: &TrustedRoot,
    signed_at: Timestamp,
) -> Outcome<Signer> {
    if !leaf.valid_at(signed_at) {
        return fail(
            Rejection::CertificateExpiredAtSigningTime,
            format!(
                "signed at {signed_at}, but the certificate is valid only from {} to {}",
                leaf.not_before, leaf.not_after
            ),
        );
    }
    let issuer_spki = chain_to_root(leaf, root, signed_at)?;
    if keyless.require_sct {
        verify_sct(leaf, &issuer_spki, root)?;
    }
    match_identity(leaf, &keyless.identities)
}

/// The path from the leaf to a certificate authority of the root valid at `at`
/// (EKU codeSigning, KU digitalSignature); the issuing CA's DER public key.
/// Called at the leaf's notBefore before the log is consulted (a certificate from
/// another instance is `UntrustedRoot`), then at the signing time.
pub(crate) fn chain_to_root(leaf: &Cert, root: &TrustedRoot, at: Timestamp) -> Outcome<Vec<u8>> {
    let signed_at = at;
    if leaf.digital_signature() != Some(true) {
        return fail(
            Rejection::UntrustedRoot,
            "the leaf certificate's key usage lacks digitalSignature",
        );
    }
    let mut expired = Vec::new();
    let mut untrusted = Vec::new();
    let mut issuer_spki = None;
    for ca in root.cas.iter().filter(|ca| ca.valid.contains(signed_at)) {
        let Some((anchor, inter)) = ca.chain.split_last() else {
            continue;
        };
        match verify_chain(
            leaf,
            inter,
            std::slice::from_ref(anchor),
            signed_at,
            LeafEku::CodeSigningRequired,
        ) {
            Ok(()) => {
                issuer_spki = super::certs::parse_cert(ca.chain.first().unwrap_or(anchor))
                    .ok()
                    .and_then(|c| c.cert.tbs_certificate.subject_public_key_info.to_der().ok());
                break;
            }
            Err(ChainError::Expired(m)) => expired.push(format!("{}: {m}", ca.uri)),
            Err(ChainError::Untrusted(m)) => untrusted.push(format!("{}: {m}", ca.uri)),
        }
    }
    let Some(issuer_spki) = issuer_spki else {
        if !expired.is_empty() {
            return fail(
                Rejection::CertificateExpiredAtSigningTime,
                format!("signed at {signed_at}: {}", expired.join("; ")),
            );
        }
        return fail(
            Rejection::UntrustedRoot,
            if untrusted.is_empty() {
                format!("no certificate authority of the trusted root is valid at {signed_at}")
            } else {
                format!(
                    "the certificate does not chain to a trusted certificate authority ({})",
                    untrusted.join("; ")
                )
            },
        );
    };
    Ok(issuer_spki)
}

/// RFC 6962 §3.2 embedded SCT (precertificate entry) against the root's CT logs.
fn verify_sct(leaf: &Cert, issuer_spki: &[u8], root: &TrustedRoot) -> Outcome<()> {
    let Some(ext) = leaf.extension(OID_SCT_LIST) else {
        return fail(
            Rejection::SctMissing,
            "the certificate carries no Signed Certificate Timestamp (1.3.6.1.4.1.11129.2.4.2)",
        );
    };
    let invalid = |m: &str| super::Unverified::new(Rejection::SctInvalid, m.to_string());
    let list =
        OctetString::from_der(ext).map_err(|_| invalid("SCT extension is not an OCTET STRING"))?;
    let scts = parse_sct_list(list.as_bytes()).ok_or_else(|| invalid("SCT list is malformed"))?;
    let mut tbs = leaf.cert.tbs_certificate.clone();
    if let Some(exts) = tbs.extensions.as_mut() {
        exts.retain(|e| e.extn_id.to_string() != OID_SCT_LIST);
    }
    let tbs_der = tbs
        .to_der()
        .map_err(|_| invalid("cannot re-encode the TBS certificate"))?;
    let issuer_key_hash = sha256(issuer_spki);
    for sct in &scts {
        let Some(log) = root.ctlogs.iter().find(|l| l.key_id == sct.log_id) else {
            continue;
        };
        let Ok(ms) = i64::try_from(sct.timestamp) else {
            continue;
        };
        if from_unix(ms / 1000).is_none_or(|t| !log.valid.contains(t)) {
            continue;
        }
        let mut signed = vec![0u8, 0u8];
        signed.extend_from_slice(&sct.timestamp.to_be_bytes());
        signed.extend_from_slice(&1u16.to_be_bytes());
        signed.extend_from_slice(&issuer_key_hash);
        let len = tbs_der.len();
        if len >= 1 << 24 {
            continue;
        }
        signed.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8]);
        signed.extend_from_slice(&tbs_der);
        signed.extend_from_slice(&(sct.extensions.len() as u16).to_be_bytes());
        signed.extend_from_slice(&sct.extensions);
        if log.key.verify_sigstore(&signed, &sct.signature) {
            return Ok(());
        }
    }
    fail(
        Rejection::SctInvalid,
        format!(
            "none of the certificate's {} SCT(s) verifies with a CT log of the trusted root",
            scts.len()
        ),
    )
}

struct Sct {
    log_id: Vec<u8>,
    timestamp: u64,
    extensions: Vec<u8>,
    signature: Vec<u8>,
}

/// TLS-encoded `SignedCertificateTimestampList` (RFC 6962 §3.3).
fn parse_sct_list(b: &[u8]) -> Option<Vec<Sct>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (h, t) = b.split_at(n);
        *b = t;
        Some(h)
    }
    fn u16_len<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
        let l = take(b, 2)?;
        take(b, usize::from(u16::from_be_bytes([l[0], l[1]])))
    }
    let mut outer = b;
    let mut list = u16_len(&mut outer)?;
    if !outer.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    while !list.is_empty() {
        let mut s = u16_len(&mut list)?;
        if take(&mut s, 1)? != [0] {
            continue; // only v1 SCTs exist
        }
        let log_id = take(&mut s, 32)?.to_vec();
        let ts = take(&mut s, 8)?;
        let timestamp = u64::from_be_bytes(ts.try_into().ok()?);
        let extensions = u16_len(&mut s)?.to_vec();
        let _algs = take(&mut s, 2)?;
        let signature = u16_len(&mut s)?.to_vec();
        out.push(Sct {
            log_id,
            timestamp,
            extensions,
            signature,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regexes_are_anchored() {
        let m = Matcher::regex("https://github.com/acme/.*").unwrap();
        assert!(m.matches("https://github.com/acme/app"));
        assert!(!m.matches("https://evil.example/?https://github.com/acme/app"));
        let m = Matcher::regex("a|b").unwrap();
        assert!(!m.matches("ab"));
        assert!(Matcher::regex("(").is_err());
    }

    #[test]
    fn sct_list_parser_is_total() {
        assert!(parse_sct_list(&[]).is_none());
        assert!(parse_sct_list(&[0, 0]).is_some_and(|l| l.is_empty()));
        assert!(parse_sct_list(&[0, 3, 0, 1, 0]).is_none());
    }
}
