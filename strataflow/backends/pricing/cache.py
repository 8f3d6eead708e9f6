"""Prices kept on disk for a day: one JSON file per (source, cloud, region, kind of charge, date).

``$STRATA_HOME/prices/<source>/<cloud>/<region>/<kind>/<YYYY-MM-DD>.json`` holds every SKU
of that kind asked for that day (``{"t3.medium": {...price...}, "x9.huge": null}``: a miss is
kept too, so it is not asked again). ``<source>`` keeps the live price lists apart from the
sandbox's snapshot (``live``, ``sandbox``, or ``endpoint-<hash>`` for another endpoint). A new
day starts a new file and removes the older ones of that kind, so each price is fetched
at most once a day per region and kind, whatever the number of runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

from strataflow.cost.model import Price, PriceQuery


def today_utc() -> date:
    return datetime.now(UTC).date()


class Fetcher(Protocol):
    """One cloud's price list: the price of ``query``, or None when the list has none."""

    def fetch(self, query: PriceQuery) -> Price | None: ...


def _price_json(price: Price | None) -> dict[str, Any] | None:
    if price is None:
        return None
    return {
        "amount": price.amount,
        "unit": price.unit,
        "currency": price.currency,
        "as_of": price.as_of,
        "description": price.description,
    }


def _price_of(data: Any) -> Price | None:
    if not isinstance(data, dict):
        return None
    return Price(
        amount=float(data["amount"]),
        unit=str(data["unit"]),
        currency=str(data.get("currency", "USD")),
        as_of=str(data.get("as_of", "")),
        description=str(data.get("description", "")),
    )


class PriceCache:
    """The day's prices of one source on disk (thread-safe; files written atomically)."""

    def __init__(self, root: Path, source: str, today: Callable[[], date] = today_utc) -> None:
        self.root, self.source, self.today = root, source, today
        self._lock = threading.Lock()

    def directory(self, query: PriceQuery) -> Path:
        region = query.region or "global"
        return self.root / "prices" / self.source / query.cloud / region / query.kind

    def path(self, query: PriceQuery) -> Path:
        return self.directory(query) / f"{self.today().isoformat()}.json"

    def _read(self, path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        prices = data.get("prices") if isinstance(data, dict) else None
        return prices if isinstance(prices, dict) else {}

    def get(self, query: PriceQuery) -> tuple[bool, Price | None]:
        """(found, price): ``found`` is False when today's file has no answer for the query's SKU."""
        with self._lock:
            prices = self._read(self.path(query))
        if query.sku not in prices:
            return False, None
        return True, _price_of(prices[query.sku])

    def put(self, query: PriceQuery, price: Price | None) -> None:
        """Keep today's answer for ``query`` (None: the list has no price) and drop older days' files."""
        path = self.path(query)
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            prices = self._read(path)
            prices[query.sku] = _price_json(price)
            body = {"source": self.source, "date": self.today().isoformat(), "prices": prices}
            handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".prices-", suffix=".json")
            with os.fdopen(handle, "w") as out:
                json.dump(body, out, indent=1, sort_keys=True)
            os.replace(tmp, path)
            for old in path.parent.glob("*.json"):
                if old != path:
                    with contextlib.suppress(OSError):
                        old.unlink()


class CachedPriceBook:
    """A ``PriceBook`` over the clouds' price lists, each answer kept for the day (on disk and in memory)."""

    def __init__(self, fetchers: dict[str, Fetcher], cache: PriceCache) -> None:
        self.fetchers, self.cache = fetchers, cache
        self._memory: dict[tuple[str, PriceQuery], Price | None] = {}
        self._lock = threading.Lock()

    def price(self, query: PriceQuery) -> Price | None:
        key = (self.cache.today().isoformat(), query)
        with self._lock:
            if key in self._memory:
                return self._memory[key]
        found, price = self.cache.get(query)
        if not found:
            fetcher = self.fetchers.get(query.cloud)
            if fetcher is None:
                return None
            price = fetcher.fetch(query)
            self.cache.put(query, price)
        with self._lock:
            self._memory[key] = price
        return price


__all__ = ["CachedPriceBook", "Fetcher", "PriceCache", "today_utc"]
