//! Notation JWS and COSE envelopes; parsers under arbitrary input.

use super::*;
use crate::bundles::dsse_bundle;

// ---- notation --------------------------------------------------------------

struct Pki {
    root: g::Ca,
    key: g::Key,
    leaf: Vec<u8>,
}

fn pki(
    alg: g::Alg,
    leaf_from: u64,
    leaf_to: u64,
    ekus: Vec<rcgen::ExtendedKeyUsagePurpose>,
) -> Pki {
    let root = g::Ca::root("notation-root", T0 - 86_400 * 365, T0 + 86_400 * 365 * 10);
    let key = g::Key::generate(alg);
    let leaf = g::notation_leaf(&key, &root, "Acme", leaf_from, leaf_to, ekus);
    Pki { root, key, leaf }
}

fn code_signing() -> Vec<rcgen::ExtendedKeyUsagePurpose> {
    vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning]
}

fn target(s: &Subject) -> Value {
    json!({"mediaType": s.media_type, "digest": s.digest, "size": s.size})
}

fn trust(p: &Pki, ids: &[&str]) -> TrustPolicy {
    TrustPolicy {
        notation: Some(
            NotationTrust::new(g::pem("CERTIFICATE", &p.root.der).as_bytes(), ids).unwrap(),
        ),
        ..Default::default()
    }
}

const SIGNED: &str = "2024-03-01T12:30:00Z";

fn jws(p: &Pki, s: &Subject, expiry: Option<&str>) -> Vec<u8> {
    g::notation_jws(
        &p.key,
        std::slice::from_ref(&p.leaf),
        &target(s),
        SIGNED,
        expiry,
    )
}

fn cose(p: &Pki, s: &Subject) -> Vec<u8> {
    g::notation_cose(
        &p.key,
        std::slice::from_ref(&p.leaf),
        &target(s),
        T0 as i64 + 1800,
    )
}

fn nv(jws_or_cose: &[u8], is_cose: bool, s: &Subject, p: &TrustPolicy) -> Verdict {
    let e = if is_cose {
        Evidence::NotationCose {
            envelope: jws_or_cose,
        }
    } else {
        Evidence::NotationJws {
            envelope: jws_or_cose,
        }
    };
    verify(&e, s, p, now())
}

#[test]
fn notation_jws_and_cose_verify() {
    for alg in [g::Alg::P256, g::Alg::P384, g::Alg::RsaPss] {
        let p = pki(alg, T0 - 86_400, T0 + 86_400 * 30, code_signing());
        let policy = trust(&p, &["x509.subject: C=US, ST=WA, O=Acme"]);
        let v = ok(nv(&jws(&p, &subject(), None), false, &subject(), &policy));
        assert_eq!(v.format, SignatureFormat::NotationJws);
        assert_eq!(v.signed_at, Some(SIGNED.parse().unwrap()));
        let Signer::Certificate { subject: dn, .. } = &v.by else {
            panic!("{v:?}")
        };
        assert_eq!(dn, "C=US, ST=WA, O=Acme, CN=signer");
        assert_eq!(
            ok(nv(&cose(&p, &subject()), true, &subject(), &policy)).format,
            SignatureFormat::NotationCose
        );
    }
    // No EKU at all is allowed too.
    let p = pki(g::Alg::P256, T0 - 86_400, T0 + 86_400 * 30, vec![]);
    ok(nv(
        &jws(&p, &subject(), None),
        false,
        &subject(),
        &trust(&p, &["*"]),
    ));
}

#[test]
fn verify_notation_wrong_root_identity_or_forbidden_eku() {
    let p = pki(g::Alg::P256, T0 - 86_400, T0 + 86_400 * 30, code_signing());
    let stranger = pki(g::Alg::P256, T0 - 86_400, T0 + 86_400 * 30, code_signing());
    let policy = trust(&stranger, &["*"]);
    fails(
        nv(&jws(&p, &subject(), None), false, &subject(), &policy),
        Rejection::UntrustedRoot,
    );
    fails(
        nv(&cose(&p, &subject()), true, &subject(), &policy),
        Rejection::UntrustedRoot,
    );
    let picky = trust(&p, &["x509.subject: C=US, ST=WA, O=Someone Else"]);
    fails(
        nv(&jws(&p, &subject(), None), false, &subject(), &picky),
        Rejection::IdentityMismatch,
    );
    let server = pki(
        g::Alg::P256,
        T0 - 86_400,
        T0 + 86_400 * 30,
        vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth],
    );
    fails(
        nv(
            &jws(&server, &subject(), None),
            false,
            &subject(),
            &trust(&server, &["*"]),
        ),
        Rejection::UntrustedRoot,
    );
}

