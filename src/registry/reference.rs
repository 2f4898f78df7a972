//! Image references (`[registry/]repository[:tag][@digest]`) following the
//! distribution reference grammar with Docker's normalisation
//! (`nginx` → `docker.io/library/nginx:latest`).

use std::fmt;

const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// Every name Docker Hub is known by: in references (`docker.io`, `index.docker.io`), its API
/// host, and `docker login`'s keys. The one table of Docker Hub aliases in the crate.
const DOCKER_HUB_ALIASES: &[&str] = &[
    DOCKER_HUB,
    "index.docker.io",
    DOCKER_HUB_API,
    "registry.hub.docker.com",
];

/// Whether `host` (any case, `:443` or not) is one of Docker Hub's names.
pub fn is_docker_hub(host: &str) -> bool {
    let h = host.to_ascii_lowercase();
    let h = h.strip_suffix(":443").unwrap_or(&h);
    DOCKER_HUB_ALIASES.contains(&h)
}

/// The name a registry host is known by in references: Docker Hub's aliases are `docker.io`;
/// other hosts lowercased, without a `:443` port.
pub fn canonical_registry(host: &str) -> String {
    if is_docker_hub(host) {
        return DOCKER_HUB.to_string();
    }
    let h = host.to_ascii_lowercase();
    h.strip_suffix(":443").unwrap_or(&h).to_string()
}

/// The host a registry's API is served from (`docker.io` → `registry-1.docker.io`).
pub fn api_host(registry: &str) -> String {
    if is_docker_hub(registry) {
        DOCKER_HUB_API.to_string()
    } else {
        registry.to_string()
    }
}
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A parsed, normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageReference {
    /// `docker.io`, `ghcr.io`, `localhost:5000`, `[::1]:5000`, …
    pub registry: String,
    /// `library/nginx`, `a/b`, …
    pub repository: String,
    /// `None` when only a digest was given.
    pub tag: Option<String>,
    /// `sha256:<hex>` / `sha512:<hex>`.
    pub digest: Option<String>,
}

/// An image reference that does not follow the grammar.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {input:?}: {reason}")]
pub struct ReferenceError {
    /// The input (truncated when very long).
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ImageReference {
    /// Parses and normalises a reference.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let err = |reason: String| ReferenceError {
            input: crate::oci::truncate(s, 300),
            reason,
        };
        if s.is_empty() {
            return Err(err("empty".into()));
        }
        if s.trim() != s || s.chars().any(char::is_whitespace) {
            return Err(err("must not contain whitespace".into()));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, digest)) => {
                crate::oci::parse_digest(digest)
                    .map_err(|e| err(format!("digest: {}", e.reason)))?;
                (rest, Some(digest.to_string()))
            }
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/');
        let (name, tag) = match rest.rfind(':') {
            Some(colon) if last_slash.is_none_or(|sl| colon > sl) => {
                (&rest[..colon], Some(&rest[colon + 1..]))
            }
            _ => (rest, None),
        };
        if let Some(tag) = tag {
            validate_tag(tag).map_err(err)?;
        }
        if name.is_empty() {
            return Err(err("missing repository name".into()));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(err(format!(
                "name must be at most {MAX_NAME_LEN} characters"
            )));
        }
        let (registry, remainder) = split_domain(name);
        if let Some(domain) = registry {
            validate_domain(domain).map_err(err)?;
        }
        if remainder.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(err("repository must be lowercase".into()));
        }
        validate_path(remainder).map_err(err)?;
        let registry = match registry {
            None | Some("index.docker.io") => DOCKER_HUB.to_string(),
            Some(d) => d.to_string(),
        };
        let repository = if registry == DOCKER_HUB && !remainder.contains('/') {
            format!("library/{remainder}")
        } else {
            remainder.to_string()
        };
        let full_len = registry.len() + 1 + repository.len();
        if full_len > MAX_NAME_LEN {
            return Err(err(format!(
                "name must be at most {MAX_NAME_LEN} characters"
            )));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(ImageReference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host to talk to: `docker.io` → `registry-1.docker.io`.
    pub fn api_registry(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The manifest reference: the digest if present, else the tag.
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// `registry/repository`, the form `spec.images` globs match.
    pub fn repository_path(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Canonical string form `registry/repository[:tag][@digest]`.
    pub fn whole(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ImageReference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Docker's rule: the first component is a domain when it contains '.' or ':'
/// or is `localhost` (or starts with '[' for IPv6 literals).
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.starts_with('[') =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn validate_tag(tag: &str) -> Result<(), String> {
    let mut chars = tag.chars();
    let first = chars.next().ok_or("tag must not be empty")?;
    if !(first.is_ascii_alphanumeric() || first == '_') {
        return Err("tag must start with a letter, digit or '_'".into());
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(format!("tag must be at most {MAX_TAG_LEN} characters"));
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err("tag may only contain letters, digits, '_', '.' and '-'".into());
    }
    Ok(())
}

fn validate_domain(domain: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let (inner, after) = rest
            .split_once(']')
            .ok_or("registry: unterminated IPv6 literal")?;
        if inner.is_empty()
            || !inner.contains(':')
            || !inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err("registry: invalid IPv6 literal".into());
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or("registry: unexpected characters after IPv6 literal")?,
            ),
        };
        (None, port)
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(domain), None),
        }
    };
    if let Some(port) = port
        && (port.is_empty()
            || !port.chars().all(|c| c.is_ascii_digit())
            || port.parse::<u16>().is_err())
    {
        return Err("registry: port must be a number between 0 and 65535".into());
    }
    if let Some(host) = host {
        if host.is_empty() {
            return Err("registry: empty host".into());
        }
        for label in host.split('.') {
            let ok = !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(format!("registry: invalid host component {label:?}"));
            }
        }
    }
    Ok(())
}

