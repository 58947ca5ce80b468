"""SPEC 1 and 4: options, configuration files and their errors."""

import re

import pytest

from conftest import (REPO, assert_json_summary, closed_port_url,
                      run_sender, write_letters)


def config_lines(sender, url):
    return sender.config(url).splitlines(keepends=True)


def assert_names(r, path, line, word):
    """Some stderr line names the config file, the line number and word."""
    for text in r.err.splitlines():
        if str(path) in text and re.search(r"\b%d\b" % line, text) \
                and word in text:
            return
    pytest.fail("no message naming %s, line %d and %r:\n%s" % (
        path, line, word, r))


@pytest.fixture
def url_mock(mock):
    """A mock whose URL goes into the bad config, so that "nothing was
    sent" is checked against a live API."""
    return mock()


def bad_run(sender, url_mock, tmp_path, mutate):
    lines = config_lines(sender, url_mock.url)
    line, word = mutate(lines)
    letters = write_letters(tmp_path / "a.xml", [1, 2, 3])
    cfg = tmp_path / "bad.ini"
    cfg.write_text("".join(lines))
    r = sender.run([letters], config=cfg)
    assert r.code == 2, r
    assert url_mock.requests() == [], "sent with a bad configuration"
    # design: the configuration is read before anything is opened, so a
    # bad one leaves no trace in the store either.
    assert sender.store.untouched(), "store written with a bad config"
    assert_names(r, cfg, line, word)
    return r


def test_unknown_key_in_api(store, sender, url_mock, tmp_path):
    def mutate(lines):
        lines.insert(1, "colour = blue\n")
        return 2, "colour"
    bad_run(sender, url_mock, tmp_path, mutate)


def test_unknown_key_in_retry(store, sender, url_mock, tmp_path):
    def mutate(lines):
        k = lines.index("[retry]\n")
        lines.insert(k + 2, "max_attempt = 3\n")
        return k + 3, "max_attempt"
    bad_run(sender, url_mock, tmp_path, mutate)


def test_unknown_section(store, sender, url_mock, tmp_path):
    def mutate(lines):
        lines += ["\n", "[smtp]\n"]
        return len(lines), "smtp"
    bad_run(sender, url_mock, tmp_path, mutate)


def test_key_in_unknown_section(store, sender, url_mock, tmp_path):
    def mutate(lines):
        lines += ["\n", "[smtp]\n", "host = mail.example.com\n"]
        # design: either the header's line or the key's line is named.
        return None, "smtp"
    lines = config_lines(sender, url_mock.url)
    mutate(lines)
    letters = write_letters(tmp_path / "a.xml", [1])
    cfg = tmp_path / "bad.ini"
    cfg.write_text("".join(lines))
    r = sender.run([letters], config=cfg)
    assert r.code == 2, r
    n = len(lines)
    assert any(str(cfg) in t and "smtp" in t and
               re.search(r"\b(%d|%d)\b" % (n - 1, n), t)
               for t in r.err.splitlines()), r
    assert url_mock.requests() == []


@pytest.mark.parametrize("key,value", [
    ("timeout", "ten"),
    ("concurrency", "12x"),
    ("max_attempts", "abc"),
    ("max_delay_ms", "-"),
    ("concurrency", "99999999999999999999999"),
])
def test_bad_number(store, sender, url_mock, tmp_path, key, value):
    def mutate(lines):
        prefix = key + " ="
        for k, l in enumerate(lines):
            if l.startswith(prefix):
                lines[k] = "%s = %s\n" % (key, value)
                return k + 1, key
        k = lines.index("[api]\n") if key in ("timeout", "concurrency") \
            else lines.index("[retry]\n")
        lines.insert(k + 1, "%s = %s\n" % (key, value))
        return k + 2, key
    bad_run(sender, url_mock, tmp_path, mutate)


