"""Server-side apply: field ownership, Apply / Update, conflicts and managedFields, after structured-merge-diff.

A port of sigs.k8s.io/structured-merge-diff's ``merge.Updater`` (``update``, ``Update``, ``Apply``,
``prune``, ``addBackOwnedItems``, ``addBackDanglingItems``) and of the typed operations it relies on
(``ToFieldSet``, ``Compare``, ``Merge``, ``RemoveItems``, ``EnsureNamedFieldsAreMembers``), plus the
apiserver's field-manager wrappers: the strip set (apiVersion, kind, metadata.name, ...), reset fields
(status of the main resource, everything but status on ``/status``), manager identity
(manager + operation + subresource, + apiVersion for Update), timestamps, the managedFields sort
order, and the 409 conflict Status (``internal.NewConflictError``).
"""
import json

from . import fieldpath as fp
from .typeschema import LIST, MAP, SCALAR, STRUCT, UNTYPED, UNTYPED_KIND, deduce
from .util import ApiError, go_quote, now_rfc3339

MISSING = object()

# apiserver internal/stripmeta.go
STRIP = {
    ("f:apiVersion",), ("f:kind",), ("f:metadata",),
    ("f:metadata", "f:name"), ("f:metadata", "f:namespace"), ("f:metadata", "f:creationTimestamp"),
    ("f:metadata", "f:selfLink"), ("f:metadata", "f:uid"), ("f:metadata", "f:clusterName"),
    ("f:metadata", "f:generation"), ("f:metadata", "f:managedFields"), ("f:metadata", "f:resourceVersion"),
}


class TypedError(Exception):
    """The value does not fit the schema (e.g. a map-list item without its key)."""


# ---------------------------------------------------------------------------------------------
# Typed walking helpers


def child_type(t, pe):
    if t is None:
        return UNTYPED
    if pe.startswith("f:"):
        ft = t.field_type(pe[2:])
        return ft if ft is not None else UNTYPED
    if t.kind == LIST:
        return t.elem
    return UNTYPED


def item_pe(t, item, i):
    if t.list_type == "map":
        if not isinstance(item, dict):
            raise TypedError(f"element {i}: expected a map for an associative list item")
        keys = {}
        for k in t.keys:
            if k not in item:
                raise TypedError(
                    f"element {i}: associative list with keys has an element that omits key field {go_quote(k)} "
                    "(and doesn't have default value)")
            keys[k] = item[k]
        return fp.key(keys)
    if t.list_type == "set":
        return fp.value(item)
    return fp.index(i)


def _is_granular_list(t, v):
    return t is not None and t.kind == LIST and t.list_type in ("map", "set") and isinstance(v, list)


def _is_granular_map(t, v):
    k = deduce(t, v)
    return k in (STRUCT, MAP, UNTYPED_KIND) and not (t is not None and t.atomic) and isinstance(v, dict)


# ---------------------------------------------------------------------------------------------
# ToFieldSet


def to_fieldset(v, t, strict=False):
    out = set()
    _tfs(v, t, (), out, strict)
    return out


def _tfs(v, t, path, out, strict):
    k = deduce(t, v)
    if k == SCALAR or k == "atomic-list":
        out.add(path)
        return
    if k == LIST:
        if t.list_type == "atomic" or not isinstance(v, list):
            out.add(path)
            return
        seen, dups = set(), set()
        pes = []
        for i, item in enumerate(v):
            pe = item_pe(t, item, i)
            if pe in seen:
                if strict and t.list_type == "map":
                    raise TypedError(f"duplicate entries for key {fp.pe_string(pe)}")
                if pe not in dups:
                    out.add(path + (pe,))
                    dups.add(pe)
            seen.add(pe)
            pes.append(pe)
        for item, pe in zip(v, pes):
            if pe in dups:
                continue
            p = path + (pe,)
            _tfs(item, t.elem, p, out, strict)
            out.add(p)
        return
    # struct / map / untyped map
    if (t is not None and t.atomic) or not isinstance(v, dict):
        out.add(path)
        return
    for key, val in v.items():
        ft = t.field_type(key) if t is not None else UNTYPED
        declared = ft is not None and t is not None and t.is_declared(key)
        if ft is None:
            ft = UNTYPED
        p = path + (fp.field(key),)
        _tfs(val, ft, p, out, strict)
        if val is None or (isinstance(val, dict) and not val) or not declared:
            out.add(p)


