"""Field paths and field sets as structured-merge-diff models them, and their fieldsV1 encoding.

A path element is a string in its fieldsV1 form:

- ``f:<name>``              a struct field or map key
- ``k:{"name":"c"}``        an item of a ``map`` list, by its key fields (sorted by name)
- ``v:"x"``                 an item of a ``set`` list, by its value
- ``i:3``                   a list index (never stored in managedFields in practice)

A path is a tuple of elements; a set is a Python ``set`` of paths. Only members are stored
(the fieldsV1 ``"."`` marker means "this node is itself a member and has children").
"""
import json


def field(name):
    return "f:" + name


def key(keys):
    """keys: dict of key field -> value."""
    return "k:" + json.dumps({k: keys[k] for k in sorted(keys)}, separators=(",", ":"), ensure_ascii=False)


def value(v):
    return "v:" + json.dumps(v, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def index(i):
    return "i:" + str(i)


def pe_name(pe):
    """The field name of an ``f:`` element, else None."""
    return pe[2:] if pe.startswith("f:") else None


def _to_string(v):
    # value.ToString: strings quoted, other scalars plain.
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    return json.dumps(v, ensure_ascii=False)


def pe_string(pe):
    """PathElement.String(): ``.name``, ``[type="Ready"]``, ``[="x"]``, ``[0]``."""
    kind, rest = pe[0], pe[2:]
    if kind == "f":
        return "." + rest
    if kind == "k":
        keys = json.loads(rest)
        return "[" + ",".join(f"{k}={_to_string(v)}" for k, v in keys.items()) + "]"
    if kind == "v":
        return "[=" + _to_string(json.loads(rest)) + "]"
    if kind == "i":
        return "[" + rest + "]"
    return "{{invalid path element}}"


def path_string(path):
    return "".join(pe_string(pe) for pe in path)


def with_prefix(s, prefix):
    """Paths of ``s`` strictly below ``prefix``, with the prefix removed."""
    n = len(prefix)
    return {p[n:] for p in s if len(p) > n and p[:n] == prefix}


def has_prefix(s, prefix):
    n = len(prefix)
    return any(len(p) > n and p[:n] == prefix for p in s)


def recursive_difference(s, remove):
    """Removes every path of ``remove`` and everything below it."""
    if not remove:
        return set(s)
    out = set()
    for p in s:
        if any(p[: len(r)] == r for r in remove):
            continue
        out.add(p)
    return out


def to_fields_v1(s):
    """Set of paths -> fieldsV1 JSON object."""
    root = {}
    for p in sorted(s):
        node = root
        for pe in p:
            node = node.setdefault(pe, {})
        node["."] = {}
    return _finish(root)


def _finish(node):
    # A member without children is {} (no "."); with children it keeps ".".
    out = {}
    for k, v in node.items():
        if k == ".":
            continue
        child = _finish(v)
        if "." in v and child:
            child = {".": {}, **child}
        out[k] = child
    return out


def from_fields_v1(obj, prefix=()):
    """fieldsV1 JSON object -> set of paths."""
    out = set()
    if not isinstance(obj, dict):
        return out
    for k, v in obj.items():
        if k == ".":
            continue
        p = prefix + (k,)
        if not isinstance(v, dict) or not v or "." in v:
            out.add(p)
        out |= from_fields_v1(v, p)
    return out
