//! `refwarden lifecycle analyze`: lifecycle / GC rules that delete, orphan, count or
//! hide referrers. Exit codes: 0 no findings, 1 findings, 2 bad input, 3 the rules
//! could not be read (AWS API error).
//! `--from-cluster` reads the deployed digests from the running pods of the
//! current kubeconfig context (list pods in all namespaces).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::EXIT_BAD_INPUT;
use super::output::{self, Output, parse_output};
use crate::crd::{LifecycleFinding, RegistryFamily};
use crate::lifecycle::{self, aws, ecr, simulate};

/// `refwarden lifecycle …`
#[derive(Subcommand, Debug)]
pub enum LifecycleCommand {
    /// Analyse a lifecycle / cleanup / GC configuration.
    ///
    /// Exit codes: 0 no findings, 1 findings (including `InvalidPolicy`: a rule the vendor
    /// would reject), 2 bad input (a file that cannot be read, a field the format does not
    /// have, a wrong type), 3 the rules could not be read (AWS API error).
    Analyze(AnalyzeArgs),
}

/// Arguments of `refwarden lifecycle analyze`.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args([
    "ecr_policy", "gitlab_policy", "gar_policy", "acr_policy", "harbor_policy",
    "distribution_config", "quay_policy", "ecr_repository"
])))]
pub struct AnalyzeArgs {
    /// ECR lifecycle policy JSON (`{"rules":[…]}`).
    #[arg(long)]
    pub ecr_policy: Option<PathBuf>,
    /// GitLab `container_expiration_policy_attributes` (JSON or YAML).
    #[arg(long)]
    pub gitlab_policy: Option<PathBuf>,
    /// GAR cleanup policy file as gcloud takes it (JSON array), or the `spec.lifecycle.gar` block.
    #[arg(long)]
    pub gar_policy: Option<PathBuf>,
    /// ACR `spec.lifecycle.acr` block: `retentionPolicy` and `purge` (JSON or YAML).
    #[arg(long)]
    pub acr_policy: Option<PathBuf>,
    /// Harbor `spec.lifecycle.harbor` block: `retention` and `gc` (JSON or YAML).
    #[arg(long)]
    pub harbor_policy: Option<PathBuf>,
    /// distribution `spec.lifecycle.distribution` block: `version`, `garbageCollection.deleteUntagged`.
    #[arg(long)]
    pub distribution_config: Option<PathBuf>,
    /// Quay `spec.lifecycle.quay` block: `autoPrune`, `tagExpiration`, `version`.
    #[arg(long)]
    pub quay_policy: Option<PathBuf>,
    /// Read the policy (and the images) of this ECR repository through the AWS API.
    #[arg(long, requires = "ecr_registry")]
    pub ecr_repository: Option<String>,
    /// ECR registry host `<account>.dkr.ecr.<region>.amazonaws.com` (with --ecr-repository).
    #[arg(long)]
    pub ecr_registry: Option<String>,
    /// `aws ecr describe-images` output to simulate the ECR policy over.
    #[arg(long)]
    pub inventory: Option<PathBuf>,
    /// Deployed digests: a comma-separated list, or `@FILE` with one per line.
    #[arg(long, conflicts_with = "from_cluster")]
    pub deployed: Option<String>,
    /// Take the deployed digests from the pods of the current kubeconfig context (needs list pods).
    #[arg(long)]
    pub from_cluster: bool,
    /// Evaluation time for the simulation (RFC 3339; default now).
    #[arg(long, hide = true)]
    pub now: Option<String>,
    /// Output: `table`, `json` / `yaml` (`{findings, simulation}`), or `jsonpath=EXPR`.
    #[arg(long, short = 'o', visible_alias = "format", default_value = "table", value_parser = parse_output::<LifecycleText>)]
    pub output: Output<LifecycleText>,
}

/// `refwarden lifecycle analyze`'s own rendering.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum LifecycleText {
    /// Findings (and the simulation) as tables.
    Table,
}

/// Runs a lifecycle command.
pub async fn run(cmd: LifecycleCommand) -> ExitCode {
    match cmd {
        LifecycleCommand::Analyze(a) => analyze(a).await,
    }
}

/// Exit code: the rules could not be read (AWS API error), so nothing can be said.
pub const EXIT_UNAVAILABLE: u8 = 3;

