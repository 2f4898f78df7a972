"""A minimal but correct OpenAPI v3 (/openapi/v3 and one document per group-version).

kubectl's ``--validate=strict`` (its default) first asks ``/openapi/v3`` whether the PATCH operation
of the object's GVK accepts the ``fieldValidation`` query parameter
(cli-runtime ``queryParamVerifierV3``); when it does, kubectl leaves validation to the server
(``fieldValidation=Strict``). So every resource gets ``{name}`` paths with get/put/patch/delete
operations tagged ``x-kubernetes-group-version-kind`` and the standard query parameters, and the
components carry each kind's schema (a CRD's ``openAPIV3Schema``; built-ins: a bare object).
"""
import hashlib
import json

PATCH_PARAMS = ["dryRun", "fieldManager", "fieldValidation", "force"]
WRITE_PARAMS = ["dryRun", "fieldManager", "fieldValidation"]


def _gv_path(group, version):
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _params(names):
    return [{"name": n, "in": "query", "schema": {"type": "boolean" if n == "force" else "string"},
             "uniqueItems": True} for n in names]


def gv_document(registry, group, version):
    rs = [r for r in registry.all() if r.group == group and r.version == version]
    if not rs:
        return None
    paths, schemas = {}, {}
    for r in rs:
        gvk = {"group": group, "version": version, "kind": r.kind}
        schema_name = f"{'.'.join(reversed(group.split('.'))) if group else 'io.k8s.api.core'}.{version}.{r.kind}"
        ref = {"$ref": f"#/components/schemas/{schema_name}"}
        body = {"content": {"application/json": {"schema": ref}}}
        ok = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
        base = f"/{_gv_path(group, version)}"
        coll = f"{base}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{base}/{r.plural}"
        item = f"{coll}/{{name}}"
        paths[coll] = {
            "get": {"operationId": f"list{r.kind}", "x-kubernetes-action": "list", "x-kubernetes-group-version-kind": gvk,
                    "responses": ok},
            "post": {"operationId": f"create{r.kind}", "x-kubernetes-action": "post",
                     "x-kubernetes-group-version-kind": gvk, "parameters": _params(WRITE_PARAMS), "requestBody": body,
                     "responses": ok},
        }
        paths[item] = {
            "get": {"operationId": f"read{r.kind}", "x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk,
                    "responses": ok},
            "put": {"operationId": f"replace{r.kind}", "x-kubernetes-action": "put",
                    "x-kubernetes-group-version-kind": gvk, "parameters": _params(WRITE_PARAMS), "requestBody": body,
                    "responses": ok},
            "patch": {"operationId": f"patch{r.kind}", "x-kubernetes-action": "patch",
                      "x-kubernetes-group-version-kind": gvk, "parameters": _params(PATCH_PARAMS),
                      "requestBody": {"content": {t: {"schema": {"type": "object"}} for t in (
                          "application/apply-patch+yaml", "application/json-patch+json",
                          "application/merge-patch+json", "application/strategic-merge-patch+json")}},
                      "responses": ok},
            "delete": {"operationId": f"delete{r.kind}", "x-kubernetes-action": "delete",
                       "x-kubernetes-group-version-kind": gvk, "responses": ok},
        }
        if r.status:
            paths[item + "/status"] = {k: dict(v, operationId=v["operationId"] + "Status") for k, v in paths[item].items()
                                       if k in ("get", "put", "patch")}
        if r.crd_schema:
            sch = dict(r.crd_schema)
        elif r.schema_def:
            schema_name = r.schema_def
            ref["$ref"] = f"#/components/schemas/{schema_name}"
            _builtin_schemas(r.schema_def, schemas)
            sch = dict(schemas[schema_name])
        else:
            sch = {"type": "object"}
        sch["x-kubernetes-group-version-kind"] = [gvk]
        schemas[schema_name] = sch
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.35.0"}, "paths": paths,
            "components": {"schemas": schemas}}


def root(registry):
    out = {}
    gvs = []
    for r in registry.all():
        gv = (r.group, r.version)
        if gv not in gvs:
            gvs.append(gv)
    for g, v in gvs:
        doc = gv_document(registry, g, v)
        h = hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:128].upper()
        out[_gv_path(g, v)] = {"serverRelativeURL": f"/openapi/v3/{_gv_path(g, v)}?hash={h}"}
    return {"paths": out}


def _builtin_schemas(name, out):
    """Adds the built-in definition ``name`` and everything it references (structure and patch metadata)."""
    from .typeschema import builtins

    src = builtins().src
    todo = [name]
    while todo:
        n = todo.pop()
        if n in out or n not in src:
            continue
        out[n] = _convert(src[n], todo)


def _convert(spec, todo):
    if isinstance(spec, str):
        todo.append(spec)
        return {"$ref": f"#/components/schemas/{spec}"}
    t = spec.get("t")
    if t == "struct":
        o = {"type": "object", "properties": {k: _convert(v, todo) for k, v in spec.get("f", {}).items()}}
        if spec.get("mt") == "atomic":
            o["x-kubernetes-map-type"] = "atomic"
        return o
    if t == "map":
        o = {"type": "object", "additionalProperties": _convert(spec.get("e", {"t": "untyped"}), todo)}
        if spec.get("mt") == "atomic":
            o["x-kubernetes-map-type"] = "atomic"
        return o
    if t == "list":
        o = {"type": "array", "items": _convert(spec.get("e", {"t": "untyped"}), todo)}
        if spec.get("lt") and spec["lt"] != "atomic":
            o["x-kubernetes-list-type"] = spec["lt"]
        if spec.get("k"):
            o["x-kubernetes-list-map-keys"] = spec["k"]
        if spec.get("ps"):
            o["x-kubernetes-patch-strategy"] = spec["ps"]
        if spec.get("pk"):
            o["x-kubernetes-patch-merge-key"] = spec["pk"]
        return o
    if t == "scalar":
        return {"type": "string", "x-kubernetes-int-or-string": True}
    return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
