"""site.yml builds the whole network from nothing (the `site` fixture, tests/system/conftest.py).

That a second run changes nothing is checked by test_day2's site.yml after the restore, on every host but the restored
one: the same proof, on a lab that has been through every other module, without a run of its own.
"""

from __future__ import annotations

from lab import lab

RESULTS = lab.ROOT / "test-results"


def test_site_reaches_every_host_and_fails_nowhere(site):
    hosts = set(lab.inventory_hosts("miners") + lab.inventory_hosts("stats") + lab.inventory_hosts("pis"))
    assert hosts <= set(site.recap)
    assert {h: r for h, r in site.recap.items() if r["failed"] or r["unreachable"]} == {}
