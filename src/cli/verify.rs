//! `refwarden verify`: verify the signatures and attestations of one image, like
//! `cosign verify` / `notation verify`: discover its referrers, read each signature's bytes
//! (`crate::evidence`) and judge them (`crate::verify`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::image_arg::{self, ImageError};
use super::output::{self, Output, parse_output};
use super::probe::ModeArg;
use super::{EXIT_BAD_INPUT, RegistryArgs, hints};
use crate::discovery::{
    AttachedTo, DiscoveryMethod, DiscoveryOutcome, DiscoveryRequest, Format, Referrer,
};
use crate::evidence::{self, EvidenceError};
use crate::verify::{
    Identity, Keyless, Matcher, NotationTrust, PublicKey, Rejection, Signer, Subject, TrustPolicy,
    TrustedRoot, Unverified, Verdict, Verified,
};

/// Exit code when nothing could be said (registry error, evidence unreadable).
const EXIT_UNKNOWN: u8 = 3;
/// cosign 3's signature predicate: a bundle carrying it is a signature, not an attestation.
const COSIGN_SIGN_V1: &str = "https://sigstore.dev/cosign/sign/v1";
/// Most files read from a `--trust-store` directory.
const MAX_TRUST_STORE_FILES: usize = 256;

/// `refwarden verify`'s own rendering.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq, Default)]
pub enum VerifyText {
    /// One row per candidate referrer.
    #[default]
    Table,
}

/// What must verify (`--type`).
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TypeArg {
    /// A signature (cosign `.sig`, a sigstore bundle of cosign's `sign/v1` or a message
    /// signature, a Notation signature).
    Signature,
    /// An attestation (cosign `.att`, a DSSE referrer, a sigstore bundle with another predicate).
    Attestation,
    /// Any signature or attestation.
    Any,
}

/// Arguments of `refwarden verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Image reference, e.g. `registry.example.com/app:1.0` or `…/app@sha256:…`.
    pub image: String,
    /// A trusted public key (PEM, cosign's `cosign.pub`); repeatable: any may sign.
    #[arg(long = "key", value_name = "FILE")]
    pub keys: Vec<PathBuf>,
    /// Keyless: the certificate's subject alternative name must equal this (an email, a URI).
    #[arg(
        long,
        value_name = "SAN",
        conflicts_with = "certificate_identity_regexp"
    )]
    pub certificate_identity: Option<String>,
    /// Keyless: the SAN must match this regular expression. Anchored: it must match the whole
    /// SAN (`^(?:REGEXP)$`), unlike cosign's unanchored match.
    #[arg(long, value_name = "REGEXP")]
    pub certificate_identity_regexp: Option<String>,
    /// Keyless: the certificate's OIDC issuer must equal this.
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "certificate_oidc_issuer_regexp"
    )]
    pub certificate_oidc_issuer: Option<String>,
    /// Keyless: the OIDC issuer must match this regular expression (anchored, `^(?:REGEXP)$`).
    #[arg(long, value_name = "REGEXP")]
    pub certificate_oidc_issuer_regexp: Option<String>,
    /// Sigstore trust root (`trusted_root.json`: Fulcio CAs, Rekor and CT log keys), needed for
    /// keyless and for transparency-log checks. Read from the file only; nothing is fetched
    /// (no TUF).
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// Notation trust store: a PEM file of root certificates, or a directory of them.
    #[arg(long, value_name = "DIR|FILE")]
    pub trust_store: Option<PathBuf>,
    /// Notation trusted identity, as in `trustpolicy.json`: `x509.subject: C=…, ST=…, O=…` or
    /// `*` (repeatable; needed with --trust-store).
    #[arg(long = "trusted-identity", value_name = "IDENTITY")]
    pub trusted_identities: Vec<String>,
    /// What must verify (repeatable: each given kind needs one verified referrer). Default:
    /// `signature`, or `attestation` when --predicate-type is given.
    #[arg(long = "type", value_enum, value_name = "KIND")]
    pub types: Vec<TypeArg>,
    /// Attestations must carry this in-toto predicate type (exact match).
    #[arg(long, value_name = "URI")]
    pub predicate_type: Option<String>,
    /// Accept signatures without a transparency-log entry (cosign's flag): key signatures
    /// then need no --trusted-root, keyless ones are judged at the current time.
    #[arg(long)]
    pub insecure_ignore_tlog: bool,
    /// Discovery mode: `auto` tries the referrers API and falls back to tags.
    #[arg(long, value_enum, default_value_t = ModeArg::Auto)]
    pub mode: ModeArg,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Output: `table`, `json` / `yaml` (the verification report), or `jsonpath=EXPR`.
    #[arg(long, short = 'o', visible_alias = "format", default_value = "table", value_parser = parse_output::<VerifyText>)]
    pub output: Output<VerifyText>,
}

