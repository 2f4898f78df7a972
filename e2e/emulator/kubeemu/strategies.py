"""Per-kind rules of the registry strategies: defaults, status reset, generation, validation, naming.

What each kind gets (after k8s.io/kubernetes/pkg/registry/*/strategy.go and the default admission):

- every kind: name validation (DNS subdomain; DNS label for namespaces/services; path segment for
  RBAC and events), system metadata (uid, creationTimestamp, generation 1 where tracked);
- kinds with a status subresource: writes to the main resource keep the stored status, writes to
  ``/status`` keep everything but status (pods/status may change labels/annotations, not spec);
- generation (CRs, CRDs, pods, apps, batch): +1 when anything but metadata (and status, when
  it is a subresource) changes, and when deletion starts;
- pods: defaults (restartPolicy, dnsPolicy, schedulerName, terminationGracePeriodSeconds,
  serviceAccountName, enableServiceLinks, securityContext, priority, tolerations for
  not-ready/unreachable, per-container imagePullPolicy / terminationMessage* / port protocol),
  status reset to ``Pending`` + qosClass on create, spec immutability on update (image,
  activeDeadlineSeconds and tolerations may change), required containers/name/image;
- namespaces: label ``kubernetes.io/metadata.name``, ``spec.finalizers: [kubernetes]``,
  ``status.phase: Active``;
- secrets: ``type: Opaque`` default, ``stringData`` folded into ``data``;
- events.k8s.io/v1: required eventTime, reportingController, reportingInstance, action, reason;
- leases: leaseDurationSeconds > 0, leaseTransitions >= 0;
- RBAC: rules need verbs; bindings' roleRef is immutable;
- CRDs: name must be ``<plural>.<group>``, scope, one storage version; status
  (NamesAccepted, Established, acceptedNames, storedVersions) is set by the server.
"""
import base64
import re

from .util import go_quote, now_rfc3339

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

LABEL_NAMES = {("", "namespaces"), ("", "services")}
SEGMENT_NAMES = {("rbac.authorization.k8s.io", p) for p in ("roles", "rolebindings", "clusterroles", "clusterrolebindings")} | {
    ("events.k8s.io", "events"), ("", "events")}

ALLOW_CREATE_ON_UPDATE = {("coordination.k8s.io", "leases"), ("events.k8s.io", "events"), ("", "events")} | {
    ("rbac.authorization.k8s.io", p) for p in ("roles", "rolebindings", "clusterroles", "clusterrolebindings")}
RETURN_DELETED_OBJECT = {("", "pods"), ("", "services")}

SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
                 "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
             "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")


def key(res):
    return (res.group, res.plural)


def validate_name(res, name, path="metadata.name"):
    errs = []
    if not name:
        return [(path, "FieldValueRequired", "Required value: name or generateName is required")]
    k = key(res)
    if k in SEGMENT_NAMES:
        if name in (".", "..") or "/" in name or "%" in name:
            errs.append((path, "FieldValueInvalid", f"Invalid value: {go_quote(name)}: may not contain '/' or '%'"))
    elif k in LABEL_NAMES:
        if len(name) > 63 or not DNS_LABEL.match(name):
            errs.append((path, "FieldValueInvalid", f"Invalid value: {go_quote(name)}: {LABEL_MSG}"))
    else:
        if len(name) > 253 or not DNS_SUBDOMAIN.match(name):
            errs.append((path, "FieldValueInvalid", f"Invalid value: {go_quote(name)}: {SUBDOMAIN_MSG}"))
    return errs


# -------------------------------------------------------------------------------------------
# Defaults applied on every write (decoding defaults) for built-ins


def _pull_policy(image):
    if not isinstance(image, str):
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def _default_containers(cs):
    for c in cs or []:
        if not isinstance(c, dict):
            continue
        c.setdefault("imagePullPolicy", _pull_policy(c.get("image")))
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
        for p in c.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")


def defaults(res, obj):
    k = key(res)
    if k == ("", "pods"):
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            spec.setdefault("restartPolicy", "Always")
            spec.setdefault("dnsPolicy", "ClusterFirst")
            spec.setdefault("terminationGracePeriodSeconds", 30)
            spec.setdefault("schedulerName", "default-scheduler")
            spec.setdefault("securityContext", {})
            spec.setdefault("enableServiceLinks", True)
            sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
            spec["serviceAccountName"] = sa
            spec["serviceAccount"] = sa
            spec.setdefault("priority", 0)
            spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
            _default_containers(spec.get("containers"))
            _default_containers(spec.get("initContainers"))
    elif k == ("", "namespaces"):
        md = obj.setdefault("metadata", {})
        labels = md.get("labels") or {}
        labels["kubernetes.io/metadata.name"] = md.get("name", "")
        md["labels"] = labels
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            spec.setdefault("finalizers", ["kubernetes"])
    elif k == ("", "secrets"):
        obj.setdefault("type", "Opaque")
        sd = obj.pop("stringData", None)
        if isinstance(sd, dict):
            data = obj.get("data") or {}
            for kk, vv in sd.items():
                data[kk] = base64.b64encode(str(vv).encode()).decode()
            obj["data"] = data
    elif k == ("", "services"):
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("sessionAffinity", "None")
            for p in spec.get("ports") or []:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")
                    p.setdefault("targetPort", p.get("port"))
    return obj