def named(s, t):
    """EnsureNamedFieldsAreMembers: declared struct fields with owned descendants become members."""
    out = set(s)
    for p in s:
        cur = t
        for i in range(len(p) - 1):
            pe = p[i]
            if pe.startswith("f:") and cur is not None and cur.is_declared(pe[2:]):
                out.add(p[: i + 1])
            cur = child_type(cur, pe)
    return out


# ---------------------------------------------------------------------------------------------
# Compare


class Comparison:
    def __init__(self):
        self.added, self.removed, self.modified = set(), set(), set()

    def is_same(self):
        return not (self.added or self.removed or self.modified)

    def exclude(self, ignored):
        if ignored:
            self.added = fp.recursive_difference(self.added, ignored)
            self.removed = fp.recursive_difference(self.removed, ignored)
            self.modified = fp.recursive_difference(self.modified, ignored)
        return self


def compare(lhs, rhs, t):
    c = Comparison()
    _cmp(lhs, rhs, t, (), c, False)
    return c


def _leaf(lhs, rhs, path, c):
    if lhs is MISSING:
        c.added.add(path)
    elif rhs is MISSING:
        c.removed.add(path)
    elif lhs != rhs or type(lhs) is not type(rhs) and not (isinstance(lhs, (int, float)) and isinstance(rhs, (int, float))):
        c.modified.add(path)


def _cmp(lhs, rhs, t, path, c, in_leaf):
    if in_leaf:
        return
    ref = rhs if rhs is not MISSING else lhs
    kl = deduce(t, lhs) if lhs is not MISSING else None
    kr = deduce(t, rhs) if rhs is not MISSING else None
    if kl is not None and kr is not None and (kl != kr or type(lhs) is not type(rhs) and not (
            isinstance(lhs, (int, float)) and isinstance(rhs, (int, float)))):
        # The kind changed (e.g. null -> map): one leaf.
        _leaf(lhs, rhs, path, c)
        return
    k = kr if kr is not None else kl
    if k == SCALAR or k == "atomic-list":
        _leaf(lhs, rhs, path, c)
        return
    if k == LIST:
        l_list = lhs if isinstance(lhs, list) else []
        r_list = rhs if isinstance(rhs, list) else []
        if t.list_type == "atomic" or (not l_list and not r_list) or not isinstance(ref, list):
            _leaf(lhs, rhs, path, c)
            return
        lv, rv, order = {}, {}, []
        for i, item in enumerate(l_list):
            pe = item_pe(t, item, i)
            if pe not in lv:
                order.append(pe)
            lv.setdefault(pe, []).append(item)
        for i, item in enumerate(r_list):
            pe = item_pe(t, item, i)
            if pe not in rv and pe not in lv:
                order.append(pe)
            rv.setdefault(pe, []).append(item)
        for pe in order:
            ll, rl = lv.get(pe, []), rv.get(pe, [])
            p = path + (pe,)
            if len(ll) <= 1 and len(rl) <= 1:
                _cmp(ll[0] if ll else MISSING, rl[0] if rl else MISSING, t.elem, p, c, False)
            elif len(ll) >= 2 and len(rl) >= 2:
                if ll != rl:
                    c.modified.add(p)
            elif len(ll) >= 2:
                if rl:
                    _cmp(MISSING, rl[0], t.elem, p, c, False)
                c.removed.add(p)
            else:
                if ll:
                    _cmp(ll[0], MISSING, t.elem, p, c, False)
                c.added.add(p)
        _node_presence(lhs, rhs, path, c)
        return
    # maps
    l_map = lhs if isinstance(lhs, dict) else {}
    r_map = rhs if isinstance(rhs, dict) else {}
    if (t is not None and t.atomic) or (not l_map and not r_map) or not isinstance(ref, dict):
        _leaf(lhs, rhs, path, c)
        return
    keys = list(l_map.keys()) + [k2 for k2 in r_map.keys() if k2 not in l_map]
    for key in keys:
        ft = t.field_type(key) if t is not None else UNTYPED
        _cmp(l_map.get(key, MISSING), r_map.get(key, MISSING), ft if ft is not None else UNTYPED,
             path + (fp.field(key),), c, False)
    _node_presence(lhs, rhs, path, c)


