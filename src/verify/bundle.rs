//! Sigstore bundles v0.1–v0.3: message signatures and DSSE envelopes.

use serde_json::Value;

use super::certs::{Cert, parse_cert};
use super::cosign::{Signed, authenticate, verified};
use super::dsse::{Envelope, check_statement};
use super::encoding::{b64_std, clip, json_i64};
use super::rekor::{InclusionProof, TlogEntry};
use super::{
    Outcome, Rejection, SignatureFormat, Subject, TrustPolicy, Unverified, Verified, fail,
};
use jiff::Timestamp;

fn malformed(m: impl Into<String>) -> Unverified {
    Unverified::new(Rejection::MalformedSignature, m)
}

/// The bundle version its (unsigned) `mediaType` claims.
fn version(media_type: &str) -> Option<SignatureFormat> {
    match media_type {
        "application/vnd.dev.sigstore.bundle+json;version=0.1" => {
            Some(SignatureFormat::SigstoreBundleV01)
        }
        "application/vnd.dev.sigstore.bundle+json;version=0.2" => {
            Some(SignatureFormat::SigstoreBundleV02)
        }
        "application/vnd.dev.sigstore.bundle+json;version=0.3"
        | "application/vnd.dev.sigstore.bundle.v0.3+json" => {
            Some(SignatureFormat::SigstoreBundleV03)
        }
        _ => None,
    }
}

fn b64_field(v: &Value, pointer: &str) -> Result<Vec<u8>, Unverified> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .and_then(b64_std)
        .ok_or_else(|| malformed(format!("bundle {pointer} missing or not base64")))
}

fn tlog_entry(v: &Value, i: usize) -> Result<TlogEntry, Unverified> {
    let at = |p: &str| format!("/verificationMaterial/tlogEntries/{i}{p}");
    let int = |p: &str| -> Result<i64, Unverified> {
        v.get(p.trim_start_matches('/'))
            .and_then(json_i64)
            .ok_or_else(|| malformed(format!("bundle {} missing or not an integer", at(p))))
    };
    let log_index = int("/logIndex")?;
    let integrated_time = v.get("integratedTime").and_then(json_i64).unwrap_or(0);
    let log_id = b64_field(v, "/logId/keyId")
        .map_err(|_| malformed(format!("bundle {} missing", at("/logId/keyId"))))?;
    let body = b64_field(v, "/canonicalizedBody").map_err(|_| {
        malformed(format!(
            "bundle {} missing or not base64",
            at("/canonicalizedBody")
        ))
    })?;
    let set = match v.pointer("/inclusionPromise/signedEntryTimestamp") {
        None => None,
        Some(s) => Some(s.as_str().and_then(b64_std).ok_or_else(|| {
            malformed(format!(
                "bundle {} is not base64",
                at("/inclusionPromise/signedEntryTimestamp")
            ))
        })?),
    };
    let proof = match v.get("inclusionProof") {
        None => None,
        Some(p) => {
            let num = |k: &str| {
                p.get(k).and_then(json_i64).ok_or_else(|| {
                    malformed(format!(
                        "bundle {} missing",
                        at(&format!("/inclusionProof/{k}"))
                    ))
                })
            };
            let root_hash = b64_field(p, "/rootHash")?;
            let mut hashes = Vec::new();
            for h in p
                .get("hashes")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[])
            {
                hashes.push(h.as_str().and_then(b64_std).ok_or_else(|| {
                    malformed(format!(
                        "bundle {} has a non-base64 hash",
                        at("/inclusionProof/hashes")
                    ))
                })?);
            }
            Some(InclusionProof {
                log_index: num("logIndex")?,
                tree_size: num("treeSize")?,
                root_hash,
                hashes,
                checkpoint: p
                    .pointer("/checkpoint/envelope")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            })
        }
    };
    let kind_version = match (
        v.pointer("/kindVersion/kind").and_then(Value::as_str),
        v.pointer("/kindVersion/version").and_then(Value::as_str),
    ) {
        (Some(k), Some(ver)) => Some((k.to_string(), ver.to_string())),
        _ => None,
    };
    Ok(TlogEntry {
        log_index,
        log_id,
        integrated_time,
        body,
        set,
        proof,
        kind_version,
    })
}

