//! What refwarden keeps of a Pod, and which image (repository + digest) each of
//! its containers actually runs.
//!
//! The reflector holds [`PodInfo`] only (namespace, name, labels, top-level
//! owner, images), not whole Pods, so memory stays flat at 10,000 pods.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use crate::crd::WorkloadRef;
use crate::reason::UnknownReason;
use crate::registry::ImageReference;

/// One container's image.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContainerImage {
    /// The image as the pod spec names it.
    pub image: String,
    /// `status.*ContainerStatuses[].imageID` when the container started.
    pub image_id: Option<String>,
}

/// A container image with what policy evaluation derives from it, computed once when the pod is
/// stored (not per policy and evaluation) and shared by every pod that runs the same image.
#[derive(Debug, PartialEq, Eq)]
pub struct PodImage {
    /// The image and imageID as the pod has them.
    pub container: ContainerImage,
    /// Which digest it runs ([`image_source`]).
    pub source: ImageSource,
    /// `registry/repository` (what `spec.images` globs match) when the name parses.
    pub repository_path: Option<String>,
}

impl PodImage {
    /// Derives the source and repository path of one container image.
    pub fn new(container: ContainerImage) -> Self {
        let source = image_source(&container);
        let repository_path = match &source {
            ImageSource::Digest { key, .. } => Some(key.repository_path()),
            ImageSource::Tag(r) => Some(r.repository_path()),
            ImageSource::Unresolvable { image, .. } => ImageReference::parse(image)
                .ok()
                .map(|r| r.repository_path()),
        };
        Self {
            container,
            source,
            repository_path,
        }
    }

    /// [`PodImage::new`] behind an `Arc`.
    pub fn shared(container: ContainerImage) -> Arc<Self> {
        Arc::new(Self::new(container))
    }
}

impl std::ops::Deref for PodImage {
    type Target = ContainerImage;
    fn deref(&self) -> &ContainerImage {
        &self.container
    }
}

/// Shares one [`PodImage`] between all pods running the same image (a few digests run in many
/// pods), so the pod store holds each distinct image once. Entries no pod uses any more are
/// dropped when the table has doubled since the last sweep.
#[derive(Default)]
pub struct ImageInterner {
    table: HashMap<ContainerImage, Arc<PodImage>>,
    live_after_sweep: usize,
}

impl std::fmt::Debug for ImageInterner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageInterner")
            .field("images", &self.table.len())
            .finish()
    }
}

impl ImageInterner {
    /// The shared image for `c`.
    pub fn intern(&mut self, c: ContainerImage) -> Arc<PodImage> {
        if let Some(i) = self.table.get(&c) {
            return i.clone();
        }
        if self.table.len() >= 2 * self.live_after_sweep.max(512) {
            self.sweep();
        }
        let i = PodImage::shared(c.clone());
        self.table.insert(c, i.clone());
        i
    }

    /// Drops the images no pod holds any more.
    pub fn sweep(&mut self) {
        self.table.retain(|_, v| Arc::strong_count(v) > 1);
        self.live_after_sweep = self.table.len();
    }

    /// Distinct images held.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no image is held.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

/// Pod labels, compact: sorted `(key, value)` pairs in one boxed slice (a `BTreeMap` node
/// alone costs over 500 bytes; pods typically carry a handful of labels).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels(Box<[(Box<str>, Box<str>)]>);

impl Labels {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_ref().cmp(key))
            .ok()
            .map(|i| self.0[i].1.as_ref())
    }

    /// `(key, value)` pairs, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no label.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<BTreeMap<String, String>> for Labels {
    fn from(m: BTreeMap<String, String>) -> Self {
        // A BTreeMap iterates sorted by key, without duplicates.
        Labels(
            m.into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str()))
                .collect(),
        )
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Labels {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        iter.into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect::<BTreeMap<String, String>>()
            .into()
    }
}

/// Label lookup shared by pod labels ([`Labels`]) and namespace labels (`BTreeMap`).
pub trait LabelSet {
    /// The value of `key`.
    fn label(&self, key: &str) -> Option<&str>;
}

impl LabelSet for Labels {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key)
    }
}

impl LabelSet for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// The part of a Pod refwarden needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// Top-level owner (or the Pod itself).
    pub workload: WorkloadRef,
    /// Images of containers, init containers and ephemeral containers (deduplicated).
    pub images: Vec<Arc<PodImage>>,
}

impl PodInfo {
    /// Extracts what is needed from a Pod.
    pub fn from_pod(pod: &Pod) -> Self {
        Self::from_pod_interned(pod, &mut ImageInterner::default())
    }

