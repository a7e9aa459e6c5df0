"""Reading dashboard pages in tests: the text of elements found by tag and class, forms' fields."""

from __future__ import annotations

from html.parser import HTMLParser


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.found: list[
            tuple[list[tuple[str, dict[str, str]]], str, dict[str, str], list[str]]
        ] = []
        self.open: list[list[str]] = []
        self.inputs: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag in ("input", "meta", "link", "br", "img"):
            if tag == "input":
                self.inputs.append({**attributes, "_form": self._form_class()})
            return
        text: list[str] = []
        self.found.append((list(self.stack), tag, attributes, text))
        self.stack.append((tag, attributes))
        self.open.append(text)

    def _form_class(self) -> str:
        return next((a.get("class", "") for t, a in reversed(self.stack) if t == "form"), "")

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            open_tag, _ = self.stack.pop()
            self.open.pop()
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for text in self.open:
            text.append(data)


class Page:
    def __init__(self, html: str) -> None:
        self.html = html
        collector = _Collector()
        collector.feed(html)
        self._elements = collector.found
        self.inputs = collector.inputs

    def texts(self, tag: str, css: str, within: str | None = None) -> list[str]:
        """Text of every ``tag`` with class ``css`` (inside an element with class ``within``)."""
        out = []
        for ancestors, found_tag, attributes, text in self._elements:
            if found_tag != tag or css not in attributes.get("class", "").split():
                continue
            if within is not None and not any(
                set(within.split()) <= set(a.get("class", "").split()) for _, a in ancestors
            ):
                continue
            out.append(" ".join("".join(text).split()))
        return out

    def elements(self, tag: str, css: str) -> list[dict[str, str]]:
        return [a for _, t, a, _ in self._elements
                if t == tag and css in a.get("class", "").split()]  # fmt: skip

    def body_class(self) -> str:
        return next(a.get("class", "") for _, t, a, _ in self._elements if t == "body")

    def field(self, form_class: str, name: str) -> str:
        return next(i.get("value", "") for i in self.inputs
                    if form_class in i["_form"].split() and i.get("name") == name)  # fmt: skip


def number(text: str) -> int:
    return int(text.replace(",", "").strip())


def percent(text: str) -> float:
    return float(text.replace("%", "").strip())


def sign_in(app, key: str):
    """A test client (without an Authorization header) signed in to the dashboard with ``key``."""
    browser = app.test_client()
    browser.environ_base.pop("HTTP_AUTHORIZATION", None)
    form = browser.get("/sign-in")
    assert form.status_code == 200, form.data[:300]
    token = Page(form.get_data(as_text=True)).field("sign-in", "csrf")
    answer = browser.post("/sign-in", data={"csrf": token, "key": key})
    assert answer.status_code == 303 and answer.headers["Location"] == "/", answer.data[:300]
    return browser
