//! Runs one ReferrerPolicy end to end: select pods, resolve tags, pick the
//! registry for each image, discover through the shared [`Discoverer`], verify
//! through the shared [`Verifier`], judge, and build the status.
//!
//! Not a Kubernetes reconciler (that is `controller::policy::reconcile`): the
//! controller calls [`evaluate_policy`] with pods from its reflector;
//! `refwarden evaluate` calls it with pods read from files. Same inputs, same
//! status.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::evaluate::{self, Evaluation, InvalidSpec, NamespaceLabels};
use super::pods::{ImageKey, PodInfo};
use super::trust::{self, PolicyTrust, TrustObjects};
use super::verification::{self, Check, ImageVerdicts, RequirementVerdict, Verifier};
use crate::crd::{ReferrerPolicySpec, ReferrerPolicyStatus, SubjectMatch};
use crate::discovery::{
    Discoverer, DiscoveryOutcome, DiscoveryReport, DiscoveryRequest, Reach, Referrer,
};
use crate::reason::{Reason, UnknownReason};
use crate::registry::directory::RegistryDirectory;
use crate::registry::resolve_digest;

/// Images discovered concurrently per policy evaluation (the Discoverer also bounds per registry).
const CONCURRENCY: usize = 32;

/// A policy to evaluate.
#[derive(Clone, Debug)]
pub struct PolicyInput<'a> {
    /// Name of the ReferrerPolicy.
    pub name: &'a str,
    /// Its spec.
    pub spec: &'a ReferrerPolicySpec,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// The status stored now (keeps condition transition times).
    pub previous: Option<&'a ReferrerPolicyStatus>,
    /// The ConfigMaps and Secrets its `verify` blocks name ([`trust::references`]).
    pub trust: &'a TrustObjects,
}

/// Outcome of resolving one tag: the digest, or (reason, message).
type Resolved = Result<String, (Reason, String)>;

/// Result of one evaluation.
#[derive(Clone, Debug)]
pub struct PolicyResult {
    /// The status to write.
    pub status: ReferrerPolicyStatus,
    /// Every judged image (unbounded), for events and metrics. `None` for an invalid spec.
    pub evaluation: Option<Evaluation>,
    /// The spec error, when invalid.
    pub invalid: Option<InvalidSpec>,
}

fn check_profiles(
    spec: &ReferrerPolicySpec,
    directory: &RegistryDirectory,
) -> Result<(), InvalidSpec> {
    let names = directory.names();
    for (i, n) in spec.registry_profiles.iter().enumerate() {
        if !names.contains(n) {
            return Err(InvalidSpec {
                field: format!("spec.registryProfiles[{i}]"),
                message: format!("RegistryProfile {n:?} does not exist"),
            });
        }
    }
    Ok(())
}

