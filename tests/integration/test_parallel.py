"""SPEC 3, 6, 7: concurrency, parallel runs, signals and --reclaim."""

import signal
import time

import pytest

from conftest import (SUMMARY_RE, assert_json_summary, assert_no_claims,
                      finish, killed_on_exit, result_of, wait_for,
                      write_letters)


def test_parallel_runs_send_each_id_once(store, sender, mock, tmp_path):
    """4 runs at once on files of store.many ids (2,000) that overlap by
    half: every id is POSTed exactly once in all, and recorded once."""
    m = mock("--latency-ms", 2)
    w = store.many
    files = [write_letters(tmp_path / ("p%d.xml" % k),
                           range(k * w // 2, k * w // 2 + w))
             for k in range(4)]
    all_ids = set(range(0, 5 * w // 2))
    procs = [sender.popen([f, "--json"], api_url=m.url) for f in files]
    results = [finish(*p) for p in procs]

    for r in results:
        # 1: "claimed by another run" when a run met an id that another
        # run had in flight.
        assert r.code in (0, 1), r
    posts = m.posts_per_id()
    twice = {i: n for i, n in posts.items() if n != 1}
    assert not twice, "ids POSTed more than once: %s" % dict(
        list(twice.items())[:20])
    missing = all_ids - set(posts)
    assert not missing, "%d ids never POSTed (%s...); mock %s; the runs:" \
        "\n%s" % (len(missing), sorted(missing)[:10],
                  "alive" if m.proc.poll() is None else
                  "exited %s" % m.proc.returncode, "\n".join(results))
    rows = store.rows()
    assert set(rows) == all_ids
    assert all(st == 1 for ts, st in rows.values())
    assert_no_claims(store)

    sums = [assert_json_summary(r, letters=w) for r in results]
    for s in sums:
        assert s["delivered"] + s["skipped"] == w, s
        assert s["deferred"] == 0 and s["requests"] == s["delivered"], s
    assert sum(s["delivered"] for s in sums) == len(all_ids)

    # Nothing left to do: a run over all files skips everything, exit 0.
    r = sender.run(files + ["--json"], api_url=m.url)
    assert r.code == 0, r
    assert_json_summary(r, letters=4 * w, skipped=4 * w, requests=0)


@pytest.mark.parametrize("j,n,latency", [(1, 30, 10), (64, 1000, 20)])
def test_concurrency_limit(store, sender, mock, tmp_path, j, n, latency):
    m = mock("--latency-ms", latency)
    path = write_letters(tmp_path / "a.xml", range(1, n + 1))
    r = sender.run([path, "-j", j, "--json"], api_url=m.url)
    assert r.code == 0, r
    assert m.posts_per_id() == {i: 1 for i in range(1, n + 1)}
    assert_json_summary(r, letters=n, delivered=n, requests=n)
    st = m.stats()
    assert 1 <= st["max_in_flight"] <= j, st
    assert len(store.rows()) == n


def test_busy_api_is_not_hammered(store, sender, mock, tmp_path):
    """The API takes 4 requests at a time (30 ms each) and answers 503 at
    once to the rest; the sender may keep 64 in flight.

    Bound: a client that stayed at 64 in flight would keep ~60 letters
    cycling between an instant 503 and a backoff of at most 50 ms (mean
    ~25 ms) for the whole run, which lasts at least 300 / 4 * 30 ms =
    2.25 s: about 60 * 2.25 / 0.025 = 5,400 503s, i.e. ~18 per letter.
    A client that shrinks its window on 503 (whatever the rule: halving,
    minus one, once per round trip or per answer) pays for the first
    burst (< 64) and then about one 503 per probe, at most about one per
    letter.  3 per letter (900) sits well between the two, so it neither
    fails a sane adaptive client on a slow machine nor lets a
    non-adapting one pass.  Measured on the 2-core dev machine: a naive
    client (64 threads, same backoff, no window) caused 5,050 503s; the
    sender 150."""
    n = 300
    m = mock("--capacity", 4, "--latency-ms", 30)
    path = write_letters(tmp_path / "a.xml", range(1, n + 1))
    r = sender.run([path, "-j", 64, "--json"], api_url=m.url,
                   max_attempts=50, timeout=30)
    assert r.code == 0, r
    reqs = m.requests()
    busy = sum(q.status == 503 for q in reqs)
    assert {q.id for q in reqs if q.status == 200} == set(range(1, n + 1))
    assert busy <= 3 * n, "%d 503 answers for %d letters" % (busy, n)
    assert_json_summary(r, letters=n, delivered=n, requests=len(reqs))
    assert all(st == 1 for ts, st in store.rows().values())


def test_window_grows_back(store, sender, mock, tmp_path):
    """After a burst of 503s the window shrinks; once the API answers
    again it grows back: later in the run more than a few requests are in
    flight at once again (sampled from the mock while the run goes on)."""
    m = mock("--burst-503", 32, "--latency-ms", 50)
    n = 400
    path = write_letters(tmp_path / "a.xml", range(1, n + 1))
    p, out, err = sender.popen([path, "-j", 16], api_url=m.url,
                               max_attempts=40)
    peak_after_burst = 0
    with killed_on_exit(p):
        while p.poll() is None:
            st = m.stats()
            if st["requests"] >= 32 + 100:
                peak_after_burst = max(peak_after_burst, st["in_flight"])
            time.sleep(0.02)
    r = result_of(p, out, err)
    assert r.code == 0, r
    assert peak_after_burst >= 4, \
        "window never grew back: peak %d in flight" % peak_after_burst


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143),
                                      (signal.SIGINT, 130)])
def test_signal_stops_cleanly(store, sender, mock, tmp_path, sig, code):
    m = mock("--latency-ms", 300)
    n = 200
    path = write_letters(tmp_path / "a.xml", range(1, n + 1))
    p, out, err = sender.popen([path, "-j", 4, "--json"], api_url=m.url)
    with killed_on_exit(p):
        assert wait_for(lambda: m.stats()["in_flight"] >= 2, 30), \
            "no request in flight"
        time.sleep(0.1)
        p.send_signal(sig)
        p.wait(timeout=30)
    r = result_of(p, out, err)
    assert r.code == code, r
    assert wait_for(lambda: m.stats()["in_flight"] == 0, 10)
    posted = {q.id for q in m.requests()}
    assert 0 < len(posted) < n, r
    rows = store.rows()
    # The requests in flight were finished and recorded; nothing else.
    assert set(rows) == posted, (sorted(set(rows) ^ posted), r)
    assert all(ts is not None and st == 1 for ts, st in rows.values())
    assert_no_claims(store, r)
    # design: how the letters read but not sent are counted is left open.
    s = assert_json_summary(r, consistent=False, delivered=len(posted))
    assert s["requests"] == len(m.requests())

    # The rest is sent by the next run.
    r2 = sender.run([path, "--json"], api_url=m.url)
    assert r2.code == 0, r2
    assert_json_summary(r2, letters=n, delivered=n - len(posted),
                        skipped=len(posted))
    assert max(m.posts_per_id().values()) == 1


def test_signal_while_reading_counts_each_letter_read_once(store, sender,
                                                          mock, tmp_path):
    """A claim batch is read a slice a turn while requests are out; a signal
    can come while one is half read.  Its letters were never claimed and
    count as not read: every letter counted has exactly one outcome, all
    that was posted is recorded, and no claim is left."""
    # -j 512 reads batches of 2,048 (16 slices).  The third wave of 512
    # starts about 2 s in, with 512 letters left ready: the next batch
    # is read then, a slice every turn of the loop, and with every answer
    # a second away a turn is the loop's 100 ms wait: 1.6 s of reading.
    m = mock("--latency-ms", 1000)
    n = 6000
    path = write_letters(tmp_path / "a.xml", range(1, n + 1))
    p, out, err = sender.popen([path, "-j", 512, "--json"], api_url=m.url)
    with killed_on_exit(p):
        assert wait_for(lambda: m.stats()["requests"] > 1024, 60), \
            "the third wave never started"
        time.sleep(0.4)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
    r = result_of(p, out, err)
    assert r.code == 143, r
    posted = m.posts_per_id()
    assert max(posted.values()) == 1, r
    assert set(store.rows()) == set(posted), r
    assert_no_claims(store, r)
    s = assert_json_summary(r, delivered=len(posted))
    assert s["letters"] < n, r


def test_signal_summary_on_stderr(store, sender, mock, tmp_path):
    m = mock("--latency-ms", 300)
    path = write_letters(tmp_path / "a.xml", range(1, 101))
    p, out, err = sender.popen([path, "-j", 2], api_url=m.url)
    with killed_on_exit(p):
        assert wait_for(lambda: m.stats()["in_flight"] >= 1, 30)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    r = result_of(p, out, err)
    assert r.code == 143, r
    assert SUMMARY_RE.search(r.err), r


def test_sigkill_leaves_claims_and_reclaim_sends_them(store, sender, mock,
                                                      tmp_path):
    n = 20
    path = write_letters(tmp_path / "a.xml", range(1, n + 1))
    slow = mock("--latency-ms", 3000)
    p, out, err = sender.popen([path, "-j", 4], api_url=slow.url)
    try:
        assert wait_for(lambda: slow.stats()["in_flight"] >= 1, 30)
        time.sleep(0.2)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    claimed = store.claimed_ids()
    assert claimed, "no claim left by a killed run (claims not durable?)"

    # Without --reclaim the claims belong to "another run": skipped, exit 1.
    m = mock()
    r = sender.run([path, "--json"], api_url=m.url)
    assert r.code == 1, r
    sent = set(m.posts_per_id())
    assert not (sent & claimed), "claimed ids sent without --reclaim"
    assert sent == set(range(1, n + 1)) - claimed
    s = assert_json_summary(r, letters=n, delivered=n - len(claimed))
    assert s["skipped"] == len(claimed), r
    assert store.claimed_ids() == claimed

    m2 = mock()
    r2 = sender.run([path, "--reclaim", "--json"], api_url=m2.url)
    assert r2.code == 0, r2
    assert m2.posts_per_id() == {i: 1 for i in claimed}, r2
    assert_json_summary(r2, letters=n, delivered=len(claimed),
                        skipped=n - len(claimed))
    assert_no_claims(store, r2)
    rows = store.rows()
    assert set(rows) == set(range(1, n + 1))
    assert all(st == 1 for ts, st in rows.values())
