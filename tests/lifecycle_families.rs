//! Declared lifecycle configuration of the other registry families: safe ones give no
//! finding, each risky shape its finding and fix.

use refwarden::crd::{FindingKind, RegistryFamily, Severity};
use refwarden::lifecycle::{analyze_policy_text, lifecycle_condition};

fn kinds(family: RegistryFamily, text: &str) -> Vec<(String, FindingKind, Severity)> {
    analyze_policy_text(family, text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .into_iter()
        .map(|f| {
            assert!(!f.fix.is_empty() && !f.message.is_empty());
            (f.rule, f.kind, f.severity)
        })
        .collect()
}

fn has(v: &[(String, FindingKind, Severity)], rule: &str, kind: FindingKind) -> bool {
    v.iter().any(|(r, k, _)| r == rule && *k == kind)
}

#[test]
fn gitlab() {
    use RegistryFamily::GitLab as F;
    // Safe: disabled; regex that only deletes dev tags and keeps nothing else relevant.
    assert!(kinds(F, r#"{"enabled":false,"name_regex":".*"}"#).is_empty());
    assert!(
        kinds(
            F,
            r#"{"enabled":true,"name_regex":"dev-.*","keep_n":10,"older_than":"30d"}"#
        )
        .is_empty()
    );
    // name_regex .* deletes cosign tags; keep_n counts them; subject tags go → orphans.
    let v = kinds(
        F,
        r#"{"enabled":true,"name_regex":".*","keep_n":5,"older_than":"14d"}"#,
    );
    assert!(has(&v, "name_regex", FindingKind::DeletesReferrers));
    assert!(has(&v, "keep_n", FindingKind::CountsReferrers));
    assert!(has(&v, "name_regex", FindingKind::OrphansReferrers));
    // Anchoring: "sha" alone does not match sha256-… tags (GitLab anchors \A…\Z).
    assert!(kinds(F, r#"{"enabled":true,"name_regex":"sha"}"#).is_empty());
    assert!(has(
        &kinds(F, r#"{"enabled":true,"name_regex":"sha.*"}"#),
        "name_regex",
        FindingKind::DeletesReferrers
    ));
    // The suggested name_regex_keep removes the delete finding.
    let f = analyze_policy_text(
        F,
        r#"{"enabled":true,"name_regex":".*","name_regex_keep":"main"}"#,
    )
    .unwrap();
    let fix = &f
        .iter()
        .find(|x| x.kind == FindingKind::DeletesReferrers)
        .unwrap()
        .fix;
    assert!(
        fix.contains(r#"main|sha256-[a-f0-9]{64}(\\.(sig|att|sbom))?"#),
        "{fix}"
    );
    let v = kinds(
        F,
        r#"{"enabled":true,"name_regex":".*","name_regex_keep":"main|sha256-[a-f0-9]{64}(\\.(sig|att|sbom))?"}"#,
    );
    assert!(
        !v.iter()
            .any(|(_, k, _)| *k == FindingKind::DeletesReferrers),
        "{v:?}"
    );
    // Invalid values.
    assert!(has(
        &kinds(F, r#"{"enabled":true,"name_regex":".*","keep_n":3}"#),
        "keep_n",
        FindingKind::InvalidPolicy
    ));
    assert!(has(
        &kinds(F, r#"{"enabled":true,"name_regex":"(["}"#),
        "name_regex",
        FindingKind::InvalidPolicy
    ));
    assert!(has(
        &kinds(F, r#"{"enabled":true,"name_regex":".*","older_than":"3d"}"#),
        "older_than",
        FindingKind::InvalidPolicy
    ));
}

#[test]
fn gar() {
    use RegistryFamily::Gar as F;
    assert!(kinds(F, r#"[{"name":"del-dev","action":{"type":"Delete"},"condition":{"tagState":"tagged","tagPrefixes":["dev-"],"olderThan":"30d"}}]"#).is_empty());
    let v = kinds(
        F,
        r#"[{"name":"delete-old","action":{"type":"Delete"},"condition":{"tagState":"untagged","olderThan":"30d"}},{"name":"keep-5","action":{"type":"Keep"},"mostRecentVersions":{"keepCount":5}}]"#,
    );
    assert!(has(&v, "delete-old", FindingKind::DeletesReferrers));
    assert!(has(&v, "keep-5", FindingKind::CountsReferrers));
    // Tagged deletion hitting sha256- tags, and the keep fix.
    let v = kinds(
        F,
        r#"[{"name":"d","action":{"type":"Delete"},"condition":{"tagState":"tagged","tagPrefixes":["sha"]}}]"#,
    );
    assert!(has(&v, "d", FindingKind::DeletesReferrers));
    assert!(kinds(F, r#"[{"name":"d","action":{"type":"Delete"},"condition":{"tagState":"tagged","tagPrefixes":["sha"]}},{"name":"keep-referrer-tags","action":{"type":"Keep"},"condition":{"tagState":"tagged","tagPrefixes":["sha256-"]}}]"#).is_empty());
    // Dry run deletes nothing.
    assert!(kinds(F, r#"{"dryRun":true,"policies":[{"name":"d","action":{"type":"Delete"},"condition":{"tagState":"any"}}]}"#).is_empty());
    // Invalid: mostRecentVersions with Delete; bad tagState; bad duration.
    assert!(has(
        &kinds(
            F,
            r#"[{"name":"x","action":{"type":"Delete"},"mostRecentVersions":{"keepCount":5}}]"#
        ),
        "x",
        FindingKind::InvalidPolicy
    ));
    assert!(has(
        &kinds(
            F,
            r#"[{"name":"x","action":{"type":"Delete"},"condition":{"tagState":"some"}}]"#
        ),
        "x",
        FindingKind::InvalidPolicy
    ));
    assert!(has(
        &kinds(
            F,
            r#"[{"name":"x","action":{"type":"Delete"},"condition":{"olderThan":"a month"}}]"#
        ),
        "x",
        FindingKind::InvalidPolicy
    ));
}

#[test]
fn acr() {
    use RegistryFamily::Acr as F;
    assert!(kinds(F, r#"{"retentionPolicy":{"status":"disabled","days":7}}"#).is_empty());
    assert!(kinds(F, r#"{"purge":[{"command":"acr purge --filter 'app:^v.*' --ago 30d --untagged","acrCliVersion":"0.9.0"}]}"#).is_empty());
    let v = kinds(F, r#"{"retentionPolicy":{"status":"enabled","days":3}}"#);
    assert!(has(&v, "retentionPolicy", FindingKind::DeletesReferrers));
    let v = kinds(
        F,
        r#"{"purge":[{"command":"acr purge --filter 'app:.*' --ago 7d --keep 5","acrCliVersion":"0.9"}]}"#,
    );
    assert!(has(&v, "purge[0]", FindingKind::DeletesReferrers));
    assert!(has(&v, "purge[0]", FindingKind::CountsReferrers));
    let v = kinds(
        F,
        r#"{"purge":[{"filters":["app:^v.*"],"untagged":true,"acrCliVersion":"0.7.1"}]}"#,
    );
    assert!(v.iter().any(|(r, k, s)| r == "purge[0]"
        && *k == FindingKind::DeletesReferrers
        && *s == Severity::High));
    assert!(has(
        &kinds(F, r#"{"retentionPolicy":{"status":"enabled","days":400}}"#),
        "retentionPolicy",
        FindingKind::InvalidPolicy
    ));
}

#[test]
fn harbor() {
    use RegistryFamily::Harbor as F;
    let retain_all_att = r#"{"action":"retain","template":"always","params":{},"tag_selectors":[{"kind":"doublestar","decoration":"matches","pattern":"sha256-*.{att,sbom}"}]}"#;
    let latest10 = r#"{"action":"retain","template":"latestPushedK","params":{"latestPushedK":10},"tag_selectors":[{"kind":"doublestar","decoration":"matches","pattern":"**"}]}"#;
    let v_only = r#"{"action":"retain","template":"latestPushedK","params":{"latestPushedK":10},"tag_selectors":[{"kind":"doublestar","decoration":"matches","pattern":"v*"}]}"#;
    // No retention → nothing deleted; GC delete_untagged alone is safe (accessories excluded).
    assert!(kinds(F, r#"{"gc":{"delete_untagged":true}}"#).is_empty());
    assert!(
        kinds(
            F,
            &format!(r#"{{"retention":{{"rules":[{v_only},{retain_all_att}]}}}}"#)
        )
        .is_empty()
    );
    let v = kinds(F, &format!(r#"{{"retention":{{"rules":[{latest10}]}}}}"#));
    assert!(has(&v, "retention", FindingKind::DeletesReferrers));
    assert!(has(&v, "rules[0]", FindingKind::CountsReferrers));
    let v = kinds(F, &format!(r#"{{"retention":{{"rules":[{v_only}]}}}}"#));
    assert!(has(&v, "retention", FindingKind::DeletesReferrers));
    assert!(!has(&v, "rules[0]", FindingKind::CountsReferrers));
    assert!(has(
        &kinds(
            F,
            r#"{"retention":{"rules":[{"template":"keepAll","tag_selectors":[]}]}}"#
        ),
        "rules[0]",
        FindingKind::InvalidPolicy
    ));
}

#[test]
fn distribution() {
    use RegistryFamily::Distribution as F;
    assert!(
        kinds(
            F,
            r#"{"version":"2.8.3","garbageCollection":{"deleteUntagged":false}}"#
        )
        .is_empty()
    );
    let v2 = kinds(
        F,
        r#"{"version":"2.8.3","garbageCollection":{"deleteUntagged":true}}"#,
    );
    let v3 = kinds(
        F,
        "version: 3.0.0\ngarbageCollection:\n  deleteUntagged: true\n",
    );
    assert_eq!(
        v2.iter()
            .filter(|x| x.1 == FindingKind::DeletesReferrers)
            .count(),
        2
    );
    assert_eq!(
        v3.iter()
            .filter(|x| x.1 == FindingKind::DeletesReferrers)
            .count(),
        1
    );
    assert!(has(
        &v3,
        "garbageCollection.deleteUntagged",
        FindingKind::OrphansReferrers
    ));
}

#[test]
fn quay() {
    use RegistryFamily::Quay as F;
    assert!(
        kinds(
            F,
            r#"{"autoPrune":[{"method":"number_of_tags","value":10}],"cosignPruneFix":true}"#
        )
        .is_empty()
    );
    assert!(kinds(F, r#"{"autoPrune":[{"method":"creation_date","value":"30d","tagPattern":"^sha256-[a-f0-9]{64}(\\.(sig|att|sbom))?$","tagPatternMatches":false}]}"#).is_empty());
    let v = kinds(
        F,
        r#"{"version":"3.15.2","autoPrune":[{"method":"number_of_tags","value":10}]}"#,
    );
    assert!(has(&v, "autoPrune[0]", FindingKind::DeletesReferrers));
    assert!(has(&v, "autoPrune[0]", FindingKind::CountsReferrers));
    assert!(has(
        &kinds(F, r#"{"tagExpiration":true}"#),
        "tagExpiration",
        FindingKind::OrphansReferrers
    ));
    assert!(has(
        &kinds(F, r#"{"autoPrune":[{"method":"by_size","value":1}]}"#),
        "autoPrune[0]",
        FindingKind::InvalidPolicy
    ));
    assert!(has(
        &kinds(
            F,
            r#"{"autoPrune":[{"method":"creation_date","value":"soon"}]}"#
        ),
        "autoPrune[0]",
        FindingKind::InvalidPolicy
    ));
}

#[test]
fn bad_input_names_the_field_and_condition_reports_highest_severity() {
    let e = analyze_policy_text(
        RegistryFamily::Harbor,
        r#"{"retention":{"rules":[{"params":{}}]}}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("template"), "{e}");
    let (s, reason, _) = lifecycle_condition(&[]);
    assert_eq!((s.as_str(), reason.as_str()), ("True", "NoRiskyRules"));
    let f = analyze_policy_text(
        RegistryFamily::Quay,
        r#"{"tagExpiration":true,"autoPrune":[{"method":"number_of_tags","value":3}]}"#,
    )
    .unwrap();
    let (s, reason, msg) = lifecycle_condition(&f);
    assert_eq!((s.as_str(), reason.as_str()), ("False", "HighRisk"));
    assert!(msg.contains("1 High"), "{msg}");
    let low = analyze_policy_text(RegistryFamily::Quay, r#"{"tagExpiration":true}"#).unwrap();
    assert_eq!(lifecycle_condition(&low).1, "LowRisk");
}
