#!/usr/bin/env python3
"""make bench-hosts: aggregate letters/s of 1, 2 and 4 sender hosts sharing
one database (issue 12).

On the namespace test bed of tests/hosts/netns.py (needs root): a database
host runs a private MariaDB over TCP (tests/lib/mariadb.sh), an API host
the mock API with 20 ms latency, and 1, 2 or 4 sender hosts each send their
own BENCH_HOSTS_LETTERS letters (disjoint ids) with -j 32 to the same
table, all started at once.  The aggregate is all letters over the time
from the first start to the last exit; the ideal is 32 / 20 ms = 1,600
letters/s per host.  Each row gives the ratio to N x the one-host figure
(1.00: the hosts do not slow each other down) and to the ideal.

Knobs (environment): BENCH_HOSTS_LETTERS (20000), BENCH_HOSTS_RUNS (1; the
median is shown), BENCH_SENDER (another build), BENCH_KEEP=1 (keep the temp
directory), TMPDIR.
"""
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "hosts"))
import netns  # noqa: E402

SENDER = Path(os.environ.get("BENCH_SENDER", ROOT / "sender")).resolve()
MOCK = ROOT / "tests" / "mock_api"
MARIADB_SH = ROOT / "tests" / "lib" / "mariadb.sh"
LETTERS = int(os.environ.get("BENCH_HOSTS_LETTERS", "20000"))
RUNS = int(os.environ.get("BENCH_HOSTS_RUNS", "1"))
LATENCY_MS = 20
CONCURRENCY = 32
HOSTS = (1, 2, 4)


def say(*a):
    print("bench-hosts:", *a, file=sys.stderr, flush=True)


def write_letters(path, first, n):
    with open(path, "w", encoding="utf-8") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<emails>\n')
        for i in range(first, first + n):
            f.write('<email id="%d"><to>user%d@example.com</to>'
                    '<subject>Письмо номер %d</subject></email>\n'
                    % (i, i, i))
        f.write("</emails>\n")


def main():
    reason = netns.available()
    if reason:
        say("skipped: %s" % reason)
        return 0
    work = Path(tempfile.mkdtemp(prefix="sender-bench-hosts-"))
    bed = netns.Bed(work / "bed")
    try:
        return measure(bed, work)
    finally:
        bed.close()
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)
        else:
            say("kept", work)


def measure(bed, work):
    db, api = bed.add_host("db"), bed.add_host("api")
    senders = [bed.add_host("s%d" % k) for k in range(max(HOSTS))]
    password = "u1-" + secrets.token_hex(8)
    env = dict(os.environ, MARIADB_U1_PASSWORD=password,
               MARIADB_TCP_PORT="3306", MARIADB_BIND_ADDRESS=db.addr)
    env["PATH"] = env.get("PATH", "") + ":/usr/sbin:/sbin"
    say("starting MariaDB on", db.addr)
    db.run(["bash", MARIADB_SH, "start", work / "mariadb"], env=env,
           timeout=300)
    port_file = work / "mock.port"
    mock = api.popen([MOCK, "--bind", api.addr, "--port", "8080",
                      "--port-file", port_file, "--latency-ms",
                      str(LATENCY_MS)], stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while not port_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    files = []
    for k in range(max(HOSTS)):
        files.append(work / ("h%d.xml" % k))
        write_letters(files[-1], 1 + k * LETTERS, LETTERS)
    rates = {}
    try:
        for n in HOSTS:
            got = []
            for run in range(RUNS):
                table = "bench_%d_%d" % (n, run)
                got.append(one(senders[:n], files, work, db, api, password,
                               table))
                say("%d host(s): %.0f letters/s" % (n, got[-1]))
            rates[n] = statistics.median(got)
    finally:
        mock.send_signal(15)
        mock.wait()
        db.run(["bash", MARIADB_SH, "stop", work / "mariadb"], env=env,
               check=False)
    print("hosts  letters/s  ratio to N x 1 host  ratio to ideal "
          "(N x 1,600/s)")
    for n in HOSTS:
        print("%5d  %9.0f  %19.2f  %14.2f" % (
            n, rates[n], rates[n] / (n * rates[1]),
            rates[n] / (n * CONCURRENCY * 1000 / LATENCY_MS)))
    print("(%d letters per host, -j %d, mock API at %d ms, MariaDB over "
          "TCP on its own host; median of %d)" % (
              LETTERS, CONCURRENCY, LATENCY_MS, RUNS))
    return 0


def one(hosts, files, work, db, api, password, table):
    procs = []
    t0 = time.monotonic()
    for k, h in enumerate(hosts):
        cfg = work / ("%s-%d.ini" % (table, k))
        cfg.write_text(
            "[api]\nurl = http://%s:8080/api.php\nconcurrency = %d\n\n"
            "[store]\nbackend = mysql\njournal = %s\n\n"
            "[mysql]\nhost = %s\nport = 3306\nuser = u1\npassword = %s\n"
            "database = sender\ntable = %s\n" % (
                api.addr, CONCURRENCY, work / "journal", db.addr, password,
                table))
        procs.append(h.popen([SENDER, "-c", cfg, "-q", "--json", files[k]],
                             stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE))
    letters = 0
    for p in procs:
        out, err = p.proc.communicate(timeout=600)
        if p.returncode != 0:
            raise SystemExit("bench-hosts: sender exited %s: %s" % (
                p.returncode, err.decode()[-2000:]))
        letters += json.loads(out)["delivered"]
    return letters / (time.monotonic() - t0)


if __name__ == "__main__":
    sys.exit(main())
