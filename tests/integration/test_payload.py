"""SPEC 2 and 3: what exactly is POSTed for each letter."""

import json
import urllib.parse

from conftest import assert_no_claims, write_raw

# One file that exercises entities, character references, CDATA, trimming of
# space/tab/CR/LF at both ends, and inner text kept byte for byte.  The line
# ending of letter 9 is a literal CR LF, which XML itself turns into LF.
XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<letters>\n"
    '  <email id="1">\n'
    "    <to>  ivan@example.com  </to>\n"
    "    <subject>Привет &amp; welcome</subject>\n"
    "  </email>\n"
    '  <email id="2">\n'
    "    <to>\n\tpetr@example.com\n    </to>\n"
    '    <subject><![CDATA[Tom & Jerry <b>bold</b> "quoted" ]]></subject>\n'
    "  </email>\n"
    '  <email id="3">\n'
    "    <to>a@b.c</to>\n"
    "    <subject>  line one\nline two  with  double   spaces\tand a tab"
    "  </subject>\n"
    "  </email>\n"
    '  <email id="4">\n'
    "    <to>x@y.z</to>\n"
    "    <subject>&#1055;&#x440;&#1080;&#x432;&#1077;&#x442; &lt;tag&gt; "
    "&quot;q&quot; &apos;a&apos; € 😀 back\\slash /slash \u2028end"
    "</subject>\n"
    "  </email>\n"
    '  <email id="5">\n'
    "    <subject>  pre <![CDATA[<cdata> & ]]>post  </subject>\n"
    "    <to>cdata@example.com</to>\n"
    "  </email>\n"
    '  <email id="6">\n'
    "    <to>cr@example.com</to>\n"
    "    <subject>&#13;&#10;&#9; Hello&#13;World&#160;&#13;&#10; </subject>\n"
    "  </email>\n"
    '  <email id="7">\n'
    "    <to>a+b=c&amp;d%20e@example.com</to>\n"
    "    <subject>50% off; a=b&amp;c=d + more ?#</subject>\n"
    "  </email>\n"
    '  <email id="8">\n'
    "    <to>\u0432\u0430\u0441\u044f@\u043f\u0440\u0438\u043c\u0435\u0440"
    ".\u0440\u0444</to>\n"
    "    <subject>\u65e5\u672c\u8a9e \u0639\u0631\u0628\u064a</subject>\n"
    "  </email>\n"
    '  <email id="9">\n'
    "    <to>crlf@example.com</to>\n"
    "    <subject>first\r\nsecond</subject>\n"
    "  </email>\n"
    "</letters>\n")

EXPECT = {
    1: ("ivan@example.com", "Привет & welcome"),
    2: ("petr@example.com", 'Tom & Jerry <b>bold</b> "quoted"'),
    3: ("a@b.c", "line one\nline two  with  double   spaces\tand a tab"),
    4: ("x@y.z", "Привет <tag> \"q\" 'a' € 😀 back\\slash /slash "
        "\u2028end"),
    5: ("cdata@example.com", "pre <cdata> & post"),
    # Only space, tab, CR and LF are trimmed: the inner CR and the
    # no-break space (U+00A0) before the trailing CR LF stay.
    6: ("cr@example.com", "Hello\rWorld\u00a0"),
    7: ("a+b=c&d%20e@example.com", "50% off; a=b&c=d + more ?#"),
    8: ("\u0432\u0430\u0441\u044f@\u043f\u0440\u0438\u043c\u0435\u0440"
        ".\u0440\u0444", "\u65e5\u672c\u8a9e \u0639\u0631\u0628\u064a"),
    9: ("crlf@example.com", "first\nsecond"),
}


def test_exact_payloads(store, sender, mock, tmp_path):
    m = mock()
    path = write_raw(tmp_path / "letters.xml", XML)
    r = sender.run([path], api_url=m.url)
    assert r.code == 0, r

    reqs = m.requests()
    assert sorted(q.id for q in reqs) == sorted(EXPECT), r
    for q in reqs:
        # The mock answers 415/400 to a request that is not
        # application/x-www-form-urlencoded: every request was accepted.
        assert q.status == 200, (q, r)
        fields = urllib.parse.parse_qs(q.body, keep_blank_values=True,
                                       strict_parsing=True, encoding="utf-8",
                                       errors="strict")
        assert set(fields) == {"id", "message"}, q.body
        assert len(fields["id"]) == 1 and len(fields["message"]) == 1, q.body
        assert fields["id"][0] == str(q.id), q.body
        pairs = json.loads(fields["message"][0], object_pairs_hook=list)
        to, subject = EXPECT[q.id]
        assert pairs == [("to", to), ("subject", subject)], \
            "id %d: message %r" % (q.id, fields["message"][0])

    rows = store.rows()
    assert set(rows) == set(EXPECT)
    assert all(st == 1 for ts, st in rows.values()), rows
    assert_no_claims(store, r)


def test_ids_at_the_edges_of_the_range(store, sender, mock, tmp_path):
    """0 and 4294967295 are valid ids (SPEC 2) and are sent as plain
    decimals."""
    m = mock()
    path = write_raw(tmp_path / "edges.xml",
                     '<?xml version="1.0"?>\n<e>\n'
                     '<email id="0"><to>a@b</to><subject>zero</subject>'
                     '</email>\n'
                     '<email id="4294967295"><to>a@b</to><subject>max'
                     '</subject></email>\n</e>\n')
    r = sender.run([path], api_url=m.url)
    assert r.code == 0, r
    bodies = {q.id: q.fields["id"] for q in m.requests()}
    assert bodies == {0: ["0"], 4294967295: ["4294967295"]}, r
    assert {i: st for i, (ts, st) in store.rows().items()} == \
        {0: 1, 4294967295: 1}
