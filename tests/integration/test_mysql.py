"""SPEC 5, 6, 7 on the mysql backend: the exact table, connection errors,
UTC timestamps, TCP, a connection cut at a chosen statement.  What every
server backend shares (parallel runs, the server killed, --replay) is in
test_network_store.py.

These tests run (once, not once per backend) when ``mysql`` is in
$SENDER_TEST_BACKENDS, on the MariaDB that backend_mysql.py starts.
"""

import datetime
import re
import time

import pytest

from conftest import (assert_json_summary, assert_refused, assert_ts_between,
                      killed_on_exit, result_of, wait_for,
                      free_port, only_store, utc_now, write_letters)

SPEC_DDL = """CREATE TABLE `%s` (
  `id`              INT(11) UNSIGNED    NOT NULL,
  `ts`              TIMESTAMP           NULL DEFAULT NULL,
  `delivery_status` TINYINT(1) UNSIGNED NULL DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB"""


@pytest.fixture
def store(tmp_path):
    """This module's store is always MySQL (conftest's runs per backend)."""
    yield from only_store("mysql", tmp_path)


@pytest.fixture
def my(store):
    return store


def show_create(my, table):
    (name, ddl), = my.query("SHOW CREATE TABLE `%s`" % table)
    return ddl.replace("`%s`" % table, "`T`")


# ---------------------------------------------------------------- the table

def test_table_created_with_exact_ddl(my, sender, mock, tmp_path):
    """The table the sender creates is the one SPEC's DDL makes, as the
    server itself reports it (SHOW CREATE TABLE)."""
    m = mock()
    r = sender.run([write_letters(tmp_path / "a.xml", [1, 2])],
                   api_url=m.url)
    assert r.code == 0, r
    reference = "ref_" + my.tag
    my.query(SPEC_DDL % reference)
    try:
        want = show_create(my, reference)
    finally:
        my.query("DROP TABLE `%s`" % reference)
    got = show_create(my, my.table)
    assert got == want
    cols = [line.strip() for line in got.splitlines()[1:-1]]
    assert cols == ["`id` int(11) unsigned NOT NULL,",
                    "`ts` timestamp NULL DEFAULT NULL,",
                    "`delivery_status` tinyint(1) unsigned DEFAULT NULL,",
                    "PRIMARY KEY (`id`)"], got
    assert "ENGINE=InnoDB" in got
    assert set(my.rows()) == {1, 2}


def test_existing_spec_table_is_used(my, sender, mock, tmp_path):
    """A table made by hand with SPEC's DDL: a done record and a claim
    (another run's) are both skipped, the claim with exit 1."""
    my.query(SPEC_DDL % my.table)
    my.query("INSERT INTO `%s` VALUES (3, '2020-01-02 03:04:05', 1), "
             "(4, NULL, NULL), (5, '2020-01-02 03:04:05', NULL)" % my.table)
    m = mock()
    r = sender.run([write_letters(tmp_path / "a.xml", range(1, 8)), "--json"],
                   api_url=m.url)
    assert r.code == 1, r
    assert m.posts_per_id() == {1: 1, 2: 1, 6: 1, 7: 1}, r
    assert_json_summary(r, letters=7, delivered=4, skipped=3)
    rows = my.rows()
    assert rows[3] == ("2020-01-02 03:04:05", 1)
    assert rows[4] == (None, None)
    assert rows[5] == ("2020-01-02 03:04:05", None)


