//! In-memory stores fed by watches: pods (only [`PodInfo`] + uid, never whole
//! Pods, so memory stays flat at 10,000 pods) and namespace labels. (RegistryProfiles' clients
//! are kept by [`crate::registry::RegistryProfileClients`].)

use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::api::core::v1::Pod;

use crate::policy::pods::ImageInterner;
use crate::policy::{NamespaceLabels, PodInfo};

/// What is kept of one Pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodEntry {
    /// The part policy evaluation needs.
    pub info: PodInfo,
    /// `metadata.uid`, so Events on the pod show in `kubectl describe pod`.
    pub uid: Option<String>,
    /// `spec.imagePullSecrets` names (kept only with `--use-image-pull-secrets`).
    pub pull_secrets: Vec<String>,
}

impl PodEntry {
    /// Extracts what is kept.
    pub fn from_pod(pod: &Pod, keep_pull_secrets: bool) -> Self {
        Self::from_pod_interned(pod, keep_pull_secrets, &mut ImageInterner::default())
    }

    /// [`PodEntry::from_pod`], sharing images with other pods through `interner`.
    pub fn from_pod_interned(
        pod: &Pod,
        keep_pull_secrets: bool,
        interner: &mut ImageInterner,
    ) -> Self {
        let pull_secrets = if keep_pull_secrets {
            pod.spec
                .as_ref()
                .and_then(|s| s.image_pull_secrets.as_ref())
                .map(|v| {
                    v.iter()
                        .map(|r| r.name.clone())
                        .filter(|n| !n.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        } else {
            vec![]
        };
        Self {
            info: PodInfo::from_pod_interned(pod, interner),
            uid: pod.metadata.uid.clone(),
            pull_secrets,
        }
    }

    /// `namespace/name`
    pub fn key(&self) -> String {
        format!("{}/{}", self.info.namespace, self.info.name)
    }
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Pods by `namespace/name`.
#[derive(Clone, Default, Debug)]
pub struct PodStore {
    inner: Arc<RwLock<HashMap<String, Arc<PodEntry>>>>,
    buffer: Arc<RwLock<HashMap<String, Arc<PodEntry>>>>,
    ready: Arc<AtomicBool>,
    keep_pull_secrets: bool,
    images: Arc<Mutex<ImageInterner>>,
}

/// A change of the pod store that may change policy results.
#[derive(Clone, Debug)]
pub enum PodChange {
    /// One pod changed (old and new entry; `None` when absent).
    One(Option<Arc<PodEntry>>, Option<Arc<PodEntry>>),
    /// The whole store was replaced (initial list or re-list).
    All,
}

impl PodStore {
    /// An empty store; `keep_pull_secrets` keeps `imagePullSecrets` names.
    pub fn new(keep_pull_secrets: bool) -> Self {
        Self {
            keep_pull_secrets,
            ..Self::default()
        }
    }

    fn entry(&self, pod: &Pod) -> PodEntry {
        let mut images = self.images.lock();
        PodEntry::from_pod_interned(pod, self.keep_pull_secrets, &mut images)
    }

    /// Distinct container images held (each shared by every pod running it).
    pub fn distinct_images(&self) -> usize {
        self.images.lock().len()
    }

    /// Applies a watcher event; returns what changed (None: nothing relevant).
    pub fn apply_event(&self, event: &kube::runtime::watcher::Event<Pod>) -> Option<PodChange> {
        use kube::runtime::watcher::Event;
        match event {
            Event::Init => {
                self.buffer.write().clear();
                None
            }
            Event::InitApply(pod) => {
                let e = self.entry(pod);
                self.buffer.write().insert(e.key(), Arc::new(e));
                None
            }
            Event::InitDone => {
                let fresh = std::mem::take(&mut *self.buffer.write());
                let old = std::mem::replace(&mut *self.inner.write(), fresh);
                // A re-list replaced every pod: forget the images only the old ones ran.
                drop(old);
                self.images.lock().sweep();
                self.ready.store(true, Ordering::Release);
                Some(PodChange::All)
            }
            Event::Apply(pod) => {
                let e = Arc::new(self.entry(pod));
                let mut map = self.inner.write();
                let old = map.insert(e.key(), e.clone());
                if old.as_deref() == Some(e.as_ref()) {
                    return None;
                }
                Some(PodChange::One(old, Some(e)))
            }
            Event::Delete(pod) => {
                let old = self.inner.write().remove(&pod_key(pod));
                old.map(|o| PodChange::One(Some(o), None))
            }
        }
    }

    /// Inserts an entry directly, as an `Apply` event would (a store fed by its caller instead of
    /// a watcher, e.g. a replay of known pods).
    pub fn insert(&self, entry: PodEntry) {
        self.inner.write().insert(entry.key(), Arc::new(entry));
    }

    /// Every pod, sorted by key (cheap: `Arc` clones).
    pub fn snapshot(&self) -> Vec<Arc<PodEntry>> {
        let map = self.inner.read();
        let mut v: Vec<Arc<PodEntry>> = map.values().cloned().collect();
        v.sort_by_key(|a| a.key());
        v
    }

    /// Number of pods.
    pub fn len(&self) -> usize {
        self.inner.read().len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the initial list has been loaded.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Marks the store as loaded without a watcher's initial list (a store fed by
    /// [`insert`](Self::insert)), so reconcilers do not wait for one.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }
}

/// Namespace labels by name.
#[derive(Clone, Default, Debug)]
pub struct NamespaceStore {
    inner: Arc<RwLock<NamespaceLabels>>,
    buffer: Arc<RwLock<NamespaceLabels>>,
    ready: Arc<AtomicBool>,
}

impl NamespaceStore {
    /// Applies a metadata watcher event; true when labels changed.
    pub fn apply_event(
        &self,
        event: &kube::runtime::watcher::Event<
            kube::core::PartialObjectMeta<k8s_openapi::api::core::v1::Namespace>,
        >,
    ) -> bool {
        use kube::runtime::watcher::Event;
        let name_labels = |m: &kube::core::PartialObjectMeta<_>| {
            (
                m.metadata.name.clone().unwrap_or_default(),
                m.metadata.labels.clone().unwrap_or_default(),
            )
        };
        match event {
            Event::Init => {
                self.buffer.write().clear();
                false
            }
            Event::InitApply(ns) => {
                let (n, l) = name_labels(ns);
                self.buffer.write().insert(n, l);
                false
            }
            Event::InitDone => {
                let fresh = std::mem::take(&mut *self.buffer.write());
                let mut cur = self.inner.write();
                let changed = *cur != fresh;
                *cur = fresh;
                self.ready.store(true, Ordering::Release);
                changed
            }
            Event::Apply(ns) => {
                let (n, l) = name_labels(ns);
                let mut cur = self.inner.write();
                cur.insert(n, l.clone()) != Some(l)
            }
            Event::Delete(ns) => {
                let (n, _) = name_labels(ns);
                self.inner.write().remove(&n).is_some()
            }
        }
    }

    /// Sets one namespace's labels directly, as an `Apply` event would (a store fed by its
    /// caller instead of a watcher).
    pub fn insert(&self, name: &str, labels: BTreeMap<String, String>) {
        self.inner.write().insert(name.to_string(), labels);
    }

    /// A copy of every namespace's labels.
    pub fn snapshot(&self) -> NamespaceLabels {
        self.inner.read().clone()
    }

    /// Whether the initial list has been loaded.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Marks the store as loaded without a watcher's initial list (a store fed by
    /// [`insert`](Self::insert)), so reconcilers do not wait for one.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }
}
