//! `refwarden::verify` against material generated here (`refwarden_testkit::sigstore_gen`):
//! a Fulcio-like CA, a Rekor-like log, a CT log, keys of every algorithm, Notation
//! PKI. One test per positive path and per way of failing.

use std::collections::BTreeMap;

use jiff::Timestamp;
use proptest::prelude::*;
use refwarden::verify::{
    Evidence, Identity, Keyless, Matcher, NotationTrust, PublicKey, Rejection, SignatureFormat,
    Signer, Subject, TrustPolicy, TrustedRoot, Verdict, Verified, verify,
};
use serde_json::{Value, json};

mod bundles;
mod notation;

/// The generator and the documents built from it.
mod g {
    pub use refwarden_testkit::sigstore_docs::*;
    pub use refwarden_testkit::sigstore_gen::*;
}

/// 2024-03-01T12:00:00Z: the leaf's notBefore.
const T0: u64 = 1_709_294_400;
const ISSUER: &str = "https://issuer.test";
const EMAIL: &str = "dev@example.com";
const INTOTO: &str = "application/vnd.in-toto+json";
const SIGN_V1: &str = "https://sigstore.dev/cosign/sign/v1";

fn now() -> Timestamp {
    Timestamp::from_second(T0 as i64 + 86_400).unwrap()
}

fn digest() -> String {
    format!("sha256:{}", hex::encode(g::sha256(b"the judged manifest")))
}

fn other_digest() -> String {
    format!("sha256:{}", hex::encode(g::sha256(b"another manifest")))
}

fn subject() -> Subject {
    Subject {
        digest: digest(),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: 1234,
    }
}

/// The CA, CT log and Rekor log of one test.
struct World {
    ca: g::Ca,
    inter: g::Ca,
    ct: g::Key,
    log: g::Log,
}

impl World {
    fn new() -> World {
        let ca = g::Ca::root("fulcio-root", T0 - 86_400 * 365, T0 + 86_400 * 365 * 5);
        let inter = ca.intermediate(
            "fulcio-intermediate",
            T0 - 86_400 * 365,
            T0 + 86_400 * 365 * 5,
        );
        World {
            ca,
            inter,
            ct: g::Key::generate(g::Alg::P256),
            log: g::Log::new("rekor.test - 42"),
        }
    }

    fn root_json(&self, ca_start: &str, ca_end: Option<&str>) -> Vec<u8> {
        g::trusted_root(
            &[(
                vec![self.inter.der.clone(), self.ca.der.clone()],
                ca_start,
                ca_end,
            )],
            &[&self.log.key],
            &[&self.ct],
        )
    }

    fn root(&self) -> TrustedRoot {
        TrustedRoot::from_json(&self.root_json("2020-01-01T00:00:00Z", None)).unwrap()
    }

    fn leaf(&self, spec: &g::LeafSpec, key: &g::Key) -> Vec<u8> {
        g::fulcio_leaf(spec, key, &self.inter, &self.ct)
    }
}

fn spec() -> g::LeafSpec {
    g::LeafSpec {
        email: Some(EMAIL.into()),
        uri: None,
        issuer: Some(ISSUER.into()),
        claims: vec![],
        not_before: T0,
        not_after: T0 + 600,
        sct: true,
        code_signing: true,
    }
}

fn identity() -> Identity {
    Identity::new(Matcher::exact(ISSUER), Matcher::exact(EMAIL))
}

fn keyless_policy(w: &World, ids: Vec<Identity>) -> TrustPolicy {
    TrustPolicy {
        keyless: Some(Keyless::new(ids)),
        trusted_root: Some(w.root()),
        ..Default::default()
    }
}

fn key_policy(keys: &[&g::Key]) -> TrustPolicy {
    TrustPolicy {
        keys: keys
            .iter()
            .map(|k| PublicKey::from_pem(&k.public_pem()).unwrap())
            .collect(),
        ..Default::default()
    }
}

#[track_caller]
fn ok(v: Verdict) -> Verified {
    match v {
        Verdict::Verified(v) => v,
        Verdict::Unverified(u) => panic!("expected Verified, got {u:?}"),
    }
}

