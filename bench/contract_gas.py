"""Gas per production report and per purchase on the HelioGrid contracts (in-process EVM, Paris rules).

    python bench/contract_gas.py [--reports N]

Prints a table; figures, not a timed test. Gas is deterministic for given state, so the numbers only
change with the contracts or compiler settings.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from eth.vm.forks import ParisVM
from eth_tester import EthereumTester, PyEVMBackend
from heliogrid_contracts.deploy import Deployer, DeploySpec
from web3 import EthereumTesterProvider, Web3

from heliogrid_testing.results import Run

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=5, help="reports to average over (1..1000)")
    args = parser.parse_args(argv)
    if not 1 <= args.reports <= 1000:
        parser.error(f"--reports must be 1..1000, got {args.reports}")
    run = Run("contract_gas", "Gas per contract operation")

    tester = EthereumTester(PyEVMBackend(vm_configuration=((0, ParisVM),)))
    w3 = Web3(EthereumTesterProvider(tester))
    registrar, meter, owner, buyer, admin = w3.eth.accounts[:5]
    rows: list[tuple[str, int]] = []

    def gas(label: str, fn, sender: str) -> int:
        receipt = w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}))
        assert receipt["status"] == 1, label
        rows.append((label, receipt["gasUsed"]))
        return receipt["gasUsed"]

    with tempfile.TemporaryDirectory() as tmp:
        spec = DeploySpec.from_dict(
            {
                "token_name": "Helio kWh",
                "token_symbol": "HKWH",
                "tariff": 10**18,
                "tolerance_percent": 10,
                "admin": admin,
            }
        )
        record = Deployer(w3, tester.backend.account_keys[0].to_hex(), Path(tmp) / "c.json").run(spec).record
    token = w3.eth.contract(address=record["token"]["address"], abi=record["token"]["abi"])
    market = w3.eth.contract(address=record["market"]["address"], abi=record["market"]["abi"])
    for block_key in ("token", "market"):
        receipt_block = w3.eth.get_block(record[block_key]["block"], full_transactions=True)
        tx = receipt_block["transactions"][0]
        rows.append((f"deploy {block_key}", w3.eth.get_transaction_receipt(tx["hash"])["gasUsed"]))

    gas("registerMeter", market.functions.registerMeter(meter, owner, 5000), registrar)
    now = w3.eth.get_block("latest")["timestamp"]
    total = 0
    minted_only, with_offer = [], []
    for i in range(args.reports):
        now += 3600
        total += 1000
        tester.time_travel(now)
        minted_only.append(
            gas(f"reportProduction #{i + 1} (1 kWh, mint, no offer)", market.functions.reportProduction(total), meter)
        )
    gas("setAskPrice", market.functions.setAskPrice(10**17), owner)
    for i in range(args.reports):
        now += 3600
        total += 1000
        tester.time_travel(now)
        with_offer.append(
            gas(f"reportProduction #{i + 1} (1 kWh, mint + offer)", market.functions.reportProduction(total), meter)
        )
    minter = token.functions.MINTER_ROLE().call()
    gas("grant MINTER_ROLE (bench setup)", token.functions.grantRole(minter, admin), admin)
    gas("mint (bench setup)", token.functions.mint(buyer, 10**20), admin)
    gas("approve", token.functions.approve(market.address, 2**256 - 1), buyer)
    now += 3600
    total += 3000
    tester.time_travel(now)
    gas("reportProduction (3 kWh, mint + offer)", market.functions.reportProduction(total), meter)
    offer = market.functions.nextOfferId().call() - 1
    partial = gas("buy partial (1 of 3 kWh)", market.functions.buy(offer, 1), buyer)
    full = gas("buy rest (2 kWh, closes offer)", market.functions.buy(offer, 2), buyer)
    gas("cancelOffer", market.functions.cancelOffer(1), owner)
    gas("transferMeter", market.functions.transferMeter(meter, buyer), registrar)

    width = max(len(label) for label, _ in rows)
    print(f"{'operation':<{width}}  gas")
    for label, used in rows:
        print(f"{label:<{width}}  {used:>9,}")
    print()
    print(f"per report, mint only:   mean {sum(minted_only) / len(minted_only):>9,.0f}")
    print(f"per report, mint+offer:  mean {sum(with_offer) / len(with_offer):>9,.0f}")
    print(f"per buy: partial {partial:,}, closing {full:,}")
    run.write(
        [
            f"In-process EVM (eth-tester, Paris rules), the recorded artifacts of `contracts/build`; "
            f"means over {args.reports} reports. Gas does not depend on the machine or its load.",
            "",
            "| operation | gas |",
            "|---|---|",
            *(f"| {label} | {used:,} |" for label, used in rows),
            f"| **per report, mint only (mean)** | {sum(minted_only) / len(minted_only):,.0f} |",
            f"| **per report, mint + offer (mean)** | {sum(with_offer) / len(with_offer):,.0f} |",
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
