#!/usr/bin/env bash
# End-to-end run on a real cluster: k3d + a local registry + refwarden installed
# with its Helm chart, then `cargo test --test e2e`.
# Needs: docker, k3d, kubectl, helm (make deps installs helm). Internet access to
# pull busybox and the k3s image. Everything it creates is deleted at the end
# (set KEEP=1 to keep the cluster for debugging).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/bin:$PATH"   # helm/kubectl from `make deps`

CLUSTER=${CLUSTER:-refwarden-e2e}
REGISTRY_NAME=${REGISTRY_NAME:-refwarden-registry}
REGISTRY_PORT=${REGISTRY_PORT:-5050}
# The chart's default image, built by `make image`: the install below is the README's, unedited.
IMAGE="$(make -s -f Makefile print-image)"

for tool in docker k3d kubectl helm; do
  command -v "$tool" >/dev/null || { echo "e2e needs $tool on PATH" >&2; exit 2; }
done

cleanup() {
  if [ "${KEEP:-0}" != 1 ]; then
    k3d cluster delete "$CLUSTER" >/dev/null 2>&1 || true
    k3d registry delete "k3d-$REGISTRY_NAME" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

# Inside the Docker network the registry listens on :5000. Pods pull and the controller
# probes it under the same name, so the image host matches the RegistryProfile's host.
CLUSTER_REGISTRY="k3d-$REGISTRY_NAME:5000"
REGISTRIES_YAML="$(mktemp)"
cat > "$REGISTRIES_YAML" <<YAML
mirrors:
  "$CLUSTER_REGISTRY":
    endpoint:
      - http://$CLUSTER_REGISTRY
YAML
k3d registry create "$REGISTRY_NAME" --port "127.0.0.1:$REGISTRY_PORT"
k3d cluster create "$CLUSTER" --registry-use "k3d-$REGISTRY_NAME:$REGISTRY_PORT" \
  --registry-config "$REGISTRIES_YAML" --wait
KUBECONFIG_FILE="$(mktemp)"
k3d kubeconfig get "$CLUSTER" > "$KUBECONFIG_FILE"
export KUBECONFIG="$KUBECONFIG_FILE"

# Two runnable images with different digests.
PUSH="127.0.0.1:$REGISTRY_PORT"
for name in signed bare; do
  printf 'FROM busybox:1.37\nLABEL refwarden.e2e=%s\n' "$name" | docker build -q -t "$PUSH/e2e/$name:1.0" -
  docker push -q "$PUSH/e2e/$name:1.0"
done

# refwarden itself, installed as the README says (default values: the image `make image` tags).
make image
k3d image import "$IMAGE" -c "$CLUSTER"
helm upgrade --install refwarden charts/refwarden -n refwarden-system --create-namespace \
  --wait --timeout 3m

REFWARDEN_E2E_KUBECONFIG="$KUBECONFIG_FILE" \
REFWARDEN_E2E_REQUIRED=1 \
REFWARDEN_E2E_REGISTRY_PUSH="http://$PUSH" \
REFWARDEN_E2E_REGISTRY_CLUSTER="$CLUSTER_REGISTRY" \
  cargo test --locked --test e2e -- --nocapture
