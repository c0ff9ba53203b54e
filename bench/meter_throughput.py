#!/usr/bin/env python3
"""Sustained production reports per second from many meters, against the bound the chain sets.

The bound is block gas limit ÷ gas per report ÷ block period: the gas limit read from the genesis block, the
gas per report from the receipts of the reports this run got mined (the median; a report credits a kWh:
it mints tokens to the owner). A meter cannot report more than once per block either: the contract measures
its capacity rule in block time, so a second report in the same block is an increase in zero seconds and
reverts. The per-meter ceiling is therefore meters ÷ period.

One loopback Clique chain (heliogrid_testing/devchain.py, geth 1.13, period --period) with the contracts
deployed by the project's deploy code; the largest --meters count of accounts is prefunded in the genesis and
registered as meters (owner = the meter, as on the lab Pis). Then, for each count in --meters, that many
meters report as fast as the chain takes it, each like the agent (one report in flight, the next with a
cumulative total 1 kWh higher as soon as the previous is mined): at every new head the benchmark sends, in one
JSON-RPC batch to the RPC node, the next report of each meter whose previous report is in a block. Reports
are signed before the measured window (signing is CPU work a real Pi does on its own core). The figure is
the successful reports in the window's blocks divided by the window's block time.

    python bench/meter_throughput.py                            # 20, 50, 500 meters, period 2 s, 60 s each
    python bench/meter_throughput.py --meters 20 1000 --period 5 --window 120

Needs `make geth` and the venv. Loopback only.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from eth_account import Account

from heliogrid_testing.loopback_market import GethNotBuilt, LoopbackMarket, bench_key, rpc, rpc_batch
from heliogrid_testing.results import Run

ROOT = Path(__file__).resolve().parent.parent

CAPACITY_WATTS = 4_000_000  # allows 1 kWh per report at any period >= 1 s (contract rule: capacity x block time)
REPORT_GAS = 300_000  # the agent's chain.gas_limit default
GAS_PRICE = 10 * 10**9  # fixed, pre-signed; far above the base fee of these blocks
WARMUP_BLOCKS = 3


@dataclass
class Meter:
    account: object
    next_nonce: int = 0
    next_total_wh: int = 1000
    signed: list[tuple[str, str, int, int]] = field(default_factory=list)  # (raw hex, hash, nonce, total Wh)
    in_flight: str | None = None


def sign_reports(lm: LoopbackMarket, meters: list[Meter], count: int, chain_id: int) -> None:
    market = lm.market
    for m in meters:
        if m.signed:  # left over from the previous phase: start again from the first one never sent
            m.next_nonce, m.next_total_wh = m.signed[0][2], m.signed[0][3]
        m.signed = []
        for _ in range(count):
            tx = {
                "to": market.address,
                "data": market.encode_abi("reportProduction", [m.next_total_wh]),
                "value": 0,
                "gas": REPORT_GAS,
                "gasPrice": GAS_PRICE,
                "nonce": m.next_nonce,
                "chainId": chain_id,
            }
            signed = m.account.sign_transaction(tx)
            raw, tx_hash = signed.raw_transaction.to_0x_hex(), signed.hash.to_0x_hex()
            m.signed.append((raw, tx_hash, m.next_nonce, m.next_total_wh))
            m.next_nonce += 1
            m.next_total_wh += 1000


def register(lm: LoopbackMarket, meters: list[Meter], chain_id: int) -> None:
    """Register every meter at once (one batch of transactions from the deployer), then wait for them all."""
    admin = Account.from_key(lm.deployer_key)
    nonce = lm.w3.eth.get_transaction_count(admin.address, "pending")
    calls, hashes = [], []
    for i, m in enumerate(meters):
        tx = {
            "to": lm.market.address,
            "data": lm.market.encode_abi("registerMeter", [m.account.address, m.account.address, CAPACITY_WATTS]),
            "value": 0,
            "gas": 200_000,
            "gasPrice": GAS_PRICE,
            "nonce": nonce + i,
            "chainId": chain_id,
        }
        signed = admin.sign_transaction(tx)
        calls.append(("eth_sendRawTransaction", [signed.raw_transaction.to_0x_hex()]))
        hashes.append(signed.hash.to_0x_hex())
    for answer in rpc_batch(lm.chain.rpc_url, calls):
        if isinstance(answer, dict):
            raise RuntimeError(f"registerMeter refused: {answer}")
    for h in hashes:
        receipt = lm.w3.eth.wait_for_transaction_receipt(h, timeout=120)
        if receipt["status"] != 1:
            raise RuntimeError(f"registerMeter {h} reverted")


def block(url: str, number: int) -> dict:
    return rpc(url, "eth_getBlockByNumber", hex(number), False)


def run_phase(lm: LoopbackMarket, meters: list[Meter], period: int, window: float, chain_id: int) -> dict:
    url = lm.chain.rpc_url
    blocks_needed = WARMUP_BLOCKS + math.ceil(window / period) + 3
    t = time.perf_counter()
    sign_reports(lm, meters, blocks_needed, chain_id)
    print(f"  {len(meters)} meters: signed {len(meters) * blocks_needed} reports in {time.perf_counter() - t:.0f} s")
    owner_of: dict[str, Meter] = {}
    sent_at_head: dict[str, int] = {}
    waits: list[int] = []  # blocks from the head a report was sent after to the block holding it
    for m in meters:
        m.in_flight = None
    head = int(rpc(url, "eth_blockNumber"), 16)
    measure_from = head + WARMUP_BLOCKS
    start_block = end_block = None
    window_started = 0.0
    send_delays: list[float] = []
    errors = 0
    deadline = time.monotonic() + window + (WARMUP_BLOCKS + 10) * period + 60
    while time.monotonic() < deadline:
        new = int(rpc(url, "eth_blockNumber"), 16)
        if new == head:
            time.sleep(0.05)
            continue
        seen = time.perf_counter()
        for number in range(head + 1, new + 1):
            for tx_hash in block(url, number)["transactions"]:
                meter = owner_of.pop(tx_hash, None)
                if meter is not None and meter.in_flight == tx_hash:
                    meter.in_flight = None
                    waits.append(number - sent_at_head.pop(tx_hash))
        head = new
        if start_block is None and head >= measure_from:
            start_block, window_started = head, time.monotonic()
        if start_block is not None and time.monotonic() - window_started >= window:
            end_block = head
            break
        calls = []
        for m in meters:
            if m.in_flight is None and m.signed:
                raw, tx_hash, _nonce, _total = m.signed.pop(0)
                m.in_flight = tx_hash
                owner_of[tx_hash] = m
                sent_at_head[tx_hash] = head
                calls.append(("eth_sendRawTransaction", [raw]))
        if calls:
            errors += sum(isinstance(a, dict) for a in rpc_batch(url, calls))
            send_delays.append(time.perf_counter() - seen)
    if start_block is None or end_block is None or end_block <= start_block:
        raise TimeoutError(f"{len(meters)} meters: the measured window did not complete (head {head})")
    # Let the last sent reports land so the next phase starts from a quiet pool.
    time.sleep(2 * period)

    ours = {m.account.address.lower() for m in meters}
    ok = reverted = 0
    report_gas: list[int] = []
    fill: list[float] = []
    for number in range(start_block + 1, end_block + 1):
        header = block(url, number)
        fill.append(int(header["gasUsed"], 16) / int(header["gasLimit"], 16))
        for receipt in rpc(url, "eth_getBlockReceipts", hex(number)):
            if receipt["from"].lower() not in ours:
                continue
            if int(receipt["status"], 16) == 1:
                ok += 1
                report_gas.append(int(receipt["gasUsed"], 16))
            else:
                reverted += 1
    seconds = int(block(url, end_block)["timestamp"], 16) - int(block(url, start_block)["timestamp"], 16)
    return {
        "meters": len(meters),
        "blocks": end_block - start_block,
        "seconds": seconds,
        "ok": ok,
        "reverted": reverted,
        "send_errors": errors,
        "rate": ok / seconds,
        "gas": report_gas,
        "fill": statistics.mean(fill),
        "send_ms": statistics.median(send_delays) * 1000 if send_delays else float("nan"),
        "waits": {w: waits.count(w) for w in sorted(set(waits))},
    }


def lab_pi_watts() -> int:
    """The lab Pis' installed capacity, from the lab inventory (what playbooks/contracts.yml registers)."""
    import yaml

    path = ROOT / "inventories" / "lab" / "group_vars" / "pis" / "pi_agent.yml"
    return int(yaml.safe_load(path.read_text())["pi_agent_capacity_watts"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meters", type=int, nargs="+", default=[20, 50, 500], help="meter counts, one phase each")
    parser.add_argument("--period", type=int, default=2, help="Clique block period (s)")
    parser.add_argument("--window", type=float, default=60.0, help="measured seconds per meter count")
    args = parser.parse_args(argv)
    if any(not 1 <= n <= 2000 for n in args.meters) or not 1 <= args.period <= 60 or not 10 <= args.window <= 900:
        parser.error(f"expected meters 1..2000, period 1..60 s, window 10..900 s; got {vars(args)}")
    run = Run("meter_throughput", "Sustained meter reports per second versus the bound")
    accounts = [Account.from_key(bench_key(f"throughput/meter/{i}")) for i in range(max(args.meters))]
    meters = [Meter(a) for a in accounts]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        try:
            lm = LoopbackMarket.start(Path(tmp), args.period, prefund=[a.address for a in accounts])
        except GethNotBuilt as exc:
            print(f"meter_throughput: {exc}")
            run.skip(str(exc))
            return 0
        try:
            chain_id = lm.w3.eth.chain_id
            gas_limit = lm.gas_limit_genesis
            t = time.perf_counter()
            register(lm, meters, chain_id)
            took = time.perf_counter() - t
            print(f"registered {len(meters)} meters in {took:.0f} s; genesis gas limit {gas_limit:,}")
            for count in sorted(set(args.meters)):
                results.append(run_phase(lm, meters[:count], args.period, args.window, chain_id))
                r = results[-1]
                print(
                    f"  {count} meters: {r['ok']} reports in {r['blocks']} blocks / {r['seconds']} s = "
                    f"{r['rate']:.2f} reports/s ({r['reverted']} reverted, {r['send_errors']} refused); "
                    f"blocks from sending to inclusion {r['waits']}, batch sent {r['send_ms']:.0f} ms after the head",
                    flush=True,
                )
        finally:
            lm.stop()

    all_gas = [g for r in results for g in r["gas"]]
    gas_per_report = int(statistics.median(all_gas))
    bound = gas_limit / gas_per_report / args.period
    print()
    print(f"gas per report (median of {len(all_gas)} receipts): {gas_per_report:,}; gas limit {gas_limit:,}")
    print(f"bound: {gas_limit:,} / {gas_per_report:,} / {args.period} s = {bound:.1f} reports/s")
    print(f"{'meters':>6} {'reports/s':>9} {'÷ bound':>7} {'meters÷P':>8} {'per meter/block':>15} {'block fill':>10}")
    lines = [
        f"Period {args.period} s; block gas limit (genesis) {gas_limit:,}; gas per report {gas_per_report:,} "
        f"(median of {len(all_gas)} receipts, min {min(all_gas):,}, max {max(all_gas):,}); "
        f"**bound {gas_limit:,} ÷ {gas_per_report:,} ÷ {args.period} s = {bound:.1f} reports/s**.",
        "",
        "| meters | window (blocks / s) | reports mined | reports/s | ÷ bound | ceiling meters ÷ period | "
        "reports per meter per block | mean block fill | reverted / refused |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        per_block = r["ok"] / r["meters"] / r["blocks"]
        print(
            f"{r['meters']:>6} {r['rate']:>9.2f} {r['rate'] / bound:>7.3f} {r['meters'] / args.period:>8.1f} "
            f"{per_block:>15.2f} {r['fill']:>9.1%}"
        )
        lines.append(
            f"| {r['meters']} | {r['blocks']} / {r['seconds']} | {r['ok']} | {r['rate']:.2f} | {r['rate'] / bound:.3f} "
            f"| {r['meters'] / args.period:.1f} | {per_block:.2f} | {r['fill']:.1%} "
            f"| {r['reverted']} / {r['send_errors']} |"
        )
    per_meter = statistics.mean(r["rate"] / r["meters"] for r in results)
    lab_watts = lab_pi_watts()
    pi_rate = lab_watts / 3.6e6  # reports/s of a Pi exporting its full capacity: one per kWh
    lines += [
        "",
        f"At the measured {per_meter:.3f} reports/s per meter, the bound takes about {bound / per_meter:,.0f} "
        f"meters reporting flat out. A lab Pi exporting its full {lab_watts:,} W (`pi_agent_capacity_watts` of "
        f"the lab inventory) reports once per kWh, every {1 / pi_rate / 60:.1f} min: the bound carries about "
        f"{bound / pi_rate:,.0f} such Pis at noon.",
        "",
        "Reports credit 1 kWh each and open no offer (no ask price set, as on the lab Pis; an offer costs more "
        "gas, see *Gas per contract operation*). Each meter reports like the agent: one report in flight, the "
        "next (cumulative total +1 kWh) sent in the JSON-RPC batch that follows the block holding the previous "
        "one. *Reports per meter per block* below 1 means a report sent right after a block misses the block "
        "being sealed (geth's sealer takes in new transactions at its recommit interval) and lands in the one "
        "after. *Block fill*: gas used ÷ gas limit of the window's blocks.",
    ]
    run.write(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
