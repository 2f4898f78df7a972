//! Leader election on a `coordination.k8s.io/v1` Lease with
//! [`kube_lease_manager`] (0.13 targets kube 5 / k8s-openapi 0.29, the
//! versions this crate uses; server-side-apply locking, skew-tolerant grace).
//!
//! Every replica watches and keeps its stores; only the holder writes status
//! and Events. A standby takes over once the holder stops renewing
//! (`DURATION` seconds after its last renewal).

use std::sync::Arc;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tracing::{error, info};

use super::{Context, Error};

/// Lease duration in seconds: how long a dead leader blocks a standby.
pub const DURATION: u64 = 15;
/// The holder renews this many seconds before expiry (also the tolerated clock skew).
pub const GRACE: u64 = 5;

/// Starts the elector; leadership changes go to [`Context::set_leader`].
pub async fn spawn(
    client: Client,
    lease_name: &str,
    namespace: &str,
    identity: &str,
    ctx: Arc<Context>,
) -> Result<(), Error> {
    let manager = LeaseManagerBuilder::new(client, lease_name)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(DURATION)
        .with_grace(GRACE)
        .with_field_manager(format!("refwarden-lease-{identity}"))
        .build()
        .await
        .map_err(|e| Error::Setup(format!("Lease {namespace}/{lease_name}: {e}")))?;
    let (mut rx, task) = manager.watch().await;
    info!(lease = %lease_name, namespace = %namespace, identity = %identity, "leader election started");
    tokio::spawn(async move {
        ctx.set_leader(*rx.borrow_and_update());
        while rx.changed().await.is_ok() {
            let leader = *rx.borrow_and_update();
            ctx.set_leader(leader);
        }
        // The elector ended: stop writing, and exit so Kubernetes restarts us.
        ctx.set_leader(false);
        match task.await {
            Ok(Ok(_)) => error!("leader election ended"),
            Ok(Err(e)) => error!(error = %e, "leader election failed"),
            Err(e) => error!(error = %e, "leader election task panicked"),
        }
        std::process::exit(1);
    });
    Ok(())
}
