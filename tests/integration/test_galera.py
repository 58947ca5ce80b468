"""Issue 13: sender on a MariaDB Galera cluster, on the namespace test bed.

Three database hosts n1, n2, n3 (tests/hosts/netns.py) each run one node
of a Galera cluster (tests/lib/galera.sh): clients reach a node on the
bed's network (198.18.0.0/25, eth0), the nodes replicate on a network of
their own (198.18.0.128/25, eth1, a second bridge made here), so that a node
can be cut off from the cluster while its clients still reach it -- and
are told "WSREP has not yet prepared node for application use" (1047).

Three sender hosts s1, s2, s3: s<i> lists n<i> first in [mysql] host,
then the two others.  Each sender host POSTs to a mock API on its own
loopback (reached by the test through that host), so that only the
database's network is ever cut; an id POSTed twice shows as a count of 2
over the three mocks.

Everything lives in namespaces held by the bed: the servers die with the
test run, however it ends.  Needs root, unshare, mariadbd, galera-4 and
rsync; elsewhere every test here is skipped.
"""

import collections
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import (REPO, SENDER_BIN, MOCK_BIN, Mock, result_of,
                      sender_env, wait_for, write_letters)

sys.path.insert(0, str(REPO / "tests" / "hosts"))
import netns  # noqa: E402

GALERA_SH = REPO / "tests" / "lib" / "galera.sh"
PROVIDER = Path("/usr/lib/galera/libgalera_smm.so")
REPL_NET = "198.18.0"
# the replication network: 198.18.0.129-131/25 (the bed has the lower half)
REPL_BASE = 128
MYSQL_PORT = 3306
API_PORT = 8080
# A node cut off is noticed in about 2 s, and let back in soon after.
PROVIDER_OPTIONS = ("evs.keepalive_period=PT0.5S;evs.suspect_timeout=PT2S;"
                    "evs.inactive_timeout=PT3S;evs.inactive_check_period="
                    "PT0.5S;evs.install_timeout=PT3S;gmcast.peer_timeout=PT1S")
CONFLICTS_RE = re.compile(r"mysql: (\d+) conflicts with other runs retried")

pytestmark = pytest.mark.skipif(
    "mysql" not in [n.strip() for n in
                    os.environ.get("SENDER_TEST_BACKENDS", "sqlite").split(",")],
    reason="mysql is not in $SENDER_TEST_BACKENDS")


def conflicts_of(r):
    """The certification conflicts a run retried (its -v line), or 0."""
    m = CONFLICTS_RE.search(r.err)
    return int(m.group(1)) if m else 0


# ------------------------------------------------------------- cluster

class Node:
    """One Galera node, tests/lib/galera.sh inside its host.  The test
    reads through the node's unix socket (a file: any namespace)."""

    def __init__(self, host, directory, index, members, password):
        self.host = host
        self.dir = Path(directory)
        self.name = host.name
        self.repl_addr = "%s.%d" % (REPL_NET, REPL_BASE + index)
        self.members = members
        self.password = password

    def _script(self, *args, check=True, timeout=180):
        env = dict(os.environ, GALERA_ADDR=self.repl_addr,
                   GALERA_BIND=self.host.addr, GALERA_NAME=self.name,
                   GALERA_CLUSTER=self.members,
                   GALERA_PROVIDER_OPTIONS=PROVIDER_OPTIONS,
                   MARIADB_U1_PASSWORD=self.password)
        env["PATH"] = env.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"
        p = self.host.run(["bash", GALERA_SH] + list(args) + [], env=env,
                          check=False, timeout=timeout)
        if check:
            assert p.returncode == 0, "galera.sh %s on %s: %s" % (
                args[0], self.name, p.stderr)
        return p

    def bootstrap(self):
        self._script("bootstrap", self.dir)

    def start(self):
        self._script("start", self.dir)

    def kill(self):
        self._script("kill", self.dir)

    def status(self):
        return self._script("status", self.dir, check=False).stdout.strip()

    def wait_synced(self, size, seconds=90):
        self._script("wait", self.dir, size, seconds)

    def running(self):
        pid = (self.dir / "mariadb.pid")
        try:
            return Path("/proc/%s/comm" % pid.read_text().strip()) \
                .read_text().strip() == "mariadbd"
        except (OSError, ValueError):
            return False

    def sql(self, statement):
        p = self._script("sql", self.dir, statement)
        return [line.split("\t") for line in p.stdout.splitlines()]

    def connect(self):
        import pymysql
        return pymysql.connect(unix_socket=str(self.dir / "mysqld.sock"),
                               user="root", database="sender",
                               autocommit=True)


