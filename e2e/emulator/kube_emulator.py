#!/usr/bin/env python3
"""Kubernetes API emulator for refwarden's tests: the real Kubernetes HTTP API on 127.0.0.1, plain HTTP.

    python3 e2e/emulator/kube_emulator.py --port 0 --port-file /tmp/kube.port \\
        [--state-dir DIR] [--kubeconfig-out PATH] [--token admin] \\
        [--sa-token refwarden-system:refwarden:sa-token] [--sa-kubeconfig-out PATH] \\
        [--user-token TOKEN:USER[:GROUP,GROUP]] [--anonymous-admin] [--pod-grace-period 1]

Stops cleanly on SIGTERM / SIGINT. See README.md next to this file.
"""
import argparse
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kubeemu import rbac  # noqa: E402
from kubeemu.api import Api, Config  # noqa: E402
from kubeemu.control import Control  # noqa: E402
from kubeemu.resources import Registry  # noqa: E402
from kubeemu.server import serve  # noqa: E402
from kubeemu.store import Store  # noqa: E402


def write_atomic(path, text):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def kubeconfig(server, token, user="admin"):
    return (
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        "- name: kubeemu\n"
        "  cluster:\n"
        f"    server: {server}\n"
        "contexts:\n"
        "- name: kubeemu\n"
        "  context:\n"
        "    cluster: kubeemu\n"
        f"    user: {user}\n"
        "current-context: kubeemu\n"
        "users:\n"
        f"- name: {user}\n"
        "  user:\n"
        f"    token: {token}\n"
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = ephemeral")
    p.add_argument("--port-file", help="written with the port once listening")
    p.add_argument("--state-dir", help="load state.json from here at start, save it at stop")
    p.add_argument("--kubeconfig-out", help="write a kubeconfig for the admin token here")
    p.add_argument("--sa-kubeconfig-out", help="write a kubeconfig for the first --sa-token here")
    p.add_argument("--token", default="admin", help="admin bearer token (user admin, group system:masters)")
    p.add_argument("--sa-token", action="append", default=[], metavar="NS:NAME:TOKEN",
                   help="token of ServiceAccount NS/NAME (repeatable)")
    p.add_argument("--user-token", action="append", default=[], metavar="TOKEN:USER[:GROUP,GROUP]",
                   help="token of a user with groups (repeatable)")
    p.add_argument("--bookmark-interval", type=float, default=10.0, help="seconds between watch BOOKMARKs")
    p.add_argument("--default-watch-timeout", type=int, default=300)
    p.add_argument("--max-watch-timeout", type=int, default=600)
    p.add_argument("--history-limit", type=int, default=100000, help="retained watch events")
    p.add_argument("--pod-grace-period", type=int, default=None,
                   help="override of pods' terminationGracePeriodSeconds on delete")
    p.add_argument("--anonymous", action="store_true", help="requests without a token are system:anonymous")
    p.add_argument("--anonymous-admin", action="store_true",
                   help="requests without credentials are the admin (kubectl never sends a token over plain http)")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)

    store = Store(history_limit=args.history_limit)
    state_file = None
    if args.state_dir:
        os.makedirs(args.state_dir, exist_ok=True)
        state_file = os.path.join(args.state_dir, "state.json")
        if os.path.exists(state_file):
            store.load(state_file)
    config = Config()
    config.bookmark_interval = max(0.1, args.bookmark_interval)
    config.default_watch_timeout = args.default_watch_timeout
    config.max_watch_timeout = args.max_watch_timeout
    config.pod_grace_override = args.pod_grace_period
    config.anonymous = args.anonymous
    if args.anonymous_admin:
        config.anonymous_user = {"username": "admin", "groups": [rbac.MASTERS, "system:authenticated"]}
    authn = rbac.Authenticator()
    authn.add(args.token, "admin", [rbac.MASTERS])
    for spec in args.sa_token:
        ns, name, tok = spec.split(":", 2)
        u = rbac.service_account_user(ns, name)
        authn.add(tok, u["username"], u["groups"])
    for spec in args.user_token:
        parts = spec.split(":", 2)
        groups = parts[2].split(",") if len(parts) > 2 and parts[2] else []
        authn.add(parts[0], parts[1], groups)
    api = Api(store, Registry(), authn, config)
    Control(api, state_file)

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def on_listening(port):
        server = f"http://{args.host}:{port}"
        if args.kubeconfig_out:
            write_atomic(args.kubeconfig_out, kubeconfig(server, args.token))
        if args.sa_kubeconfig_out and args.sa_token:
            ns, name, tok = args.sa_token[0].split(":", 2)
            write_atomic(args.sa_kubeconfig_out, kubeconfig(server, tok, user=f"{ns}-{name}"))
        if args.port_file:
            write_atomic(args.port_file, f"{port}\n")
        sys.stderr.write(f"kubeemu: listening on {server}\n")
        sys.stderr.flush()

    def on_stop():
        if state_file:
            store.save(state_file)

    serve(api, args.host, args.port, verbose=args.verbose, on_listening=on_listening, stop_event=stop, on_stop=on_stop)
    sys.stderr.write("kubeemu: stopped\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
