"""Issue 14 (SPEC 8): bad settings fail fast, answers are judged whole,
letters in doubt are reported, secrets and hostile text never leak."""

import email.utils
import json
import os
import re
import sqlite3
import stat
import time

import pytest

from conftest import (assert_json_summary, assert_no_claims,
                      closed_port_url, result_of, run_sender, wait_for,
                      write_config, write_letters, write_raw)


def only_sqlite(store):
    if store.name != "sqlite":
        pytest.skip("about the sqlite backend")


def sqlite_rows(store):
    db = sqlite3.connect("file:%s?mode=ro" % store.path, uri=True)
    try:
        return {i: (ts, st, err) for i, ts, st, err in db.execute(
            "SELECT id, ts, delivery_status, error FROM results")}
    finally:
        db.close()


# ------------------------------------------------------------ 1. API URL

BAD_URLS = ["not a url", "htp://127.0.0.1/api.php", "",
            "file:///etc/passwd", "dict://127.0.0.1:9/x",
            "ftp://127.0.0.1/x", "http://"]


@pytest.mark.parametrize("url", BAD_URLS)
def test_bad_api_url_is_exit_2_before_any_claim(store, sender, tmp_path,
                                                 url):
    path = write_letters(tmp_path / "a.xml", range(1, 4))
    r = sender.run([path, "--api-url", url, "--json"],
                   api_url="http://127.0.0.1:1/api.php", run_timeout=30)
    assert r.code == 2, r
    assert r.seconds < 5, r
    assert store.untouched(), r
    assert "'url' of section [api]" in r.err and "--api-url" in r.err, r
    assert "root:" not in r.err and "root:" not in r.out, r
    obj = r.json()
    assert obj["exit"] == 2 and "[api]" in obj["error"], r


def test_bad_api_url_names_file_line_and_env(store, sender, tmp_path):
    path = write_letters(tmp_path / "a.xml", [1])
    cfg = sender.config("htp://example.com/api.php")
    cfgpath = write_config(cfg, tmp_path)
    r = sender.run([path], config=cfgpath)
    assert r.code == 2, r
    assert "%s:2:" % cfgpath in r.err, r
    r = sender.run([path], config=cfgpath,
                   env={"SENDER_API_URL": "gopher://example.com/"})
    assert r.code == 2 and "SENDER_API_URL" in r.err, r
    assert store.untouched(), r


# ------------------------------------------------- 2. answers judged whole

def test_long_200_body_is_an_error_not_delivered(store, sender, mock,
                                                 tmp_path):
    m = mock("--answer", "1=200:1" + " " * 5000 + "NOT-OK")
    path = write_letters(tmp_path / "a.xml", [1, 2])
    r = sender.run([path, "--json"], api_url=m.url)
    assert r.code == 0, r
    s = r.json()
    assert s["delivered"] == 1 and s["errors"] == 1, r
    rows = store.rows()
    assert rows[1][0] is not None and rows[1][1] is None, rows
    assert rows[2][1] == 1
    assert "longer than" in r.err, r


def test_long_503_page_is_still_retried(store, sender, mock, tmp_path):
    """Only a success must be judged whole: a proxy's long 503 page is
    still a busy answer, retried."""
    m = mock("--answer", "1=503:" + "<p>busy</p>" * 1000)
    path = write_letters(tmp_path / "a.xml", [1])
    r = sender.run([path, "--json"], api_url=m.url, max_attempts=3)
    assert m.posts_per_id()[1] == 3, r
    assert r.json()["deferred"] == 1, r


def test_header_flood_is_an_error_not_retried(store, sender, mock, tmp_path):
    m = mock("--header-flood", 400000)
    path = write_letters(tmp_path / "a.xml", [1])
    r = sender.run([path, "--json"], api_url=m.url, max_attempts=8)
    assert m.posts_per_id()[1] == 1, r
    s = r.json()
    assert s["errors"] == 1 and s["requests"] == 1, r
    assert "headers longer than" in r.err, r
    assert_no_claims(store, r)


# ------------------------------------------------------ 3. letters in doubt

IN_DOUBT_HOLD = "[retry]\nin_doubt = hold\n"


def test_timeout_after_send_is_in_doubt_and_released(store, sender, mock,
                                                      tmp_path):
    m = mock("--latency-ms", 3000)
    path = write_letters(tmp_path / "a.xml", [1, 2])
    r = sender.run([path, "--json"], api_url=m.url, timeout=1,
                   max_attempts=2)
    assert r.code == 1, r
    s = r.json()
    assert s["in_doubt"] == 2 and s["deferred"] == 2, r
    assert re.search(r"id 1: in doubt", r.err), r
    assert re.search(r"id 2: in doubt", r.err), r
    assert "2 letters are in doubt" in r.err, r
    assert_no_claims(store, r)        # resend: released for a later run
    assert m.posts_per_id() == {1: 2, 2: 2}


