"""Bearer-token authentication and RBAC authorization (from stored Roles/Bindings), with a decision log.

- Tokens map to users ``{username, groups, uid}``; ``system:authenticated`` is always added.
- ``system:masters`` is the privileged group: allowed without RBAC (as the real authorizer chain).
- Otherwise rbac/v1 semantics (k8s.io/kubernetes/pkg/apis/rbac/v1/evaluation_helpers.go):
  ClusterRoleBindings grant ClusterRole rules everywhere; RoleBindings grant Role or ClusterRole
  rules in their namespace only; rules match on verbs, apiGroups, resources (``res``,
  ``res/sub``, ``*``, ``*/sub``), resourceNames (requests without a name never match a rule with
  resourceNames) and nonResourceURLs (``*`` suffix = prefix); subjects User, Group,
  ServiceAccount (``system:serviceaccount:<ns>:<name>``, namespace defaulting to the binding's).
- Denials produce the real 403 message: ``pods is forbidden: User "u" cannot list resource "pods"
  in API group "" at the cluster scope``.
"""
import threading

from .util import ApiError, go_quote, now_micro, qualified_resource

RBAC = "rbac.authorization.k8s.io"
MASTERS = "system:masters"


class Authenticator:
    def __init__(self):
        self.lock = threading.Lock()
        self.tokens = {}

    def add(self, token, username, groups=(), uid=None):
        groups = list(groups)
        if "system:authenticated" not in groups:
            groups.append("system:authenticated")
        with self.lock:
            self.tokens[token] = {"username": username, "groups": groups, "uid": uid or ""}

    def remove(self, token):
        with self.lock:
            self.tokens.pop(token, None)

    def users(self):
        with self.lock:
            return [dict(u) for u in self.tokens.values()]

    def authenticate(self, authorization):
        if not authorization:
            return None
        parts = authorization.split(None, 1)
        if len(parts) != 2 or parts[0].lower() != "bearer":
            return None
        with self.lock:
            u = self.tokens.get(parts[1].strip())
            return dict(u) if u else None


def service_account_user(namespace, name):
    return {
        "username": f"system:serviceaccount:{namespace}:{name}",
        "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"],
    }


class Attributes:
    """authorizer.Attributes of one request."""

    def __init__(self, verb, resource_request, api_group="", api_version="", resource="", subresource="",
                 namespace="", name="", path=""):
        self.verb = verb
        self.resource_request = resource_request
        self.api_group = api_group
        self.api_version = api_version
        self.resource = resource
        self.subresource = subresource
        self.namespace = namespace
        self.name = name
        self.path = path

    def to_dict(self):
        return {"verb": self.verb, "resourceRequest": self.resource_request, "apiGroup": self.api_group,
                "apiVersion": self.api_version, "resource": self.resource, "subresource": self.subresource,
                "namespace": self.namespace, "name": self.name, "path": self.path}


def _has(lst, v):
    return "*" in lst or v in lst


def rule_allows(rule, a):
    verbs = rule.get("verbs") or []
    if not _has(verbs, a.verb):
        return False
    if not a.resource_request:
        for u in rule.get("nonResourceURLs") or []:
            if u == "*" or u == a.path or (u.endswith("*") and a.path.startswith(u[:-1])):
                return True
        return False
    if not _has(rule.get("apiGroups") or [], a.api_group):
        return False
    combined = a.resource + ("/" + a.subresource if a.subresource else "")
    ok = False
    for r in rule.get("resources") or []:
        if r == "*" or r == combined:
            ok = True
            break
        if a.subresource and r == "*/" + a.subresource:
            ok = True
            break
    if not ok:
        return False
    names = rule.get("resourceNames") or []
    if names and a.name not in names:
        return False
    return True


def subject_matches(subject, user, binding_ns):
    kind = subject.get("kind")
    name = subject.get("name")
    if kind == "User":
        return user["username"] == name
    if kind == "Group":
        return name in user.get("groups", [])
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns
        return user["username"] == f"system:serviceaccount:{ns}:{name}"
    return False