def test_unknown_backend(store, sender, url_mock, tmp_path):
    def mutate(lines):
        for k, l in enumerate(lines):
            if l.startswith("backend ="):
                lines[k] = "backend = oracle\n"
                return k + 1, "backend"
        raise AssertionError("no backend line")
    r = bad_run(sender, url_mock, tmp_path, mutate)
    assert "oracle" in r.err, r


def test_missing_config_file(store, sender, mock, tmp_path):
    m = mock()
    letters = write_letters(tmp_path / "a.xml", [1])
    missing = tmp_path / "nope.ini"
    r = sender.run([letters], config=missing)
    assert r.code == 2, r
    assert str(missing) in r.err, r
    assert m.requests() == []


def test_config_syntax_error(store, sender, url_mock, tmp_path):
    """A line that is neither a section, a key = value nor a comment."""
    def mutate(lines):
        k = lines.index("[retry]\n")
        lines.insert(k + 1, "max_attempts 3\n")
        return k + 2, "INI line"
    bad_run(sender, url_mock, tmp_path, mutate)


def test_config_that_cannot_be_read(store, sender, mock, tmp_path):
    """A configuration path that is a directory (as root, permissions do
    not make a file unreadable): exit 2 naming it, nothing sent or
    written."""
    m = mock()
    letters = write_letters(tmp_path / "a.xml", [1])
    folder = tmp_path / "conf.d"
    folder.mkdir()
    r = sender.run([letters], config=folder)
    assert r.code == 2, r
    assert str(folder) in r.err, r
    assert m.requests() == []
    assert store.untouched()


# The example of SPEC section 4, verbatim.
SPEC_INI = """\
[api]
url = http://test.webjet.pro/api.php
timeout = 30            ; seconds for one request
concurrency = 32        ; most requests in flight

[retry]
max_attempts = 8
base_delay_ms = 200
max_delay_ms = 30000

[store]
backend = sqlite        ; sqlite | mysql | mongodb

[sqlite]
path = sender.db

[mysql]
socket = /var/run/mysqld/mysqld.sock
host =                  ; empty: the unix socket; set it (and port) for TCP
port = 3306
user = u1
password =              ; or the environment variable SENDER_MYSQL_PASSWORD
database = sender
table = results

[mongodb]
uri = mongodb://localhost:27017
database = sender
collection = results
"""


def test_config_from_spec_with_inline_comments(store, sender, mock,
                                               tmp_path):
    """The example of SPEC 4, with its `; comments`, empty values and the
    sections of every backend, is a valid configuration, whichever backends
    this build has."""
    if store.name != "sqlite":
        pytest.skip("the SPEC example selects the sqlite backend")
    m = mock()
    text = SPEC_INI.replace("http://test.webjet.pro/api.php", m.url)
    text = text.replace("path = sender.db", "path = %s" % store.path)
    cfg = tmp_path / "spec.ini"
    cfg.write_text(text)
    letters = write_letters(tmp_path / "a.xml", [1, 2])
    r = sender.run([letters], config=cfg)
    assert r.code == 0, r
    assert m.posts_per_id() == {1: 1, 2: 1}
    assert set(store.rows()) == {1, 2}


def ini_keys(text):
    import configparser
    cp = configparser.ConfigParser(inline_comment_prefixes=(";", "#"),
                                   interpolation=None)
    cp.read_string(text)
    return {(sec, key) for sec in cp.sections() for key in cp[sec]}


def test_config_example_documents_every_key():
    """SPEC 4: config.example.ini documents every key (of the example)."""
    example = REPO / "config.example.ini"
    assert example.exists()
    missing = ini_keys(SPEC_INI) - ini_keys(example.read_text())
    assert not missing, "config.example.ini lacks %s" % sorted(missing)


