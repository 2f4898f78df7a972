"""The /_emulator/... control API for test harnesses (same port, a system:masters token required).

See ../README.md for every endpoint with its body and answer.
"""
import re

from .util import ApiError, decode_json


def _since(req):
    s = req.q("since")
    try:
        return int(s) if s else 0
    except ValueError:
        raise ApiError.bad_request("since must be an integer") from None


class Control:
    def __init__(self, api, state_file=None):
        self.api = api
        self.state_file = state_file
        api.control = self

    def _config(self):
        c = self.api.config
        return {"podGracePeriodSeconds": c.pod_grace_override, "bookmarkIntervalSeconds": c.bookmark_interval,
                "defaultWatchTimeoutSeconds": c.default_watch_timeout, "maxWatchTimeoutSeconds": c.max_watch_timeout,
                "historyLimit": self.api.store.history_limit, "anonymous": c.anonymous,
                "anonymousAdmin": c.anonymous_user is not None}

    def handle(self, req, user):
        from .api import Response

        api = self.api
        store = api.store
        p = req.path.rstrip("/")
        m = req.method
        body = {}
        if req.body and req.body.strip() and m in ("POST", "PUT", "PATCH"):
            body = decode_json(req.body)
            if not isinstance(body, dict):
                raise ApiError.bad_request("control bodies are JSON objects")

        if p == "/_emulator/healthz" and m == "GET":
            return Response(200, {"ok": True, "resourceVersion": str(store.rv)})
        if p == "/_emulator/state" and m == "GET":
            with store.cond:
                st = {"resourceVersion": str(store.rv), "compactedResourceVersion": str(store.compacted),
                      "historySize": len(store.history), "openWatches": len(store.watchers),
                      "restartGeneration": store.gen, "pendingDeletions": [
                          {"storage": "/".join(k[0]), "namespace": k[1], "name": k[2]} for k in api.pending],
                      "config": self._config()}
            return Response(200, st)

        if p == "/_emulator/faults":
            if m == "POST":
                try:
                    rule = api.faults.add(body)
                except (re.error, ValueError, TypeError) as e:
                    raise ApiError.bad_request(f"invalid fault: {e}") from None
                return Response(201, rule)
            if m == "GET":
                return Response(200, {"items": api.faults.list()})
            if m == "DELETE":
                api.faults.clear()
                return Response(200, {"items": []})
        mm = re.fullmatch(r"/_emulator/faults/(\d+)", p)
        if mm and m == "DELETE":
            api.faults.delete(int(mm.group(1)))
            return Response(200, {"items": api.faults.list()})

        if p == "/_emulator/compact" and m == "POST":
            rv = store.compact()
            return Response(200, {"compactedResourceVersion": str(rv)})
        if p == "/_emulator/restart" and m == "POST":
            rv = store.restart()
            if body.get("closeConnections", True) and api.on_restart is not None:
                api.on_restart()
            return Response(200, {"resourceVersion": str(rv), "restartGeneration": store.gen})

        if p == "/_emulator/config":
            if m in ("PUT", "POST", "PATCH"):
                c = api.config
                if "podGracePeriodSeconds" in body:
                    v = body["podGracePeriodSeconds"]
                    c.pod_grace_override = None if v is None else max(0, int(v))
                if "bookmarkIntervalSeconds" in body:
                    c.bookmark_interval = max(0.1, float(body["bookmarkIntervalSeconds"]))
                if "defaultWatchTimeoutSeconds" in body:
                    c.default_watch_timeout = max(1, int(body["defaultWatchTimeoutSeconds"]))
                if "maxWatchTimeoutSeconds" in body:
                    c.max_watch_timeout = max(1, int(body["maxWatchTimeoutSeconds"]))
                if "historyLimit" in body:
                    store.history_limit = max(1, int(body["historyLimit"]))
                if "anonymous" in body:
                    c.anonymous = bool(body["anonymous"])
                if "anonymousAdmin" in body:
                    c.anonymous_user = ({"username": "admin", "groups": ["system:masters", "system:authenticated"]}
                                        if body["anonymousAdmin"] else None)
            return Response(200, self._config())

        if p == "/_emulator/requests":
            if m == "GET":
                since = _since(req)
                return Response(200, {"items": [e for e in api.log.all() if e["seq"] > since]})
            if m == "DELETE":
                api.log.reset()
                return Response(200, {"items": []})
        if p == "/_emulator/authz":
            if m == "GET":
                entries = api.authz.entries()
                since = _since(req)
                return Response(200, {"items": [dict(e, seq=i + 1) for i, e in enumerate(entries) if i + 1 > since]})
            if m == "DELETE":
                api.authz.reset()
                return Response(200, {"items": []})
        if p == "/_emulator/logs/reset" and m == "POST":
            api.log.reset()
            api.authz.reset()
            return Response(200, {"ok": True})

        if p == "/_emulator/tokens":
            if m == "POST":
                tok, username = body.get("token"), body.get("username")
                if not tok or not username:
                    raise ApiError.bad_request("token and username are required")
                api.authn.add(tok, username, body.get("groups") or [], body.get("uid"))
                return Response(201, {"token": tok, "username": username,
                                      "groups": api.authn.authenticate("Bearer " + tok)["groups"]})
            if m == "GET":
                return Response(200, {"items": api.authn.users()})
        mm = re.fullmatch(r"/_emulator/tokens/(.+)", p)
        if mm and m == "DELETE":
            api.authn.remove(mm.group(1))
            return Response(200, {"ok": True})
        if p == "/_emulator/serviceaccount-tokens" and m == "POST":
            ns, name, tok = body.get("namespace"), body.get("name"), body.get("token")
            if not ns or not name or not tok:
                raise ApiError.bad_request("namespace, name and token are required")
            from .rbac import service_account_user

            u = service_account_user(ns, name)
            api.authn.add(tok, u["username"], u["groups"])
            return Response(201, {"token": tok, **u})

        if p == "/_emulator/save" and m == "POST":
            if not self.state_file:
                raise ApiError.bad_request("the emulator was started without --state-dir")
            store.save(self.state_file)
            return Response(200, {"saved": self.state_file})

        raise ApiError(404, "NotFound", f"no control endpoint {m} {p}", {})
