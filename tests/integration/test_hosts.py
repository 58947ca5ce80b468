"""Issue 12: many hosts, one database, on a test bed of Linux namespaces.

The bed (tests/hosts/netns.py) is built once per module: a database host
(198.18.0.1) running a private MariaDB over TCP and a FerretDB, an API host
(198.18.0.2) running one mock API per test, and sender hosts made per test,
each with its own hostname, pids, /proc and network.  Nothing of it exists
outside its namespaces; it all dies with pytest.  Needs root and
unshare: elsewhere every test here is skipped with "needs root and
namespaces".

Network tests run per network backend named in $SENDER_TEST_BACKENDS
(mysql, mongodb); the single-host ones include sqlite.
"""

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import (REPO, SENDER_BIN, MOCK_BIN, Mock, _backend_names,
                      make_config, result_of, sender_env, wait_for,
                      write_config, write_letters)
from backend_mysql import MysqlStore
from backend_mongo import MongoStore

sys.path.insert(0, str(REPO / "tests" / "hosts"))
import netns  # noqa: E402

MARIADB_SH = REPO / "tests" / "lib" / "mariadb.sh"
FERRETDB_SH = REPO / "tests" / "lib" / "ferretdb.sh"
MYSQL_PORT = 3306
MONGO_PORT = 27017
API_PORT = 8080

NET_BACKENDS = [b for b in _backend_names() if b in ("mysql", "mongodb")]
ALL_BACKENDS = [b for b in _backend_names()
                if b in ("sqlite", "mysql", "mongodb")]


# ------------------------------------------------------------- servers

