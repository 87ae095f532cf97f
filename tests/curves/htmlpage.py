"""A small reader for the HTML report (stdlib html.parser): sections, headings, cards, tables, figures, list items —
so report tests assert the figures of their input documents in the right place, not that a common word appears
somewhere on the page."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"img", "meta", "br", "wbr", "link", "input", "hr", "source"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        parts = [c if isinstance(c, str) else c.text() for c in self.children]
        return re.sub(r"\s+", " ", "".join(parts)).strip()

    def find_all(self, tag: str, cls: str | None = None) -> list[Node]:
        out: list[Node] = []
        for c in self.children:
            if isinstance(c, Node):
                if c.tag == tag and (cls is None or cls in c.classes):
                    out.append(c)
                out.extend(c.find_all(tag, cls))
        return out

    def find(self, tag: str, cls: str | None = None) -> Node:
        found = self.find_all(tag, cls)
        assert found, f"no <{tag}{' class=' + cls if cls else ''}> in <{self.tag} {self.attrs}>"
        return found[0]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(page: str) -> Node:
    b = _Builder()
    b.feed(page)
    b.close()
    return b.root


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    row_classes: list[str]

    def column(self, header: str) -> list[str]:
        i = self.headers.index(header)
        return [r[i] for r in self.rows]


def table_of(node: Node) -> Table:
    headers = [th.text() for th in node.find("thead").find_all("th")]
    trs = node.find("tbody").find_all("tr")
    return Table(
        headers, [[td.text() for td in tr.find_all("td")] for tr in trs], [tr.attrs.get("class", "") for tr in trs]
    )


@dataclass
class Section:
    node: Node

    @property
    def id(self) -> str:
        return self.node.attrs.get("id", "")

    @property
    def kind(self) -> str:
        k = self.node.find("h2").find_all("span", "kind")
        return k[0].text() if k else ""

    @property
    def title(self) -> str:
        return self.node.find("h2").text()

    def headings(self, tag: str = "h3") -> list[str]:
        return [h.text() for h in self.node.find_all(tag)]

    def cards(self) -> dict[str, str]:
        return {c.find("div", "label").text(): c.find("div", "value").text() for c in self.node.find_all("div", "card")}

    def tables(self) -> list[Table]:
        return [table_of(t) for t in self.node.find_all("table") if "kv" not in t.classes]

    def table(self, first_header: str) -> Table:
        """The table whose first column is headed `first_header`."""
        found = [t for t in self.tables() if t.headers and t.headers[0] == first_header]
        assert len(found) == 1, f"{len(found)} tables headed {first_header!r} in section {self.title!r}"
        return found[0]

    def kv(self, heading: str) -> dict[str, str]:
        """The key-value table under an <h4> of the configuration block (Scenario / Machine / Server)."""
        for div in self.node.find_all("div"):
            h4 = [c for c in div.children if isinstance(c, Node) and c.tag == "h4"]
            if h4 and h4[0].text() == heading:
                out = {}
                for tr in div.find_all("tr"):
                    k, v = [td.text() for td in tr.find_all("td")]
                    out[k] = v
                return out
        raise AssertionError(f"no configuration table {heading!r} in section {self.title!r}")

    def alts(self) -> list[str]:
        return [i.attrs.get("alt", "") for i in self.node.find_all("img")]

    def callouts(self) -> list[Node]:
        return self.node.find_all("div", "callout")

    def callout(self, heading: str) -> list[str]:
        """The list items of the one callout whose bold heading is `heading` ("INVALID because:", "Notes", ...)."""
        found = [c for c in self.callouts() if c.find_all("strong") and c.find_all("strong")[0].text() == heading]
        assert len(found) == 1, f"{len(found)} callouts {heading!r} in section {self.title!r}"
        return [li.text() for li in found[0].find_all("li")]


def sections(root: Node) -> list[Section]:
    return [Section(s) for s in root.find_all("section", "doc")]


def num(text: str) -> float:
    """A figure as the report prints it ('1,234.5 req/s', '12.3ms') → float."""
    m = re.match(r"-?[\d,]*\.?\d+(?:e[-+]?\d+)?", text.strip())
    assert m, f"not a number: {text!r}"
    return float(m.group(0).replace(",", ""))
