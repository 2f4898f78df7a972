//! Generated Sigstore and Notation material for offline verification tests.
//!
//! Independent of the product (nothing here uses `refwarden`): keys of every
//! algorithm (ring, p521), a Fulcio-like CA (rcgen: `.1`/`.8` issuer extensions,
//! EKU codeSigning, email/URI SAN, an embedded SCT from a test CT log), a Rekor-like
//! log (SETs over JCS text, an RFC 6962 tree, signed-note checkpoints), bundles,
//! cosign layers and Notation JWS/COSE envelopes. The RSA key is a fixed test key
//! (ring cannot generate RSA keys); everything else is generated per run.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use ring::rand::SystemRandom;
use ring::signature::{self as rs, KeyPair as _};
use sha2::{Digest, Sha256};

pub fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

pub fn b64(b: &[u8]) -> String {
    B64.encode(b)
}

pub fn b64_decode(s: &str) -> Vec<u8> {
    B64.decode(s).unwrap()
}

fn der_len(n: usize) -> Vec<u8> {
    if n < 0x80 {
        vec![n as u8]
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        let mut out = vec![0x80 | bytes.len() as u8];
        out.extend(bytes);
        out
    }
}

/// A DER TLV.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(content.len()));
    out.extend_from_slice(content);
    out
}

fn der_uint(v: &[u8]) -> Vec<u8> {
    let v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
    let mut c = Vec::new();
    if v.first().is_none_or(|b| b & 0x80 != 0) {
        c.push(0);
    }
    c.extend(v);
    tlv(0x02, &c)
}

fn spki(alg_id: &[u8], key: &[u8]) -> Vec<u8> {
    let mut bits = vec![0u8];
    bits.extend_from_slice(key);
    let mut seq = alg_id.to_vec();
    seq.extend(tlv(0x03, &bits));
    tlv(0x30, &seq)
}

const OID_EC: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

fn ec_alg(curve_oid: &[u8]) -> Vec<u8> {
    let mut c = OID_EC.to_vec();
    c.extend_from_slice(curve_oid);
    tlv(0x30, &c)
}

pub fn pem(label: &str, der: &[u8]) -> String {
    let b = b64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    P256,
    P384,
    P521,
    Ed25519,
    /// RSA 2048, PKCS#1 v1.5 SHA-256 signatures.
    RsaPkcs1,
    /// RSA 2048, PSS SHA-256 signatures (salt = hash length).
    RsaPss,
}

/// A signing key.
pub struct Key {
    pub alg: Alg,
    pkcs8: Vec<u8>,
    p521: Option<p521::ecdsa::SigningKey>,
}

