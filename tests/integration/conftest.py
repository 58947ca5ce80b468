"""Harness of the black-box integration suite of `sender`.

The suite drives the real binary (``$SENDER_BIN``, default ``<repo>/sender``)
against the mock API (``$MOCK_API_BIN``, default ``<repo>/tests/mock_api``)
and a real store.  It checks the contract of shared/SPEC.md, nothing else.
Run it from anywhere:

    /usr/bin/python3 -m pytest tests/integration            # SQLite only
    SENDER_TEST_BACKENDS=sqlite,mysql python3 -m pytest tests/integration
    SENDER_BIN=build/asan/sender python3 -m pytest tests/integration

Every scenario takes the ``store`` fixture and so runs once per backend named
in ``$SENDER_TEST_BACKENDS`` (commas or spaces; default ``sqlite``), the way
git runs its whole t/ again on its second refs backend.

Adding a backend (MySQL, MongoDB) is one class and one registry entry:

  1. Subclass ``Store`` below (see ``SqliteStore`` for a complete example):
       name              the value of ``[store] backend``
       setup()           make an empty, private place for one test: a fresh
                         table / collection with a unique name (e.g.
                         ``results_<uuid>``), so tests never see each other's
                         records; skip the test (``pytest.skip``) when the
                         server is not reachable
       teardown()        drop what setup() made
       config_section()  INI text: ``[store]\\nbackend = NAME\\n`` plus the
                         backend's own section pointing at that place
       rows()            {id: (ts, delivery_status)} for every record: ts as
                         the string ``YYYY-MM-DD HH:MM:SS`` in UTC or None,
                         delivery_status an int or None
       untouched()       True when the run wrote nothing (used by --dry-run
                         and configuration-error tests); the default says
                         "no rows", SQLite also requires that no file exists
       stored_ids()      the id of every record, as a list (an id stored
                         twice appears twice)
       broken_config_section()  (optional) a config whose database cannot be
                         reached, for the exit-4 test; None skips that test
     A backend with a server (test_network_store.py) also sets
       not_killable      None (the default is a reason to skip those tests)
       kill_server()     SIGKILL the server
       restart_server()  start it again, same address and data; nothing
                         while it runs
     and may size those scenarios for a slow server: parallel_runs,
     parallel_letters, crash_letters, loaded_api_timeout, knows_own_claims
     (see ``Store``).  A server the suite starts itself derives from
     ``ScriptServer``, which makes it die with the session however that
     ends (reaper.py).
  2. Add it to ``BACKENDS`` at the end of the "stores" part of this file
     (a class that needs much machinery may live in its own module next to
     this file, imported just above ``BACKENDS``: see backend_mysql.py).

A backend named in $SENDER_TEST_BACKENDS that has no class here is skipped
with a reason, not silently dropped.

``claimed_ids()`` is derived from ``rows()`` (claimed = ts and
delivery_status both NULL, SPEC section 5) and needs no override.
"""

import atexit
import collections
import contextlib
import dataclasses
import datetime
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest

import reaper

REPO = Path(__file__).resolve().parents[2]

# libmongoc initialises itself when it is loaded, in every sender whatever
# its backend, and keeps its counters in /dev/shm/mongoc-PID, which a
# SIGKILLed process leaves behind; a later process with that pid (often
# in the bed's PID namespaces) then prints "Falling back to malloc for
# counters" on stderr before main().  The suite kills many senders: keep
# the counters in memory (README, "Storage backends", says the same to
# operators).
os.environ.setdefault("MONGOC_DISABLE_SHM", "1")
SENDER_BIN = Path(os.environ.get("SENDER_BIN", REPO / "sender")).resolve()
MOCK_BIN = Path(os.environ.get("MOCK_API_BIN",
                               REPO / "tests" / "mock_api")).resolve()

# design: the sender runs in a time zone far from UTC, so that a `ts` written
# in local time instead of UTC (SPEC section 5) is caught by the tests.
SENDER_TZ = "XST-7"

