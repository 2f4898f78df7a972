#!/usr/bin/env bash
# refwarden demo: a throwaway local registry (CNCF distribution 2.8 from Debian's
# docker-registry), three images — one with a signature and an SBOM attached
# through the OCI referrers tag schema, one with a signature only, one with
# nothing — then `refwarden probe`, `discover` and `evaluate` as a new user would.
# Leaves nothing running; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

./scripts/install-deps.sh --demo
cargo build --locked --quiet
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/refwarden"
REGISTRY_BIN="${REFWARDEN_REGISTRY_BIN:-/usr/bin/docker-registry}"

WORK="$(mktemp -d -t refwarden-demo.XXXXXX)"
REG_PID=""
cleanup() {
  if [ -n "$REG_PID" ] && kill -0 "$REG_PID" 2>/dev/null; then
    kill "$REG_PID" 2>/dev/null || true
    wait "$REG_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# A free port on 127.0.0.1.
PORT=""
for p in $(seq 15000 15100); do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then PORT=$p; break; fi
done
[ -n "$PORT" ] || { echo "no free port in 15000-15100" >&2; exit 1; }
HOST="127.0.0.1:$PORT"
URL="http://$HOST"

cat > "$WORK/config.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/data
  delete:
    enabled: true
http:
  addr: $HOST
YAML
env -u REGISTRY_HTTP_ADDR "$REGISTRY_BIN" serve "$WORK/config.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "$URL/v2/" 2>/dev/null && break
  sleep 0.1
done
curl -fsS -o /dev/null "$URL/v2/" || { echo "registry did not start:" >&2; cat "$WORK/registry.log" >&2; exit 1; }
echo "==> local registry (distribution 2.8, no referrers API) on $URL"

# --- seeding, by plain HTTP (blob uploads + manifest PUTs) -------------------
sha() { sha256sum "$1" | cut -d' ' -f1; }
push_blob() { # repo file -> prints digest
  local repo=$1 file=$2 digest loc
  digest="sha256:$(sha "$file")"
  loc=$(curl -fsS -X POST -D - -o /dev/null "$URL/v2/$repo/blobs/uploads/" | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
  case "$loc" in http*) ;; *) loc="$URL$loc" ;; esac
  case "$loc" in *\?*) loc="$loc&digest=$digest" ;; *) loc="$loc?digest=$digest" ;; esac
  curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$file" -o /dev/null "$loc"
  echo "$digest"
}
push_manifest() { # repo reference media-type file
  curl -fsS -X PUT -H "Content-Type: $3" --data-binary "@$4" -o /dev/null "$URL/v2/$1/manifests/$2"
}
printf '{}' > "$WORK/empty.json"

push_image() { # repo -> sets IMG_DIGEST IMG_SIZE
  local repo=$1 d="$WORK/$1"
  mkdir -p "$d/rootfs" && echo "hello from $repo" > "$d/rootfs/hello.txt"
  tar -C "$d/rootfs" -cf "$d/layer.tar" hello.txt
  local layer layer_size config config_size
  layer=$(push_blob "$repo" "$d/layer.tar"); layer_size=$(stat -c %s "$d/layer.tar")
  printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]},"config":{}}' "$layer" > "$d/config.json"
  config=$(push_blob "$repo" "$d/config.json"); config_size=$(stat -c %s "$d/config.json")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
    "$config" "$config_size" "$layer" "$layer_size" > "$d/manifest.json"
  push_manifest "$repo" 1.0 application/vnd.oci.image.manifest.v1+json "$d/manifest.json"
  IMG_DIGEST="sha256:$(sha "$d/manifest.json")"; IMG_SIZE=$(stat -c %s "$d/manifest.json")
}