const RSA_PKCS8_B64: &str = concat!(
    "MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQDCiCzfnp8Vf4gjHkzuVVScz6Ik",
    "7uWhDGfb+IxdMdcgbBf5CMkiz1nu5NenancIbRPI6aDg9dw14EU367q5BujNWgqs5PGiRMp7efX0",
    "Bh1TuQjR47oW7GlTqz/gSSgVKIRul6jYJL7MzBy9KLzrSCW7uwZHF5UY+cu5fvNUK3IrD3Xy+7LD",
    "+LFlnGhdhOPlM7rTGP7Nn3MBLsAGruy0OPnmYoWnATSC2ubsrgK8KB7HS+/En+8tDmJnBaOMdWv1",
    "bjlH2qz3m5NvEzF5eA25jeNBmU+AbfYw0AiKmz9C5B7HiejG2SY7wkIR7k+IZ5tbGcHkaPPx3kbn",
    "qRey88eOvoxrAgMBAAECggEABNyDN+b1jljeb2lZGtLCo+M8dhfSRFubc/NhtbfXzjjziU4fWKiv",
    "qcdYCMMFPoA3xemUTBkf66/dw9o26M1CEXF2KQ6cEl7xR5A5k/HN1yaruxablpRmUsT0Xetn4eol",
    "TDVWC00xjpLezeCwFGEm91xGeaoeifcF5hjS93G8uf62IBlgeJuO0eEQ/qZiDBV+5JB2WbpP0Jb8",
    "HkZU+Asf69/CwqWe4zlKm/lLne/Fpyn+07idwVjmQh1Bs62buMURpGPRmlwJoxnbQCmkK+MVOT1w",
    "4+NoDXPJUoELLBBORbiYQLwB9c53li4QPECzilz9SITvrVtRav1+rL5E3KWF4QKBgQD70TH279zE",
    "LBtORPBi8ac8KAfX9lrQ8gqaT9nt4DfFOWfUf8D4XSTmrGbDUnovCD8SaIRLbVJkcfi2y+ikMfHX",
    "XYlCoONidK/y0iWcKOYImyOLV+WybV/TcgfBid65wiSbx8Ag5jawCFax+SmyvgidCnA/4wbtAnWw",
    "/j2s5LbH/wKBgQDFw2KwVWPHjiM25rpTaOMTkc+aGRenGAM/FSNEsR2f9MrU5tyDStmPuA+YmC5z",
    "xKmyTCWwx8t56I1V7H5sl/FpQnThoITaV/l9auHHeFGJY2vG3kqDrmnwK5az4Db6n0/NugDFalHU",
    "sqJ+AU4yd+MASEql8cBFHC7nOXYmBLvblQKBgQD1z8G8UWzpujx1bOpTS516JYFymTMRoBQliiks",
    "AaGvTlhCoOrYBuSMoGI37H0FCEG5UHlDv9Wb431rwyS3k2GGX/IrLi6I32sZ13WLOIlEgVxzGzxH",
    "rmjKWRelH1ZhcliWEKlF9DQSJjGqzZScvNBfq97jHlSWa75DJgtCiIi8NQKBgQCfJbFRviXh/ZyR",
    "HfRsE0hKA1lR5UeHjGdwaI5NRUtV4iUoV/C1J5MVeUXzwuP+/hCiD211ahNxM5gpwXur4ErCLlzp",
    "Bchj/dAlAdJYN5dGPOAK1fCZL87JHArXDmSwI2yRXlIojHr19BuX020eaCQhoguQp4/XDesg4LkX",
    "t0+GUQKBgQCzfo4txcmi56RG0sEJ3GXIVl/NFsVwjIfeQt3FeTPfa1TYg8Qvupxq57QDmnuk+x8h",
    "q9TCD+riaY23U6mESBacdO6mrBCn22GlEqUtdj6aP+u9avvXJfWmHNLkG5ppLv4Y1vi5W+GsCcW0",
    "AzhwvOQDv1PG5KfUaSxkAIgEbg4Img==",
);
impl Key {
    pub fn generate(alg: Alg) -> Key {
        let rng = SystemRandom::new();
        let (pkcs8, p521) = match alg {
            Alg::P256 => (
                rs::EcdsaKeyPair::generate_pkcs8(&rs::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                    .unwrap()
                    .as_ref()
                    .to_vec(),
                None,
            ),
            Alg::P384 => (
                rs::EcdsaKeyPair::generate_pkcs8(&rs::ECDSA_P384_SHA384_ASN1_SIGNING, &rng)
                    .unwrap()
                    .as_ref()
                    .to_vec(),
                None,
            ),
            Alg::Ed25519 => (
                rs::Ed25519KeyPair::generate_pkcs8(&rng)
                    .unwrap()
                    .as_ref()
                    .to_vec(),
                None,
            ),
            Alg::RsaPkcs1 | Alg::RsaPss => (B64.decode(RSA_PKCS8_B64).unwrap(), None),
            Alg::P521 => {
                let mut scalar = [0u8; 66];
                ring::rand::SecureRandom::fill(&rng, &mut scalar[2..]).unwrap();
                scalar[1] = 1;
                (
                    Vec::new(),
                    Some(p521::ecdsa::SigningKey::from_slice(&scalar).unwrap()),
                )
            }
        };
        Key { alg, pkcs8, p521 }
    }

    fn p521_sign(&self, msg: &[u8]) -> p521::ecdsa::Signature {
        use p521::ecdsa::signature::RandomizedSigner as _;
        self.p521.as_ref().unwrap().sign_with_rng(&mut RingRng, msg)
    }

    fn ecdsa(&self, alg: &'static rs::EcdsaSigningAlgorithm) -> rs::EcdsaKeyPair {
        rs::EcdsaKeyPair::from_pkcs8(alg, &self.pkcs8, &SystemRandom::new()).unwrap()
    }

    /// DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> Vec<u8> {
        match self.alg {
            Alg::P256 => spki(
                &ec_alg(&[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]),
                self.ecdsa(&rs::ECDSA_P256_SHA256_ASN1_SIGNING)
                    .public_key()
                    .as_ref(),
            ),
            Alg::P384 => spki(
                &ec_alg(&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]),
                self.ecdsa(&rs::ECDSA_P384_SHA384_ASN1_SIGNING)
                    .public_key()
                    .as_ref(),
            ),
            Alg::P521 => {
                let vk = p521::ecdsa::VerifyingKey::from(self.p521.as_ref().unwrap());
                let point = vk.to_encoded_point(false);
                spki(
                    &ec_alg(&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23]),
                    point.as_bytes(),
                )
            }
            Alg::Ed25519 => {
                let kp = rs::Ed25519KeyPair::from_pkcs8(&self.pkcs8).unwrap();
                spki(
                    &tlv(0x30, &[0x06, 0x03, 0x2b, 0x65, 0x70]),
                    kp.public_key().as_ref(),
                )
            }
            Alg::RsaPkcs1 | Alg::RsaPss => {
                let kp = rs::RsaKeyPair::from_pkcs8(&self.pkcs8).unwrap();
                let alg = tlv(
                    0x30,
                    &[
                        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05,
                        0x00,
                    ],
                );
                spki(&alg, kp.public_key().as_ref())
            }
        }
    }

    pub fn public_pem(&self) -> String {
        pem("PUBLIC KEY", &self.spki_der())
    }

    /// A cosign / Sigstore signature: ECDSA DER with the curve's hash
    /// (SHA-256/384/512), Ed25519, RSA PKCS#1 v1.5 or PSS with SHA-256.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self.alg {
            Alg::P256 => self
                .ecdsa(&rs::ECDSA_P256_SHA256_ASN1_SIGNING)
                .sign(&rng, msg)
                .unwrap()
                .as_ref()
                .to_vec(),
            Alg::P384 => self
                .ecdsa(&rs::ECDSA_P384_SHA384_ASN1_SIGNING)
                .sign(&rng, msg)
                .unwrap()
                .as_ref()
                .to_vec(),
            Alg::P521 => {
                let sig = self.p521_sign(msg);
                let (r, s) = sig.split_bytes();
                let mut c = der_uint(&r);
                c.extend(der_uint(&s));
                tlv(0x30, &c)
            }
            Alg::Ed25519 => rs::Ed25519KeyPair::from_pkcs8(&self.pkcs8)
                .unwrap()
                .sign(msg)
                .as_ref()
                .to_vec(),
            Alg::RsaPkcs1 | Alg::RsaPss => {
                let kp = rs::RsaKeyPair::from_pkcs8(&self.pkcs8).unwrap();
                let mut sig = vec![0u8; kp.public().modulus_len()];
                let pad: &'static dyn rs::RsaEncoding = if self.alg == Alg::RsaPss {
                    &rs::RSA_PSS_SHA256
                } else {
                    &rs::RSA_PKCS1_SHA256
                };
                kp.sign(pad, &rng, msg, &mut sig).unwrap();
                sig
            }
        }
    }

    /// A JWS/COSE signature: ECDSA r‖s (ES256/ES384/ES512), RSA PSS SHA-256 (PS256).
    pub fn sign_fixed(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self.alg {
            Alg::P256 => self
                .ecdsa(&rs::ECDSA_P256_SHA256_FIXED_SIGNING)
                .sign(&rng, msg)
                .unwrap()
                .as_ref()
                .to_vec(),
            Alg::P384 => self
                .ecdsa(&rs::ECDSA_P384_SHA384_FIXED_SIGNING)
                .sign(&rng, msg)
                .unwrap()
                .as_ref()
                .to_vec(),
            Alg::P521 => self.p521_sign(msg).to_bytes().to_vec(),
            Alg::RsaPkcs1 | Alg::RsaPss => Key {
                alg: Alg::RsaPss,
                pkcs8: self.pkcs8.clone(),
                p521: None,
            }
            .sign(msg),
            Alg::Ed25519 => self.sign(msg),
        }
    }

    /// JWS `alg` of [`Self::sign_fixed`].
    pub fn jws_alg(&self) -> &'static str {
        match self.alg {
            Alg::P256 => "ES256",
            Alg::P384 => "ES384",
            Alg::P521 => "ES512",
            Alg::RsaPkcs1 | Alg::RsaPss => "PS256",
            Alg::Ed25519 => "EdDSA",
        }
    }

    /// The key as rcgen wants it (P-256, P-384, RSA).
    pub fn rcgen(&self) -> KeyPair {
        match self.alg {
            Alg::RsaPkcs1 | Alg::RsaPss => KeyPair::from_pkcs8_der_and_sign_algo(
                &rustls_pki_types::PrivatePkcs8KeyDer::from(self.pkcs8.clone()),
                &rcgen::PKCS_RSA_SHA256,
            )
            .unwrap(),
            _ => KeyPair::try_from(self.pkcs8.as_slice()).unwrap(),
        }
    }
}

