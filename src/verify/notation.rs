//! Notation signature envelopes: JWS (flattened JSON) and COSE_Sign1 (`coset`).

use coset::cbor::Value as Cbor;
use coset::{
    CborSerializable as _, CoseSign1, Label, RegisteredLabelWithPrivate,
    TaggedCborSerializable as _, iana,
};
use jiff::Timestamp;
use serde_json::Value;

use super::certs::{Cert, ChainError, LeafEku, parse_cert, verify_chain};
use super::encoding::{b64_std, b64_url, clip, from_unix, parse_time};
use super::keys::{KeyAlgorithm, Scheme};
use super::{
    NotationTrust, Outcome, Rejection, SignatureFormat, Signer, Subject, Unverified, Verified, fail,
};

const PAYLOAD_CTY: &str = "application/vnd.cncf.notary.payload.v1+json";
const SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
const SIGNING_TIME: &str = "io.cncf.notary.signingTime";
const AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
const EXPIRY: &str = "io.cncf.notary.expiry";
/// Critical headers this verifier understands.
const KNOWN_CRIT: &[&str] = &[SIGNING_SCHEME, EXPIRY, AUTHENTIC_SIGNING_TIME];
/// EKUs a Notation signing certificate must not carry (signature-specification.md).
const FORBIDDEN_EKUS: &[(&str, &str)] = &[
    ("2.5.29.37.0", "anyExtendedKeyUsage"),
    ("1.3.6.1.5.5.7.3.1", "serverAuth"),
    ("1.3.6.1.5.5.7.3.2", "clientAuth"),
    ("1.3.6.1.5.5.7.3.4", "emailProtection"),
    ("1.3.6.1.5.5.7.3.8", "timeStamping"),
];

fn malformed(m: impl Into<String>) -> Unverified {
    Unverified::new(Rejection::MalformedSignature, m)
}

/// The signed attributes both envelope types carry, decoded.
struct SignedAttributes {
    /// JWS `alg` / COSE algorithm, mapped to the scheme and the key type it needs.
    scheme: Scheme,
    needs: KeyAlgorithm,
    alg_name: &'static str,
    signing_scheme: String,
    signing_time: Option<Timestamp>,
    expiry: Option<Timestamp>,
    crit: Vec<String>,
    payload: Vec<u8>,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
    chain: Vec<Vec<u8>>,
}

fn alg(name: &str) -> Option<(Scheme, KeyAlgorithm, &'static str)> {
    Some(match name {
        "PS256" => (Scheme::RsaPssSha256, KeyAlgorithm::Rsa { bits: 0 }, "PS256"),
        "PS384" => (Scheme::RsaPssSha384, KeyAlgorithm::Rsa { bits: 0 }, "PS384"),
        "PS512" => (Scheme::RsaPssSha512, KeyAlgorithm::Rsa { bits: 0 }, "PS512"),
        "ES256" => (Scheme::EcdsaFixed, KeyAlgorithm::EcdsaP256, "ES256"),
        "ES384" => (Scheme::EcdsaFixed, KeyAlgorithm::EcdsaP384, "ES384"),
        "ES512" => (Scheme::EcdsaFixed, KeyAlgorithm::EcdsaP521, "ES512"),
        _ => return None,
    })
}

