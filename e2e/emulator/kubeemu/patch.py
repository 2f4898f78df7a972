"""The non-apply patch types: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch.

Strategic merge patch follows k8s.io/apimachinery/pkg/util/strategicpatch for what the emulated
kinds use: maps merge and ``null`` deletes; lists whose schema says ``x-kubernetes-patch-strategy:
merge`` merge by ``x-kubernetes-patch-merge-key`` (objects) or as a union (scalars, e.g.
finalizers); other lists are replaced; directives ``$patch: replace|delete|merge``,
``$retainKeys``, ``$deleteFromPrimitiveList/<f>`` and ``$setElementOrder/<f>`` are honoured.
Not emulated: ``retainKeys`` as a schema strategy (only the directive), and patching
lists of lists.
"""
import copy
import json

from .typeschema import LIST, UNTYPED
from .util import ApiError


def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# ---------------------------------------------------------------------------------------------
# JSON patch


def _unescape(token):
    return token.replace("~1", "/").replace("~0", "~")


def _split(pointer):
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: "
                                       f"JSON pointer {pointer!r} does not start with /")
    return [_unescape(t) for t in pointer[1:].split("/")]


def _bad(msg):
    return ApiError(422, "Invalid", msg)


def _walk(doc, tokens):
    cur = doc
    for t in tokens:
        if isinstance(cur, dict):
            if t not in cur:
                raise _bad(f"doc is missing path: /{'/'.join(tokens)}: missing value")
            cur = cur[t]
        elif isinstance(cur, list):
            try:
                i = int(t)
            except ValueError:
                raise _bad(f"invalid array index {t!r}") from None
            if i < 0 or i >= len(cur):
                raise _bad(f"doc is missing path: /{'/'.join(tokens)}: missing value")
            cur = cur[i]
        else:
            raise _bad(f"doc is missing path: /{'/'.join(tokens)}: missing value")
    return cur


