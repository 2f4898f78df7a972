//! Where the registry client may go (pure): one policy for redirects, `Link` next pages,
//! upload `Location`s and token realms, so that a hostile registry cannot send refwarden's
//! credentials, or refwarden itself, somewhere else (`docs/security.md`).
//!
//! - Follow-up URLs a registry names (`Link`, `Location`) must be on the registry's own origin.
//! - Redirects are followed on the registry's origin with credentials; to another host only for
//!   manifest and blob reads (CDNs), always without credentials; any other redirect is handed
//!   back to the caller unfollowed (a referrers request redirected elsewhere means "no usable
//!   API here").
//! - Never to cloud metadata or link-local addresses unless the registry itself is there.
//! - Never from `https` down to `http`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::Method;
use url::Url;

use super::metrics::Endpoint;

/// Redirect hops followed per request at most.
pub const MAX_REDIRECTS: usize = 5;

/// Whether two URLs share scheme, host and port.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Host names of cloud metadata services.
const METADATA_HOSTS: [&str; 3] = [
    "metadata.google.internal",
    "metadata.goog",
    "metadata.azure.com",
];

/// Whether an IP address is link-local or a cloud metadata address: `169.254.0.0/16`
/// (AWS/GCP/Azure `169.254.169.254`), `fe80::/10`, AWS's IPv6 `fd00:ec2::254`, Alibaba's
/// `100.100.100.200`.
pub fn is_metadata_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local() || v4 == Ipv4Addr::new(100, 100, 100, 200),
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_metadata_ip(IpAddr::V4(v4)))
        }
    }
}

/// Whether a URL points at a metadata or link-local address (by IP literal or by a metadata
/// service's host name). Names that resolve there are refused at connect time by
/// [`super::client`]'s resolver.
pub fn is_metadata_url(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => is_metadata_ip(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_metadata_ip(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            METADATA_HOSTS.contains(&d.as_str())
        }
        None => false,
    }
}

/// What to do with a redirect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redirect {
    /// Follow it; send the registry's credentials only when `credentials`.
    Follow {
        /// Whether `Authorization` may be sent to the target.
        credentials: bool,
    },
    /// Do not follow: hand the 3xx answer to the caller.
    Return,
    /// Refuse with this reason (an error, never followed).
    Refuse(&'static str),
}

/// The decision for a redirect of a `method` request to `endpoint`, from `from` to `to`, on the
/// registry at `registry`.
pub fn redirect(
    endpoint: Endpoint,
    method: &Method,
    registry: &Url,
    from: &Url,
    to: &Url,
) -> Redirect {
    if from.scheme() == "https" && to.scheme() == "http" {
        return Redirect::Refuse("redirect from https to http refused");
    }
    if !matches!(to.scheme(), "https" | "http") {
        return Redirect::Refuse("redirect to a URL that is not http(s) refused");
    }
    if !to.username().is_empty() || to.password().is_some() {
        return Redirect::Refuse("redirect to a URL with credentials refused");
    }
    if is_metadata_url(to) && !is_metadata_url(registry) {
        return Redirect::Refuse("redirect to a link-local or cloud metadata address refused");
    }
    if same_origin(registry, to) {
        return Redirect::Follow { credentials: true };
    }
    let reads_content = matches!(
        endpoint,
        Endpoint::ManifestGet | Endpoint::ManifestHead | Endpoint::BlobGet | Endpoint::BlobHead
    ) && (*method == Method::GET || *method == Method::HEAD);
    if reads_content {
        Redirect::Follow { credentials: false }
    } else {
        Redirect::Return
    }
}

/// Largest `WWW-Authenticate` or `Link` header value parsed (a longer one is ignored).
pub const MAX_PARSED_HEADER: usize = 8 * 1024;
/// Largest token endpoint answer read.
pub const MAX_TOKEN_RESPONSE: usize = 64 * 1024;
/// Largest token accepted.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Checks a token realm a registry's `401` named: `https` unless the registry itself is plain
/// HTTP (`plainHttp: true`), no user info, not a link-local or metadata address unless the
/// registry itself is there.
pub fn token_realm(registry: &Url, realm: &Url) -> Result<(), &'static str> {
    match (realm.scheme(), registry.scheme()) {
        ("https", _) | ("http", "http") => {}
        ("http", _) => {
            return Err(
                "token realm uses http:// for an https registry (allowed only with plainHttp)",
            );
        }
        _ => return Err("token realm must be an http(s) URL"),
    }
    if !realm.username().is_empty() || realm.password().is_some() {
        return Err("token realm must not contain credentials");
    }
    if is_metadata_url(realm) && !is_metadata_url(registry) {
        return Err("token realm on a link-local or cloud metadata address refused");
    }
    Ok(())
}

