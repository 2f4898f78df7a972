//! Why something could not be known: the one vocabulary of failure reasons every layer reports
//! (registry client, probe, discovery, tag resolution, verification evidence, the controller), and
//! the one table from an HTTP answer to a reason.
//!
//! Capability verdicts (`IndexReturned`, `NonConformantContentType`, …) explain a Supported or
//! Unsupported answer and stay with the probe; the reasons here say why an answer is missing,
//! including the probe's own (`TestImageNotFound`, `WriteProbesDisabled`, …) for a capability it
//! could not judge.

use serde::{Deserialize, Serialize};

/// A failure reason, serialised as its CamelCase name (conditions, Events, metric labels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Reason {
    /// The registry could not be connected to (DNS, refused, reset).
    Unreachable,
    /// No answer in time.
    Timeout,
    /// TLS failed (certificate, protocol, plain HTTP spoken back).
    TlsError,
    /// HTTP 401, or a token could not be obtained: credentials missing or rejected.
    AuthFailed,
    /// HTTP 403: authenticated, but not allowed to do this.
    InsufficientPermissions,
    /// HTTP 429.
    RateLimited,
    /// HTTP 5xx.
    RegistryError,
    /// HTTP 404 with `NAME_UNKNOWN`: the repository does not exist.
    RepositoryNotFound,
    /// The tag does not exist.
    TagNotFound,
    /// The digest being judged does not exist in the repository.
    SubjectNotFound,
    /// Any other status nothing documents.
    UnexpectedStatus,
    /// An answer that could not be interpreted.
    InvalidResponse,
    /// An answer larger than the client accepts.
    BodyTooLarge,
    /// A client configuration (profile, flags) that cannot work.
    InvalidConfig,
    /// A redirect the egress policy refused (another origin, a metadata address, a loop).
    RedirectRefused,
    /// A request built from bad input (a malformed digest).
    InvalidInput,
    /// `Link` pagination that comes back to a page already read.
    PaginationLoop,
    /// More pages than the client reads.
    TooManyPages,
    /// The referrers API was required (mode Native) and the registry has none.
    ReferrersApiUnsupported,
    /// A listed referrer (or one of its blobs) is not in the registry: deleted or collected
    /// after the listing, or an orphaned entry.
    ReferrerNotFound,
    /// The registry sent bytes whose digest is not the one asked for.
    ContentDigestMismatch,
    /// A digest algorithm the client does not check (only sha256 is), so not trusted.
    UnsupportedDigest,
    /// A signature manifest with more layers than the client reads.
    TooManyLayers,
    /// Probe: the test image (`spec.probe.testRepository`:`testTag`) does not exist.
    TestImageNotFound,
    /// Probe: the test image's digest could not be learnt (another status, no digest header and
    /// no readable manifest).
    TestImageUnresolvable,
    /// Probe: a write probe was not sent (`probe.writeProbes: false`).
    WriteProbesDisabled,
    /// Probe: the request was not made (nothing to judge it by).
    NotProbed,
    /// Probe: the `artifactType` filter cannot be judged, the referrers API verdict is Unknown.
    ReferrersApiUnknown,
    /// Profile: the spec itself is wrong (URL, interval); only a spec change helps.
    InvalidSpec,
    /// Profile: the credentials Secret does not exist.
    CredentialsNotFound,
    /// Profile: the credentials Secret has the wrong type, a missing key or bad content.
    CredentialsInvalid,
    /// Profile: the credentials could not be read (API error, credentials provider failed).
    CredentialsUnavailable,
    /// Profile: the CA bundle object or key does not exist.
    CaBundleNotFound,
    /// Profile: the CA bundle is not valid PEM.
    CaBundleInvalid,
    /// Policy: none of `spec.registryProfiles` is for the image's registry.
    NoMatchingRegistryProfile,
    /// An image's registry host no client can be built for (no profile).
    InvalidRegistry,
}

