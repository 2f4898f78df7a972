//! ECR simulation over hand-built inventories; expected sets worked out by hand in comments.

use refwarden::crd::FindingKind;
use refwarden::lifecycle::ecr::parse_policy;
use refwarden::lifecycle::simulate::{
    Cause, SimAction, parse_describe_images, simulate, simulation_findings,
};

fn hex(c: char) -> String {
    std::iter::repeat_n(c, 64).collect()
}
fn d(c: char) -> String {
    format!("sha256:{}", hex(c))
}

fn img(digest: &str, tags: &[&str], pushed: &str, subject: Option<&str>) -> serde_json::Value {
    let mut v =
        serde_json::json!({"imageDigest": digest, "imageTags": tags, "imagePushedAt": pushed});
    if let Some(s) = subject {
        v["subjectManifestDigest"] = s.into();
    }
    v
}

const NOW: &str = "2025-06-01T00:00:00Z";

/// rule 1: tagged v*, keep newest 2. rule 2: untagged older than 30 d. rule 3: any older than 90 d.
const POLICY: &str = r#"{"rules":[
 {"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}},
 {"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"expire"}},
 {"rulePriority":3,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":90},"action":{"type":"expire"}}]}"#;

fn inventory() -> String {
    let (a, b, c, e) = (d('a'), d('b'), d('c'), d('e'));
    let items = vec![
        img(&a, &["v1"], "2025-01-01T00:00:00Z", None), // A deployed
        img(&b, &["v2"], "2025-03-01T00:00:00Z", None),
        img(&c, &["v3"], "2025-05-01T00:00:00Z", None),
        img(&e, &["v4"], "2025-05-20T00:00:00Z", None),
        img(&d('1'), &[], "2025-01-02T00:00:00Z", Some(&a)), // R1: OCI 1.1 referrer of A
        img(&d('2'), &[], "2025-05-25T00:00:00Z", Some(&e)), // R2: referrer of E, young
        img(&d('3'), &[], "2025-05-15T00:00:00Z", Some(&b)), // R3: referrer of B, young
        img(
            &d('4'),
            &[&format!("sha256-{}.sig", hex('a'))],
            "2025-01-02T00:00:00Z",
            None,
        ), // S
        img(
            &d('5'),
            &[&format!("sha256-{}.sig", hex('b'))],
            "2025-03-01T00:00:00Z",
            None,
        ), // G
        img(
            &d('6'),
            &[&format!("sha256-{}.sig", hex('c'))],
            "2025-05-01T00:00:00Z",
            None,
        ), // H
        img(
            &d('7'),
            &[&format!("sha256-{}.att", hex('b'))],
            "2025-05-10T00:00:00Z",
            None,
        ), // I
    ];
    serde_json::json!({ "imageDetails": items }).to_string()
}

#[test]
fn hand_worked_expiry_set() {
    let (policy, v) = parse_policy(POLICY).unwrap();
    assert!(v.is_empty(), "{v:?}");
    let images = parse_describe_images(&inventory()).unwrap();
    let now = NOW.parse().unwrap();
    let r = simulate(&policy, &images, &[d('a')], now);
    // Rule 1 sorts v4, v3, v2, v1 newest first and expires v2 (pushed out when v4 came,
    // 05-20) and v1 (pushed out when v3 came, 05-01). R1 is untagged: rule 2, 01-02 + 30 d.
    // S and G: first matching rule is 3 (any), pushed + 90 d = 04-02 and 05-30. H (+90 d =
    // 07-30) stays. R3 is young but its subject B is expired: it follows B (05-20).
    let mut got: Vec<(String, i64, String)> = r
        .actions
        .iter()
        .map(|a| {
            (
                a.digest.clone(),
                a.cause.rule_priority(),
                a.eligible_from.to_string(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (d('a'), 1, "2025-05-01T00:00:00Z".to_string()),
        (d('b'), 1, "2025-05-20T00:00:00Z".to_string()),
        (d('1'), 2, "2025-02-01T00:00:00Z".to_string()),
        (d('3'), 1, "2025-05-20T00:00:00Z".to_string()),
        (d('4'), 3, "2025-04-02T00:00:00Z".to_string()),
        (d('5'), 3, "2025-05-30T00:00:00Z".to_string()),
    ];
    want.sort();
    assert_eq!(got, want);
    let r3 = r.actions.iter().find(|a| a.digest == d('3')).unwrap();
    assert_eq!(
        r3.cause,
        Cause::SubjectExpired {
            subject: d('b'),
            rule_priority: 1
        }
    );
    assert!(r.actions.iter().all(|a| a.action == SimAction::Expire));

    // Deployed A: its OCI referrer (rule 2) and its .sig tag (rule 3) go; A itself too (rule 1).
    let exp: Vec<(String, String, i64)> = r
        .exposures
        .iter()
        .map(|e| {
            (
                e.referrer_digest.clone(),
                e.referrer_kind.clone(),
                e.cause.rule_priority(),
            )
        })
        .collect();
    assert_eq!(
        exp,
        vec![
            (d('1'), "OCI 1.1".into(), 2),
            (d('4'), "cosign .sig".into(), 3)
        ]
    );
    assert_eq!(r.deployed_subjects.len(), 1);
    assert_eq!(r.deployed_subjects[0].digest, d('a'));
    // I (B's .att) stays while B is expired: orphaned by rule 1.
    assert_eq!(r.orphans.len(), 1);
    assert_eq!(r.orphans[0].referrer_digest, d('7'));
    assert_eq!(r.orphans[0].rule_priority, 1);

    let f = simulation_findings(&r, Some("team/app"));
    let kinds: Vec<(String, FindingKind)> = f.iter().map(|x| (x.rule.clone(), x.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            ("rulePriority 2".into(), FindingKind::DeletesReferrers),
            ("rulePriority 3".into(), FindingKind::DeletesReferrers),
            ("rulePriority 1".into(), FindingKind::OrphansReferrers),
        ]
    );
    assert!(f[0].message.contains("2025-02-01"));
}

#[test]
fn shield_protects_tags_but_still_counts() {
    // rule 1 shields sha256-*; rule 2 (any) keeps the newest 2 — it still counts the shielded
    // .sig (newest), so only v3 survives among images: v2 and v1 are expired, the .sig is not.
    let policy = r#"{"rules":[
     {"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["sha256-*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":3650},"action":{"type":"expire"}},
     {"rulePriority":2,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]}"#;
    let items = vec![
        img(&d('a'), &["v1"], "2025-01-01T00:00:00Z", None),
        img(&d('b'), &["v2"], "2025-02-01T00:00:00Z", None),
        img(&d('c'), &["v3"], "2025-03-01T00:00:00Z", None),
        img(
            &d('4'),
            &[&format!("sha256-{}.sig", hex('a'))],
            "2025-04-01T00:00:00Z",
            None,
        ),
    ];
    let images =
        parse_describe_images(&serde_json::json!({ "imageDetails": items }).to_string()).unwrap();
    let (p, v) = parse_policy(policy).unwrap();
    assert!(v.is_empty());
    let r = simulate(&p, &images, &[d('a')], NOW.parse().unwrap());
    let mut got: Vec<String> = r.actions.iter().map(|a| a.digest.clone()).collect();
    got.sort();
    assert_eq!(got, vec![d('a'), d('b')]);
    assert!(r.exposures.is_empty());
    // The .sig of expired v1 stays: orphan.
    assert_eq!(r.orphans.len(), 1);
}

#[test]
fn transition_archives_referrers_and_archive_rules_wait_90_days() {
    let policy = r#"{"rules":[
     {"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["v*"],"countType":"sinceImagePulled","countUnit":"days","countNumber":30},"action":{"type":"transition","targetStorageClass":"archive"}},
     {"rulePriority":2,"selection":{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":10},"action":{"type":"expire"}}]}"#;
    let mut old = img(&d('a'), &["v1"], "2025-01-01T00:00:00Z", None);
    old["lastRecordedPullTime"] = "2025-04-01T00:00:00Z".into(); // + 30 d = 05-01
    let mut arch = img(&d('b'), &["v0"], "2024-01-01T00:00:00Z", None);
    arch["imageStatus"] = "ARCHIVED".into();
    arch["lastArchivedAt"] = "2025-04-01T00:00:00Z".into(); // +10 d, but 90 d minimum → 06-30
    let items = vec![
        old,
        arch,
        img(&d('1'), &[], "2025-01-02T00:00:00Z", Some(&d('a'))),
    ];
    let images = parse_describe_images(&serde_json::json!(items).to_string()).unwrap();
    let (p, v) = parse_policy(policy).unwrap();
    assert!(v.is_empty(), "{v:?}");
    let r = simulate(&p, &images, &[d('a')], NOW.parse().unwrap());
    let got: Vec<(String, SimAction)> = r
        .actions
        .iter()
        .map(|a| (a.digest.clone(), a.action))
        .collect();
    assert_eq!(
        got,
        vec![
            (d('1'), SimAction::Transition),
            (d('a'), SimAction::Transition)
        ]
    );
    assert_eq!(r.exposures.len(), 1);
    assert!(matches!(
        r.exposures[0].cause,
        Cause::SubjectArchived { .. }
    ));
    let later = "2025-07-01T00:00:00Z".parse().unwrap();
    let r = simulate(&p, &images, &[], later);
    assert!(
        r.actions
            .iter()
            .any(|a| a.digest == d('b') && a.action == SimAction::Expire)
    );
}

#[test]
fn inventory_errors_name_the_field() {
    let e = parse_describe_images(r#"{"imageDetails":[{"imageDigest":"sha256:x"}]}"#).unwrap_err();
    assert_eq!(e.field, "imageDetails[0].imagePushedAt");
    let e = parse_describe_images(
        r#"{"imageDetails":[{"imageDigest":"sha256:x","imagePushedAt":"yesterday"}]}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("imagePushedAt"));
    // Epoch seconds (CLI v1) work too.
    let ok = parse_describe_images(r#"[{"imageDigest":"sha256:x","imagePushedAt":1700000000.5}]"#)
        .unwrap();
    assert_eq!(ok[0].image_pushed_at.as_second(), 1_700_000_000);
}
