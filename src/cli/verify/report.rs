//! `refwarden verify`'s report: its types (what `-o json` prints), the table, and the exit code
//! with the reasons on stderr.

use std::process::ExitCode;

use serde::Serialize;

use super::{EXIT_UNKNOWN, TypeArg};
use crate::cli::output;
use crate::discovery::{DiscoveryMethod, Format};
use crate::verify::{Signer, Verdict, Verified};

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
pub enum VerifyOutcome {
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
    pub result: VerifyOutcome,
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
    pub result: VerifyOutcome,
    pub referrers: Vec<ReferrerResult>,
    pub requests: Requests,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The exit code of a report, with the reasons on stderr when nothing verified.
pub(super) fn finish(r: &VerifyReport) -> ExitCode {
    let kinds: Vec<&str> = r.types.iter().map(type_name).collect();
    let (what, code) = match r.result {
        VerifyOutcome::Verified => return ExitCode::SUCCESS,
        VerifyOutcome::Unverified if r.referrers.is_empty() => ("found", 1),
        VerifyOutcome::Unverified => ("verified", 1),
        VerifyOutcome::Unknown => (
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
pub(super) fn serde_name(v: impl Serialize) -> String {
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
        .filter(|x| x.result == VerifyOutcome::Verified)
        .count();
    out.push_str(&format!(
        "\n{}: {verified} of {} referrer(s) verified ({}); requests: resolve {}, discovery {}, verification {}\n",
        match r.result {
            VerifyOutcome::Verified => "verified",
            VerifyOutcome::Unverified => "not verified",
            VerifyOutcome::Unknown => "unknown",
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