/// Evaluates a policy over `pods`. Never fails: registry trouble makes images
/// Unknown; a bad spec gives the InvalidSpec status.
pub async fn evaluate_policy<'p>(
    input: &PolicyInput<'_>,
    pods: impl IntoIterator<Item = &'p PodInfo>,
    namespaces: &NamespaceLabels,
    directory: &RegistryDirectory,
    discoverer: &Discoverer,
    verifier: &Verifier,
    now: Time,
) -> PolicyResult {
    let compiled = match evaluate::compile(input.spec)
        .and_then(|c| check_profiles(input.spec, directory).map(|()| c))
        .and_then(|c| trust::compile(input.spec, input.trust).map(|t| (c, t)))
    {
        Ok(c) => c,
        Err(e) => {
            return PolicyResult {
                status: evaluate::invalid_spec_status(&e, input.generation, input.previous, &now),
                evaluation: None,
                invalid: Some(e),
            };
        }
    };
    let (compiled, trust) = compiled;
    let allowed = &input.spec.registry_profiles;
    let mut selection = evaluate::select(&compiled, pods, namespaces);

    // Tags (workloads read from files, pods not started yet): resolve as a kubelet would.
    let tags: Vec<(String, crate::registry::ImageReference)> = selection
        .tags
        .iter()
        .map(|(k, t)| (k.clone(), t.reference.clone()))
        .collect();
    let resolved: Vec<(String, Resolved)> =
        futures::stream::iter(tags.into_iter().map(|(key, r)| async move {
            let result = match directory.entry_for(&r.registry, allowed) {
                Err(b) => Err((b.reason, b.message)),
                Ok(entry) => {
                    let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
                    resolve_digest(&entry.client, &r.repository, &tag)
                        .await
                        .map_err(|e| (e.reason, e.message))
                }
            };
            (key, result)
        }))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for (key, result) in resolved {
        match result {
            Ok(digest) => selection.resolve_tag(&key, &digest),
            Err((reason, message)) => selection.fail_tag(
                &key,
                UnknownReason::of(reason),
                &format!("{reason}: {message}"),
            ),
        }
    }

    // Discover every distinct image once (the Discoverer caches and coalesces across policies).
    let platforms = input.spec.subject_match == SubjectMatch::IndexOrPlatform;
    let jobs: Vec<(ImageKey, Option<String>)> = selection
        .images
        .iter()
        .map(|(k, u)| (k.clone(), u.index.iter().next().cloned()))
        .collect();
    let trust = &trust;
    let judged: Vec<(ImageKey, Arc<DiscoveryOutcome>, Option<ImageVerdicts>)> =
        futures::stream::iter(jobs.into_iter().map(|(key, index)| async move {
            let index = if platforms { index } else { None };
            let mut outcome =
                discover_image(&key, index.clone(), input.spec, directory, discoverer).await;
            let verdicts = if trust.is_empty() {
                None
            } else {
                let (o, v) = verify_image(
                    &key, index, outcome, input.spec, trust, directory, discoverer, verifier,
                )
                .await;
                outcome = o;
                Some(v)
            };
            (key, outcome, verdicts)
        }))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut outcomes: BTreeMap<ImageKey, Arc<DiscoveryOutcome>> = BTreeMap::new();
    let mut verdicts: BTreeMap<ImageKey, ImageVerdicts> = BTreeMap::new();
    for (key, outcome, v) in judged {
        if let Some(v) = v {
            verdicts.insert(key.clone(), v);
        }
        outcomes.insert(key, outcome);
    }

    let evaluation = evaluate::judge(&compiled, &selection, &outcomes, &verdicts);
    let status = evaluate::status(
        &compiled,
        &evaluation,
        input.generation,
        input.previous,
        &now,
    );
    tracing::debug!(
        policy = input.name,
        pods = evaluation.summary.pods,
        images = evaluation.summary.images,
        non_compliant = evaluation.summary.non_compliant,
        unknown = evaluation.summary.unknown,
        "policy evaluated"
    );
    PolicyResult {
        status,
        evaluation: Some(evaluation),
        invalid: None,
    }
}

/// Discovers one image as far as its requirements need, each step reusing the previous answer:
/// the referrers listing (one request on a registry with the API); for an image that misses a
/// requirement, the union with the tag fallbacks (cosign ≤ 2 tags, the tag-schema index) and
/// the descriptors that did not say what they are; for a requirement naming formats, the
/// manifests whose format the answer left open; with `IndexOrPlatform`, the platform manifests
/// of an index; last, the repositories requirements name for the same digest.
async fn discover_image(
    key: &ImageKey,
    index: Option<String>,
    spec: &ReferrerPolicySpec,
    directory: &RegistryDirectory,
    discoverer: &Discoverer,
) -> Arc<DiscoveryOutcome> {
    let require = &spec.require;
    let subject_match = spec.subject_match;
    let entry = match directory.entry_for(&key.registry, &spec.registry_profiles) {
        Err(b) => {
            return Arc::new(DiscoveryOutcome::Unknown {
                reason: b.reason,
                message: b.message,
            });
        }
        Ok(entry) => entry,
    };
    let mut req = DiscoveryRequest::new(entry.client.registry(), &key.repository, &key.digest);
    req.index_digest = index.clone();
    req.reach = Reach::Listing;
    let mut outcome = discoverer
        .discover(&entry.client, entry.mode, entry.hint, &req)
        .await;
    // Without platform expansion, IndexOrPlatform judges like Exact plus the index.
    if !missing(require, subject_match, &outcome).is_empty() {
        req.reach = Reach::Union;
        outcome = discoverer
            .discover(&entry.client, entry.mode, entry.hint, &req)
            .await;
    }
    // A requirement that names formats the answer left open: read those manifests too.
    let unmet = missing(require, subject_match, &outcome);
    if require
        .iter()
        .any(|r| !r.formats.is_empty() && unmet.contains(&r.name))
    {
        req.reach = Reach::Described;
        outcome = discoverer
            .discover(&entry.client, entry.mode, entry.hint, &req)
            .await;
    }
    if subject_match == SubjectMatch::IndexOrPlatform
        && !missing(require, subject_match, &outcome).is_empty()
    {
        req.platforms = true;
        outcome = discoverer
            .discover(&entry.client, entry.mode, entry.hint, &req)
            .await;
    }
    elsewhere(key, index, spec, directory, discoverer, outcome).await
}

