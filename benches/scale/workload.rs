//! The deterministic workload: 1,000 image digests over 20 repositories with their referrers
//! (seeded identically on both registries), 10,000 pods in 200 namespaces, and the policies
//! evaluated over them.

use std::collections::BTreeMap;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference, Time,
};
use refwarden::crd::{ImageFilter, Preset, ReferrerPolicySpec, Requirement, SubjectMatch};
use refwarden::policy::pods::ImageInterner;
use refwarden::policy::{NamespaceLabels, PodInfo};
use refwarden_testkit::seed::ArtifactSpec;
use refwarden_testkit::{SeedAuth, Seeder};

const IMAGES: usize = 1000;
pub(crate) const REPOS: usize = 20;
pub(crate) const NAMESPACES: usize = 200;
pub(crate) const PODS: usize = 10_000;
const SEED: u64 = 0x5EED_2026;

/// SplitMix64: tiny, deterministic on every platform and version.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Referrer kinds of the seeded mix.
pub(crate) const SIG: &str = "signature";
/// A cosign 2 signature: the `sha256-<hex>.sig` tag (what cosign ≤ 2 writes even on registries
/// with the referrers API).
pub(crate) const SIG_TAG: &str = "signature-tag";
pub(crate) const SBOM: &str = "sbom";
pub(crate) const ATT: &str = "attestation";

/// One seeded image (same content in both registries).
#[derive(Clone, Debug)]
pub(crate) struct Img {
    pub(crate) repo: String,
    pub(crate) tag: String,
    pub(crate) digest: String,
    pub(crate) refs: Vec<&'static str>,
}

/// The image plan: repository, tag and referrer mix of each of the 1,000 images.
pub(crate) fn plan_images() -> Vec<Img> {
    let mut rng = Rng(SEED);
    (0..IMAGES)
        .map(|i| {
            let mut refs = Vec::new();
            // Fixed seeded mix: signature 80 %, SBOM 60 %, attestation 40 % (0–3 each); a third
            // of the images (every third) are signed with cosign 2's `.sig` tag instead.
            if rng.unit() < 0.8 {
                refs.push(SIG);
            }
            if i % 3 == 0 {
                refs.retain(|r| *r != SIG);
                refs.push(SIG_TAG);
            }
            if rng.unit() < 0.6 {
                refs.push(SBOM);
            }
            if rng.unit() < 0.4 {
                refs.push(ATT);
            }
            Img {
                repo: format!("bench/app-{:02}", i % REPOS),
                tag: format!("img-{i:04}"),
                digest: String::new(),
                refs,
            }
        })
        .collect()
}