class Authorizer:
    """RBAC over the objects in ``store`` (read at every decision), logging every decision."""

    def __init__(self, store, log_limit=20000):
        self.store = store
        self.lock = threading.Lock()
        self.log = []
        self.log_limit = log_limit

    def _rules_for(self, user, namespace):
        """Yields (rules, source) applying to the user in the namespace ('' = cluster-scoped request)."""
        cluster_roles = {o["metadata"]["name"]: o for o in self.store.list((RBAC, "clusterroles"))}
        for b in self.store.list((RBAC, "clusterrolebindings")):
            if any(subject_matches(s, user, "") for s in b.get("subjects") or []):
                ref = b.get("roleRef") or {}
                role = cluster_roles.get(ref.get("name")) if ref.get("kind") == "ClusterRole" else None
                if role is not None:
                    yield role.get("rules") or [], f"ClusterRoleBinding/{b['metadata']['name']}", True
        if namespace:
            roles = {o["metadata"]["name"]: o for o in self.store.list((RBAC, "roles"), namespace)}
            for b in self.store.list((RBAC, "rolebindings"), namespace):
                if any(subject_matches(s, user, namespace) for s in b.get("subjects") or []):
                    ref = b.get("roleRef") or {}
                    if ref.get("kind") == "ClusterRole":
                        role = cluster_roles.get(ref.get("name"))
                    elif ref.get("kind") == "Role":
                        role = roles.get(ref.get("name"))
                    else:
                        role = None
                    if role is not None:
                        yield role.get("rules") or [], f"RoleBinding/{namespace}/{b['metadata']['name']}", False

    def decide(self, user, a):
        """(allowed, reason)."""
        if MASTERS in user.get("groups", []):
            return True, "privileged group system:masters"
        for rules, source, cluster in self._rules_for(user, a.namespace if a.resource_request else ""):
            if not a.resource_request and not cluster:
                continue
            for i, rule in enumerate(rules):
                if rule_allows(rule, a):
                    return True, f"{source} rule {i}"
        return False, ""

    def authorize(self, user, a):
        allowed, reason = self.decide(user, a)
        entry = {"time": now_micro(), "user": user["username"], "groups": user.get("groups", []),
                 **a.to_dict(), "allowed": allowed, "reason": reason}
        with self.lock:
            self.log.append(entry)
            if len(self.log) > self.log_limit:
                del self.log[: len(self.log) - self.log_limit]
        return allowed

    def entries(self):
        with self.lock:
            return list(self.log)

    def reset(self):
        with self.lock:
            self.log.clear()


def forbidden(user, a):
    """403 exactly as the API server words it (endpoints/handlers/responsewriters.forbiddenMessage)."""
    username = user["username"] if user else ""
    if not a.resource_request:
        msg = f"User {go_quote(username)} cannot {a.verb} path {go_quote(a.path)}"
        return ApiError(403, "Forbidden", f"forbidden: {msg}", {})
    resource = a.resource + ("/" + a.subresource if a.subresource else "")
    if a.namespace:
        msg = (f"User {go_quote(username)} cannot {a.verb} resource {go_quote(resource)} in API group "
               f"{go_quote(a.api_group)} in the namespace {go_quote(a.namespace)}")
    else:
        msg = (f"User {go_quote(username)} cannot {a.verb} resource {go_quote(resource)} in API group "
               f"{go_quote(a.api_group)} at the cluster scope")
    gr = qualified_resource(a.api_group, a.resource)
    details = {"kind": a.resource}
    if a.api_group:
        details["group"] = a.api_group
    if a.name:
        details["name"] = a.name
        message = f"{gr} {go_quote(a.name)} is forbidden: {msg}"
    else:
        message = f"{gr} is forbidden: {msg}"
    return ApiError(403, "Forbidden", message, details)


BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
BOOTSTRAP_ANN = {"rbac.authorization.kubernetes.io/autoupdate": "true"}


def bootstrap_objects():
    """The default ClusterRoles/Bindings every cluster has that matter here."""
    def meta(name):
        return {"name": name, "labels": dict(BOOTSTRAP_LABELS), "annotations": dict(BOOTSTRAP_ANN)}

    roles = [
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": meta("cluster-admin"),
         "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                   {"nonResourceURLs": ["*"], "verbs": ["*"]}]},
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": meta("system:discovery"),
         "rules": [{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                                        "/openapi/*", "/readyz", "/version", "/version/"], "verbs": ["get"]}]},
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": meta("system:public-info-viewer"),
         "rules": [{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                    "verbs": ["get"]}]},
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": meta("system:basic-user"),
         "rules": [{"apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]}]},
    ]
    bindings = [
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": meta("cluster-admin"),
         "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
         "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": MASTERS}]},
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": meta("system:discovery"),
         "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "system:discovery"},
         "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": "system:authenticated"}]},
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": meta("system:public-info-viewer"),
         "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "system:public-info-viewer"},
         "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": "system:authenticated"}]},
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": meta("system:basic-user"),
         "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "system:basic-user"},
         "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": "system:authenticated"}]},
    ]
    return roles, bindings
