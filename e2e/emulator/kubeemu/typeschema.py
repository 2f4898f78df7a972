"""Merge structure of objects (struct / map / list type and keys / scalar) for SSA and strategic merge.

Built from two sources:

- built-in kinds: ``builtin_schemas.json`` (generated from the Kubernetes 1.35 OpenAPI by
  ``tools/gen_builtin_schemas.py``): struct fields, maps, ``x-kubernetes-list-type`` and
  ``-list-map-keys``, ``x-kubernetes-map-type``, patch strategies and merge keys;
- custom resources: the CRD's structural ``openAPIV3Schema`` (plus ObjectMeta for ``metadata``).

``UNTYPED`` is structured-merge-diff's "deduced" type: maps are granular, lists atomic.
"""
import json
import os

SCALAR = "scalar"
STRUCT = "struct"
MAP = "map"
LIST = "list"
UNTYPED_KIND = "untyped"


class T:
    __slots__ = ("kind", "atomic", "_fields", "_fields_src", "_elem", "_elem_src", "list_type", "keys",
                 "patch_strategy", "patch_key", "extra_untyped", "_resolver", "crd_schema")

    def __init__(self, kind, atomic=False):
        self.kind = kind
        self.atomic = atomic
        self._fields = None
        self._fields_src = None
        self._elem = None
        self._elem_src = None
        self.list_type = "atomic"
        self.keys = []
        self.patch_strategy = None
        self.patch_key = None
        self.extra_untyped = False  # struct that keeps unknown fields (x-kubernetes-preserve-unknown-fields)
        self._resolver = None
        self.crd_schema = None

    @property
    def fields(self):
        if self._fields is None:
            self._fields = {k: self._resolver(v) for k, v in (self._fields_src or {}).items()}
        return self._fields

    @property
    def elem(self):
        if self._elem is None:
            self._elem = self._resolver(self._elem_src) if self._elem_src is not None else UNTYPED
        return self._elem

    def field_type(self, name):
        """Type of a child by field name / map key (None: not declared)."""
        if self.kind == STRUCT:
            t = self.fields.get(name)
            if t is None and self.extra_untyped:
                return UNTYPED
            return t
        if self.kind == MAP:
            return self.elem
        if self.kind == UNTYPED_KIND:
            return UNTYPED
        return None

    def is_declared(self, name):
        return self.kind == STRUCT and name in self.fields

    def __repr__(self):
        return f"T({self.kind})"


def _const(kind):
    t = T(kind)
    t._resolver = lambda v: UNTYPED
    return t


UNTYPED = _const(UNTYPED_KIND)
SCALAR_T = _const(SCALAR)


def deduce(t, v):
    """The effective kind of ``t`` for value ``v`` (untyped -> by value)."""
    if t is None or t.kind == UNTYPED_KIND:
        if isinstance(v, dict):
            return UNTYPED_KIND
        if isinstance(v, list):
            return "atomic-list"
        return SCALAR
    return t.kind


class Builtins:
    """Lazily resolved built-in types by OpenAPI definition name."""

    def __init__(self, path=None):
        path = path or os.path.join(os.path.dirname(os.path.abspath(__file__)), "builtin_schemas.json")
        with open(path, encoding="utf-8") as f:
            self.src = json.load(f)
        self.cache = {}

    def get(self, name):
        if name in self.cache:
            return self.cache[name]
        spec = self.src.get(name)
        if spec is None:
            return UNTYPED
        t = self._make(spec, register=name)
        return t

    def _make(self, spec, register=None):
        if isinstance(spec, str):
            return self.get(spec)
        kind = spec.get("t")
        if kind == "scalar":
            return SCALAR_T
        if kind == "untyped" or kind is None:
            return UNTYPED
        t = T(kind, atomic=spec.get("mt") == "atomic")
        t._resolver = self._make
        if register:
            self.cache[register] = t
        if kind == STRUCT:
            t._fields_src = spec.get("f", {})
        elif kind == MAP:
            t._elem_src = spec.get("e", {"t": "untyped"})
        elif kind == LIST:
            t._elem_src = spec.get("e", {"t": "untyped"})
            t.list_type = spec.get("lt", "atomic")
            t.keys = spec.get("k", [])
            t.patch_strategy = spec.get("ps")
            t.patch_key = spec.get("pk")
        return t


_BUILTINS = None


def builtins():
    global _BUILTINS
    if _BUILTINS is None:
        _BUILTINS = Builtins()
    return _BUILTINS


OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def from_crd_schema(schema, root=True):
    """T for a CRD openAPIV3Schema node (root=True adds apiVersion/kind/metadata)."""
    t = _crd_node(schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    if root:
        if t.kind != STRUCT:
            s = T(STRUCT)
            s._resolver = lambda v: v
            s._fields_src = {}
            s.extra_untyped = True
            t = s
        t.fields["apiVersion"] = SCALAR_T
        t.fields["kind"] = SCALAR_T
        t.fields["metadata"] = builtins().get(OBJECT_META)
    return t


def _crd_node(s):
    if not isinstance(s, dict):
        return UNTYPED
    if s.get("x-kubernetes-int-or-string"):
        return SCALAR_T
    typ = s.get("type")
    preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
    if typ == "array":
        t = T(LIST)
        t._resolver = lambda v: v
        t._elem = _crd_node(s.get("items", {}))
        t.list_type = s.get("x-kubernetes-list-type", "atomic")
        t.keys = list(s.get("x-kubernetes-list-map-keys") or [])
        t.crd_schema = s
        return t
    if typ == "object" or "properties" in s or "additionalProperties" in s:
        ap = s.get("additionalProperties")
        if "properties" in s or not ap:
            if not s.get("properties") and not ap and preserve:
                return UNTYPED
            t = T(STRUCT, atomic=s.get("x-kubernetes-map-type") == "atomic")
            t._resolver = lambda v: v
            t._fields = {k: _crd_node(v) for k, v in (s.get("properties") or {}).items()}
            if s.get("x-kubernetes-embedded-resource"):
                t._fields.setdefault("apiVersion", SCALAR_T)
                t._fields.setdefault("kind", SCALAR_T)
                t._fields.setdefault("metadata", builtins().get(OBJECT_META))
            t.extra_untyped = preserve
            t.crd_schema = s
            return t
        t = T(MAP, atomic=s.get("x-kubernetes-map-type") == "atomic")
        t._resolver = lambda v: v
        t._elem = _crd_node(ap) if isinstance(ap, dict) else UNTYPED
        t.crd_schema = s
        return t
    if typ is None and preserve:
        return UNTYPED
    if typ is None:
        return UNTYPED
    return SCALAR_T
