//! A requirement's `verify` turned into the verifier's trust: keys, keyless identities and
//! Notation trust read from the spec and the ConfigMaps / Secrets it names, with a fingerprint
//! of all of it (the verdict cache's key).
//!
//! The objects are handed in as [`TrustObjects`]: the controller GETs the ones
//! [`references`] lists; `refwarden evaluate` takes them from its input files. A missing
//! object or key, a key that is not PEM, a trusted root that does not parse or a regular
//! expression that does not compile is an [`InvalidSpec`] naming the field.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::evaluate::InvalidSpec;
use crate::crd::{CaBundleRef, IdentitySpec, KeyReference, ReferrerPolicySpec, VerifySpec};
use crate::oci;
use crate::verify::{
    Identity, Keyless, Matcher, NotationTrust, PublicKey, TrustPolicy, TrustedRoot,
};

/// Fulcio extensions of the GitHub workflow claims (cosign's deprecated-but-written OIDs that
/// its `--certificate-github-workflow-*` flags check).
const GITHUB_WORKFLOW_NAME: &str = "1.3.6.1.4.1.57264.1.4";
const GITHUB_WORKFLOW_REPOSITORY: &str = "1.3.6.1.4.1.57264.1.5";
const GITHUB_WORKFLOW_REF: &str = "1.3.6.1.4.1.57264.1.6";

/// Which kind of object a reference names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    ConfigMap,
    Secret,
}

impl ObjectKind {
    fn as_str(self) -> &'static str {
        match self {
            ObjectKind::ConfigMap => "ConfigMap",
            ObjectKind::Secret => "Secret",
        }
    }
}

/// An object a policy's trust is read from: kind, namespace, name.
pub type ObjectName = (ObjectKind, String, String);

/// An object's data keys and their bytes.
pub type ObjectData = BTreeMap<String, Vec<u8>>;

/// The ConfigMaps and Secrets at hand, by (kind, namespace, name), each as its data keys.
/// `Debug` prints names only, never the data.
#[derive(Clone, Default)]
pub struct TrustObjects {
    objects: BTreeMap<ObjectName, BTreeMap<String, Vec<u8>>>,
}

impl std::fmt::Debug for TrustObjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.objects.keys()).finish()
    }
}

impl TrustObjects {
    /// Adds (or replaces) an object's data.
    pub fn insert(&mut self, name: ObjectName, data: BTreeMap<String, Vec<u8>>) {
        self.objects.insert(name, data);
    }

    /// Adds a ConfigMap.
    pub fn insert_config_map(&mut self, cm: &k8s_openapi::api::core::v1::ConfigMap) {
        let (name, data) = config_map_data(cm);
        self.insert(name, data);
    }

    /// Adds a Secret.
    pub fn insert_secret(&mut self, s: &k8s_openapi::api::core::v1::Secret) {
        let (name, data) = secret_data(s);
        self.insert(name, data);
    }

    fn value(&self, kind: ObjectKind, r: &KeyReference, field: &str) -> Result<&[u8], InvalidSpec> {
        let what = format!("{} {}/{}", kind.as_str(), r.namespace, r.name);
        let object = self
            .objects
            .get(&(kind, r.namespace.clone(), r.name.clone()))
            .ok_or_else(|| InvalidSpec {
                field: field.to_string(),
                message: format!("{what} does not exist (or may not be read)"),
            })?;
        object
            .get(&r.key)
            .map(Vec::as_slice)
            .ok_or_else(|| InvalidSpec {
                field: field.to_string(),
                message: format!("{what} has no key {:?}", r.key),
            })
    }
}

/// A ConfigMap's name and data (`data` and `binaryData`).
pub fn config_map_data(cm: &k8s_openapi::api::core::v1::ConfigMap) -> (ObjectName, ObjectData) {
    let mut data = ObjectData::new();
    for (k, v) in cm.data.iter().flatten() {
        data.insert(k.clone(), v.clone().into_bytes());
    }
    for (k, v) in cm.binary_data.iter().flatten() {
        data.insert(k.clone(), v.0.clone());
    }
    (object_name(ObjectKind::ConfigMap, &cm.metadata), data)
}

