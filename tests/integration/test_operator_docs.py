"""One consistent description (config.example.ini, --help, sender.1,
README), and installing like a Debian tool: make install / uninstall, the
bash completion, the demo's packages."""

import os
import re
import subprocess

from conftest import REPO, SENDER_BIN, sender_env


def help_text():
    return subprocess.run([str(SENDER_BIN), "--help"], capture_output=True,
                          text=True, env=sender_env()).stdout


def options():
    """Every long option of --help (the getopt table prints them all)."""
    opts = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", help_text()))
    assert len(opts) >= 20, opts
    return opts


def keys():
    """(section, key) of every key, from --print-config."""
    out = subprocess.run([str(SENDER_BIN), "--print-config", "-c",
                          "/dev/null"], capture_output=True, text=True,
                         env=sender_env()).stdout
    found, section = [], None
    for line in out.splitlines():
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            section = m.group(1)
            continue
        m = re.match(r"^(\w+) = ", line)
        if m:
            found.append((section, m.group(1)))
    assert len(found) >= 20, out
    return found


def documents():
    return {
        "--help": help_text(),
        "sender.1": (REPO / "sender.1").read_text().replace("\\-", "-"),
        "README.md": (REPO / "README.md").read_text(),
        "config.example.ini": (REPO / "config.example.ini").read_text(),
    }


def key_in(text, section, key, ini=False):
    """key is named after [section] with no other [section] between:
    `[api] url timeout`, a row `| [api] | url |`; in the INI file, as
    `key =` in that section."""
    if ini:
        m = re.search(r"^\[%s\]$(.*?)(?=^\[|\Z)" % re.escape(section),
                      text, re.M | re.S)
        return m is not None and re.search(
            r"^%s =" % re.escape(key), m.group(1), re.M) is not None
    pattern = r"\[%s\](?:(?!\[\w+\]).)*?(?<![\w-])%s(?![\w-])" % (
        re.escape(section), re.escape(key))
    return re.search(pattern, text.replace("`", ""), re.S) is not None


def test_every_option_is_in_every_document():
    missing = []
    for name, text in documents().items():
        for opt in sorted(options()):
            if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt),
                             text):
                missing.append("%s: %s" % (name, opt))
    assert not missing, "\n".join(missing)


def test_every_key_is_in_every_document():
    missing = []
    for name, text in documents().items():
        for section, key in keys():
            if not key_in(text, section, key,
                          ini=name.endswith(".ini")):
                missing.append("%s: [%s] %s" % (name, section, key))
    assert not missing, "\n".join(missing)


def test_the_completion_knows_every_option():
    text = (REPO / "doc" / "sender.bash-completion").read_text()
    missing = [o for o in sorted(options())
               if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(o),
                                text)]
    assert not missing, missing


def complete(words):
    """What the bash completion offers for the last of words."""
    script = ("source %s\nCOMP_WORDS=(%s)\nCOMP_CWORD=%d\n_sender\n"
              "printf '%%s\\n' \"${COMPREPLY[@]}\"\n" % (
                  REPO / "doc" / "sender.bash-completion",
                  " ".join("'%s'" % w for w in words), len(words) - 1))
    p = subprocess.run(["bash", "-c", script], capture_output=True,
                       text=True, cwd=REPO)
    assert p.returncode == 0, p.stderr
    return p.stdout.split()


def test_completion_offers_options_and_values():
    assert complete(["sender", "--rep"]) == ["--replay", "--report"] or \
        set(complete(["sender", "--rep"])) == {"--replay", "--report"}
    assert set(complete(["sender", "--backend", ""])) == {
        "sqlite", "mysql", "mongodb"}
    assert "sample.xml" in complete(["sender", "sam"])


def plain_make_env():
    """The environment without what an outer make passes down: under make
    asan, MAKEFLAGS carries BUILD=build/asan and the sanitizer flags, and
    `make install` would then leave the sanitizer build as ./sender."""
    return {k: v for k, v in os.environ.items()
            if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}


def test_make_install_and_uninstall(tmp_path):
    dest = tmp_path / "root"
    make = ["make", "--no-print-directory", "-C", str(REPO),
            "DESTDIR=%s" % dest, "PREFIX=/usr"]
    p = subprocess.run(make + ["install"], capture_output=True, text=True,
                       env=plain_make_env())
    assert p.returncode == 0, p.stdout + p.stderr
    files = sorted(str(f.relative_to(dest)) for f in dest.rglob("*")
                   if f.is_file())
    assert files == sorted([
        "usr/bin/sender",
        "usr/share/bash-completion/completions/sender",
        "usr/share/doc/sender/README.md",
        "usr/share/doc/sender/config.example.ini",
        "usr/share/man/man1/sender.1",
    ]), files
    assert os.access(dest / "usr/bin/sender", os.X_OK)
    p = subprocess.run(make + ["uninstall"], capture_output=True, text=True,
                       env=plain_make_env())
    assert p.returncode == 0, p.stdout + p.stderr
    left = [str(f) for f in dest.rglob("*") if f.is_file()]
    assert not left, left


def test_demo_needs_no_database_server_nor_clang(tmp_path):
    """tests/deps.sh demo asks dpkg about the build packages and what the
    demo uses, not about MariaDB or clang (FerretDB is never a package)."""
    fake = tmp_path / "bin"
    fake.mkdir()
    log = tmp_path / "asked"
    (fake / "dpkg-query").write_text(
        "#!/bin/sh\necho \"$3\" >> %s\necho 'install ok installed'\n" % log)
    (fake / "dpkg-query").chmod(0o755)
    env = dict(sender_env(), PATH="%s:%s" % (fake, os.environ["PATH"]))
    p = subprocess.run(["sh", str(REPO / "tests" / "deps.sh"), "demo"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    asked = log.read_text().split()
    assert "libcurl4-openssl-dev" in asked and "sqlite3" in asked, asked
    assert not [a for a in asked if "mariadb-server" in a or "clang" in a
                or "ferret" in a], asked
    make = subprocess.run(["make", "-n", "-C", str(REPO), "demo"],
                          capture_output=True, text=True)
    assert "deps.sh demo" in make.stdout and "deps.sh test" not in \
        make.stdout, make.stdout
