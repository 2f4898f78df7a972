//! Lenient decoding of listing pages (pure) into serde structs: a referrers or fallback-tag
//! index (media type, descriptors, annotations) and a tag list page. A malformed field or entry
//! is dropped, never the page.
//!
//! Not oci-spec's `ImageIndex`/`Descriptor`/`TagList`: those reject a whole page for one bad
//! entry (an unknown `mediaType`, a missing `size`, `"tags": null` on an empty repository),
//! where discovery must keep the rest of what a registry (or a client writing a fallback tag)
//! listed.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::tagschema::ListedDescriptor;
use crate::oci;

/// A value of type `T`, or whatever else was there (then ignored).
#[derive(Debug, Default)]
enum Lenient<T> {
    Valid(T),
    #[default]
    Invalid,
}

impl<T> Lenient<T> {
    fn valid(self) -> Option<T> {
        match self {
            Lenient::Valid(v) => Some(v),
            Lenient::Invalid => None,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either<T> {
            Valid(T),
            Invalid(IgnoredAny),
        }
        Ok(match Either::<T>::deserialize(d)? {
            Either::Valid(v) => Lenient::Valid(v),
            Either::Invalid(_) => Lenient::Invalid,
        })
    }
}

/// `T` read only from a JSON object (a derived struct would also accept an array, by position).
struct FromObject<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for FromObject<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(ObjectVisitor(PhantomData))
            .map(FromObject)
    }
}

/// String values of an `annotations` object (other values dropped).
type LenientAnnotations = Lenient<BTreeMap<String, Lenient<String>>>;

fn string_annotations(a: LenientAnnotations) -> BTreeMap<String, String> {
    a.valid()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| v.valid().map(|v| (k, v)))
        .collect()
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct IndexFields {
    #[serde(default)]
    media_type: Lenient<String>,
    /// `None`: absent or `null`.
    #[serde(default)]
    manifests: Option<Lenient<Vec<Lenient<FromObject<DescriptorFields>>>>>,
    #[serde(default)]
    annotations: LenientAnnotations,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescriptorFields {
    #[serde(default)]
    media_type: Lenient<String>,
    #[serde(default)]
    digest: Lenient<String>,
    #[serde(default)]
    size: Lenient<i64>,
    #[serde(default)]
    artifact_type: Lenient<String>,
    #[serde(default)]
    annotations: LenientAnnotations,
    /// `None`: absent or `null`; `Some(Invalid)`: present but not an object.
    #[serde(default)]
    platform: Option<Lenient<FromObject<PlatformFields>>>,
}

#[derive(Deserialize)]
struct PlatformFields {
    #[serde(default)]
    os: Lenient<String>,
    #[serde(default)]
    architecture: Lenient<String>,
    #[serde(default)]
    variant: Lenient<String>,
}

impl PlatformFields {
    /// `os/architecture[/variant]`; `None` when it names no OS or architecture.
    fn label(self) -> Option<String> {
        let text = |f: Lenient<String>| f.valid().filter(|s| !s.is_empty());
        let (os, arch) = (text(self.os)?, text(self.architecture)?);
        Some(match text(self.variant) {
            Some(v) => format!("{os}/{arch}/{v}"),
            None => format!("{os}/{arch}"),
        })
    }
}

impl DescriptorFields {
    /// `None` when it has no usable digest.
    fn listed(self) -> Option<ListedDescriptor> {
        let digest = self.digest.valid()?;
        if oci::parse_digest(&digest).is_err() {
            return None;
        }
        let (has_platform, platform) = match self.platform {
            None => (false, None),
            Some(p) => (true, p.valid().and_then(|p| p.0.label())),
        };
        Some(ListedDescriptor {
            media_type: self.media_type.valid().unwrap_or_default(),
            digest,
            size: self.size.valid().unwrap_or(0),
            artifact_type: self.artifact_type.valid().filter(|s| !s.is_empty()),
            annotations: string_annotations(self.annotations),
            has_platform,
            platform,
        })
    }
}

/// An image index as a listing: a referrers API page, a fallback tag's index, an image index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexPage {
    /// `mediaType` (when a string).
    pub media_type: Option<String>,
    /// `manifests` entries with a usable digest; `None` when `manifests` is not an array.
    pub manifests: Option<Vec<ListedDescriptor>>,
    /// `annotations` (string values only).
    pub annotations: BTreeMap<String, String>,
}

impl IndexPage {
    /// Decodes a body; `Err` only when it is not JSON (JSON that is not an object lists nothing).
    pub fn decode(body: &[u8]) -> Result<Self, serde_json::Error> {
        let fields: Lenient<FromObject<IndexFields>> = serde_json::from_slice(body)?;
        Ok(Self::from_fields(fields))
    }

    /// From an already parsed JSON value.
    pub fn from_value(v: &serde_json::Value) -> Self {
        Lenient::<FromObject<IndexFields>>::deserialize(v)
            .map(Self::from_fields)
            .unwrap_or_default()
    }

    fn from_fields(fields: Lenient<FromObject<IndexFields>>) -> Self {
        let fields = fields.valid().map(|f| f.0).unwrap_or_default();
        IndexPage {
            media_type: fields.media_type.valid(),
            manifests: fields.manifests.and_then(Lenient::valid).map(|entries| {
                entries
                    .into_iter()
                    .filter_map(|e| e.valid().and_then(|d| d.0.listed()))
                    .collect()
            }),
            annotations: string_annotations(fields.annotations),
        }
    }

    /// The listed descriptors (none when `manifests` is not an array).
    pub fn descriptors(self) -> Vec<ListedDescriptor> {
        self.manifests.unwrap_or_default()
    }
}

/// One page of `GET /v2/<name>/tags/list` (`name` unused). Strict in `tags`: an array of
/// strings, or `null`/absent (an empty repository).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct TagListPage {
    /// The page's tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_bad_entry_or_field_is_dropped_not_the_page() {
        let body = format!(
            r#"{{"mediaType":"application/vnd.oci.image.index.v1+json","annotations":{{"a":"b","n":1}},
            "manifests":[{{"digest":"nope"}},3,["{D}"],{{"digest":"{D}","size":1.5,"artifactType":"",
            "mediaType":7,"annotations":[1],"platform":"linux"}},
            {{"digest":"{D}","size":9,"artifactType":"x/y","platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}}]}}"#
        );
        let page = IndexPage::decode(body.as_bytes()).unwrap();
        assert_eq!(page.media_type.as_deref(), Some(oci::OCI_INDEX));
        assert_eq!(page.annotations.len(), 1);
        let m = page.manifests.unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].size, m[0].media_type.as_str()), (0, ""));
        assert_eq!(m[0].artifact_type, None);
        assert!(m[0].annotations.is_empty());
        assert!(m[0].has_platform && m[0].platform.is_none());
        assert_eq!(m[1].size, 9);
        assert_eq!(m[1].platform.as_deref(), Some("linux/arm64/v8"));
    }

    #[test]
    fn not_an_object_lists_nothing_and_not_json_is_an_error() {
        assert!(IndexPage::decode(b"{").is_err());
        for body in [
            &b"3"[..],
            b"[]",
            b"null",
            br#"{"manifests":{}}"#,
            br#"{"manifests":null}"#,
        ] {
            let page = IndexPage::decode(body).unwrap();
            assert_eq!(page.manifests, None, "{}", String::from_utf8_lossy(body));
        }
        let v = serde_json::json!({"manifests": [{"digest": D, "platform": null}]});
        let page = IndexPage::from_value(&v);
        assert!(!page.descriptors()[0].has_platform);
    }
}
