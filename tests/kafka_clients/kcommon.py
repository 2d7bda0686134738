"""Shared bits of the helper scripts the Kafka-client tests run.

Every script prints one JSON object per line on standard output (flushed at
once, so the test sees events as they happen), reports failures on standard
error and exits non-zero, and gives up after its own deadline so it never
hangs a test.
"""

import json
import sys
import time


def emit(event, **fields):
    """Prints one JSON line: {"event": event, ...fields}."""
    fields["event"] = event
    sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


def fail(message, code=1):
    """Reports a failure on stderr (and as a JSON line) and exits."""
    emit("fatal", error=message)
    sys.stderr.write("%s: %s\n" % (sys.argv[0], message))
    sys.stderr.flush()
    sys.exit(code)


class Deadline:
    """A point in time after which a script gives up (exit code 2)."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self):
        return self.end - time.monotonic()

    def passed(self):
        return self.left() <= 0

    def check(self, what):
        if self.passed():
            fail("deadline of %.0f s passed while %s" % (self.seconds, what), code=2)


def text(data):
    """bytes (or None) as str (or None), for JSON."""
    if data is None:
        return None
    if isinstance(data, bytes):
        return data.decode("utf-8", "backslashreplace")
    return str(data)


def headers_out(headers):
    """Client headers (list of (name, bytes)) as [[name, str], ...]."""
    return [[name, text(value)] for name, value in (headers or [])]


def read_records(stream):
    """Records to produce, one JSON object a line:
    {"key": str|null, "value": str, "headers": [[name, value], ...], "partition": int}
    (all but "value" optional)."""
    records = []
    for number, line in enumerate(stream, 1):
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError as err:
            fail("stdin line %d is not JSON (%s): %r" % (number, err, line))
        if "value" not in record:
            fail("stdin line %d has no value: %r" % (number, line))
        records.append(record)
    return records


def encode(value):
    return None if value is None else value.encode("utf-8")


def headers_in(record):
    return [(name, encode(value)) for name, value in record.get("headers") or []]


def run(main):
    """Runs a script's main(): any client exception becomes one clear
    failure line and exit code 1 (argparse and fail() exit on their own)."""
    try:
        main()
    except KeyboardInterrupt:
        fail("interrupted")
    except Exception as err:  # noqa: BLE001 - every client error ends the script the same way
        fail("%s: %s" % (type(err).__name__, err))
