//! `make bench`: refwarden at cluster scale against the usual Rust client.
//!
//! The parent process seeds the spec-following test registry (referrers API)
//! and the real distribution 2.8 (tag-schema fallback) with the same 1,000
//! image digests, puts a latency-injecting proxy in front of each, and runs
//! every measured phase in a child process of this binary (so VmHWM, CPU time
//! and allocations are per phase). It prints a table, writes
//! `docs/benchmarks.md`, and exits non-zero when a request-count target is
//! missed. Timings are reported, never asserted. Traffic only to 127.0.0.1.
//!
//! Arguments (after `cargo bench --bench scale --`): `--delay-ms N` (20),
//! `--baseline-sample N` pods for the per-container baseline (1000),
//! `--no-write` (do not write docs/benchmarks.md).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference, Time,
};
use refwarden::controller::stores::PodStore;
use refwarden::crd::{
    DiscoveryMode, EffectiveDiscoveryMode, ImageFilter, Preset, ReferrerPolicySpec, Requirement,
    SubjectMatch,
};
use refwarden::discovery::{
    ArtifactKind, AttachedTo, Discoverer, DiscovererConfig, DiscoveryMethod, DiscoveryOutcome,
    DiscoveryReport, Referrer,
};
use refwarden::policy::pods::ImageInterner;
use refwarden::policy::{
    ImageKey, NamespaceLabels, PodInfo, PolicyInput, compile, evaluate_policy, judge, select,
};
use refwarden::registry::{
    RegistryClient, RegistryClientConfig, RegistryDirectory, RegistryEntry, RequestCounters,
};
use refwarden_testkit::seed::ArtifactSpec;
use refwarden_testkit::{
    DistributionOptions, DistributionRegistry, OciRegistry, Quirks, SeedAuth, Seeder,
};
use serde_json::{Value, json};

// ------------------------------------------------------------ allocator

/// Counts live heap bytes (the pod-store figure is an exact heap delta).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to `System`; only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

// ------------------------------------------------------------ process figures

fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// User + system CPU time of this process.
fn cpu_time() -> Duration {
    // SAFETY: `getrusage` fills the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a `rusage`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    json!({"nproc": nproc, "cpu": model, "mem_gib": mem_kib as f64 / 1024.0 / 1024.0, "kernel": kernel})
}

// ------------------------------------------------------------ deterministic workload

const IMAGES: usize = 1000;
const REPOS: usize = 20;
const NAMESPACES: usize = 200;
const PODS: usize = 10_000;
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
const SIG: &str = "signature";
/// A cosign 2 signature: the `sha256-<hex>.sig` tag (what cosign ≤ 2 writes even on registries
/// with the referrers API).
const SIG_TAG: &str = "signature-tag";
const SBOM: &str = "sbom";
const ATT: &str = "attestation";

/// One seeded image (same content in both registries).
#[derive(Clone, Debug)]
struct Img {
    repo: String,
    tag: String,
    digest: String,
    refs: Vec<&'static str>,
}

