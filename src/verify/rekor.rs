//! Rekor transparency-log entries: SET (JCS), RFC 6962 inclusion proofs, signed-note
//! checkpoints, and the check that an entry's body names the verified signature.

use jiff::Timestamp;
use serde_json::Value;

use super::encoding::{b64_encode, b64_std, from_unix, pem_blocks, sha256};
use super::keys::{KeyAlgorithm, PublicKey};
use super::trusted_root::{LogKey, TrustedRoot};
use super::{Outcome, Rejection, fail};

/// An RFC 6962 inclusion proof with its checkpoint.
#[derive(Clone, Debug, Default)]
pub(crate) struct InclusionProof {
    /// Index of the leaf in this log shard (not the global `logIndex`).
    pub(crate) log_index: i64,
    pub(crate) root_hash: Vec<u8>,
    pub(crate) tree_size: i64,
    pub(crate) hashes: Vec<Vec<u8>>,
    pub(crate) checkpoint: Option<String>,
}

/// One transparency-log entry, from a bundle or from cosign's bundle annotation.
#[derive(Clone, Debug, Default)]
pub(crate) struct TlogEntry {
    pub(crate) log_index: i64,
    pub(crate) log_id: Vec<u8>,
    pub(crate) integrated_time: i64,
    /// The canonicalized entry body (JSON bytes).
    pub(crate) body: Vec<u8>,
    /// Signed entry timestamp (inclusion promise).
    pub(crate) set: Option<Vec<u8>>,
    pub(crate) proof: Option<InclusionProof>,
    /// `kindVersion` as the bundle claims it.
    pub(crate) kind_version: Option<(String, String)>,
}

/// What a verified entry tells.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TlogVerified {
    pub(crate) log_index: i64,
    /// integratedTime, only when a SET over it verified.
    pub(crate) integrated_time: Option<Timestamp>,
}

/// The key that verified the signature, as the entry body must name it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum SignerKey<'a> {
    /// DER certificate.
    Cert(&'a [u8]),
    Key(&'a PublicKey),
}

/// What the body must contain.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Expected<'a> {
    /// hashedrekord / rekord: sha256 of the signed bytes, the raw signature.
    Hashed {
        digest: [u8; 32],
        signature: &'a [u8],
        verifier: SignerKey<'a>,
    },
    /// dsse / intoto: the DSSE payload (decoded), the raw signature.
    Dsse {
        payload: &'a [u8],
        signature: &'a [u8],
        verifier: SignerKey<'a>,
    },
}

/// Parses cosign's `dev.sigstore.cosign/bundle` annotation (Rekor SET bundle).
pub(crate) fn entry_from_cosign_bundle(text: &str) -> Result<TlogEntry, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let set = v
        .get("SignedEntryTimestamp")
        .and_then(Value::as_str)
        .and_then(b64_std)
        .ok_or("SignedEntryTimestamp missing or not base64")?;
    let p = v.get("Payload").ok_or("Payload missing")?;
    let body = p
        .get("body")
        .and_then(Value::as_str)
        .and_then(b64_std)
        .ok_or("Payload.body missing or not base64")?;
    let integrated_time = p
        .get("integratedTime")
        .and_then(Value::as_i64)
        .ok_or("Payload.integratedTime missing")?;
    let log_index = p
        .get("logIndex")
        .and_then(Value::as_i64)
        .ok_or("Payload.logIndex missing")?;
    let log_id = p
        .get("logID")
        .and_then(Value::as_str)
        .and_then(|h| hex::decode(h).ok())
        .ok_or("Payload.logID missing or not hex")?;
    Ok(TlogEntry {
        log_index,
        log_id,
        integrated_time,
        body,
        set: Some(set),
        proof: None,
        kind_version: None,
    })
}

fn invalid<T>(message: impl Into<String>) -> Outcome<T> {
    fail(Rejection::TransparencyLogProofInvalid, message)
}