def test_config_example_is_valid(store, sender, mock, tmp_path):
    if store.name != "sqlite":
        pytest.skip("the example selects the sqlite backend")
    m = mock()
    text = (REPO / "config.example.ini").read_text()
    text = re.sub(r"(?m)^url = .*$", "url = %s" % m.url, text)
    text = re.sub(r"(?m)^path = .*$", "path = %s" % store.path, text)
    cfg = tmp_path / "example.ini"
    cfg.write_text(text)
    letters = write_letters(tmp_path / "a.xml", [1, 2])
    r = sender.run([letters], config=cfg)
    assert r.code == 0, r
    assert m.posts_per_id() == {1: 1, 2: 1}


def test_comments_and_blank_lines(store, sender, mock, tmp_path):
    m = mock()
    text = ("; a comment\n# another\n\n" + sender.config(m.url)
            .replace("[retry]\n", "[retry]   ; trailing comment\n\n")
            + "\n; the end\n")
    letters = write_letters(tmp_path / "a.xml", [1])
    r = sender.run([letters], config=text)
    assert r.code == 0, r
    assert m.posts_per_id() == {1: 1}


# ---------------------------------------------------------------- lookup

def test_sender_config_environment(store, sender, mock, tmp_path):
    m = mock()
    cfg = tmp_path / "env.ini"
    cfg.write_text(sender.config(m.url))
    letters = write_letters(tmp_path / "a.xml", [1, 2])
    r = run_sender([letters], env={"SENDER_CONFIG": str(cfg)}, cwd=tmp_path)
    assert r.code == 0, r
    assert m.posts_per_id() == {1: 1, 2: 1}
    assert set(store.rows()) == {1, 2}


def test_sender_ini_in_current_directory(store, sender, mock, tmp_path):
    m = mock()
    work = tmp_path / "work"
    work.mkdir()
    (work / "sender.ini").write_text(sender.config(m.url))
    letters = write_letters(tmp_path / "a.xml", [5])
    r = run_sender([letters], cwd=work)
    assert r.code == 0, r
    assert m.posts_per_id() == {5: 1}


def test_built_in_defaults(store, sender, mock, tmp_path):
    """No -c, no $SENDER_CONFIG, no ./sender.ini: the built-in defaults of
    SPEC 4, i.e. the sqlite backend with sender.db in the current
    directory (the API URL comes from --api-url)."""
    if store.name != "sqlite":
        pytest.skip("the defaults select the sqlite backend")
    import sqlite3
    m = mock()
    work = tmp_path / "work"
    work.mkdir()
    letters = write_letters(tmp_path / "a.xml", [7, 8])
    r = run_sender([letters, "--api-url", m.url], cwd=work)
    assert r.code == 0, r
    assert m.posts_per_id() == {7: 1, 8: 1}
    db = sqlite3.connect(str(work / "sender.db"))
    try:
        got = dict(db.execute("SELECT id, delivery_status FROM results"))
    finally:
        db.close()
    assert got == {7: 1, 8: 1}


def test_option_beats_environment(store, sender, mock, tmp_path):
    good, bad = mock(), mock()
    env_cfg = tmp_path / "env.ini"
    env_cfg.write_text(sender.config(bad.url))
    opt_cfg = tmp_path / "opt.ini"
    opt_cfg.write_text(sender.config(good.url))
    letters = write_letters(tmp_path / "a.xml", [1])
    r = run_sender(["-c", opt_cfg, letters],
                   env={"SENDER_CONFIG": str(env_cfg)}, cwd=tmp_path)
    assert r.code == 0, r
    assert good.posts_per_id() == {1: 1} and bad.requests() == []


def test_environment_beats_sender_ini(store, sender, mock, tmp_path):
    good, bad = mock(), mock()
    work = tmp_path / "work"
    work.mkdir()
    (work / "sender.ini").write_text(sender.config(bad.url))
    env_cfg = tmp_path / "env.ini"
    env_cfg.write_text(sender.config(good.url))
    letters = write_letters(tmp_path / "a.xml", [1])
    r = run_sender([letters], env={"SENDER_CONFIG": str(env_cfg)}, cwd=work)
    assert r.code == 0, r
    assert good.posts_per_id() == {1: 1} and bad.requests() == []