/// A JWS envelope (`application/jose+json`).
pub(crate) fn verify_jws(
    envelope: &[u8],
    subject: &Subject,
    trust: Option<&NotationTrust>,
    now: Timestamp,
) -> Outcome<Verified> {
    let v: Value =
        serde_json::from_slice(envelope).map_err(|_| malformed("the JWS envelope is not JSON"))?;
    let part = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(format!("JWS envelope without {k:?}")))
    };
    let (protected_b64, payload_b64, sig_b64) =
        (part("protected")?, part("payload")?, part("signature")?);
    let protected: Value = b64_url(protected_b64)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| malformed("JWS protected header is not base64url JSON"))?;
    let payload = b64_url(payload_b64).ok_or_else(|| malformed("JWS payload is not base64url"))?;
    let signature = b64_url(sig_b64).ok_or_else(|| malformed("JWS signature is not base64url"))?;
    let alg_name = protected.get("alg").and_then(Value::as_str).unwrap_or("");
    let (scheme, needs, alg_name) = alg(alg_name).ok_or_else(|| {
        Unverified::new(
            Rejection::UnsupportedAlgorithm,
            format!("JWS alg {:?}", clip(alg_name)),
        )
    })?;
    if protected.get("cty").and_then(Value::as_str) != Some(PAYLOAD_CTY) {
        return fail(
            Rejection::InvalidPayload,
            format!("JWS cty is not {PAYLOAD_CTY}"),
        );
    }
    let time = |k: &str| -> Outcome<Option<Timestamp>> {
        match protected.get(k) {
            None => Ok(None),
            Some(t) => t
                .as_str()
                .and_then(parse_time)
                .map(Some)
                .ok_or_else(|| malformed(format!("JWS {k} is not an RFC 3339 time"))),
        }
    };
    let mut chain = Vec::new();
    for (i, c) in v
        .pointer("/header/x5c")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        chain.push(
            c.as_str()
                .and_then(b64_std)
                .ok_or_else(|| malformed(format!("JWS header.x5c[{i}] is not base64")))?,
        );
    }
    let signed = SignedAttributes {
        scheme,
        needs,
        alg_name,
        signing_scheme: protected
            .get(SIGNING_SCHEME)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        signing_time: match time(AUTHENTIC_SIGNING_TIME)? {
            Some(t) => Some(t),
            None => time(SIGNING_TIME)?,
        },
        expiry: time(EXPIRY)?,
        crit: protected
            .get("crit")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        payload,
        signing_input: format!("{protected_b64}.{payload_b64}").into_bytes(),
        signature,
        chain,
    };
    finish(signed, SignatureFormat::NotationJws, subject, trust, now)
}

fn cbor_time(v: &Cbor) -> Option<Timestamp> {
    match v {
        Cbor::Tag(1, inner) => cbor_time(inner),
        Cbor::Integer(i) => i64::try_from(i128::from(*i)).ok().and_then(from_unix),
        Cbor::Float(f) if f.is_finite() && f.abs() < 1e15 => from_unix(*f as i64),
        _ => None,
    }
}

fn text_label(rest: &[(Label, Cbor)], name: &str) -> Option<Cbor> {
    rest.iter()
        .find(|(l, _)| matches!(l, Label::Text(t) if t == name))
        .map(|(_, v)| v.clone())
}

/// A COSE_Sign1 envelope (`application/cose`).
pub(crate) fn verify_cose(
    envelope: &[u8],
    subject: &Subject,
    trust: Option<&NotationTrust>,
    now: Timestamp,
) -> Outcome<Verified> {
    let sign1 = CoseSign1::from_tagged_slice(envelope)
        .or_else(|_| CoseSign1::from_slice(envelope))
        .map_err(|e| malformed(format!("not a COSE_Sign1 message: {e}")))?;
    let p = &sign1.protected.header;
    use iana::Algorithm as A;
    let name = match &p.alg {
        Some(RegisteredLabelWithPrivate::Assigned(a)) => match a {
            A::PS256 => "PS256",
            A::PS384 => "PS384",
            A::PS512 => "PS512",
            A::ES256 => "ES256",
            A::ES384 => "ES384",
            A::ES512 => "ES512",
            other => {
                return fail(
                    Rejection::UnsupportedAlgorithm,
                    format!("COSE alg {other:?}"),
                );
            }
        },
        other => {
            return fail(
                Rejection::UnsupportedAlgorithm,
                format!("COSE alg {other:?}"),
            );
        }
    };
    let (scheme, needs, alg_name) = alg(name)
        .ok_or_else(|| Unverified::new(Rejection::UnsupportedAlgorithm, name.to_string()))?;
    let cty_ok = matches!(&p.content_type, Some(coset::ContentType::Text(t)) if t == PAYLOAD_CTY);
    if !cty_ok {
        return fail(
            Rejection::InvalidPayload,
            format!("COSE content type is not {PAYLOAD_CTY}"),
        );
    }
    let time = |k: &str| -> Outcome<Option<Timestamp>> {
        match text_label(&p.rest, k) {
            None => Ok(None),
            Some(v) => cbor_time(&v)
                .map(Some)
                .ok_or_else(|| malformed(format!("COSE {k} is not a time"))),
        }
    };
    let chain = match sign1
        .unprotected
        .rest
        .iter()
        .find(|(l, _)| *l == Label::Int(iana::HeaderParameter::X5Chain as i64))
        .map(|(_, v)| v)
    {
        Some(Cbor::Bytes(b)) => vec![b.clone()],
        Some(Cbor::Array(a)) => a
            .iter()
            .map(|c| match c {
                Cbor::Bytes(b) => Ok(b.clone()),
                _ => Err(malformed("COSE x5chain entry is not a byte string")),
            })
            .collect::<Result<_, _>>()?,
        _ => Vec::new(),
    };
    let payload = sign1
        .payload
        .clone()
        .ok_or_else(|| malformed("COSE_Sign1 with a detached payload"))?;
    let signed = SignedAttributes {
        scheme,
        needs,
        alg_name,
        signing_scheme: match text_label(&p.rest, SIGNING_SCHEME) {
            Some(Cbor::Text(t)) => t,
            _ => String::new(),
        },
        signing_time: match time(AUTHENTIC_SIGNING_TIME)? {
            Some(t) => Some(t),
            None => time(SIGNING_TIME)?,
        },
        expiry: time(EXPIRY)?,
        crit: p
            .crit
            .iter()
            .map(|c| match c {
                RegisteredLabelWithPrivate::Text(t) => t.clone(),
                other => format!("{other:?}"),
            })
            .collect(),
        signing_input: sign1.tbs_data(b""),
        signature: sign1.signature.clone(),
        payload,
        chain,
    };
    finish(signed, SignatureFormat::NotationCose, subject, trust, now)
}

