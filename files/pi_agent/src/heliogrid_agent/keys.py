"""The Pi's own account: an encrypted keystore plus a password file, both 0600.

The role creates them on the Pi (``heliogrid-agent keygen``) with light scrypt parameters: the default
n=2**18 needs 256 MiB and seconds of CPU per unlock, too much for a small Pi.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

LIGHT_SCRYPT_N = 2**14


class KeystoreError(ValueError):
    """The keystore or its password file is missing, too open, or does not decrypt."""


def _check_private(path: Path, what: str) -> None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeystoreError(f"{what} {path} does not exist") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeystoreError(
            f"{what} {path} has mode {stat.S_IMODE(mode):04o}; expected 0600 (no access for group or others)"
        )


def read_password(password_file: str | Path) -> str:
    path = Path(password_file)
    _check_private(path, "password file")
    # Trailing newlines are not part of the password (geth's --password reads lines the same way).
    return path.read_text(encoding="utf-8").rstrip("\r\n")


def checksum_address(address: str) -> str:
    """EIP-55 mixed-case form of a 20-byte hex address (0x optional), with keccak from pycryptodome alone: eth_utils'
    import takes seconds on a Pi's first run under emulation, and `heliogrid-agent address` runs on every site.yml."""
    from Crypto.Hash import keccak

    digits = address.removeprefix("0x").removeprefix("0X").lower()
    if len(digits) != 40 or any(c not in "0123456789abcdef" for c in digits):
        raise ValueError(f"{address!r} is not 20 bytes of hex")
    digest = keccak.new(digest_bits=256, data=digits.encode("ascii")).hexdigest()
    return "0x" + "".join(c.upper() if int(d, 16) >= 8 else c for c, d in zip(digits, digest, strict=False))


def keystore_address(keystore: str | Path) -> str:
    """The account's address, read from the keystore without decrypting it."""
    try:
        data = json.loads(Path(keystore).read_text(encoding="utf-8"))
        return checksum_address(data["address"])
    except FileNotFoundError:
        raise KeystoreError(f"keystore {keystore} does not exist") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeystoreError(f"keystore {keystore} is not a keystore JSON with an address: {exc}") from None


def load_account(keystore: str | Path, password_file: str | Path) -> Any:
    """Decrypt the keystore; returns an eth_account LocalAccount."""
    from eth_account import Account

    keystore = Path(keystore)
    _check_private(keystore, "keystore")
    password = read_password(password_file)
    try:
        key = Account.decrypt(keystore.read_text(encoding="utf-8"), password)
    except ValueError as exc:
        raise KeystoreError(f"cannot decrypt keystore {keystore} with the password in {password_file}: {exc}") from None
    return Account.from_key(key)


def _write_private(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(content)
        fh.flush()
        os.fsync(fh.fileno())


def create_keystore(
    keystore: str | Path, password_file: str | Path, scrypt_n: int = LIGHT_SCRYPT_N
) -> tuple[str, bool]:
    """Create the key pair unless the keystore exists. Returns (address, created).

    A missing password file is created with a random password; an existing one is used as it is.
    """
    from eth_account import Account

    keystore, password_file = Path(keystore), Path(password_file)
    if keystore.exists():
        return keystore_address(keystore), False
    if scrypt_n < 2 or scrypt_n & (scrypt_n - 1):
        raise KeystoreError(f"scrypt n = {scrypt_n} must be a power of two (e.g. 16384)")
    if not password_file.exists():
        _write_private(password_file, secrets.token_urlsafe(32) + "\n")
    password = read_password(password_file)
    account = Account.create()
    encrypted = Account.encrypt(account.key, password, kdf="scrypt", iterations=scrypt_n)
    _write_private(keystore, json.dumps(encrypted))
    return account.address, True
