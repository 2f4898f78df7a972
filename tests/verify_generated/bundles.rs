//! Cosign attestations and Sigstore bundles.

use super::*;

// ---- attestations ----------------------------------------------------------

/// A keyless `.att` layer: envelope bytes, annotations, and the pieces to tamper with.
fn att_layer(
    w: &mut World,
    statement: &[u8],
    payload_type: &str,
) -> (Vec<u8>, BTreeMap<String, String>) {
    let key = g::Key::generate(g::Alg::P256);
    let leaf = w.leaf(&spec(), &key);
    let sig = key.sign(&g::pae(payload_type, statement));
    let cert_pem = g::pem("CERTIFICATE", &leaf);
    let e = w
        .log
        .append(g::dsse_body(statement, &sig, &cert_pem), T0 + 60);
    let mut ann = BTreeMap::new();
    ann.insert("dev.cosignproject.cosign/signature".into(), String::new());
    ann.insert("dev.sigstore.cosign/certificate".into(), cert_pem);
    ann.insert(
        "dev.sigstore.cosign/bundle".into(),
        g::cosign_bundle_annotation(&e),
    );
    (
        g::envelope(payload_type, statement, &sig)
            .to_string()
            .into_bytes(),
        ann,
    )
}

fn verify_att(env: &[u8], ann: &BTreeMap<String, String>, p: &TrustPolicy) -> Verdict {
    verify(
        &Evidence::CosignAttestation {
            envelope: env,
            annotations: ann,
        },
        &subject(),
        p,
        now(),
    )
}

#[test]
fn verify_attestation_checks_predicate_type_and_subject() {
    let mut w = World::new();
    let slsa = "https://slsa.dev/provenance/v1";
    let (env, ann) = att_layer(&mut w, &g::statement(&digest(), slsa), INTOTO);
    let mut policy = keyless_policy(&w, vec![identity()]);
    let v = ok(verify_att(&env, &ann, &policy));
    assert_eq!(
        (v.format, v.predicate_type.as_deref()),
        (SignatureFormat::CosignAttestation, Some(slsa))
    );
    policy.predicate_type = Some(slsa.into());
    ok(verify_att(&env, &ann, &policy));
    policy.predicate_type = Some("https://spdx.dev/Document".into());
    fails(
        verify_att(&env, &ann, &policy),
        Rejection::PredicateTypeMismatch,
    );
    policy.predicate_type = None;
    let (env, ann) = att_layer(&mut w, &g::statement(&other_digest(), slsa), INTOTO);
    fails(verify_att(&env, &ann, &policy), Rejection::DigestMismatch);
    let (env, ann) = att_layer(&mut w, &g::statement(&digest(), slsa), "application/json");
    fails(verify_att(&env, &ann, &policy), Rejection::InvalidPayload);
}

#[test]
fn verify_tampered_dsse_is_no_signature() {
    let mut w = World::new();
    let (env, ann) = att_layer(&mut w, &g::statement(&other_digest(), SIGN_V1), INTOTO);
    let mut v: Value = serde_json::from_slice(&env).unwrap();
    v["payload"] = json!(g::b64(&g::statement(&digest(), SIGN_V1)));
    let tampered = v.to_string().into_bytes();
    fails(
        verify_att(&tampered, &ann, &keyless_policy(&w, vec![identity()])),
        Rejection::NoSignatureByTrustedKey,
    );
}

// ---- bundles ---------------------------------------------------------------

/// A cosign-3 style bundle: DSSE with the `sign/v1` statement, certificate, one entry.
pub(crate) struct Bundle {
    pub(crate) json: Value,
    pub(crate) entry: g::Entry,
}

pub(crate) fn dsse_bundle(w: &mut World, statement_digest: &str, set: bool, proof: bool) -> Bundle {
    let key = g::Key::generate(g::Alg::P256);
    let leaf = w.leaf(&spec(), &key);
    let st = g::statement(statement_digest, SIGN_V1);
    let sig = key.sign(&g::pae(INTOTO, &st));
    let entry = w.log.append(
        g::dsse_body(&st, &sig, &g::pem("CERTIFICATE", &leaf)),
        T0 + 60,
    );
    let json = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {
            "certificate": {"rawBytes": g::b64(&leaf)},
            "tlogEntries": [g::bundle_tlog_entry(&entry, "dsse", set, proof)],
        },
        "dsseEnvelope": g::envelope(INTOTO, &st, &sig),
    });
    Bundle { json, entry }
}

