"""One watch stream: initial events, selector filtering, bookmarks, 410 Expired, timeout, restart.

Semantics (https://kubernetes.io/docs/reference/using-api/api-concepts/ and the watch cache):

- ``resourceVersion`` unset or ``0``: synthetic ADDED events for the current objects, then changes;
- ``resourceVersion=N``: every change after N; N older than the retained history answers an
  ``ERROR`` event carrying a 410 ``Expired`` Status (``too old resource version: N (M)``), as the
  watch cache does; N in the future waits up to 3 s, then 504 ``Too large resource version``;
- ``sendInitialEvents=true`` (streaming lists): ADDED for the current state, then a BOOKMARK
  annotated ``k8s.io/initial-events-end: "true"``;
- selectors apply to old and new object: an update entering the selection is ADDED, one leaving
  it is DELETED (with the previous object and the new resourceVersion);
- ``allowWatchBookmarks=true``: a BOOKMARK (object with only metadata.resourceVersion) every
  ``bookmark_interval`` seconds without events;
- the stream ends after ``timeoutSeconds`` (bounded by the server's maximum), on shutdown, and
  abruptly (connection dropped) on an emulated restart.
"""
import time

from . import selectors
from .util import ApiError

RESTARTED = object()


class WatchRequest:
    def __init__(self, res, storage, namespace, label_reqs, field_reqs, rv, send_initial, bookmarks, timeout,
                 present, bookmark_kind):
        self.res = res
        self.storage = storage
        self.namespace = namespace
        self.label_reqs = label_reqs
        self.field_reqs = field_reqs
        self.rv = rv
        self.send_initial = send_initial
        self.bookmarks = bookmarks
        self.timeout = timeout
        self.present = present  # obj -> wire object (version, metadata-only)
        self.bookmark_kind = bookmark_kind  # (apiVersion, kind)


def _matches(w, obj):
    if obj is None:
        return False
    md = obj.get("metadata") or {}
    return selectors.match_labels(w.label_reqs, md.get("labels")) and selectors.match_fields(w.field_reqs, obj)


def prepare(store, w):
    """Registers the watcher; returns (watcher, initial objects, start rv) or raises / returns an error event."""
    rv_param = w.rv
    initial = []
    if rv_param in (None, "", "0") or w.send_initial:
        if w.send_initial and rv_param not in (None, "", "0"):
            try:
                want = int(rv_param)
            except ValueError:
                raise ApiError.bad_request(f"invalid resource version: {rv_param}") from None
            if not store.wait_for_rv(want, 3.0):
                raise ApiError.timeout("Too large resource version: %d, current: %d" % (want, store.rv), 1,
                                       [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}])
        with store.cond:
            start = store.rv
            initial = [o for o in store.list(w.storage, w.namespace) if _matches(w, o)]
            watcher = store.register(w.storage, w.namespace, start)
        return watcher, initial, start, None
    try:
        since = int(rv_param)
    except ValueError:
        raise ApiError.bad_request(f"invalid resource version: {rv_param}") from None
    if since > store.rv and not store.wait_for_rv(since, 3.0):
        raise ApiError.timeout("Too large resource version: %d, current: %d" % (since, store.rv), 1,
                               [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}])
    with store.cond:
        watcher = store.register(w.storage, w.namespace, since)
        if watcher is None:
            err = ApiError.gone(f"too old resource version: {since} ({store.compacted})")
            return None, [], since, err
    return watcher, [], since, None


def run(store, w, watcher, initial, start_rv, write, bookmark_interval, server_stop):
    """Streams events through ``write(dict)``; returns RESTARTED when the emulated server restarted."""
    deadline = time.monotonic() + w.timeout
    gen = watcher.gen
    try:
        for o in initial:
            write({"type": "ADDED", "object": w.present(o)})
        if w.send_initial and w.bookmarks:
            write({"type": "BOOKMARK", "object": _bookmark(w, start_rv, initial_end=True)})
        next_bookmark = time.monotonic() + bookmark_interval
        while True:
            events = []
            bm_rv = None
            with store.cond:
                while True:
                    if watcher.closed or store.gen != gen:
                        return RESTARTED if store.gen != gen else None
                    if server_stop.is_set() or store.stopping:
                        return None
                    if watcher.queue:
                        events = list(watcher.queue)
                        watcher.queue.clear()
                        break
                    now = time.monotonic()
                    if now >= deadline:
                        return None
                    if w.bookmarks and now >= next_bookmark:
                        bm_rv = store.rv
                        break
                    wake = min(deadline, next_bookmark if w.bookmarks else deadline, now + 1.0)
                    store.cond.wait(max(0.01, wake - now))
            if bm_rv is not None:
                write({"type": "BOOKMARK", "object": _bookmark(w, bm_rv)})
                next_bookmark = time.monotonic() + bookmark_interval
                continue
            for ev in events:
                out = _translate(w, ev)
                if out is not None:
                    write(out)
            if events:
                next_bookmark = time.monotonic() + bookmark_interval
    finally:
        store.unregister(watcher)


def _translate(w, ev):
    new_ok = _matches(w, ev.obj) if ev.type != "DELETED" else False
    old_ok = _matches(w, ev.prev) if ev.prev is not None else False
    if ev.type == "ADDED":
        return {"type": "ADDED", "object": w.present(ev.obj)} if new_ok else None
    if ev.type == "DELETED":
        return {"type": "DELETED", "object": w.present(ev.obj)} if old_ok or _matches(w, ev.obj) else None
    if new_ok and old_ok:
        return {"type": "MODIFIED", "object": w.present(ev.obj)}
    if new_ok:
        return {"type": "ADDED", "object": w.present(ev.obj)}
    if old_ok:
        prev = dict(ev.prev)
        prev["metadata"] = dict(prev.get("metadata") or {}, resourceVersion=str(ev.rv))
        return {"type": "DELETED", "object": w.present(prev)}
    return None


def _bookmark(w, rv, initial_end=False):
    api_version, kind = w.bookmark_kind
    md = {"resourceVersion": str(rv), "creationTimestamp": None}
    if initial_end:
        md["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"kind": kind, "apiVersion": api_version, "metadata": md}


def error_event(err):
    return {"type": "ERROR", "object": err.status()}
