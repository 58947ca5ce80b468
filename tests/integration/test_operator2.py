"""The operator's tool, second round (SPEC section 8): --rate, --limit,
--report, a progress line that fits the terminal, one message for a dead
API, -vv, messages that point the right way, named signals."""

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time

import pytest

from conftest import (REPO, SENDER_BIN, SUMMARY_RE, closed_port_url,
                      make_config, result_of, sender_env, wait_for,
                      write_config, write_letters, write_raw)

OUTCOMES = {"delivered", "not_delivered", "rejected", "error", "skipped",
            "deferred", "in_doubt", "invalid"}


# ---------------------------------------------------------------- --rate

def test_rate_holds_the_run_to_n_letters_a_second(store, sender, mock,
                                                  tmp_path):
    m = mock()
    path = write_letters(tmp_path / "a.xml", range(1, 1001))
    r = sender.run(["--rate", "200", "--json", path], api_url=m.url)
    assert r.code == 0, r
    assert r.json()["delivered"] == 1000, r
    # 1000 letters at 200 a second: 5 s, less a small initial burst
    assert r.seconds >= 4.5, r
    assert r.seconds < 30, r


def test_rate_from_the_config_file(store, sender, mock, tmp_path):
    m = mock()
    path = write_letters(tmp_path / "a.xml", range(1, 101))
    r = sender.run([path], api_url=m.url, extra="[api]\nrate = 50\n")
    assert r.code == 0, r
    assert r.seconds >= 1.5, r   # 100 letters at 50/s: about 2 s


def test_rate_above_the_api_does_not_slow_the_run(store, sender, mock,
                                                  tmp_path):
    """The bucket only holds letters back past N a second: an API that
    gives less than that sees the same throughput as without --rate."""
    m = mock("--latency-ms", "20")
    times = {}
    for k, extra in enumerate(([], ["--rate", "2000"])):
        store.teardown()
        store.setup()
        path = write_letters(tmp_path / ("a%d.xml" % k),
                             range(1, 601))
        r = sender.run(extra + [path], api_url=m.url, concurrency=4)
        assert r.code == 0, r
        times[k] = r.seconds
    # 4 in flight, 20 ms each: about 200/s, 3 s, well below 2000/s
    assert times[1] <= times[0] * 1.5 + 0.5, times


def test_rate_must_be_a_number(store, sender, mock, tmp_path):
    m = mock()
    path = write_letters(tmp_path / "a.xml", [1])
    r = sender.run(["--rate", "fast", path], api_url=m.url)
    assert r.code == 2, r
    assert "rate" in r.err and "--rate" in r.err, r
    assert m.requests() == [], r


# ---------------------------------------------------------------- --limit

def test_limit_leaves_the_rest_for_the_next_run(store, sender, mock,
                                                tmp_path):
    m = mock()
    path = write_letters(tmp_path / "a.xml", range(1, 101))
    config = write_config(sender.config(m.url), tmp_path)
    r = sender.run(["--limit", "30", "--json", path], config=config)
    assert r.code == 1, r
    s = r.json()
    assert s["delivered"] == 30 and s["left"] == 70, r
    assert "70 letters left" in r.err, r
    assert SUMMARY_RE.search(r.err), r
    assert len(m.requests()) == 30, r
    assert len(store.rows()) == 30, r
    # the next runs take the next 30, then the rest
    r = sender.run(["--limit", "30", "--json", path], config=config)
    s = r.json()
    assert r.code == 1 and s["delivered"] == 30 and s["skipped"] == 30, r
    assert s["left"] == 40, r
    r = sender.run(["--json", path], config=config)
    s = r.json()
    assert r.code == 0 and s["delivered"] == 40 and s["left"] == 0, r
    assert sorted(m.posts_per_id().values()) == [1] * 100


def test_limit_counts_claims_not_skipped_letters(store, sender, mock,
                                                 tmp_path):
    m = mock()
    path = write_letters(tmp_path / "a.xml", range(1, 11))
    config = write_config(sender.config(m.url), tmp_path)
    assert sender.run([write_letters(tmp_path / "b.xml", range(1, 6))],
                      config=config).code == 0
    r = sender.run(["--limit", "5", "--json", path], config=config)
    s = r.json()
    # 1..5 done earlier are skipped; 6..10 are the five claimed
    assert r.code == 0 and s["delivered"] == 5 and s["left"] == 0, r


