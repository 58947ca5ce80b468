"""SPEC 7: what goes to stderr and stdout."""

import re

from conftest import SUMMARY_RE, letters_xml, write_letters, write_raw


def test_stderr_lines_are_sender_lines(store, sender, mock, tmp_path):
    """Without a TTY (and without --progress) every line on stderr is a
    `sender: ...` line, even for libxml2's errors, rejected letters,
    duplicates and deferred letters."""
    m = mock("--answer", "2=400:bad address", "--answer", "3=200:what",
             "--fail-first", "4=100")
    good = write_raw(tmp_path / "a.xml", letters_xml(
        [1, 2, 3, 4, 1, ("x", "a@b", "s"), (9, None, "s")]))
    bad = write_raw(tmp_path / "bad.xml",
                    "<emails>\n<email id='20'><to>a</to><subject>s</subject>"
                    "</email>\n<email id='21'><to>a</t></email>\n")
    r = sender.run([good, bad, tmp_path / "missing.xml"], api_url=m.url,
                   max_attempts=2)
    assert r.code == 3, r
    lines = r.err.splitlines()
    assert lines, r
    stray = [l for l in lines if not l.startswith("sender: ")]
    assert not stray, "lines not in `sender: ...` form: %s\n%s" % (stray, r)
    assert SUMMARY_RE.match(lines[-1]), r
    assert r.out == "", r


def test_json_is_alone_on_stdout(store, sender, mock, tmp_path):
    m = mock()
    path = write_letters(tmp_path / "a.xml", [1, 2])
    r = sender.run([path, "--json"], api_url=m.url)
    assert r.code == 0, r
    assert r.out.strip().startswith("{") and r.out.count("\n") <= 1, r
    r.json()


def test_progress_options_accepted(store, sender, mock, tmp_path):
    m = mock()
    path = write_letters(tmp_path / "a.xml", range(1, 6))
    r = sender.run([path, "--no-progress"], api_url=m.url)
    assert r.code == 0, r
    assert SUMMARY_RE.search(r.err)
    path2 = write_letters(tmp_path / "b.xml", range(6, 11))
    r2 = sender.run([path2, "--progress"], api_url=m.url)
    assert r2.code == 0, r2
    # The progress line may be redrawn with CR and erased with ESC [ K.
    plain = re.sub(r"\r|\x1b\[[0-9;]*[A-Za-z]", "\n", r2.err)
    assert SUMMARY_RE.search(plain), r2


def test_exit_status_with_deferred_and_invalid(store, sender, mock,
                                              tmp_path):
    # design: when a run has both deferred letters (1) and input errors
    # (3), the input error is reported: 3.
    m = mock("--fail-first", "2=100")
    path = write_raw(tmp_path / "a.xml", letters_xml(
        [1, 2, ("bad", "a@b", "s")]))
    r = sender.run([path], api_url=m.url, max_attempts=2)
    assert r.code == 3, r
    assert re.search(r"\b1 deferred\b", r.err), r