fn artifact_spec(img: &Img, subject: &refwarden_testkit::Subject, kind: &str) -> ArtifactSpec {
    let (artifact_type, payload, annotations): (&str, String, BTreeMap<String, String>) = match kind
    {
        SIG => (
            refwarden_testkit::media::SIGSTORE_BUNDLE_V03,
            format!(
                r#"{{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","subject":"{}"}}"#,
                img.digest
            ),
            BTreeMap::new(),
        ),
        SBOM => (
            refwarden_testkit::media::SPDX_JSON,
            format!(r#"{{"spdxVersion":"SPDX-2.3","name":"{}"}}"#, img.digest),
            BTreeMap::new(),
        ),
        _ => (
            "application/vnd.in-toto+json",
            format!(
                r#"{{"_type":"https://in-toto.io/Statement/v1","subject":"{}"}}"#,
                img.digest
            ),
            BTreeMap::from([(
                "in-toto.io/predicate-type".to_string(),
                "https://slsa.dev/provenance/v1".to_string(),
            )]),
        ),
    };
    ArtifactSpec {
        subject: Some(subject.clone()),
        artifact_type: Some(artifact_type.to_string()),
        config: None,
        layer_media_type: artifact_type.to_string(),
        payload: payload.into_bytes(),
        annotations,
        tag: None,
    }
}

/// Pushes every image and its referrers; with `tag_index`, also the OCI
/// referrers tag-schema index (what a client writes on a registry without the
/// referrers API). Returns the images with their digests.
pub(crate) async fn seed(
    base: &str,
    plan: &[Img],
    tag_index: bool,
) -> refwarden_testkit::Result<Vec<Img>> {
    let seeder = Seeder::new(base, SeedAuth::None)?;
    let seeder = &seeder;
    let results: Vec<refwarden_testkit::Result<Img>> = futures::stream::iter(plan.iter().cloned())
        .map(|mut img| async move {
            let pushed = seeder.push_image(&img.repo, &img.tag).await?;
            img.digest = pushed.digest.clone();
            let subject = pushed.subject();
            let mut descriptors = Vec::new();
            for kind in &img.refs {
                if *kind == SIG_TAG {
                    refwarden_testkit::tools::cosign2_sign(seeder, &img.repo, &img.digest).await?;
                    continue;
                }
                let a = seeder
                    .push_artifact_spec(&img.repo, &artifact_spec(&img, &subject, kind))
                    .await?;
                descriptors.push(a.descriptor());
            }
            if tag_index && !descriptors.is_empty() {
                seeder
                    .push_referrers_tag_index(&img.repo, &img.digest, &descriptors)
                    .await?;
            }
            Ok(img)
        })
        .buffered(8)
        .collect()
        .await;
    results.into_iter().collect()
}

/// A pod before it becomes a k8s `Pod`.
pub(crate) struct PodLite {
    ns: usize,
    name: String,
    workload: String,
    hash: String,
    tier: &'static str,
    /// (container name, image, imageID)
    containers: Vec<(&'static str, String, String)>,
}

pub(crate) fn namespace_labels() -> NamespaceLabels {
    (0..NAMESPACES)
        .map(|i| {
            let name = format!("ns-{i:03}");
            let labels = BTreeMap::from([
                ("kubernetes.io/metadata.name".to_string(), name.clone()),
                (
                    "env".to_string(),
                    ["prod", "staging", "dev"][i % 3].to_string(),
                ),
                ("team".to_string(), format!("team-{}", i % 10)),
            ]);
            (name, labels)
        })
        .collect()
}

/// `n` pods over 200 namespaces: Deployments of 1–8 replicas (pods of a
/// workload run the same digests), the main image drawn Zipf(s = 1) over the
/// 1,000 digests, 30 % of workloads with a sidecar (also Zipf). Calls `f` for
/// each pod, so no more than one pod is materialised at a time.
pub(crate) fn for_each_pod(images: &[Img], host: &str, n: usize, mut f: impl FnMut(PodLite)) {
    let mut rng = Rng(SEED ^ 0xB0D5);
    // Popularity ranks over a seeded permutation (popular images spread over repositories).
    let mut perm: Vec<usize> = (0..images.len()).collect();
    for i in (1..perm.len()).rev() {
        let j = rng.below(i + 1);
        perm.swap(i, j);
    }
    let weights: Vec<f64> = (0..images.len()).map(|r| 1.0 / (r as f64 + 1.0)).collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(weights.len());
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total;
        cdf.push(acc);
    }
    let zipf = |rng: &mut Rng| {
        let u = rng.unit();
        let r = cdf.partition_point(|c| *c < u).min(images.len() - 1);
        &images[perm[r]]
    };
    let per_ns = n.div_ceil(NAMESPACES);
    let mut made = 0usize;
    'outer: for ns in 0..NAMESPACES {
        let mut in_ns = 0usize;
        let mut w = 0usize;
        while in_ns < per_ns {
            let replicas = 1 + rng.below(8);
            let workload = format!("app-{w:02}");
            let hash = format!("{:010x}", rng.next_u64() & 0xff_ffff_ffff);
            let tier = ["frontend", "backend", "batch"][rng.below(3)];
            let main = zipf(&mut rng).clone();
            let sidecar = (rng.unit() < 0.3).then(|| zipf(&mut rng).clone());
            for r in 0..replicas {
                if in_ns >= per_ns || made >= n {
                    break;
                }
                let mut containers = vec![(
                    "main",
                    format!("{host}/{}:{}", main.repo, main.tag),
                    format!("{host}/{}@{}", main.repo, main.digest),
                )];
                if let Some(s) = &sidecar {
                    containers.push((
                        "sidecar",
                        format!("{host}/{}:{}", s.repo, s.tag),
                        format!("{host}/{}@{}", s.repo, s.digest),
                    ));
                }
                f(PodLite {
                    ns,
                    name: format!("{workload}-{hash}-{r:05}"),
                    workload: workload.clone(),
                    hash: hash.clone(),
                    tier,
                    containers,
                });
                in_ns += 1;
                made += 1;
            }
            w += 1;
            if made >= n {
                break 'outer;
            }
        }
    }
}

