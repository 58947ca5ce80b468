"""SPEC 2: no network, no external entities, entity bombs refused quickly in
bounded memory, and memory that does not grow with the file's size."""

import os
import socket

import pytest

from conftest import letters_xml, run_measured, write_raw

MiB = 1024 * 1024


class Listener:
    """A TCP port that records whether anybody connected to it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def connections(self):
        n = 0
        while True:
            try:
                c, _ = self.sock.accept()
            except BlockingIOError:
                return n
            c.close()
            n += 1

    def close(self):
        self.sock.close()


@pytest.fixture
def listener():
    s = Listener()
    yield s
    s.close()


def bomb_document(levels=10):
    ents = ['<!ENTITY e0 "lollollollol">']
    for k in range(1, levels):
        ents.append('<!ENTITY e%d "%s">' % (k, ("&e%d;" % (k - 1)) * 10))
    return ('<?xml version="1.0"?>\n<!DOCTYPE emails [\n%s\n]>\n<emails>\n'
            '<email id="1"><to>a@example.com</to><subject>&e%d;</subject>'
            "</email>\n</emails>\n" % ("\n".join(ents), levels - 1))


def test_billion_laughs_refused(store, sender, mock, tmp_path):
    m = mock()
    path = write_raw(tmp_path / "bomb.xml", bomb_document())
    r, rss = run_measured(sender, [path], m.url, timeout=60)
    assert r.code == 3, r
    assert m.requests() == [], "a bomb was sent"
    assert store.rows() == {}
    # 10^9 * 3 bytes if expanded; bounded means nowhere near that.
    assert rss < 300 * MiB, "peak RSS %d MiB" % (rss // MiB)
    # "quickly": a generous ceiling, far below what expansion would take.
    assert r.seconds < 30, r


def test_quadratic_blowup_refused(store, sender, mock, tmp_path):
    m = mock()
    big = "x" * 50000
    text = ('<?xml version="1.0"?>\n<!DOCTYPE emails [<!ENTITY a "%s">]>\n'
            "<emails>\n<email id='1'><to>a@example.com</to><subject>%s"
            "</subject></email>\n</emails>\n" % (big, "&a;" * 20000))
    path = write_raw(tmp_path / "quad.xml", text)
    r, rss = run_measured(sender, [path], m.url, timeout=60)
    assert r.code == 3, r
    assert m.requests() == [], "1 GB subject sent?"
    assert rss < 300 * MiB, "peak RSS %d MiB" % (rss // MiB)
    assert r.seconds < 30, r


def test_external_file_entity_not_read(store, sender, mock, tmp_path):
    m = mock()
    token = "SECRET-%d" % os.getpid()
    secret = write_raw(tmp_path / "secret.txt", token)
    text = ('<?xml version="1.0"?>\n'
            '<!DOCTYPE emails [<!ENTITY xxe SYSTEM "file://%s">]>\n'
            "<emails>\n"
            "<email id='1'><to>a@example.com</to><subject>&xxe;</subject>"
            "</email>\n"
            "<email id='2'><to>b@example.com</to><subject>plain</subject>"
            "</email>\n</emails>\n" % secret)
    path = write_raw(tmp_path / "xxe.xml", text)
    r = sender.run([path], api_url=m.url)
    assert r.code in (0, 3), r
    for q in m.requests():
        assert token not in q.body, "external entity expanded: %s" % q.body
    assert token not in r.err and token not in r.out


def test_no_network_while_parsing(store, sender, mock, tmp_path, listener):
    m = mock()
    url = "http://127.0.0.1:%d" % listener.port
    text = ('<?xml version="1.0"?>\n'
            '<!DOCTYPE emails SYSTEM "%s/evil.dtd" [\n'
            '<!ENTITY %% p SYSTEM "%s/param.dtd">\n%%p;\n'
            '<!ENTITY net SYSTEM "%s/entity">\n]>\n'
            "<emails>\n"
            "<email id='1'><to>a@example.com</to><subject>&net;</subject>"
            "</email>\n</emails>\n" % (url, url, url))
    path = write_raw(tmp_path / "net.xml", text)
    r = sender.run([path], api_url=m.url)
    assert r.code in (0, 3), r
    assert listener.connections() == 0, "the parser went to the network"


def test_xinclude_not_processed(store, sender, mock, tmp_path):
    m = mock()
    token = "XINCLUDED-%d" % os.getpid()
    secret = write_raw(tmp_path / "inc.txt", token)
    text = ('<?xml version="1.0"?>\n'
            '<emails xmlns:xi="http://www.w3.org/2001/XInclude">\n'
            "<email id='1'><to>a@example.com</to><subject>s"
            '<xi:include href="%s" parse="text"/></subject></email>\n'
            "</emails>\n" % secret)
    path = write_raw(tmp_path / "xi.xml", text)
    r = sender.run([path], api_url=m.url)
    assert r.code in (0, 3), r
    for q in m.requests():
        assert token not in q.body


@pytest.mark.skipif(bool(os.environ.get("SENDER_VALGRIND")),
                    reason="valgrind's own memory hides sender's")
def test_memory_does_not_grow_with_the_file(store, sender, tmp_path):
    """--dry-run of a 1 MB and a 32 MB file: the peak RSS differs by far
    less than the file (a tree of the whole document would be a multiple of
    it)."""
    subject = "s" * 500

    def make(name, n):
        with open(tmp_path / name, "w") as f:
            f.write('<?xml version="1.0"?>\n<emails>\n')
            for i in range(n):
                f.write('<email id="%d"><to>u%d@example.com</to>'
                        "<subject>%s</subject></email>\n" % (i, i, subject))
            f.write("</emails>\n")
        return tmp_path / name

    small = make("small.xml", 2000)
    big = make("big.xml", 64000)
    assert big.stat().st_size > 32 * MiB
    url = "http://127.0.0.1:9/api.php"
    r1, rss_small = run_measured(sender, [small, "--dry-run"], url)
    assert r1.code == 0, r1
    r2, rss_big = run_measured(sender, [big, "--dry-run"], url,
                               timeout=300)
    assert r2.code == 0, r2
    assert rss_big - rss_small < 16 * MiB, \
        "peak RSS %d MiB for 1 MB, %d MiB for 32 MB" % (
            rss_small // MiB, rss_big // MiB)


def test_long_fields_do_not_crash(store, sender, mock, tmp_path):
    """A 1 MB subject is far beyond any sane letter: refused or sent, but
    never a crash, and the other letters go on.  (The mock's own 1 MiB
    body cap, which would answer 413, is raised out of the way.)"""
    m = mock("--max-body", 16 << 20)
    text = letters_xml([1, (2, "a@example.com", "y" * (1 << 20)), 3])
    path = write_raw(tmp_path / "long.xml", text)
    r = sender.run([path], api_url=m.url)
    assert r.code in (0, 3), r
    posts = m.posts_per_id()
    assert posts[1] == 1 and posts[3] == 1, r
