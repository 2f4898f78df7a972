//! Proves the test harness (`refwarden_testkit`, `testkit/`) works: the real
//! `docker-registry` in each auth/delete variant, the token server, the
//! seeder, and the spec OCI registry with its quirk modes.

use refwarden_testkit::seed::ArtifactSpec;
use refwarden_testkit::{
    Auth, DescriptorTyping, DistributionOptions, DistributionRegistry, OciRegistry, Quirks,
    ReferrersMode, SeedAuth, Seeder, TokenServer, TokenUser, basic_header, http_client, media,
};
use reqwest::StatusCode;
use serde_json::Value;

type TestResult = refwarden_testkit::Result<()>;

const ZERO_DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn get(url: &str, auth: Option<String>) -> refwarden_testkit::Result<reqwest::Response> {
    let mut rb = http_client()?.get(url);
    if let Some(a) = auth {
        rb = rb.header("Authorization", a);
    }
    Ok(rb.send().await?)
}

/// Fetches a token over HTTP like a client would (Basic to the realm).
async fn fetch_token(
    ts: &TokenServer,
    creds: Option<(&str, &str)>,
    scope: &str,
) -> refwarden_testkit::Result<(StatusCode, Value)> {
    let mut url = url::Url::parse(&ts.realm())?;
    url.query_pairs_mut()
        .append_pair("service", ts.service())
        .append_pair("scope", scope);
    let mut rb = http_client()?.get(url);
    if let Some((u, p)) = creds {
        rb = rb.header("Authorization", basic_header(u, p));
    }
    let resp = rb.send().await?;
    let status = resp.status();
    let body: Value = serde_json::from_str(&resp.text().await?).unwrap_or(Value::Null);
    Ok((status, body))
}