impl Reason {
    /// Every reason, in declaration order (for documentation and tests).
    pub const ALL: &'static [Reason] = &[
        Reason::Unreachable,
        Reason::Timeout,
        Reason::TlsError,
        Reason::AuthFailed,
        Reason::InsufficientPermissions,
        Reason::RateLimited,
        Reason::RegistryError,
        Reason::RepositoryNotFound,
        Reason::TagNotFound,
        Reason::SubjectNotFound,
        Reason::UnexpectedStatus,
        Reason::InvalidResponse,
        Reason::BodyTooLarge,
        Reason::InvalidConfig,
        Reason::RedirectRefused,
        Reason::InvalidInput,
        Reason::PaginationLoop,
        Reason::TooManyPages,
        Reason::ReferrersApiUnsupported,
        Reason::ReferrerNotFound,
        Reason::ContentDigestMismatch,
        Reason::UnsupportedDigest,
        Reason::TooManyLayers,
        Reason::TestImageNotFound,
        Reason::TestImageUnresolvable,
        Reason::WriteProbesDisabled,
        Reason::NotProbed,
        Reason::ReferrersApiUnknown,
        Reason::InvalidSpec,
        Reason::CredentialsNotFound,
        Reason::CredentialsInvalid,
        Reason::CredentialsUnavailable,
        Reason::CaBundleNotFound,
        Reason::CaBundleInvalid,
        Reason::NoMatchingRegistryProfile,
        Reason::InvalidRegistry,
    ];

    /// The CamelCase name (what status, Events and metrics carry).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unreachable => "Unreachable",
            Reason::Timeout => "Timeout",
            Reason::TlsError => "TlsError",
            Reason::AuthFailed => "AuthFailed",
            Reason::InsufficientPermissions => "InsufficientPermissions",
            Reason::RateLimited => "RateLimited",
            Reason::RegistryError => "RegistryError",
            Reason::RepositoryNotFound => "RepositoryNotFound",
            Reason::TagNotFound => "TagNotFound",
            Reason::SubjectNotFound => "SubjectNotFound",
            Reason::UnexpectedStatus => "UnexpectedStatus",
            Reason::InvalidResponse => "InvalidResponse",
            Reason::BodyTooLarge => "BodyTooLarge",
            Reason::InvalidConfig => "InvalidConfig",
            Reason::RedirectRefused => "RedirectRefused",
            Reason::InvalidInput => "InvalidInput",
            Reason::PaginationLoop => "PaginationLoop",
            Reason::TooManyPages => "TooManyPages",
            Reason::ReferrersApiUnsupported => "ReferrersApiUnsupported",
            Reason::ReferrerNotFound => "ReferrerNotFound",
            Reason::ContentDigestMismatch => "ContentDigestMismatch",
            Reason::UnsupportedDigest => "UnsupportedDigest",
            Reason::TooManyLayers => "TooManyLayers",
            Reason::TestImageNotFound => "TestImageNotFound",
            Reason::TestImageUnresolvable => "TestImageUnresolvable",
            Reason::WriteProbesDisabled => "WriteProbesDisabled",
            Reason::NotProbed => "NotProbed",
            Reason::ReferrersApiUnknown => "ReferrersApiUnknown",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::CredentialsNotFound => "CredentialsNotFound",
            Reason::CredentialsInvalid => "CredentialsInvalid",
            Reason::CredentialsUnavailable => "CredentialsUnavailable",
            Reason::CaBundleNotFound => "CaBundleNotFound",
            Reason::CaBundleInvalid => "CaBundleInvalid",
            Reason::NoMatchingRegistryProfile => "NoMatchingRegistryProfile",
            Reason::InvalidRegistry => "InvalidRegistry",
        }
    }

    /// The reason of a name, if it is one of these.
    pub fn parse(name: &str) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| r.as_str() == name)
    }

    /// Whether asking again later may succeed without anyone changing anything (network,
    /// rate limits, server errors): such failures are retried sooner and cached shorter.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Reason::Unreachable | Reason::Timeout | Reason::RateLimited | Reason::RegistryError
        )
    }

    /// One line on what it means (the README's reason table).
    pub fn describe(self) -> &'static str {
        match self {
            Reason::Unreachable => "the registry could not be connected to (DNS, refused, reset)",
            Reason::Timeout => "no answer in time",
            Reason::TlsError => "TLS failed (certificate, protocol, or plain HTTP spoken back)",
            Reason::AuthFailed => "HTTP 401 or no token: credentials missing or rejected",
            Reason::InsufficientPermissions => {
                "HTTP 403: authenticated, but not allowed to do this"
            }
            Reason::RateLimited => "HTTP 429",
            Reason::RegistryError => "HTTP 5xx",
            Reason::RepositoryNotFound => "HTTP 404 NAME_UNKNOWN: the repository does not exist",
            Reason::TagNotFound => "the tag does not exist",
            Reason::SubjectNotFound => "the digest being judged does not exist in the repository",
            Reason::UnexpectedStatus => "an HTTP status nothing documents for this request",
            Reason::InvalidResponse => "an answer that could not be interpreted",
            Reason::BodyTooLarge => "an answer larger than the client accepts",
            Reason::InvalidConfig => "a client configuration (profile, flags) that cannot work",
            Reason::RedirectRefused => {
                "a redirect the egress policy refused (other origin, metadata address, loop)"
            }
            Reason::InvalidInput => "a request built from bad input (a malformed digest)",
            Reason::PaginationLoop => "`Link` pagination came back to a page already read",
            Reason::TooManyPages => "more pages than the client reads",
            Reason::ReferrersApiUnsupported => {
                "mode Native was required and the registry has no referrers API"
            }
            Reason::ReferrerNotFound => {
                "a listed referrer or one of its blobs is not in the registry (deleted, collected, orphaned)"
            }
            Reason::ContentDigestMismatch => {
                "the registry sent bytes whose digest is not the one asked for"
            }
            Reason::UnsupportedDigest => {
                "a digest algorithm not checked (only sha256 is), so not trusted"
            }
            Reason::TooManyLayers => "a signature manifest with more layers than the client reads",
            Reason::TestImageNotFound => {
                "probe: the test image (`testRepository`:`testTag`) does not exist"
            }
            Reason::TestImageUnresolvable => "probe: the test image's digest could not be learnt",
            Reason::WriteProbesDisabled => {
                "probe: a write probe was not sent (`probe.writeProbes: false`)"
            }
            Reason::NotProbed => "probe: the request was not made",
            Reason::ReferrersApiUnknown => {
                "probe: the `artifactType` filter cannot be judged, the referrers API is Unknown"
            }
            Reason::InvalidSpec => {
                "profile: the spec itself is wrong (URL, interval); only a spec change helps"
            }
            Reason::CredentialsNotFound => "profile: the credentials Secret does not exist",
            Reason::CredentialsInvalid => {
                "profile: the credentials Secret has the wrong type, a missing key or bad content"
            }
            Reason::CredentialsUnavailable => {
                "profile: the credentials could not be read (API error, credentials provider failed)"
            }
            Reason::CaBundleNotFound => "profile: the CA bundle object or key does not exist",
            Reason::CaBundleInvalid => "profile: the CA bundle is not valid PEM",
            Reason::NoMatchingRegistryProfile => {
                "policy: none of `spec.registryProfiles` is for the image's registry"
            }
            Reason::InvalidRegistry => {
                "an image's registry host no client can be built for (no profile)"
            }
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Reason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for Reason {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// Why a ReferrerPolicy counts an image Unknown (`status.unknown[].reason`, the OpenReports
/// result, the CLI's reports): a coarser form of [`Reason`] to alert on, plus the two a pod's
/// own image name causes. Never a violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum UnknownReason {
    /// The registry could not answer (network, TLS, rate limits, server errors, paging, …).
    RegistryUnavailable,
    /// The registry refused the credentials (401) or the access (403).
    AuthFailed,
    /// The image's digest or tag is not in the registry.
    ImageNotFound,
    /// Mode Native was required and the registry has no referrers API.
    ReferrersApiUnsupported,
    /// The registry's answer could not be interpreted or was too large.
    InvalidRegistryResponse,
    /// The RegistryProfile (or a flag) that reads the image cannot work.
    RegistryProfileInvalid,
    /// The pod runs an image without a repository digest, or only a tag is known and it was not
    /// resolved.
    DigestNotResolvable,
    /// The pod's image name is not a valid reference.
    InvalidImageReference,
}

impl UnknownReason {
    /// Every reason, in declaration order (for documentation and tests).
    pub const ALL: &'static [UnknownReason] = &[
        UnknownReason::RegistryUnavailable,
        UnknownReason::AuthFailed,
        UnknownReason::ImageNotFound,
        UnknownReason::ReferrersApiUnsupported,
        UnknownReason::InvalidRegistryResponse,
        UnknownReason::RegistryProfileInvalid,
        UnknownReason::DigestNotResolvable,
        UnknownReason::InvalidImageReference,
    ];

    /// The policy's reason for a failure.
    pub fn of(failure: Reason) -> Self {
        match failure {
            Reason::AuthFailed | Reason::InsufficientPermissions => UnknownReason::AuthFailed,
            Reason::SubjectNotFound | Reason::TagNotFound => UnknownReason::ImageNotFound,
            Reason::ReferrersApiUnsupported => UnknownReason::ReferrersApiUnsupported,
            Reason::InvalidResponse | Reason::BodyTooLarge => {
                UnknownReason::InvalidRegistryResponse
            }
            Reason::InvalidConfig => UnknownReason::RegistryProfileInvalid,
            _ => UnknownReason::RegistryUnavailable,
        }
    }

    /// The CamelCase name.
    pub fn as_str(self) -> &'static str {
        match self {
            UnknownReason::RegistryUnavailable => "RegistryUnavailable",
            UnknownReason::AuthFailed => "AuthFailed",
            UnknownReason::ImageNotFound => "ImageNotFound",
            UnknownReason::ReferrersApiUnsupported => "ReferrersApiUnsupported",
            UnknownReason::InvalidRegistryResponse => "InvalidRegistryResponse",
            UnknownReason::RegistryProfileInvalid => "RegistryProfileInvalid",
            UnknownReason::DigestNotResolvable => "DigestNotResolvable",
            UnknownReason::InvalidImageReference => "InvalidImageReference",
        }
    }

    /// The reason of a name, if it is one of these.
    pub fn parse(name: &str) -> Option<UnknownReason> {
        UnknownReason::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == name)
    }

    /// Whether only a change of the pod can help (asking the registry again cannot): such
    /// images do not make a policy retry sooner.
    pub fn is_permanent(self) -> bool {
        matches!(
            self,
            UnknownReason::DigestNotResolvable | UnknownReason::InvalidImageReference
        )
    }

    /// One line on what it means (the README's table).
    pub fn describe(self) -> &'static str {
        match self {
            UnknownReason::RegistryUnavailable => {
                "the registry could not answer (network, TLS, rate limit, 5xx, paging)"
            }
            UnknownReason::AuthFailed => {
                "the registry refused the credentials (401) or the access (403)"
            }
            UnknownReason::ImageNotFound => "the image's digest or tag is not in the registry",
            UnknownReason::ReferrersApiUnsupported => {
                "mode Native was required and the registry has no referrers API"
            }
            UnknownReason::InvalidRegistryResponse => {
                "the registry's answer could not be interpreted or was too large"
            }
            UnknownReason::RegistryProfileInvalid => {
                "the RegistryProfile (or flag) that reads the image cannot work"
            }
            UnknownReason::DigestNotResolvable => {
                "no repository digest is known for the image (a locally loaded image, an unresolved tag)"
            }
            UnknownReason::InvalidImageReference => "the pod's image name is not a valid reference",
        }
    }
}

