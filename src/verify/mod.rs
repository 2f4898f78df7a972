//! Pure cryptographic verification of referrers: cosign, Sigstore bundles, Notation.
//!
//! The caller fetches the referrer's bytes (a layer blob and its annotations, a
//! bundle, an envelope) and passes them as [`Evidence`] together with the
//! [`Subject`] being judged and a [`TrustPolicy`]. [`verify`] answers a
//! [`Verdict`]: who signed (a key fingerprint or an identity), in which format,
//! with which transparency-log index, or why not, as a stable [`Rejection`] and a
//! message naming what did not match. Nothing here does I/O; the clock is the
//! `now` argument.
//!
//! What is checked, per format:
//! - **cosign simple signing** (`.sig` layer): the signature over the exact blob
//!   bytes, `critical.type`, `critical.image.docker-manifest-digest` = the
//!   subject's digest; a Rekor bundle annotation (SET) when present or required;
//!   a Fulcio certificate against the trusted root and the identity policy.
//! - **cosign attestation** (`.att` layer, DSSE): the signature over the DSSE
//!   PAE, payloadType `application/vnd.in-toto+json`, a statement subject with the
//!   subject's sha256, the predicate type when the policy asks for one.
//! - **Sigstore bundles** v0.1–v0.3: message signatures (digest = subject) or
//!   DSSE envelopes; SETs and RFC 6962 inclusion proofs with signed checkpoints;
//!   the log entry body must name the same signature, key/certificate and digest.
//!   The bundle's `mediaType` is unsigned: a claimed version never waives a check.
//! - **Notation** JWS and COSE: the envelope signature, the x509 chain to a
//!   trust-store root, key usage, signing time within the chain's validity,
//!   expiry, the `targetArtifact` descriptor and the trusted identities.
//!
//! ```no_run
//! use refwarden::verify::{Evidence, Identity, Keyless, Matcher, Subject, TrustPolicy, TrustedRoot, Verdict, verify};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let policy = TrustPolicy {
//!     keyless: Some(Keyless::new(vec![Identity::new(
//!         Matcher::exact("https://token.actions.githubusercontent.com"),
//!         Matcher::regex(r"https://github\.com/acme/app/\.github/workflows/release\.yml@refs/tags/v.+")?,
//!     )])),
//!     trusted_root: Some(TrustedRoot::from_json(&std::fs::read("trusted_root.json")?)?),
//!     ..Default::default()
//! };
//! let subject = Subject { digest: "sha256:…".into(), media_type: "application/vnd.oci.image.manifest.v1+json".into(), size: 1234 };
//! let bundle = std::fs::read("bundle.sigstore.json")?;
//! match verify(&Evidence::SigstoreBundle { json: &bundle }, &subject, &policy, jiff::Timestamp::now()) {
//!     Verdict::Verified(v) => println!("{} by {} (log index {:?})", v.format.as_str(), v.by.id(), v.log_index),
//!     Verdict::Unverified(u) => println!("{}: {}", u.reason, u.message),
//! }
//! # Ok(()) }
//! ```
//!
//! Not implemented (reported as [`Rejection::UnsupportedFormat`] or left out):
//! RFC 3161 timestamps (ignored; integratedTime from a verified SET is the
//! signing time), Rekor v2 entries, Ed25519ph, revocation.

mod bundle;
mod certs;
mod cosign;
mod dsse;
mod encoding;
mod fulcio;
pub mod keys;
mod notation;
mod rekor;
pub mod trust;
pub mod trusted_root;

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;

pub use fulcio::{Identity, Matcher, MatcherError};
pub use keys::{KeyError, PublicKey};
pub use trust::{NotationTrust, TrustStoreError, TrustedIdentity};
pub use trusted_root::{TrustedRoot, TrustedRootError};

/// The artifact being judged: the manifest descriptor of the image (or, for a
/// blob bundle, the blob's digest). `digest` is `sha256:<hex>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

