//! Policy evaluation as pure unit tests: selection, requirement matching,
//! subject matching, bounding and status conditions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use k8s_openapi::jiff::Timestamp;

use super::evaluate::*;
use super::pods::{ContainerImage, ImageKey, PodInfo};
use crate::crd::{
    ImageFilter, LegacySuffix, Preset, ReferrerPolicySpec, Requirement, SubjectMatch,
};
use crate::discovery::{
    ArtifactKind, AttachedTo, DiscoveryMethod, DiscoveryOutcome, DiscoveryReport, Referrer,
};
use crate::reason::Reason;

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn now(secs: i64) -> Time {
    Time(Timestamp::from_second(secs).expect("valid"))
}

fn req(name: &str, preset: Option<Preset>) -> Requirement {
    Requirement {
        verify: None,
        name: name.into(),
        preset,
        artifact_types: vec![],
        legacy_tag_suffixes: vec![],
        min_count: 1,
        formats: vec![],
        repository: None,
    }
}

fn spec(require: Vec<Requirement>) -> ReferrerPolicySpec {
    ReferrerPolicySpec {
        namespace_selector: None,
        pod_selector: None,
        images: ImageFilter::default(),
        require,
        subject_match: SubjectMatch::IndexOrPlatform,
        registry_profiles: vec![],
        recheck_interval: "10m".into(),
        max_reported_violations: 50,
    }
}

fn sig_and_sbom() -> ReferrerPolicySpec {
    spec(vec![
        req("signature", Some(Preset::Signature)),
        req("sbom", Some(Preset::Sbom)),
    ])
}

fn pod(ns: &str, name: &str, workload: (&str, &str), images: &[(&str, &str)]) -> PodInfo {
    PodInfo::of_workload(
        ns,
        name,
        workload,
        images.iter().map(|(image, id)| ContainerImage {
            image: image.to_string(),
            image_id: if id.is_empty() {
                None
            } else {
                Some(id.to_string())
            },
        }),
    )
}

fn referrer(d: u8, kinds: &[ArtifactKind], attached: AttachedTo) -> Referrer {
    Referrer {
        digest: digest(d),
        media_type: crate::oci::OCI_MANIFEST.into(),
        artifact_type: Some("application/vnd.example+json".into()),
        kinds: kinds.to_vec(),
        format: crate::discovery::Format::Other,
        predicate_type: None,
        size: 100,
        annotations: BTreeMap::new(),
        method: DiscoveryMethod::TagSchema,
        subject: digest(1),
        attached_to: attached,
        tag: None,
        repository: None,
        platform: None,
        referrers: vec![],
    }
}

fn found(referrers: Vec<Referrer>) -> Arc<DiscoveryOutcome> {
    Arc::new(DiscoveryOutcome::Found(DiscoveryReport {
        platforms: vec![],
        subject: digest(1),
        subject_media_type: None,
        referrers_api: Some(false),
        methods: vec![DiscoveryMethod::TagSchema, DiscoveryMethod::CosignTag],
        referrers,
        requests: 1,
        notes: vec![],
    }))
}

fn key(repo: &str, d: u8) -> ImageKey {
    let (registry, repository) = repo.split_once('/').expect("registry/repo");
    ImageKey {
        registry: registry.into(),
        repository: repository.into(),
        digest: digest(d),
    }
}

