"""Visible text of an HTML page (selectolax, a maintained HTML5 parser). Never fetches anything."""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser as HTMLParser

_INVISIBLE = "script, style, noscript, template, svg, iframe, object, head > meta, head > link"


def visible_text(html: str) -> str:
    tree = HTMLParser(html)
    for node in tree.css(_INVISIBLE):
        node.decompose()
    title = tree.css_first("title")
    parts = [title.text(strip=True)] if title is not None else []
    body = tree.body or tree.root
    if body is not None:
        parts.append(body.text(separator=" ", strip=True))
    text = " ".join(p for p in parts if p)
    return " ".join(text.split())
