//! Small encoding helpers shared by the verifiers: base64 variants, SHA-256, PEM, times.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use jiff::Timestamp;
use sha2::{Digest as _, Sha256};

/// Standard base64 (with or without padding), as protobuf JSON and cosign write it.
pub(crate) fn b64_std(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    STANDARD
        .decode(s)
        .ok()
        .or_else(|| STANDARD_NO_PAD.decode(s).ok())
}

/// Standard or URL-safe base64, padded or not (DSSE accepts both alphabets).
pub(crate) fn b64_any(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    b64_std(s)
        .or_else(|| URL_SAFE.decode(s).ok())
        .or_else(|| URL_SAFE_NO_PAD.decode(s).ok())
}

/// base64url without padding (JWS, RFC 7515).
pub(crate) fn b64_url(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The DER bodies of every `-----BEGIN <label>-----` block in `text` whose label
/// is one of `labels`, in order. Errors name the block that does not decode.
pub(crate) fn pem_blocks(text: &str, labels: &[&str]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else {
            return Err("unterminated PEM header".into());
        };
        let label = &after[..label_end];
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = body_start.find(&end_marker) else {
            return Err(format!("PEM block {label} has no END line"));
        };
        let body: String = body_start[..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        rest = &body_start[end + end_marker.len()..];
        if !labels.contains(&label) {
            continue;
        }
        let der = STANDARD
            .decode(body.as_bytes())
            .map_err(|e| format!("PEM block {label} #{}: bad base64: {e}", out.len() + 1))?;
        out.push(der);
    }
    Ok(out)
}

/// RFC 3339 text → timestamp.
pub(crate) fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse::<Timestamp>().ok()
}

pub(crate) fn from_unix(seconds: i64) -> Option<Timestamp> {
    Timestamp::from_second(seconds).ok()
}

/// A JSON integer that protobuf JSON may also write as a string (int64).
pub(crate) fn json_i64(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Shortens an attacker-controlled string for a message.
pub(crate) fn clip(s: &str) -> String {
    const MAX: usize = 120;
    if s.chars().count() <= MAX {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_variants() {
        assert_eq!(b64_std("aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(b64_std("aGk").as_deref(), Some(&b"hi"[..]));
        assert_eq!(b64_any("-_8").as_deref(), Some(&[0xfb, 0xff][..]));
        assert!(b64_std("!!").is_none());
    }

    #[test]
    fn pem_blocks_filters_labels() {
        let text =
            "-----BEGIN A-----\naGk=\n-----END A-----\n-----BEGIN B-----\naGk=\n-----END B-----\n";
        assert_eq!(pem_blocks(text, &["B"]).unwrap(), vec![b"hi".to_vec()]);
        assert!(pem_blocks("-----BEGIN A-----\naGk=\n", &["A"]).is_err());
    }

    #[test]
    fn clip_is_char_safe() {
        let long = "é".repeat(300);
        assert!(clip(&long).chars().count() <= 121);
    }
}
