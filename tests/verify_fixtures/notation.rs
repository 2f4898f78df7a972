//! Notation fixtures: notation e2e OCI layouts and notation-go envelopes.

use super::*;

/// The signature manifests of an OCI layout whose subject is `digest`: (layer media type, blob).
fn notation_envelopes(layout: &Path, digest: &str) -> (Value, Vec<(String, Vec<u8>)>) {
    let blob = |d: &str| {
        read(
            &layout
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
        )
    };
    let index = json(&layout.join("index.json"));
    let mut subject_desc = Value::Null;
    let mut out = Vec::new();
    for m in index["manifests"].as_array().unwrap() {
        let d = m["digest"].as_str().unwrap();
        if d == digest {
            subject_desc = m.clone();
            continue;
        }
        let Ok(manifest) = serde_json::from_slice::<Value>(&blob(d)) else {
            continue;
        };
        if manifest["subject"]["digest"].as_str() != Some(digest)
            || manifest["config"]["mediaType"].as_str()
                != Some("application/vnd.cncf.notary.signature")
        {
            continue;
        }
        for layer in manifest["layers"].as_array().unwrap() {
            out.push((
                layer["mediaType"].as_str().unwrap().to_string(),
                blob(layer["digest"].as_str().unwrap()),
            ));
        }
    }
    (subject_desc, out)
}

fn notation_trust(case: &Path) -> NotationTrust {
    let policy = json(&case.join("trustpolicy.json"));
    let tp = &policy["trustPolicies"][0];
    let mut roots = Vec::new();
    for store in tp["trustStores"].as_array().unwrap() {
        let (kind, name) = store.as_str().unwrap().split_once(':').unwrap();
        let dir = case.join("truststore/x509").join(kind).join(name);
        for f in fs::read_dir(dir).unwrap() {
            roots.extend(read(&f.unwrap().path()));
            roots.push(b'\n');
        }
    }
    let ids: Vec<&str> = tp["trustedIdentities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    NotationTrust::new(&roots, &ids).unwrap()
}

fn notation_evidence<'a>(media_type: &str, blob: &'a [u8]) -> Evidence<'a> {
    match media_type {
        "application/cose" => Evidence::NotationCose { envelope: blob },
        // The manifest is a Notation signature (config type); whatever its layer
        // says, it is judged as the envelope it must be.
        _ => Evidence::NotationJws { envelope: blob },
    }
}

#[test]
fn verify_notation_e2e_cases() {
    let Some(fx) = fixtures() else { return };
    let mut seen = 0;
    for case in cases(&fx.join("notation"))
        .into_iter()
        .filter(|c| name(c).starts_with("e2e-"))
    {
        let n = name(&case);
        let expect = json(&case.join("expect.json"));
        let digest = expect["subject_digest"].as_str().unwrap();
        let (desc, envelopes) = notation_envelopes(&case.join("oci-layout"), digest);
        assert_eq!(envelopes.len(), 1, "{n}");
        let subject = Subject {
            digest: digest.to_string(),
            media_type: desc["mediaType"].as_str().unwrap().to_string(),
            size: desc["size"].as_u64().unwrap(),
        };
        let policy = TrustPolicy {
            notation: Some(notation_trust(&case)),
            ..Default::default()
        };
        let (mt, blob) = &envelopes[0];
        let verdict = verify(&notation_evidence(mt, blob), &subject, &policy, now());
        report(&n, &verdict);
        if expect["verifies"].as_bool().unwrap() {
            let v = expect_verified(&n, &verdict);
            assert_eq!(v.format, SignatureFormat::NotationJws);
            let Signer::Certificate { subject: dn, .. } = &v.by else {
                panic!("{v:?}")
            };
            assert_eq!(dn, "C=US, ST=WA, L=Seattle, O=Notary, CN=e2e");
            // Same envelope judged for another size / digest.
            let other = Subject {
                size: subject.size + 1,
                ..subject.clone()
            };
            expect_reason(
                &n,
                &verify(&notation_evidence(mt, blob), &other, &policy, now()),
                Rejection::DigestMismatch,
            );
            // A trusted identity that is not the signer's.
            let picky = TrustPolicy {
                notation: Some(
                    NotationTrust::new(
                        &read(&case.join("truststore/x509/ca/e2e/e2e.crt")),
                        &["x509.subject: C=US, ST=WA, O=Someone Else"],
                    )
                    .unwrap(),
                ),
                ..Default::default()
            };
            expect_reason(
                &n,
                &verify(&notation_evidence(mt, blob), &subject, &picky, now()),
                Rejection::IdentityMismatch,
            );
        } else {
            expect_reason(
                &n,
                &verdict,
                reason_for(expect["fails_because"].as_str().unwrap()),
            );
        }
        seen += 1;
    }
    assert_eq!(seen, 3, "notation e2e cases");
}

/// The x5c / x5chain leaf of an envelope (to trust the self-signed signer of a
/// fixture that ships no trust store).
fn envelope_leaf_pem(jws: &[u8]) -> Vec<u8> {
    let v: Value = serde_json::from_slice(jws).unwrap();
    let b64 = v["header"]["x5c"][0].as_str().unwrap();
    let mut pem = b"-----BEGIN CERTIFICATE-----\n".to_vec();
    for chunk in b64.as_bytes().chunks(64) {
        pem.extend_from_slice(chunk);
        pem.push(b'\n');
    }
    pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    pem
}

