#!/usr/bin/env python3
"""Independent peer client for refwarden's discovery tests: pushes OCI
artifacts with a `subject` using the ORAS Python SDK (`pip install oras`).

Usage: oras_push.py <host:port> <repository> <subject-digest> <subject-media-type> <subject-size> <workdir>

Pushes, over plain HTTP:
- `sbom`: an SPDX SBOM artifact (config and layer media type application/spdx+json) whose
  manifest has `subject` = the given image, tagged `oras-sbom`;
- `orphan`: an in-toto attestation with the same subject, tagged `oras-orphan`
  (what GHCR/GitLab store: a subject but no referrers tag index).
Prints one JSON object: {"sbom": {...}, "orphan": {...}} with digest, size,
mediaType and configMediaType of each manifest as the registry serves it.
"""

import hashlib
import json
import os
import sys

try:
    import oras.client
    import oras.oci
except ImportError:  # pragma: no cover - reported by the Rust test
    sys.stderr.write("the oras Python SDK is missing: pip install oras\n")
    sys.exit(3)


def push(client, target, workdir, name, media_type, content, subject, annotations):
    layer = os.path.join(workdir, name)
    with open(layer, "w", encoding="utf-8") as f:
        f.write(content)
    config = os.path.join(workdir, name + ".config.json")
    with open(config, "w", encoding="utf-8") as f:
        f.write("{}")
    client.push(
        target=target,
        files=[f"{layer}:{media_type}"],
        manifest_config=f"{config}:{media_type}",
        manifest_annotations=annotations,
        subject=subject,
        disable_path_validation=True,
        quiet=True,
    )
    # Read back what the registry serves (digest = sha256 of the exact bytes).
    container = client.get_container(target)
    resp = client.do_request(
        f"{client.prefix}://{container.manifest_url()}",
        "GET",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    resp.raise_for_status()
    body = resp.content
    manifest = json.loads(body)
    return {
        "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
        "size": len(body),
        "mediaType": manifest.get("mediaType", "application/vnd.oci.image.manifest.v1+json"),
        "configMediaType": manifest["config"]["mediaType"],
        "subject": manifest.get("subject", {}).get("digest"),
        "annotations": manifest.get("annotations", {}),
    }


def main():
    if len(sys.argv) != 7:
        sys.stderr.write(__doc__)
        sys.exit(2)
    host, repo, digest, media_type, size, workdir = sys.argv[1:]
    client = oras.client.OrasClient(hostname=host, insecure=True)
    subject = oras.oci.Subject(mediaType=media_type, digest=digest, size=int(size))
    out = {
        "sbom": push(
            client,
            f"{host}/{repo}:oras-sbom",
            workdir,
            "sbom.spdx.json",
            "application/spdx+json",
            json.dumps({"spdxVersion": "SPDX-2.3", "name": digest}),
            subject,
            {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
        ),
        "orphan": push(
            client,
            f"{host}/{repo}:oras-orphan",
            workdir,
            "provenance.json",
            "application/vnd.in-toto+json",
            json.dumps({"predicateType": "https://slsa.dev/provenance/v1"}),
            subject,
            None,
        ),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
