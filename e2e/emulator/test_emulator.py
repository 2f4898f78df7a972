"""Self-test of the Kubernetes API emulator: the real process over HTTP, plus kubectl as an independent client.

    python3 -m unittest discover -s e2e/emulator        (from the repository root)

Every wait is bounded; the whole suite takes well under a minute.
"""
import glob
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EMULATOR = os.path.join(HERE, "kube_emulator.py")
CRDS = os.path.join(ROOT, "crds")
RBAC_DIR = os.path.join(ROOT, "config", "rbac")
SAMPLES = os.path.join(ROOT, "config", "samples")
KUBECTL = os.path.join(ROOT, ".tools", "bin", "kubectl")

try:
    import yaml  # PyYAML (scripts/install-deps.sh installs it with kubernetes-validate)
except ImportError:  # pragma: no cover
    yaml = None

SA_TOKEN = "sa-refwarden-token"
SA_USER = "system:serviceaccount:refwarden-system:refwarden"


def load_yaml_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


class Emulator:
    """The emulator as a child process on an ephemeral port."""

    def __init__(self, *extra):
        self.dir = tempfile.mkdtemp(prefix="kubeemu-test-")
        self.port_file = os.path.join(self.dir, "port")
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        self.log = open(os.path.join(self.dir, "emulator.log"), "w")
        self.proc = subprocess.Popen(
            [sys.executable, EMULATOR, "--port", "0", "--port-file", self.port_file, "--kubeconfig-out",
             self.kubeconfig, "--token", "admin", "--sa-token", f"refwarden-system:refwarden:{SA_TOKEN}",
             "--user-token", "alice-token:alice:devs", *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        port = ""
        while time.monotonic() < deadline:
            if os.path.exists(self.port_file):
                with open(self.port_file, encoding="utf-8") as f:
                    port = f.read().strip()
                if port:
                    break
            if self.proc.poll() is not None:
                with open(self.log.name, encoding="utf-8") as f:
                    raise RuntimeError("emulator exited: " + f.read())
            time.sleep(0.05)
        else:
            raise RuntimeError("emulator did not write its port file")
        self.port = int(port)

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.proc.returncode

    def request(self, method, path, body=None, token="admin", ctype=None, headers=None, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            if isinstance(data, str):
                data = data.encode()
            h["Content-Type"] = ctype or "application/json"
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        try:
            out = json.loads(raw) if raw else None
        except ValueError:
            out = raw.decode(errors="replace")
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, out

    def ok(self, method, path, body=None, token="admin", ctype=None, expect=(200, 201), **kw):
        st, h, out = self.request(method, path, body, token, ctype, **kw)
        if st not in (expect if isinstance(expect, tuple) else (expect,)):
            raise AssertionError(f"{method} {path} -> {st}: {out}")
        return out

    def apply(self, path, obj, manager="test", force=False, token="admin", expect=(200, 201), **q):
        params = {"fieldManager": manager, **q}
        if force:
            params["force"] = "true"
        return self.ok("PATCH", f"{path}?{urllib.parse.urlencode(params)}", obj, token, "application/apply-patch+yaml",
                       expect=expect)

    def control(self, method, path, body=None):
        return self.ok(method, "/_emulator" + path, body)

    def watch(self, path, token="admin", timeout=10, headers=None):
        return Watch(self.port, path, token, timeout, headers)


class Watch:
    """A watch stream read line by line (every read bounded by the socket timeout)."""

    def __init__(self, port, path, token, timeout, headers=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        h = {"Authorization": f"Bearer {token}", **(headers or {})}
        self.conn.request("GET", path, headers=h)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status

    def next(self):
        line = self.resp.readline()
        if not line:
            return None
        return json.loads(line)

    def collect(self, n, skip_bookmarks=True):
        out = []
        while len(out) < n:
            ev = self.next()
            if ev is None:
                break
            if skip_bookmarks and ev["type"] == "BOOKMARK":
                continue
            out.append(ev)
        return out

    def close(self):
        try:
            self.conn.sock.shutdown(2)
        except (OSError, AttributeError):
            pass
        self.conn.close()


def cm(name, ns="default", data=None, labels=None):
    o = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data or {"a": "1"}}
    if labels:
        o["metadata"]["labels"] = labels
    return o


def pod(name, ns="default", node="node-1", labels=None, image="ghcr.io/acme/app:1.0", grace=None):
    o = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
         "spec": {"containers": [{"name": "app", "image": image}]}}
    if node:
        o["spec"]["nodeName"] = node
    if grace is not None:
        o["spec"]["terminationGracePeriodSeconds"] = grace
    return o


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.test.kubeemu.dev"},
    "spec": {
        "group": "test.kubeemu.dev", "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
        "versions": [{
            "name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "properties": {
                    "size": {"type": "integer", "default": 1},
                    "color": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                }},
                "status": {"type": "object", "properties": {
                    "observedGeneration": {"type": "integer"},
                    "conditions": {"type": "array", "x-kubernetes-list-type": "map",
                                   "x-kubernetes-list-map-keys": ["type"],
                                   "items": {"type": "object", "required": ["type", "status"], "properties": {
                                       "type": {"type": "string"}, "status": {"type": "string"},
                                       "reason": {"type": "string"}, "message": {"type": "string"}}}},
                }},
            }}},
        }],
    },
}
WIDGETS = "/apis/test.kubeemu.dev/v1/namespaces/default/widgets"
RP = "/apis/refwarden.dev/v1alpha1/registryprofiles"
POL = "/apis/refwarden.dev/v1alpha1/referrerpolicies"


def policy(name, **spec):
    s = {"require": [{"name": "signature", "preset": "signature"}]}
    s.update(spec)
    return {"apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy", "metadata": {"name": name}, "spec": s}


