"""The per-process cache of rendered dashboard pages is bounded by bytes as well as by count."""

from __future__ import annotations

from service.web.dashboard.pages import RENDERED, RenderedPages


def test_the_cache_keeps_the_newest_pages_within_its_bytes():
    pages = RenderedPages(size=128, max_bytes=1000, page_max_bytes=400)
    for n in range(10):
        pages.put(f"p{n}", bytes([n]) * 300)
    # 3 pages of 300 bytes fit in 1000: the 3 most recently put, the older ones dropped.
    assert [n for n in range(10) if pages.get(f"p{n}") is not None] == [7, 8, 9]
    assert pages.held_bytes() == 900
    assert pages.get("p9") == bytes([9]) * 300


def test_the_least_recently_read_page_goes_first():
    pages = RenderedPages(size=128, max_bytes=1000, page_max_bytes=400)
    for name in ("a", "b", "c"):
        pages.put(name, b"x" * 300)
    assert pages.get("a") is not None  # read: now the most recent
    pages.put("d", b"x" * 300)
    assert pages.get("b") is None
    assert all(pages.get(name) is not None for name in ("a", "c", "d"))


def test_a_page_over_the_page_limit_is_not_kept():
    pages = RenderedPages(size=128, max_bytes=1000, page_max_bytes=400)
    pages.put("small", b"x" * 100)
    pages.put("big", b"x" * 401)
    assert pages.get("big") is None
    assert pages.get("small") is not None and pages.held_bytes() == 100


def test_putting_a_page_again_counts_its_bytes_once():
    pages = RenderedPages(size=128, max_bytes=1000, page_max_bytes=400)
    for _ in range(5):
        pages.put("same", b"x" * 300)
    assert pages.held_bytes() == 300


def test_the_count_still_bounds_it():
    pages = RenderedPages(size=2, max_bytes=1000, page_max_bytes=400)
    for name in ("a", "b", "c"):
        pages.put(name, b"x")
    assert pages.get("a") is None and pages.held_bytes() == 2


def test_the_processes_cache_holds_8_mib_and_pages_up_to_1_mib():
    RENDERED.put("test-too-big", b"x" * (1024 * 1024 + 1))
    assert RENDERED.get("test-too-big") is None
    assert RENDERED.held_bytes() <= 8 * 1024 * 1024