def test_api_url_option_overrides(store, sender, mock, tmp_path):
    m = mock()
    letters = write_letters(tmp_path / "a.xml", [1, 2])
    r = sender.run([letters, "--api-url", m.url],
                   api_url=closed_port_url(), max_attempts=1)
    assert r.code == 0, r
    assert m.posts_per_id() == {1: 1, 2: 1}


def test_concurrency_option_overrides(store, sender, mock, tmp_path):
    m = mock("--latency-ms", 50)
    letters = write_letters(tmp_path / "a.xml", range(1, 21))
    r = sender.run([letters, "--concurrency", "2"], api_url=m.url,
                   concurrency=16)
    assert r.code == 0, r
    assert m.stats()["max_in_flight"] <= 2, m.stats()


def test_config_concurrency_is_an_upper_bound(store, sender, mock,
                                              tmp_path):
    m = mock("--latency-ms", 50)
    letters = write_letters(tmp_path / "a.xml", range(1, 21))
    r = sender.run([letters], api_url=m.url, concurrency=3)
    assert r.code == 0, r
    assert m.stats()["max_in_flight"] <= 3, m.stats()


# ---------------------------------------------------------------- options

def test_help():
    r = run_sender(["--help"])
    assert r.code == 0, r
    # design: the usage text mentions the word "usage" and the options.
    text = r.out + r.err
    assert re.search(r"(?i)usage", text) and "--dry-run" in text, r
    r2 = run_sender(["-h"])
    assert r2.code == 0 and (r2.out + r2.err) == text, r2


def test_version():
    r = run_sender(["--version"])
    assert r.code == 0, r
    assert (r.out + r.err).strip(), r


@pytest.mark.parametrize("args", [
    ["--frobnicate", "a.xml"],
    ["-Z", "a.xml"],
    [],                                 # design: no input is a usage error
    ["-j", "abc", "a.xml"],
    ["-j", "0", "a.xml"],               # design: 0 requests in flight is
    ["-j", "-3", "a.xml"],              # not a concurrency
    ["--backend", "oracle", "a.xml"],
    ["--config"],                       # missing argument
])
def test_usage_errors(store, sender, mock, tmp_path, args):
    m = mock()
    write_letters(tmp_path / "a.xml", [1])
    cfg = tmp_path / "ok.ini"
    cfg.write_text(sender.config(m.url))
    r = run_sender(args, config=cfg, cwd=tmp_path)
    assert r.code == 2, r
    assert r.err.strip(), "no message:\n%s" % r
    assert m.requests() == []
    assert store.untouched()


def test_backend_option_overrides(store, sender, mock, tmp_path):
    """--backend NAME picks the backend whatever [store] backend says."""
    # design: the override is applied before the backend name is checked
    # or opened, so [store] may name another (even an absent) backend.
    m = mock()
    text = sender.config(m.url)
    other = "mongodb" if store.name != "mongodb" else "mysql"
    text = re.sub(r"(?m)^backend = .*$", "backend = %s" % other, text)
    letters = write_letters(tmp_path / "a.xml", [1])
    r = sender.run([letters, "--backend", store.name], config=text)
    assert r.code == 0, r
    assert m.posts_per_id() == {1: 1}
    assert set(store.rows()) == {1}


def test_quiet_still_exits_right(store, sender, mock, tmp_path):
    m = mock("--answer", "2=400:bad")
    letters = write_letters(tmp_path / "a.xml", [1, 2])
    r = sender.run([letters, "-q", "--json"], api_url=m.url)
    assert r.code == 0, r
    assert_json_summary(r, delivered=1, rejected=1)
    rv = sender.run([letters, "-v"], api_url=m.url)
    assert rv.code == 0, rv