#[track_caller]
fn fails(v: Verdict, reason: Rejection) -> String {
    match v {
        Verdict::Unverified(u) => {
            assert_eq!(u.reason, reason, "message: {}", u.message);
            assert!(
                !u.message.contains("BEGIN CERTIFICATE") && u.message.len() < 600,
                "{}",
                u.message
            );
            u.message
        }
        Verdict::Verified(v) => panic!("expected {reason}, but verified: {v:?}"),
    }
}

/// A cosign `.sig` layer: payload for `signed_digest`, signature, optional cert and Rekor bundle.
struct SigLayer {
    payload: Vec<u8>,
    ann: BTreeMap<String, String>,
}

impl SigLayer {
    fn keyed(key: &g::Key, signed_digest: &str) -> SigLayer {
        let payload = g::simple_signing_payload(signed_digest);
        let mut ann = BTreeMap::new();
        ann.insert(
            "dev.cosignproject.cosign/signature".into(),
            g::b64(&key.sign(&payload)),
        );
        SigLayer { payload, ann }
    }

    /// Keyless: leaf from `spec`, logged at `integrated_time`.
    fn keyless(w: &mut World, spec: &g::LeafSpec, integrated_time: u64) -> SigLayer {
        let key = g::Key::generate(g::Alg::P256);
        let leaf = w.leaf(spec, &key);
        let mut l = SigLayer::keyed(&key, &digest());
        let cert_pem = g::pem("CERTIFICATE", &leaf);
        l.log(w, &cert_pem, integrated_time);
        l.ann
            .insert("dev.sigstore.cosign/certificate".into(), cert_pem);
        l
    }

    fn signature(&self) -> Vec<u8> {
        g::b64_decode(&self.ann["dev.cosignproject.cosign/signature"])
    }

    fn log(&mut self, w: &mut World, verifier_pem: &str, integrated_time: u64) -> g::Entry {
        let body = g::hashedrekord(&g::sha256(&self.payload), &self.signature(), verifier_pem);
        let e = w.log.append(body, integrated_time);
        self.ann.insert(
            "dev.sigstore.cosign/bundle".into(),
            g::cosign_bundle_annotation(&e),
        );
        e
    }

    fn verify(&self, s: &Subject, p: &TrustPolicy) -> Verdict {
        verify(
            &Evidence::CosignSimpleSigning {
                payload: &self.payload,
                annotations: &self.ann,
            },
            s,
            p,
            now(),
        )
    }
}

// ---- keys ------------------------------------------------------------------

#[test]
fn keys_of_every_algorithm_verify_and_are_named() {
    for alg in [
        g::Alg::P256,
        g::Alg::P384,
        g::Alg::P521,
        g::Alg::Ed25519,
        g::Alg::RsaPkcs1,
        g::Alg::RsaPss,
    ] {
        let key = g::Key::generate(alg);
        let layer = SigLayer::keyed(&key, &digest());
        let policy = key_policy(&[&key]);
        let v = ok(layer.verify(&subject(), &policy));
        assert_eq!(v.format, SignatureFormat::CosignSimpleSigning);
        assert_eq!(
            v.by,
            Signer::Key {
                fingerprint: policy.keys[0].fingerprint().to_string()
            },
            "{alg:?}"
        );
        assert_eq!(v.log_index, None);
    }
}

#[test]
fn verify_the_verdict_names_which_of_several_keys_signed() {
    let (a, b) = (
        g::Key::generate(g::Alg::P256),
        g::Key::generate(g::Alg::Ed25519),
    );
    let policy = key_policy(&[&a, &b]);
    assert_ne!(policy.keys[0].fingerprint(), policy.keys[1].fingerprint());
    let by_b = ok(SigLayer::keyed(&b, &digest()).verify(&subject(), &policy)).by;
    assert_eq!(
        by_b,
        Signer::Key {
            fingerprint: policy.keys[1].fingerprint().to_string()
        }
    );
}

