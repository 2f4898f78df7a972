//! `refwarden evaluate`: the controller's judgement on files, without a cluster.
//!
//! Reads ReferrerPolicies, RegistryProfiles and workloads (or a `kubectl get
//! pods -A -o json` snapshot), probes the profiles (or takes their status from
//! the files), and runs `policy::evaluate_policy` — the very function the
//! controller's reconciler runs.
//!
//! Exit codes: 0 all compliant, 1 violations found, 3 some images Unknown and
//! no violations, 2 bad input (including a policy that is not Ready, e.g. an
//! `images.include` glob matching none of the workloads' images, and nothing to judge:
//! no workload selected by any policy).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Serialize;

use super::output::{self, Output, parse_output, table};
use super::progress::Progress;
use super::registry_args::CredentialSource;
use super::reports::{self, Case, PolicyCases};
use super::{EXIT_BAD_INPUT, RegistryArgs, hints};
use crate::crd::{
    CredentialsProvider, ReferrerPolicyStatus, RegistryProfile, RegistryProfileStatus, WorkloadRef,
};
use crate::discovery::{Discoverer, DiscovererConfig};
use crate::manifests::{self, Origin};
use crate::policy::Evaluation;
use crate::policy::{self, PolicyInput};
use crate::probe::{self, ProbeOptions, status::StatusContext};
use crate::registry::RegistryClient;
use crate::registry::directory::same_registry;
use crate::registry::profile_config::{self, ProfileObjects};
use crate::registry::{RegistryDirectory, RegistryEntry};
use std::sync::Arc;

/// Exit code: some images Unknown, no violations.
pub const EXIT_UNKNOWN: u8 = 3;

/// Arguments of `refwarden evaluate`.
#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// Files or folders (YAML/JSON, multi-document; folders are read recursively; `-` for
    /// standard input). Files in folders that are not Kubernetes objects (kustomization.yaml,
    /// Helm templates) are skipped with a note.
    #[arg(short = 'f', long = "filename", required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Where RegistryProfile status comes from: probe the registries now, or the status in the files.
    #[arg(long, value_enum, default_value_t = StatusFrom::Probe)]
    pub registry_profile_status_from: StatusFrom,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Output: `table`, `junit` (JUnit XML: a test case per image × policy, failures for
    /// violations, skipped for Unknown), `sarif` (SARIF 2.1.0 for code scanning), `json` /
    /// `yaml` (the statuses the controller would write), or `jsonpath=EXPR`.
    #[arg(long, short = 'o', visible_alias = "format", default_value = "table", value_parser = parse_output::<EvalText>)]
    pub output: Output<EvalText>,
}

/// `--registry-profile-status-from` values.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum StatusFrom {
    /// Probe each RegistryProfile's registry.
    Probe,
    /// Use `status` from the files (no probe).
    File,
}

/// `refwarden evaluate`'s own renderings.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum EvalText {
    /// Tables for terminals.
    Table,
    /// JUnit XML (junit-10.xsd).
    Junit,
    /// SARIF 2.1.0.
    Sarif,
}

/// One evaluated object in the report.
#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Evaluated<S> {
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
    /// The status the controller would write.
    pub status: S,
    /// Every judged image (not the status's bounded lists), for the JUnit and SARIF reports.
    #[serde(skip)]
    pub evaluation: Option<Evaluation>,
}

/// What `evaluate` prints with `-o json|yaml`.
#[derive(Serialize, Debug, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationReport {
    /// RegistryProfile statuses.
    pub registry_profiles: Vec<Evaluated<RegistryProfileStatus>>,
    /// ReferrerPolicy statuses.
    pub referrer_policies: Vec<Evaluated<ReferrerPolicyStatus>>,
    /// Documents that were skipped (kind not read by refwarden).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// Files in folders that were skipped (not Kubernetes objects), with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped_files: Vec<String>,
    /// Where each workload was read (for SARIF locations).
    #[serde(skip)]
    pub workload_origins: BTreeMap<WorkloadRef, Origin>,
    /// The first input path (SARIF's location for images without a workload file).
    #[serde(skip)]
    pub first_input: PathBuf,
}

