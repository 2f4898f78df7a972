//! `refwarden controller`: run the operator.
//!
//! Flags, the port and the endpoints are a contract with the Helm chart:
//! `/healthz`, `/readyz`, `/metrics` on `--listen-addr` (default 0.0.0.0:8080),
//! `POD_NAMESPACE` / `POD_NAME` from the downward API.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;

use crate::controller::openreports::ReportsMode;
use crate::controller::{self, ReconcileSettings, RunOptions};

/// Flags of `refwarden controller`.
#[derive(Args, Debug, Clone)]
pub struct ControllerArgs {
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen_addr: SocketAddr,
    /// Elect a leader through a Lease so only one replica writes (`--leader-election=false` for one replica).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub leader_election: bool,
    /// Name of the Lease.
    #[arg(long, default_value = "refwarden-leader")]
    pub lease_name: String,
    /// Namespace of the Lease (the controller's namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Identity of this replica in the Lease and in Events (the pod name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Also use the imagePullSecrets of selected pods for registries that have no
    /// RegistryProfile (needs `get` on secrets in the pods' namespaces).
    #[arg(long)]
    pub use_image_pull_secrets: bool,
    /// Concurrent reconciles per kind (0: unlimited).
    #[arg(long, default_value_t = 4)]
    pub concurrency: u16,
    /// A registry (`host[:port]`, as in image references) without a RegistryProfile that is
    /// reached over plain HTTP (repeatable; comma-separated in the environment variable).
    /// Registries with a profile use its `registryUrl` and `plainHttp`.
    #[arg(
        long = "insecure-registry",
        value_name = "HOST",
        env = "REFWARDEN_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure_registries: Vec<String>,
    /// Reports written beside each ReferrerPolicy's status: `none`, or `openreports` (one
    /// `openreports.io/v1alpha1` Report per namespace and a ClusterReport per policy; the
    /// OpenReports CRDs must be installed, and RBAC must allow writing them).
    #[arg(long, value_enum, default_value_t = ReportsArg::None, env = "REFWARDEN_REPORTS")]
    pub reports: ReportsArg,
}

/// `--reports` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportsArg {
    /// No reports.
    None,
    /// OpenReports `Report` / `ClusterReport` (`openreports.io/v1alpha1`).
    Openreports,
}

fn default_identity() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("refwarden-{:016x}", rand::random::<u64>()))
}

impl From<ControllerArgs> for RunOptions {
    fn from(args: ControllerArgs) -> Self {
        RunOptions {
            listen_addr: args.listen_addr,
            leader_election: args.leader_election,
            lease_name: args.lease_name,
            lease_namespace: args.lease_namespace,
            identity: args.identity.unwrap_or_else(default_identity),
            concurrency: args.concurrency,
            settings: ReconcileSettings {
                use_image_pull_secrets: args.use_image_pull_secrets,
                insecure_registries: args.insecure_registries,
                reports: match args.reports {
                    ReportsArg::None => ReportsMode::None,
                    ReportsArg::Openreports => ReportsMode::OpenReports,
                },
                ..ReconcileSettings::default()
            },
        }
    }
}

/// Runs the controller; exit 1 on failure (with a hint when the CRDs are missing).
pub async fn run(args: ControllerArgs) -> ExitCode {
    match controller::run(args.into()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
