//! `Link` pagination (pure), one helper for the referrers and the tag listings: RFC 8288
//! parsing of the `rel="next"` target (resolved against the request URL), the tag list's
//! `last=` continuation, and the guard that stops a listing at a loop or a page limit.
//!
//! Never panics on garbage: anything unparsable is simply "no next link".

use std::collections::HashSet;

use http::HeaderMap;
use http::header::LINK;
use url::Url;

use crate::registry::egress::MAX_PARSED_HEADER;

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
        let params_end = unquoted(params_and_rest, ',')
            .next()
            .unwrap_or(params_and_rest.len());
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
    for end in unquoted(params, ';').chain([params.len()]) {
        let p = params[start..end].trim();
        if !p.is_empty() {
            out.push(p);
        }
        start = end + 1;
    }
    out
}

/// The byte positions of `sep` in `s` outside quoted strings (`"…"`, with `\\` escapes).
fn unquoted(s: &str, sep: char) -> impl Iterator<Item = usize> + '_ {
    let mut in_quotes = false;
    let mut escaped = false;
    s.char_indices().filter_map(move |(i, c)| {
        if escaped {
            escaped = false;
            return None;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            c if c == sep && !in_quotes => return Some(i),
            _ => {}
        }
        None
    })
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

/// The `rel="next"` page of an answer: its `Link` headers short enough to parse
/// ([`MAX_PARSED_HEADER`]), resolved against `url` (where the answer came from).
pub fn next_page(headers: &HeaderMap, url: &Url) -> Option<Url> {
    next_link(
        headers
            .get_all(LINK)
            .iter()
            .filter(|v| v.len() <= MAX_PARSED_HEADER)
            .filter_map(|v| v.to_str().ok()),
        url,
    )
}

/// The next page of a tag list: its `Link`, else (a full page of `page_size` tags without
/// one may still have a successor) `?n=<page_size>&last=<last tag>` on `url`.
pub fn next_tag_page(
    headers: &HeaderMap,
    url: &Url,
    page_size: u32,
    tags_on_page: usize,
    last_tag: Option<&str>,
) -> Option<Url> {
    if let Some(next) = next_page(headers, url) {
        return Some(next);
    }
    if tags_on_page < page_size as usize {
        return None;
    }
    last_tag.map(|last| {
        let mut u = url.clone();
        u.query_pairs_mut()
            .clear()
            .append_pair("n", &page_size.to_string())
            .append_pair("last", last);
        u
    })
}

/// What a listing does after a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageStep {
    /// Read this page next.
    Follow(Url),
    /// No next page: the listing is complete.
    Complete,
    /// The next page was read already: the pagination loops (the listing is incomplete).
    Loop(Url),
    /// `pages` pages were read, the limit: the listing is incomplete.
    Limit { pages: usize },
}

/// Walks a `Link`-paginated listing: counts pages, remembers the URLs followed.
#[derive(Clone, Debug)]
pub struct LinkPagination {
    visited: HashSet<String>,
    pages: usize,
    max_pages: usize,
}

impl LinkPagination {
    /// After the first page of a listing of at most `max_pages` pages.
    pub fn new(max_pages: usize) -> Self {
        LinkPagination {
            visited: HashSet::new(),
            pages: 1,
            max_pages,
        }
    }

    /// Counts `url` (where the first page came from) as read, so a link back to it is a loop.
    pub fn first_page_at(mut self, url: &Url) -> Self {
        self.visited.insert(url.to_string());
        self
    }