JSON_KEYS = {"letters", "delivered", "not_delivered", "rejected", "errors",
             "skipped", "deferred", "invalid", "requests", "seconds",
             "done_elsewhere",
             "left",   # SPEC 8: left (--limit)
             "in_doubt"}
# SPEC 8: present only when the run stopped early
JSON_KEYS_EARLY_STOP = {"exit", "error"}

# SPEC section 7, e.g.
# sender: 1000 letters: 812 delivered, 171 not delivered, 3 rejected,
#         10 skipped, 4 deferred, 0 invalid in 12.3 s (81/s)
# design: "1 letter:" (singular) is accepted as well as "1 letters:".
SUMMARY_RE = re.compile(
    r"^sender: (?P<letters>\d+) letters?: (?P<delivered>\d+) delivered, "
    r"(?P<not_delivered>\d+) not delivered, (?P<rejected>\d+) rejected, "
    r"(?P<skipped>\d+) skipped, (?P<deferred>\d+) deferred, "
    r"(?P<invalid>\d+) invalid in (?P<seconds>\d+\.\d) s "
    r"\((?P<rate>\d+)/s\)$", re.M)

TS_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")

SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|"
                          r"runtime error:|SUMMARY: \w+Sanitizer")


# ---------------------------------------------------------------- binaries

@pytest.fixture(scope="session", autouse=True)
def _binaries():
    missing = [str(p) for p in (SENDER_BIN, MOCK_BIN)
               if not os.access(p, os.X_OK)]
    if missing:
        pytest.exit("missing binaries: %s (run `make` and `make "
                    "tests/mock_api` at the repository root, or set "
                    "SENDER_BIN / MOCK_API_BIN)" % ", ".join(missing),
                    returncode=2)


# ---------------------------------------------------------------- mock API

@dataclasses.dataclass
class Request:
    """One POST as logged by the mock."""
    seq: int
    id: object        # int when the logged id is a decimal, str, or None
    status: int       # 0: connection dropped without an answer
    body: str         # raw url-encoded request body
    fields: dict      # parse_qs(body): name -> [values]

    @property
    def message(self):
        """The `message` field decoded as JSON, or None."""
        values = self.fields.get("message")
        if not values:
            return None
        return json.loads(values[0])


_LOG_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\", "0": "\0"}


def unescape_log(s):
    """Undo the mock's two-byte escapes of TAB, LF, CR, backslash, NUL."""
    return re.sub(r"\\(.)", lambda m: _LOG_ESCAPES.get(m.group(1),
                                                       m.group(0)), s)


class Mock:
    """A running tests/mock_api on a free port of 127.0.0.1."""

    def __init__(self, workdir, options):
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "requests.log"
        port_file = workdir / "port"
        self.options = list(options)
        self._stderr = open(workdir / "mock.stderr", "w+")
        self.proc = subprocess.Popen(
            [str(MOCK_BIN), "--port", "0", "--port-file", str(port_file),
             "--log", str(self.log_path)] + self.options,
            stdin=subprocess.DEVNULL, stdout=self._stderr,
            stderr=self._stderr)
        self._final_stats = None
        deadline = time.monotonic() + 15
        while not port_file.exists() or not port_file.read_text().strip():
            if self.proc.poll() is not None:
                self._stderr.seek(0)
                raise RuntimeError("mock_api %s exited with %s: %s" % (
                    self.options, self.proc.returncode, self._stderr.read()))
            if time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError("mock_api did not start in 15 s")
            time.sleep(0.01)
        self.port = int(port_file.read_text().strip())
        self.base = "http://127.0.0.1:%d" % self.port
        self.url = self.base + "/api.php"

    def _get(self, path):
        with urllib.request.urlopen(self.base + path, timeout=10) as r:
            return r.read()

    def stats(self):
        """GET /stats: requests, in_flight, max_in_flight, by_status."""
        if self.proc.poll() is not None:
            assert self._final_stats is not None, "mock died"
            return self._final_stats
        return json.loads(self._get("/stats"))

    def requests(self):
        """Every POST logged so far, in the order of the log."""
        if self.proc.poll() is None:
            self._get("/flush")
        out = []
        if not self.log_path.exists():
            return out
        with open(self.log_path, encoding="utf-8",
                  errors="surrogateescape") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line:
                    continue
                seq, rid, status, body = (line.split("\t", 3) + [""])[:4]
                body = unescape_log(body)
                if rid == "-":
                    rid = None
                elif rid.isdigit():
                    rid = int(rid)
                fields = urllib.parse.parse_qs(body, keep_blank_values=True,
                                               encoding="utf-8",
                                               errors="replace")
                out.append(Request(int(seq), rid, int(status), body, fields))
        return out

    def posts_per_id(self):
        """Counter: id -> number of POSTs that carried it."""
        return collections.Counter(r.id for r in self.requests())

    def stop(self):
        if self.proc.poll() is None:
            try:
                self._final_stats = json.loads(self._get("/stats"))
            except OSError:
                pass
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()