// ------------------------------------------------------------ distribution

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_anonymous_answers_v2_and_serves_seeded_image() -> TestResult {
    refwarden_testkit::init_tracing();
    let reg = DistributionRegistry::start(DistributionOptions::default())?;
    let resp = get(&format!("{}/v2/", reg.url()), None).await?;
    assert_eq!(resp.status(), StatusCode::OK, "{}", reg.logs());
    assert_eq!(
        header(&resp, "Docker-Distribution-API-Version").as_deref(),
        Some("registry/2.0")
    );

    let seeder = Seeder::new(&reg.url(), SeedAuth::None)?;
    let img = seeder.push_image("team/app", "v1").await?;
    assert_eq!(
        seeder.head_manifest_digest("team/app", "v1").await?,
        img.digest
    );
    assert_eq!(
        seeder.head_manifest_digest("team/app", &img.digest).await?,
        img.digest
    );
    // Deterministic per tag.
    let again = seeder.push_image("other/repo", "v1").await?;
    assert_eq!(again.digest, img.digest);

    let idx = seeder.push_index("team/app", "multi").await?;
    assert_eq!(
        seeder.head_manifest_digest("team/app", "multi").await?,
        idx.digest
    );
    assert_eq!(idx.images.len(), 2);

    // OCI 1.1 artifact with a subject: 2.8 stores it, sends no OCI-Subject.
    let sbom = seeder
        .push_artifact(
            "team/app",
            Some(&img.subject()),
            media::SPDX_JSON,
            br#"{"spdxVersion":"SPDX-2.3"}"#,
            None,
        )
        .await?;
    assert_eq!(sbom.oci_subject, None);
    assert_eq!(
        seeder
            .head_manifest_digest("team/app", &sbom.digest)
            .await?,
        sbom.digest
    );
    let tag_idx = seeder
        .push_referrers_tag_index("team/app", &img.digest, &[sbom.descriptor()])
        .await?;
    let fallback_tag = refwarden_testkit::referrers_tag_for(&img.digest);
    assert_eq!(
        seeder
            .head_manifest_digest("team/app", &fallback_tag)
            .await?,
        tag_idx
    );
    for suffix in ["sig", "att", "sbom"] {
        let c = seeder
            .push_cosign_tag("team/app", &img.digest, suffix)
            .await?;
        assert_eq!(
            seeder
                .head_manifest_digest("team/app", &format!("{fallback_tag}.{suffix}"))
                .await?,
            c.digest
        );
    }
    assert!(
        seeder
            .push_cosign_tag("team/app", &img.digest, "bogus")
            .await
            .is_err()
    );

    // distribution 2.8 has no referrers route: plain-text 404.
    let resp = get(
        &format!("{}/v2/team/app/referrers/{}", reg.url(), img.digest),
        None,
    )
    .await?;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let ct = header(&resp, "Content-Type").unwrap_or_default();
    assert!(ct.starts_with("text/plain"), "content-type {ct}");
    assert_eq!(resp.text().await?, "404 page not found\n");

    // OPTIONS answers 200 with Allow on manifests.
    let resp = http_client()?
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v2/team/app/manifests/v1", reg.url()),
        )
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(&resp, "Allow").as_deref(),
        Some("DELETE, GET, HEAD, PUT")
    );

    // Cross-repo mount: 201 when the blob is in `from`, 202 otherwise.
    let client = http_client()?;
    let mount = |from: &str, digest: &str| {
        format!(
            "{}/v2/mounted/repo/blobs/uploads/?mount={digest}&from={from}",
            reg.url()
        )
    };
    let resp = client
        .post(mount("team/app", &img.layer_digest))
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        header(&resp, "Docker-Content-Digest").as_deref(),
        Some(img.layer_digest.as_str())
    );
    let resp = client
        .post(mount("team/nothing", &img.layer_digest))
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert!(header(&resp, "Location").is_some());

    // 2.8 ignores `?digest=` on POST (no single-request upload): 202 session.
    let resp = client
        .post(format!(
            "{}/v2/team/app/blobs/uploads/?digest={}",
            reg.url(),
            media::OCI_EMPTY_DIGEST
        ))
        .header("Content-Type", "application/octet-stream")
        .body("{}")
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);

    // A manifest whose subject does not exist is accepted (no OCI-Subject).
    let orphan = seeder
        .push_artifact(
            "team/app",
            Some(&refwarden_testkit::Subject::new(
                ZERO_DIGEST,
                media::OCI_MANIFEST,
                123,
            )),
            media::OPENVEX_JSON,
            b"{}",
            Some("orphan"),
        )
        .await?;
    assert_eq!(orphan.oci_subject, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_delete_enabled_and_disabled() -> TestResult {
    let reg = DistributionRegistry::start(DistributionOptions {
        delete_enabled: false,
        ..Default::default()
    })?;
    let seeder = Seeder::new(&reg.url(), SeedAuth::None)?;
    let img = seeder.push_image("del/app", "v1").await?;
    let url = format!("{}/v2/del/app/manifests/{}", reg.url(), img.digest);
    let resp = http_client()?.delete(&url).send().await?;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        resp.text().await?,
        "{\"errors\":[{\"code\":\"UNSUPPORTED\",\"message\":\"The operation is unsupported.\"}]}\n"
    );
    drop(reg);

    let reg = DistributionRegistry::start(DistributionOptions::default())?;
    let seeder = Seeder::new(&reg.url(), SeedAuth::None)?;
    let img = seeder.push_image("del/app", "v1").await?;
    let url = format!("{}/v2/del/app/manifests/{}", reg.url(), img.digest);
    let resp = http_client()?.delete(&url).send().await?;
    assert_eq!(resp.status(), StatusCode::ACCEPTED, "{}", reg.logs());
    let resp = http_client()?.head(&url).send().await?;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // distribution 2.8 cannot delete by tag: 400 DIGEST_INVALID.
    let resp = http_client()?
        .delete(format!("{}/v2/del/app/manifests/v1", reg.url()))
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_str(&resp.text().await?)?;
    assert_eq!(body["errors"][0]["code"], "DIGEST_INVALID");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_htpasswd_requires_basic_auth() -> TestResult {
    let reg = DistributionRegistry::start(DistributionOptions {
        auth: Auth::Htpasswd {
            users: vec![("alice".into(), "s3cret".into())],
        },
        delete_enabled: true,
    })?;
    let v2 = format!("{}/v2/", reg.url());
    let resp = get(&v2, None).await?;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let challenge = header(&resp, "WWW-Authenticate").unwrap_or_default();
    assert_eq!(challenge, "Basic realm=\"refwarden-test\"");
    let resp = get(&v2, Some(basic_header("alice", "wrong"))).await?;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = get(&v2, Some(basic_header("alice", "s3cret"))).await?;
    assert_eq!(resp.status(), StatusCode::OK, "{}", reg.logs());

    let seeder = Seeder::new(&reg.url(), SeedAuth::Basic("alice".into(), "s3cret".into()))?;
    let img = seeder.push_image("private/app", "v1").await?;
    assert_eq!(
        seeder.head_manifest_digest("private/app", "v1").await?,
        img.digest
    );
    let anon = seeder.with_auth(SeedAuth::None);
    assert!(anon.push_image("private/app", "v2").await.is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_token_auth_with_test_token_server() -> TestResult {
    let ts = TokenServer::start(
        vec![
            TokenUser::new("writer", "wpass", &["pull", "push", "delete"]),
            TokenUser::new("reader", "rpass", &["pull"]),
        ],
        false,
    )?;
    let reg = DistributionRegistry::start(DistributionOptions {
        auth: Auth::Token(ts.clone()),
        delete_enabled: true,
    })?;
    let v2 = format!("{}/v2/", reg.url());
    let resp = get(&v2, None).await?;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let challenge = header(&resp, "WWW-Authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains(&format!("realm=\"{}\"", ts.realm())),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!("service=\"{}\"", ts.service())),
        "{challenge}"
    );

    // A minted token is accepted.
    let token = ts.mint("writer", "tok/app", &["pull", "push"])?;
    let resp = get(&v2, Some(format!("Bearer {token}"))).await?;
    assert_eq!(resp.status(), StatusCode::OK, "{}", reg.logs());
    let seeder = Seeder::new(&reg.url(), SeedAuth::Bearer(token))?;
    let img = seeder.push_image("tok/app", "v1").await?;

    // Scoped challenge names the repository.
    let resp = get(&format!("{}/v2/tok/app/manifests/v1", reg.url()), None).await?;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let challenge = header(&resp, "WWW-Authenticate").unwrap_or_default();
    assert!(
        challenge.contains("scope=\"repository:tok/app:pull\""),
        "{challenge}"
    );

    // Token flow over HTTP: wrong password 401; reader gets only pull.
    let before = ts.requests();
    let (status, _) = fetch_token(&ts, Some(("reader", "nope")), "repository:tok/app:pull").await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = fetch_token(
        &ts,
        Some(("reader", "rpass")),
        "repository:tok/app:pull,push",
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ts.requests(), before + 2);
    assert_eq!(body["expires_in"], 300);
    assert!(body["issued_at"].is_string());
    assert_eq!(body["token"], body["access_token"]);
    let read_token = body["token"].as_str().unwrap_or_default().to_string();

    let reader = Seeder::new(&reg.url(), SeedAuth::Bearer(read_token.clone()))?;
    assert_eq!(
        reader.head_manifest_digest("tok/app", "v1").await?,
        img.digest
    );
    // Read-only credentials: upload POST is refused with 401.
    let resp = http_client()?
        .post(format!("{}/v2/tok/app/blobs/uploads/", reg.url()))
        .header("Authorization", format!("Bearer {read_token}"))
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let challenge = header(&resp, "WWW-Authenticate").unwrap_or_default();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );

    // Anonymous token: no access.
    let (status, body) = fetch_token(&ts, None, "repository:tok/app:pull").await?;
    assert_eq!(status, StatusCode::OK);
    let anon = body["token"].as_str().unwrap_or_default().to_string();
    let resp = get(
        &format!("{}/v2/tok/app/manifests/v1", reg.url()),
        Some(format!("Bearer {anon}")),
    )
    .await?;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // Expired token: 401.
    let expired = ts.mint_scopes("writer", &[("tok/app", &["pull"])], -120)?;
    let resp = get(
        &format!("{}/v2/tok/app/manifests/v1", reg.url()),
        Some(format!("Bearer {expired}")),
    )
    .await?;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_server_anonymous_pull() -> TestResult {
    let ts = TokenServer::start(vec![], true)?;
    let reg = DistributionRegistry::start(DistributionOptions {
        auth: Auth::Token(ts.clone()),
        delete_enabled: true,
    })?;
    let writer = ts.mint("admin", "pub/app", &["pull", "push"])?;
    let img = Seeder::new(&reg.url(), SeedAuth::Bearer(writer))?
        .push_image("pub/app", "v1")
        .await?;
    let (status, body) = fetch_token(&ts, None, "repository:pub/app:pull,push").await?;
    assert_eq!(status, StatusCode::OK);
    let anon = body["token"].as_str().unwrap_or_default().to_string();
    let seeder = Seeder::new(&reg.url(), SeedAuth::Bearer(anon))?;
    assert_eq!(
        seeder.head_manifest_digest("pub/app", "v1").await?,
        img.digest
    );
    assert!(seeder.push_blob("pub/app", b"nope").await.is_err());
    Ok(())
}

