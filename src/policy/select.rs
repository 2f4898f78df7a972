//! Selection: which pods and images a compiled policy selects (namespace and pod selectors,
//! `spec.images` globs), grouped by digest, by tag still to resolve, and Unknown before discovery.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use super::compile::CompiledPolicy;
use super::pods::{ImageKey, ImageSource, PodImage, PodInfo};
use super::selector;
use crate::crd::WorkloadRef;
use crate::reason::UnknownReason;
use crate::registry::ImageReference;

/// Labels of each namespace, by name.
pub type NamespaceLabels = BTreeMap<String, BTreeMap<String, String>>;

/// How an image is used by the selected pods.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageUse {
    /// The image as a pod names it (first seen).
    pub image: String,
    /// Index digests pods pin while the runtime runs this (platform) digest.
    pub index: BTreeSet<String>,
    /// Top-level owners running it.
    pub workloads: BTreeSet<WorkloadRef>,
    /// Selected pods running it.
    pub pods: u32,
}

/// A reference only known by tag, to resolve through the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagUse {
    /// The parsed reference.
    pub reference: ImageReference,
    /// Workloads running it.
    pub workloads: BTreeSet<WorkloadRef>,
    /// Selected pods running it.
    pub pods: u32,
}

/// An image that is Unknown before any discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownUse {
    /// The digest, when there is one.
    pub digest: Option<String>,
    /// Why.
    pub reason: UnknownReason,
    /// Detail.
    pub message: String,
    /// Workloads running it.
    pub workloads: BTreeSet<WorkloadRef>,
    /// Selected pods running it.
    pub pods: u32,
}

/// What a policy selects from the pods.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Selected pods.
    pub pods: u32,
    /// Images with a digest.
    pub images: BTreeMap<ImageKey, ImageUse>,
    /// Images known only by tag (`registry/repository:tag` → use).
    pub tags: BTreeMap<String, TagUse>,
    /// Images that cannot be looked up, by image string.
    pub unknown: BTreeMap<String, UnknownUse>,
    /// Distinct repositories the selected pods run, before `spec.images` filters them.
    pub repositories_seen: u32,
    /// Indexes of `spec.images.include` globs that match none of those repositories.
    pub unmatched_includes: Vec<usize>,
}

impl Selection {
    /// Records that a tag resolved to `digest`.
    pub fn resolve_tag(&mut self, tag_key: &str, digest: &str) {
        if let Some(t) = self.tags.remove(tag_key) {
            let key = ImageKey {
                registry: t.reference.registry.clone(),
                repository: t.reference.repository.clone(),
                digest: digest.to_string(),
            };
            let entry = self.images.entry(key).or_default();
            if entry.image.is_empty() {
                entry.image = t.reference.whole();
            }
            entry.workloads.extend(t.workloads);
            entry.pods += t.pods;
        }
    }

    /// Records that a tag could not be resolved.
    pub fn fail_tag(&mut self, tag_key: &str, reason: UnknownReason, message: &str) {
        if let Some(t) = self.tags.remove(tag_key) {
            let entry = self
                .unknown
                .entry(t.reference.whole())
                .or_insert_with(|| UnknownUse {
                    digest: None,
                    reason,
                    message: message.to_string(),
                    workloads: BTreeSet::new(),
                    pods: 0,
                });
            entry.workloads.extend(t.workloads);
            entry.pods += t.pods;
        }
    }
}

fn namespace_labels<'a>(
    namespaces: &'a NamespaceLabels,
    ns: &str,
    fallback: &'a mut BTreeMap<String, String>,
) -> &'a BTreeMap<String, String> {
    match namespaces.get(ns) {
        Some(l) => l,
        None => {
            // The API server labels every namespace with its name.
            fallback.insert("kubernetes.io/metadata.name".into(), ns.to_string());
            fallback
        }
    }
}

/// Whether a pod is selected by the policy's namespace and pod selectors.
pub fn selects_pod(policy: &CompiledPolicy, pod: &PodInfo, namespaces: &NamespaceLabels) -> bool {
    namespace_selected(policy, &pod.namespace, namespaces)
        && selector::matches(policy.spec.pod_selector.as_ref(), &pod.labels)
}