/// Verifies every piece of the entry that is present (SET, inclusion proof +
/// checkpoint) with the trusted root's log key named by the entry's log id, and
/// that the body names what was verified. `need_proof`: an inclusion proof is
/// required (bundles that claim v0.2 or later).
pub(crate) fn verify_entry(
    entry: &TlogEntry,
    root: &TrustedRoot,
    expected: &Expected<'_>,
    need_proof: bool,
) -> Outcome<TlogVerified> {
    if let Some((kind, version)) = &entry.kind_version
        && version == "0.0.2"
        && (kind == "hashedrekord" || kind == "dsse")
    {
        return fail(
            Rejection::UnsupportedFormat,
            format!(
                "Rekor v2 entry ({kind} {version}, log index {}): Rekor v2 needs an RFC 3161 timestamp, which this verifier does not check",
                entry.log_index
            ),
        );
    }
    let Some(log) = root.tlog_by_id(&entry.log_id) else {
        return invalid(format!(
            "the entry's log id {} is not a transparency log of the trusted root",
            hex::encode(&entry.log_id)
        ));
    };
    if entry.set.is_none() && entry.proof.is_none() {
        return fail(
            Rejection::TransparencyLogProofMissing,
            format!(
                "tlog entry {} has neither a signed entry timestamp nor an inclusion proof",
                entry.log_index
            ),
        );
    }
    if need_proof && entry.proof.is_none() {
        return fail(
            Rejection::TransparencyLogProofMissing,
            format!(
                "tlog entry {} has no inclusion proof (required from bundle v0.2 on)",
                entry.log_index
            ),
        );
    }
    check_body(&entry.body, expected)
        .or_else(|m| invalid(format!("tlog entry {}: {m}", entry.log_index)))?;
    if let Some((kind, version)) = &entry.kind_version {
        let body: Value = serde_json::from_slice(&entry.body).unwrap_or(Value::Null);
        let (bk, bv) = (
            body.get("kind").and_then(Value::as_str),
            body.get("apiVersion").and_then(Value::as_str),
        );
        if bk != Some(kind.as_str()) || bv != Some(version.as_str()) {
            return invalid(format!(
                "kindVersion {kind} {version} does not match the body ({} {})",
                bk.unwrap_or("?"),
                bv.unwrap_or("?")
            ));
        }
    }
    let mut integrated_time = None;
    if let Some(set) = &entry.set {
        verify_set(entry, log, set)?;
        let t = from_unix(entry.integrated_time).ok_or_else(|| {
            super::Unverified::new(
                Rejection::TransparencyLogProofInvalid,
                "integratedTime out of range",
            )
        })?;
        if !log.valid.contains(t) {
            return invalid(format!(
                "integratedTime {t} is outside the validity of log {}",
                log.base_url
            ));
        }
        integrated_time = Some(t);
    }
    if let Some(proof) = &entry.proof {
        verify_proof(entry, proof, log)?;
    }
    Ok(TlogVerified {
        log_index: entry.log_index,
        integrated_time,
    })
}

fn verify_set(entry: &TlogEntry, log: &LogKey, set: &[u8]) -> Outcome<()> {
    let payload = serde_json::json!({
        "body": b64_encode(&entry.body),
        "integratedTime": entry.integrated_time,
        "logID": hex::encode(&entry.log_id),
        "logIndex": entry.log_index,
    });
    let Ok(canonical) = serde_json_canonicalizer::to_vec(&payload) else {
        return invalid("cannot canonicalize the SET payload");
    };
    if !log.key.verify_sigstore(&canonical, set) {
        return invalid(format!(
            "signed entry timestamp of entry {} does not verify with the key of {}",
            entry.log_index, log.base_url
        ));
    }
    Ok(())
}

fn verify_proof(entry: &TlogEntry, proof: &InclusionProof, log: &LogKey) -> Outcome<()> {
    let (Ok(index), Ok(size)) = (
        u64::try_from(proof.log_index),
        u64::try_from(proof.tree_size),
    ) else {
        return invalid("inclusion proof with a negative index or tree size");
    };
    let mut leaf = vec![0u8];
    leaf.extend_from_slice(&entry.body);
    let leaf_hash = sha256(&leaf);
    let Some(root) = root_from_inclusion_proof(index, size, leaf_hash, &proof.hashes) else {
        return invalid(format!(
            "inclusion proof for index {index} in a tree of {size} has the wrong shape"
        ));
    };
    if root.as_slice() != proof.root_hash.as_slice() {
        return invalid(format!(
            "inclusion proof of entry {} does not lead to its root hash",
            entry.log_index
        ));
    }
    let Some(text) = &proof.checkpoint else {
        return invalid("inclusion proof without a checkpoint");
    };
    let cp = Checkpoint::parse(text).map_err(|m| {
        super::Unverified::new(
            Rejection::TransparencyLogProofInvalid,
            format!("checkpoint: {m}"),
        )
    })?;
    if !cp.signed_by(log) {
        return invalid(format!(
            "checkpoint {:?} is not signed by the key of {}",
            super::encoding::clip(&cp.origin),
            log.base_url
        ));
    }
    if cp.size != size || cp.root_hash != proof.root_hash {
        return invalid("checkpoint's tree size or root hash differs from the inclusion proof's");
    }
    Ok(())
}