@pytest.fixture
def mock(tmp_path):
    """Factory: mock("--latency-ms", 5, "--answer", "3=400:bad") -> Mock.

    Every mock started is stopped at teardown."""
    started = []

    def start(*options):
        m = Mock(tmp_path / ("mock%d" % len(started)),
                 [str(o) for o in options])
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()


def free_port():
    """A port of 127.0.0.1 where nothing listens (the kernel's choice)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def closed_port_url():
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    return "http://127.0.0.1:%d/api.php" % free_port()


def answered(m):
    """Ids the mock answered 200 (SPEC 3: a trusted answer)."""
    return {q.id for q in m.requests() if q.status == 200}


# ---------------------------------------------------------------- stores

class Store:
    """One backend, one private place (file, table, collection) per test."""
    name = None
    # Letters per run in the scenarios that need many (parallel runs):
    # enough for several claim batches and interleaving runs.
    many = 2000
    # The scenarios of test_network_store.py, sized for the server: how
    # many runs at once, the letters of each, and of a run whose server
    # is killed under it.
    parallel_runs = (4, 8)
    parallel_letters = 1500
    crash_letters = 3000
    # [api] timeout in those scenarios: a run does not drive its requests
    # while it waits for the store, so a slow store needs a long timeout
    # lest answers that arrived meanwhile count as timed out and be sent
    # again (SPEC allows that retry; the scenarios are about the claims).
    loaded_api_timeout = 10
    # Whether a claim whose write was cut off by a crash is still known
    # for the run's own (MongoDB: the claim names its owner), so that the
    # run sends it and no claim stays behind; MySQL cannot tell a claim
    # whose COMMIT answer was lost from another run's.
    knows_own_claims = False
    # Why kill_server() cannot be done here (None: it can); the tests
    # that kill the server are skipped with this reason.
    not_killable = "no server to kill"

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.tag = uuid.uuid4().hex[:12]

    def setup(self):
        pass

    def teardown(self):
        pass

    def config_section(self):
        raise NotImplementedError

    def broken_config_section(self):
        return None

    def rows(self):
        raise NotImplementedError

    def stored_ids(self):
        """The id of every record, a list: an id stored twice is there
        twice (rows() cannot show that)."""
        raise NotImplementedError

    def claimed_ids(self):
        return {i for i, (ts, st) in self.rows().items()
                if ts is None and st is None}

    def untouched(self):
        return not self.rows()

    def kill_server(self):
        """SIGKILL the store's server: a crash, as far as clients can
        tell (only where not_killable is None)."""
        raise NotImplementedError(self.not_killable)

    def restart_server(self):
        """Start the server again on the same address and data after
        kill_server(); nothing while it runs."""
        raise NotImplementedError(self.not_killable)


class SqliteStore(Store):
    name = "sqlite"
    not_killable = "SQLite has no server: the database is a file"

    def setup(self):
        self.path = self.tmp_path / ("sender-%s.db" % self.tag)

    def config_section(self):
        return "[store]\nbackend = sqlite\n\n[sqlite]\npath = %s\n" % self.path

    def broken_config_section(self):
        return ("[store]\nbackend = sqlite\n\n[sqlite]\npath = %s\n"
                % (self.tmp_path / "no-such-dir" / "sub" / "x.db"))

    def connect(self):
        # Read-only, so that reading never creates the file.
        return sqlite3.connect("file:%s?mode=ro" % self.path, uri=True,
                               timeout=30)

    def query(self, statement):
        if not self.path.exists():
            return []
        db = self.connect()
        try:
            return db.execute(statement).fetchall()
        finally:
            db.close()

    def rows(self):
        return {i: (ts, st) for i, ts, st in self.query(
            "SELECT id, ts, delivery_status FROM results")}

    def stored_ids(self):
        return [i for i, in self.query("SELECT id FROM results")]

    def untouched(self):
        return not self.path.exists()


class ScriptServer:
    """A private server of the session, run by a script of tests/lib
    (`start|stop|kill DIR`, data and pid file in DIR): started on first
    use in a temporary directory, stopped at exit, and killed with the
    session, its directory removed, when the session ends otherwise
    (reaper.py)."""
    script_path = None  # the script in tests/lib
    prefix = None       # of the temporary directory
    pid_file = None     # where the script keeps the server's pid, in DIR

    def __init__(self):
        self.dir = None
        self.failure = None

    def script_env(self):
        return None  # the environment of pytest

    def run_script(self, *args, timeout=300):
        return subprocess.run(["bash", str(self.script_path)] + list(args),
                              env=self.script_env(), capture_output=True,
                              text=True, timeout=timeout)

    def start_first(self):
        """Make the directory and start the server in it: the script's
        CompletedProcess."""
        self.dir = Path(tempfile.mkdtemp(prefix=self.prefix))
        reaper.watch(self.dir, remove=True)
        atexit.register(self.destroy)
        return self.run_script("start", str(self.dir))

    def pid(self):
        """The server's pid, as its pid file says, or None."""
        try:
            return int((self.dir / self.pid_file).read_text())
        except (OSError, TypeError, ValueError):
            return None

    def command(self, name):
        """Run `script NAME DIR`, which must succeed."""
        p = self.run_script(name, str(self.dir))
        assert p.returncode == 0, "%s %s: %s" % (self.script_path.name,
                                                 name, p.stderr)

    def kill(self):
        """SIGKILL the server: a crash, as far as clients can tell."""
        self.command("kill")

    def destroy(self):
        if self.dir is None:
            return
        self.run_script("stop", str(self.dir))
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None


