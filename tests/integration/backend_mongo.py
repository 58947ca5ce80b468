"""The MongoDB backend of the integration suite (see conftest.py, "stores").

One private FerretDB (v1.24.2, MongoDB wire protocol over SQLite) per pytest
session, started by tests/lib/ferretdb.sh in a temporary directory the first
time a MongoDB test needs it and stopped when the session ends; each test
gets its own collection `results_<tag>` in database `sender`, dropped at
teardown.

With $MONGODB_TEST_URI set (e.g. mongodb://127.0.0.1:27017/, a real mongod)
the tests use that server instead and start nothing; the tests that kill
and restart the server are skipped then.

Records are read with pymongo, which returns `ts` as a naive UTC datetime.
"""

import os

import pytest

from conftest import REPO, ScriptServer, Store, free_port


class FerretDB(ScriptServer):
    """The session's server: started on first use, stopped at exit."""
    script_path = REPO / "tests" / "lib" / "ferretdb.sh"
    prefix = "sender-ferretdb-"
    pid_file = "ferretdb.pid"

    def __init__(self):
        super().__init__()
        self.external = os.environ.get("MONGODB_TEST_URI") or None
        self.uri = self.external
        self._client = None

    def ensure(self):
        """Start the server if needed; skip the test if it cannot be."""
        if self.failure is None and self.uri is None:
            p = self.start_first()
            if p.returncode != 0:
                self.failure = "tests/lib/ferretdb.sh start: %s" % (
                    p.stderr.strip()[-2000:])
            else:
                self.uri = p.stdout.strip()
        if self.failure:
            pytest.skip("no FerretDB for the mongodb backend: %s"
                        % self.failure)

    @property
    def port(self):
        return int((self.dir / "ferretdb.port").read_text())

    def running(self):
        """Whether the process of DIR/ferretdb.pid is a live ferretdb."""
        try:
            with open("/proc/%d/cmdline" % self.pid(), "rb") as f:
                return b"ferretdb" in f.read()
        except (OSError, TypeError):
            return False

    def restart(self):
        """Start it again on the same port and data (after kill())."""
        self.command("restart")

    def client(self):
        import pymongo
        if self._client is None:
            self._client = pymongo.MongoClient(
                self.uri, serverSelectionTimeoutMS=10000,
                socketTimeoutMS=120000)
        return self._client

    def destroy(self):
        if self._client is not None:
            self._client.close()
            self._client = None
        super().destroy()


SERVER = FerretDB()


class MongoStore(Store):
    name = "mongodb"
    server = SERVER
    # On FerretDB (SQLite handler) every update reads the whole collection:
    # the time of a scenario grows with the square of its size, and 600
    # letters a run still give ten claim batches at -j 16.
    # MONGODB_TEST_MANY sets it (default 600, or 2000 on a real mongod).
    many = int(os.environ.get("MONGODB_TEST_MANY") or
               (2000 if os.environ.get("MONGODB_TEST_URI") else 600))
    # FerretDB has one writer for all runs: 8 at once take minutes
    parallel_runs = (4, 8) if os.environ.get("MONGODB_TEST_URI") else (4,)
    parallel_letters = many
    crash_letters = 2 * many
    # FerretDB's writes stall a run for seconds (see parallel_letters)
    loaded_api_timeout = 300
    knows_own_claims = True

    @property
    def not_killable(self):
        if self.server.external:
            return "$MONGODB_TEST_URI: the server is not ours to kill"
        return None

    def setup(self):
        self.server.ensure()
        self.database = "sender"
        self.collection = "results_%s" % self.tag

    def kill_server(self):
        self.server.kill()

    def restart_server(self):
        if not self.server.running():
            self.server.restart()

    def teardown(self):
        try:
            self.db().drop_collection(self.collection)
        except Exception:
            pass  # a test that left the server down says so itself

    def mongodb_section(self, **override):
        keys = {"uri": self.server.uri, "database": self.database,
                "collection": self.collection}
        keys.update(override)
        return "[mongodb]\n" + "".join("%s = %s\n" % (k, v)
                                       for k, v in keys.items()
                                       if v is not None)

    def config_section(self, **override):
        return ("[store]\nbackend = mongodb\n\n"
                + self.mongodb_section(**override))

    def broken_config_section(self):
        return self.config_section(
            uri="mongodb://127.0.0.1:%d/" % free_port())

    def db(self):
        return self.server.client()[self.database]

    def coll(self):
        return self.db()[self.collection]

    def docs(self):
        """Every record as stored, with BSON types (pymongo: Int64 for
        int64, int for int32, datetime for dates)."""
        return list(self.coll().find({}))

    def stored_ids(self):
        return [int(d["id"]) for d in self.coll().find({}, {"id": 1})]

    def rows(self):
        out = {}
        for d in self.coll().find({}, {"_id": 0, "id": 1, "ts": 1,
                                       "delivery_status": 1}):
            ts = d.get("ts")
            out[int(d["id"])] = (ts.strftime("%Y-%m-%d %H:%M:%S")
                                 if ts is not None else None,
                                 d.get("delivery_status"))
        return out

    def untouched(self):
        return self.collection not in self.db().list_collection_names()
