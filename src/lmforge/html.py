"""Self-contained HTML pages: one file that opens anywhere, offline, with its pictures inside it. The
reports (human evaluation, analysis) are written with it, and the playground's security policy comes from
`script_hash`.

- `escape` every piece of text that goes into the page (a model's output, a dataset's line, a file name):
  text is shown as text, never run or parsed as markup;
- `image` inlines a PNG (bytes, or a matplotlib figure) as a `data:` URI, so the page needs no folder
  beside it;
- `page` wraps a body in a document whose Content-Security-Policy loads nothing from anywhere: images only
  from `data:`, inline style, and scripts only the one the page was given (allowed by its hash, so that a
  `<script>` or an `onerror=` that slipped into the text could not run);
- `write_page` writes it atomically (lmforge.io): a reader sees the old report or the new one.

    >>> escape('<script>alert("x")</script> & co')
    '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co'
    >>> body = "<h1>" + escape("a < b") + "</h1>"
    >>> "<title>scores &amp; more</title>" in page("scores & more", body)
    True
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import os
from pathlib import Path

from lmforge.errors import LmforgeError
from lmforge.io import write_text

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def escape(text: object) -> str:
    """`text` (any object, through `str`) with `& < > " '` escaped: safe between tags and inside a quoted
    attribute value."""
    return html.escape(str(text), quote=True)


def png_bytes(picture) -> bytes:
    """The PNG bytes of `picture`: PNG bytes as they are, or a matplotlib figure rendered (not closed: its
    owner may still use it)."""
    if isinstance(picture, (bytes, bytearray, memoryview)):
        data = bytes(picture)
        if not data.startswith(PNG_SIGNATURE):
            raise LmforgeError(f"not a PNG image: it starts with {data[:8]!r}, not the PNG signature")
        return data
    if hasattr(picture, "savefig"):
        buffer = io.BytesIO()
        picture.savefig(buffer, format="png")
        return buffer.getvalue()
    raise LmforgeError(f"cannot inline a {type(picture).__name__}: give PNG bytes or a matplotlib figure")


def data_uri(picture) -> str:
    """`data:image/png;base64,...` of `picture` (see `png_bytes`).

    >>> data_uri(PNG_SIGNATURE)
    'data:image/png;base64,iVBORw0KGgo='
    """
    return "data:image/png;base64," + base64.b64encode(png_bytes(picture)).decode("ascii")


def image(picture, alt: str, **attributes: object) -> str:
    """An `<img>` element with `picture` inside it; `alt` and every attribute (`width=320`, `class_="plot"`:
    a trailing underscore is dropped) escaped."""
    extra = "".join(f' {name.rstrip("_")}="{escape(value)}"' for name, value in attributes.items())
    return f'<img src="{data_uri(picture)}" alt="{escape(alt)}"{extra}>'


def script_hash(source: str) -> str:
    """The Content-Security-Policy source that allows exactly this inline script: `'sha256-<base64>'` of its
    UTF-8 text, as it stands between `<script>` and `</script>`."""
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


STYLE = """body { font: 15px/1.45 system-ui, sans-serif; max-width: 60rem; margin: 1.5rem auto; padding: 0 1rem; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .2rem .5rem; text-align: left; }
pre { white-space: pre-wrap; } img { max-width: 100%; }"""


def page(title: str, body: str, *, style: str = STYLE, script: str = "") -> str:
    """A whole HTML document: `title` (escaped), `body` (HTML, already escaped where it holds text), a
    `<style>` and, if given, one inline `<script>` — the only script the page's policy lets run."""
    scripts = script_hash(script) if script else "'none'"
    policy = f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src {scripts}"
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>\n{style}\n</style>\n</head>\n<body>\n"
        f"{body}\n" + (f"<script>{script}</script>\n" if script else "") + "</body>\n</html>\n"
    )


def write_page(path: str | os.PathLike, title: str, body: str, **options) -> Path:
    """`page(title, body, **options)` written atomically to `path` (UTF-8)."""
    return write_text(path, page(title, body, **options))