/// Checks a follow-up URL the registry named (`Link` next page, upload `Location`): it must be
/// on the registry's own origin.
pub fn follow_up(registry: &Url, to: &Url) -> Result<(), &'static str> {
    if !to.username().is_empty() || to.password().is_some() {
        return Err("absolute URL must not contain credentials");
    }
    if !same_origin(registry, to) {
        return Err("URL is not on the registry's origin");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    #[test]
    fn same_origin_compares_scheme_host_and_port() {
        assert!(same_origin(&u("https://r.io"), &u("https://R.io:443/v2/x")));
        assert!(!same_origin(&u("https://r.io"), &u("http://r.io")));
        assert!(!same_origin(&u("https://r.io"), &u("https://r.io:5000")));
        assert!(!same_origin(&u("https://r.io"), &u("https://cdn.r.io")));
    }

    #[test]
    fn metadata_and_link_local_addresses() {
        for bad in [
            "http://169.254.169.254/latest/meta-data",
            "http://169.254.0.1",
            "http://[fd00:ec2::254]/",
            "http://100.100.100.200/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://METADATA.GOOGLE.INTERNAL./",
            "http://[fe80::1]/",
            "http://[::ffff:169.254.169.254]/",
        ] {
            assert!(is_metadata_url(&u(bad)), "{bad}");
        }
        for ok in [
            "http://127.0.0.1:5000",
            "https://ghcr.io",
            "http://10.0.0.1",
            "http://100.100.100.201",
        ] {
            assert!(!is_metadata_url(&u(ok)), "{ok}");
        }
    }

    #[test]
    fn redirect_policy() {
        let reg = u("https://registry.example");
        let here = u("https://registry.example/v2/app/referrers/sha256:x");
        let get = Method::GET;
        // `Refuse("")` stands for a refusal with any reason.
        let refuse = Redirect::Refuse("");
        let follow = |credentials| Redirect::Follow { credentials };
        for (endpoint, method, to, want) in [
            (
                Endpoint::Referrers,
                &get,
                "https://registry.example/other",
                follow(true),
            ),
            // GHCR's 303 of the referrers API to github.com: handed back, not followed.
            (
                Endpoint::Referrers,
                &get,
                "https://github.com/-/v2/x",
                Redirect::Return,
            ),
            (
                Endpoint::TagList,
                &get,
                "https://elsewhere/x",
                Redirect::Return,
            ),
            // Blob and manifest reads go to CDNs, without credentials.
            (
                Endpoint::BlobGet,
                &get,
                "https://cdn.example/blob",
                follow(false),
            ),
            (
                Endpoint::ManifestGet,
                &get,
                "https://cdn.example/m",
                follow(false),
            ),
            (
                Endpoint::ManifestPut,
                &Method::PUT,
                "https://cdn.example/m",
                Redirect::Return,
            ),
            (
                Endpoint::BlobGet,
                &get,
                "http://169.254.169.254/",
                refuse.clone(),
            ),
            (
                Endpoint::BlobGet,
                &get,
                "http://registry.example/x",
                refuse.clone(),
            ),
            (
                Endpoint::BlobGet,
                &get,
                "https://u:p@cdn.example/x",
                refuse.clone(),
            ),
        ] {
            let got = redirect(endpoint, method, &reg, &here, &u(to));
            match want {
                Redirect::Refuse(_) => assert!(matches!(got, Redirect::Refuse(_)), "{to}: {got:?}"),
                want => assert_eq!(got, want, "{to}"),
            }
        }
        // A registry that itself lives on a link-local address may redirect there.
        let local = u("http://169.254.10.10:5000");
        assert_eq!(
            redirect(
                Endpoint::BlobGet,
                &get,
                &local,
                &local,
                &u("http://169.254.10.11:5000/b")
            ),
            Redirect::Follow { credentials: false }
        );
    }

    #[test]
    fn token_realms() {
        let https = u("https://r.example");
        let plain = u("http://127.0.0.1:5000");
        assert!(token_realm(&https, &u("https://auth.example/token")).is_ok());
        assert!(token_realm(&https, &u("http://auth.example/token")).is_err());
        assert!(token_realm(&plain, &u("http://127.0.0.1:5001/token")).is_ok());
        assert!(token_realm(&https, &u("https://u:p@auth.example/token")).is_err());
        assert!(token_realm(&https, &u("ftp://auth.example/token")).is_err());
        assert!(token_realm(&plain, &u("http://169.254.169.254/token")).is_err());
        assert!(token_realm(&plain, &u("http://metadata.google.internal/token")).is_err());
    }

    #[test]
    fn follow_ups_stay_on_the_origin() {
        let reg = u("https://r.example");
        assert!(follow_up(&reg, &u("https://r.example/v2/a?n=1")).is_ok());
        assert!(follow_up(&reg, &u("https://other.example/v2/a")).is_err());
        assert!(follow_up(&reg, &u("https://u:p@r.example/v2/a")).is_err());
    }
}
