"""Not collected by the suite: test_session_cleanup.py runs this file in
a pytest session of its own, which it then kills.

The one test starts what a session may leave running: a mock API, a
sender in flight on it, and the private server of every backend in
$SENDER_TEST_BACKENDS; it writes their directories and pids to the JSON
file $SENDER_TEST_HOLD ("dirs", "removed": the servers' own directories,
"pids") and waits to be killed.
"""

import json
import os
import time
from pathlib import Path

from conftest import BACKENDS, Sender, SqliteStore, write_letters


def test_hold(mock, tmp_path):
    slow = mock("--latency-ms", 60000)
    local = SqliteStore(tmp_path)
    local.setup()
    letters = write_letters(tmp_path / "a.xml", [1, 2])
    run, _, _ = Sender(local, tmp_path).popen([letters], api_url=slow.url,
                                              timeout=600)
    held = {"dirs": [str(tmp_path)], "removed": [],
            "pids": [slow.proc.pid, run.pid]}
    for name in os.environ["SENDER_TEST_BACKENDS"].split(","):
        server = getattr(BACKENDS[name], "server", None)
        if server is None:
            continue
        BACKENDS[name](tmp_path).setup()  # starts the server
        held["dirs"].append(str(server.dir))
        held["removed"].append(str(server.dir))
        held["pids"].append(server.pid())
    target = Path(os.environ["SENDER_TEST_HOLD"])
    part = target.with_name(target.name + ".part")
    part.write_text(json.dumps(held))
    part.rename(target)
    time.sleep(600)
