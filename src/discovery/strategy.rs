//! Discovery decisions (pure): which method a discovery starts with, what a referrers-API
//! answer means (use it, fall back to the tags, no referrers, Unknown), when the tag fallbacks
//! are added to a native answer, when a tag list may be trusted to say a tag is absent, and
//! when what a registry answers has changed. [`super::engine`] does the I/O and asks here.

use std::time::{Duration, Instant};

use super::model::{Reach, Referrer};
use crate::crd::{CapabilityState, DiscoveryMode, EffectiveDiscoveryMode};
use crate::reason::Reason;

/// How one discovery lists referrers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The referrers API; on an Unsupported answer fall back to the tags (Auto) or not (forced).
    /// `known`: the registry is known to serve the API (a non-index 200 is then a broken
    /// answer, not "no API").
    Native { forced: bool, known: bool },
    /// The tag fallbacks only (OCI tag schema, cosign tags).
    Fallback,
}

/// What is remembered about the registry and the repository of a discovery.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// What last answered in this repository (some registries differ by repository).
    pub repository: Option<EffectiveDiscoveryMode>,
    /// What last answered on this registry.
    pub registry: Option<EffectiveDiscoveryMode>,
    /// No referrers-API request reached this registry within the re-learn window: in Auto,
    /// a registry believed to lack the API is asked again (it may have gained it).
    pub relearn_due: bool,
}

/// Picks how to start. Forced modes win. Auto: what this repository answered last, else the
/// RegistryProfile's probe (`hint`), else what the registry answered last, else the API. A
/// registry believed to lack the API is asked again once per re-learn window.
///
/// The second value is what is known of the API before any request (`Some(false)`: no API).
pub fn plan(
    mode: DiscoveryMode,
    hint: Option<EffectiveDiscoveryMode>,
    memory: Memory,
) -> (Start, Option<bool>) {
    let native_unknown = Start::Native {
        forced: false,
        known: false,
    };
    match mode {
        DiscoveryMode::Native => (
            Start::Native {
                forced: true,
                known: false,
            },
            None,
        ),
        DiscoveryMode::TagFallback => {
            let known = memory.repository.or(hint).or(memory.registry);
            (
                Start::Fallback,
                (known == Some(EffectiveDiscoveryMode::TagFallback)).then_some(false),
            )
        }
        DiscoveryMode::Auto => match memory.repository.or(hint).or(memory.registry) {
            Some(EffectiveDiscoveryMode::Native) => (
                Start::Native {
                    forced: false,
                    known: true,
                },
                None,
            ),
            Some(EffectiveDiscoveryMode::TagFallback) if memory.relearn_due => {
                (native_unknown, None)
            }
            Some(EffectiveDiscoveryMode::TagFallback) => (Start::Fallback, Some(false)),
            None => (native_unknown, None),
        },
    }
}

/// The referrers API's first answer, as the probe's verdict saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeVerdict {
    /// The verdict's state.
    pub state: CapabilityState,
    /// The verdict's reason (`IndexReturned`, `NonConformantContentType`, `NotFound`, …).
    pub reason: String,
    /// HTTP status.
    pub http_status: Option<u16>,
}

/// What to do with that answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NativeDecision {
    /// Read the index it returned.
    Use,
    /// No usable referrers API here: use the tag fallbacks; `remember` the registry as one
    /// without the API.
    Fallback { remember: bool },
    /// The API answered for a subject it does not hold (Quay's 400): no referrers from it.
    NoReferrers,
    /// A broken answer: Unknown with this reason.
    Unknown(Reason),
    /// The registry failed (401/403/429/5xx, repository missing…): Unknown, with the reason of
    /// the HTTP status.
    Error,
}