MISMATCHES = {
    "ts-datetime": ("ts", SPEC_DDL.replace(
        "`ts`              TIMESTAMP", "`ts` DATETIME")),
    "ts-default-now": ("ts", SPEC_DDL.replace(
        "TIMESTAMP           NULL DEFAULT NULL",
        "TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP")),
    "ts-missing": ("ts", SPEC_DDL.replace(
        "  `ts`              TIMESTAMP           NULL DEFAULT NULL,\n", "")),
    "id-signed": ("id", SPEC_DDL.replace("INT(11) UNSIGNED", "INT(11)")),
    "id-bigint": ("id", SPEC_DDL.replace("INT(11) UNSIGNED",
                                         "BIGINT UNSIGNED")),
    "id-not-key": ("id", SPEC_DDL.replace(
        ",\n  PRIMARY KEY (`id`)", ", KEY (`id`)")),
    "status-signed": ("delivery_status", SPEC_DDL.replace(
        "TINYINT(1) UNSIGNED", "TINYINT(1)")),
    "status-renamed": ("delivery_status", SPEC_DDL.replace(
        "`delivery_status`", "`status`")),
    "composite-key": ("extra", SPEC_DDL.replace(
        "PRIMARY KEY (`id`)", "`extra` INT NOT NULL DEFAULT 0,"
        " PRIMARY KEY (`id`, `extra`)")),
    "needs-a-value": ("extra", SPEC_DDL.replace(
        "PRIMARY KEY", "`extra` INT NOT NULL, PRIMARY KEY")),
    "myisam": ("MyISAM", SPEC_DDL.replace("InnoDB", "MyISAM")),
}


@pytest.mark.parametrize("case", sorted(MISMATCHES))
def test_mismatched_table_is_refused(my, sender, mock, tmp_path, case):
    """A table that is not SPEC's is left alone: exit 4 before anything is
    sent, with a message naming the table and the column."""
    word, ddl = MISMATCHES[case]
    my.query(ddl % my.table)
    before = show_create(my, my.table)
    m = mock()
    r = sender.run([write_letters(tmp_path / "a.xml", [1, 2, 3])],
                   api_url=m.url)
    assert_refused(r, m, ["'%s'" % my.table, word])
    assert show_create(my, my.table) == before
    assert my.query("SELECT COUNT(*) FROM `%s`" % my.table)[0][0] == 0


def test_extra_nullable_column_is_tolerated(my, sender, mock, tmp_path):
    """A column added by hand that inserts can leave out does no harm."""
    my.query(SPEC_DDL.replace("PRIMARY KEY", "`note` TEXT NULL, PRIMARY KEY")
             % my.table)
    m = mock()
    r = sender.run([write_letters(tmp_path / "a.xml", [1, 2])],
                   api_url=m.url)
    assert r.code == 0, r
    assert {i: st for i, (ts, st) in my.rows().items()} == {1: 1, 2: 1}


@pytest.mark.parametrize("name", ["res ults", "results`; DROP TABLE x; --",
                                  "a" * 65, ""])
def test_bad_table_name_is_refused(my, sender, mock, tmp_path, name):
    m = mock()
    text = sender.config(m.url).replace("table = %s" % my.table,
                                        "table = %s" % name)
    r = sender.run([write_letters(tmp_path / "a.xml", [1])], config=text)
    assert r.code == 2, r  # a configuration error, found before connecting
    assert "table" in r.err, r
    assert m.requests() == []


# ---------------------------------------------------------------- connecting

def connect_case(my, case):
    """(config override, env, words the message must hold)."""
    if case == "wrong-password":
        return {"password": "not-the-password"}, {}, ["password",
                                                      "Access denied"]
    if case == "wrong-password-env":
        return ({"password": None}, {"SENDER_MYSQL_PASSWORD": "nope-nope"},
                ["SENDER_MYSQL_PASSWORD", "Access denied"])
    if case == "no-password":
        return {"password": None}, {}, ["password", "Access denied"]
    if case == "missing-socket":
        sock = str(my.tmp_path / "nowhere" / "mysqld.sock")
        return {"socket": sock}, {}, ["socket", sock]
    if case == "missing-database":
        # u1 may use this database, but it does not exist: "Unknown database"
        db = "sender_missing_" + my.tag
        my.server.sql("GRANT ALL PRIVILEGES ON `%s`.* TO 'u1'@'localhost'"
                      % db)
        return {"database": db}, {}, ["database", "'%s'" % db]
    if case == "forbidden-database":
        # neither there nor granted: the server says "Access denied"
        db = "elsewhere_" + my.tag
        return {"database": db}, {}, ["database", "'%s'" % db]
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["wrong-password", "wrong-password-env",
                                  "no-password", "missing-socket",
                                  "missing-database", "forbidden-database"])
