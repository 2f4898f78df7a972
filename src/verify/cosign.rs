//! cosign `.sig` (simple signing) and `.att` (DSSE) layers, and the signer check
//! shared with Sigstore bundles (trusted key, or Fulcio certificate + tlog).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::Value;

use super::certs::{Cert, parse_cert};
use super::dsse::{Envelope, check_statement};
use super::encoding::{b64_std, clip, pem_blocks, sha256};
use super::keys::PublicKey;
use super::rekor::{
    Expected, SignerKey, TlogEntry, TlogVerified, entry_from_cosign_bundle, verify_entry,
};
use super::{
    Outcome, Rejection, SignatureFormat, Signer, Subject, TrustPolicy, Unverified, Verified, fail,
};

pub(crate) const ANN_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
pub(crate) const ANN_CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
pub(crate) const ANN_BUNDLE: &str = "dev.sigstore.cosign/bundle";
const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";

/// What the signature covers.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Signed<'a> {
    /// A message signature: the bytes signed and their sha256 as the log records it.
    Message { bytes: &'a [u8], digest: [u8; 32] },
    /// A DSSE envelope: the PAE bytes signed and the decoded payload.
    Dsse { pae: &'a [u8], payload: &'a [u8] },
    /// A message signature known only by the message's sha256 (Sigstore bundles).
    Prehashed { digest: [u8; 32] },
}

impl Signed<'_> {
    /// Does `signature` verify under `key`? `Err` when this key type cannot be
    /// checked in this form.
    fn check(&self, key: &PublicKey, signature: &[u8]) -> Result<bool, String> {
        match self {
            Signed::Message { bytes, .. } => Ok(key.verify_sigstore(bytes, signature)),
            Signed::Dsse { pae, .. } => Ok(key.verify_sigstore(pae, signature)),
            Signed::Prehashed { digest } => key.verify_prehashed_sha256(digest, signature),
        }
    }

    fn expected<'a>(&'a self, signature: &'a [u8], verifier: SignerKey<'a>) -> Expected<'a> {
        match *self {
            Signed::Message { digest, .. } | Signed::Prehashed { digest } => Expected::Hashed {
                digest,
                signature,
                verifier,
            },
            Signed::Dsse { payload, .. } => Expected::Dsse {
                payload,
                signature,
                verifier,
            },
        }
    }
}

/// Who signed and what the log says.
pub(crate) struct Authenticated {
    pub(crate) signer: Signer,
    pub(crate) tlog: Option<TlogVerified>,
}

/// Verifies the first entry of `entries` that verifies; all failing is the first error.
fn verify_entries(
    entries: &[TlogEntry],
    policy: &TrustPolicy,
    expected: &Expected<'_>,
    need_proof: bool,
) -> Outcome<Option<TlogVerified>> {
    if entries.is_empty() {
        return Ok(None);
    }
    let Some(root) = &policy.trusted_root else {
        return fail(
            Rejection::NoTrustConfigured,
            "the evidence has a transparency-log entry but the policy has no trusted root to verify it",
        );
    };
    let mut first_err = None;
    for e in entries {
        match verify_entry(e, root, expected, need_proof) {
            Ok(v) => return Ok(Some(v)),
            Err(u) => {
                first_err.get_or_insert(u);
            }
        }
    }
    match first_err {
        Some(u) => Err(u),
        None => Ok(None),
    }
}

/// The signer of `signature` over `signed`: a Fulcio certificate checked under
/// the keyless policy, or one of the trusted keys. Tlog entries present are
/// verified; required ones must be there.
pub(crate) fn authenticate(
    signed: &Signed<'_>,
    signature: &[u8],
    cert: Option<&Cert>,
    entries: &[TlogEntry],
    need_proof: bool,
    policy: &TrustPolicy,
    now: Timestamp,
) -> Outcome<Authenticated> {
    let keyless_result = match (cert, &policy.keyless) {
        (Some(cert), Some(keyless)) => Some(authenticate_keyless(
            signed, signature, cert, entries, need_proof, keyless, policy, now,
        )),
        _ => None,
    };
    match keyless_result {
        Some(Ok(a)) => return Ok(a),
        Some(Err(e)) if policy.keys.is_empty() => return Err(e),
        _ => {}
    }
    if policy.keys.is_empty() {
        return fail(
            Rejection::NoTrustConfigured,
            if cert.is_some() {
                "signed with a certificate, but the policy trusts no keyless identity"
            } else {
                "signed with a key, but the policy trusts no key"
            },
        );
    }
    let key_result = authenticate_key(signed, signature, entries, need_proof, policy);
    match (key_result, keyless_result) {
        (Ok(a), _) => Ok(a),
        // A certificate that failed keyless checks tells more than "no trusted key".
        (Err(e), Some(Err(k))) if e.reason == Rejection::NoSignatureByTrustedKey => Err(k),
        (Err(e), _) => Err(e),
    }
}