def make_certificates(directory, addr):
    """A CA, a server certificate it signs for addr (IP SAN) and the
    name "db", and a second CA that signed nothing: paths by name."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes"]

    def ssl(*args):
        p = subprocess.run(["openssl"] + [str(a) for a in args],
                           capture_output=True, text=True, cwd=d)
        assert p.returncode == 0, p.stderr
    for ca in ("ca", "wrong-ca"):
        ssl("req", "-x509", *ec, "-keyout", ca + ".key", "-out",
            ca + ".pem", "-days", "2", "-subj", "/CN=sender test " + ca)
    ssl("req", *ec, "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=db")
    (d / "san.ext").write_text("subjectAltName = IP:%s, DNS:db\n" % addr)
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey",
        "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2",
        "-extfile", "san.ext")
    return {"ca": d / "ca.pem", "cert": d / "server.pem",
            "key": d / "server.key", "wrong-ca": d / "wrong-ca.pem"}


class BedMariaDB:
    """tests/lib/mariadb.sh inside the database host, on TCP at its
    address; the test reads through the server's unix socket (a file,
    reachable from any network namespace).  Same interface as
    backend_mysql.MariaDB, for MysqlStore."""

    def __init__(self, host, directory):
        self.host = host
        self.dir = Path(directory)
        self.port = MYSQL_PORT
        self.password = "u1-" + secrets.token_hex(8)
        self.started = False
        self.tls = {}

    @property
    def socket(self):
        return str(self.dir / "mysqld.sock")

    def _script(self, *args):
        env = dict(os.environ, MARIADB_U1_PASSWORD=self.password,
                   MARIADB_TCP_PORT=str(self.port),
                   MARIADB_BIND_ADDRESS=self.host.addr,
                   MARIADB_SERVER_ARGS=" ".join(
                       "--ssl-%s=%s" % (k, self.tls[k])
                       for k in ("ca", "cert", "key")))
        env["PATH"] = env.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"
        return self.host.run(["bash", MARIADB_SH] + list(args), env=env,
                             check=False, timeout=180)

    def ensure(self):
        if self.started:
            return
        if shutil.which("mariadbd", path=os.environ.get("PATH", "") +
                        ":/usr/sbin:/sbin") is None:
            pytest.skip("mariadbd is not installed (make deps-test)")
        self.tls = make_certificates(self.dir / "tls", self.host.addr)
        p = self._script("start", str(self.dir))
        assert p.returncode == 0, "mariadb.sh start: %s" % p.stderr
        self.started = True

    def kill(self):
        p = self._script("kill", str(self.dir))
        assert p.returncode == 0, p.stderr

    def restart(self):
        p = self._script("start", str(self.dir))
        assert p.returncode == 0, p.stderr

    def sql(self, statement):
        p = self._script("sql", str(self.dir), statement)
        assert p.returncode == 0, "%s: %s" % (statement, p.stderr)
        return [line.split("\t") for line in p.stdout.splitlines()]

    def connect(self, database="sender"):
        import pymysql
        return pymysql.connect(unix_socket=self.socket, user="u1",
                               password=self.password, database=database,
                               autocommit=True,
                               init_command="SET time_zone = '+00:00'")


class BedFerretDB:
    """FerretDB inside the database host, on TCP at its address, and on a
    unix socket for the test's own reads.  Same interface as
    backend_mongo.FerretDB, for MongoStore."""

    def __init__(self, host, directory):
        self.host = host
        self.dir = Path(directory)
        self.uri = "mongodb://%s:%d/" % (host.addr, MONGO_PORT)
        self.proc = None
        self._client = None

    @property
    def unix(self):
        return self.dir / "ferretdb.sock"

    def ensure(self):
        if self.proc is None:
            self.start()

    def kill(self):
        self.proc.kill()
        self.proc.wait(10)

    def restart(self):
        self.start()
        # the first command after a restart may still meet the old socket
        assert wait_for(lambda: self._ping(), 30), "FerretDB is not back"

    def _ping(self):
        try:
            self.client().admin.command("ping")
            return True
        except Exception:
            return False

    def start(self):
        p = subprocess.run(["bash", str(FERRETDB_SH), "build"],
                           capture_output=True, text=True, timeout=1800)
        if p.returncode != 0:
            pytest.skip("no FerretDB: %s" % p.stderr.strip()[-500:])
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        if self.unix.exists():
            self.unix.unlink()
        log = open(self.dir / "ferretdb.log", "ab")
        self.proc = self.host.popen(
            [p.stdout.strip(), "--handler=sqlite",
             "--sqlite-url=file:%s/" % (self.dir / "data"),
             "--listen-addr=%s:%d" % (self.host.addr, MONGO_PORT),
             "--listen-unix=%s" % self.unix, "--debug-addr=-",
             "--telemetry=disable", "--log-level=WARN",
             "--state-dir=%s" % self.dir], stdout=log, stderr=log)
        log.close()
        assert wait_for(self.unix.exists, 30), "FerretDB did not start"

    def client(self):
        import pymongo
        import urllib.parse
        if self._client is None:
            self._client = pymongo.MongoClient(
                "mongodb://%s" % urllib.parse.quote(str(self.unix), safe=""),
                serverSelectionTimeoutMS=10000, socketTimeoutMS=120000)
        return self._client


class BedMock(Mock):
    """tests/mock_api in the API host, listening on its address.  The
    test reaches its /stats and /flush through that host."""

    def __init__(self, host, workdir, options, port):
        workdir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.log_path = workdir / "requests.log"
        self.options = list(options)
        self._stderr = open(workdir / "mock.stderr", "w+")
        self._final_stats = None
        self.port = port
        self.base = "http://%s:%d" % (host.addr, self.port)
        self.url = self.base + "/api.php"
        port_file = workdir / "port"
        self.proc = host.popen(
            [MOCK_BIN, "--bind", host.addr, "--port", self.port,
             "--port-file", port_file, "--log", self.log_path] +
            self.options, stdout=self._stderr, stderr=self._stderr)
        assert wait_for(port_file.exists, 15), "mock_api did not start"

    def _get(self, path):
        p = self.host.run([sys.executable, "-c",
                           "import sys, urllib.request as u; sys.stdout."
                           "buffer.write(u.urlopen(sys.argv[1], timeout=10)"
                           ".read())", self.base + path])
        return p.stdout.encode()


# ------------------------------------------------------------- the lab

class Run:
    """One sender started on a host; finish() waits and gives a Result."""

    def __init__(self, host, argv, out, err):
        self.host = host
        self.out, self.err = out, err
        with open(out, "wb") as fo, open(err, "wb") as fe:
            self.p = host.popen(argv, stdout=fo, stderr=fe,
                                env=sender_env())
        self.t0 = time.monotonic()

    def finish(self, timeout=120):
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError("sender on %s ran over %d s:\n%s" % (
                self.host.name, timeout, Path(self.err).read_text()))
        return result_of(self.p, self.out, self.err,
                         time.monotonic() - self.t0)


class Lab:
    """The module's bed: database host, API host, sender hosts on demand."""

    def __init__(self, bed, directory):
        self.bed = bed
        self.dir = Path(directory)
        self.db = bed.add_host("db")
        self.api = bed.add_host("api")
        self.mariadb = BedMariaDB(self.db, self.dir / "mariadb")
        self.ferretdb = BedFerretDB(self.db, self.dir / "ferretdb")
        self.seq = 0

    def host(self, hostname=None):
        self.seq += 1
        return self.bed.add_host("s%d" % self.seq, hostname)

    def store(self, backend, tmp_path):
        """A private table / collection on the database host, with a
        config_section() for the senders (TCP to 198.18.0.1)."""
        if backend == "mysql":
            s = MysqlStore(tmp_path)
            s.server = self.mariadb
            s.setup()
            s.config_section = lambda **kw: MysqlStore.config_section(
                s, **dict(dict(socket=None, host=self.db.addr,
                               port=MYSQL_PORT), **kw))
        elif backend == "mongodb":
            s = MongoStore(tmp_path)
            s.server = self.ferretdb
            s.setup()
        else:
            from conftest import SqliteStore
            s = SqliteStore(tmp_path)
            s.setup()
        return s

    def all_file(self, tmp_path, files):
        """One file with the letters of all of files."""
        text = [Path(f).read_text().splitlines() for f in files]
        out = tmp_path / "all.xml"
        out.write_text("\n".join(text[0][:2] + [line for t in text
                                                  for line in t[2:-1]] +
                                 text[0][-1:]) + "\n")
        return out

    def mock(self, tmp_path, *options):
        self.seq += 1
        return BedMock(self.api, tmp_path / ("mock%d" % self.seq),
                       [str(o) for o in options], API_PORT + self.seq)

    def start(self, host, store, mock, args, tmp_path, extra="", **cfg):
        """sender -c CONFIG ARGS on host, against mock and store."""
        cfg.setdefault("concurrency", 8)
        config = write_config(make_config(store, mock.url, extra=extra,
                                          **cfg), tmp_path)
        self.seq += 1
        return Run(host, [SENDER_BIN, "-c", config] + list(args),
                   tmp_path / ("out%d" % self.seq),
                   tmp_path / ("err%d" % self.seq))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = netns.available()
    if reason:
        pytest.skip("skipped: %s" % reason)
    directory = tmp_path_factory.mktemp("bed")
    bed = netns.Bed(directory)
    try:
        yield Lab(bed, directory)
    finally:
        bed.close()


