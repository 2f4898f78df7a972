#![no_main]
use libfuzzer_sys::fuzz_target;
use refwarden::discovery::classify::{self, ManifestFacts};
use refwarden::discovery::tagschema;
use refwarden::probe::verdict;

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fuzz_target!(|b: &[u8]| {
    if let Some(f) = ManifestFacts::parse(b) {
        let _ = classify::platform_manifests(&f);
        let _ = classify::buildkit_attestations(&f);
        let _ = classify::classify_fetched(None, &f);
    }
    let _ = verdict::body_is_oci_index(b);
    let _ = tagschema::validate_fallback_index(
        DIGEST,
        Some("application/vnd.oci.image.index.v1+json"),
        "sha256:ffff",
        b,
    );
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(b) {
        let _ = tagschema::index_descriptors(&v);
    }
});