/// The image plan: repository, tag and referrer mix of each of the 1,000 images.
fn plan_images() -> Vec<Img> {
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
async fn seed(base: &str, plan: &[Img], tag_index: bool) -> refwarden_testkit::Result<Vec<Img>> {
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
struct PodLite {
    ns: usize,
    name: String,
    workload: String,
    hash: String,
    tier: &'static str,
    /// (container name, image, imageID)
    containers: Vec<(&'static str, String, String)>,
}

fn namespace_labels() -> NamespaceLabels {
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
fn for_each_pod(images: &[Img], host: &str, n: usize, mut f: impl FnMut(PodLite)) {
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
fn to_pod(p: &PodLite) -> Pod {
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
fn pod_infos(images: &[Img], host: &str, n: usize) -> Vec<PodInfo> {
    let mut pods = Vec::with_capacity(n);
    let mut interner = ImageInterner::default();
    for_each_pod(images, host, n, |p| {
        pods.push(PodInfo::from_pod_interned(&to_pod(&p), &mut interner))
    });
    pods
}

fn requirement(name: &str, preset: Preset) -> Requirement {
    Requirement {
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
fn policies(subject_match: SubjectMatch) -> Vec<(String, ReferrerPolicySpec)> {
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

fn now() -> Time {
    Time(jiff::Timestamp::now())
}

// ------------------------------------------------------------ proxy

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    delay: Duration,
    count: Arc<AtomicU64>,
}

fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "transfer-encoding" | "te" | "trailer" | "upgrade" | "host"
    ) || name == header::PROXY_AUTHORIZATION
}

/// Adds the fixed delay, then forwards the request unchanged to the upstream.
async fn forward(State(s): State<ProxyState>, req: axum::extract::Request) -> Response {
    s.count.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(s.delay).await;
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut rb = s
        .client
        .request(parts.method.clone(), format!("{}{pq}", s.upstream));
    for (k, v) in &parts.headers {
        if !hop_by_hop(k) {
            rb = rb.header(k, v);
        }
    }
    match rb.body(body).send().await {
        Ok(resp) => {
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = resp.bytes().await.unwrap_or_default();
            let mut out = Response::new(Body::from(bytes));
            *out.status_mut() = status;
            for (k, v) in &headers {
                if !hop_by_hop(k) && k != header::CONTENT_LENGTH {
                    out.headers_mut().append(k, v.clone());
                }
            }
            out
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

struct Proxy {
    server: refwarden_testkit::ServerHandle,
    count: Arc<AtomicU64>,
}

impl Proxy {
    fn start(name: &str, upstream: &str, delay: Duration) -> refwarden_testkit::Result<Proxy> {
        let count = Arc::new(AtomicU64::new(0));
        let state = ProxyState {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: refwarden_testkit::http_client()?,
            delay,
            count: count.clone(),
        };
        let router = axum::Router::new().fallback(forward).with_state(state);
        Ok(Proxy {
            server: refwarden_testkit::ServerHandle::spawn(name, router)?,
            count,
        })
    }
    fn host(&self) -> String {
        self.server.addr().to_string()
    }
    fn requests(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

// ------------------------------------------------------------ child phases

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn load_workload() -> refwarden_testkit::Result<(Vec<Img>, Value)> {
    let path = std::env::var("REFWARDEN_BENCH_WORKLOAD")?;
    let v: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let images = v["images"]
        .as_array()
        .ok_or("workload: images")?
        .iter()
        .map(|i| Img {
            repo: i["repo"].as_str().unwrap_or_default().to_string(),
            tag: i["tag"].as_str().unwrap_or_default().to_string(),
            digest: i["digest"].as_str().unwrap_or_default().to_string(),
            refs: i["refs"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|r| match r.as_str() {
                            Some(SIG) => Some(SIG),
                            Some(SIG_TAG) => Some(SIG_TAG),
                            Some(SBOM) => Some(SBOM),
                            Some(ATT) => Some(ATT),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    Ok((images, v))
}

fn runtime() -> refwarden_testkit::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn unique_images(
    specs: &[(String, ReferrerPolicySpec)],
    pods: &[PodInfo],
    ns: &NamespaceLabels,
) -> refwarden_testkit::Result<BTreeSet<ImageKey>> {
    let mut all = BTreeSet::new();
    for (name, spec) in specs {
        let c = compile(spec).map_err(|e| format!("policy {name}: {e}"))?;
        all.extend(select(&c, pods.iter(), ns).images.into_keys());
    }
    Ok(all)
}

/// Whether the seeded referrers `refs` meet a preset (with `tags`: counting cosign 2 tags).
fn satisfied(preset: Preset, refs: &[&str], tags: bool) -> bool {
    match preset {
        Preset::Signature => refs.contains(&SIG) || (tags && refs.contains(&SIG_TAG)),
        Preset::Sbom => refs.contains(&SBOM),
        Preset::SlsaProvenance | Preset::InTotoAttestation => refs.contains(&ATT),
        _ => false,
    }
}

/// The ground truth of the seeded plan, per policy and per digest.
#[derive(Default)]
struct Truth {
    /// Per policy: the digests that violate it.
    violations: BTreeMap<String, BTreeSet<String>>,
    /// Digests every selecting policy finds compliant in the native answer alone.
    natively: BTreeSet<String>,
    /// Digests compliant only through their cosign 2 `.sig` tag.
    by_tag: BTreeSet<String>,
    /// Digests violating some policy.
    non_compliant: BTreeSet<String>,
    /// Digests missing a requirement natively for some policy (they are widened to the union).
    missing_natively: BTreeSet<String>,
    /// Repositories holding such a digest (one tag list each).
    repos_missing: BTreeSet<String>,
    /// Such digests that carry a `.sig` tag (one tag fetch each).
    tag_fetches: usize,
}

fn truth(
    specs: &[(String, ReferrerPolicySpec)],
    pods: &[PodInfo],
    ns: &NamespaceLabels,
    images: &[Img],
) -> refwarden_testkit::Result<Truth> {
    let by_digest: BTreeMap<&str, &Img> = images.iter().map(|i| (i.digest.as_str(), i)).collect();
    let mut t = Truth::default();
    let mut all = BTreeSet::new();
    for (name, spec) in specs {
        let c = compile(spec).map_err(|e| format!("policy {name}: {e}"))?;
        let v = t.violations.entry(name.clone()).or_default();
        for key in select(&c, pods.iter(), ns).images.into_keys() {
            let img = by_digest
                .get(key.digest.as_str())
                .ok_or("a selected digest is not seeded")?;
            let presets: Vec<Preset> = spec.require.iter().filter_map(|r| r.preset).collect();
            if !presets.iter().all(|p| satisfied(*p, &img.refs, false)) {
                t.missing_natively.insert(key.digest.clone());
                t.repos_missing.insert(key.repository.clone());
            }
            if !presets.iter().all(|p| satisfied(*p, &img.refs, true)) {
                v.insert(key.digest.clone());
                t.non_compliant.insert(key.digest.clone());
            }
            all.insert(key.digest);
        }
    }
    t.natively = all.difference(&t.missing_natively).cloned().collect();
    t.by_tag = t
        .missing_natively
        .difference(&t.non_compliant)
        .cloned()
        .collect();
    t.tag_fetches = t
        .missing_natively
        .iter()
        .filter(|d| {
            by_digest
                .get(d.as_str())
                .is_some_and(|i| i.refs.contains(&SIG_TAG))
        })
        .count();
    Ok(t)
}

/// refwarden: every policy over every pod, cold then warm, one shared Discoverer.
fn phase_refwarden(
    host: &str,
    hint: EffectiveDiscoveryMode,
    subject_match: SubjectMatch,
    cold_only: bool,
) -> refwarden_testkit::Result<Value> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (images, _) = load_workload()?;
    let rt = runtime()?;
    let rss_start = proc_status_kib("VmHWM:");
    let t_setup = Instant::now();
    let pods = pod_infos(&images, host, PODS);
    let ns = namespace_labels();
    let specs = policies(subject_match);
    let unique = unique_images(&specs, &pods, &ns)?;
    let truth = truth(&specs, &pods, &ns, &images)?;
    let containers: usize = pods.iter().map(|p| p.images.len()).sum();
    let counters = Arc::new(RequestCounters::default());
    let mut cfg = RegistryClientConfig::new(&format!("http://{host}"), true)?;
    cfg.counters = counters.clone();
    let client = RegistryClient::new(cfg)?;
    let mut dir = RegistryDirectory::new();
    dir.insert(
        "bench",
        host,
        Ok(RegistryEntry {
            profile: Some("bench".into()),
            client,
            mode: DiscoveryMode::Auto,
            hint: Some(hint),
        }),
    );
    let disc = Discoverer::new(DiscovererConfig::default());
    let concurrency = disc.config().per_registry_concurrency;
    let ttl = disc.config().ttl;
    let setup = t_setup.elapsed();

    let run = |label: &str| -> refwarden_testkit::Result<Value> {
        let req0 = counters.total();
        let dreq0 = disc.stats().requests;
        let cpu0 = cpu_time();
        let t0 = Instant::now();
        let inputs: Vec<PolicyInput<'_>> = specs
            .iter()
            .map(|(name, spec)| PolicyInput {
                name,
                spec,
                generation: Some(1),
                previous: None,
            })
            .collect();
        let results =
            rt.block_on(futures::future::join_all(inputs.iter().map(|input| {
                evaluate_policy(input, pods.iter(), &ns, &dir, &disc, now())
            })));
        let wall = t0.elapsed();
        let cpu = cpu_time() - cpu0;
        let mut summary = Vec::new();
        let mut misjudged = 0usize;
        let (mut unknown, mut selected_images) = (0u32, 0u32);
        // Digests that miss a requirement of some policy on their own digest: with
        // IndexOrPlatform these are the ones whose manifest must be read (is it an index?).
        let mut missing: BTreeSet<&str> = BTreeSet::new();
        for ((name, _), r) in specs.iter().zip(&results) {
            let s = &r.status.summary;
            if r.invalid.is_some() {
                return Err(format!("{label}: policy {name} is invalid: {:?}", r.invalid).into());
            }
            unknown += s.unknown;
            selected_images += s.images;
            if let Some(e) = &r.evaluation {
                missing.extend(e.violations.iter().map(|v| v.digest.as_str()));
                let judged: BTreeSet<String> =
                    e.violations.iter().map(|v| v.digest.clone()).collect();
                let want = truth.violations.get(name).cloned().unwrap_or_default();
                for d in judged.symmetric_difference(&want).take(3) {
                    let refs = images
                        .iter()
                        .find(|i| i.digest == *d)
                        .map(|i| i.refs.clone())
                        .unwrap_or_default();
                    eprintln!(
                        "{label}: policy {name}: {d} judged {} but the truth says {} (refs {refs:?})",
                        if judged.contains(d) {
                            "non-compliant"
                        } else {
                            "compliant"
                        },
                        if want.contains(d) {
                            "non-compliant"
                        } else {
                            "compliant"
                        },
                    );
                }
                misjudged += judged.symmetric_difference(&want).count();
            }
            summary.push(json!({"policy": name, "pods": s.pods, "images": s.images,
                "compliant": s.compliant, "nonCompliant": s.non_compliant, "unknown": s.unknown}));
        }
        Ok(json!({
            "wall_s": wall.as_secs_f64(),
            "cpu_s": cpu.as_secs_f64(),
            "requests": counters.total() - req0,
            "discoverer_requests": disc.stats().requests - dreq0,
            "unknown_images": unknown,
            "selected_images": selected_images,
            "digests_missing_a_requirement": missing.len(),
            "misjudged": misjudged,
            "policies": summary,
            "vmhwm_kib": proc_status_kib("VmHWM:"),
        }))
    };
    let cold = run("cold")?;
    let by_endpoint: Vec<Value> = counters
        .snapshot()
        .into_iter()
        .map(|(_, e, s, n)| json!({"endpoint": e.as_str(), "status": s, "count": n}))
        .collect();
    let (warm, refresh) = if cold_only {
        (json!({}), json!({}))
    } else {
        let warm = run("warm")?;
        // The freshness window ending: outcomes (and tag lists, modes) expire; the
        // immutable manifest cache (keyed by digest) stays.
        disc.invalidate_all();
        (warm, run("refresh")?)
    };
    let stats = disc.stats();
    // What the cold run must cost: one listing per digest; for digests missing a requirement
    // natively, their repository's tag list (once) and their existing `.sig` tag; with
    // IndexOrPlatform, one manifest read for each digest still missing after the union.
    let expected_cold = unique.len()
        + truth.repos_missing.len()
        + truth.tag_fetches
        + match subject_match {
            SubjectMatch::IndexOrPlatform => truth.non_compliant.len(),
            SubjectMatch::Exact => 0,
        };
    Ok(json!({
        "pods": pods.len(),
        "containers": containers,
        "unique_digests": unique.len(),
        "per_registry_concurrency": concurrency,
        "ttl_s": ttl.as_secs(),
        "setup_s": setup.as_secs_f64(),
        "vmhwm_start_kib": rss_start,
        "cold": cold,
        "warm": warm,
        "refresh": refresh,
        "cold_by_endpoint": by_endpoint,
        "stats": {"asks": stats.asks, "hits": stats.hits, "misses": stats.misses,
                  "unknown": stats.unknown, "requests": stats.requests, "cached": stats.cached,
                  "tag_lists": stats.tag_lists},
        "truth": {
            "natively": truth.natively,
            "by_tag": truth.by_tag,
            "non_compliant": truth.non_compliant,
            "repos_missing": truth.repos_missing.len(),
            "tag_fetches": truth.tag_fetches,
            "expected_cold_requests": expected_cold,
        },
    }))
}

/// The baseline: `oci-client`'s `pull_referrers`, sequential, once per item.
fn phase_baseline(host: &str, per: &str, sample: usize) -> refwarden_testkit::Result<Value> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (images, _) = load_workload()?;
    let rt = runtime()?;
    let pods = pod_infos(&images, host, PODS);
    let ns = namespace_labels();
    let specs = policies(SubjectMatch::IndexOrPlatform);
    let total_containers: usize = pods.iter().map(|p| p.images.len()).sum();
    // (repository, digest) per call.
    let calls: Vec<(String, String)> = match per {
        "container" => {
            let stride = PODS.div_ceil(sample.max(1)).max(1);
            pods.iter()
                .step_by(stride)
                .flat_map(|p| p.images.iter())
                .filter_map(|c| {
                    let id = c.image_id.as_deref()?;
                    let (name, digest) = id.split_once('@')?;
                    let repo = name.strip_prefix(&format!("{host}/"))?;
                    Some((repo.to_string(), digest.to_string()))
                })
                .collect()
        }
        _ => unique_images(&specs, &pods, &ns)?
            .into_iter()
            .map(|k| (k.repository, k.digest))
            .collect(),
    };
    let sampled_pods = if per == "container" {
        PODS.div_ceil(PODS.div_ceil(sample.max(1)).max(1))
    } else {
        0
    };
    let client = oci_client::Client::new(oci_client::client::ClientConfig {
        protocol: oci_client::client::ClientProtocol::Http,
        ..Default::default()
    });
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    let (mut found, mut errors, mut first_error) = (0usize, 0usize, None);
    rt.block_on(async {
        for (repo, digest) in &calls {
            let r =
                oci_client::Reference::with_digest(host.to_string(), repo.clone(), digest.clone());
            match client.pull_referrers(&r, None).await {
                Ok(idx) => found += idx.manifests.len(),
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
    });
    let wall = t0.elapsed();
    let cpu = cpu_time() - cpu0;
    Ok(json!({
        "per": per,
        "calls": calls.len(),
        "sampled_pods": sampled_pods,
        "total_containers": total_containers,
        "referrers_found": found,
        "errors": errors,
        "first_error": first_error,
        "wall_s": wall.as_secs_f64(),
        "cpu_s": cpu.as_secs_f64(),
        "vmhwm_kib": proc_status_kib("VmHWM:"),
    }))
}

/// The controller's pod store alone: heap bytes per pod.
fn phase_podstore(n: usize) -> refwarden_testkit::Result<Value> {
    let (images, _) = load_workload()?;
    let host = "127.0.0.1:5000";
    let rss0 = proc_status_kib("VmRSS:");
    let heap0 = live_bytes();
    let store = PodStore::new(false);
    let mut pod_json_bytes = 0usize;
    let mut sampled = 0usize;
    for_each_pod(&images, host, n, |p| {
        let pod = to_pod(&p);
        if sampled < 100 {
            pod_json_bytes += serde_json::to_vec(&pod).map(|v| v.len()).unwrap_or(0);
            sampled += 1;
        }
        // The reflector's path: a watch event applied to the store.
        store.apply_event(&kube::runtime::watcher::Event::Apply(pod));
    });
    let heap = live_bytes().saturating_sub(heap0);
    let rss = proc_status_kib("VmRSS:").saturating_sub(rss0);
    let len = store.len();
    // One whole Pod object for comparison (what a plain `Store<Pod>` reflector would hold).
    let mut one = Vec::new();
    let heap1 = live_bytes();
    for_each_pod(&images, host, 1000, |p| one.push(to_pod(&p)));
    let pod_object = live_bytes().saturating_sub(heap1) / one.len().max(1);
    drop(one);
    Ok(json!({
        "pods": len,
        "heap_bytes": heap,
        "bytes_per_pod": heap as f64 / len.max(1) as f64,
        "rss_delta_kib": rss,
        "pod_object_bytes": pod_object,
        "pod_json_bytes": pod_json_bytes / sampled.max(1),
    }))
}

/// Pure CPU: compile + select + judge for every policy, outcomes in memory.
fn phase_cpu() -> refwarden_testkit::Result<Value> {
    let (images, _) = load_workload()?;
    let host = "127.0.0.1:5000";
    let pods = pod_infos(&images, host, PODS);
    let ns = namespace_labels();
    let specs = policies(SubjectMatch::IndexOrPlatform);
    let by_digest: BTreeMap<&str, &Img> = images.iter().map(|i| (i.digest.as_str(), i)).collect();
    let mut outcomes: BTreeMap<ImageKey, Arc<DiscoveryOutcome>> = BTreeMap::new();
    for key in unique_images(&specs, &pods, &ns)? {
        let img = by_digest.get(key.digest.as_str()).ok_or("unknown digest")?;
        let referrers = img
            .refs
            .iter()
            .enumerate()
            .map(|(i, kind)| {
                let (at, kinds) = match *kind {
                    SIG => (
                        refwarden_testkit::media::SIGSTORE_BUNDLE_V03,
                        vec![ArtifactKind::SigstoreBundle],
                    ),
                    SIG_TAG => (
                        refwarden_testkit::media::COSIGN_SIMPLESIGNING,
                        vec![ArtifactKind::CosignSignature],
                    ),
                    SBOM => (
                        refwarden_testkit::media::SPDX_JSON,
                        vec![ArtifactKind::SpdxSbom],
                    ),
                    _ => (
                        "application/vnd.in-toto+json",
                        vec![
                            ArtifactKind::InTotoAttestation,
                            ArtifactKind::SlsaProvenance,
                        ],
                    ),
                };
                Referrer {
                    digest: format!("sha256:{:064x}", i as u64 + 1),
                    media_type: refwarden_testkit::media::OCI_MANIFEST.into(),
                    artifact_type: Some(at.into()),
                    kinds,
                    format: refwarden::discovery::Format::Other,
                    predicate_type: None,
                    size: 500,
                    annotations: BTreeMap::new(),
                    method: DiscoveryMethod::Native,
                    subject: key.digest.clone(),
                    attached_to: AttachedTo::Requested,
                    tag: None,
                    repository: None,
                    platform: None,
                    referrers: vec![],
                }
            })
            .collect();
        outcomes.insert(
            key.clone(),
            Arc::new(DiscoveryOutcome::Found(DiscoveryReport {
                platforms: vec![],
                subject: key.digest.clone(),
                subject_media_type: Some(refwarden_testkit::media::OCI_MANIFEST.into()),
                referrers_api: Some(true),
                methods: vec![DiscoveryMethod::Native],
                referrers,
                requests: 0,
                notes: vec![],
            })),
        );
    }
    let mut runs = Vec::new();
    let mut checksum = 0u64;
    for _ in 0..9 {
        let t0 = Instant::now();
        for (_, spec) in &specs {
            let c = compile(spec).map_err(|e| e.to_string())?;
            let sel = select(&c, pods.iter(), &ns);
            let eval = judge(&c, &sel, &outcomes);
            checksum += u64::from(eval.summary.non_compliant) + u64::from(eval.summary.pods);
        }
        runs.push(t0.elapsed().as_secs_f64());
    }
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(json!({
        "pods": pods.len(),
        "policies": specs.len(),
        "images": outcomes.len(),
        "runs_s": runs,
        "median_s": sorted[sorted.len() / 2],
        "min_s": sorted[0],
        "checksum": checksum,
    }))
}

fn child(args: &[String]) -> ExitCode {
    let phase = arg(args, "--phase").unwrap_or_default();
    let host = arg(args, "--host").unwrap_or_default();
    let result = match phase.as_str() {
        "native" => phase_refwarden(
            &host,
            EffectiveDiscoveryMode::Native,
            SubjectMatch::IndexOrPlatform,
            false,
        ),
        "native-exact" => phase_refwarden(
            &host,
            EffectiveDiscoveryMode::Native,
            SubjectMatch::Exact,
            false,
        ),
        "native-mix" => phase_refwarden(
            &host,
            EffectiveDiscoveryMode::Native,
            SubjectMatch::Exact,
            true,
        ),
        "fallback" => phase_refwarden(
            &host,
            EffectiveDiscoveryMode::TagFallback,
            SubjectMatch::IndexOrPlatform,
            false,
        ),
        "baseline-container" => phase_baseline(
            &host,
            "container",
            arg(args, "--sample")
                .and_then(|s| s.parse().ok())
                .unwrap_or(1000),
        ),
        "baseline-digest" => phase_baseline(&host, "digest", 0),
        "podstore" => phase_podstore(
            arg(args, "--pods")
                .and_then(|s| s.parse().ok())
                .unwrap_or(PODS),
        ),
        "cpu" => phase_cpu(),
        other => Err(format!("unknown phase {other:?}").into()),
    };
    match result {
        Ok(v) => {
            println!("RESULT {v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("phase {phase}: {e}");
            ExitCode::FAILURE
        }
    }
}

// ------------------------------------------------------------ operator over HTTP

/// Pods added one by one in the operator latency phase.
const LATENCY_PODS: usize = 200;
/// Gap between two pods becoming Running.
const LATENCY_GAP: Duration = Duration::from_millis(100);

/// The real controller binary against the Kubernetes API emulator, the registry behind the
/// latency proxy: for each of [`LATENCY_PODS`] pods running an image that misses an SBOM, the
/// time from its becoming Running to (a) the policy status listing the digest and (b) the pod's
/// `MissingReferrers` Warning (polled every 50 ms, so ±50 ms); then the API writes per pod
/// event, and with nothing changing (pods re-labelled with a label no policy reads).
fn phase_operator(registry_host: &str, images: &[Img]) -> refwarden_testkit::Result<Value> {
    use refwarden_testkit::emulator::{
        Controller, ControllerOptions, Emulator, EmulatorOptions, RunningPod, load_yaml_docs,
        pod_path, policy_path, root, yaml_files,
    };
    let rt = runtime()?;
    rt.block_on(async {
        let emu = Emulator::start(EmulatorOptions::default()).await?;
        let mut rbac = Vec::new();
        for f in yaml_files(&root().join("config/rbac"))? {
            rbac.extend(load_yaml_docs(&f)?);
        }
        emu.install_refwarden(&rbac).await?;
        let unsigned: Vec<&Img> = images
            .iter()
            .filter(|i| !i.refs.contains(&SBOM))
            .take(LATENCY_PODS)
            .collect();
        if unsigned.len() < LATENCY_PODS {
            return Err(format!("only {} images without an SBOM", unsigned.len()).into());
        }
        let test = images.first().ok_or("no image")?;
        emu.apply(&json!({
            "apiVersion": "refwarden.dev/v1alpha1", "kind": "RegistryProfile",
            "metadata": {"name": "bench"},
            "spec": {"registryUrl": format!("http://{registry_host}"), "plainHttp": true,
                     "testRepository": test.repo, "testTag": test.tag,
                     "probe": {"writeProbes": false}},
        }))
        .await?;
        emu.apply(&json!({
            "apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
            "metadata": {"name": "latency"},
            "spec": {"require": [{"name": "sbom", "preset": "sbom"}],
                     "podSelector": {"matchLabels": {"bench": "latency"}},
                     "maxReportedViolations": 500},
        }))
        .await?;
        let mut ctl = Controller::start(
            ControllerOptions::new(
                env!("CARGO_BIN_EXE_refwarden"),
                "refwarden-bench",
                emu.sa_kubeconfig(),
            )
            .leader_election(false),
        )?;
        ctl.wait_ready(Duration::from_secs(30)).await?;
        let first_seq = emu.request_seq().await?;
        let reconciles0 = ctl
            .samples()
            .await?
            .value("refwarden_reconciles_total", &[("kind", "referrerpolicy")])
            .unwrap_or(0.0);
        let mut created: Vec<(String, String, Instant)> = Vec::new();
        let mut seen_status: BTreeMap<String, Duration> = BTreeMap::new();
        let mut seen_warning: BTreeMap<String, Duration> = BTreeMap::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut next = 0usize;
        let mut last_create = Instant::now() - LATENCY_GAP;
        while (seen_status.len() < LATENCY_PODS || seen_warning.len() < LATENCY_PODS)
            && Instant::now() < deadline
        {
            if next < unsigned.len() && last_create.elapsed() >= LATENCY_GAP {
                let img = unsigned[next];
                let name = format!("lat-{next:03}");
                let mut pod = RunningPod::new(
                    "default",
                    &name,
                    &format!("{registry_host}/{}:{}", img.repo, img.tag),
                    &format!("{registry_host}/{}@{}", img.repo, img.digest),
                );
                pod.labels.insert("bench".into(), "latency".into());
                emu.create_running_pod(&pod).await?;
                created.push((name, img.digest.clone(), Instant::now()));
                last_create = Instant::now();
                next += 1;
            }
            let status = emu.get(&policy_path("latency")).await?;
            let listed: BTreeSet<String> = status
                .as_ref()
                .and_then(|p| p["status"]["violations"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|v| v["digest"].as_str().map(str::to_string))
                .collect();
            let events = emu.events().await?;
            let warned: BTreeSet<String> = events
                .iter()
                .filter(|e| e["reason"] == "MissingReferrers")
                .filter_map(|e| e["regarding"]["name"].as_str().map(str::to_string))
                .collect();
            for (name, digest, at) in &created {
                if listed.contains(digest) && !seen_status.contains_key(name) {
                    seen_status.insert(name.clone(), at.elapsed());
                }
                if warned.contains(name) && !seen_warning.contains_key(name) {
                    seen_warning.insert(name.clone(), at.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let writes = emu.requests(first_seq).await?;
        let status_applies = writes
            .iter()
            .filter(|r| r.is_status_patch("referrerpolicies", "latency"))
            .count();
        let event_writes = writes
            .iter()
            .filter(|r| r.resource == "events" && (r.method == "POST" || r.method == "PATCH"))
            .count();
        let reconciles = ctl
            .samples()
            .await?
            .value("refwarden_reconciles_total", &[("kind", "referrerpolicy")])
            .unwrap_or(0.0)
            - reconciles0;
        // Nothing changes: every pod gets a label no policy reads.
        let quiet_seq = emu.request_seq().await?;
        for (name, _, _) in &created {
            emu.merge_patch(
                &pod_path("default", name),
                &json!({"metadata": {"labels": {"touched": "yes"}}}),
            )
            .await?;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let quiet = emu.requests(quiet_seq).await?;
        let quiet_applies = quiet
            .iter()
            .filter(|r| r.is_status_patch("referrerpolicies", "latency"))
            .count();
        let quiet_events = quiet
            .iter()
            .filter(|r| r.resource == "events" && (r.method == "POST" || r.method == "PATCH"))
            .count();
        ctl.stop(Duration::from_secs(5));
        let mut both: Vec<f64> = created
            .iter()
            .filter_map(|(n, _, _)| {
                Some(seen_status.get(n)?.max(seen_warning.get(n)?).as_secs_f64())
            })
            .collect();
        both.sort_by(|a, b| a.total_cmp(b));
        let pct = |q: f64| -> f64 {
            if both.is_empty() {
                return f64::NAN;
            }
            let i = ((both.len() as f64 - 1.0) * q).round() as usize;
            both[i.min(both.len() - 1)]
        };
        Ok(json!({
            "pods": created.len(),
            "observed": both.len(),
            "p50_s": pct(0.50),
            "p99_s": pct(0.99),
            "max_s": both.last().copied().unwrap_or(f64::NAN),
            "status_applies": status_applies,
            "event_writes": event_writes,
            "policy_reconciles": reconciles,
            "quiet_status_applies": quiet_applies,
            "quiet_event_writes": quiet_events,
        }))
    })
}

// ------------------------------------------------------------ parent

/// Runs one phase in a child process and returns its result.
fn run_child(workload: &std::path::Path, args: &[&str]) -> refwarden_testkit::Result<Value> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .arg("--child")
        .args(args)
        .env("REFWARDEN_BENCH_WORKLOAD", workload)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!("child {args:?} failed: {}", out.status).into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("RESULT "))
        .ok_or_else(|| format!("child {args:?}: no RESULT line"))?;
    Ok(serde_json::from_str(line)?)
}

struct Measured {
    value: Value,
    /// Requests seen by the proxy during the phase.
    proxy: u64,
    /// Requests in the registry's own access log during the phase (spec registry only).
    access_log: Option<u64>,
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn mib(kib: &Value) -> f64 {
    f(kib) / 1024.0
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--child") {
        return child(&args);
    }
    match parent(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parent(args: &[String]) -> refwarden_testkit::Result<ExitCode> {
    let started = Instant::now();
    let delay_ms: u64 = arg(args, "--delay-ms")
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let sample: usize = arg(args, "--baseline-sample")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let write = !args.iter().any(|a| a == "--no-write");
    let delay = Duration::from_millis(delay_ms);
    let machine = machine();
    eprintln!("machine: {machine}");

    // Seed both registries with the same content.
    let plan = plan_images();
    let oci = OciRegistry::start(Quirks::default())?;
    let dist = DistributionRegistry::start(DistributionOptions::default())?;
    let rt = runtime()?;
    let t = Instant::now();
    let images = rt.block_on(seed(&oci.url(), &plan, false))?;
    let seed_oci = t.elapsed();
    let t = Instant::now();
    let dist_images = rt.block_on(seed(&dist.url(), &plan, true))?;
    let seed_dist = t.elapsed();
    drop(rt);
    if images
        .iter()
        .zip(&dist_images)
        .any(|(a, b)| a.digest != b.digest)
    {
        return Err("the two registries hold different digests".into());
    }
    let referrers: usize = images.iter().map(|i| i.refs.len()).sum();
    let mix: BTreeMap<usize, usize> = images.iter().fold(BTreeMap::new(), |mut m, i| {
        *m.entry(i.refs.len()).or_insert(0) += 1;
        m
    });
    eprintln!(
        "seeded {} images, {referrers} referrers: spec registry {:.1}s, distribution {:.1}s",
        images.len(),
        seed_oci.as_secs_f64(),
        seed_dist.as_secs_f64()
    );
    let dir = tempfile::tempdir()?;
    let workload = dir.path().join("workload.json");
    let imgs: Vec<Value> = images
        .iter()
        .map(|i| json!({"repo": i.repo, "tag": i.tag, "digest": i.digest, "refs": i.refs}))
        .collect();
    std::fs::write(&workload, serde_json::to_vec(&json!({"images": imgs}))?)?;

    let native_proxy = Proxy::start("proxy-native", &oci.url(), delay)?;
    let dist_proxy = Proxy::start("proxy-distribution", &dist.url(), delay)?;
    let nh = native_proxy.host();
    let dh = dist_proxy.host();

    let measure =
        |name: &str, proxy: &Proxy, log: bool, a: &[&str]| -> refwarden_testkit::Result<Measured> {
            eprintln!("phase {name} …");
            let p0 = proxy.requests();
            let l0 = oci.request_count() as u64;
            let t = Instant::now();
            let value = run_child(&workload, a)?;
            eprintln!("phase {name}: {:.1}s", t.elapsed().as_secs_f64());
            Ok(Measured {
                value,
                proxy: proxy.requests() - p0,
                access_log: log.then(|| oci.request_count() as u64 - l0),
            })
        };
    let native = measure(
        "native (IndexOrPlatform)",
        &native_proxy,
        true,
        &["--phase", "native", "--host", &nh],
    )?;
    let exact = measure(
        "native (Exact)",
        &native_proxy,
        true,
        &["--phase", "native-exact", "--host", &nh],
    )?;
    let mix_from = oci.request_count();
    let mix_measured = measure(
        "native mix per category (Exact, cold)",
        &native_proxy,
        true,
        &["--phase", "native-mix", "--host", &nh],
    )?;
    let categories = attribute(&mix_measured.value, &oci.access_log()[mix_from..]);
    let fallback = measure(
        "fallback (distribution 2.8)",
        &dist_proxy,
        false,
        &["--phase", "fallback", "--host", &dh],
    )?;
    let base_digest = measure(
        "baseline per digest",
        &native_proxy,
        true,
        &["--phase", "baseline-digest", "--host", &nh],
    )?;
    let sample_s = sample.to_string();
    let base_container = measure(
        "baseline per container",
        &native_proxy,
        true,
        &[
            "--phase",
            "baseline-container",
            "--host",
            &nh,
            "--sample",
            &sample_s,
        ],
    )?;
    let store10 = measure(
        "pod store 10k",
        &native_proxy,
        false,
        &["--phase", "podstore", "--pods", "10000"],
    )?;
    let store50 = measure(
        "pod store 50k",
        &native_proxy,
        false,
        &["--phase", "podstore", "--pods", "50000"],
    )?;
    let cpu = measure("policy CPU", &native_proxy, false, &["--phase", "cpu"])?;
    eprintln!("phase operator over HTTP (emulator) …");
    let t = Instant::now();
    let operator = phase_operator(&nh, &images)?;
    eprintln!(
        "phase operator over HTTP: {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let total = started.elapsed();

    let report = Report {
        machine,
        delay_ms,
        sample,
        images: images.len(),
        referrers,
        mix,
        seed_oci,
        seed_dist,
        native,
        exact,
        mix_run: mix_measured,
        categories,
        fallback,
        base_digest,
        base_container,
        store10,
        store50,
        cpu,
        operator,
        total,
    };
    let (text, failures) = report.render();
    println!("{text}");
    if write {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/benchmarks.md");
        std::fs::write(&path, &text)?;
        eprintln!("wrote {}", path.display());
    }
    if failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for f in &failures {
            eprintln!("REQUEST-COUNT TARGET MISSED: {f}");
        }
        Ok(ExitCode::FAILURE)
    }
}

/// Attributes the registry's access log of one cold run to the seeded categories: each request
/// naming a digest (`/referrers/<digest>`, `/manifests/sha256-<hex>.sig`, `/manifests/<digest>`)
/// counts for that digest's category; tag lists count per repository.
fn attribute(phase: &Value, log: &[refwarden_testkit::AccessLogEntry]) -> Value {
    let mut category: BTreeMap<String, &str> = BTreeMap::new();
    for (name, key) in [
        ("natively", "natively"),
        ("by_tag", "by_tag"),
        ("non_compliant", "non_compliant"),
    ] {
        for d in phase["truth"][key].as_array().into_iter().flatten() {
            if let Some(hex) = d.as_str().and_then(|d| d.strip_prefix("sha256:")) {
                category.insert(hex.to_string(), name);
            }
        }
    }
    let mut requests: BTreeMap<&str, u64> = BTreeMap::new();
    let mut tag_lists: BTreeMap<String, u64> = BTreeMap::new();
    let mut other = 0u64;
    for e in log {
        if let Some(repo) = e
            .path
            .strip_prefix("/v2/")
            .and_then(|p| p.split_once("/tags/list"))
            .map(|(r, _)| r.to_string())
        {
            *tag_lists.entry(repo).or_insert(0) += 1;
            continue;
        }
        let hex = ["sha256:", "sha256-"].iter().find_map(|p| {
            let i = e.path.find(p)?;
            e.path.get(i + p.len()..i + p.len() + 64)
        });
        match hex.and_then(|h| category.get(h)) {
            Some(c) => *requests.entry(c).or_insert(0) += 1,
            None => other += 1,
        }
    }
    let digests = |key: &str| phase["truth"][key].as_array().map_or(0, Vec::len) as u64;
    json!({
        "natively": {"digests": digests("natively"), "requests": requests.get("natively").copied().unwrap_or(0)},
        "by_tag": {"digests": digests("by_tag"), "requests": requests.get("by_tag").copied().unwrap_or(0)},
        "non_compliant": {"digests": digests("non_compliant"), "requests": requests.get("non_compliant").copied().unwrap_or(0)},
        "tag_lists": tag_lists.values().sum::<u64>(),
        "tag_list_repositories": tag_lists.len(),
        "max_tag_lists_per_repository": tag_lists.values().max().copied().unwrap_or(0),
        "unattributed": other,
    })
}

struct Report {
    machine: Value,
    delay_ms: u64,
    sample: usize,
    images: usize,
    referrers: usize,
    mix: BTreeMap<usize, usize>,
    seed_oci: Duration,
    seed_dist: Duration,
    native: Measured,
    exact: Measured,
    /// The Exact cold run again, alone, whose access log is attributed per category.
    mix_run: Measured,
    /// See [`attribute`].
    categories: Value,
    fallback: Measured,
    base_digest: Measured,
    base_container: Measured,
    store10: Measured,
    store50: Measured,
    cpu: Measured,
    /// See [`phase_operator`].
    operator: Value,
    total: Duration,
}

fn mark(ok: bool) -> &'static str {
    if ok { "✅ met" } else { "❌ missed" }
}

impl Report {
    /// Markdown report and the request-count targets that were missed.
    fn render(&self) -> (String, Vec<String>) {
        let mut failures = Vec::new();
        let mut s = String::new();
        let m = &self.machine;
        let n = &self.native.value;
        let x = &self.exact.value;
        let fb = &self.fallback.value;
        let bd = &self.base_digest;
        let bc = &self.base_container;
        let unique = u(&n["unique_digests"]);
        let conc = u(&n["per_registry_concurrency"]);
        let delay = self.delay_ms as f64 / 1000.0;
        let bound = unique as f64 * delay / conc.max(1) as f64;

        // Baseline (a), extrapolated linearly from the sample to every container.
        let calls_a = u(&bc.value["calls"]);
        let total_containers = u(&bc.value["total_containers"]);
        let scale = total_containers as f64 / calls_a.max(1) as f64;
        let req_a = bc.access_log.unwrap_or(bc.proxy) as f64 * scale;
        let wall_a = f(&bc.value["wall_s"]) * scale;
        let req_b = bd.access_log.unwrap_or(bd.proxy) as f64;
        let wall_b = f(&bd.value["wall_s"]);

        let _ = writeln!(s, "# Benchmarks (`make bench`)\n");
        let _ = writeln!(
            s,
            "Generated by `make bench` (`cargo bench --bench scale`, release build; source `benches/scale.rs`). \
             Do not edit by hand: rerun `make bench`.\n"
        );
        let _ = writeln!(s, "## Machine and run\n");
        let _ = writeln!(s, "| | |\n| --- | --- |");
        let _ = writeln!(
            s,
            "| command | `make bench` (= `cargo bench --locked --bench scale`) |"
        );
        let _ = writeln!(
            s,
            "| CPU | {} × {} |",
            m["nproc"],
            m["cpu"].as_str().unwrap_or("?")
        );
        let _ = writeln!(s, "| memory | {:.1} GiB |", f(&m["mem_gib"]));
        let _ = writeln!(s, "| kernel | {} |", m["kernel"].as_str().unwrap_or("?"));
        let _ = writeln!(
            s,
            "| added latency per request (proxy on 127.0.0.1) | {} ms |",
            self.delay_ms
        );
        let _ = writeln!(
            s,
            "| content | {} image digests in {REPOS} repositories, {} referrers (images with 0/1/2/3 referrers: {}) |",
            self.images,
            self.referrers,
            (0..=3)
                .map(|k| self.mix.get(&k).copied().unwrap_or(0).to_string())
                .collect::<Vec<_>>()
                .join("/")
        );
        let _ = writeln!(
            s,
            "| pods | {} pods in {NAMESPACES} namespaces, {} containers, Zipf(s=1) digest popularity, 5 ReferrerPolicies |",
            u(&n["pods"]),
            u(&n["containers"])
        );
        let _ = writeln!(s, "| unique digests selected by the policies | {unique} |");
        let _ = writeln!(
            s,
            "| Discoverer per-registry concurrency / TTL | {conc} / {} s |",
            u(&n["ttl_s"])
        );
        let _ = writeln!(
            s,
            "| seeding (not measured) | spec registry {:.1} s, distribution 2.8 {:.1} s |",
            self.seed_oci.as_secs_f64(),
            self.seed_dist.as_secs_f64()
        );
        let _ = writeln!(
            s,
            "| whole `make bench` run (after the build) | {:.0} s |\n",
            self.total.as_secs_f64()
        );

        let _ = writeln!(s, "## Results\n");
        let _ = writeln!(
            s,
            "Every phase runs in its own child process (peak RSS = that process's VmHWM; CPU = getrusage user+system). \
            Requests = the registry client's own counters, cross-checked against the test registry's access log and the proxy's count.\n"
        );
        let _ = writeln!(
            s,
            "| phase | wall | registry requests | requests / unique digest | peak RSS | CPU |"
        );
        let _ = writeln!(s, "| --- | ---: | ---: | ---: | ---: | ---: |");
        let row = |s: &mut String, name: &str, v: &Value, meas: &Measured| {
            let req = u(&v["requests"]);
            let _ = writeln!(
                s,
                "| {name} | {:.2} s | {req} (process total: access log {}, proxy {}) | {:.3} | {:.1} MiB | {:.2} s |",
                f(&v["wall_s"]),
                meas.access_log.map_or("n/a".to_string(), |a| a.to_string()),
                meas.proxy,
                req as f64 / unique.max(1) as f64,
                mib(&v["vmhwm_kib"]),
                f(&v["cpu_s"]),
            );
        };
        // Cold, warm and refresh share one process: the access-log/proxy figures cover all three.
        row(
            &mut s,
            "1. refwarden, native, cold cache (default subjectMatch IndexOrPlatform)",
            &n["cold"],
            &self.native,
        );
        let _ = writeln!(
            s,
            "| 2. refwarden, native, warm cache (recheck, same process) | {:.3} s | {} | {:.3} | {:.1} MiB | {:.2} s |",
            f(&n["warm"]["wall_s"]),
            u(&n["warm"]["requests"]),
            u(&n["warm"]["requests"]) as f64 / unique.max(1) as f64,
            mib(&n["warm"]["vmhwm_kib"]),
            f(&n["warm"]["cpu_s"])
        );
        let _ = writeln!(
            s,
            "| 2b. refwarden, native, refresh after the TTL (outcomes expired; immutable manifest cache kept) | {:.2} s | {} | {:.3} | {:.1} MiB | {:.2} s |",
            f(&n["refresh"]["wall_s"]),
            u(&n["refresh"]["requests"]),
            u(&n["refresh"]["requests"]) as f64 / unique.max(1) as f64,
            mib(&n["refresh"]["vmhwm_kib"]),
            f(&n["refresh"]["cpu_s"])
        );
        row(
            &mut s,
            "1′. refwarden, native, cold cache, all policies subjectMatch Exact",
            &x["cold"],
            &self.exact,
        );
        let _ = writeln!(
            s,
            "| 2′. the same, warm | {:.3} s | {} | {:.3} | {:.1} MiB | {:.2} s |",
            f(&x["warm"]["wall_s"]),
            u(&x["warm"]["requests"]),
            u(&x["warm"]["requests"]) as f64 / unique.max(1) as f64,
            mib(&x["warm"]["vmhwm_kib"]),
            f(&x["warm"]["cpu_s"])
        );
        let _ = writeln!(
            s,
            "| 3a. baseline oci-client `pull_referrers` per pod container, sequential — **extrapolated** ×{scale:.2} from {} calls ({} sampled pods) to {total_containers} containers | {wall_a:.1} s | {req_a:.0} | {:.2} | {:.1} MiB | {:.2} s (sample) |",
            calls_a,
            u(&bc.value["sampled_pods"]),
            req_a / unique.max(1) as f64,
            mib(&bc.value["vmhwm_kib"]),
            f(&bc.value["cpu_s"])
        );
        let _ = writeln!(
            s,
            "| 3a (measured sample) | {:.2} s | {} (proxy {}) | – | – | – |",
            f(&bc.value["wall_s"]),
            bc.access_log.unwrap_or(0),
            bc.proxy
        );
        let _ = writeln!(
            s,
            "| 3b. baseline oci-client `pull_referrers` per unique digest, sequential | {wall_b:.2} s | {req_b:.0} (proxy {}) | {:.3} | {:.1} MiB | {:.2} s |",
            bd.proxy,
            req_b / unique.max(1) as f64,
            mib(&bd.value["vmhwm_kib"]),
            f(&bd.value["cpu_s"])
        );
        let _ = writeln!(
            s,
            "| 4. refwarden, tag-schema fallback on distribution 2.8, cold | {:.2} s | {} (proxy {}) | {:.3} | {:.1} MiB | {:.2} s |",
            f(&fb["cold"]["wall_s"]),
            u(&fb["cold"]["requests"]),
            self.fallback.proxy,
            u(&fb["cold"]["requests"]) as f64 / unique.max(1) as f64,
            mib(&fb["cold"]["vmhwm_kib"]),
            f(&fb["cold"]["cpu_s"])
        );
        let _ = writeln!(
            s,
            "| 4. the same, warm | {:.3} s | {} | {:.3} | {:.1} MiB | {:.2} s |",
            f(&fb["warm"]["wall_s"]),
            u(&fb["warm"]["requests"]),
            u(&fb["warm"]["requests"]) as f64 / unique.max(1) as f64,
            mib(&fb["warm"]["vmhwm_kib"]),
            f(&fb["warm"]["cpu_s"])
        );
        let _ = writeln!(
            s,
            "| 4. the same, refresh after the TTL | {:.2} s | {} | {:.3} | {:.1} MiB | {:.2} s |\n",
            f(&fb["refresh"]["wall_s"]),
            u(&fb["refresh"]["requests"]),
            u(&fb["refresh"]["requests"]) as f64 / unique.max(1) as f64,
            mib(&fb["refresh"]["vmhwm_kib"]),
            f(&fb["refresh"]["cpu_s"])
        );

        let s10 = &self.store10.value;
        let s50 = &self.store50.value;
        let _ = writeln!(
            s,
            "| 5. pod store (`controller::stores::PodStore` of `PodEntry`/`PodInfo`) | pods | heap bytes (counting allocator) | bytes / pod | RSS delta |"
        );
        let _ = writeln!(s, "| --- | ---: | ---: | ---: | ---: |");
        for v in [s10, s50] {
            let _ = writeln!(
                s,
                "| | {} | {} | {:.0} | {:.1} MiB |",
                u(&v["pods"]),
                u(&v["heap_bytes"]),
                f(&v["bytes_per_pod"]),
                mib(&v["rss_delta_kib"])
            );
        }
        let _ = writeln!(
            s,
            "\nFor comparison, one whole `Pod` object as generated here: {} heap bytes ({} bytes as JSON; real pods carry far more).\n",
            u(&s10["pod_object_bytes"]),
            u(&s10["pod_json_bytes"])
        );
        let c = &self.cpu.value;
        let _ = writeln!(
            s,
            "6. Pure policy evaluation CPU (`compile` + `select` + `judge`, {} pods × {} policies, {} images, outcomes in memory): **median {:.1} ms** of 9 runs (min {:.1} ms).\n",
            u(&c["pods"]),
            u(&c["policies"]),
            u(&c["images"]),
            f(&c["median_s"]) * 1000.0,
            f(&c["min_s"]) * 1000.0
        );

        // Targets.
        let cold_req = u(&n["cold"]["requests"]);
        let per_digest = cold_req as f64 / unique.max(1) as f64;
        // IndexOrPlatform must read the manifest of an image that misses a requirement on its own
        // digest (is it an index whose platforms carry it?): one GET each, and nothing else.
        let missing = u(&n["cold"]["digests_missing_a_requirement"]);
        let allowed_default = u(&n["truth"]["expected_cold_requests"]) as f64;
        let allowed_exact = u(&x["truth"]["expected_cold_requests"]);
        let exact_req = u(&x["cold"]["requests"]);
        let cat = &self.categories;
        let per = |k: &str| u(&cat[k]["requests"]) as f64 / u(&cat[k]["digests"]).max(1) as f64;
        let natively_ok = u(&cat["natively"]["requests"]) == u(&cat["natively"]["digests"]);
        let max_lists = u(&cat["max_tag_lists_per_repository"]);
        let misjudged = u(&n["cold"]["misjudged"])
            + u(&x["cold"]["misjudged"])
            + u(&self.mix_run.value["cold"]["misjudged"])
            + u(&fb["cold"]["misjudged"]);
        let exact_per_digest = exact_req as f64 / unique.max(1) as f64;
        let warm_req =
            u(&n["warm"]["requests"]) + u(&x["warm"]["requests"]) + u(&fb["warm"]["requests"]);
        let cold_wall = f(&n["cold"]["wall_s"]);
        let exact_wall = f(&x["cold"]["wall_s"]);
        let req_ratio = req_a / cold_req.max(1) as f64;
        let wall_ratio = wall_a / cold_wall.max(1e-9);
        let rss = mib(&n["cold"]["vmhwm_kib"]).max(mib(&n["warm"]["vmhwm_kib"]));
        let bpp = f(&s10["bytes_per_pod"]).max(f(&s50["bytes_per_pod"]));
        let cpu_ms = f(&c["median_s"]) * 1000.0;
        let all = |v: &Value| {
            u(&v["cold"]["requests"]) + u(&v["warm"]["requests"]) + u(&v["refresh"]["requests"])
        };
        let crosscheck_ok = self.native.access_log == Some(all(n))
            && self.native.proxy == all(n)
            && self.exact.access_log == Some(all(x))
            && self.exact.proxy == all(x)
            && self.fallback.proxy == all(fb)
            && u(&n["stats"]["requests"]) == all(n);
        let unknown = u(&n["cold"]["unknown_images"])
            + u(&x["cold"]["unknown_images"])
            + u(&fb["cold"]["unknown_images"]);

        let op = &self.operator;
        let rtt = self.delay_ms as f64 / 1000.0;
        let _ = writeln!(s, "## The operator over HTTP (Kubernetes API emulator)\n");
        let _ = writeln!(
            s,
            "The real `refwarden controller` binary (release) against `e2e/emulator/`, the registry behind the {} ms proxy: {} pods, one every {} ms, each running an image that misses an SBOM; from a pod becoming Running to the policy status listing its digest **and** its `MissingReferrers` Warning (polled every 50 ms):\n",
            self.delay_ms,
            u(&op["pods"]),
            LATENCY_GAP.as_millis()
        );
        let _ = writeln!(
            s,
            "| p50 | p99 | max | observed | status applies | policy reconciles | Event writes | with nothing changed: status applies / Event writes |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        let _ = writeln!(
            s,
            "| {:.2} s | {:.2} s | {:.2} s | {} | {} | {:.0} | {} | {} / {} |\n",
            f(&op["p50_s"]),
            f(&op["p99_s"]),
            f(&op["max_s"]),
            u(&op["observed"]),
            u(&op["status_applies"]),
            f(&op["policy_reconciles"]),
            u(&op["event_writes"]),
            u(&op["quiet_status_applies"]),
            u(&op["quiet_event_writes"]),
        );
        let p99_ok = f(&op["p99_s"]) <= rtt + 1.0;
        let applies_ok = u(&op["status_applies"]) as f64 <= f(&op["policy_reconciles"]);
        let quiet_ok = u(&op["quiet_status_applies"]) == 0;
        let observed_ok = u(&op["observed"]) == u(&op["pods"]);
        let _ = writeln!(
            s,
            "## Cost per kind of image: a third signed with cosign 2 tags (issue 13)\n"
        );
        let _ = writeln!(
            s,
            "Every third image carries its signature as a cosign 2 `sha256-<hex>.sig` tag on the registry *with* the referrers API (the rest as referrers). \
            One cold run of every policy (subjectMatch Exact); each request in the registry's access log that names a digest is counted for that digest's kind (from the seeded truth); tag lists are counted per repository.\n"
        );
        let _ = writeln!(
            s,
            "| images | unique digests | requests | requests / digest |\n| --- | ---: | ---: | ---: |"
        );
        for (label, key) in [
            ("compliant in the native answer", "natively"),
            ("compliant through the cosign 2 tag", "by_tag"),
            ("non-compliant", "non_compliant"),
        ] {
            let _ = writeln!(
                s,
                "| {label} | {} | {} | {:.2} |",
                u(&cat[key]["digests"]),
                u(&cat[key]["requests"]),
                per(key)
            );
        }
        let _ = writeln!(
            s,
            "| tag lists (shared by the repository's digests) | {} repositories | {} | max {max_lists} per repository |\n",
            u(&cat["tag_list_repositories"]),
            u(&cat["tag_lists"]),
        );
        let _ = writeln!(s, "## Targets\n");
        let _ = writeln!(s, "| target | measured | |\n| --- | --- | --- |");
        let _ = writeln!(
            s,
            "| operator: every pod's status and Warning written | {} of {} | {} |",
            u(&op["observed"]),
            u(&op["pods"]),
            mark(observed_ok)
        );
        let _ = writeln!(
            s,
            "| operator: p99 from Running to status + Warning ≤ one registry round trip + 1 s ({:.2} s; timing, reported) | {:.2} s | {} |",
            rtt + 1.0,
            f(&op["p99_s"]),
            mark(p99_ok)
        );
        let _ = writeln!(
            s,
            "| operator: ≤ 1 status apply per policy per reconcile | {} applies / {:.0} reconciles | {} |",
            u(&op["status_applies"]),
            f(&op["policy_reconciles"]),
            mark(applies_ok)
        );
        let _ = writeln!(
            s,
            "| operator: 0 status applies when nothing changed | {} | {} |",
            u(&op["quiet_status_applies"]),
            mark(quiet_ok)
        );
        let _ = writeln!(
            s,
            "| compliant in the native answer: 1.00 request / digest cold | {:.2} ({} / {}) | {} |",
            per("natively"),
            u(&cat["natively"]["requests"]),
            u(&cat["natively"]["digests"]),
            mark(natively_ok)
        );
        let _ = writeln!(
            s,
            "| tag lists ≤ 1 per repository per freshness window | max {max_lists} | {} |",
            mark(max_lists <= 1)
        );
        let _ = writeln!(
            s,
            "| no image misjudged (every policy's violations = the seeded truth; native, Exact, mix, fallback) | {misjudged} misjudged | {} |",
            mark(misjudged == 0)
        );
        let _ = writeln!(
            s,
            "| native, cold, default subjectMatch: nothing beyond 1 listing per digest + 1 tag list per repository with a digest missing natively + its existing `.sig` tags + 1 manifest read per image still missing ({unique} + {} + {} + {} = {allowed_default:.0}) | {cold_req} ({per_digest:.3} / digest) | {} |",
            u(&n["truth"]["repos_missing"]),
            u(&n["truth"]["tag_fetches"]),
            missing,
            mark(cold_req as f64 <= allowed_default)
        );
        let _ = writeln!(
            s,
            "| native, cold, subjectMatch Exact: nothing beyond 1 listing per digest + the tag lists and tags above ({unique} + {} + {} = {allowed_exact}) | {exact_req} ({exact_per_digest:.3} / digest) | {} |",
            u(&x["truth"]["repos_missing"]),
            u(&x["truth"]["tag_fetches"]),
            mark(exact_req <= allowed_exact)
        );
        let _ = writeln!(
            s,
            "| warm recheck within the TTL: 0 requests | {warm_req} | {} |",
            mark(warm_req == 0)
        );
        let _ = writeln!(
            s,
            "| ≥ 10× fewer requests than baseline (a) | {req_ratio:.1}× ({req_a:.0} vs {cold_req}) | {} |",
            mark(req_ratio >= 10.0)
        );
        let _ = writeln!(
            s,
            "| ≥ 5× less wall time than baseline (a) | {wall_ratio:.1}× ({wall_a:.1} s vs {cold_wall:.2} s) | {} |",
            mark(wall_ratio >= 5.0)
        );
        let _ = writeln!(
            s,
            "| cold wall ≤ 1.5 × latency bound ({unique} × {} ms ÷ {conc} = {bound:.2} s) | default: {cold_wall:.2} s = {:.2}× (of the bound for its {cold_req} requests, {:.2} s: {:.2}×); Exact: {exact_wall:.2} s = {:.2}× | {} / {} |",
            self.delay_ms,
            cold_wall / bound.max(1e-9),
            bound * cold_req as f64 / unique.max(1) as f64,
            cold_wall / (bound * cold_req as f64 / unique.max(1) as f64).max(1e-9),
            exact_wall / bound.max(1e-9),
            mark(cold_wall <= 1.5 * bound),
            mark(exact_wall <= 1.5 * bound)
        );
        let _ = writeln!(
            s,
            "| peak RSS of the whole evaluation ≤ 64 MiB at 10,000 pods | {rss:.1} MiB | {} |",
            mark(rss <= 64.0)
        );
        let _ = writeln!(
            s,
            "| pod store ≤ 1 KiB / pod | {bpp:.0} B | {} |",
            mark(bpp <= 1024.0)
        );
        let _ = writeln!(
            s,
            "| policy evaluation CPU ≤ 50 ms | {cpu_ms:.1} ms | {} |",
            mark(cpu_ms <= 50.0)
        );
        let _ = writeln!(
            s,
            "| request counts agree (client counters = access log = proxy) | {} | {} |",
            if crosscheck_ok { "yes" } else { "NO" },
            mark(crosscheck_ok)
        );
        let _ = writeln!(
            s,
            "| no image Unknown (every discovery answered) | {unknown} Unknown | {} |\n",
            mark(unknown == 0)
        );
        let _ = writeln!(
            s,
            "Ratios to the baselines: refwarden cold (default subjectMatch) makes {:.1}× fewer requests than (a) and is {wall_ratio:.1}× faster; against (b) its request ratio is {:.2} (refwarden ÷ (b)) and it is {:.1}× faster (8 concurrent requests vs sequential). With subjectMatch Exact: {:.1}× fewer requests than (a), ratio {:.2} to (b), {:.1}× faster than (a).\n",
            req_ratio,
            cold_req as f64 / req_b.max(1.0),
            wall_b / cold_wall.max(1e-9),
            req_a / exact_req.max(1) as f64,
            exact_req as f64 / req_b.max(1.0),
            wall_a / exact_wall.max(1e-9)
        );

        let by: Vec<String> = n["cold_by_endpoint"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        format!(
                            "{} {} × {}",
                            e["endpoint"].as_str().unwrap_or("?"),
                            e["status"],
                            e["count"]
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "Cold requests by endpoint (default subjectMatch): {}.\n",
            by.join(", ")
        );
        let _ = writeln!(
            s,
            "Baseline (a) errors: {} (first: {}); baseline (b) errors: {}. Referrers listed by the baseline per digest: {}.\n",
            u(&bc.value["errors"]),
            bc.value["first_error"],
            u(&bd.value["errors"]),
            u(&bd.value["referrers_found"])
        );

        let _ = writeln!(s, "Per-policy compliance (native, cold):\n");
        let _ = writeln!(
            s,
            "| policy | pods | images | compliant | non-compliant | unknown |\n| --- | ---: | ---: | ---: | ---: | ---: |"
        );
        for p in n["cold"]["policies"].as_array().into_iter().flatten() {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                p["policy"].as_str().unwrap_or("?"),
                p["pods"],
                p["images"],
                p["compliant"],
                p["nonCompliant"],
                p["unknown"]
            );
        }
        let _ = writeln!(s, "\n## Notes\n");
        let _ = writeln!(
            s,
            "- Workload: the spec-following in-memory registry (`testkit/src/oci_registry.rs`) behind a proxy adding {} ms to every request; the same content on Debian's distribution 2.8 (`docker-registry`) with referrers tag-schema indexes, behind its own proxy. Pods are synthetic `Pod` objects converted by `PodInfo::from_pod`; the RegistryProfile hint is the probed mode (Native / TagFallback), plain HTTP, anonymous (so \"warm tokens\" holds trivially: no token requests).",
            self.delay_ms
        );
        let _ = writeln!(
            s,
            "- Baseline (a) is run on a deterministic sample (every k-th pod, {} pods requested) sequentially and extrapolated linearly to all containers; (b) is run in full.",
            self.sample
        );
        let _ = writeln!(
            s,
            "- oci-client limits (reference sheet §2.7): falls back to the tag schema only on 404, no Content-Type check, no `Link` pagination, no `OCI-Filters-Applied` check, no classification, no cache or coalescing."
        );
        let _ = writeln!(
            s,
            "- Timings depend on the machine and on other load; only request counts are asserted (the run exits non-zero when one of the request-count targets misses)."
        );
        let _ = writeln!(
            s,
            "- Why the default subjectMatch costs more than 1.02 requests per digest cold: `IndexOrPlatform` (the default the operator issue fixes) counts a referrer on a platform manifest when the running digest is an index whose every platform carries one. Whether a digest is an index is not in the pod (the runtime reports a digest, not a media type) nor in the referrers answer, so it takes one manifest GET. refwarden makes it only for images that miss a requirement on their own digest ({missing} of {unique} here, since the seeded mix leaves many images without some required artifact), reuses the listing it already has, and keeps the manifest in its immutable by-digest cache: the refresh after the TTL (2b) is back at {:.3} per digest, and an image that carries its required referrers on its own digest costs its one listing cold too (`tests/policy_platforms.rs` asserts that no manifest is read for it). `subjectMatch: Exact` (what cosign or Kyverno check) meets the target cold. The wall-time miss has the same cause: {cold_req} requests through {conc} concurrent slots cannot finish under the bound computed for {unique}.",
            u(&n["refresh"]["requests"]) as f64 / unique.max(1) as f64
        );
        let _ = writeln!(
            s,
            "- Fallback mode (4) has no target: per digest it reads the `sha256-<hex>` index tag, then every manifest the index lists, because a client-written index can name manifests that are gone (distribution 2.8's `garbage-collect --delete-untagged` deletes the children of tagged indexes) or that have another subject, and counting those would report a deleted signature as present. Those reads are cached by digest, so the refresh after the TTL (one index-tag read per digest with referrers) is back under 1.0; the tag lists (one per repository, {REPOS} repositories) are shared by all digests."
        );

        if cold_req as f64 > allowed_default {
            failures.push(format!("native cold requests {cold_req} > {allowed_default:.0} (default subjectMatch IndexOrPlatform)"));
        }
        if exact_req > allowed_exact {
            failures.push(format!(
                "native cold requests {exact_req} > {allowed_exact} (subjectMatch Exact)"
            ));
        }
        if !natively_ok {
            failures.push(format!(
                "natively compliant images cost {:.3} requests per digest cold (want 1.00)",
                per("natively")
            ));
        }
        if max_lists > 1 {
            failures.push(format!(
                "a repository's tag list was read {max_lists} times in one window (want ≤ 1)"
            ));
        }
        if misjudged > 0 {
            failures.push(format!(
                "{misjudged} image verdicts differ from the seeded truth"
            ));
        }
        if !observed_ok {
            failures.push(format!(
                "the operator wrote status and Warning for {} of {} pods",
                u(&op["observed"]),
                u(&op["pods"])
            ));
        }
        if !applies_ok {
            failures.push("more status applies than policy reconciles".to_string());
        }
        if !quiet_ok {
            failures.push(format!(
                "{} status applies although nothing changed",
                u(&op["quiet_status_applies"])
            ));
        }
        if warm_req != 0 {
            failures.push(format!("warm recheck made {warm_req} requests (want 0)"));
        }
        if req_ratio < 10.0 {
            failures.push(format!(
                "only {req_ratio:.1}× fewer requests than baseline (a), want ≥ 10×"
            ));
        }
        if !crosscheck_ok {
            failures.push("client counters, access log and proxy disagree".into());
        }
        (s, failures)
    }
}