@pytest.fixture
def mocks(lab, tmp_path):
    started = []

    def start(*options):
        m = lab.mock(tmp_path, *options)
        started.append(m)
        return m
    yield start
    for m in started:
        m.stop()


def ids_posted_twice(mock):
    return {i: n for i, n in mock.posts_per_id().items() if n != 1}


# ------------------------------------------------------------- the bed

def test_bed_hosts_are_separate_and_vanish(tmp_path):
    """The bed itself: hosts see their own hostname and pids and reach
    each other at 198.18.0.x only; nothing of it is left on the test's
    side after close(), not even an interface."""
    reason = netns.available()
    if reason:
        pytest.skip("skipped: %s" % reason)
    before = subprocess.run(["ip", "-o", "link"], capture_output=True,
                            text=True).stdout
    bed = netns.Bed(tmp_path / "bed")
    try:
        a = bed.add_host("a", "twin")
        b = bed.add_host("b", "twin")
        for h in (a, b):
            assert h.run(["hostname"]).stdout.strip() == "twin"
        assert a.run(["sh", "-c", "echo $$"]).stdout.strip() == \
            b.run(["sh", "-c", "echo $$"]).stdout.strip()
        listener = b.popen([sys.executable, "-c",
                            "import socket; s = socket.socket(); "
                            "s.bind(('%s', 9)); s.listen(); "
                            "c, _ = s.accept(); c.send(b'ok')" % b.addr])
        p = a.run([sys.executable, "-c",
                   "import socket, time\n"
                   "for i in range(100):\n"
                   "    try:\n"
                   "        s = socket.create_connection(('%s', 9), 2)\n"
                   "        break\n"
                   "    except OSError: time.sleep(0.05)\n"
                   "print(s.recv(9).decode())" % b.addr])
        assert p.stdout.strip() == "ok"
        listener.wait(5)
        assert b.addr not in subprocess.run(
            ["ip", "-o", "addr"], capture_output=True, text=True).stdout
        sleeper = a.popen(["sleep", "600"])
    finally:
        bed.close()
    assert wait_for(lambda: not Path("/proc/%d" % sleeper.pid).exists(), 5)
    after = subprocess.run(["ip", "-o", "link"], capture_output=True,
                           text=True).stdout
    assert len(after.splitlines()) == len(before.splitlines())


# ------------------------------------------------------------- scenarios

@pytest.fixture(params=NET_BACKENDS or ["(none)"])
def net_store(request, lab, tmp_path):
    if request.param == "(none)":
        pytest.skip("no network backend in $SENDER_TEST_BACKENDS")
    s = lab.store(request.param, tmp_path)
    yield s
    s.teardown()


def start_in_same_second(lab, hosts, store, mock, args, tmp_path, **cfg):
    """Start sender on every host at once, just after a second begins, so
    that their start times (the seconds of their owner strings) agree."""
    configs = [write_config(make_config(store, mock.url, **cfg), tmp_path)
               for _ in hosts]
    frac = time.time() % 1
    time.sleep(1.02 - frac)
    runs = []
    for h, c in zip(hosts, configs):
        lab.seq += 1
        runs.append(Run(h, [SENDER_BIN, "-c", c] + list(args),
                        tmp_path / ("out%d" % lab.seq),
                        tmp_path / ("err%d" % lab.seq)))
    return runs


def test_same_hostname_same_pid_same_second(lab, net_store, mocks,
                                            tmp_path):
    """Two hosts named alike, sender the same pid on both, started in the
    same second, on the same file: no id is POSTed twice (the owner of a
    claim must not be taken for the other run's)."""
    m = mocks("--latency-ms", 3)
    ids = list(range(1, 301))
    f = write_letters(tmp_path / "twin.xml", ids)
    twins = [lab.host("twin"), lab.host("twin")]
    runs = start_in_same_second(lab, twins, net_store, m, [f, "--json"],
                                tmp_path, concurrency=8)
    pids = [r.p.inner_pid for r in runs]
    results = [r.finish() for r in runs]
    assert pids[0] is not None and pids[0] == pids[1], (pids, results)
    for r in results:
        assert r.code in (0, 1), r
    twice = ids_posted_twice(m)
    assert not twice, "ids POSTed twice: %s\n%s" % (
        sorted(twice)[:20], "\n".join(results))
    assert set(m.posts_per_id()) == set(ids)
    rows = net_store.rows()
    assert set(rows) == set(ids)
    assert all(st == 1 for ts, st in rows.values())


