#!/usr/bin/env bash
# refwarden demo: start a throwaway local registry (CNCF distribution 2.8 from
# Debian's docker-registry), seed a test image, probe it with refwarden, stop it.
# Leaves nothing running; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
cargo build --locked --quiet
BIN="$PWD/target/debug/refwarden"
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
URL="http://127.0.0.1:$PORT"

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
  addr: 127.0.0.1:$PORT
YAML
"$REGISTRY_BIN" serve "$WORK/config.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "$URL/v2/" 2>/dev/null && break
  sleep 0.1
done
curl -fsS -o /dev/null "$URL/v2/" || { echo "registry did not start:" >&2; cat "$WORK/registry.log" >&2; exit 1; }
echo "==> local registry (distribution 2.8) on $URL"

# Seed demo/app:1.0, a one-layer OCI image, by plain HTTP (blob uploads + manifest PUT).
REPO=demo/app
push_blob() { # file -> prints digest
  local file=$1 digest loc
  digest="sha256:$(sha256sum "$file" | cut -d' ' -f1)"
  loc=$(curl -fsS -X POST -D - -o /dev/null "$URL/v2/$REPO/blobs/uploads/" | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
  case "$loc" in http*) ;; *) loc="$URL$loc" ;; esac
  case "$loc" in *\?*) loc="$loc&digest=$digest" ;; *) loc="$loc?digest=$digest" ;; esac
  curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$file" -o /dev/null "$loc"
  echo "$digest"
}
mkdir -p "$WORK/rootfs" && echo "hello from the refwarden demo" > "$WORK/rootfs/hello.txt"
tar -C "$WORK/rootfs" -cf "$WORK/layer.tar" hello.txt
LAYER=$(push_blob "$WORK/layer.tar"); LAYER_SIZE=$(stat -c %s "$WORK/layer.tar")
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]},"config":{}}' "$LAYER" > "$WORK/config.json"
CONFIG=$(push_blob "$WORK/config.json"); CONFIG_SIZE=$(stat -c %s "$WORK/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
  "$CONFIG" "$CONFIG_SIZE" "$LAYER" "$LAYER_SIZE" > "$WORK/manifest.json"
curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "@$WORK/manifest.json" -o /dev/null "$URL/v2/$REPO/manifests/1.0"
echo "==> seeded $REPO:1.0 ($(sha256sum "$WORK/manifest.json" | cut -c1-12)…)"
echo

echo "==> refwarden probe $URL --plain-http --repository $REPO --tag 1.0"
echo
set +e
"$BIN" probe "$URL" --plain-http --repository "$REPO" --tag 1.0
rc=$?
set -e
echo
echo "exit code $rc (0: the probe ran). Same result as the RegistryProfile status: add -o json."
echo "distribution 2.8 has no referrers API, so refwarden will use the tag fallback (MODE TagFallback)."
echo "==> stopping the registry"
exit $rc