def _qos(spec):
    req = lim = False
    for c in (spec or {}).get("containers") or []:
        r = (c or {}).get("resources") or {}
        req = req or bool(r.get("requests"))
        lim = lim or bool(r.get("limits"))
    if not req and not lim:
        return "BestEffort"
    return "Burstable"


TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
]


def prepare_create(res, obj):
    """PrepareForCreate: status reset, server-set fields."""
    k = key(res)
    if res.is_custom and res.status:
        obj.pop("status", None)
    elif k == ("", "pods"):
        spec = obj.get("spec") or {}
        tol = spec.setdefault("tolerations", [])
        for t in TOLERATIONS:
            if not any(isinstance(x, dict) and x.get("key") == t["key"] for x in tol):
                tol.append(dict(t))
        obj["status"] = {"phase": "Pending", "qosClass": _qos(spec)}
    elif k == ("", "namespaces"):
        obj["status"] = {"phase": "Active"}
    elif k == ("apiextensions.k8s.io", "customresourcedefinitions"):
        obj["status"] = crd_status(obj, None)
    elif res.status and k not in (("", "services"),):
        obj.pop("status", None)
    return obj


def crd_status(crd, old):
    spec = crd.get("spec") or {}
    names = dict(spec.get("names") or {})
    names.setdefault("singular", names.get("kind", "").lower())
    names.setdefault("listKind", names.get("kind", "") + "List")
    stored = list(((old or {}).get("status") or {}).get("storedVersions") or [])
    for v in spec.get("versions") or []:
        if v.get("storage") and v.get("name") not in stored:
            stored.append(v.get("name"))
    t = now_rfc3339()
    old_conds = {c.get("type"): c for c in (((old or {}).get("status") or {}).get("conditions") or [])}

    def cond(typ, reason, message):
        prev = old_conds.get(typ)
        lt = prev.get("lastTransitionTime") if prev and prev.get("status") == "True" else t
        return {"type": typ, "status": "True", "lastTransitionTime": lt, "reason": reason, "message": message}

    return {
        "conditions": [cond("NamesAccepted", "NoConflicts", "no conflicts found"),
                       cond("Established", "InitialNamesAccepted", "the initial names have been accepted")],
        "acceptedNames": names,
        "storedVersions": stored,
    }


def prepare_update(res, new, old, subresource):
    """PrepareForUpdate: status (or everything else on /status) comes from the stored object."""
    k = key(res)
    if subresource == "status":
        out = {kk: vv for kk, vv in old.items() if kk != "status"}
        if res.is_custom:
            out["metadata"] = dict(old.get("metadata") or {})
        else:
            md = dict(new.get("metadata") or {})
            md["ownerReferences"] = (old.get("metadata") or {}).get("ownerReferences")
            if md["ownerReferences"] is None:
                md.pop("ownerReferences")
            out["metadata"] = md
        if "status" in new:
            out["status"] = new["status"]
        return out
    if res.status:
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
    if k == ("apiextensions.k8s.io", "customresourcedefinitions"):
        new["status"] = crd_status(new, old)
    return new


def generation_changed(res, new, old):
    if not res.generation:
        return False

    def content(o):
        return {kk: vv for kk, vv in o.items() if kk != "metadata" and not (kk == "status" and res.status)}

    return content(new) != content(old)


def reset_paths(res, subresource, *objs):
    """Fields the strategy resets, excluded from field ownership (GetResetFields)."""
    if subresource == "status":
        keys = set()
        for o in objs:
            if isinstance(o, dict):
                keys |= set(o.keys())
        return {("f:" + kk,) for kk in keys if kk not in ("status", "metadata", "apiVersion", "kind")}
    if res.status:
        return {("f:status",)}
    return set()


# -------------------------------------------------------------------------------------------
# Validation


def _req(errs, obj, path):
    cur = obj
    for p in path.split("."):
        if not isinstance(cur, dict) or cur.get(p) in (None, ""):
            errs.append((path, "FieldValueRequired", "Required value"))
            return False
        cur = cur[p]
    return True


POD_MUTABLE_MSG = ("pod updates may not change fields other than `spec.containers[*].image`,"
                   "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                   "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                   "(allow it to be set to 1 if it was previously negative)")


def _pod_spec_without_mutable(spec):
    import copy

    s = copy.deepcopy(spec or {})
    for f in ("containers", "initContainers"):
        for c in s.get(f) or []:
            if isinstance(c, dict):
                c.pop("image", None)
    s.pop("activeDeadlineSeconds", None)
    s.pop("tolerations", None)
    return s


