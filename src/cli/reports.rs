//! `evaluate`'s reports for CI systems: JUnit XML (GitLab, Jenkins, GitHub test reporters)
//! and SARIF 2.1.0 (GitHub code scanning). One test case / result per image × policy.
//!
//! JUnit follows the Jenkins/Ant `junit-10.xsd` (what those tools validate against):
//! `<testsuites>` with one `<testsuite>` per ReferrerPolicy, a `<testcase>` per image (name:
//! the image as a pod names it with its digest; classname `refwarden.<policy>`), `<failure>`
//! for a violation, `<skipped>` for Unknown. SARIF: rule `missing-referrers` (error) per
//! violation, `unknown-compliance` (warning) per Unknown image, located at the manifest file
//! of the first workload running the image, with a stable `partialFingerprints` entry.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use sha2::Digest as _;

use crate::crd::{PolicyViolation, UnknownImage, WorkloadRef};
use crate::manifests::Origin;
use crate::policy::evaluate::CompliantImage;

/// One judged image of one policy, as the reports list them.
pub enum Case<'a> {
    /// Carries every required referrer.
    Compliant(&'a CompliantImage),
    /// Misses some.
    Violation(&'a PolicyViolation),
    /// Could not be judged.
    Unknown(&'a UnknownImage),
}

/// A policy's judged images, every one (not the status's bounded lists).
pub struct PolicyCases<'a> {
    /// The ReferrerPolicy's name.
    pub policy: &'a str,
    /// Ready=False reason and message, when the policy could not be evaluated.
    pub not_ready: Option<(String, String)>,
    /// Its images.
    pub cases: Vec<Case<'a>>,
}

impl Case<'_> {
    fn name(&self) -> String {
        match self {
            Case::Compliant(c) => image_name(c.reference.as_deref(), &c.image, Some(&c.digest)),
            Case::Violation(v) => image_name(v.reference.as_deref(), &v.image, Some(&v.digest)),
            Case::Unknown(u) => image_name(None, &u.image, u.digest.as_deref()),
        }
    }

    fn workloads(&self) -> &[WorkloadRef] {
        match self {
            Case::Compliant(c) => &c.workloads,
            Case::Violation(v) => &v.workloads,
            Case::Unknown(u) => &u.workloads,
        }
    }

    fn pods(&self) -> u32 {
        match self {
            Case::Compliant(c) => c.pods,
            Case::Violation(v) => v.pods,
            Case::Unknown(u) => u.pods,
        }
    }
}

/// `ghcr.io/acme/app:1.4@sha256:…` (the reference as a pod names it, with the digest).
pub fn image_name(reference: Option<&str>, image: &str, digest: Option<&str>) -> String {
    let base = reference.unwrap_or(image);
    let base = base.split_once('@').map_or(base, |(b, _)| b);
    match digest {
        Some(d) => format!("{base}@{d}"),
        None => base.to_string(),
    }
}