/// The bytes of one referrer, as the registry holds them.
#[derive(Clone, Copy, Debug)]
pub enum Evidence<'a> {
    /// A cosign `.sig` layer (or OCI 1.1 cosign signature artifact): the layer blob
    /// and the layer descriptor's annotations.
    CosignSimpleSigning {
        payload: &'a [u8],
        annotations: &'a BTreeMap<String, String>,
    },
    /// A cosign `.att` layer: the DSSE envelope blob and the layer's annotations
    /// (certificate, chain, Rekor bundle).
    CosignAttestation {
        envelope: &'a [u8],
        annotations: &'a BTreeMap<String, String>,
    },
    /// A Sigstore bundle (`application/vnd.dev.sigstore.bundle…+json`).
    SigstoreBundle { json: &'a [u8] },
    /// A Notation signature envelope `application/jose+json` (flattened JWS).
    NotationJws { envelope: &'a [u8] },
    /// A Notation signature envelope `application/cose` (COSE_Sign1).
    NotationCose { envelope: &'a [u8] },
}

/// Keyless (Fulcio) trust: certificates must chain to a certificate authority of
/// [`TrustPolicy::trusted_root`] and match one of the identities.
#[derive(Clone, Debug)]
pub struct Keyless {
    /// Any one must match (issuer and subject alternative name and claims).
    pub identities: Vec<Identity>,
    /// A verified transparency-log entry is required (default true; without one
    /// the signing time is not known and the short-lived certificate proves nothing).
    pub require_tlog: bool,
    /// The leaf must carry a Signed Certificate Timestamp that verifies with a CT
    /// log of the trusted root (default true; false = cosign `--insecure-ignore-sct`).
    pub require_sct: bool,
}

impl Keyless {
    /// Keyless trust with the defaults: tlog and SCT required.
    pub fn new(identities: Vec<Identity>) -> Self {
        Keyless {
            identities,
            require_tlog: true,
            require_sct: true,
        }
    }
}

/// What a requirement trusts. Several parts may be set: a referrer verifies when
/// it verifies under any of them.
#[derive(Clone, Debug, Default)]
pub struct TrustPolicy {
    /// Trusted public keys (cosign `--key`, bundles with `publicKey`).
    pub keys: Vec<PublicKey>,
    /// Key-signed evidence must also carry a verified transparency-log entry
    /// (cosign's default; false = `--insecure-ignore-tlog`). An entry that is
    /// present is verified whenever a trusted root is configured.
    pub keys_require_tlog: bool,
    /// Fulcio certificates and identities.
    pub keyless: Option<Keyless>,
    /// Transparency logs, CT logs and certificate authorities (trusted_root.json):
    /// needed for keyless and for any tlog verification.
    pub trusted_root: Option<TrustedRoot>,
    /// Notation trust store and trusted identities.
    pub notation: Option<NotationTrust>,
    /// In-toto predicate type the attestation must carry (exact match).
    pub predicate_type: Option<String>,
}

/// The signature format a referrer verified in: the subset of discovery's formats a verifier
/// handles, named like them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum SignatureFormat {
    #[serde(rename = "cosign-simple-signing")]
    CosignSimpleSigning,
    #[serde(rename = "cosign-attestation")]
    CosignAttestation,
    #[serde(rename = "sigstore-bundle-v0.1")]
    SigstoreBundleV01,
    #[serde(rename = "sigstore-bundle-v0.2")]
    SigstoreBundleV02,
    #[serde(rename = "sigstore-bundle-v0.3")]
    SigstoreBundleV03,
    #[serde(rename = "notation-jws")]
    NotationJws,
    #[serde(rename = "notation-cose")]
    NotationCose,
}

impl SignatureFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureFormat::CosignSimpleSigning => "cosign-simple-signing",
            SignatureFormat::CosignAttestation => "cosign-attestation",
            SignatureFormat::SigstoreBundleV01 => "sigstore-bundle-v0.1",
            SignatureFormat::SigstoreBundleV02 => "sigstore-bundle-v0.2",
            SignatureFormat::SigstoreBundleV03 => "sigstore-bundle-v0.3",
            SignatureFormat::NotationJws => "notation-jws",
            SignatureFormat::NotationCose => "notation-cose",
        }
    }
}

/// Who signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Signer {
    /// A trusted key, named by `sha256:<hex>` of its DER SubjectPublicKeyInfo
    /// (distinct keys have distinct fingerprints: count them for `minCount`).
    Key { fingerprint: String },
    /// A Fulcio certificate identity: OIDC issuer and subject alternative name.
    Identity {
        issuer: Option<String>,
        subject: String,
    },
    /// A Notation signing certificate: its subject DN and `sha256:<hex>` of the
    /// leaf certificate's DER.
    Certificate {
        subject: String,
        fingerprint: String,
    },
}

impl Signer {
    /// A stable, comparable name of the signer (for counting distinct signers).
    pub fn id(&self) -> String {
        match self {
            Signer::Key { fingerprint } => fingerprint.clone(),
            Signer::Identity { issuer, subject } => {
                format!("{} {}", issuer.as_deref().unwrap_or("-"), subject)
            }
            Signer::Certificate { fingerprint, .. } => fingerprint.clone(),
        }
    }
}

/// A referrer that verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verified {
    pub format: SignatureFormat,
    pub by: Signer,
    /// The transparency log's entry index (the global `logIndex`), when one verified.
    pub log_index: Option<i64>,
    /// Trusted signing time: integratedTime of a verified SET, or Notation's
    /// signed `io.cncf.notary.signingTime`.
    pub signed_at: Option<Timestamp>,
    /// The in-toto predicate type of a verified attestation.
    pub predicate_type: Option<String>,
}

