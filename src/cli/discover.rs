//! `refwarden discover`: list the referrers of an image, like `oras discover`.

use std::process::ExitCode;

use clap::Args;

use super::output;
use super::probe::ModeArg;
use super::{EXIT_BAD_INPUT, RegistryArgs};
use crate::discovery::{Discoverer, DiscoveryOutcome, DiscoveryReport, DiscoveryRequest, Referrer};
use crate::oci;
use crate::registry::ImageReference;

/// Output format of `refwarden discover`.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq, Default)]
pub enum DiscoverFormat {
    /// The subject and its referrers as a tree.
    #[default]
    Tree,
    /// One row per referrer.
    Table,
    /// The discovery outcome as JSON.
    Json,
}

/// Arguments of `refwarden discover`.
#[derive(Args, Debug)]
pub struct DiscoverArgs {
    /// Image reference, e.g. `registry.example.com/app:1.0` or `…/app@sha256:…`.
    pub image: String,
    /// Only referrers of this artifact type (repeatable).
    #[arg(long = "artifact-type", value_name = "TYPE")]
    pub artifact_types: Vec<String>,
    /// Discovery mode: `auto` tries the referrers API and falls back to tags.
    #[arg(long, value_enum, default_value_t = ModeArg::Auto)]
    pub mode: ModeArg,
    /// Depth of nested referrers (a signature on an SBOM); at most 4.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=4))]
    pub depth: u32,
    /// When the image is an index, also discover the referrers of its platform manifests.
    #[arg(long)]
    pub platforms: bool,
    /// The image index the image belongs to (its referrers are listed too).
    #[arg(long, value_name = "DIGEST")]
    pub index_digest: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = DiscoverFormat::Tree)]
    pub output: DiscoverFormat,
}