def test_database_link_cut_for_3_s(lab, net_store, mocks, tmp_path):
    """The database host's cable pulled for 3 s while two hosts send,
    then plugged back: both runs finish, every id is done, none is POSTed
    twice."""
    m = mocks("--latency-ms", 30)
    ids = list(range(1, 601))
    files = [write_letters(tmp_path / "a.xml", ids[:400]),
             write_letters(tmp_path / "b.xml", ids[200:])]
    runs = [lab.start(lab.host(), net_store, m, [f, "--json"], tmp_path,
                      concurrency=4) for f in files]
    assert wait_for(lambda: len(m.posts_per_id()) >= 40, 20)
    lab.db.link(False)
    try:
        time.sleep(3)
        alive = [r.p.poll() is None for r in runs]
    finally:
        lab.db.link(True)
    results = [r.finish(timeout=150) for r in runs]
    assert all(alive), "a run ended while the link was down:\n%s" % \
        "\n".join(results)
    for r in results:
        assert r.code in (0, 1), r
    twice = ids_posted_twice(m)
    assert not twice, "ids POSTed twice: %s" % sorted(twice)[:20]
    rows = net_store.rows()
    assert set(rows) == set(ids), "\n".join(results)
    assert all(st == 1 for ts, st in rows.values())


def overlapping_files(tmp_path, n_ids, n_files=4, seed=12):
    """n_files files over ids 1..n_ids, each id in two or three of them
    (the next one or two files after its own), each file in its own
    shuffled order, so that runs meet each other's claims everywhere."""
    import random
    rnd = random.Random(seed)
    per_file = [[] for _ in range(n_files)]
    for i in range(1, n_ids + 1):
        k = i % n_files
        for j in range(2 + i % 2):
            per_file[(k + j) % n_files].append(i)
    paths = []
    for k, ids in enumerate(per_file):
        rnd.shuffle(ids)
        paths.append(write_letters(tmp_path / ("o%d.xml" % k), ids))
    return paths, per_file


def check_waited_runs(results, per_file, mock, store, n_ids):
    """Every id POSTed once, every run exit 0 with its letters done, and
    some of them seen done by another run (else nothing was waited for)."""
    sums = []
    for r, ids in zip(results, per_file):
        assert r.code == 0, r
        s = r.json()
        assert s["letters"] == len(ids), r
        assert s["delivered"] + s["skipped"] == len(ids), r
        assert s["deferred"] == 0 and s["done_elsewhere"] <= s["skipped"]
        sums.append(s)
    twice = ids_posted_twice(mock)
    assert not twice, "ids POSTed twice: %s\n%s" % (sorted(twice)[:20],
                                                    "\n".join(results))
    assert set(mock.posts_per_id()) == set(range(1, n_ids + 1))
    assert sum(s["delivered"] for s in sums) == n_ids
    assert sum(s["done_elsewhere"] for s in sums) > 0, \
        "no run met another's claim: the test proves nothing\n%s" % \
        "\n".join(results)
    rows = store.rows()
    assert set(rows) == set(range(1, n_ids + 1))
    assert not store.claimed_ids()


def test_wait_four_hosts_overlapping_files(lab, net_store, mocks, tmp_path):
    """4 sender hosts, each id in 2 or 3 of their files, --wait: every id
    POSTed exactly once and all four runs end with exit 0."""
    n_ids = 400
    m = mocks("--latency-ms", 20)
    files, per_file = overlapping_files(tmp_path, n_ids)
    runs = [lab.start(lab.host(), net_store, m, [f, "--wait", "--json"],
                      tmp_path, concurrency=8) for f in files]
    results = [r.finish(timeout=150) for r in runs]
    check_waited_runs(results, per_file, m, net_store, n_ids)


def test_wait_sqlite_one_host(lab, mocks, tmp_path):
    """The same with four runs on one host sharing one SQLite file."""
    if "sqlite" not in ALL_BACKENDS:
        pytest.skip("sqlite not in $SENDER_TEST_BACKENDS")
    store = lab.store("sqlite", tmp_path)
    n_ids = 600
    m = mocks("--latency-ms", 20)
    files, per_file = overlapping_files(tmp_path, n_ids)
    h = lab.host()
    runs = [lab.start(h, store, m, [f, "--wait", "--json"], tmp_path,
                      concurrency=8) for f in files]
    results = [r.finish(timeout=150) for r in runs]
    check_waited_runs(results, per_file, m, store, n_ids)


def read_journal(path):
    """The ids of a journal (see src/journal.h): one tab-separated line per
    answer after a comment line."""
    ids = []
    if Path(path).exists():
        for line in Path(path).read_text().splitlines():
            if line and not line.startswith("#"):
                ids.append(int(line.split("\t")[0]))
    return ids


