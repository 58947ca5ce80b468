"""A multi-host test bed made of Linux namespaces (issue 12).

Each *host* is a set of namespaces -- network, UTS (its own hostname), PID
(its own pid 1, /proc mounted afresh) and mount -- kept alive by a small
reaper process that is pid 1 inside them.  The hosts are wired to one
bridge that lives in a namespace of its own (the *switch*), each by a veth
pair made by the bed, with addresses in 198.18.0.0/25 (of 198.18.0.0/24, RFC 2544, set aside
for network test beds).  No interface, address or route is ever created
in the namespaces the test was started in: everything vanishes with the
namespaces.

Teardown needs no cooperation: every namespace is held by
`unshare --kill-child`, started with PR_SET_PDEATHSIG(SIGKILL), so when
pytest dies (a crash, SIGKILL, a CI timeout) unshare is killed, its child --
the namespace's pid 1 -- is killed, the kernel kills every process of that
PID namespace, and the network namespace, its veth end and its address go
with its last process.  Bed.close() does the same on purpose.

Commands run inside a host with nsenter (all four namespaces), so their
processes are that host's: they see its hostname, its pids, its /proc and
its network only.  Files are shared: the mount namespaces are private
copies of the test's tree (plus their own /proc), so paths under the
test's tmp_path work everywhere.

    bed = Bed(tmp_path)                      # raises Unavailable if it cannot
    db = bed.add_host("db")                  # 198.18.0.1, hostname "db"
    db.run(["ip", "-br", "addr"])            # CompletedProcess
    p = db.popen(["sender", ...])            # a HostProcess (Popen-like)
    db.link(False); db.link(True)            # cut and restore its cable
    db.kill()                                # SIGKILL everything in it
    bed.close()
"""

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

SUBNET = "198.18.0"
# the bed's hosts on the lower half of 198.18.0.0/24; the upper half
# (198.18.0.128/25) is left to a second network a test adds (Galera's)
PREFIX = 25

# pid 1 of every namespace set: names the host, then reaps orphans (a
# server started in the background by a script is reparented to it) so
# that a dead process never lingers as a zombie that looks alive.
REAPER = r"""
import os, signal, socket, sys, time
socket.sethostname(sys.argv[1])
signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
open(sys.argv[2], "w").write("ready\n")
while True:
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
    time.sleep(0.05)
"""

_PR_SET_PDEATHSIG = 1


class Unavailable(Exception):
    """The bed cannot be built here (not root, no unshare, no netns)."""


