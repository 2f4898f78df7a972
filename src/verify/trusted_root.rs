//! Parsing of Sigstore `trusted_root.json` (transparency logs, CT logs, CAs, TSAs).

use jiff::Timestamp;
use serde::Deserialize;

use super::encoding::{b64_std, parse_time, pem_blocks, sha256};
use super::keys::{KeyError, PublicKey};

/// What is wrong with a trusted root; the message names the JSON field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TrustedRootError {
    #[error("trusted root is not valid JSON of the expected shape: {0}")]
    Json(String),
    #[error("{field}: {message}")]
    Field { field: String, message: String },
}

fn field_err(field: impl Into<String>, message: impl Into<String>) -> TrustedRootError {
    TrustedRootError::Field {
        field: field.into(),
        message: message.into(),
    }
}

/// A validity window (`validFor`); an absent end means still valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) start: Option<Timestamp>,
    pub(crate) end: Option<Timestamp>,
}

impl Window {
    /// Valid at any time.
    pub(crate) const FOREVER: Window = Window {
        start: None,
        end: None,
    };

    pub(crate) fn contains(&self, t: Timestamp) -> bool {
        self.start.is_none_or(|s| t >= s) && self.end.is_none_or(|e| t <= e)
    }
}

/// A transparency or CT log: its key, key id and validity.
#[derive(Clone, Debug)]
pub(crate) struct LogKey {
    pub(crate) base_url: String,
    pub(crate) key: PublicKey,
    /// `logId.keyId`: SHA-256 of the DER key for Rekor v1 and CT logs.
    pub(crate) key_id: Vec<u8>,
    pub(crate) valid: Window,
}

impl LogKey {
    /// A log key valid forever, with key id SHA-256(DER key).
    fn forever(base_url: &str, key: PublicKey) -> Self {
        LogKey {
            key_id: sha256(key.spki_der()).to_vec(),
            base_url: base_url.to_string(),
            key,
            valid: Window::FOREVER,
        }
    }
}

/// A certificate authority: its chain (issuing certificate first, root last).
#[derive(Clone, Debug)]
pub(crate) struct CertAuthority {
    pub(crate) uri: String,
    pub(crate) chain: Vec<Vec<u8>>,
    pub(crate) valid: Window,
}

