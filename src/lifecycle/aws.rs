//! AWS API access for ECR: `GetLifecyclePolicy`, `DescribeImages`,
//! `GetAuthorizationToken`. Default credential chain (env, profile, web identity /
//! IRSA, EKS pod identity, IMDS); region from the registry host; endpoint from
//! `AWS_ENDPOINT_URL_ECR` / `AWS_ENDPOINT_URL` (read by aws-config). The HTTP client
//! is rustls with ring, like the rest of refwarden.

use aws_sdk_ecr::error::SdkError;
use aws_sdk_ecr::types::{DescribeImagesFilter, ImageStatusFilter, TagStatus};
use jiff::Timestamp;
use secrecy::SecretString;

use super::simulate::{ImageStatus, InventoryImage};
use crate::registry::Credentials;

/// An ECR registry host `<account>.dkr.ecr.<region>.amazonaws.com[.cn]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcrHost {
    /// Account id (the registry id).
    pub account: String,
    /// Region, e.g. `eu-west-1`.
    pub region: String,
}

/// Errors of the AWS path. Messages never carry credentials.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// The host is not an ECR registry host.
    #[error("registry host {0:?} is not <account>.dkr.ecr.<region>.amazonaws.com")]
    NotEcrHost(String),
    /// An AWS call failed.
    #[error("{operation} failed: {message}")]
    Api {
        operation: &'static str,
        message: String,
    },
    /// The answer lacks a field we need.
    #[error("{operation}: the answer has no {field}")]
    Incomplete {
        operation: &'static str,
        field: &'static str,
    },
}

/// Parses an ECR registry host (a port or scheme is ignored).
pub fn parse_ecr_host(host: &str) -> Result<EcrHost, AwsError> {
    let h = host
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let h = h.split('/').next().unwrap_or(h);
    let h = h.split(':').next().unwrap_or(h);
    let err = || AwsError::NotEcrHost(host.to_string());
    let mut parts = h.split('.');
    let account = parts.next().ok_or_else(err)?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let dkr = parts.next().ok_or_else(err)?;
    let ecr = parts.next().ok_or_else(err)?;
    let (region, rest) = match (dkr, ecr) {
        ("dkr", "ecr") => (parts.next().ok_or_else(err)?, parts.collect::<Vec<_>>()),
        ("dkr", "ecr-fips") => (parts.next().ok_or_else(err)?, parts.collect::<Vec<_>>()),
        _ => return Err(err()),
    };
    if !matches!(
        rest.as_slice(),
        ["amazonaws", "com"] | ["amazonaws", "com", "cn"]
    ) || region.is_empty()
    {
        return Err(err());
    }
    Ok(EcrHost {
        account: account.to_string(),
        region: region.to_string(),
    })
}

/// An ECR client for `region` with the default credential chain and the standard
/// endpoint variables.
pub async fn ecr_client(region: &str) -> aws_sdk_ecr::Client {
    use aws_smithy_http_client::tls;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .http_client(http)
        .load()
        .await;
    aws_sdk_ecr::Client::new(&conf)
}

fn api_err<E, R>(operation: &'static str, e: SdkError<E, R>) -> AwsError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    AwsError::Api {
        operation,
        message: error_chain(&e),
    }
}

/// The error and its sources, Display only (the SDK's `DisplayErrorContext` ends with a
/// `Debug` dump of the whole error), each text once.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
        if parts.len() >= 8 {
            break;
        }
    }
    parts.join(": ")
}

/// A lifecycle policy read from ECR.
#[derive(Clone, Debug, PartialEq)]
pub struct FetchedPolicy {
    pub repository: String,
    pub text: String,
    /// When ECR last ran it.
    pub last_evaluated_at: Option<Timestamp>,
}

fn ts(d: Option<&aws_sdk_ecr::primitives::DateTime>) -> Option<Timestamp> {
    let d = d?;
    Timestamp::new(d.secs(), i32::try_from(d.subsec_nanos()).ok()?).ok()
}

/// `GetLifecyclePolicy`; `Ok(None)` when the repository has no policy.
pub async fn get_lifecycle_policy(
    client: &aws_sdk_ecr::Client,
    registry_id: Option<&str>,
    repository: &str,
) -> Result<Option<FetchedPolicy>, AwsError> {
    let out = client
        .get_lifecycle_policy()
        .set_registry_id(registry_id.map(str::to_string))
        .repository_name(repository)
        .send()
        .await;
    match out {
        Ok(o) => Ok(Some(FetchedPolicy {
            repository: repository.to_string(),
            text: o
                .lifecycle_policy_text()
                .ok_or(AwsError::Incomplete {
                    operation: "GetLifecyclePolicy",
                    field: "lifecyclePolicyText",
                })?
                .to_string(),
            last_evaluated_at: ts(o.last_evaluated_at()),
        })),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_lifecycle_policy_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(api_err("GetLifecyclePolicy", e)),
    }
}

