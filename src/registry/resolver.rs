//! The registry client's DNS resolver: the system resolver, optional fixed entries (like
//! `curl --resolve`), and no link-local or cloud metadata address for any host but the
//! registry's own — so a redirect target or token realm whose *name* resolves to the metadata
//! service is refused as its IP literal would be ([`super::egress`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::egress;

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct GuardedResolver {
    /// The registry's host name, lowercase.
    registry_host: String,
    /// Whether the registry itself may resolve to a link-local or metadata address (a registry a
    /// cluster admin named); false for registries named by pod images.
    registry_exempt: bool,
    /// Fixed answers by lowercase host name.
    fixed: BTreeMap<String, Vec<IpAddr>>,
}

impl GuardedResolver {
    /// A resolver for the client of `registry_host`.
    pub fn new(
        registry_host: &str,
        registry_exempt: bool,
        fixed: &BTreeMap<String, Vec<IpAddr>>,
    ) -> Self {
        GuardedResolver {
            registry_host: registry_host.to_ascii_lowercase(),
            registry_exempt,
            fixed: fixed
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
        }
    }

    /// The addresses a host may be reached at, from what it resolved to.
    fn admit(&self, host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, String> {
        if self.registry_exempt && host == self.registry_host {
            return Ok(addrs);
        }
        let any = !addrs.is_empty();
        let kept: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| !egress::is_metadata_ip(a.ip()))
            .collect();
        if kept.is_empty() && any {
            return Err(format!(
                "refusing to connect to {host}: it resolves only to link-local or cloud metadata addresses"
            ));
        }
        Ok(kept)
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let fixed = self.fixed.get(&host).cloned();
        let this = self.clone();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = match fixed {
                Some(ips) => ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect(),
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            let kept = this.admit(&host, addrs)?;
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().expect("ip"), 0)
    }

    #[test]
    fn metadata_addresses_are_dropped_for_other_hosts() {
        let r = GuardedResolver::new("registry.example", true, &BTreeMap::new());
        assert_eq!(
            r.admit("cdn.example", vec![a("169.254.169.254"), a("10.0.0.1")]),
            Ok(vec![a("10.0.0.1")])
        );
        let e = r
            .admit("rebind.example", vec![a("169.254.169.254")])
            .unwrap_err();
        assert!(e.contains("metadata"), "{e}");
        // The registry an admin named may live there.
        assert_eq!(
            r.admit("registry.example", vec![a("169.254.10.1")]),
            Ok(vec![a("169.254.10.1")])
        );
        // A registry named by a pod may not.
        let pod = GuardedResolver::new("registry.example", false, &BTreeMap::new());
        assert!(
            pod.admit("registry.example", vec![a("169.254.10.1")])
                .is_err()
        );
        assert!(
            pod.admit("registry.example", vec![a("fd00:ec2::254")])
                .is_err()
        );
    }
}