/// A Secret's name and data (`data`, and `stringData` as a manifest file may carry it).
pub fn secret_data(s: &k8s_openapi::api::core::v1::Secret) -> (ObjectName, ObjectData) {
    let mut data = ObjectData::new();
    for (k, v) in s.data.iter().flatten() {
        data.insert(k.clone(), v.0.clone());
    }
    for (k, v) in s.string_data.iter().flatten() {
        data.insert(k.clone(), v.clone().into_bytes());
    }
    (object_name(ObjectKind::Secret, &s.metadata), data)
}

/// The name of a `kind` object (an object without a namespace is in `default`).
fn object_name(kind: ObjectKind, meta: &ObjectMeta) -> ObjectName {
    let ns = meta.namespace.clone().unwrap_or_else(|| "default".into());
    (kind, ns, meta.name.clone().unwrap_or_default())
}

/// The trust of one requirement.
#[derive(Clone, Debug)]
pub struct RequirementTrust {
    /// What the verifier checks against.
    pub policy: TrustPolicy,
    /// Distinct signers needed (`verify.count`).
    pub signers: u32,
    /// `sha256:…` over the spec's `verify` and every byte read for it: equal fingerprints, equal
    /// trust.
    pub fingerprint: String,
}

/// Every requirement's trust, by requirement name (requirements without `verify` are absent).
pub type PolicyTrust = BTreeMap<String, Arc<RequirementTrust>>;

/// The ConfigMaps and Secrets a spec's `verify` blocks name.
pub fn references(spec: &ReferrerPolicySpec) -> Vec<ObjectName> {
    let mut out = Vec::new();
    let mut add = |kind, r: &KeyReference| {
        let n = (kind, r.namespace.clone(), r.name.clone());
        if !out.contains(&n) {
            out.push(n);
        }
    };
    for v in spec.require.iter().filter_map(|r| r.verify.as_ref()) {
        for k in &v.keys {
            if let Some(r) = &k.config_map_ref {
                add(ObjectKind::ConfigMap, r);
            }
            if let Some(r) = &k.secret_ref {
                add(ObjectKind::Secret, r);
            }
        }
        if let Some(r) = &v.trusted_root_ref {
            add(ObjectKind::ConfigMap, r);
        }
        if let Some(n) = &v.notation {
            if let Some(r) = &n.trust_store.config_map_ref {
                add(ObjectKind::ConfigMap, r);
            }
            if let Some(r) = &n.trust_store.secret_ref {
                add(ObjectKind::Secret, r);
            }
        }
    }
    out
}

/// Builds the trust of every requirement with `verify`.
pub fn compile(
    spec: &ReferrerPolicySpec,
    objects: &TrustObjects,
) -> Result<PolicyTrust, InvalidSpec> {
    let mut out = PolicyTrust::new();
    for (i, r) in spec.require.iter().enumerate() {
        if let Some(v) = &r.verify {
            let trust = requirement_trust(v, &format!("spec.require[{i}].verify"), objects)?;
            out.insert(r.name.clone(), Arc::new(trust));
        }
    }
    Ok(out)
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> InvalidSpec {
    InvalidSpec {
        field: field.into(),
        message: message.into(),
    }
}

fn text<'a>(bytes: &'a [u8], field: &str) -> Result<&'a str, InvalidSpec> {
    std::str::from_utf8(bytes).map_err(|_| bad(field, "is not UTF-8 text"))
}

