"""SPEC 5, 6, 7 on the mongodb backend: the unique index, the document
types, the URI kept secret, an unreachable server.  What every server
backend shares (parallel runs, the server killed, --replay) is in
test_network_store.py.

These tests run (once, not once per backend) when ``mongodb`` is in
$SENDER_TEST_BACKENDS (they need the FerretDB that backend_mongo.py
starts, or $MONGODB_TEST_URI) and are skipped otherwise.
"""

import datetime
import time

import pytest
from bson import ObjectId
from bson.int64 import Int64

from conftest import (assert_json_summary, assert_refused, free_port,
                      only_store, utc_now, write_letters)


@pytest.fixture
def store(tmp_path):
    """This module's store is always MongoDB (conftest's runs per
    backend)."""
    yield from only_store("mongodb", tmp_path)


@pytest.fixture
def mg(store):
    return store


def unique_id_indexes(mg):
    return [ix for ix in mg.coll().list_indexes()
            if dict(ix["key"]) == {"id": 1} and ix.get("unique")]


# ---------------------------------------------------------------- the index

def test_unique_index_made_by_the_first_run(mg, sender, mock, tmp_path):
    m = mock()
    r = sender.run([write_letters(tmp_path / "a.xml", [1, 2])],
                   api_url=m.url)
    assert r.code == 0, r
    assert len(unique_id_indexes(mg)) == 1, list(mg.coll().list_indexes())
    # it is really unique: a second record of id 1 is refused
    import pymongo.errors
    with pytest.raises(pymongo.errors.DuplicateKeyError):
        mg.coll().insert_one({"id": Int64(1), "ts": None})
    # and the next run finds it and makes no other
    r = sender.run([write_letters(tmp_path / "b.xml", [2, 3])],
                   api_url=m.url)
    assert r.code == 0, r
    assert len(list(mg.coll().list_indexes())) == 2  # _id and id


def test_unique_index_under_another_name_is_used(mg, sender, mock,
                                                 tmp_path):
    mg.coll().create_index("id", unique=True, name="by_letter")
    m = mock()
    r = sender.run([write_letters(tmp_path / "a.xml", [1, 2])],
                   api_url=m.url)
    assert r.code == 0, r
    assert unique_id_indexes(mg)
    assert set(mg.rows()) == {1, 2}


def test_index_that_is_not_unique_is_refused(mg, sender, mock, tmp_path):
    """Claims rely on the unique index: an index id_1 that is not unique
    is left alone, and nothing is sent."""
    mg.coll().create_index("id", name="id_1")
    m = mock()
    r = sender.run([write_letters(tmp_path / "a.xml", [1, 2])],
                   api_url=m.url)
    assert_refused(r, m, ["'sender.%s'" % mg.collection, "'id'"])
    assert not unique_id_indexes(mg)
    assert mg.coll().count_documents({}) == 0


# ---------------------------------------------------------------- documents

def test_document_types(mg, sender, mock, tmp_path):
    """id int64, ts a date (UTC), delivery_status int32 or null, and the
    diagnostic fields; _id is the id in decimal."""
    m = mock("--answer", "2=200:0", "--answer", "3=400:bad address",
             "--answer", "4=200:oops")
    t0 = utc_now()
    r = sender.run([write_letters(tmp_path / "a.xml", [1, 2, 3, 4])],
                   api_url=m.url)
    t1 = utc_now()
    assert r.code == 0, r
    docs = {int(d["id"]): d for d in mg.docs()}
    assert set(docs) == {1, 2, 3, 4}
    want_status = {1: 1, 2: 0, 3: None, 4: None}
    for i, d in docs.items():
        assert type(d["id"]) is Int64, d
        assert d["_id"] == str(i), d
        assert isinstance(d["ts"], datetime.datetime), d
        assert t0.replace(microsecond=0) <= d["ts"] <= t1, (d, t0, t1)
        assert d["delivery_status"] == want_status[i], d
        if want_status[i] is not None:
            assert type(d["delivery_status"]) is int, d  # int32, not Int64
        assert d["attempts"] == 1, d
        assert d["owner"] is None, d
    assert "bad address" in docs[3]["error"]
    assert "oops" in docs[4]["error"]
    assert docs[1]["error"] is None


