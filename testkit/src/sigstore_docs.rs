//! JSON documents built from generated material: Rekor bodies, cosign bundle
//! annotations, bundle tlog entries, DSSE envelopes, in-toto statements,
//! trusted_root.json and Notation JWS/COSE envelopes (over [`crate::sigstore_gen`]; used by
//! tests/verify_generated and tests/verify_cli).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;

use crate::sigstore_gen::{Alg, Entry, Key, b64, sha256};

/// A `hashedrekord` 0.0.1 body.
pub fn hashedrekord(digest: &[u8; 32], sig: &[u8], verifier_pem: &str) -> Vec<u8> {
    format!(
        r#"{{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{{"data":{{"hash":{{"algorithm":"sha256","value":"{}"}}}},"signature":{{"content":"{}","publicKey":{{"content":"{}"}}}}}}}}"#,
        hex::encode(digest),
        b64(sig),
        b64(verifier_pem.as_bytes())
    )
    .into_bytes()
}

/// A `dsse` 0.0.1 body.
pub fn dsse_body(payload: &[u8], sig: &[u8], verifier_pem: &str) -> Vec<u8> {
    format!(
        r#"{{"apiVersion":"0.0.1","kind":"dsse","spec":{{"envelopeHash":{{"algorithm":"sha256","value":"{}"}},"payloadHash":{{"algorithm":"sha256","value":"{}"}},"signatures":[{{"signature":"{}","verifier":"{}"}}]}}}}"#,
        hex::encode(sha256(b"envelope")),
        hex::encode(sha256(payload)),
        b64(sig),
        b64(verifier_pem.as_bytes())
    )
    .into_bytes()
}

/// cosign's `dev.sigstore.cosign/bundle` annotation for an entry.
pub fn cosign_bundle_annotation(e: &Entry) -> String {
    serde_json::json!({
        "SignedEntryTimestamp": b64(&e.set),
        "Payload": {
            "body": b64(&e.body),
            "integratedTime": e.integrated_time,
            "logIndex": e.log_index,
            "logID": hex::encode(e.log_id),
        }
    })
    .to_string()
}

/// A bundle `tlogEntries[]` element; `set`/`proof` choose what it carries.
pub fn bundle_tlog_entry(e: &Entry, kind: &str, set: bool, proof: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "logIndex": e.log_index.to_string(),
        "logId": {"keyId": b64(&e.log_id)},
        "kindVersion": {"kind": kind, "version": "0.0.1"},
        "integratedTime": e.integrated_time.to_string(),
        "canonicalizedBody": b64(&e.body),
    });
    if set {
        v["inclusionPromise"] = serde_json::json!({"signedEntryTimestamp": b64(&e.set)});
    }
    if proof {
        v["inclusionProof"] = serde_json::json!({
            "logIndex": e.tree_index.to_string(),
            "rootHash": b64(&e.root),
            "treeSize": e.tree_size.to_string(),
            "hashes": e.hashes.iter().map(|h| b64(h)).collect::<Vec<_>>(),
            "checkpoint": {"envelope": e.checkpoint},
        });
    }
    v
}

/// A cosign simple-signing payload for `digest`.
pub fn simple_signing_payload(digest: &str) -> Vec<u8> {
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"registry.test/app"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
    )
    .into_bytes()
}

/// An in-toto v1 statement about `digest`.
pub fn statement(digest: &str, predicate_type: &str) -> Vec<u8> {
    serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "registry.test/app", "digest": {"sha256": digest.trim_start_matches("sha256:")}}],
        "predicateType": predicate_type,
        "predicate": {},
    })
    .to_string()
    .into_bytes()
}

/// DSSE PAE.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A DSSE envelope JSON value.
pub fn envelope(payload_type: &str, payload: &[u8], sig: &[u8]) -> serde_json::Value {
    serde_json::json!({"payloadType": payload_type, "payload": b64(payload), "signatures": [{"keyid": "", "sig": b64(sig)}]})
}