fn key_fits(needs: KeyAlgorithm, has: KeyAlgorithm) -> bool {
    match (needs, has) {
        (KeyAlgorithm::Rsa { .. }, KeyAlgorithm::Rsa { .. }) => true,
        (a, b) => a == b,
    }
}

/// The checks common to JWS and COSE once the envelope is decoded.
fn finish(
    s: SignedAttributes,
    format: SignatureFormat,
    subject: &Subject,
    trust: Option<&NotationTrust>,
    now: Timestamp,
) -> Outcome<Verified> {
    let Some(trust) = trust else {
        return fail(
            Rejection::NoTrustConfigured,
            "a Notation signature, but the policy has no Notation trust store",
        );
    };
    if !s.crit.iter().any(|c| c == SIGNING_SCHEME) {
        return fail(
            Rejection::MalformedSignature,
            format!("crit does not list {SIGNING_SCHEME}"),
        );
    }
    if s.expiry.is_some() && !s.crit.iter().any(|c| c == EXPIRY) {
        return fail(
            Rejection::MalformedSignature,
            format!("{EXPIRY} is set but not listed in crit"),
        );
    }
    if let Some(c) = s.crit.iter().find(|c| !KNOWN_CRIT.contains(&c.as_str())) {
        return fail(
            Rejection::UnsupportedFormat,
            format!("unknown critical header {:?}", clip(c)),
        );
    }
    let authority = match s.signing_scheme.as_str() {
        "notary.x509" => false,
        "notary.x509.signingAuthority" => true,
        other => {
            return fail(
                Rejection::UnsupportedFormat,
                format!("signing scheme {:?}", clip(other)),
            );
        }
    };
    let leaf_der = s
        .chain
        .first()
        .ok_or_else(|| malformed("the envelope carries no certificate chain"))?;
    let leaf = parse_cert(leaf_der).map_err(|m| malformed(format!("signing certificate: {m}")))?;
    let key = leaf.public_key().map_err(|e| {
        Unverified::new(
            Rejection::UnsupportedAlgorithm,
            format!("signing certificate key: {e}"),
        )
    })?;
    if !key_fits(s.needs, key.algorithm()) {
        return fail(
            Rejection::UnsupportedAlgorithm,
            format!(
                "alg {} does not fit the certificate's {} key",
                s.alg_name,
                key.algorithm().as_str()
            ),
        );
    }
    if !key.verify(s.scheme, &s.signing_input, &s.signature) {
        return fail(
            Rejection::NoSignatureByTrustedKey,
            "the envelope signature does not verify with its signing certificate",
        );
    }
    check_leaf_usage(&leaf)?;
    let signing_time = s
        .signing_time
        .ok_or_else(|| malformed("the envelope has no signing time"))?;
    check_chain(&leaf, &s.chain[1..], trust, signing_time, now, authority)?;
    if let Some(expiry) = s.expiry
        && now > expiry
    {
        return fail(
            Rejection::SignatureExpired,
            format!("the signature expired at {expiry}"),
        );
    }
    check_payload(&s.payload, subject)?;
    let attrs = leaf.subject_attributes();
    if !trust.identities.iter().any(|i| i.matches(&attrs)) {
        let wanted = trust
            .identities
            .iter()
            .take(5)
            .map(|i| i.describe())
            .collect::<Vec<_>>()
            .join("; ");
        return fail(
            Rejection::IdentityMismatch,
            format!(
                "signing certificate subject {:?} matches no trusted identity ({wanted})",
                clip(&leaf.subject_string())
            ),
        );
    }
    Ok(Verified {
        format,
        by: Signer::Certificate {
            subject: leaf.subject_string(),
            fingerprint: leaf.fingerprint(),
        },
        log_index: None,
        signed_at: Some(signing_time),
        predicate_type: None,
    })
}