def _add(doc, tokens, value):
    if not tokens:
        return value
    parent = _walk(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            try:
                i = int(last)
            except ValueError:
                raise _bad(f"invalid array index {last!r}") from None
            if i < 0 or i > len(parent):
                raise _bad(f"add operation does not apply: doc is missing path: /{'/'.join(tokens)}")
            parent.insert(i, value)
    else:
        raise _bad(f"add operation does not apply: doc is missing path: /{'/'.join(tokens)}")
    return doc


def _remove(doc, tokens):
    if not tokens:
        raise _bad("remove of the whole document is not supported")
    parent = _walk(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _bad(f"remove operation does not apply: doc is missing path: /{'/'.join(tokens)}")
        return parent.pop(last)
    if isinstance(parent, list):
        try:
            i = int(last)
        except ValueError:
            raise _bad(f"invalid array index {last!r}") from None
        if i < 0 or i >= len(parent):
            raise _bad(f"remove operation does not apply: doc is missing path: /{'/'.join(tokens)}")
        return parent.pop(i)
    raise _bad(f"remove operation does not apply: doc is missing path: /{'/'.join(tokens)}")


def json_patch(doc, ops):
    if not isinstance(ops, list):
        raise ApiError.bad_request("json patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op:
            raise _bad("invalid JSON patch operation")
        kind = op["op"]
        path = _split(op.get("path", ""))
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            if not path:
                doc = copy.deepcopy(op.get("value"))
                continue
            _walk(doc, path)
            parent = _walk(doc, path[:-1])
            if isinstance(parent, list):
                parent[int(path[-1])] = copy.deepcopy(op.get("value"))
            else:
                parent[path[-1]] = copy.deepcopy(op.get("value"))
        elif kind == "move":
            frm = _split(op.get("from", ""))
            v = _remove(doc, frm)
            doc = _add(doc, path, v)
        elif kind == "copy":
            frm = _split(op.get("from", ""))
            doc = _add(doc, path, copy.deepcopy(_walk(doc, frm)))
        elif kind == "test":
            if _walk(doc, path) != op.get("value"):
                raise _bad(f"the server rejected our request due to an error in our request: testing value "
                           f"/{'/'.join(path)} failed")
        else:
            raise _bad(f"unexpected kind: {kind}")
    return doc


# ---------------------------------------------------------------------------------------------
# Strategic merge patch

DIRECTIVE = "$patch"
RETAIN = "$retainKeys"
DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
SET_ORDER = "$setElementOrder/"


def strategic_merge_patch(original, patch, t):
    if not isinstance(patch, dict):
        raise ApiError.bad_request("strategic merge patch must be a JSON object")
    return _smp_map(original if isinstance(original, dict) else {}, patch, t)


def _ft(t, k):
    if t is None:
        return UNTYPED
    ft = t.field_type(k)
    return ft if ft is not None else UNTYPED


def _smp_map(original, patch, t):
    d = patch.get(DIRECTIVE)
    if d == "replace":
        return {k: v for k, v in patch.items() if k != DIRECTIVE}
    if d == "delete":
        return None
    out = dict(original)
    orders = {}
    retain = patch.get(RETAIN)
    for k, v in patch.items():
        if k in (DIRECTIVE, RETAIN):
            continue
        if k.startswith(DELETE_PRIMITIVE):
            f = k[len(DELETE_PRIMITIVE):]
            if isinstance(out.get(f), list) and isinstance(v, list):
                out[f] = [x for x in out[f] if x not in v]
            continue
        if k.startswith(SET_ORDER):
            orders[k[len(SET_ORDER):]] = v
            continue
        if v is None:
            out.pop(k, None)
            continue
        ft = _ft(t, k)
        if isinstance(v, dict):
            merged = _smp_map(out.get(k) if isinstance(out.get(k), dict) else {}, v, ft)
            if merged is None:
                out.pop(k, None)
            else:
                out[k] = merged
        elif isinstance(v, list):
            out[k] = _smp_list(out.get(k) if isinstance(out.get(k), list) else [], v, ft)
        else:
            out[k] = v
    for f, order in orders.items():
        if isinstance(out.get(f), list) and isinstance(order, list):
            out[f] = _reorder(out[f], order, _ft(t, f))
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _smp_list(original, patch, t):
    if t is None or t.kind != LIST or t.patch_strategy is None or "merge" not in t.patch_strategy:
        # Replace, but honour an explicit {"$patch": "replace"} marker item.
        return [x for x in patch if not (isinstance(x, dict) and x.get(DIRECTIVE) == "replace")]
    if any(isinstance(x, dict) and x.get(DIRECTIVE) == "replace" for x in patch):
        return [x for x in patch if not (isinstance(x, dict) and x.get(DIRECTIVE) == "replace")]
    key = t.patch_key
    if not key:
        out = list(original)
        for x in patch:
            if x not in out:
                out.append(x)
        return out
    out = [copy.deepcopy(x) for x in original]
    for item in patch:
        if not isinstance(item, dict):
            continue
        kv = item.get(key)
        idx = next((i for i, x in enumerate(out) if isinstance(x, dict) and x.get(key) == kv), None)
        if item.get(DIRECTIVE) == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            out.append(_smp_map({}, item, t.elem))
        else:
            merged = _smp_map(out[idx], item, t.elem)
            if merged is None:
                out.pop(idx)
            else:
                out[idx] = merged
    return out


def _reorder(items, order, t):
    key = t.patch_key if t is not None and t.kind == LIST else None

    def ident(x):
        if key and isinstance(x, dict):
            return json.dumps(x.get(key), sort_keys=True)
        if isinstance(x, dict) and key is None:
            return None
        return json.dumps(x, sort_keys=True)

    pos = {}
    for i, o in enumerate(order):
        pos.setdefault(ident(o), i)
    ranked = [(pos.get(ident(x), len(order) + i), i, x) for i, x in enumerate(items)]
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [x for _, _, x in ranked]
