"""Telegram's HTML parse mode, strictly (an unescaped ``<`` or unknown tag is a 400), into
entities with UTF-16 offsets; and the Bot API error the fake answers with."""

from __future__ import annotations

import html
import re
from typing import Any

_ENTITY_TAGS = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline"}
_ENTITY_TAGS |= {"ins": "underline", "s": "strikethrough", "strike": "strikethrough"}
_ENTITY_TAGS |= {"del": "strikethrough", "tg-spoiler": "spoiler", "span": "spoiler"}
_ENTITY_TAGS |= {"a": "text_link", "code": "code", "pre": "pre", "blockquote": "blockquote"}
_ENTITY_TAGS |= {"tg-emoji": "custom_emoji"}
_ATTR = re.compile(r"""([a-zA-Z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""")


class ApiError(Exception):
    """A refusal: HTTP ``status`` with ``description`` (and ``parameters``, e.g. retry_after)."""

    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        body = {"ok": False, "error_code": self.status, "description": self.description}
        return body | ({"parameters": self.parameters} if self.parameters else {})


def bad_request(what: str) -> ApiError:
    return ApiError(400, f"Bad Request: {what}")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's HTML parse mode: (plain text, entities), or ApiError like Telegram's parser."""
    out: list[str] = []
    pos = 0  # in UTF-16 code units, as entity offsets are
    stack: list[tuple[str, int, dict[str, Any]]] = []
    entities: list[dict[str, Any]] = []
    i = 0
    while True:
        lt = text.find("<", i)
        chunk = html.unescape(text[i : len(text) if lt < 0 else lt])
        out.append(chunk)
        pos += utf16_len(chunk)
        if lt < 0:
            break
        at = f"at byte offset {len(text[:lt].encode())}"
        gt = text.find(">", lt)
        if gt < 0:
            raise bad_request(f"can't parse entities: Unclosed start tag {at}")
        closing = text.startswith("</", lt)
        inner = text[lt + (2 if closing else 1) : gt].strip()
        name = re.split(r"\s", inner, maxsplit=1)[0].lower()
        if closing:
            if not stack:
                raise bad_request(f"can't parse entities: Unexpected end tag {at}")
            if stack[-1][0] != name:
                raise bad_request(
                    f'can\'t parse entities: Unmatched end tag {at}, expected "</{stack[-1][0]}>",'
                    f' found "</{name}>"'
                )
            _, start, found = stack.pop()
            if pos > start and found.get("type"):
                entities.append({"offset": start, "length": pos - start, **found})
        else:
            if name not in _ENTITY_TAGS:
                raise bad_request(f'can\'t parse entities: Unsupported start tag "{name}" {at}')
            attrs = {m[1].lower(): m[2] or m[3] or m[4] for m in _ATTR.finditer(inner)}
            extra: dict[str, Any] = {"type": _ENTITY_TAGS[name]}
            if name == "span" and attrs.get("class") != "tg-spoiler":
                raise bad_request('can\'t parse entities: Tag "span" must have class "tg-spoiler"')
            if name == "a":
                extra = {"type": "text_link", "url": attrs["href"]} if "href" in attrs else {}
            elif name == "tg-emoji":
                extra["custom_emoji_id"] = attrs.get("emoji-id", "")
            stack.append((name, pos, extra))
        i = gt + 1
    if stack:
        raise bad_request(
            "can't parse entities: Can't find end tag corresponding to start tag"
            f' "{stack[-1][0]}"'
        )
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities
