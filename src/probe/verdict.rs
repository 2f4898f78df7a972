//! Pure capability verdicts: what an HTTP answer (or its absence) means.
//!
//! No I/O here; `probe::run` gathers [`Observation`]s and hands them over.
//! The rules follow the OCI Distribution 1.1 text and the quirks real registries
//! show (see `../shared/reference/oci-referrers.md` §1 and §3).

use crate::reason::Reason;
use bytes::Bytes;

use crate::crd::{Capability, CapabilityState};
use crate::oci;

/// What one probe request produced.
#[derive(Clone, Debug)]
pub enum Observation {
    /// The registry answered with an HTTP status.
    Answered(Answer),
    /// No HTTP answer: connection refused, timeout, TLS failure, token endpoint failure.
    Failed {
        /// The cause, e.g. `Unreachable`, `Timeout`, `TlsError`, `AuthFailed`.
        reason: Reason,
        /// Human-readable detail (never contains credentials).
        message: String,
    },
    /// The request was not made.
    Skipped {
        /// Why, e.g. `WriteProbesDisabled`, `TestImageNotFound`.
        reason: Reason,
        /// Human-readable detail.
        message: String,
    },
}

impl Observation {
    /// A skipped probe.
    pub fn skipped(reason: Reason, message: impl Into<String>) -> Self {
        Self::Skipped {
            reason,
            message: message.into(),
        }
    }
}

/// An HTTP answer, reduced to what verdicts need.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// Media type of the body (no parameters, lowercase).
    pub content_type: Option<String>,
    /// Response headers (names lowercase).
    pub headers: Vec<(String, String)>,
    /// The body (empty for HEAD).
    pub body: Bytes,
    /// Error codes of an OCI error body (`{"errors":[{"code":…}]}`).
    pub error_codes: Vec<String>,
}

impl Answer {
    /// First value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    fn has_code(&self, code: &str) -> bool {
        self.error_codes
            .iter()
            .any(|c| c.eq_ignore_ascii_case(code))
    }

    fn codes_text(&self) -> String {
        if self.error_codes.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.error_codes.join(", "))
        }
    }
}

/// Reason of a Supported referrers API whose answers carry a wrong `Content-Type`.
pub const NON_CONFORMANT_CONTENT_TYPE: &str = "NonConformantContentType";

/// Whether a body parses as an OCI image index.
pub fn body_is_oci_index(body: &[u8]) -> bool {
    match serde_json::from_slice::<oci::ImageIndex>(body) {
        Ok(index) => {
            index.schema_version() == 2
                && index
                    .media_type()
                    .as_ref()
                    .is_none_or(|mt| mt.to_string() == oci::MEDIA_TYPE_OCI_INDEX)
        }
        Err(_) => false,
    }
}

/// Verdict shared by every probe for answers that do not say anything about the capability:
/// 401, 403, 429 and 5xx, named by the crate's one HTTP table ([`crate::reason::classify`]).
fn common(answer: &Answer, what: &str) -> Option<Capability> {
    let status = Some(answer.status);
    let reason = match answer.status {
        401 | 403 | 429 | 500..=599 => crate::reason::classify(
            answer.status,
            &answer.error_codes,
            answer.header("www-authenticate"),
        )?,
        _ => return None,
    };
    let message = match reason {
        Reason::AuthFailed => format!(
            "{what}: the credentials are missing or were rejected (HTTP {}){}",
            answer.status,
            answer.codes_text()
        ),
        Reason::InsufficientPermissions => format!(
            "{what}: the credentials may not do this (HTTP {}){}",
            answer.status,
            answer.codes_text()
        ),
        Reason::RateLimited => format!("{what}: the registry is rate limiting (HTTP 429)"),
        _ => format!("{what}: the registry failed (HTTP {})", answer.status),
    };
    Some(unknown(reason, status, message))
}

/// An Unknown verdict: the capability could not be judged, for a [`Reason`] (the status carries
/// its name). Supported and Unsupported verdicts name the probe's own answers instead.
pub fn unknown(reason: Reason, http_status: Option<u16>, message: impl Into<String>) -> Capability {
    Capability::unknown(reason.as_str(), http_status, message)
}

fn not_answered(obs: &Observation) -> Option<Capability> {
    match obs {
        Observation::Answered(_) => None,
        Observation::Failed { reason, message } | Observation::Skipped { reason, message } => {
            Some(unknown(*reason, None, message.clone()))
        }
    }
}