/// A certificate authority of a trusted root: chain (issuing first, root last),
/// validFor start and end.
pub type CaEntry<'a> = (Vec<Vec<u8>>, &'a str, Option<&'a str>);

/// A trusted_root.json: CAs, tlogs, ctlogs.
pub fn trusted_root(cas: &[CaEntry<'_>], tlogs: &[&Key], ctlogs: &[&Key]) -> Vec<u8> {
    let log = |k: &&Key, url: &str| {
        serde_json::json!({
            "baseUrl": url,
            "hashAlgorithm": "SHA2_256",
            "publicKey": {"rawBytes": b64(&k.spki_der()), "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": {"start": "2020-01-01T00:00:00Z"}},
            "logId": {"keyId": b64(&sha256(&k.spki_der()))},
        })
    };
    let cas: Vec<_> = cas
        .iter()
        .map(|(chain, start, end)| {
            let mut valid = serde_json::json!({"start": start});
            if let Some(e) = end {
                valid["end"] = serde_json::json!(e);
            }
            serde_json::json!({
                "subject": {"organization": "refwarden-test", "commonName": "test"},
                "uri": "https://fulcio.test",
                "certChain": {"certificates": chain.iter().map(|c| serde_json::json!({"rawBytes": b64(c)})).collect::<Vec<_>>()},
                "validFor": valid,
            })
        })
        .collect();
    serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": tlogs.iter().map(|k| log(k, "https://rekor.test")).collect::<Vec<_>>(),
        "ctlogs": ctlogs.iter().map(|k| log(k, "https://ctfe.test")).collect::<Vec<_>>(),
        "certificateAuthorities": cas,
    })
    .to_string()
    .into_bytes()
}

/// A Notation JWS envelope over `{"targetArtifact": target}` by `key` with `chain` (leaf first).
pub fn notation_jws(
    key: &Key,
    chain: &[Vec<u8>],
    target: &serde_json::Value,
    signing_time: &str,
    expiry: Option<&str>,
) -> Vec<u8> {
    let mut protected = serde_json::json!({
        "alg": key.jws_alg(),
        "crit": ["io.cncf.notary.signingScheme"],
        "cty": "application/vnd.cncf.notary.payload.v1+json",
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": signing_time,
    });
    if let Some(e) = expiry {
        protected["io.cncf.notary.expiry"] = serde_json::json!(e);
        protected["crit"] =
            serde_json::json!(["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"]);
    }
    let p = B64URL.encode(protected.to_string());
    let payload = B64URL.encode(serde_json::json!({"targetArtifact": target}).to_string());
    let sig = key.sign_fixed(format!("{p}.{payload}").as_bytes());
    serde_json::json!({
        "payload": payload,
        "protected": p,
        "header": {"x5c": chain.iter().map(|c| b64(c)).collect::<Vec<_>>(), "io.cncf.notary.signingAgent": "refwarden-test"},
        "signature": B64URL.encode(sig),
    })
    .to_string()
    .into_bytes()
}

/// A Notation COSE_Sign1 (tagged) envelope.
pub fn notation_cose(
    key: &Key,
    chain: &[Vec<u8>],
    target: &serde_json::Value,
    signing_time: i64,
) -> Vec<u8> {
    use coset::cbor::Value as C;
    use coset::{CoseSign1Builder, HeaderBuilder, Label, TaggedCborSerializable as _, iana};
    let alg = match key.alg {
        Alg::P256 => iana::Algorithm::ES256,
        Alg::P384 => iana::Algorithm::ES384,
        Alg::P521 => iana::Algorithm::ES512,
        _ => iana::Algorithm::PS256,
    };
    let mut protected = HeaderBuilder::new()
        .algorithm(alg)
        .content_type("application/vnd.cncf.notary.payload.v1+json".to_string())
        .text_value(
            "io.cncf.notary.signingScheme".to_string(),
            C::Text("notary.x509".into()),
        )
        .text_value(
            "io.cncf.notary.signingTime".to_string(),
            C::Tag(1, Box::new(C::Integer(signing_time.into()))),
        )
        .build();
    protected.crit = vec![coset::RegisteredLabelWithPrivate::Text(
        "io.cncf.notary.signingScheme".into(),
    )];
    let mut unprotected = HeaderBuilder::new().build();
    unprotected.rest.push((
        Label::Int(33),
        C::Array(chain.iter().map(|c| C::Bytes(c.clone())).collect()),
    ));
    let payload = serde_json::json!({"targetArtifact": target})
        .to_string()
        .into_bytes();
    CoseSign1Builder::new()
        .protected(protected)
        .unprotected(unprotected)
        .payload(payload)
        .create_signature(b"", |data| key.sign_fixed(data))
        .build()
        .to_tagged_vec()
        .unwrap()
}