class HostMock(Mock):
    """tests/mock_api on a sender host's own loopback; the test reaches
    its /stats and /flush through that host."""

    def __init__(self, host, workdir, options, port):
        workdir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.log_path = workdir / "requests.log"
        self.options = [str(o) for o in options]
        self._stderr = open(workdir / "mock.stderr", "w+")
        self._final_stats = None
        self.port = port
        self.base = "http://127.0.0.1:%d" % self.port
        self.url = self.base + "/api.php"
        port_file = workdir / "port"
        self.proc = host.popen(
            [MOCK_BIN, "--port", self.port, "--port-file", port_file,
             "--log", self.log_path] + self.options,
            stdout=self._stderr, stderr=self._stderr)
        assert wait_for(lambda: port_file.exists() and
                        port_file.read_text().strip(), 15), \
            "mock_api did not start on %s" % host.name

    def _get(self, path):
        p = self.host.run([sys.executable, "-c",
                           "import sys, urllib.request as u; sys.stdout."
                           "buffer.write(u.urlopen(sys.argv[1], timeout=10)"
                           ".read())", self.base + path])
        return p.stdout.encode("utf-8", "surrogateescape")


class Run:
    """One sender started on a host; finish() waits and gives a Result."""

    def __init__(self, host, argv, out, err):
        self.host = host
        self.out, self.err = out, err
        with open(out, "wb") as fo, open(err, "wb") as fe:
            self.p = host.popen([str(a) for a in argv], stdout=fo,
                                stderr=fe, env=sender_env())
        self.t0 = time.monotonic()

    def finish(self, timeout=150):
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError("sender on %s ran over %d s:\n%s" % (
                self.host.name, timeout, Path(self.err).read_text()))
        return result_of(self.p, self.out, self.err,
                         time.monotonic() - self.t0)


class Cluster:
    """The module's bed: three nodes, three sender hosts."""

    def __init__(self, bed, directory, datadir):
        self.bed = bed
        self.dir = Path(directory)
        self.password = "u1-" + secrets.token_hex(8)
        hosts = [bed.add_host("n%d" % i) for i in (1, 2, 3)]
        self.senders = [bed.add_host("s%d" % i) for i in (1, 2, 3)]
        self._replication_network(hosts)
        members = ",".join("%s.%d:4567" % (REPL_NET, REPL_BASE + i) for i in (1, 2, 3))
        self.nodes = [Node(h, datadir / h.name, i + 1, members,
                           self.password) for i, h in enumerate(hosts)]
        self.seq = 0
        self.live = []  # mocks of the test under way

    def _replication_network(self, hosts):
        """A second bridge in the bed's switch and a second cable (eth1)
        into every node's host: the cluster's own network."""
        sw = self.bed.switch
        sw.ip("link", "add", "br1", "type", "bridge")
        sw.ip("link", "set", "br1", "up")
        for i, h in enumerate(hosts, 1):
            port = "vr%d" % i
            sw.ip("link", "add", port, "type", "veth", "peer", "name",
                  "eth1", "netns", str(h.pid))
            sw.ip("link", "set", port, "master", "br1", "up")
            h.ip("addr", "add", "%s.%d/25" % (REPL_NET, REPL_BASE + i), "dev", "eth1")
            h.ip("link", "set", "eth1", "up")

    def boot(self):
        self.nodes[0].bootstrap()
        for n in self.nodes[1:]:
            n.start()
        for n in self.nodes:
            n.wait_synced(3)

    def healthy(self):
        """Every node back and synced, e.g. after a test that killed one."""
        for n in self.nodes:
            if not n.running():
                n.start()
        for n in self.nodes:
            n.wait_synced(3)

    def host_list(self, first):
        """[mysql] host for a sender of node first (0-based): it first."""
        order = [self.nodes[(first + k) % 3] for k in range(3)]
        return ",".join("%s:%d" % (n.host.addr, MYSQL_PORT) for n in order)

    def config(self, tmp_path, mock, table, host, extra=""):
        self.seq += 1
        path = tmp_path / ("sender-%d.ini" % self.seq)
        path.write_text(
            "[api]\nurl = %s\ntimeout = 10\n\n"
            "[retry]\nmax_attempts = 8\nbase_delay_ms = 5\n"
            "max_delay_ms = 50\n\n"
            "[store]\nbackend = mysql\n\n"
            "[mysql]\nhost = %s\nuser = u1\npassword = %s\n"
            "database = sender\ntable = %s\nreconnect_timeout = 60\n%s"
            % (mock.url, host, self.password, table, extra))
        return path

    def start(self, k, tmp_path, mock, table, files, args=(), host=None,
              concurrency=8):
        """sender on sender host k (0-based) on its node first."""
        config = self.config(tmp_path, mock, table,
                             host or self.host_list(k))
        self.seq += 1
        return Run(self.senders[k],
                   [SENDER_BIN, "-c", config, "-v", "-j", concurrency] +
                   list(args) + [str(f) for f in files],
                   tmp_path / ("out%d" % self.seq),
                   tmp_path / ("err%d" % self.seq))

    def mocks(self, tmp_path, *options):
        self.seq += 1
        ms = [HostMock(h, tmp_path / ("mock%d-%s" % (self.seq, h.name)),
                       options, API_PORT + self.seq) for h in self.senders]
        self.live += ms
        return ms

    def stop_mocks(self):
        for m in self.live:
            m.stop()
        self.live = []