/// Adds the referrers of the same digest found in the repositories named by the requirements
/// the image still misses (`spec.require[].repository`). An Unknown answer there makes the
/// image Unknown: the requirement cannot be decided.
async fn elsewhere(
    key: &ImageKey,
    index: Option<String>,
    spec: &ReferrerPolicySpec,
    directory: &RegistryDirectory,
    discoverer: &Discoverer,
    outcome: Arc<DiscoveryOutcome>,
) -> Arc<DiscoveryOutcome> {
    let unmet = missing(&spec.require, spec.subject_match, &outcome);
    let repositories: BTreeSet<&str> = spec
        .require
        .iter()
        .filter(|r| unmet.contains(&r.name))
        .filter_map(|r| r.repository.as_deref())
        .collect();
    let DiscoveryOutcome::Found(own) = outcome.as_ref() else {
        return outcome;
    };
    if repositories.is_empty() {
        return outcome;
    }
    let mut merged = own.clone();
    for repo in repositories {
        // Checked by `compile`; a bad value cannot get here.
        let Ok(target) = evaluate::referrers_repository(repo) else {
            continue;
        };
        let found = match directory.entry_for(&target.registry, &spec.registry_profiles) {
            Err(b) => DiscoveryOutcome::Unknown {
                reason: b.reason,
                message: b.message,
            },
            Ok(entry) => {
                let mut req =
                    DiscoveryRequest::new(entry.client.registry(), &target.repository, &key.digest);
                req.index_digest = index.clone();
                discoverer
                    .discover(&entry.client, entry.mode, entry.hint, &req)
                    .await
                    .as_ref()
                    .clone()
            }
        };
        match found {
            DiscoveryOutcome::Unknown { reason, message } => {
                return Arc::new(DiscoveryOutcome::Unknown {
                    reason,
                    message: format!("referrers repository {repo}: {message}"),
                });
            }
            DiscoveryOutcome::Found(report) => {
                let place = target.repository_path();
                for mut r in report.referrers {
                    r.repository = Some(place.clone());
                    merged.referrers.push(r);
                }
                for m in report.methods {
                    if !merged.methods.contains(&m) {
                        merged.methods.push(m);
                    }
                }
                merged.requests += report.requests;
            }
        }
    }
    Arc::new(DiscoveryOutcome::Found(merged))
}