class EmulatorTest(unittest.TestCase):
    emu = None

    @classmethod
    def setUpClass(cls):
        if yaml is None:
            raise unittest.SkipTest("PyYAML is needed to read the CRDs (pip install pyyaml)")
        cls.emu = Emulator("--bookmark-interval", "0.5")
        for f in sorted(glob.glob(os.path.join(CRDS, "*.yaml"))):
            for d in load_yaml_docs(f):
                cls.emu.apply(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{d['metadata']['name']}", d)
        cls.emu.apply("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.test.kubeemu.dev", WIDGET_CRD)

    @classmethod
    def tearDownClass(cls):
        if cls.emu:
            cls.emu.stop()

    # -- discovery, auth -------------------------------------------------------------------------

    def test_discovery_version_and_openapi(self):
        e = self.emu
        self.assertEqual(e.ok("GET", "/version")["minor"], "35")
        self.assertEqual(e.ok("GET", "/api")["versions"], ["v1"])
        groups = {g["name"] for g in e.ok("GET", "/apis")["groups"]}
        self.assertTrue({"refwarden.dev", "coordination.k8s.io", "events.k8s.io", "rbac.authorization.k8s.io",
                         "apiextensions.k8s.io"} <= groups)
        names = {r["name"] for r in e.ok("GET", "/api/v1")["resources"]}
        self.assertTrue({"pods", "pods/status", "namespaces", "secrets", "configmaps", "events"} <= names)
        rw = {r["name"]: r for r in e.ok("GET", "/apis/refwarden.dev/v1alpha1")["resources"]}
        self.assertFalse(rw["registryprofiles"]["namespaced"])
        self.assertIn("registryprofiles/status", rw)
        root = e.ok("GET", "/openapi/v3")["paths"]
        doc = e.ok("GET", root["apis/refwarden.dev/v1alpha1"]["serverRelativeURL"])
        patch = doc["paths"]["/apis/refwarden.dev/v1alpha1/registryprofiles/{name}"]["patch"]
        self.assertIn("fieldValidation", [p["name"] for p in patch["parameters"]])

    def test_authentication(self):
        st, _, out = self.emu.request("GET", "/api/v1/namespaces", token=None)
        self.assertEqual((st, out["reason"]), (401, "Unauthorized"))
        st, _, _ = self.emu.request("GET", "/api/v1/namespaces", token="wrong")
        self.assertEqual(st, 401)
        self.assertEqual(self.emu.request("GET", "/_emulator/state", token=SA_TOKEN)[0], 403)

    # -- CRUD ------------------------------------------------------------------------------------

    def test_crud_configmap(self):
        e = self.emu
        base = "/api/v1/namespaces/default/configmaps"
        created = e.ok("POST", base, cm("crud"), expect=201)
        md = created["metadata"]
        self.assertTrue(md["uid"] and md["creationTimestamp"] and md["resourceVersion"])
        self.assertNotIn("generation", md)
        st, _, out = e.request("POST", base, cm("crud"))
        self.assertEqual((st, out["reason"], out["message"]), (409, "AlreadyExists", 'configmaps "crud" already exists'))
        got = e.ok("GET", f"{base}/crud")
        self.assertEqual(got["data"], {"a": "1"})
        upd = dict(got, data={"a": "2"})
        new = e.ok("PUT", f"{base}/crud", upd)
        self.assertGreater(int(new["metadata"]["resourceVersion"]), int(md["resourceVersion"]))
        st, _, out = e.request("PUT", f"{base}/crud", upd)  # stale resourceVersion
        self.assertEqual((st, out["reason"]), (409, "Conflict"))
        self.assertIn("the object has been modified", out["message"])
        # An update that changes nothing keeps the resourceVersion.
        same = e.ok("PUT", f"{base}/crud", new)
        self.assertEqual(same["metadata"]["resourceVersion"], new["metadata"]["resourceVersion"])
        gen = e.ok("POST", base, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}},
                   expect=201)
        self.assertTrue(gen["metadata"]["name"].startswith("gen-") and len(gen["metadata"]["name"]) == 9)
        items = e.ok("GET", f"{base}?labelSelector=" + urllib.parse.quote("!nolabel"))["items"]
        self.assertIn("crud", [i["metadata"]["name"] for i in items])
        out = e.ok("DELETE", f"{base}/crud")
        self.assertEqual((out["kind"], out["status"], out["details"]["name"]), ("Status", "Success", "crud"))
        st, _, out = e.request("GET", f"{base}/crud")
        self.assertEqual((st, out["message"]), (404, 'configmaps "crud" not found'))
        st, _, out = e.request("POST", "/api/v1/namespaces/nope/configmaps", cm("x", "nope"))
        self.assertEqual((st, out["message"]), (404, 'namespaces "nope" not found'))
        st, _, _ = e.request("GET", "/api/v1/namespaces/default/nothings")
        self.assertEqual(st, 404)

    def test_list_pagination_and_resource_versions(self):
        e = self.emu
        base = "/api/v1/namespaces/default/configmaps"
        for i in range(5):
            e.ok("POST", base, cm(f"page-{i}", labels={"page": "yes"}), expect=201)
        sel = "labelSelector=page%3Dyes"
        first = e.ok("GET", f"{base}?{sel}&limit=2")
        self.assertEqual(len(first["items"]), 2)
        self.assertEqual(first["metadata"]["remainingItemCount"], 3)
        names = [i["metadata"]["name"] for i in first["items"]]
        tok = first["metadata"]["continue"]
        e.ok("POST", base, cm("page-9", labels={"page": "yes"}), expect=201)  # after the snapshot: not listed
        while tok:
            page = e.ok("GET", f"{base}?{sel}&limit=2&continue={urllib.parse.quote(tok)}")
            self.assertEqual(page["metadata"]["resourceVersion"], first["metadata"]["resourceVersion"])
            names += [i["metadata"]["name"] for i in page["items"]]
            tok = page["metadata"].get("continue")
        self.assertEqual(names, [f"page-{i}" for i in range(5)])
        rv = int(first["metadata"]["resourceVersion"])
        exact = e.ok("GET", f"{base}?{sel}&resourceVersion={rv}&resourceVersionMatch=Exact")
        self.assertEqual(len(exact["items"]), 5)
        self.assertEqual(len(e.ok("GET", f"{base}?{sel}&resourceVersion=0&resourceVersionMatch=NotOlderThan")["items"]), 6)
        self.assertEqual(len(e.ok("GET", f"{base}?{sel}")["items"]), 6)
        st, _, out = e.request("GET", f"{base}?resourceVersion={rv + 100000}&resourceVersionMatch=NotOlderThan")
        self.assertEqual((st, out["reason"]), (504, "Timeout"))
        st, _, out = e.request("GET", f"{base}?resourceVersionMatch=Exact")
        self.assertEqual(st, 422)
        meta = e.ok("GET", f"{base}?{sel}", headers={"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"})
        self.assertEqual(meta["kind"], "PartialObjectMetadataList")
        self.assertNotIn("data", meta["items"][0])

    def test_patch_types(self):
        e = self.emu
        base = "/api/v1/namespaces/default/pods"
        e.ok("POST", base, pod("patchme", labels={"a": "1", "b": "2"}), expect=201)
        p = e.ok("PATCH", f"{base}/patchme", {"metadata": {"labels": {"a": None, "c": "3"}}},
                 ctype="application/merge-patch+json")
        self.assertEqual(p["metadata"]["labels"], {"b": "2", "c": "3"})
        p = e.ok("PATCH", f"{base}/patchme", [{"op": "replace", "path": "/metadata/labels/b", "value": "20"},
                                              {"op": "add", "path": "/metadata/annotations", "value": {"x": "y"}}],
                 ctype="application/json-patch+json")
        self.assertEqual((p["metadata"]["labels"]["b"], p["metadata"]["annotations"]), ("20", {"x": "y"}))
        # Strategic merge: containers merge by name (image is one of the mutable pod fields).
        p = e.ok("PATCH", f"{base}/patchme", {"spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/app:2.0"}]}},
                 ctype="application/strategic-merge-patch+json")
        self.assertEqual(len(p["spec"]["containers"]), 1)
        self.assertEqual(p["spec"]["containers"][0]["image"], "ghcr.io/acme/app:2.0")
        self.assertEqual(p["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent")
        self.assertEqual(p["status"]["phase"], "Pending")
        st, _, out = e.request("PATCH", f"{base}/patchme", {"spec": {"restartPolicy": "Never"}},
                               ctype="application/merge-patch+json")
        self.assertEqual(st, 422)
        self.assertIn("pod updates may not change fields", out["message"])
        st, _, out = e.request("PATCH", f"{base}/patchme", {"metadata": {"resourceVersion": "1", "labels": {"z": "1"}}},
                               ctype="application/merge-patch+json")
        self.assertEqual((st, out["reason"]), (409, "Conflict"))
        st, _, out = e.request("PATCH", f"{POL}/x", {"spec": {}}, ctype="application/strategic-merge-patch+json")
        self.assertEqual(st, 415)
        e.ok("DELETE", f"{base}/patchme?gracePeriodSeconds=0")

    # -- generation, status subresource ---------------------------------------------------------

    def test_generation_and_status_subresource(self):
        e = self.emu
        p = e.ok("POST", POL, dict(policy("gen"), status={"observedGeneration": 99}), expect=201)
        self.assertEqual(p["metadata"]["generation"], 1)
        self.assertNotIn("status", p)  # status is dropped on create (status subresource)
        p = e.ok("PATCH", f"{POL}/gen", {"spec": {"recheckInterval": "5m"}}, ctype="application/merge-patch+json")
        self.assertEqual(p["metadata"]["generation"], 2)
        p = e.ok("PATCH", f"{POL}/gen", {"metadata": {"labels": {"x": "y"}}}, ctype="application/merge-patch+json")
        self.assertEqual(p["metadata"]["generation"], 2)  # metadata does not count
        # Writes to the main resource ignore status.
        p = e.ok("PATCH", f"{POL}/gen", {"status": {"observedGeneration": 7}}, ctype="application/merge-patch+json")
        self.assertNotIn("status", p)
        # /status changes only status.
        s = e.apply(f"{POL}/gen/status", {"apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
                                          "metadata": {"name": "gen"}, "status": {"observedGeneration": 2},
                                          "spec": {"recheckInterval": "1h"}}, manager="refwarden", force=True)
        self.assertEqual(s["status"]["observedGeneration"], 2)
        self.assertEqual(s["spec"]["recheckInterval"], "5m")
        self.assertEqual(s["metadata"]["generation"], 2)
        self.assertEqual(s["status"]["summary"], {"compliant": 0, "images": 0, "nonCompliant": 0, "pods": 0, "unknown": 0})
        mf = [m for m in s["metadata"]["managedFields"] if m["manager"] == "refwarden"][0]
        self.assertEqual((mf["operation"], mf["subresource"]), ("Apply", "status"))
        self.assertIn("f:status", mf["fieldsV1"])
        self.assertNotIn("f:spec", mf["fieldsV1"])
        p = e.ok("GET", f"{POL}/gen")
        self.assertEqual(p["status"]["observedGeneration"], 2)
        # A PUT with a changed status through the main resource keeps the stored status.
        p["status"]["observedGeneration"] = 1
        p["spec"]["recheckInterval"] = "2m"
        p = e.ok("PUT", f"{POL}/gen", p)
        self.assertEqual((p["status"]["observedGeneration"], p["metadata"]["generation"]), (2, 3))
        # Same status applied again: no write at all.
        before = p["metadata"]["resourceVersion"]
        s = e.apply(f"{POL}/gen/status", {"apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
                                          "metadata": {"name": "gen"}, "status": {"observedGeneration": 2}},
                    manager="refwarden", force=True)
        self.assertEqual(s["metadata"]["resourceVersion"], before)

    # -- server-side apply ----------------------------------------------------------------------

    def widget(self, name, spec=None, status=None):
        o = {"apiVersion": "test.kubeemu.dev/v1", "kind": "Widget", "metadata": {"name": name}}
        if spec is not None:
            o["spec"] = spec
        if status is not None:
            o["status"] = status
        return o

    def test_ssa_ownership_removal_conflict_force(self):
        e = self.emu
        path = f"{WIDGETS}/w1"
        w = e.apply(path, self.widget("w1", {"color": "red", "tags": ["a"]}), manager="alpha")
        self.assertEqual(w["spec"], {"color": "red", "tags": ["a"], "size": 1})  # default applied
        alpha = [m for m in w["metadata"]["managedFields"] if m["manager"] == "alpha"][0]
        self.assertEqual(alpha["fieldsV1"], {"f:spec": {"f:color": {}, "f:tags": {"v:\"a\"": {}}}})
        # A second manager adds a set item: both items stay.
        w = e.apply(path, self.widget("w1", {"tags": ["b"]}), manager="beta")
        self.assertEqual(sorted(w["spec"]["tags"]), ["a", "b"])
        # Same value, other manager: co-ownership, no conflict.
        e.apply(path, self.widget("w1", {"color": "red", "tags": ["b"]}), manager="beta")
        # Different value without force: 409 naming manager and field.
        st, _, out = e.request("PATCH", f"{path}?fieldManager=gamma", self.widget("w1", {"color": "blue"}),
                               ctype="application/apply-patch+yaml")
        self.assertEqual((st, out["reason"]), (409, "Conflict"))
        self.assertEqual(out["message"], 'Apply failed with 2 conflicts: conflicts with "alpha":\n- .spec.color\n'
                                         'conflicts with "beta":\n- .spec.color')
        self.assertEqual(sorted((c["field"], c["message"]) for c in out["details"]["causes"]),
                         [(".spec.color", 'conflict with "alpha"'), (".spec.color", 'conflict with "beta"')])
        # alpha stops applying color: beta still owns it, so it stays.
        w = e.apply(path, self.widget("w1", {"tags": ["a"]}), manager="alpha")
        self.assertEqual(w["spec"]["color"], "red")
        # beta stops too: nobody owns it any more, it is removed; its tag goes, alpha's stays.
        w = e.apply(path, self.widget("w1", {}), manager="beta")
        self.assertNotIn("color", w["spec"])
        self.assertEqual(w["spec"]["tags"], ["a"])
        # force takes ownership.
        e.apply(path, self.widget("w1", {"size": 3}), manager="gamma")
        st, _, out = e.request("PATCH", f"{path}?fieldManager=delta", self.widget("w1", {"size": 4}),
                               ctype="application/apply-patch+yaml")
        self.assertEqual(out["message"], 'Apply failed with 1 conflict: conflict with "gamma": .spec.size')
        w = e.apply(path, self.widget("w1", {"size": 4}), manager="delta", force=True)
        owners = {m["manager"]: m["fieldsV1"] for m in w["metadata"]["managedFields"]}
        self.assertNotIn("gamma", owners)  # its only field moved to delta
        self.assertEqual(owners["delta"], {"f:spec": {"f:size": {}}})
        # An Update manager (merge patch) is a conflict source too, printed with its apiVersion.
        e.ok("PATCH", f"{path}?fieldManager=editor", {"spec": {"color": "green"}}, ctype="application/merge-patch+json")
        st, _, out = e.request("PATCH", f"{path}?fieldManager=alpha", self.widget("w1", {"color": "pink"}),
                               ctype="application/apply-patch+yaml")
        self.assertIn('conflict with "editor" using test.kubeemu.dev/v1: .spec.color', out["message"])
        st, _, out = e.request("PATCH", path, self.widget("w1", {}), ctype="application/apply-patch+yaml")
        self.assertEqual(st, 422)  # fieldManager is required for apply

    def test_ssa_list_map_conditions_on_status(self):
        e = self.emu
        path = f"{WIDGETS}/w2"
        e.apply(path, self.widget("w2", {"size": 2}), manager="user")
        st = f"{path}/status"
        e.apply(st, self.widget("w2", status={"conditions": [{"type": "Ready", "status": "True"}]}), manager="ctrl-a")
        w = e.apply(st, self.widget("w2", status={"conditions": [{"type": "Synced", "status": "False"}]}), manager="ctrl-b")
        self.assertEqual([c["type"] for c in w["status"]["conditions"]], ["Ready", "Synced"])
        a = [m for m in w["metadata"]["managedFields"] if m["manager"] == "ctrl-a"][0]
        self.assertEqual(a["subresource"], "status")
        self.assertEqual(a["fieldsV1"], {"f:status": {"f:conditions": {
            'k:{"type":"Ready"}': {".": {}, "f:status": {}, "f:type": {}}}}})
        # ctrl-a changes its own condition; ctrl-b's is untouched.
        w = e.apply(st, self.widget("w2", status={"conditions": [{"type": "Ready", "status": "False", "reason": "Down"}]}),
                    manager="ctrl-a")
        self.assertEqual(w["status"]["conditions"], [{"type": "Ready", "status": "False", "reason": "Down"},
                                                     {"type": "Synced", "status": "False"}])
        # ctrl-b may not change ctrl-a's item without force.
        status, _, out = e.request("PATCH", f"{st}?fieldManager=ctrl-b",
                                   self.widget("w2", status={"conditions": [{"type": "Ready", "status": "True"}]}),
                                   ctype="application/apply-patch+yaml")
        self.assertEqual(status, 409)
        self.assertEqual(out["details"]["causes"][0]["field"], '.status.conditions[type="Ready"].status')
        self.assertEqual(out["details"]["causes"][0]["message"], 'conflict with "ctrl-a" with subresource "status"')
        # ctrl-a drops its condition: removed; spec never touched by /status.
        w = e.apply(st, self.widget("w2", status={"conditions": []}), manager="ctrl-a")
        self.assertEqual(w["status"]["conditions"], [{"type": "Synced", "status": "False"}])
        self.assertEqual(w["spec"]["size"], 2)
        status, _, out = e.request("PATCH", f"{st}?fieldManager=x",
                                   self.widget("w2", status={"conditions": [{"status": "True"}]}),
                                   ctype="application/apply-patch+yaml")
        self.assertEqual(status, 400)
        self.assertIn('omits key field "type"', out["message"])

    # -- schema: pruning, defaults, 422 ----------------------------------------------------------

    def test_pruning_defaults_and_validation_messages(self):
        e = self.emu
        p = e.ok("POST", POL, dict(policy("prune", bogus=1)), expect=201)
        self.assertNotIn("bogus", p["spec"])
        self.assertEqual(p["spec"]["subjectMatch"], "IndexOrPlatform")
        self.assertEqual(p["spec"]["maxReportedViolations"], 50)
        self.assertEqual(p["spec"]["recheckInterval"], "10m")
        self.assertEqual(p["spec"]["images"], {})
        self.assertEqual(p["spec"]["require"][0]["minCount"], 1)
        st, h, _ = e.request("POST", POL, policy("prune2", bogus=1))
        self.assertEqual(st, 201)
        self.assertIn('unknown field \\"spec.bogus\\"', h.get("warning", ""))
        st, _, out = e.request("POST", POL + "?fieldValidation=Strict", policy("prune3", bogus=1))
        self.assertEqual((st, out["message"]), (400, 'strict decoding error: unknown field "spec.bogus"'))
        st, _, out = e.request("PATCH", POL + "/prune4?fieldManager=t&fieldValidation=Strict", policy("prune4", bogus=1),
                               ctype="application/apply-patch+yaml")
        self.assertEqual(st, 400)
        self.assertIn(".spec.bogus: field not declared in schema", out["message"])

        def invalid(obj):
            st, _, out = e.request("POST", POL, obj)
            self.assertEqual((st, out["reason"]), (422, "Invalid"), out)
            return out

        out = invalid(policy("bad1", subjectMatch="Bogus"))
        self.assertEqual(out["message"], 'ReferrerPolicy.refwarden.dev "bad1" is invalid: spec.subjectMatch: Unsupported '
                                         'value: "Bogus": supported values: "Exact", "IndexOrPlatform"')
        self.assertEqual(out["details"]["causes"], [{"reason": "FieldValueNotSupported", "field": "spec.subjectMatch",
                                                     "message": 'Unsupported value: "Bogus": supported values: "Exact", '
                                                                '"IndexOrPlatform"'}])
        out = invalid(policy("bad2", maxReportedViolations=600))
        self.assertEqual(out["message"], 'ReferrerPolicy.refwarden.dev "bad2" is invalid: spec.maxReportedViolations: '
                                         'Invalid value: 600: spec.maxReportedViolations in body should be less than or '
                                         'equal to 500')
        out = invalid(policy("bad3", maxReportedViolations="x"))
        self.assertIn('spec.maxReportedViolations: Invalid value: "string": spec.maxReportedViolations in body must be '
                      'of type integer: "string"', out["message"])
        out = invalid(policy("bad4", require=[{"name": "Bad_Name", "preset": "signature"}]))
        self.assertIn('spec.require[0].name: Invalid value: "Bad_Name": spec.require[0].name in body should match '
                      "'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'", out["message"])
        obj = policy("bad5")
        del obj["spec"]["require"]
        out = invalid(obj)
        self.assertEqual(out["message"], 'ReferrerPolicy.refwarden.dev "bad5" is invalid: spec.require: Required value')
        out = invalid(policy("bad6", require=[]))
        self.assertIn("spec.require in body should have at least 1 items", out["message"])
        out = invalid(policy("bad7", subjectMatch="Bogus", maxReportedViolations=0))
        self.assertTrue(out["message"].startswith('ReferrerPolicy.refwarden.dev "bad7" is invalid: ['))
        self.assertEqual(len(out["details"]["causes"]), 2)
        obj = policy("Bad_Name")
        out = invalid(obj)
        self.assertIn("metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain", out["message"])
        # RegistryProfile sample: defaults, and a bad URL pattern.
        sample = load_yaml_docs(os.path.join(SAMPLES, "distribution.yaml"))[0]
        rp = e.apply(f"{RP}/distribution", sample, manager="kubectl")
        self.assertEqual(rp["spec"]["timeoutSeconds"], 30)
        bad = json.loads(json.dumps(sample))
        bad["metadata"]["name"] = "badurl"
        bad["spec"]["registryUrl"] = "ftp://x"
        st, _, out = e.request("POST", RP, bad)
        self.assertEqual(st, 422)
        self.assertIn('spec.registryUrl: Invalid value: "ftp://x": spec.registryUrl in body should match', out["message"])

    # -- watch -----------------------------------------------------------------------------------

    def test_watch_resource_version_bookmarks_timeout(self):
        e = self.emu
        base = "/api/v1/namespaces/default/configmaps"
        rv = e.ok("GET", base)["metadata"]["resourceVersion"]
        w = e.watch(f"{base}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=5")
        try:
            c = e.ok("POST", base, cm("watched"), expect=201)
            m = e.ok("PATCH", f"{base}/watched", {"data": {"a": "2"}}, ctype="application/merge-patch+json")
            e.ok("DELETE", f"{base}/watched")
            evs = w.collect(3)
            self.assertEqual([x["type"] for x in evs], ["ADDED", "MODIFIED", "DELETED"])
            self.assertEqual(evs[0]["object"]["metadata"]["resourceVersion"], c["metadata"]["resourceVersion"])
            self.assertEqual(evs[1]["object"]["metadata"]["resourceVersion"], m["metadata"]["resourceVersion"])
            self.assertGreater(int(evs[2]["object"]["metadata"]["resourceVersion"]), int(m["metadata"]["resourceVersion"]))
            self.assertEqual(evs[0]["object"]["kind"], "ConfigMap")
            t0 = time.monotonic()
            bm = w.next()
            while bm is not None and bm["type"] != "BOOKMARK":
                bm = w.next()
            self.assertEqual(bm["type"], "BOOKMARK")
            self.assertEqual(set(bm["object"]["metadata"]), {"resourceVersion", "creationTimestamp"})
            self.assertLess(time.monotonic() - t0, 3)
            while w.next() is not None:  # the stream ends at timeoutSeconds
                pass
        finally:
            w.close()
        # rv unset: synthetic ADDED for current objects.
        e.ok("POST", base, cm("existing", labels={"w": "init"}), expect=201)
        w = e.watch(f"{base}?watch=1&labelSelector=w%3Dinit&timeoutSeconds=2")
        first = w.next()
        w.close()
        self.assertEqual((first["type"], first["object"]["metadata"]["name"]), ("ADDED", "existing"))
        # Streaming list: initial events then the initial-events-end bookmark.
        w = e.watch(f"{base}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
                    f"&labelSelector=w%3Dinit&timeoutSeconds=2")
        evs = [w.next(), w.next()]
        w.close()
        self.assertEqual([x["type"] for x in evs], ["ADDED", "BOOKMARK"])
        self.assertEqual(evs[1]["object"]["metadata"]["annotations"], {"k8s.io/initial-events-end": "true"})
        # Metadata-only watch (kube-rs watch_metadata).
        w = e.watch(f"/api/v1/namespaces?watch=true&timeoutSeconds=2",
                    headers={"Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"})
        ev = w.next()
        w.close()
        self.assertEqual((ev["object"]["kind"], set(ev["object"])), ("PartialObjectMetadata", {"kind", "apiVersion", "metadata"}))

    def test_watch_selectors_enter_and_leave(self):
        e = self.emu
        base = "/api/v1/pods"
        rv = e.ok("GET", base)["metadata"]["resourceVersion"]
        sel = urllib.parse.quote("status.phase!=Succeeded,status.phase!=Failed")
        w = e.watch(f"{base}?watch=true&resourceVersion={rv}&fieldSelector={sel}&timeoutSeconds=5")
        try:
            e.ok("POST", "/api/v1/namespaces/default/pods", pod("phases"), expect=201)
            e.ok("PATCH", "/api/v1/namespaces/default/pods/phases/status", {"status": {"phase": "Running"}},
                 ctype="application/merge-patch+json")
            e.ok("PATCH", "/api/v1/namespaces/default/pods/phases/status", {"status": {"phase": "Succeeded"}},
                 ctype="application/merge-patch+json")
            evs = [x for x in w.collect(3) if x["object"]["metadata"]["name"] == "phases"]
            self.assertEqual([(x["type"], x["object"]["status"]["phase"]) for x in evs],
                             [("ADDED", "Pending"), ("MODIFIED", "Running"), ("DELETED", "Running")])
        finally:
            w.close()
        st, _, out = e.request("GET", f"{base}?fieldSelector=spec.bogus%3Dx")
        self.assertEqual((st, out["message"]), (400, "field label not supported: spec.bogus"))
        e.ok("DELETE", "/api/v1/namespaces/default/pods/phases")

    def test_watch_410_after_compaction(self):
        e = self.emu
        base = "/api/v1/namespaces/default/configmaps"
        old = e.ok("POST", base, cm("compact-me"), expect=201)["metadata"]["resourceVersion"]
        e.ok("PATCH", f"{base}/compact-me", {"data": {"b": "2"}}, ctype="application/merge-patch+json")
        e.control("POST", "/compact")
        w = e.watch(f"{base}?watch=true&resourceVersion={old}&timeoutSeconds=5")
        ev = w.next()
        end = w.next()
        w.close()
        self.assertEqual(w.status, 200)
        self.assertEqual(ev["type"], "ERROR")
        self.assertEqual((ev["object"]["kind"], ev["object"]["code"], ev["object"]["reason"]), ("Status", 410, "Expired"))
        self.assertTrue(ev["object"]["message"].startswith(f"too old resource version: {old} ("))
        self.assertIsNone(end)
        st, _, out = e.request("GET", f"{base}?resourceVersion={old}&resourceVersionMatch=Exact")
        self.assertEqual((st, out["reason"]), (410, "Expired"))
        # After a re-list, watching from the new resourceVersion works.
        rv = e.ok("GET", base)["metadata"]["resourceVersion"]
        w = e.watch(f"{base}?watch=true&resourceVersion={rv}&timeoutSeconds=3")
        e.ok("DELETE", f"{base}/compact-me")
        ev = w.next()
        w.close()
        self.assertEqual(ev["type"], "DELETED")

    def test_restart_drops_watches_and_forces_relist(self):
        e = self.emu
        base = "/api/v1/namespaces/default/configmaps"
        e.ok("POST", base, cm("survivor"), expect=201)
        rv = e.ok("GET", base)["metadata"]["resourceVersion"]
        w = e.watch(f"{base}?watch=true&resourceVersion={rv}&timeoutSeconds=30")
        t0 = time.monotonic()
        e.control("POST", "/restart")
        ended = False
        try:
            ended = w.next() is None
        except (http.client.IncompleteRead, ConnectionError, OSError, ValueError):
            ended = True  # dropped mid-stream, as a dying server does
        w.close()
        self.assertTrue(ended)
        self.assertLess(time.monotonic() - t0, 5)
        w = e.watch(f"{base}?watch=true&resourceVersion={rv}&timeoutSeconds=3")
        ev = w.next()
        w.close()
        self.assertEqual((ev["type"], ev["object"]["code"]), ("ERROR", 410))
        self.assertEqual(e.ok("GET", f"{base}/survivor")["metadata"]["name"], "survivor")  # state kept

    # -- pods: graceful deletion -----------------------------------------------------------------

    def test_graceful_pod_deletion(self):
        e = self.emu
        e.control("PUT", "/config", {"podGracePeriodSeconds": 1})
        try:
            base = "/api/v1/namespaces/default/pods"
            e.ok("POST", base, pod("graceful", grace=30), expect=201)
            rv = e.ok("GET", base)["metadata"]["resourceVersion"]
            w = e.watch(f"{base}?watch=true&resourceVersion={rv}&timeoutSeconds=8")
            try:
                t0 = time.monotonic()
                d = e.ok("DELETE", f"{base}/graceful")
                self.assertEqual(d["kind"], "Pod")  # still there, terminating
                self.assertEqual(d["metadata"]["deletionGracePeriodSeconds"], 1)
                evs = w.collect(2)
                self.assertEqual([x["type"] for x in evs], ["MODIFIED", "DELETED"])
                self.assertTrue(evs[0]["object"]["metadata"]["deletionTimestamp"])
                self.assertEqual(evs[0]["object"]["metadata"]["generation"], 2)
                elapsed = time.monotonic() - t0
                self.assertGreater(elapsed, 0.8)
                self.assertLess(elapsed, 4)
            finally:
                w.close()
            # Explicit gracePeriodSeconds=0: at once. No nodeName (never scheduled): at once too.
            for name, q, node in (("now", "?gracePeriodSeconds=0", "node-1"), ("unscheduled", "", None)):
                e.ok("POST", base, pod(name, node=node), expect=201)
                e.ok("DELETE", f"{base}/{name}{q}")
                self.assertEqual(e.request("GET", f"{base}/{name}")[0], 404)
        finally:
            e.control("PUT", "/config", {"podGracePeriodSeconds": None})

    def test_finalizers_and_namespace_termination(self):
        e = self.emu
        e.apply("/api/v1/namespaces/doomed", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}})
        ns = e.ok("GET", "/api/v1/namespaces/doomed")
        self.assertEqual(ns["metadata"]["labels"], {"kubernetes.io/metadata.name": "doomed"})
        e.ok("POST", "/api/v1/namespaces/doomed/configmaps", cm("inside", "doomed"), expect=201)
        fin = cm("held", "default")
        fin["metadata"]["finalizers"] = ["test/hold"]
        e.ok("POST", "/api/v1/namespaces/default/configmaps", fin, expect=201)
        d = e.ok("DELETE", "/api/v1/namespaces/default/configmaps/held")
        self.assertTrue(d["metadata"]["deletionTimestamp"])
        e.ok("PATCH", "/api/v1/namespaces/default/configmaps/held", {"metadata": {"finalizers": None}},
             ctype="application/merge-patch+json")
        self.assertEqual(e.request("GET", "/api/v1/namespaces/default/configmaps/held")[0], 404)
        d = e.ok("DELETE", "/api/v1/namespaces/doomed")
        self.assertEqual(d["status"]["phase"], "Terminating")
        st, _, out = e.request("POST", "/api/v1/namespaces/doomed/configmaps", cm("late", "doomed"))
        self.assertEqual(st, 403)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and e.request("GET", "/api/v1/namespaces/doomed")[0] != 404:
            time.sleep(0.1)
        self.assertEqual(e.request("GET", "/api/v1/namespaces/doomed")[0], 404)
        self.assertEqual(e.request("GET", "/api/v1/namespaces/doomed/configmaps/inside")[0], 404)

    # -- RBAC ------------------------------------------------------------------------------------

    def test_rbac_with_refwarden_manifests(self):
        e = self.emu
        e.apply("/api/v1/namespaces/refwarden-system",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "refwarden-system"}})
        for f in sorted(glob.glob(os.path.join(RBAC_DIR, "*.yaml"))):
            if os.path.basename(f) == "kustomization.yaml":
                continue
            for d in load_yaml_docs(f):
                res = {"Role": "roles", "RoleBinding": "rolebindings", "ClusterRole": "clusterroles",
                       "ClusterRoleBinding": "clusterrolebindings", "ServiceAccount": "serviceaccounts"}[d["kind"]]
                grp = "/api/v1" if d["kind"] == "ServiceAccount" else "/apis/rbac.authorization.k8s.io/v1"
                ns = d["metadata"].get("namespace")
                path = f"{grp}/namespaces/{ns}/{res}/{d['metadata']['name']}" if ns else f"{grp}/{res}/{d['metadata']['name']}"
                e.apply(path, d, manager="kubectl")
        e.ok("DELETE", "/_emulator/authz")

        def status(method, path, body=None, ctype=None):
            return e.request(method, path, body, token=SA_TOKEN, ctype=ctype)

        self.assertEqual(status("GET", "/api/v1/pods")[0], 200)
        self.assertEqual(status("GET", "/api/v1/namespaces")[0], 200)
        self.assertEqual(status("GET", f"{POL}?watch=true&timeoutSeconds=1")[0], 200)
        self.assertEqual(status("GET", "/api/v1/namespaces/refwarden-system/secrets/missing")[0], 404)  # get allowed
        st, _, out = status("GET", "/api/v1/secrets")
        self.assertEqual(st, 403)
        self.assertEqual(out["message"], f'secrets is forbidden: User "{SA_USER}" cannot list resource "secrets" in API '
                                         f'group "" at the cluster scope')
        self.assertEqual(out["details"], {"kind": "secrets"})
        st, _, out = status("GET", "/api/v1/namespaces/refwarden-system/secrets")
        self.assertEqual(out["message"], f'secrets is forbidden: User "{SA_USER}" cannot list resource "secrets" in API '
                                         f'group "" in the namespace "refwarden-system"')
        st, _, out = status("GET", "/apis/coordination.k8s.io/v1/namespaces/default/leases/l")
        self.assertEqual(out["message"], f'leases.coordination.k8s.io "l" is forbidden: User "{SA_USER}" cannot get '
                                         f'resource "leases" in API group "coordination.k8s.io" in the namespace "default"')
        self.assertEqual(status("GET", "/apis/coordination.k8s.io/v1/namespaces/refwarden-system/leases/l")[0], 404)
        e.ok("POST", POL, policy("rbac-pol"), expect=201)
        body = {"apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy", "metadata": {"name": "rbac-pol"},
                "status": {"observedGeneration": 1}}
        st, _, _ = e.request("PATCH", f"{POL}/rbac-pol/status?fieldManager=refwarden&force=true", body, token=SA_TOKEN,
                             ctype="application/apply-patch+yaml")
        self.assertEqual(st, 200)
        st, _, out = status("PUT", f"{POL}/rbac-pol/status", e.ok("GET", f"{POL}/rbac-pol"))
        self.assertEqual(out["message"], f'referrerpolicies.refwarden.dev "rbac-pol" is forbidden: User "{SA_USER}" cannot '
                                         f'update resource "referrerpolicies/status" in API group "refwarden.dev" at the '
                                         f'cluster scope')
        ev = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "rbac-pol.1", "namespace": "default"},
              "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "refwarden", "reportingInstance": "x",
              "action": "Evaluate", "reason": "Evaluated", "type": "Normal",
              "regarding": {"kind": "ReferrerPolicy", "name": "rbac-pol", "apiVersion": "refwarden.dev/v1alpha1"}}
        self.assertEqual(status("POST", "/apis/events.k8s.io/v1/namespaces/default/events", ev)[0], 201)
        self.assertEqual(status("DELETE", "/api/v1/namespaces/default/pods/x")[0], 403)
        self.assertEqual(e.request("GET", "/api/v1/pods", token="alice-token")[0], 403)
        log = e.ok("GET", "/_emulator/authz")["items"]
        mine = [x for x in log if x["user"] == SA_USER]
        self.assertTrue(all({"verb", "apiGroup", "resource", "subresource", "namespace", "name", "allowed"} <= set(x)
                            for x in mine))
        denied = {(x["verb"], x["resource"], x["subresource"], x["namespace"]) for x in mine if not x["allowed"]}
        self.assertEqual(denied, {("list", "secrets", "", ""), ("list", "secrets", "", "refwarden-system"),
                                  ("get", "leases", "", "default"), ("update", "referrerpolicies", "status", ""),
                                  ("delete", "pods", "", "default")})
        status_patch = [x for x in mine if x["verb"] == "patch" and x["subresource"] == "status"][0]
        self.assertTrue(status_patch["allowed"])
        self.assertEqual(status_patch["name"], "rbac-pol")
        # SelfSubjectAccessReview as kubectl auth can-i sends it.
        ssar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {"verb": "watch", "resource": "pods", "group": ""}}}
        st, _, out = e.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", ssar, token=SA_TOKEN)
        self.assertEqual((st, out["status"]["allowed"]), (201, True))

    # -- faults ----------------------------------------------------------------------------------

    def test_fault_injection(self):
        e = self.emu
        rule = e.ok("POST", "/_emulator/faults", {"method": "GET", "path": "^/api/v1/namespaces$", "count": 2,
                                                  "status": 429, "headers": {"Retry-After": "1"}}, expect=201)
        for _ in range(2):
            st, h, out = e.request("GET", "/api/v1/namespaces")
            self.assertEqual((st, h.get("retry-after"), out["reason"], out["details"]["retryAfterSeconds"]),
                             (429, "1", "TooManyRequests", 1))
        self.assertEqual(e.request("GET", "/api/v1/namespaces")[0], 200)
        self.assertEqual(e.ok("GET", "/_emulator/faults")["items"], [])
        self.assertTrue(rule["id"])
        e.ok("POST", POL, policy("faulty"), expect=201)
        e.ok("POST", "/_emulator/faults", {"method": "PATCH", "path": "/referrerpolicies/", "subresource": "status",
                                           "status": 500, "count": 1}, expect=201)
        body = {"apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy", "metadata": {"name": "faulty"}}
        self.assertEqual(e.request("PATCH", f"{POL}/faulty?fieldManager=x", body, ctype="application/apply-patch+yaml")[0], 200)
        st, _, out = e.request("PATCH", f"{POL}/faulty/status?fieldManager=x", body, ctype="application/apply-patch+yaml")
        self.assertEqual((st, out["reason"]), (500, "InternalError"))
        self.assertEqual(e.request("PATCH", f"{POL}/faulty/status?fieldManager=x", body, ctype="application/apply-patch+yaml")[0], 200)
        e.ok("POST", "/_emulator/faults", {"method": "PUT", "path": "faulty", "status": 409, "count": 1}, expect=201)
        st, _, out = e.request("PUT", f"{POL}/faulty", e.ok("GET", f"{POL}/faulty"))
        self.assertEqual((st, out["reason"], out["details"]["name"]), (409, "Conflict", "faulty"))
        log = e.ok("GET", "/_emulator/requests")["items"]
        last = [x for x in log if x["method"] == "PUT" and "faulty" in x["path"]][-1]
        self.assertEqual(last["status"], 409)
        self.assertEqual(last["user"], "admin")

    # -- leases (kube-lease-manager) -------------------------------------------------------------

    def test_lease_ssa_locking_flow(self):
        """The exact requests of kube-lease-manager 0.13 (state.rs), with two candidates."""
        e = self.emu
        e.apply("/api/v1/namespaces/leases-test", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "leases-test"}})
        base = "/apis/coordination.k8s.io/v1/namespaces/leases-test/leases"
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "leader"}, "spec": {}}
        results = []

        def create():
            results.append(e.request("POST", base + "?", lease)[0])

        ts = [threading.Thread(target=create) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(10)
        self.assertEqual(sorted(results), [201, 409])
        st, _, out = e.request("POST", base, lease)
        self.assertEqual(out["reason"], "AlreadyExists")

        def lock(identity, now):
            return e.request("PATCH", f"{base}/leader?&fieldManager=lease-{identity}",
                             {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                              "spec": {"acquireTime": now, "renewTime": now, "holderIdentity": identity,
                                       "leaseDurationSeconds": 15}},
                             ctype="application/apply-patch+yaml")

        def smp(identity, spec):
            return e.request("PATCH", f"{base}/leader?&fieldManager=lease-{identity}",
                             {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "spec": spec},
                             ctype="application/strategic-merge-patch+json")

        self.assertEqual(lock("a", "2026-01-01T00:00:00.000001Z")[0], 200)
        st, _, out = lock("b", "2026-01-01T00:00:00.000002Z")
        self.assertEqual((st, out["reason"], out["code"]), (409, "Conflict", 409))
        self.assertEqual({c["field"] for c in out["details"]["causes"]},
                         {".spec.acquireTime", ".spec.renewTime", ".spec.holderIdentity"})
        self.assertEqual(smp("a", {"leaseTransitions": 1})[0], 200)
        self.assertEqual(smp("a", {"renewTime": "2026-01-01T00:00:10.000000Z", "leaseDurationSeconds": 15})[0], 200)
        # b still cannot lock while a holds it (now a's Update manager owns renewTime too).
        st, _, out = lock("b", "2026-01-01T00:00:11.000000Z")
        self.assertEqual(st, 409)
        self.assertIn('"lease-a" using coordination.k8s.io/v1', out["message"])
        # a releases (nulls through strategic merge): the fields go, and so does their ownership.
        st, _, out = smp("a", {"acquireTime": None, "renewTime": None, "holderIdentity": None, "leaseDurationSeconds": None})
        self.assertEqual(st, 200)
        self.assertEqual(out["spec"], {"leaseTransitions": 1})
        st, _, out = lock("b", "2026-01-01T00:00:20.000000Z")
        self.assertEqual((st, out["spec"]["holderIdentity"]), (200, "b"))
        # Expired holder: a force-releases by strategic merge (an Update: never a conflict), then locks.
        self.assertEqual(smp("a", {"acquireTime": None, "renewTime": None, "holderIdentity": None,
                                   "leaseDurationSeconds": None})[0], 200)
        st, _, out = lock("a", "2026-01-01T00:01:00.000000Z")
        self.assertEqual((st, out["spec"]["holderIdentity"]), (200, "a"))
        managers = {(m["manager"], m["operation"]) for m in out["metadata"]["managedFields"]}
        self.assertIn(("lease-a", "Apply"), managers)
        self.assertNotIn(("lease-b", "Apply"), managers)

    # -- events (kube-runtime Recorder) ----------------------------------------------------------

    def test_events_recorder_flow(self):
        e = self.emu
        base = "/apis/events.k8s.io/v1/namespaces/default/events"
        ev = {"apiVersion": "events.k8s.io/v1", "kind": "Event",
              "metadata": {"name": "distribution.18b3c5a1f2e3d4c5"},  # namespace from the URL (cluster-scoped object)
              "eventTime": "2026-01-01T00:00:00.123456Z", "action": "Probe", "reason": "ProbeSucceeded",
              "note": "registry probed", "type": "Normal", "reportingController": "refwarden",
              "reportingInstance": "pod-a",
              "regarding": {"apiVersion": "refwarden.dev/v1alpha1", "kind": "RegistryProfile", "name": "distribution",
                            "uid": "u1"}}
        created = e.ok("POST", base, ev, expect=201)
        self.assertEqual(created["metadata"]["namespace"], "default")
        repeat = dict(ev, series={"count": 2, "lastObservedTime": "2026-01-01T00:01:00.000000Z"})
        patched = e.ok("PATCH", f"{base}/distribution.18b3c5a1f2e3d4c5", repeat, ctype="application/merge-patch+json")
        self.assertEqual(patched["series"]["count"], 2)
        core = e.ok("GET", "/api/v1/namespaces/default/events/distribution.18b3c5a1f2e3d4c5")
        self.assertEqual((core["apiVersion"], core["message"], core["involvedObject"]["name"], core["reportingComponent"]),
                         ("v1", "registry probed", "distribution", "refwarden"))
        st, _, out = e.request("POST", base, dict(ev, metadata={"name": "noaction"}, action=None))
        self.assertEqual(st, 422)
        self.assertIn("action: Required value", out["message"])

    # -- CRD lifecycle ---------------------------------------------------------------------------

    def test_crd_deletion_removes_custom_resources(self):
        e = self.emu
        crd = json.loads(json.dumps(WIDGET_CRD))
        crd["metadata"]["name"] = "gadgets.test.kubeemu.dev"
        crd["spec"]["names"] = {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"}
        out = e.apply("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.test.kubeemu.dev", crd)
        conds = {c["type"]: c["status"] for c in out["status"]["conditions"]}
        self.assertEqual(conds, {"NamesAccepted": "True", "Established": "True"})
        g = "/apis/test.kubeemu.dev/v1/namespaces/default/gadgets"
        e.ok("POST", g, {"apiVersion": "test.kubeemu.dev/v1", "kind": "Gadget", "metadata": {"name": "g1"}}, expect=201)
        e.ok("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.test.kubeemu.dev")
        self.assertEqual(e.request("GET", f"{g}/g1")[0], 404)
        bad = json.loads(json.dumps(crd))
        bad["metadata"]["name"] = "wrong.name"
        st, _, out = e.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", bad)
        self.assertEqual(st, 422)

    # -- kubectl as an independent client --------------------------------------------------------

    def test_kubectl(self):
        if not os.access(KUBECTL, os.X_OK):
            self.skipTest(f"{KUBECTL} missing: run scripts/install-deps.sh")
        emu = Emulator("--anonymous-admin", "--bookmark-interval", "0.5")
        try:
            env = dict(os.environ, KUBECONFIG=emu.kubeconfig, HOME=emu.dir)

            def kubectl(*args, timeout=20, check=True, stdin=None):
                p = subprocess.run([KUBECTL, *args], env=env, capture_output=True, text=True, timeout=timeout,
                                   input=stdin)
                if check and p.returncode != 0:
                    raise AssertionError(f"kubectl {' '.join(args)}: {p.returncode}\n{p.stdout}\n{p.stderr}")
                return p

            out = kubectl("apply", "--server-side", "-f", CRDS).stdout
            self.assertIn("customresourcedefinition.apiextensions.k8s.io/registryprofiles.refwarden.dev serverside-applied", out)
            self.assertIn("No resources found", kubectl("get", "registryprofiles").stderr)
            out = kubectl("apply", "--server-side", "-f", os.path.join(SAMPLES, "distribution.yaml")).stdout
            self.assertIn("registryprofile.refwarden.dev/distribution serverside-applied", out)
            out = kubectl("get", "registryprofiles").stdout
            self.assertRegex(out, r"NAME\s+URL\s+REFERRERS\s+SCORE\s+MODE\s+READY\s+AGE")
            self.assertIn("http://registry.registry.svc.cluster.local:5000", out)
            got = json.loads(kubectl("get", "registryprofile", "distribution", "-o", "json").stdout)
            self.assertEqual(got["spec"]["timeoutSeconds"], 30)
            # Strict field validation by the server (kubectl's default).
            bad = "apiVersion: refwarden.dev/v1alpha1\nkind: RegistryProfile\nmetadata: {name: bad}\nspec: {registryUrl: 'https://r.example', bogus: 1}\n"
            p = kubectl("apply", "--server-side", "-f", "-", stdin=bad, check=False)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("field not declared in schema", p.stderr)
            # Re-applying the same file changes nothing.
            rv = got["metadata"]["resourceVersion"]
            kubectl("apply", "--server-side", "-f", os.path.join(SAMPLES, "distribution.yaml"))
            self.assertEqual(json.loads(kubectl("get", "registryprofile", "distribution", "-o", "json").stdout)
                             ["metadata"]["resourceVersion"], rv)

            # get --watch, bounded by --request-timeout: sees a change made meanwhile.
            w = subprocess.Popen([KUBECTL, "get", "registryprofiles", "--watch", "--request-timeout=3s", "-o", "name"],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(1.0)
            kubectl("label", "registryprofile", "distribution", "watched=yes")
            try:
                wout, _ = w.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                w.kill()
                wout, _ = w.communicate(timeout=5)
            self.assertGreaterEqual(wout.count("registryprofile.refwarden.dev/distribution"), 2)

            # RBAC through impersonation: kubectl auth can-i --as the controller's ServiceAccount.
            kubectl("apply", "--server-side", "-f", "-", stdin="apiVersion: v1\nkind: Namespace\nmetadata: {name: refwarden-system}\n")
            for f in sorted(glob.glob(os.path.join(RBAC_DIR, "*.yaml"))):
                if os.path.basename(f) != "kustomization.yaml":
                    kubectl("apply", "--server-side", "-f", f)
            sa = ["--as", SA_USER]
            self.assertEqual(kubectl("auth", "can-i", "watch", "pods", "--all-namespaces", *sa).stdout.strip(), "yes")
            self.assertEqual(kubectl("auth", "can-i", "patch", "referrerpolicies.refwarden.dev", "--subresource=status",
                                     *sa).stdout.strip(), "yes")
            p = kubectl("auth", "can-i", "list", "secrets", "-n", "refwarden-system", *sa, check=False)
            self.assertEqual(p.stdout.strip(), "no")
            p = kubectl("get", "secrets", "-A", *sa, check=False)
            self.assertIn(f'secrets is forbidden: User "{SA_USER}" cannot list resource "secrets" in API group "" at the '
                          f'cluster scope', p.stderr)
        finally:
            emu.stop()


class ShutdownTest(unittest.TestCase):
    def test_sigterm_with_open_watch_and_state_dir(self):
        state = tempfile.mkdtemp(prefix="kubeemu-state-")
        try:
            emu = Emulator("--state-dir", state)
            emu.ok("POST", "/api/v1/namespaces/default/configmaps", cm("persisted"), expect=201)
            w = emu.watch("/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=60", timeout=10)
            self.assertEqual(w.next()["type"], "ADDED")
            t0 = time.monotonic()
            code = emu.stop(timeout=10)
            self.assertEqual(code, 0)
            self.assertLess(time.monotonic() - t0, 6)
            w.close()
            emu2 = Emulator("--state-dir", state)
            try:
                self.assertEqual(emu2.ok("GET", "/api/v1/namespaces/default/configmaps/persisted")["data"], {"a": "1"})
            finally:
                emu2.stop()
        finally:
            shutil.rmtree(state, ignore_errors=True)

    def test_small_history_window_expires_old_versions(self):
        emu = Emulator("--history-limit", "3")
        try:
            base = "/api/v1/namespaces/default/configmaps"
            first = emu.ok("POST", base, cm("h0"), expect=201)["metadata"]["resourceVersion"]
            for i in range(1, 6):
                emu.ok("POST", base, cm(f"h{i}"), expect=201)
            w = emu.watch(f"{base}?watch=true&resourceVersion={first}&timeoutSeconds=3")
            ev = w.next()
            w.close()
            self.assertEqual((ev["type"], ev["object"]["code"]), ("ERROR", 410))
            state = emu.ok("GET", "/_emulator/state")
            self.assertEqual(state["historySize"], 3)
        finally:
            emu.stop()


if __name__ == "__main__":
    unittest.main()
