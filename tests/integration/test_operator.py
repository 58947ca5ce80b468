"""The operator's view: progress line, -q, --log-format json, --status,
--print-config and the precedence of settings, --help against the manual."""

import json
import os
import pty
import re
import select
import subprocess
import time

from conftest import (REPO, SENDER_BIN, SUMMARY_RE, sender_env, write_config,
                      write_letters)

ANSI = re.compile(r"\r|\x1b\[[0-9;]*[A-Za-z]")


def run_on_tty(argv, timeout=60):
    """Run with stderr on a pseudo-terminal; return (exit, stderr text)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=slave, cwd=REPO,
                         env=sender_env())
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not data:
                break
            chunks.append(data)
        elif p.poll() is not None:
            break
    p.wait(timeout=10)
    os.close(master)
    return p.returncode, b"".join(chunks).decode("utf-8", "replace")


def slow_run_args(sender, mock, tmp_path, extra=()):
    # 150 letters, 2 at a time, 20 ms each: about 1.5 s, several redraws
    m = mock("--latency-ms", "20")
    path = write_letters(tmp_path / "a.xml", range(1, 151))
    config = write_config(sender.config(m.url, concurrency=2), tmp_path)
    return [str(SENDER_BIN), "-c", str(config), str(path)] + list(extra)


def test_progress_line_on_a_terminal(store, sender, mock, tmp_path):
    code, err = run_on_tty(slow_run_args(sender, mock, tmp_path))
    assert code == 0, err
    assert "in flight" in err and "\r" in err, err
    # redrawn in place, then erased: what remains ends with the summary
    assert "\x1b[K" in err, err
    last = [l for l in ANSI.sub("\n", err).splitlines() if l.strip()][-1]
    assert SUMMARY_RE.match(last), err


def test_no_progress_silences_it_on_a_terminal(store, sender, mock,
                                               tmp_path):
    code, err = run_on_tty(slow_run_args(sender, mock, tmp_path,
                                         ["--no-progress"]))
    assert code == 0, err
    assert "in flight" not in err, err


def test_no_progress_line_when_stderr_is_a_pipe(store, sender, mock,
                                                tmp_path):
    argv = slow_run_args(sender, mock, tmp_path)
    p = subprocess.run(argv, capture_output=True, env=sender_env(), cwd=REPO,
                       timeout=60)
    err = p.stderr.decode()
    assert p.returncode == 0, err
    assert "in flight" not in err and "\r" not in err, err


def test_quiet_clean_run_prints_nothing(store, sender, mock, tmp_path):
    m = mock()
    path = write_letters(tmp_path / "a.xml", range(1, 21))
    r = sender.run(["-q", path], api_url=m.url)
    assert r.code == 0, r
    assert r.err == "" and r.out == "", r


def test_quiet_failing_run_prints_only_errors_and_summary(store, sender,
                                                         mock, tmp_path):
    m = mock("--fail-first", "3=100", "--answer", "4=400:no such box")
    path = write_letters(tmp_path / "a.xml", range(1, 6))
    r = sender.run(["-q", path], api_url=m.url, max_attempts=2)
    assert r.code == 1, r
    lines = r.err.splitlines()
    assert SUMMARY_RE.match(lines[-1]), r
    # warnings (the deferred and the rejected letter) are not errors
    assert not [l for l in lines[:-1] if "id 3" in l or "id 4" in l], r


def test_log_format_json(store, sender, mock, tmp_path):
    m = mock("--answer", "2=400:no such box")
    path = tmp_path / "a.xml"
    path.write_text("<emails><email id='1'><to>a@b</to><subject>s</subject>"
                    "</email><email id='2'><to>b@b</to><subject>s</subject>"
                    "</email><email id='x'><to>c@b</to><subject>s</subject>"
                    "</email></emails>")
    r = sender.run(["--log-format", "json", path], api_url=m.url)
    assert r.code == 3, r
    events = [json.loads(l) for l in r.err.splitlines()]
    for e in events:
        assert {"ts", "level", "event", "message"} <= set(e), r
    kinds = {e["event"]: e for e in events}
    assert kinds["rejected"]["id"] == 2, r
    assert "no such box" in kinds["rejected"]["message"], r
    assert "a.xml:1" in kinds["invalid"]["message"], r
    assert SUMMARY_RE.match("sender: " + kinds["summary"]["message"]), r


def test_status_counts_the_store(store, sender, mock, tmp_path):
    m = mock("--zero-every", "3", "--answer", "5=400:bad")
    path = write_letters(tmp_path / "a.xml", range(1, 11))
    config = write_config(sender.config(m.url), tmp_path)
    assert sender.run([path], config=config).code == 0
    r = sender.run(["--status"], config=config)
    assert r.code == 0, r
    got = dict(re.findall(r"^\s*([a-z ]+):\s*(\d+)", r.out, re.M))
    assert got["records"] == "10" and got["done"] == "10", r
    assert got["delivered"] == "6", r       # 1 2 4 7 8 10
    assert got["not delivered"] == "3", r   # 3 6 9
    assert got["rejected"] == "1", r        # 5
    assert got["claimed"] == "0", r


def test_print_config_precedence(store, sender, mock, tmp_path):
    """defaults < config file < environment < command line."""
    config = write_config("[api]\nurl = http://file.invalid/\n"
                          "concurrency = 5\ntimeout = 7\n"
                          "[mysql]\npassword = s3cr3t-pw\n", tmp_path)

    def effective(args=(), env=None):
        r = sender.run(["--print-config"] + list(args), config=config,
                       env=env)
        assert r.code == 0, r
        assert "s3cr3t-pw" not in r.out + r.err, r
        return {m.group(1): (m.group(2), m.group(3)) for m in re.finditer(
            r"^(\w+) = (.*?) ; (.*?) \(", r.out, re.M)}, r

    cfg, r = effective()
    assert cfg["concurrency"][0] == "5" and ":3" in cfg["concurrency"][1], r
    assert cfg["max_attempts"] == ("8", "default"), r
    assert cfg["password"][0] == "********", r
    cfg, r = effective(env={"SENDER_API_CONCURRENCY": "6",
                            "SENDER_API_TIMEOUT": "9"})
    assert cfg["concurrency"][0] == "6" and cfg["timeout"][0] == "9", r
    cfg, r = effective(["-j", "7"], env={"SENDER_API_CONCURRENCY": "6"})
    assert cfg["concurrency"] == ("7", "--concurrency"), r
    assert cfg["url"][0] == "http://file.invalid/", r


def test_bad_environment_value_is_a_config_error(store, sender, mock,
                                                 tmp_path):
    m = mock()
    path = write_letters(tmp_path / "a.xml", [1])
    r = sender.run([path], api_url=m.url,
                   env={"SENDER_API_CONCURRENCY": "lots"})
    assert r.code == 2, r
    assert "SENDER_API_CONCURRENCY" in r.err and "concurrency" in r.err, r
    assert m.requests() == [], r


def options_of(text):
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", text))


def test_help_and_manual_list_the_same_options():
    help_text = subprocess.run([str(SENDER_BIN), "--help"],
                               capture_output=True, text=True).stdout
    manual = (REPO / "sender.1").read_text().replace("\\-", "-")
    from_help, from_manual = options_of(help_text), options_of(manual)
    assert len(from_help) >= 15, from_help
    assert from_help == from_manual, (from_help ^ from_manual)
