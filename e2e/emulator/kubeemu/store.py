"""Object storage with one global, etcd-like resourceVersion counter, bounded history, snapshots and watch fan-out.

- Every write (ADDED / MODIFIED / DELETED) takes the next resourceVersion, stamps it on the object
  and appends an event to the history (old and new object, so any state inside the retained window
  can be rebuilt: Exact lists, continue tokens).
- History is bounded (``history_limit`` events); ``compact()`` drops it all. ``compacted`` is the
  oldest resourceVersion a watch or an Exact list can start from; older ones get 410 Expired.
- Watchers register a queue; ``commit`` pushes matching events under the lock, so a watch started
  from a resourceVersion sees every later event exactly once, in order.
- ``restart()`` bumps a generation: open watch streams end (connections are dropped by the server)
  and the history is compacted, as after an API server restart.
"""
import collections
import json
import os
import threading

from .util import deepcopy


_META_ORDER = ("name", "generateName", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
               "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
               "finalizers", "managedFields")


def _order(md):
    out = {k: md[k] for k in _META_ORDER if k in md}
    out.update((k, v) for k, v in md.items() if k not in out)
    return out


class Event:
    __slots__ = ("rv", "storage", "type", "ns", "name", "obj", "prev")

    def __init__(self, rv, storage, typ, ns, name, obj, prev):
        self.rv, self.storage, self.type, self.ns, self.name, self.obj, self.prev = rv, storage, typ, ns, name, obj, prev


class Watcher:
    def __init__(self, storage, ns, gen):
        self.storage = storage
        self.ns = ns
        self.gen = gen
        self.queue = collections.deque()
        self.closed = False


class Store:
    def __init__(self, history_limit=100000, start_rv=1):
        self.cond = threading.Condition(threading.RLock())
        self.rv = start_rv
        self.objects = {}  # storage -> {(ns, name): obj}
        self.history = collections.deque()
        self.history_limit = history_limit
        self.compacted = start_rv
        self.watchers = set()
        self.gen = 0
        self.stopping = False

    # -- reads ------------------------------------------------------------------------------

    def get(self, storage, ns, name):
        with self.cond:
            o = self.objects.get(storage, {}).get((ns or "", name))
            return deepcopy(o) if o is not None else None

    def list(self, storage, ns=None):
        """Current objects, sorted by (namespace, name) as etcd keys would be."""
        with self.cond:
            items = self.objects.get(storage, {})
            keys = sorted(k for k in items if ns is None or k[0] == ns)
            return [deepcopy(items[k]) for k in keys]

    def snapshot(self, storage, ns, rv):
        """Objects as they were at resourceVersion ``rv`` (rv >= compacted), sorted."""
        with self.cond:
            state = dict(self.objects.get(storage, {}))
            for ev in reversed(self.history):
                if ev.rv <= rv:
                    break
                if ev.storage != storage:
                    continue
                k = (ev.ns, ev.name)
                if ev.type == "ADDED":
                    state.pop(k, None)
                else:
                    state[k] = ev.prev
            keys = sorted(k for k in state if (ns is None or k[0] == ns) and state[k] is not None)
            return [deepcopy(state[k]) for k in keys]

    def all_storages(self):
        with self.cond:
            return list(self.objects.keys())

    # -- writes -----------------------------------------------------------------------------

    def commit(self, storage, typ, obj, prev=None):
        """Stores obj (ADDED/MODIFIED) or removes it (DELETED); returns the stored copy."""
        with self.cond:
            self.rv += 1
            rv = self.rv
            obj = deepcopy(obj)
            md = obj.setdefault("metadata", {})
            md["resourceVersion"] = str(rv)
            obj["metadata"] = md = _order(md)
            k = (md.get("namespace") or "", md["name"])
            bucket = self.objects.setdefault(storage, {})
            prev = bucket.get(k) if prev is None else prev
            if typ == "DELETED":
                bucket.pop(k, None)
            else:
                bucket[k] = obj
            ev = Event(rv, storage, typ, k[0], k[1], obj, prev)
            self.history.append(ev)
            while len(self.history) > self.history_limit:
                old = self.history.popleft()
                self.compacted = old.rv
            for w in self.watchers:
                if w.storage == storage and (w.ns is None or w.ns == k[0]):
                    w.queue.append(ev)
            self.cond.notify_all()
            return deepcopy(obj)

    def compact(self):
        """Drops all history: resourceVersions before now can no longer be watched or listed exactly."""
        with self.cond:
            self.history.clear()
            self.compacted = self.rv
            return self.rv

    def restart(self):
        """Ends every open watch and expires all earlier resourceVersions, as after an API server restart."""
        with self.cond:
            self.gen += 1
            for w in self.watchers:
                w.closed = True
            # The new "watch cache" starts one version later, so every resourceVersion handed out
            # before the restart is too old: clients must re-list (410 Expired).
            self.rv += 1
            self.compact()
            self.cond.notify_all()
            return self.rv

    def stop(self):
        with self.cond:
            self.stopping = True
            for w in self.watchers:
                w.closed = True
            self.cond.notify_all()

    # -- watches ----------------------------------------------------------------------------

    def register(self, storage, ns, since_rv):
        """Registers a watcher that first receives the retained events after ``since_rv``.

        Returns None when ``since_rv`` is older than the retained history."""
        with self.cond:
            if since_rv is not None and since_rv < self.compacted:
                return None
            w = Watcher(storage, ns, self.gen)
            if since_rv is not None:
                for ev in self.history:
                    if ev.rv > since_rv and ev.storage == storage and (ns is None or ev.ns == ns):
                        w.queue.append(ev)
            self.watchers.add(w)
            return w

    def unregister(self, w):
        with self.cond:
            self.watchers.discard(w)

    def wait_for_rv(self, rv, timeout):
        """Waits (bounded) until the store reaches ``rv``; True if it did."""
        import time

        deadline = time.monotonic() + timeout
        with self.cond:
            while self.rv < rv and not self.stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.5))
            return self.rv >= rv

    # -- persistence (optional --state-dir) --------------------------------------------------

    def save(self, path):
        with self.cond:
            data = {"rv": self.rv, "objects": [
                {"storage": list(s), "items": list(items.values())} for s, items in self.objects.items()]}
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, path)

    def load(self, path):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        with self.cond:
            self.rv = int(data.get("rv", 1))
            self.compacted = self.rv
            for entry in data.get("objects", []):
                s = tuple(entry["storage"])
                bucket = self.objects.setdefault(s, {})
                for o in entry["items"]:
                    md = o["metadata"]
                    bucket[(md.get("namespace") or "", md["name"])] = o