#[test]
fn verify_wrong_key_is_no_signature_by_trusted_key() {
    let (signer, trusted) = (
        g::Key::generate(g::Alg::P256),
        g::Key::generate(g::Alg::P256),
    );
    let policy = key_policy(&[&trusted]);
    let m = fails(
        SigLayer::keyed(&signer, &digest()).verify(&subject(), &policy),
        Rejection::NoSignatureByTrustedKey,
    );
    assert!(m.contains(policy.keys[0].fingerprint()), "{m}");
}

#[test]
fn verify_payload_for_another_digest_is_digest_mismatch() {
    let key = g::Key::generate(g::Alg::P256);
    let m = fails(
        SigLayer::keyed(&key, &other_digest()).verify(&subject(), &key_policy(&[&key])),
        Rejection::DigestMismatch,
    );
    assert!(m.contains(&other_digest()) && m.contains(&digest()), "{m}");
}

#[test]
fn verify_not_a_simple_signing_payload_or_no_signature() {
    let key = g::Key::generate(g::Alg::P256);
    let policy = key_policy(&[&key]);
    let mut layer = SigLayer::keyed(&key, &digest());
    layer.payload = br#"{"critical":{"type":"something else"}}"#.to_vec();
    fails(layer.verify(&subject(), &policy), Rejection::InvalidPayload);
    let mut layer = SigLayer::keyed(&key, &digest());
    layer.ann.clear();
    fails(
        layer.verify(&subject(), &policy),
        Rejection::MalformedSignature,
    );
    fails(
        SigLayer::keyed(&key, &digest()).verify(&subject(), &TrustPolicy::default()),
        Rejection::NoTrustConfigured,
    );
}

#[test]
fn verify_key_signature_with_a_required_tlog() {
    let mut w = World::new();
    let key = g::Key::generate(g::Alg::P256);
    let mut policy = key_policy(&[&key]);
    policy.keys_require_tlog = true;
    policy.trusted_root = Some(w.root());
    let mut layer = SigLayer::keyed(&key, &digest());
    fails(
        layer.verify(&subject(), &policy),
        Rejection::TransparencyLogProofMissing,
    );
    let e = layer.log(&mut w, &key.public_pem(), T0 + 60);
    let v = ok(layer.verify(&subject(), &policy));
    assert_eq!(v.log_index, Some(e.log_index));
    assert_eq!(
        v.signed_at,
        Some(Timestamp::from_second(T0 as i64 + 60).unwrap())
    );
    // The body logged for another key does not vouch for this signature.
    let other = g::Key::generate(g::Alg::P256);
    layer.log(&mut w, &other.public_pem(), T0 + 60);
    fails(
        layer.verify(&subject(), &policy),
        Rejection::TransparencyLogProofInvalid,
    );
}

// ---- keyless ---------------------------------------------------------------

#[test]
fn verify_keyless_signature_with_identity_log_index_and_time() {
    let mut w = World::new();
    let layer = SigLayer::keyless(&mut w, &spec(), T0 + 60);
    let v = ok(layer.verify(&subject(), &keyless_policy(&w, vec![identity()])));
    assert_eq!(
        v.by,
        Signer::Identity {
            issuer: Some(ISSUER.into()),
            subject: EMAIL.into()
        }
    );
    assert!(v.log_index.is_some());
    assert_eq!(
        v.signed_at,
        Some(Timestamp::from_second(T0 as i64 + 60).unwrap())
    );
    // Anchored regexes.
    let re = Identity::new(
        Matcher::regex(r"https://issuer\.test").unwrap(),
        Matcher::regex(r".*@example\.com").unwrap(),
    );
    ok(layer.verify(&subject(), &keyless_policy(&w, vec![re])));
    let partial = Identity::new(Matcher::exact(ISSUER), Matcher::regex("example").unwrap());
    fails(
        layer.verify(&subject(), &keyless_policy(&w, vec![partial])),
        Rejection::IdentityMismatch,
    );
}