    /// The step after a page whose next page is `next`.
    pub fn step(&mut self, next: Option<Url>) -> PageStep {
        let Some(url) = next else {
            return PageStep::Complete;
        };
        if !self.visited.insert(url.to_string()) {
            return PageStep::Loop(url);
        }
        if self.pages >= self.max_pages {
            return PageStep::Limit { pages: self.pages };
        }
        self.pages += 1;
        PageStep::Follow(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://reg.example:5000/v2/a/b/referrers/sha256:1?artifactType=x").unwrap()
    }

    /// The `rel="next"` target of one `Link` header (which must have one).
    fn next(header: &str) -> Url {
        next_link([header], &base()).expect(header)
    }

    #[test]
    fn quoted_and_unquoted_rel() {
        assert_eq!(
            next("</v2/a/b/referrers/sha256:1?n=2>; rel=\"next\"").as_str(),
            "https://reg.example:5000/v2/a/b/referrers/sha256:1?n=2"
        );
        let n = next("</v2/x?last=b>; rel=next");
        assert_eq!((n.path(), n.query()), ("/v2/x", Some("last=b")));
        assert_eq!(
            next("<https://reg.example:5000/v2/y>;REL=\"Next\"").path(),
            "/v2/y"
        );
    }

    #[test]
    fn several_links_and_rel_lists() {
        let h = "</v2/prev>; rel=\"prev\", </v2/next?c=1>; title=\"a, b; c\"; rel=\"next last\"";
        assert_eq!(next(h).path(), "/v2/next");
        // Second header holds it.
        let n = next_link(["</v2/p>; rel=prev", "</v2/n>; rel=next"], &base()).unwrap();
        assert_eq!(n.path(), "/v2/n");
        let all = parse(h);
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].rels, vec!["next", "last"]);
    }

    #[test]
    fn relative_urls_resolve_against_request() {
        let n = next("<?_cursor=5>; rel=next");
        assert_eq!(
            (n.path(), n.query()),
            ("/v2/a/b/referrers/sha256:1", Some("_cursor=5"))
        );
        assert_eq!(next("<page2>; rel=next").path(), "/v2/a/b/referrers/page2");
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

    #[test]
    fn pagination_follows_then_stops_at_a_loop_or_the_limit() {
        let u = |p: &str| Url::parse(&format!("https://r.example/v2/a/{p}")).unwrap();
        let mut p = LinkPagination::new(3).first_page_at(&u("1"));
        assert_eq!(p.step(Some(u("2"))), PageStep::Follow(u("2")));
        assert_eq!(p.step(Some(u("1"))), PageStep::Loop(u("1")));
        assert_eq!(p.step(Some(u("3"))), PageStep::Follow(u("3")));
        assert_eq!(p.step(Some(u("4"))), PageStep::Limit { pages: 3 });
        assert_eq!(p.step(None), PageStep::Complete);
        // Without `first_page_at`, a link back to the first page is followed once.
        let mut p = LinkPagination::new(5);
        assert_eq!(p.step(Some(u("1"))), PageStep::Follow(u("1")));
        assert_eq!(p.step(Some(u("1"))), PageStep::Loop(u("1")));
    }

    #[test]
    fn tag_pages_continue_with_last_when_full_and_unlinked() {
        let url = Url::parse("https://r.example/v2/a/tags/list?n=2").unwrap();
        let none = HeaderMap::new();
        let next = next_tag_page(&none, &url, 2, 2, Some("b")).unwrap();
        assert_eq!(next.query(), Some("n=2&last=b"));
        assert_eq!(next_tag_page(&none, &url, 2, 1, Some("a")), None);
        assert_eq!(next_tag_page(&none, &url, 2, 2, None), None);
        let mut linked = HeaderMap::new();
        linked.insert(
            LINK,
            "</v2/a/tags/list?n=2&last=z>; rel=next".parse().unwrap(),
        );
        let next = next_tag_page(&linked, &url, 2, 1, Some("a")).unwrap();
        assert_eq!(next.query(), Some("n=2&last=z"));
        linked.insert(
            LINK,
            format!("</v2/x>; rel=next; t=\"{}\"", "a".repeat(MAX_PARSED_HEADER))
                .parse()
                .unwrap(),
        );
        assert_eq!(next_page(&linked, &url), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics(s in ".{0,200}") {
            let _ = next_link([s.as_str()], &base());
        }
    }
}
