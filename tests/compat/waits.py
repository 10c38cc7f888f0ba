"""The polling wait the compatibility suites share (cluster.py, eos_helpers.py): it polls until a
condition holds and fails only after a generous deadline, never on wall-clock time alone."""

import time

DEADLINE = 60  # seconds any single wait may take before the test fails


def wait_for(condition, what, timeout=DEADLINE, interval=0.2, details=None):
    """Polls `condition()` until it is truthy and returns its value; an exception counts as not
    yet (a broker may be down or between states). On timeout, an AssertionError names `what` and
    the last exception, followed by `details()` if given (e.g. the brokers' log tails)."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - a broker may be between states
            last = e
        time.sleep(interval)
    message = "timed out waiting for %s (last error: %r)" % (what, last)
    raise AssertionError(message + "\n" + details() if details else message)
