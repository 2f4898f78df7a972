//! refwarden: probe OCI registries and check that running images carry their
//! referrers (signatures, SBOMs, attestations, VEX).
//!
//! The library holds all logic; `src/main.rs` is a thin command-line entry point.

pub mod cli;
pub mod conditions;
pub mod controller;
pub mod crd;
pub mod crdgen;
pub mod discovery;
pub mod evidence;
pub mod input;
pub mod lifecycle;
pub mod manifests;
pub mod oci;
pub mod openreports;
pub mod policy;
pub mod probe;
pub mod reason;
pub mod registry;
pub mod validation;
pub mod verify;