/// A fresh P-384 key signing a SHA-256 digest (cosign's default hash for every
/// curve before 3.1.3): its PEM public key and the DER signature.
pub fn p384_sha256_prehash(digest: &[u8; 32]) -> (String, Vec<u8>) {
    use p384::ecdsa::signature::hazmat::RandomizedPrehashSigner as _;
    let mut scalar = [0u8; 48];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut scalar[1..]).unwrap();
    scalar[0] = 1;
    let sk = p384::ecdsa::SigningKey::from_slice(&scalar).unwrap();
    let sig: p384::ecdsa::Signature = sk.sign_prehash_with_rng(&mut RingRng, digest).unwrap();
    let point = p384::ecdsa::VerifyingKey::from(&sk).to_encoded_point(false);
    let spki = spki(
        &ec_alg(&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]),
        point.as_bytes(),
    );
    let (r, s) = sig.split_bytes();
    let mut c = der_uint(&r);
    c.extend(der_uint(&s));
    (pem("PUBLIC KEY", &spki), tlv(0x30, &c))
}

/// rand_core 0.6 over ring's system RNG (p521 0.13 signs only with an RNG here).
struct RingRng;

impl p521::elliptic_curve::rand_core::RngCore for RingRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        ring::rand::SecureRandom::fill(&SystemRandom::new(), dest).unwrap();
    }
    fn try_fill_bytes(
        &mut self,
        dest: &mut [u8],
    ) -> Result<(), p521::elliptic_curve::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl p521::elliptic_curve::rand_core::CryptoRng for RingRng {}

