"""SPEC 2, 7: hostile or broken input through the real binary and store.

Every case: a clear FILE:LINE message, exit status 3 (SPEC 7), no crash
(the harness fails a test on any sanitizer report), memory bounded, and
nothing sent that should not be: the letters before the fault go out
once, what the fault touches never does.
"""

import json
import os
import re

import pytest

from conftest import (assert_json_summary, email_xml, letters_xml,
                      run_measured, write_letters, write_raw)

MiB = 1024 * 1024
# Memory is only judged on a plain build: ASan's shadow memory and
# valgrind's own use say nothing about sender's.
PLAIN_BUILD = not os.environ.get("SENDER_VALGRIND") and \
    "asan" not in os.environ.get("SENDER_BIN", "")

HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<emails>\n'


def where(path, r_err):
    """The line numbers sender named for path in its messages."""
    return [int(n) for n in re.findall(re.escape(str(path)) + r":(\d+)",
                                       r_err)]


# A file of ten letters, one per line (letter k on line k + 3), cut at
# byte offsets inside the first, the fifth and the last letter, between
# letters, and inside the closing tag.
def cut_points(text):
    lines = text.splitlines(keepends=True)
    starts = [sum(len(x) for x in lines[:i]) for i in range(len(lines))]
    return {
        "in-prolog": 10,
        "in-first-letter": starts[2] + 15,
        "after-fourth": starts[6],
        "in-fifth-letter": starts[6] + 30,
        "in-last-letter": starts[11] + 20,
        "in-closing-tag": starts[12] + 4,
    }


TEN = letters_xml(range(1, 11))


@pytest.mark.parametrize("point", sorted(cut_points(TEN)))
def test_truncated_file(store, sender, mock, tmp_path, point):
    """Cut at any byte: the letters complete before the cut are sent
    (SPEC 2: the ones before the error), the rest are not, exit 3 with
    the file and a line at or after the last complete letter."""
    m = mock()
    at = cut_points(TEN)[point]
    path = write_raw(tmp_path / "cut.xml", TEN.encode()[:at])
    r = sender.run([path, "--json"], api_url=m.url)
    assert r.code == 3, r
    complete = TEN.encode()[:at].count(b"</email>")
    posted = m.posts_per_id()
    assert set(posted) <= set(range(1, complete + 1)), r
    assert not posted or max(posted.values()) == 1
    lines = where(path, r.err)
    assert lines, "no FILE:LINE in the message:\n%s" % r
    assert set(store.rows()) == set(posted)
    assert store.claimed_ids() == set()


