"""What the suite starts dies with it, however the suite ends.

A pytest run that is killed (SIGKILL, the SIGTERM of a timeout, a crash)
runs no atexit handler and no fixture teardown: without this module the
private MariaDB and FerretDB, a mock API and a sender in flight would go
on running, and the servers' temporary directories would stay behind.

design: one watchdog process per pytest session, started on first use,
in a session of its own (so that Ctrl-C, or a timeout that signals the
whole process group, does not end it before it has done its work).  Its
standard input is a pipe whose only writer is pytest: pytest writes the
directories to watch, one a line.  When pytest ends, in whatever way,
the kernel closes the write end and the watchdog reads EOF; it then
SIGKILLs every process whose command line names one of the directories
(a server names its data directory, the mock API its log, a sender its
config, and the scripts that start them name them too) and removes the
directories given as "remove".

A parent-death signal (prctl PR_SET_PDEATHSIG) would not do: it is not
inherited across fork, and the servers are started by shell scripts
(tests/lib/mariadb.sh, ferretdb.sh) that exit at once; the signal fires
when the parent thread exits, i.e. right after the start.  Nor would a
process group pytest kills: pytest killed by SIGKILL kills nothing.

The write end is not inheritable (PEP 446) and subprocess closes every
other descriptor in its children, so no child of pytest keeps it open.

Run as a script it is the watchdog; imported it offers watch() to
register a directory and processes_naming() / kill_naming() to look for
and end what a directory's processes left.
"""

import os
import shutil
import signal
import subprocess
import sys
import time

_watchdog = None


def watch(path, remove=False):
    """Kill every process naming path when this process ends; then
    remove path too if remove is true."""
    global _watchdog
    if _watchdog is None or _watchdog.poll() is not None:
        _watchdog = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
    line = "%s %s\n" % ("remove" if remove else "kill", os.fspath(path))
    _watchdog.stdin.write(os.fsencode(line))
    _watchdog.stdin.flush()


def _names(arg, path):
    """Whether one argument names path or something below it
    (--datadir=PATH/data, file:PATH/data/, PATH)."""
    return arg == path or arg.endswith("=" + path) or path + "/" in arg


def processes_naming(paths, spare=()):
    """{pid: argv} of the live processes, other than this one and those
    in spare, whose command line names one of paths."""
    paths = [os.fspath(p).rstrip("/") for p in paths]
    spare = set(spare) | {os.getpid()}
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in spare:
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                raw = f.read()
        except OSError:
            continue  # gone meanwhile
        # a zombie's command line is empty: it is dead already
        argv = [os.fsdecode(a) for a in raw.split(b"\0") if a]
        if any(_names(a, p) for a in argv for p in paths):
            found[int(entry)] = argv
    return found


def kill_naming(paths, seconds=10.0, spare=()):
    """SIGKILL the processes naming paths (but those in spare), again
    until none is left (a script killed between two scans may have
    started one more); the {pid: argv} left after `seconds`, empty when
    all are gone."""
    deadline = time.monotonic() + seconds
    while True:
        left = processes_naming(paths, spare)
        if not left or time.monotonic() > deadline:
            return left
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass  # gone meanwhile, or not ours
        time.sleep(0.05)


def _serve():
    # design: pytest closes the pipe as it exits normally, after its
    # atexit handlers, and may still be finishing then: it is spared,
    # lest a session whose command line names its --basetemp be killed
    # instead of ending with its own status.  Killed, it is gone anyway.
    session = os.getppid()
    kill, remove = [], []
    for raw in sys.stdin.buffer:
        what, _, path = os.fsdecode(raw.rstrip(b"\n")).partition(" ")
        if path:
            kill.append(path)
            if what == "remove":
                remove.append(path)
    # EOF: the session has ended
    kill_naming(kill, spare=[session])
    for path in remove:
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _serve()