fn validity(p: &mut CertificateParams, from: u64, to: u64) {
    p.not_before = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(from);
    p.not_after = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(to);
}

/// A CA: its key, certificate and parameters (to issue more).
pub struct Ca {
    pub key: KeyPair,
    pub params: CertificateParams,
    pub der: Vec<u8>,
}

impl Ca {
    /// A self-signed P-384 root CA.
    pub fn root(cn: &str, from: u64, to: u64) -> Ca {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let params = ca_params(cn, from, to);
        let der = params.self_signed(&key).unwrap().der().to_vec();
        Ca { key, params, der }
    }

    /// A P-384 intermediate CA issued by `self`.
    pub fn intermediate(&self, cn: &str, from: u64, to: u64) -> Ca {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let params = ca_params(cn, from, to);
        let der = params
            .signed_by(&key, &self.issuer())
            .unwrap()
            .der()
            .to_vec();
        Ca { key, params, der }
    }

    pub fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    /// DER SubjectPublicKeyInfo of the CA key.
    pub fn spki_der(&self) -> Vec<u8> {
        rcgen::PublicKeyData::subject_public_key_info(&self.key)
    }
}

fn ca_params(cn: &str, from: u64, to: u64) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name
        .push(DnType::OrganizationName, "refwarden-test");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    validity(&mut p, from, to);
    p
}

/// A Fulcio-like leaf's identity.
#[derive(Clone, Debug)]
pub struct LeafSpec {
    pub email: Option<String>,
    pub uri: Option<String>,
    pub issuer: Option<String>,
    /// Extra `1.3.6.1.4.1.57264.1.N` DER UTF8String claims (N, value).
    pub claims: Vec<(u64, String)>,
    pub not_before: u64,
    pub not_after: u64,
    /// Embed an SCT signed by this CT log key.
    pub sct: bool,
    pub code_signing: bool,
}