#[test]
fn verify_wrong_san_or_issuer_is_identity_mismatch() {
    let mut w = World::new();
    let layer = SigLayer::keyless(&mut w, &spec(), T0 + 60);
    let wrong_san = Identity::new(
        Matcher::exact(ISSUER),
        Matcher::exact("someone@example.com"),
    );
    let m = fails(
        layer.verify(&subject(), &keyless_policy(&w, vec![wrong_san])),
        Rejection::IdentityMismatch,
    );
    assert!(
        m.contains(EMAIL) && m.contains("someone@example.com"),
        "{m}"
    );
    let wrong_issuer = Identity::new(
        Matcher::exact("https://accounts.google.com"),
        Matcher::exact(EMAIL),
    );
    fails(
        layer.verify(&subject(), &keyless_policy(&w, vec![wrong_issuer])),
        Rejection::IdentityMismatch,
    );
}

#[test]
fn verify_github_workflow_claims_and_uri_san() {
    let mut w = World::new();
    let workflow = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
    let s = g::LeafSpec {
        email: None,
        uri: Some(workflow.into()),
        issuer: Some("https://token.actions.githubusercontent.com".into()),
        claims: vec![
            (9, workflow.into()),
            (12, "https://github.com/acme/app".into()),
            (14, "refs/heads/main".into()),
        ],
        ..spec()
    };
    let layer = SigLayer::keyless(&mut w, &s, T0 + 60);
    let id = Identity::new(
        Matcher::exact("https://token.actions.githubusercontent.com"),
        Matcher::regex("https://github.com/acme/.*").unwrap(),
    )
    .with_claim(
        Identity::SOURCE_REPOSITORY_URI,
        Matcher::exact("https://github.com/acme/app"),
    )
    .with_claim(
        Identity::SOURCE_REPOSITORY_REF,
        Matcher::exact("refs/heads/main"),
    )
    .with_claim(Identity::BUILD_SIGNER_URI, Matcher::exact(workflow));
    let v = ok(layer.verify(&subject(), &keyless_policy(&w, vec![id.clone()])));
    assert_eq!(
        v.by,
        Signer::Identity {
            issuer: Some("https://token.actions.githubusercontent.com".into()),
            subject: workflow.into()
        }
    );
    let fork = id.with_claim(
        Identity::SOURCE_REPOSITORY_URI,
        Matcher::exact("https://github.com/evil/app"),
    );
    fails(
        layer.verify(&subject(), &keyless_policy(&w, vec![fork])),
        Rejection::IdentityMismatch,
    );
}

#[test]
fn verify_signed_after_the_leaf_expired() {
    let mut w = World::new();
    let layer = SigLayer::keyless(&mut w, &spec(), T0 + 3600);
    let m = fails(
        layer.verify(&subject(), &keyless_policy(&w, vec![identity()])),
        Rejection::CertificateExpiredAtSigningTime,
    );
    assert!(m.contains("2024-03-01T13:00:00Z"), "{m}");
}

#[test]
fn verify_set_over_another_body_is_invalid() {
    let mut w = World::new();
    let mut layer = SigLayer::keyless(&mut w, &spec(), T0 + 60);
    // Same facts, other bytes: the body check passes, the SET does not cover it.
    let mut bundle: Value = serde_json::from_str(&layer.ann["dev.sigstore.cosign/bundle"]).unwrap();
    let body: Value =
        serde_json::from_slice(&g::b64_decode(bundle["Payload"]["body"].as_str().unwrap()))
            .unwrap();
    bundle["Payload"]["body"] = json!(g::b64(
        serde_json::to_string_pretty(&body).unwrap().as_bytes()
    ));
    layer
        .ann
        .insert("dev.sigstore.cosign/bundle".into(), bundle.to_string());
    let m = fails(
        layer.verify(&subject(), &keyless_policy(&w, vec![identity()])),
        Rejection::TransparencyLogProofInvalid,
    );
    assert!(m.contains("signed entry timestamp"), "{m}");
    // An integratedTime changed after signing.
    let mut layer = SigLayer::keyless(&mut w, &spec(), T0 + 60);
    let mut bundle: Value = serde_json::from_str(&layer.ann["dev.sigstore.cosign/bundle"]).unwrap();
    bundle["Payload"]["integratedTime"] = json!(T0 + 61);
    layer
        .ann
        .insert("dev.sigstore.cosign/bundle".into(), bundle.to_string());
    fails(
        layer.verify(&subject(), &keyless_policy(&w, vec![identity()])),
        Rejection::TransparencyLogProofInvalid,
    );
}