impl std::fmt::Display for UnknownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for UnknownReason {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for UnknownReason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// What an HTTP answer that is not a success means, the same for every request: `None` for
/// 1xx–3xx (not a failure), else the reason. `error_codes` are the OCI error codes of the body
/// (`NAME_UNKNOWN`, `DENIED`, …); `challenge` is the `WWW-Authenticate` header of a 401.
///
/// A 401 is `AuthFailed` (credentials missing or rejected) unless the registry says the
/// credentials were fine but too weak: `error="insufficient_scope"` (RFC 6750 §3.1; distribution
/// answers a read-only token's push that way) or `DENIED` — then, like a 403,
/// `InsufficientPermissions`.
pub fn classify(status: u16, error_codes: &[String], challenge: Option<&str>) -> Option<Reason> {
    let insufficient_scope = challenge.is_some_and(|c| {
        let c = c.to_ascii_lowercase().replace(' ', "");
        c.contains("error=\"insufficient_scope\"") || c.contains("error=insufficient_scope")
    });
    let denied = error_codes.iter().any(|c| c.eq_ignore_ascii_case("DENIED"));
    Some(match status {
        100..=399 => return None,
        401 if insufficient_scope || denied => Reason::InsufficientPermissions,
        401 => Reason::AuthFailed,
        403 => Reason::InsufficientPermissions,
        404 if error_codes.iter().any(|c| c == "NAME_UNKNOWN") => Reason::RepositoryNotFound,
        429 => Reason::RateLimited,
        500..=599 => Reason::RegistryError,
        _ => Reason::UnexpectedStatus,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(*r));
            assert!(seen.insert(r.as_str()), "{r} twice");
            assert_eq!(
                serde_json::to_value(r).ok(),
                Some(serde_json::json!(r.as_str()))
            );
        }
        assert_eq!(Reason::parse("Nope"), None);
    }

