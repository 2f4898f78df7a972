//! Public keys (PEM/DER SubjectPublicKeyInfo) and signature checks with ring / p521.
//!
//! Supported: ECDSA P-256, P-384 (ring), P-521 (RustCrypto `p521`), Ed25519 and
//! RSA ≥ 2048 bits with PKCS#1 v1.5 or PSS (ring). No primitive is written here:
//! this file maps key types and signature schemes onto those crates.

use std::fmt;

use ring::signature::{self as rs, UnparsedPublicKey, VerificationAlgorithm};
use x509_cert::der::asn1::UintRef;
use x509_cert::der::{Decode, Encode, Reader, SliceReader};
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use super::encoding::{pem_blocks, sha256};

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";
const OID_ED25519: &str = "1.3.101.112";
const OID_RSA: &str = "1.2.840.113549.1.1.1";

/// What is wrong with a key the caller configured.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("no PUBLIC KEY PEM block found")]
    NoPem,
    #[error("more than one public key in the PEM text")]
    SeveralKeys,
    #[error("invalid PEM: {0}")]
    Pem(String),
    #[error("not a DER SubjectPublicKeyInfo: {0}")]
    Der(String),
    #[error("unsupported key algorithm {0}")]
    UnsupportedAlgorithm(String),
    #[error("invalid key: {0}")]
    Invalid(String),
}

/// Key algorithm of a [`PublicKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    EcdsaP256,
    EcdsaP384,
    EcdsaP521,
    Ed25519,
    Rsa { bits: usize },
}

impl KeyAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ECDSA P-256",
            KeyAlgorithm::EcdsaP384 => "ECDSA P-384",
            KeyAlgorithm::EcdsaP521 => "ECDSA P-521",
            KeyAlgorithm::Ed25519 => "Ed25519",
            KeyAlgorithm::Rsa { .. } => "RSA",
        }
    }
}

/// A signature scheme: the key's algorithm plus hash and signature encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    EcdsaSha256Der,
    EcdsaSha384Der,
    EcdsaSha512Der,
    /// JWS/COSE ECDSA: fixed-width r‖s; the hash follows the curve.
    EcdsaFixed,
    Ed25519,
    RsaPkcs1Sha256,
    RsaPssSha256,
    RsaPssSha384,
    RsaPssSha512,
}

/// A trusted public key. Compare keys with [`PublicKey::fingerprint`].
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    spki_der: Vec<u8>,
    raw: Vec<u8>,
    algorithm: KeyAlgorithm,
    fingerprint: String,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey({} {})",
            self.algorithm.as_str(),
            self.fingerprint
        )
    }
}