fn check_leaf_usage(leaf: &Cert) -> Outcome<()> {
    if leaf.digital_signature() != Some(true) {
        return fail(
            Rejection::UntrustedRoot,
            "the signing certificate's key usage lacks digitalSignature",
        );
    }
    if leaf.is_ca() {
        return fail(
            Rejection::UntrustedRoot,
            "the signing certificate is a CA certificate",
        );
    }
    if let Some(ekus) = leaf.ekus()
        && let Some((_, name)) = FORBIDDEN_EKUS
            .iter()
            .find(|(oid, _)| ekus.iter().any(|e| e == oid))
    {
        return fail(
            Rejection::UntrustedRoot,
            format!("the signing certificate has the forbidden extended key usage {name}"),
        );
    }
    Ok(())
}

/// Chain to a trust-store root valid at the signing time; for `notary.x509`
/// (self-asserted signing time, no timestamp checked) also valid now.
fn check_chain(
    leaf: &Cert,
    intermediates: &[Vec<u8>],
    trust: &NotationTrust,
    signing_time: Timestamp,
    now: Timestamp,
    authority: bool,
) -> Outcome<()> {
    let at = |t: Timestamp| {
        verify_chain(
            leaf,
            intermediates,
            &trust.roots,
            t,
            LeafEku::CodeSigningIfPresent,
        )
    };
    match at(signing_time) {
        Ok(()) => {}
        Err(ChainError::Expired(m)) => {
            return fail(
                Rejection::CertificateExpiredAtSigningTime,
                format!("signed at {signing_time}: {m}"),
            );
        }
        Err(ChainError::Untrusted(m)) => {
            return fail(
                Rejection::UntrustedRoot,
                format!("the signing certificate does not chain to the trust store: {m}"),
            );
        }
    }
    if !authority && let Err(e) = at(now) {
        let m = match e {
            ChainError::Expired(m) | ChainError::Untrusted(m) => m,
        };
        return fail(
            Rejection::CertificateExpired,
            format!(
                "notary.x509 signatures without a verified timestamp need a chain valid now: {m}"
            ),
        );
    }
    Ok(())
}

/// `{"targetArtifact":{mediaType,digest,size}}` must describe the subject.
fn check_payload(payload: &[u8], subject: &Subject) -> Outcome<()> {
    let v: Value = serde_json::from_slice(payload).map_err(|_| {
        Unverified::new(
            Rejection::InvalidPayload,
            "the Notation payload is not JSON",
        )
    })?;
    let t = v.get("targetArtifact").ok_or_else(|| {
        Unverified::new(
            Rejection::InvalidPayload,
            "the Notation payload has no targetArtifact",
        )
    })?;
    let digest = t.get("digest").and_then(Value::as_str).unwrap_or("");
    let media_type = t.get("mediaType").and_then(Value::as_str).unwrap_or("");
    let size = t.get("size").and_then(Value::as_u64);
    if digest != subject.digest {
        return fail(
            Rejection::DigestMismatch,
            format!(
                "signed for {}, not for the judged {}",
                clip(digest),
                subject.digest
            ),
        );
    }
    if media_type != subject.media_type {
        return fail(
            Rejection::DigestMismatch,
            format!(
                "signed for media type {:?}, the subject is {:?}",
                clip(media_type),
                subject.media_type
            ),
        );
    }
    if size != Some(subject.size) {
        return fail(
            Rejection::DigestMismatch,
            format!(
                "signed for size {}, the subject is {} bytes",
                size.map(|s| s.to_string()).unwrap_or_else(|| "none".into()),
                subject.size
            ),
        );
    }
    Ok(())
}
