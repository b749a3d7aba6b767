"""Reading Prometheus metrics as a scraper does: over HTTP, parsed by prometheus-client's
own parser, each sample by name and labels."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

__all__ = ("Samples", "eventually", "scrape", "value")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: httpx.AsyncClient, url: str) -> Samples:
    """GET ``url`` and parse the text format; fails the test on anything but a 200."""
    response = await http.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample ``name{labels}`` (all of its labels given); 0 when there is none."""
    return samples.get((name, frozenset(labels.items())), 0.0)


async def eventually(http: httpx.AsyncClient, url: str, name: str, expected: float, **labels: str) -> Samples:
    """Scrape until ``name{labels}`` is ``expected``: what a server counts after it
    answered (a disconnect, a notification) lands a moment later. Bounded: 100 scrapes."""
    samples: Samples = {}
    for _ in range(100):
        samples = await scrape(http, url)
        if value(samples, name, **labels) == expected:
            return samples
        await asyncio.sleep(0.02)
    pytest.fail(f"{name}{labels} stayed {value(samples, name, **labels)}, not {expected}")