impl PublicKey {
    /// One `-----BEGIN PUBLIC KEY-----` block (cosign's `cosign.pub`).
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let blocks = pem_blocks(text, &["PUBLIC KEY"]).map_err(KeyError::Pem)?;
        match blocks.as_slice() {
            [] => Err(KeyError::NoPem),
            [der] => Self::from_spki_der(der),
            _ => Err(KeyError::SeveralKeys),
        }
    }

    /// A DER SubjectPublicKeyInfo (as in certificates and trusted_root.json).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let spki =
            SubjectPublicKeyInfoOwned::from_der(der).map_err(|e| KeyError::Der(e.to_string()))?;
        let canonical = spki.to_der().map_err(|e| KeyError::Der(e.to_string()))?;
        let raw = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| KeyError::Der("public key bit string has unused bits".into()))?
            .to_vec();
        let oid = spki.algorithm.oid.to_string();
        let algorithm = match oid.as_str() {
            OID_EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<x509_cert::der::asn1::ObjectIdentifier>().ok())
                    .map(|o| o.to_string())
                    .ok_or_else(|| KeyError::Invalid("EC key without a named curve".into()))?;
                let (alg, len) = match curve.as_str() {
                    OID_P256 => (KeyAlgorithm::EcdsaP256, 65),
                    OID_P384 => (KeyAlgorithm::EcdsaP384, 97),
                    OID_P521 => (KeyAlgorithm::EcdsaP521, 133),
                    other => {
                        return Err(KeyError::UnsupportedAlgorithm(format!("EC curve {other}")));
                    }
                };
                if raw.first() != Some(&4) || raw.len() != len {
                    return Err(KeyError::Invalid(
                        "EC point must be uncompressed (0x04 || x || y)".into(),
                    ));
                }
                if alg == KeyAlgorithm::EcdsaP521 {
                    p521::ecdsa::VerifyingKey::from_sec1_bytes(&raw)
                        .map_err(|_| KeyError::Invalid("P-521 point is not on the curve".into()))?;
                }
                alg
            }
            OID_ED25519 => {
                if raw.len() != 32 {
                    return Err(KeyError::Invalid("Ed25519 key must be 32 bytes".into()));
                }
                KeyAlgorithm::Ed25519
            }
            OID_RSA => {
                let bits = rsa_modulus_bits(&raw).ok_or_else(|| {
                    KeyError::Invalid("RSA key is not a PKCS#1 RSAPublicKey".into())
                })?;
                if !(2048..=8192).contains(&bits) {
                    return Err(KeyError::UnsupportedAlgorithm(format!(
                        "RSA key of {bits} bits (2048 to 8192 supported)"
                    )));
                }
                KeyAlgorithm::Rsa { bits }
            }
            other => return Err(KeyError::UnsupportedAlgorithm(format!("key OID {other}"))),
        };
        let fingerprint = format!("sha256:{}", hex::encode(sha256(&canonical)));
        Ok(PublicKey {
            spki_der: canonical,
            raw,
            algorithm,
            fingerprint,
        })
    }

    /// `sha256:<hex>` of the DER SubjectPublicKeyInfo.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The canonical DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The schemes cosign / Sigstore accept for this key: SHA-256 for every key
    /// (cosign's default hash) plus the curve's own hash for P-384 (SHA-384) and
    /// P-521 (SHA-512, the only one p521 verifies); RSA PKCS#1 v1.5 or PSS
    /// (salt = hash length) with SHA-256; pure Ed25519.
    pub(crate) fn sigstore_schemes(&self) -> &'static [Scheme] {
        match self.algorithm {
            KeyAlgorithm::EcdsaP256 => &[Scheme::EcdsaSha256Der],
            KeyAlgorithm::EcdsaP384 => &[Scheme::EcdsaSha384Der, Scheme::EcdsaSha256Der],
            KeyAlgorithm::EcdsaP521 => &[Scheme::EcdsaSha512Der],
            KeyAlgorithm::Ed25519 => &[Scheme::Ed25519],
            KeyAlgorithm::Rsa { .. } => &[Scheme::RsaPkcs1Sha256, Scheme::RsaPssSha256],
        }
    }

    /// True when `sig` is a valid signature of `msg` under any of `schemes`.
    pub(crate) fn verify_any(&self, schemes: &[Scheme], msg: &[u8], sig: &[u8]) -> bool {
        schemes.iter().any(|s| self.verify(*s, msg, sig))
    }

    /// cosign / Sigstore signature check (see [`Self::sigstore_schemes`]).
    pub(crate) fn verify_sigstore(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.verify_any(self.sigstore_schemes(), msg, sig)
    }

    /// One scheme; a scheme that does not fit the key is simply false.
    pub(crate) fn verify(&self, scheme: Scheme, msg: &[u8], sig: &[u8]) -> bool {
        use KeyAlgorithm as K;
        use Scheme as S;
        let ring_alg: &'static dyn VerificationAlgorithm = match (self.algorithm, scheme) {
            (K::EcdsaP521, S::EcdsaSha512Der) => return p521_verify(&self.raw, msg, sig, false),
            (K::EcdsaP521, S::EcdsaFixed) => return p521_verify(&self.raw, msg, sig, true),
            (K::EcdsaP256, S::EcdsaSha256Der) => &rs::ECDSA_P256_SHA256_ASN1,
            (K::EcdsaP256, S::EcdsaSha384Der) => &rs::ECDSA_P256_SHA384_ASN1,
            (K::EcdsaP256, S::EcdsaFixed) => &rs::ECDSA_P256_SHA256_FIXED,
            (K::EcdsaP384, S::EcdsaSha384Der) => &rs::ECDSA_P384_SHA384_ASN1,
            (K::EcdsaP384, S::EcdsaSha256Der) => &rs::ECDSA_P384_SHA256_ASN1,
            (K::EcdsaP384, S::EcdsaFixed) => &rs::ECDSA_P384_SHA384_FIXED,
            (K::Ed25519, S::Ed25519) => &rs::ED25519,
            (K::Rsa { .. }, S::RsaPkcs1Sha256) => &rs::RSA_PKCS1_2048_8192_SHA256,
            (K::Rsa { .. }, S::RsaPssSha256) => &rs::RSA_PSS_2048_8192_SHA256,
            (K::Rsa { .. }, S::RsaPssSha384) => &rs::RSA_PSS_2048_8192_SHA384,
            (K::Rsa { .. }, S::RsaPssSha512) => &rs::RSA_PSS_2048_8192_SHA512,
            _ => return false,
        };
        UnparsedPublicKey::new(ring_alg, &self.raw)
            .verify(msg, sig)
            .is_ok()
    }
}

impl PublicKey {
    /// ECDSA over a SHA-256 digest the caller already has (Sigstore message
    /// signatures judged by digest). `Err` names key types that cannot be checked
    /// without the message (Ed25519, RSA, P-521).
    pub(crate) fn verify_prehashed_sha256(
        &self,
        digest: &[u8; 32],
        sig: &[u8],
    ) -> Result<bool, String> {
        match self.algorithm {
            KeyAlgorithm::EcdsaP256 => Ok(p256_verify_prehash(&self.raw, digest, sig)),
            KeyAlgorithm::EcdsaP384 => Ok(p384_verify_prehash(&self.raw, digest, sig)),
            other => Err(format!(
                "a {} signature over an artifact can only be checked with the artifact's bytes, not its digest",
                other.as_str()
            )),
        }
    }
}

