"""The MySQL backend of the integration suite (see conftest.py, "stores").

One private MariaDB per pytest session, bootstrapped by tests/lib/mariadb.sh
in a temporary directory the first time a MySQL test needs it and torn down
when the session ends; each test gets its own fresh table in database
`sender`.  The server listens on its unix socket and on a free TCP
port of 127.0.0.1.  It runs with time zone +03:00 on purpose (so a `ts`
written in the server's zone instead of UTC is caught), and user `u1` gets a
random password, so that tests can check it is never printed.

Rows are read with pymysql, in a session whose time zone is UTC.
"""

import os
import secrets
import shutil

import pytest

from conftest import REPO, ScriptServer, Store, free_port


class MariaDB(ScriptServer):
    """The session's server: started on first use, stopped at exit."""
    script_path = REPO / "tests" / "lib" / "mariadb.sh"
    prefix = "sender-mariadb-"
    pid_file = "mariadb.pid"

    def __init__(self):
        super().__init__()
        self.port = 0  # also listens on 127.0.0.1:port, for [mysql] host
        self.fatal = False
        self.password = "u1-" + secrets.token_hex(8)

    @property
    def socket(self):
        return str(self.dir / "mysqld.sock")

    def script_env(self):
        env = dict(os.environ, MARIADB_U1_PASSWORD=self.password,
                   MARIADB_TCP_PORT=str(self.port))
        env["PATH"] = env.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"
        return env

    def ensure(self):
        """Start the server if needed.  Not installed: skip the test (as
        conftest.py asks); installed but failing to start: fail it, so
        that a broken harness is not mistaken for a passing suite."""
        if self.failure is None and self.dir is None:
            if shutil.which("mariadbd", path=os.environ.get("PATH", "") +
                            ":/usr/sbin:/sbin") is None:
                self.failure = "mariadbd is not installed (make deps-test)"
                self.fatal = False
            else:
                self.port = free_port()
                p = self.start_first()
                if p.returncode != 0:
                    self.failure = "tests/lib/mariadb.sh start: %s" % (
                        p.stderr.strip()[-2000:])
                    self.fatal = True
        if self.failure and self.fatal:
            pytest.fail("no MariaDB for the mysql backend: %s" %
                        self.failure)
        if self.failure:
            pytest.skip("no MariaDB for the mysql backend: %s" %
                        self.failure)

    def start(self):
        """(Re)start the server on the same data, e.g. after kill(); a
        server that runs is left alone."""
        self.command("start")

    def sql(self, statement):
        """Run statement as root in database `sender`; the output rows."""
        p = self.run_script("sql", str(self.dir), statement)
        assert p.returncode == 0, "%s: %s" % (statement, p.stderr)
        return [line.split("\t") for line in p.stdout.splitlines()]

    def connect(self, database="sender"):
        import pymysql
        return pymysql.connect(unix_socket=self.socket, user="u1",
                               password=self.password, database=database,
                               autocommit=True,
                               init_command="SET time_zone = '+00:00'")


SERVER = MariaDB()


class MysqlStore(Store):
    name = "mysql"
    server = SERVER
    not_killable = None

    def setup(self):
        self.server.ensure()
        self.table = "results_%s" % self.tag
        self.database = "sender"

    def teardown(self):
        if self.server.dir is not None:
            try:
                self.server.sql("DROP TABLE IF EXISTS `%s`" % self.table)
            except AssertionError:
                pass  # a test that left the server down says so itself

    def mysql_section(self, **override):
        keys = {"socket": self.server.socket, "user": "u1",
                "password": self.server.password,
                "database": self.database, "table": self.table}
        keys.update(override)
        return "[mysql]\n" + "".join("%s = %s\n" % (k, v)
                                     for k, v in keys.items() if v is not None)

    def config_section(self, **override):
        return "[store]\nbackend = mysql\n\n" + self.mysql_section(**override)

    def broken_config_section(self):
        return self.config_section(
            socket=self.tmp_path / "no-such-dir" / "mysqld.sock")

    def query(self, statement, args=None):
        db = self.server.connect()
        try:
            with db.cursor() as cur:
                cur.execute(statement, args)
                return cur.fetchall()
        finally:
            db.close()

    def table_exists(self):
        return bool(self.query(
            "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
            "'sender' AND TABLE_NAME = %s", (self.table,)))

    def kill_server(self):
        self.server.kill()

    def restart_server(self):
        self.server.start()

    def stored_ids(self):
        if not self.table_exists():
            return []
        return [i for i, in self.query("SELECT id FROM `%s`" % self.table)]

    def rows(self):
        if not self.table_exists():
            return {}
        out = {}
        for i, ts, st in self.query(
                "SELECT id, ts, delivery_status FROM `%s`" % self.table):
            out[i] = (ts.strftime("%Y-%m-%d %H:%M:%S") if ts else None, st)
        return out

    def untouched(self):
        return not self.table_exists()