    /// [`PodInfo::from_pod`], sharing images through `interner`.
    pub fn from_pod_interned(pod: &Pod, interner: &mut ImageInterner) -> Self {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        let workload = workload_of(
            &namespace,
            &name,
            &labels,
            pod.metadata.owner_references.as_deref().unwrap_or_default(),
        );
        let mut ids: BTreeMap<&str, &str> = BTreeMap::new();
        if let Some(status) = &pod.status {
            for s in status
                .container_statuses
                .iter()
                .flatten()
                .chain(status.init_container_statuses.iter().flatten())
                .chain(status.ephemeral_container_statuses.iter().flatten())
            {
                if !s.image_id.is_empty() {
                    ids.insert(s.name.as_str(), s.image_id.as_str());
                }
            }
        }
        let mut containers: Vec<ContainerImage> = Vec::new();
        let mut push = |cname: &str, image: Option<&String>| {
            let Some(image) = image else { return };
            let ci = ContainerImage {
                image: image.clone(),
                image_id: ids.get(cname).map(|s| s.to_string()),
            };
            if !containers.contains(&ci) {
                containers.push(ci);
            }
        };
        if let Some(spec) = &pod.spec {
            for c in &spec.containers {
                push(&c.name, c.image.as_ref());
            }
            for c in spec.init_containers.iter().flatten() {
                push(&c.name, c.image.as_ref());
            }
            for c in spec.ephemeral_containers.iter().flatten() {
                push(&c.name, c.image.as_ref());
            }
        }
        Self {
            namespace,
            name,
            labels: labels.into(),
            workload,
            images: containers.into_iter().map(|c| interner.intern(c)).collect(),
        }
    }
}

/// The top-level owner of a pod. ReplicaSets created by a Deployment are named
/// `<deployment>-<pod-template-hash>`; Jobs created by a CronJob are named
/// `<cronjob>-<scheduled time in minutes>`: both are attributed to the
/// Deployment / CronJob without extra API reads.
pub fn workload_of(
    namespace: &str,
    pod_name: &str,
    labels: &impl LabelSet,
    owners: &[OwnerReference],
) -> WorkloadRef {
    let owner = owners
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| owners.first());
    let (kind, name) = match owner {
        None => ("Pod".to_string(), pod_name.to_string()),
        Some(o) => match o.kind.as_str() {
            "ReplicaSet" => match labels.label("pod-template-hash") {
                Some(hash) if o.name.ends_with(&format!("-{hash}")) => (
                    "Deployment".to_string(),
                    o.name[..o.name.len() - hash.len() - 1].to_string(),
                ),
                _ => ("ReplicaSet".to_string(), o.name.clone()),
            },
            "Job" => match o.name.rsplit_once('-') {
                // The CronJob controller names Jobs `<cronjob>-<scheduled time in minutes since
                // the epoch>`: 8 digits, after 2015 (23,667,840). A date suffix like
                // `migrate-20240101` is below that and stays a Job.
                Some((base, suffix))
                    if !base.is_empty()
                        && suffix.len() == 8
                        && suffix
                            .parse::<u64>()
                            .is_ok_and(|m| (23_667_840..100_000_000).contains(&m)) =>
                {
                    ("CronJob".to_string(), base.to_string())
                }
                _ => ("Job".to_string(), o.name.clone()),
            },
            other => (other.to_string(), o.name.clone()),
        },
    };
    WorkloadRef {
        namespace: namespace.to_string(),
        kind,
        name,
    }
}

/// An image refwarden can look up: normalised registry + repository, and a digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageKey {
    /// Registry host as in the reference (`docker.io`, `ghcr.io`, `localhost:5000`).
    pub registry: String,
    /// Repository path (`library/nginx`).
    pub repository: String,
    /// Digest it runs.
    pub digest: String,
}

