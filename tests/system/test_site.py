"""site.yml builds the whole network from nothing, and a second run changes nothing."""

from __future__ import annotations

from lab import lab

RESULTS = lab.ROOT / "test-results"


def test_site_reaches_every_host_and_fails_nowhere(site):
    hosts = set(lab.inventory_hosts("miners") + lab.inventory_hosts("stats") + lab.inventory_hosts("pis"))
    assert hosts <= set(site.recap)
    assert {h: r for h, r in site.recap.items() if r["failed"] or r["unreachable"]} == {}


def test_second_site_run_changes_nothing(site):
    again = lab.playbook("site.yml", log=RESULTS / "site-second-run.log")
    assert again.returncode == 0, again.output[-4000:]
    assert {h: r["changed"] for h, r in again.recap.items() if r["changed"]} == {}