/// Runs `refwarden discover`.
///
/// Exit codes: 0 discovery answered (even with no referrers), 1 registry error, 2 bad input.
pub async fn run(args: DiscoverArgs) -> ExitCode {
    let reference = match ImageReference::parse(&args.image) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: IMAGE_REF: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    if let Some(i) = &args.index_digest
        && let Err(e) = oci::parse_digest(i)
    {
        eprintln!("error: --index-digest: {e}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let scheme = if args.registry.plain_http {
        "http"
    } else {
        "https"
    };
    let url = format!("{scheme}://{}", reference.api_registry());
    let client = match args.registry.client(&url) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let digest = match (&reference.digest, &reference.tag) {
        (Some(d), _) => d.clone(),
        (None, Some(tag)) => {
            match crate::registry::resolve_digest(&client, &reference.repository, tag).await {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("error: cannot resolve {}: {e}", args.image);
                    return ExitCode::FAILURE;
                }
            }
        }
        (None, None) => {
            eprintln!("error: IMAGE_REF {:?}: no tag or digest", args.image);
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let mut req = DiscoveryRequest::new(client.registry(), &reference.repository, &digest);
    req.artifact_types = args.artifact_types.clone();
    req.depth = args.depth;
    req.platforms = args.platforms;
    req.index_digest = args.index_digest.clone();
    let discoverer = Discoverer::default();
    let outcome = discoverer
        .discover(&client, args.mode.into(), None, &req)
        .await;
    let name = format!("{}/{}@{digest}", reference.registry, reference.repository);
    match args.output {
        DiscoverFormat::Json => match serde_json::to_string_pretty(outcome.as_ref()) {
            Ok(s) => outln!("{s}"),
            Err(e) => {
                eprintln!("error: cannot render JSON: {e}");
                return ExitCode::FAILURE;
            }
        },
        DiscoverFormat::Tree => {
            if let DiscoveryOutcome::Found(r) = outcome.as_ref() {
                out!("{}", render_tree(&name, r));
            }
        }
        DiscoverFormat::Table => {
            if let DiscoveryOutcome::Found(r) = outcome.as_ref() {
                out!("{}", render_table(r));
            }
        }
    }
    match outcome.as_ref() {
        DiscoveryOutcome::Found(_) => ExitCode::SUCCESS,
        DiscoveryOutcome::Unknown { reason, message } => {
            eprintln!("error: {reason}: {message}");
            ExitCode::FAILURE
        }
    }
}

fn kinds_text(r: &Referrer) -> String {
    let v: Vec<String> = r
        .kinds
        .iter()
        .map(|k| {
            serde_json::to_value(k)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        })
        .collect();
    v.join(",")
}

fn referrer_line(r: &Referrer) -> String {
    let mut s = format!(
        "{} {} [{}; {}",
        r.artifact_type.as_deref().unwrap_or("<unknown>"),
        r.digest,
        r.method,
        kinds_text(r)
    );
    match r.attached_to {
        crate::discovery::AttachedTo::Requested | crate::discovery::AttachedTo::Referrer => {}
        a => s.push_str(&format!(
            "; on {} {}",
            serde_json::to_value(a)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            r.subject
        )),
    }
    if let Some(t) = &r.tag {
        s.push_str(&format!("; tag {t}"));
    }
    s.push(']');
    s
}

fn tree_lines(out: &mut String, items: &[Referrer], prefix: &str) {
    for (i, r) in items.iter().enumerate() {
        let last = i + 1 == items.len();
        out.push_str(prefix);
        out.push_str(if last { "└── " } else { "├── " });
        out.push_str(&referrer_line(r));
        out.push('\n');
        let child_prefix = format!("{prefix}{}", if last { "    " } else { "│   " });
        tree_lines(out, &r.referrers, &child_prefix);
    }
}

/// The tree of `refwarden discover` (oras-like): subject, then referrers with
/// artifact type, digest, method and kinds, nested referrers indented.
pub fn render_tree(name: &str, r: &DiscoveryReport) -> String {
    let mut out = format!("{name}\n");
    tree_lines(&mut out, &r.referrers, "");
    out.push_str(&footer(r));
    out
}

fn footer(r: &DiscoveryReport) -> String {
    let methods: Vec<&str> = r.methods.iter().map(|m| m.as_str()).collect();
    let api = match r.referrers_api {
        Some(true) => "yes",
        Some(false) => "no",
        None => "not determined",
    };
    let mut out = format!(
        "\n{} referrer(s); methods: {}; referrers API: {api}; requests: {}\n",
        count(&r.referrers),
        if methods.is_empty() {
            "-".to_string()
        } else {
            methods.join(", ")
        },
        r.requests
    );
    for n in &r.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

fn count(v: &[Referrer]) -> usize {
    v.iter().map(|r| 1 + count(&r.referrers)).sum()
}

fn flatten<'a>(v: &'a [Referrer], depth: usize, rows: &mut Vec<(usize, &'a Referrer)>) {
    for r in v {
        rows.push((depth, r));
        flatten(&r.referrers, depth + 1, rows);
    }
}

/// One row per referrer (nested ones included, with their depth).
pub fn render_table(r: &DiscoveryReport) -> String {
    let mut flat = Vec::new();
    flatten(&r.referrers, 0, &mut flat);
    let rows: Vec<Vec<String>> = flat
        .iter()
        .map(|(depth, x)| {
            vec![
                x.digest.clone(),
                x.artifact_type.clone().unwrap_or_else(|| "-".into()),
                kinds_text(x),
                x.method.to_string(),
                serde_json::to_value(x.attached_to)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                x.subject.clone(),
                depth.to_string(),
            ]
        })
        .collect();
    let mut out = output::table(
        &[
            "DIGEST",
            "ARTIFACT TYPE",
            "KINDS",
            "METHOD",
            "ATTACHED TO",
            "SUBJECT",
            "DEPTH",
        ],
        &rows,
    );
    out.push_str(&footer(r));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::{ArtifactKind, AttachedTo, DiscoveryMethod};

    fn referrer(d: &str, nested: Vec<Referrer>) -> Referrer {
        Referrer {
            digest: d.into(),
            media_type: oci::OCI_MANIFEST.into(),
            artifact_type: Some(oci::SPDX_JSON.into()),
            kinds: vec![ArtifactKind::SpdxSbom],
            format: crate::discovery::Format::Spdx,
            predicate_type: None,
            size: 1,
            annotations: Default::default(),
            method: DiscoveryMethod::Native,
            subject: "sha256:s".into(),
            attached_to: AttachedTo::Requested,
            tag: None,
            repository: None,
            platform: None,
            referrers: nested,
        }
    }

    #[test]
    fn tree_nests_referrers() {
        let report = DiscoveryReport {
            platforms: vec![],
            subject: "sha256:s".into(),
            subject_media_type: None,
            referrers_api: Some(true),
            methods: vec![DiscoveryMethod::Native],
            referrers: vec![
                referrer("sha256:a", vec![referrer("sha256:b", vec![])]),
                referrer("sha256:c", vec![]),
            ],
            requests: 3,
            notes: vec![],
        };
        let t = render_tree("r/x@sha256:s", &report);
        assert!(t.starts_with("r/x@sha256:s\n├── application/spdx+json sha256:a [native; spdx-sbom]\n│   └── application/spdx+json sha256:b"), "{t}");
        assert!(t.contains("└── application/spdx+json sha256:c"));
        assert!(t.contains("3 referrer(s); methods: native; referrers API: yes; requests: 3"));
        let table = render_table(&report);
        assert!(table.starts_with("DIGEST"));
        assert_eq!(
            table.lines().filter(|l| l.starts_with("sha256:")).count(),
            3
        );
    }
}