#[test]
fn compliant_noncompliant_unknown_and_counts() {
    let policy = compile(&sig_and_sbom()).expect("valid");
    let a = format!("ghcr.io/acme/a@{}", digest(10));
    let b = format!("ghcr.io/acme/b@{}", digest(20));
    let c = format!("ghcr.io/acme/c@{}", digest(30));
    let pods = vec![
        pod(
            "prod",
            "a-1",
            ("Deployment", "a"),
            &[("ghcr.io/acme/a:1", &a)],
        ),
        pod(
            "prod",
            "a-2",
            ("Deployment", "a"),
            &[("ghcr.io/acme/a:1", &a)],
        ),
        pod(
            "prod",
            "b-1",
            ("StatefulSet", "b"),
            &[("ghcr.io/acme/b:1", &b)],
        ),
        pod("dev", "c-1", ("Pod", "c-1"), &[("ghcr.io/acme/c:1", &c)]),
        // A locally loaded image: bare image ID, no repository.
        pod(
            "dev",
            "local",
            ("Pod", "local"),
            &[("local/app:dev", &digest(99))],
        ),
    ];
    let sel = select(&policy, &pods, &NamespaceLabels::new());
    assert_eq!(sel.pods, 5);
    assert_eq!(sel.images.len(), 3);
    let outcomes = BTreeMap::from([
        (
            key("ghcr.io/acme/a", 10),
            found(vec![
                referrer(2, &[ArtifactKind::CosignSignature], AttachedTo::Requested),
                referrer(3, &[ArtifactKind::SpdxSbom], AttachedTo::Requested),
            ]),
        ),
        (
            key("ghcr.io/acme/b", 20),
            found(vec![referrer(
                4,
                &[ArtifactKind::CosignSignature],
                AttachedTo::Requested,
            )]),
        ),
        (
            key("ghcr.io/acme/c", 30),
            Arc::new(DiscoveryOutcome::Unknown {
                reason: Reason::Unreachable,
                message: "connection refused".into(),
            }),
        ),
    ]);
    let eval = judge(&policy, &sel, &outcomes, &BTreeMap::new());
    assert_eq!(eval.summary.pods, 5);
    assert_eq!(eval.summary.images, 4);
    assert_eq!(eval.summary.compliant, 1);
    assert_eq!(eval.summary.non_compliant, 1);
    assert_eq!(eval.summary.unknown, 2);
    assert_eq!(eval.violations.len(), 1);
    let v = &eval.violations[0];
    assert_eq!(v.image, "ghcr.io/acme/b");
    assert_eq!(v.missing, vec!["sbom".to_string()]);
    assert_eq!(v.workloads[0].kind, "StatefulSet");
    assert_eq!(v.discovery_method.as_deref(), Some("tag-schema+cosign-tag"));
    let reasons: BTreeSet<&str> = eval.unknown.iter().map(|u| u.reason.as_str()).collect();
    assert_eq!(
        reasons,
        BTreeSet::from(["DigestNotResolvable", "RegistryUnavailable"])
    );

    let st = status(&policy, &eval, Some(3), None, &now(100));
    let compliant = crate::conditions::find(&st.conditions, COMPLIANT).expect("Compliant");
    assert_eq!(
        (compliant.status.as_str(), compliant.reason.as_str()),
        ("False", "MissingReferrers")
    );
    let ready = crate::conditions::find(&st.conditions, "Ready").expect("Ready");
    assert_eq!(ready.status, "True");
    assert_eq!(st.observed_generation, Some(3));
    // Without `verify`, never "signed"/"verified": presence is not trust.
    let text = serde_json::to_string(&st).expect("json");
    assert!(
        !text.contains("signed") && !text.contains("verified"),
        "{text}"
    );
}

#[test]
fn registry_error_is_unknown_never_compliant_or_violation() {
    let policy = compile(&sig_and_sbom()).expect("valid");
    let a = format!("ghcr.io/acme/a@{}", digest(10));
    let pods = vec![pod("p", "a", ("Pod", "a"), &[("ghcr.io/acme/a:1", &a)])];
    let sel = select(&policy, &pods, &NamespaceLabels::new());
    for reason in ["AuthFailed", "Timeout", "RateLimited", "RegistryError"] {
        let outcomes = BTreeMap::from([(
            key("ghcr.io/acme/a", 10),
            Arc::new(DiscoveryOutcome::Unknown {
                reason: Reason::parse(reason).expect("a reason"),
                message: "x".into(),
            }),
        )]);
        let eval = judge(&policy, &sel, &outcomes, &BTreeMap::new());
        assert_eq!(
            (
                eval.summary.compliant,
                eval.summary.non_compliant,
                eval.summary.unknown
            ),
            (0, 0, 1)
        );
        let st = status(&policy, &eval, None, None, &now(1));
        let c = crate::conditions::find(&st.conditions, COMPLIANT).expect("Compliant");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("Unknown", "RegistryUnavailable")
        );
    }
    // Not discovered at all: Unknown too.
    let eval = judge(&policy, &sel, &BTreeMap::new(), &BTreeMap::new());
    assert_eq!(eval.summary.unknown, 1);
}

