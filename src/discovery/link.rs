//! RFC 8288 `Link` header parsing (pure): finds the `rel="next"` target used
//! by referrers and tag-list pagination, resolved against the request URL.
//!
//! Never panics on garbage: anything unparsable is simply "no next link".

use url::Url;

/// One link value: target (as written) and its `rel` relation types (lowercase).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkValue {
    /// The URI-reference between `<` and `>`.
    pub target: String,
    /// Relation types from the `rel` parameter (space-separated list), lowercase.
    pub rels: Vec<String>,
}

/// Parses one `Link` header value into its link values. Malformed entries are skipped.
pub fn parse(header: &str) -> Vec<LinkValue> {
    let mut out = Vec::new();
    let mut rest = header;
    // Bounded: each iteration consumes at least one character.
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('>') else {
            break;
        };
        let target = after[..end].trim().to_string();
        let mut params_and_rest = &after[end + 1..];
        // Parameters run until the next ',' that is not inside quotes.
        let mut params_end = params_and_rest.len();
        let mut in_quotes = false;
        let mut escaped = false;
        for (i, c) in params_and_rest.char_indices() {
            if escaped {
                escaped = false;
                continue;
            }
            match c {
                '\\' if in_quotes => escaped = true,
                '"' => in_quotes = !in_quotes,
                ',' if !in_quotes => {
                    params_end = i;
                    break;
                }
                _ => {}
            }
        }
        let params = &params_and_rest[..params_end];
        params_and_rest = params_and_rest.get(params_end + 1..).unwrap_or("");
        let mut rels = Vec::new();
        for p in split_params(params) {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            if !k.trim().eq_ignore_ascii_case("rel") {
                continue;
            }
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            rels.extend(v.split_whitespace().map(|r| r.to_ascii_lowercase()));
            // Only the first rel parameter counts (RFC 8288 §3.3).
            break;
        }
        if !target.is_empty() || !rels.is_empty() {
            out.push(LinkValue { target, rels });
        }
        rest = params_and_rest;
    }
    out
}

/// Splits `; a=b; c="d;e"` into `a=b`, `c="d;e"` (quotes respected).
fn split_params(params: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in params.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            ';' if !in_quotes => {
                let p = params[start..i].trim();
                if !p.is_empty() {
                    out.push(p);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    let p = params[start..].trim();
    if !p.is_empty() {
        out.push(p);
    }
    out
}

/// The `rel="next"` target of any of `headers` (several `Link` headers may be
/// present), resolved against `base` (the URL of the request that got the answer).
pub fn next_link<'a>(headers: impl IntoIterator<Item = &'a str>, base: &Url) -> Option<Url> {
    for h in headers {
        for link in parse(h) {
            if link.rels.iter().any(|r| r == "next")
                && !link.target.is_empty()
                && let Ok(u) = base.join(&link.target)
            {
                return Some(u);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://reg.example:5000/v2/a/b/referrers/sha256:1?artifactType=x").unwrap()
    }

    #[test]
    fn quoted_and_unquoted_rel() {
        let n = next_link(["</v2/a/b/referrers/sha256:1?n=2>; rel=\"next\""], &base()).unwrap();
        assert_eq!(
            n.as_str(),
            "https://reg.example:5000/v2/a/b/referrers/sha256:1?n=2"
        );
        let n = next_link(["</v2/x?last=b>; rel=next"], &base()).unwrap();
        assert_eq!(n.path(), "/v2/x");
        assert_eq!(n.query(), Some("last=b"));
        let n = next_link(["<https://reg.example:5000/v2/y>;REL=\"Next\""], &base()).unwrap();
        assert_eq!(n.path(), "/v2/y");
    }

    #[test]
    fn several_links_and_rel_lists() {
        let h = "</v2/prev>; rel=\"prev\", </v2/next?c=1>; title=\"a, b; c\"; rel=\"next last\"";
        let n = next_link([h], &base()).unwrap();
        assert_eq!(n.path(), "/v2/next");
        // Second header holds it.
        let n = next_link(["</v2/p>; rel=prev", "</v2/n>; rel=next"], &base()).unwrap();
        assert_eq!(n.path(), "/v2/n");
        let all = parse(h);
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].rels, vec!["next", "last"]);
    }

    #[test]
    fn relative_urls_resolve_against_request() {
        let n = next_link(["<?_cursor=5>; rel=next"], &base()).unwrap();
        assert_eq!(n.path(), "/v2/a/b/referrers/sha256:1");
        assert_eq!(n.query(), Some("_cursor=5"));
        let n = next_link(["<page2>; rel=next"], &base()).unwrap();
        assert_eq!(n.path(), "/v2/a/b/referrers/page2");
    }

    #[test]
    fn garbage_never_panics() {
        for g in [
            "",
            "<",
            ">",
            "<>",
            "<>; rel=next",
            "no brackets; rel=next",
            "</v2/x>; rel",
            "</v2/x>; rel=\"next",
            "</v2/x; rel=next",
            "<\u{1F600}>; rel=\"next\"; ;;; ,,,",
            ",,,<<<>>>;;;\"\"\"",
            "</v2/x>; rel=\"prev\"",
        ] {
            let _ = parse(g);
            let n = next_link([g], &base());
            if g == "</v2/x>; rel=\"prev\"" || g.is_empty() {
                assert!(n.is_none());
            }
        }
        assert!(next_link(["<>; rel=next"], &base()).is_none());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics(s in ".{0,200}") {
            let _ = next_link([s.as_str()], &base());
        }
    }
}
