"""A test session that is killed leaves nothing running (reaper.py).

A pytest session of its own (session_holder.py) starts a mock API, a
sender in flight, and the private MariaDB and FerretDB when mysql and
mongodb are among the backends of this run; then it is SIGKILLed, so no
atexit handler and no fixture teardown runs.  Within a few seconds no
process may be left that names their directories, none of their pids may
be alive, and the servers' temporary directories must be gone.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import reaper
from conftest import _backend_names, killed_on_exit, wait_for

HERE = Path(__file__).resolve().parent


def alive(pid):
    """True while any thread of pid is not dead (a zombie is dead)."""
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return False
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            return True
    return False


def held_servers():
    """The backends whose server the session starts: ours to kill."""
    names = ["sqlite"]
    if "mysql" in _backend_names():
        names.append("mysql")
    if "mongodb" in _backend_names() and not os.environ.get(
            "MONGODB_TEST_URI"):
        names.append("mongodb")
    return names


def test_killed_session_leaves_nothing_running(tmp_path):
    held_file = tmp_path / "held.json"
    log = tmp_path / "session.log"
    env = dict(os.environ, SENDER_TEST_HOLD=str(held_file),
               SENDER_TEST_BACKENDS=",".join(held_servers()))
    held = {"dirs": [], "removed": [], "pids": []}
    with open(log, "wb") as f:
        p = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "--basetemp", str(tmp_path / "session"), "session_holder.py"],
            cwd=HERE, env=env, stdin=subprocess.DEVNULL, stdout=f,
            stderr=subprocess.STDOUT)
    try:
        with killed_on_exit(p):
            assert wait_for(lambda: held_file.exists() or
                            p.poll() is not None, 300, step=0.1)
            if not held_file.exists() and p.poll() == 0:
                # a server that is not there skips, as in the other tests
                pytest.skip("the session skipped: %s" %
                            log.read_text().strip()[-500:])
            assert held_file.exists(), \
                "the session did not start:\n%s" % log.read_text()
            held = json.loads(held_file.read_text())
            assert all(alive(pid) for pid in held["pids"]), held
            assert len(held["removed"]) == len(held_servers()) - 1, held
            os.kill(p.pid, signal.SIGKILL)
            p.wait()

        def nothing_left():
            return not (reaper.processes_naming(held["dirs"]) or
                        any(alive(pid) for pid in held["pids"]))
        assert wait_for(nothing_left, 10, step=0.05), \
            "10 s after the session was killed, still running: %s" % (
                reaper.processes_naming(held["dirs"]) or
                [pid for pid in held["pids"] if alive(pid)])
        assert wait_for(lambda: not any(os.path.exists(d)
                                        for d in held["removed"]), 5), \
            "left behind: %s" % [d for d in held["removed"]
                                 if os.path.exists(d)]
    finally:
        # whatever the outcome, this test leaves nothing either
        reaper.kill_naming(held["dirs"])
        for d in held["removed"]:
            shutil.rmtree(d, ignore_errors=True)
