//! Real published signature material (`../shared/fixtures`): every case verifies,
//! or fails for the published reason, through `refwarden::verify`.
//!
//! The fixtures are read in place. Without the folder the tests are skipped with
//! a message, except under `CI=true`, where a missing folder is a failure.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use refwarden::verify::{
    Evidence, Identity, Keyless, Matcher, NotationTrust, PublicKey, Rejection, SignatureFormat,
    Signer, Subject, TrustPolicy, TrustedRoot, Verdict, verify,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

mod notation;
mod served;

/// The fixed "now" of these tests (Notation checks expiry and chain validity now).
fn now() -> Timestamp {
    "2026-06-01T00:00:00Z".parse().unwrap()
}

fn fixtures() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");
    if dir.join("SOURCES.md").is_file() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "CI=true but the signature fixtures are missing at {}",
            dir.display()
        );
    }
    eprintln!(
        "skipped: signature fixtures not found at {} (they live in the workplace's shared/fixtures)",
        dir.display()
    );
    None
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(path: &Path) -> String {
    String::from_utf8(read(path)).unwrap()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expect.json").is_file())
        .collect();
    v.sort();
    v
}

fn name(case: &Path) -> String {
    case.file_name().unwrap().to_string_lossy().into_owned()
}

fn subject(digest: &str) -> Subject {
    Subject {
        digest: digest.to_string(),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: 0,
    }
}

