"""Seeds a moto ECR server for tests/lifecycle_aws.rs (boto3 comes with moto).

Usage: ecr_seed.py ENDPOINT REPOSITORY POLICY_FILE
Creates the repository, puts the lifecycle policy and three images (an image, a
cosign .sig tag for it, an untagged manifest), then prints the digests as JSON.
"""
import hashlib
import json
import sys

import boto3

endpoint, repo, policy_file = sys.argv[1], sys.argv[2], sys.argv[3]
ecr = boto3.client("ecr", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
ecr.create_repository(repositoryName=repo)
with open(policy_file) as f:
    ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=f.read())


def manifest(n):
    return json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7,
                   "digest": "sha256:" + hashlib.sha256(("c%d" % n).encode()).hexdigest()},
        "layers": [],
    })


out = {}
m = manifest(1)
out["image"] = "sha256:" + hashlib.sha256(m.encode()).hexdigest()
ecr.put_image(repositoryName=repo, imageManifest=m, imageTag="v1.0.0")
sig_tag = out["image"].replace(":", "-") + ".sig"
ecr.put_image(repositoryName=repo, imageManifest=manifest(2), imageTag=sig_tag)
out["sig_tag"] = sig_tag
m3 = manifest(3)
ecr.put_image(repositoryName=repo, imageManifest=m3)
out["untagged"] = "sha256:" + hashlib.sha256(m3.encode()).hexdigest()
print(json.dumps(out))