fn utf8_der(s: &str) -> Vec<u8> {
    tlv(0x0c, s.as_bytes())
}

/// Issues a Fulcio-like leaf for `key` (empty subject, KU digitalSignature, EKU
/// codeSigning, SAN, issuer as raw `.1` and DER `.8`, optional SCT from `ct`).
pub fn fulcio_leaf(spec: &LeafSpec, key: &Key, ca: &Ca, ct: &Key) -> Vec<u8> {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.serial_number = Some(SerialNumber::from(vec![0x42, 0x17, 0x01]));
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if spec.code_signing {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    }
    if let Some(e) = &spec.email {
        p.subject_alt_names
            .push(SanType::Rfc822Name(e.clone().try_into().unwrap()));
    }
    if let Some(u) = &spec.uri {
        p.subject_alt_names
            .push(SanType::URI(u.clone().try_into().unwrap()));
    }
    if let Some(i) = &spec.issuer {
        p.custom_extensions.push(CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 57264, 1, 1],
            i.as_bytes().to_vec(),
        ));
        p.custom_extensions.push(CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 57264, 1, 8],
            utf8_der(i),
        ));
    }
    for (n, v) in &spec.claims {
        p.custom_extensions.push(CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 57264, 1, *n],
            utf8_der(v),
        ));
    }
    validity(&mut p, spec.not_before, spec.not_after);
    let rc_key = key.rcgen();
    let pre = p.signed_by(&rc_key, &ca.issuer()).unwrap().der().to_vec();
    if !spec.sct {
        return pre;
    }
    // RFC 6962 §3.2: the SCT signs the TBS without the SCT extension, which is
    // exactly the TBS of the same certificate issued without it (SCT added last).
    let tbs = tbs_of(&pre);
    let ts = (spec.not_before + 1) * 1000;
    let mut signed = vec![0u8, 0u8];
    signed.extend(ts.to_be_bytes());
    signed.extend(1u16.to_be_bytes());
    signed.extend(sha256(&ca.spki_der()));
    signed.extend(&(tbs.len() as u32).to_be_bytes()[1..]);
    signed.extend(&tbs);
    signed.extend(0u16.to_be_bytes());
    let sig = ct.sign(&signed);
    let mut sct = vec![0u8];
    sct.extend(sha256(&ct.spki_der()));
    sct.extend(ts.to_be_bytes());
    sct.extend(0u16.to_be_bytes());
    sct.extend([4u8, 3u8]);
    sct.extend((sig.len() as u16).to_be_bytes());
    sct.extend(&sig);
    let mut list = (sct.len() as u16 + 2).to_be_bytes().to_vec();
    list.extend((sct.len() as u16).to_be_bytes());
    list.extend(&sct);
    p.custom_extensions.push(CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2],
        tlv(0x04, &list),
    ));
    p.signed_by(&rc_key, &ca.issuer()).unwrap().der().to_vec()
}

/// The TBSCertificate of a DER certificate (first element of the outer SEQUENCE).
pub fn tbs_of(cert: &[u8]) -> Vec<u8> {
    fn header(b: &[u8]) -> (usize, usize) {
        if b[1] & 0x80 == 0 {
            (2, b[1] as usize)
        } else {
            let n = (b[1] & 0x7f) as usize;
            let len = b[2..2 + n].iter().fold(0usize, |a, x| a << 8 | *x as usize);
            (2 + n, len)
        }
    }
    let (h, _) = header(cert);
    let inner = &cert[h..];
    let (h2, len2) = header(inner);
    inner[..h2 + len2].to_vec()
}

/// A Notation signing leaf: subject `C=US, ST=WA, O=<org>, CN=<cn>`, KU
/// digitalSignature, EKU codeSigning (or `ekus`).
pub fn notation_leaf(
    key: &Key,
    ca: &Ca,
    org: &str,
    from: u64,
    to: u64,
    ekus: Vec<ExtendedKeyUsagePurpose>,
) -> Vec<u8> {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CountryName, "US");
    p.distinguished_name.push(DnType::StateOrProvinceName, "WA");
    p.distinguished_name.push(DnType::OrganizationName, org);
    p.distinguished_name.push(DnType::CommonName, "signer");
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = ekus;
    validity(&mut p, from, to);
    p.signed_by(&key.rcgen(), &ca.issuer())
        .unwrap()
        .der()
        .to_vec()
}