def missing():
    reason = netns.available()
    if reason:
        return reason
    for tool in ("mariadbd", "rsync"):
        if shutil.which(tool, path=os.environ.get("PATH", "") +
                        ":/usr/sbin:/sbin") is None:
            return "%s is not installed (make deps-test)" % tool
    if not PROVIDER.exists():
        return "galera-4 is not installed (make deps-test)"
    return None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = missing()
    if reason:
        pytest.skip("skipped: %s" % reason)
    directory = tmp_path_factory.mktemp("galera")
    # the nodes run as user mysql: their files live in a directory that
    # user can reach (pytest's own is private to root)
    datadir = Path(tempfile.mkdtemp(prefix="sender-galera-"))
    datadir.chmod(0o755)
    bed = netns.Bed(directory)
    try:
        c = Cluster(bed, directory, datadir)
        c.boot()
        yield c
    finally:
        bed.close()
        shutil.rmtree(datadir, ignore_errors=True)


@pytest.fixture
def table(cluster):
    """A fresh table name; the cluster whole and synced before the test."""
    cluster.healthy()
    name = "galera_%s" % secrets.token_hex(4)
    yield name
    cluster.stop_mocks()
    try:
        cluster.nodes[0].sql("DROP TABLE IF EXISTS `%s`" % name)
    except AssertionError:
        pass


# ------------------------------------------------------------- helpers

def overlapping_files(tmp_path, n_ids, tag=""):
    """Three files over ids 1..n_ids, each id in two or three of them,
    in different orders."""
    files = []
    for k in range(3):
        ids = [i for i in range(1, n_ids + 1) if i % 3 != k or i % 7 == 0]
        ids = ids[k * 97 % len(ids):] + ids[:k * 97 % len(ids)]
        files.append(write_letters(tmp_path / ("f%d%s.xml" % (k, tag)), ids))
    return files


def posts(mocks):
    """id -> POSTs over every mock."""
    total = collections.Counter()
    for m in mocks:
        total.update(r.id for r in m.requests())
    return total


def table_rows(node, table):
    """id -> (ts is null, delivery_status) on that node."""
    return {int(i): (null == "1", st)
            for i, null, st in node.sql(
                "SELECT id, ts IS NULL, delivery_status FROM `%s`" % table)}