@pytest.mark.parametrize("bad", ["0", "-3", "x", "5x"])
def test_limit_must_be_positive(store, sender, mock, tmp_path, bad):
    m = mock()
    path = write_letters(tmp_path / "a.xml", [1])
    r = sender.run(["--limit", bad, path], api_url=m.url)
    assert r.code == 2 and "--limit" in r.err, r


# ---------------------------------------------------------------- --report

def report_lines(text):
    lines = text.splitlines()
    return [json.loads(l) for l in lines]


def test_report_has_one_line_per_letter(store, sender, mock, tmp_path):
    m = mock("--zero-every", "4", "--answer", "5=400:no such box",
             "--answer", "6=200:what", "--fail-first", "7=100")
    path = write_raw(tmp_path / "a.xml",
                     "<emails>\n" +
                     "".join("<email id='%d'><to>a@b</to><subject>s"
                             "</subject></email>\n" % i
                             for i in range(1, 11)) +
                     "<email id='x'><to>a@b</to><subject>s</subject>"
                     "</email>\n"
                     "<email id='3'><to>a@b</to><subject>s</subject>"
                     "</email>\n</emails>\n")
    report = tmp_path / "report.jsonl"
    r = sender.run(["--report", report, path], api_url=m.url,
                   max_attempts=2)
    assert r.code == 3, r        # the invalid letter
    lines = report_lines(report.read_text())
    assert len(lines) == 12, lines
    for l in lines:
        assert {"id", "outcome", "http_status", "attempts", "ts"} <= set(l)
        assert l["outcome"] in OUTCOMES, l
        assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", l["ts"]), l
    by = {}
    for l in lines:
        by.setdefault(l["id"], []).append(l)
    assert by[1][0]["outcome"] == "delivered", by[1]
    assert by[1][0]["http_status"] == 200 and by[1][0]["attempts"] == 1
    assert by[4][0]["outcome"] == "not_delivered", by[4]
    assert by[5][0]["outcome"] == "rejected", by[5]
    assert by[5][0]["http_status"] == 400, by[5]
    assert by[5][0]["text"] == "no such box", by[5]
    assert by[6][0]["outcome"] == "error" and by[6][0]["text"] == "what"
    assert by[7][0]["outcome"] == "deferred", by[7]
    assert by[7][0]["attempts"] == 2, by[7]
    assert by[None][0]["outcome"] == "invalid", by[None]
    # id 3 twice: delivered once, then skipped as a repeat
    assert sorted(l["outcome"] for l in by[3]) == ["delivered", "skipped"]
    # a second run: every letter done earlier is skipped, one line each
    report2 = tmp_path / "report2.jsonl"
    r = sender.run(["--report", report2, path], api_url=m.url,
                   max_attempts=2)
    lines = report_lines(report2.read_text())
    assert len(lines) == 12, lines
    outcomes = sorted(l["outcome"] for l in lines)
    assert outcomes.count("skipped") == 10, outcomes  # 9 done, one repeat


def test_report_to_standard_output(store, sender, mock, tmp_path):
    m = mock()
    path = write_letters(tmp_path / "a.xml", range(1, 21))
    r = sender.run(["--report", "-", path], api_url=m.url)
    assert r.code == 0, r
    lines = report_lines(r.out)
    assert sorted(l["id"] for l in lines) == list(range(1, 21)), r
    r = sender.run(["--report", "-", "--json", path], api_url=m.url)
    assert r.code == 2 and "--report" in r.err, r


def test_report_after_sigkill_is_valid_to_its_last_line(store, sender, mock,
                                                        tmp_path):
    m = mock("--latency-ms", "2")
    path = write_letters(tmp_path / "a.xml", range(1, 20001))
    report = tmp_path / "report.jsonl"
    p, out, err = sender.popen(["--report", report, path], api_url=m.url)
    try:
        assert wait_for(lambda: report.exists() and
                        report.stat().st_size > 20000, 60), \
            result_of(p, out, err) if p.poll() is not None else "slow"
        # written as it goes: tail -f sees lines while the run goes on
        assert p.poll() is None, "the run ended before it was killed"
        p.kill()
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    text = report.read_text()
    assert text.endswith("\n"), text[-200:]
    lines = report_lines(text)
    assert len(lines) >= 100, len(lines)
    assert len({l["id"] for l in lines}) == len(lines)