/// A keyless world as a test Fulcio, CT log and Rekor give it: a root and an intermediate CA,
/// a CT log key, a transparency log, and one signer whose Fulcio-like leaf names `email` and
/// `issuer` (valid from `t0` for ten minutes, with an SCT).
pub struct Keyless {
    pub ca: crate::sigstore_gen::Ca,
    pub inter: crate::sigstore_gen::Ca,
    pub ct: Key,
    pub log: crate::sigstore_gen::Log,
    pub signer: Key,
    pub leaf: Vec<u8>,
    pub t0: u64,
}

/// cosign's signature predicate (`cosign sign` of cosign 3 writes a DSSE bundle with it).
pub const COSIGN_SIGN_V1: &str = "https://sigstore.dev/cosign/sign/v1";

impl Keyless {
    pub fn new(email: &str, issuer: &str, t0: u64) -> Keyless {
        use crate::sigstore_gen::{Ca, LeafSpec, Log, fulcio_leaf};
        let ca = Ca::root("fulcio-root", t0 - 86_400 * 365, t0 + 86_400 * 365 * 5);
        let inter = ca.intermediate(
            "fulcio-intermediate",
            t0 - 86_400 * 365,
            t0 + 86_400 * 365 * 5,
        );
        let ct = Key::generate(Alg::P256);
        let log = Log::new("rekor.test - 42");
        let signer = Key::generate(Alg::P256);
        let leaf = fulcio_leaf(
            &LeafSpec {
                email: Some(email.into()),
                uri: None,
                issuer: Some(issuer.into()),
                claims: vec![],
                not_before: t0,
                not_after: t0 + 600,
                sct: true,
                code_signing: true,
            },
            &signer,
            &inter,
            &ct,
        );
        Keyless {
            ca,
            inter,
            ct,
            log,
            signer,
            leaf,
            t0,
        }
    }

    /// The trusted_root.json naming this world's CAs, Rekor and CT log.
    pub fn trusted_root(&self) -> Vec<u8> {
        trusted_root(
            &[(
                vec![self.inter.der.clone(), self.ca.der.clone()],
                "2020-01-01T00:00:00Z",
                None,
            )],
            &[&self.log.key],
            &[&self.ct],
        )
    }

    /// A v0.3 bundle as cosign 3 writes it for `digest`: a DSSE `sign/v1` statement signed by
    /// the leaf's key, logged (SET and inclusion proof) a minute after `t0`.
    pub fn cosign3_bundle(&mut self, digest: &str) -> (Vec<u8>, Entry) {
        let statement = statement(digest, COSIGN_SIGN_V1);
        let payload_type = "application/vnd.in-toto+json";
        let sig = self.signer.sign(&pae(payload_type, &statement));
        let entry = self.log.append(
            dsse_body(
                &statement,
                &sig,
                &crate::sigstore_gen::pem("CERTIFICATE", &self.leaf),
            ),
            self.t0 + 60,
        );
        let bundle = serde_json::json!({
            "mediaType": crate::media::SIGSTORE_BUNDLE_V03,
            "verificationMaterial": {
                "certificate": {"rawBytes": b64(&self.leaf)},
                "tlogEntries": [bundle_tlog_entry(&entry, "dsse", true, true)],
            },
            "dsseEnvelope": envelope(payload_type, &statement, &sig),
        })
        .to_string()
        .into_bytes();
        (bundle, entry)
    }
}
