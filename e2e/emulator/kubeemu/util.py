"""Shared helpers: API errors as metav1.Status, timestamps, JSON/YAML decoding, deep copies."""
import copy
import datetime
import json
import time

try:  # PyYAML: only needed for apply bodies that are YAML rather than JSON.
    import yaml  # type: ignore
except ImportError:  # pragma: no cover - PyYAML is installed by scripts/install-deps.sh
    yaml = None


def now_rfc3339():
    """metav1.Time: second precision, UTC."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro():
    """metav1.MicroTime: microsecond precision, UTC."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339_in(seconds):
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def parse_time(s):
    """Parses an RFC 3339 timestamp (Z or offset, optional fraction) into epoch seconds, or None."""
    if not isinstance(s, str):
        return None
    try:
        t = s.replace("Z", "+00:00")
        return datetime.datetime.fromisoformat(t).timestamp()
    except ValueError:
        return None


def deepcopy(o):
    return copy.deepcopy(o)


def dumps(o):
    return json.dumps(o, separators=(",", ":"), ensure_ascii=False)


def go_quote(s):
    """Go's %q for a string (close enough: JSON escaping)."""
    return json.dumps(s, ensure_ascii=False)


def go_value(v):
    """How apimachinery's field.Error prints a bad value (simple types plainly, strings quoted)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)
    if isinstance(v, str):
        return go_quote(v)
    if isinstance(v, list):
        return "[]interface {}{" + ", ".join(go_inner(x) for x in v) + "}"
    if isinstance(v, dict):
        return "map[string]interface {}{" + ", ".join(f"{go_quote(k)}:{go_inner(x)}" for k, x in sorted(v.items())) + "}"
    return str(v)


def go_inner(v):
    if isinstance(v, (bool, int, float, str)) or v is None:
        if v is None:
            return "interface {}(nil)"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return go_quote(v)
        if isinstance(v, int):
            return f"{v}"
        return f"{v}"
    return go_value(v)


def decode_json(body):
    try:
        return json.loads(body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ApiError.bad_request(f"error decoding JSON: {e}") from None


def decode_yaml(body):
    """YAML or JSON (JSON is YAML); PyYAML is used only when the body is not JSON."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, (bytes, bytearray)) else body
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    if yaml is None:
        raise ApiError.bad_request("error decoding YAML: PyYAML is not installed, send JSON")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ApiError.bad_request(f"error decoding YAML: {e}") from None


def qualified_resource(group, resource):
    """schema.GroupResource.String(): ``pods``, ``leases.coordination.k8s.io``."""
    return f"{resource}.{group}" if group else resource


def qualified_kind(group, kind):
    return f"{kind}.{group}" if group else kind


class ApiError(Exception):
    """An API error answered as a metav1.Status (code, reason, message, details)."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self):
        s = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            s["details"] = self.details
        return s

    # Constructors named after k8s.io/apimachinery/pkg/api/errors.

    @classmethod
    def not_found(cls, group, resource, name):
        return cls(404, "NotFound", f"{qualified_resource(group, resource)} {go_quote(name)} not found",
                   {"name": name, "group": group, "kind": resource} if group else {"name": name, "kind": resource})

    @classmethod
    def path_not_found(cls):
        return cls(404, "NotFound", "the server could not find the requested resource", {})

    @classmethod
    def already_exists(cls, group, resource, name):
        d = {"name": name, "kind": resource}
        if group:
            d["group"] = group
        return cls(409, "AlreadyExists", f"{qualified_resource(group, resource)} {go_quote(name)} already exists", d)

    @classmethod
    def conflict(cls, group, resource, name, why):
        d = {"name": name, "kind": resource}
        if group:
            d["group"] = group
        return cls(409, "Conflict",
                   f"Operation cannot be fulfilled on {qualified_resource(group, resource)} {go_quote(name)}: {why}", d)

    @classmethod
    def invalid(cls, group, kind, name, errors):
        """errors: list of (field, cause_type, body) as apimachinery field.Error."""
        causes = [{"reason": t, "message": body, "field": f} for f, t, body in errors]
        msgs = [f"{f}: {body}" if f else body for f, t, body in errors]
        agg = msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"
        d = {"name": name, "kind": kind, "causes": causes}
        if group:
            d["group"] = group
        return cls(422, "Invalid", f"{qualified_kind(group, kind)} {go_quote(name)} is invalid: {agg}", d)

    @classmethod
    def bad_request(cls, message):
        return cls(400, "BadRequest", message)

    @classmethod
    def method_not_allowed(cls):
        return cls(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})

    @classmethod
    def unsupported_media_type(cls, content_type, accepted):
        return cls(415, "UnsupportedMediaType",
                   f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}")

    @classmethod
    def unauthorized(cls):
        return cls(401, "Unauthorized", "Unauthorized")

    @classmethod
    def gone(cls, message):
        return cls(410, "Expired", message)

    @classmethod
    def timeout(cls, message, retry_after=1, causes=None):
        d = {"retryAfterSeconds": retry_after}
        if causes:
            d["causes"] = causes
        return cls(504, "Timeout", message, d)

    @classmethod
    def internal(cls, message):
        return cls(500, "InternalError", f"Internal error occurred: {message}",
                   {"causes": [{"message": message}]})


# Reason and default message per HTTP status, for injected faults.
STATUS_REASONS = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "Unauthorized"),
    403: ("Forbidden", "forbidden: injected fault"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    409: ("Conflict", "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again"),
    410: ("Expired", "too old resource version"),
    422: ("Invalid", "the object is invalid"),
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: injected fault"),
    502: ("InternalError", "Bad Gateway"),
    503: ("ServiceUnavailable", "The server is currently unable to handle the request"),
    504: ("Timeout", "Timeout: request did not complete within the allowed duration"),
}


def monotonic():
    return time.monotonic()