/// `DescribeImages` over all pages, every tag and image status.
pub async fn describe_images(
    client: &aws_sdk_ecr::Client,
    registry_id: Option<&str>,
    repository: &str,
) -> Result<Vec<InventoryImage>, AwsError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _page in 0..10_000 {
        let resp = client
            .describe_images()
            .set_registry_id(registry_id.map(str::to_string))
            .repository_name(repository)
            .filter(
                DescribeImagesFilter::builder()
                    .tag_status(TagStatus::Any)
                    .image_status(ImageStatusFilter::Any)
                    .build(),
            )
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| api_err("DescribeImages", e))?;
        for d in resp.image_details() {
            let digest = d.image_digest().ok_or(AwsError::Incomplete {
                operation: "DescribeImages",
                field: "imageDigest",
            })?;
            let pushed = ts(d.image_pushed_at()).ok_or(AwsError::Incomplete {
                operation: "DescribeImages",
                field: "imagePushedAt",
            })?;
            let status = match d.image_status().map(|s| s.as_str()) {
                Some("ARCHIVED") => ImageStatus::Archived,
                Some("ACTIVATING") => ImageStatus::Activating,
                _ => ImageStatus::Active,
            };
            out.push(InventoryImage {
                image_digest: digest.to_string(),
                image_tags: d.image_tags().to_vec(),
                image_pushed_at: pushed,
                last_recorded_pull_time: ts(d.last_recorded_pull_time()),
                subject_manifest_digest: d.subject_manifest_digest().map(str::to_string),
                image_status: status,
                last_archived_at: ts(d.last_archived_at()),
                last_activated_at: ts(d.last_activated_at()),
                artifact_media_type: d.artifact_media_type().map(str::to_string),
            });
        }
        match resp.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(out),
        }
    }
    Ok(out)
}

/// Registry credentials from `GetAuthorizationToken`.
pub struct EcrRegistryAuth {
    /// `Basic` credentials (user `AWS`) for the registry client.
    pub credentials: Credentials,
    /// The registry endpoint ECR names (`https://<account>.dkr.ecr.<region>.amazonaws.com`).
    pub proxy_endpoint: Option<String>,
    /// When the token expires (12 h after issue).
    pub expires_at: Option<Timestamp>,
}

impl std::fmt::Debug for EcrRegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcrRegistryAuth")
            .field("credentials", &self.credentials)
            .field("proxy_endpoint", &self.proxy_endpoint)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// `GetAuthorizationToken` → Basic credentials for the registry client.
pub async fn registry_credentials(
    client: &aws_sdk_ecr::Client,
) -> Result<EcrRegistryAuth, AwsError> {
    use base64::Engine as _;
    let resp = client
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| api_err("GetAuthorizationToken", e))?;
    let data = resp
        .authorization_data()
        .first()
        .ok_or(AwsError::Incomplete {
            operation: "GetAuthorizationToken",
            field: "authorizationData",
        })?;
    let token = data.authorization_token().ok_or(AwsError::Incomplete {
        operation: "GetAuthorizationToken",
        field: "authorizationToken",
    })?;
    let bad = || AwsError::Api {
        operation: "GetAuthorizationToken",
        message: "authorizationToken is not base64(user:password)".into(),
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (user, pass) = decoded.split_once(':').ok_or_else(bad)?;
    Ok(EcrRegistryAuth {
        credentials: Credentials::Basic {
            username: user.to_string(),
            password: SecretString::from(pass.to_string()),
        },
        proxy_endpoint: data.proxy_endpoint().map(str::to_string),
        expires_at: ts(data.expires_at()),
    })
}

/// Credentials for an ECR registry URL (`RegistryProfile.spec.credentialsProvider: AwsEcr`):
/// region from the host, default AWS credential chain, `GetAuthorizationToken`.
pub async fn ecr_credentials_for(registry_url: &str) -> Result<Credentials, AwsError> {
    let host = parse_ecr_host(registry_url)?;
    let client = ecr_client(&host.region).await;
    Ok(registry_credentials(&client).await?.credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let h = parse_ecr_host("123456789012.dkr.ecr.eu-west-1.amazonaws.com").unwrap();
        assert_eq!(h.account, "123456789012");
        assert_eq!(h.region, "eu-west-1");
        assert_eq!(
            parse_ecr_host("https://123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/")
                .unwrap()
                .region,
            "cn-north-1"
        );
        assert!(parse_ecr_host("ghcr.io").is_err());
        assert!(parse_ecr_host("12345.dkr.ecr.eu-west-1.amazonaws.com").is_err());
        assert!(parse_ecr_host("123456789012.dkr.ecr.eu-west-1.example.com").is_err());
    }
}
