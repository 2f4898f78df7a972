//! Verifying the referrers a `verify` requirement counts: which ones to read (pure), reading
//! their evidence, the verifier's verdict, and the cache that makes a recheck free.
//!
//! Verdicts are cached by (referrer digest, subject digest, trust fingerprint): the referrer's
//! bytes are immutable and the trust is fingerprinted, so a second evaluation costs neither a
//! request nor a signature check. A referrer whose bytes could not be read is
//! [`Check::Unknown`] and is not cached (the registry may answer next time). Verdicts that
//! depend on the clock (a Notation `expiry`, a chain valid only now) are kept for
//! [`VERDICT_TTL`] at most.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::evaluate;
use super::trust::RequirementTrust;
use crate::crd::{Requirement, SubjectMatch, UnverifiedReferrer, VerifiedReferrer};
use crate::discovery::{AttachedTo, DiscoveryReport, Referrer};
use crate::evidence::{self, EvidenceError};
use crate::reason::Reason;
use crate::registry::RegistryClient;
use crate::verify::{self, Rejection, Signer, Subject, Verdict};

/// Referrers of one requirement read at most per image (the first ones discovery listed).
pub const MAX_CANDIDATES: usize = 16;
/// Entries the verdict cache holds before it is emptied (a verdict is ~1 KiB).
pub const MAX_CACHED_VERDICTS: usize = 50_000;
/// How long a cached verdict is trusted: the clock can only turn a verdict over through
/// expiry, so a day bounds how late an expired Notation signature is noticed.
pub const VERDICT_TTL: Duration = Duration::from_secs(24 * 3600);

/// One referrer, judged under one requirement's trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// At least one signature of it verified: each one that did.
    Verified(Vec<verify::Verified>),
    /// None verified: the most telling rejection.
    Unverified(verify::Unverified),
    /// Its bytes could not be read: nothing can be said (never a violation).
    Unknown { reason: Reason, message: String },
}

/// What a `verify` requirement comes to on one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequirementVerdict {
    /// Enough referrers verified, by enough distinct signers.
    Met(Vec<VerifiedReferrer>),
    /// Not met: the referrers that did not verify, with why (empty: no referrer at all).
    Unmet(Vec<UnverifiedReferrer>),
    /// A referrer that could have decided it was unreadable.
    Unknown { reason: Reason, message: String },
}

/// The verdicts of one image's `verify` requirements, by requirement name.
pub type ImageVerdicts = BTreeMap<String, RequirementVerdict>;

/// A signer as the status prints it.
pub fn signer_label(by: &Signer) -> String {
    match by {
        Signer::Key { fingerprint } => format!("key {fingerprint}"),
        Signer::Identity { issuer, subject } => {
            format!("identity {} {subject}", issuer.as_deref().unwrap_or("-"))
        }
        Signer::Certificate { subject, .. } => format!("certificate {subject}"),
    }
}

/// The referrers that could meet `req` on this image, in the order discovery listed them
/// (the running digest's own first), at most [`MAX_CANDIDATES`].
pub fn candidates<'a>(
    req: &Requirement,
    subject_match: SubjectMatch,
    report: &'a DiscoveryReport,
) -> Vec<&'a Referrer> {
    let places: &[AttachedTo] = match subject_match {
        SubjectMatch::Exact => &[AttachedTo::Requested],
        SubjectMatch::IndexOrPlatform => &[
            AttachedTo::Requested,
            AttachedTo::Index,
            AttachedTo::Platform,
        ],
    };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for place in places {
        for r in report.referrers.iter().filter(|r| r.attached_to == *place) {
            if evaluate::referrer_satisfies(req, r) && seen.insert(r.digest.as_str()) {
                out.push(r);
            }
        }
    }
    out.truncate(MAX_CANDIDATES);
    out
}