@pytest.mark.parametrize("verbose", [[], ["-v", "-v"]])
def test_connect_errors(my, sender, mock, tmp_path, case, verbose):
    """Exit 4 before anything is sent, a message that says what is wrong
    and which key to check, and never the password."""
    override, env, words = connect_case(my, case)
    m = mock()
    text = sender.config(m.url).replace(my.config_section(),
                                        my.config_section(**override))
    r = sender.run([write_letters(tmp_path / "a.xml", [1, 2])] + verbose,
                   config=text, env=env)
    assert_refused(r, m, words)
    assert "[mysql]" in r.err, r
    for secret in [my.server.password, "not-the-password", "nope-nope"]:
        assert secret not in r.out + r.err, "password printed:\n%s" % r
    assert my.untouched()


def test_password_from_environment(my, sender, mock, tmp_path):
    m = mock()
    text = sender.config(m.url).replace(my.config_section(),
                                        my.config_section(password=None))
    assert "password" not in text
    r = sender.run([write_letters(tmp_path / "a.xml", [1]), "-v", "-v"],
                   config=text,
                   env={"SENDER_MYSQL_PASSWORD": my.server.password})
    assert r.code == 0, r
    assert my.server.password not in r.out + r.err
    assert set(my.rows()) == {1}


# ---------------------------------------------------------------- UTC

def test_ts_is_stored_in_utc(my, sender, mock, tmp_path):
    """The server's zone is +03:00 and the sender's TZ is far from UTC too:
    the TIMESTAMP still holds the instant the API answered."""
    assert my.server.sql("SELECT @@global.time_zone") == [["+03:00"]]
    m = mock()
    t0, e0 = utc_now(), time.time()
    r = sender.run([write_letters(tmp_path / "a.xml", range(1, 21))],
                   api_url=m.url)
    t1, e1 = utc_now(), time.time()
    assert r.code == 0, r
    rows = my.rows()  # read in a UTC session
    assert len(rows) == 20
    for ts, st in rows.values():
        assert_ts_between(ts, t0, t1)
    # the instant itself, whatever the reading session's zone
    for (epoch,) in my.query("SELECT UNIX_TIMESTAMP(ts) FROM `%s`"
                             % my.table):
        assert int(e0) <= epoch <= int(e1) + 1, (epoch, e0, e1)
    # and read in the server's zone it is three hours ahead
    (local,), = my.server.sql("SELECT MIN(ts) FROM `%s`" % my.table)
    utc = datetime.datetime.strptime(min(ts for ts, _ in rows.values()),
                                     "%Y-%m-%d %H:%M:%S")
    assert datetime.datetime.strptime(local, "%Y-%m-%d %H:%M:%S") - utc == \
        datetime.timedelta(hours=3)


# ---------------------------------------------------------------- TCP

@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_tcp_when_host_is_set(my, sender, mock, tmp_path, host):
    """With host set the connection is TCP, even for "localhost" (which
    the client library would otherwise take for the unix socket): the
    socket configured here does not exist."""
    m = mock()
    section = my.config_section(
        host=host, port=my.server.port,
        socket=tmp_path / "no-such-dir" / "mysqld.sock")
    text = sender.config(m.url).replace(my.config_section(), section)
    r = sender.run([write_letters(tmp_path / "a.xml", [1, 2])], config=text)
    assert r.code == 0, r
    assert {i: st for i, (ts, st) in my.rows().items()} == {1: 1, 2: 1}