def test_journal_before_reclaim(lab, net_store, mocks, tmp_path):
    """The database killed mid-run past reconnect_timeout: exit 4, the
    answers it could not take go to the journal.  Then, the database back,
    a run with --reclaim on the same file: not one journaled id is POSTed
    again (the journal is replayed before anything is claimed), and every
    id ends done."""
    server = lab.mariadb if net_store.name == "mysql" else lab.ferretdb
    journal = tmp_path / "sender.journal"
    plain = net_store.config_section

    def config_section(**kw):
        # the journal in [store], a short reconnect_timeout in the
        # backend's own section (the last one)
        return plain(**kw).replace(
            "[store]\n", "[store]\njournal = %s\n" % journal, 1) + \
            "reconnect_timeout = 1\n"
    net_store.config_section = config_section
    ids = list(range(1, 401))
    f = write_letters(tmp_path / "j.xml", ids)
    m = mocks("--latency-ms", 40)
    h = lab.host()
    a = lab.start(h, net_store, m, [f, "--json"], tmp_path, concurrency=8)
    assert wait_for(lambda: len(m.posts_per_id()) >= 60, 30)
    server.kill()
    try:
        ra = a.finish(timeout=120)
    finally:
        server.restart()
    assert ra.code == 4, ra
    journaled = read_journal(journal)
    assert journaled, "nothing was journaled:\n%s" % ra
    before = m.posts_per_id()
    rb = lab.start(h, net_store, m, [f, "--reclaim", "--json"], tmp_path,
                   concurrency=8).finish()
    after = m.posts_per_id()
    again = sorted(i for i in journaled if after[i] > before[i])
    assert not again, "%d journaled ids POSTed again: %s\n%s" % (
        len(again), again[:20], rb)
    assert rb.code == 0, rb
    rows = net_store.rows()
    assert set(rows) == set(ids)
    assert all(st == 1 for ts, st in rows.values())


# ------------------------------------------------ the journal, one host

JOURNAL_HEADER = "# sender journal 1: apply with 'sender --replay FILE'\n"


def journal_config(sender, api_url, journal):
    return sender.config(api_url).replace(
        "[store]\n", "[store]\njournal = %s\n" % journal, 1)


def test_pending_journal_is_replayed_before_claiming(store, sender, mock,
                                                    tmp_path):
    """A journal with answers of ids 3 and 4 (as a run that lost its
    database leaves it): the next run records them first and does not
    POST them; the journal is kept aside as JOURNAL.replayed."""
    m = mock()
    journal = tmp_path / "sender.journal"
    journal.write_text(JOURNAL_HEADER +
                       "3\t2024-01-02 03:04:05\t1\t1\t\n"
                       "4\t2024-01-02 03:04:06\t0\t2\t\n")
    f = write_letters(tmp_path / "l.xml", range(1, 7))
    r = sender.run([f, "--json"],
                   config=journal_config(sender, m.url, journal))
    assert r.code == 0, r
    assert str(journal) in r.err and "replayed 2 answers" in r.err, r
    assert set(m.posts_per_id()) == {1, 2, 5, 6}
    rows = store.rows()
    assert rows[3] == ("2024-01-02 03:04:05", 1)
    assert rows[4] == ("2024-01-02 03:04:06", 0)
    assert not journal.exists()
    assert Path(str(journal) + ".replayed").exists()


def test_bad_journal_refuses_to_claim(store, sender, mock, tmp_path):
    """A journal that cannot be replayed (a bad line): nothing is claimed
    or POSTed, and the message names the journal to replay."""
    m = mock()
    journal = tmp_path / "sender.journal"
    journal.write_text(JOURNAL_HEADER + "3\tnot a time\t1\t1\t\n")
    f = write_letters(tmp_path / "l.xml", range(1, 7))
    r = sender.run([f], config=journal_config(sender, m.url, journal))
    assert r.code == 3, r
    assert "sender --replay %s" % journal in r.err, r
    assert not m.posts_per_id()
    assert not store.claimed_ids() and 3 not in store.rows()
    assert journal.exists()


def test_wait_does_not_wait_for_a_dead_run(store, sender, mock, tmp_path):
    """--wait meets claims of a run killed with SIGKILL: it does not wait
    for them (their run is gone), skips them as held (exit 1) and POSTs
    none; --wait --reclaim then takes them over and ends with exit 0."""
    slow, fast = mock("--latency-ms", 5000), mock()
    f = write_letters(tmp_path / "d.xml", range(1, 101))
    k, out, err = sender.popen([f], api_url=slow.url, concurrency=4)

    def claimed():
        try:
            return len(store.claimed_ids()) > 0
        except Exception:  # the schema is not there yet
            return False
    try:
        assert wait_for(claimed, 20)
    finally:
        k.kill()
        k.wait()
    held = store.claimed_ids()
    r = sender.run([f, "--wait", "--json"], api_url=fast.url,
                   run_timeout=30)
    assert r.code == 1, r
    s = r.json()
    assert s["skipped"] == len(held) and s["done_elsewhere"] == 0, r
    assert s["delivered"] == 100 - len(held), r
    assert not held & set(fast.posts_per_id())
    r = sender.run([f, "--wait", "--reclaim", "--json"], api_url=fast.url,
                   run_timeout=30)
    assert r.code == 0, r
    assert r.json()["delivered"] == len(held), r
    assert set(fast.posts_per_id()) == set(range(1, 101))


def popen_stdin(sender, args, stdin_path, config_text):
    """sender -c CONFIG ARGS with standard input from stdin_path."""
    config = write_config(config_text, sender.tmp_path)
    out, err = sender.tmp_path / "stdin.out", sender.tmp_path / "stdin.err"
    argv = [str(SENDER_BIN), "-c", str(config)] + [str(a) for a in args]
    with open(stdin_path, "rb") as fi, open(out, "wb") as fo, \
            open(err, "wb") as fe:
        p = subprocess.Popen(argv, stdin=fi, stdout=fo, stderr=fe,
                             cwd=REPO, env=sender_env())
    p.argv = argv
    return p, out, err