fn requirement_trust(
    v: &VerifySpec,
    field: &str,
    objects: &TrustObjects,
) -> Result<RequirementTrust, InvalidSpec> {
    // What the fingerprint covers: the spec itself and each byte read for it, in order.
    let mut material: Vec<u8> = serde_json::to_vec(v).unwrap_or_default();
    let mut read = |bytes: &[u8]| {
        material.extend_from_slice(oci::digest_sha256(bytes).as_bytes());
    };
    let mut policy = TrustPolicy::default();
    for (j, k) in v.keys.iter().enumerate() {
        let (pem, f) = match (&k.pem, &k.config_map_ref, &k.secret_ref) {
            (Some(p), None, None) => (p.as_bytes(), format!("{field}.keys[{j}].pem")),
            (None, Some(r), None) => {
                let f = format!("{field}.keys[{j}].configMapRef");
                (objects.value(ObjectKind::ConfigMap, r, &f)?, f)
            }
            (None, None, Some(r)) => {
                let f = format!("{field}.keys[{j}].secretRef");
                (objects.value(ObjectKind::Secret, r, &f)?, f)
            }
            _ => {
                return Err(bad(
                    format!("{field}.keys[{j}]"),
                    "set exactly one of pem, configMapRef or secretRef",
                ));
            }
        };
        read(pem);
        let key = PublicKey::from_pem(text(pem, &f)?).map_err(|e| bad(&f, e.to_string()))?;
        policy.keys.push(key);
    }
    if let Some(r) = &v.trusted_root_ref {
        let f = format!("{field}.trustedRootRef");
        let bytes = objects.value(ObjectKind::ConfigMap, r, &f)?;
        read(bytes);
        let root = TrustedRoot::from_json(bytes).map_err(|e| bad(&f, e.to_string()))?;
        policy.trusted_root = Some(root);
    }
    if let Some(k) = &v.keyless {
        if policy.trusted_root.is_none() {
            return Err(bad(
                format!("{field}.trustedRootRef"),
                "keyless verification needs the trusted root (Fulcio CAs, Rekor and CT log keys)",
            ));
        }
        if k.identities.is_empty() {
            return Err(bad(
                format!("{field}.keyless.identities"),
                "at least one identity",
            ));
        }
        let mut identities = Vec::with_capacity(k.identities.len());
        for (j, id) in k.identities.iter().enumerate() {
            identities.push(identity(id, &format!("{field}.keyless.identities[{j}]"))?);
        }
        let mut keyless = Keyless::new(identities);
        keyless.require_tlog = !v.ignore_tlog;
        keyless.require_sct = !v.ignore_sct;
        policy.keyless = Some(keyless);
    }
    if !policy.keys.is_empty() {
        if policy.trusted_root.is_none() && !v.ignore_tlog {
            return Err(bad(
                format!("{field}.trustedRootRef"),
                "key signatures need a verified transparency-log entry (as cosign's default): \
                 name the trusted root with the Rekor keys, or set ignoreTlog: true",
            ));
        }
        policy.keys_require_tlog = !v.ignore_tlog;
    }
    if let Some(n) = &v.notation {
        let f = format!("{field}.notation.trustStore");
        let roots = ca_bundle(&n.trust_store, &f, objects)?;
        read(roots);
        let ids: Vec<&str> = n.trusted_identities.iter().map(String::as_str).collect();
        let trust = NotationTrust::new(roots, &ids).map_err(|e| {
            let f = match e {
                crate::verify::TrustStoreError::Identity { .. } => {
                    format!("{field}.notation.trustedIdentities")
                }
                _ => f.clone(),
            };
            bad(f, e.to_string())
        })?;
        policy.notation = Some(trust);
    }
    if policy.keys.is_empty() && policy.keyless.is_none() && policy.notation.is_none() {
        return Err(bad(field, "set keys, keyless or notation"));
    }
    if v.count == 0 {
        return Err(bad(format!("{field}.count"), "must be at least 1"));
    }
    policy.predicate_type = v.predicate_type.clone();
    Ok(RequirementTrust {
        policy,
        signers: v.count,
        fingerprint: oci::digest_sha256(&material),
    })
}