fn validate_path(path: &str) -> Result<(), String> {
    for component in path.split('/') {
        if !valid_path_component(component) {
            return Err(if component.is_empty() {
                "repository path components must not be empty".to_string()
            } else {
                format!(
                    "repository path component {component:?} must match [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*"
                )
            });
        }
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run, followed by an alphanumeric (guaranteed by the last-char check).
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn p(s: &str) -> ImageReference {
        ImageReference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn docker_hub_normalisation() {
        let r = p("nginx");
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/nginx");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(r.digest, None);
        assert_eq!(r.whole(), "docker.io/library/nginx:latest");
        assert_eq!(r.api_registry(), "registry-1.docker.io");
        assert_eq!(r.reference(), "latest");
        assert_eq!(p("docker.io/nginx"), r);
        assert_eq!(p("index.docker.io/library/nginx:latest"), r);
        assert_eq!(p("docker.io/bitnami/redis:7").repository, "bitnami/redis");
    }

    #[test]
    fn registry_with_port_and_tag() {
        let r = p("localhost:5000/a/b:tag");
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.repository, "a/b");
        assert_eq!(r.tag.as_deref(), Some("tag"));
        assert_eq!(r.api_registry(), "localhost:5000");
        assert_eq!(r.to_string(), "localhost:5000/a/b:tag");
        let r = p("localhost:5000/a");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        let r = p("localhost/a");
        assert_eq!(r.registry, "localhost");
        let r = p("[::1]:5000/a/b:1.0");
        assert_eq!(r.registry, "[::1]:5000");
        assert_eq!(r.repository, "a/b");
    }

    #[test]
    fn digest_only_and_tag_plus_digest() {
        let r = p(&format!("ghcr.io/org/app@{D}"));
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(D));
        assert_eq!(r.reference(), D);
        assert_eq!(r.whole(), format!("ghcr.io/org/app@{D}"));

        let r = p(&format!("ghcr.io/org/app:v1@{D}"));
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.reference(), D);
        assert_eq!(r.whole(), format!("ghcr.io/org/app:v1@{D}"));
    }

    #[test]
    fn separators() {
        p("a/b.c/d_e/f__g/h-i/j---k");
        for bad in ["a/b..c", "a/b___c", "a/-b", "a/b-", "a/_b", "a/b._c"] {
            assert!(ImageReference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed() {
        let e = ImageReference::parse("FOO").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid image reference "FOO": repository must be lowercase"#
        );
        let e = ImageReference::parse("ghcr.io/Org/app").unwrap_err();
        assert!(e.reason.contains("lowercase"));
        assert!(ImageReference::parse("").is_err());
        assert!(ImageReference::parse("nginx@sha256:abc").is_err());
        assert!(ImageReference::parse("nginx@md5:abc").is_err());
        assert!(ImageReference::parse(&format!("nginx@{}", D.to_uppercase())).is_err());
        assert!(ImageReference::parse("nginx:").is_err());
        assert!(ImageReference::parse("nginx:.bad").is_err());
        assert!(ImageReference::parse(&format!("nginx:{}", "a".repeat(129))).is_err());
        p(&format!("nginx:{}", "a".repeat(128)));
        assert!(ImageReference::parse("a//b").is_err());
        assert!(ImageReference::parse("/a").is_err());
        assert!(ImageReference::parse("a/").is_err());
        assert!(ImageReference::parse("host:99999/a").is_err());
        assert!(ImageReference::parse("host:/a").is_err());
        assert!(ImageReference::parse("-bad.io/a").is_err());
        assert!(ImageReference::parse("[::1/a").is_err());
        assert!(ImageReference::parse("ng inx").is_err());
        assert!(ImageReference::parse(" nginx").is_err());
        // Like docker: a lone "ghcr.io" is a Docker Hub repository name.
        assert_eq!(p("ghcr.io").whole(), "docker.io/library/ghcr.io:latest");
        let long = format!("example.com/{}", "a".repeat(250));
        let e = ImageReference::parse(&long).unwrap_err();
        assert!(e.reason.contains("255"), "{e}");
        // docker.io/library/ prefix counts too.
        let e = ImageReference::parse(&"a".repeat(250)).unwrap_err();
        assert!(e.reason.contains("255"), "{e}");
        assert!(ImageReference::parse(&"a/".repeat(1000)).is_err());
    }

    #[test]
    fn round_trip() {
        for s in [
            "docker.io/library/nginx:latest",
            "localhost:5000/a/b:tag",
            "quay.io/org/app:v1.2.3",
        ] {
            assert_eq!(p(s).whole(), s);
            assert_eq!(p(&p(s).whole()), p(s));
        }
    }
}
