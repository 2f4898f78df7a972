//! Notation trust: x509 trust-store roots and trusted identities (`x509.subject: …` or `*`).

use super::certs::parse_cert;
use super::encoding::pem_blocks;

/// What is wrong with a Notation trust store or trusted identity.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TrustStoreError {
    #[error("trust store certificate #{index}: {message}")]
    Certificate { index: usize, message: String },
    #[error("trust store has no certificate")]
    Empty,
    #[error("trusted identity {identity:?}: {message}")]
    Identity { identity: String, message: String },
}

/// A trusted identity of a Notation trust policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustedIdentity {
    /// `*`: any certificate that chains to the trust store.
    Any,
    /// `x509.subject: C=US, ST=WA, O=Notary`: every attribute given must be in
    /// the leaf's subject with the same value (Notation's subset match).
    Subject(Vec<(String, String)>),
}

impl TrustedIdentity {
    /// Parses `*` or `x509.subject: <DN>`; the DN must name at least C, ST and O
    /// (as Notation requires).
    pub fn parse(text: &str) -> Result<Self, TrustStoreError> {
        let err = |m: &str| TrustStoreError::Identity {
            identity: text.to_string(),
            message: m.to_string(),
        };
        let t = text.trim();
        if t == "*" {
            return Ok(TrustedIdentity::Any);
        }
        let dn = t
            .strip_prefix("x509.subject:")
            .ok_or_else(|| err("must be \"*\" or start with \"x509.subject:\""))?;
        let attrs = parse_dn(dn).map_err(|m| err(&m))?;
        for required in ["C", "ST", "O"] {
            if !attrs.iter().any(|(k, _)| k == required) {
                return Err(err(&format!("the subject must name {required}")));
            }
        }
        Ok(TrustedIdentity::Subject(attrs))
    }

    pub(crate) fn matches(&self, subject: &[(String, String)]) -> bool {
        match self {
            TrustedIdentity::Any => true,
            TrustedIdentity::Subject(want) => want
                .iter()
                .all(|(k, v)| subject.iter().any(|(sk, sv)| sk == k && sv == v)),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            TrustedIdentity::Any => "*".into(),
            TrustedIdentity::Subject(a) => a
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// `C=US, ST=WA, O=Acme\, Inc.` → attribute pairs (`\,` escapes a comma).
fn parse_dn(dn: &str) -> Result<Vec<(String, String)>, String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = dn.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => cur.push(n),
                None => return Err("dangling escape".into()),
            },
            ',' => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    let mut out = Vec::new();
    for p in parts {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("{:?} is not TYPE=value", p.trim()))?;
        let (k, v) = (k.trim().to_ascii_uppercase(), v.trim().to_string());
        if k.is_empty() || v.is_empty() {
            return Err(format!("{:?} is not TYPE=value", p.trim()));
        }
        if out.iter().any(|(ok, _): &(String, String)| *ok == k) {
            return Err(format!("attribute {k} given twice"));
        }
        out.push((k, v));
    }
    Ok(out)
}

/// A Notation trust store (`ca` type) and the policy's trusted identities.
#[derive(Clone, Debug)]
pub struct NotationTrust {
    pub(crate) roots: Vec<Vec<u8>>,
    pub(crate) identities: Vec<TrustedIdentity>,
}

impl NotationTrust {
    /// Roots from PEM (or one DER certificate) and identities as written in
    /// `trustpolicy.json`'s `trustedIdentities`.
    pub fn new(roots: &[u8], identities: &[&str]) -> Result<Self, TrustStoreError> {
        let mut trust = NotationTrust {
            roots: Vec::new(),
            identities: Vec::new(),
        };
        trust.add_roots(roots)?;
        for id in identities {
            trust.identities.push(TrustedIdentity::parse(id)?);
        }
        if trust.identities.is_empty() {
            return Err(TrustStoreError::Identity {
                identity: String::new(),
                message: "no trusted identity (use \"*\" to trust any signer of the store)".into(),
            });
        }
        Ok(trust)
    }

    /// Adds the certificates of one trust-store file (PEM, or a single DER certificate).
    pub fn add_roots(&mut self, bytes: &[u8]) -> Result<(), TrustStoreError> {
        let start = self.roots.len();
        let ders = match std::str::from_utf8(bytes) {
            Ok(text) if text.contains("-----BEGIN") => {
                pem_blocks(text, &["CERTIFICATE"]).map_err(|m| TrustStoreError::Certificate {
                    index: start,
                    message: m,
                })?
            }
            _ => vec![bytes.to_vec()],
        };
        if ders.is_empty() {
            return Err(TrustStoreError::Empty);
        }
        for (i, der) in ders.into_iter().enumerate() {
            parse_cert(&der).map_err(|message| TrustStoreError::Certificate {
                index: start + i,
                message,
            })?;
            self.roots.push(der);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities() {
        assert_eq!(TrustedIdentity::parse("*").unwrap(), TrustedIdentity::Any);
        let id = TrustedIdentity::parse("x509.subject: C=US, ST=WA, O=Acme\\, Inc., CN=x").unwrap();
        let subject = vec![
            ("C".to_string(), "US".to_string()),
            ("ST".to_string(), "WA".to_string()),
            ("O".to_string(), "Acme, Inc.".to_string()),
            ("CN".to_string(), "x".to_string()),
        ];
        assert!(id.matches(&subject));
        assert!(!id.matches(&subject[..3]));
        assert!(TrustedIdentity::parse("x509.subject: C=US, O=Acme").is_err());
        assert!(TrustedIdentity::parse("subject: C=US").is_err());
        assert!(TrustedIdentity::parse("x509.subject: C=US, C=DE, ST=x, O=y").is_err());
    }

    #[test]
    fn store_errors() {
        assert!(matches!(
            NotationTrust::new(b"not a cert", &["*"]),
            Err(TrustStoreError::Certificate { index: 0, .. })
        ));
    }
}