/// The leaf certificate of the verification material, if any (`certificate` or
/// the first of `x509CertificateChain`; the rest of a chain is not trusted:
/// intermediates come from the trusted root).
fn leaf(vm: &Value) -> Result<Option<Cert>, Unverified> {
    let der = if let Some(c) = vm.get("certificate") {
        c.get("rawBytes").and_then(Value::as_str).and_then(b64_std)
    } else if let Some(chain) = vm.get("x509CertificateChain") {
        chain
            .pointer("/certificates/0/rawBytes")
            .and_then(Value::as_str)
            .and_then(b64_std)
    } else {
        return Ok(None);
    };
    let der = der.ok_or_else(|| malformed("bundle certificate rawBytes missing or not base64"))?;
    parse_cert(&der)
        .map(Some)
        .map_err(|m| malformed(format!("bundle certificate: {m}")))
}

/// A Sigstore bundle.
pub(crate) fn verify_bundle(
    json: &[u8],
    subject: &Subject,
    policy: &TrustPolicy,
    now: Timestamp,
) -> Outcome<Verified> {
    let v: Value =
        serde_json::from_slice(json).map_err(|e| malformed(format!("bundle is not JSON: {e}")))?;
    let media_type = v.get("mediaType").and_then(Value::as_str).unwrap_or("");
    let Some(format) = version(media_type) else {
        return fail(
            Rejection::UnsupportedFormat,
            format!(
                "bundle mediaType {:?} is not a known Sigstore bundle version",
                clip(media_type)
            ),
        );
    };
    let vm = v
        .get("verificationMaterial")
        .ok_or_else(|| malformed("bundle without verificationMaterial"))?;
    let cert = leaf(vm)?;
    let mut entries = Vec::new();
    for (i, e) in vm
        .get("tlogEntries")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        entries.push(tlog_entry(e, i)?);
    }
    // The mediaType is unsigned: it can demand a proof (v0.2+), never waive one.
    // A proof that is present is verified whatever the version says.
    let need_proof = format != SignatureFormat::SigstoreBundleV01;
    let authenticated = |signed: &Signed<'_>, signature: &[u8]| {
        authenticate(
            signed,
            signature,
            cert.as_ref(),
            &entries,
            need_proof,
            policy,
            now,
        )
    };

    if let Some(ms) = v.get("messageSignature") {
        let signature = b64_field(ms, "/signature")?;
        let alg = ms
            .pointer("/messageDigest/algorithm")
            .and_then(Value::as_str)
            .unwrap_or("");
        if alg != "SHA2_256" {
            return fail(
                Rejection::UnsupportedAlgorithm,
                format!(
                    "messageDigest algorithm {:?}: only SHA2_256 is compared with the sha256 subject",
                    clip(alg)
                ),
            );
        }
        let digest: [u8; 32] = b64_field(ms, "/messageDigest/digest")?
            .try_into()
            .map_err(|_| malformed("messageDigest.digest is not 32 bytes"))?;
        // Judged by digest: ECDSA keys are checked on the digest (the artifact's bytes are
        // not at hand).
        let a = authenticated(&Signed::Prehashed { digest }, &signature)?;
        if super::sha256_of_digest(&subject.digest) != Some(digest) {
            return fail(
                Rejection::DigestMismatch,
                format!(
                    "valid signature over sha256:{}, not over the judged {}",
                    hex::encode(digest),
                    subject.digest
                ),
            );
        }
        return Ok(verified(format, a, None));
    }
    let Some(env_value) = v.get("dsseEnvelope") else {
        return fail(
            Rejection::MalformedSignature,
            "bundle has neither messageSignature nor dsseEnvelope",
        );
    };
    let env = Envelope::from_value(env_value).map_err(malformed)?;
    if env.signatures.len() != 1 {
        return fail(
            Rejection::MalformedSignature,
            "a bundle's DSSE envelope must have exactly one signature",
        );
    }
    let statement = env.in_toto_statement("not")?;
    let pae = env.pae();
    let signed = Signed::Dsse {
        pae: &pae,
        payload: &env.payload,
    };
    let a = authenticated(&signed, &env.signatures[0])?;
    check_statement(&statement, subject, policy.predicate_type.as_deref())?;
    Ok(verified(format, a, Some(statement.predicate_type)))
}