#[test]
fn distribution_missing_binary_is_an_error_not_a_skip() {
    let err = DistributionRegistry::start_with_binary(
        DistributionOptions::default(),
        "/nonexistent/docker-registry",
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(err.contains("apt-get install"), "{err}");
}

// ------------------------------------------------------------ spec registry

async fn oci_with_referrers(
    quirks: Quirks,
) -> refwarden_testkit::Result<(
    OciRegistry,
    Seeder,
    refwarden_testkit::PushedImage,
    Vec<refwarden_testkit::PushedArtifact>,
)> {
    let reg = OciRegistry::start(quirks)?;
    let seeder = Seeder::new(&reg.url(), SeedAuth::None)?;
    let img = seeder.push_image("org/team/app", "v1").await?;
    let mut arts = Vec::new();
    for (i, at) in [
        media::SIGSTORE_BUNDLE_V03,
        media::SPDX_JSON,
        media::SIGSTORE_BUNDLE_V03,
    ]
    .iter()
    .enumerate()
    {
        let mut spec = ArtifactSpec {
            subject: Some(img.subject()),
            artifact_type: Some(at.to_string()),
            config: None,
            layer_media_type: at.to_string(),
            payload: format!("payload {i}").into_bytes(),
            annotations: Default::default(),
            tag: None,
        };
        spec.annotations.insert(
            "org.opencontainers.image.created".into(),
            format!("2026-01-0{}T00:00:00Z", i + 1),
        );
        arts.push(seeder.push_artifact_spec("org/team/app", &spec).await?);
    }
    // No artifactType: the config mediaType stands in (trivy style).
    arts.push(
        seeder
            .push_artifact_spec(
                "org/team/app",
                &ArtifactSpec {
                    subject: Some(img.subject()),
                    artifact_type: None,
                    config: Some((
                        media::CYCLONEDX_JSON.into(),
                        b"{\"bomFormat\":\"CycloneDX\"}".to_vec(),
                    )),
                    layer_media_type: media::CYCLONEDX_JSON.into(),
                    payload: b"{}x".to_vec(),
                    annotations: Default::default(),
                    tag: None,
                },
            )
            .await?,
    );
    Ok((reg, seeder, img, arts))
}

async fn referrers_page(
    url: &str,
) -> refwarden_testkit::Result<(
    StatusCode,
    Option<String>,
    Option<String>,
    Option<String>,
    Value,
)> {
    let resp = get(url, None).await?;
    let status = resp.status();
    let ct = header(&resp, "Content-Type");
    let filters = header(&resp, "OCI-Filters-Applied");
    let link = header(&resp, "Link");
    let body: Value = serde_json::from_str(&resp.text().await?).unwrap_or(Value::Null);
    Ok((status, ct, filters, link, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_registry_referrers_per_spec() -> TestResult {
    let (reg, seeder, img, arts) = oci_with_referrers(Quirks::default()).await?;
    assert!(
        arts.iter()
            .all(|a| a.oci_subject.as_deref() == Some(img.digest.as_str()))
    );
    assert_eq!(
        seeder.head_manifest_digest("org/team/app", "v1").await?,
        img.digest
    );
    let base = format!("{}/v2/org/team/app/referrers/{}", reg.url(), img.digest);

    let (status, ct, filters, link, body) = referrers_page(&base).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct.as_deref(), Some(media::OCI_INDEX));
    assert_eq!(filters, None);
    assert_eq!(link, None);
    assert_eq!(body["mediaType"], media::OCI_INDEX);
    let manifests = body["manifests"].as_array().cloned().unwrap_or_default();
    assert_eq!(manifests.len(), 4);
    for a in &arts {
        let d = manifests
            .iter()
            .find(|m| m["digest"] == a.digest.as_str())
            .ok_or("artifact missing from referrers")?;
        assert_eq!(d, &a.descriptor());
    }
    let cyclonedx = manifests
        .iter()
        .find(|m| m["artifactType"] == media::CYCLONEDX_JSON)
        .ok_or("config mediaType not used as artifactType")?;
    assert!(cyclonedx.get("annotations").is_none());

    // Filtering (URL-encoded `+`), header set.
    let mut url = url::Url::parse(&base)?;
    url.query_pairs_mut()
        .append_pair("artifactType", media::SIGSTORE_BUNDLE_V03);
    let (status, _, filters, _, body) = referrers_page(url.as_str()).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(filters.as_deref(), Some("artifactType"));
    assert_eq!(body["manifests"].as_array().map(Vec::len), Some(2));

    // Filter ignored (Harbor 2.8): no header, everything.
    reg.update_quirks(|q| q.filters_applied_header = false);
    let (_, _, filters, _, body) = referrers_page(url.as_str()).await?;
    assert_eq!(filters, None);
    assert_eq!(body["manifests"].as_array().map(Vec::len), Some(4));
    reg.update_quirks(|q| q.filters_applied_header = true);

    // Pagination: page_size 3 -> 3 + 1, Link relative to the registry.
    reg.update_quirks(|q| q.page_size = 3);
    let (status, _, _, link, body) = referrers_page(&base).await?;
    assert_eq!(status, StatusCode::OK);
    let first: Vec<Value> = body["manifests"].as_array().cloned().unwrap_or_default();
    assert_eq!(first.len(), 3);
    let link = link.ok_or("no Link header")?;
    assert!(link.ends_with(">; rel=\"next\""), "{link}");
    assert!(
        link.starts_with(&format!("</v2/org/team/app/referrers/{}?", img.digest)),
        "{link}"
    );
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or_default();
    let (status, _, _, link2, body) = referrers_page(&format!("{}{next}", reg.url())).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(link2, None);
    let second: Vec<Value> = body["manifests"].as_array().cloned().unwrap_or_default();
    assert_eq!(second.len(), 1);
    assert!(!first.contains(&second[0]));
    // Filter is carried over in the Link.
    reg.update_quirks(|q| q.page_size = 1);
    let (_, _, filters, link, body) = referrers_page(url.as_str()).await?;
    assert_eq!(filters.as_deref(), Some("artifactType"));
    assert_eq!(body["manifests"].as_array().map(Vec::len), Some(1));
    let link = link.ok_or("no Link header on filtered page")?;
    assert!(
        link.contains("artifactType=application%2Fvnd.dev.sigstore.bundle.v0.3%2Bjson"),
        "{link}"
    );
    reg.update_quirks(|q| q.page_size = 100);

    // Unknown subject: 200 empty index; bad digest 400; unknown repo 404 NAME_UNKNOWN.
    let (status, ct, _, _, body) = referrers_page(&format!(
        "{}/v2/org/team/app/referrers/{ZERO_DIGEST}",
        reg.url()
    ))
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct.as_deref(), Some(media::OCI_INDEX));
    assert_eq!(body["manifests"], serde_json::json!([]));
    let (status, _, _, _, body) = referrers_page(&format!(
        "{}/v2/org/team/app/referrers/sha256:xyz",
        reg.url()
    ))
    .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["code"], "DIGEST_INVALID");
    let (status, _, _, _, body) = referrers_page(&format!(
        "{}/v2/no/such/repo/referrers/{ZERO_DIGEST}",
        reg.url()
    ))
    .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["errors"][0]["code"], "NAME_UNKNOWN");

    // Tags list, access log.
    let resp = get(&format!("{}/v2/org/team/app/tags/list", reg.url()), None).await?;
    let body: Value = serde_json::from_str(&resp.text().await?)?;
    assert_eq!(body["tags"], serde_json::json!(["v1"]));
    assert!(reg.count_requests("GET", "/referrers/") >= 8);
    assert!(
        reg.access_log()
            .iter()
            .any(|e| e.method == "PUT" && e.status == 201)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_registry_quirk_modes() -> TestResult {
    let (reg, seeder, img, _) = oci_with_referrers(Quirks::default()).await?;
    let url = format!("{}/v2/org/team/app/referrers/{}", reg.url(), img.digest);
    let cases: [(ReferrersMode, u16, &str); 11] = [
        (ReferrersMode::NotFoundPlain, 404, "application/json"),
        (ReferrersMode::NotFoundHtml, 404, "text/html"),
        (ReferrersMode::NotFoundTextPlain, 404, "text/plain"),
        (
            ReferrersMode::WrongContentTypeJson,
            200,
            "application/json; charset=utf-8",
        ),
        (ReferrersMode::AlwaysEmptyIndex, 200, media::OCI_INDEX),
        (ReferrersMode::RedirectElsewhere, 303, ""),
        (ReferrersMode::HtmlLoginPage200, 200, "text/html"),
        (ReferrersMode::NotAcceptable406, 406, "application/json"),
        (ReferrersMode::MethodNotAllowed405, 405, "application/json"),
        (ReferrersMode::NotFoundWithEmptyIndex, 404, media::OCI_INDEX),
        (ReferrersMode::UnknownSubject400, 200, media::OCI_INDEX),
    ];
    for (mode, status, ct) in cases {
        reg.update_quirks(|q| q.referrers = mode);
        let (got, got_ct, _, _, body) = referrers_page(&url).await?;
        assert_eq!(got.as_u16(), status, "{mode:?}");
        let got_ct = got_ct.unwrap_or_default();
        assert!(got_ct.starts_with(ct), "{mode:?}: {got_ct}");
        match mode {
            ReferrersMode::NotFoundPlain => {
                assert_eq!(body["errors"][0]["code"], "MANIFEST_UNKNOWN")
            }
            ReferrersMode::MethodNotAllowed405 => {
                assert_eq!(body["errors"][0]["code"], "UNSUPPORTED")
            }
            ReferrersMode::WrongContentTypeJson | ReferrersMode::UnknownSubject400 => {
                assert_eq!(
                    body["manifests"].as_array().map(Vec::len),
                    Some(4),
                    "{mode:?}"
                )
            }
            ReferrersMode::NotFoundWithEmptyIndex => assert!(body["manifests"].is_array()),
            ReferrersMode::AlwaysEmptyIndex => {
                assert_eq!(body["manifests"].as_array().map(Vec::len), Some(0))
            }
            ReferrersMode::NotFoundHtml
            | ReferrersMode::HtmlLoginPage200
            | ReferrersMode::NotFoundTextPlain => {
                assert_eq!(body, Value::Null, "{mode:?} must not be JSON")
            }
            _ => {}
        }
    }
    // GHCR's redirect elsewhere: 303 to the other host with the digest cut at ':'.
    reg.update_quirks(|q| {
        q.referrers = ReferrersMode::RedirectElsewhere;
        q.redirect_elsewhere = Some("http://127.0.0.1:9".into());
    });
    let resp = http_client()?.get(&url).send().await?;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        header(&resp, "Location").as_deref(),
        Some("http://127.0.0.1:9/-/v2/packages/container/package/org/team/app/referrers/sha256")
    );
    // Descriptor typing: as the spec says, omitted (ACR/CMK), or oci.empty.
    reg.update_quirks(|q| q.referrers = ReferrersMode::Native);
    for (typing, want) in [
        (DescriptorTyping::Spec, Some(media::SIGSTORE_BUNDLE_V03)),
        (DescriptorTyping::Omitted, None),
        (DescriptorTyping::OciEmpty, Some(media::OCI_EMPTY)),
    ] {
        reg.update_quirks(|q| q.descriptor_artifact_type = typing);
        let (_, _, _, _, body) = referrers_page(&url).await?;
        let types: Vec<Option<&str>> = body["manifests"]
            .as_array()
            .map(|a| a.iter().map(|d| d["artifactType"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(types.len(), 4, "{typing:?}");
        assert!(types.contains(&want), "{typing:?}: {types:?}");
        if typing != DescriptorTyping::Spec {
            assert!(types.iter().all(|t| *t == want), "{typing:?}: {types:?}");
        }
    }
    reg.update_quirks(|q| q.descriptor_artifact_type = DescriptorTyping::Spec);

    // Quay: unknown subject -> 400 MANIFEST_INVALID.
    reg.update_quirks(|q| q.referrers = ReferrersMode::UnknownSubject400);
    let (status, _, _, _, body) = referrers_page(&format!(
        "{}/v2/org/team/app/referrers/{ZERO_DIGEST}",
        reg.url()
    ))
    .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["code"], "MANIFEST_INVALID");

    // Without native support no OCI-Subject on push.
    reg.update_quirks(|q| q.referrers = ReferrersMode::NotFoundPlain);
    let art = seeder
        .push_artifact(
            "org/team/app",
            Some(&img.subject()),
            media::OPENVEX_JSON,
            b"{}",
            None,
        )
        .await?;
    assert_eq!(art.oci_subject, None);

    // GitLab: sha256-<hex> tag resolves to the subject itself.
    let dash = refwarden_testkit::referrers_tag_for(&img.digest);
    assert!(
        seeder
            .head_manifest_digest("org/team/app", &dash)
            .await
            .is_err()
    );
    reg.update_quirks(|q| q.dash_tag_resolves_digest = true);
    assert_eq!(
        seeder.head_manifest_digest("org/team/app", &dash).await?,
        img.digest
    );

    // Delete disabled -> 405 UNSUPPORTED; enabled -> 202.
    reg.update_quirks(|q| q.delete_enabled = false);
    let murl = format!("{}/v2/org/team/app/manifests/{}", reg.url(), art.digest);
    let resp = http_client()?.delete(&murl).send().await?;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    reg.update_quirks(|q| q.delete_enabled = true);
    let resp = http_client()?.delete(&murl).send().await?;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let resp = http_client()?.get(&murl).send().await?;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // 429 for the next 2 requests with Retry-After, then normal.
    reg.update_quirks(|q| q.rate_limit_429 = Some((2, Some("1".into()))));
    for _ in 0..2 {
        let resp = get(&format!("{}/v2/", reg.url()), None).await?;
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(header(&resp, "Retry-After").as_deref(), Some("1"));
    }
    assert_eq!(
        get(&format!("{}/v2/", reg.url()), None).await?.status(),
        StatusCode::OK
    );

    // Basic auth required.
    reg.update_quirks(|q| q.require_basic_auth = Some(("u".into(), "p".into())));
    let resp = get(&format!("{}/v2/", reg.url()), None).await?;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        header(&resp, "WWW-Authenticate")
            .unwrap_or_default()
            .starts_with("Basic ")
    );
    let resp = get(&format!("{}/v2/", reg.url()), Some(basic_header("u", "p"))).await?;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(&resp, "Docker-Distribution-API-Version").as_deref(),
        Some("registry/2.0")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_registry_blob_uploads_and_mounts() -> TestResult {
    let reg = OciRegistry::start(Quirks::default())?;
    let seeder = Seeder::new(&reg.url(), SeedAuth::None)?;
    let client = http_client()?;
    let digest = seeder.push_blob("src/repo", b"hello blob").await?;

    // HEAD blob: length without body.
    let resp = client
        .head(format!("{}/v2/src/repo/blobs/{digest}", reg.url()))
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "Content-Length").as_deref(), Some("10"));
    assert_eq!(
        header(&resp, "Docker-Content-Digest").as_deref(),
        Some(digest.as_str())
    );
    let resp = client
        .get(format!("{}/v2/src/repo/blobs/{digest}", reg.url()))
        .send()
        .await?;
    assert_eq!(resp.bytes().await?.as_ref(), b"hello blob");
    let resp = client
        .get(format!("{}/v2/src/repo/blobs/{ZERO_DIGEST}", reg.url()))
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = serde_json::from_str(&resp.text().await?)?;
    assert_eq!(body["errors"][0]["code"], "BLOB_UNKNOWN");

    // Mount: 201 when present in `from`, 202 otherwise, 202 when unsupported.
    let mount = |from: &str| {
        format!(
            "{}/v2/dst/repo/blobs/uploads/?mount={digest}&from={from}",
            reg.url()
        )
    };
    let resp = client.post(mount("src/repo")).send().await?;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = client.post(mount("nope/repo")).send().await?;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    reg.update_quirks(|q| q.mount_supported = false);
    let resp = client.post(mount("src/repo")).send().await?;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = header(&resp, "Location").ok_or("no Location")?;
    // Cancel the session.
    let resp = client
        .delete(format!("{}{location}", reg.url()))
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = client
        .get(format!("{}{location}", reg.url()))
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Chunked: POST, PATCH x2 with Content-Range, PUT ?digest=.
    let data = b"chunk-one|chunk-two";
    let resp = client
        .post(format!("{}/v2/dst/repo/blobs/uploads/", reg.url()))
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let loc = header(&resp, "Location").ok_or("no Location")?;
    let resp = client
        .patch(format!("{}{loc}", reg.url()))
        .header("Content-Range", "0-9")
        .body(data[..10].to_vec())
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&resp, "Range").as_deref(), Some("0-9"));
    let resp = client
        .patch(format!("{}{loc}", reg.url()))
        .header("Content-Range", "0-9")
        .body(data[10..].to_vec())
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let resp = client
        .patch(format!("{}{loc}", reg.url()))
        .header("Content-Range", format!("10-{}", data.len() - 1))
        .body(data[10..].to_vec())
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let d = refwarden_testkit::digest_of(data);
    let resp = client
        .put(format!("{}{loc}?digest={d}", reg.url()))
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        header(&resp, "Docker-Content-Digest").as_deref(),
        Some(d.as_str())
    );

    // Wrong digest on PUT -> 400 DIGEST_INVALID.
    let resp = client
        .post(format!("{}/v2/dst/repo/blobs/uploads/", reg.url()))
        .send()
        .await?;
    let loc = header(&resp, "Location").ok_or("no Location")?;
    let resp = client
        .put(format!("{}{loc}?digest={ZERO_DIGEST}", reg.url()))
        .body("x")
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // Chunked unsupported -> PATCH 405.
    reg.update_quirks(|q| q.chunked_upload_supported = false);
    let resp = client
        .post(format!("{}/v2/dst/repo/blobs/uploads/", reg.url()))
        .send()
        .await?;
    let loc = header(&resp, "Location").ok_or("no Location")?;
    let resp = client
        .patch(format!("{}{loc}", reg.url()))
        .body("x")
        .send()
        .await?;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);

    // Manifest referring to an unknown blob is refused.
    let bad = serde_json::json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_EMPTY, "digest": media::OCI_EMPTY_DIGEST, "size": 2},
        "layers": [],
    });
    let r = seeder
        .put_manifest_raw(
            "fresh/repo",
            "x",
            media::OCI_MANIFEST,
            &serde_json::to_vec(&bad)?,
        )
        .await?;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("MANIFEST_BLOB_UNKNOWN"));
    Ok(())
}