def _node_presence(lhs, rhs, path, c):
    if lhs is MISSING:
        c.added.add(path)
    elif rhs is MISSING:
        c.removed.add(path)


# ---------------------------------------------------------------------------------------------
# Merge


def merge(lhs, rhs, t):
    if rhs is MISSING:
        return lhs
    if lhs is MISSING:
        return json.loads(json.dumps(rhs))
    kr = deduce(t, rhs)
    if kr == LIST and t.list_type in ("map", "set") and isinstance(lhs, list) and isinstance(rhs, list):
        if not lhs and not rhs:
            return rhs
        return _merge_list(lhs, rhs, t)
    if kr in (STRUCT, MAP, UNTYPED_KIND) and isinstance(lhs, dict) and isinstance(rhs, dict) and not t.atomic:
        if not lhs and not rhs:
            return rhs
        out = dict(lhs)
        for key, rv in rhs.items():
            ft = t.field_type(key) if t is not None else UNTYPED
            out[key] = merge(lhs.get(key, MISSING), rv, ft if ft is not None else UNTYPED)
        return out
    return json.loads(json.dumps(rhs))


def _merge_list(lhs, rhs, t):
    """typed/merge.go visitListItems: keeps the rhs order for shared items, lhs-only items in place."""
    rhs_pes, obs_r = [], {}
    for i, item in enumerate(rhs):
        pe = item_pe(t, item, i)
        if pe in obs_r:
            raise TypedError(f"duplicate entries for key {fp.pe_string(pe)}")
        obs_r[pe] = item
        rhs_pes.append(pe)
    lhs_pes, obs_l = [], {}
    for i, item in enumerate(lhs):
        pe = item_pe(t, item, i)
        obs_l[pe] = item if pe not in obs_l else None
        lhs_pes.append(pe)
    shared = [pe for pe in rhs_pes if pe in obs_l]
    next_shared = shared.pop(0) if shared else None
    out, merged_r = [], set()
    li, ri = 0, 0
    ln, rn = len(lhs_pes), len(rhs_pes)
    while li < ln or ri < rn:
        if li < ln and ri < rn:
            pe = lhs_pes[li]
            if pe == rhs_pes[ri]:
                merged_r.add(pe)
                out.append(merge(obs_l.get(pe), obs_r[pe], t.elem))
                li += 1
                ri += 1
                next_shared = shared.pop(0) if shared else None
                continue
            if pe in obs_r and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < ln:
            pe = lhs_pes[li]
            if pe not in obs_r:
                out.append(lhs[li])
                li += 1
                continue
            elif pe in merged_r:
                li += 1
        if ri < rn:
            pe = rhs_pes[ri]
            merged_r.add(pe)
            lc = obs_l.get(pe, MISSING)
            out.append(merge(lc if lc is not None else MISSING, obs_r[pe], t.elem))
            ri += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared.pop(0) if shared else None
    return out


# ---------------------------------------------------------------------------------------------
# RemoveItems


