"""SPEC 6, 7: a run stopped at any point loses nothing and sends nothing
twice.

Each test stops one run of N letters at one point of its life, given as
the number of POSTs the mock API has received (0: before the first one,
while the store is opened and the first batch claimed), then checks from
the mock's log and the store, per id:

  - SIGTERM / SIGINT: every id POSTed at most once and recorded once; a
    second run sends exactly the rest; nothing stays claimed.
  - SIGKILL, and a second signal during the drain: at most one POST per
    id before --reclaim; what stays claimed is exactly the in-doubt set
    (claimed, not recorded), the next run counts it and says so (exit 1)
    without sending it; --reclaim sends exactly that set, once.  In the
    end every id is recorded, and only in-doubt ids that had really been
    POSTed before the kill were POSTed twice (at-least-once, README).

Run for every backend of the suite (the `store` fixture).
"""

import os
import re
import signal
import time
from collections import Counter

import pytest

from conftest import (assert_json_summary, assert_no_claims, killed_on_exit,
                      result_of, wait_for, write_letters)

N = 240
# POSTs received by the API when the signal comes: before any, the first,
# inside the first claim batch, across batches, near the end.
POINTS = [0, 1, 30, 120, 230]


def catches(pid, sig):
    """True once process pid has a handler for sig (/proc SigCgt)."""
    if sig == signal.SIGKILL:
        return True
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except OSError:
        pass
    return False


def start_and_stop_at(sender, m, path, after, sigs, gap=0.0, extra=""):
    """Start a run on path, wait until the mock has received `after` POSTs,
    send the signals in sigs (gap seconds apart), wait for the end."""
    p, out, err = sender.popen([path, "-j", 8, "--json"], api_url=m.url,
                               extra=extra)
    with killed_on_exit(p):
        if after > 0:
            assert wait_for(lambda: m.stats()["requests"] >= after, 60), \
                "the run never reached %d POSTs" % after
        else:
            # Point 0: as soon as sender catches signals, before it has
            # opened the store (a signal before exec'd code runs kills
            # any program).
            if os.environ.get("SENDER_VALGRIND") and \
                    sigs[0] != signal.SIGKILL:
                p.kill()
                pytest.skip("under valgrind, which catches every signal "
                            "from its start, point 0 cannot be seen")
            assert wait_for(lambda: catches(p.pid, sigs[0]), 10)
        for k, sig in enumerate(sigs):
            if k:
                time.sleep(gap)
            if p.poll() is None:
                p.send_signal(sig)
        p.wait(timeout=60)
    return p, out, err


def done_ids(store):
    return {i for i, (ts, st) in store.rows().items() if ts is not None}


def settled_rows(store, timeout=10):
    """The store's rows once two reads 0.2 s apart agree.  A run killed
    while its store worker was writing leaves the server finishing that
    last command (a MongoDB update, a COMMIT already received): the
    records move from claimed to done for a moment after the kill."""
    rows = store.rows()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        again = store.rows()
        if again == rows:
            break
        rows = again
    return rows


