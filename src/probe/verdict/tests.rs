//! Unit tests of the capability verdicts: status codes, content types and registry quirks.

use super::*;

fn answer(status: u16, ct: Option<&str>, body: &str) -> Observation {
    let error_codes = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("errors")?.as_array().map(|a| {
                a.iter()
                    .filter_map(|e| e.get("code")?.as_str().map(String::from))
                    .collect()
            })
        })
        .unwrap_or_default();
    Observation::Answered(Answer {
        status,
        content_type: ct.map(String::from),
        headers: vec![],
        body: Bytes::from(body.to_string()),
        error_codes,
    })
}

fn with_header(mut obs: Observation, k: &str, v: &str) -> Observation {
    if let Observation::Answered(a) = &mut obs {
        a.headers.push((k.to_ascii_lowercase(), v.to_string()));
    }
    obs
}

const EMPTY_INDEX: &str =
    r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
const INDEX_CT: Option<&str> = Some("application/vnd.oci.image.index.v1+json");

#[test]
fn delete_without_write_probes_is_unknown_and_options_advisory() {
    let c = delete_read_only(DeleteTarget::Manifest, Some("GET, HEAD, DELETE"));
    assert_eq!(c.state, CapabilityState::Unknown);
    assert_eq!(c.reason, "WriteProbesDisabled");
    let m = c.message.unwrap_or_default();
    assert!(
        m.contains("Allow: GET, HEAD, DELETE") && m.contains("advisory"),
        "{m}"
    );
    let c = delete_read_only(DeleteTarget::Blob, None);
    assert_eq!(c.state, CapabilityState::Unknown);
}

#[test]
fn referrers_200_index_is_supported() {
    let c = referrers_api(&answer(200, INDEX_CT, EMPTY_INDEX));
    assert_eq!(c.state, CapabilityState::Supported);
    assert_eq!(c.reason, "IndexReturned");
    assert_eq!(c.http_status, Some(200));
}

#[test]
fn referrers_200_index_type_but_garbage_body_is_unsupported() {
    let c = referrers_api(&answer(200, INDEX_CT, "<html>"));
    assert_eq!(c.state, CapabilityState::Unsupported);
    assert_eq!(c.reason, "InvalidIndex");
}

#[test]
fn referrers_200_html_login_page_is_unsupported() {
    let c = referrers_api(&answer(200, Some("text/html"), "<html>login</html>"));
    assert_eq!(c.state, CapabilityState::Unsupported);
    assert_eq!(c.reason, "HtmlInsteadOfIndex");
}