fn read(flag: &str, p: &Path) -> Result<String, String> {
    crate::input::read_bounded(p).map_err(|e| format!("{flag} {}: {e}", p.display()))
}

fn parse_deployed(s: &str) -> Result<Vec<String>, String> {
    let text = match s.strip_prefix('@') {
        Some(path) => read("--deployed", Path::new(path))?,
        None => s.to_string(),
    };
    let mut out = Vec::new();
    for d in text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|d| !d.is_empty() && !d.starts_with('#'))
    {
        // Accept image references too (`repo@sha256:…`).
        let digest = d.rsplit_once('@').map(|x| x.1).unwrap_or(d);
        let hex = digest
            .strip_prefix("sha256:")
            .ok_or(format!("--deployed: {d:?} is not a sha256 digest"))?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("--deployed: {d:?} is not a sha256 digest"));
        }
        out.push(digest.to_ascii_lowercase());
    }
    Ok(out)
}

/// Digests the cluster's pods run (imageID, or a digest-pinned spec), deduplicated.
async fn deployed_from_cluster() -> Result<Vec<String>, String> {
    use crate::policy::pods::{ImageSource, PodInfo};
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("no usable kubeconfig or in-cluster config: {e}"))?;
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::all(client);
    let list = pods
        .list(&kube::api::ListParams::default())
        .await
        .map_err(|e| format!("cannot list pods: {e}"))?;
    let mut digests: Vec<String> = list
        .items
        .iter()
        .map(PodInfo::from_pod)
        .flat_map(|p| p.images)
        .filter_map(|c| match &c.source {
            ImageSource::Digest { key, index } => {
                Some(std::iter::once(key.digest.clone()).chain(index.clone()))
            }
            _ => None,
        })
        .flatten()
        .collect();
    digests.sort();
    digests.dedup();
    Ok(digests)
}