#[test]
fn verify_notation_expired_certificate_or_signature() {
    // The leaf ended before the signing time.
    let p = pki(g::Alg::P256, T0 - 86_400, T0 + 600, code_signing());
    let policy = trust(&p, &["*"]);
    fails(
        nv(&jws(&p, &subject(), None), false, &subject(), &policy),
        Rejection::CertificateExpiredAtSigningTime,
    );
    fails(
        nv(&cose(&p, &subject()), true, &subject(), &policy),
        Rejection::CertificateExpiredAtSigningTime,
    );
    // Valid at the (self-asserted) signing time, expired now.
    let p = pki(g::Alg::P256, T0 - 86_400, T0 + 3600, code_signing());
    fails(
        nv(
            &jws(&p, &subject(), None),
            false,
            &subject(),
            &trust(&p, &["*"]),
        ),
        Rejection::CertificateExpired,
    );
    // io.cncf.notary.expiry in the past.
    let p = pki(g::Alg::P256, T0 - 86_400, T0 + 86_400 * 30, code_signing());
    fails(
        nv(
            &jws(&p, &subject(), Some("2024-03-01T13:00:00Z")),
            false,
            &subject(),
            &trust(&p, &["*"]),
        ),
        Rejection::SignatureExpired,
    );
    ok(nv(
        &jws(&p, &subject(), Some("2030-01-01T00:00:00Z")),
        false,
        &subject(),
        &trust(&p, &["*"]),
    ));
}

#[test]
fn verify_notation_other_descriptor_is_digest_mismatch() {
    let p = pki(g::Alg::P256, T0 - 86_400, T0 + 86_400 * 30, code_signing());
    let policy = trust(&p, &["*"]);
    let other = Subject {
        digest: other_digest(),
        ..subject()
    };
    fails(
        nv(&jws(&p, &other, None), false, &subject(), &policy),
        Rejection::DigestMismatch,
    );
    fails(
        nv(&cose(&p, &other), true, &subject(), &policy),
        Rejection::DigestMismatch,
    );
    let bigger = Subject {
        size: 99,
        ..subject()
    };
    fails(
        nv(&jws(&p, &bigger, None), false, &subject(), &policy),
        Rejection::DigestMismatch,
    );
    // A flipped signature byte.
    let mut v: Value = serde_json::from_slice(&jws(&p, &subject(), None)).unwrap();
    let sig = v["signature"].as_str().unwrap().to_string();
    let flipped = format!(
        "{}{}",
        if sig.starts_with('A') { "B" } else { "A" },
        &sig[1..]
    );
    v["signature"] = json!(flipped);
    fails(
        nv(v.to_string().as_bytes(), false, &subject(), &policy),
        Rejection::NoSignatureByTrustedKey,
    );
}

// ---- parsers never panic ---------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn verify_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let policy = TrustPolicy { notation: None, ..Default::default() };
        let ann = BTreeMap::new();
        for e in [
            Evidence::CosignSimpleSigning { payload: &bytes, annotations: &ann },
            Evidence::CosignAttestation { envelope: &bytes, annotations: &ann },
            Evidence::SigstoreBundle { json: &bytes },
            Evidence::NotationJws { envelope: &bytes },
            Evidence::NotationCose { envelope: &bytes },
        ] {
            prop_assert!(!verify(&e, &subject(), &policy, now()).is_verified());
        }
        let _ = TrustedRoot::from_json(&bytes);
        let _ = PublicKey::from_pem(&String::from_utf8_lossy(&bytes));
        let _ = PublicKey::from_spki_der(&bytes);
        let _ = NotationTrust::new(&bytes, &["*"]);
    }

    #[test]
    fn verify_mutated_bundles_never_panic(pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut w = World::new();
        let b = dsse_bundle(&mut w, &digest(), true, true);
        let policy = keyless_policy(&w, vec![identity()]);
        let mut bytes = b.json.to_string().into_bytes();
        let i = pos.index(bytes.len());
        let changed = bytes[i] != byte;
        bytes[i] = byte;
        let v = verify(&Evidence::SigstoreBundle { json: &bytes }, &subject(), &policy, now());
        // A changed byte may leave the JSON meaning intact (e.g. inside a key name
        // that is ignored); it must never make a forged signature pass.
        if changed && v.is_verified() {
            let reparsed: Value = serde_json::from_slice(&bytes).unwrap();
            let (now_env, was) = (&reparsed["dsseEnvelope"], &b.json["dsseEnvelope"]);
            // DSSE accepts both base64 alphabets, padded or not.
            let norm = |v: &Value| {
                v.as_str().map(|s| s.replace('-', "+").replace('_', "/").trim_end_matches('=').to_string())
            };
            prop_assert_eq!(norm(&now_env["payload"]), norm(&was["payload"]));
            prop_assert_eq!(&now_env["payloadType"], &was["payloadType"]);
            prop_assert_eq!(norm(&now_env["signatures"][0]["sig"]), norm(&was["signatures"][0]["sig"]));
            let material = "/verificationMaterial/certificate/rawBytes";
            prop_assert_eq!(reparsed.pointer(material), b.json.pointer(material));
        }
    }
}
