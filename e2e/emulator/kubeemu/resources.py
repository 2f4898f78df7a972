"""The resource table (built-in kinds and CRD-defined kinds) and the discovery documents built from it."""
import threading

from . import typeschema

STD_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
META_FIELDS = {"metadata.name", "metadata.namespace"}
POD_FIELDS = META_FIELDS | {
    "status.phase", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
    "spec.hostNetwork", "status.podIP", "status.nominatedNodeName",
}
EVENT_FIELDS = META_FIELDS | {
    "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
    "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
    "reportingComponent", "source", "type",
    "regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid", "reportingController",
}


class Resource:
    """One served resource (group, version, plural) and how it is stored and typed."""

    def __init__(self, group, version, plural, kind, namespaced, singular=None, short_names=(), categories=(),
                 verbs=None, status=False, schema_def=None, generation=False, field_labels=None,
                 storage=None, crd=None, crd_schema=None, printer_columns=None, list_kind=None):
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced
        self.singular = singular or kind.lower()
        self.short_names = list(short_names)
        self.categories = list(categories)
        self.verbs = list(verbs or STD_VERBS)
        self.status = status
        self.schema_def = schema_def
        self.generation = generation
        self.field_labels = field_labels or META_FIELDS
        self.storage = storage or (group, plural)   # where objects live (core events share events.k8s.io's)
        self.crd = crd                               # CRD name for custom resources
        self.crd_schema = crd_schema                 # openAPIV3Schema of this version
        self.printer_columns = printer_columns or []
        self.list_kind = list_kind or kind + "List"
        self._type = None

    @property
    def group_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self):
        return self.group_version

    @property
    def is_custom(self):
        return self.crd is not None

    def type(self):
        """typeschema.T of the whole object."""
        if self._type is None:
            if self.is_custom:
                self._type = typeschema.from_crd_schema(self.crd_schema)
            else:
                self._type = typeschema.builtins().get(self.schema_def) if self.schema_def else typeschema.UNTYPED
        return self._type

    def discovery(self):
        out = [{
            "name": self.plural, "singularName": self.singular, "namespaced": self.namespaced, "kind": self.kind,
            "verbs": self.verbs,
        }]
        if self.short_names:
            out[0]["shortNames"] = self.short_names
        if self.categories:
            out[0]["categories"] = self.categories
        if self.status:
            out.append({"name": self.plural + "/status", "singularName": "", "namespaced": self.namespaced,
                        "kind": self.kind, "verbs": ["get", "patch", "update"]})
        return out


def _b(group, version, plural, kind, namespaced, defn, **kw):
    return Resource(group, version, plural, kind, namespaced, schema_def=defn, **kw)


CORE = "io.k8s.api.core.v1."


