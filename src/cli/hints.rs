//! Hints printed under an error where its cause is likely, in the CLI's own terms (flag
//! names, not CRD fields).

/// A hint for an error or Unknown message, if one fits.
pub fn for_message(message: &str) -> Option<&'static str> {
    if message.contains("InvalidContentType") || message.contains("received corrupt message") {
        // rustls reading an HTTP answer as a TLS record.
        return Some(
            "the registry answered TLS with plain HTTP: try --plain-http (or --insecure-registry HOST)",
        );
    }
    if message.contains("AuthFailed") {
        return Some(
            "log in with `docker login HOST` (refwarden reads ~/.docker/config.json and its credential helpers), or pass --docker-config FILE / --username with --password-stdin",
        );
    }
    None
}

/// The error for an image reference that carries a URL scheme (`http://host/app:1`).
pub fn scheme_in_reference(image: &str) -> Option<String> {
    let (scheme, rest) = image.split_once("://")?;
    matches!(scheme, "http" | "https" | "oci" | "docker").then(|| {
        format!(
            "{image:?}: image references have no scheme: write {rest:?}{}",
            if scheme == "http" {
                " and add --plain-http for a plain-HTTP registry"
            } else {
                ""
            }
        )
    })
}

/// Prints the hint for `message` on stderr, if there is one.
pub fn print_for(message: &str) {
    if let Some(h) = for_message(message) {
        eprintln!("hint: {h}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_fit_their_causes() {
        assert!(
            for_message("TlsError: TLS error talking to registry 127.0.0.1:5055: received corrupt message of type InvalidContentType")
                .is_some_and(|h| h.contains("--plain-http"))
        );
        assert!(for_message("RegistryUnavailable: connection refused").is_none());
        let e = scheme_in_reference("http://127.0.0.1:5000/app:1").unwrap();
        assert!(
            e.contains("\"127.0.0.1:5000/app:1\"") && e.contains("--plain-http"),
            "{e}"
        );
        assert!(scheme_in_reference("ghcr.io/acme/app:1").is_none());
    }
}