def remove_items(v, s, t):
    if not s:
        return v
    if _is_granular_list(t, v):
        if not v:
            return v
        new = []
        for i, item in enumerate(v):
            pe = item_pe(t, item, i)
            if (pe,) in s:
                continue
            sub = fp.with_prefix(s, (pe,))
            if sub:
                item = remove_items(item, sub, t.elem)
            new.append(item)
        return new if new else None
    if _is_granular_map(t, v):
        if not v:
            return v
        new = {}
        for key, val in v.items():
            pe = fp.field(key)
            if (pe,) in s:
                continue
            sub = fp.with_prefix(s, (pe,))
            if sub:
                ft = t.field_type(key) if t is not None else UNTYPED
                val = remove_items(val, sub, ft if ft is not None else UNTYPED)
            new[key] = val
        return new if new else None
    return v


# ---------------------------------------------------------------------------------------------
# Managers


class Managers:
    """managedFields decoded: identity key -> entry {manager, operation, apiVersion, subresource, time, set}."""

    def __init__(self, entries=None):
        self.entries = entries or {}

    @staticmethod
    def identity(manager, operation, api_version, subresource):
        d = {"manager": manager, "operation": operation}
        if operation == "Update":
            d["apiVersion"] = api_version
        if subresource:
            d["subresource"] = subresource
        return json.dumps(d, sort_keys=True)

    @classmethod
    def decode(cls, managed_fields):
        entries = {}
        for e in managed_fields or []:
            if not isinstance(e, dict):
                continue
            k = cls.identity(e.get("manager", ""), e.get("operation", "Update"), e.get("apiVersion", ""),
                             e.get("subresource", ""))
            s = fp.from_fields_v1(e.get("fieldsV1") or {})
            if k in entries:
                entries[k]["set"] |= s
            else:
                entries[k] = {"manager": e.get("manager", ""), "operation": e.get("operation", "Update"),
                              "apiVersion": e.get("apiVersion", ""), "subresource": e.get("subresource", ""),
                              "time": e.get("time"), "set": s}
        return cls(entries)

    def copy(self):
        return Managers({k: dict(v, set=set(v["set"])) for k, v in self.entries.items()})

    def encode(self):
        out = []
        for e in self.entries.values():
            if not e["set"]:
                continue
            d = {"manager": e["manager"], "operation": e["operation"], "apiVersion": e["apiVersion"]}
            if e.get("time"):
                d["time"] = e["time"]
            d["fieldsType"] = "FieldsV1"
            d["fieldsV1"] = fp.to_fields_v1(e["set"])
            if e.get("subresource"):
                d["subresource"] = e["subresource"]
            out.append(d)
        out.sort(key=lambda d: (d["operation"], d.get("time") or "", d["manager"], d["apiVersion"],
                                d.get("subresource", "")))
        return out


def print_manager(key):
    e = json.loads(key)
    s = go_quote(e.get("manager", ""))
    if e.get("subresource"):
        s += f" with subresource {go_quote(e['subresource'])}"
    if e.get("operation") == "Update":
        s += f" using {e.get('apiVersion', '')}"
    return s


def conflict_error(conflicts):
    """conflicts: identity key -> set of paths. internal.NewConflictError."""
    pairs = []
    for mk in sorted(conflicts, key=print_manager):
        for p in sorted(conflicts[mk]):
            pairs.append((mk, p))
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {print_manager(mk)}",
               "field": fp.path_string(p)} for mk, p in pairs]
    if len(pairs) == 1:
        mk, p = pairs[0]
        msg = f"Apply failed with 1 conflict: conflict with {print_manager(mk)}: {fp.path_string(p)}"
    else:
        lines = []
        for mk in sorted(conflicts, key=print_manager):
            lines.append(f"conflicts with {print_manager(mk)}:")
            for p in sorted(conflicts[mk]):
                lines.append(f"- {fp.path_string(p)}")
        msg = f"Apply failed with {len(pairs)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", msg, {"causes": causes})


# ---------------------------------------------------------------------------------------------
# Updater