def validate(res, obj, old):
    """Kind-specific validation; returns [(field, causeType, body)]."""
    errs = []
    k = key(res)
    if k == ("", "pods"):
        spec = obj.get("spec") or {}
        cs = spec.get("containers")
        if not cs:
            errs.append(("spec.containers", "FieldValueRequired", "Required value"))
        for i, c in enumerate(cs or []):
            if not isinstance(c, dict) or not c.get("name"):
                errs.append((f"spec.containers[{i}].name", "FieldValueRequired", "Required value"))
            if not isinstance(c, dict) or not c.get("image"):
                errs.append((f"spec.containers[{i}].image", "FieldValueRequired", "Required value"))
        if old is not None and _pod_spec_without_mutable(spec) != _pod_spec_without_mutable(old.get("spec")):
            errs.append(("spec", "FieldValueForbidden", "Forbidden: " + POD_MUTABLE_MSG))
    elif k == ("events.k8s.io", "events"):
        for f in ("eventTime", "reportingController", "reportingInstance", "action", "reason"):
            if not obj.get(f):
                errs.append((f, "FieldValueRequired", "Required value"))
    elif k == ("coordination.k8s.io", "leases"):
        spec = obj.get("spec") or {}
        d = spec.get("leaseDurationSeconds")
        if d is not None and (not isinstance(d, int) or d <= 0):
            errs.append(("spec.leaseDurationSeconds", "FieldValueInvalid", f"Invalid value: {d}: must be greater than 0"))
        t = spec.get("leaseTransitions")
        if t is not None and (not isinstance(t, int) or t < 0):
            errs.append(("spec.leaseTransitions", "FieldValueInvalid", f"Invalid value: {t}: must be greater than or equal to 0"))
    elif k[0] == "rbac.authorization.k8s.io":
        if k[1] in ("roles", "clusterroles"):
            for i, r in enumerate(obj.get("rules") or []):
                if not (r or {}).get("verbs"):
                    errs.append((f"rules[{i}].verbs", "FieldValueRequired", "Required value: verbs must contain at least one value"))
        else:
            ref = obj.get("roleRef") or {}
            if ref.get("kind") not in ("Role", "ClusterRole"):
                errs.append(("roleRef.kind", "FieldValueNotSupported",
                             f"Unsupported value: {go_quote(ref.get('kind') or '')}: supported values: \"Role\", \"ClusterRole\""))
            if not ref.get("name"):
                errs.append(("roleRef.name", "FieldValueRequired", "Required value"))
            if old is not None and (old.get("roleRef") or {}) != ref:
                errs.append(("roleRef", "FieldValueInvalid", "Invalid value: {...}: cannot change roleRef"))
    elif k == ("apiextensions.k8s.io", "customresourcedefinitions"):
        spec = obj.get("spec") or {}
        names = spec.get("names") or {}
        name = (obj.get("metadata") or {}).get("name", "")
        if not spec.get("group"):
            errs.append(("spec.group", "FieldValueRequired", "Required value"))
        if not names.get("plural"):
            errs.append(("spec.names.plural", "FieldValueRequired", "Required value"))
        if not names.get("kind"):
            errs.append(("spec.names.kind", "FieldValueRequired", "Required value"))
        if names.get("plural") and spec.get("group") and name != f"{names['plural']}.{spec['group']}":
            errs.append(("metadata.name", "FieldValueInvalid",
                         f"Invalid value: {go_quote(name)}: must be spec.names.plural+\".\"+spec.group"))
        if spec.get("scope") not in ("Cluster", "Namespaced"):
            errs.append(("spec.scope", "FieldValueNotSupported",
                         f"Unsupported value: {go_quote(spec.get('scope') or '')}: supported values: \"Cluster\", \"Namespaced\""))
        vs = spec.get("versions") or []
        if not vs:
            errs.append(("spec.versions", "FieldValueInvalid", "Invalid value: null: must have exactly one version marked as storage version"))
        elif sum(1 for v in vs if v.get("storage")) != 1:
            errs.append(("spec.versions", "FieldValueInvalid",
                         "Invalid value: []apiextensions.CustomResourceDefinitionVersion{...}: must have exactly one version marked as storage version"))
        if old is not None and (old.get("spec") or {}).get("scope") != spec.get("scope"):
            errs.append(("spec.scope", "FieldValueInvalid", f"Invalid value: {go_quote(spec.get('scope') or '')}: field is immutable"))
    return errs


# -------------------------------------------------------------------------------------------
# Core Event <-> events.k8s.io/v1 Event (both APIs share one storage, as in Kubernetes)

_TO_CORE = {"note": "message", "regarding": "involvedObject", "reportingController": "reportingComponent",
            "deprecatedSource": "source", "deprecatedFirstTimestamp": "firstTimestamp",
            "deprecatedLastTimestamp": "lastTimestamp", "deprecatedCount": "count"}
_FROM_CORE = {v: k for k, v in _TO_CORE.items()}


def event_to_core(e):
    out = {}
    for k, v in e.items():
        if k == "series" and isinstance(v, dict):
            out["series"] = {"count": v.get("count"), "lastObservedTime": v.get("lastObservedTime")}
        else:
            out[_TO_CORE.get(k, k)] = v
    out["apiVersion"] = "v1"
    out["kind"] = "Event"
    return out


def event_from_core(e):
    out = {}
    for k, v in e.items():
        out[_FROM_CORE.get(k, k)] = v
    out["apiVersion"] = "events.k8s.io/v1"
    out["kind"] = "Event"
    return out