def test_existing_records_of_other_programs(mg, sender, mock, tmp_path):
    """Records made by hand, with ObjectId _ids: a done one is skipped, a
    claim of a live run elsewhere is skipped (exit 1), and an abandoned
    claim is taken over by --reclaim and finished in place."""
    old = utc_now() - datetime.timedelta(hours=5)
    mg.coll().insert_many([
        {"id": Int64(3), "ts": old, "delivery_status": 1},
        {"id": Int64(4), "ts": None, "delivery_status": None,
         "owner": "elsewhere:1:%d" % time.time(),
         "claimed_at": utc_now()},
        {"id": Int64(5), "ts": None, "delivery_status": None,
         "owner": "elsewhere:2:1", "claimed_at": old},
    ])
    oid5 = mg.coll().find_one({"id": 5})["_id"]
    m = mock()
    path = write_letters(tmp_path / "a.xml", range(1, 7))
    r = sender.run([path, "--json"], api_url=m.url)
    assert r.code == 1, r
    assert m.posts_per_id() == {1: 1, 2: 1, 6: 1}, r
    assert_json_summary(r, letters=6, delivered=3, skipped=3)

    r = sender.run([path, "--reclaim", "--json"], api_url=m.url)
    assert r.code == 1, r  # 4 is still held, by a live claim
    assert m.posts_per_id() == {1: 1, 2: 1, 5: 1, 6: 1}, r
    rows = mg.rows()
    assert rows[3] == (old.strftime("%Y-%m-%d %H:%M:%S"), 1)
    assert rows[4] == (None, None)
    assert rows[5][0] is not None and rows[5][1] == 1
    fives = list(mg.coll().find({"id": 5}))
    assert len(fives) == 1 and isinstance(fives[0]["_id"], ObjectId)
    assert fives[0]["_id"] == oid5


# ---------------------------------------------------------------- the URI

SECRET = "Pa55-w0rd-never-printed"


def uri_case(mg, case):
    """(config override, env, exit statuses, words in the message)."""
    host = mg.server.uri.split("://", 1)[1].split("/", 1)[0].split("@")[-1]
    if case == "accepted":
        # FerretDB takes PLAIN without checking it; a real server may
        # refuse the user: either way the secret stays secret
        uri = "mongodb://sender:%s@%s/?authMechanism=PLAIN" % (SECRET, host)
        return {"uri": uri}, {}, (0, 4), []
    if case == "refused":
        uri = "mongodb://nobody:%s@%s/" % (SECRET, host)
        return {"uri": uri}, {}, (4,), [host, "[mongodb] uri"]
    if case == "unreachable":
        where = "127.0.0.1:%d" % free_port()
        uri = "mongodb://sender:%s@%s/" % (SECRET, where)
        return {"uri": uri}, {}, (4,), ["'%s'" % where, "[mongodb] uri"]
    if case == "malformed":
        uri = "mongodb://sender:%s:x@%s/" % (SECRET, host)
        return {"uri": uri}, {}, (2,), ["'uri'", "[mongodb]"]
    if case == "bad-option":
        uri = "mongodb://%s/?authMechanism=%s" % (host, SECRET)
        return {"uri": uri}, {}, (2,), ["'uri'", "[mongodb]"]
    if case == "environment":
        uri = "mongodb://nobody:%s@%s/" % (SECRET, host)
        return ({"uri": None}, {"SENDER_MONGODB_URI": uri}, (4,),
                ["SENDER_MONGODB_URI"])
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["accepted", "refused", "unreachable",
                                  "malformed", "bad-option", "environment"])
@pytest.mark.parametrize("verbose", [[], ["-v", "-v"]])
def test_uri_is_never_printed(mg, sender, mock, tmp_path, case, verbose):
    override, env, codes, words = uri_case(mg, case)
    uri = override.get("uri") or env["SENDER_MONGODB_URI"]
    m = mock()
    text = sender.config(m.url).replace(mg.config_section(),
                                        mg.config_section(**override))
    r = sender.run([write_letters(tmp_path / "a.xml", [1, 2])] + verbose,
                   config=text, env=env)
    assert r.code in codes, r
    for w in words:
        assert w in r.err, "message does not name %r:\n%s" % (w, r)
    assert SECRET not in r.out + r.err, "password printed:\n%s" % r
    assert uri not in r.out + r.err, "URI printed:\n%s" % r
    if r.code != 0:
        assert m.requests() == [], r
    # --print-config masks it too
    r = sender.run(["--print-config"], config=text, env=env)
    assert SECRET not in r.out + r.err, r


def test_unreachable_server_exits_4_before_sending(mg, sender, mock,
                                                  tmp_path):
    where = "127.0.0.1:%d" % free_port()
    m = mock()
    text = sender.config(m.url).replace(
        mg.config_section(), mg.config_section(uri="mongodb://%s/" % where))
    t0 = time.monotonic()
    r = sender.run([write_letters(tmp_path / "a.xml", [1, 2, 3])],
                   config=text)
    assert_refused(r, m, ["'%s'" % where, "is the server running"])
    assert time.monotonic() - t0 < 30, "no fail-fast: %s" % r
    assert mg.untouched()


@pytest.mark.parametrize("name", ["", "a/b", "a b", "$x"])
def test_bad_database_name_is_a_config_error(mg, sender, mock, tmp_path,
                                             name):
    m = mock()
    text = sender.config(m.url).replace(
        mg.config_section(), mg.config_section(database=name))
    r = sender.run([write_letters(tmp_path / "a.xml", [1])], config=text)
    assert r.code == 2, r
    assert "'database'" in r.err and "[mongodb]" in r.err, r
    assert m.requests() == []