@pytest.fixture(scope="session", autouse=True)
def _reap_with_session(tmp_path_factory):
    """Mocks and senders still running when the session ends die with
    it: their command lines name the session's temporary directory."""
    reaper.watch(tmp_path_factory.getbasetemp())


from backend_mysql import MysqlStore  # noqa: E402 (uses Store above)
from backend_mongo import MongoStore  # noqa: E402 (uses Store above)

BACKENDS = {cls.name: cls for cls in (SqliteStore, MysqlStore, MongoStore)}


def _backend_names():
    """$SENDER_TEST_BACKENDS: names separated by commas and/or spaces
    (tests/run-all.sh passes `./sender --version`'s list)."""
    text = os.environ.get("SENDER_TEST_BACKENDS", "") or "sqlite"
    return [n for n in re.split(r"[,\s]+", text) if n]


def store_of(name, tmp_path):
    """Generator of a fixture: backend name's store, set up, then torn
    down."""
    if name not in BACKENDS:
        pytest.skip("no test class for backend %r in conftest.py (known: %s)"
                    % (name, ", ".join(sorted(BACKENDS))))
    s = BACKENDS[name](tmp_path)
    s.setup()
    yield s
    s.teardown()


@pytest.fixture(params=_backend_names())
def store(request, tmp_path):
    yield from store_of(request.param, tmp_path)


def only_store(name, tmp_path):
    """Generator of the `store` fixture of a module about one backend
    (test_mysql.py, test_mongo.py): its tests run once, when name is in
    $SENDER_TEST_BACKENDS, and are skipped otherwise."""
    if name not in _backend_names():
        pytest.skip("%s is not in $SENDER_TEST_BACKENDS" % name)
    yield from store_of(name, tmp_path)