/// RFC 9162 §2.1.3.2: the root implied by an inclusion proof, or `None` when the
/// proof has the wrong length for (index, size).
pub(crate) fn root_from_inclusion_proof(
    index: u64,
    size: u64,
    leaf_hash: [u8; 32],
    proof: &[Vec<u8>],
) -> Option<[u8; 32]> {
    if index >= size {
        return None;
    }
    let node = |l: &[u8], r: &[u8]| {
        let mut buf = Vec::with_capacity(65);
        buf.push(1u8);
        buf.extend_from_slice(l);
        buf.extend_from_slice(r);
        sha256(&buf)
    };
    let (mut f, mut s) = (index, size - 1);
    let mut r = leaf_hash;
    for p in proof {
        if p.len() != 32 || s == 0 {
            return None;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    (s == 0).then_some(r)
}

/// A C2SP signed-note checkpoint.
#[derive(Debug)]
pub(crate) struct Checkpoint {
    pub(crate) origin: String,
    pub(crate) size: u64,
    pub(crate) root_hash: Vec<u8>,
    /// The signed text: every body line including the last `\n`.
    text: String,
    /// (name, key hint, signature)
    signatures: Vec<(String, [u8; 4], Vec<u8>)>,
}

impl Checkpoint {
    pub(crate) fn parse(note: &str) -> Result<Self, String> {
        let split = note
            .find("\n\n")
            .ok_or("no blank line before the signatures")?;
        let text = &note[..split + 1];
        let mut lines = text.lines();
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or("no origin line")?;
        let size = lines
            .next()
            .and_then(|l| l.parse::<u64>().ok())
            .ok_or("tree size line is not a number")?;
        let root_hash = lines
            .next()
            .and_then(b64_std)
            .ok_or("root hash line is not base64")?;
        let mut signatures = Vec::new();
        for line in note[split + 2..].lines().filter(|l| !l.is_empty()) {
            let rest = line
                .strip_prefix("\u{2014} ")
                .ok_or("signature line does not start with '— '")?;
            let (name, sig) = rest
                .rsplit_once(' ')
                .ok_or("signature line without a signature")?;
            let raw = b64_std(sig).ok_or("signature is not base64")?;
            if raw.len() < 5 {
                return Err("signature too short".into());
            }
            let hint = [raw[0], raw[1], raw[2], raw[3]];
            signatures.push((name.to_string(), hint, raw[4..].to_vec()));
        }
        if signatures.is_empty() {
            return Err("no signature line".into());
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root_hash,
            text: text.to_string(),
            signatures,
        })
    }

    /// True when a signature line whose key hint names `log`'s key verifies.
    pub(crate) fn signed_by(&self, log: &LogKey) -> bool {
        self.signatures.iter().any(|(name, hint, sig)| {
            key_hint(&log.key, name) == *hint && log.key.verify_sigstore(self.text.as_bytes(), sig)
        })
    }
}

/// The signed-note key hint: SHA-256(PKIX DER)[:4] for Rekor v1 (ECDSA) keys;
/// for Ed25519, C2SP's SHA-256(name || 0x0A || 0x01 || key)[:4].
pub(crate) fn key_hint(key: &PublicKey, name: &str) -> [u8; 4] {
    let h = if key.algorithm() == KeyAlgorithm::Ed25519 {
        let mut buf = name.as_bytes().to_vec();
        buf.push(0x0a);
        buf.push(0x01);
        buf.extend_from_slice(&key.spki_der()[key.spki_der().len().saturating_sub(32)..]);
        sha256(&buf)
    } else {
        sha256(key.spki_der())
    };
    [h[0], h[1], h[2], h[3]]
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

/// Does the body's verifier (base64 PEM of a certificate or key) equal ours?
fn verifier_matches(b64_pem: Option<&str>, verifier: SignerKey<'_>) -> bool {
    let Some(pem) = b64_pem
        .and_then(b64_std)
        .and_then(|p| String::from_utf8(p).ok())
    else {
        return false;
    };
    match verifier {
        SignerKey::Cert(der) => pem_blocks(&pem, &["CERTIFICATE"])
            .map(|b| b.len() == 1 && b[0] == der)
            .unwrap_or(false),
        SignerKey::Key(key) => PublicKey::from_pem(&pem)
            .map(|k| k == *key)
            .unwrap_or(false),
    }
}

fn hash_matches(v: &Value, path: &[&str], digest: &[u8; 32]) -> bool {
    let mut alg = path.to_vec();
    alg.push("algorithm");
    let mut val = path.to_vec();
    val.push("value");
    str_at(v, &alg) == Some("sha256") && str_at(v, &val) == Some(hex::encode(digest).as_str())
}

/// Checks that the entry body names the signature, key and digest verified.
pub(crate) fn check_body(body: &[u8], expected: &Expected<'_>) -> Result<(), String> {
    let v: Value = serde_json::from_slice(body).map_err(|_| "body is not JSON".to_string())?;
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    let version = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    match (kind, version, expected) {
        (
            "hashedrekord" | "rekord",
            "0.0.1",
            Expected::Hashed {
                digest,
                signature,
                verifier,
            },
        ) => {
            if !hash_matches(&v, &["spec", "data", "hash"], digest) {
                return Err(format!(
                    "{kind} body hashes other data than the signed payload"
                ));
            }
            let sig = str_at(&v, &["spec", "signature", "content"]).and_then(b64_std);
            if sig.as_deref() != Some(*signature) {
                return Err(format!("{kind} body holds another signature"));
            }
            if !verifier_matches(
                str_at(&v, &["spec", "signature", "publicKey", "content"]),
                *verifier,
            ) {
                return Err(format!("{kind} body names another key or certificate"));
            }
            Ok(())
        }
        (
            "dsse",
            "0.0.1",
            Expected::Dsse {
                payload,
                signature,
                verifier,
            },
        ) => {
            if !hash_matches(&v, &["spec", "payloadHash"], &sha256(payload)) {
                return Err("dsse body hashes another payload".into());
            }
            let found = any_at(&v, "/spec/signatures", |s| {
                s.get("signature")
                    .and_then(Value::as_str)
                    .and_then(b64_std)
                    .as_deref()
                    == Some(*signature)
                    && verifier_matches(s.get("verifier").and_then(Value::as_str), *verifier)
            });
            if !found {
                return Err("dsse body does not hold this signature and verifier".into());
            }
            Ok(())
        }
        (
            "intoto",
            "0.0.2",
            Expected::Dsse {
                payload,
                signature,
                verifier,
            },
        ) => {
            if !hash_matches(&v, &["spec", "content", "payloadHash"], &sha256(payload)) {
                return Err("intoto body hashes another payload".into());
            }
            let found = any_at(&v, "/spec/content/envelope/signatures", |s| {
                // intoto 0.0.2 base64-encodes the envelope's (already base64) signature.
                let once = s.get("sig").and_then(Value::as_str).and_then(b64_std);
                let twice = once
                    .as_deref()
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .and_then(b64_std);
                (once.as_deref() == Some(*signature) || twice.as_deref() == Some(*signature))
                    && verifier_matches(s.get("publicKey").and_then(Value::as_str), *verifier)
            });
            if !found {
                return Err("intoto body does not hold this signature and key".into());
            }
            Ok(())
        }
        _ => Err(format!(
            "body of kind {:?} version {:?} does not fit this signature",
            super::encoding::clip(kind),
            super::encoding::clip(version)
        )),
    }
}

/// True when an element of the array at `pointer` in `v` satisfies `holds` (no array: false).
fn any_at(v: &Value, pointer: &str, holds: impl Fn(&Value) -> bool) -> bool {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .is_some_and(|items| items.iter().any(holds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: u8) -> [u8; 32] {
        sha256(&[0, i])
    }

    fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
        if leaves.len() == 1 {
            return leaves[0];
        }
        let k = leaves.len().next_power_of_two() / 2;
        let mut buf = vec![1u8];
        buf.extend_from_slice(&mth(&leaves[..k]));
        buf.extend_from_slice(&mth(&leaves[k..]));
        sha256(&buf)
    }

    fn path(m: usize, leaves: &[[u8; 32]]) -> Vec<Vec<u8>> {
        if leaves.len() == 1 {
            return vec![];
        }
        let k = leaves.len().next_power_of_two() / 2;
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(mth(&leaves[k..]).to_vec());
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(mth(&leaves[..k]).to_vec());
            p
        }
    }

    #[test]
    fn inclusion_proofs_of_every_leaf_of_small_trees() {
        for n in 1..=17usize {
            let leaves: Vec<_> = (0..n as u8).map(leaf).collect();
            let root = mth(&leaves);
            for m in 0..n {
                let p = path(m, &leaves);
                assert_eq!(
                    root_from_inclusion_proof(m as u64, n as u64, leaves[m], &p),
                    Some(root),
                    "n={n} m={m}"
                );
                if !p.is_empty() {
                    let mut bad = p.clone();
                    bad[0][0] ^= 1;
                    assert_ne!(
                        root_from_inclusion_proof(m as u64, n as u64, leaves[m], &bad),
                        Some(root)
                    );
                    assert_eq!(
                        root_from_inclusion_proof(m as u64, n as u64, leaves[m], &p[1..]),
                        None
                    );
                }
            }
        }
        assert_eq!(root_from_inclusion_proof(3, 3, leaf(0), &[]), None);
    }

    #[test]
    fn checkpoint_parse() {
        let note = "example.com - 1\n2\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u{2014} example.com AQIDBAUG\n";
        let cp = Checkpoint::parse(note).unwrap();
        assert_eq!(cp.size, 2);
        assert_eq!(
            cp.text,
            "example.com - 1\n2\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
        );
        assert_eq!(cp.signatures[0].1, [1, 2, 3, 4]);
        assert!(Checkpoint::parse("a\n1\n").is_err());
        assert!(Checkpoint::parse("a\nx\nAA==\n\n\u{2014} a AQIDBAUG\n").is_err());
    }
}