#[test]
fn subject_match_exact_vs_index_or_platform() {
    let on_platform = |d: u8, kind: ArtifactKind, platform: u8| {
        let mut r = referrer(d, &[kind], AttachedTo::Platform);
        r.subject = digest(platform);
        r
    };
    let report = |referrers: Vec<Referrer>, platforms: &[u8]| {
        let DiscoveryOutcome::Found(mut r) = found(referrers).as_ref().clone() else {
            panic!()
        };
        r.platforms = platforms
            .iter()
            .map(|p| crate::discovery::PlatformManifest {
                digest: digest(*p),
                platform: None,
            })
            .collect();
        r
    };
    let reqs = sig_and_sbom().require;
    // A signature on the index the running platform manifest belongs to counts.
    let r = report(
        vec![
            referrer(2, &[ArtifactKind::CosignSignature], AttachedTo::Index),
            referrer(3, &[ArtifactKind::SpdxSbom], AttachedTo::Requested),
        ],
        &[],
    );
    assert!(missing_requirements(&reqs, SubjectMatch::IndexOrPlatform, &r).is_empty());
    assert_eq!(
        missing_requirements(&reqs, SubjectMatch::Exact, &r),
        vec!["signature".to_string()]
    );
    // The running digest is an index of two platforms: an SBOM on one platform only
    // is not enough (refwarden cannot tell which platform the node runs) …
    let one = report(
        vec![
            referrer(2, &[ArtifactKind::CosignSignature], AttachedTo::Requested),
            on_platform(4, ArtifactKind::SpdxSbom, 10),
        ],
        &[10, 11],
    );
    assert_eq!(
        missing_requirements(&reqs, SubjectMatch::IndexOrPlatform, &one),
        vec!["sbom".to_string()]
    );
    // … an SBOM on every platform is.
    let all = report(
        vec![
            referrer(2, &[ArtifactKind::CosignSignature], AttachedTo::Requested),
            on_platform(4, ArtifactKind::SpdxSbom, 10),
            on_platform(5, ArtifactKind::SpdxSbom, 11),
        ],
        &[10, 11],
    );
    assert!(missing_requirements(&reqs, SubjectMatch::IndexOrPlatform, &all).is_empty());
    assert_eq!(
        missing_requirements(&reqs, SubjectMatch::Exact, &all),
        vec!["sbom".to_string()]
    );
    // A signature on the SBOM (nested) never satisfies the image's own signature.
    let nested = report(
        vec![referrer(
            5,
            &[ArtifactKind::CosignSignature],
            AttachedTo::Referrer,
        )],
        &[],
    );
    assert_eq!(
        missing_requirements(&reqs, SubjectMatch::IndexOrPlatform, &nested),
        vec!["signature".to_string(), "sbom".to_string()]
    );
}