/// `default/Deployment/web, …`
pub fn workloads_text(w: &[WorkloadRef]) -> String {
    w.iter()
        .map(|w| format!("{}/{}/{}", w.namespace, w.kind, w.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The JUnit XML report.
pub fn junit(policies: &[PolicyCases<'_>], timestamp: &str) -> String {
    let mut tests = 0usize;
    let mut failures = 0usize;
    let mut errors = 0usize;
    let mut suites = String::new();
    for p in policies {
        let (mut t, mut f, mut e, mut s) = (0usize, 0usize, 0usize, 0usize);
        let mut cases = String::new();
        let classname = xml_escape(&format!("refwarden.{}", p.policy));
        if let Some((reason, message)) = &p.not_ready {
            t += 1;
            e += 1;
            cases.push_str(&format!(
                "    <testcase name=\"ReferrerPolicy {}\" classname=\"{classname}\" time=\"0\">\n      <error type=\"{}\" message=\"{}\">{}</error>\n    </testcase>\n",
                xml_escape(p.policy),
                xml_escape(reason),
                xml_escape(message),
                xml_escape(message)
            ));
        }
        for c in &p.cases {
            t += 1;
            let name = xml_escape(&c.name());
            let run_by = format!("{} pod(s) of {}", c.pods(), workloads_text(c.workloads()));
            match c {
                Case::Compliant(x) => cases.push_str(&format!(
                    "    <testcase name=\"{name}\" classname=\"{classname}\" time=\"0\">\n      <system-out>{}</system-out>\n    </testcase>\n",
                    xml_escape(&format!(
                        "compliant via {}; run by {run_by}",
                        x.discovery_method.as_deref().unwrap_or("-")
                    ))
                )),
                Case::Violation(v) => {
                    f += 1;
                    let message = format!("missing: {}", v.missing.join(", "));
                    cases.push_str(&format!(
                        "    <testcase name=\"{name}\" classname=\"{classname}\" time=\"0\">\n      <failure type=\"MissingReferrers\" message=\"{}\">{}</failure>\n    </testcase>\n",
                        xml_escape(&message),
                        xml_escape(&format!(
                            "ReferrerPolicy {}: {} {message} (discovered via {}); run by {run_by}",
                            p.policy,
                            c.name(),
                            v.discovery_method.as_deref().unwrap_or("-")
                        ))
                    ));
                }
                Case::Unknown(u) => {
                    s += 1;
                    cases.push_str(&format!(
                        "    <testcase name=\"{name}\" classname=\"{classname}\" time=\"0\">\n      <skipped type=\"{}\" message=\"{}\">{}</skipped>\n    </testcase>\n",
                        xml_escape(&u.reason),
                        xml_escape(&format!("Unknown: {}", u.reason)),
                        xml_escape(&format!("{}; run by {run_by}", u.message))
                    ));
                }
            }
        }
        tests += t;
        failures += f;
        errors += e;
        suites.push_str(&format!(
            "  <testsuite name=\"ReferrerPolicy {}\" tests=\"{t}\" failures=\"{f}\" errors=\"{e}\" skipped=\"{s}\" time=\"0\" timestamp=\"{}\">\n{cases}  </testsuite>\n",
            xml_escape(p.policy),
            xml_escape(timestamp),
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"refwarden evaluate\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"0\">\n{suites}</testsuites>\n"
    )
}

/// A relative, RFC 3986 `uri-reference` for a file (forward slashes, percent-encoded).
fn file_uri(path: &Path) -> String {
    let p = path.to_string_lossy().replace('\\', "/");
    let p = p.strip_prefix("./").unwrap_or(&p).to_string();
    let mut out = String::new();
    for b in p.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    if out.is_empty() { "stdin".into() } else { out }
}

/// The SARIF 2.1.0 log.
pub fn sarif(
    policies: &[PolicyCases<'_>],
    origins: &BTreeMap<WorkloadRef, Origin>,
    fallback_file: &Path,
) -> Value {
    let rules = json!([
        {
            "id": "missing-referrers",
            "name": "MissingReferrers",
            "shortDescription": {"text": "A running image misses required referrers"},
            "fullDescription": {"text": "A ReferrerPolicy requires signatures, SBOMs or attestations that the registry does not hold for the digest the workload runs."},
            "help": {"text": "Attach the missing artifacts to the running digest (cosign sign / attest, notation sign, oras attach), or check the registry's lifecycle rules for deleted referrers; `refwarden discover IMAGE` lists what is there."},
            "defaultConfiguration": {"level": "error"},
            "properties": {"tags": ["supply-chain", "oci-referrers"]}
        },
        {
            "id": "unknown-compliance",
            "name": "UnknownCompliance",
            "shortDescription": {"text": "An image's referrers could not be read"},
            "fullDescription": {"text": "The registry could not be asked (unreachable, authentication, rate limit, image not found): refwarden cannot say whether the image is compliant."},
            "help": {"text": "Fix access to the registry (credentials: docker login or --docker-config; plain HTTP: --plain-http or --insecure-registry) and run again."},
            "defaultConfiguration": {"level": "warning"},
            "properties": {"tags": ["supply-chain", "oci-referrers"]}
        }
    ]);
    let mut results = Vec::new();
    for p in policies {
        for c in &p.cases {
            let (rule, index, level, text) = match c {
                Case::Compliant(_) => continue,
                Case::Violation(v) => (
                    "missing-referrers",
                    0,
                    "error",
                    format!(
                        "ReferrerPolicy {}: {} misses {} (discovered via {}); run by {} pod(s) of {}",
                        p.policy,
                        c.name(),
                        v.missing.join(", "),
                        v.discovery_method.as_deref().unwrap_or("-"),
                        v.pods,
                        workloads_text(&v.workloads)
                    ),
                ),
                Case::Unknown(u) => (
                    "unknown-compliance",
                    1,
                    "warning",
                    format!(
                        "ReferrerPolicy {}: {} is Unknown ({}): {}",
                        p.policy,
                        c.name(),
                        u.reason,
                        u.message
                    ),
                ),
            };
            let file = c
                .workloads()
                .iter()
                .find_map(|w| origins.get(w))
                .map(|o| o.file.as_path())
                .unwrap_or(fallback_file);
            let fingerprint = hex::encode(sha2::Sha256::digest(
                format!("{rule}\n{}\n{}", p.policy, c.name()).as_bytes(),
            ));
            let logical: Vec<Value> = c
                .workloads()
                .iter()
                .map(|w| {
                    json!({
                        "kind": "resource",
                        "fullyQualifiedName": format!("{}/{}/{}", w.namespace, w.kind, w.name),
                    })
                })
                .collect();
            let mut location = json!({
                "physicalLocation": {
                    "artifactLocation": {"uri": file_uri(file)},
                    "region": {"startLine": 1}
                }
            });
            if !logical.is_empty() {
                location["logicalLocations"] = Value::Array(logical);
            }
            results.push(json!({
                "ruleId": rule,
                "ruleIndex": index,
                "level": level,
                "message": {"text": text},
                "locations": [location],
                "partialFingerprints": {"refwardenImage/v1": fingerprint},
                "properties": {"policy": p.policy, "image": c.name()}
            }));
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "refwarden",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/refwarden/refwarden",
                "rules": rules
            }},
            "results": results
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_escaping() {
        assert_eq!(
            image_name(Some("ghcr.io/a/b:1.4"), "ghcr.io/a/b", Some("sha256:x")),
            "ghcr.io/a/b:1.4@sha256:x"
        );
        assert_eq!(
            image_name(
                Some("ghcr.io/a/b@sha256:y"),
                "ghcr.io/a/b",
                Some("sha256:y")
            ),
            "ghcr.io/a/b@sha256:y"
        );
        assert_eq!(
            xml_escape("a<b & \"c\"\u{1}"),
            "a&lt;b &amp; &quot;c&quot;\u{FFFD}"
        );
        assert_eq!(
            file_uri(Path::new("./deploy/my app.yaml")),
            "deploy/my%20app.yaml"
        );
    }
}
