"""Structural schemas of custom resources: pruning, null dropping, defaulting and OpenAPI validation.

What apiextensions-apiserver does to a custom resource on every write, in this order:

1. prune fields the schema does not declare (kept: ``x-kubernetes-preserve-unknown-fields``
   subtrees, ``x-kubernetes-embedded-resource`` type/object meta, and at the root apiVersion,
   kind and metadata); the pruned paths are returned for ``fieldValidation`` (Strict/Warn);
2. drop ``null`` values of fields that are not ``nullable: true``;
3. apply ``default``s (top-down, so defaults inside a defaulted object apply too);
4. validate: type, nullable, enum, pattern, min/maxLength, minimum/maximum (exclusive),
   multipleOf, min/maxItems, uniqueItems, list-type set/map uniqueness, min/maxProperties,
   required, format date-time/date, allOf/anyOf/oneOf/not; errors carry the field path and the
   kube-openapi wording (``spec.x in body should match '...'``) wrapped in apimachinery's
   field.Error bodies.

CEL ``x-kubernetes-validations`` rules are NOT evaluated (refwarden validates CEL offline).
"""
import re

from .util import go_quote, go_value, parse_time

_TYPE_NAMES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


def json_type(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "integer" if v.is_integer() else "number"
    return _TYPE_NAMES.get(type(v), "object")


def child(path, name):
    return f"{path}.{name}" if path else name


def index(path, i):
    return f"{path}[{i}]"


def key_path(path, k):
    return f"{path}[{k}]"


# ---------------------------------------------------------------------------------------------
# Pruning


def prune(obj, schema, root=True):
    """Returns (pruned object, [unknown field paths])."""
    unknown = []
    if root:
        if not isinstance(obj, dict):
            return obj, unknown
        out = {}
        for k, v in obj.items():
            if k in ("apiVersion", "kind", "metadata"):
                out[k] = v
                continue
            props = (schema or {}).get("properties") or {}
            if k in props:
                out[k] = _prune(v, props[k], k, unknown)
            elif (schema or {}).get("x-kubernetes-preserve-unknown-fields"):
                out[k] = v
            else:
                unknown.append(k)
        return out, unknown
    return _prune(obj, schema, "", unknown), unknown


def _prune(v, s, path, unknown):
    if not isinstance(s, dict):
        return v
    if isinstance(v, dict):
        props = s.get("properties")
        ap = s.get("additionalProperties")
        preserve = s.get("x-kubernetes-preserve-unknown-fields")
        embedded = s.get("x-kubernetes-embedded-resource")
        out = {}
        for k, x in v.items():
            if props is not None and k in props:
                out[k] = _prune(x, props[k], child(path, k), unknown)
            elif isinstance(ap, dict):
                out[k] = _prune(x, ap, key_path(path, k), unknown)
            elif ap is True or preserve:
                out[k] = x
            elif embedded and k in ("apiVersion", "kind", "metadata"):
                out[k] = x
            else:
                unknown.append(child(path, k))
        return out
    if isinstance(v, list) and isinstance(s.get("items"), dict):
        return [_prune(x, s["items"], index(path, i), unknown) for i, x in enumerate(v)]
    return v


# ---------------------------------------------------------------------------------------------
# Nulls and defaults


def drop_nulls(v, s):
    if not isinstance(s, dict):
        return v
    if isinstance(v, dict):
        props = s.get("properties") or {}
        ap = s.get("additionalProperties")
        for k in list(v.keys()):
            ps = props.get(k) if k in props else (ap if isinstance(ap, dict) else None)
            if v[k] is None:
                if ps is not None and not ps.get("nullable") and "default" not in ps:
                    del v[k]
                elif ps is not None and not ps.get("nullable") and "default" in ps:
                    del v[k]  # re-defaulted below
            else:
                v[k] = drop_nulls(v[k], ps) if ps is not None else v[k]
        return v
    if isinstance(v, list) and isinstance(s.get("items"), dict):
        return [drop_nulls(x, s["items"]) for x in v]
    return v


def apply_defaults(v, s):
    import copy

    if not isinstance(s, dict):
        return v
    if isinstance(v, dict):
        props = s.get("properties") or {}
        for k, ps in props.items():
            if k not in v and isinstance(ps, dict) and "default" in ps:
                v[k] = copy.deepcopy(ps["default"])
        for k in list(v.keys()):
            if k in props:
                v[k] = apply_defaults(v[k], props[k])
            elif isinstance(s.get("additionalProperties"), dict):
                v[k] = apply_defaults(v[k], s["additionalProperties"])
        return v
    if isinstance(v, list) and isinstance(s.get("items"), dict):
        return [apply_defaults(x, s["items"]) for x in v]
    return v


# ---------------------------------------------------------------------------------------------
# Validation


def _num(x):
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


class _V:
    def __init__(self):
        self.errors = []  # (field, causeType, body)

    def required(self, path):
        self.errors.append((path, "FieldValueRequired", "Required value"))

    def invalid(self, path, value, detail):
        self.errors.append((path, "FieldValueInvalid", f"Invalid value: {go_value(value)}: {detail}"))

    def type_invalid(self, path, found, detail):
        self.errors.append((path, "FieldValueTypeInvalid", f"Invalid value: {go_quote(found)}: {detail}"))

    def not_supported(self, path, value, allowed):
        vals = ", ".join(go_quote(a if isinstance(a, str) else _json(a)) for a in allowed)
        self.errors.append((path, "FieldValueNotSupported", f"Unsupported value: {go_value(value)}: supported values: {vals}"))

    def too_long(self, path, maximum):
        self.errors.append((path, "FieldValueTooLong", f"Too long: must have at most {maximum} bytes"))

    def too_many(self, path, actual, maximum, what="items"):
        self.errors.append((path, "FieldValueTooMany", f"Too many: {actual}: must have at most {maximum} {what}"))

    def duplicate(self, path, value):
        self.errors.append((path, "FieldValueDuplicate", f"Duplicate value: {go_value(value)}"))


def _json(a):
    import json

    return json.dumps(a, separators=(",", ":"))


def validate(obj, schema):
    """Validates the whole object (root properties only; metadata is validated elsewhere)."""
    v = _V()
    if isinstance(obj, dict) and isinstance(schema, dict):
        props = schema.get("properties") or {}
        for r in schema.get("required") or []:
            if r not in obj:
                v.required(r)
        for k in sorted(obj.keys()):
            if k in ("apiVersion", "kind", "metadata"):
                continue
            if k in props:
                _validate(obj[k], props[k], k, v)
    return v.errors


_TYPES_OK = {
    "string": lambda x: isinstance(x, str),
    "integer": lambda x: (isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer()),
    "number": lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
    "boolean": lambda x: isinstance(x, bool),
    "array": lambda x: isinstance(x, list),
    "object": lambda x: isinstance(x, dict),
}

_RE_CACHE = {}


def _regex(p):
    r = _RE_CACHE.get(p)
    if r is None:
        try:
            r = re.compile(p)
        except re.error:
            r = re.compile(re.escape(p))
        _RE_CACHE[p] = r
    return r


def _valid_format(fmt, x):
    if fmt == "date-time":
        return parse_time(x) is not None and "T" in x.upper()
    if fmt == "date":
        return re.fullmatch(r"\d{4}-\d{2}-\d{2}", x) is not None
    return True


def _validate(x, s, path, v):
    if not isinstance(s, dict):
        return
    if x is None:
        if s.get("nullable"):
            return
        t = s.get("type")
        if t:
            v.type_invalid(path, "null", f"{path} in body must be of type {t}: \"null\"")
        return
    if s.get("x-kubernetes-int-or-string"):
        if not (isinstance(x, str) or _TYPES_OK["integer"](x)):
            v.type_invalid(path, json_type(x), f"{path} in body must be of type integer,string: {go_quote(json_type(x))}")
            return
    else:
        t = s.get("type")
        if t and t in _TYPES_OK and not _TYPES_OK[t](x):
            found = json_type(x)
            v.type_invalid(path, found, f"{path} in body must be of type {t}: {go_quote(found)}")
            return
    if "enum" in s and isinstance(s["enum"], list) and x not in s["enum"]:
        v.not_supported(path, x, s["enum"])
    if isinstance(x, str):
        fmt = s.get("format")
        if fmt and not _valid_format(fmt, x):
            v.type_invalid(path, x, f"{path} in body must be of type {fmt}: {go_quote(x)}")
        if "maxLength" in s and len(x) > s["maxLength"]:
            v.too_long(path, s["maxLength"])
        if "minLength" in s and len(x) < s["minLength"]:
            v.invalid(path, x, f"{path} in body should be at least {s['minLength']} chars long")
        if "pattern" in s and not _regex(s["pattern"]).search(x):
            v.invalid(path, x, f"{path} in body should match '{s['pattern']}'")
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        if "maximum" in s:
            m = s["maximum"]
            if s.get("exclusiveMaximum") and x >= m:
                v.invalid(path, x, f"{path} in body should be less than {_num(m)}")
            elif x > m:
                v.invalid(path, x, f"{path} in body should be less than or equal to {_num(m)}")
        if "minimum" in s:
            m = s["minimum"]
            if s.get("exclusiveMinimum") and x <= m:
                v.invalid(path, x, f"{path} in body should be greater than {_num(m)}")
            elif x < m:
                v.invalid(path, x, f"{path} in body should be greater than or equal to {_num(m)}")
        if "multipleOf" in s and s["multipleOf"]:
            q = x / s["multipleOf"]
            if abs(q - round(q)) > 1e-9:
                v.invalid(path, x, f"{path} in body should be a multiple of {_num(s['multipleOf'])}")
    if isinstance(x, list):
        if "maxItems" in s and len(x) > s["maxItems"]:
            v.too_many(path, len(x), s["maxItems"])
        if "minItems" in s and len(x) < s["minItems"]:
            v.invalid(path, x, f"{path} in body should have at least {s['minItems']} items")
        lt = s.get("x-kubernetes-list-type")
        if s.get("uniqueItems") or lt == "set":
            seen = []
            for i, it in enumerate(x):
                if it in seen:
                    v.duplicate(index(path, i), it)
                seen.append(it)
        if lt == "map":
            keys = s.get("x-kubernetes-list-map-keys") or []
            seen = []
            for i, it in enumerate(x):
                if isinstance(it, dict):
                    kv = tuple(_json(it.get(k)) for k in keys)
                    if kv in seen:
                        dv = {k: it.get(k) for k in keys}
                        v.duplicate(index(path, i), dv if len(keys) > 1 else it.get(keys[0]) if keys else dv)
                    seen.append(kv)
        items = s.get("items")
        if isinstance(items, dict):
            for i, it in enumerate(x):
                _validate(it, items, index(path, i), v)
    if isinstance(x, dict):
        if "maxProperties" in s and len(x) > s["maxProperties"]:
            v.too_many(path, len(x), s["maxProperties"], "properties")
        if "minProperties" in s and len(x) < s["minProperties"]:
            v.invalid(path, x, f"{path} in body should have at least {s['minProperties']} properties")
        for r in s.get("required") or []:
            if r not in x:
                v.required(child(path, r))
        props = s.get("properties") or {}
        ap = s.get("additionalProperties")
        for k in sorted(x.keys()):
            if k in props:
                _validate(x[k], props[k], child(path, k), v)
            elif isinstance(ap, dict):
                _validate(x[k], ap, key_path(path, k), v)
    for sub in s.get("allOf") or []:
        _validate(x, sub, path, v)
    if s.get("anyOf"):
        if not any(not _errors_of(x, sub, path) for sub in s["anyOf"]):
            v.invalid(path, x, f"{path} in body must match at least one schema in anyOf")
    if s.get("oneOf"):
        n = sum(1 for sub in s["oneOf"] if not _errors_of(x, sub, path))
        if n != 1:
            v.invalid(path, x, f"{path} in body must validate one and only one schema (oneOf)")
    if isinstance(s.get("not"), dict) and not _errors_of(x, s["not"], path):
        v.invalid(path, x, f"{path} in body must not validate the schema (not)")


def _errors_of(x, s, path):
    v = _V()
    _validate(x, s, path, v)
    return v.errors