/// Whether a referrer is a signature or an attestation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Signature,
    Attestation,
}

/// `verified`, `unverified` or `unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Verified,
    Unverified,
    Unknown,
}

/// The verdict of one signature layer.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerVerdict {
    /// Digest of the layer blob that was judged.
    pub layer: String,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// One candidate referrer and what became of it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferrerResult {
    pub digest: String,
    pub format: Format,
    pub method: DiscoveryMethod,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    pub role: Role,
    pub result: Outcome,
    /// The first layer that verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<Verified>,
    /// Unverified or unknown: why (the first failing layer's reason, or what was unreadable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Every layer judged (a cosign `.sig` holds one signature per layer).
    pub signatures: Vec<LayerVerdict>,
    /// Registry requests spent reading its evidence.
    pub requests: u64,
}

/// Registry requests of a run, by phase.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Requests {
    pub resolve: u64,
    pub discovery: u64,
    pub verification: u64,
}

/// What `refwarden verify -o json` prints.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub image: String,
    pub digest: String,
    pub types: Vec<TypeArg>,
    pub result: Outcome,
    pub referrers: Vec<ReferrerResult>,
    pub requests: Requests,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The trust of a run: signatures are judged under `signature`, attestations under
/// `attestation` (the same, plus the predicate type).
struct Policies {
    signature: TrustPolicy,
    attestation: TrustPolicy,
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
fn policies(args: &VerifyArgs) -> Result<Policies, String> {
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

/// The kinds to require: `--type`, else signature (attestation with --predicate-type).
fn requested_types(args: &VerifyArgs) -> Result<Vec<TypeArg>, String> {
    let mut types: Vec<TypeArg> = Vec::new();
    for t in &args.types {
        if !types.contains(t) {
            types.push(*t);
        }
    }
    if types.is_empty() {
        types.push(match args.predicate_type {
            Some(_) => TypeArg::Attestation,
            None => TypeArg::Signature,
        });
    }
    if args.predicate_type.is_some() && types == [TypeArg::Signature] {
        return Err(
            "--predicate-type applies to attestations: add --type attestation (or any)".into(),
        );
    }
    Ok(types)
}

/// cosign 3 signs with the `sign/v1` predicate (or a message signature); any other is an
/// attestation.
fn bundle_role(predicate_type: Option<&str>) -> Role {
    match predicate_type {
        None | Some(COSIGN_SIGN_V1) => Role::Signature,
        Some(_) => Role::Attestation,
    }
}

/// A referrer's role from what discovery saw; `None`: not a signature at all.
fn role_of(r: &Referrer) -> Option<Role> {
    if !evidence::is_verifiable(r.format) {
        return None;
    }
    Some(match r.format {
        Format::CosignAttestation | Format::InTotoDsse => Role::Attestation,
        f if f.is_sigstore_bundle() => bundle_role(r.predicate_type.as_deref()),
        _ => Role::Signature,
    })
}

fn wanted(types: &[TypeArg], role: Role) -> bool {
    types.iter().any(|t| match t {
        TypeArg::Any => true,
        TypeArg::Signature => role == Role::Signature,
        TypeArg::Attestation => role == Role::Attestation,
    })
}

/// Judges one referrer's layers.
fn judge(
    r: &Referrer,
    role: Role,
    read: Result<evidence::ReferrerEvidence, EvidenceError>,
    subject: &Subject,
    policies: &Policies,
    predicate_type: Option<&str>,
) -> ReferrerResult {
    let mut out = ReferrerResult {
        digest: r.digest.clone(),
        format: r.format,
        method: r.method,
        tag: r.tag.clone(),
        repository: r.repository.clone(),
        role,
        result: Outcome::Unverified,
        verified: None,
        reason: None,
        message: None,
        signatures: Vec::new(),
        requests: 0,
    };
    let ev = match read {
        Ok(ev) => ev,
        Err(EvidenceError::Unreadable { reason, message }) => {
            out.result = Outcome::Unknown;
            out.reason = Some(reason.to_string());
            out.message = Some(message);
            return out;
        }
        Err(e) => {
            out.reason = Some(Rejection::MalformedSignature.as_str().to_string());
            out.message = Some(e.to_string());
            return out;
        }
    };
    out.requests = ev.requests;
    let policy = match role {
        Role::Signature => &policies.signature,
        Role::Attestation => &policies.attestation,
    };
    let now = jiff::Timestamp::now();
    for item in &ev.items {
        let mut verdict = crate::verify::verify(&item.evidence(), subject, policy, now);
        if let Verdict::Verified(v) = &verdict
            && r.format.is_sigstore_bundle()
        {
            // A bundle is a signature or an attestation by the predicate it verified with.
            out.role = bundle_role(v.predicate_type.as_deref());
        }
        if let (Verdict::Verified(v), Role::Attestation, Some(want)) =
            (&verdict, out.role, predicate_type)
            && v.predicate_type.as_deref() != Some(want)
        {
            verdict = Verdict::Unverified(Unverified {
                reason: Rejection::PredicateTypeMismatch,
                message: format!(
                    "the attestation's predicate type is {:?}, not {want:?}",
                    v.predicate_type.as_deref().unwrap_or("")
                ),
            });
        }
        match &verdict {
            Verdict::Verified(v) if out.verified.is_none() => {
                out.result = Outcome::Verified;
                out.verified = Some(v.clone());
                out.reason = None;
                out.message = None;
            }
            Verdict::Unverified(u) if out.verified.is_none() && out.reason.is_none() => {
                out.reason = Some(u.reason.as_str().to_string());
                out.message = Some(u.message.clone());
            }
            _ => {}
        }
        out.signatures.push(LayerVerdict {
            layer: item.layer_digest.clone(),
            verdict,
        });
    }
    out
}

/// Runs `refwarden verify`.
///
/// Exit codes: 0 every requested kind has a verified referrer, 1 none verified (each reason
/// printed), 2 bad input (no trust configured, unreadable key…), 3 Unknown (registry error or
/// evidence unreadable).
pub async fn run(args: VerifyArgs) -> ExitCode {
    let structured = args.output.structured().cloned();
    let s = structured.as_ref();
    let bad = |m: String| output::fail(s, EXIT_BAD_INPUT, "BadInput", &m);
    let reference = match image_arg::parse(&args.image) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    let types = match requested_types(&args) {
        Ok(t) => t,
        Err(e) => return bad(e),
    };
    let policies = match policies(&args) {
        Ok(p) => p,
        Err(e) => return bad(e),
    };
    let url = args.registry.url_for(reference.api_registry());
    let client = match args.registry.client(&url).await {
        Ok(c) => c,
        Err(e) => return bad(e),
    };
    let unknown = |m: String| {
        let code = output::fail(s, EXIT_UNKNOWN, "RegistryError", &m);
        hints::print_for(&m);
        code
    };
    let counters = client.counters();
    let start = counters.total_for(client.registry());
    let total = || counters.total_for(client.registry()).saturating_sub(start);
    let progress = super::progress::Progress::start("verifying");
    let mut requests = Requests::default();
    let digest = match image_arg::digest(&client, &reference, &args.image).await {
        Ok(d) => d,
        Err(e) => {
            progress.finish();
            return match e {
                ImageError::BadInput(m) => bad(m),
                ImageError::Registry(m) => unknown(m),
            };
        }
    };
    requests.resolve = total();
    let req = DiscoveryRequest::new(client.registry(), &reference.repository, &digest);
    let outcome = crate::discovery::Discoverer::default()
        .discover(&client, args.mode.into(), None, &req)
        .await;
    requests.discovery = total().saturating_sub(requests.resolve);
    let report = match outcome.as_ref() {
        DiscoveryOutcome::Found(r) => r,
        DiscoveryOutcome::Unknown { reason, message } => {
            progress.finish();
            return unknown(format!("{reason}: {message}"));
        }
    };
    let mut notes = Vec::new();
    let candidates: Vec<(&Referrer, Role)> = report
        .referrers
        .iter()
        .filter(|r| r.attached_to == AttachedTo::Requested)
        .filter_map(|r| role_of(r).map(|role| (r, role)))
        .filter(|(r, role)| {
            // A bundle whose predicate discovery did not see may turn out an attestation.
            let open_bundle = r.format.is_sigstore_bundle() && r.predicate_type.is_none();
            wanted(&types, *role) || (open_bundle && types.contains(&TypeArg::Attestation))
        })
        .collect();
    // Only Notation signs the subject's media type and size; read them only for it.
    let mut subject = Subject {
        digest: digest.clone(),
        media_type: report.subject_media_type.clone().unwrap_or_default(),
        size: 0,
    };
    if candidates.iter().any(|(r, _)| r.format.is_notation()) {
        match evidence::subject(&client, &reference.repository, &digest).await {
            Ok(d) => subject = d,
            Err(e) => {
                progress.finish();
                return unknown(e.to_string());
            }
        }
    }
    let mut results = Vec::new();
    for (r, role) in candidates {
        let read = evidence::read(&client, &reference.repository, r).await;
        let result = judge(
            r,
            role,
            read,
            &subject,
            &policies,
            args.predicate_type.as_deref(),
        );
        if wanted(&types, result.role) {
            results.push(result);
        } else {
            let role = serde_name(result.role);
            notes.push(format!("{} is a {role}: not counted", result.digest));
        }
    }
    requests.verification = total().saturating_sub(requests.resolve + requests.discovery);
    progress.finish();
    let satisfied = |t: &TypeArg| {
        results
            .iter()
            .any(|r| r.result == Outcome::Verified && wanted(std::slice::from_ref(t), r.role))
    };
    let result = if types.iter().all(satisfied) {
        Outcome::Verified
    } else if results.iter().any(|r| r.result == Outcome::Unknown) {
        Outcome::Unknown
    } else {
        Outcome::Unverified
    };
    let verify_report = VerifyReport {
        image: format!("{}/{}@{digest}", reference.registry, reference.repository),
        digest,
        types,
        result,
        referrers: results,
        requests,
        notes,
    };
    match &args.output {
        Output::Structured(st) => {
            if let Err(code) = st.print(&verify_report) {
                return code;
            }
        }
        Output::Text(VerifyText::Table) => out!("{}", render_table(&verify_report)),
    }
    finish(&verify_report)
}

/// The exit code of a report, with the reasons on stderr when nothing verified.
fn finish(r: &VerifyReport) -> ExitCode {
    let kinds: Vec<&str> = r.types.iter().map(type_name).collect();
    let (what, code) = match r.result {
        Outcome::Verified => return ExitCode::SUCCESS,
        Outcome::Unverified if r.referrers.is_empty() => ("found", 1),
        Outcome::Unverified => ("verified", 1),
        Outcome::Unknown => (
            "verified, and some evidence could not be read",
            EXIT_UNKNOWN,
        ),
    };
    eprintln!("error: {}: no {} {what}", r.image, kinds.join(" or "));
    for x in &r.referrers {
        if let (Some(reason), Some(message)) = (&x.reason, &x.message) {
            eprintln!("  {} ({}): {reason}: {message}", x.digest, x.format);
        }
    }
    ExitCode::from(code)
}

fn type_name(t: &TypeArg) -> &'static str {
    match t {
        TypeArg::Signature => "signature",
        TypeArg::Attestation => "attestation",
        TypeArg::Any => "signature or attestation",
    }
}

fn signer_text(by: &Signer) -> String {
    match by {
        Signer::Key { fingerprint } => format!("key {fingerprint}"),
        Signer::Identity { issuer, subject } => {
            format!(
                "identity {subject} (issuer {})",
                issuer.as_deref().unwrap_or("-")
            )
        }
        Signer::Certificate {
            subject,
            fingerprint,
        } => format!("certificate {subject} ({fingerprint})"),
    }
}

fn detail(r: &ReferrerResult) -> String {
    if let Some(v) = &r.verified {
        let mut s = format!("by {}", signer_text(&v.by));
        if let Some(i) = v.log_index {
            s.push_str(&format!("; log index {i}"));
        }
        if let Some(p) = &v.predicate_type {
            s.push_str(&format!("; predicate {p}"));
        }
        return s;
    }
    let failing: Vec<String> = r
        .signatures
        .iter()
        .filter_map(|l| match &l.verdict {
            Verdict::Unverified(u) => Some(format!("{}: {}", u.reason, u.message)),
            Verdict::Verified(_) => None,
        })
        .collect();
    match (failing.is_empty(), &r.reason, &r.message) {
        (true, Some(reason), Some(message)) => format!("{reason}: {message}"),
        _ => failing.join(" | "),
    }
}

/// The serde name of a unit variant (`signature`, `verified`).
fn serde_name(v: impl Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// One row per candidate referrer, then the result and the requests.
pub fn render_table(r: &VerifyReport) -> String {
    let rows: Vec<Vec<String>> = r
        .referrers
        .iter()
        .map(|x| {
            let found = match &x.tag {
                Some(t) => format!("{} {t}", x.method),
                None => x.method.to_string(),
            };
            vec![
                x.digest.clone(),
                serde_name(x.role),
                x.format.to_string(),
                found,
                serde_name(x.result),
                detail(x),
            ]
        })
        .collect();
    let mut out = format!("{}\n\n", r.image);
    out.push_str(&output::table(
        &["DIGEST", "ROLE", "FORMAT", "FOUND BY", "RESULT", "DETAIL"],
        &rows,
    ));
    let verified = r
        .referrers
        .iter()
        .filter(|x| x.result == Outcome::Verified)
        .count();
    out.push_str(&format!(
        "\n{}: {verified} of {} referrer(s) verified ({}); requests: resolve {}, discovery {}, verification {}\n",
        match r.result {
            Outcome::Verified => "verified",
            Outcome::Unverified => "not verified",
            Outcome::Unknown => "unknown",
        },
        r.referrers.len(),
        r.types.iter().map(type_name).collect::<Vec<_>>().join(", "),
        r.requests.resolve,
        r.requests.discovery,
        r.requests.verification,
    ));
    for n in &r.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}