@pytest.mark.parametrize("how", ["--wait", "wait = true, stdin"])
def test_wait_sends_what_the_other_run_releases(store, sender, mock,
                                               tmp_path, how):
    """A run holds claims (slow API) when a --wait run on the same file
    meets them; the first is stopped with SIGTERM and releases the claims
    it did not send: the waiting run claims and sends those, counts the
    ones the first finished as done_elsewhere, and exits 0.  Every id is
    POSTed once over both runs.  The same with [store] wait = true and the
    letters on standard input (kept in memory: stdin is read once)."""
    slow, fast = mock("--latency-ms", 1500), mock()
    ids = range(1, 121)
    f = write_letters(tmp_path / "r.xml", ids)
    a, aout, aerr = sender.popen([f, "--json"], api_url=slow.url,
                                 concurrency=2)

    def claimed():
        try:
            return len(store.claimed_ids()) >= 60
        except Exception:  # the schema is not there yet
            return False
    try:
        assert wait_for(claimed, 20)
        if how == "--wait":
            w, wout, werr = sender.popen([f, "--wait", "--json"],
                                         api_url=fast.url, concurrency=8)
        else:
            text = sender.config(fast.url, concurrency=8).replace(
                "[store]\n", "[store]\nwait = true\n", 1)
            w, wout, werr = popen_stdin(sender, ["-", "--json"], f, text)
        # w has sent the rest and is waiting when no id is left unclaimed
        assert wait_for(lambda: len(store.rows()) == len(ids) and
                        len(fast.posts_per_id()) > 0, 20)
        time.sleep(0.5)
        assert w.poll() is None, "the --wait run did not wait"
    finally:
        a.send_signal(signal.SIGTERM)
        a.wait(30)
    ra = result_of(a, aout, aerr)
    w.wait(60)
    rw = result_of(w, wout, werr)
    assert ra.code == 143, ra
    assert rw.code == 0, rw
    sa, sw = ra.json(), rw.json()
    assert sa["delivered"] > 0 and sa["deferred"] > 0, ra
    # what the first run finished before the waiting one first looked
    # comes back done at once (skipped); what it finished while the other
    # waited (its drain on SIGTERM at least) is done_elsewhere.  Under
    # valgrind the waiting run starts late enough to meet both kinds.
    assert sw["skipped"] == sa["delivered"], (ra, rw)
    assert 0 < sw["done_elsewhere"] <= sa["delivered"], (ra, rw)
    assert sw["delivered"] == len(ids) - sa["delivered"], rw
    posts = slow.posts_per_id() + fast.posts_per_id()
    assert set(posts) == set(ids) and set(posts.values()) == {1}, posts
    assert not store.claimed_ids()


# ------------------------------------------------ --reclaim beside live runs

def test_reclaim_beside_a_live_run(store, sender, mock, tmp_path):
    """One host: a live run holding claims (slow API), a third run killed
    with SIGKILL holding others; a second run with --reclaim takes over
    every claim of the killed run and none of the live one's (the live
    run's claims name a process that still exists)."""
    slow_live, slow_dead, fast = (mock("--latency-ms", 4000),
                                  mock("--latency-ms", 4000), mock())
    live_ids, dead_ids = range(1, 101), range(101, 201)
    f_live = write_letters(tmp_path / "live.xml", live_ids)
    f_dead = write_letters(tmp_path / "dead.xml", dead_ids)
    f_all = write_letters(tmp_path / "all.xml", range(1, 201))

    def claimed(ids):
        def pred():
            try:
                return bool(store.claimed_ids() & set(ids))
            except Exception:  # the schema is not there yet
                return False
        return pred
    live, lout, lerr = sender.popen([f_live], api_url=slow_live.url,
                                    concurrency=2)
    k, _, _ = sender.popen([f_dead], api_url=slow_dead.url, concurrency=2)
    try:
        assert wait_for(claimed(live_ids), 20)
        assert wait_for(claimed(dead_ids), 20)
        k.kill()
        k.wait()
        dead_claims = store.claimed_ids() & set(dead_ids)
        live_claims = store.claimed_ids() & set(live_ids)
        r = sender.run([f_all, "--reclaim", "--json"], api_url=fast.url,
                       run_timeout=60)
        assert live.poll() is None, "the live run ended too soon"
    finally:
        live.send_signal(signal.SIGTERM)
        live.wait(30)
    sent = set(fast.posts_per_id())
    assert not sent & live_claims, "took the live run's claims: %s\n%s" % (
        sorted(sent & live_claims)[:20], r)
    assert dead_claims <= sent, "left the killed run's claims: %s\n%s" % (
        sorted(dead_claims - sent)[:20], r)
    assert r.code == 1, r  # the live run's letters: claimed elsewhere