@pytest.mark.parametrize("bad", [b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80"],
                         ids=["ff-fe", "bad-continuation", "surrogate"])
def test_invalid_utf8(store, sender, mock, tmp_path, bad):
    """Invalid UTF-8 in the 4th letter's subject (line 6): the file is not
    well-formed XML; the three letters before are sent, nothing after."""
    m = mock()
    text = TEN.encode()
    text = text.replace(b"Subject 4", b"Subject " + bad)
    path = write_raw(tmp_path / "utf8.xml", text)
    r = sender.run([path, "--json"], api_url=m.url)
    assert r.code == 3, r
    assert set(m.posts_per_id()) <= {1, 2, 3}, r
    assert 6 in where(path, r.err), r
    assert "UTF-8" in r.err or "encoding" in r.err.lower() or \
        "not well" in r.err or "invalid" in r.err.lower(), r


@pytest.mark.parametrize("place", ["subject", "between-letters", "id"])
def test_nul_byte(store, sender, mock, tmp_path, place):
    """A NUL byte is not a character XML allows anywhere: exit 3 with the
    line of the NUL (line 7, the 5th letter), nothing sent from there."""
    m = mock()
    lines = TEN.encode().splitlines(keepends=True)
    if place == "subject":
        lines[6] = lines[6].replace(b"Subject 5", b"Sub\x00ject 5")
    elif place == "id":
        lines[6] = lines[6].replace(b'id="5"', b'id="5\x00"')
    else:
        lines[6] = b"\x00" + lines[6]
    path = write_raw(tmp_path / "nul.xml", b"".join(lines))
    r = sender.run([path], api_url=m.url)
    assert r.code == 3, r
    posted = set(m.posts_per_id())
    assert posted <= {1, 2, 3, 4}, r
    assert 5 not in posted
    assert 7 in where(path, r.err), r


def baseline_rss(sender, url):
    """Peak RSS of a run of three letters: what the rest is judged by."""
    path = write_letters(sender.tmp_path / "three.xml", [901, 902, 903])
    r, rss = run_measured(sender, [path, "--dry-run"], url)
    assert r.code == 0, r
    return rss


@pytest.mark.parametrize("mib", [5, 10])
def test_huge_subject(store, sender, mock, tmp_path, mib):
    """A 5 MB subject is over sender's cap: that letter is invalid (line 4
    named), the others go out.  A 10 MB one is over the XML reader's own
    limit for one text (10,000,000 bytes): the file stops there, its
    line named with that reason, the letter before it sent, nothing after.
    Exit 3 both times; memory a few times the subject at most (libxml2
    grows its buffers by doubling)."""
    m = mock("--max-body", 32 << 20)
    big = "y" * (mib << 20)
    text = letters_xml([1, (2, "a@example.com", big), 3])
    path = write_raw(tmp_path / "big.xml", text)
    base = baseline_rss(sender, m.url)
    r, rss = run_measured(sender, [path, "--json"], m.url)
    assert r.code == 3, r
    assert "%s:4" % path in r.err, r
    if mib == 5:
        assert m.posts_per_id() == {1: 1, 3: 1}, r
        assert_json_summary(r, letters=3, delivered=2, invalid=1)
    else:
        assert m.posts_per_id() == {1: 1}, r
        assert "10,000,000 bytes" in r.err, r
    assert set(store.rows()) == set(m.posts_per_id())
    if PLAIN_BUILD:
        assert rss - base < 6 * len(big), \
            "peak RSS %d MiB over the baseline for a %d MiB subject" % (
                (rss - base) // MiB, mib)


def test_hundred_thousand_letters_with_one_id(store, sender, mock, tmp_path):
    """100,000 letters, all id 42: one POST, one record, 99,999 skipped
    as repeats of this run (exit 0: nothing failed), the warning about
    them capped (SPEC 7's stderr stays readable), memory bounded."""
    m = mock()
    path = tmp_path / "same.xml"
    with open(path, "w") as f:
        f.write(HEAD)
        line = email_xml(42, "a@example.com", "same")
        for _ in range(100000):
            f.write(line)
        f.write("</emails>\n")
    base = baseline_rss(sender, m.url)
    r, rss = run_measured(sender, [path, "--json"], m.url, timeout=300)
    assert r.code == 0, r.err[-2000:]
    assert m.posts_per_id() == {42: 1}
    assert set(store.rows()) == {42}
    assert len(r.err.splitlines()) < 200, "repeat warnings not capped"
    s = json.loads(r.out)
    assert s["letters"] == 100000 and s["skipped"] == 99999, s
    assert s["delivered"] == 1 and s["requests"] == 1, s
    if PLAIN_BUILD:
        assert rss - base < 8 * MiB, "peak RSS %d MiB over the baseline" % (
            (rss - base) // MiB)


@pytest.mark.parametrize("idtext", [
    "-1", "+5", " 5", "5 ", "05", "0x10", "4294967296",
    "99999999999999999999999999", "", "5.0"])
def test_bad_ids(store, sender, mock, tmp_path, idtext):
    """Ids with signs, spaces, leading zeros, hex, overflow, empty: that
    letter (line 4) is invalid and named, the others go out, exit 3."""
    m = mock()
    path = write_raw(tmp_path / "ids.xml", letters_xml(
        [10, (idtext, "x@example.com", "odd id"), 11]))
    r = sender.run([path, "--json"], api_url=m.url)
    assert r.code == 3, r
    assert m.posts_per_id() == {10: 1, 11: 1}, r
    assert "%s:4" % path in r.err, r
    assert_json_summary(r, letters=3, delivered=2, invalid=1)
    assert set(store.rows()) == {10, 11}


def test_many_files_of_garbage(store, sender, mock, tmp_path):
    """Binary garbage, an empty file, a directory and a good file in one
    run: the good one is sent, each bad one is named, exit 3."""
    m = mock()
    garbage = write_raw(tmp_path / "garbage.xml", bytes(range(256)) * 64)
    empty = write_raw(tmp_path / "empty.xml", b"")
    folder = tmp_path / "folder.xml"
    folder.mkdir()
    good = write_letters(tmp_path / "good.xml", [7, 8])
    r = sender.run([garbage, empty, folder, good], api_url=m.url)
    assert r.code == 3, r
    assert m.posts_per_id() == {7: 1, 8: 1}, r
    for p in (garbage, empty, folder):
        assert str(p) in r.err, (p, r)
