//! Terminal tables.

use crate::crd::{Capability, RegistryProfileStatus};
use crate::probe::{ProbeOptions, ProbeReport};

/// Renders rows as aligned columns (two spaces between columns).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let render = |cells: Vec<&str>, out: &mut String| {
        let last = cells.len().saturating_sub(1);
        for (i, c) in cells.iter().enumerate() {
            out.push_str(c);
            if i != last {
                let pad = widths[i].saturating_sub(c.chars().count()) + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    };
    render(header.to_vec(), &mut out);
    for row in rows {
        render(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

fn cap_row(name: &str, c: &Capability) -> Vec<String> {
    vec![
        name.to_string(),
        c.state.to_string(),
        c.reason.clone(),
        c.http_status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into()),
        c.message.clone().unwrap_or_default(),
    ]
}

/// The capability matrix of `refwarden probe`.
pub fn probe_table(
    url: &str,
    opts: &ProbeOptions,
    report: &ProbeReport,
    status: &RegistryProfileStatus,
) -> String {
    let mut out = String::new();
    out.push_str(&format!("Registry      {url}\n"));
    out.push_str(&format!(
        "API version   {}\n",
        report.distribution_api_version.as_deref().unwrap_or("-")
    ));
    let digest = match (&report.test_digest, &report.test_digest_problem) {
        (Some(d), _) => d.clone(),
        (None, Some((reason, message))) => format!("not resolved ({reason}: {message})"),
        (None, None) => "-".into(),
    };
    out.push_str(&format!(
        "Test image    {}:{} -> {digest}\n",
        opts.test_repository, opts.test_tag
    ));
    out.push_str(&format!(
        "Score         {}/{}\n",
        status.score, status.score_out_of
    ));
    out.push_str(&format!(
        "Discovery     {}\n",
        status
            .discovery_mode
            .map(|m| m.to_string())
            .unwrap_or_else(|| "undecided (Auto: detected per request)".into())
    ));
    if let Err((reason, message)) = &report.reachable {
        out.push_str(&format!("Unreachable   {reason}: {message}\n"));
    }
    out.push('\n');
    let caps = &report.capabilities;
    let rows = vec![
        cap_row("distribution version", &report.api_version),
        cap_row("referrers API", &caps.referrers_api),
        cap_row("artifactType filter", &caps.artifact_type_filter),
        cap_row("chunked upload", &caps.chunked_upload),
        cap_row("cross-repo mount", &caps.cross_repo_mount),
        cap_row("delete manifests", &caps.delete_manifests),
        cap_row("delete blobs", &caps.delete_blobs),
    ];
    out.push_str(&table(
        &["CAPABILITY", "STATE", "REASON", "HTTP", "DETAIL"],
        &rows,
    ));
    out.push('\n');
    out.push_str(&format!("Requests      {}\n", report.requests));
    for note in &report.notes {
        out.push_str(&format!("Note          {note}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["A", "BB"],
            &[vec!["xxx".into(), "y".into()], vec!["z".into(), "w".into()]],
        );
        assert_eq!(t, "A    BB\nxxx  y\nz    w\n");
    }
}
