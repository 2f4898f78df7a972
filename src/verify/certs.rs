//! X.509 glue: parsing with `x509-cert`, chain building with `rustls-webpki`.

use std::time::Duration;

use jiff::Timestamp;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use x509_cert::Certificate;
use x509_cert::der::asn1::{Ia5StringRef, PrintableStringRef, TeletexStringRef, Utf8StringRef};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName};

use super::encoding::{from_unix, sha256};
use super::keys::{KeyError, PublicKey};

/// id-kp-codeSigning (1.3.6.1.5.5.7.3.3), DER content bytes.
const EKU_CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];
/// Fulcio OtherName SAN type (1.3.6.1.4.1.57264.1.7).
const OID_FULCIO_OTHERNAME: &str = "1.3.6.1.4.1.57264.1.7";

/// A parsed certificate with its DER.
#[derive(Clone, Debug)]
pub(crate) struct Cert {
    pub(crate) der: Vec<u8>,
    pub(crate) cert: Certificate,
    pub(crate) not_before: Timestamp,
    pub(crate) not_after: Timestamp,
}

/// A subject alternative name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum San {
    Email(String),
    Uri(String),
    /// Fulcio's OtherName (`1.3.6.1.4.1.57264.1.7`, UTF8String): e.g. a username.
    Other(String),
    Dns(String),
}

impl San {
    pub(crate) fn value(&self) -> &str {
        match self {
            San::Email(s) | San::Uri(s) | San::Other(s) | San::Dns(s) => s,
        }
    }
}

fn unix_to_ts(d: Duration) -> Result<Timestamp, String> {
    i64::try_from(d.as_secs())
        .ok()
        .and_then(from_unix)
        .ok_or_else(|| "certificate time out of range".to_string())
}

/// Parses one DER certificate.
pub(crate) fn parse_cert(der: &[u8]) -> Result<Cert, String> {
    let cert =
        Certificate::from_der(der).map_err(|e| format!("not a DER X.509 certificate: {e}"))?;
    let validity = &cert.tbs_certificate.validity;
    let not_before = unix_to_ts(validity.not_before.to_unix_duration())?;
    let not_after = unix_to_ts(validity.not_after.to_unix_duration())?;
    Ok(Cert {
        der: der.to_vec(),
        cert,
        not_before,
        not_after,
    })
}

/// A value of a directory string attribute, whatever its string type.
fn directory_string(any: &x509_cert::der::Any) -> Option<String> {
    if let Ok(s) = any.decode_as::<Utf8StringRef<'_>>() {
        return Some(s.as_str().to_string());
    }
    if let Ok(s) = any.decode_as::<PrintableStringRef<'_>>() {
        return Some(s.as_str().to_string());
    }
    if let Ok(s) = any.decode_as::<Ia5StringRef<'_>>() {
        return Some(s.as_str().to_string());
    }
    if let Ok(s) = any.decode_as::<TeletexStringRef<'_>>() {
        return Some(s.as_str().to_string());
    }
    None
}

fn attribute_name(oid: &str) -> String {
    match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.5" => "SERIALNUMBER",
        "1.2.840.113549.1.9.1" => "E",
        other => return other.to_string(),
    }
    .to_string()
}