/// Decides from the verdict of the first referrers-API answer of a discovery.
pub fn decide_native(v: &NativeVerdict, start: Start) -> NativeDecision {
    let Start::Native { forced, known } = start else {
        return NativeDecision::Fallback { remember: false };
    };
    match v.state {
        CapabilityState::Supported => NativeDecision::Use,
        CapabilityState::Unknown => NativeDecision::Error,
        CapabilityState::Unsupported => {
            // A 200 that claims to be an OCI index but is not one, or any 200 that is not an
            // index from a registry known to serve the API, is a broken answer (an error page,
            // a truncated proxy reply): Unknown, not "no referrers API" (which would fall back
            // and report nothing).
            if v.http_status == Some(200) && (known || v.reason == "InvalidIndex") {
                return NativeDecision::Unknown(Reason::InvalidResponse);
            }
            if forced {
                return NativeDecision::Unknown(Reason::ReferrersApiUnsupported);
            }
            if v.http_status == Some(400) && known {
                return NativeDecision::NoReferrers;
            }
            // 404/405/406/wrong content type/redirect elsewhere: no API here. A 400 from a
            // registry not known to have the API is not remembered (Quay's 400 is per subject).
            NativeDecision::Fallback {
                remember: v.http_status != Some(400),
            }
        }
    }
}

/// Whether the tag fallbacks are looked at too, although the referrers API answered: only in
/// Auto mode, for a discovery that reaches at least [`Reach::Union`] (cosign ≤ 2 writes `.sig`
/// tags on registries with the API; notation 1.2–1.3 writes the tag-schema index there too).
pub fn union_with_tags(mode: DiscoveryMode, reach: Reach, api_answered: bool) -> bool {
    mode == DiscoveryMode::Auto && reach >= Reach::Union && api_answered
}

/// Default slack between a tag list's read and a discovery's start within which the list may
/// still be trusted to say a tag is absent (the discoveries of one evaluation start together).
pub const ABSENCE_SLACK: Duration = Duration::from_secs(5);

/// Whether a tag list read at `read_at` may be trusted to say that a tag of a discovery that
/// started at `started` does not exist. A tag pushed after the list was read (an image signed
/// just before it was deployed) would be missed by an older list, so absence needs a list read
/// no earlier than `slack` before the discovery began; presence may come from any fresh list.
pub fn tag_list_proves_absence(read_at: Instant, started: Instant, slack: Duration) -> bool {
    read_at + slack >= started
}

/// What a referrers-API answer said about the registry (for noticing that it changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ApiObservation {
    /// Whether the API is usable.
    pub api: bool,
    /// Whether its answers follow the spec (`Content-Type` of an OCI index).
    pub conformant: bool,
}

/// Whether `now` shows the registry's answer changed since `before` (or, for a first
/// observation, since what the RegistryProfile's probe found): the profile is then probed again
/// without waiting for its interval.
pub fn answer_changed(
    before: Option<ApiObservation>,
    hint: Option<EffectiveDiscoveryMode>,
    now: ApiObservation,
) -> bool {
    match before {
        Some(b) => b != now,
        None => match hint {
            Some(EffectiveDiscoveryMode::Native) => !now.api,
            Some(EffectiveDiscoveryMode::TagFallback) => now.api,
            None => false,
        },
    }
}

/// What a tag list answer means for the tag fallbacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagListAnswer {
    /// A page of tags.
    Page,
    /// The registry does not list tags here (the fallbacks GET their tags directly).
    Unavailable,
    /// A registry error: the discovery is Unknown.
    Failed,
}

/// Reads a tag list answer's status (and Distribution error codes): on the first page a 400,
/// 404 (not `NAME_UNKNOWN`), 405 or 406 means listing is not offered; a missing repository or
/// any other status is an error.
pub fn tag_list_answer(status: u16, error_codes: &[String], first_page: bool) -> TagListAnswer {
    match status {
        200 => TagListAnswer::Page,
        404 if error_codes.iter().any(|c| c == "NAME_UNKNOWN") => TagListAnswer::Failed,
        404 | 405 | 400 | 406 if first_page => TagListAnswer::Unavailable,
        _ => TagListAnswer::Failed,
    }
}

/// The order of a report's referrers: attachment, method, artifact type, digest, subject.
pub fn sort_referrers(v: &mut [Referrer]) {
    v.sort_by(|a, b| {
        (
            a.attached_to,
            a.method,
            &a.artifact_type,
            &a.digest,
            &a.subject,
        )
            .cmp(&(
                b.attached_to,
                b.method,
                &b.artifact_type,
                &b.digest,
                &b.subject,
            ))
    });
}