#[test]
fn verify_notation_go_envelopes() {
    let Some(fx) = fixtures() else { return };
    // notation-go internal testdata: JWS and COSE over the manifest in oci-layout/.
    let case = fx.join("notation/notation-go-oci-layout");
    let expect = json(&case.join("expect.json"));
    let digest = expect["subject_digest"].as_str().unwrap();
    let index = json(&case.join("oci-layout/index.json"));
    let desc = &index["manifests"][0];
    assert_eq!(desc["digest"].as_str(), Some(digest));
    let manifest = read(
        &case
            .join("oci-layout/blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    );
    assert_eq!(
        sha256_file(
            &case
                .join("oci-layout/blobs/sha256")
                .join(digest.trim_start_matches("sha256:"))
        ),
        digest
    );
    let subject = Subject {
        digest: digest.to_string(),
        media_type: desc["mediaType"].as_str().unwrap().to_string(),
        size: manifest.len() as u64,
    };
    let jws = read(&case.join("jws_signature.sig"));
    let cose = read(&case.join("cose_signature.sig"));
    // No published trust store holds the signer: trust its own certificate (as the
    // reference verifier does for this fixture only).
    let trust = NotationTrust::new(&envelope_leaf_pem(&jws), &["*"]).unwrap();
    let policy = TrustPolicy {
        notation: Some(trust),
        ..Default::default()
    };
    let v = expect_verified(
        "jws",
        &verify(
            &Evidence::NotationJws { envelope: &jws },
            &subject,
            &policy,
            now(),
        ),
    );
    assert_eq!(v.format, SignatureFormat::NotationJws);
    let v = expect_verified(
        "cose",
        &verify(
            &Evidence::NotationCose { envelope: &cose },
            &subject,
            &policy,
            now(),
        ),
    );
    assert_eq!(v.format, SignatureFormat::NotationCose);
    // An unrelated root: untrusted.
    let other_root = TrustPolicy {
        notation: Some(
            NotationTrust::new(
                &read(&fx.join("notation/e2e-valid-signature/truststore/x509/ca/e2e/e2e.crt")),
                &["*"],
            )
            .unwrap(),
        ),
        ..Default::default()
    };
    expect_reason(
        "cose other root",
        &verify(
            &Evidence::NotationCose { envelope: &cose },
            &subject,
            &other_root,
            now(),
        ),
        Rejection::UntrustedRoot,
    );
    // A flipped byte in the COSE signature.
    let mut tampered = cose.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    expect_reason(
        "cose tampered",
        &verify(
            &Evidence::NotationCose {
                envelope: &tampered,
            },
            &subject,
            &policy,
            now(),
        ),
        Rejection::NoSignatureByTrustedKey,
    );

    // COSE with an RFC 3161 countersignature, signed by TestTimestamp.crt.
    let case = fx.join("notation/notation-go-cose-with-timestamp");
    let expect = json(&case.join("expect.json"));
    let cose = read(&case.join(expect["signature"].as_str().unwrap()));
    let trust = NotationTrust::new(
        &read(&case.join("truststore/x509/ca/valid-trust-store/TestTimestamp.crt")),
        &["x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=alpine"],
    )
    .unwrap();
    // The subject manifest is not published: its media type and size are the
    // ones the envelope names (the digest is the published one).
    let (media_type, size) = cose_target(&cose);
    let subject = Subject {
        digest: expect["subject_digest"].as_str().unwrap().to_string(),
        media_type,
        size,
    };
    let policy = TrustPolicy {
        notation: Some(trust),
        ..Default::default()
    };
    let v = expect_verified(
        "cose with timestamp",
        &verify(
            &Evidence::NotationCose { envelope: &cose },
            &subject,
            &policy,
            now(),
        ),
    );
    assert_eq!(v.format, SignatureFormat::NotationCose);
    let other = Subject {
        digest: "sha256:2222222222222222222222222222222222222222222222222222222222222222".into(),
        ..subject.clone()
    };
    expect_reason(
        "cose other digest",
        &verify(
            &Evidence::NotationCose { envelope: &cose },
            &other,
            &policy,
            now(),
        ),
        Rejection::DigestMismatch,
    );
}

/// `targetArtifact` media type and size of a COSE envelope's payload (found by
/// text search in the CBOR: the payload is a JSON byte string).
fn cose_target(cose: &[u8]) -> (String, u64) {
    let start = cose
        .windows(17)
        .position(|w| w == b"{\"targetArtifact\"")
        .expect("payload");
    let mut depth = 0;
    let mut end = start;
    for (i, b) in cose[start..].iter().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    end = start + i + 1;
                    break;
                }
            }
            _ => {}
        }
    }
    let v: Value = serde_json::from_slice(&cose[start..end]).unwrap();
    (
        v["targetArtifact"]["mediaType"]
            .as_str()
            .unwrap()
            .to_string(),
        v["targetArtifact"]["size"].as_u64().unwrap(),
    )
}
