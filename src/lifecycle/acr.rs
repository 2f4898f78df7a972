//! Azure Container Registry retention and `acr purge` (lifecycle-gc.md §5).

use super::model::{
    APP_SAMPLE_TAGS, ReferrerShape, anchored_regex, finding, invalid, labels, parse_age_seconds,
};
use crate::crd::{
    AcrLifecycleSpec, AcrPurge, Confidence, FindingKind, LifecycleFinding, RegistryFamily, Severity,
};

const FAMILY: RegistryFamily = RegistryFamily::Acr;

/// Splits a command line (single and double quotes, no escapes inside single quotes).
fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unbalanced quote".into());
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Parses `acr purge …` into flags.
pub fn parse_purge_command(cmd: &str) -> Result<AcrPurge, String> {
    let words = split_words(cmd)?;
    let mut p = AcrPurge::default();
    let mut it = words.iter().skip_while(|w| *w != "purge").skip(1);
    while let Some(w) = it.next() {
        let (flag, inline) = match w.split_once('=') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (w.as_str(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or(format!("{name} needs a value"))
        };
        match flag {
            "--filter" | "-f" => p.filters.push(value("--filter")?),
            "--ago" => p.ago = Some(value("--ago")?),
            "--keep" => {
                p.keep = Some(
                    value("--keep")?
                        .parse()
                        .map_err(|_| "--keep is not a number".to_string())?,
                )
            }
            "--untagged" => p.untagged = true,
            "--untagged-only" => p.untagged_only = true,
            _ => {}
        }
    }
    Ok(p)
}

fn version_at_least(v: &str, major: u64, minor: u64) -> Option<bool> {
    let mut parts = v.trim().trim_start_matches('v').split('.');
    let ma: u64 = parts.next()?.parse().ok()?;
    let mi: u64 = parts.next().unwrap_or("0").parse().ok()?;
    Some((ma, mi) >= (major, minor))
}

/// Findings for ACR settings.
pub fn analyze(spec: &AcrLifecycleSpec) -> Vec<LifecycleFinding> {
    let mut out = Vec::new();
    if let Some(r) = &spec.retention_policy {
        if !(0..=365).contains(&r.days) {
            out.push(invalid(
                FAMILY,
                "retentionPolicy",
                "retentionPolicy.days",
                &format!("{} is not within 0–365", r.days),
            ));
        } else if r.status.eq_ignore_ascii_case("enabled") {
            out.push(finding(
                FAMILY,
                "retentionPolicy",
                FindingKind::DeletesReferrers,
                Severity::Medium,
                Confidence::Inferred,
                format!("Untagged manifests are deleted {} days after they become untagged. Microsoft does not say whether referrers (never tagged) or manifests with a subject are exempt.", r.days),
                "Lock referrers of deployed images (`az acr repository update -n <registry> --image <repo>@<referrer-digest> --delete-enabled false`), or disable the policy: `az acr config retention update -r <registry> --status disabled --type UntaggedManifests`.",
            ));
        }
    }
    for (i, task) in spec.purge.iter().enumerate() {
        let rule = format!("purge[{i}]");
        let p = match &task.command {
            Some(c) => match parse_purge_command(c) {
                Ok(mut p) => {
                    p.acr_cli_version = task.acr_cli_version.clone();
                    p
                }
                Err(e) => {
                    out.push(invalid(FAMILY, &rule, &format!("{rule}.command"), &e));
                    continue;
                }
            },
            None => task.clone(),
        };
        if let Some(a) = &p.ago
            && parse_age_seconds(a).is_none()
        {
            out.push(invalid(
                FAMILY,
                &rule,
                &format!("{rule}.ago"),
                &format!("{a:?} is not a duration like 30d"),
            ));
            continue;
        }
        let mut tag_res = Vec::new();
        let mut bad = false;
        for f in &p.filters {
            let Some((_, tag_re)) = f.split_once(':') else {
                out.push(invalid(
                    FAMILY,
                    &rule,
                    &format!("{rule}.filter"),
                    &format!("{f:?} is not repo:tagRegex"),
                ));
                bad = true;
                continue;
            };
            match anchored_regex(tag_re) {
                Ok(r) => tag_res.push(r),
                Err(e) => {
                    out.push(invalid(
                        FAMILY,
                        &rule,
                        &format!("{rule}.filter"),
                        &e.to_string(),
                    ));
                    bad = true;
                }
            }
        }
        if bad {
            continue;
        }
        if p.untagged || p.untagged_only {
            match p.acr_cli_version.as_deref().and_then(|v| version_at_least(v, 0, 8)) {
                Some(true) => {}
                Some(false) => out.push(finding(
                    FAMILY,
                    &rule,
                    FindingKind::DeletesReferrers,
                    Severity::High,
                    Confidence::Documented,
                    "acr-cli before 0.8 deletes untagged manifests including referrers (manifests with a subject) and the children of tagged indexes (Azure/acr-cli#131).",
                    "Use acr-cli 0.8 or later (the mcr.microsoft.com/acr/acr-cli image), which skips untagged manifests that have a subject.",
                )),
                None => out.push(finding(
                    FAMILY,
                    &rule,
                    FindingKind::DeletesReferrers,
                    Severity::Low,
                    Confidence::Inferred,
                    "--untagged deletes untagged manifests; only acr-cli 0.8 and later skip referrers. The version is not set.",
                    "Make sure the task runs acr-cli 0.8 or later and set acrCliVersion.",
                )),
            }
        }
        if p.untagged_only {
            continue;
        }
        let selected = |t: &str| tag_res.iter().any(|r| r.is_match(t));
        let shapes: Vec<ReferrerShape> = ReferrerShape::ALL
            .into_iter()
            .filter(|s| s.sample_tag().is_some_and(|t| selected(&t)))
            .collect();
        if shapes.is_empty() {
            continue;
        }
        out.push(finding(
            FAMILY,
            &rule,
            FindingKind::DeletesReferrers,
            Severity::High,
            Confidence::Inferred,
            format!("acr purge filter {:?} matches {} (ordinary tags to acr purge){}.", p.filters, labels(&shapes), p.ago.as_deref().map(|a| format!(", deleted when older than {a}")).unwrap_or_default()),
            "Match release tags only, e.g. --filter '<repo>:^(v|release-).*' (Go regexp has no negative lookahead, so sha256- cannot be cut out of '.*'), or move signatures to OCI 1.1 referrers, which purge never sees as tags.",
        ));
        if p.keep.is_some() && APP_SAMPLE_TAGS.iter().any(|t| selected(t)) {
            out.push(finding(
                FAMILY,
                &rule,
                FindingKind::CountsReferrers,
                Severity::Medium,
                Confidence::Inferred,
                format!("--keep {} counts referrer tags as tags, so fewer images are kept.", p.keep.unwrap_or_default()),
                "Filter release tags only (see above) or raise --keep by the referrer tags per image.",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_command_parses() {
        let p = parse_purge_command("acr purge --filter 'app:.*' --ago 7d --untagged --keep=3")
            .unwrap();
        assert_eq!(p.filters, vec!["app:.*"]);
        assert_eq!(p.ago.as_deref(), Some("7d"));
        assert!(p.untagged);
        assert_eq!(p.keep, Some(3));
        assert!(parse_purge_command("acr purge --filter 'x").is_err());
    }
}