#[test]
fn referrers_200_application_json_index_harbor_is_supported_non_conformant() {
    let c = referrers_api(&answer(200, Some("application/json"), EMPTY_INDEX));
    assert_eq!(c.state, CapabilityState::Supported);
    assert_eq!(c.reason, NON_CONFORMANT_CONTENT_TYPE);
    assert!(c.message.unwrap_or_default().contains("Harbor"));
    // JSON that is not an index (an error object) is still no API.
    let c = referrers_api(&answer(200, Some("application/json"), r#"{"errors":[]}"#));
    assert_eq!(c.state, CapabilityState::Unsupported);
    assert_eq!(c.reason, "WrongContentType");
}

#[test]
fn referrers_redirect_to_another_host_is_unsupported() {
    let mut a = Answer {
        status: 303,
        ..Default::default()
    };
    a.headers.push((
        "location".into(),
        "https://github.com/-/v2/packages/container/package/app".into(),
    ));
    let c = referrers_api(&Observation::Answered(a));
    assert_eq!(c.state, CapabilityState::Unsupported);
    assert_eq!(c.reason, "RedirectedToOtherHost");
    assert!(c.message.unwrap_or_default().contains("github.com"));
}

#[test]
fn referrers_404_with_index_is_supported() {
    let c = referrers_api(&answer(404, INDEX_CT, EMPTY_INDEX));
    assert_eq!(c.state, CapabilityState::Supported);
    assert_eq!(c.reason, "EmptyIndexOn404");
}

#[test]
fn referrers_404_plain_is_unsupported() {
    let c = referrers_api(&answer(
        404,
        Some("application/json"),
        r#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#,
    ));
    assert_eq!(c.state, CapabilityState::Unsupported);
    assert_eq!(c.reason, "NotFound");
    let c = referrers_api(&answer(404, Some("text/html"), "<html>404</html>"));
    assert_eq!(c.state, CapabilityState::Unsupported);
    let c = referrers_api(&answer(404, None, ""));
    assert_eq!(c.state, CapabilityState::Unsupported);
}

#[test]
fn referrers_404_name_unknown_is_unknown() {
    let c = referrers_api(&answer(
        404,
        Some("application/json"),
        r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#,
    ));
    assert_eq!(c.state, CapabilityState::Unknown);
    assert_eq!(c.reason, "RepositoryNotFound");
}

#[test]
fn referrers_400_405_406_are_unsupported() {
    for s in [400, 405, 406] {
        let c = referrers_api(&answer(s, None, ""));
        assert_eq!(c.state, CapabilityState::Unsupported, "status {s}");
    }
}

#[test]
fn auth_failures_are_unknown_never_unsupported() {
    // The crate's one HTTP table: 401 is missing/rejected credentials, 403 (or a 401
    // saying insufficient_scope) credentials that may not do this.
    for (s, reason) in [(401, "AuthFailed"), (403, "InsufficientPermissions")] {
        for c in [
            referrers_api(&answer(s, None, "")),
            cross_repo_mount(&answer(s, None, "")),
            chunked_upload(&answer(s, None, ""), None),
            delete(DeleteTarget::Manifest, &answer(s, None, ""), None),
            delete(DeleteTarget::Blob, &answer(s, None, ""), None),
        ] {
            assert_eq!(c.state, CapabilityState::Unknown, "status {s}: {c:?}");
            assert_eq!(c.reason, reason, "status {s}");
        }
    }
}

#[test]
fn server_errors_and_rate_limits_are_unknown() {
    assert_eq!(
        referrers_api(&answer(503, None, "")).state,
        CapabilityState::Unknown
    );
    assert_eq!(referrers_api(&answer(429, None, "")).reason, "RateLimited");
}

#[test]
fn transport_failure_is_unknown_with_its_reason() {
    let obs = Observation::Failed {
        reason: crate::reason::Reason::Unreachable,
        message: "connection refused".into(),
    };
    let c = referrers_api(&obs);
    assert_eq!(c.state, CapabilityState::Unknown);
    assert_eq!(c.reason, "Unreachable");
    assert_eq!(c.http_status, None);
}

#[test]
fn mount_201_supported_202_unsupported() {
    assert_eq!(
        cross_repo_mount(&answer(201, None, "")).state,
        CapabilityState::Supported
    );
    let c = cross_repo_mount(&answer(202, None, ""));
    assert_eq!(c.state, CapabilityState::Unsupported);
    assert_eq!(c.reason, "MountRefused");
}

#[test]
fn chunked_upload_needs_location_and_accepted_chunk() {
    let post = with_header(answer(202, None, ""), "Location", "/v2/x/blobs/uploads/1");
    assert_eq!(
        chunked_upload(&post, Some(&answer(202, None, ""))).state,
        CapabilityState::Supported
    );
    assert_eq!(
        chunked_upload(&post, Some(&answer(416, None, ""))).state,
        CapabilityState::Unsupported
    );
    assert_eq!(
        chunked_upload(&answer(202, None, ""), None).reason,
        "NoUploadLocation"
    );
    let skipped = Observation::skipped(
        crate::reason::Reason::WriteProbesDisabled,
        "probe.writeProbes is false",
    );
    let c = chunked_upload(&skipped, None);
    assert_eq!(c.state, CapabilityState::Unknown);
    assert_eq!(c.reason, "WriteProbesDisabled");
}

#[test]
fn delete_verdicts() {
    let c = delete(
        DeleteTarget::Manifest,
        &answer(404, None, r#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#),
        Some("GET, HEAD, PUT, DELETE"),
    );
    assert_eq!(c.state, CapabilityState::Supported);
    assert!(c.message.as_deref().unwrap_or("").contains("Allow"));
    let c = delete(
        DeleteTarget::Blob,
        &answer(405, None, r#"{"errors":[{"code":"UNSUPPORTED"}]}"#),
        Some("GET, HEAD, DELETE"),
    );
    assert_eq!(c.state, CapabilityState::Unsupported);
    assert_eq!(c.reason, "DeleteDisabled");
    let c = delete(
        DeleteTarget::Blob,
        &answer(404, None, r#"{"errors":[{"code":"NAME_UNKNOWN"}]}"#),
        None,
    );
    assert_eq!(c.state, CapabilityState::Unknown);
}

#[test]
fn filter_verdicts() {
    let supported = Capability::supported("IndexReturned", Some(200), "");
    let with = with_header(
        answer(200, INDEX_CT, EMPTY_INDEX),
        "OCI-Filters-Applied",
        "artifactType",
    );
    assert_eq!(
        artifact_type_filter(&supported, &with).state,
        CapabilityState::Supported
    );
    let without = answer(200, INDEX_CT, EMPTY_INDEX);
    assert_eq!(
        artifact_type_filter(&supported, &without).reason,
        "FiltersNotApplied"
    );
    let unsupported = Capability::unsupported("NotFound", Some(404), "");
    assert_eq!(
        artifact_type_filter(&unsupported, &with).state,
        CapabilityState::Unsupported
    );
    let unknown = Capability::unknown("InsufficientPermissions", Some(401), "");
    assert_eq!(
        artifact_type_filter(&unknown, &with).state,
        CapabilityState::Unknown
    );
}

#[test]
fn version_header_either_name() {
    for (status, header, version) in [
        (401, "Docker-Distribution-API-Version", "registry/2.0"),
        (200, "OCI-Distribution-API-Version", "oci/1.1"),
    ] {
        let (v, c) = api_version(&with_header(answer(status, None, ""), header, version));
        assert_eq!(v.as_deref(), Some(version));
        assert!(c.is_supported(), "{header}");
    }
    let (v, c) = api_version(&answer(200, None, ""));
    assert!(v.is_none());
    assert_eq!(c.state, CapabilityState::Unsupported);
    let (_, c) = api_version(&answer(401, None, ""));
    assert_eq!(c.state, CapabilityState::Unknown);
}

#[test]
fn score_counts_delete_once_and_only_when_both() {
    let s = Capability::supported("x", None, "");
    let u = Capability::unsupported("x", None, "");
    assert_eq!(score(&s, &s, &s, &s, &s, &s), 5);
    assert_eq!(score(&s, &s, &s, &s, &s, &u), 4);
    assert_eq!(score(&u, &u, &u, &u, &u, &u), 0);
    assert_eq!(score(&s, &u, &s, &u, &s, &s), 3);
}
