//! Per-object state of the controller in one place, keyed by object name and fed by the
//! watches (linkerd2 policy-controller's index: `apply` / `delete` / `reset`): for each
//! ReferrerPolicy what its Events last said (memory), its compiled spec, the last status this
//! replica wrote; for each RegistryProfile the last status written. A delete (or a re-list
//! that no longer holds the object) forgets all of it; [`super::Context::forget_policy`] /
//! [`super::Context::forget_profile`] also drop the gauges, backoffs and directory slot.

use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::crd::{ReferrerPolicy, ReferrerPolicyStatus, RegistryProfileStatus};
use crate::policy::CompiledPolicy;

use super::PolicyMemory;

/// A compiled policy spec and the generation it was compiled from.
pub type CompiledEntry = (Option<i64>, Arc<CompiledPolicy>);

/// What is kept of one ReferrerPolicy.
#[derive(Clone, Debug, Default)]
pub struct PolicyState {
    /// What its last evaluation published (Event diffs).
    pub memory: Option<PolicyMemory>,
    /// Its compiled spec.
    pub compiled: Option<CompiledEntry>,
    /// The last status this replica wrote (newer than the watch's copy until it catches up).
    pub written: Option<ReferrerPolicyStatus>,
    /// The OpenReports objects of this policy that exist, with their content hashes (`None`
    /// key: the ClusterReport; `None`: not known yet, listed before the next write).
    pub reports: Option<ReportHashes>,
}

/// Namespace (`None`: the ClusterReport) → content hash of the report written there.
pub type ReportHashes = BTreeMap<Option<String>, String>;

/// What is kept of one RegistryProfile.
#[derive(Clone, Debug, Default)]
pub struct ProfileState {
    /// The last status this replica wrote.
    pub written: Option<RegistryProfileStatus>,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Index {
    policies: Mutex<BTreeMap<String, PolicyState>>,
    profiles: Mutex<BTreeMap<String, ProfileState>>,
}

impl Index {
    /// The state of a policy (a default one when unknown).
    pub fn policy(&self, name: &str) -> PolicyState {
        self.policies.lock().get(name).cloned().unwrap_or_default()
    }

    /// Changes the state of a policy.
    pub fn update_policy(&self, name: &str, f: impl FnOnce(&mut PolicyState)) {
        f(self.policies.lock().entry(name.to_string()).or_default());
    }

    /// The compiled spec of a policy, cached per generation; `None` when invalid.
    pub fn compiled(&self, p: &ReferrerPolicy) -> Option<Arc<CompiledPolicy>> {
        let name = kube::ResourceExt::name_any(p);
        let generation = p.metadata.generation;
        if let Some((g, c)) = self
            .policies
            .lock()
            .get(&name)
            .and_then(|s| s.compiled.clone())
            && g == generation
        {
            return Some(c);
        }
        let c = Arc::new(crate::policy::compile(&p.spec).ok()?);
        self.update_policy(&name, |s| s.compiled = Some((generation, c.clone())));
        Some(c)
    }

    /// The status a policy's evaluation starts from: the last one this replica wrote, else
    /// the one the watch delivered.
    pub fn policy_status_base(
        &self,
        name: &str,
        stored: Option<&ReferrerPolicyStatus>,
    ) -> Option<ReferrerPolicyStatus> {
        written_or(&self.policies, name, |s| s.written.as_ref(), stored)
    }

    /// Records a status written for a policy.
    pub fn wrote_policy(&self, name: &str, status: &ReferrerPolicyStatus) {
        self.update_policy(name, |s| s.written = Some(status.clone()));
    }

    /// The status a profile's reconcile starts from (see [`Index::policy_status_base`]).
    pub fn profile_status_base(
        &self,
        name: &str,
        stored: Option<&RegistryProfileStatus>,
    ) -> Option<RegistryProfileStatus> {
        written_or(&self.profiles, name, |s| s.written.as_ref(), stored)
    }

