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
//!
//! This file runs the phases; [`workload`] is what is seeded and evaluated, [`proxy`] the
//! latency-injecting proxy, [`report`] the figures and the Markdown report.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use refwarden::controller::stores::PodStore;
use refwarden::crd::{
    DiscoveryMode, EffectiveDiscoveryMode, Preset, ReferrerPolicySpec, SubjectMatch,
};
use refwarden::discovery::{
    ArtifactKind, AttachedTo, Discoverer, DiscovererConfig, DiscoveryMethod, DiscoveryOutcome,
    DiscoveryReport, Referrer,
};
use refwarden::policy::{
    ImageKey, NamespaceLabels, PodInfo, PolicyInput, Verifier, compile, evaluate_policy, judge,
    select,
};
use refwarden::registry::{
    ImplicitAccess, PlainHttp, RegistryClient, RegistryClientConfig, RegistryDirectory,
    RegistryEntry, RequestCounters,
};
use refwarden_testkit::{DistributionOptions, DistributionRegistry, OciRegistry, Quirks};
use serde_json::{Value, json};

mod proxy;
mod report;
mod workload;

use proxy::Proxy;
use report::{Measured, Report, attribute};
use workload::{
    ATT, Img, PODS, SBOM, SIG, SIG_TAG, for_each_pod, namespace_labels, now, plan_images,
    pod_infos, policies, seed, to_pod,
};

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
    let trust = refwarden::policy::TrustObjects::default();
    let verifier = refwarden::policy::Verifier::new();
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
                trust: &trust,
            })
            .collect();
        let results = rt.block_on(futures::future::join_all(inputs.iter().map(|input| {
            evaluate_policy(input, pods.iter(), &ns, &dir, &disc, &verifier, now())
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
            let eval = judge(&c, &sel, &outcomes, &BTreeMap::new());
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

/// Signed images in the verification phase (each with one cosign signature referrer by a real
/// P-256 key, one in ten by another key), run by [`VERIFY_PODS_PER_IMAGE`] pods each.
const VERIFY_IMAGES: usize = 200;
const VERIFY_PODS_PER_IMAGE: usize = 50;

/// Verification on: a policy whose signature requirement verifies with a key, over
/// [`VERIFY_IMAGES`] images on a spec registry of its own, 10,000 pods. Measures what
/// verification adds: requests per verified signature cold (the same policy without `verify`
/// is the base), warm requests, signature-check CPU per signature, peak RSS.
fn phase_verification() -> refwarden_testkit::Result<Value> {
    use refwarden_testkit::sigstore_gen::{Alg, Key, b64};
    use std::sync::atomic::Ordering::Relaxed;
    let rss_start = proc_status_kib("VmHWM:");
    let reg = OciRegistry::start(Quirks::default())?;
    let rt = runtime()?;
    let key = Key::generate(Alg::P256);
    let other = Key::generate(Alg::P256);
    let seeder = refwarden_testkit::Seeder::new(&reg.url(), refwarden_testkit::SeedAuth::None)?;
    let host = reg.host();
    let mut pods = Vec::new();
    for i in 0..VERIFY_IMAGES {
        let repo = format!("verify/app{}", i % 20);
        let img = rt.block_on(seeder.push_image(&repo, &format!("v{i}")))?;
        let payload = refwarden_testkit::sigstore_docs::simple_signing_payload(&img.digest);
        let signer = if i % 10 == 9 { &other } else { &key };
        let sig = b64(&signer.sign(&payload));
        let config =
            br#"{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#
                .to_vec();
        rt.block_on(refwarden_testkit::tools::push_layers(
            &seeder,
            &repo,
            None,
            (refwarden_testkit::media::OCI_CONFIG, config),
            &[(
                refwarden_testkit::media::COSIGN_SIMPLESIGNING,
                payload,
                json!({"dev.cosignproject.cosign/signature": sig}),
            )],
            json!({"artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
                   "subject": {"mediaType": img.media_type, "digest": img.digest, "size": img.size}}),
        ))?;
        for p in 0..VERIFY_PODS_PER_IMAGE {
            let image = format!("{host}/{repo}@{}", img.digest);
            pods.push(refwarden_testkit::running_pod(
                &format!("p{i}-{p}"),
                image.clone(),
                image,
            ));
        }
    }
    let spec_for = |verify: bool| -> refwarden_testkit::Result<ReferrerPolicySpec> {
        let mut req = json!({"name": "signature", "preset": "signature"});
        if verify {
            req["verify"] = json!({"keys": [{"pem": key.public_pem()}], "ignoreTlog": true});
        }
        Ok(serde_json::from_value(
            json!({"require": [req], "subjectMatch": "Exact"}),
        )?)
    };
    let dir = RegistryDirectory::with_implicit(ImplicitAccess {
        plain_http: PlainHttp::All,
        ..ImplicitAccess::default()
    });
    let trust = refwarden::policy::TrustObjects::default();
    let ns = BTreeMap::new();
    let run = |spec: &ReferrerPolicySpec, disc: &Discoverer, verifier: &Verifier| {
        let input = PolicyInput {
            name: "verify",
            spec,
            generation: Some(1),
            previous: None,
            trust: &trust,
        };
        let r0 = reg.request_count();
        let cpu0 = cpu_time();
        let t0 = Instant::now();
        let result = rt.block_on(evaluate_policy(
            &input,
            pods.iter(),
            &ns,
            &dir,
            disc,
            verifier,
            now(),
        ));
        (
            result.status.summary,
            reg.request_count() - r0,
            t0.elapsed(),
            cpu_time() - cpu0,
        )
    };
    // The base: presence only.
    let (_, base_requests, _, _) = run(
        &spec_for(false)?,
        &Discoverer::new(DiscovererConfig::default()),
        &Verifier::new(),
    );
    let disc = Discoverer::new(DiscovererConfig::default());
    let verifier = Verifier::new();
    let spec = spec_for(true)?;
    let (cold, cold_requests, cold_wall, cold_cpu) = run(&spec, &disc, &verifier);
    let checked_cold = verifier.stats.checked.load(Relaxed);
    let (warm, warm_requests, warm_wall, warm_cpu) = run(&spec, &disc, &verifier);
    let signatures = verifier.stats.signatures.load(Relaxed);
    let crypto = Duration::from_nanos(verifier.stats.crypto_nanos.load(Relaxed));
    Ok(json!({
        "images": VERIFY_IMAGES,
        "pods": pods.len(),
        "verified": cold.verified,
        "unverified": cold.unverified,
        "warm_verified": warm.verified,
        "base_requests": base_requests,
        "cold_requests": cold_requests,
        "evidence_requests": verifier.stats.requests.load(Relaxed),
        "warm_requests": warm_requests,
        "checked_cold": checked_cold,
        "checked_warm": verifier.stats.checked.load(Relaxed) - checked_cold,
        "cache_hits": verifier.stats.cache_hits.load(Relaxed),
        "signatures": signatures,
        "crypto_s": crypto.as_secs_f64(),
        "crypto_per_signature_us": crypto.as_secs_f64() * 1e6 / signatures.max(1) as f64,
        "crypto_median_us": verifier
            .stats
            .median_signature_time()
            .map_or(0.0, |d| d.as_secs_f64() * 1e6),
        "cold_wall_s": cold_wall.as_secs_f64(),
        "cold_cpu_s": cold_cpu.as_secs_f64(),
        "warm_wall_s": warm_wall.as_secs_f64(),
        "warm_cpu_s": warm_cpu.as_secs_f64(),
        "vmhwm_start_kib": rss_start,
        "vmhwm_kib": proc_status_kib("VmHWM:"),
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
        "verification" => phase_verification(),
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
    let verification = measure(
        "verification",
        &native_proxy,
        false,
        &["--phase", "verification"],
    )?;
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
        verification,
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
