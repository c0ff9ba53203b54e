from __future__ import annotations

import json
import stat

import pytest
from eth_account import Account
from eth_utils import to_checksum_address

from heliogrid_agent.cli import main
from heliogrid_agent.keys import KeystoreError, checksum_address, create_keystore, keystore_address, load_account


def test_keygen_creates_a_light_scrypt_keystore_and_a_private_password(tmp_path):
    keystore, password = tmp_path / "k" / "keystore.json", tmp_path / "password"
    address, created = create_keystore(keystore, password, scrypt_n=2**10)
    assert created
    params = json.loads(keystore.read_text())["crypto"]["kdfparams"]
    assert params["n"] == 2**10
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600
    assert stat.S_IMODE(password.stat().st_mode) == 0o600
    assert load_account(keystore, password).address == address == keystore_address(keystore)


def test_keygen_keeps_an_existing_keystore(tmp_path):
    keystore, password = tmp_path / "keystore.json", tmp_path / "password"
    first, _ = create_keystore(keystore, password, scrypt_n=2**10)
    again, created = create_keystore(keystore, password, scrypt_n=2**10)
    assert (again, created) == (first, False)


def test_password_file_readable_by_others_is_refused(tmp_path):
    keystore, password = tmp_path / "keystore.json", tmp_path / "password"
    create_keystore(keystore, password, scrypt_n=2**10)
    password.chmod(0o644)
    with pytest.raises(KeystoreError, match=r"password file .* has mode 0644; expected 0600"):
        load_account(keystore, password)


def test_wrong_password_is_a_clear_error(tmp_path):
    keystore, password = tmp_path / "keystore.json", tmp_path / "password"
    create_keystore(keystore, password, scrypt_n=2**10)
    password.write_text("not it\n")
    with pytest.raises(KeystoreError, match=r"cannot decrypt keystore"):
        load_account(keystore, password)


def test_scrypt_n_must_be_a_power_of_two(tmp_path):
    with pytest.raises(KeystoreError, match=r"scrypt n = 1000 must be a power of two"):
        create_keystore(tmp_path / "k.json", tmp_path / "p", scrypt_n=1000)


def test_cli_keygen_then_address_print_the_same_account_and_no_secret(tmp_path, capsys):
    keystore, password = tmp_path / "keystore.json", tmp_path / "password"
    assert main(["keygen", "--keystore", str(keystore), "--password-file", str(password), "--scrypt-n", "1024"]) == 0
    created = capsys.readouterr().out.split()
    assert created[0] == "created"
    assert main(["address", "--keystore", str(keystore)]) == 0
    assert capsys.readouterr().out.strip() == created[1]
    assert password.read_text().strip() not in " ".join(created)


def test_cli_check_config_reports_errors_with_exit_status_2(tmp_path, capsys):
    config = tmp_path / "agent.toml"
    config.write_text('[meter]\nsensor = "s0"\ncapacity_watts = 1000\n[sensor.s0]\npin = 99\n')
    assert main(["-c", str(config), "check-config"]) == 2
    assert "sensor.s0.pin = 99 is not a GPIO pin" in capsys.readouterr().err


def test_checksum_address_is_eip55_and_refuses_what_is_not_an_address():
    # EIP-55's own examples, then random accounts against eth_utils
    for example in ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"):
        assert checksum_address(example.lower()) == example
    for _ in range(50):
        address = Account.create().address
        assert checksum_address(address.lower().removeprefix("0x")) == to_checksum_address(address) == address
    for bad in ("0x1234", "0x" + "g" * 40, "0x" + "a" * 41, ""):
        with pytest.raises(ValueError, match="is not 20 bytes of hex"):
            checksum_address(bad)


def test_address_of_a_keystore_without_an_address_is_a_clear_error(tmp_path):
    keystore = tmp_path / "keystore.json"
    keystore.write_text('{"address": "0xnot-hex"}')
    with pytest.raises(KeystoreError, match="not a keystore JSON with an address"):
        keystore_address(keystore)
    keystore.write_text('{"crypto": {}}')
    with pytest.raises(KeystoreError, match="not a keystore JSON with an address"):
        keystore_address(keystore)