fn verify_bundle(b: &Value, s: &Subject, p: &TrustPolicy) -> Verdict {
    let bytes = b.to_string().into_bytes();
    verify(&Evidence::SigstoreBundle { json: &bytes }, s, p, now())
}

#[test]
fn verify_bundle_v03_dsse_keyless() {
    let mut w = World::new();
    let b = dsse_bundle(&mut w, &digest(), true, true);
    let policy = TrustPolicy {
        predicate_type: Some(SIGN_V1.into()),
        ..keyless_policy(&w, vec![identity()])
    };
    let v = ok(verify_bundle(&b.json, &subject(), &policy));
    assert_eq!(v.format, SignatureFormat::SigstoreBundleV03);
    assert_eq!(v.log_index, Some(b.entry.log_index));
    let b = dsse_bundle(&mut w, &other_digest(), true, true);
    fails(
        verify_bundle(&b.json, &subject(), &policy),
        Rejection::DigestMismatch,
    );
}

#[test]
fn verify_bundle_with_the_tlog_entry_of_another_signature() {
    let mut w = World::new();
    let mut b = dsse_bundle(&mut w, &digest(), true, true);
    let other = dsse_bundle(&mut w, &digest(), true, true);
    b.json["verificationMaterial"]["tlogEntries"] =
        other.json["verificationMaterial"]["tlogEntries"].clone();
    let m = fails(
        verify_bundle(&b.json, &subject(), &keyless_policy(&w, vec![identity()])),
        Rejection::TransparencyLogProofInvalid,
    );
    assert!(
        m.contains("another signature") || m.contains("does not hold"),
        "{m}"
    );
}

#[test]
fn verify_checkpoint_signed_by_another_key_or_corrupted_proof() {
    let mut w = World::new();
    let policy = keyless_policy(&w, vec![identity()]);
    let mut b = dsse_bundle(&mut w, &digest(), true, true);
    let impostor = g::Key::generate(g::Alg::P256);
    let forged = w
        .log
        .checkpoint(&impostor, b.entry.tree_size as u64, &b.entry.root);
    b.json["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]["envelope"] =
        json!(forged);
    let m = fails(
        verify_bundle(&b.json, &subject(), &policy),
        Rejection::TransparencyLogProofInvalid,
    );
    assert!(m.contains("checkpoint"), "{m}");
    let mut b = dsse_bundle(&mut w, &digest(), true, true);
    let mut h = b.entry.hashes[0];
    h[0] ^= 1;
    b.json["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"][0] =
        json!(g::b64(&h));
    fails(
        verify_bundle(&b.json, &subject(), &policy),
        Rejection::TransparencyLogProofInvalid,
    );
}

#[test]
fn verify_claimed_version_never_waives_a_proof() {
    let mut w = World::new();
    let policy = keyless_policy(&w, vec![identity()]);
    // v0.3 without the inclusion proof: missing.
    let b = dsse_bundle(&mut w, &digest(), true, false);
    fails(
        verify_bundle(&b.json, &subject(), &policy),
        Rejection::TransparencyLogProofMissing,
    );
    // Relabelled v0.1 (SET only, as v0.1 had): the SET verifies.
    let mut b = dsse_bundle(&mut w, &digest(), true, false);
    b.json["mediaType"] = json!("application/vnd.dev.sigstore.bundle+json;version=0.1");
    assert_eq!(
        ok(verify_bundle(&b.json, &subject(), &policy)).format,
        SignatureFormat::SigstoreBundleV01
    );
    // Relabelled v0.1 with a corrupted proof: the proof is still checked.
    let mut b = dsse_bundle(&mut w, &digest(), true, true);
    b.json["mediaType"] = json!("application/vnd.dev.sigstore.bundle+json;version=0.1");
    b.json["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["rootHash"] =
        json!(g::b64(&[7u8; 32]));
    fails(
        verify_bundle(&b.json, &subject(), &policy),
        Rejection::TransparencyLogProofInvalid,
    );
    // Proof without SET: the log does not vouch for a time, the 10-minute leaf cannot be judged.
    let b = dsse_bundle(&mut w, &digest(), false, true);
    fails(
        verify_bundle(&b.json, &subject(), &policy),
        Rejection::SigningTimeUnknown,
    );
    let mut b = dsse_bundle(&mut w, &digest(), true, true);
    b.json["mediaType"] = json!("application/vnd.dev.sigstore.bundle.v9+json");
    fails(
        verify_bundle(&b.json, &subject(), &policy),
        Rejection::UnsupportedFormat,
    );
    b.json["mediaType"] = json!("application/vnd.dev.sigstore.bundle.v0.3+json");
    b.json["verificationMaterial"]["tlogEntries"][0]["kindVersion"]["version"] = json!("0.0.2");
    fails(
        verify_bundle(&b.json, &subject(), &policy),
        Rejection::UnsupportedFormat,
    );
}

/// A `messageSignature` bundle signed by a managed key over the judged digest's bytes.
fn message_bundle(w: &mut World, key: &g::Key, artifact: &[u8], proof: bool) -> Value {
    let sig = key.sign(artifact);
    let digest = g::sha256(artifact);
    let e = w
        .log
        .append(g::hashedrekord(&digest, &sig, &key.public_pem()), T0 + 60);
    json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "verificationMaterial": {"publicKey": {"hint": "k"}, "tlogEntries": [g::bundle_tlog_entry(&e, "hashedrekord", false, proof)]},
        "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": g::b64(&digest)}, "signature": g::b64(&sig)},
    })
}