def test_host_killed_whole_then_reclaim(lab, net_store, mocks, tmp_path):
    """Three hosts send; one is killed whole (SIGKILL to everything in
    it) mid-run while the other two keep sending.  A fourth host runs
    --reclaim with a short claim_lease once the dead host's claims are
    older than it: it takes over exactly the dead host's claims, none of
    the live runs' (theirs are younger: they keep claiming as they go);
    in the end every id is done, and the only ids POSTed twice are ones
    the dead host had claimed."""
    # a live run holds a claim for the time it takes to send a claim batch
    # (64 letters at -j 8 and 200 ms: 1.6 s, more on a loaded machine):
    # the lease must be well above that, or the rule takes live claims
    lease = 6
    plain = net_store.config_section
    net_store.config_section = lambda **kw: plain(**kw).replace(
        "[store]\n", "[store]\nclaim_lease = %d\n" % lease, 1)
    m = mocks("--latency-ms", 200)
    per_host = 500
    ids = [range(1 + k * per_host, 1 + (k + 1) * per_host) for k in range(3)]
    files = [write_letters(tmp_path / ("k%d.xml" % k), ids[k])
             for k in range(3)]
    hosts = [lab.host() for _ in range(3)]
    runs = [lab.start(h, net_store, m, [f, "--json"], tmp_path,
                      concurrency=8) for h, f in zip(hosts, files)]
    dead = set(ids[2])
    assert wait_for(lambda: len(set(m.posts_per_id()) & dead) >= 16, 30)
    hosts[2].kill()
    dead_claims = net_store.claimed_ids() & dead
    assert dead_claims, "the dead host held no claims"
    time.sleep(lease + 1)
    assert all(r.p.poll() is None for r in runs[:2]), \
        "a live run ended before --reclaim: the test proves nothing"
    live_claims = net_store.claimed_ids() - dead
    # the reclaiming host gets an API of its own, to tell its POSTs apart
    m2 = mocks()
    rr = lab.start(lab.host(), net_store, m2,
                   [lab.all_file(tmp_path, files), "--reclaim", "--json"],
                   tmp_path, concurrency=8).finish()
    results = [r.finish() for r in runs[:2]]
    for r in results:
        assert r.code in (0, 1), r
    assert rr.code in (0, 1), rr
    by_reclaim = set(m2.posts_per_id())
    assert dead_claims <= by_reclaim, sorted(dead_claims - by_reclaim)[:20]
    assert not by_reclaim & live_claims, sorted(by_reclaim & live_claims)
    posts = m.posts_per_id() + m2.posts_per_id()
    twice = {i for i, n in posts.items() if n > 1}
    assert twice <= dead_claims, "POSTed twice (live hosts, reclaim): %s" % [
        (i, m.posts_per_id()[i], m2.posts_per_id()[i])
        for i in sorted(twice - dead_claims)[:20]]
    rows = net_store.rows()
    assert set(rows) == set(range(1, 3 * per_host + 1))
    assert not net_store.claimed_ids()


# ------------------------------------------------ MySQL's claims table

@pytest.fixture
def my(store):
    if store.name != "mysql":
        pytest.skip("mysql only")
    return store


def test_mysql_claims_table_and_status(my, sender, mock, tmp_path):
    """A MySQL claim names its run and its time in TABLE_claims while it
    is held, and nothing is left there once the run is done; `results`
    keeps SPEC's three columns; --status shows the oldest claim's age."""
    slow, fast = mock("--latency-ms", 3000), mock()
    f = write_letters(tmp_path / "c.xml", range(1, 41))
    p, out, err = sender.popen([f], api_url=slow.url, concurrency=2)
    claims = "%s_claims" % my.table

    def claimed():
        try:
            return len(my.query("SELECT id FROM `%s`" % claims)) > 0
        except Exception:  # not created yet
            return False
    try:
        assert wait_for(claimed, 20)
        time.sleep(1.2)
        rows = my.query("SELECT c.id, c.owner, c.claimed_at FROM `%s` c "
                        "JOIN `%s` r USING (id) WHERE r.ts IS NULL"
                        % (claims, my.table))
        st = sender.run(["--status"], api_url=fast.url)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(30)
    assert rows and all(o.split(":")[1] != "" for _, o, _ in rows), rows
    assert len({o for _, o, _ in rows}) == 1, rows
    assert st.code == 0, st
    age = [line for line in st.out.splitlines()
           if line.startswith("oldest claim:")]
    assert age and age[0].split()[2].isdigit() and \
        int(age[0].split()[2]) >= 1, st
    cols = [c[0] for c in my.query(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE "
        "TABLE_SCHEMA = 'sender' AND TABLE_NAME = %s ORDER BY "
        "ORDINAL_POSITION", (my.table,))]
    assert cols == ["id", "ts", "delivery_status"]
    r = sender.run([f, "--json"], api_url=fast.url)
    assert r.code == 0, r
    assert not my.query("SELECT id FROM `%s`" % claims)
    my.query("DROP TABLE IF EXISTS `%s`" % claims)


def test_mysql_claims_without_owner_need_reclaim_all(my, sender, mock,
                                                    tmp_path):
    """Claims made before the claims table existed (rows of `results`
    with ts NULL and no owner): a run skips them, --reclaim leaves them
    (their run cannot be judged gone), --status reports them, and only
    --reclaim=all takes them over and sends them."""
    m = mock()
    r = sender.run([write_letters(tmp_path / "z.xml", [99])],
                   api_url=m.url)
    assert r.code == 0, r
    my.query("INSERT INTO `%s` (id) VALUES (1), (2), (3)" % my.table)
    f = write_letters(tmp_path / "o.xml", range(1, 6))
    try:
        r = sender.run([f, "--json"], api_url=m.url)
        assert r.code == 1 and r.json()["skipped"] == 3, r
        r = sender.run([f, "--reclaim", "--json"], api_url=m.url)
        assert r.code == 1 and r.json()["skipped"] == 5, r  # 4, 5 done
        st = sender.run(["--status"], api_url=m.url)
        assert "owner unknown:    3" in st.out, st
        assert not {1, 2, 3} & set(m.posts_per_id())
        r = sender.run([f, "--reclaim=all", "--json"], api_url=m.url)
        assert r.code == 0 and r.json()["delivered"] == 3, r
        assert {1, 2, 3} <= set(m.posts_per_id())
        r = sender.run([f, "--reclaim=bogus"], api_url=m.url)
        assert r.code == 2 and "--reclaim" in r.err, r
    finally:
        my.query("DROP TABLE IF EXISTS `%s_claims`" % my.table)


