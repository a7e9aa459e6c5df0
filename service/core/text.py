"""The rule for every string a client names or describes things with (docs/api.md, "Text").

A string is stored in Unicode normalisation form NFC, so that look-alikes typed on different
systems (``Zürich`` precomposed or as ``u`` plus a combining diaeresis) are one name, one row,
one trace id. It may not contain a character of the categories Cc (controls, among them U+0085
NEXT LINE), Cf (format: zero-width space U+200B, the bidirectional overrides such as U+202E,
the byte order mark), Zl or Zp (U+2028, U+2029): they are invisible, reorder what a reader
sees, or break lines in logs and CSV exports. A name or id (``trimmed``) also may not begin or
end with whitespace, which no one sees either. Such strings are refused, naming the character,
rather than silently cleaned: a client that sends them has a bug worth knowing about.
"""

from __future__ import annotations

import re
import unicodedata

FORBIDDEN_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "a format character",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The forbidden characters of the Basic Multilingual Plane (Unicode 14), as a regex class that
# ECMA-262 and Python read alike: for the OpenAPI spec. The rule itself reads the categories,
# so it also refuses the few format characters beyond U+FFFF (e.g. the tags U+E0001...).
_FORBIDDEN_BMP = (
    r"\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e"
    r"\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
)
TEXT_PATTERN = rf"^[^{_FORBIDDEN_BMP}]*$"
TRIMMED_TEXT_PATTERN = (
    rf"^(?:[^\s{_FORBIDDEN_BMP}](?:[^{_FORBIDDEN_BMP}]*[^\s{_FORBIDDEN_BMP}])?)?$"
)


class TextError(ValueError):
    """What is wrong with a string, in words for the problem's ``errors[].message``."""


def checked_text(value: str, trimmed: bool = False) -> str:
    """``value`` in NFC; TextError when it breaks the rule. ASCII strings (nearly all) cost a
    regex search: only the others are normalised and read character by character."""
    if value.isascii():
        if _ASCII_CONTROL.search(value):
            raise TextError("contains control characters")
    else:
        value = unicodedata.normalize("NFC", value)
        for character in value:
            if character >= "\x80" or character < " " or character == "\x7f":
                category = unicodedata.category(character)
                if category in FORBIDDEN_CATEGORIES:
                    kind = FORBIDDEN_CATEGORIES[category]
                    raise TextError(f"contains {kind} (U+{ord(character):04X}); control, "
                                    "format and line or paragraph separator characters are "
                                    "not allowed")  # fmt: skip
    if trimmed and value != value.strip():
        raise TextError("begins or ends with whitespace")
    return value


def checked_name(value: str, limit: int) -> str:
    """A name (a connector's, an API key's): 1 to ``limit`` characters in NFC, by the rule,
    with no whitespace at either end."""
    if not value or len(value) > 4 * limit:  # NFC shortens a string at most 4 times
        raise TextError(f"1 to {limit} characters")
    value = checked_text(value, trimmed=True)
    if len(value) > limit:
        raise TextError(f"1 to {limit} characters")
    return value


def is_clean_text(value: str) -> bool:
    """True when ``checked_text`` would keep ``value`` as it is (already NFC, nothing
    forbidden); whitespace at the ends is not looked at."""
    try:
        return checked_text(value) == value
    except TextError:
        return False
