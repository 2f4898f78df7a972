//! What each fuzz target does with one input. Shared (by `#[path]`) by the cargo-fuzz targets in
//! `fuzz_targets/` and by `tests/proptest_parsers.rs`, which replays `fuzz/seeds/` and
//! `fuzz/regressions/` through [`run`] under `make test`, so both always run the same code.
// Each fuzz target uses one of these functions.
#![allow(dead_code)]

use refwarden::discovery::classify::{self, ManifestFacts};
use refwarden::discovery::{link, tagschema};
use refwarden::lifecycle::ecr;
use refwarden::probe::verdict;
use refwarden::registry::{DockerConfig, ImageReference, WwwAuthenticate};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Image references parse without panicking and `parse(whole())` round-trips.
pub fn reference(s: &str) {
    if let Ok(r) = ImageReference::parse(s) {
        let again = ImageReference::parse(&r.whole()).expect("whole() must parse");
        assert_eq!(again, r, "parse(whole()) must round-trip");
    }
}

/// `WWW-Authenticate` challenges.
pub fn www_authenticate(s: &str) {
    let _ = WwwAuthenticate::parse(s);
}

/// `Link` headers, alone and resolved against a referrers URL.
pub fn link(s: &str) {
    let _ = link::parse(s);
    if let Ok(base) = url::Url::parse("https://r.example/v2/a/referrers/sha256:x") {
        let _ = link::next_link([s], &base);
    }
}

/// dockerconfigjson, and the credentials of every host it names.
pub fn docker_config(b: &[u8]) {
    if let Ok(c) = DockerConfig::parse(b) {
        for h in c.hosts() {
            let _ = format!("{:?}", c.credentials_for(h));
        }
    }
}

/// ECR lifecycle policy JSON, parsed and analysed.
pub fn ecr_policy(s: &str) {
    let _ = ecr::parse_policy(s);
    let _ = ecr::analyze_policy_text(s, Some("fuzz"));
}

/// OCI index / manifest JSON through every entry point that reads registry answers.
pub fn oci_json(b: &[u8]) {
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
}

/// Runs the target named `target` on `bytes` (`&str` targets skip non-UTF-8 input, as
/// libfuzzer-sys does). `false` for an unknown target name.
pub fn run(target: &str, bytes: &[u8]) -> bool {
    let on_text: fn(&str) = match target {
        "reference" => reference,
        "www_authenticate" => www_authenticate,
        "link" => link,
        "ecr_policy" => ecr_policy,
        "docker_config" => {
            docker_config(bytes);
            return true;
        }
        "oci_json" => {
            oci_json(bytes);
            return true;
        }
        _ => return false,
    };
    if let Ok(s) = std::str::from_utf8(bytes) {
        on_text(s);
    }
    true
}
