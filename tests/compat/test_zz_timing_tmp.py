import time, sys
sys.path.insert(0, "/work/main/tests/compat")
import pytest
import group_helpers as gh
import test_groups_classic as tc
pytestmark = pytest.mark.broker_overrides(*gh.GROUP_OVERRIDES)
T0 = time.monotonic()
def stamp(msg): print("%6.2f %s" % (time.monotonic() - T0, msg), flush=True)
def test_x(broker):
    for name in ["committed", "committed_after_restart", "poll_until", "describe_group", "produce", "create_topic"]:
        orig = getattr(tc, name)
        def wrap(*a, _o=orig, _n=name, **k):
            stamp("start " + _n); r = _o(*a, **k); stamp("end " + _n); return r
        setattr(tc, name, wrap)
    for m in ["stop", "start", "kill"]:
        orig = getattr(broker, m)
        def wrapb(*a, _o=orig, _n=m, **k):
            stamp("start broker." + _n); r = _o(*a, **k); stamp("end broker." + _n); return r
        setattr(broker, m, wrapb)
    tc.test_committed_offsets_and_groups_survive_a_broker_restart_and_a_kill(broker)
