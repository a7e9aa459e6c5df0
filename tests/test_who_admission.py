"""Admitting names and their extras (admit_names.lua): each answer, the set kept, and the
extras bound, call by call; the worker's memo kept out by a new generation per call."""

from __future__ import annotations

from service.core.who import EXTRAS_PER_NAME
from service.store import keys
from service.store.who_counters import Ask, admit

NAMES = keys.who_names("acme", "domains", "inbound", "2026-01-05")
LIFETIME_MS = 86_400_000


class Admitter:
    def __init__(self, redis_client, limit: int) -> None:
        self.client, self.limit, self.calls = redis_client, limit, 0

    def __call__(self, names: dict[str, list[str]]) -> dict[str, frozenset[str]]:
        self.calls += 1  # a new generation: no answer remembered from a call before
        ask = Ask(NAMES, names, self.limit, LIFETIME_MS, generation=self.calls)
        (admitted,) = admit(self.client, [ask])
        return admitted

    def kept(self) -> dict[str, list[str]]:
        return {name.decode(): extras.decode().split("\x1f") if extras else []
                for name, extras in self.client.hgetall(NAMES).items()}  # fmt: skip


def hosts(first: int, last: int) -> list[str]:
    return [f"mx{i}.example" for i in range(first, last)]


def test_names_and_extras_are_admitted_to_their_bounds_call_by_call(redis_client):
    admitter = Admitter(redis_client, limit=4)
    # New names: all their extras up to the bound per name, or none sent.
    many = hosts(20, 22 + EXTRAS_PER_NAME)
    assert admitter({"a": hosts(0, 3), "b": [], "e": many}) == {
        "a": frozenset(hosts(0, 3)), "b": frozenset(), "e": frozenset(many[:EXTRAS_PER_NAME])
    }  # fmt: skip
    assert admitter.kept() == {"a": hosts(0, 3), "b": [], "e": many[:EXTRAS_PER_NAME]}
    # The same extras again: the same answer, nothing changed; a name held without extras
    # takes the ones it is sent; a third name fills the set.
    assert admitter({"a": hosts(0, 3), "b": hosts(5, 7), "c": hosts(0, 1)}) == {
        "a": frozenset(hosts(0, 3)), "b": frozenset(hosts(5, 7)), "c": frozenset(hosts(0, 1))
    }  # fmt: skip
    assert admitter.kept() == {"a": hosts(0, 3), "b": hosts(5, 7), "c": hosts(0, 1),
                               "e": many[:EXTRAS_PER_NAME]}  # fmt: skip
    # Known extras in another order, and new ones up to the bound per name: the answer lists
    # the ones sent that the name holds; a name past the set's limit is refused.
    new = hosts(3, EXTRAS_PER_NAME + 4)[::-1]  # more than the name has room for
    answer = admitter({"a": [*new, "mx2.example", "mx1.example"], "d": hosts(0, 1)})
    taken = new[: EXTRAS_PER_NAME - 3]
    assert answer == {"a": frozenset([*taken, "mx2.example", "mx1.example"])}
    kept = admitter.kept()
    assert kept == {"a": hosts(0, 3) + taken, "b": hosts(5, 7), "c": hosts(0, 1),
                    "e": many[:EXTRAS_PER_NAME]}  # fmt: skip
    # A full name takes nothing new, and still answers with what it holds of those sent.
    assert admitter({"a": ["mx0.example", "mx99.example"]}) == {"a": frozenset({"mx0.example"})}
    assert admitter.kept()["a"] == kept["a"]
    assert redis_client.pttl(NAMES) > LIFETIME_MS - 60_000