impl Cert {
    pub(crate) fn public_key(&self) -> Result<PublicKey, KeyError> {
        let der = self
            .cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| KeyError::Der(e.to_string()))?;
        PublicKey::from_spki_der(&der)
    }

    /// `sha256:<hex>` of the certificate's DER.
    pub(crate) fn fingerprint(&self) -> String {
        format!("sha256:{}", hex::encode(sha256(&self.der)))
    }

    /// The raw value (inside the OCTET STRING) of the extension `oid`.
    pub(crate) fn extension(&self, oid: &str) -> Option<&[u8]> {
        self.cert
            .tbs_certificate
            .extensions
            .as_deref()?
            .iter()
            .find(|e| e.extn_id.to_string() == oid)
            .map(|e| e.extn_value.as_bytes())
    }

    pub(crate) fn sans(&self) -> Vec<San> {
        let Ok(Some((_, SubjectAltName(names)))) =
            self.cert.tbs_certificate.get::<SubjectAltName>()
        else {
            return Vec::new();
        };
        names
            .iter()
            .filter_map(|n| match n {
                GeneralName::Rfc822Name(s) => Some(San::Email(s.to_string())),
                GeneralName::UniformResourceIdentifier(s) => Some(San::Uri(s.to_string())),
                GeneralName::DnsName(s) => Some(San::Dns(s.to_string())),
                GeneralName::OtherName(o) if o.type_id.to_string() == OID_FULCIO_OTHERNAME => o
                    .value
                    .decode_as::<Utf8StringRef<'_>>()
                    .ok()
                    .map(|s| San::Other(s.as_str().to_string())),
                _ => None,
            })
            .collect()
    }

    /// `Some(true)` when KeyUsage has digitalSignature, `None` without the extension.
    pub(crate) fn digital_signature(&self) -> Option<bool> {
        match self.cert.tbs_certificate.get::<KeyUsage>() {
            Ok(Some((_, ku))) => Some(ku.digital_signature()),
            Ok(None) => None,
            Err(_) => Some(false),
        }
    }

    /// Extended key usages as dotted OIDs; `None` without the extension.
    pub(crate) fn ekus(&self) -> Option<Vec<String>> {
        match self.cert.tbs_certificate.get::<ExtendedKeyUsage>() {
            Ok(Some((_, ExtendedKeyUsage(oids)))) => {
                Some(oids.iter().map(|o| o.to_string()).collect())
            }
            Ok(None) => None,
            Err(_) => Some(Vec::new()),
        }
    }

    pub(crate) fn is_ca(&self) -> bool {
        matches!(
            self.cert.tbs_certificate.get::<BasicConstraints>(),
            Ok(Some((_, BasicConstraints { ca: true, .. })))
        )
    }

    /// Subject attributes in certificate order, e.g. `[("C","US"),("O","Notary")]`.
    pub(crate) fn subject_attributes(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for rdn in &self.cert.tbs_certificate.subject.0 {
            for atv in rdn.0.iter() {
                let value = directory_string(&atv.value).unwrap_or_default();
                out.push((attribute_name(&atv.oid.to_string()), value));
            }
        }
        out
    }

    /// The subject DN as `C=US, O=Notary, CN=e2e` (certificate order).
    pub(crate) fn subject_string(&self) -> String {
        self.subject_attributes()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub(crate) fn valid_at(&self, t: Timestamp) -> bool {
        t >= self.not_before && t <= self.not_after
    }
}

/// Why a chain did not verify.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ChainError {
    /// No path to a trust anchor, a bad signature, a constraint violated.
    Untrusted(String),
    /// A certificate of the path is not valid at the time asked.
    Expired(String),
}

/// Which extended key usage the leaf must have.
#[derive(Clone, Copy, Debug)]
pub(crate) enum LeafEku {
    /// codeSigning must be present (Fulcio).
    CodeSigningRequired,
    /// codeSigning, if the leaf has an EKU extension at all (Notation).
    CodeSigningIfPresent,
}

/// Builds a path from `leaf` through `intermediates` to one of `anchors` (DER
/// certificates) valid at `at`, with webpki's own algorithms (ring).
pub(crate) fn verify_chain(
    leaf: &Cert,
    intermediates: &[Vec<u8>],
    anchors: &[Vec<u8>],
    at: Timestamp,
    eku: LeafEku,
) -> Result<(), ChainError> {
    let secs = u64::try_from(at.as_second())
        .map_err(|_| ChainError::Expired("time before 1970".into()))?;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(secs));
    let anchor_ders: Vec<CertificateDer<'_>> = anchors
        .iter()
        .map(|d| CertificateDer::from(d.as_slice()))
        .collect();
    let mut trust: Vec<TrustAnchor<'_>> = Vec::new();
    for d in &anchor_ders {
        match webpki::anchor_from_trusted_cert(d) {
            Ok(a) => trust.push(a),
            Err(e) => {
                return Err(ChainError::Untrusted(format!(
                    "trust anchor unusable: {e:?}"
                )));
            }
        }
    }
    let inter: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|d| CertificateDer::from(d.as_slice()))
        .collect();
    let leaf_der = CertificateDer::from(leaf.der.as_slice());
    let ee = webpki::EndEntityCert::try_from(&leaf_der)
        .map_err(|e| ChainError::Untrusted(format!("leaf certificate rejected: {e:?}")))?;
    let usage = match eku {
        LeafEku::CodeSigningRequired => webpki::KeyUsage::required(EKU_CODE_SIGNING),
        LeafEku::CodeSigningIfPresent => webpki::KeyUsage::required_if_present(EKU_CODE_SIGNING),
    };
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &trust,
        &inter,
        time,
        usage,
        None,
        None,
    )
    .map(|_| ())
    .map_err(|e| match e {
        webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
            ChainError::Expired(format!("{e:?}"))
        }
        other => ChainError::Untrusted(format!("{other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_cert(b"").is_err());
        assert!(parse_cert(&[0x30, 0x80, 0x00]).is_err());
    }
}