def test_tcp_nothing_listening(my, sender, mock, tmp_path):
    m = mock()
    port = free_port()
    section = my.config_section(host="127.0.0.1", port=port)
    text = sender.config(m.url).replace(my.config_section(), section)
    r = sender.run([write_letters(tmp_path / "a.xml", [1])], config=text)
    assert_refused(r, m, ["'127.0.0.1:%d'" % port, "host and port"])
    assert my.untouched()


# ---------------------------------------------------------------- host lists

@pytest.mark.parametrize("value", [
    "127.0.0.1,,127.0.0.2", "127.0.0.1,", " , ", "db:0", "db:65536",
    "db:33o6", "db:", "::1", "[::1", "[::1]x", "db1 db2:3306",
    ",".join(["db"] * 17)])
def test_bad_host_list_is_refused(my, sender, mock, tmp_path, value):
    """A malformed [mysql] host is a configuration error (exit 2), found
    before connecting, that names the key and the entry at fault."""
    m = mock()
    section = my.config_section(host=value, port=my.server.port)
    text = sender.config(m.url).replace(my.config_section(), section)
    r = sender.run([write_letters(tmp_path / "a.xml", [1])], config=text)
    assert r.code == 2, r
    assert "key 'host' in section [mysql]" in r.err, r
    assert m.requests() == []
    assert my.untouched()


def test_host_list_first_that_answers(my, sender, mock, tmp_path):
    """[mysql] host as a list: servers that do not answer are passed
    over, in order, for the first that does; a host without a port gets
    [mysql] port.  The old single-host parser took the whole list for one
    host name."""
    from backend_mysql import free_port
    m = mock()
    dead = free_port()
    section = my.config_section(
        host=" 127.0.0.1:%d , [::1]:%d,127.0.0.1" % (dead, dead),
        port=my.server.port, socket=tmp_path / "no-such.sock")
    text = sender.config(m.url).replace(my.config_section(), section)
    r = sender.run([write_letters(tmp_path / "a.xml", [1, 2])], config=text)
    assert r.code == 0, r
    assert {i: st for i, (ts, st) in my.rows().items()} == {1: 1, 2: 1}


def test_host_list_none_answers(my, sender, mock, tmp_path):
    """No server of the list answers: exit 4, the message names them all."""
    from backend_mysql import free_port
    m = mock()
    a, b = free_port(), free_port()
    section = my.config_section(host="127.0.0.1:%d,127.0.0.1:%d" % (a, b))
    text = sender.config(m.url).replace(my.config_section(), section)
    r = sender.run([write_letters(tmp_path / "a.xml", [1])], config=text)
    assert_refused(r, m, ["'127.0.0.1:%d', '127.0.0.1:%d'" % (a, b),
                          "host and port"])
    assert my.untouched()


# ---------------------------------------------------------------- operator

def test_status_and_print_config(my, sender, mock, tmp_path):
    """--status counts the table's records by state; neither it nor
    --print-config shows the password."""
    my.query(SPEC_DDL % my.table)
    my.query("INSERT INTO `%s` VALUES (10, NOW(), 1), (11, NOW(), 0), "
             "(12, NOW(), NULL), (13, NULL, NULL)" % my.table)
    m = mock()
    text = sender.config(m.url)
    r = sender.run(["--status", "-v"], config=text)
    assert r.code == 0, r
    counts = dict(re.findall(r"^\s*([a-z ]+):\s*(\d+)", r.out, re.M))
    assert counts["records"] == "4" and counts["claimed"] == "1", r
    assert counts["delivered"] == "1" and counts["rejected"] == "1", r
    p = sender.run(["--print-config", "-v"], config=text)
    assert p.code == 0, p
    assert "[mysql]" in p.out + p.err, p
    for res in (r, p):
        assert my.server.password not in res.out + res.err, res
    assert m.requests() == []


# ---------------------------------------------------------------- cut-offs