#[test]
fn artifact_types_legacy_suffixes_and_min_count() {
    let mut r = referrer(2, &[ArtifactKind::Other], AttachedTo::Requested);
    r.artifact_type = Some("application/vnd.acme.scan+json; version=2".into());
    let mut cosign = referrer(3, &[ArtifactKind::CosignSignature], AttachedTo::Requested);
    cosign.method = DiscoveryMethod::CosignTag;
    cosign.tag = Some(format!("{}.sig", digest(1).replace(':', "-")));
    let report = DiscoveryReport {
        platforms: vec![],
        subject: digest(1),
        subject_media_type: None,
        referrers_api: None,
        methods: vec![],
        referrers: vec![r, cosign],
        requests: 0,
        notes: vec![],
    };
    let by_type = Requirement {
        artifact_types: vec!["application/vnd.acme.scan+json".into()],
        ..req("scan", None)
    };
    let by_suffix = Requirement {
        legacy_tag_suffixes: vec![LegacySuffix::Sig],
        ..req("legacy-sig", None)
    };
    let att_suffix = Requirement {
        legacy_tag_suffixes: vec![LegacySuffix::Att],
        ..req("legacy-att", None)
    };
    let two_sigs = Requirement {
        min_count: 2,
        ..req("two-signatures", Some(Preset::Signature))
    };
    assert_eq!(
        missing_requirements(
            &[by_type, by_suffix, att_suffix, two_sigs],
            SubjectMatch::Exact,
            &report
        ),
        vec!["legacy-att".to_string(), "two-signatures".to_string()]
    );
}

#[test]
fn selectors_and_globs_select() {
    let mut s = sig_and_sbom();
    s.namespace_selector = Some(LabelSelector {
        match_labels: Some(BTreeMap::from([("env".to_string(), "prod".to_string())])),
        match_expressions: None,
    });
    s.images = ImageFilter {
        include: vec!["ghcr.io/acme/**".into()],
        exclude: vec!["ghcr.io/acme/legacy/*".into()],
    };
    let policy = compile(&s).expect("valid");
    let ns = NamespaceLabels::from([
        (
            "prod".to_string(),
            BTreeMap::from([("env".to_string(), "prod".to_string())]),
        ),
        (
            "dev".to_string(),
            BTreeMap::from([("env".to_string(), "dev".to_string())]),
        ),
    ]);
    let pods = vec![
        pod(
            "prod",
            "a",
            ("Pod", "a"),
            &[(&format!("ghcr.io/acme/app@{}", digest(1)), "")],
        ),
        pod(
            "prod",
            "b",
            ("Pod", "b"),
            &[(&format!("ghcr.io/acme/legacy/x@{}", digest(2)), "")],
        ),
        pod(
            "prod",
            "c",
            ("Pod", "c"),
            &[(&format!("docker.io/library/nginx@{}", digest(3)), "")],
        ),
        pod(
            "dev",
            "d",
            ("Pod", "d"),
            &[(&format!("ghcr.io/acme/app@{}", digest(4)), "")],
        ),
    ];
    let sel = select(&policy, &pods, &ns);
    assert_eq!(sel.pods, 3, "the dev pod is not selected");
    let images: Vec<String> = sel.images.keys().map(|k| k.repository_path()).collect();
    assert_eq!(images, vec!["ghcr.io/acme/app".to_string()]);
}

#[test]
fn violations_are_bounded_sorted_and_stable() {
    let mut s = sig_and_sbom();
    s.max_reported_violations = 3;
    let policy = compile(&s).expect("valid");
    let mut pods = Vec::new();
    let mut outcomes = BTreeMap::new();
    for i in (10..20u8).rev() {
        let repo = format!("ghcr.io/acme/app{i}");
        pods.push(pod(
            "p",
            &format!("pod{i}"),
            ("Deployment", &format!("d{i}")),
            &[(&format!("{repo}@{}", digest(i)), "")],
        ));
        outcomes.insert(key(&repo, i), found(vec![]));
    }
    let sel = select(&policy, &pods, &NamespaceLabels::new());
    let eval = judge(&policy, &sel, &outcomes, &BTreeMap::new());
    assert_eq!(eval.summary.non_compliant, 10);
    let st1 = status(&policy, &eval, Some(1), None, &now(10));
    assert_eq!(st1.violations.len(), 3);
    let names: Vec<&str> = st1.violations.iter().map(|v| v.image.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "ghcr.io/acme/app10",
            "ghcr.io/acme/app11",
            "ghcr.io/acme/app12"
        ]
    );
    // Same inputs in another order: same status; conditions keep their transition time.
    pods.reverse();
    let sel2 = select(&policy, &pods, &NamespaceLabels::new());
    let eval2 = judge(&policy, &sel2, &outcomes, &BTreeMap::new());
    let st2 = status(&policy, &eval2, Some(1), Some(&st1), &now(20));
    assert_eq!(st1.violations, st2.violations);
    assert_eq!(st1.conditions, st2.conditions);
}