# ---------------------------------------------------------------- running

def make_config(store, api_url, *, timeout=10, concurrency=None,
                max_attempts=8, base_delay_ms=5, max_delay_ms=50, extra=""):
    """INI text for one run: small retry delays so that retry tests are
    fast, the store's sections, and `extra` appended verbatim."""
    text = "[api]\nurl = %s\ntimeout = %s\n" % (api_url, timeout)
    if concurrency is not None:
        text += "concurrency = %s\n" % concurrency
    text += ("\n[retry]\nmax_attempts = %s\nbase_delay_ms = %s\n"
             "max_delay_ms = %s\n\n" % (max_attempts, base_delay_ms,
                                        max_delay_ms))
    text += store.config_section()
    if extra:
        text += "\n" + extra
    return text


class Result(str):
    """The outcome of one run.  It is also the readable text of the run
    (argv, exit status, stdout, stderr), so that `assert cond, r` shows all
    of it: pytest prints a non-string assertion message truncated."""

    def __new__(cls, code, out, err, seconds, argv):
        text = "argv=%s\nexit=%s\n--- stdout\n%s--- stderr\n%s" % (
            " ".join(str(a) for a in argv), code, out, err)
        self = super().__new__(cls, text)
        self.code, self.out, self.err = code, out, err
        self.seconds, self.argv = seconds, argv
        return self

    def __iter__(self):
        return iter((self.code, self.out, self.err))

    def json(self):
        """The --json summary: stdout is exactly one JSON object."""
        obj = json.loads(self.out)
        assert isinstance(obj, dict), self
        return obj

    def summary(self):
        """The closing summary line on stderr, as a dict of numbers."""
        found = SUMMARY_RE.findall(self.err)
        assert len(found) == 1, "want one summary line (SPEC 7):\n%s" % self
        m = SUMMARY_RE.search(self.err)
        return {k: (float(v) if k == "seconds" else int(v))
                for k, v in m.groupdict().items()}


def check_sanitizers(r):
    """An ASan/UBSan build reports on stderr: that fails the test, whatever
    else the run did right."""
    if SANITIZER_RE.search(r.err):
        raise AssertionError("sanitizer report:\n%s" % r)


def sender_env(env=None):
    # No SENDER_* variable of the caller's may steer a run (SENDER_CONFIG,
    # passwords, overrides): a test passes the ones it means in env.
    e = {k: v for k, v in os.environ.items() if not k.startswith("SENDER_")}
    e["TZ"] = SENDER_TZ
    e.update(env or {})
    return e


_config_seq = [0]


def write_config(text, directory):
    _config_seq[0] += 1
    path = Path(directory) / ("sender-%d.ini" % _config_seq[0])
    path.write_text(text)
    return path


def run_sender(args, config=None, stdin=None, timeout=120, env=None,
               cwd=REPO, config_dir=None):
    """Run `sender [-c CONFIG] ARGS...` and return a Result.

    config: INI text (written to a file in config_dir, default the cwd's
    temp area) or a Path to an existing file, or None for no -c.  stdin:
    str/bytes fed to standard input (else /dev/null)."""
    argv = [str(SENDER_BIN)]
    if config is not None:
        if isinstance(config, Path):
            path = config
        else:
            path = write_config(config, config_dir or cwd)
        argv += ["-c", str(path)]
    argv += [str(a) for a in args]
    if isinstance(stdin, str):
        stdin = stdin.encode()
    t0 = time.monotonic()
    p = subprocess.run(argv, input=stdin,
                       stdin=None if stdin is not None else subprocess.DEVNULL,
                       capture_output=True, timeout=timeout, cwd=cwd,
                       env=sender_env(env))
    r = Result(p.returncode, p.stdout.decode("utf-8", "replace"),
               p.stderr.decode("utf-8", "replace"), time.monotonic() - t0,
               argv)
    check_sanitizers(r)
    if r.code < 0:
        raise AssertionError("killed by signal %d:\n%s" % (-r.code, r))
    return r