push_referrer() { # repo subject-digest subject-size artifact-type payload-file -> prints a descriptor
  local repo=$1 subject=$2 subject_size=$3 type=$4 payload=$5 blob payload_size m
  blob=$(push_blob "$repo" "$payload"); payload_size=$(stat -c %s "$payload")
  push_blob "$repo" "$WORK/empty.json" >/dev/null
  m="$WORK/referrer-$(sha "$payload").json"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"%s","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"%s","digest":"%s","size":%s}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s},"annotations":{"org.opencontainers.image.created":"2026-11-23T00:00:00Z"}}' \
    "$type" "$type" "$blob" "$payload_size" "$subject" "$subject_size" > "$m"
  local digest="sha256:$(sha "$m")"
  push_manifest "$repo" "$digest" application/vnd.oci.image.manifest.v1+json "$m"
  printf '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"artifactType":"%s","annotations":{"org.opencontainers.image.created":"2026-11-23T00:00:00Z"}}' \
    "$digest" "$(stat -c %s "$m")" "$type"
}

push_tag_index() { # repo subject-digest descriptors... (the OCI referrers tag schema)
  local repo=$1 subject=$2; shift 2
  local IFS=,; local idx="$WORK/index-${subject#sha256:}.json"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s]}' "$*" > "$idx"
  push_manifest "$repo" "sha256-${subject#sha256:}" application/vnd.oci.image.index.v1+json "$idx"
}

echo '{"payload":"demo signature"}' > "$WORK/sig.json"
echo '{"spdxVersion":"SPDX-2.3","name":"demo"}' > "$WORK/sbom.json"

push_image demo/complete
SIG=$(push_referrer demo/complete "$IMG_DIGEST" "$IMG_SIZE" application/vnd.dev.cosign.artifact.sig.v1+json "$WORK/sig.json")
SBOM=$(push_referrer demo/complete "$IMG_DIGEST" "$IMG_SIZE" application/spdx+json "$WORK/sbom.json")
push_tag_index demo/complete "$IMG_DIGEST" "$SIG" "$SBOM"
echo "==> demo/complete:1.0   $IMG_DIGEST  + signature + SBOM (tag schema)"
push_image demo/sig-only
SIG=$(push_referrer demo/sig-only "$IMG_DIGEST" "$IMG_SIZE" application/vnd.dev.cosign.artifact.sig.v1+json "$WORK/sig.json")
push_tag_index demo/sig-only "$IMG_DIGEST" "$SIG"
echo "==> demo/sig-only:1.0  $IMG_DIGEST  + signature only"
push_image demo/bare
echo "==> demo/bare:1.0     $IMG_DIGEST  (nothing attached)"

# --- manifests a user would have in Git --------------------------------------
mkdir -p "$WORK/manifests"
for f in "$ROOT"/scripts/demo/*.yaml; do
  sed "s/REGISTRY_HOST/$HOST/g" "$f" > "$WORK/manifests/$(basename "$f")"
done

section() { printf '\n\033[1m==> %s\033[0m\n\n' "$*"; }
set +e
section "refwarden probe $URL --plain-http -r demo/complete -t 1.0"
"$BIN" probe "$URL" --plain-http -r demo/complete -t 1.0
for app in complete sig-only bare; do
  section "refwarden discover $HOST/demo/$app:1.0 --plain-http"
  "$BIN" discover "$HOST/demo/$app:1.0" --plain-http
done
section "refwarden evaluate -f <folder with a RegistryProfile, a ReferrerPolicy and 3 Deployments>"
"$BIN" evaluate -f "$WORK/manifests"
rc=$?
set -e
cat <<EOF

What to look at:
  * probe: distribution 2.8 has no referrers API (REFERRERS Unsupported), so refwarden
    discovers through the OCI tag schema and cosign tags (MODE TagFallback).
  * discover: demo/complete lists a signature and an SBOM (method tag-schema);
    demo/sig-only only a signature; demo/bare nothing.
  * evaluate: exit code $rc (1 = violations found). complete is compliant, sig-only misses
    the SBOM, bare misses both. -o yaml prints the status the controller would write.
    This policy checks presence; add \`verify\` to a requirement to count only referrers that
    verify (README: "Verifying signatures in policies").
EOF
echo "==> stopping the registry"
[ "$rc" -eq 1 ] || { echo "unexpected evaluate exit code $rc (expected 1: violations)" >&2; exit 1; }
exit 0