def _strip_object(o):
    if isinstance(o, dict) and isinstance(o.get("metadata"), dict) and "managedFields" in o["metadata"]:
        o = dict(o)
        o["metadata"] = {k: v for k, v in o["metadata"].items() if k != "managedFields"}
    return o


def _update(old, new, t, managers, me, force, ignored):
    c = compare(old, new, t).exclude(ignored)
    conflicts = {}
    for mk, e in managers.entries.items():
        if mk == me:
            continue
        cs = e["set"] & (c.modified | c.added)
        if cs:
            conflicts[mk] = cs
    if not force and conflicts:
        raise conflict_error(conflicts)
    for mk, cs in conflicts.items():
        managers.entries[mk]["set"] -= cs
    if c.removed:
        for mk, e in managers.entries.items():
            if mk != me:
                e["set"] -= c.removed
    for mk in [mk for mk, e in managers.entries.items() if not e["set"] and mk != me]:
        del managers.entries[mk]
    return c


def update(live, new, t, managers, manager, api_version, subresource, ignored):
    """Update (create / PUT / non-apply PATCH): the changed fields move to ``manager``.

    Returns the new Managers (the input is not modified)."""
    managers = managers.copy()
    live, new = _strip_object(live), _strip_object(new)
    me = Managers.identity(manager, "Update", api_version, subresource)
    try:
        c = _update(live, new, t, managers, me, True, ignored)
    except TypedError:
        return managers
    changed = fp.recursive_difference((c.modified | c.added), ignored or set()) - STRIP
    if changed:
        e = managers.entries.get(me)
        if e is None:
            e = {"manager": manager, "operation": "Update", "apiVersion": api_version,
                 "subresource": subresource or "", "set": set()}
            managers.entries[me] = e
        e["set"] = (e["set"] - c.removed) | changed
        e["time"] = now_rfc3339()
    elif me in managers.entries:
        managers.entries[me]["set"] -= c.removed
        if not managers.entries[me]["set"]:
            del managers.entries[me]
    return managers


def apply(live, config, t, managers, manager, api_version, subresource, force, ignored):
    """Apply: returns (merged object, new Managers, changed: bool). Raises ApiError 409 on conflicts."""
    managers = managers.copy()
    live, config = _strip_object(live), _strip_object(config)
    me = Managers.identity(manager, "Apply", api_version, subresource)
    merged = merge(live, config, t)
    last = managers.entries[me]["set"] if me in managers.entries else None
    applied = fp.recursive_difference(to_fieldset(config, t, strict=True), ignored or set()) - STRIP
    prev_time = managers.entries[me].get("time") if me in managers.entries else None
    managers.entries[me] = {"manager": manager, "operation": "Apply", "apiVersion": api_version,
                            "subresource": subresource or "", "set": applied, "time": prev_time}
    merged = _prune(merged, t, managers, last)
    _update(live, merged, t, managers, me, force, ignored)
    if not managers.entries[me]["set"]:
        del managers.entries[me]
    return merged, managers, me


def _prune(merged, t, managers, last):
    if not last:
        return merged
    last_n = named(last, t)
    pruned = remove_items(merged, last_n, t)
    # addBackOwnedItems
    # apiVersion, kind and metadata.name/namespace/... are always in an applied configuration
    # before the apiserver strips them from managedFields: they are never pruned.
    managed = set(STRIP)
    for e in managers.entries.values():
        managed |= e["set"]
    merged_set = named(to_fieldset(merged, t), t)
    pruned_set = named(to_fieldset(pruned, t), t) if pruned is not None else set()
    pruned = remove_items(merged, merged_set - (pruned_set | named(managed, t)), t)
    # addBackDanglingItems
    pruned_set = named(to_fieldset(pruned, t), t) if pruned is not None else set()
    return remove_items(merged, (merged_set - pruned_set) & last_n, t)


def touch(managers, me):
    e = managers.entries.get(me)
    if e is not None:
        e["time"] = now_rfc3339()