def builtin_resources():
    return [
        _b("", "v1", "pods", "Pod", True, CORE + "Pod", short_names=["po"], categories=["all"], status=True,
           generation=True, field_labels=POD_FIELDS),
        _b("", "v1", "namespaces", "Namespace", False, CORE + "Namespace", short_names=["ns"], status=True,
           verbs=["create", "delete", "get", "list", "patch", "update", "watch"],
           field_labels=META_FIELDS | {"status.phase"}),
        _b("", "v1", "secrets", "Secret", True, CORE + "Secret", field_labels=META_FIELDS | {"type"}),
        _b("", "v1", "configmaps", "ConfigMap", True, CORE + "ConfigMap", short_names=["cm"]),
        _b("", "v1", "serviceaccounts", "ServiceAccount", True, CORE + "ServiceAccount", short_names=["sa"]),
        _b("", "v1", "services", "Service", True, CORE + "Service", short_names=["svc"], categories=["all"],
           status=True),
        _b("", "v1", "events", "Event", True, CORE + "Event", short_names=["ev"], field_labels=EVENT_FIELDS,
           storage=("events.k8s.io", "events")),
        _b("events.k8s.io", "v1", "events", "Event", True, "io.k8s.api.events.v1.Event", short_names=["ev"],
           field_labels=EVENT_FIELDS),
        _b("coordination.k8s.io", "v1", "leases", "Lease", True, "io.k8s.api.coordination.v1.Lease"),
        _b("rbac.authorization.k8s.io", "v1", "roles", "Role", True, "io.k8s.api.rbac.v1.Role"),
        _b("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True, "io.k8s.api.rbac.v1.RoleBinding"),
        _b("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False, "io.k8s.api.rbac.v1.ClusterRole"),
        _b("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False,
           "io.k8s.api.rbac.v1.ClusterRoleBinding"),
        _b("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
           "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
           short_names=["crd", "crds"], categories=["api-extensions"], status=True, generation=True),
        _b("apps", "v1", "deployments", "Deployment", True, "io.k8s.api.apps.v1.Deployment", short_names=["deploy"],
           categories=["all"], status=True, generation=True),
        _b("apps", "v1", "replicasets", "ReplicaSet", True, "io.k8s.api.apps.v1.ReplicaSet", short_names=["rs"],
           categories=["all"], status=True, generation=True),
        _b("apps", "v1", "statefulsets", "StatefulSet", True, "io.k8s.api.apps.v1.StatefulSet", short_names=["sts"],
           categories=["all"], status=True, generation=True),
        _b("apps", "v1", "daemonsets", "DaemonSet", True, "io.k8s.api.apps.v1.DaemonSet", short_names=["ds"],
           categories=["all"], status=True, generation=True),
        _b("batch", "v1", "jobs", "Job", True, "io.k8s.api.batch.v1.Job", categories=["all"], status=True,
           generation=True),
        _b("batch", "v1", "cronjobs", "CronJob", True, "io.k8s.api.batch.v1.CronJob", short_names=["cj"],
           categories=["all"], status=True, generation=True),
        _b("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False,
           "io.k8s.api.authorization.v1.SelfSubjectAccessReview", verbs=["create"]),
        _b("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", False,
           "io.k8s.api.authorization.v1.SubjectAccessReview", verbs=["create"]),
    ]


def resources_from_crd(crd):
    """Resources served for an established CRD (one per served version)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    for v in spec.get("versions") or []:
        if not v.get("served", True):
            continue
        sub = v.get("subresources") or {}
        r = Resource(
            spec.get("group", ""), v.get("name", ""), names.get("plural", ""), names.get("kind", ""),
            spec.get("scope", "Namespaced") == "Namespaced", singular=names.get("singular") or names.get("kind", "").lower(),
            short_names=names.get("shortNames") or [], categories=names.get("categories") or [],
            status="status" in sub, generation=True, crd=crd["metadata"]["name"],
            crd_schema=((v.get("schema") or {}).get("openAPIV3Schema")),
            printer_columns=v.get("additionalPrinterColumns") or [], list_kind=names.get("listKind"),
        )
        r.storage_version = next((x.get("name") for x in spec.get("versions") or [] if x.get("storage")), v.get("name"))
        out.append(r)
    return out


class Registry:
    """All served resources; CRD resources are added/removed as CRDs are established/deleted."""

    def __init__(self):
        self.lock = threading.RLock()
        self.builtin = builtin_resources()
        self.custom = {}  # crd name -> [Resource]

    def all(self):
        with self.lock:
            out = list(self.builtin)
            for rs in self.custom.values():
                out.extend(rs)
            return out

    def set_crd(self, crd):
        with self.lock:
            self.custom[crd["metadata"]["name"]] = resources_from_crd(crd)

    def remove_crd(self, name):
        with self.lock:
            self.custom.pop(name, None)

    def find(self, group, version, plural):
        for r in self.all():
            if r.group == group and r.version == version and r.plural == plural:
                return r
        return None

    def by_storage(self, storage):
        """Resources sharing a storage key (e.g. both Event APIs)."""
        return [r for r in self.all() if r.storage == storage]

    def for_kind(self, group, kind):
        for r in self.all():
            if r.group == group and r.kind == kind:
                return r
        return None

    def groups(self):
        """Ordered {group: [versions]} excluding the legacy core group."""
        out = {}
        for r in self.all():
            if r.group:
                vs = out.setdefault(r.group, [])
                if r.version not in vs:
                    vs.append(r.version)
        return out

    # Discovery documents -------------------------------------------------------------------

    def api_versions(self, server_address):
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}

    def api_group(self, group):
        versions = self.groups().get(group)
        if not versions:
            return None
        vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": vs, "preferredVersion": vs[0]}

    def api_group_list(self):
        groups = []
        for g in self.groups():
            d = self.api_group(g)
            groups.append({k: v for k, v in d.items() if k not in ("kind", "apiVersion")})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def resource_list(self, group, version):
        rs = [r for r in self.all() if r.group == group and r.version == version]
        if not rs:
            return None
        resources = []
        for r in rs:
            resources.extend(r.discovery())
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