# ------------------------------------------------ MySQL over TLS

@pytest.fixture
def bed_mysql(lab, tmp_path):
    if "mysql" not in NET_BACKENDS:
        pytest.skip("mysql not in $SENDER_TEST_BACKENDS")
    s = lab.store("mysql", tmp_path)
    yield s
    s.teardown()


def tls_config(store, mock, mode, ca):
    section = store.config_section() + "ssl_mode = %s\n" % mode
    if ca:
        section += "ssl_ca = %s\n" % ca
    return make_config(store, mock.url).replace(store.config_section(),
                                                section)


def test_mysql_tls_verify_identity(lab, bed_mysql, mocks, tmp_path):
    """The database host's MariaDB speaks TLS with a certificate for
    198.18.0.1 signed by the test's CA: ssl_mode = verify_identity with
    that CA sends; a CA that did not sign it is exit 4 naming the TLS
    error, with nothing claimed or sent (verify_ca alike); required
    sends over TLS without checking."""
    m = mocks()
    tls = lab.mariadb.tls
    f = write_letters(tmp_path / "t.xml", range(1, 11))
    h = lab.host()

    def run(mode, ca):
        config = write_config(tls_config(bed_mysql, m, mode, ca), tmp_path)
        lab.seq += 1
        return Run(h, [SENDER_BIN, "-c", config, f, "--json"],
                   tmp_path / ("out%d" % lab.seq),
                   tmp_path / ("err%d" % lab.seq)).finish()
    for mode in ("verify_identity", "verify_ca"):
        r = run(mode, tls["wrong-ca"])
        assert r.code == 4, r
        assert "TLS" in r.err and "certificate" in r.err, r
        assert "ssl_mode" in r.err, r
    assert not m.posts_per_id()
    before = int(lab.mariadb.sql(
        "SHOW GLOBAL STATUS LIKE 'Ssl_accepts'")[0][1])
    r = run("verify_identity", tls["ca"])
    assert r.code == 0 and r.json()["delivered"] == 10, r
    r = run("required", None)
    assert r.code == 0 and r.json()["skipped"] == 10, r
    after = int(lab.mariadb.sql(
        "SHOW GLOBAL STATUS LIKE 'Ssl_accepts'")[0][1])
    assert after >= before + 2, (before, after)


def test_mysql_tls_settings_checked(sender, store, mock, tmp_path):
    """A bad ssl_mode, or verify_ca without ssl_ca, is a configuration
    error (exit 2) naming the file, line and key, before any connection."""
    if store.name != "mysql":
        pytest.skip("mysql only")
    m = mock()
    f = write_letters(tmp_path / "s.xml", [1])
    for extra, key in (("ssl_mode = sometimes\n", "ssl_mode"),
                       ("ssl_mode = verify_ca\n", "ssl_ca"),
                       ("ssl_cert = /x.pem\n", "ssl_key")):
        text = sender.config(m.url).replace(
            store.config_section(), store.config_section() + extra)
        r = sender.run([f], config=text)
        assert r.code == 2, r
        assert key in r.err and ".ini:" in r.err, r
    assert not m.posts_per_id()


def test_held_message_names_a_pending_journal(store, sender, mock,
                                              tmp_path):
    """A run that ends with letters held by another run, while a journal
    of unrecorded answers exists (another run lost its database meanwhile),
    says to replay that journal before thinking of --reclaim."""
    slow, fast = mock("--latency-ms", 4000), mock("--latency-ms", 1500)
    journal = tmp_path / "sender.journal"
    text = journal_config(sender, fast.url, journal)
    # the killed run claims a batch of 64, the next run the other 16
    f = write_letters(tmp_path / "h.xml", range(1, 81))
    k, _, _ = sender.popen([f], api_url=slow.url, concurrency=2)

    def claimed():
        try:
            return len(store.claimed_ids()) > 0
        except Exception:  # the schema is not there yet
            return False
    try:
        assert wait_for(claimed, 20)
    finally:
        k.kill()
        k.wait()
    r, out, err = sender.popen([f], config=text)
    # once the run has claimed what it could and sends it, slowly (past its
    # start, where a journal found would be replayed first: under valgrind
    # that takes seconds), a journal appears, as another run's database
    # failure would leave it
    def sending():
        st = fast.stats()
        return st["in_flight"] > 0 or st["requests"] > 0
    assert wait_for(sending, 60)
    journal.write_text(JOURNAL_HEADER + "500\t2024-01-02 03:04:05\t1\t1\t\n")
    r.wait(60)
    res = result_of(r, out, err)
    assert res.code == 1, res
    assert "sender --replay %s" % journal in res.err, res