def assert_all_done_once(cluster, table, mocks, n_ids, node=None):
    """Every id POSTed exactly once; every node (or node) holds each id
    once, delivered."""
    p = posts(mocks)
    twice = sorted(i for i, c in p.items() if c > 1)
    assert not twice, "POSTed more than once: %s" % twice[:50]
    assert set(p) == set(range(1, n_ids + 1)), \
        "never POSTed: %s" % sorted(set(range(1, n_ids + 1)) - set(p))[:50]
    for n in ([node] if node else cluster.nodes):
        rows = table_rows(n, table)
        assert set(rows) == set(range(1, n_ids + 1)), n.name
        bad = {i: v for i, v in rows.items() if v != (False, "1")}
        assert not bad, "%s: not delivered: %s" % (n.name,
                                                   list(bad.items())[:20])
        (count, distinct), = n.sql("SELECT COUNT(*), COUNT(DISTINCT id) "
                                   "FROM `%s`" % table)
        assert count == distinct == str(n_ids), n.name


def finish_all(runs):
    """Every run (with --wait) ends with its whole file done: exit 0."""
    out = [r.finish() for r in runs]
    for r in out:
        assert r.code == 0, r
        assert "cannot" not in r.err and "lost the connection" not in r.err, r
    return out


# ------------------------------------------------------------- tests

def test_three_hosts_three_nodes(cluster, table, tmp_path):
    """3 sender hosts, each on its own node, on overlapping files, with
    --wait: every run exits 0, every id is POSTed exactly once, and every
    node holds every id once."""
    n_ids = 1500
    files = overlapping_files(tmp_path, n_ids)
    mocks = cluster.mocks(tmp_path, "--latency-ms", "5")
    runs = [cluster.start(k, tmp_path, mocks[k], table, [files[k]],
                          ["--wait"], concurrency=16) for k in range(3)]
    results = finish_all(runs)
    # --status on each node at once: the cluster's committed state
    for k in range(3):
        st = cluster.start(k, tmp_path, mocks[k], table, [], ["--status"])
        r = st.finish()
        assert r.code == 0, r
        assert re.search(r"^done: +%d$" % n_ids, r.out, re.M), r
        assert re.search(r"^claimed: +0$", r.out, re.M), r
    for n in cluster.nodes:
        n.wait_synced(3)
    assert_all_done_once(cluster, table, mocks, n_ids)
    retried = [conflicts_of(r) for r in results]
    print("\ngalera: 3 hosts on 3 nodes, %d ids: certification conflicts "
          "retried per host %s, total %d" % (n_ids, retried, sum(retried)))


def test_node_killed_mid_run(cluster, table, tmp_path):
    """n2's server is SIGKILLed mid-run: s2 (n2 first in its list) goes on
    with another node; every id done, none POSTed twice (no sender died,
    so none was in flight at a death); n2 rejoins and holds them all."""
    n_ids = 1500
    files = overlapping_files(tmp_path, n_ids)
    mocks = cluster.mocks(tmp_path, "--latency-ms", "30")
    runs = [cluster.start(k, tmp_path, mocks[k], table, [files[k]],
                          ["--wait"], concurrency=4) for k in range(3)]
    assert wait_for(lambda: mocks[1].stats()["requests"] >= 100, 60, 0.1), \
        "s2 did not start sending"
    cluster.nodes[1].kill()
    before = mocks[1].stats()["requests"]
    results = finish_all(runs)
    assert mocks[1].stats()["requests"] > before + 50, \
        "s2 did not go on after its node died:\n%s" % results[1]
    assert_all_done_once(cluster, table, mocks, n_ids,
                         node=cluster.nodes[0])
    cluster.nodes[1].start()
    cluster.nodes[1].wait_synced(3)
    assert_all_done_once(cluster, table, mocks, n_ids)


def test_node_cut_off(cluster, table, tmp_path):
    """n3's cable to the cluster is pulled mid-run (its clients still
    reach it): n3 leaves the primary component and refuses statements
    (1047); s3 moves to another node and keeps sending while n3 is out.
    Once n3 is plugged back it rejoins, and every node holds every id
    once."""
    n_ids = 1500
    files = overlapping_files(tmp_path, n_ids)
    mocks = cluster.mocks(tmp_path, "--latency-ms", "30")
    runs = [cluster.start(k, tmp_path, mocks[k], table, [files[k]],
                          ["--wait"], concurrency=4) for k in range(3)]
    n3 = cluster.nodes[2]
    try:
        assert wait_for(lambda: mocks[2].stats()["requests"] >= 100, 60,
                        0.1), "s3 did not start sending"
        n3.host.ip("link", "set", "eth1", "down")
        assert wait_for(lambda: not n3.status().startswith("Primary"), 20,
                        0.2), "n3 stayed primary: %s" % n3.status()
        out_at = mocks[2].stats()["requests"]
        # s3 sends on while n3 is out of the primary component
        assert wait_for(lambda: mocks[2].stats()["requests"] > out_at + 30,
                        30, 0.2), "s3 did not go on while n3 was cut off: " \
            "%s %s" % (n3.status(), n3.sql("SHOW PROCESSLIST"))
        assert not n3.status().startswith("Primary"), n3.status()
    finally:
        n3.host.ip("link", "set", "eth1", "up")
    finish_all(runs)
    for n in cluster.nodes:
        n.wait_synced(3, 60)
    assert_all_done_once(cluster, table, mocks, n_ids)


def test_forced_certification_conflict(cluster, table, tmp_path):
    """Two runs claim the same ids on two nodes at once, made certain:
    the test holds an uncommitted insert of one id on n2, so that the run
    on n2 has inserted the ids below it and waits; the run on n1 claims
    them all and commits; n2 applies that and aborts the waiting batch
    (a certification conflict).  The batch is run again as a whole and
    finds the ids taken: the run on n2 sends none of them.  Many rounds,
    0 duplicates."""
    rounds, per = 8, 60
    mocks = cluster.mocks(tmp_path)
    n1, n2 = cluster.nodes[0], cluster.nodes[1]
    # the table exists before the first round: made by a run of one id
    seed = write_letters(tmp_path / "seed.xml", [10 ** 6])
    cluster.start(0, tmp_path, mocks[0], table, [seed]).finish()
    retried = []
    for k in range(rounds):
        ids = list(range(k * per + 1, k * per + per + 1))
        f = write_letters(tmp_path / ("r%d.xml" % k), ids)
        gate = n2.connect()
        try:
            with gate.cursor() as cur:
                cur.execute("SET SESSION wsrep_sync_wait = 1")
                cur.execute("START TRANSACTION")
                cur.execute("INSERT INTO `%s` (id) VALUES (%d)" %
                            (table, ids[per // 4]))
            b = cluster.start(1, tmp_path, mocks[1], table, [f],
                              ["--wait", "--json"],
                              host="%s:%d" % (n2.host.addr, MYSQL_PORT))
            # B's claim statement is under way: it cannot end before the
            # gate does (the pause lets it reach the gate's id)
            if not wait_for(lambda: n2.sql(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                    "WHERE USER = 'u1' AND INFO LIKE 'INSERT IGNORE%%%s%%'"
                    % table) != [["0"]], 30, 0.05):
                b.p.kill()
                raise AssertionError(
                    "round %d: the run on n2 never waited for the gate: "
                    "%s\n%s" % (k, n2.sql("SHOW PROCESSLIST"),
                                b.finish()))
            time.sleep(0.3)
            a = cluster.start(0, tmp_path, mocks[0], table, [f],
                              host="%s:%d" % (n1.host.addr, MYSQL_PORT))
            ra = a.finish()
            rb = b.finish()
        finally:
            try:
                gate.rollback()
            except Exception:
                pass  # aborted by the cluster already
            gate.close()
        assert ra.code == 0, ra
        assert rb.code == 0, rb
        # every id skipped: found done, or (--wait) held and then finished
        # by a, which counts as done elsewhere
        assert rb.summary()["skipped"] == per, rb
        assert rb.json()["done_elsewhere"] <= per, rb
        assert ra.summary()["delivered"] == per, ra
        assert rb.summary()["delivered"] == 0, rb
        assert conflicts_of(rb) >= 1, rb
        retried.append(conflicts_of(rb))
    p = posts(mocks)
    assert sorted(i for i, c in p.items() if c > 1) == []
    assert set(p) == set(range(1, rounds * per + 1)) | {10 ** 6}
    print("\ngalera: forced conflicts, %d rounds: retried %s" %
          (rounds, retried))
