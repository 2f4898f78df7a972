"""Label selectors (``a=b,c!=d,e in (x,y),!f``) and field selectors (``metadata.name=x,status.phase!=Failed``)."""
import re

from .util import ApiError

_LABEL_RE = re.compile(
    r"\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9_./-]+)\s*"
    r"(?:(?P<op>==|=|!=|\s+in\s+|\s+notin\s+|>|<)\s*(?P<val>\([^)]*\)|[A-Za-z0-9_.-]*))?\s*$"
)


def _split_top(s):
    """Splits on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in (x.strip() for x in parts) if p]


def parse_labels(sel):
    """Returns a list of (key, op, values) with op in =, !=, in, notin, exists, !exists, gt, lt."""
    if not sel:
        return []
    reqs = []
    for part in _split_top(sel):
        m = _LABEL_RE.match(part)
        if not m:
            raise ApiError.bad_request(f"unable to parse requirement: {part!r}")
        key, op, val, neg = m.group("key"), m.group("op"), m.group("val"), m.group("neg")
        if op is None:
            reqs.append((key, "!exists" if neg else "exists", []))
            continue
        if neg:
            raise ApiError.bad_request(f"unable to parse requirement: {part!r}")
        op = op.strip()
        if op in ("in", "notin"):
            if not val.startswith("("):
                raise ApiError.bad_request(f"unable to parse requirement: {part!r}: expected '('")
            vals = [v.strip() for v in val[1:-1].split(",") if v.strip()]
            reqs.append((key, op, vals))
        elif op in ("=", "=="):
            reqs.append((key, "=", [val]))
        elif op == "!=":
            reqs.append((key, "!=", [val]))
        elif op == ">":
            reqs.append((key, "gt", [val]))
        else:
            reqs.append((key, "lt", [val]))
    return reqs


def match_labels(reqs, labels):
    labels = labels or {}
    for key, op, vals in reqs:
        has = key in labels
        v = labels.get(key)
        if op == "=" and not (has and v == vals[0]):
            return False
        if op == "!=" and has and v == vals[0]:
            return False
        if op == "in" and not (has and v in vals):
            return False
        if op == "notin" and has and v in vals:
            return False
        if op == "exists" and not has:
            return False
        if op == "!exists" and has:
            return False
        if op in ("gt", "lt"):
            try:
                a, b = int(v), int(vals[0])
            except (TypeError, ValueError):
                return False
            if not has or (op == "gt" and not a > b) or (op == "lt" and not a < b):
                return False
    return True


def match_label_selector_object(sel, labels):
    """metav1.LabelSelector (matchLabels + matchExpressions)."""
    if sel is None:
        return True
    labels = labels or {}
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        k, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and k in labels and labels[k] in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def parse_fields(sel, supported):
    """Returns [(field, op, value)]; ``supported`` is the set of field labels of the resource."""
    if not sel:
        return []
    reqs = []
    for part in _split_top(sel):
        m = re.match(r"^\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise ApiError.bad_request(f"invalid selector: '{sel}'; can't understand '{part}'")
        f, op, v = m.group(1), m.group(2), m.group(3)
        if f not in supported:
            raise ApiError.bad_request(f"field label not supported: {f}")
        reqs.append((f, "!=" if op == "!=" else "=", v))
    return reqs


def field_value(obj, path):
    cur = obj
    for p in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(p)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def match_fields(reqs, obj):
    for f, op, v in reqs:
        actual = field_value(obj, f)
        if op == "=" and actual != v:
            return False
        if op == "!=" and actual == v:
            return False
    return True