class CuttingProxy:
    """A TCP relay to the server that cuts the connection once, at the
    first client packet holding `pattern`: before passing it on, or after
    (the server then runs the statement, but its answer never arrives)."""

    def __init__(self, target_port, pattern, after):
        import socket
        import threading
        self.target = target_port
        self.pattern = pattern
        self.after = after
        self.fired = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.threads = []
        self._spawn(self._accept)

    def _spawn(self, fn, *args):
        import threading
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self.threads.append(t)

    def _accept(self):
        import socket
        import threading
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            cut = threading.Event()  # this connection's answers stop
            self._spawn(self._pump, server, client, None, cut)
            self._spawn(self._pump, client, server, self.pattern, cut)

    def _pump(self, src, dst, pattern, cut):
        import socket
        try:
            while True:
                data = src.recv(65536)
                if not data or (pattern is None and cut.is_set()):
                    break
                if pattern and not self.fired.is_set() and pattern in data:
                    self.fired.set()
                    cut.set()
                    if self.after:
                        dst.sendall(data)
                        time.sleep(0.3)  # let the server run it
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.listener.close()


@pytest.mark.parametrize("pattern,after,held", [
    (b"INSERT IGNORE", False, False),   # claim never reached the server
    (b"INSERT IGNORE", True, False),    # ran, uncommitted: rolled back
    # claim committed, answer lost: the retry finds the claims, and the
    # claims table says they are this run's own (before it, they stayed
    # behind as held by another run)
    (b"COMMIT", True, False),
    # the claims' owner rows written, answer lost
    (b"ON DUPLICATE KEY", True, False),
    # outcomes (their UPDATE, on the second connection) written, answer
    # lost; and the statement that deletes their claims' rows
    (b"SET ts = ", True, False),
    (b"DELETE c FROM", True, False),
])
def test_connection_cut_mid_statement(my, sender, mock, tmp_path, pattern,
                                      after, held):
    """The connection breaks once, at a chosen statement (a TCP relay cuts
    it); the backend reconnects and retries.  No id is ever POSTed twice,
    and none is left claimed."""
    proxy = CuttingProxy(my.server.port, pattern, after)
    try:
        m = mock()
        n = 300
        text = sender.config(m.url).replace(
            my.config_section(),
            my.config_section(host="127.0.0.1", port=proxy.port))
        r = sender.run([write_letters(tmp_path / "a.xml", range(1, n + 1)),
                        "-j", 8, "--json"], config=text)
    finally:
        proxy.close()
    assert proxy.fired.is_set(), "the statement was never seen"
    posts = m.posts_per_id()
    assert max(posts.values()) == 1, r
    rows = my.rows()
    left = my.claimed_ids()
    assert not (left & set(posts)), r
    assert set(posts) | left == set(range(1, n + 1)), r
    assert all(rows[i][0] is not None and rows[i][1] == 1 for i in posts), r
    if held:
        assert left and r.code == 1, r
        assert_json_summary(r, delivered=len(posts), skipped=len(left))
    else:
        assert not left and r.code == 0, r
        assert_json_summary(r, delivered=n, requests=n)


# ------------------------------------------------- the second connection

def make_user(my, max_connections=0):
    """A user of this test alone, so that its connections can be counted;
    dropped at the end by drop_user()."""
    name = "u_" + my.tag
    my.server.sql("CREATE USER '%s'@'localhost' IDENTIFIED BY 'pw-%s' "
                  "WITH MAX_USER_CONNECTIONS %d" % (name, name,
                                                    max_connections))
    my.server.sql("GRANT ALL ON sender.* TO '%s'@'localhost'" % name)
    return name


def drop_user(my, name):
    my.server.sql("DROP USER IF EXISTS '%s'@'localhost'" % name)


def config_as(my, sender, url, user):
    """sender's configuration for url, connecting as user."""
    return sender.config(url).replace(
        my.config_section(),
        my.config_section(user=user, password="pw-" + user))