def test_report_that_cannot_be_written_is_a_usage_error(store, sender, mock,
                                                        tmp_path):
    m = mock()
    path = write_letters(tmp_path / "a.xml", [1])
    r = sender.run(["--report", tmp_path / "no" / "dir" / "r.jsonl", path],
                   api_url=m.url)
    assert r.code == 2 and "r.jsonl" in r.err, r
    assert m.requests() == [] and store.untouched(), r


# ---------------------------------------------------------------- progress

ANSI_K = "\x1b[K"


def screen_of(data, width):
    """What a terminal of `width` columns shows after data: \\r, \\n,
    ESC[K and printable text, with the automatic wrap at the margin."""
    rows, row, col = [[]], 0, 0
    i = 0
    while i < len(data):
        if data.startswith(ANSI_K, i):
            del rows[row][col:]
            i += len(ANSI_K)
            continue
        c = data[i]
        i += 1
        if c == "\r":
            col = 0
        elif c == "\n":
            row += 1
            col = 0
            if row == len(rows):
                rows.append([])
        else:
            if col >= width:        # the wrap
                row += 1
                col = 0
                if row == len(rows):
                    rows.append([])
            line = rows[row]
            while len(line) < col:
                line.append(" ")
            if col < len(line):
                line[col] = c
            else:
                line.append(c)
            col += 1
    return ["".join(r) for r in rows]