/// Verifies the referrers of every `verify` requirement of one image (stopping at the first
/// that meets it). A requirement still unmet after the answer discovery gave is looked for
/// everywhere (the union with the tag fallbacks, the platforms): an untrusted signature in the
/// referrers API must not hide a trusted cosign 2 `.sig` tag. Returns the outcome judged (the
/// wider one, when it was widened) and the verdicts.
#[allow(clippy::too_many_arguments)]
async fn verify_image(
    key: &ImageKey,
    index: Option<String>,
    outcome: Arc<DiscoveryOutcome>,
    spec: &ReferrerPolicySpec,
    trust: &PolicyTrust,
    directory: &RegistryDirectory,
    discoverer: &Discoverer,
    verifier: &Verifier,
) -> (Arc<DiscoveryOutcome>, ImageVerdicts) {
    let DiscoveryOutcome::Found(report) = outcome.as_ref() else {
        return (outcome, ImageVerdicts::new());
    };
    let mut verdicts = verify_report(key, report, spec, trust, directory, verifier).await;
    let unmet = verdicts
        .values()
        .any(|v| matches!(v, RequirementVerdict::Unmet(_)));
    if !unmet {
        return (outcome, verdicts);
    }
    let Ok(entry) = directory.entry_for(&key.registry, &spec.registry_profiles) else {
        return (outcome, verdicts);
    };
    let mut req = DiscoveryRequest::new(entry.client.registry(), &key.repository, &key.digest);
    req.index_digest = index.clone();
    req.reach = Reach::Described;
    req.platforms = spec.subject_match == SubjectMatch::IndexOrPlatform;
    let wider = discoverer
        .discover(&entry.client, entry.mode, entry.hint, &req)
        .await;
    let wider = elsewhere(key, index, spec, directory, discoverer, wider).await;
    match wider.as_ref() {
        DiscoveryOutcome::Found(w) if w.referrers.len() > report.referrers.len() => {
            verdicts = verify_report(key, w, spec, trust, directory, verifier).await;
            (wider, verdicts)
        }
        _ => (outcome, verdicts),
    }
}

/// The verdict of each `verify` requirement on one discovery report.
async fn verify_report(
    key: &ImageKey,
    report: &DiscoveryReport,
    spec: &ReferrerPolicySpec,
    trust: &PolicyTrust,
    directory: &RegistryDirectory,
    verifier: &Verifier,
) -> ImageVerdicts {
    let mut out = ImageVerdicts::new();
    for req in &spec.require {
        let Some(t) = trust.get(&req.name) else {
            continue;
        };
        let mut checks: BTreeMap<String, Arc<Check>> = BTreeMap::new();
        let mut verdict =
            verification::requirement_verdict(req, t.signers, spec.subject_match, report, &checks);
        for r in verification::candidates(req, spec.subject_match, report) {
            let check = check_referrer(key, r, spec, t, directory, verifier).await;
            checks.insert(r.digest.clone(), check);
            verdict = verification::requirement_verdict(
                req,
                t.signers,
                spec.subject_match,
                report,
                &checks,
            );
            if matches!(verdict, RequirementVerdict::Met(_)) {
                break;
            }
        }
        out.insert(req.name.clone(), verdict);
    }
    out
}

/// One referrer's verdict, read through the profile of the registry that holds it (the
/// image's, or that of the repository a requirement names).
async fn check_referrer(
    key: &ImageKey,
    r: &Referrer,
    spec: &ReferrerPolicySpec,
    t: &trust::RequirementTrust,
    directory: &RegistryDirectory,
    verifier: &Verifier,
) -> Arc<Check> {
    let unknown = |reason: Reason, message: String| Arc::new(Check::Unknown { reason, message });
    match r.repository.as_deref() {
        None => match directory.entry_for(&key.registry, &spec.registry_profiles) {
            Err(b) => unknown(b.reason, b.message),
            Ok(entry) => verifier.check(&entry.client, &key.repository, r, t).await,
        },
        Some(place) => {
            let Ok(target) = evaluate::referrers_repository(place) else {
                return unknown(
                    Reason::InvalidConfig,
                    format!("referrers repository {place:?} is not registry/path"),
                );
            };
            match directory.entry_for(&target.registry, &spec.registry_profiles) {
                Err(b) => unknown(b.reason, b.message),
                Ok(entry) => {
                    let mut there = r.clone();
                    there.repository = Some(target.repository.clone());
                    verifier
                        .check(&entry.client, &target.repository, &there, t)
                        .await
                }
            }
        }
    }
}

/// The requirements a discovery leaves unmet (none for an Unknown outcome: it stays Unknown).
fn missing(
    require: &[crate::crd::Requirement],
    subject_match: SubjectMatch,
    outcome: &DiscoveryOutcome,
) -> Vec<String> {
    match outcome {
        DiscoveryOutcome::Found(report) => {
            evaluate::missing_requirements(require, subject_match, report)
        }
        DiscoveryOutcome::Unknown { .. } => Vec::new(),
    }
}
