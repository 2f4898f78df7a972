"""Request routing and the Kubernetes verbs: get, list, watch, create, update, patch (4 types), delete, deletecollection.

Each request: authenticate (bearer token) -> resolve RequestInfo (as the apiserver's
RequestInfoFactory) -> authorize (RBAC) -> injected faults -> the verb. Writes run under the store
lock as one read-modify-write: decode (prune unknown fields per ``fieldValidation``, drop nulls,
defaults) -> strategy (status reset, generation) -> validation (422) -> managedFields -> no-op
check (an unchanged object keeps its resourceVersion and emits no event) -> commit.
"""
import base64
import json
import random
import re
import threading
import time
import urllib.parse
import uuid

from . import crdschema, openapi, patch, protobuf, rbac, selectors, ssa, strategies, table
from . import watch as watchmod
from .resources import Registry
from .store import Store
from .typeschema import LIST, MAP, OBJECT_META, STRUCT, builtins
from .util import ApiError, STATUS_REASONS, decode_json, decode_yaml, deepcopy, dumps, go_quote, now_micro, now_rfc3339

JSON = "application/json"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSONPATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"
APPLY_CBOR = "application/apply-patch+cbor"

CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
NS_KEY = ("", "namespaces")
POD_KEY = ("", "pods")
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class Request:
    def __init__(self, method, target, headers, body, remote=""):
        self.method = method.upper()
        parsed = urllib.parse.urlsplit(target)
        self.path = parsed.path or "/"
        self.raw_query = parsed.query
        self.query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        self.target = target
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body or b""
        self.remote = remote

    def q(self, name, default=None):
        v = self.query.get(name)
        return v[-1] if v else default


class Response:
    def __init__(self, status, body=None, headers=None, stream=None):
        self.status = status
        self.headers = dict(headers or {})
        self.stream = stream
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = dumps(body).encode("utf-8")
            self.headers.setdefault("Content-Type", JSON)
        self.body = body or b""

    @classmethod
    def error(cls, e):
        h = dict(e.headers)
        return cls(e.code, e.status(), h)


class RequestInfo:
    def __init__(self):
        self.resource_request = False
        self.verb = ""
        self.group = ""
        self.version = ""
        self.namespace = ""
        self.resource = ""
        self.name = ""
        self.subresource = ""
        self.legacy_watch = False


def parse_request_info(req):
    ri = RequestInfo()
    parts = [urllib.parse.unquote(p) for p in req.path.strip("/").split("/") if p != ""]
    ri.verb = req.method.lower()
    if not parts or parts[0] not in ("api", "apis"):
        return ri
    if parts[0] == "api":
        if len(parts) < 3:
            return ri
        ri.group, ri.version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 4:
            return ri
        ri.group, ri.version, rest = parts[1], parts[2], parts[3:]
    ri.resource_request = True
    if rest and rest[0] == "watch":
        ri.legacy_watch = True
        rest = rest[1:]
    if rest and rest[0] == "namespaces":
        if len(rest) > 1:
            ri.namespace = rest[1]
            if len(rest) > 2 and rest[2] not in ("status", "finalize"):
                rest = rest[2:]
    if not rest:
        ri.resource_request = False
        return ri
    ri.resource = rest[0]
    if len(rest) > 1:
        ri.name = rest[1]
    if len(rest) > 2:
        ri.subresource = rest[2]
    if len(rest) > 3:
        ri.subresource = "/".join(rest[2:])
    m = req.method
    watch_param = req.q("watch")
    is_watch = ri.legacy_watch or (watch_param is not None and watch_param.lower() in ("true", "1"))
    if m in ("GET", "HEAD"):
        if ri.name:
            ri.verb = "watch" if is_watch else "get"
        else:
            ri.verb = "watch" if is_watch else "list"
            fs = req.q("fieldSelector") or ""
            mm = re.fullmatch(r"\s*metadata\.name\s*==?\s*([^,!=\s]+)\s*", fs)
            if mm:
                ri.name = mm.group(1)
    elif m == "POST":
        ri.verb = "create"
    elif m == "PUT":
        ri.verb = "update"
    elif m == "PATCH":
        ri.verb = "patch"
    elif m == "DELETE":
        ri.verb = "delete" if ri.name else "deletecollection"
    return ri


