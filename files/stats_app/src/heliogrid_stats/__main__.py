"""Command line: `heliogrid-stats serve|check-config|index --config /etc/heliogrid-stats/config.toml`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from heliogrid_stats.config import ConfigError, load_config
from heliogrid_stats.deployment import load_deployment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="heliogrid-stats", description=__doc__)
    parser.add_argument(
        "command",
        choices=("serve", "check-config", "index"),
        help="serve: run the web app and indexer; check-config: validate the files and exit; "
        "index: bring the index up to the head once and exit",
    )
    parser.add_argument("--config", type=Path, default=Path("/etc/heliogrid-stats/config.toml"))
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
        deployment = load_deployment(config.contracts_file)
    except ConfigError as exc:
        print(f"heliogrid-stats: {exc}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        print(
            f"config OK: chain {deployment.chain_id}, market {deployment.market_address}, "
            f"listening on {config.listen_host}:{config.listen_port}"
        )
        return 0
    if args.command == "index":
        from heliogrid_stats.api import build_state

        state = build_state(config)
        state.indexer.check_chain()
        state.indexer.run_until_synced()
        print(f"indexed up to block {state.writer.last_indexed()}")
        return 0
    import uvicorn

    from heliogrid_stats.api import create_app, uvicorn_options

    uvicorn.run(create_app(config), **uvicorn_options(config, args.log_level))
    return 0


if __name__ == "__main__":
    sys.exit(main())