def check_in_doubt_then_reclaim(store, sender, mock, path, first):
    """After a run that left claims: the store against the first run's
    POSTs, then a plain run and a --reclaim run; returns all POSTs."""
    ids = set(range(1, N + 1))
    posted = first.posts_per_id()
    assert not posted or max(posted.values()) == 1, \
        "an id POSTed twice by one run"
    rows = settled_rows(store)  # one snapshot for both sets
    claimed = {i for i, (ts, st) in rows.items() if ts is None and st is None}
    done = {i for i, (ts, st) in rows.items() if ts is not None}
    assert not (claimed & done)
    # Every record of the run is backed by its POST; every POST that
    # has no record is still claimed (in doubt), none was released.
    assert done <= set(posted), sorted(done - set(posted))[:10]
    assert set(posted) - done <= claimed, \
        sorted(set(posted) - done - claimed)[:10]

    # A plain run sends the rest, counts the held claims and exits 1.
    m2 = mock()
    r2 = sender.run([path, "--json"], api_url=m2.url)
    sent2 = m2.posts_per_id()
    assert set(sent2) == ids - claimed - done, r2
    assert not sent2 or max(sent2.values()) == 1, r2
    if claimed:
        assert r2.code == 1, r2
        m = re.search(r"(\d+) letters are claimed by another run", r2.err)
        assert m and int(m.group(1)) == len(claimed), r2
    else:
        assert r2.code == 0, r2
    assert_json_summary(r2, letters=N, delivered=len(sent2),
                        skipped=len(claimed) + len(done))
    assert store.claimed_ids() == claimed

    # --reclaim takes over exactly the in-doubt ids, and sends each once.
    m3 = mock()
    r3 = sender.run([path, "--reclaim", "--json"], api_url=m3.url)
    assert r3.code == 0, r3
    assert m3.posts_per_id() == Counter({i: 1 for i in claimed}), r3
    assert_no_claims(store, r3)
    rows = store.rows()
    assert set(rows) == ids
    assert all(ts is not None and st == 1 for ts, st in rows.values())
    total = posted + sent2 + m3.posts_per_id()
    twice = {i for i, n in total.items() if n > 1}
    # At least once for in-doubt ids, exactly once for all others.
    assert twice <= claimed & set(posted)
    assert max(total.values()) <= 2
    assert set(total) == ids


@pytest.mark.parametrize("after", POINTS)
def test_sigkill_at_many_points(store, sender, mock, tmp_path, after):
    path = write_letters(tmp_path / "a.xml", range(1, N + 1))
    m = mock("--latency-ms", 20)
    p, out, err = start_and_stop_at(sender, m, path, after, [signal.SIGKILL])
    assert p.returncode == -signal.SIGKILL
    check_in_doubt_then_reclaim(store, sender, mock, path, m)


@pytest.mark.parametrize("after", POINTS)
@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143),
                                      (signal.SIGINT, 130)])
def test_signal_at_many_points(store, sender, mock, tmp_path, after, sig,
                               code):
    path = write_letters(tmp_path / "a.xml", range(1, N + 1))
    m = mock("--latency-ms", 20)
    p, out, err = start_and_stop_at(sender, m, path, after, [sig])
    assert p.returncode in (code, 0), p.returncode
    posted = m.posts_per_id()
    assert not posted or max(posted.values()) == 1
    # The drain recorded every POST, released every other claim.
    assert done_ids(store) == set(posted)
    assert_no_claims(store)

    m2 = mock()
    r2 = sender.run([path, "--json"], api_url=m2.url)
    assert r2.code == 0, r2
    assert set(m2.posts_per_id()) == set(range(1, N + 1)) - set(posted)
    total = posted + m2.posts_per_id()
    assert total == Counter({i: 1 for i in range(1, N + 1)})
    assert_no_claims(store, r2)


@pytest.mark.parametrize("after", [1, 20])
def test_second_signal_during_drain(store, sender, mock, tmp_path, after):
    """SIGTERM then SIGINT while slow requests are in flight: the run exits
    at once with the first signal's status (143), says how many letters
    it abandoned in flight (in doubt), and with [retry] in_doubt = hold
    keeps exactly those claimed for --reclaim."""
    path = write_letters(tmp_path / "a.xml", range(1, N + 1))
    # Answers slow enough that the drain is still waiting for them when
    # the second signal comes.
    m = mock("--latency-ms", 400)
    p, out, err = start_and_stop_at(sender, m, path, after,
                                    [signal.SIGTERM, signal.SIGINT],
                                    gap=0.05,
                                    extra="[retry]\nin_doubt = hold\n")
    assert p.returncode == 143, p.returncode
    r = result_of(p, out, err)
    in_flight = len(store.claimed_ids())
    assert in_flight > 0, r
    m2 = re.search(r"(\d+) letters are in doubt", r.err)
    assert m2 and int(m2.group(1)) == in_flight, r
    check_in_doubt_then_reclaim(store, sender, mock, path, m)