class Faults:
    """Injected faults: the next N requests matching a rule get its answer instead."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.next_id = 1

    def add(self, spec):
        rule = {
            "id": self.next_id,
            "method": (spec.get("method") or "*").upper(),
            "path": spec.get("path") or spec.get("pathRegex") or ".*",
            "verb": spec.get("verb"),
            "subresource": spec.get("subresource"),
            "user": spec.get("user"),
            "count": int(spec.get("count", 1)),
            "status": int(spec.get("status", 500)),
            "headers": dict(spec.get("headers") or {}),
            "body": spec.get("body"),
            "message": spec.get("message"),
            "reason": spec.get("reason"),
            "delayMs": int(spec.get("delayMs", 0)),
            "hits": 0,
        }
        re.compile(rule["path"])
        with self.lock:
            self.next_id += 1
            self.rules.append(rule)
        return dict(rule)

    def list(self):
        with self.lock:
            return [dict(r) for r in self.rules]

    def clear(self):
        with self.lock:
            self.rules.clear()

    def delete(self, rid):
        with self.lock:
            self.rules = [r for r in self.rules if r["id"] != rid]

    def match(self, req, ri, user):
        with self.lock:
            for r in self.rules:
                if r["count"] <= 0:
                    continue
                if r["method"] not in ("*", req.method):
                    continue
                target = req.path + ("?" + req.raw_query if req.raw_query else "")
                if not re.search(r["path"], target):
                    continue
                if r["verb"] and r["verb"] != ri.verb:
                    continue
                if r["subresource"] is not None and r["subresource"] != ri.subresource:
                    continue
                if r["user"] and (user or {}).get("username") != r["user"]:
                    continue
                r["count"] -= 1
                r["hits"] += 1
                rule = dict(r)
                if r["count"] <= 0:
                    self.rules.remove(r)
                return rule
        return None


def fault_response(rule, ri):
    code = rule["status"]
    headers = dict(rule["headers"])
    if rule["body"] is not None:
        body = rule["body"]
        if isinstance(body, (dict, list)):
            return Response(code, body, headers)
        return Response(code, str(body).encode(), {"Content-Type": "text/plain", **headers})
    reason, message = STATUS_REASONS.get(code, ("InternalError" if code >= 500 else "BadRequest", "injected fault"))
    if rule.get("reason"):
        reason = rule["reason"]
    if rule.get("message"):
        message = rule["message"]
    details = {}
    if ri is not None and ri.resource:
        if ri.name:
            details["name"] = ri.name
        if ri.group:
            details["group"] = ri.group
        details["kind"] = ri.resource
    ra = {k.lower(): v for k, v in headers.items()}.get("retry-after")
    if ra is not None:
        try:
            details["retryAfterSeconds"] = int(ra)
        except ValueError:
            pass
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
              "reason": reason, "code": code}
    if details:
        status["details"] = details
    return Response(code, status, headers)


class Config:
    def __init__(self):
        self.bookmark_interval = 10.0
        self.default_watch_timeout = 300
        self.max_watch_timeout = 600
        self.pod_grace_override = None
        self.anonymous = False
        self.anonymous_user = None  # identity of requests without credentials (kubectl sends none over http)


class RequestLog:
    def __init__(self, limit=20000):
        self.lock = threading.Lock()
        self.entries = []
        self.limit = limit
        self.seq = 0

    def add(self, e):
        with self.lock:
            self.seq += 1
            e["seq"] = self.seq
            self.entries.append(e)
            if len(self.entries) > self.limit:
                del self.entries[: len(self.entries) - self.limit]

    def all(self):
        with self.lock:
            return list(self.entries)

    def reset(self):
        with self.lock:
            self.entries.clear()


def _gen_suffix():
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(random.choice(alphabet) for _ in range(5))


def _accept_meta(req):
    a = req.headers.get("accept", "")
    if "as=PartialObjectMetadataList" in a or "as=PartialObjectMetadata" in a:
        first = a.split(",")[0]
        if "PartialObjectMetadata" in first:
            return True
    return False


def _accept_table(req):
    a = req.headers.get("accept", "")
    return "as=Table" in a.split(",")[0]


def _content_type(req):
    return req.headers.get("content-type", "").split(";")[0].strip().lower()


def prune_typed(v, t, path, unknown):
    """Drops fields a built-in type does not declare (as decoding into Go structs does)."""
    if t is None:
        return v
    if t.kind == STRUCT and isinstance(v, dict):
        out = {}
        for k, x in v.items():
            ft = t.fields.get(k)
            p = f"{path}.{k}" if path else k
            if ft is None:
                if t.extra_untyped:
                    out[k] = x
                else:
                    unknown.append(p)
                continue
            out[k] = prune_typed(x, ft, p, unknown)
        return out
    if t.kind == MAP and isinstance(v, dict):
        return {k: prune_typed(x, t.elem, f"{path}[{k}]", unknown) for k, x in v.items()}
    if t.kind == LIST and isinstance(v, list):
        return [prune_typed(x, t.elem, f"{path}[{i}]", unknown) for i, x in enumerate(v)]
    return v


def drop_nulls_all(v):
    if isinstance(v, dict):
        return {k: drop_nulls_all(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [drop_nulls_all(x) for x in v]
    return v


class WriteCtx:
    def __init__(self, req, user, res, subresource=""):
        self.req = req
        self.user = user
        self.res = res
        self.subresource = subresource
        self.dry_run = any(x == "All" for x in req.query.get("dryRun", []))
        fv = req.q("fieldValidation")
        self.field_validation = fv if fv in ("Ignore", "Warn", "Strict") else "Warn"
        fm = req.q("fieldManager")
        if fm is None:
            ua = req.headers.get("user-agent", "")
            fm = ua.split("/")[0][:128]
        self.field_manager = fm
        self.warnings = []


class Api:
    def __init__(self, store=None, registry=None, authn=None, config=None):
        self.store = store or Store()
        self.registry = registry or Registry()
        self.authn = authn or rbac.Authenticator()
        self.authz = rbac.Authorizer(self.store)
        self.config = config or Config()
        self.faults = Faults()
        self.log = RequestLog()
        self.pending = {}  # (storage, ns, name) -> monotonic deadline (graceful pod deletion)
        self.server_stop = threading.Event()
        self.server_address = "127.0.0.1:0"
        self.control = None  # set by control.Control
        self.on_restart = None  # server callback: drop connections
        self._seed()

    # ---------------------------------------------------------------------------------------
    # Startup objects

    def _seed(self):
        with self.store.cond:
            nsres = self.registry.find("", "v1", "namespaces")
            for n in DEFAULT_NAMESPACES:
                if self.store.get(NS_KEY, "", n) is None:
                    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
                    self._create_obj(nsres, obj, "kube-apiserver", None, "Update")
            roles, bindings = rbac.bootstrap_objects()
            for o in roles + bindings:
                res = self.registry.for_kind("rbac.authorization.k8s.io", o["kind"])
                if self.store.get(res.storage, "", o["metadata"]["name"]) is None:
                    self._create_obj(res, o, "kube-apiserver", None, "Update")
            # Re-establish CRDs loaded from --state-dir.
            for crd in self.store.list(CRD_KEY):
                self.registry.set_crd(crd)

    # ---------------------------------------------------------------------------------------
    # Entry point

    def handle(self, req):
        t0 = time.monotonic()
        entry = {"time": now_micro(), "method": req.method, "path": req.target, "user": "",
                 "contentType": req.headers.get("content-type", ""), "accept": req.headers.get("accept", ""),
                 "userAgent": req.headers.get("user-agent", "")}
        user = None
        ri = None
        try:
            user = self.authn.authenticate(req.headers.get("authorization"))
            if user is None and not req.headers.get("authorization"):
                if self.config.anonymous_user is not None:
                    user = dict(self.config.anonymous_user)
                elif self.config.anonymous:
                    user = {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
            if user is None:
                raise ApiError.unauthorized()
            user = self._impersonate(req, user)
            entry["user"] = user["username"]
            if req.path.startswith("/_emulator"):
                if rbac.MASTERS not in user.get("groups", []):
                    raise ApiError(403, "Forbidden", "forbidden: the control API needs a system:masters token", {})
                resp = self.control.handle(req, user)
            else:
                ri = parse_request_info(req)
                entry.update({"verb": ri.verb, "apiGroup": ri.group, "resource": ri.resource,
                              "subresource": ri.subresource, "namespace": ri.namespace, "name": ri.name})
                resp = self._dispatch(req, ri, user)
        except ApiError as e:
            resp = Response.error(e)
        except Exception as e:  # noqa: BLE001 - an emulator bug must answer 500, not kill the thread
            import traceback

            traceback.print_exc()
            resp = Response.error(ApiError.internal(f"emulator error: {type(e).__name__}: {e}"))
        entry["status"] = resp.status
        entry["watch"] = resp.stream is not None
        entry["durationMs"] = round((time.monotonic() - t0) * 1000, 3)
        if not req.path.startswith("/_emulator"):
            self.log.add(entry)
        return resp

    def _impersonate(self, req, user):
        """Impersonate-User / -Group / -Uid headers, authorized with the ``impersonate`` verb."""
        name = req.headers.get("impersonate-user")
        groups = [g.strip() for g in req.headers.get("impersonate-group", "").split(",") if g.strip()]
        if not name:
            if groups:
                raise ApiError(403, "Forbidden", "impersonating groups requires impersonating a user", {})
            return user
        checks = []
        m = re.fullmatch(r"system:serviceaccount:([^:]+):([^:]+)", name)
        if m:
            checks.append(rbac.Attributes("impersonate", True, "", "", "serviceaccounts", "", m.group(1), m.group(2)))
        else:
            checks.append(rbac.Attributes("impersonate", True, "", "", "users", "", "", name))
        for g in groups:
            checks.append(rbac.Attributes("impersonate", True, "", "", "groups", "", "", g))
        for a in checks:
            if not self.authz.authorize(user, a):
                what = {"serviceaccounts": "serviceaccount", "users": "user", "groups": "group"}[a.resource]
                raise ApiError(403, "Forbidden", f"{a.resource} {go_quote(a.name)} is forbidden: User "
                                                 f"{go_quote(user['username'])} cannot impersonate resource "
                                                 f"{go_quote(a.resource)} in API group \"\" "
                                                 + (f"in the namespace {go_quote(a.namespace)}" if a.namespace else "at the cluster scope"),
                               {"name": a.name, "kind": a.resource})
        if m and not groups:
            groups = ["system:serviceaccounts", f"system:serviceaccounts:{m.group(1)}"]
        if "system:authenticated" not in groups and name != "system:anonymous":
            groups.append("system:authenticated")
        return {"username": name, "groups": groups, "uid": req.headers.get("impersonate-uid", ""),
                "impersonatedBy": user["username"]}

    def _authorize(self, user, ri, req):
        if ri.resource_request:
            a = rbac.Attributes(ri.verb, True, ri.group, ri.version, ri.resource, ri.subresource, ri.namespace,
                                ri.name, req.path)
        else:
            a = rbac.Attributes(req.method.lower(), False, path=req.path)
        if not self.authz.authorize(user, a):
            raise rbac.forbidden(user, a)

    def _dispatch(self, req, ri, user):
        self._authorize(user, ri, req)
        rule = self.faults.match(req, ri, user)
        if rule is not None:
            if rule["delayMs"]:
                time.sleep(min(rule["delayMs"], 60000) / 1000.0)
            if rule["status"] and rule["status"] != 200:
                return fault_response(rule, ri)
        if not ri.resource_request:
            return self._non_resource(req)
        res = self.registry.find(ri.group, ri.version, ri.resource)
        if res is None:
            raise ApiError.path_not_found()
        if ri.namespace and not res.namespaced and not (res.storage == NS_KEY):
            raise ApiError.path_not_found()
        if ri.subresource and not (ri.subresource == "status" and res.status):
            if not (res.storage == NS_KEY and ri.subresource == "finalize"):
                raise ApiError.path_not_found()
        verb = ri.verb
        if ri.subresource and verb not in ("get", "update", "patch"):
            raise ApiError.method_not_allowed()
        if verb not in res.verbs and not ri.subresource:
            raise ApiError.method_not_allowed()
        ns = ri.namespace if res.namespaced else ""
        if res.namespaced and not ri.namespace and verb not in ("list", "watch"):
            if verb == "create" and not ri.name:
                raise ApiError.method_not_allowed()
            raise ApiError.path_not_found()
        if res.storage == NS_KEY:
            ns = ""
        if res.group == "authorization.k8s.io":
            return self._access_review(req, res, user)
        if verb == "get":
            return self._get(req, res, ns, ri.name)
        if verb == "list":
            return self._list(req, res, ns or None)
        if verb == "watch":
            return self._watch(req, res, ns or None, ri)
        if verb == "create":
            if ri.name and not ri.subresource:
                raise ApiError.method_not_allowed()
            return self._create(req, res, ns, user)
        if verb == "update":
            return self._update(req, res, ns, ri.name, user, ri.subresource)
        if verb == "patch":
            return self._patch(req, res, ns, ri.name, user, ri.subresource)
        if verb == "delete":
            return self._delete(req, res, ns, ri.name, user)
        if verb == "deletecollection":
            return self._delete_collection(req, res, ns or None, user)
        raise ApiError.method_not_allowed()

    # ---------------------------------------------------------------------------------------
    # Non-resource endpoints

    def _non_resource(self, req):
        p = req.path.rstrip("/") or "/"
        if p == "/version":
            return Response(200, {"major": "1", "minor": "35", "emulationMajor": "1", "emulationMinor": "35",
                                  "minCompatibilityMajor": "1", "minCompatibilityMinor": "34",
                                  "gitVersion": "v1.35.0-kubeemu", "gitCommit": "kubeemu", "gitTreeState": "clean",
                                  "buildDate": "2025-12-01T00:00:00Z", "goVersion": "go1.25.0", "compiler": "gc",
                                  "platform": "linux/amd64"})
        if p in ("/healthz", "/livez", "/readyz"):
            return Response(200, b"ok", {"Content-Type": "text/plain; charset=utf-8"})
        if p == "/openapi/v3":
            return Response(200, openapi.root(self.registry))
        if p.startswith("/openapi/v3/"):
            rest = p[len("/openapi/v3/"):].split("/")
            doc = None
            if len(rest) == 2 and rest[0] == "api":
                doc = openapi.gv_document(self.registry, "", rest[1])
            elif len(rest) == 3 and rest[0] == "apis":
                doc = openapi.gv_document(self.registry, rest[1], rest[2])
            if doc is not None:
                return Response(200, doc)
        if p == "/api":
            return Response(200, self.registry.api_versions(self.server_address))
        if p == "/apis":
            return Response(200, self.registry.api_group_list())
        parts = p.strip("/").split("/")
        if parts[0] == "api" and len(parts) == 2:
            doc = self.registry.resource_list("", parts[1])
            if doc:
                return Response(200, doc)
        if parts[0] == "apis" and len(parts) == 2:
            doc = self.registry.api_group(parts[1])
            if doc:
                return Response(200, doc)
        if parts[0] == "apis" and len(parts) == 3:
            doc = self.registry.resource_list(parts[1], parts[2])
            if doc:
                return Response(200, doc)
        if p == "/":
            paths = ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"]
            for g, vs in self.registry.groups().items():
                paths.append(f"/apis/{g}")
                paths.extend(f"/apis/{g}/{v}" for v in vs)
            return Response(200, {"paths": sorted(paths)})
        return Response(404, b"404 page not found\n", {"Content-Type": "text/plain; charset=utf-8"})

    # ---------------------------------------------------------------------------------------
    # Presentation

    def present(self, res, obj, meta_only=False):
        if obj is None:
            return None
        o = obj
        if res.storage != (res.group, res.plural):
            o = strategies.event_to_core(o)
        else:
            o = dict(o)
            o["apiVersion"] = res.api_version
            o["kind"] = res.kind
            o = {"apiVersion": o.pop("apiVersion"), "kind": o.pop("kind"), **o}
        if meta_only:
            return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata", {})}
        return o

    def _respond_obj(self, req, res, obj, code=200, ctx=None):
        headers = {}
        if ctx is not None and ctx.warnings:
            headers["Warning"] = ", ".join(f'299 - {json.dumps(w)}' for w in ctx.warnings[:20])
        if _accept_table(req):
            return Response(code, table.table(res, [self.present(res, obj)], "", include_object=req.q("includeObject")),
                            headers)
        return Response(code, self.present(res, obj, _accept_meta(req)), headers)

    # ---------------------------------------------------------------------------------------
    # Reads

    def _get(self, req, res, ns, name):
        obj = self.store.get(res.storage, ns, name)
        if obj is None:
            raise ApiError.not_found(res.group, res.plural, name)
        return self._respond_obj(req, res, obj)

    def _selectors(self, req, res):
        labels = selectors.parse_labels(req.q("labelSelector") or "")
        fields = selectors.parse_fields(req.q("fieldSelector") or "", res.field_labels)
        return labels, fields

    def _list(self, req, res, ns):
        labels, fields = self._selectors(req, res)
        rv = req.q("resourceVersion")
        match = req.q("resourceVersionMatch")
        cont = req.q("continue")
        limit = req.q("limit")
        try:
            limit = int(limit) if limit not in (None, "") else 0
        except ValueError:
            raise ApiError.bad_request(f"invalid limit: {limit}") from None
        if match and not rv:
            raise ApiError(422, "Invalid", 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
                                           'resourceVersionMatch is forbidden unless resourceVersion is provided',
                           {"kind": "ListOptions", "group": "meta.k8s.io",
                            "causes": [{"reason": "FieldValueForbidden", "field": "resourceVersionMatch",
                                        "message": "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"}]})
        if match and match not in ("Exact", "NotOlderThan"):
            raise ApiError(422, "Invalid", f'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: '
                                           f'Unsupported value: {go_quote(match)}: supported values: "Exact", "NotOlderThan"',
                           {"kind": "ListOptions", "group": "meta.k8s.io"})
        if match == "Exact" and rv == "0":
            raise ApiError(422, "Invalid", 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
                                           'resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
                           {"kind": "ListOptions", "group": "meta.k8s.io"})
        start_key = None
        if cont:
            if rv not in (None, ""):
                raise ApiError.bad_request("specifying resource version is not allowed when using continue")
            try:
                tok = json.loads(base64.urlsafe_b64decode(cont + "=" * (-len(cont) % 4)).decode())
                snap_rv, start_key = int(tok["rv"]), tok["start"]
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                raise ApiError.bad_request("continue key is not valid: malformed token") from None
            with self.store.cond:
                if snap_rv < self.store.compacted:
                    raise ApiError(410, "Expired",
                                   "The provided continue parameter is too old to display a consistent list result. "
                                   "You can start a new list without the continue parameter, or use the continue token "
                                   "in this response to retrieve the remainder of the results. Continuing with the "
                                   "provided token results in an inconsistent list - objects that were created, "
                                   "modified, or deleted between the time the first chunk was returned and now may "
                                   "show up in the list.")
                items = self.store.snapshot(res.storage, ns, snap_rv)
        else:
            exact = False
            want = None
            if rv not in (None, "", "0"):
                try:
                    want = int(rv)
                except ValueError:
                    raise ApiError.bad_request(f"invalid resource version: {rv}") from None
                exact = match == "Exact" or (not match and limit > 0)
            if want is not None and want > self.store.rv and not self.store.wait_for_rv(want, 3.0):
                raise ApiError.timeout(f"Too large resource version: {want}, current: {self.store.rv}", 1,
                                       [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}])
            with self.store.cond:
                if exact:
                    if want < self.store.compacted:
                        raise ApiError.gone("The resourceVersion for the provided list is too old.")
                    snap_rv = want
                    items = self.store.snapshot(res.storage, ns, want)
                else:
                    snap_rv = self.store.rv
                    items = self.store.list(res.storage, ns)
        items = [o for o in items if selectors.match_labels(labels, (o.get("metadata") or {}).get("labels"))
                 and selectors.match_fields(fields, o)]

        def okey(o):
            md = o.get("metadata") or {}
            return (md.get("namespace") or "") + "/" + md.get("name", "")

        if start_key is not None:
            items = [o for o in items if okey(o) > start_key]
        meta = {"resourceVersion": str(snap_rv)}
        if limit > 0 and len(items) > limit:
            rest = len(items) - limit
            items = items[:limit]
            tok = {"v": "meta.k8s.io/v1", "rv": snap_rv, "start": okey(items[-1])}
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(tok).encode()).decode().rstrip("=")
            meta["remainingItemCount"] = rest
        meta_only = _accept_meta(req)
        if _accept_table(req):
            return Response(200, table.table(res, [self.present(res, o) for o in items], meta["resourceVersion"],
                                             meta.get("continue"), include_object=req.q("includeObject")))
        out_items = []
        for o in items:
            p = self.present(res, o, meta_only)
            if not meta_only and not res.is_custom:
                p = {k: v for k, v in p.items() if k not in ("apiVersion", "kind")}
            out_items.append(p)
        if meta_only:
            body = {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                    "items": out_items}
        else:
            body = {"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta, "items": out_items}
        return Response(200, body)

    def _watch(self, req, res, ns, ri):
        labels, fields = self._selectors(req, res)
        t = req.q("timeoutSeconds")
        try:
            timeout = int(t) if t not in (None, "") else self.config.default_watch_timeout
        except ValueError:
            raise ApiError.bad_request(f"invalid timeoutSeconds: {t}") from None
        timeout = max(0, min(timeout, self.config.max_watch_timeout))
        if timeout == 0:
            timeout = self.config.default_watch_timeout
        if ri.name:
            fields = fields + [("metadata.name", "=", ri.name)]
        send_initial = (req.q("sendInitialEvents") or "").lower() == "true"
        bookmarks = (req.q("allowWatchBookmarks") or "").lower() in ("true", "1")
        if send_initial and not bookmarks:
            raise ApiError(422, "Invalid", 'ListOptions.meta.k8s.io "" is invalid: allowWatchBookmarks: Forbidden: '
                                           'allowWatchBookmarks must be set to true when sendInitialEvents is set',
                           {"kind": "ListOptions", "group": "meta.k8s.io"})
        if send_initial and req.q("resourceVersionMatch") != "NotOlderThan":
            raise ApiError(422, "Invalid", 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
                                           'sendInitialEvents requires setting resourceVersionMatch to NotOlderThan',
                           {"kind": "ListOptions", "group": "meta.k8s.io"})
        meta_only = _accept_meta(req)
        as_table = _accept_table(req)

        def present(o):
            p = self.present(res, o, meta_only)
            if as_table:
                return table.table(res, [p], "", include_object=req.q("includeObject"))
            return p

        if meta_only:
            bk = ("meta.k8s.io/v1", "PartialObjectMetadata")
        else:
            bk = ("v1", "Event") if res.storage != (res.group, res.plural) else (res.api_version, res.kind)
        w = watchmod.WatchRequest(res, res.storage, ns, labels, fields, req.q("resourceVersion"), send_initial,
                                  bookmarks, timeout, present, bk)
        watcher, initial, start, err = watchmod.prepare(self.store, w)
        store = self.store
        interval = self.config.bookmark_interval
        stop = self.server_stop

        def stream(write):
            if err is not None:
                write(watchmod.error_event(err))
                return None
            return watchmod.run(store, w, watcher, initial, start, write, interval, stop)

        ctype = JSON
        return Response(200, None, {"Content-Type": ctype}, stream=stream)

    # ---------------------------------------------------------------------------------------
    # Writes: shared pipeline

    def _check_type(self, res, obj, for_apply=False):
        if not isinstance(obj, dict):
            raise ApiError.bad_request("the body of the request must be a JSON object")
        av, kind = obj.get("apiVersion"), obj.get("kind")
        if for_apply and (not av or not kind):
            missing = "apiVersion" if not av else "kind"
            raise ApiError.bad_request(f"error decoding YAML: Object '{'Kind' if missing == 'kind' else 'apiVersion'}' "
                                       "is missing in the object")
        if av and av != res.api_version:
            raise ApiError.bad_request(f"the API version in the data ({av}) does not match the expected API version "
                                       f"({res.api_version})")
        if kind and kind != res.kind:
            raise ApiError.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({res.kind})")
        obj["apiVersion"] = res.api_version
        obj["kind"] = res.kind
        md = obj.get("metadata")
        if md is None:
            obj["metadata"] = {}
        elif not isinstance(md, dict):
            raise ApiError.bad_request("metadata must be an object")
        return obj

    def _to_storage(self, res, obj):
        """Request-version object -> stored form (core Event -> events.k8s.io, CR -> storage version)."""
        if res.storage != (res.group, res.plural):
            return strategies.event_from_core(obj)
        if res.is_custom:
            sv = getattr(res, "storage_version", res.version)
            obj["apiVersion"] = f"{res.group}/{sv}"
        return obj

    def _storage_res(self, res):
        """The resource whose schema/type governs the stored form."""
        if res.storage != (res.group, res.plural):
            return self.registry.find(res.storage[0], "v1", res.storage[1])
        if res.is_custom:
            sv = getattr(res, "storage_version", res.version)
            return self.registry.find(res.group, sv, res.plural) or res
        return res

    def _decode(self, res, obj, ctx):
        """Unknown-field pruning (fieldValidation), nulls, defaults."""
        unknown = []
        if res.is_custom:
            obj, unknown = crdschema.prune(obj, res.crd_schema or {})
            md = obj.get("metadata")
            if isinstance(md, dict):
                obj["metadata"] = prune_typed(md, builtins().get(OBJECT_META), "metadata", unknown)
        else:
            obj = prune_typed(obj, res.type(), "", unknown)
        if unknown and ctx is not None:
            if ctx.field_validation == "Strict":
                raise ApiError.bad_request("strict decoding error: " + ", ".join(
                    f"unknown field {go_quote(u)}" for u in unknown))
            if ctx.field_validation == "Warn":
                ctx.warnings.extend(f"unknown field {go_quote(u)}" for u in unknown)
        if res.is_custom:
            md = obj.get("metadata")
            obj = crdschema.drop_nulls(obj, {"properties": (res.crd_schema or {}).get("properties") or {}})
            if isinstance(md, dict):
                obj["metadata"] = drop_nulls_all(md)
            obj = crdschema.apply_defaults(obj, res.crd_schema or {})
        else:
            obj = drop_nulls_all(obj)
            obj = strategies.defaults(res, obj)
        return obj

    def _validate(self, res, obj, old):
        errs = []
        md = obj.get("metadata") or {}
        errs.extend(strategies.validate_name(res, md.get("name", "")))
        for lk, lv in (md.get("labels") or {}).items():
            if not isinstance(lv, str):
                errs.append((f"metadata.labels", "FieldValueInvalid", f"Invalid value: {go_quote(str(lv))}: label values must be strings"))
            elif len(lv) > 63 or (lv and not re.fullmatch(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", lv)):
                errs.append((f"metadata.labels", "FieldValueInvalid",
                             f"Invalid value: {go_quote(lv)}: a valid label must be an empty string or consist of "
                             "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
                             "character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                             "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"))
        if res.is_custom and res.crd_schema:
            errs.extend(crdschema.validate(obj, res.crd_schema))
        errs.extend(strategies.validate(res, obj, old))
        if errs:
            raise ApiError.invalid(res.group, res.kind, md.get("name", ""), errs)

    def _namespace_ok(self, res, ns):
        if not res.namespaced or res.storage == NS_KEY:
            return
        nsobj = self.store.get(NS_KEY, "", ns)
        if nsobj is None:
            raise ApiError.not_found("", "namespaces", ns)
        if (nsobj.get("metadata") or {}).get("deletionTimestamp"):
            raise ApiError(403, "Forbidden", f"{res.plural} {go_quote('')} is forbidden: unable to create new content "
                                             f"in namespace {ns} because it is being terminated",
                           {"kind": res.plural, "causes": [{"reason": "NamespaceTerminating",
                                                            "message": f"namespace {ns} is being terminated",
                                                            "field": "metadata.namespace"}]})

    def _create_obj(self, res, body, manager, ctx, operation="Update", managers=None, apply_me=None, dry_run=False):
        """Create pipeline (lock held). Returns the stored object."""
        sres = self._storage_res(res)
        obj = self._to_storage(res, deepcopy(body))
        md = obj.setdefault("metadata", {})
        for f in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink",
                  "generation", "managedFields"):
            md.pop(f, None)
        obj = self._decode(sres, obj, ctx)
        md = obj["metadata"]
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = now_rfc3339()
        if sres.generation:
            md["generation"] = 1
        obj = strategies.prepare_create(sres, obj)
        self._validate(res if res.is_custom else sres, obj, None)
        t = sres.type()
        if managers is None:
            base = self._empty_for(sres)
            mgrs = ssa.update(base, obj, t, ssa.Managers(), manager, res.api_version, "",
                              strategies.reset_paths(sres, "", obj))
        else:
            mgrs = managers
            if apply_me:
                ssa.touch(mgrs, apply_me)
        mf = mgrs.encode()
        if mf:
            md["managedFields"] = mf
        md = {k: md[k] for k in _META_ORDER if k in md} | {k: v for k, v in md.items() if k not in _META_ORDER}
        obj["metadata"] = md
        if dry_run:
            return obj
        stored = self.store.commit(sres.storage, "ADDED", obj)
        self._after_write(sres, stored, None)
        return stored

    def _empty_for(self, res):
        base = {}
        if not res.is_custom:
            t = res.type()
            if t.kind == STRUCT:
                for f in ("spec", "status"):
                    if f in t.fields:
                        base[f] = {}
        return base

    def _update_obj(self, res, live, new, ctx, subresource, managers_base, apply=None):
        """Update pipeline for PUT / PATCH / apply (lock held). Returns (object, changed)."""
        sres = self._storage_res(res)
        new = self._to_storage(res, new)
        md = new.get("metadata")
        if not isinstance(md, dict):
            new["metadata"] = md = {}
        lmd = live["metadata"]
        for f in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation",
                  "name", "namespace", "resourceVersion"):
            if f in lmd:
                md[f] = lmd[f]
            else:
                md.pop(f, None)
        md.pop("managedFields", None)
        new = self._decode(sres, new, ctx)
        new = strategies.prepare_update(sres, new, live, subresource)
        self._validate(res if res.is_custom else sres, new, live)
        if strategies.generation_changed(sres, new, live):
            new["metadata"]["generation"] = int(lmd.get("generation") or 0) + 1
        t = sres.type()
        ignored = strategies.reset_paths(sres, subresource, live, new)
        live_plain = {k: v for k, v in live.items()}
        if apply is not None:
            mgrs, me = apply
        else:
            mgrs, me = ssa.update(live_plain, new, t, managers_base, ctx.field_manager, res.api_version,
                                  subresource, ignored), None
        content_changed = _without_mf(new) != _without_mf(live)
        if me and content_changed:
            ssa.touch(mgrs, me)
        mf = mgrs.encode()
        if mf:
            new["metadata"]["managedFields"] = mf
        else:
            new["metadata"].pop("managedFields", None)
        new["metadata"] = _order_meta(new["metadata"])
        if _canon(new) == _canon(live):
            return live, False
        if ctx.dry_run:
            return new, True
        stored = self.store.commit(sres.storage, "MODIFIED", new)
        stored = self._after_write(sres, stored, live)
        return stored, True

    def _after_write(self, res, stored, live):
        """Side effects: CRD establishment, finalizer-complete deletions."""
        if res.storage == CRD_KEY:
            self.registry.set_crd(stored)
        md = stored.get("metadata") or {}
        if live is not None and md.get("deletionTimestamp") and not md.get("finalizers"):
            k = (res.storage, md.get("namespace") or "", md["name"])
            deadline = self.pending.get(k)
            if deadline is None or deadline <= time.monotonic():
                return self._remove(res, stored)
        return stored

    def _remove(self, res, obj):
        """Final removal (DELETED event)."""
        md = obj["metadata"]
        self.pending.pop((res.storage, md.get("namespace") or "", md["name"]), None)
        out = self.store.commit(res.storage, "DELETED", obj)
        if res.storage == CRD_KEY:
            self._crd_deleted(obj)
        return out

    def _crd_deleted(self, crd):
        spec = crd.get("spec") or {}
        storage = (spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
        for o in self.store.list(storage):
            self.store.commit(storage, "DELETED", o)
        self.registry.remove_crd(crd["metadata"]["name"])

    def _managers_from_request(self, live, new_md):
        """managedFields base: the request's when it sets them (``[{}]`` clears), else the live ones."""
        live_mf = (live.get("metadata") or {}).get("managedFields")
        if isinstance(new_md, dict) and "managedFields" in new_md and new_md["managedFields"] != live_mf:
            mf = new_md["managedFields"]
            if mf == [{}] or mf == []:
                return ssa.Managers()
            return ssa.Managers.decode(mf)
        return ssa.Managers.decode(live_mf)

    # ---------------------------------------------------------------------------------------
    # create / update / patch / apply

    def _decode_body(self, req):
        ctype = _content_type(req)
        if ctype in ("", JSON):
            return decode_json(req.body)
        if ctype in ("application/yaml", "application/x-yaml"):
            return decode_yaml(req.body)
        raise ApiError.unsupported_media_type(ctype, [JSON, "application/yaml"])

    def _create(self, req, res, ns, user):
        ctx = WriteCtx(req, user, res)
        body = self._decode_body(req)
        body = self._check_type(res, body)
        md = body["metadata"]
        if res.namespaced:
            if md.get("namespace") and md["namespace"] != ns:
                raise ApiError.bad_request("the namespace of the provided object does not match the namespace sent on "
                                           "the request")
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        if md.get("resourceVersion"):
            raise ApiError.internal("resourceVersion should not be set on objects to be created")
        with self.store.cond:
            if not md.get("name") and md.get("generateName"):
                for _ in range(10):
                    cand = md["generateName"] + _gen_suffix()
                    if self.store.get(res.storage, ns, cand) is None:
                        md["name"] = cand
                        break
            if not md.get("name"):
                raise ApiError.invalid(res.group, res.kind, "", [("metadata.name", "FieldValueRequired",
                                                                  "Required value: name or generateName is required")])
            self._namespace_ok(res, ns)
            if self.store.get(res.storage, ns, md["name"]) is not None:
                raise ApiError.already_exists(res.group, res.plural, md["name"])
            obj = self._create_obj(res, body, ctx.field_manager, ctx, dry_run=ctx.dry_run)
        return self._respond_obj(req, res, obj, 201, ctx)

    def _update(self, req, res, ns, name, user, subresource):
        ctx = WriteCtx(req, user, res, subresource)
        body = self._decode_body(req)
        body = self._check_type(res, body)
        md = body["metadata"]
        if md.get("name") and md["name"] != name:
            raise ApiError.bad_request(f"the name of the object ({md['name']}) does not match the name on the URL ({name})")
        md["name"] = name
        if res.namespaced:
            if md.get("namespace") and md["namespace"] != ns:
                raise ApiError.bad_request("the namespace of the provided object does not match the namespace sent on "
                                           "the request")
            md["namespace"] = ns
        with self.store.cond:
            live = self.store.get(res.storage, ns, name)
            if live is None:
                if subresource or strategies.key(self._storage_res(res)) not in strategies.ALLOW_CREATE_ON_UPDATE:
                    raise ApiError.not_found(res.group, res.plural, name)
                self._namespace_ok(res, ns)
                if md.get("resourceVersion"):
                    raise ApiError.not_found(res.group, res.plural, name)
                obj = self._create_obj(res, body, ctx.field_manager, ctx, dry_run=ctx.dry_run)
                return self._respond_obj(req, res, obj, 201, ctx)
            rv = md.get("resourceVersion")
            if rv and rv != live["metadata"]["resourceVersion"]:
                raise ApiError.conflict(res.group, res.plural, name, "the object has been modified; please apply your "
                                        "changes to the latest version and try again")
            uid = md.get("uid")
            if uid and uid != live["metadata"].get("uid"):
                raise ApiError.conflict(res.group, res.plural, name, f"Precondition failed: UID in precondition: {uid}, "
                                        f"UID in object meta: {live['metadata'].get('uid')}")
            managers = self._managers_from_request(live, md)
            new = body if res.storage == (res.group, res.plural) else body
            obj, _ = self._update_obj(res, live, new, ctx, subresource, managers)
        return self._respond_obj(req, res, obj, 200, ctx)

    def _patch(self, req, res, ns, name, user, subresource):
        ctype = _content_type(req)
        if ctype in (APPLY, APPLY_CBOR):
            return self._apply(req, res, ns, name, user, subresource)
        ctx = WriteCtx(req, user, res, subresource)
        if req.q("force") is not None:
            raise ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be '
                                           'specified for non-apply patch',
                           {"kind": "PatchOptions", "group": "meta.k8s.io",
                            "causes": [{"reason": "FieldValueForbidden", "field": "force",
                                        "message": "Forbidden: may not be specified for non-apply patch"}]})
        accepted = [JSONPATCH, MERGE, APPLY] if res.is_custom else [JSONPATCH, MERGE, APPLY, STRATEGIC]
        if ctype not in accepted:
            raise ApiError.unsupported_media_type(ctype, accepted)
        body = decode_json(req.body)
        with self.store.cond:
            live = self.store.get(res.storage, ns, name)
            if live is None:
                raise ApiError.not_found(res.group, res.plural, name)
            view = self.present(res, live)
            t = res.type() if res.storage == (res.group, res.plural) else self.registry.find("", "v1", "events").type()
            if ctype == MERGE:
                if not isinstance(body, dict):
                    raise ApiError.bad_request("merge patch must be a JSON object")
                patched = patch.merge_patch(view, body)
            elif ctype == JSONPATCH:
                patched = patch.json_patch(view, body)
            else:
                patched = patch.strategic_merge_patch(view, body, t)
            if not isinstance(patched, dict):
                raise ApiError.bad_request("the patched object must be a JSON object")
            patched = self._check_type(res, patched)
            pmd = patched["metadata"]
            if pmd.get("name") != name:
                raise ApiError.invalid(res.group, res.kind, name, [("metadata.name", "FieldValueInvalid",
                                                                    f"Invalid value: {go_quote(pmd.get('name') or '')}: field is immutable")])
            rv = pmd.get("resourceVersion")
            if rv and rv != live["metadata"]["resourceVersion"]:
                raise ApiError.conflict(res.group, res.plural, name, "the object has been modified; please apply your "
                                        "changes to the latest version and try again")
            managers = self._managers_from_request(live, pmd)
            obj, _ = self._update_obj(res, live, patched, ctx, subresource, managers)
        return self._respond_obj(req, res, obj, 200, ctx)

    def _apply(self, req, res, ns, name, user, subresource):
        ctx = WriteCtx(req, user, res, subresource)
        if not req.q("fieldManager"):
            raise ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is '
                                           'required for apply patch',
                           {"kind": "PatchOptions", "group": "meta.k8s.io",
                            "causes": [{"reason": "FieldValueRequired", "field": "fieldManager",
                                        "message": "Required value: is required for apply patch"}]})
        force = (req.q("force") or "").lower() == "true"
        config = decode_yaml(req.body)
        if not isinstance(config, dict):
            raise ApiError.bad_request("error decoding YAML: the apply body must be an object")
        config = self._check_type(res, config, for_apply=True)
        cmd = config["metadata"]
        if cmd.get("name") and cmd["name"] != name:
            raise ApiError.bad_request(f"the name of the object ({cmd['name']}) does not match the name on the URL ({name})")
        if res.namespaced and cmd.get("namespace") and cmd["namespace"] != ns:
            raise ApiError.bad_request("the namespace of the provided object does not match the namespace sent on the request")
        if "managedFields" in cmd and cmd["managedFields"] is not None:
            raise ApiError.bad_request("metadata.managedFields must be nil")
        sres = self._storage_res(res)
        config = self._to_storage(res, config)
        gvk = f"{res.group}/{res.version}, Kind={res.kind}" if res.group else f"/{res.version}, Kind={res.kind}"
        # Unknown fields in the applied configuration.
        unknown = []
        if sres.is_custom:
            pruned, unknown = crdschema.prune(config, sres.crd_schema or {})
            if isinstance(pruned.get("metadata"), dict):
                pruned["metadata"] = prune_typed(pruned["metadata"], builtins().get(OBJECT_META), "metadata", unknown)
        else:
            pruned = prune_typed(config, sres.type(), "", unknown)
        if unknown:
            if ctx.field_validation == "Strict":
                raise ApiError.bad_request(f"failed to create typed patch object ({gvk}): " + ", ".join(
                    f".{u}: field not declared in schema" for u in unknown))
            if ctx.field_validation == "Warn":
                ctx.warnings.extend(f"unknown field {go_quote(u)}" for u in unknown)
            config = pruned
        t = sres.type()
        with self.store.cond:
            live = self.store.get(res.storage, ns, name)
            creating = live is None
            if creating and subresource:
                raise ApiError.not_found(res.group, res.plural, name)
            if creating:
                self._namespace_ok(res, ns)
                base = self._empty_for(sres)
                managers = ssa.Managers()
            else:
                base = live
                managers = ssa.Managers.decode(live["metadata"].get("managedFields"))
            ignored = strategies.reset_paths(sres, subresource, base, config)
            try:
                merged, managers, me = ssa.apply(base, config, t, managers, ctx.field_manager, config["apiVersion"],
                                                 subresource, force, ignored)
            except ssa.TypedError as e:
                raise ApiError.bad_request(f"failed to create typed patch object ({gvk}): {e}") from None
            if merged is None:
                merged = {}
            if creating:
                merged.setdefault("metadata", {})["name"] = name
                if res.namespaced:
                    merged["metadata"]["namespace"] = ns
                merged["apiVersion"], merged["kind"] = config["apiVersion"], config["kind"]
                obj = self._create_obj(sres, merged, ctx.field_manager, ctx, managers=managers, apply_me=me,
                                       dry_run=ctx.dry_run)
                return self._respond_obj(req, res, obj, 201, ctx)
            obj, _ = self._update_obj(sres, live, merged, ctx, subresource, managers, apply=(managers, me))
        return self._respond_obj(req, res, obj, 200, ctx)

    # ---------------------------------------------------------------------------------------
    # delete

    def _delete_options(self, req):
        opts = {}
        if req.body and req.body.strip():
            try:
                opts = json.loads(req.body)
            except ValueError:
                raise ApiError.bad_request("error decoding DeleteOptions") from None
            if not isinstance(opts, dict):
                opts = {}
        g = req.q("gracePeriodSeconds")
        if g not in (None, ""):
            try:
                opts["gracePeriodSeconds"] = int(g)
            except ValueError:
                raise ApiError.bad_request(f"invalid gracePeriodSeconds: {g}") from None
        if req.q("propagationPolicy"):
            opts["propagationPolicy"] = req.q("propagationPolicy")
        if any(x == "All" for x in req.query.get("dryRun", [])):
            opts["dryRun"] = ["All"]
        return opts

    def _delete(self, req, res, ns, name, user):
        opts = self._delete_options(req)
        with self.store.cond:
            live = self.store.get(res.storage, ns, name)
            if live is None:
                raise ApiError.not_found(res.group, res.plural, name)
            pre = opts.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != live["metadata"].get("uid"):
                raise ApiError.conflict(res.group, res.plural, name,
                                        f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: "
                                        f"{live['metadata'].get('uid')}")
            if pre.get("resourceVersion") and pre["resourceVersion"] != live["metadata"]["resourceVersion"]:
                raise ApiError.conflict(res.group, res.plural, name,
                                        f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                                        f"ResourceVersion in object meta: {live['metadata']['resourceVersion']}")
            dry = "All" in (opts.get("dryRun") or [])
            obj, deleted = self._delete_locked(res, live, opts, dry)
        sres = self._storage_res(res)
        if deleted and strategies.key(sres) not in strategies.RETURN_DELETED_OBJECT:
            st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                  "details": {"name": name, "kind": res.plural, "uid": live["metadata"].get("uid")}}
            if res.group:
                st["details"]["group"] = res.group
            return Response(200, st)
        return self._respond_obj(req, res, obj, 200)

    def _pod_grace(self, live, opts):
        g = opts.get("gracePeriodSeconds")
        spec = live.get("spec") or {}
        phase = (live.get("status") or {}).get("phase")
        if g is None:
            g = self.config.pod_grace_override
            if g is None:
                g = spec.get("terminationGracePeriodSeconds", 30)
        if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
            g = 0
        return max(0, int(g))

    def _delete_locked(self, res, live, opts, dry):
        """(object, deleted_now)."""
        sres = self._storage_res(res)
        md = live["metadata"]
        k = (sres.storage, md.get("namespace") or "", md["name"])
        grace = 0
        if sres.storage == POD_KEY:
            grace = self._pod_grace(live, opts)
        finalizers = md.get("finalizers") or []
        if sres.storage == NS_KEY:
            if md.get("deletionTimestamp"):
                return live, False
            new = deepcopy(live)
            new["metadata"]["deletionTimestamp"] = now_rfc3339()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new.setdefault("status", {})["phase"] = "Terminating"
            if dry:
                return new, False
            stored = self.store.commit(sres.storage, "MODIFIED", new)
            self.pending[k] = time.monotonic()
            return stored, False
        if grace > 0 or finalizers:
            if md.get("deletionTimestamp"):
                # Already terminating: a shorter grace period shortens it.
                old_grace = md.get("deletionGracePeriodSeconds")
                if sres.storage == POD_KEY and old_grace is not None and grace < old_grace:
                    new = deepcopy(live)
                    new["metadata"]["deletionGracePeriodSeconds"] = grace
                    new["metadata"]["deletionTimestamp"] = _rfc3339_after(grace)
                    if dry:
                        return new, False
                    if grace == 0 and not finalizers:
                        return self._remove(sres, new), True
                    stored = self.store.commit(sres.storage, "MODIFIED", new)
                    self.pending[k] = time.monotonic() + grace
                    return stored, False
                return live, False
            new = deepcopy(live)
            new["metadata"]["deletionTimestamp"] = _rfc3339_after(grace)
            new["metadata"]["deletionGracePeriodSeconds"] = grace
            if sres.generation:
                new["metadata"]["generation"] = int(md.get("generation") or 0) + 1
            if dry:
                return new, False
            if grace == 0 and not finalizers:
                return self._remove(sres, new), True
            stored = self.store.commit(sres.storage, "MODIFIED", new)
            self.pending[k] = time.monotonic() + grace
            return stored, False
        if dry:
            return live, True
        return self._remove(sres, live), True

    def _delete_collection(self, req, res, ns, user):
        labels, fields = self._selectors(req, res)
        opts = self._delete_options(req)
        dry = "All" in (opts.get("dryRun") or [])
        out = []
        with self.store.cond:
            for o in self.store.list(res.storage, ns):
                if selectors.match_labels(labels, (o.get("metadata") or {}).get("labels")) and selectors.match_fields(fields, o):
                    obj, _ = self._delete_locked(res, o, opts, dry)
                    out.append(self.present(res, obj))
            rv = self.store.rv
        return Response(200, {"kind": res.list_kind, "apiVersion": res.api_version,
                              "metadata": {"resourceVersion": str(rv)}, "items": out})

    # ---------------------------------------------------------------------------------------
    # Background: graceful deletions and namespace termination (called by the server's reaper)

    def reap(self):
        now = time.monotonic()
        with self.store.cond:
            for k, deadline in list(self.pending.items()):
                if deadline > now:
                    continue
                storage, ns, name = k
                obj = self.store.get(storage, ns, name)
                if obj is None:
                    self.pending.pop(k, None)
                    continue
                res = self.registry.by_storage(storage)
                res = res[0] if res else None
                if storage == NS_KEY:
                    self._terminate_namespace(name)
                    obj = self.store.get(storage, ns, name)
                    if obj is None:
                        self.pending.pop(k, None)
                        continue
                if (obj["metadata"].get("finalizers") or []):
                    if storage == NS_KEY:
                        self.pending.pop(k, None)
                        continue
                    self.pending.pop(k, None)
                    continue
                if res is not None:
                    self._remove(res, obj)
                else:
                    self.pending.pop(k, None)

    def _terminate_namespace(self, ns):
        for storage in self.store.all_storages():
            if storage == NS_KEY:
                continue
            for o in self.store.list(storage, ns):
                if (o.get("metadata") or {}).get("namespace") != ns:
                    continue
                if o["metadata"].get("finalizers"):
                    continue
                self.store.commit(storage, "DELETED", o)
                self.pending.pop((storage, ns, o["metadata"]["name"]), None)
        nsobj = self.store.get(NS_KEY, "", ns)
        if nsobj is not None:
            nsobj.setdefault("spec", {})["finalizers"] = []

    # ---------------------------------------------------------------------------------------
    # Access reviews (kubectl auth can-i)

    def _access_review(self, req, res, user):
        if _content_type(req) == "application/vnd.kubernetes.protobuf":
            body = protobuf.decode_access_review(req.body)
        else:
            body = self._decode_body(req)
        if not isinstance(body, dict):
            raise ApiError.bad_request("the body of the request must be a JSON object")
        spec = body.get("spec") or {}
        if res.plural == "subjectaccessreviews":
            subject = {"username": spec.get("user", ""), "groups": spec.get("groups") or []}
        else:
            subject = user
        ra = spec.get("resourceAttributes")
        if ra:
            a = rbac.Attributes(ra.get("verb", ""), True, ra.get("group", ""), ra.get("version", ""),
                                ra.get("resource", ""), ra.get("subresource", ""), ra.get("namespace", ""),
                                ra.get("name", ""))
        else:
            nra = spec.get("nonResourceAttributes") or {}
            a = rbac.Attributes(nra.get("verb", ""), False, path=nra.get("path", ""))
        allowed, reason = self.authz.decide(subject, a)
        out = {"kind": res.kind, "apiVersion": res.api_version, "metadata": {"creationTimestamp": None},
               "spec": spec, "status": {"allowed": allowed}}
        if reason:
            out["status"]["reason"] = reason
        return Response(201, out)


_META_ORDER = ("name", "generateName", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
               "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
               "finalizers", "managedFields")


def _order_meta(md):
    return {k: md[k] for k in _META_ORDER if k in md} | {k: v for k, v in md.items() if k not in _META_ORDER}


def _without_mf(o):
    o = dict(o)
    md = dict(o.get("metadata") or {})
    md.pop("managedFields", None)
    md.pop("resourceVersion", None)
    o["metadata"] = md
    return o


def _canon(o):
    return json.dumps(o, sort_keys=True)


def _rfc3339_after(seconds):
    from .util import rfc3339_in

    return rfc3339_in(seconds)