fn root(path: &Path) -> TrustedRoot {
    TrustedRoot::from_json(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn identity(expect: &Value) -> Identity {
    let id = &expect["identity"];
    let san = id["san_email"]
        .as_str()
        .or(id["san_uri"].as_str())
        .expect("identity SAN");
    Identity {
        issuer: id["issuer"].as_str().map(Matcher::exact),
        subject: Some(Matcher::exact(san)),
        claims: vec![],
    }
}

/// The reason a fixture's `fails_because` names, in this verifier's words.
fn reason_for(published: &str) -> Rejection {
    match published {
        "DigestMismatch" => Rejection::DigestMismatch,
        "NotASimpleSigningPayload" => Rejection::InvalidPayload,
        "NoSignatureByTrustedKey" => Rejection::NoSignatureByTrustedKey,
        "IdentityMismatch" => Rejection::IdentityMismatch,
        "SignatureExpired" => Rejection::SignatureExpired,
        // The e2e "invalid signature" layer is a text file, not an envelope.
        "IntegrityFailed" => Rejection::MalformedSignature,
        "SCTMissing" => Rejection::SctMissing,
        other => panic!("no mapping for published reason {other}"),
    }
}

/// One line per case (shown with `--nocapture`).
fn report(case: &str, v: &Verdict) {
    match v {
        Verdict::Verified(v) => eprintln!(
            "{case}: Verified {} by {} log_index={:?} signed_at={:?}",
            v.format.as_str(),
            v.by.id(),
            v.log_index,
            v.signed_at
        ),
        Verdict::Unverified(u) => eprintln!("{case}: {} ({})", u.reason, u.message),
    }
}

#[track_caller]
fn expect_verified(case: &str, v: &Verdict) -> refwarden::verify::Verified {
    match v {
        Verdict::Verified(v) => v.clone(),
        Verdict::Unverified(u) => panic!("{case}: expected to verify, got {u:?}"),
    }
}

#[track_caller]
fn expect_reason(case: &str, v: &Verdict, reason: Rejection) {
    match v {
        Verdict::Unverified(u) => {
            assert_eq!(u.reason, reason, "{case}: {}", u.message);
            assert!(!u.message.is_empty());
            assert!(
                u.message.len() < 600,
                "{case}: message too long: {}",
                u.message
            );
        }
        Verdict::Verified(v) => panic!("{case}: expected {reason}, but it verified: {v:?}"),
    }
}

/// Simple-signing layer of a case: payload + annotations (from annotations.json,
/// or built from the derived single files of the sigstore-rs cases).
fn simple_signing(case: &Path, expect: &Value) -> (Vec<u8>, BTreeMap<String, String>) {
    let files = &expect["files"];
    let f = |key: &str, default: &str| case.join(files[key].as_str().unwrap_or(default));
    let payload = read(&f("payload", "payload.json"));
    let mut ann = BTreeMap::new();
    if case.join("annotations.json").is_file() {
        ann = serde_json::from_slice(&read(&case.join("annotations.json"))).unwrap();
    } else {
        let sig = f("signature", "signature.b64");
        ann.insert(
            "dev.cosignproject.cosign/signature".into(),
            text(&sig).trim().to_string(),
        );
        let cert = f("cert", "cert.pem");
        if cert.is_file() {
            ann.insert("dev.sigstore.cosign/certificate".into(), text(&cert));
        }
        let chain = f("chain", "chain.pem");
        if chain.is_file() {
            ann.insert("dev.sigstore.cosign/chain".into(), text(&chain));
        }
        let bundle = f("bundle", "bundle.json");
        if bundle.is_file() {
            ann.insert("dev.sigstore.cosign/bundle".into(), text(&bundle));
        }
    }
    (payload, ann)
}

#[test]
fn verify_cosign_key_cases() {
    let Some(fx) = fixtures() else { return };
    let public_good = root(&fx.join("trust/public-good/trusted_root.json"));
    let mut seen = 0;
    for case in cases(&fx.join("cosign-key")) {
        let n = name(&case);
        let expect = json(&case.join("expect.json"));
        let key = PublicKey::from_pem(&text(&case.join(expect["key"].as_str().unwrap()))).unwrap();
        let (payload, ann) = simple_signing(&case, &expect);
        // The digest judged: the image's (when the case names one), else the signed one.
        let judged = expect["image_digest"]
            .as_str()
            .or(expect["subject_digest"].as_str())
            .unwrap();
        let subject = subject(judged);
        let policy = TrustPolicy {
            keys: vec![key.clone()],
            trusted_root: Some(public_good.clone()),
            ..Default::default()
        };
        let evidence = Evidence::CosignSimpleSigning {
            payload: &payload,
            annotations: &ann,
        };
        let verdict = verify(&evidence, &subject, &policy, now());
        report(&n, &verdict);
        if expect["verifies"].as_bool().unwrap() {
            let v = expect_verified(&n, &verdict);
            assert_eq!(v.format, SignatureFormat::CosignSimpleSigning);
            assert_eq!(
                v.by,
                Signer::Key {
                    fingerprint: key.fingerprint().to_string()
                }
            );
            if expect.get("rekor_key").is_some() {
                // The SET verified: the entry's index and time are reported,
                // and a policy that requires the tlog is met.
                assert!(v.log_index.is_some(), "{n}: {v:?}");
                let strict = TrustPolicy {
                    keys_require_tlog: true,
                    ..policy.clone()
                };
                expect_verified(&n, &verify(&evidence, &subject, &strict, now()));
            } else {
                let strict = TrustPolicy {
                    keys_require_tlog: true,
                    ..policy.clone()
                };
                expect_reason(
                    &n,
                    &verify(&evidence, &subject, &strict, now()),
                    Rejection::TransparencyLogProofMissing,
                );
            }
            // The same signature judged for another digest is a DigestMismatch.
            let other = self::subject(
                "sha256:0000000000000000000000000000000000000000000000000000000000000000",
            );
            expect_reason(
                &n,
                &verify(&evidence, &other, &policy, now()),
                Rejection::DigestMismatch,
            );
        } else {
            let published = expect["fails_because"].as_str().unwrap();
            expect_reason(&n, &verdict, reason_for(published));
            if published == "DigestMismatch" {
                // The judged image really is the modified manifest, and the
                // signature is valid for the digest it names.
                assert_eq!(sha256_file(&case.join("manifest.json")), judged);
                let signed = self::subject(expect["subject_digest"].as_str().unwrap());
                expect_verified(&n, &verify(&evidence, &signed, &policy, now()));
            }
        }
        seen += 1;
    }
    assert_eq!(seen, 10, "cosign-key cases");
}

#[test]
fn verify_cosign_keyless_cases() {
    let Some(fx) = fixtures() else { return };
    let mut seen = 0;
    for case in cases(&fx.join("cosign-keyless")) {
        let n = name(&case);
        let expect = json(&case.join("expect.json"));
        let (payload, ann) = simple_signing(&case, &expect);
        let trusted = root(&case.join(expect["trusted_root"].as_str().unwrap()));
        let subject = subject(expect["subject_digest"].as_str().unwrap());
        let mut keyless = Keyless::new(vec![identity(&expect)]);
        let sct_absent = expect["sct"].as_str() == Some("absent");
        if sct_absent {
            // Published: "a verifier that requires SCTs must reject it with SCTMissing".
            let strict = TrustPolicy {
                keyless: Some(keyless.clone()),
                trusted_root: Some(trusted.clone()),
                ..Default::default()
            };
            let evidence = Evidence::CosignSimpleSigning {
                payload: &payload,
                annotations: &ann,
            };
            expect_reason(
                &n,
                &verify(&evidence, &subject, &strict, now()),
                Rejection::SctMissing,
            );
            keyless.require_sct = false; // cosign --insecure-ignore-sct
        }
        let policy = TrustPolicy {
            keyless: Some(keyless),
            trusted_root: Some(trusted),
            ..Default::default()
        };
        let evidence = Evidence::CosignSimpleSigning {
            payload: &payload,
            annotations: &ann,
        };
        let verdict = verify(&evidence, &subject, &policy, now());
        report(&n, &verdict);
        if expect["verifies"].as_bool().unwrap() {
            let v = expect_verified(&n, &verdict);
            let t = expect["signed_at_integrated_time"].as_i64().unwrap();
            assert_eq!(v.signed_at, Some(Timestamp::from_second(t).unwrap()), "{n}");
            if let Some(i) = expect["rekor_log_index"].as_i64() {
                assert_eq!(v.log_index, Some(i), "{n}");
            }
            let Signer::Identity { subject: san, .. } = &v.by else {
                panic!("{n}: {v:?}")
            };
            assert_eq!(Some(san.as_str()), expect["identity"]["san_email"].as_str());
        } else {
            expect_reason(
                &n,
                &verdict,
                reason_for(expect["fails_because"].as_str().unwrap()),
            );
        }
        seen += 1;
    }
    assert_eq!(seen, 5, "cosign-keyless cases");
}

fn sha256_file(path: &Path) -> String {
    format!("sha256:{:x}", Sha256::digest(read(path)))
}

/// sigstore-conformance bundle-verify cases: `_fail` = rejected.
#[test]
fn verify_sigstore_conformance_cases() {
    let Some(fx) = fixtures() else { return };
    let dir = fx.join("sigstore/conformance");
    let mut seen = 0;
    for case in cases(&dir) {
        let n = name(&case);
        let expect = json(&case.join("expect.json"));
        let artifact = case.join(expect["artifact"].as_str().unwrap());
        let digest = sha256_file(&artifact);
        assert_eq!(digest, expect["subject_digest"].as_str().unwrap(), "{n}");
        let subject = subject(&digest);
        let trusted = root(&case.join(expect["trusted_root"].as_str().unwrap()));
        let bundle = read(&case.join("bundle.sigstore.json"));
        let must_verify = expect["verifies"].as_bool().unwrap();
        assert_eq!(must_verify, !n.ends_with("_fail"));
        let mut policy = TrustPolicy {
            trusted_root: Some(trusted),
            ..Default::default()
        };
        if let Some(key) = expect["key"].as_str() {
            match PublicKey::from_pem(&text(&case.join(key))) {
                Ok(k) => policy.keys.push(k),
                Err(e) => {
                    // managed-key-wrong-key_fail: the published key is corrupt
                    // ("...++++wrongkey=="); strict decoders reject the key itself.
                    assert!(!must_verify, "{n}: key rejected: {e}");
                    assert_eq!(n, "managed-key-wrong-key_fail");
                    seen += 1;
                    continue;
                }
            }
            policy.keys_require_tlog = true;
        } else {
            policy.keyless = Some(Keyless::new(vec![identity(&expect)]));
        }
        let verdict = verify(
            &Evidence::SigstoreBundle { json: &bundle },
            &subject,
            &policy,
            now(),
        );
        report(&n, &verdict);
        if must_verify {
            let v = expect_verified(&n, &verdict);
            assert!(v.log_index.is_some(), "{n}");
            assert!(v.signed_at.is_some(), "{n}");
        } else {
            let want = match n.as_str() {
                "bundle-from-wrong-instance_fail" => Rejection::UntrustedRoot,
                "dsse-invalid-sig_fail" | "signature-mismatch_fail" => {
                    Rejection::NoSignatureByTrustedKey
                }
                "inclusion-proof-corrupted-hash_fail" | "set-invalid-signature_fail" => {
                    Rejection::TransparencyLogProofInvalid
                }
                "wrong-material_fail" => Rejection::DigestMismatch,
                other => panic!("unexpected failing case {other}"),
            };
            expect_reason(&n, &verdict, want);
        }
        seen += 1;
    }
    assert_eq!(seen, 12, "conformance cases");
}

#[test]
fn verify_cosign_oci_attestation_bundle() {
    let Some(fx) = fixtures() else { return };
    let case = fx.join("sigstore/cosign-oci-attestation");
    let expect = json(&case.join("expect.json"));
    let bundle = read(&case.join(expect["bundle"].as_str().unwrap()));
    let predicate = expect["predicate_type"].as_str().unwrap();
    let policy = TrustPolicy {
        keyless: Some(Keyless::new(vec![identity(&expect)])),
        trusted_root: Some(root(&case.join(expect["trusted_root"].as_str().unwrap()))),
        predicate_type: Some(predicate.to_string()),
        ..Default::default()
    };
    let evidence = Evidence::SigstoreBundle { json: &bundle };
    let good = subject(expect["subject_digest"].as_str().unwrap());
    let v = expect_verified(
        "cosign-oci-attestation",
        &verify(&evidence, &good, &policy, now()),
    );
    assert_eq!(v.format, SignatureFormat::SigstoreBundleV03);
    assert_eq!(v.predicate_type.as_deref(), Some(predicate));
    // cosign's own test rejects it for another digest.
    let other = subject("sha256:1111111111111111111111111111111111111111111111111111111111111111");
    expect_reason(
        "other digest",
        &verify(&evidence, &other, &policy, now()),
        Rejection::DigestMismatch,
    );
    let wrong_type = TrustPolicy {
        predicate_type: Some("https://slsa.dev/provenance/v1".into()),
        ..policy.clone()
    };
    expect_reason(
        "other predicate",
        &verify(&evidence, &good, &wrong_type, now()),
        Rejection::PredicateTypeMismatch,
    );
    // The public-good trusted root verifies it too.
    let pg = TrustPolicy {
        trusted_root: Some(root(&fx.join("trust/public-good/trusted_root.json"))),
        ..policy.clone()
    };
    expect_verified("public-good root", &verify(&evidence, &good, &pg, now()));
}