#[test]
fn workloads_per_image_are_bounded() {
    let policy = compile(&sig_and_sbom()).expect("valid");
    let image = format!("ghcr.io/acme/app@{}", digest(1));
    let pods: Vec<PodInfo> = (0..25)
        .map(|i| {
            pod(
                "p",
                &format!("p{i}"),
                ("Deployment", &format!("d{i:02}")),
                &[(&image, "")],
            )
        })
        .collect();
    let sel = select(&policy, &pods, &NamespaceLabels::new());
    let outcomes = BTreeMap::from([(key("ghcr.io/acme/app", 1), found(vec![]))]);
    let eval = judge(&policy, &sel, &outcomes, &BTreeMap::new());
    assert_eq!(eval.violations[0].workloads.len(), MAX_WORKLOADS_PER_IMAGE);
    assert_eq!(eval.violations[0].workloads[0].name, "d00");
}

#[test]
fn invalid_specs_name_the_field() {
    let mut s = sig_and_sbom();
    s.images.include = vec!["ghcr.io/[bad".into()];
    let e = compile(&s).expect_err("invalid glob");
    assert_eq!(e.field, "spec.images.include[0]");
    let mut s = sig_and_sbom();
    s.require.push(req("signature", Some(Preset::Signature)));
    assert_eq!(compile(&s).expect_err("dup").field, "spec.require[2].name");
    let mut s = sig_and_sbom();
    s.require = vec![];
    assert_eq!(compile(&s).expect_err("empty").field, "spec.require");
    let mut s = sig_and_sbom();
    s.require = vec![req("nothing", None)];
    assert_eq!(
        compile(&s).expect_err("no matcher").field,
        "spec.require[0]"
    );
    let mut s = sig_and_sbom();
    s.recheck_interval = "soon".into();
    assert_eq!(
        compile(&s).expect_err("duration").field,
        "spec.recheckInterval"
    );

    let e = compile(&{
        let mut s = sig_and_sbom();
        s.recheck_interval = "1s".into();
        s
    })
    .expect_err("too short");
    let st = invalid_spec_status(&e, Some(7), None, &now(5));
    let stalled = crate::conditions::find(&st.conditions, "Stalled").expect("Stalled");
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "InvalidSpec")
    );
    let ready = crate::conditions::find(&st.conditions, "Ready").expect("Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "InvalidSpec")
    );
    assert!(
        ready.message.starts_with("spec.recheckInterval"),
        "{}",
        ready.message
    );
    assert_eq!(st.observed_generation, Some(7));
}

#[test]
fn no_images_is_compliant_with_its_own_reason() {
    let policy = compile(&sig_and_sbom()).expect("valid");
    let eval = judge(
        &policy,
        &select(&policy, &[], &NamespaceLabels::new()),
        &BTreeMap::new(),
        &BTreeMap::new(),
    );
    let st = status(&policy, &eval, None, None, &now(1));
    let c = crate::conditions::find(&st.conditions, COMPLIANT).expect("Compliant");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("True", "NoImagesSelected")
    );
}