class Sender:
    """run_sender bound to one test's store and temp directory."""

    def __init__(self, store, tmp_path):
        self.store = store
        self.tmp_path = tmp_path

    def config(self, api_url, **kw):
        return make_config(self.store, api_url, **kw)

    def run(self, args, api_url=None, config=None, stdin=None,
            run_timeout=120, env=None, cwd=None, **cfg):
        """Either config (INI text / Path) or api_url (+ make_config
        keywords, e.g. timeout= for [api] timeout) gives the configuration.
        run_timeout bounds the whole run, in seconds."""
        if config is None and api_url is not None:
            config = self.config(api_url, **cfg)
        return run_sender(args, config=config, stdin=stdin,
                          timeout=run_timeout,
                          env=env, cwd=cwd or REPO,
                          config_dir=self.tmp_path)

    def popen(self, args, api_url=None, config=None, env=None, **cfg):
        """Start sender in the background; stdout/stderr go to files.
        Returns (Popen, stdout_path, stderr_path)."""
        if config is None:
            config = self.config(api_url, **cfg)
        path = config if isinstance(config, Path) else \
            write_config(config, self.tmp_path)
        tag = uuid.uuid4().hex[:8]
        out = self.tmp_path / ("out-%s" % tag)
        err = self.tmp_path / ("err-%s" % tag)
        argv = [str(SENDER_BIN), "-c", str(path)] + [str(a) for a in args]
        with open(out, "wb") as fo, open(err, "wb") as fe:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fo,
                                 stderr=fe, cwd=REPO, env=sender_env(env))
        p.argv = argv
        return p, out, err


@pytest.fixture
def sender(store, tmp_path):
    return Sender(store, tmp_path)


def result_of(p, out, err, seconds=0.0):
    """A Result for a process started by Sender.popen, once it ended."""
    r = Result(p.returncode, Path(out).read_text("utf-8", "replace"),
               Path(err).read_text("utf-8", "replace"), seconds, p.argv)
    check_sanitizers(r)
    return r


@contextlib.contextmanager
def killed_on_exit(p):
    """A block that waits for process p: p is killed if it still runs when
    the block ends (an assertion failed, a timeout expired)."""
    try:
        yield p
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def finish(p, out, err, timeout=300):
    """Wait for a run started by Sender.popen to end (killed after
    timeout seconds) and return its Result."""
    with killed_on_exit(p):
        p.wait(timeout=timeout)
    return result_of(p, out, err)


def wait_for(pred, timeout, step=0.01):
    """Poll pred every step seconds until it is true: then the time
    (time.monotonic(), true) it was seen; None after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return time.monotonic()
        time.sleep(step)
    return None


def run_measured(sender, args, api_url, timeout=120, env=None, **cfg):
    """Run sender and return (Result, peak RSS in bytes) of that process
    alone; the Result's cpu is its user + system seconds.

    design: measured by /usr/bin/time, not by wait4 here: a child forked
    (or vforked) from pytest inherits pytest's peak RSS, and Linux keeps
    the peak across exec, so wait4 would report pytest's tens of MB.
    time is a small process, and sender its fresh child."""
    config = write_config(sender.config(api_url, **cfg), sender.tmp_path)
    out = sender.tmp_path / "m.out"
    err = sender.tmp_path / "m.err"
    rss = sender.tmp_path / "m.rss"
    argv = [str(SENDER_BIN), "-c", str(config)] + [str(a) for a in args]
    e = dict(env or {})
    # An ASan build keeps freed memory in quarantine; keep that small so
    # that peak RSS says something about the program itself.
    e["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") +
                         ":quarantine_size_mb=1").lstrip(":")
    t0 = time.monotonic()
    with open(out, "wb") as fo, open(err, "wb") as fe:
        p = subprocess.Popen(["/usr/bin/time", "-q", "-f", "%M %U %S", "-o",
                              str(rss)] + argv, stdin=subprocess.DEVNULL,
                             stdout=fo, stderr=fe, env=sender_env(e))
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        pytest.fail("sender ran longer than %d s" % timeout)
    p.argv = argv
    r = result_of(p, out, err, time.monotonic() - t0)
    kib, user, system = rss.read_text().split()[-3:]
    r.cpu = float(user) + float(system)
    return r, int(kib) * 1024


# ---------------------------------------------------------------- XML

def email_xml(id, to="user@example.com", subject="Hello", indent="  "):
    """One <email> on one line; id/to/subject None leave it out."""
    attr = "" if id is None else " id=%s" % quoteattr(str(id))
    inner = ""
    if to is not None:
        inner += "<to>%s</to>" % escape(to)
    if subject is not None:
        inner += "<subject>%s</subject>" % escape(subject)
    return "%s<email%s>%s</email>\n" % (indent, attr, inner)


def default_to(i):
    return "user%s@example.com" % i


def default_subject(i):
    return "Subject %s" % i


def letters_xml(letters, root="emails"):
    """letters: ids, or (id, to, subject) tuples.  One letter per line: the
    letter of the k-th entry is on line k + 3 (see letter_line)."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n', "<%s>\n" % root]
    for x in letters:
        if isinstance(x, tuple):
            parts.append(email_xml(*x))
        else:
            parts.append(email_xml(x, default_to(x), default_subject(x)))
    parts.append("</%s>\n" % root)
    return "".join(parts)