/// A parsed trusted root: [`TrustedRoot::from_json`], or for private
/// infrastructure an empty one filled with the `add_*` methods.
#[derive(Clone, Debug, Default)]
pub struct TrustedRoot {
    pub(crate) tlogs: Vec<LogKey>,
    pub(crate) ctlogs: Vec<LogKey>,
    pub(crate) cas: Vec<CertAuthority>,
    pub(crate) tsas: Vec<CertAuthority>,
    skipped: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRoot {
    #[serde(default)]
    tlogs: Vec<RawLog>,
    #[serde(default)]
    ctlogs: Vec<RawLog>,
    #[serde(default)]
    certificate_authorities: Vec<RawCa>,
    #[serde(default)]
    timestamp_authorities: Vec<RawCa>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    #[serde(default)]
    base_url: String,
    public_key: Option<RawKey>,
    log_id: Option<RawLogId>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKey {
    raw_bytes: Option<String>,
    key_details: Option<String>,
    valid_for: Option<RawWindow>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: Option<String>,
}

#[derive(Deserialize)]
struct RawWindow {
    start: Option<String>,
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCa {
    #[serde(default)]
    uri: String,
    cert_chain: Option<RawChain>,
    valid_for: Option<RawWindow>,
}

#[derive(Deserialize)]
struct RawChain {
    #[serde(default)]
    certificates: Vec<RawCert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCert {
    raw_bytes: Option<String>,
}

fn window(raw: Option<&RawWindow>, field: &str) -> Result<Window, TrustedRootError> {
    let parse = |v: Option<&String>, name: &str| -> Result<Option<Timestamp>, TrustedRootError> {
        match v {
            None => Ok(None),
            Some(s) => parse_time(s).map(Some).ok_or_else(|| {
                field_err(
                    format!("{field}.{name}"),
                    format!("not an RFC 3339 time: {s:?}"),
                )
            }),
        }
    };
    Ok(Window {
        start: parse(raw.and_then(|w| w.start.as_ref()), "start")?,
        end: parse(raw.and_then(|w| w.end.as_ref()), "end")?,
    })
}

/// Wraps a PKCS#1 RSAPublicKey (`keyDetails: PKCS1_RSA_*`) into a SubjectPublicKeyInfo.
fn pkcs1_to_spki(pkcs1: &[u8]) -> Option<Vec<u8>> {
    use x509_cert::der::Encode as _;
    use x509_cert::der::asn1::{BitString, Null, ObjectIdentifier};
    use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1"),
            parameters: Some(Null.into()),
        },
        subject_public_key: BitString::from_bytes(pkcs1).ok()?,
    };
    spki.to_der().ok()
}

/// `Ok(None)`: a well-formed entry whose key algorithm is not supported (skipped,
/// listed in [`TrustedRoot::skipped`]).
fn log(raw: &RawLog, field: &str) -> Result<Option<LogKey>, TrustedRootError> {
    let pk = raw
        .public_key
        .as_ref()
        .ok_or_else(|| field_err(format!("{field}.publicKey"), "missing"))?;
    let der = pk.raw_bytes.as_deref().and_then(b64_std).ok_or_else(|| {
        field_err(
            format!("{field}.publicKey.rawBytes"),
            "missing or not base64",
        )
    })?;
    let details = pk.key_details.as_deref().unwrap_or("");
    let der = if details.starts_with("PKCS1_RSA") {
        pkcs1_to_spki(&der).ok_or_else(|| {
            field_err(
                format!("{field}.publicKey.rawBytes"),
                "not a PKCS#1 RSA key",
            )
        })?
    } else {
        der
    };
    let key = match PublicKey::from_spki_der(&der) {
        Ok(k) => k,
        Err(KeyError::UnsupportedAlgorithm(_)) => return Ok(None),
        Err(e) => {
            return Err(field_err(
                format!("{field}.publicKey.rawBytes"),
                e.to_string(),
            ));
        }
    };
    let key_id = match raw.log_id.as_ref().and_then(|l| l.key_id.as_deref()) {
        Some(id) => {
            b64_std(id).ok_or_else(|| field_err(format!("{field}.logId.keyId"), "not base64"))?
        }
        None => sha256(&der).to_vec(),
    };
    Ok(Some(LogKey {
        base_url: raw.base_url.clone(),
        key,
        key_id,
        valid: window(
            pk.valid_for.as_ref(),
            &format!("{field}.publicKey.validFor"),
        )?,
    }))
}

fn authority(raw: &RawCa, field: &str) -> Result<CertAuthority, TrustedRootError> {
    let certs = raw
        .cert_chain
        .as_ref()
        .map(|c| c.certificates.as_slice())
        .unwrap_or(&[]);
    if certs.is_empty() {
        return Err(field_err(
            format!("{field}.certChain.certificates"),
            "empty",
        ));
    }
    let mut chain = Vec::with_capacity(certs.len());
    for (i, c) in certs.iter().enumerate() {
        let f = format!("{field}.certChain.certificates[{i}].rawBytes");
        let der = c
            .raw_bytes
            .as_deref()
            .and_then(b64_std)
            .ok_or_else(|| field_err(&f, "missing or not base64"))?;
        super::certs::parse_cert(&der).map_err(|e| field_err(&f, e))?;
        chain.push(der);
    }
    Ok(CertAuthority {
        uri: raw.uri.clone(),
        chain,
        valid: window(raw.valid_for.as_ref(), &format!("{field}.validFor"))?,
    })
}

impl TrustedRoot {
    /// Parses `trusted_root.json` (`application/vnd.dev.sigstore.trustedroot+json`).
    pub fn from_json(bytes: &[u8]) -> Result<Self, TrustedRootError> {
        let raw: RawRoot =
            serde_json::from_slice(bytes).map_err(|e| TrustedRootError::Json(e.to_string()))?;
        let mut root = TrustedRoot::default();
        for (i, l) in raw.tlogs.iter().enumerate() {
            let field = format!("tlogs[{i}]");
            match log(l, &field)? {
                Some(k) => root.tlogs.push(k),
                None => root.skipped.push(field),
            }
        }
        for (i, l) in raw.ctlogs.iter().enumerate() {
            let field = format!("ctlogs[{i}]");
            match log(l, &field)? {
                Some(k) => root.ctlogs.push(k),
                None => root.skipped.push(field),
            }
        }
        for (i, c) in raw.certificate_authorities.iter().enumerate() {
            root.cas
                .push(authority(c, &format!("certificateAuthorities[{i}]"))?);
        }
        for (i, c) in raw.timestamp_authorities.iter().enumerate() {
            root.tsas
                .push(authority(c, &format!("timestampAuthorities[{i}]"))?);
        }
        Ok(root)
    }

    /// Adds a Rekor (v1) log key, valid forever, with key id SHA-256(DER key):
    /// for `--rekor-key`-style private logs.
    pub fn add_tlog_key(&mut self, base_url: &str, key: PublicKey) {
        self.tlogs.push(LogKey::forever(base_url, key));
    }

    /// Adds a CT log key (SCT verification), valid forever.
    pub fn add_ctlog_key(&mut self, base_url: &str, key: PublicKey) {
        self.ctlogs.push(LogKey::forever(base_url, key));
    }

    /// Adds a certificate authority from PEM certificates (issuing certificate
    /// first, root last), valid forever.
    pub fn add_certificate_authority_pem(
        &mut self,
        uri: &str,
        pem: &str,
    ) -> Result<(), TrustedRootError> {
        let chain = pem_blocks(pem, &["CERTIFICATE"]).map_err(|e| field_err("certChain", e))?;
        if chain.is_empty() {
            return Err(field_err("certChain", "no CERTIFICATE PEM block"));
        }
        for (i, der) in chain.iter().enumerate() {
            super::certs::parse_cert(der).map_err(|e| field_err(format!("certChain[{i}]"), e))?;
        }
        self.cas.push(CertAuthority {
            uri: uri.to_string(),
            chain,
            valid: Window::FOREVER,
        });
        Ok(())
    }

    /// Log entries (`tlogs[i]`, `ctlogs[i]`) left out because their key algorithm
    /// is not supported (they can verify nothing).
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Number of transparency logs, CT logs and certificate authorities.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.tlogs.len(), self.ctlogs.len(), self.cas.len())
    }

    pub(crate) fn tlog_by_id(&self, key_id: &[u8]) -> Option<&LogKey> {
        self.tlogs.iter().find(|l| l.key_id == key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field() {
        let err =
            TrustedRoot::from_json(br#"{"tlogs":[{"publicKey":{"rawBytes":"!!"}}]}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "tlogs[0].publicKey.rawBytes: missing or not base64"
        );
        let err = TrustedRoot::from_json(
            br#"{"certificateAuthorities":[{"certChain":{"certificates":[]}}]}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("certificateAuthorities[0].certChain")
        );
        assert!(TrustedRoot::from_json(b"3").is_err());
    }

    #[test]
    fn window_bounds() {
        let w = Window {
            start: Some(Timestamp::from_second(10).unwrap()),
            end: Some(Timestamp::from_second(20).unwrap()),
        };
        assert!(w.contains(Timestamp::from_second(10).unwrap()));
        assert!(!w.contains(Timestamp::from_second(21).unwrap()));
    }
}