    /// Records a status written for a profile.
    pub fn wrote_profile(&self, name: &str, status: &RegistryProfileStatus) {
        self.profiles
            .lock()
            .entry(name.to_string())
            .or_default()
            .written = Some(status.clone());
    }

    /// Forgets every status written (leadership changed: another replica may have written).
    pub fn forget_written(&self) {
        for s in self.policies.lock().values_mut() {
            s.written = None;
            s.reports = None;
        }
        for s in self.profiles.lock().values_mut() {
            s.written = None;
        }
    }

    /// Forgets a deleted policy; true when something was known of it.
    pub fn delete_policy(&self, name: &str) -> bool {
        self.policies.lock().remove(name).is_some()
    }

    /// Records the OpenReports objects of a policy (after listing or writing them).
    pub fn set_reports(&self, name: &str, reports: ReportHashes) {
        self.update_policy(name, |s| s.reports = Some(reports));
    }

    /// Forgets a deleted profile; true when something was known of it.
    pub fn delete_profile(&self, name: &str) -> bool {
        self.profiles.lock().remove(name).is_some()
    }

    /// After a re-list: forgets the policies not in `existing`; returns their names.
    pub fn reset_policies(&self, existing: &BTreeSet<String>) -> Vec<String> {
        forget_missing(&self.policies, existing)
    }

    /// After a re-list: forgets the profiles not in `existing`; returns their names.
    pub fn reset_profiles(&self, existing: &BTreeSet<String>) -> Vec<String> {
        forget_missing(&self.profiles, existing)
    }

    /// Names of the policies known.
    pub fn policy_names(&self) -> BTreeSet<String> {
        self.policies.lock().keys().cloned().collect()
    }
}

/// The status last written for `name` in `states`, else the watch's `stored` copy.
fn written_or<S, T: Clone>(
    states: &Mutex<BTreeMap<String, S>>,
    name: &str,
    written: impl FnOnce(&S) -> Option<&T>,
    stored: Option<&T>,
) -> Option<T> {
    states
        .lock()
        .get(name)
        .and_then(written)
        .or(stored)
        .cloned()
}

/// Removes the entries of `states` whose names are not in `existing`; returns those names.
fn forget_missing<S>(
    states: &Mutex<BTreeMap<String, S>>,
    existing: &BTreeSet<String>,
) -> Vec<String> {
    let mut m = states.lock();
    let gone: Vec<String> = m
        .keys()
        .filter(|k| !existing.contains(*k))
        .cloned()
        .collect();
    for g in &gone {
        m.remove(g);
    }
    gone
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_and_reset_forget_everything_of_an_object() {
        let i = Index::default();
        let status = ReferrerPolicyStatus {
            observed_generation: Some(3),
            ..Default::default()
        };
        i.wrote_policy("a", &status);
        i.update_policy("b", |s| s.memory = Some(PolicyMemory::default()));
        assert_eq!(
            i.policy_status_base("a", None)
                .and_then(|s| s.observed_generation),
            Some(3)
        );
        // The last write wins over the watch's (older) copy.
        let older = ReferrerPolicyStatus {
            observed_generation: Some(2),
            ..Default::default()
        };
        assert_eq!(
            i.policy_status_base("a", Some(&older))
                .and_then(|s| s.observed_generation),
            Some(3)
        );
        assert!(i.delete_policy("a"));
        assert!(!i.delete_policy("a"));
        assert_eq!(
            i.policy_status_base("a", Some(&older))
                .and_then(|s| s.observed_generation),
            Some(2)
        );
        let existing = BTreeSet::from(["c".to_string()]);
        assert_eq!(i.reset_policies(&existing), vec!["b".to_string()]);
        assert!(i.policy_names().is_empty());
        i.wrote_profile("p", &RegistryProfileStatus::default());
        i.forget_written();
        assert!(i.profile_status_base("p", None).is_none());
        assert_eq!(i.reset_profiles(&BTreeSet::new()), vec!["p".to_string()]);
    }
}