def test_in_doubt_hold_keeps_the_claim_for_reclaim(store, sender, mock,
                                                   tmp_path):
    m = mock("--latency-ms", 3000)
    path = write_letters(tmp_path / "a.xml", [1, 2])
    cfg = sender.config(m.url, timeout=1, max_attempts=5,
                        extra=IN_DOUBT_HOLD)
    r = sender.run([path, "--json"], config=cfg)
    assert r.code == 1, r
    assert r.json()["in_doubt"] == 2, r
    # not resent in this run: one POST each, the claims kept
    assert m.posts_per_id() == {1: 1, 2: 1}, r
    assert store.claimed_ids() == {1, 2}, r
    if store.name == "sqlite":
        errs = [e for ts, st, e in sqlite_rows(store).values()]
        assert all(e and "in doubt" in e for e in errs), errs
    if store.name == "mongodb":
        errs = [d.get("error") for d in store.docs()]
        assert all(e and "in doubt" in e for e in errs), errs
    # a plain run leaves them alone; --reclaim sends them again
    m2 = mock()
    r2 = sender.run([path, "--json"], api_url=m2.url)
    assert r2.code == 1 and not m2.posts_per_id(), r2
    r3 = sender.run([path, "--reclaim", "--json"], api_url=m2.url)
    assert r3.code == 0, r3
    assert m2.posts_per_id() == {1: 1, 2: 1}, r3
    assert_no_claims(store, r3)


def test_reset_after_send_is_in_doubt(store, sender, mock, tmp_path):
    m = mock("--drop-first", "1=5")
    path = write_letters(tmp_path / "a.xml", [1])
    cfg = sender.config(m.url, max_attempts=5, extra=IN_DOUBT_HOLD)
    r = sender.run([path, "--json"], config=cfg)
    assert r.code == 1, r
    assert r.json()["in_doubt"] == 1, r
    assert m.posts_per_id()[1] == 1, r
    assert store.claimed_ids() == {1}


def test_refused_connection_is_not_in_doubt(store, sender, tmp_path):
    path = write_letters(tmp_path / "a.xml", [1])
    cfg = sender.config(closed_port_url(), max_attempts=2,
                        extra=IN_DOUBT_HOLD)
    r = sender.run([path, "--json"], config=cfg)
    assert r.code == 1, r
    s = r.json()
    assert s["in_doubt"] == 0 and s["deferred"] == 1, r
    assert_no_claims(store, r)


def test_in_doubt_names_are_capped(store, sender, mock, tmp_path):
    n = 150
    m = mock("--latency-ms", 3000)
    path = write_letters(tmp_path / "a.xml", range(1, n + 1))
    cfg = sender.config(m.url, timeout=1, concurrency=n,
                        extra=IN_DOUBT_HOLD)
    r = sender.run([path, "--json"], config=cfg)
    assert r.json()["in_doubt"] == n, r
    named = re.findall(r"^sender: id \d+: in doubt", r.err, re.M)
    assert 0 < len(named) <= 100, r
    assert "more 'in_doubt' messages not shown" in r.err, r


# ------------------------------------------------------------ 4. secrets

SECRET_URL = "http://apiuser:s3cr3tpw@%s/api.php?token=t0k3n"


def assert_no_secret(text):
    for word in ("apiuser", "s3cr3tpw", "t0k3n"):
        assert word not in text, text


def test_print_config_masks_userinfo_and_query(store, sender, tmp_path):
    r = sender.run(["--print-config"],
                   config=sender.config(SECRET_URL % "example.com"))
    assert r.code == 0, r
    assert_no_secret(r.out)
    assert "***@example.com/api.php?***" in r.out, r


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_messages_mask_the_url(store, sender, mock, tmp_path, fmt):
    m = mock("--status-all", "404:no")
    url = SECRET_URL % ("127.0.0.1:%d" % m.port)
    path = write_letters(tmp_path / "a.xml", [1, 2])
    r = sender.run([path, "--log-format", fmt, "--json", "-v", "-v"],
                   api_url=url)
    assert r.code == 1, r
    assert "404" in r.err, r
    assert_no_secret(r.err + r.out)
    # a bad URL's message is masked too
    r = sender.run([path, "--log-format", fmt, "--json"],
                   api_url="htp://apiuser:s3cr3tpw@h/x?token=t0k3n")
    assert r.code == 2, r
    assert_no_secret(r.err + r.out)