/// Adds `extra` to `into`, merged by digest: a referrer already found (by the same subject and
/// attachment) keeps the method that found it first.
pub fn merge_referrers(into: &mut Vec<Referrer>, extra: Vec<Referrer>) {
    for r in extra {
        if !into.iter().any(|x| {
            x.digest == r.digest && x.subject == r.subject && x.attached_to == r.attached_to
        }) {
            into.push(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::model::{AttachedTo, DiscoveryMethod, Format};
    use EffectiveDiscoveryMode as E;

    const NATIVE_UNKNOWN: Start = Start::Native {
        forced: false,
        known: false,
    };
    const NATIVE_KNOWN: Start = Start::Native {
        forced: false,
        known: true,
    };

    fn mem(repository: Option<E>, registry: Option<E>, relearn_due: bool) -> Memory {
        Memory {
            repository,
            registry,
            relearn_due,
        }
    }

    #[test]
    fn plan_follows_mode_repository_hint_and_registry_memory() {
        use DiscoveryMode as M;
        let none = Memory::default();
        let fallback_learnt = (Start::Fallback, Some(false));
        for (mode, hint, memory, want) in [
            (M::Auto, None, none, (NATIVE_UNKNOWN, None)),
            (
                M::Auto,
                Some(E::Native),
                mem(None, Some(E::TagFallback), false),
                (NATIVE_KNOWN, None),
            ),
            (
                M::Auto,
                None,
                mem(None, Some(E::TagFallback), false),
                fallback_learnt,
            ),
            (M::Auto, Some(E::TagFallback), none, fallback_learnt),
            // A repository that answered differently from the rest of the registry wins.
            (
                M::Auto,
                Some(E::Native),
                mem(Some(E::TagFallback), None, false),
                fallback_learnt,
            ),
            (
                M::Auto,
                Some(E::TagFallback),
                mem(Some(E::Native), Some(E::TagFallback), false),
                (NATIVE_KNOWN, None),
            ),
            // Believed without the API, but not asked for a while: ask again.
            (
                M::Auto,
                Some(E::TagFallback),
                mem(None, None, true),
                (NATIVE_UNKNOWN, None),
            ),
            (
                M::TagFallback,
                Some(E::Native),
                mem(None, None, true),
                (Start::Fallback, None),
            ),
            (
                M::TagFallback,
                None,
                mem(None, Some(E::TagFallback), false),
                fallback_learnt,
            ),
        ] {
            assert_eq!(
                plan(mode, hint, memory),
                want,
                "{mode:?} {hint:?} {memory:?}"
            );
        }
        assert_eq!(
            plan(M::Native, Some(E::TagFallback), none).0,
            Start::Native {
                forced: true,
                known: false
            }
        );
    }

    fn verdict(state: CapabilityState, reason: &str, status: u16) -> NativeVerdict {
        NativeVerdict {
            state,
            reason: reason.into(),
            http_status: Some(status),
        }
    }

    #[test]
    fn native_answers_decide_fallback_unknown_or_no_referrers() {
        use CapabilityState::*;
        let forced = Start::Native {
            forced: true,
            known: false,
        };
        let fallback = |remember| NativeDecision::Fallback { remember };
        let invalid = NativeDecision::Unknown(Reason::InvalidResponse);
        for (state, reason, status, start, want) in [
            (
                Supported,
                "IndexReturned",
                200,
                NATIVE_UNKNOWN,
                NativeDecision::Use,
            ),
            (
                Supported,
                "NonConformantContentType",
                200,
                NATIVE_KNOWN,
                NativeDecision::Use,
            ),
            (Unsupported, "NotFound", 404, NATIVE_UNKNOWN, fallback(true)),
            // GHCR's 303 to another host: no usable API here.
            (
                Unsupported,
                "RedirectedToOtherHost",
                303,
                NATIVE_KNOWN,
                fallback(true),
            ),
            (
                Unsupported,
                "HtmlInsteadOfIndex",
                200,
                NATIVE_UNKNOWN,
                fallback(true),
            ),
            (
                Unsupported,
                "HtmlInsteadOfIndex",
                200,
                NATIVE_KNOWN,
                invalid.clone(),
            ),
            (
                Unsupported,
                "InvalidIndex",
                200,
                NATIVE_UNKNOWN,
                invalid.clone(),
            ),
            (
                Unsupported,
                "NotFound",
                404,
                forced,
                NativeDecision::Unknown(Reason::ReferrersApiUnsupported),
            ),
            (
                Unsupported,
                "BadRequest",
                400,
                NATIVE_KNOWN,
                NativeDecision::NoReferrers,
            ),
            (
                Unsupported,
                "BadRequest",
                400,
                NATIVE_UNKNOWN,
                fallback(false),
            ),
            (
                Unknown,
                "RateLimited",
                429,
                NATIVE_UNKNOWN,
                NativeDecision::Error,
            ),
        ] {
            assert_eq!(
                decide_native(&verdict(state, reason, status), start),
                want,
                "{reason} {status} {start:?}"
            );
        }
    }

    #[test]
    fn union_only_in_auto_for_union_reach_after_the_api_answered() {
        assert!(union_with_tags(DiscoveryMode::Auto, Reach::Union, true));
        assert!(union_with_tags(DiscoveryMode::Auto, Reach::Described, true));
        assert!(!union_with_tags(DiscoveryMode::Auto, Reach::Listing, true));
        assert!(!union_with_tags(DiscoveryMode::Auto, Reach::Union, false));
        assert!(!union_with_tags(DiscoveryMode::Native, Reach::Union, true));
        assert!(!union_with_tags(
            DiscoveryMode::TagFallback,
            Reach::Union,
            true
        ));
    }

    #[test]
    fn absence_needs_a_list_read_about_when_the_discovery_began() {
        let t0 = Instant::now();
        let s = ABSENCE_SLACK;
        assert!(tag_list_proves_absence(t0, t0, s));
        assert!(tag_list_proves_absence(t0 + Duration::from_secs(1), t0, s));
        assert!(tag_list_proves_absence(t0, t0 + Duration::from_secs(4), s));
        assert!(!tag_list_proves_absence(t0, t0 + Duration::from_secs(6), s));
        assert!(!tag_list_proves_absence(
            t0,
            t0 + Duration::from_millis(1),
            Duration::ZERO
        ));
    }

    #[test]
    fn answer_changes_against_previous_or_the_probe() {
        let native = ApiObservation {
            api: true,
            conformant: true,
        };
        let harbor29 = ApiObservation {
            api: true,
            conformant: false,
        };
        let none = ApiObservation {
            api: false,
            conformant: true,
        };
        assert!(answer_changed(Some(harbor29), None, native));
        assert!(!answer_changed(Some(native), Some(E::TagFallback), native));
        assert!(answer_changed(None, Some(E::TagFallback), native));
        assert!(answer_changed(None, Some(E::Native), none));
        assert!(!answer_changed(None, Some(E::Native), harbor29));
        assert!(!answer_changed(None, None, none));
    }

    #[test]
    fn tag_list_answers() {
        let unknown = vec!["NAME_UNKNOWN".to_string()];
        assert_eq!(tag_list_answer(200, &[], false), TagListAnswer::Page);
        assert_eq!(tag_list_answer(404, &[], true), TagListAnswer::Unavailable);
        assert_eq!(tag_list_answer(404, &[], false), TagListAnswer::Failed);
        assert_eq!(tag_list_answer(404, &unknown, true), TagListAnswer::Failed);
        for s in [400, 405, 406] {
            assert_eq!(tag_list_answer(s, &[], true), TagListAnswer::Unavailable);
        }
        assert_eq!(tag_list_answer(500, &[], true), TagListAnswer::Failed);
    }

    #[test]
    fn merge_keeps_the_first_finder() {
        let r = |digest: &str, method| Referrer {
            digest: digest.into(),
            media_type: String::new(),
            artifact_type: None,
            kinds: vec![],
            format: Format::Other,
            predicate_type: None,
            size: 1,
            annotations: Default::default(),
            method,
            subject: "sha256:s".into(),
            attached_to: AttachedTo::Requested,
            tag: None,
            repository: None,
            platform: None,
            referrers: vec![],
        };
        let mut all = vec![r("sha256:a", DiscoveryMethod::Native)];
        merge_referrers(
            &mut all,
            vec![
                r("sha256:a", DiscoveryMethod::TagSchema),
                r("sha256:b", DiscoveryMethod::CosignTag),
            ],
        );
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].method, DiscoveryMethod::Native);
        assert_eq!(all[1].method, DiscoveryMethod::CosignTag);
    }
}
