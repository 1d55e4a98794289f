"""lmforge.html, the self-contained pages the reports are written as: escaping against the HTML parser,
PNG bytes and matplotlib figures inlined and read back, an atomic write that keeps the old page when the new
one fails, and in Chromium: a written page shows planted markup as text, runs nothing, and loads its
image."""

from __future__ import annotations

import base64
import html.parser
import io
import os
import re

import pytest

from lmforge.errors import LmforgeError
from lmforge.html import data_uri, escape, image, page, png_bytes, script_hash, write_page

PLANTED = '<script>window.planted = 1</script><img src=x onerror="window.planted = 2">"quoted" & \'single\''


def tiny_png() -> bytes:
    """A real 3 × 2 PNG, drawn by matplotlib (a core dependency) at 1 dpi."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(3, 2), dpi=1)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


class Collector(html.parser.HTMLParser):
    """What Python's HTML parser (a reference outside lmforge) sees: the tags and the text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(markup: str) -> Collector:
    collector = Collector()
    collector.feed(markup)
    collector.close()
    return collector


def test_escaped_text_is_text_to_an_html_parser_between_tags_and_in_attributes():
    for text in [PLANTED, "a < b > c", "", "ünïcödé ✓ 😀", "&amp; already escaped", 42]:
        seen = parse(f'<p title="{escape(text)}">{escape(text)}</p>')
        assert seen.tags == [("p", {"title": str(text)})]
        assert "".join(seen.text) == str(text)


def test_an_inlined_png_reads_back_byte_for_byte():
    png = tiny_png()
    uri = data_uri(png)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == png
    tags = parse(image(png, alt=PLANTED, width=3, class_="plot")).tags
    assert tags == [("img", {"src": uri, "alt": PLANTED, "width": "3", "class": "plot"})]


def test_a_matplotlib_figure_is_inlined_as_its_png():
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(2, 1), dpi=10)
    figure.gca().plot([0, 1], [1, 0])
    try:
        png = png_bytes(figure)
        again = io.BytesIO()
        figure.savefig(again, format="png")  # still open: the caller owns it
    finally:
        plt.close(figure)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png == again.getvalue()
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")  # IHDR
    assert (width, height) == (20, 10)


def test_what_is_not_a_png_is_refused_with_what_it_is():
    with pytest.raises(LmforgeError, match="not a PNG image"):
        data_uri(b"GIF89a\x01\x00")
    with pytest.raises(LmforgeError, match="cannot inline a str"):
        data_uri("picture.png")


def test_the_page_policy_runs_only_its_own_script():
    script = "document.title = 'ran';"
    document = page("t", "<p>x</p>", script=script)
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', document)[1]
    assert "default-src 'none'" in policy and "img-src data:" in policy
    assert "script-src " + script_hash(script) in policy
    assert "script-src 'none'" in page("t", "<p>x</p>")
    # the hash is CSP's: base64 of the SHA-256 of the UTF-8 text
    assert script_hash("") == "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"


def test_a_failed_write_keeps_the_old_page_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = write_page(tmp_path / "report.html", "first", "<p>one</p>")
    before = path.read_bytes()

    def broken_fsync(descriptor):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        write_page(path, "second", "<p>two</p>")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    with pytest.raises(LmforgeError, match="does not exist"):
        write_page(tmp_path / "missing" / "report.html", "t", "")


def test_a_written_page_renders_in_chromium_with_its_image_and_runs_nothing_planted(page, tmp_path):
    body = f"<h1>{escape(PLANTED)}</h1>\n<p id='picture'>{image(tiny_png(), alt='a plot')}</p>"
    script = "document.body.dataset.ran = 'yes';"  # the page's own script, allowed by its hash
    path = write_page(tmp_path / "report.html", PLANTED, body, script=script)
    page.goto(path.as_uri())
    assert page.title() == PLANTED
    assert page.text_content("h1") == PLANTED
    assert page.eval_on_selector("h1", "h => h.children.length") == 0  # nothing in it became an element
    page.wait_for_function("() => document.querySelector('#picture img').complete")
    assert page.eval_on_selector("#picture img", "i => [i.naturalWidth, i.naturalHeight]") == [3, 2]
    page.wait_for_timeout(100)
    assert page.evaluate("window.planted") is None
    assert page.get_attribute("body", "data-ran") == "yes"
