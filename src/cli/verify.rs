//! `refwarden verify`: verify the signatures and attestations of one image, like
//! `cosign verify` / `notation verify`: discover its referrers, read each signature's bytes
//! (`crate::evidence`) and judge them (`crate::verify`).
//!
//! This file holds the arguments and the run; the trust the flags configure is `trust`, the
//! judging of each referrer `judge`, the report and its rendering `report`.

mod judge;
mod report;
mod trust;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::image_arg;
use super::output::{self, Output, parse_output};
use super::probe::ModeArg;
use super::{EXIT_BAD_INPUT, RegistryArgs, hints};
use crate::discovery::{AttachedTo, DiscoveryOutcome, DiscoveryRequest, Referrer};
use crate::evidence;
use crate::verify::Subject;
use judge::{judge, role_of, wanted};
use report::{Requests, Role, VerifyOutcome, VerifyReport, finish, render_table, serde_name};
use trust::policies;

/// Exit code when nothing could be said (registry error, evidence unreadable).
const EXIT_UNKNOWN: u8 = 3;

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
            return e.fail(s, EXIT_UNKNOWN);
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
            .any(|r| r.result == VerifyOutcome::Verified && wanted(std::slice::from_ref(t), r.role))
    };
    let result = if types.iter().all(satisfied) {
        VerifyOutcome::Verified
    } else if results.iter().any(|r| r.result == VerifyOutcome::Unknown) {
        VerifyOutcome::Unknown
    } else {
        VerifyOutcome::Unverified
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