async fn analyze(a: AnalyzeArgs) -> ExitCode {
    let structured = a.output.structured().cloned();
    let bad = |m: String| output::fail(structured.as_ref(), EXIT_BAD_INPUT, "BadInput", &m);
    let unavailable =
        |m: String| output::fail(structured.as_ref(), EXIT_UNAVAILABLE, "Unavailable", &m);
    let now = match a.now.as_deref().map(str::parse::<jiff::Timestamp>) {
        None => jiff::Timestamp::now(),
        Some(Ok(t)) => t,
        Some(Err(e)) => return bad(format!("--now: {e}")),
    };
    let deployed = match a.deployed.as_deref().map(parse_deployed) {
        None if a.from_cluster => match deployed_from_cluster().await {
            Ok(d) => d,
            Err(e) => return bad(format!("--from-cluster: {e}")),
        },
        None => Vec::new(),
        Some(Ok(d)) => d,
        Some(Err(e)) => return bad(e),
    };
    let mut findings: Vec<LifecycleFinding> = Vec::new();
    let mut sim: Option<simulate::SimulationReport> = None;
    let mut ecr_text: Option<(String, Option<String>)> = None;
    let mut inventory: Option<Vec<simulate::InventoryImage>> = None;

    let families: [(&str, &Option<PathBuf>, RegistryFamily); 6] = [
        ("--gitlab-policy", &a.gitlab_policy, RegistryFamily::GitLab),
        ("--gar-policy", &a.gar_policy, RegistryFamily::Gar),
        ("--acr-policy", &a.acr_policy, RegistryFamily::Acr),
        ("--harbor-policy", &a.harbor_policy, RegistryFamily::Harbor),
        (
            "--distribution-config",
            &a.distribution_config,
            RegistryFamily::Distribution,
        ),
        ("--quay-policy", &a.quay_policy, RegistryFamily::Quay),
    ];
    for (flag, path, family) in families {
        let Some(p) = path else { continue };
        let text = match read(flag, p) {
            Ok(t) => t,
            Err(e) => return bad(e),
        };
        match lifecycle::analyze_policy_text(family, &text) {
            Ok(f) => findings.extend(f),
            Err(e) => return bad(format!("{flag} {}: {e}", p.display())),
        }
    }
    if let Some(p) = &a.ecr_policy {
        let text = match read("--ecr-policy", p) {
            Ok(t) => t,
            Err(e) => return bad(e),
        };
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
            return bad(format!("--ecr-policy {}: not JSON: {e}", p.display()));
        }
        if let Some(field) = ecr::unknown_fields(&text).into_iter().next() {
            return bad(format!(
                "--ecr-policy {}: {field}: unknown field (not part of the ECR lifecycle policy format)",
                p.display()
            ));
        }
        ecr_text = Some((text, None));
    }
    if let Some(repo) = &a.ecr_repository {
        let host = match aws::parse_ecr_host(a.ecr_registry.as_deref().unwrap_or_default()) {
            Ok(h) => h,
            Err(e) => return bad(format!("--ecr-registry: {e}")),
        };
        let client = aws::ecr_client(&host.region).await;
        match aws::get_lifecycle_policy(&client, Some(&host.account), repo).await {
            Ok(Some(p)) => ecr_text = Some((p.text, Some(repo.clone()))),
            Ok(None) => eprintln!("note: repository {repo} has no lifecycle policy"),
            Err(e) => return unavailable(e.to_string()),
        }
        if a.inventory.is_none() {
            match aws::describe_images(&client, Some(&host.account), repo).await {
                Ok(i) => inventory = Some(i),
                Err(e) => return unavailable(e.to_string()),
            }
        }
    }
    if let Some(p) = &a.inventory {
        let text = match read("--inventory", p) {
            Ok(t) => t,
            Err(e) => return bad(e),
        };
        match simulate::parse_describe_images(&text) {
            Ok(i) => inventory = Some(i),
            Err(e) => return bad(format!("--inventory {}: {e}", p.display())),
        }
    }
    if let Some((text, ctx)) = &ecr_text {
        findings.extend(lifecycle::analyze_ecr_policy_text(text, ctx.as_deref()));
        if let (Some(images), Ok((policy, violations))) = (&inventory, ecr::parse_policy(text))
            && violations.is_empty()
        {
            let report = simulate::simulate(&policy, images, &deployed, now);
            findings.extend(simulate::simulation_findings(&report, ctx.as_deref()));
            sim = Some(report);
        }
    } else if a.inventory.is_some() {
        return bad("--inventory needs an ECR policy (--ecr-policy or --ecr-repository)".into());
    }
    lifecycle::sort_findings(&mut findings);
    match &a.output {
        Output::Structured(s) => {
            let v = serde_json::json!({ "findings": findings, "simulation": sim });
            if let Err(code) = s.print(&v) {
                return code;
            }
        }
        Output::Text(LifecycleText::Table) => out!("{}", table(&findings, sim.as_ref())),
    }
    if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn table(findings: &[LifecycleFinding], sim: Option<&simulate::SimulationReport>) -> String {
    let mut out = String::new();
    if findings.is_empty() {
        out.push_str(
            "No lifecycle finding: no rule deletes, orphans, counts or hides referrers.\n",
        );
    } else {
        let rows: Vec<Vec<String>> = findings
            .iter()
            .map(|f| {
                vec![
                    f.severity.to_string(),
                    f.registry_family.to_string(),
                    f.rule.clone(),
                    f.kind.to_string(),
                    f.confidence.to_string(),
                ]
            })
            .collect();
        out.push_str(&output::table(
            &["SEVERITY", "FAMILY", "RULE", "KIND", "CONFIDENCE"],
            &rows,
        ));
        for (i, f) in findings.iter().enumerate() {
            out.push_str(&format!(
                "\n[{}] {} {} {}\n    {}\n    fix: {}\n",
                i + 1,
                f.severity,
                f.rule,
                f.kind,
                f.message,
                f.fix
            ));
        }
    }
    if let Some(s) = sim {
        out.push_str(&format!(
            "\nSimulation: {} image(s) acted on\n",
            s.actions.len()
        ));
        let rows: Vec<Vec<String>> = s
            .actions
            .iter()
            .map(|a| {
                vec![
                    a.digest.clone(),
                    if a.tags.is_empty() {
                        "<untagged>".into()
                    } else {
                        a.tags.join(",")
                    },
                    format!("{:?}", a.action),
                    format!("rule {}", a.cause.rule_priority()),
                    a.eligible_from.to_string(),
                ]
            })
            .collect();
        if !rows.is_empty() {
            out.push_str(&output::table(
                &["DIGEST", "TAGS", "ACTION", "BY", "ELIGIBLE FROM"],
                &rows,
            ));
        }
    }
    out
}
