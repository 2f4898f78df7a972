"""The HTTP/1.1 server: keep-alive, chunked watch streams, connection tracking, bounded clean shutdown."""
import http.server
import socket
import socketserver
import sys
import threading
import time

from .api import Request
from .util import dumps
from .watch import RESTARTED

_local = threading.local()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kubeemu/1.0"
    sys_version = ""
    timeout = 300  # idle keep-alive connections end after 5 minutes

    def setup(self):
        super().setup()
        _local.sock = self.connection
        self.server.track(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("kubeemu: %s - %s\n" % (self.address_string(), fmt % args))

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            total = 0
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    break
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:
                        trailer = self.rfile.readline(65537)
                        if trailer in (b"\r\n", b"\n", b""):
                            break
                    break
                total += size
                if total > 64 * 1024 * 1024:
                    raise ValueError("request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        if n > 64 * 1024 * 1024:
            raise ValueError("request body too large")
        return self.rfile.read(n) if n > 0 else b""

    def _handle(self):
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        req = Request(self.command, self.path, dict(self.headers.items()), body, self.client_address[0])
        resp = self.server.api.handle(req)
        try:
            if resp.stream is not None:
                self._stream(resp)
            else:
                self.send_response(resp.status)
                for k, v in resp.headers.items():
                    self.send_header(k, v)
                self.send_header("Cache-Control", "no-cache, private")
                self.send_header("Content-Length", str(len(resp.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(resp.body)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
            self.close_connection = True

    def _stream(self, resp):
        self.send_response(resp.status)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

        def write(obj):
            data = (dumps(obj) + "\n").encode("utf-8")
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        result = resp.stream(write)
        if result is RESTARTED or self.server.stopping.is_set():
            # An API server that goes away does not finish its responses.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, api, verbose=False):
        super().__init__(addr, Handler)
        self.api = api
        self.verbose = verbose
        self.conns = set()
        self.conns_lock = threading.Lock()
        self.stopping = threading.Event()
        api.on_restart = self.drop_connections_except_current

    def track(self, c):
        with self.conns_lock:
            self.conns.add(c)

    def untrack(self, c):
        with self.conns_lock:
            self.conns.discard(c)

    def drop_connections(self, keep=None):
        with self.conns_lock:
            conns = [c for c in self.conns if c is not keep]
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def drop_connections_except_current(self):
        self.drop_connections(keep=getattr(_local, "sock", None))


def serve(api, host, port, verbose=False, on_listening=None, stop_event=None, reaper_interval=0.1,
          on_stop=None, shutdown_timeout=5.0):
    """Runs until ``stop_event`` is set; every wait is bounded."""
    srv = Server((host, port), api, verbose)
    actual = srv.server_address[1]
    api.server_address = f"{host}:{actual}"
    stop_event = stop_event or threading.Event()
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, name="kubeemu-http", daemon=True)
    t.start()

    def reaper():
        while not stop_event.is_set():
            try:
                api.reap()
            except Exception as e:  # noqa: BLE001 - keep reaping
                sys.stderr.write(f"kubeemu: reaper: {e}\n")
            stop_event.wait(reaper_interval)

    r = threading.Thread(target=reaper, name="kubeemu-reaper", daemon=True)
    r.start()
    if on_listening:
        on_listening(actual)
    while not stop_event.wait(0.5):
        pass
    # Shutdown: stop accepting, end watches, drop connections, join (bounded).
    srv.stopping.set()
    api.server_stop.set()
    api.store.stop()
    srv.shutdown()
    srv.drop_connections()
    deadline = time.monotonic() + shutdown_timeout
    t.join(max(0.0, deadline - time.monotonic()))
    r.join(max(0.0, deadline - time.monotonic()))
    srv.server_close()
    if on_stop:
        on_stop()
    return actual
