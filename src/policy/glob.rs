//! Repository globs (`ghcr.io/acme/**`): `*` and `?` stay within a path segment,
//! `**` spans segments. Built on `globset` with a literal separator.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// A compiled include/exclude filter.
#[derive(Clone, Debug)]
pub struct RepoFilter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

fn build(patterns: &[String], field: &str) -> Result<Option<GlobSet>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    for (i, p) in patterns.iter().enumerate() {
        if p.trim().is_empty() {
            return Err(format!("{field}[{i}]: empty glob"));
        }
        if p != "**" && !p.contains('/') {
            return Err(format!(
                "{field}[{i}]: {p:?} never matches: globs match the normalised repository \
                 `registry/path` (e.g. docker.io/library/nginx), so they need a `/` (or are `**`)"
            ));
        }
        if p.contains("***") {
            return Err(format!("{field}[{i}]: {p:?} is not a valid glob (`***`)"));
        }
        let glob = GlobBuilder::new(p)
            .literal_separator(true)
            .backslash_escape(false)
            .build()
            .map_err(|e| format!("{field}[{i}]: {p:?} is not a valid glob: {e}"))?;
        set.add(glob);
    }
    set.build()
        .map(Some)
        .map_err(|e| format!("{field}: cannot compile globs: {e}"))
}

impl RepoFilter {
    /// Compiles `spec.images`. Errors name the field and index.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, String> {
        Ok(Self {
            include: build(include, "spec.images.include")?,
            exclude: build(exclude, "spec.images.exclude")?,
        })
    }

    /// [`RepoFilter::matches`], plus the indexes of the include globs that match.
    pub fn check(&self, repository: &str) -> (bool, Vec<usize>) {
        let includes = self.matching_includes(repository);
        let included = self.include.is_none() || !includes.is_empty();
        (included && !self.excluded(repository), includes)
    }

    /// Number of include globs.
    pub fn include_len(&self) -> usize {
        self.include.as_ref().map_or(0, GlobSet::len)
    }

    fn excluded(&self, repository: &str) -> bool {
        self.exclude
            .as_ref()
            .is_some_and(|set| set.is_match(repository))
    }

    /// Indexes of the include globs that match `repository` (empty without include globs).
    pub fn matching_includes(&self, repository: &str) -> Vec<usize> {
        self.include
            .as_ref()
            .map(|set| set.matches(repository))
            .unwrap_or_default()
    }

    /// Whether a normalised repository (`docker.io/library/nginx`) is selected.
    pub fn matches(&self, repository: &str) -> bool {
        let included = self
            .include
            .as_ref()
            .is_none_or(|set| set.is_match(repository));
        included && !self.excluded(repository)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(inc: &[&str], exc: &[&str]) -> RepoFilter {
        RepoFilter::new(
            &inc.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            &exc.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .expect("valid globs")
    }

    #[test]
    fn double_star_spans_segments_single_star_does_not() {
        let filter = f(&["ghcr.io/acme/**"], &[]);
        assert!(filter.matches("ghcr.io/acme/app"));
        assert!(filter.matches("ghcr.io/acme/team/app"));
        assert!(!filter.matches("ghcr.io/other/app"));
        let filter = f(&["ghcr.io/acme/*"], &[]);
        assert!(filter.matches("ghcr.io/acme/app"));
        assert!(!filter.matches("ghcr.io/acme/team/app"));
    }

    #[test]
    fn exclude_wins_and_empty_include_means_all() {
        let filter = f(&[], &["docker.io/library/*"]);
        assert!(filter.matches("ghcr.io/acme/app"));
        assert!(!filter.matches("docker.io/library/nginx"));
        assert!(f(&["**"], &[]).matches("localhost:5000/a/b"));
        assert!(f(&["localhost:5000/**"], &[]).matches("localhost:5000/a/b"));
        assert!(f(&["ghcr.io/acme/app-?"], &[]).matches("ghcr.io/acme/app-1"));
    }

    #[test]
    fn bad_globs_name_the_field() {
        let err = RepoFilter::new(&["ghcr.io/[acme".into()], &[]).expect_err("invalid");
        assert!(err.starts_with("spec.images.include[0]"), "{err}");
        let err = RepoFilter::new(&[], &["a/***".into()]).expect_err("invalid");
        assert!(err.starts_with("spec.images.exclude[0]"), "{err}");
        // No `/`: it can never match a `registry/path` repository.
        for g in ["nginx", "*", "ghcr.io", "localhost:5000"] {
            let err = RepoFilter::new(&["ghcr.io/**".into(), g.into()], &[]).expect_err(g);
            assert!(err.starts_with("spec.images.include[1]"), "{err}");
            assert!(err.contains("never matches"), "{err}");
        }
        assert!(RepoFilter::new(&["**".into(), "**/nginx".into()], &[]).is_ok());
    }

    #[test]
    fn matching_includes_names_the_globs_that_match() {
        let filter = f(&["ghcr.io/acme/**", "ghcr.io/*/app", "quay.io/**"], &[]);
        assert_eq!(filter.include_len(), 3);
        assert_eq!(filter.matching_includes("ghcr.io/acme/app"), vec![0, 1]);
        assert_eq!(filter.matching_includes("quay.io/x/y"), vec![2]);
        assert!(
            filter
                .matching_includes("docker.io/library/nginx")
                .is_empty()
        );
        assert!(f(&[], &[]).matching_includes("ghcr.io/acme/app").is_empty());
    }
}
