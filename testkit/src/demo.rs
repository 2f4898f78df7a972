//! The demo's content (what `scripts/demo.sh` seeds) on distribution 2.8: `demo/complete`
//! (signature + SBOM through the tag schema), `demo/sig-only` (signature), `demo/bare`
//! (nothing), each tagged `1.0`, and its manifests in `scripts/demo/`.

use std::path::{Path, PathBuf};

use super::{DistributionOptions, DistributionRegistry, SeedAuth, Seeder};

pub fn demo_dir() -> PathBuf {
    super::repo_root().join("scripts/demo")
}

/// Writes the demo's manifests with the registry host filled in.
pub fn write_demo_manifests(dir: &Path, host: &str) -> super::Result<()> {
    for entry in std::fs::read_dir(demo_dir())? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path)?.replace("REGISTRY_HOST", host);
            let name = path.file_name().ok_or("file name")?;
            std::fs::write(dir.join(name), text)?;
        }
    }
    Ok(())
}

pub struct Demo {
    pub reg: DistributionRegistry,
    /// complete, sig-only, bare
    pub digests: [String; 3],
}

/// Seeds what `scripts/demo.sh` seeds: complete (signature + SBOM via the tag schema),
/// sig-only (signature), bare (nothing).
pub async fn seed_demo() -> super::Result<Demo> {
    seed_demo_with(DistributionOptions::default(), SeedAuth::None).await
}

/// [`seed_demo`] on a registry started with `opts`, pushing as `auth`.
pub async fn seed_demo_with(opts: DistributionOptions, auth: SeedAuth) -> super::Result<Demo> {
    let reg = DistributionRegistry::start(opts)?;
    let seeder = Seeder::new(&reg.url(), auth)?;
    let mut digests = Vec::new();
    for (repo, types) in [
        (
            "demo/complete",
            vec![
                "application/vnd.dev.cosign.artifact.sig.v1+json",
                "application/spdx+json",
            ],
        ),
        (
            "demo/sig-only",
            vec!["application/vnd.dev.cosign.artifact.sig.v1+json"],
        ),
        ("demo/bare", vec![]),
    ] {
        let img = seeder.push_image(repo, "1.0").await?;
        let mut descriptors = Vec::new();
        for t in &types {
            let a = seeder
                .push_artifact(repo, Some(&img.subject()), t, b"{\"demo\":true}", None)
                .await?;
            descriptors.push(a.descriptor());
        }
        if !descriptors.is_empty() {
            seeder
                .push_referrers_tag_index(repo, &img.digest, &descriptors)
                .await?;
        }
        digests.push(img.digest);
    }
    let digests: [String; 3] = digests.try_into().map_err(|_| "three digests expected")?;
    Ok(Demo { reg, digests })
}
