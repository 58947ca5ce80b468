#!/usr/bin/env python3
"""make bench-cluster: letters/s of 3 sender hosts on a 3-node Galera
cluster, each host on its own node, next to 3 sender hosts on one MariaDB
(issue 13), from one run.

On the namespace test bed of tests/hosts/netns.py (needs root, galera-4,
rsync): three database hosts n1..n3 run a Galera cluster
(tests/lib/galera.sh; replication on a network of their own), a fourth, db,
a lone MariaDB (tests/lib/mariadb.sh), all over TCP; three sender hosts
each POST to a mock API on their own loopback (20 ms latency) with -j 32.
Each host has a file of BENCH_CLUSTER_LETTERS letters, twice: with
disjoint ids (the ideal is 3 x 32 / 20 ms = 4,800 letters/s), then with
overlapping ones (each id in two of the three files, so the runs contend
for claims as overlapping cron runs would; the ideal is lower, as every
host also skips the half of its file that the others send).  The aggregate
is the letters delivered over the time from the first start to the last
exit; the conflicts are those the runs retried (their -v line).

Knobs (environment): BENCH_CLUSTER_LETTERS (10000), BENCH_SENDER (another
build), BENCH_KEEP=1 (keep the temp directory).
"""
import json
import os
import re
import secrets
import shutil
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
GALERA_SH = ROOT / "tests" / "lib" / "galera.sh"
LETTERS = int(os.environ.get("BENCH_CLUSTER_LETTERS", "10000"))
LATENCY_MS = 20
CONCURRENCY = 32
REPL_NET = "198.18.0"
# the replication network: 198.18.0.129-131/25 (the bed has the lower half)
REPL_BASE = 128
CONFLICTS_RE = re.compile(r"mysql: (\d+) conflicts with other runs retried")


def say(*a):
    print("bench-cluster:", *a, file=sys.stderr, flush=True)


def write_letters(path, ids):
    with open(path, "w", encoding="utf-8") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<emails>\n')
        for i in ids:
            f.write('<email id="%d"><to>user%d@example.com</to>'
                    '<subject>Письмо номер %d</subject></email>\n'
                    % (i, i, i))
        f.write("</emails>\n")


def files_for(work, overlap):
    """Three files of LETTERS letters, and how many ids in all:
    overlapping (each of 1.5 x LETTERS ids in two files) or disjoint."""
    out = []
    total = LETTERS * 3 // 2 if overlap else LETTERS * 3
    for k in range(3):
        if overlap:
            ids = [i for i in range(1, total + 1) if i % 3 != k]
        else:
            ids = range(1 + k * LETTERS, 1 + (k + 1) * LETTERS)
        out.append(work / ("h%d-%d.xml" % (k, overlap)))
        write_letters(out[-1], ids)
    return out, total


def main():
    reason = netns.available()
    if reason:
        say("skipped: %s" % reason)
        return 0
    if not Path("/usr/lib/galera/libgalera_smm.so").exists():
        say("skipped: galera-4 is not installed")
        return 0
    work = Path(tempfile.mkdtemp(prefix="sender-bench-cluster-"))
    work.chmod(0o755)  # the nodes run as user mysql
    bed = netns.Bed(work / "bed")
    try:
        return measure(bed, work)
    finally:
        bed.close()
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)
        else:
            say("kept", work)


def start_cluster(bed, nodes, work, password):
    sw = bed.switch
    sw.ip("link", "add", "br1", "type", "bridge")
    sw.ip("link", "set", "br1", "up")
    for i, h in enumerate(nodes, 1):
        sw.ip("link", "add", "vr%d" % i, "type", "veth", "peer", "name",
              "eth1", "netns", str(h.pid))
        sw.ip("link", "set", "vr%d" % i, "master", "br1", "up")
        h.ip("addr", "add", "%s.%d/25" % (REPL_NET, REPL_BASE + i), "dev", "eth1")
        h.ip("link", "set", "eth1", "up")
    members = ",".join("%s.%d:4567" % (REPL_NET, REPL_BASE + i) for i in (1, 2, 3))
    for i, h in enumerate(nodes, 1):
        env = dict(os.environ, GALERA_ADDR="%s.%d" % (REPL_NET, REPL_BASE + i),
                   GALERA_BIND=h.addr, GALERA_NAME=h.name,
                   GALERA_CLUSTER=members, MARIADB_U1_PASSWORD=password)
        env["PATH"] = env.get("PATH", "") + ":/usr/sbin:/sbin"
        say("starting Galera node", h.name)
        h.run(["bash", GALERA_SH, "bootstrap" if i == 1 else "start",
               work / h.name], env=env, timeout=300)
    for h in nodes:
        h.run(["bash", GALERA_SH, "wait", work / h.name, "3", "120"],
              env=env, timeout=300)


