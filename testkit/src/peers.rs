//! Independent peer clients run as child processes: the ORAS Python SDK (`pip install oras`)
//! pushing artifacts with a `subject` (`tests/peers/oras_push.py`).

use std::process::Command;

use serde_json::Value;

use super::{Result, Subject};

/// Fails the test (never skips) when the ORAS Python SDK is missing.
pub fn require_oras() {
    let ok = Command::new("python3")
        .args(["-c", "import oras.client"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "the ORAS Python SDK is required by this test: run `pip install oras` (python3 -m pip install oras)"
    );
}

/// `tests/peers/oras_push.py`: pushes an SPDX SBOM (`sbom`) and an in-toto attestation
/// (`orphan`) with `subject`, over plain HTTP to `host`; returns what it printed.
pub fn oras_push(host: &str, repo: &str, subject: &Subject) -> Result<Value> {
    let dir = tempfile::tempdir()?;
    let script = super::repo_root().join("tests/peers/oras_push.py");
    let out = Command::new("python3")
        .arg(script)
        .args([
            host,
            repo,
            &subject.digest,
            &subject.media_type,
            &subject.size.to_string(),
        ])
        .arg(dir.path())
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "oras_push.py failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}