impl ImageKey {
    /// `registry/repository`, the form globs match.
    pub fn repository_path(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

/// Where a container's digest comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// A digest to discover; `index` is the digest the pod spec pins when it differs (an index
    /// whose platform manifest runs).
    Digest {
        /// The image.
        key: ImageKey,
        /// The index digest from the pod spec, when the runtime reports a different digest.
        index: Option<String>,
    },
    /// Only a tag is known (no imageID yet, e.g. a workload read from a file): resolve it.
    Tag(ImageReference),
    /// Nothing can be looked up.
    Unresolvable {
        /// The image as named.
        image: String,
        /// Why (`DigestNotResolvable`, `InvalidImageReference`).
        reason: UnknownReason,
        /// Detail.
        message: String,
    },
}

/// Strips runtime prefixes from an imageID (`docker-pullable://`, `docker://`, …).
pub fn normalise_image_id(image_id: &str) -> &str {
    let s = image_id.trim();
    match s.split_once("://") {
        Some((_, rest)) => rest,
        None => s,
    }
}

/// Decides which digest a container runs: `imageID` with a repository first, a
/// digest-pinned spec next, else the tag (to resolve) or Unresolvable.
pub fn image_source(c: &ContainerImage) -> ImageSource {
    let spec_ref = ImageReference::parse(&c.image);
    let spec_digest = spec_ref.as_ref().ok().and_then(|r| r.digest.clone());
    if let Some(id) = c.image_id.as_deref() {
        let id = normalise_image_id(id);
        if id.contains('@')
            && let Ok(r) = ImageReference::parse(id)
            && let Some(d) = r.digest.clone()
        {
            let index = spec_digest.filter(|sd| *sd != d);
            return ImageSource::Digest {
                key: ImageKey {
                    registry: r.registry.clone(),
                    repository: r.repository.clone(),
                    digest: d,
                },
                index,
            };
        }
    }
    match spec_ref {
        Ok(r) => match r.digest.clone() {
            Some(d) => ImageSource::Digest {
                key: ImageKey {
                    registry: r.registry.clone(),
                    repository: r.repository.clone(),
                    digest: d,
                },
                index: None,
            },
            None => match c.image_id.as_deref().map(normalise_image_id) {
                // A bare image ID (`sha256:<config>`) says nothing about the registry.
                Some(id) if !id.is_empty() => ImageSource::Unresolvable {
                    image: c.image.clone(),
                    reason: UnknownReason::DigestNotResolvable,
                    message: format!(
                        "the runtime reports image ID {id} without a repository digest (a locally loaded image?)"
                    ),
                },
                _ => ImageSource::Tag(r),
            },
        },
        Err(e) => ImageSource::Unresolvable {
            image: c.image.clone(),
            reason: UnknownReason::InvalidImageReference,
            message: e.to_string(),
        },
    }
}

#[cfg(test)]
impl PodInfo {
    /// A Pod of `workload` (kind, name), labelled `app=<workload name>`, running `images`.
    pub(crate) fn of_workload(
        namespace: &str,
        name: &str,
        workload: (&str, &str),
        images: impl IntoIterator<Item = ContainerImage>,
    ) -> Self {
        PodInfo {
            namespace: namespace.into(),
            name: name.into(),
            labels: [("app", workload.1)].into_iter().collect(),
            workload: WorkloadRef {
                namespace: namespace.into(),
                kind: workload.0.into(),
                name: workload.1.into(),
            },
            images: images.into_iter().map(PodImage::shared).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn owner(kind: &str, name: &str) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: kind.into(),
            name: name.into(),
            uid: "u".into(),
            controller: Some(true),
            block_owner_deletion: None,
        }
    }

    #[test]
    fn workloads_are_attributed_to_top_level_owners() {
        let mut labels = BTreeMap::new();
        labels.insert("pod-template-hash".to_string(), "7d9f8c6b5".to_string());
        let w = workload_of(
            "ns",
            "web-7d9f8c6b5-abcde",
            &labels,
            &[owner("ReplicaSet", "web-7d9f8c6b5")],
        );
        assert_eq!((w.kind.as_str(), w.name.as_str()), ("Deployment", "web"));
        let w = workload_of(
            "ns",
            "p",
            &BTreeMap::new(),
            &[owner("ReplicaSet", "bare-rs")],
        );
        assert_eq!(
            (w.kind.as_str(), w.name.as_str()),
            ("ReplicaSet", "bare-rs")
        );
        let w = workload_of(
            "ns",
            "p",
            &BTreeMap::new(),
            &[owner("Job", "backup-29412345")],
        );
        assert_eq!((w.kind.as_str(), w.name.as_str()), ("CronJob", "backup"));
        let w = workload_of("ns", "p", &BTreeMap::new(), &[owner("Job", "migrate")]);
        assert_eq!((w.kind.as_str(), w.name.as_str()), ("Job", "migrate"));
        let w = workload_of(
            "ns",
            "p",
            &BTreeMap::new(),
            &[owner("Job", "migrate-20240101")],
        );
        assert_eq!(
            (w.kind.as_str(), w.name.as_str()),
            ("Job", "migrate-20240101")
        );
        let w = workload_of(
            "ns",
            "db-0",
            &BTreeMap::new(),
            &[owner("StatefulSet", "db")],
        );
        assert_eq!((w.kind.as_str(), w.name.as_str()), ("StatefulSet", "db"));
        let w = workload_of(
            "ns",
            "agent-x",
            &BTreeMap::new(),
            &[owner("DaemonSet", "agent")],
        );
        assert_eq!((w.kind.as_str(), w.name.as_str()), ("DaemonSet", "agent"));
        let w = workload_of("ns", "solo", &BTreeMap::new(), &[]);
        assert_eq!(
            (w.kind.as_str(), w.name.as_str(), w.namespace.as_str()),
            ("Pod", "solo", "ns")
        );
    }