# ------------------------------------------------------- 5. text from outside

def test_api_text_and_xml_ids_are_shown_escaped(store, sender, mock,
                                                tmp_path):
    m = mock("--answer", "1=400:bad\x1b[2J\x07thing \udcff end",
             "--answer", "2=200:\x1b]0;owned\x07")
    ids = '<email id="3\u009b2J"><to>a@b.c</to><subject>s</subject></email>'
    path = write_raw(tmp_path / "a.xml",
                     '<?xml version="1.0" encoding="UTF-8"?>\n<emails>\n'
                     '<email id="1"><to>a@b.c</to><subject>s</subject>'
                     '</email>\n<email id="2"><to>a@b.c</to><subject>s'
                     '</subject></email>\n' + ids + '\n</emails>\n')
    for fmt in ("text", "json"):
        r = sender.run([path, "--log-format", fmt, "--reclaim"],
                       api_url=m.url)
        raw = r.err.encode("utf-8", "surrogateescape")
        assert b"\x1b" not in raw and b"\x07" not in raw, r
        assert b"\xc2\x9b" not in raw, r
        if fmt == "text":
            assert "bad\\x1b[2J\\x07thing \\xff end" in r.err, r
            assert "\\x1b]0;owned\\x07" in r.err, r
            assert "3\\xc2\\x9b2J" in r.err, r
    if store.name == "sqlite":
        for i, (ts, st, e) in sqlite_rows(store).items():
            assert e is None or not re.search(r"[\x00-\x1f\x7f-\x9f]", e), e


# ------------------------------------------------------------------ 6. files

def test_new_sqlite_file_is_private(store, sender, mock, tmp_path):
    only_sqlite(store)
    m = mock()
    path = write_letters(tmp_path / "a.xml", [1])
    old = os.umask(0o022)
    try:
        r = sender.run([path], api_url=m.url)
    finally:
        os.umask(old)
    assert r.code == 0, r
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


def test_sqlite_path_symlink_to_nothing_is_refused(store, sender, mock,
                                                   tmp_path):
    only_sqlite(store)
    m = mock()
    target = tmp_path / "elsewhere.db"
    os.symlink(target, store.path)
    path = write_letters(tmp_path / "a.xml", [1])
    r = sender.run([path], api_url=m.url)
    assert r.code == 4, r
    assert not target.exists(), r
    assert not m.posts_per_id()


@pytest.mark.parametrize("value", ["file:%s?mode=memory",
                                   "%s?nolock=1"])
def test_sqlite_path_that_is_a_uri_is_refused(store, sender, mock, tmp_path,
                                              value):
    only_sqlite(store)
    m = mock()
    path = write_letters(tmp_path / "a.xml", [1])
    cfg = sender.config(m.url).replace(
        "path = %s" % store.path, "path = " +
        (value % store.path if "%s" in value else value))
    r = sender.run([path, "--json"], config=cfg)
    assert r.code == 2, r
    assert "'path' of section [sqlite]" in r.err, r
    assert not m.posts_per_id()
    assert r.json()["exit"] == 2


def _journal_run(store, sender, mock, tmp_path, journal, plant=None):
    """A run whose store is locked while its answer is on the way, so
    that the answer goes to the journal; plant() runs once the request
    is out (a journal there before the run would be replayed first)."""
    m = mock("--latency-ms", 1500)
    path = write_letters(tmp_path / "a.xml", [1])
    cfg = sender.config(m.url, extra="[sqlite]\nbusy_timeout = 0.2\n"
                        "[store]\njournal = %s\n" % journal)
    p, out, err = sender.popen([path], config=cfg)
    assert wait_for(lambda: m.stats()["requests"] >= 1, 30)
    if plant:
        plant()
    db = sqlite3.connect(str(store.path), timeout=5)
    db.execute("BEGIN EXCLUSIVE")
    try:
        p.wait(timeout=60)
    finally:
        db.rollback()
        db.close()
    return result_of(p, out, err)


def test_journal_is_private(store, sender, mock, tmp_path):
    only_sqlite(store)
    journal = tmp_path / "j.journal"
    r = _journal_run(store, sender, mock, tmp_path, journal)
    assert r.code == 4 and "journal" in r.err, r
    assert journal.exists(), r
    assert stat.S_IMODE(os.stat(journal).st_mode) == 0o600, r


def test_journal_never_written_through_a_symlink(store, sender, mock,
                                                 tmp_path):
    only_sqlite(store)
    journal = tmp_path / "j.journal"
    target = tmp_path / "victim"
    target.write_text("keep me\n")
    r = _journal_run(store, sender, mock, tmp_path, journal,
                     plant=lambda: os.symlink(target, journal))
    assert r.code == 4, r
    assert target.read_text() == "keep me\n", r
    assert "not recorded: id 1" in r.err, r


