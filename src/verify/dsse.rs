//! DSSE envelopes (PAE) and the in-toto statements they carry.

use serde_json::Value;

use super::encoding::{b64_any, clip};
use super::{Outcome, Rejection, Subject, Unverified, fail};

pub(crate) const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A parsed DSSE envelope (`{payload, payloadType, signatures[{keyid, sig}]}`).
#[derive(Clone, Debug)]
pub(crate) struct Envelope {
    pub(crate) payload_type: String,
    pub(crate) payload: Vec<u8>,
    pub(crate) signatures: Vec<Vec<u8>>,
}

impl Envelope {
    pub(crate) fn from_value(v: &Value) -> Result<Self, String> {
        let payload_type = v
            .get("payloadType")
            .and_then(Value::as_str)
            .ok_or("DSSE envelope without payloadType")?
            .to_string();
        let payload = v
            .get("payload")
            .and_then(Value::as_str)
            .and_then(b64_any)
            .ok_or("DSSE payload missing or not base64")?;
        let sigs = v
            .get("signatures")
            .and_then(Value::as_array)
            .ok_or("DSSE envelope without signatures")?;
        let mut signatures = Vec::with_capacity(sigs.len());
        for (i, s) in sigs.iter().enumerate() {
            let sig = s
                .get("sig")
                .and_then(Value::as_str)
                .and_then(b64_any)
                .ok_or_else(|| format!("DSSE signatures[{i}].sig missing or not base64"))?;
            signatures.push(sig);
        }
        if signatures.is_empty() {
            return Err("DSSE envelope has no signature".into());
        }
        Ok(Envelope {
            payload_type,
            payload,
            signatures,
        })
    }

    pub(crate) fn parse(json: &[u8]) -> Result<Self, String> {
        let v: Value =
            serde_json::from_slice(json).map_err(|e| format!("DSSE envelope is not JSON: {e}"))?;
        Self::from_value(&v)
    }

    /// The bytes that are signed.
    pub(crate) fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    /// The in-toto statement the envelope carries. A payloadType other than in-toto's is
    /// refused as "DSSE payloadType is X, `wanted` application/vnd.in-toto+json".
    pub(crate) fn in_toto_statement(&self, wanted: &str) -> Outcome<Statement> {
        if self.payload_type != IN_TOTO_PAYLOAD_TYPE {
            return fail(
                Rejection::InvalidPayload,
                format!(
                    "DSSE payloadType is {:?}, {wanted} {IN_TOTO_PAYLOAD_TYPE}",
                    clip(&self.payload_type)
                ),
            );
        }
        parse_statement(&self.payload).map_err(|m| Unverified::new(Rejection::InvalidPayload, m))
    }
}

/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`.
pub(crate) fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
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

/// The parts of an in-toto statement that are judged.
#[derive(Clone, Debug)]
pub(crate) struct Statement {
    pub(crate) predicate_type: String,
    /// Lower-case hex sha256 digests of the subjects.
    pub(crate) sha256_subjects: Vec<String>,
}

pub(crate) fn parse_statement(payload: &[u8]) -> Result<Statement, String> {
    let v: Value =
        serde_json::from_slice(payload).map_err(|_| "the DSSE payload is not JSON".to_string())?;
    let t = v.get("_type").and_then(Value::as_str).unwrap_or("");
    if !t.starts_with("https://in-toto.io/Statement/") {
        return Err(format!(
            "the DSSE payload is not an in-toto statement (_type {:?})",
            clip(t)
        ));
    }
    let predicate_type = v
        .get("predicateType")
        .and_then(Value::as_str)
        .ok_or("in-toto statement without predicateType")?
        .to_string();
    let subjects = v
        .get("subject")
        .and_then(Value::as_array)
        .ok_or("in-toto statement without subject")?;
    let sha256_subjects = subjects
        .iter()
        .filter_map(|s| s.pointer("/digest/sha256").and_then(Value::as_str))
        .map(str::to_ascii_lowercase)
        .collect();
    Ok(Statement {
        predicate_type,
        sha256_subjects,
    })
}

/// The statement must name the subject's sha256 and, when asked, the predicate type.
pub(crate) fn check_statement(
    st: &Statement,
    subject: &Subject,
    predicate_type: Option<&str>,
) -> Outcome<()> {
    let want = subject
        .digest
        .strip_prefix("sha256:")
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if !st.sha256_subjects.contains(&want) {
        let seen = st
            .sha256_subjects
            .iter()
            .take(3)
            .map(|d| format!("sha256:{}", clip(d)))
            .collect::<Vec<_>>()
            .join(", ");
        return fail(
            Rejection::DigestMismatch,
            format!(
                "the statement's subjects ({}) do not include {}",
                if seen.is_empty() {
                    "none with sha256"
                } else {
                    &seen
                },
                subject.digest
            ),
        );
    }
    if let Some(want) = predicate_type
        && st.predicate_type != want
    {
        return fail(
            Rejection::PredicateTypeMismatch,
            format!(
                "predicate type is {:?}, the policy asks for {want:?}",
                clip(&st.predicate_type)
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_spec_example() {
        assert_eq!(
            pae("application/vnd.in-toto+json", b"{}"),
            b"DSSEv1 28 application/vnd.in-toto+json 2 {}".to_vec()
        );
    }

    #[test]
    fn envelope_errors() {
        assert!(Envelope::parse(b"{").is_err());
        assert!(
            Envelope::parse(br#"{"payloadType":"x","payload":"e30=","signatures":[]}"#).is_err()
        );
        let e =
            Envelope::parse(br#"{"payloadType":"x","payload":"e30","signatures":[{"sig":"AQ"}]}"#)
                .unwrap();
        assert_eq!(e.payload, b"{}");
        assert_eq!(e.signatures, vec![vec![1u8]]);
    }
}