    #[test]
    fn image_ids_are_normalised() {
        let c = ContainerImage {
            image: "nginx:1.27".into(),
            image_id: Some(format!("docker-pullable://nginx@{D1}")),
        };
        match image_source(&c) {
            ImageSource::Digest { key, index } => {
                assert_eq!(key.registry, "docker.io");
                assert_eq!(key.repository, "library/nginx");
                assert_eq!(key.digest, D1);
                assert_eq!(key.repository_path(), "docker.io/library/nginx");
                assert_eq!(index, None);
            }
            other => panic!("{other:?}"),
        }
        // containerd: imageID is `repo@digest` without a scheme.
        let c = ContainerImage {
            image: format!("ghcr.io/acme/app@{D2}"),
            image_id: Some(format!("ghcr.io/acme/app@{D1}")),
        };
        match image_source(&c) {
            ImageSource::Digest { key, index } => {
                assert_eq!(key.digest, D1);
                assert_eq!(index.as_deref(), Some(D2), "spec pins the index");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bare_image_id_is_not_resolvable_and_tags_need_resolution() {
        let c = ContainerImage {
            image: "myapp:dev".into(),
            image_id: Some(D1.into()),
        };
        assert!(matches!(
            image_source(&c),
            ImageSource::Unresolvable { ref reason, .. } if reason == "DigestNotResolvable"
        ));
        let c = ContainerImage {
            image: format!("myapp@{D2}"),
            image_id: Some(D1.into()),
        };
        assert!(
            matches!(image_source(&c), ImageSource::Digest { ref key, .. } if key.digest == D2)
        );
        let c = ContainerImage {
            image: "registry.example.com/app:1".into(),
            image_id: None,
        };
        assert!(matches!(image_source(&c), ImageSource::Tag(_)));
        let c = ContainerImage {
            image: "UPPER/case".into(),
            image_id: None,
        };
        assert!(matches!(
            image_source(&c),
            ImageSource::Unresolvable { ref reason, .. } if reason == "InvalidImageReference"
        ));
    }

    #[test]
    fn labels_are_sorted_and_looked_up_by_key() {
        let l: Labels = [
            ("tier", "web"),
            ("app", "shop"),
            ("pod-template-hash", "abc"),
        ]
        .into_iter()
        .collect();
        assert_eq!(l.len(), 3);
        assert_eq!(l.get("app"), Some("shop"));
        assert_eq!(l.get("tier"), Some("web"));
        assert_eq!(l.get("pod-template-hash"), Some("abc"));
        assert_eq!(l.get("missing"), None);
        assert_eq!(l.get(""), None);
        let keys: Vec<&str> = l.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["app", "pod-template-hash", "tier"]);
        assert!(Labels::default().is_empty());
        assert_eq!(Labels::default().get("app"), None);
    }

    #[test]
    fn pods_running_the_same_image_share_it_and_unused_images_are_swept() {
        let c = |i: usize| ContainerImage {
            image: format!("ghcr.io/acme/app{i}:1"),
            image_id: Some(format!("ghcr.io/acme/app{i}@{D1}")),
        };
        let mut interner = ImageInterner::default();
        let a = interner.intern(c(0));
        let b = interner.intern(c(0));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(interner.len(), 1);
        assert_eq!(a.repository_path.as_deref(), Some("ghcr.io/acme/app0"));
        assert!(matches!(&a.source, ImageSource::Digest { key, .. } if key.digest == D1));
        // Images no pod holds any more are dropped once the table has doubled.
        let kept: Vec<_> = (1..=600).map(|i| interner.intern(c(i))).collect();
        drop(kept);
        assert!(interner.len() > 512);
        for i in 601..=1100 {
            interner.intern(c(i));
        }
        assert!(interner.len() < 1000, "{} images held", interner.len());
        // `a` is still used: it survived every sweep and is still shared.
        assert!(Arc::ptr_eq(&a, &interner.intern(c(0))));
    }
}