#[test]
fn verify_keyless_without_tlog_entry_is_missing() {
    let mut w = World::new();
    let mut layer = SigLayer::keyless(&mut w, &spec(), T0 + 60);
    layer.ann.remove("dev.sigstore.cosign/bundle");
    fails(
        layer.verify(&subject(), &keyless_policy(&w, vec![identity()])),
        Rejection::TransparencyLogProofMissing,
    );
}

#[test]
fn verify_leaf_from_another_ca_is_untrusted() {
    let mut w = World::new();
    let stranger = g::Ca::root("other-root", T0 - 86_400, T0 + 86_400 * 30);
    let key = g::Key::generate(g::Alg::P256);
    let leaf = g::fulcio_leaf(&spec(), &key, &stranger, &w.ct);
    let mut layer = SigLayer::keyed(&key, &digest());
    let pem = g::pem("CERTIFICATE", &leaf);
    layer.log(&mut w, &pem, T0 + 60);
    layer
        .ann
        .insert("dev.sigstore.cosign/certificate".into(), pem);
    fails(
        layer.verify(&subject(), &keyless_policy(&w, vec![identity()])),
        Rejection::UntrustedRoot,
    );
}

#[test]
fn verify_ca_not_valid_at_signing_time_and_leaf_without_code_signing() {
    let mut w = World::new();
    let layer = SigLayer::keyless(&mut w, &spec(), T0 + 60);
    let mut policy = keyless_policy(&w, vec![identity()]);
    policy.trusted_root =
        Some(TrustedRoot::from_json(&w.root_json("2025-01-01T00:00:00Z", None)).unwrap());
    fails(layer.verify(&subject(), &policy), Rejection::UntrustedRoot);
    let no_eku = g::LeafSpec {
        code_signing: false,
        ..spec()
    };
    let layer = SigLayer::keyless(&mut w, &no_eku, T0 + 60);
    fails(
        layer.verify(&subject(), &keyless_policy(&w, vec![identity()])),
        Rejection::UntrustedRoot,
    );
}

#[test]
fn verify_sct_missing_or_from_an_unknown_ct_log() {
    let mut w = World::new();
    let layer = SigLayer::keyless(
        &mut w,
        &g::LeafSpec {
            sct: false,
            ..spec()
        },
        T0 + 60,
    );
    let mut policy = keyless_policy(&w, vec![identity()]);
    fails(layer.verify(&subject(), &policy), Rejection::SctMissing);
    if let Some(k) = policy.keyless.as_mut() {
        k.require_sct = false;
    }
    ok(layer.verify(&subject(), &policy));
    let layer = SigLayer::keyless(&mut w, &spec(), T0 + 60);
    let mut root_without_ct: Value =
        serde_json::from_slice(&w.root_json("2020-01-01T00:00:00Z", None)).unwrap();
    root_without_ct["ctlogs"] = json!([]);
    let policy = TrustPolicy {
        trusted_root: Some(TrustedRoot::from_json(root_without_ct.to_string().as_bytes()).unwrap()),
        ..keyless_policy(&w, vec![identity()])
    };
    fails(layer.verify(&subject(), &policy), Rejection::SctInvalid);
}

#[test]
fn verify_log_unknown_to_the_trusted_root() {
    let mut w = World::new();
    let layer = SigLayer::keyless(&mut w, &spec(), T0 + 60);
    let stranger = World::new();
    let mut policy = keyless_policy(&w, vec![identity()]);
    // Same CA and CT log, another Rekor.
    policy.trusted_root = Some(
        TrustedRoot::from_json(&g::trusted_root(
            &[(
                vec![w.inter.der.clone(), w.ca.der.clone()],
                "2020-01-01T00:00:00Z",
                None,
            )],
            &[&stranger.log.key],
            &[&w.ct],
        ))
        .unwrap(),
    );
    fails(
        layer.verify(&subject(), &policy),
        Rejection::TransparencyLogProofInvalid,
    );
}
