//! Pushes test content over plain HTTP with reqwest, independent of the
//! product: blobs, manifests, images, multi-arch indexes, OCI 1.1 artifacts,
//! referrers-tag-schema indexes and cosign legacy tags.

use super::{Result, basic_header, http_client, media};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

/// How the seeder authenticates.
#[derive(Clone)]
pub enum SeedAuth {
    None,
    Basic(String, String),
    Bearer(String),
}

impl std::fmt::Debug for SeedAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SeedAuth::None => f.write_str("None"),
            SeedAuth::Basic(u, _) => write!(f, "Basic({u}, <redacted>)"),
            SeedAuth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// `sha256:<hex>` of bytes.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Referrers tag schema (`<alg>-<ref>`, truncated 32/64, other chars -> `-`).
pub fn referrers_tag_for(subject_digest: &str) -> String {
    let (alg, enc) = subject_digest
        .split_once(':')
        .unwrap_or(("sha256", subject_digest));
    let clean = |s: &str, max: usize| -> String {
        s.chars()
            .take(max)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    format!("{}-{}", clean(alg, 32), clean(enc, 64))
}

/// A manifest to refer to: the `subject` of an artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

impl Subject {
    pub fn new(digest: &str, media_type: &str, size: u64) -> Self {
        Subject {
            digest: digest.to_string(),
            media_type: media_type.to_string(),
            size,
        }
    }

    fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

impl From<(&str, &str, u64)> for Subject {
    fn from((d, m, s): (&str, &str, u64)) -> Self {
        Subject::new(d, m, s)
    }
}

#[derive(Clone, Debug)]
pub struct PushedImage {
    pub digest: String,
    pub config_digest: String,
    pub layer_digest: String,
    pub manifest_bytes: Vec<u8>,
    pub media_type: String,
    pub size: u64,
    /// `os/arch`
    pub platform: String,
}

impl PushedImage {
    pub fn subject(&self) -> Subject {
        Subject::new(&self.digest, &self.media_type, self.size)
    }
}

#[derive(Clone, Debug)]
pub struct PushedIndex {
    pub digest: String,
    pub manifest_bytes: Vec<u8>,
    pub media_type: String,
    pub size: u64,
    /// The platform images (linux/amd64, linux/arm64), pushed by digest.
    pub images: Vec<PushedImage>,
}

impl PushedIndex {
    pub fn subject(&self) -> Subject {
        Subject::new(&self.digest, &self.media_type, self.size)
    }
}

#[derive(Clone, Debug)]
pub struct PushedArtifact {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    pub manifest_bytes: Vec<u8>,
    pub artifact_type: Option<String>,
    pub config_media_type: String,
    pub annotations: BTreeMap<String, String>,
    pub layer_digest: String,
    /// `OCI-Subject` header of the manifest PUT response, if any.
    pub oci_subject: Option<String>,
}

impl PushedArtifact {
    /// The descriptor the referrers API (or a referrers tag index) lists:
    /// artifactType = manifest artifactType else config mediaType, plus the
    /// manifest annotations.
    pub fn descriptor(&self) -> Value {
        let mut d = json!({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
            "artifactType": self.artifact_type.clone().unwrap_or_else(|| self.config_media_type.clone()),
        });
        if !self.annotations.is_empty() {
            d["annotations"] = json!(self.annotations);
        }
        d
    }
}

/// Everything about an artifact manifest; see [`Seeder::push_artifact_spec`].
#[derive(Clone, Debug)]
pub struct ArtifactSpec {
    pub subject: Option<Subject>,
    /// Manifest `artifactType`; `None` omits the field (config mediaType is
    /// then the artifact type, like trivy's referrer plugin does).
    pub artifact_type: Option<String>,
    /// `None` -> the empty config `application/vnd.oci.empty.v1+json` `{}`.
    pub config: Option<(String, Vec<u8>)>,
    pub layer_media_type: String,
    pub payload: Vec<u8>,
    pub annotations: BTreeMap<String, String>,
    pub tag: Option<String>,
}

/// Response of a raw manifest PUT.
#[derive(Clone, Debug)]
pub struct PutManifest {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
    pub digest: String,
}

pub struct Seeder {
    base: url::Url,
    auth: SeedAuth,
    client: reqwest::Client,
}

impl Seeder {
    /// `base_url` like `http://127.0.0.1:5000`.
    pub fn new(base_url: &str, auth: SeedAuth) -> Result<Seeder> {
        let base =
            url::Url::parse(base_url).map_err(|e| format!("seeder base url {base_url:?}: {e}"))?;
        Ok(Seeder {
            base,
            auth,
            client: http_client()?,
        })
    }

    pub fn with_auth(&self, auth: SeedAuth) -> Seeder {
        Seeder {
            base: self.base.clone(),
            auth,
            client: self.client.clone(),
        }
    }

    fn request(&self, method: Method, url: url::Url) -> reqwest::RequestBuilder {
        let rb = self.client.request(method, url);
        match &self.auth {
            SeedAuth::None => rb,
            SeedAuth::Basic(u, p) => rb.header("Authorization", basic_header(u, p)),
            SeedAuth::Bearer(t) => rb.header("Authorization", format!("Bearer {t}")),
        }
    }

    fn url(&self, path: &str) -> Result<url::Url> {
        Ok(self.base.join(path)?)
    }

    /// Monolithic upload: `POST /v2/<repo>/blobs/uploads/` then `PUT
    /// <Location>?digest=`. Returns the digest.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> Result<String> {
        let digest = digest_of(bytes);
        let post_url = self.url(&format!("/v2/{repo}/blobs/uploads/"))?;
        let resp = self.request(Method::POST, post_url.clone()).send().await?;
        let status = resp.status();
        if status != StatusCode::ACCEPTED {
            return Err(fail("POST", &post_url, resp).await);
        }
        let location = resp
            .headers()
            .get("Location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("POST {post_url}: 202 without Location"))?
            .to_string();
        let mut put_url = post_url.join(&location)?;
        put_url.query_pairs_mut().append_pair("digest", &digest);
        let resp = self
            .request(Method::PUT, put_url.clone())
            .header("Content-Type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(fail("PUT", &put_url, resp).await);
        }
        Ok(digest)
    }

    /// `PUT /v2/<repo>/manifests/<reference>`, returning the raw answer.
    pub async fn put_manifest_raw(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<PutManifest> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let resp = self
            .request(Method::PUT, url)
            .header("Content-Type", media_type)
            .body(bytes.to_vec())
            .send()
            .await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap_or_default();
        Ok(PutManifest {
            status,
            headers,
            body,
            digest: digest_of(bytes),
        })
    }

    /// Pushes a manifest (expects 201) and returns its digest.
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String> {
        Ok(self
            .push_manifest_full(repo, reference, media_type, bytes)
            .await?
            .digest)
    }

    async fn push_manifest_full(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<PutManifest> {
        let r = self
            .put_manifest_raw(repo, reference, media_type, bytes)
            .await?;
        if r.status != StatusCode::CREATED {
            return Err(format!(
                "PUT /v2/{repo}/manifests/{reference}: {} {}",
                r.status, r.body
            )
            .into());
        }
        if let Some(d) = r
            .headers
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            && d != r.digest
        {
            return Err(format!(
                "PUT /v2/{repo}/manifests/{reference}: registry digest {d} != local {}",
                r.digest
            )
            .into());
        }
        Ok(r)
    }

    /// A tiny OCI image (deterministic per `tag`): config + one layer.
    pub async fn push_image(&self, repo: &str, tag: &str) -> Result<PushedImage> {
        self.push_platform_image(repo, Some(tag), tag, "linux", "amd64")
            .await
    }

    async fn push_platform_image(
        &self,
        repo: &str,
        tag: Option<&str>,
        seed: &str,
        os: &str,
        arch: &str,
    ) -> Result<PushedImage> {
        let layer = format!("refwarden test layer {seed} {os}/{arch}\n").into_bytes();
        let layer_digest = self.push_blob(repo, &layer).await?;
        let config = serde_json::to_vec(&json!({
            "architecture": arch,
            "os": os,
            "config": {"Labels": {"dev.refwarden.test.seed": seed}},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        }))?;
        let config_digest = self.push_blob(repo, &config).await?;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": {"mediaType": media::OCI_CONFIG, "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": media::OCI_LAYER_GZIP, "digest": layer_digest, "size": layer.len()}],
        }))?;
        let digest = digest_of(&manifest);
        let reference = tag.unwrap_or(&digest).to_string();
        self.push_manifest(repo, &reference, media::OCI_MANIFEST, &manifest)
            .await?;
        Ok(PushedImage {
            digest,
            config_digest,
            layer_digest,
            size: manifest.len() as u64,
            manifest_bytes: manifest,
            media_type: media::OCI_MANIFEST.to_string(),
            platform: format!("{os}/{arch}"),
        })
    }

    /// A multi-arch OCI index (linux/amd64 + linux/arm64, both pushed by
    /// digest) tagged `tag`.
    pub async fn push_index(&self, repo: &str, tag: &str) -> Result<PushedIndex> {
        let mut images = Vec::new();
        for arch in ["amd64", "arm64"] {
            images.push(
                self.push_platform_image(repo, None, tag, "linux", arch)
                    .await?,
            );
        }
        let manifests: Vec<Value> = images
            .iter()
            .map(|i| {
                let (os, arch) = i.platform.split_once('/').unwrap_or(("linux", "amd64"));
                json!({
                    "mediaType": i.media_type,
                    "digest": i.digest,
                    "size": i.size,
                    "platform": {"os": os, "architecture": arch},
                })
            })
            .collect();
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_INDEX,
            "manifests": manifests,
        }))?;
        let digest = self
            .push_manifest(repo, tag, media::OCI_INDEX, &index)
            .await?;
        Ok(PushedIndex {
            digest,
            size: index.len() as u64,
            manifest_bytes: index,
            media_type: media::OCI_INDEX.to_string(),
            images,
        })
    }

    /// An OCI 1.1 artifact manifest: `artifactType`, empty config, one layer
    /// of media type `artifact_type` holding `payload`, optional `subject`,
    /// optional tag (pushed by digest otherwise).
    pub async fn push_artifact(
        &self,
        repo: &str,
        subject: Option<&Subject>,
        artifact_type: &str,
        payload: &[u8],
        tag: Option<&str>,
    ) -> Result<PushedArtifact> {
        self.push_artifact_spec(
            repo,
            &ArtifactSpec {
                subject: subject.cloned(),
                artifact_type: Some(artifact_type.to_string()),
                config: None,
                layer_media_type: artifact_type.to_string(),
                payload: payload.to_vec(),
                annotations: BTreeMap::new(),
                tag: tag.map(str::to_string),
            },
        )
        .await
    }

    pub async fn push_artifact_spec(
        &self,
        repo: &str,
        spec: &ArtifactSpec,
    ) -> Result<PushedArtifact> {
        let (config_media_type, config_bytes) = spec
            .config
            .clone()
            .unwrap_or_else(|| (media::OCI_EMPTY.to_string(), b"{}".to_vec()));
        let config_digest = self.push_blob(repo, &config_bytes).await?;
        let layer_digest = self.push_blob(repo, &spec.payload).await?;
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": {"mediaType": config_media_type, "digest": config_digest, "size": config_bytes.len()},
            "layers": [{"mediaType": spec.layer_media_type, "digest": layer_digest, "size": spec.payload.len()}],
        });
        if let Some(at) = &spec.artifact_type {
            manifest["artifactType"] = json!(at);
        }
        if let Some(s) = &spec.subject {
            manifest["subject"] = s.descriptor();
        }
        if !spec.annotations.is_empty() {
            manifest["annotations"] = json!(spec.annotations);
        }
        let bytes = serde_json::to_vec(&manifest)?;
        let digest = digest_of(&bytes);
        let reference = spec.tag.clone().unwrap_or_else(|| digest.clone());
        let put = self
            .push_manifest_full(repo, &reference, media::OCI_MANIFEST, &bytes)
            .await?;
        Ok(PushedArtifact {
            digest,
            size: bytes.len() as u64,
            media_type: media::OCI_MANIFEST.to_string(),
            manifest_bytes: bytes,
            artifact_type: spec.artifact_type.clone(),
            config_media_type,
            annotations: spec.annotations.clone(),
            layer_digest,
            oci_subject: put
                .headers
                .get("OCI-Subject")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        })
    }

    /// Pushes the referrers tag schema index (`sha256-<hex>`) listing
    /// `descriptors` (e.g. [`PushedArtifact::descriptor`]). Returns its digest.
    pub async fn push_referrers_tag_index(
        &self,
        repo: &str,
        subject_digest: &str,
        descriptors: &[Value],
    ) -> Result<String> {
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_INDEX,
            "manifests": descriptors,
        }))?;
        self.push_manifest(
            repo,
            &referrers_tag_for(subject_digest),
            media::OCI_INDEX,
            &index,
        )
        .await
    }

    /// A cosign legacy tag `sha256-<hex>.<suffix>` (`sig`, `att`, `sbom`):
    /// an OCI image manifest whose single layer has cosign's media type.
    pub async fn push_cosign_tag(
        &self,
        repo: &str,
        subject_digest: &str,
        suffix: &str,
    ) -> Result<PushedArtifact> {
        let (layer_media_type, payload, layer_annotations) = match suffix {
            "sig" => (
                media::COSIGN_SIMPLESIGNING,
                json!({"critical": {"identity": {"docker-reference": repo},
                    "image": {"docker-manifest-digest": subject_digest},
                    "type": "cosign container image signature"}, "optional": null})
                .to_string(),
                json!({"dev.cosignproject.cosign/signature": "MEUCIQDtestsignature"}),
            ),
            "att" => (
                media::DSSE_ENVELOPE,
                json!({"payloadType": "application/vnd.in-toto+json", "payload": "e30=", "signatures": []})
                    .to_string(),
                json!({"predicateType": "https://slsa.dev/provenance/v1"}),
            ),
            "sbom" => (
                media::SPDX_JSON,
                json!({"spdxVersion": "SPDX-2.3", "name": subject_digest}).to_string(),
                json!({}),
            ),
            other => {
                return Err(format!("cosign tag suffix must be sig|att|sbom, got {other:?}").into());
            }
        };
        let config = serde_json::to_vec(&json!({
            "architecture": "", "os": "", "config": {},
            "rootfs": {"type": "layers", "diff_ids": []},
        }))?;
        let config_digest = self.push_blob(repo, &config).await?;
        let layer_digest = self.push_blob(repo, payload.as_bytes()).await?;
        let mut layer =
            json!({"mediaType": layer_media_type, "digest": layer_digest, "size": payload.len()});
        if layer_annotations.as_object().is_some_and(|o| !o.is_empty()) {
            layer["annotations"] = layer_annotations;
        }
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": {"mediaType": media::OCI_CONFIG, "digest": config_digest, "size": config.len()},
            "layers": [layer],
        }))?;
        let tag = format!("{}.{suffix}", referrers_tag_for(subject_digest));
        let digest = self
            .push_manifest(repo, &tag, media::OCI_MANIFEST, &manifest)
            .await?;
        Ok(PushedArtifact {
            digest,
            size: manifest.len() as u64,
            media_type: media::OCI_MANIFEST.to_string(),
            manifest_bytes: manifest,
            artifact_type: None,
            config_media_type: media::OCI_CONFIG.to_string(),
            annotations: BTreeMap::new(),
            layer_digest,
            oci_subject: None,
        })
    }

    /// `HEAD /v2/<repo>/manifests/<reference>` -> `Docker-Content-Digest`.
    pub async fn head_manifest_digest(&self, repo: &str, reference: &str) -> Result<String> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let resp = self
            .request(Method::HEAD, url.clone())
            .header(
                "Accept",
                format!(
                    "{}, {}, application/vnd.docker.distribution.manifest.v2+json, \
                     application/vnd.docker.distribution.manifest.list.v2+json",
                    media::OCI_MANIFEST,
                    media::OCI_INDEX
                ),
            )
            .send()
            .await?;
        if resp.status() != StatusCode::OK {
            return Err(fail("HEAD", &url, resp).await);
        }
        Ok(resp
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("HEAD {url}: no Docker-Content-Digest"))?
            .to_string())
    }
}

async fn fail(method: &str, url: &url::Url, resp: reqwest::Response) -> super::BoxError {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    format!("{method} {url}: {status} {body}").into()
}
