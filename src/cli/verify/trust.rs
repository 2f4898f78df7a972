//! `refwarden verify`'s trust: the flags (`--key`, `--certificate-identity…`, `--trusted-root`,
//! `--trust-store`, `--trusted-identity`) read and checked into the verifier's trust policies.

use std::path::{Path, PathBuf};

use super::VerifyArgs;
use crate::verify::{
    Identity, Keyless, Matcher, NotationTrust, PublicKey, TrustPolicy, TrustedRoot,
};

/// Most files read from a `--trust-store` directory.
const MAX_TRUST_STORE_FILES: usize = 256;

/// The trust of a run: signatures are judged under `signature`, attestations under
/// `attestation` (the same, plus the predicate type).
pub(super) struct Policies {
    pub(super) signature: TrustPolicy,
    pub(super) attestation: TrustPolicy,
}

fn read_file(flag: &str, path: &Path) -> Result<String, String> {
    crate::input::read_bounded(path).map_err(|e| format!("{flag} {}: {e}", path.display()))
}

fn matcher(
    flag: &str,
    exact: &Option<String>,
    re: &Option<String>,
) -> Result<Option<Matcher>, String> {
    match (exact, re) {
        (Some(s), _) => Ok(Some(Matcher::exact(s.clone()))),
        (None, Some(r)) => Matcher::regex(r)
            .map(Some)
            .map_err(|e| format!("{flag}-regexp: {e}")),
        (None, None) => Ok(None),
    }
}

/// PEM text of every certificate file of a trust store (a file, or a directory's files).
fn trust_store_pem(path: &Path) -> Result<String, String> {
    let flag = "--trust-store";
    let meta = std::fs::metadata(path).map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    if !meta.is_dir() {
        return read_file(flag, path);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| format!("{flag} {}: {e}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "{flag} {}: the directory has no files",
            path.display()
        ));
    }
    if files.len() > MAX_TRUST_STORE_FILES {
        return Err(format!(
            "{flag} {}: more than {MAX_TRUST_STORE_FILES} files",
            path.display()
        ));
    }
    let mut pem = String::new();
    for f in files {
        pem.push_str(&read_file(flag, &f)?);
        pem.push('\n');
    }
    Ok(pem)
}

/// The trust the flags configure; an error is bad input (exit 2).
pub(super) fn policies(args: &VerifyArgs) -> Result<Policies, String> {
    let mut p = TrustPolicy::default();
    for path in &args.keys {
        let text = read_file("--key", path)?;
        let key =
            PublicKey::from_pem(&text).map_err(|e| format!("--key {}: {e}", path.display()))?;
        p.keys.push(key);
    }
    if let Some(path) = &args.trusted_root {
        let text = read_file("--trusted-root", path)?;
        let root = TrustedRoot::from_json(text.as_bytes())
            .map_err(|e| format!("--trusted-root {}: {e}", path.display()))?;
        p.trusted_root = Some(root);
    }
    let san = matcher(
        "--certificate-identity",
        &args.certificate_identity,
        &args.certificate_identity_regexp,
    )?;
    let issuer = matcher(
        "--certificate-oidc-issuer",
        &args.certificate_oidc_issuer,
        &args.certificate_oidc_issuer_regexp,
    )?;
    match (san, issuer) {
        (Some(san), Some(issuer)) => {
            if p.trusted_root.is_none() {
                return Err("keyless verification (--certificate-identity…) needs --trusted-root FILE (the Fulcio CAs and log keys)".into());
            }
            let mut keyless = Keyless::new(vec![Identity::new(issuer, san)]);
            keyless.require_tlog = !args.insecure_ignore_tlog;
            p.keyless = Some(keyless);
        }
        (Some(_), None) => {
            return Err(
                "--certificate-identity[-regexp] needs --certificate-oidc-issuer[-regexp]".into(),
            );
        }
        (None, Some(_)) => {
            return Err(
                "--certificate-oidc-issuer[-regexp] needs --certificate-identity[-regexp]".into(),
            );
        }
        (None, None) => {}
    }
    if !p.keys.is_empty() {
        if p.trusted_root.is_none() && !args.insecure_ignore_tlog {
            return Err("--key signatures need a verified transparency-log entry (as cosign): give --trusted-root FILE with the Rekor key, or --insecure-ignore-tlog".into());
        }
        p.keys_require_tlog = !args.insecure_ignore_tlog;
    }
    match &args.trust_store {
        Some(path) => {
            let pem = trust_store_pem(path)?;
            let ids: Vec<&str> = args.trusted_identities.iter().map(String::as_str).collect();
            let trust = NotationTrust::new(pem.as_bytes(), &ids)
                .map_err(|e| format!("--trust-store {}: {e}", path.display()))?;
            p.notation = Some(trust);
        }
        None if !args.trusted_identities.is_empty() => {
            return Err("--trusted-identity needs --trust-store".into());
        }
        None => {}
    }
    if p.keys.is_empty() && p.keyless.is_none() && p.notation.is_none() {
        return Err("no trust configured: give --key FILE, or --certificate-identity[-regexp] with --certificate-oidc-issuer[-regexp] and --trusted-root FILE, or --trust-store with --trusted-identity".into());
    }
    let mut attestation = p.clone();
    attestation.predicate_type = args.predicate_type.clone();
    Ok(Policies {
        signature: p,
        attestation,
    })
}
