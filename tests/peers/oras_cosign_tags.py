#!/usr/bin/env python3
"""Independent peer for refwarden's cosign-tag discovery: with the ORAS Python SDK
(`pip install oras`), list a repository's tags, keep cosign's legacy tags for one
subject (`sha256-<hex>.sig`, `.att`, `.sbom`), and read the digest of each tagged
manifest as the registry serves it.

Usage: oras_cosign_tags.py <host:port> <repository> <subject-digest>
Prints one JSON object: {"<tag>": "<manifest digest>", ...}
"""

import hashlib
import json
import sys

try:
    import oras.client
except ImportError:  # pragma: no cover - reported by the Rust test
    sys.stderr.write("the oras Python SDK is missing: pip install oras\n")
    sys.exit(3)

ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def main():
    if len(sys.argv) != 4:
        sys.stderr.write(__doc__)
        sys.exit(2)
    host, repo, subject = sys.argv[1:]
    client = oras.client.OrasClient(hostname=host, insecure=True)
    prefix = subject.replace(":", "-", 1)
    wanted = {f"{prefix}.{suffix}" for suffix in ("sig", "att", "sbom")}
    out = {}
    for tag in client.get_tags(f"{host}/{repo}"):
        if tag not in wanted:
            continue
        container = client.get_container(f"{host}/{repo}:{tag}")
        resp = client.do_request(
            f"{client.prefix}://{container.manifest_url()}", "GET", headers={"Accept": ACCEPT}
        )
        resp.raise_for_status()
        out[tag] = "sha256:" + hashlib.sha256(resp.content).hexdigest()
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