def run_on_tty(argv, width, timeout=60, on_output=None):
    """Run with stderr on a pseudo-terminal of `width` columns; return
    (exit, raw stderr text).  on_output(p, text_so_far) is called as
    output arrives."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ,
                struct.pack("HHHH", 24, width, 0, 0))
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=slave, cwd=REPO,
                         env=sender_env())
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not data:
                break
            chunks.append(data)
            if on_output:
                on_output(p, master, b"".join(chunks).decode("utf-8",
                                                             "replace"))
        elif p.poll() is not None:
            break
    if p.poll() is None:
        p.kill()
    p.wait(timeout=10)
    os.close(master)
    return p.returncode, b"".join(chunks).decode("utf-8", "replace")


def slow_run(sender, mock, tmp_path, n=300, latency=20):
    m = mock("--latency-ms", str(latency))
    path = write_letters(tmp_path / "a.xml", range(1, n + 1))
    config = write_config(sender.config(m.url, concurrency=2), tmp_path)
    return [str(SENDER_BIN), "-c", str(config), str(path)]


@pytest.mark.parametrize("width", [60, 120])
def test_progress_line_fits_the_terminal(store, sender, mock, tmp_path,
                                         width):
    code, raw = run_on_tty(slow_run(sender, mock, tmp_path), width)
    assert code == 0, raw
    draws = [s for s in re.split(r"[\r\n]", raw.replace(ANSI_K, ""))
             if "in flight" in s]
    assert len(draws) >= 3, raw
    for d in draws:
        assert len(d) < width, "%d columns: %r" % (width, d)
    # elapsed time first: 0:00:01
    assert any(re.match(r"sender: \d+:\d\d:\d\d ", d) for d in draws), draws
    screen = [l for l in screen_of(raw, width) if l.strip()]
    # the summary may wrap (it is printed once); the live line may not
    stale = [l for l in screen if "in flight" in l or " read, " in l]
    assert not stale, "fragments left on the screen: %s" % stale
    assert any(SUMMARY_RE.match("".join(screen[-k:])) for k in (1, 2, 3)), \
        screen


def test_progress_line_follows_a_resize(store, sender, mock, tmp_path):
    state = {"resized": None}

    def shrink(p, master, text):
        if state["resized"] is None and "in flight" in text:
            fcntl.ioctl(master, termios.TIOCSWINSZ,
                        struct.pack("HHHH", 24, 50, 0, 0))
            p.send_signal(signal.SIGWINCH)
            state["resized"] = len(text)

    code, raw = run_on_tty(slow_run(sender, mock, tmp_path), 120,
                           on_output=shrink)
    assert code == 0, raw
    assert state["resized"], raw
    after = raw[state["resized"]:]
    draws = [s for s in re.split(r"[\r\n]", after.replace(ANSI_K, ""))
             if "sender: " in s and "letters:" not in s]
    assert draws, raw
    for d in draws[1:]:
        assert len(d) < 50, d


def test_progress_says_stopping_after_a_signal(store, sender, mock,
                                               tmp_path):
    state = {"sent": False}

    def interrupt(p, master, text):
        if not state["sent"] and "in flight" in text:
            p.send_signal(signal.SIGINT)
            state["sent"] = True

    # answers take 1.5 s: the drain is long enough for a redraw
    code, raw = run_on_tty(slow_run(sender, mock, tmp_path, n=50,
                                    latency=1500), 120,
                           on_output=interrupt)
    assert code == 130, raw
    assert re.search(r"stopping: \d+ in flight", raw), raw
    after = raw[raw.index("stopping:"):]
    assert "ETA" not in after, raw


# ---------------------------------------------------------------- dead API

def test_dead_api_is_one_message(store, sender, tmp_path):
    url = closed_port_url()
    path = write_letters(tmp_path / "a.xml", range(1, 201))
    r = sender.run([path], api_url=url, max_attempts=3)
    assert r.code == 1, r
    lines = r.err.splitlines()
    assert SUMMARY_RE.match(lines[-1]), r
    assert len(lines) == 2, "want the cause and the summary:\n%s" % r
    cause = lines[0]
    assert url in cause, r
    assert "onnect" in cause, r          # the error: could not connect
    deferred = r.summary()["deferred"]
    assert deferred > 0 and ("%d letters deferred" % deferred) in cause, r
    assert "deferred after" not in r.err, r
    # -v: the letters one by one
    store.teardown()
    store.setup()
    r = sender.run(["-v", path], api_url=url, max_attempts=3)
    assert r.code == 1, r
    assert len(re.findall(r"id \d+: deferred after", r.err)) >= 10, r


def test_a_few_deferred_letters_are_one_warning(store, sender, mock,
                                                tmp_path):
    m = mock("--fail-first", "3=100", "--fail-first", "8=100")
    path = write_letters(tmp_path / "a.xml", range(1, 21))
    r = sender.run([path], api_url=m.url, max_attempts=2)
    assert r.code == 1, r
    lines = [l for l in r.err.splitlines() if "deferred" in l]
    assert len(lines) == 2, r   # the warning and the summary
    # the first to be deferred is named: 3 or 8, whichever ran out first
    assert "2 letters deferred" in lines[0], r
    assert re.search(r"first: id [38], HTTP 503", lines[0]), r


def test_very_verbose_shows_retries_window_and_store(store, sender, mock,
                                                     tmp_path):
    m = mock("--burst-503", "40")
    path = write_letters(tmp_path / "a.xml", range(1, 101))
    r = sender.run(["-vv", path], api_url=m.url, concurrency=8,
                   max_attempts=50)
    assert r.code == 0, r
    assert re.search(r"id \d+: attempt 1: HTTP 503; again in \d+ ms", r.err)
    assert re.search(r"window \d+ -> \d+", r.err), r
    assert re.search(r"store: claimed \d+ ids", r.err), r
    assert re.search(r"store: recorded \d+ outcomes", r.err), r
    r1 = sender.run(["-v", path], api_url=m.url, concurrency=8)
    assert "store: claimed" not in r1.err and "window" not in r1.err, r1


# ---------------------------------------------------------------- messages

def test_empty_file_directory_and_stdin_twice(store, sender, mock, tmp_path):
    m = mock()
    empty = write_raw(tmp_path / "empty.xml", "")
    r = sender.run([empty], api_url=m.url)
    assert r.code == 3 and "'%s' is empty" % empty in r.err, r
    assert "Extra content" not in r.err, r
    r = sender.run(["-"], api_url=m.url, stdin="")
    assert r.code == 3 and "<stdin>: the input is empty" in r.err, r
    assert "Extra content" not in r.err, r
    r = sender.run([tmp_path], api_url=m.url)
    assert r.code == 3 and "is a directory" in r.err, r
    r = sender.run(["-", "-"], api_url=m.url, stdin="<emails/>")
    assert r.code == 2 and "'-' (standard input) is given 2 times" in r.err
    assert m.requests() == [], r


@pytest.mark.parametrize("sig,name,code", [(signal.SIGINT, "SIGINT", 130),
                                           (signal.SIGTERM, "SIGTERM", 143),
                                           (signal.SIGHUP, "SIGHUP", 129)])
def test_signals_are_named(store, sender, mock, tmp_path, sig, name, code):
    m = mock("--latency-ms", "200")
    path = write_letters(tmp_path / "a.xml", range(1, 201))
    p, out, err = sender.popen([path], api_url=m.url)
    try:
        assert wait_for(lambda: m.stats()["requests"] >= 5, 60)
        p.send_signal(sig)
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    r = result_of(p, out, err)
    assert r.code == code, r
    assert "stopping on %s" % name in r.err, r
    assert not re.search(r"signal \d", r.err), r


def test_sighup_status_is_documented_everywhere():
    help_text = subprocess.run([str(SENDER_BIN), "--help"],
                               capture_output=True, text=True).stdout
    manual = (REPO / "sender.1").read_text().replace("\\-", "-")
    readme = (REPO / "README.md").read_text()
    for name, text in (("--help", help_text), ("sender.1", manual),
                       ("README.md", readme)):
        assert "129" in text and "SIGHUP" in text, name


# ---------------------------------------------------------------- config

def lookup_env(home, xdg=None):
    env = {"HOME": str(home)}
    if xdg is not None:
        env["XDG_CONFIG_HOME"] = str(xdg)
    return env


def url_in_use(cwd, env):
    """The [api] url and its origin that --print-config reports."""
    from conftest import run_sender
    r = run_sender(["--print-config"], cwd=cwd, env=env)
    assert r.code == 0, r
    m = re.search(r"^url = (\S+) ; (\S+)", r.out, re.M)
    return m.group(1), m.group(2), r


def test_config_lookup_order(tmp_path):
    home, xdg, work = tmp_path / "home", tmp_path / "xdg", tmp_path / "work"
    for d in (home / ".config" / "sender", xdg / "sender", work):
        d.mkdir(parents=True)
    (home / ".config" / "sender" / "sender.ini").write_text(
        "[api]\nurl = http://home.invalid/\n")
    url, origin, r = url_in_use(work, lookup_env(home))
    assert url == "http://home.invalid/", r
    assert origin.startswith(str(home / ".config" / "sender")), r
    (xdg / "sender" / "sender.ini").write_text(
        "[api]\nurl = http://xdg.invalid/\n")
    url, origin, r = url_in_use(work, lookup_env(home, xdg))
    assert url == "http://xdg.invalid/", r
    (work / "sender.ini").write_text("[api]\nurl = http://cwd.invalid/\n")
    url, origin, r = url_in_use(work, lookup_env(home, xdg))
    assert url == "http://cwd.invalid/", r
    other = tmp_path / "other.ini"
    other.write_text("[api]\nurl = http://env.invalid/\n")
    env = lookup_env(home, xdg)
    env["SENDER_CONFIG"] = str(other)
    url, origin, r = url_in_use(work, env)
    assert url == "http://env.invalid/", r


def test_relative_paths_are_beside_the_config_file(store, mock, tmp_path):
    if store.name != "sqlite":
        pytest.skip("[sqlite] path")
    from conftest import run_sender
    m = mock()
    conf, work = tmp_path / "conf", tmp_path / "work"
    conf.mkdir()
    work.mkdir()
    ini = conf / "sender.ini"
    ini.write_text("[api]\nurl = %s\n[store]\njournal = j.journal\n"
                   "[sqlite]\npath = data.db\n" % m.url)
    letters = write_letters(tmp_path / "a.xml", [1, 2])
    r = run_sender(["-c", ini, letters], cwd=work)
    assert r.code == 0, r
    assert (conf / "data.db").exists(), r
    assert not (work / "data.db").exists(), r
    r = run_sender(["-c", ini, "--print-config"], cwd=work)
    assert "journal = %s ;" % (conf / "j.journal") in r.out, r
    # the environment and the command line stay relative to the cwd
    r = run_sender(["-c", ini, "--print-config"], cwd=work,
                   env={"SENDER_SQLITE_PATH": "x.db"})
    assert re.search(r"^path = x\.db ;", r.out, re.M), r


def test_unknown_sender_variable_is_a_warning(store, sender, mock, tmp_path):
    m = mock()
    path = write_letters(tmp_path / "a.xml", [1])
    r = sender.run([path], api_url=m.url,
                   env={"SENDER_API_URLL": "http://x.invalid/"})
    assert r.code == 0, r
    assert "SENDER_API_URLL" in r.err and "names no configuration key" \
        in r.err, r
    r = sender.run(["--print-config"], api_url=m.url,
                   env={"SENDER_API_URL": m.url, "SENDER_CONFIG": "/dev/null"})
    assert r.code == 0 and "names no" not in r.err, r


# ---------------------------------------------------------------- --status

def status_config(store):
    # an API URL that is never used: --status does not talk to it
    return make_config(store, "http://127.0.0.1:9/api.php")


def where_expected(store):
    """The place --status must name, per backend."""
    if store.name == "sqlite":
        return {"path": str(store.path)}
    if store.name == "mysql":
        return {"socket": str(store.server.socket),
                "database": store.database, "table": store.table}
    if store.name == "mongodb":
        # the URI as given, less any user:password@
        return {"uri": re.sub(r"//[^/?]*@", "//",
                              store.server.uri.split("?")[0]),
                "database": store.database,
                "collection": store.collection}
    pytest.skip("no expectations for backend %s" % store.name)


def test_status_creates_nothing(store, sender, tmp_path):
    config = status_config(store)
    r = sender.run(["--status"], config=config)
    assert r.code == 0, r
    assert store.untouched(), "--status created the store\n%s" % r
    assert "nothing recorded yet" in r.out, r
    assert re.search(r"^records:\s+0$", r.out, re.M), r
    r = sender.run(["--status", "--json"], config=config)
    assert r.code == 0, r
    s = json.loads(r.out)
    assert s["exists"] is False and s["records"] == 0, r
    assert store.untouched(), "--status --json created the store\n%s" % r


def test_status_says_where_it_read(store, sender, mock, tmp_path):
    m = mock("--zero-every", "3")
    path = write_letters(tmp_path / "a.xml", range(1, 11))
    assert sender.run([path], api_url=m.url).code == 0
    config = write_config(status_config(store), tmp_path)
    want = where_expected(store)
    files = sorted(os.listdir(tmp_path))
    r = sender.run(["--status"], config=config)
    assert r.code == 0, r
    # no -wal, -shm or anything else left behind by reading
    assert sorted(os.listdir(tmp_path)) == files, r
    assert "backend:          %s" % store.name in r.out, r
    for k, v in want.items():
        assert re.search(r"^%s:\s+%s$" % (k, re.escape(v)), r.out, re.M), \
            "want %s: %s\n%s" % (k, v, r)
    assert "nothing recorded yet" not in r.out, r
    r = sender.run(["--status", "--json"], config=config)
    assert r.code == 0, r
    s = json.loads(r.out)
    assert s["backend"] == store.name, r
    for k, v in want.items():
        assert s["where"][k] == v, r
    assert s["exists"] is True, r
    assert (s["records"], s["done"], s["delivered"], s["not_delivered"],
            s["rejected"], s["claimed"]) == (10, 10, 7, 3, 0, 0), r


def test_status_in_an_empty_directory_creates_nothing(tmp_path):
    """The built-in defaults: sqlite, ./sender.db.  Today's bug: it made
    sender.db there and reported zeros."""
    from conftest import run_sender
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    r = run_sender(["--status"], cwd=work, env={"HOME": str(home)})
    assert r.code == 0, r
    assert os.listdir(work) == [], os.listdir(work)
    assert re.search(r"^path:\s+%s$" % re.escape(str(work / "sender.db")),
                     r.out, re.M), r
    assert "nothing recorded yet" in r.out, r


def test_status_never_shows_credentials(store, sender, tmp_path):
    if store.name != "mongodb":
        pytest.skip("credentials in a URI: [mongodb] uri")
    port = closed_port_url().split(":")[2].split("/")[0]
    uri = ("mongodb://alice:s3cr3t@127.0.0.1:%s/?serverSelectionTimeoutMS="
           "300&connectTimeoutMS=300" % port)
    config = status_config(store).replace(store.server.uri, uri)
    for extra in ([], ["--json"]):
        r = sender.run(["--status"] + extra, config=config)
        assert r.code == 4, r
        assert "s3cr3t" not in r.out + r.err and "alice" not in r.out, r
        assert "mongodb://127.0.0.1:%s/" % port in r.out, r