#[test]
fn an_include_glob_matching_nothing_makes_ready_false_naming_it() {
    let mut s = sig_and_sbom();
    s.images = ImageFilter {
        include: vec![
            "ghcr.io/acme/**".into(),
            "ghcr.io/acme-corp/**".into(),
            "quay.io/acme/*".into(),
        ],
        exclude: vec![],
    };
    let policy = compile(&s).expect("valid");
    let pods = [
        pod(
            "prod",
            "a",
            ("Pod", "a"),
            &[(&format!("ghcr.io/acme/app@{}", digest(1)), "")],
        ),
        pod(
            "prod",
            "b",
            ("Pod", "b"),
            &[(&format!("docker.io/library/nginx@{}", digest(2)), "")],
        ),
    ];
    let sel = select(&policy, pods.iter(), &NamespaceLabels::new());
    assert_eq!(sel.repositories_seen, 2);
    assert_eq!(sel.unmatched_includes, vec![1, 2]);
    let outcomes = BTreeMap::from([(key("ghcr.io/acme/app", 1), found(vec![]))]);
    let eval = judge(&policy, &sel, &outcomes, &BTreeMap::new());
    let st = status(&policy, &eval, Some(3), None, &now(100));
    let ready = st
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", GLOB_MATCHES_NOTHING)
    );
    assert!(
        ready.message.starts_with(
            "spec.images.include[1] \"ghcr.io/acme-corp/**\", spec.images.include[2] \"quay.io/acme/*\" match none of the 2 repositories"
        ),
        "{}",
        ready.message
    );
    // The images the other glob selects are still judged.
    assert_eq!(st.summary.non_compliant, 1);
    let compliant = st
        .conditions
        .iter()
        .find(|c| c.type_ == COMPLIANT)
        .expect("Compliant");
    assert_eq!(compliant.reason, "MissingReferrers");

    // Every glob matching something: Ready again. Nothing selected at all: nothing to judge
    // a glob by, Ready (NoImagesSelected).
    let mut s2 = s.clone();
    s2.images.include.truncate(1);
    let policy2 = compile(&s2).expect("valid");
    let sel = select(&policy2, pods.iter(), &NamespaceLabels::new());
    assert!(sel.unmatched_includes.is_empty());
    let st = status(
        &policy2,
        &judge(&policy2, &sel, &outcomes, &BTreeMap::new()),
        Some(3),
        None,
        &now(100),
    );
    assert!(
        st.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );
    let sel = select(&policy, std::iter::empty(), &NamespaceLabels::new());
    assert!(sel.unmatched_includes.is_empty());
    let st = status(
        &policy,
        &judge(&policy, &sel, &BTreeMap::new(), &BTreeMap::new()),
        Some(3),
        None,
        &now(100),
    );
    assert!(
        st.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );
}

#[test]
fn in_toto_attestation_preset_wants_an_attestation_not_a_plain_sbom() {
    let req = crate::crd::Requirement {
        verify: None,
        name: "attested".into(),
        preset: Some(crate::crd::Preset::InTotoAttestation),
        artifact_types: vec![],
        legacy_tag_suffixes: vec![],
        min_count: 1,
        formats: vec![],
        repository: None,
    };
    let mut plain = referrer(2, &[ArtifactKind::SpdxSbom], AttachedTo::Requested);
    plain.format = crate::discovery::Format::Spdx;
    assert!(
        !referrer_satisfies(&req, &plain),
        "an SBOM document is not an attestation"
    );
    let mut attested = plain.clone();
    attested.predicate_type = Some("https://spdx.dev/Document".into());
    assert!(referrer_satisfies(&req, &attested), "an SPDX statement is");
    let mut buildkit = referrer(3, &[ArtifactKind::SpdxSbom], AttachedTo::Requested);
    buildkit.format = crate::discovery::Format::BuildkitAttestation;
    assert!(referrer_satisfies(&req, &buildkit));
    let mut signature = referrer(4, &[ArtifactKind::SigstoreBundle], AttachedTo::Requested);
    signature.predicate_type = Some("https://sigstore.dev/cosign/sign/v1".into());
    assert!(
        !referrer_satisfies(&req, &signature),
        "a cosign 3 signature is not an attestation"
    );
}