def letter_line(k):
    """Line number of the k-th (0-based) letter in letters_xml output."""
    return k + 3


def write_letters(path, letters, root="emails"):
    path = Path(path)
    path.write_text(letters_xml(letters, root), encoding="utf-8")
    return path


def write_raw(path, text):
    path = Path(path)
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


# ---------------------------------------------------------------- checks

def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def parse_ts(ts):
    assert isinstance(ts, str) and TS_RE.match(ts), \
        "ts %r is not YYYY-MM-DD HH:MM:SS" % (ts,)
    return datetime.datetime.strptime(ts, "%Y-%m-%d %H:%M:%S")


def assert_ts_between(ts, t0, t1):
    """ts (UTC text) lies within [t0, t1] (naive UTC datetimes), rounded
    outwards to whole seconds."""
    t = parse_ts(ts)
    lo = t0.replace(microsecond=0)
    hi = t1.replace(microsecond=0) + datetime.timedelta(seconds=1)
    assert lo <= t <= hi, "ts %s not within the run [%s, %s] UTC" % (
        ts, lo, hi)


def assert_json_summary(r, consistent=True, **expect):
    """stdout is one JSON object with exactly the keys of SPEC 7, `letters`
    the sum of the outcomes (unless consistent=False), and the expected
    values."""
    s = r.json()
    assert JSON_KEYS <= set(s) <= JSON_KEYS | JSON_KEYS_EARLY_STOP, \
        "keys %s\n%s" % (sorted(s), r)
    for k in JSON_KEYS - {"seconds"}:
        assert isinstance(s[k], int) and not isinstance(s[k], bool) \
            and s[k] >= 0, "%s=%r\n%s" % (k, s[k], r)
    assert isinstance(s["seconds"], (int, float)) and s["seconds"] >= 0
    parts = sum(s[k] for k in ("delivered", "not_delivered", "rejected",
                               "errors", "skipped", "deferred", "invalid"))
    # design: every letter read has exactly one outcome, as in SPEC 7's
    # example line (812 + 171 + 3 + 10 + 4 + 0 = 1000).
    if consistent:
        assert s["letters"] == parts, "letters != sum of outcomes\n%s" % r
    for k, v in expect.items():
        assert s[k] == v, "%s: want %r got %r\n%s" % (k, v, s[k], r)
    return s


def assert_refused(r, m, words):
    """Exit 4, nothing POSTed, and a message naming every word."""
    assert r.code == 4, r
    assert m.requests() == [], "sent without a usable store"
    for w in words:
        assert w in r.err, "message does not name %r:\n%s" % (w, r)


def assert_no_claims(store, r=None):
    claimed = store.claimed_ids()
    assert not claimed, "claimed records left behind: %s\n%s" % (
        sorted(claimed)[:20], r if r is not None else "")
