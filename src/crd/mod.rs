//! Custom resource types, all in this module tree: `RegistryProfile`, `ReferrerPolicy`
//! and the lifecycle types used by RegistryProfile.
//!
//! The CRD YAML in `crds/` is generated from these types (`refwarden crds`);
//! `tests/crds_drift.rs` fails when the committed files are stale.

mod lifecycle;
mod referrer_policy;
mod registry_profile;

pub use lifecycle::*;
pub use referrer_policy::*;
pub use registry_profile::*;
