"""Just enough Kubernetes protobuf to read (Self)SubjectAccessReviews, which kubectl auth can-i sends as protobuf.

The envelope is ``k8s\\x00`` + runtime.Unknown{typeMeta{apiVersion, kind}, raw}; ``raw`` is the
object (k8s.io/api/authorization/v1/generated.proto). Other kinds are not decoded: a protobuf
body for them answers 415 UnsupportedMediaType.
"""
from .util import ApiError

MAGIC = b"k8s\x00"


def _varint(buf, i):
    shift = result = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def fields(buf):
    """Yields (field number, wire type, value) for one message."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 2:
            n, i = _varint(buf, i)
            v = buf[i:i + n]
            i += n
        elif wt == 1:
            v = buf[i:i + 8]
            i += 8
        elif wt == 5:
            v = buf[i:i + 4]
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
        yield num, wt, v


def _strings(buf, names):
    out = {}
    for num, wt, v in fields(buf):
        if wt == 2 and num in names:
            out[names[num]] = v.decode("utf-8", errors="replace")
    return out


RESOURCE_ATTRS = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource", 7: "name"}
NON_RESOURCE_ATTRS = {1: "path", 2: "verb"}


def decode_access_review(body):
    """Protobuf (Self)SubjectAccessReview -> its JSON form."""
    try:
        if not body.startswith(MAGIC):
            raise ValueError("missing k8s protobuf magic")
        type_meta, raw = {}, b""
        for num, wt, v in fields(body[len(MAGIC):]):
            if num == 1 and wt == 2:
                type_meta = _strings(v, {1: "apiVersion", 2: "kind"})
            elif num == 2 and wt == 2:
                raw = v
        spec = {}
        for num, wt, v in fields(raw):
            if num != 2 or wt != 2:
                continue
            groups = []
            for snum, swt, sv in fields(v):
                if swt != 2:
                    continue
                if snum == 1:
                    spec["resourceAttributes"] = _strings(sv, RESOURCE_ATTRS)
                elif snum == 2:
                    spec["nonResourceAttributes"] = _strings(sv, NON_RESOURCE_ATTRS)
                elif snum == 3:
                    spec["user"] = sv.decode("utf-8", errors="replace")
                elif snum == 4:
                    groups.append(sv.decode("utf-8", errors="replace"))
                elif snum == 6:
                    spec["uid"] = sv.decode("utf-8", errors="replace")
            if groups:
                spec["groups"] = groups
        return {"apiVersion": type_meta.get("apiVersion", "authorization.k8s.io/v1"),
                "kind": type_meta.get("kind", ""), "spec": spec}
    except (ValueError, IndexError) as e:
        raise ApiError.bad_request(f"cannot decode protobuf: {e}") from None
