"""meta.k8s.io/v1 Table output (what ``kubectl get`` asks for): Name/Age, pod and namespace columns, CRD printer columns."""
import re
import time

from .util import parse_time


def human_age(ts):
    t = parse_time(ts)
    if t is None:
        return "<unknown>"
    d = max(0, int(time.time() - t))
    if d < 120:
        return f"{d}s"
    m = d // 60
    if m < 10:
        s = d % 60
        return f"{m}m{s}s" if s else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 48:
        return f"{h}h"
    return f"{h // 24}d"


def _jsonpath(obj, path):
    """The subset of JSONPath CRD printer columns use: .a.b, [n], [?(@.k=="v")]."""
    cur = [obj]
    for tok in re.findall(r'\.([A-Za-z0-9_-]+)|\[\?\(@\.([A-Za-z0-9_-]+)=="([^"]*)"\)\]|\[(\d+)\]', path):
        field, fk, fv, idx = tok
        nxt = []
        for c in cur:
            if field:
                if isinstance(c, dict) and field in c:
                    nxt.append(c[field])
            elif fk:
                if isinstance(c, list):
                    nxt.extend(x for x in c if isinstance(x, dict) and str(x.get(fk)) == fv)
            elif idx:
                if isinstance(c, list) and int(idx) < len(c):
                    nxt.append(c[int(idx)])
        cur = nxt
    return cur


def _cell(v, typ):
    if v is None:
        return None
    if typ == "date":
        return human_age(v)
    if typ == "integer" and isinstance(v, (int, float)):
        return int(v)
    if isinstance(v, (dict, list)):
        import json

        return json.dumps(v)
    return v if typ in ("number", "boolean") else str(v)


NAME_COL = {"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}
AGE_COL = {"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0}


def columns(res):
    if res.is_custom:
        cols = [NAME_COL]
        for c in res.printer_columns:
            cols.append({"name": c.get("name", ""), "type": c.get("type", "string"), "format": c.get("format", ""),
                         "description": c.get("description", ""), "priority": c.get("priority", 0)})
        if not res.printer_columns:
            cols.append(AGE_COL)
        return cols
    if res.plural == "pods" and res.group == "":
        return [NAME_COL,
                {"name": "Ready", "type": "string", "format": "", "description": "The aggregate readiness state of this pod for accepting traffic.", "priority": 0},
                {"name": "Status", "type": "string", "format": "", "description": "The aggregate status of the containers in this pod.", "priority": 0},
                {"name": "Restarts", "type": "string", "format": "", "description": "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.", "priority": 0},
                AGE_COL]
    if res.plural == "namespaces":
        return [NAME_COL, {"name": "Status", "type": "string", "format": "", "description": "The status of the namespace", "priority": 0}, AGE_COL]
    return [NAME_COL, AGE_COL]


def cells(res, o):
    md = o.get("metadata") or {}
    name = md.get("name", "")
    age = human_age(md.get("creationTimestamp"))
    if res.is_custom:
        out = [name]
        for c in res.printer_columns:
            vals = _jsonpath(o, c.get("jsonPath", ""))
            out.append(_cell(vals[0] if vals else None, c.get("type", "string")))
        if not res.printer_columns:
            out.append(age)
        return out
    if res.plural == "pods" and res.group == "":
        st = o.get("status") or {}
        cs = st.get("containerStatuses") or []
        total = len((o.get("spec") or {}).get("containers") or [])
        ready = sum(1 for c in cs if c.get("ready"))
        restarts = sum(int(c.get("restartCount") or 0) for c in cs)
        phase = st.get("phase", "")
        if md.get("deletionTimestamp"):
            phase = "Terminating"
        return [name, f"{ready}/{total}", phase, str(restarts), age]
    if res.plural == "namespaces":
        return [name, (o.get("status") or {}).get("phase", ""), age]
    return [name, age]


def table(res, objs, rv, cont=None, include_object=None):
    rows = []
    for o in objs:
        if o is None:
            continue
        row = {"cells": cells(res, o)}
        if include_object == "Object":
            row["object"] = o
        elif include_object != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": o.get("metadata") or {}}
        rows.append(row)
    meta = {"resourceVersion": rv}
    if cont:
        meta["continue"] = cont
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": columns(res),
            "rows": rows}