/// Why a referrer did not verify. `as_str()` and serde give the stable name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Rejection {
    /// No trusted key (or certificate) produced a valid signature.
    NoSignatureByTrustedKey,
    /// The certificate verifies but its issuer / SAN / claims match no identity.
    IdentityMismatch,
    /// A valid signature over another digest (or descriptor).
    DigestMismatch,
    /// The attestation's predicate type is not the one asked for.
    PredicateTypeMismatch,
    /// The signed payload is not what the format requires (not a simple-signing
    /// payload, not an in-toto statement, not a Notation payload).
    InvalidPayload,
    /// The signing time is outside the certificate chain's validity.
    CertificateExpiredAtSigningTime,
    /// The certificate chain is not valid now, and nothing vouches for the signing time
    /// (Notation `notary.x509` without a checked timestamp).
    CertificateExpired,
    /// Notation `io.cncf.notary.expiry` has passed.
    SignatureExpired,
    /// The signing time is not known from anything verified (no SET, no
    /// supported timestamp).
    SigningTimeUnknown,
    /// No transparency-log entry where one is required.
    TransparencyLogProofMissing,
    /// A transparency-log entry is present but does not verify or does not match.
    TransparencyLogProofInvalid,
    /// The Fulcio leaf carries no Signed Certificate Timestamp.
    SctMissing,
    /// The SCT does not verify with any CT log of the trusted root.
    SctInvalid,
    /// The certificate does not chain to a trusted root (or violates key usage).
    UntrustedRoot,
    /// The evidence cannot be parsed.
    MalformedSignature,
    /// A format or format version this verifier does not handle.
    UnsupportedFormat,
    /// A signature or key algorithm this verifier does not handle.
    UnsupportedAlgorithm,
    /// The policy has nothing that could verify this kind of evidence.
    NoTrustConfigured,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::NoSignatureByTrustedKey => "NoSignatureByTrustedKey",
            Rejection::IdentityMismatch => "IdentityMismatch",
            Rejection::DigestMismatch => "DigestMismatch",
            Rejection::PredicateTypeMismatch => "PredicateTypeMismatch",
            Rejection::InvalidPayload => "InvalidPayload",
            Rejection::CertificateExpiredAtSigningTime => "CertificateExpiredAtSigningTime",
            Rejection::CertificateExpired => "CertificateExpired",
            Rejection::SignatureExpired => "SignatureExpired",
            Rejection::SigningTimeUnknown => "SigningTimeUnknown",
            Rejection::TransparencyLogProofMissing => "TransparencyLogProofMissing",
            Rejection::TransparencyLogProofInvalid => "TransparencyLogProofInvalid",
            Rejection::SctMissing => "SctMissing",
            Rejection::SctInvalid => "SctInvalid",
            Rejection::UntrustedRoot => "UntrustedRoot",
            Rejection::MalformedSignature => "MalformedSignature",
            Rejection::UnsupportedFormat => "UnsupportedFormat",
            Rejection::UnsupportedAlgorithm => "UnsupportedAlgorithm",
            Rejection::NoTrustConfigured => "NoTrustConfigured",
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A referrer that did not verify.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unverified {
    pub reason: Rejection,
    pub message: String,
}

impl Unverified {
    pub(crate) fn new(reason: Rejection, message: impl Into<String>) -> Self {
        Unverified {
            reason,
            message: message.into(),
        }
    }
}

/// The answer for one referrer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict")]
pub enum Verdict {
    Verified(Verified),
    Unverified(Unverified),
}

impl Verdict {
    pub fn is_verified(&self) -> bool {
        matches!(self, Verdict::Verified(_))
    }
}

impl From<Result<Verified, Unverified>> for Verdict {
    fn from(r: Result<Verified, Unverified>) -> Self {
        match r {
            Ok(v) => Verdict::Verified(v),
            Err(u) => Verdict::Unverified(u),
        }
    }
}

pub(crate) type Outcome<T> = Result<T, Unverified>;

/// Shorthand for an `Err(Unverified)`.
pub(crate) fn fail<T>(reason: Rejection, message: impl Into<String>) -> Outcome<T> {
    Err(Unverified::new(reason, message))
}

/// Verifies one referrer against the policy. Never panics; every failure is an
/// [`Unverified`] naming what did not match.
pub fn verify(
    evidence: &Evidence<'_>,
    subject: &Subject,
    policy: &TrustPolicy,
    now: Timestamp,
) -> Verdict {
    let outcome = match *evidence {
        Evidence::CosignSimpleSigning {
            payload,
            annotations,
        } => cosign::verify_simple_signing(payload, annotations, subject, policy, now),
        Evidence::CosignAttestation {
            envelope,
            annotations,
        } => cosign::verify_attestation(envelope, annotations, subject, policy, now),
        Evidence::SigstoreBundle { json } => bundle::verify_bundle(json, subject, policy, now),
        Evidence::NotationJws { envelope } => {
            notation::verify_jws(envelope, subject, policy.notation.as_ref(), now)
        }
        Evidence::NotationCose { envelope } => {
            notation::verify_cose(envelope, subject, policy.notation.as_ref(), now)
        }
    };
    outcome.into()
}

/// `sha256:<hex>` → the 32 digest bytes; anything else is `None`.
pub(crate) fn sha256_of_digest(digest: &str) -> Option<[u8; 32]> {
    let hex_part = digest.strip_prefix("sha256:")?;
    let bytes = hex::decode(hex_part).ok()?;
    bytes.try_into().ok()
}