# ----------------------------------------------------------- 7. Retry-After

def test_retry_after_is_capped_by_max_retry_after(store, sender, mock,
                                                  tmp_path):
    m = mock("--burst-503", 1, "--retry-after", 100)
    path = write_letters(tmp_path / "a.xml", [1])
    cfg = sender.config(m.url, extra="[retry]\nmax_retry_after = 1\n")
    r = sender.run([path, "--json"], config=cfg, run_timeout=60)
    assert r.code == 0, r
    assert r.seconds < 10, r
    assert r.json()["requests"] == 2


def test_letter_waiting_is_bounded(store, sender, mock, tmp_path):
    m = mock("--fail-first", "1=100", "--retry-after", 3)
    path = write_letters(tmp_path / "a.xml", [1, 2])
    cfg = sender.config(m.url, max_attempts=50,
                        extra="[retry]\nmax_letter_seconds = 5\n")
    r = sender.run([path, "--json"], config=cfg, run_timeout=60)
    assert r.code == 1, r
    s = r.json()
    assert s["deferred"] == 1 and s["delivered"] == 1, r
    assert r.seconds < 15, r
    assert 2 <= m.posts_per_id()[1] <= 3, r
    assert "max_letter_seconds" in r.err, r
    assert_no_claims(store, r)


def test_retry_after_http_date(store, sender, mock, tmp_path):
    when = email.utils.formatdate(time.time() + 3, usegmt=True)
    m = mock("--burst-503", 1, "--retry-after", when)
    path = write_letters(tmp_path / "a.xml", [1])
    r = sender.run([path, "--json"], api_url=m.url, max_delay_ms=50,
                   run_timeout=60)
    assert r.code == 0, r
    assert r.seconds >= 1.5, r


# ------------------------------------------------------- 8. odd statuses

def test_status_outside_100_599_is_transient_with_status_line(
        store, sender, mock, tmp_path):
    m = mock("--status-all", "777:odd")
    path = write_letters(tmp_path / "a.xml", [1])
    r = sender.run([path, "--json"], api_url=m.url, max_attempts=3)
    assert r.code == 1, r
    assert m.posts_per_id()[1] == 3, r
    assert r.json()["deferred"] == 1, r
    assert "HTTP/1.1 777" in r.err, r
    assert_no_claims(store, r)


# --------------------------------------------------- 9. --json always

def test_json_at_configuration_error(store, sender, tmp_path):
    path = write_letters(tmp_path / "a.xml", [1])
    cfg = sender.config("http://127.0.0.1:1/x") + "[api]\nbogus = 1\n"
    r = sender.run([path, "--json"], config=cfg)
    assert r.code == 2, r
    obj = r.json()
    assert obj["exit"] == 2 and "bogus" in obj["error"], r
    assert obj["letters"] == 0


def test_json_at_usage_error(store, sender, tmp_path):
    r = sender.run(["--json", "--log-format", "xml"],
                   config=sender.config("http://127.0.0.1:1/x"))
    assert r.code == 2, r
    obj = r.json()
    assert obj["exit"] == 2 and "usage" in obj["error"], r


def test_json_at_storage_error(store, sender, mock, tmp_path):
    section = store.broken_config_section()
    if section is None:
        pytest.skip("no broken configuration for this backend")
    m = mock()
    path = write_letters(tmp_path / "a.xml", [1])
    cfg = ("[api]\nurl = %s\n\n" % m.url) + section
    r = run_sender([path, "--json"], config=cfg, config_dir=tmp_path)
    assert r.code == 4, r
    obj = r.json()
    assert obj["exit"] == 4 and obj["error"], r
    assert not m.posts_per_id()


def test_second_signal_in_doubt_released_by_default(store, sender, mock,
                                                    tmp_path):
    import signal
    from test_kill_points import start_and_stop_at
    path = write_letters(tmp_path / "a.xml", range(1, 201))
    # slow enough that requests are surely in flight at the second
    # signal, even under valgrind on a loaded machine
    m = mock("--latency-ms", 2000)
    p, out, err = start_and_stop_at(sender, m, path, 1,
                                    [signal.SIGTERM, signal.SIGINT],
                                    gap=0.05)
    r = result_of(p, out, err)
    assert p.returncode == 143, r
    s = r.json()
    assert s["in_doubt"] > 0, r
    assert "%d letters are in doubt" % s["in_doubt"] in r.err, r
    assert_no_claims(store, r)
