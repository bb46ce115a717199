"""A web page as the classifier sees it: its visible text and its images. Never fetches anything.

Parsed with selectolax (lexbor), a maintained HTML5 parser. Images embedded as
`data:` URIs are decoded here; images referenced by URL are listed but not
fetched (a filter uploads them with the page when it wants them read).
"""

from __future__ import annotations

from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser as HTMLParser

_INVISIBLE = "script, style, noscript, template, svg, iframe, object, head > meta, head > link"


@dataclass(frozen=True)
class PageImage:
    src: str  # the data: URI or the URL as written in the page
    alt: str

    @property
    def embedded(self) -> bool:
        return self.src.startswith("data:image/")

    def label(self, index: int) -> str:
        if self.embedded:
            return f"embedded image {index}" + (f" ({self.alt})" if self.alt else "")
        return self.src[:200]


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


def page_images(html: str) -> list[PageImage]:
    """The page's <img> elements in document order (src and alt)."""
    out = []
    for node in HTMLParser(html).css("img"):
        src = (node.attributes.get("src") or "").strip()
        if src:
            out.append(PageImage(src, (node.attributes.get("alt") or "").strip()))
    return out
