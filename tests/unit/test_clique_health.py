"""The chain-health filters of playbooks/upgrade.yml: when a rolling restart may start, and when a sealer is back."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError

from heliogrid_testing.plugins import plugin

clique_health = plugin("plugins/filter/clique_health.py")

A, B, C = ("0x" + c * 40 for c in "abc")
NOW = 1_700_000_100


def probe(recent: list[tuple[int, str]], head_time: int = NOW - 2, etherbase: str | None = A) -> dict:
    return {
        "head": recent[-1][0] if recent else 0,
        "head_time": head_time,
        "now": NOW,
        "signers": [A, B, C],
        "etherbase": etherbase,
        "recent": [{"number": n, "signer": s} for n, s in recent],
    }


def registered(answer: dict) -> dict:
    """What `geth attach --exec 'JSON.stringify(...)'` registers: the JSON printed as a JavaScript string."""
    return {"rc": 0, "stdout": json.dumps(json.dumps(answer)), "stderr": ""}


def test_a_chain_where_every_signer_sealed_recently_is_healthy() -> None:
    assert clique_health.clique_health_problems(probe([(10, A), (11, B), (12, C), (13, A)]), 5) == []


def test_a_signer_that_sealed_none_of_the_recent_blocks_is_named() -> None:
    problems = clique_health.clique_health_problems(probe([(10, A), (11, B), (12, A), (13, B)]), 5)
    assert problems == [f"1 of 3 signers sealed none of the blocks #10..#13: {C}"]


def test_signers_match_whatever_the_case_of_their_hex_digits() -> None:
    recent = [(10, A.upper().replace("0X", "0x")), (11, B), (12, C)]
    assert clique_health.clique_health_problems(probe(recent), 5) == []


def test_a_head_older_than_three_periods_is_a_stalled_chain() -> None:
    problems = clique_health.clique_health_problems(probe([(10, A), (11, B), (12, C)], head_time=NOW - 16), 5)
    assert problems == ["head #12 is 16 s old (3 periods of 5 s allowed): the chain is not advancing"]


def test_a_head_exactly_three_periods_old_still_counts_as_advancing() -> None:
    assert clique_health.clique_health_problems(probe([(10, A), (11, B), (12, C)], head_time=NOW - 15), 5) == []


def test_periods_given_as_extra_vars_strings_count_as_numbers() -> None:
    problems = clique_health.clique_health_problems(probe([(10, A), (11, B), (12, C)], head_time=NOW - 11), "5", "2")
    assert problems == ["head #12 is 11 s old (2 periods of 5 s allowed): the chain is not advancing"]


def test_a_zero_period_is_refused_with_its_value() -> None:
    with pytest.raises(AnsibleFilterError, match=r"period is 0\.0"):
        clique_health.clique_health_problems(probe([(1, A)]), 0)


def test_a_restarted_sealer_has_sealed_again_only_with_a_block_after_its_restart() -> None:
    before = probe([(10, A), (11, B), (12, C)])
    assert clique_health.clique_sealed_after(before, 10) == 0
    after = probe([(10, A), (11, B), (12, C), (13, B), (14, A)])
    assert clique_health.clique_sealed_after(after, 10) == 14


def test_a_node_without_etherbase_is_not_waited_for_as_a_sealer() -> None:
    with pytest.raises(AnsibleFilterError, match="not a sealer"):
        clique_health.clique_sealed_after(probe([(10, A)], etherbase=None), 9)


def test_the_probe_is_decoded_from_the_consoles_quoted_json() -> None:
    answer = probe([(10, A), (11, B)])
    assert clique_health.clique_probe(registered(answer)) == answer


def test_a_console_that_failed_is_reported_with_its_error() -> None:
    with pytest.raises(AnsibleFilterError, match="no such file"):
        clique_health.clique_probe({"rc": 1, "stdout": "", "stderr": "dial unix geth.ipc: no such file"})


def test_an_answer_without_the_recent_signers_is_refused() -> None:
    answer = probe([(10, A)])
    del answer["recent"]
    with pytest.raises(AnsibleFilterError, match="lacks recent"):
        clique_health.clique_probe(registered(answer))