/// The Pod object the API server would send (what the watch delivers).
pub(crate) fn to_pod(p: &PodLite) -> Pod {
    let ns = format!("ns-{:03}", p.ns);
    Pod {
        metadata: ObjectMeta {
            name: Some(p.name.clone()),
            namespace: Some(ns.clone()),
            uid: Some(format!("{:08x}-0000-4000-8000-{:012x}", p.ns, p.name.len())),
            labels: Some(BTreeMap::from([
                ("app".to_string(), p.workload.clone()),
                ("tier".to_string(), p.tier.to_string()),
                ("pod-template-hash".to_string(), p.hash.clone()),
            ])),
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: format!("{}-{}", p.workload, p.hash),
                uid: "00000000-0000-4000-8000-000000000000".into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: p
                .containers
                .iter()
                .map(|(name, image, _)| Container {
                    name: name.to_string(),
                    image: Some(image.clone()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            container_statuses: Some(
                p.containers
                    .iter()
                    .map(|(name, image, id)| ContainerStatus {
                        name: name.to_string(),
                        image: image.clone(),
                        image_id: id.clone(),
                        ready: true,
                        started: Some(true),
                        restart_count: 0,
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
    }
}

/// Pods as the controller's store holds them (images shared between pods, as the store does).
pub(crate) fn pod_infos(images: &[Img], host: &str, n: usize) -> Vec<PodInfo> {
    let mut pods = Vec::with_capacity(n);
    let mut interner = ImageInterner::default();
    for_each_pod(images, host, n, |p| {
        pods.push(PodInfo::from_pod_interned(&to_pod(&p), &mut interner))
    });
    pods
}

fn requirement(name: &str, preset: Preset) -> Requirement {
    Requirement {
        verify: None,
        name: name.into(),
        preset: Some(preset),
        artifact_types: vec![],
        legacy_tag_suffixes: vec![],
        min_count: 1,
        formats: vec![],
        repository: None,
    }
}

fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.into(),
        operator: op.into(),
        values: Some(values.iter().map(|v| v.to_string()).collect()),
    }
}

/// Five ReferrerPolicies with overlapping selectors.
pub(crate) fn policies(subject_match: SubjectMatch) -> Vec<(String, ReferrerPolicySpec)> {
    let base = |require: Vec<Requirement>| ReferrerPolicySpec {
        namespace_selector: None,
        pod_selector: None,
        images: ImageFilter::default(),
        require,
        subject_match,
        registry_profiles: vec![],
        recheck_interval: "10m".into(),
        max_reported_violations: 50,
    };
    let mut v = Vec::new();
    // 1. Every pod must run signed images.
    v.push((
        "signed-everywhere".to_string(),
        base(vec![requirement("signature", Preset::Signature)]),
    ));
    // 2. Production namespaces need an SBOM.
    let mut p = base(vec![requirement("sbom", Preset::Sbom)]);
    p.namespace_selector = Some(LabelSelector {
        match_labels: Some(BTreeMap::from([("env".into(), "prod".into())])),
        match_expressions: None,
    });
    v.push(("prod-sbom".to_string(), p));
    // 3. Frontends: signature + SLSA provenance.
    let mut p = base(vec![
        requirement("signature", Preset::Signature),
        requirement("provenance", Preset::SlsaProvenance),
    ]);
    p.pod_selector = Some(LabelSelector {
        match_labels: Some(BTreeMap::from([("tier".into(), "frontend".into())])),
        match_expressions: None,
    });
    v.push(("frontend-provenance".to_string(), p));
    // 4. Four teams, repositories app-0*, except app-05: SBOM + signature.
    let mut p = base(vec![
        requirement("sbom", Preset::Sbom),
        requirement("signature", Preset::Signature),
    ]);
    p.namespace_selector = Some(LabelSelector {
        match_labels: None,
        match_expressions: Some(vec![expr(
            "team",
            "In",
            &["team-0", "team-1", "team-2", "team-3"],
        )]),
    });
    p.images.include = vec!["**/bench/app-0*".into()];
    p.images.exclude = vec!["**/bench/app-05".into()];
    v.push(("team-core".to_string(), p));
    // 5. Outside dev, backends and batch jobs carry an in-toto attestation.
    let mut p = base(vec![requirement("attestation", Preset::InTotoAttestation)]);
    p.namespace_selector = Some(LabelSelector {
        match_labels: None,
        match_expressions: Some(vec![expr("env", "NotIn", &["dev"])]),
    });
    p.pod_selector = Some(LabelSelector {
        match_labels: None,
        match_expressions: Some(vec![expr("tier", "In", &["backend", "batch"])]),
    });
    v.push(("non-dev-attested".to_string(), p));
    v
}

pub(crate) fn now() -> Time {
    Time(jiff::Timestamp::now())
}
