//! The clients built from RegistryProfiles, by profile name, and the [`RegistryDirectory`] made
//! of them: a client is rebuilt only when its inputs change, so its token cache survives profile
//! updates that change nothing it uses.

use parking_lot::RwLock;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{BrokenProfile, ImplicitAccess, RegistryClient, RegistryDirectory, RegistryEntry};
use crate::crd::{DiscoveryMode, EffectiveDiscoveryMode};

/// One RegistryProfile as the directory knows it.
#[derive(Clone, Debug)]
struct BuiltProfile {
    host: String,
    /// Identifies the inputs the client was built from (spec, Secret and CA versions).
    fingerprint: String,
    client: Result<(RegistryClient, DiscoveryMode), BrokenProfile>,
    hint: Option<EffectiveDiscoveryMode>,
}

/// RegistryProfiles by name → the [`RegistryDirectory`] policies use. Clients
/// are rebuilt only when their inputs change (token caches survive).
pub struct RegistryProfileClients {
    slots: RwLock<BTreeMap<String, BuiltProfile>>,
    directory: RwLock<Arc<RegistryDirectory>>,
    implicit: ImplicitAccess,
}

impl std::fmt::Debug for RegistryProfileClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryProfileClients")
            .field("slots", &*self.slots.read())
            .finish_non_exhaustive()
    }
}

impl RegistryProfileClients {
    /// No profiles; registries without one are reached as `implicit` says.
    pub fn new(implicit: ImplicitAccess) -> Self {
        Self {
            slots: RwLock::new(BTreeMap::new()),
            directory: RwLock::new(Arc::new(RegistryDirectory::with_implicit(implicit.clone()))),
            implicit,
        }
    }

    /// The client of `name` if it was built from `fingerprint`.
    pub fn client_if_current(&self, name: &str, fingerprint: &str) -> Option<RegistryClient> {
        let slots = self.slots.read();
        slots
            .get(name)
            .filter(|s| s.fingerprint == fingerprint)
            .and_then(|s| s.client.as_ref().ok().map(|(c, _)| c.clone()))
    }

    /// Sets a profile; returns true when the directory changed.
    pub fn set(
        &self,
        name: &str,
        host: &str,
        fingerprint: &str,
        client: Result<(RegistryClient, DiscoveryMode), BrokenProfile>,
        hint: Option<EffectiveDiscoveryMode>,
    ) -> bool {
        let mut slots = self.slots.write();
        let same = slots.get(name).is_some_and(|s| {
            s.host == host
                && s.fingerprint == fingerprint
                && s.hint == hint
                && match (&s.client, &client) {
                    (Ok((_, m1)), Ok((_, m2))) => m1 == m2,
                    (Err(a), Err(b)) => a == b,
                    _ => false,
                }
        });
        if same {
            return false;
        }
        slots.insert(
            name.to_string(),
            BuiltProfile {
                host: host.to_string(),
                fingerprint: fingerprint.to_string(),
                client,
                hint,
            },
        );
        self.rebuild(&slots);
        true
    }

    /// Removes one profile; returns the registry (`host:port`) its client talked to, when it
    /// was there.
    pub fn remove(&self, name: &str) -> Option<String> {
        let mut slots = self.slots.write();
        let slot = slots.remove(name)?;
        self.rebuild(&slots);
        Some(match &slot.client {
            Ok((c, _)) => c.registry().to_string(),
            Err(_) => slot.host,
        })
    }

    fn rebuild(&self, slots: &BTreeMap<String, BuiltProfile>) {
        let mut d = RegistryDirectory::with_implicit(self.implicit.clone());
        for (name, s) in slots {
            let entry = s.client.clone().map(|(client, mode)| RegistryEntry {
                profile: Some(name.clone()),
                client,
                mode,
                hint: s.hint,
            });
            d.insert(name, &s.host, entry);
        }
        *self.directory.write() = Arc::new(d);
    }

    /// The directory as it is now.
    pub fn directory(&self) -> Arc<RegistryDirectory> {
        self.directory.read().clone()
    }

    /// Names of the profiles whose client talks to `registry` (`host:port`, as
    /// `RegistryClient::registry`).
    pub fn for_registry(&self, registry: &str) -> Vec<String> {
        self.slots
            .read()
            .iter()
            .filter(|(_, s)| {
                s.client
                    .as_ref()
                    .is_ok_and(|(c, _)| c.registry() == registry)
            })
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Names of the known profiles.
    pub fn names(&self) -> BTreeSet<String> {
        self.slots.read().keys().cloned().collect()
    }
}