#[test]
fn verify_message_signature_bundle_with_a_managed_key() {
    let mut w = World::new();
    let artifact = b"an artifact";
    let blob = Subject {
        digest: format!("sha256:{}", hex::encode(g::sha256(artifact))),
        media_type: String::new(),
        size: 11,
    };
    let key = g::Key::generate(g::Alg::P256);
    let b = message_bundle(&mut w, &key, artifact, true);
    let policy = TrustPolicy {
        trusted_root: Some(w.root()),
        keys_require_tlog: true,
        ..key_policy(&[&key])
    };
    let v = ok(verify_bundle(&b, &blob, &policy));
    assert_eq!(
        (v.format, v.signed_at),
        (SignatureFormat::SigstoreBundleV02, None),
        "proof only, no SET: no time"
    );
    assert!(v.log_index.is_some());
    fails(
        verify_bundle(&b, &subject(), &policy),
        Rejection::DigestMismatch,
    );
    let wrong = TrustPolicy {
        keys: key_policy(&[&g::Key::generate(g::Alg::P256)]).keys,
        ..policy.clone()
    };
    fails(
        verify_bundle(&b, &blob, &wrong),
        Rejection::NoSignatureByTrustedKey,
    );
    // v0.2 claims a proof: without one it is missing.
    let b = message_bundle(&mut w, &key, artifact, false);
    fails(
        verify_bundle(&b, &blob, &policy),
        Rejection::TransparencyLogProofMissing,
    );
    // A P-384 key over the SHA-256 digest (cosign's default hash).
    let digest = g::sha256(artifact);
    let (pem, sig) = g::p384_sha256_prehash(&digest);
    let e = w.log.append(g::hashedrekord(&digest, &sig, &pem), T0 + 60);
    let b = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": "k"}, "tlogEntries": [g::bundle_tlog_entry(&e, "hashedrekord", true, true)]},
        "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": g::b64(&digest)}, "signature": g::b64(&sig)},
    });
    let policy = TrustPolicy {
        keys: vec![PublicKey::from_pem(&pem).unwrap()],
        trusted_root: Some(w.root()),
        keys_require_tlog: true,
        ..Default::default()
    };
    assert!(ok(verify_bundle(&b, &blob, &policy)).signed_at.is_some());
    let ed = g::Key::generate(g::Alg::Ed25519);
    let b = message_bundle(&mut w, &ed, artifact, true);
    let policy = TrustPolicy {
        trusted_root: Some(w.root()),
        ..key_policy(&[&ed])
    };
    fails(
        verify_bundle(&b, &blob, &policy),
        Rejection::UnsupportedAlgorithm,
    );
}