    /// The README table under `heading` lists exactly `(name, meaning)` of `reasons`, in order.
    fn assert_readme_table(
        heading: &str,
        reasons: impl Iterator<Item = (&'static str, &'static str)>,
    ) {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        let start = readme.find(heading).expect("README section");
        let section = &readme[start..];
        let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
        let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| `")).collect();
        let want: Vec<String> = reasons
            .map(|(name, meaning)| format!("| `{name}` | {meaning} |"))
            .collect();
        assert_eq!(
            rows,
            want,
            "README.md's {heading:?} table is stale; expected:\n{}",
            want.join("\n")
        );
    }

    /// The README's table lists exactly these reasons with these meanings.
    #[test]
    fn the_readme_table_is_this_one() {
        let rows = Reason::ALL.iter().map(|r| (r.as_str(), r.describe()));
        assert_readme_table("## Failure reasons", rows);
    }

    /// The README's table of Unknown image reasons is this one.
    #[test]
    fn the_readme_unknown_table_is_this_one() {
        let rows = UnknownReason::ALL
            .iter()
            .map(|r| (r.as_str(), r.describe()));
        assert_readme_table("## Why an image is Unknown", rows);
        for r in UnknownReason::ALL {
            assert_eq!(UnknownReason::parse(r.as_str()), Some(*r));
        }
    }

    #[test]
    fn one_http_table() {
        let none: Vec<String> = vec![];
        assert_eq!(classify(200, &none, None), None);
        assert_eq!(classify(307, &none, None), None);
        assert_eq!(classify(401, &none, None), Some(Reason::AuthFailed));
        let bearer =
            r#"Bearer realm="https://auth.example/token",service="r",scope="repository:a:push""#;
        assert_eq!(classify(401, &none, Some(bearer)), Some(Reason::AuthFailed));
        let weak = r#"Bearer realm="https://auth.example/token",error="insufficient_scope",scope="repository:a:push""#;
        assert_eq!(
            classify(401, &none, Some(weak)),
            Some(Reason::InsufficientPermissions)
        );
        assert_eq!(
            classify(401, &["DENIED".to_string()], None),
            Some(Reason::InsufficientPermissions)
        );
        assert_eq!(
            classify(403, &none, None),
            Some(Reason::InsufficientPermissions)
        );
        assert_eq!(
            classify(404, &["NAME_UNKNOWN".to_string()], None),
            Some(Reason::RepositoryNotFound)
        );
        assert_eq!(classify(404, &none, None), Some(Reason::UnexpectedStatus));
        assert_eq!(classify(429, &none, None), Some(Reason::RateLimited));
        assert_eq!(classify(503, &none, None), Some(Reason::RegistryError));
        assert!(Reason::RateLimited.is_transient());
        assert!(!Reason::AuthFailed.is_transient());
    }
}