/// Defines `$name(point, digest, sig)`: a DER ECDSA signature over a prehashed digest, checked
/// with curve crate `$curve` (scalars of `$len` bytes); anything unparsable is false.
macro_rules! prehash_verifier {
    ($name:ident, $curve:ident, $len:literal) => {
        fn $name(point: &[u8], digest: &[u8; 32], sig: &[u8]) -> bool {
            use $curve::ecdsa::signature::hazmat::PrehashVerifier as _;
            let Ok(key) = $curve::ecdsa::VerifyingKey::from_sec1_bytes(point) else {
                return false;
            };
            let Some((r, s)) = der_ecdsa_scalars(sig, $len) else {
                return false;
            };
            let Ok(sig) = $curve::ecdsa::Signature::from_scalars(
                $curve::FieldBytes::clone_from_slice(&r),
                $curve::FieldBytes::clone_from_slice(&s),
            ) else {
                return false;
            };
            key.verify_prehash(digest, &sig).is_ok()
        }
    };
}

prehash_verifier!(p256_verify_prehash, p256, 32);
prehash_verifier!(p384_verify_prehash, p384, 48);

fn p521_verify(point: &[u8], msg: &[u8], sig: &[u8], fixed: bool) -> bool {
    use p521::ecdsa::signature::Verifier as _;
    let Ok(key) = p521::ecdsa::VerifyingKey::from_sec1_bytes(point) else {
        return false;
    };
    let signature = if fixed {
        p521::ecdsa::Signature::from_slice(sig).ok()
    } else {
        der_ecdsa_scalars(sig, 66).and_then(|(r, s)| {
            p521::ecdsa::Signature::from_scalars(
                p521::FieldBytes::clone_from_slice(&r),
                p521::FieldBytes::clone_from_slice(&s),
            )
            .ok()
        })
    };
    match signature {
        Some(signature) => key.verify(msg, &signature).is_ok(),
        None => false,
    }
}

/// ECDSA-Sig-Value `SEQUENCE { r INTEGER, s INTEGER }` → r and s left-padded to `len`.
fn der_ecdsa_scalars(sig: &[u8], len: usize) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut reader = SliceReader::new(sig).ok()?;
    let (r, s) = reader
        .sequence(|seq| Ok((UintRef::decode(seq)?, UintRef::decode(seq)?)))
        .ok()?;
    if !reader.is_finished() {
        return None;
    }
    let pad = |v: &[u8]| -> Option<Vec<u8>> {
        if v.len() > len {
            return None;
        }
        let mut out = vec![0u8; len];
        out[len - v.len()..].copy_from_slice(v);
        Some(out)
    };
    Some((pad(r.as_bytes())?, pad(s.as_bytes())?))
}

/// Bit length of the modulus of a PKCS#1 RSAPublicKey.
fn rsa_modulus_bits(der: &[u8]) -> Option<usize> {
    let mut reader = SliceReader::new(der).ok()?;
    let n = reader
        .sequence(|seq| {
            let n = UintRef::decode(seq)?;
            let _e = UintRef::decode(seq)?;
            Ok(n.as_bytes().to_vec())
        })
        .ok()?;
    let first = *n.first()?;
    Some((n.len() - 1) * 8 + (8 - first.leading_zeros() as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The public-good Rekor key.
    const P256_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2G2Y+2tabdTV5BcGiBIx0a9fAFwr\nkBbmLSGtks4L3qX6yYY0zufBnhC8Ur/iy55GhWP/9A/bY2LhC30M9+RYtw==\n-----END PUBLIC KEY-----\n";

    #[test]
    fn parses_and_fingerprints() {
        let k = PublicKey::from_pem(P256_PEM).unwrap();
        assert_eq!(k.algorithm(), KeyAlgorithm::EcdsaP256);
        assert!(k.fingerprint().starts_with("sha256:"));
        assert_eq!(k.fingerprint().len(), 7 + 64);
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(PublicKey::from_pem("nothing"), Err(KeyError::NoPem));
        assert!(PublicKey::from_spki_der(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
        assert!(
            !PublicKey::from_pem(P256_PEM)
                .unwrap()
                .verify_sigstore(b"m", b"\x30\x00")
        );
    }

    #[test]
    fn der_scalars_reject_trailing_bytes() {
        assert!(der_ecdsa_scalars(&[0x30, 0x06, 2, 1, 1, 2, 1, 1], 66).is_some());
        assert!(der_ecdsa_scalars(&[0x30, 0x06, 2, 1, 1, 2, 1, 1, 0], 66).is_none());
    }
}
