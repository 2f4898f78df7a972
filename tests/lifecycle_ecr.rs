//! ECR lifecycle policies: AWS validation rules (one failing example each), and the
//! classification of safe and risky policies.

use refwarden::crd::{Confidence, FindingKind, Severity};
use refwarden::lifecycle::analyze_ecr_policy_text;

fn rule(p: i64, sel: &str, action: &str) -> String {
    format!(r#"{{"rulePriority":{p},"selection":{sel},"action":{action}}}"#)
}
fn policy(rules: &[String]) -> String {
    format!(r#"{{"rules":[{}]}}"#, rules.join(","))
}
const EXPIRE: &str = r#"{"type":"expire"}"#;
const UNTAGGED14: &str = r#"{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14}"#;
const V_COUNT5: &str = r#"{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":5}"#;

#[test]
fn each_validation_rule_has_a_failing_example() {
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("not an object", "[]".into(), "policy", "<root>"),
        ("no rules", r#"{"rules":[]}"#.into(), "policy", "rules"),
        ("unknown top key", r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}],"x":1}"#.into(), "policy", "x"),
        ("duplicate priority", policy(&[rule(1, V_COUNT5, EXPIRE), rule(1, UNTAGGED14, EXPIRE)]), "rulePriority 1", "rulePriority"),
        ("priority missing", r#"{"rules":[{"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#.into(), "rules[0]", "rules[0].rulePriority"),
        ("any not last", policy(&[rule(1, r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5}"#, EXPIRE), rule(2, V_COUNT5, EXPIRE)]), "rulePriority 1", "selection.tagStatus"),
        ("two untagged rules", policy(&[rule(1, UNTAGGED14, EXPIRE), rule(2, r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":3}"#, EXPIRE)]), "rulePriority 2", "selection.tagStatus"),
        ("bad tagStatus", policy(&[rule(1, r#"{"tagStatus":"all","countType":"imageCountMoreThan","countNumber":1}"#, EXPIRE)]), "rulePriority 1", "rules[0].selection.tagStatus"),
        ("tagged without lists", policy(&[rule(1, r#"{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1}"#, EXPIRE)]), "rulePriority 1", "rules[0].selection"),
        ("both lists", policy(&[rule(1, r#"{"tagStatus":"tagged","tagPrefixList":["v"],"tagPatternList":["v*"],"countType":"imageCountMoreThan","countNumber":1}"#, EXPIRE)]), "rulePriority 1", "rules[0].selection"),
        ("untagged with prefix", policy(&[rule(1, r#"{"tagStatus":"untagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":1}"#, EXPIRE)]), "rulePriority 1", "rules[0].selection.tagPrefixList"),
        ("five wildcards", policy(&[rule(1, r#"{"tagStatus":"tagged","tagPatternList":["test*1*2*3*4*5*6"],"countType":"imageCountMoreThan","countNumber":1}"#, EXPIRE)]), "rulePriority 1", "rules[0].selection.tagPatternList[0]"),
        ("countNumber 0", policy(&[rule(1, r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":0}"#, EXPIRE)]), "rulePriority 1", "rules[0].selection.countNumber"),
        ("countUnit with count", policy(&[rule(1, r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countUnit":"days","countNumber":1}"#, EXPIRE)]), "rulePriority 1", "rules[0].selection.countUnit"),
        ("countUnit missing", policy(&[rule(1, r#"{"tagStatus":"untagged","countType":"sinceImagePushed","countNumber":1}"#, EXPIRE)]), "rulePriority 1", "rules[0].selection.countUnit"),
        ("countUnit hours", policy(&[rule(1, r#"{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"hours","countNumber":1}"#, EXPIRE)]), "rulePriority 1", "rules[0].selection.countUnit"),
        ("bad countType", policy(&[rule(1, r#"{"tagStatus":"untagged","countType":"imageCountLessThan","countNumber":1}"#, EXPIRE)]), "rulePriority 1", "rules[0].selection.countType"),
        ("bad action", policy(&[rule(1, UNTAGGED14, r#"{"type":"delete"}"#)]), "rulePriority 1", "rules[0].action.type"),
        ("transition without target", policy(&[rule(1, r#"{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1}"#, r#"{"type":"transition"}"#)]), "rulePriority 1", "rules[0].action.targetStorageClass"),
        ("target with expire", policy(&[rule(1, UNTAGGED14, r#"{"type":"expire","targetStorageClass":"archive"}"#)]), "rulePriority 1", "rules[0].action.targetStorageClass"),
        ("sinceImagePulled with expire", policy(&[rule(1, r#"{"tagStatus":"untagged","countType":"sinceImagePulled","countUnit":"days","countNumber":1}"#, EXPIRE)]), "rulePriority 1", "rules[0].selection.countType"),
        ("sinceImageTransitioned on standard", policy(&[rule(1, r#"{"tagStatus":"untagged","countType":"sinceImageTransitioned","countUnit":"days","countNumber":1}"#, EXPIRE)]), "rulePriority 1", "rules[0].selection.storageClass"),
        ("archive with push age", policy(&[rule(1, r#"{"tagStatus":"untagged","storageClass":"archive","countType":"sinceImagePushed","countUnit":"days","countNumber":1}"#, EXPIRE)]), "rulePriority 1", "rules[0].selection.storageClass"),
        ("same prefix set", policy(&[rule(1, V_COUNT5, EXPIRE), rule(2, r#"{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"sinceImagePushed","countUnit":"days","countNumber":9}"#, EXPIRE)]), "rulePriority 2", "selection.tagPrefixList"),
        ("countNumber string", policy(&[rule(1, r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":"5"}"#, EXPIRE)]), "rulePriority 1", "rules[0].selection.countNumber"),
        ("unknown selection key", policy(&[rule(1, r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1,"keep":true}"#, EXPIRE)]), "rulePriority 1", "rules[0].selection.keep"),
    ];
    for (name, text, rule_id, field) in cases {
        let f = analyze_ecr_policy_text(&text, None);
        assert!(
            f.iter().any(|x| x.kind == FindingKind::InvalidPolicy
                && x.rule == rule_id
                && x.message.starts_with(&format!("{field}: "))),
            "{name}: expected InvalidPolicy {rule_id} {field}, got {f:#?}"
        );
        assert!(
            f.iter().all(|x| x.kind == FindingKind::InvalidPolicy),
            "{name}: only InvalidPolicy expected"
        );
    }
    // Not JSON at all: one InvalidPolicy, no panic.
    let f = analyze_ecr_policy_text("rules: [", None);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].kind, FindingKind::InvalidPolicy);
}

#[test]
fn safe_policies_give_no_finding() {
    let shield = r#"{"tagStatus":"tagged","tagPatternList":["sha256-*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":3650}"#;
    let safe = vec![
        // Only release tags, by age.
        policy(&[rule(
            1,
            r#"{"tagStatus":"tagged","tagPatternList":["v*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":90}"#,
            EXPIRE,
        )]),
        // Prefix that sha256- tags do not match, counting.
        policy(&[rule(1, V_COUNT5, EXPIRE)]),
        // Several patterns (all must match), dev builds only.
        policy(&[rule(
            3,
            r#"{"tagStatus":"tagged","tagPatternList":["dev-*","*-snapshot"],"countType":"imageCountMoreThan","countNumber":3}"#,
            EXPIRE,
        )]),
        // Shield first, then an any-by-age rule... still deletes untagged referrers, so not here:
        // shield + tagged rule matching sha256 is shielded.
        policy(&[
            rule(1, shield, EXPIRE),
            rule(
                2,
                r#"{"tagStatus":"tagged","tagPatternList":["*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":30}"#,
                EXPIRE,
            ),
        ]),
        // Untagged by a year is "generous" but still a finding? No: untagged rules are flagged
        // at Medium; this policy has none.
        policy(&[rule(
            1,
            r#"{"tagStatus":"tagged","tagPrefixList":["pr-"],"countType":"sinceImagePushed","countUnit":"days","countNumber":7}"#,
            EXPIRE,
        )]),
    ];
    for p in safe {
        let f = analyze_ecr_policy_text(&p, None);
        assert!(f.is_empty(), "{p}\n{f:#?}");
    }
}

#[test]
fn risky_shapes_give_their_finding_and_fix() {
    struct Case {
        text: String,
        rule: &'static str,
        kind: FindingKind,
        severity: Severity,
        confidence: Confidence,
        fix_contains: &'static str,
    }
    let cases = vec![
        Case {
            text: policy(&[rule(1, UNTAGGED14, EXPIRE)]),
            rule: "rulePriority 1",
            kind: FindingKind::DeletesReferrers,
            severity: Severity::High,
            confidence: Confidence::Reported,
            fix_contains: r#""countNumber":365"#,
        },
        Case {
            text: policy(&[rule(
                5,
                r#"{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30}"#,
                EXPIRE,
            )]),
            rule: "rulePriority 5",
            kind: FindingKind::DeletesReferrers,
            severity: Severity::High,
            confidence: Confidence::Inferred,
            fix_contains: r#""rulePriority":4,"description":"Shield"#,
        },
        Case {
            text: policy(&[rule(
                1,
                r#"{"tagStatus":"tagged","tagPrefixList":["sha"],"countType":"sinceImagePushed","countUnit":"days","countNumber":30}"#,
                EXPIRE,
            )]),
            rule: "rulePriority 1",
            kind: FindingKind::DeletesReferrers,
            severity: Severity::High,
            confidence: Confidence::Inferred,
            fix_contains: "renumber",
        },
        Case {
            text: policy(&[rule(
                2,
                r#"{"tagStatus":"tagged","tagPatternList":["*.sig"],"countType":"imageCountMoreThan","countNumber":50}"#,
                EXPIRE,
            )]),
            rule: "rulePriority 2",
            kind: FindingKind::DeletesReferrers,
            severity: Severity::High,
            confidence: Confidence::Inferred,
            fix_contains: "selects only referrer tags",
        },
        Case {
            text: policy(&[rule(
                1,
                r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":10}"#,
                EXPIRE,
            )]),
            rule: "rulePriority 1",
            kind: FindingKind::CountsReferrers,
            severity: Severity::Medium,
            confidence: Confidence::Inferred,
            fix_contains: "e.g. 30",
        },
        Case {
            text: policy(&[rule(
                1,
                r#"{"tagStatus":"tagged","tagPatternList":["*"],"countType":"imageCountMoreThan","countNumber":10}"#,
                EXPIRE,
            )]),
            rule: "rulePriority 1",
            kind: FindingKind::CountsReferrers,
            severity: Severity::Medium,
            confidence: Confidence::Inferred,
            fix_contains: r#""tagPatternList":["v*"]"#,
        },
        Case {
            text: policy(&[rule(
                1,
                r#"{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7}"#,
                r#"{"type":"transition","targetStorageClass":"archive"}"#,
            )]),
            rule: "rulePriority 1",
            kind: FindingKind::HidesReferrers,
            severity: Severity::High,
            confidence: Confidence::Reported,
            fix_contains: "untagged",
        },
        Case {
            text: policy(&[rule(
                1,
                r#"{"tagStatus":"tagged","tagPatternList":["v*"],"countType":"sinceImagePulled","countUnit":"days","countNumber":60}"#,
                r#"{"type":"transition","targetStorageClass":"archive"}"#,
            )]),
            rule: "rulePriority 1",
            kind: FindingKind::HidesReferrers,
            severity: Severity::Low,
            confidence: Confidence::Documented,
            fix_contains: "artifactStatus ANY",
        },
        Case {
            text: policy(&[rule(
                1,
                r#"{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":400}"#,
                EXPIRE,
            )]),
            rule: "rulePriority 1",
            kind: FindingKind::DeletesReferrers,
            severity: Severity::Medium,
            confidence: Confidence::Reported,
            fix_contains: "untagged",
        },
    ];
    for c in cases {
        let f = analyze_ecr_policy_text(&c.text, None);
        assert!(
            f.iter().any(|x| x.rule == c.rule
                && x.kind == c.kind
                && x.severity == c.severity
                && x.confidence == c.confidence
                && x.fix.contains(c.fix_contains)),
            "{}\nexpected {} {:?} {:?} {:?} fix~{:?}\ngot {f:#?}",
            c.text,
            c.rule,
            c.kind,
            c.severity,
            c.confidence,
            c.fix_contains
        );
    }
}

#[test]
fn shielding_removes_the_tag_finding_but_not_the_untagged_one() {
    let any =
        r#"{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30}"#;
    let f = analyze_ecr_policy_text(&policy(&[rule(2, any, EXPIRE)]), None);
    let fix = &f
        .iter()
        .find(|x| x.confidence == Confidence::Inferred)
        .unwrap()
        .fix;
    // Apply the suggested shield rule: the tag finding goes, the untagged one stays.
    let json_start = fix.find("{\"rulePriority\"").unwrap();
    let shield: serde_json::Value = serde_json::Deserializer::from_str(&fix[json_start..])
        .into_iter::<serde_json::Value>()
        .next()
        .unwrap()
        .unwrap();
    let fixed = policy(&[shield.to_string(), rule(2, any, EXPIRE)]);
    let f2 = analyze_ecr_policy_text(&fixed, None);
    assert!(
        f2.iter().all(|x| x.confidence == Confidence::Reported),
        "{f2:#?}"
    );
    assert_eq!(f2.len(), 1);
    // The suggested JSON validates.
    assert!(f2.iter().all(|x| x.kind != FindingKind::InvalidPolicy));
}
