"""Configuration and deployment record: bad input is refused with the key, the value and what was expected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from heliogrid_testing.ethstats_credentials import credentials_dir

from heliogrid_stats.__main__ import main
from heliogrid_stats.config import ConfigError, load_config
from heliogrid_stats.deployment import load_deployment


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


BASE = 'contracts_file = "/etc/heliogrid-stats/contracts.json"\ndatabase = "/var/lib/heliogrid-stats/stats.sqlite3"\n'


def test_minimal_config_takes_the_documented_defaults(tmp_path):
    config = load_config(write(tmp_path, BASE))
    assert (config.rpc_url, config.listen_host, config.listen_port) == ("http://127.0.0.1:8545", "127.0.0.1", 8090)
    assert config.signer_source == "clique"
    assert config.ethstats_credentials_dir is None  # no node may report


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('rpc_url = "127.0.0.1:8545"', "rpc_url: expected an http(s) URL"),
        ("listen_port = 70000", "listen_port: expected 1..65535, got 70000"),
        ('signer_source = "miner"', "signer_source: expected one of clique, coinbase, got 'miner'"),
        ("poll_interval = 0", "poll_interval: expected a positive number, got 0"),
        ('batch_size = "200"', "batch_size: expected int, got '200'"),
        ("confirmations = -1", "confirmations: expected 0 or more, got -1"),
        ("block_time_window = 20000", "block_time_window: expected less than block_history"),
        ("colour = 1", "unknown keys colour"),
    ],
)
def test_bad_value_is_refused_naming_key_value_and_expectation(tmp_path, line, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(write(tmp_path, BASE + line + "\n"))


def test_missing_required_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match="missing required key 'database'"):
        load_config(write(tmp_path, 'contracts_file = "/x.json"\n'))


def test_credentials_directory_is_taken_when_only_its_owner_may_write_it(tmp_path):
    credentials = credentials_dir(tmp_path / "ethstats.d")
    config = load_config(write(tmp_path, BASE + f'ethstats_credentials_dir = "{credentials}"\n'))
    assert config.ethstats_credentials_dir == credentials


@pytest.mark.parametrize(("mode", "shown"), [(0o770, "drwxrwx---"), (0o757, "drwxr-xrwx")])
def test_credentials_directory_others_may_write_is_refused_at_start(tmp_path, contracts_file, capsys, mode, shown):
    credentials = credentials_dir(tmp_path / "ethstats.d", ("pi-1",))
    credentials.chmod(mode)
    text = f'contracts_file = "{contracts_file}"\ndatabase = "{tmp_path / "db"}"\n'
    config = write(tmp_path, text + f'ethstats_credentials_dir = "{credentials}"\n')
    with pytest.raises(ConfigError, match=f"ethstats_credentials_dir: {credentials} has mode {shown}, expected"):
        load_config(config)
    assert main(["check-config", "--config", str(config)]) == 2  # as `serve` does before it listens
    assert "only its owner may write" in capsys.readouterr().err


def test_missing_credentials_directory_is_refused_at_start(tmp_path):
    missing = tmp_path / "ethstats.d"
    with pytest.raises(ConfigError, match=f"ethstats_credentials_dir: cannot use {missing}: No such file"):
        load_config(write(tmp_path, BASE + f'ethstats_credentials_dir = "{missing}"\n'))


def test_shared_secret_of_earlier_releases_is_no_longer_a_key(tmp_path):
    with pytest.raises(ConfigError, match="unknown keys ethstats_secret_file"):
        load_config(write(tmp_path, BASE + 'ethstats_secret_file = "/etc/heliogrid-stats/ethstats.secret"\n'))


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"chainId": 0, "market": {"address": "0x" + "11" * 20, "abi": [{"type": "event"}]}}, "chainId"),
        ({"chainId": 5, "market": {"address": "0x12", "abi": [{"type": "event"}]}}, "market.address"),
        ({"chainId": 5, "market": {"address": "0x" + "11" * 20, "abi": []}}, "market.abi"),
        (
            {"chainId": 5, "market": {"address": "0x" + "11" * 20, "abi": [{"type": "event"}], "block": -3}},
            "market.block",
        ),
        ({"token": {}}, "expected an object with a 'market' object"),
    ],
)
def test_malformed_deployment_record_is_refused(tmp_path, record, message):
    path = tmp_path / "contracts.json"
    path.write_text(json.dumps(record))
    with pytest.raises(ConfigError, match=message):
        load_deployment(path)


def test_check_config_command_validates_both_files(tmp_path, contracts_file, capsys):
    config = write(tmp_path, f'contracts_file = "{contracts_file}"\ndatabase = "{tmp_path / "db"}"\n')
    assert main(["check-config", "--config", str(config)]) == 0
    assert "config OK" in capsys.readouterr().out
    bad = write(tmp_path, f'contracts_file = "{tmp_path / "nope.json"}"\ndatabase = "{tmp_path / "db"}"\n')
    assert main(["check-config", "--config", str(bad)]) == 2
    assert "nope.json" in capsys.readouterr().err


def test_index_refuses_a_node_of_another_chain(tmp_path, market, w3):
    from heliogrid_stats.chain import ChainReader
    from heliogrid_stats.deployment import Deployment
    from heliogrid_stats.indexer import ChainMismatchError, Indexer
    from heliogrid_stats.store import Store

    record = market.record["market"]
    wrong = Deployment(w3.eth.chain_id + 1, record["address"], record["abi"], record["block"])
    indexer = Indexer(ChainReader(w3, "coinbase"), Store(tmp_path / "db.sqlite3"), wrong)
    with pytest.raises(ChainMismatchError, match=f"serves chain id {w3.eth.chain_id}, expected {w3.eth.chain_id + 1}"):
        indexer.check_chain()