fn ca_bundle<'a>(
    r: &CaBundleRef,
    field: &str,
    objects: &'a TrustObjects,
) -> Result<&'a [u8], InvalidSpec> {
    match (&r.config_map_ref, &r.secret_ref) {
        (Some(c), None) => {
            objects.value(ObjectKind::ConfigMap, c, &format!("{field}.configMapRef"))
        }
        (None, Some(s)) => objects.value(ObjectKind::Secret, s, &format!("{field}.secretRef")),
        _ => Err(bad(field, "set exactly one of configMapRef or secretRef")),
    }
}

fn matcher(
    exact: &Option<String>,
    re: &Option<String>,
    field: &str,
    name: &str,
) -> Result<Matcher, InvalidSpec> {
    match (exact, re) {
        (Some(s), None) => Ok(Matcher::exact(s.clone())),
        (None, Some(r)) => {
            Matcher::regex(r).map_err(|e| bad(format!("{field}.{name}RegExp"), e.to_string()))
        }
        _ => Err(bad(
            field,
            format!("set exactly one of {name} or {name}RegExp"),
        )),
    }
}

fn identity(id: &IdentitySpec, field: &str) -> Result<Identity, InvalidSpec> {
    let issuer = matcher(&id.issuer, &id.issuer_reg_exp, field, "issuer")?;
    let subject = matcher(&id.subject, &id.subject_reg_exp, field, "subject")?;
    let mut out = Identity::new(issuer, subject);
    if let Some(g) = &id.github {
        for (oid, value) in [
            (GITHUB_WORKFLOW_REPOSITORY, &g.repository),
            (GITHUB_WORKFLOW_REF, &g.git_ref),
            (GITHUB_WORKFLOW_NAME, &g.workflow),
        ] {
            if let Some(v) = value {
                out = out.with_claim(oid, Matcher::exact(v.clone()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{KeySource, KeylessSpec, NotationSpec};

    const P256: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2G2Y+2tabdTV5BcGiBIx0a9fAFwr
kBbmLSGtks4L3qX6yYY0zufBnhC8Ur/iy55GhWP/9A/bY2LhC30M9+RYtw==
-----END PUBLIC KEY-----
";

    fn key_ref(ns: &str, name: &str, key: &str) -> KeyReference {
        KeyReference {
            namespace: ns.into(),
            name: name.into(),
            key: key.into(),
        }
    }

    fn verify_spec() -> VerifySpec {
        VerifySpec {
            keys: Vec::new(),
            count: 1,
            keyless: None,
            notation: None,
            trusted_root_ref: None,
            ignore_tlog: true,
            ignore_sct: false,
            predicate_type: None,
        }
    }

    fn spec_with(v: VerifySpec) -> ReferrerPolicySpec {
        serde_json::from_value(serde_json::json!({
            "require": [{"name": "signature", "preset": "signature", "verify": v}]
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(v: VerifySpec, objects: &TrustObjects) -> InvalidSpec {
        match compile(&spec_with(v), objects) {
            Err(e) => e,
            Ok(t) => panic!("expected an error, got {t:?}"),
        }
    }

    #[test]
    fn inline_and_referenced_keys_and_their_errors_name_the_field() {
        let mut v = verify_spec();
        v.keys.push(KeySource {
            pem: Some(P256.into()),
            config_map_ref: None,
            secret_ref: None,
        });
        let trust = compile(&spec_with(v.clone()), &TrustObjects::default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(trust["signature"].policy.keys.len(), 1);
        assert!(!trust["signature"].policy.keys_require_tlog);

        v.keys.push(KeySource {
            pem: None,
            config_map_ref: None,
            secret_ref: Some(key_ref("ops", "cosign", "cosign.pub")),
        });
        let e = err(v.clone(), &TrustObjects::default());
        assert_eq!(e.field, "spec.require[0].verify.keys[1].secretRef");
        assert!(
            e.message.contains("Secret ops/cosign does not exist"),
            "{e}"
        );

        let mut objects = TrustObjects::default();
        objects.insert(
            (ObjectKind::Secret, "ops".into(), "cosign".into()),
            BTreeMap::from([("other".to_string(), b"x".to_vec())]),
        );
        let e = err(v.clone(), &objects);
        assert!(e.message.contains("has no key \"cosign.pub\""), "{e}");
        objects.insert(
            (ObjectKind::Secret, "ops".into(), "cosign".into()),
            BTreeMap::from([("cosign.pub".to_string(), b"not a key".to_vec())]),
        );
        let e = err(v.clone(), &objects);
        assert_eq!(e.field, "spec.require[0].verify.keys[1].secretRef");
        // The error never quotes the Secret's bytes.
        assert!(!e.message.contains("not a key"), "{e}");
        objects.insert(
            (ObjectKind::Secret, "ops".into(), "cosign".into()),
            BTreeMap::from([("cosign.pub".to_string(), P256.as_bytes().to_vec())]),
        );
        let trust = compile(&spec_with(v.clone()), &objects).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(trust["signature"].policy.keys.len(), 2);
        assert_eq!(format!("{objects:?}"), "[(Secret, \"ops\", \"cosign\")]");

        // cosign's default: key signatures need the tlog, hence a trusted root.
        v.ignore_tlog = false;
        let e = err(v, &objects);
        assert_eq!(e.field, "spec.require[0].verify.trustedRootRef");
    }

    #[test]
    fn keyless_needs_a_root_and_compiles_anchored_regexps() {
        let mut v = verify_spec();
        v.keyless = Some(KeylessSpec {
            identities: vec![IdentitySpec {
                issuer: Some("https://issuer.test".into()),
                issuer_reg_exp: None,
                subject: None,
                subject_reg_exp: Some("(".into()),
                github: None,
            }],
        });
        let e = err(v.clone(), &TrustObjects::default());
        assert_eq!(e.field, "spec.require[0].verify.trustedRootRef");
        v.trusted_root_ref = Some(key_ref("ops", "root", "trusted_root.json"));
        let mut objects = TrustObjects::default();
        objects.insert(
            (ObjectKind::ConfigMap, "ops".into(), "root".into()),
            BTreeMap::from([("trusted_root.json".to_string(), b"{}".to_vec())]),
        );
        let e = err(v, &objects);
        assert_eq!(
            e.field,
            "spec.require[0].verify.keyless.identities[0].subjectRegExp"
        );
    }

    #[test]
    fn notation_identity_errors_and_fingerprints_follow_the_bytes() {
        let mut v = verify_spec();
        v.notation = Some(NotationSpec {
            trust_store: CaBundleRef {
                config_map_ref: Some(key_ref("ops", "store", "ca.pem")),
                secret_ref: None,
            },
            trusted_identities: vec!["CN=x".into()],
        });
        let mut objects = TrustObjects::default();
        objects.insert(
            (ObjectKind::ConfigMap, "ops".into(), "store".into()),
            BTreeMap::from([("ca.pem".to_string(), b"junk".to_vec())]),
        );
        let e = err(v.clone(), &objects);
        assert_eq!(e.field, "spec.require[0].verify.notation.trustStore");
        assert_eq!(
            references(&spec_with(v)),
            vec![(ObjectKind::ConfigMap, "ops".into(), "store".into())]
        );

        // Same spec, other key bytes: another fingerprint.
        let mut k = verify_spec();
        k.keys.push(KeySource {
            pem: None,
            config_map_ref: Some(key_ref("ops", "k", "pub")),
            secret_ref: None,
        });
        let fp = |pem: &str| {
            let mut o = TrustObjects::default();
            o.insert(
                (ObjectKind::ConfigMap, "ops".into(), "k".into()),
                BTreeMap::from([("pub".to_string(), pem.as_bytes().to_vec())]),
            );
            compile(&spec_with(k.clone()), &o)
                .map(|t| t["signature"].fingerprint.clone())
                .unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(fp(P256), fp(P256));
        assert_ne!(fp(P256), fp(&format!("{P256}\n")));
    }
}