/// A Rekor-like transparency log (v1): P-256 key, RFC 6962 tree, checkpoints.
pub struct Log {
    pub key: Key,
    pub origin: String,
    pub leaves: Vec<[u8; 32]>,
}

fn node(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
    let mut b = vec![1u8];
    b.extend_from_slice(l);
    b.extend_from_slice(r);
    sha256(&b)
}

fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
    if leaves.len() == 1 {
        return leaves[0];
    }
    let k = leaves.len().next_power_of_two() / 2;
    node(&mth(&leaves[..k]), &mth(&leaves[k..]))
}

fn path(m: usize, leaves: &[[u8; 32]]) -> Vec<[u8; 32]> {
    if leaves.len() == 1 {
        return vec![];
    }
    let k = leaves.len().next_power_of_two() / 2;
    let (mut p, sib) = if m < k {
        (path(m, &leaves[..k]), mth(&leaves[k..]))
    } else {
        (path(m - k, &leaves[k..]), mth(&leaves[..k]))
    };
    p.push(sib);
    p
}

/// A logged entry: everything a bundle or a cosign annotation needs.
#[derive(Clone, Debug)]
pub struct Entry {
    pub body: Vec<u8>,
    pub log_index: i64,
    pub integrated_time: i64,
    pub log_id: [u8; 32],
    pub set: Vec<u8>,
    pub tree_index: i64,
    pub tree_size: i64,
    pub root: [u8; 32],
    pub hashes: Vec<[u8; 32]>,
    pub checkpoint: String,
}

impl Log {
    pub fn new(origin: &str) -> Log {
        let mut log = Log {
            key: Key::generate(Alg::P256),
            origin: origin.to_string(),
            leaves: vec![],
        };
        for i in 0..5u8 {
            log.leaves.push(sha256(&[0, i]));
        }
        log
    }

    pub fn log_id(&self) -> [u8; 32] {
        sha256(&self.key.spki_der())
    }

    /// SET payload as RFC 8785 JCS text (sorted keys, no whitespace; these values need no escaping).
    pub fn set_payload(
        body: &[u8],
        integrated_time: i64,
        log_id: &[u8; 32],
        log_index: i64,
    ) -> String {
        format!(
            r#"{{"body":"{}","integratedTime":{},"logID":"{}","logIndex":{}}}"#,
            b64(body),
            integrated_time,
            hex::encode(log_id),
            log_index
        )
    }

    /// Appends `body` (then two more leaves) and returns the entry with its SET,
    /// inclusion proof and a checkpoint signed by `checkpoint_key` (normally the log's).
    pub fn append(&mut self, body: Vec<u8>, integrated_time: u64) -> Entry {
        let integrated_time = integrated_time as i64;
        let mut leaf = vec![0u8];
        leaf.extend_from_slice(&body);
        let idx = self.leaves.len();
        self.leaves.push(sha256(&leaf));
        self.leaves.push(sha256(b"\x00next"));
        let log_index = 1_000_000 + idx as i64;
        let log_id = self.log_id();
        let set = self
            .key
            .sign(Self::set_payload(&body, integrated_time, &log_id, log_index).as_bytes());
        let root = mth(&self.leaves);
        let checkpoint = self.checkpoint(&self.key, self.leaves.len() as u64, &root);
        Entry {
            body,
            log_index,
            integrated_time,
            log_id,
            set,
            tree_index: idx as i64,
            tree_size: self.leaves.len() as i64,
            root,
            hashes: path(idx, &self.leaves),
            checkpoint,
        }
    }

    /// A signed note `origin\nsize\nroot\n\n— name b64(hint‖sig)\n` signed by `key`.
    pub fn checkpoint(&self, key: &Key, size: u64, root: &[u8; 32]) -> String {
        let text = format!("{}\n{}\n{}\n", self.origin, size, b64(root));
        let hint = &sha256(&key.spki_der())[..4];
        let mut sig = hint.to_vec();
        sig.extend(key.sign(text.as_bytes()));
        let name = self.origin.split(" - ").next().unwrap_or("log");
        format!("{text}\n\u{2014} {name} {}\n", b64(&sig))
    }
}
