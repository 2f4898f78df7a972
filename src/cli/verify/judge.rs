//! `refwarden verify`'s judging: which role (signature or attestation) a referrer plays, whether
//! it is wanted, and the verdict of each of its layers under the trust of its role.

use super::TypeArg;
use super::report::{LayerVerdict, ReferrerResult, Role, VerifyOutcome};
use super::trust::Policies;
use crate::discovery::{Format, Referrer};
use crate::evidence::{self, EvidenceError};
use crate::verify::{Rejection, Subject, Unverified, Verdict};

/// cosign 3's signature predicate: a bundle carrying it is a signature, not an attestation.
const COSIGN_SIGN_V1: &str = "https://sigstore.dev/cosign/sign/v1";

/// cosign 3 signs with the `sign/v1` predicate (or a message signature); any other is an
/// attestation.
fn bundle_role(predicate_type: Option<&str>) -> Role {
    match predicate_type {
        None | Some(COSIGN_SIGN_V1) => Role::Signature,
        Some(_) => Role::Attestation,
    }
}

/// A referrer's role from what discovery saw; `None`: not a signature at all.
pub(super) fn role_of(r: &Referrer) -> Option<Role> {
    if !evidence::is_verifiable(r.format) {
        return None;
    }
    Some(match r.format {
        Format::CosignAttestation | Format::InTotoDsse => Role::Attestation,
        f if f.is_sigstore_bundle() => bundle_role(r.predicate_type.as_deref()),
        _ => Role::Signature,
    })
}

pub(super) fn wanted(types: &[TypeArg], role: Role) -> bool {
    types.iter().any(|t| match t {
        TypeArg::Any => true,
        TypeArg::Signature => role == Role::Signature,
        TypeArg::Attestation => role == Role::Attestation,
    })
}

/// Judges one referrer's layers.
pub(super) fn judge(
    r: &Referrer,
    role: Role,
    read: Result<evidence::ReferrerEvidence, EvidenceError>,
    subject: &Subject,
    policies: &Policies,
    predicate_type: Option<&str>,
) -> ReferrerResult {
    let mut out = ReferrerResult {
        digest: r.digest.clone(),
        format: r.format,
        method: r.method,
        tag: r.tag.clone(),
        repository: r.repository.clone(),
        role,
        result: VerifyOutcome::Unverified,
        verified: None,
        reason: None,
        message: None,
        signatures: Vec::new(),
        requests: 0,
    };
    let ev = match read {
        Ok(ev) => ev,
        Err(EvidenceError::Unreadable { reason, message }) => {
            out.result = VerifyOutcome::Unknown;
            out.reason = Some(reason.to_string());
            out.message = Some(message);
            return out;
        }
        Err(e) => {
            out.reason = Some(Rejection::MalformedSignature.as_str().to_string());
            out.message = Some(e.to_string());
            return out;
        }
    };
    out.requests = ev.requests;
    let policy = match role {
        Role::Signature => &policies.signature,
        Role::Attestation => &policies.attestation,
    };
    let now = jiff::Timestamp::now();
    for item in &ev.items {
        let mut verdict = crate::verify::verify(&item.evidence(), subject, policy, now);
        if let Verdict::Verified(v) = &verdict
            && r.format.is_sigstore_bundle()
        {
            // A bundle is a signature or an attestation by the predicate it verified with.
            out.role = bundle_role(v.predicate_type.as_deref());
        }
        if let (Verdict::Verified(v), Role::Attestation, Some(want)) =
            (&verdict, out.role, predicate_type)
            && v.predicate_type.as_deref() != Some(want)
        {
            verdict = Verdict::Unverified(Unverified {
                reason: Rejection::PredicateTypeMismatch,
                message: format!(
                    "the attestation's predicate type is {:?}, not {want:?}",
                    v.predicate_type.as_deref().unwrap_or("")
                ),
            });
        }
        match &verdict {
            Verdict::Verified(v) if out.verified.is_none() => {
                out.result = VerifyOutcome::Verified;
                out.verified = Some(v.clone());
                out.reason = None;
                out.message = None;
            }
            Verdict::Unverified(u) if out.verified.is_none() && out.reason.is_none() => {
                out.reason = Some(u.reason.as_str().to_string());
                out.message = Some(u.message.clone());
            }
            _ => {}
        }
        out.signatures.push(LayerVerdict {
            layer: item.layer_digest.clone(),
            verdict,
        });
    }
    out
}