def assert_all_delivered_once(my, m, r, n):
    """Letters 1..n: each POSTed once, recorded delivered, no claim left."""
    assert r.code == 0, r
    assert max(m.posts_per_id().values()) == 1
    rows = my.rows()
    assert sorted(rows) == list(range(1, n + 1))
    assert all(ts is not None and st == 1 for ts, st in rows.values()), rows
    assert not my.claimed_ids()
    assert_json_summary(r, delivered=n, requests=n)


def connections_of(my, user):
    (n,), = my.server.sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST"
                          " WHERE USER = '%s'" % user)
    return int(n)


def test_outcomes_go_through_a_second_connection(my, sender, mock, tmp_path):
    """A run holds two connections to the server, claims on one and
    outcomes on the other (the server works on both at once), and records
    every letter exactly as with one."""
    user = make_user(my)
    try:
        m = mock("--latency-ms", 50)
        n = 200
        path = write_letters(tmp_path / "a.xml", range(1, n + 1))
        p, out, err = sender.popen([path, "-j", 4, "--json"],
                                   config=config_as(my, sender, m.url, user))
        seen = set()
        with killed_on_exit(p):
            while p.poll() is None:
                seen.add(connections_of(my, user))
                time.sleep(0.05)
        r = result_of(p, out, err)
    finally:
        drop_user(my, user)
    assert max(seen) == 2, (seen, r)
    assert_all_delivered_once(my, m, r, n)


def test_second_connection_leaves_the_schema_alone(my, sender, mock,
                                                   tmp_path):
    """The second connection of a run does not check or create the tables
    again: the first one did (one CREATE TABLE IF NOT EXISTS a run, that
    of the claims table, once the results table is there)."""
    m = mock()
    path = write_letters(tmp_path / "a.xml", range(1, 11))

    def creates():
        return int(my.query("SELECT VARIABLE_VALUE FROM "
                            "information_schema.GLOBAL_STATUS WHERE "
                            "VARIABLE_NAME = 'COM_CREATE_TABLE'")[0][0])

    assert sender.run([path], api_url=m.url).code == 0
    before = creates()
    r = sender.run([path, "-v", "--json"], api_url=m.url)
    assert r.code == 0, r
    assert "one connection" not in r.err, r  # there were two
    assert creates() - before == 1, r


def test_one_connection_when_a_second_is_refused(my, sender, mock,
                                                 tmp_path):
    """The server refuses a second connection (max_user_connections 1):
    the run says so and records its outcomes through the one it has."""
    user = make_user(my, max_connections=1)
    try:
        m = mock()
        n = 50
        r = sender.run([write_letters(tmp_path / "a.xml", range(1, n + 1)),
                        "-v", "--json"],
                       config=config_as(my, sender, m.url, user))
    finally:
        drop_user(my, user)
    assert "outcomes go through the one connection" in r.err, r
    assert "max_user_connections" in r.err, r
    assert_all_delivered_once(my, m, r, n)


def test_outcome_for_a_record_deleted_meanwhile_is_kept(my, sender, mock,
                                                       tmp_path):
    """Outcomes are written by an UPDATE of their ids; a record deleted by
    hand while its letter was out matches nothing there, and is written
    anyway: an answer of the API is never dropped."""
    m = mock("--latency-ms", 300)
    ids = list(range(1, 21))
    p, out, err = sender.popen([write_letters(tmp_path / "a.xml", ids),
                                "-j", 20], api_url=m.url)
    with killed_on_exit(p):
        assert wait_for(lambda: len(my.claimed_ids()) == len(ids), 10), \
            "the claims never appeared"
        my.query("DELETE FROM `%s` WHERE id IN (3, 7)" % my.table)
        p.wait(timeout=60)
    r = result_of(p, out, err)
    assert r.code == 0, r
    rows = my.rows()
    assert sorted(rows) == ids
    assert all(ts is not None and st == 1 for ts, st in rows.values()), rows
    assert my.query("SELECT COUNT(*) FROM `%s_claims`" % my.table) == \
        ((0,),)