/// The client of a RegistryProfile read from a file: the profile's own settings
/// (`profile_config::client_config`, as the controller builds them), with credentials, CA and
/// timeout from the command-line flags, since the Secrets and ConfigMaps it names are not in
/// the files.
async fn entry_for_profile(
    rp: &RegistryProfile,
    flags: &RegistryArgs,
    creds: &CredentialSource,
) -> Result<(String, RegistryClient), String> {
    let mut spec = rp.spec.clone();
    spec.credentials_secret_ref = None;
    spec.ca_bundle = None;
    spec.insecure_skip_tls_verify |= flags.insecure_skip_tls_verify;
    let mut cfg = profile_config::client_config(&spec, ProfileObjects::default(), Arc::default())
        .map_err(|b| b.message)?;
    let host = profile_config::registry_host(&spec).map_err(|b| b.message)?;
    let access = flags.implicit_access()?;
    if access.ca_bundle_pem.is_some() {
        cfg.ca_bundle_pem = access.ca_bundle_pem;
    }
    cfg.timeout = Duration::from_secs(flags.timeout_seconds);
    cfg.credentials = if spec.credentials_provider == CredentialsProvider::AwsEcr {
        crate::lifecycle::aws::ecr_credentials_for(&spec.registry_url)
            .await
            .map_err(|e| format!("spec.credentialsProvider AwsEcr: {e}"))?
    } else {
        creds.for_host(&host).await?
    };
    let client = RegistryClient::new(cfg).map_err(|e| e.to_string())?;
    Ok((host, client))
}