fn authenticate_key(
    signed: &Signed<'_>,
    signature: &[u8],
    entries: &[TlogEntry],
    need_proof: bool,
    policy: &TrustPolicy,
) -> Outcome<Authenticated> {
    let mut unsupported = Vec::new();
    let found = policy
        .keys
        .iter()
        .find(|k| match signed.check(k, signature) {
            Ok(ok) => ok,
            Err(m) => {
                unsupported.push(m);
                false
            }
        });
    let Some(key) = found else {
        if unsupported.len() == policy.keys.len()
            && let Some(m) = unsupported.into_iter().next()
        {
            return fail(Rejection::UnsupportedAlgorithm, m);
        }
        let names = policy
            .keys
            .iter()
            .take(4)
            .map(|k| format!("{} {}", k.algorithm().as_str(), k.fingerprint()))
            .collect::<Vec<_>>()
            .join(", ");
        return fail(
            Rejection::NoSignatureByTrustedKey,
            format!(
                "the signature verifies with none of the {} trusted key(s): {names}",
                policy.keys.len()
            ),
        );
    };
    let expected = signed.expected(signature, SignerKey::Key(key));
    let tlog = if policy.trusted_root.is_some() || policy.keys_require_tlog {
        verify_entries(entries, policy, &expected, need_proof)?
    } else {
        None
    };
    if policy.keys_require_tlog && tlog.is_none() {
        return fail(
            Rejection::TransparencyLogProofMissing,
            "the policy requires a transparency-log entry and the signature has none",
        );
    }
    Ok(Authenticated {
        signer: Signer::Key {
            fingerprint: key.fingerprint().to_string(),
        },
        tlog,
    })
}

#[allow(clippy::too_many_arguments)]
fn authenticate_keyless(
    signed: &Signed<'_>,
    signature: &[u8],
    cert: &Cert,
    entries: &[TlogEntry],
    need_proof: bool,
    keyless: &super::Keyless,
    policy: &TrustPolicy,
    now: Timestamp,
) -> Outcome<Authenticated> {
    let Some(root) = &policy.trusted_root else {
        return fail(
            Rejection::NoTrustConfigured,
            "keyless verification needs a trusted root (certificate authorities)",
        );
    };
    let key = cert.public_key().map_err(|e| {
        Unverified::new(
            Rejection::UnsupportedAlgorithm,
            format!("certificate key: {e}"),
        )
    })?;
    let ok = signed
        .check(&key, signature)
        .map_err(|m| Unverified::new(Rejection::UnsupportedAlgorithm, m))?;
    if !ok {
        return fail(
            Rejection::NoSignatureByTrustedKey,
            format!(
                "the signature does not verify with the certificate's {} key",
                key.algorithm().as_str()
            ),
        );
    }
    // A certificate of another instance is untrusted whatever its log says.
    super::fulcio::chain_to_root(cert, root, cert.not_before)?;
    let expected = signed.expected(signature, SignerKey::Cert(&cert.der));
    let tlog = verify_entries(entries, policy, &expected, need_proof)?;
    let signed_at = match tlog.and_then(|t| t.integrated_time) {
        Some(t) => t,
        None if !keyless.require_tlog => now,
        None if tlog.is_none() => {
            return fail(
                Rejection::TransparencyLogProofMissing,
                "keyless signature without a transparency-log entry (required)",
            );
        }
        None => {
            return fail(
                Rejection::SigningTimeUnknown,
                "the tlog entry verified without a signed entry timestamp and RFC 3161 timestamps are not supported: the signing time is unknown",
            );
        }
    };
    let signer = super::fulcio::verify_leaf(cert, keyless, root, signed_at)?;
    Ok(Authenticated { signer, tlog })
}

fn leaf_from_annotations(ann: &BTreeMap<String, String>) -> Outcome<Option<Cert>> {
    let Some(pem) = ann.get(ANN_CERTIFICATE).filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    let malformed = |m: String| {
        Unverified::new(
            Rejection::MalformedSignature,
            format!("{ANN_CERTIFICATE}: {m}"),
        )
    };
    let blocks = pem_blocks(pem, &["CERTIFICATE"]).map_err(malformed)?;
    let der = blocks
        .first()
        .ok_or_else(|| malformed("no CERTIFICATE PEM block".into()))?;
    parse_cert(der).map(Some).map_err(malformed)
}