def measure(bed, work):
    nodes = [bed.add_host("n%d" % i) for i in (1, 2, 3)]
    db = bed.add_host("db")
    senders = [bed.add_host("s%d" % i) for i in (1, 2, 3)]
    password = "u1-" + secrets.token_hex(8)
    start_cluster(bed, nodes, work, password)
    env = dict(os.environ, MARIADB_U1_PASSWORD=password,
               MARIADB_TCP_PORT="3306", MARIADB_BIND_ADDRESS=db.addr)
    env["PATH"] = env.get("PATH", "") + ":/usr/sbin:/sbin"
    say("starting MariaDB on", db.addr)
    db.run(["bash", MARIADB_SH, "start", work / "mariadb"], env=env,
           timeout=300)
    mocks = []
    for h in senders:
        port_file = work / ("mock-%s.port" % h.name)
        mocks.append(h.popen([MOCK, "--port", "8080", "--port-file",
                              port_file, "--latency-ms", str(LATENCY_MS)],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 15
        while not port_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    rows = []
    try:
        lists = [",".join(nodes[(k + j) % 3].addr for j in range(3))
                 for k in range(3)]
        for overlap in (False, True):
            files, total = files_for(work, overlap)
            ids = "overlapping" if overlap else "disjoint"
            cluster = one(senders, files, work, lists, password,
                          "bench_galera_%d" % overlap, total)
            say("%s ids, 3 hosts on 3 nodes: %.0f letters/s" % (
                ids, cluster[0]))
            lone = one(senders, files, work, [db.addr] * 3, password,
                       "bench_lone_%d" % overlap, total)
            say("%s ids, 3 hosts on one MariaDB: %.0f letters/s" % (
                ids, lone[0]))
            rows.append((ids, cluster, lone))
    finally:
        for m in mocks:
            m.send_signal(15)
            m.wait()
    print("ids          3 hosts on 3 Galera nodes   3 hosts on one MariaDB  "
          " ratio")
    print("             letters/s  conflicts        letters/s  conflicts")
    for ids, cluster, lone in rows:
        print("%-11s  %9.0f  %9d        %9.0f  %9d   %5.2f" % (
            ids, cluster[0], cluster[1], lone[0], lone[1],
            cluster[0] / lone[0]))
    print("(%d letters per host, -j %d, mock API at %d ms on each sender "
          "host (ideal with disjoint ids: 4,800/s), MariaDB over TCP, each "
          "host's nearest node first)" % (LETTERS, CONCURRENCY, LATENCY_MS))
    return 0


def one(hosts, files, work, host_lists, password, table, total):
    """(letters/s, conflicts retried) of the three hosts at once."""
    procs = []
    t0 = time.monotonic()
    for k, h in enumerate(hosts):
        cfg = work / ("%s-%d.ini" % (table, k))
        cfg.write_text(
            "[api]\nurl = http://127.0.0.1:8080/api.php\nconcurrency = %d\n\n"
            "[store]\nbackend = mysql\njournal = %s\n\n"
            "[mysql]\nhost = %s\nport = 3306\nuser = u1\npassword = %s\n"
            "database = sender\ntable = %s\n" % (
                CONCURRENCY, work / ("journal-%d" % k), host_lists[k],
                password, table))
        procs.append(h.popen([SENDER, "-c", cfg, "-v", "--json", files[k]],
                             stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE))
    letters = conflicts = 0
    for p in procs:
        out, err = p.proc.communicate(timeout=900)
        err = err.decode("utf-8", "replace")
        if p.returncode not in (0, 1):
            raise SystemExit("bench-cluster: sender exited %s: %s" % (
                p.returncode, err[-2000:]))
        letters += json.loads(out)["delivered"]
        m = CONFLICTS_RE.search(err)
        conflicts += int(m.group(1)) if m else 0
    seconds = time.monotonic() - t0
    if letters != total:
        raise SystemExit("bench-cluster: %d letters delivered, want %d" %
                         (letters, total))
    return letters / seconds, conflicts


if __name__ == "__main__":
    sys.exit(main())