/// Judges a `verify` requirement from the checks made so far (pure). Met needs `minCount`
/// verified referrers placed as `subjectMatch` says and `verify.count` distinct signers among
/// them; an unreadable referrer makes an unmet requirement Unknown.
pub fn requirement_verdict(
    req: &Requirement,
    signers: u32,
    subject_match: SubjectMatch,
    report: &DiscoveryReport,
    checks: &BTreeMap<String, Arc<Check>>,
) -> RequirementVerdict {
    let verified = |r: &Referrer| {
        checks
            .get(&r.digest)
            .is_some_and(|c| matches!(c.as_ref(), Check::Verified(_)))
    };
    let placed = evaluate::requirement_met_by(req, subject_match, report, &verified);
    let mut distinct: BTreeSet<String> = BTreeSet::new();
    let mut listed = Vec::new();
    for r in &report.referrers {
        if let Some(Check::Verified(vs)) = checks.get(&r.digest).map(Arc::as_ref) {
            for v in vs {
                distinct.insert(v.by.id());
            }
            if !listed
                .iter()
                .any(|l: &VerifiedReferrer| l.referrer == r.digest)
            {
                let first = &vs[0];
                listed.push(VerifiedReferrer {
                    requirement: req.name.clone(),
                    referrer: r.digest.clone(),
                    format: first.format.as_str().to_string(),
                    signer: vs
                        .iter()
                        .map(|v| signer_label(&v.by))
                        .collect::<Vec<_>>()
                        .join(", "),
                    log_index: first.log_index,
                });
            }
        }
    }
    if placed && distinct.len() >= signers.max(1) as usize {
        return RequirementVerdict::Met(listed);
    }
    if let Some((reason, message)) = checks.values().find_map(|c| match c.as_ref() {
        Check::Unknown { reason, message } => Some((*reason, message.clone())),
        _ => None,
    }) {
        return RequirementVerdict::Unknown { reason, message };
    }
    let mut unverified: Vec<UnverifiedReferrer> = Vec::new();
    for r in &report.referrers {
        if let Some(Check::Unverified(u)) = checks.get(&r.digest).map(Arc::as_ref)
            && !unverified.iter().any(|x| x.referrer == r.digest)
        {
            unverified.push(UnverifiedReferrer {
                requirement: req.name.clone(),
                referrer: r.digest.clone(),
                format: r.format.as_str().to_string(),
                reason: u.reason.as_str().to_string(),
                message: u.message.clone(),
            });
        }
    }
    if placed || !distinct.is_empty() {
        unverified.push(UnverifiedReferrer {
            requirement: req.name.clone(),
            referrer: String::new(),
            format: String::new(),
            reason: "TooFewSigners".into(),
            message: format!(
                "{} of the {} distinct signers required verified ({})",
                distinct.len(),
                signers,
                distinct.into_iter().collect::<Vec<_>>().join("; ")
            ),
        });
    }
    RequirementVerdict::Unmet(unverified)
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct VerdictKey {
    referrer: String,
    subject: String,
    trust: String,
}

/// What the verifier did, for metrics and the benchmark.
#[derive(Debug, Default)]
pub struct VerifierStats {
    /// Referrers whose evidence was read and checked (cache misses).
    pub checked: AtomicU64,
    /// Answers served from the cache.
    pub cache_hits: AtomicU64,
    /// Registry requests spent reading evidence.
    pub requests: AtomicU64,
    /// Nanoseconds spent in the verifier (signature checks only, not I/O).
    pub crypto_nanos: AtomicU64,
    /// Signatures (layers) checked.
    pub signatures: AtomicU64,
    /// Checks by outcome: (`verified` | `unverified` | `unknown`, reason).
    outcomes: Mutex<BTreeMap<(&'static str, String), u64>>,
    /// Time in the verifier per signature, the first [`MAX_TIMED_SIGNATURES`] (for a median).
    signature_nanos: Mutex<Vec<u64>>,
}

/// Per-signature times kept by [`VerifierStats`].
pub const MAX_TIMED_SIGNATURES: usize = 100_000;

impl VerifierStats {
    /// Checks by (outcome, reason), for the `refwarden_verifications_total` counter.
    pub fn outcomes(&self) -> BTreeMap<(&'static str, String), u64> {
        self.outcomes.lock().clone()
    }

    /// The median time of one signature check (of the ones timed), if any.
    pub fn median_signature_time(&self) -> Option<Duration> {
        let mut v = self.signature_nanos.lock().clone();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        Some(Duration::from_nanos(v[v.len() / 2]))
    }

    fn count(&self, check: &Check) {
        let key = match check {
            Check::Verified(_) => ("verified", String::new()),
            Check::Unverified(u) => ("unverified", u.reason.as_str().to_string()),
            Check::Unknown { reason, .. } => ("unknown", reason.as_str().to_string()),
        };
        *self.outcomes.lock().entry(key).or_default() += 1;
    }
}

/// Reads and verifies referrers, remembering the verdicts. Shared by every policy evaluation
/// of a process (the controller's context, one `evaluate` run).
#[derive(Debug, Default)]
pub struct Verifier {
    cache: Mutex<HashMap<VerdictKey, (Instant, Arc<Check>)>>,
    /// What it did.
    pub stats: VerifierStats,
}

impl Verifier {
    /// A verifier with an empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Verdicts cached now.
    pub fn cached(&self) -> usize {
        self.cache.lock().len()
    }

    /// The verdict on `referrer` (found for `subject_repository`, read through `client`) under
    /// `trust`: from the cache, or read (one manifest GET and one blob GET per signature) and
    /// verified.
    pub async fn check(
        &self,
        client: &RegistryClient,
        subject_repository: &str,
        referrer: &Referrer,
        trust: &RequirementTrust,
    ) -> Arc<Check> {
        let key = VerdictKey {
            referrer: referrer.digest.clone(),
            subject: referrer.subject.clone(),
            trust: trust.fingerprint.clone(),
        };
        if let Some((at, hit)) = self.cache.lock().get(&key)
            && at.elapsed() < VERDICT_TTL
        {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return hit.clone();
        }
        let check = Arc::new(
            self.read_and_verify(client, subject_repository, referrer, trust)
                .await,
        );
        self.stats.checked.fetch_add(1, Ordering::Relaxed);
        self.stats.count(&check);
        if !matches!(check.as_ref(), Check::Unknown { .. }) {
            let mut cache = self.cache.lock();
            if cache.len() >= MAX_CACHED_VERDICTS {
                cache.clear();
            }
            cache.insert(key, (Instant::now(), check.clone()));
        }
        check
    }

    async fn read_and_verify(
        &self,
        client: &RegistryClient,
        subject_repository: &str,
        referrer: &Referrer,
        trust: &RequirementTrust,
    ) -> Check {
        let read = evidence::read(client, subject_repository, referrer).await;
        let evidence = match read {
            Ok(e) => e,
            Err(EvidenceError::Unreadable { reason, message }) => {
                return Check::Unknown { reason, message };
            }
            Err(EvidenceError::Malformed { message }) => {
                return Check::Unverified(verify::Unverified {
                    reason: Rejection::MalformedSignature,
                    message,
                });
            }
            Err(EvidenceError::NotASignature(format)) => {
                return Check::Unverified(verify::Unverified {
                    reason: Rejection::UnsupportedFormat,
                    message: format!(
                        "referrer {} is {format}, which carries no signature to verify",
                        referrer.digest
                    ),
                });
            }
        };
        self.stats
            .requests
            .fetch_add(evidence.requests, Ordering::Relaxed);
        // The digest judged is the one discovery attached the referrer to; the manifest's own
        // subject descriptor only lends its media type and size (Notation signs them too).
        let subject = match evidence.subject {
            Some(s) if s.digest == referrer.subject => s,
            _ if evidence.items.iter().any(|i| {
                matches!(
                    i.kind,
                    evidence::EvidenceKind::NotationJws | evidence::EvidenceKind::NotationCose
                )
            }) =>
            {
                let repo = referrer.repository.as_deref().unwrap_or(subject_repository);
                match evidence::subject(client, repo, &referrer.subject).await {
                    Ok(s) => s,
                    Err(EvidenceError::Unreadable { reason, message }) => {
                        return Check::Unknown { reason, message };
                    }
                    Err(e) => {
                        return Check::Unknown {
                            reason: Reason::InvalidResponse,
                            message: e.to_string(),
                        };
                    }
                }
            }
            _ => Subject {
                digest: referrer.subject.clone(),
                media_type: String::new(),
                size: 0,
            },
        };
        let now = jiff::Timestamp::now();
        let mut verified = Vec::new();
        let mut rejections = Vec::new();
        for item in &evidence.items {
            self.stats.signatures.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let verdict = verify::verify(&item.evidence(), &subject, &trust.policy, now);
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.stats.crypto_nanos.fetch_add(nanos, Ordering::Relaxed);
            {
                let mut timed = self.stats.signature_nanos.lock();
                if timed.len() < MAX_TIMED_SIGNATURES {
                    timed.push(nanos);
                }
            }
            match verdict {
                Verdict::Verified(v) => verified.push(v),
                Verdict::Unverified(u) => rejections.push(u),
            }
        }
        if !verified.is_empty() {
            return Check::Verified(verified);
        }
        // The most telling rejection: one that says more than "not by a trusted key".
        let pick = rejections
            .iter()
            .position(|u| u.reason != Rejection::NoSignatureByTrustedKey)
            .unwrap_or(0);
        match rejections.into_iter().nth(pick) {
            Some(u) => Check::Unverified(u),
            None => Check::Unverified(verify::Unverified {
                reason: Rejection::MalformedSignature,
                message: format!("referrer {} holds no signature", referrer.digest),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::{DiscoveryMethod, Format};

    fn referrer(digest: &str, attached: AttachedTo) -> Referrer {
        Referrer {
            digest: digest.into(),
            media_type: crate::oci::OCI_MANIFEST.into(),
            artifact_type: Some("application/vnd.dev.cosign.artifact.sig.v1+json".into()),
            kinds: Vec::new(),
            format: Format::CosignSimpleSigning,
            predicate_type: None,
            size: 1,
            annotations: BTreeMap::new(),
            method: DiscoveryMethod::Native,
            subject: "sha256:run".into(),
            attached_to: attached,
            tag: None,
            repository: None,
            platform: None,
            referrers: Vec::new(),
        }
    }

    fn req(min_count: u32) -> Requirement {
        serde_json::from_value(serde_json::json!({
            "name": "signature",
            "artifactTypes": ["application/vnd.dev.cosign.artifact.sig.v1+json"],
            "minCount": min_count,
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn verified(fingerprint: &str) -> Arc<Check> {
        Arc::new(Check::Verified(vec![verify::Verified {
            format: verify::SignatureFormat::CosignSimpleSigning,
            by: Signer::Key {
                fingerprint: fingerprint.into(),
            },
            log_index: Some(7),
            signed_at: None,
            predicate_type: None,
        }]))
    }

    fn rejected(reason: Rejection) -> Arc<Check> {
        Arc::new(Check::Unverified(verify::Unverified {
            reason,
            message: "m".into(),
        }))
    }

    fn report(referrers: Vec<Referrer>) -> DiscoveryReport {
        DiscoveryReport {
            subject: "sha256:run".into(),
            subject_media_type: None,
            referrers_api: Some(true),
            methods: vec![DiscoveryMethod::Native],
            platforms: Vec::new(),
            referrers,
            requests: 1,
            notes: Vec::new(),
        }
    }

    #[test]
    fn met_needs_verified_placed_referrers_and_enough_signers() {
        let rep = report(vec![
            referrer("sha256:a", AttachedTo::Requested),
            referrer("sha256:b", AttachedTo::Index),
        ]);
        let one = req(1);
        let mut checks = BTreeMap::new();
        checks.insert("sha256:a".to_string(), rejected(Rejection::DigestMismatch));
        let v = requirement_verdict(&one, 1, SubjectMatch::IndexOrPlatform, &rep, &checks);
        let RequirementVerdict::Unmet(u) = v else {
            panic!("{v:?}")
        };
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].reason, "DigestMismatch");
        assert_eq!(u[0].referrer, "sha256:a");

        // A verified signature on the index counts with IndexOrPlatform, not with Exact.
        checks.insert("sha256:b".to_string(), verified("sha256:k1"));
        let v = requirement_verdict(&one, 1, SubjectMatch::IndexOrPlatform, &rep, &checks);
        let RequirementVerdict::Met(m) = v else {
            panic!("{v:?}")
        };
        assert_eq!(m[0].signer, "key sha256:k1");
        assert_eq!(m[0].log_index, Some(7));
        let v = requirement_verdict(&one, 1, SubjectMatch::Exact, &rep, &checks);
        assert!(matches!(v, RequirementVerdict::Unmet(_)), "{v:?}");

        // count: 2 distinct keys; the same key twice is one signer.
        checks.insert("sha256:a".to_string(), verified("sha256:k1"));
        let v = requirement_verdict(&one, 2, SubjectMatch::IndexOrPlatform, &rep, &checks);
        let RequirementVerdict::Unmet(u) = v else {
            panic!("{v:?}")
        };
        assert_eq!(u.last().map(|x| x.reason.as_str()), Some("TooFewSigners"));
        checks.insert("sha256:a".to_string(), verified("sha256:k2"));
        let v = requirement_verdict(&one, 2, SubjectMatch::IndexOrPlatform, &rep, &checks);
        assert!(matches!(v, RequirementVerdict::Met(_)), "{v:?}");

        // minCount 2 needs two verified referrers, whatever the signers.
        checks.insert(
            "sha256:b".to_string(),
            rejected(Rejection::IdentityMismatch),
        );
        let v = requirement_verdict(&req(2), 1, SubjectMatch::IndexOrPlatform, &rep, &checks);
        assert!(matches!(v, RequirementVerdict::Unmet(_)), "{v:?}");
    }

    #[test]
    fn an_unreadable_referrer_is_unknown_unless_another_one_decides() {
        let rep = report(vec![
            referrer("sha256:a", AttachedTo::Requested),
            referrer("sha256:b", AttachedTo::Requested),
        ]);
        let mut checks = BTreeMap::new();
        checks.insert(
            "sha256:a".to_string(),
            Arc::new(Check::Unknown {
                reason: Reason::RateLimited,
                message: "429".into(),
            }),
        );
        checks.insert(
            "sha256:b".to_string(),
            rejected(Rejection::NoSignatureByTrustedKey),
        );
        let v = requirement_verdict(&req(1), 1, SubjectMatch::Exact, &rep, &checks);
        assert!(
            matches!(&v, RequirementVerdict::Unknown { reason, .. } if reason == "RateLimited"),
            "{v:?}"
        );
        checks.insert("sha256:b".to_string(), verified("sha256:k"));
        let v = requirement_verdict(&req(1), 1, SubjectMatch::Exact, &rep, &checks);
        assert!(matches!(v, RequirementVerdict::Met(_)), "{v:?}");
    }

    #[test]
    fn candidates_follow_subject_match_and_the_requirement() {
        let mut sbom = referrer("sha256:s", AttachedTo::Requested);
        sbom.artifact_type = Some("application/spdx+json".into());
        sbom.format = Format::Spdx;
        let rep = report(vec![
            referrer("sha256:i", AttachedTo::Index),
            sbom,
            referrer("sha256:a", AttachedTo::Requested),
            referrer("sha256:p", AttachedTo::Platform),
        ]);
        let digests = |sm| {
            candidates(&req(1), sm, &rep)
                .iter()
                .map(|r| r.digest.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(digests(SubjectMatch::Exact), ["sha256:a"]);
        assert_eq!(
            digests(SubjectMatch::IndexOrPlatform),
            ["sha256:a", "sha256:i", "sha256:p"]
        );
    }
}
