//! `refwarden discover`: list the referrers of an image, like `oras discover`.

use std::process::ExitCode;

use clap::Args;

use super::image_arg;
use super::output::{self, Output, parse_output};
use super::probe::ModeArg;
use super::{EXIT_BAD_INPUT, RegistryArgs, hints};
use crate::discovery::{Discoverer, DiscoveryOutcome, DiscoveryReport, DiscoveryRequest, Referrer};
use crate::oci;

/// `refwarden discover`'s own renderings.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq, Default)]
pub enum DiscoverText {
    /// The subject and its referrers as a tree.
    #[default]
    Tree,
    /// One row per referrer.
    Table,
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
    /// Output: `tree`, `table`, `json` / `yaml` (the discovery report), or `jsonpath=EXPR`
    /// over the JSON form (RFC 9535 or kubectl's `{.a.b}`), as `oras discover --format`
    /// users write: `--format 'jsonpath=$.referrers[*].digest'`.
    #[arg(long, short = 'o', visible_alias = "format", default_value = "tree", value_parser = parse_output::<DiscoverText>)]
    pub output: Output<DiscoverText>,
}

/// Runs `refwarden discover`.
///
/// Exit codes: 0 discovery answered (even with no referrers), 1 registry error, 2 bad input.
pub async fn run(args: DiscoverArgs) -> ExitCode {
    let structured = args.output.structured().cloned();
    let bad = |m: String| output::fail(structured.as_ref(), EXIT_BAD_INPUT, "BadInput", &m);
    let reference = match image_arg::parse(&args.image) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    if let Some(i) = &args.index_digest
        && let Err(e) = oci::parse_digest(i)
    {
        return bad(format!("--index-digest: {e}"));
    }
    let url = args.registry.url_for(reference.api_registry());
    let client = match args.registry.client(&url).await {
        Ok(c) => c,
        Err(e) => return bad(e),
    };
    let progress = super::progress::Progress::start("discovering");
    let digest = match image_arg::digest(&client, &reference, &args.image).await {
        Ok(d) => d,
        Err(e) => {
            progress.finish();
            return e.fail(structured.as_ref(), 1);
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
    let report = match outcome.as_ref() {
        DiscoveryOutcome::Found(r) => r,
        DiscoveryOutcome::Unknown { reason, message } => {
            progress.finish();
            let m = format!("{reason}: {message}");
            let code = output::fail(structured.as_ref(), 1, "RegistryError", &m);
            hints::print_for(&m);
            return code;
        }
    };
    let name = format!("{}/{}@{digest}", reference.registry, reference.repository);
    let hint = match (&args.output, args.platforms) {
        (Output::Text(_), false) => index_hint(&client, &reference.repository, &digest).await,
        _ => None,
    };
    progress.finish();
    match &args.output {
        Output::Structured(s) => {
            if let Err(code) = s.print(outcome.as_ref()) {
                return code;
            }
        }
        Output::Text(DiscoverText::Tree) => out!("{}", render_tree(&name, report)),
        Output::Text(DiscoverText::Table) => out!("{}", render_table(report)),
    }
    if let Some(h) = hint {
        outln!("hint: {h}");
    }
    ExitCode::SUCCESS
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

/// The groups of `cosign tree`, in its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Signatures,
    Attestations,
    Sboms,
    Other,
}

impl Group {
    fn title(self) -> &'static str {
        match self {
            Group::Signatures => "signatures",
            Group::Attestations => "attestations",
            Group::Sboms => "SBOMs",
            Group::Other => "other",
        }
    }
}

/// Which group a referrer is listed under: envelopes that carry a statement are attestations
/// (whatever the statement is about), signature kinds are signatures, SBOM documents are SBOMs.
fn group_of(r: &Referrer) -> Group {
    use crate::discovery::{ArtifactKind as K, Format as F};
    let signature = r.kinds.iter().any(|k| {
        matches!(
            k,
            K::CosignSignature | K::SigstoreBundle | K::NotationSignature
        )
    });
    if signature {
        return Group::Signatures;
    }
    let attestation_format = matches!(
        r.format,
        F::CosignAttestation | F::InTotoDsse | F::InTotoStatement | F::BuildkitAttestation
    ) || r.format.is_sigstore_bundle();
    if attestation_format
        || r.kinds
            .iter()
            .any(|k| matches!(k, K::InTotoAttestation | K::SlsaProvenance))
    {
        return Group::Attestations;
    }
    if r.kinds
        .iter()
        .any(|k| matches!(k, K::SpdxSbom | K::CyclonedxSbom | K::SyftSbom))
    {
        return Group::Sboms;
    }
    Group::Other
}

fn referrer_line(r: &Referrer, report: &DiscoveryReport) -> String {
    let mut s = format!("{} {}", r.digest, r.format);
    if let Some(p) = &r.predicate_type {
        s.push_str(&format!(" {p}"));
    } else if let Some(at) = &r.artifact_type {
        s.push_str(&format!(" {at}"));
    }
    s.push_str(&format!(" [{}", r.method));
    let kinds = kinds_text(r);
    if !kinds.is_empty() {
        s.push_str(&format!("; {kinds}"));
    }
    match r.attached_to {
        crate::discovery::AttachedTo::Requested | crate::discovery::AttachedTo::Referrer => {}
        crate::discovery::AttachedTo::Platform => {
            let label = r.platform.clone().or_else(|| {
                report
                    .platforms
                    .iter()
                    .find(|p| p.digest == r.subject)
                    .and_then(|p| p.platform.clone())
            });
            s.push_str(&format!(
                "; on {}",
                label.unwrap_or_else(|| format!("platform {}", r.subject))
            ));
        }
        crate::discovery::AttachedTo::Index => s.push_str(&format!("; on index {}", r.subject)),
    }
    if let Some(t) = &r.tag {
        s.push_str(&format!("; tag {t}"));
    }
    if let Some(repo) = &r.repository {
        s.push_str(&format!("; in {repo}"));
    }
    s.push(']');
    s
}

fn tree_lines(out: &mut String, items: &[&Referrer], prefix: &str, report: &DiscoveryReport) {
    for (i, r) in items.iter().enumerate() {
        let last = i + 1 == items.len();
        out.push_str(prefix);
        out.push_str(if last { "└── " } else { "├── " });
        out.push_str(&referrer_line(r, report));
        out.push('\n');
        let child_prefix = format!("{prefix}{}", if last { "    " } else { "│   " });
        let nested: Vec<&Referrer> = r.referrers.iter().collect();
        tree_lines(out, &nested, &child_prefix, report);
    }
}

/// The tree of `refwarden discover` (grouped like `cosign tree`: signatures, attestations,
/// SBOMs, other): each referrer with its digest, format, predicate or artifact type, how it was
/// found, its kinds and where it is attached (`on linux/amd64`); nested referrers indented.
pub fn render_tree(name: &str, r: &DiscoveryReport) -> String {
    let mut out = format!("{name}\n");
    let mut groups: std::collections::BTreeMap<Group, Vec<&Referrer>> = Default::default();
    for x in &r.referrers {
        groups.entry(group_of(x)).or_default().push(x);
    }
    let n = groups.len();
    for (i, (g, items)) in groups.iter().enumerate() {
        let last = i + 1 == n;
        out.push_str(if last { "└── " } else { "├── " });
        out.push_str(&format!("{} ({})\n", g.title(), items.len()));
        tree_lines(&mut out, items, if last { "    " } else { "│   " }, r);
    }
    if !r.platforms.is_empty() {
        let labels: Vec<String> = r
            .platforms
            .iter()
            .map(|p| p.platform.clone().unwrap_or_else(|| p.digest.clone()))
            .collect();
        out.push_str(&format!("\nplatforms: {}\n", labels.join(", ")));
    }
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
                x.format.to_string(),
                x.artifact_type.clone().unwrap_or_else(|| "-".into()),
                kinds_text(x),
                x.method.to_string(),
                match x.attached_to {
                    crate::discovery::AttachedTo::Platform => {
                        x.platform.clone().unwrap_or_else(|| "platform".into())
                    }
                    a => serde_json::to_value(a)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                },
                x.subject.clone(),
                depth.to_string(),
            ]
        })
        .collect();
    let mut out = output::table(
        &[
            "DIGEST",
            "FORMAT",
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

/// What an index subject holds, read once when `--platforms` was not asked: its platforms
/// (`linux/amd64`) and in-index attestation manifests, so the tree can say there is more.
async fn index_hint(
    client: &crate::registry::RegistryClient,
    repository: &str,
    digest: &str,
) -> Option<String> {
    use crate::discovery::classify::{self, ManifestFacts};
    use crate::registry::{Endpoint, RegistryRequest, Scope};
    let resp = client
        .send(
            RegistryRequest::get(
                format!("/v2/{repository}/manifests/{digest}"),
                Endpoint::ManifestGet,
            )
            .accept(oci::manifest_accept_header())
            .scope(Scope::pull(repository)),
        )
        .await
        .ok()?;
    if resp.status.as_u16() != 200 {
        return None;
    }
    let facts = ManifestFacts::parse(&resp.body).filter(|f| f.is_index)?;
    let platforms: Vec<String> = classify::platform_manifests(&facts)
        .into_iter()
        .map(|p| p.platform.unwrap_or(p.digest))
        .collect();
    let attestations = classify::buildkit_attestations(&facts).len();
    if platforms.is_empty() && attestations == 0 {
        return None;
    }
    Some(format!(
        "this is an image index with {} platform manifest(s) ({}){}: add --platforms to list their referrers",
        platforms.len(),
        platforms.join(", "),
        if attestations > 0 {
            format!(" and {attestations} in-index attestation manifest(s)")
        } else {
            String::new()
        }
    ))
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
    fn tree_groups_like_cosign_tree_and_nests_referrers() {
        use crate::discovery::Format;
        let mut sig = referrer("sha256:d", vec![]);
        sig.kinds = vec![ArtifactKind::CosignSignature];
        sig.format = Format::CosignSimpleSigning;
        sig.method = DiscoveryMethod::CosignTag;
        sig.tag = Some("sha256-s.sig".into());
        let mut on_platform = referrer("sha256:e", vec![]);
        on_platform.attached_to = AttachedTo::Platform;
        on_platform.subject = "sha256:p".into();
        on_platform.platform = Some("linux/arm64".into());
        let report = DiscoveryReport {
            platforms: vec![crate::discovery::PlatformManifest {
                digest: "sha256:p".into(),
                platform: Some("linux/arm64".into()),
            }],
            subject: "sha256:s".into(),
            subject_media_type: None,
            referrers_api: Some(true),
            methods: vec![DiscoveryMethod::Native, DiscoveryMethod::CosignTag],
            referrers: vec![
                referrer("sha256:a", vec![referrer("sha256:b", vec![])]),
                referrer("sha256:c", vec![]),
                sig,
                on_platform,
            ],
            requests: 3,
            notes: vec![],
        };
        let t = render_tree("r/x@sha256:s", &report);
        assert!(
            t.starts_with(
                "r/x@sha256:s\n├── signatures (1)\n│   └── sha256:d cosign-simple-signing application/spdx+json [cosign-tag; cosign-signature; tag sha256-s.sig]\n└── SBOMs (3)\n"
            ),
            "{t}"
        );
        assert!(t.contains("    ├── sha256:a spdx application/spdx+json [native; spdx-sbom]\n    │   └── sha256:b spdx"), "{t}");
        assert!(
            t.contains("sha256:e spdx application/spdx+json [native; spdx-sbom; on linux/arm64]"),
            "{t}"
        );
        assert!(t.contains("platforms: linux/arm64"), "{t}");
        assert!(t.contains(
            "5 referrer(s); methods: native, cosign-tag; referrers API: yes; requests: 3"
        ));
        let table = render_table(&report);
        assert!(table.starts_with("DIGEST"));
        assert_eq!(
            table.lines().filter(|l| l.starts_with("sha256:")).count(),
            5
        );
        assert!(table.contains("linux/arm64"));
    }
}