/// Distribution API version from `GET /v2/`. Returns the header value and the verdict
/// that counts towards the score.
pub fn api_version(obs: &Observation) -> (Option<String>, Capability) {
    if let Some(c) = not_answered(obs) {
        return (None, c);
    }
    let Observation::Answered(a) = obs else {
        return (None, unknown(Reason::NotProbed, None, ""));
    };
    let header = a
        .header("oci-distribution-api-version")
        .or_else(|| a.header("docker-distribution-api-version"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    if let Some(v) = header {
        return (
            Some(v.clone()),
            Capability::supported(
                "VersionHeader",
                Some(a.status),
                format!("GET /v2/ answered HTTP {} with API version {v}", a.status),
            ),
        );
    }
    let verdict = match a.status {
        200 => Capability::unsupported(
            "VersionHeaderMissing",
            Some(200),
            "GET /v2/ answered 200 without an API version header",
        ),
        404 => Capability::unsupported(
            "NotARegistry",
            Some(404),
            "GET /v2/ answered 404: this URL does not serve the registry API",
        ),
        _ => common(a, "GET /v2/").unwrap_or_else(|| {
            unknown(
                Reason::UnexpectedStatus,
                Some(a.status),
                format!("GET /v2/ answered HTTP {}", a.status),
            )
        }),
    };
    (None, verdict)
}

/// Referrers API verdict from `GET /v2/<repo>/referrers/<digest>`.
pub fn referrers_api(obs: &Observation) -> Capability {
    if let Some(c) = not_answered(obs) {
        return c;
    }
    let Observation::Answered(a) = obs else {
        return unknown(Reason::NotProbed, None, "");
    };
    let status = Some(a.status);
    let ct = a.content_type.as_deref().unwrap_or("<none>");
    match a.status {
        // Harbor ≤ 2.9 answers the index with `application/json; charset=utf-8` (goharbor/harbor
        // #19212, fixed in 2.10): the answer is usable, the registry is not conformant.
        200 if ct == "application/json" && body_is_oci_index(&a.body) => Capability::supported(
            NON_CONFORMANT_CONTENT_TYPE,
            status,
            format!(
                "200 with an OCI image index but Content-Type {}, not {} (Harbor before 2.10): used as the referrers list",
                a.header("content-type").unwrap_or(ct),
                oci::MEDIA_TYPE_OCI_INDEX
            ),
        ),
        200 => {
            if ct != oci::MEDIA_TYPE_OCI_INDEX {
                let reason = if ct == "text/html" {
                    "HtmlInsteadOfIndex"
                } else {
                    "WrongContentType"
                };
                Capability::unsupported(
                    reason,
                    status,
                    format!(
                        "200 with Content-Type {ct}, not an OCI image index: treated as no referrers API"
                    ),
                )
            } else if !body_is_oci_index(&a.body) {
                Capability::unsupported(
                    "InvalidIndex",
                    status,
                    "200 with the OCI index Content-Type, but the body is not an image index",
                )
            } else {
                Capability::supported("IndexReturned", status, "200 with an OCI image index")
            }
        }
        404 => {
            if body_is_oci_index(&a.body) {
                Capability::supported(
                    "EmptyIndexOn404",
                    status,
                    "404 with an OCI image index body (pre-1.1 draft behaviour)",
                )
            } else if a.has_code("NAME_UNKNOWN") {
                unknown(
                    Reason::RepositoryNotFound,
                    status,
                    "404 NAME_UNKNOWN: the test repository does not exist, cannot verify",
                )
            } else {
                Capability::unsupported(
                    "NotFound",
                    status,
                    format!(
                        "404 without an index{}: no referrers API, tag fallback required",
                        a.codes_text()
                    ),
                )
            }
        }
        400 => Capability::unsupported(
            "BadRequest",
            status,
            format!(
                "400{}: the endpoint is not served as the spec requires",
                a.codes_text()
            ),
        ),
        405 => Capability::unsupported("MethodNotAllowed", status, "405 Method Not Allowed"),
        406 => Capability::unsupported(
            "NotAcceptable",
            status,
            "406 Not Acceptable (older Artifactory)",
        ),
        // A redirect the client did not follow: to another host (GHCR has answered 303 to
        // github.com, which then answered 429: artifacthub/hub#4785). No usable API here.
        301 | 302 | 303 | 307 | 308 => Capability::unsupported(
            "RedirectedToOtherHost",
            status,
            format!(
                "{} redirect to {}: no usable referrers API on this registry, tag fallback required",
                a.status,
                a.header("location")
                    .and_then(|l| url::Url::parse(l).ok())
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_else(|| "another host".into())
            ),
        ),
        _ => common(a, "referrers").unwrap_or_else(|| {
            unknown(
                Reason::UnexpectedStatus,
                status,
                format!("referrers answered HTTP {}{}", a.status, a.codes_text()),
            )
        }),
    }
}

/// Whether the registry applies `?artifactType=`, from the filtered request.
pub fn artifact_type_filter(referrers: &Capability, obs: &Observation) -> Capability {
    match referrers.state {
        CapabilityState::Unsupported => {
            return Capability::unsupported(
                "ReferrersApiUnsupported",
                None,
                "no referrers API, so no server-side filter",
            );
        }
        CapabilityState::Unknown => {
            return unknown(
                Reason::ReferrersApiUnknown,
                None,
                "the referrers API verdict is Unknown",
            );
        }
        CapabilityState::Supported => {}
    }
    if let Some(c) = not_answered(obs) {
        return c;
    }
    let Observation::Answered(a) = obs else {
        return unknown(Reason::NotProbed, None, "");
    };
    let status = Some(a.status);
    if a.status == 200 || (a.status == 404 && body_is_oci_index(&a.body)) {
        let header_lists = a.header("oci-filters-applied").is_some_and(|v| {
            v.split(',')
                .any(|f| f.trim().eq_ignore_ascii_case("artifactType"))
        });
        if header_lists {
            return Capability::supported(
                "FiltersApplied",
                status,
                "OCI-Filters-Applied: artifactType",
            );
        }
        let annotation_lists = serde_json::from_slice::<serde_json::Value>(&a.body)
            .ok()
            .and_then(|v| {
                v.get("annotations")?
                    .get("org.opencontainers.referrers.filtersApplied")?
                    .as_str()
                    .map(|s| s.split(',').any(|f| f.trim() == "artifactType"))
            })
            .unwrap_or(false);
        if annotation_lists {
            return Capability::supported(
                "FiltersAppliedAnnotation",
                status,
                "filter reported through the pre-1.1 index annotation",
            );
        }
        return Capability::unsupported(
            "FiltersNotApplied",
            status,
            "the registry ignored ?artifactType= (no OCI-Filters-Applied header): refwarden filters client-side",
        );
    }
    match a.status {
        400 | 404 | 405 | 406 => Capability::unsupported(
            "FilterRejected",
            status,
            format!(
                "the filtered request answered HTTP {}{}",
                a.status,
                a.codes_text()
            ),
        ),
        _ => common(a, "filtered referrers").unwrap_or_else(|| {
            unknown(
                Reason::UnexpectedStatus,
                status,
                format!("filtered referrers answered HTTP {}", a.status),
            )
        }),
    }
}

/// Chunked upload verdict from `POST …/blobs/uploads/` and, when it opened a session,
/// a `PATCH` of one chunk to the session's `Location`.
pub fn chunked_upload(post: &Observation, patch: Option<&Observation>) -> Capability {
    if let Some(c) = not_answered(post) {
        return c;
    }
    let Observation::Answered(a) = post else {
        return unknown(Reason::NotProbed, None, "");
    };
    let status = Some(a.status);
    match a.status {
        202 => {
            if a.header("location").is_none() {
                return Capability::unsupported(
                    "NoUploadLocation",
                    status,
                    "POST answered 202 without a Location header",
                );
            }
            match patch {
                None => Capability::supported(
                    "UploadSessionOpened",
                    status,
                    "POST opened an upload session",
                ),
                Some(p) => {
                    if let Some(c) = not_answered(p) {
                        return c;
                    }
                    let Observation::Answered(pa) = p else {
                        return unknown(Reason::NotProbed, None, "");
                    };
                    match pa.status {
                        202 | 204 => Capability::supported(
                            "ChunkAccepted",
                            Some(pa.status),
                            "POST opened a session and PATCH of a chunk was accepted",
                        ),
                        400 | 404 | 405 | 416 => Capability::unsupported(
                            "ChunkRejected",
                            Some(pa.status),
                            format!(
                                "PATCH of a chunk answered HTTP {}{}",
                                pa.status,
                                pa.codes_text()
                            ),
                        ),
                        _ => common(pa, "PATCH chunk").unwrap_or_else(|| {
                            unknown(
                                Reason::UnexpectedStatus,
                                Some(pa.status),
                                format!("PATCH of a chunk answered HTTP {}", pa.status),
                            )
                        }),
                    }
                }
            }
        }
        404 | 405 => Capability::unsupported(
            "UploadsRefused",
            status,
            format!("POST answered HTTP {}{}", a.status, a.codes_text()),
        ),
        _ => common(a, "POST upload").unwrap_or_else(|| {
            unknown(
                Reason::UnexpectedStatus,
                status,
                format!("POST upload answered HTTP {}{}", a.status, a.codes_text()),
            )
        }),
    }
}

/// Cross-repository mount verdict from `POST …/blobs/uploads/?mount=<digest>&from=<repo>`.
pub fn cross_repo_mount(obs: &Observation) -> Capability {
    if let Some(c) = not_answered(obs) {
        return c;
    }
    let Observation::Answered(a) = obs else {
        return unknown(Reason::NotProbed, None, "");
    };
    let status = Some(a.status);
    match a.status {
        201 => Capability::supported("Mounted", status, "201 Created: the blob was mounted"),
        202 => Capability::unsupported(
            "MountRefused",
            status,
            "202 Accepted: the registry refused the mount and opened an upload session instead",
        ),
        404 | 405 => Capability::unsupported(
            "UploadsRefused",
            status,
            format!("mount answered HTTP {}{}", a.status, a.codes_text()),
        ),
        _ => common(a, "mount").unwrap_or_else(|| {
            unknown(
                Reason::UnexpectedStatus,
                status,
                format!("mount answered HTTP {}{}", a.status, a.codes_text()),
            )
        }),
    }
}

/// Which delete endpoint a verdict is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteTarget {
    /// `DELETE /v2/<repo>/manifests/<digest>`
    Manifest,
    /// `DELETE /v2/<repo>/blobs/<digest>`
    Blob,
}

/// Delete verdict from a `DELETE` of a digest that cannot exist, with the `Allow`
/// header of an `OPTIONS` request for context. The `Allow` header alone proves
/// nothing: distribution 2.8 advertises DELETE even when delete is disabled.
pub fn delete(target: DeleteTarget, obs: &Observation, allow: Option<&str>) -> Capability {
    if let Some(c) = not_answered(obs) {
        return c;
    }
    let Observation::Answered(a) = obs else {
        return unknown(Reason::NotProbed, None, "");
    };
    let status = Some(a.status);
    let what = match target {
        DeleteTarget::Manifest => "manifest",
        DeleteTarget::Blob => "blob",
    };
    let allow_note = allow
        .map(|v| format!("; OPTIONS Allow: {v}"))
        .unwrap_or_default();
    if a.has_code("UNSUPPORTED") || a.status == 405 {
        return Capability::unsupported(
            "DeleteDisabled",
            status,
            format!(
                "DELETE of a {what} answered HTTP {}{}{allow_note}",
                a.status,
                a.codes_text()
            ),
        );
    }
    match a.status {
        202 | 204 => Capability::supported(
            "DeleteAccepted",
            status,
            format!("DELETE of a {what} answered HTTP {}{allow_note}", a.status),
        ),
        404 if a.has_code("NAME_UNKNOWN") => unknown(
            Reason::RepositoryNotFound,
            status,
            format!("DELETE of a {what}: the repository does not exist{allow_note}"),
        ),
        404 => Capability::supported(
            "UnknownDigestNotFound",
            status,
            format!(
                "DELETE of a {what} digest that cannot exist answered 404{}: delete is enabled{allow_note}",
                a.codes_text()
            ),
        ),
        _ => common(a, &format!("DELETE {what}")).unwrap_or_else(|| {
            unknown(
                Reason::UnexpectedStatus,
                status,
                format!(
                    "DELETE of a {what} answered HTTP {}{}{allow_note}",
                    a.status,
                    a.codes_text()
                ),
            )
        }),
    }
}

/// Delete with write probes off: no DELETE is sent, so the capability is Unknown; the `OPTIONS`
/// `Allow` header is quoted as advisory only (distribution 2.8 lists DELETE even when delete is
/// disabled).
pub fn delete_read_only(target: DeleteTarget, allow: Option<&str>) -> Capability {
    let what = match target {
        DeleteTarget::Manifest => "manifest",
        DeleteTarget::Blob => "blob",
    };
    unknown(
        Reason::WriteProbesDisabled,
        None,
        match allow {
            Some(v) => format!(
                "write probes are disabled: no DELETE of a {what} was sent; OPTIONS Allow: {v} (advisory only: registries advertise DELETE even when it is disabled)"
            ),
            None => format!("write probes are disabled: no DELETE of a {what} was sent"),
        },
    )
}

/// Score: supported among distribution version, referrers API, chunked upload,
/// cross-repo mount, and delete (manifests and blobs both).
pub fn score(
    version: &Capability,
    referrers: &Capability,
    chunked: &Capability,
    mount: &Capability,
    delete_manifests: &Capability,
    delete_blobs: &Capability,
) -> u32 {
    [
        version.is_supported(),
        referrers.is_supported(),
        chunked.is_supported(),
        mount.is_supported(),
        delete_manifests.is_supported() && delete_blobs.is_supported(),
    ]
    .iter()
    .filter(|b| **b)
    .count() as u32
}

#[cfg(test)]
mod tests;