/// Registry hosts of the pods' images (as in their references).
fn image_registries(pods: &[crate::policy::PodInfo]) -> BTreeSet<String> {
    use crate::policy::pods::ImageSource;
    pods.iter()
        .flat_map(|p| p.images.iter())
        .filter_map(|i| match &i.source {
            ImageSource::Digest { key, .. } => Some(key.registry.clone()),
            ImageSource::Tag(r) => Some(r.registry.clone()),
            ImageSource::Unresolvable { .. } => None,
        })
        .collect()
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// Runs the evaluation and returns the report, or a bad-input message.
pub async fn evaluate(args: &EvaluateArgs) -> Result<EvaluationReport, String> {
    let inputs = manifests::load(&args.paths).map_err(|e| e.to_string())?;
    for (o, k) in &inputs.skipped {
        eprintln!("note: skipped (kind not evaluated): {o}: {k}");
    }
    for (p, why) in &inputs.skipped_files {
        eprintln!("note: skipped file: {}: {why}", p.display());
    }
    if inputs.policies.is_empty() {
        // A CI gate pointed at the wrong folder must not pass as "all compliant".
        return Err(format!(
            "no ReferrerPolicy in {}: nothing to evaluate",
            args.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (origin, p) in &inputs.policies {
        let name = p.metadata.name.clone().unwrap_or_default();
        if !seen.insert(name.clone()) {
            return Err(format!(
                "{origin}: ReferrerPolicy {name:?} is defined twice"
            ));
        }
    }
    let mut report = EvaluationReport {
        skipped: inputs
            .skipped
            .iter()
            .map(|(o, k)| format!("{o}: {k}"))
            .collect(),
        skipped_files: inputs
            .skipped_files
            .iter()
            .map(|(p, why)| format!("{}: {why}", p.display()))
            .collect(),
        workload_origins: inputs.workload_origins.clone(),
        first_input: args.paths.first().cloned().unwrap_or_default(),
        ..Default::default()
    };
    let progress = Progress::start("evaluating");
    progress.set_length((inputs.profiles.len() + inputs.policies.len()) as u64);

    let creds = args.registry.credential_source()?;
    // Registries without a profile: the same flags, credentials looked up per host.
    let profile_hosts: BTreeSet<String> = inputs
        .profiles
        .iter()
        .filter_map(|(_, rp)| profile_config::registry_host(&rp.spec).ok())
        .collect();
    let implicit: Vec<String> = image_registries(&inputs.pods)
        .into_iter()
        .filter(|h| !profile_hosts.iter().any(|p| same_registry(p, h)))
        .collect();
    let image_hosts = image_registries(&inputs.pods);
    let used_profiles: BTreeSet<String> = inputs
        .profiles
        .iter()
        .filter(|(_, rp)| {
            let name = rp.metadata.name.as_deref().unwrap_or_default();
            let named = inputs
                .policies
                .iter()
                .any(|(_, p)| p.spec.registry_profiles.iter().any(|n| n == name));
            let host = profile_config::registry_host(&rp.spec).ok();
            named || host.is_some_and(|h| image_hosts.iter().any(|i| same_registry(&h, i)))
        })
        .filter_map(|(_, rp)| rp.metadata.name.clone())
        .collect();
    if creds.is_explicit() && profile_hosts.len() + implicit.len() > 1 {
        return Err(format!(
            "--username is for one registry, but this run reads {}: log in to each with \
             `docker login` (or pass --docker-config FILE with an entry per registry)",
            profile_hosts
                .iter()
                .chain(implicit.iter())
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let directory_access = args.registry.implicit_access()?;
    let mut directory = RegistryDirectory::with_implicit(directory_access);
    for (origin, rp) in &inputs.profiles {
        let name = rp.metadata.name.clone().unwrap_or_default();
        progress.set_message(format!("RegistryProfile {name}"));
        let used = used_profiles.contains(&name);
        if !used && args.registry_profile_status_from == StatusFrom::File {
            // No workload reads through it: its status is reported as stored, nothing is
            // called (no AWS credentials for an ECR profile nobody uses).
            report.registry_profiles.push(Evaluated {
                kind: "RegistryProfile".into(),
                name,
                status: rp.status.clone().unwrap_or_default(),
                evaluation: None,
            });
            progress.inc();
            continue;
        }
        let (host, client) = entry_for_profile(rp, &args.registry, &creds)
            .await
            .map_err(|e| format!("{origin}: RegistryProfile {name}: {e}"))?;
        let status = match args.registry_profile_status_from {
            StatusFrom::File => rp.status.clone().unwrap_or_default(),
            StatusFrom::Probe => {
                let probe_report = probe::run(&client, &ProbeOptions::for_profile(&rp.spec)).await;
                probe::status::from_report(
                    &probe_report,
                    &StatusContext {
                        generation: rp.metadata.generation,
                        requested_mode: rp.spec.discovery.mode,
                        insecure_skip_tls_verify: rp.spec.insecure_skip_tls_verify,
                        previous: rp.status.as_ref(),
                        now: now(),
                    },
                )
            }
        };
        directory.insert(
            &name,
            &host,
            Ok(RegistryEntry {
                profile: Some(name.clone()),
                client,
                mode: rp.spec.discovery.mode,
                hint: status.discovery_mode,
            }),
        );
        report.registry_profiles.push(Evaluated {
            kind: "RegistryProfile".into(),
            name,
            status,
            evaluation: None,
        });
        progress.inc();
    }

    for host in &implicit {
        let c = creds.for_host(host).await?;
        if !c.is_anonymous() {
            directory.set_pull_credentials(host, &creds.origin(), c);
        }
    }

    let discoverer = Discoverer::new(DiscovererConfig::default());
    let verifier = policy::Verifier::new();
    for (origin, rp) in &inputs.policies {
        let name = rp.metadata.name.clone().unwrap_or_default();
        progress.set_message(format!("ReferrerPolicy {name}"));
        let result = policy::evaluate_policy(
            &PolicyInput {
                name: &name,
                spec: &rp.spec,
                generation: rp.metadata.generation,
                previous: rp.status.as_ref(),
                trust: &inputs.trust,
            },
            inputs.pods.iter(),
            &inputs.namespaces,
            &directory,
            &discoverer,
            &verifier,
            now(),
        )
        .await;
        if let Some(e) = &result.invalid {
            progress.finish();
            return Err(format!("{origin}: ReferrerPolicy {name}: {e}"));
        }
        report.referrer_policies.push(Evaluated {
            kind: "ReferrerPolicy".into(),
            name,
            status: result.status,
            evaluation: result.evaluation,
        });
        progress.inc();
    }
    progress.finish();
    let judged_pods: u32 = report
        .referrer_policies
        .iter()
        .map(|p| p.status.summary.pods)
        .sum();
    if judged_pods == 0 {
        // Policies without workloads (forgot `-f deploy/`, an empty `kubectl get pods`
        // List) must not pass as compliant.
        return Err(format!(
            "nothing to judge: no workload in {} is selected by any ReferrerPolicy ({} pod(s) \
             read); pass the workloads too, e.g. `-f policies/ -f deploy/` or \
             `kubectl get pods -A -o json | refwarden evaluate -f policies/ -f -`",
            args.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            inputs.pods.len()
        ));
    }
    Ok(report)
}

/// The exit code a report leads to.
pub fn exit_code(report: &EvaluationReport) -> u8 {
    let violations: u32 = report
        .referrer_policies
        .iter()
        .map(|p| p.status.summary.non_compliant)
        .sum();
    let unknown: u32 = report
        .referrer_policies
        .iter()
        .map(|p| p.status.summary.unknown)
        .sum();
    let not_ready = report
        .referrer_policies
        .iter()
        .any(|p| cond(&p.status.conditions, crate::conditions::READY) == "False");
    if violations > 0 {
        1
    } else if not_ready {
        EXIT_BAD_INPUT
    } else if unknown > 0 {
        EXIT_UNKNOWN
    } else {
        0
    }
}

fn cond<'a>(
    conds: &'a [k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    t: &str,
) -> &'a str {
    crate::conditions::find(conds, t)
        .map(|c| c.status.as_str())
        .unwrap_or("-")
}

/// Renders the report for a terminal.
pub fn render_table(report: &EvaluationReport) -> String {
    let mut out = String::new();
    if !report.registry_profiles.is_empty() {
        let rows: Vec<Vec<String>> = report
            .registry_profiles
            .iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    p.status.capabilities.referrers_api.state.to_string(),
                    format!("{}/{}", p.status.score, p.status.score_out_of),
                    p.status
                        .discovery_mode
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| "-".into()),
                    cond(&p.status.conditions, "Ready").to_string(),
                ]
            })
            .collect();
        out.push_str("REGISTRY PROFILES\n");
        out.push_str(&table(
            &["NAME", "REFERRERS", "SCORE", "MODE", "READY"],
            &rows,
        ));
        out.push('\n');
    }
    let rows: Vec<Vec<String>> = report
        .referrer_policies
        .iter()
        .map(|p| {
            let s = &p.status.summary;
            vec![
                p.name.clone(),
                cond(&p.status.conditions, policy::COMPLIANT).to_string(),
                s.pods.to_string(),
                s.images.to_string(),
                s.compliant.to_string(),
                s.non_compliant.to_string(),
                s.unknown.to_string(),
            ]
        })
        .collect();
    out.push_str("REFERRER POLICIES\n");
    out.push_str(&table(
        &[
            "NAME",
            "COMPLIANT",
            "PODS",
            "IMAGES",
            "OK",
            "VIOLATIONS",
            "UNKNOWN",
        ],
        &rows,
    ));
    for p in &report.referrer_policies {
        let not_ready = crate::conditions::find(&p.status.conditions, crate::conditions::READY)
            .filter(|c| c.status == "False");
        if p.status.violations.is_empty() && p.status.unknown.is_empty() && not_ready.is_none() {
            continue;
        }
        out.push_str(&format!("\n{}:\n", p.name));
        if let Some(c) = not_ready {
            out.push_str(&format!("  NOT READY {}: {}\n", c.reason, c.message));
        }
        for v in &p.status.violations {
            out.push_str(&format!(
                "  MISSING {}  {}  via {}  run by {} pod(s) of {}\n",
                v.missing_labels().join(","),
                reports::image_name(v.reference.as_deref(), &v.image, Some(&v.digest)),
                v.discovery_method.as_deref().unwrap_or("-"),
                v.pods,
                reports::workloads_text(&v.workloads)
            ));
        }
        for vi in &p.status.verified {
            for r in &vi.referrers {
                out.push_str(&format!(
                    "  VERIFIED {}  {}@{}  by {} ({}{})\n",
                    r.requirement,
                    vi.image,
                    vi.digest,
                    r.signer,
                    r.format,
                    r.log_index
                        .map(|i| format!(", log index {i}"))
                        .unwrap_or_default()
                ));
            }
        }
        for u in &p.status.unknown {
            out.push_str(&format!(
                "  UNKNOWN {}  {}  {}  run by {} pod(s) of {}\n",
                u.reason,
                reports::image_name(None, &u.image, u.digest.as_deref()),
                u.message,
                u.pods,
                reports::workloads_text(&u.workloads)
            ));
            if let Some(h) = hints::for_message(&format!("{}: {}", u.reason, u.message)) {
                out.push_str(&format!("    hint: {h}\n"));
            }
        }
        let shown = p.status.violations.len() + p.status.unknown.len();
        let total = (p.status.summary.non_compliant + p.status.summary.unknown) as usize;
        if total > shown {
            out.push_str(&format!(
                "  … and {} more (the status lists at most maxReportedViolations; -o junit or -o sarif list every image)\n",
                total - shown
            ));
        }
    }
    out
}

/// Every judged image of each policy, for the JUnit and SARIF reports.
fn cases(report: &EvaluationReport) -> Vec<PolicyCases<'_>> {
    report
        .referrer_policies
        .iter()
        .map(|p| {
            let not_ready = crate::conditions::find(&p.status.conditions, crate::conditions::READY)
                .filter(|c| c.status == "False")
                .map(|c| (c.reason.clone(), c.message.clone()));
            let mut cases = Vec::new();
            if let Some(e) = &p.evaluation {
                cases.extend(e.compliant.iter().map(Case::Compliant));
                cases.extend(e.violations.iter().map(Case::Violation));
                cases.extend(e.unknown.iter().map(Case::Unknown));
            }
            PolicyCases {
                policy: &p.name,
                not_ready,
                cases,
            }
        })
        .collect()
}

/// Runs `refwarden evaluate`.
pub async fn run(args: EvaluateArgs) -> ExitCode {
    let structured = args.output.structured().cloned();
    let report = match evaluate(&args).await {
        Ok(r) => r,
        Err(e) => return output::fail(structured.as_ref(), EXIT_BAD_INPUT, "BadInput", &e),
    };
    let rendered = match &args.output {
        Output::Text(EvalText::Table) => Ok(render_table(&report)),
        Output::Text(EvalText::Junit) => Ok(reports::junit(
            &cases(&report),
            &now().0.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
        )),
        Output::Text(EvalText::Sarif) => serde_json::to_string_pretty(&reports::sarif(
            &cases(&report),
            &report.workload_origins,
            &report.first_input,
        ))
        .map(|s| s + "\n")
        .map_err(|e| e.to_string()),
        Output::Structured(s) => s.render(&report),
    };
    match rendered {
        Ok(s) => out!("{s}"),
        Err(e) => {
            eprintln!("error: cannot render the report: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::from(exit_code(&report))
}
