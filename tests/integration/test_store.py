"""SPEC 5 and 7: the store itself."""

import os
import re
import sqlite3

import pytest

from conftest import assert_json_summary, write_letters


def test_unreachable_store_exits_4(store, sender, mock, tmp_path):
    """No letter is sent without a claim: a store that cannot be opened
    means exit 4 and no POST at all."""
    broken = store.broken_config_section()
    if broken is None:
        pytest.skip("%s has no broken configuration" % store.name)
    m = mock()
    text = sender.config(m.url).replace(store.config_section(), broken)
    assert broken in text
    path = write_letters(tmp_path / "a.xml", [1, 2, 3])
    r = sender.run([path], config=text)
    assert r.code == 4, r
    assert r.err.strip(), r
    assert m.requests() == [], "sent without a claim"


def claim_batch_sizes(err):
    return [int(n) for n in re.findall(r"store: claimed (\d+) ids", err)]


def test_claim_batches_follow_the_pace(store, sender, mock, tmp_path):
    """README: claim batches start at four times concurrency (64 at
    least), double while a whole batch goes out within 50 ms, up to 2,048,
    and against a slow API stay where they started, so that the ids
    claimed ahead of the requests stay within about 50 ms of sending."""
    if store.name == "mongodb":
        pytest.skip("FerretDB records about a thousand letters a second: "
                    "the pace here is the server's (run.c decides alike "
                    "for every store)")
    slow = mock("--latency-ms", "25")
    path = write_letters(tmp_path / "slow.xml", range(1, 401))
    r = sender.run(["-vv", path], api_url=slow.url, concurrency=4)
    assert r.code == 0, r
    sizes = claim_batch_sizes(r.err)
    # 4 in flight, 25 ms each: a batch of 64 takes 400 ms to go out
    assert sizes and max(sizes) == 64, sizes
    if os.environ.get("SENDER_VALGRIND"):
        return  # under valgrind no batch goes out within 50 ms
    fast = mock()
    path = write_letters(tmp_path / "fast.xml", range(1001, 4001))
    r = sender.run(["-vv", path], api_url=fast.url, concurrency=4)
    assert r.code == 0, r
    sizes = claim_batch_sizes(r.err)
    assert sizes[0] == 64, sizes
    assert max(sizes) > 64, sizes  # grew: 64 letters go out in a few ms
    assert max(sizes) <= 2048, sizes
    assert sum(sizes) == 3000, sizes
    assert fast.posts_per_id() == {i: 1 for i in range(1001, 4001)}


# ---------------------------------------------------------------- sqlite

@pytest.fixture
def sqlite_store(store):
    if store.name != "sqlite":
        pytest.skip("sqlite only")
    return store


SCHEMA = ("CREATE TABLE results (id INTEGER PRIMARY KEY, ts TEXT, "
          "delivery_status INTEGER)")


def test_sqlite_schema_and_wal(sqlite_store, sender, mock, tmp_path):
    m = mock()
    path = write_letters(tmp_path / "a.xml", [1, 2])
    r = sender.run([path], api_url=m.url)
    assert r.code == 0, r
    db = sqlite3.connect(str(sqlite_store.path))
    try:
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode.lower() == "wal", mode
        cols = {name: (typ.upper(), pk) for _, name, typ, _, _, pk in
                db.execute("PRAGMA table_info(results)")}
    finally:
        db.close()
    assert cols["id"] == ("INTEGER", 1), cols
    assert cols["ts"][0] == "TEXT", cols
    assert cols["delivery_status"][0] == "INTEGER", cols


def test_sqlite_existing_database_is_used(sqlite_store, sender, mock,
                                          tmp_path):
    """A database made by hand with the schema of SPEC 5: a done record is
    skipped, and so is a claimed one (another run's), with exit 1."""
    db = sqlite3.connect(str(sqlite_store.path))
    db.execute(SCHEMA)
    db.execute("INSERT INTO results VALUES (3, '2020-01-02 03:04:05', 1)")
    db.execute("INSERT INTO results VALUES (4, NULL, NULL)")
    db.commit()
    db.close()
    m = mock()
    path = write_letters(tmp_path / "a.xml", range(1, 7))
    r = sender.run([path, "--json"], api_url=m.url)
    assert r.code == 1, r
    assert m.posts_per_id() == {1: 1, 2: 1, 5: 1, 6: 1}, r
    assert_json_summary(r, letters=6, delivered=4, skipped=2)
    rows = sqlite_store.rows()
    assert rows[3] == ("2020-01-02 03:04:05", 1)
    assert rows[4] == (None, None)


def test_sqlite_readers_do_not_block_the_sender(sqlite_store, sender, mock,
                                                tmp_path):
    """WAL: a reader holding a read transaction open does not stop the
    sender from writing."""
    m = mock()
    write_letters(tmp_path / "warm.xml", [1])
    assert sender.run([tmp_path / "warm.xml"], api_url=m.url).code == 0
    db = sqlite3.connect(str(sqlite_store.path), isolation_level=None)
    try:
        db.execute("BEGIN")
        db.execute("SELECT count(*) FROM results").fetchone()
        path = write_letters(tmp_path / "a.xml", range(2, 12))
        r = sender.run([path], api_url=m.url, run_timeout=60)
        assert r.code == 0, r
    finally:
        db.execute("COMMIT")
        db.close()
    assert set(sqlite_store.rows()) == set(range(1, 12))