def _die_with_parent():
    """preexec_fn: SIGKILL this child when the test process dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # the parent may have died between fork and prctl
    if os.getppid() == 1:
        os._exit(1)


def children(pid):
    """Pids of the children of pid (every thread's), per /proc."""
    out = []
    for task in Path("/proc/%d/task" % pid).glob("*"):
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def available():
    """None if a bed can be built here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "needs root and namespaces (not root)"
    for tool in ("unshare", "nsenter", "ip"):
        if shutil.which(tool, path=os.environ.get("PATH", "") +
                        ":/usr/sbin:/sbin") is None:
            return "needs root and namespaces (no %s)" % tool
    p = subprocess.run(["unshare", "--net", "--uts", "--pid", "--mount",
                        "--fork", "--mount-proc", "true"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return "needs root and namespaces (unshare: %s)" % p.stderr.strip()
    return None


class HostProcess:
    """A process started in a host through nsenter.

    .proc is the nsenter process (in the test's PID namespace); .pid is the
    process itself as the test sees it, .inner_pid as its host sees it."""

    def __init__(self, proc, host):
        self.proc = proc
        self.host = host
        self.argv = proc.args
        self.pid = None
        deadline = time.monotonic() + 10
        while self.pid is None and time.monotonic() < deadline:
            kids = children(proc.pid)
            if kids:
                self.pid = kids[0]
            elif proc.poll() is not None:
                break
            else:
                time.sleep(0.002)

    @property
    def inner_pid(self):
        try:
            for line in Path("/proc/%d/status" % self.pid).read_text() \
                    .splitlines():
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
        except (OSError, TypeError):
            pass
        return None

    def send_signal(self, sig):
        if self.pid is not None and self.proc.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def poll(self):
        return self.proc.poll()

    def wait(self, timeout=None):
        return self.proc.wait(timeout=timeout)

    @property
    def returncode(self):
        return self.proc.returncode


class Host:
    """One host of the bed: namespaces held by a reaper, one address."""

    def __init__(self, bed, name, index, hostname):
        self.bed = bed
        self.name = name
        self.hostname = hostname
        self.index = index
        self.addr = "%s.%d" % (SUBNET, index) if index else None
        self.holder = None  # unshare
        self.pid = None     # the reaper: pid 1 inside
        ready = bed.dir / ("%s.ready" % name)
        ready.unlink(missing_ok=True)
        self.holder = subprocess.Popen(
            ["unshare", "--net", "--uts", "--pid", "--mount", "--fork",
             "--kill-child=SIGKILL", "--mount-proc", sys.executable, "-c",
             REAPER, hostname, str(ready)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 10
        while not ready.exists():
            if self.holder.poll() is not None:
                raise Unavailable("unshare for host %s: %s" % (
                    name, self.holder.stderr.read().decode().strip()))
            if time.monotonic() > deadline:
                self.holder.kill()
                raise Unavailable("host %s did not come up in 10 s" % name)
            time.sleep(0.01)
        self.pid = children(self.holder.pid)[0]

    def nsenter(self, argv, net_only=False):
        ns = ["--net"] if net_only else ["--net", "--uts", "--pid",
                                         "--mount"]
        return ["nsenter", "-t", str(self.pid)] + ns + ["--"] + \
            [str(a) for a in argv]

    def run(self, argv, check=True, timeout=120, net_only=False, **kw):
        """Run argv inside the host and wait: a CompletedProcess (text)."""
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        p = subprocess.run(self.nsenter(argv, net_only), timeout=timeout,
                           stdin=kw.pop("stdin", subprocess.DEVNULL), **kw)
        if check and p.returncode != 0:
            raise RuntimeError("%s on host %s: exit %s: %s" % (
                " ".join(map(str, argv)), self.name, p.returncode,
                (p.stderr or "").strip()))
        return p

    def ip(self, *args):
        return self.run(["ip"] + list(args), net_only=True)

    def popen(self, argv, **kw):
        """Start argv inside the host: a HostProcess."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        return HostProcess(subprocess.Popen(self.nsenter(argv), **kw), self)

    def link(self, up):
        """Plug (True) or pull (False) the host's cable, from inside."""
        self.ip("link", "set", "eth0", "up" if up else "down")

    def kill(self):
        """SIGKILL every process of the host at once: pid 1 dies, and the
        kernel kills the rest of its PID namespace with it."""
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.holder is not None:
            try:
                self.holder.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.holder.kill()
                self.holder.wait()
            if self.holder.stderr:
                self.holder.stderr.close()

    def alive(self):
        return self.holder is not None and self.holder.poll() is None


class Bed:
    """A switch and the hosts plugged into it."""

    def __init__(self, workdir):
        reason = available()
        if reason:
            raise Unavailable(reason)
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.hosts = []
        self.switch = None
        try:
            self.switch = Host(self, "switch", 0, "switch")
            self.switch.ip("link", "add", "br0", "type", "bridge")
            self.switch.ip("link", "set", "br0", "up")
        except Exception:
            self.close()
            raise

    def add_host(self, name, hostname=None):
        """A new host, plugged in, with the next address of the subnet."""
        index = len(self.hosts) + 1
        assert index < 2 ** (32 - PREFIX) - 1  # the lower half: .1 to .126
        h = Host(self, name, index, hostname or name)
        self.hosts.append(h)
        port = "vh%d" % index
        self.switch.ip("link", "add", port, "type", "veth", "peer", "name",
                       "eth0", "netns", str(h.pid))
        self.switch.ip("link", "set", port, "master", "br0", "up")
        h.ip("addr", "add", "%s/%d" % (h.addr, PREFIX), "dev", "eth0")
        h.ip("link", "set", "lo", "up")
        h.ip("link", "set", "eth0", "up")
        return h

    def close(self):
        for h in self.hosts + ([self.switch] if self.switch else []):
            h.kill()
        self.hosts = []
        self.switch = None
