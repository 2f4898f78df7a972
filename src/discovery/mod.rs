//! Referrer discovery: given an image digest, find every referrer a registry
//! holds for it (native referrers API, OCI tag schema, cosign tags, in-index
//! attestations), with as few requests as possible.
//!
//! Pure decision logic lives in [`strategy`] (which method first, what an
//! answer means, when to add the tag fallbacks to a native answer, what a tag list
//! answer means), [`link`] (the one `Link` pagination of referrers and tag lists),
//! [`page`] (lenient decoding of listing pages), [`tagschema`] (fallback tag names and validation)
//! and [`classify`] (when to fetch a referrer manifest, what it is, its
//! format, client-side filtering); [`engine`] does the I/O, caching and
//! coalescing.

pub mod classify;
pub mod engine;
pub mod link;
pub mod model;
pub mod page;
pub mod presets;
pub mod strategy;
pub mod tagschema;

pub use engine::{Discoverer, DiscovererConfig, DiscoveryStats};
pub use model::*;