fn namespace_selected(policy: &CompiledPolicy, ns: &str, namespaces: &NamespaceLabels) -> bool {
    let mut fallback = BTreeMap::new();
    selector::matches(
        policy.spec.namespace_selector.as_ref(),
        namespace_labels(namespaces, ns, &mut fallback),
    )
}

/// Selects pods and their images.
///
/// Each namespace's selector answer and each distinct image's `spec.images` answer is computed
/// once per call (pods share [`PodImage`]s), and nothing is cloned for an image or workload
/// already recorded: this runs for every policy over every pod.
pub fn select<'a>(
    policy: &CompiledPolicy,
    pods: impl IntoIterator<Item = &'a PodInfo>,
    namespaces: &NamespaceLabels,
) -> Selection {
    let mut sel = Selection::default();
    let mut ns_selected: HashMap<&'a str, bool> = HashMap::new();
    let mut image_selected: HashMap<*const PodImage, bool> = HashMap::new();
    let mut repositories: HashSet<&'a str> = HashSet::new();
    let mut include_matched = vec![false; policy.filter.include_len()];
    for pod in pods {
        let ns_ok = *ns_selected
            .entry(pod.namespace.as_str())
            .or_insert_with(|| namespace_selected(policy, &pod.namespace, namespaces));
        if !ns_ok || !selector::matches(policy.spec.pod_selector.as_ref(), &pod.labels) {
            continue;
        }
        sel.pods += 1;
        for c in &pod.images {
            // A name that does not parse has no repository to filter on: it stays selected
            // (and is reported Unknown).
            let wanted = *image_selected.entry(Arc::as_ptr(c)).or_insert_with(|| {
                let Some(path) = c.repository_path.as_deref() else {
                    return true;
                };
                repositories.insert(path);
                let (selected, includes) = policy.filter.check(path);
                for i in includes {
                    include_matched[i] = true;
                }
                selected
            });
            if !wanted {
                continue;
            }
            match &c.source {
                ImageSource::Digest { key, index } => {
                    if !sel.images.contains_key(key) {
                        sel.images.insert(
                            key.clone(),
                            ImageUse {
                                image: c.image.clone(),
                                ..Default::default()
                            },
                        );
                    }
                    let Some(entry) = sel.images.get_mut(key) else {
                        continue;
                    };
                    if let Some(i) = index
                        && !entry.index.contains(i)
                    {
                        entry.index.insert(i.clone());
                    }
                    count_pod(&mut entry.pods, &mut entry.workloads, &pod.workload);
                }
                ImageSource::Tag(r) => {
                    let entry = sel.tags.entry(r.whole()).or_insert_with(|| TagUse {
                        reference: r.clone(),
                        workloads: BTreeSet::new(),
                        pods: 0,
                    });
                    count_pod(&mut entry.pods, &mut entry.workloads, &pod.workload);
                }
                ImageSource::Unresolvable {
                    image,
                    reason,
                    message,
                } => {
                    let digest = c
                        .image_id
                        .as_deref()
                        .map(super::pods::normalise_image_id)
                        .map(str::to_string);
                    let entry = sel
                        .unknown
                        .entry(image.clone())
                        .or_insert_with(|| UnknownUse {
                            digest,
                            reason: *reason,
                            message: message.clone(),
                            workloads: BTreeSet::new(),
                            pods: 0,
                        });
                    count_pod(&mut entry.pods, &mut entry.workloads, &pod.workload);
                }
            }
        }
    }
    sel.repositories_seen = u32::try_from(repositories.len()).unwrap_or(u32::MAX);
    if !repositories.is_empty() {
        sel.unmatched_includes = (0..include_matched.len())
            .filter(|i| !include_matched[*i])
            .collect();
    }
    sel
}

/// Counts one more Pod of `workload` using an image.
fn count_pod(pods: &mut u32, workloads: &mut BTreeSet<WorkloadRef>, workload: &WorkloadRef) {
    *pods += 1;
    if !workloads.contains(workload) {
        workloads.insert(workload.clone());
    }
}