fn entries_from_annotations(ann: &BTreeMap<String, String>) -> Outcome<Vec<TlogEntry>> {
    match ann.get(ANN_BUNDLE).filter(|s| !s.trim().is_empty()) {
        None => Ok(Vec::new()),
        Some(text) => entry_from_cosign_bundle(text)
            .map(|e| vec![e])
            .map_err(|m| {
                Unverified::new(Rejection::MalformedSignature, format!("{ANN_BUNDLE}: {m}"))
            }),
    }
}

/// The verdict on a signature of `format` that `a` authenticated.
pub(crate) fn verified(
    format: SignatureFormat,
    a: Authenticated,
    predicate_type: Option<String>,
) -> Verified {
    Verified {
        format,
        by: a.signer,
        log_index: a.tlog.map(|t| t.log_index),
        signed_at: a.tlog.and_then(|t| t.integrated_time),
        predicate_type,
    }
}

/// A cosign `.sig` layer.
pub(crate) fn verify_simple_signing(
    payload: &[u8],
    ann: &BTreeMap<String, String>,
    subject: &Subject,
    policy: &TrustPolicy,
    now: Timestamp,
) -> Outcome<Verified> {
    let signed_digest = simple_signing_digest(payload)?;
    let signature = ann
        .get(ANN_SIGNATURE)
        .and_then(|s| b64_std(s))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Unverified::new(
                Rejection::MalformedSignature,
                format!("annotation {ANN_SIGNATURE} missing or not base64"),
            )
        })?;
    let cert = leaf_from_annotations(ann)?;
    let entries = entries_from_annotations(ann)?;
    let signed = Signed::Message {
        bytes: payload,
        digest: sha256(payload),
    };
    let a = authenticate(
        &signed,
        &signature,
        cert.as_ref(),
        &entries,
        false,
        policy,
        now,
    )?;
    if signed_digest != subject.digest {
        return fail(
            Rejection::DigestMismatch,
            format!(
                "valid signature over {}, not over the judged {}",
                clip(&signed_digest),
                subject.digest
            ),
        );
    }
    Ok(verified(SignatureFormat::CosignSimpleSigning, a, None))
}

/// `critical.type` and `critical.image.docker-manifest-digest` of a simple-signing payload.
fn simple_signing_digest(payload: &[u8]) -> Outcome<String> {
    let not = |m: &str| {
        Unverified::new(
            Rejection::InvalidPayload,
            format!("not a cosign simple-signing payload: {m}"),
        )
    };
    let v: Value =
        serde_json::from_slice(payload).map_err(|_| not("the layer blob is not JSON"))?;
    let t = v.pointer("/critical/type").and_then(Value::as_str);
    if t != Some(SIMPLE_SIGNING_TYPE) {
        return Err(not(&format!(
            "critical.type is {}",
            t.map(|t| format!("{:?}", clip(t)))
                .unwrap_or_else(|| "missing".into())
        )));
    }
    v.pointer("/critical/image/docker-manifest-digest")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| not("critical.image.docker-manifest-digest missing"))
}

/// A cosign `.att` layer (DSSE envelope).
pub(crate) fn verify_attestation(
    envelope: &[u8],
    ann: &BTreeMap<String, String>,
    subject: &Subject,
    policy: &TrustPolicy,
    now: Timestamp,
) -> Outcome<Verified> {
    let env =
        Envelope::parse(envelope).map_err(|m| Unverified::new(Rejection::MalformedSignature, m))?;
    let statement = env.in_toto_statement("cosign attestations need")?;
    let cert = leaf_from_annotations(ann)?;
    let entries = entries_from_annotations(ann)?;
    let pae = env.pae();
    let signed = Signed::Dsse {
        pae: &pae,
        payload: &env.payload,
    };
    let mut last_err = None;
    for sig in &env.signatures {
        match authenticate(&signed, sig, cert.as_ref(), &entries, false, policy, now) {
            Ok(a) => {
                check_statement(&statement, subject, policy.predicate_type.as_deref())?;
                return Ok(verified(
                    SignatureFormat::CosignAttestation,
                    a,
                    Some(statement.predicate_type),
                ));
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| Unverified::new(Rejection::MalformedSignature, "no signature")))
}
