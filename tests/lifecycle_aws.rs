//! ECR through the AWS API against moto (`pip install 'moto[server]'`): GetLifecyclePolicy,
//! DescribeImages and GetAuthorizationToken through refwarden's code. moto only stores
//! policies (its validator predates archive/transition rules), so the policy here is a
//! plain expire policy; grammar coverage is in lifecycle_ecr.rs.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use refwarden::crd::FindingKind;
use refwarden::lifecycle::{self, aws, ecr, simulate};

struct Moto(Child);
impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_moto() -> (Moto, String) {
    let port = free_port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start moto_server ({e}): install it with `pip install 'moto[server]'`")
        });
    let moto = Moto(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not answer on 127.0.0.1:{port} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (moto, format!("http://127.0.0.1:{port}"))
}

const POLICY: &str = r#"{"rules":[{"rulePriority":1,"description":"untagged","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}},{"rulePriority":2,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":10},"action":{"type":"expire"}}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecr_api_against_moto() {
    let (_moto, endpoint) = start_moto();
    let dir = tempfile::tempdir().unwrap();
    let policy_file = dir.path().join("policy.json");
    std::fs::write(&policy_file, POLICY).unwrap();
    let seed = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/ecr_seed.py"
        ))
        .args([endpoint.as_str(), "team/app", policy_file.to_str().unwrap()])
        .output()
        .expect("python3 runs");
    assert!(
        seed.status.success(),
        "seeding failed: {}",
        String::from_utf8_lossy(&seed.stderr)
    );
    let seeded: serde_json::Value = serde_json::from_slice(&seed.stdout).unwrap();

    // Only this test runs in this binary: set the environment the default chain reads.
    // SAFETY: no other thread reads the environment concurrently at this point.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::set_var("AWS_SESSION_TOKEN", "testing");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        std::env::set_var("AWS_CONFIG_FILE", dir.path().join("none"));
        std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"));
        std::env::set_var("AWS_ENDPOINT_URL", &endpoint);
    }
    refwarden::registry::ensure_crypto_provider();
    let host = aws::parse_ecr_host("123456789012.dkr.ecr.us-east-1.amazonaws.com").unwrap();
    let client = aws::ecr_client(&host.region).await;

    let fetched = aws::get_lifecycle_policy(&client, Some(&host.account), "team/app")
        .await
        .unwrap()
        .expect("policy set");
    let findings = lifecycle::analyze_ecr_policy_text(&fetched.text, Some("team/app"));
    assert!(
        findings
            .iter()
            .any(|f| f.kind == FindingKind::DeletesReferrers && f.rule == "rulePriority 1")
    );
    assert!(
        findings
            .iter()
            .any(|f| f.kind == FindingKind::CountsReferrers && f.rule == "rulePriority 2")
    );
    assert!(findings.iter().all(|f| f.message.starts_with("team/app: ")));

    // No policy → None, not an error.
    let seed2 = Command::new("python3")
        .args(["-c", &format!("import boto3; boto3.client('ecr', endpoint_url='{endpoint}', region_name='us-east-1', aws_access_key_id='t', aws_secret_access_key='t').create_repository(repositoryName='bare')")])
        .status()
        .unwrap();
    assert!(seed2.success());
    assert!(
        aws::get_lifecycle_policy(&client, Some(&host.account), "bare")
            .await
            .unwrap()
            .is_none()
    );

    let images = aws::describe_images(&client, Some(&host.account), "team/app")
        .await
        .unwrap();
    assert_eq!(images.len(), 3);
    let sig_tag = seeded["sig_tag"].as_str().unwrap();
    assert!(
        images
            .iter()
            .any(|i| i.image_tags == vec![sig_tag.to_string()])
    );
    // moto computes digests itself: find the untagged one by its tags.
    let untagged = images
        .iter()
        .find(|i| i.image_tags.is_empty())
        .expect("an untagged image")
        .image_digest
        .clone();

    // Simulation over what the API returned: nothing is 14 days old and fewer than 10 images.
    let (policy, v) = ecr::parse_policy(&fetched.text).unwrap();
    assert!(v.is_empty());
    let image = images
        .iter()
        .find(|i| i.image_tags == vec!["v1.0.0".to_string()])
        .expect("v1.0.0")
        .image_digest
        .clone();
    let now = jiff::Timestamp::now();
    let report = simulate::simulate(&policy, &images, std::slice::from_ref(&image), now);
    assert!(report.actions.is_empty(), "{report:?}");
    // 30 days later the untagged manifest is expired by rule 1; the .sig tag is not.
    let later = now
        .checked_add(jiff::SignedDuration::from_hours(24 * 30))
        .unwrap();
    let report = simulate::simulate(&policy, &images, &[image], later);
    assert_eq!(report.actions.len(), 1);
    assert_eq!(report.actions[0].digest, untagged);

    let auth = aws::registry_credentials(&client).await.unwrap();
    let password = match &auth.credentials {
        refwarden::registry::Credentials::Basic { username, password } => {
            assert_eq!(username, "AWS");
            secrecy::ExposeSecret::expose_secret(password).to_string()
        }
        other => panic!("expected Basic credentials, got {other:?}"),
    };
    // The decoded token never shows in Debug output.
    assert!(!password.is_empty());
    assert!(!format!("{auth:?}").contains(&password), "{auth:?}");
}
