"""Wi-Fi helpers for the first-boot network configuration."""

from __future__ import annotations

import hashlib

from ansible.errors import AnsibleFilterError


def wpa_psk(passphrase: str, ssid: str) -> str:
    """Return the WPA2 pre-shared key (64 hex digits) derived from a passphrase and SSID (IEEE 802.11i)."""
    if not 8 <= len(passphrase) <= 63:
        raise AnsibleFilterError(f"a WPA passphrase has 8 to 63 characters; this one has {len(passphrase)}")
    if not 1 <= len(ssid.encode()) <= 32:
        raise AnsibleFilterError(f"an SSID has 1 to 32 bytes; '{ssid}' has {len(ssid.encode())}")
    return hashlib.pbkdf2_hmac("sha1", passphrase.encode(), ssid.encode(), 4096, 32).hex()


class FilterModule:
    def filters(self) -> dict:
        return {"wpa_psk": wpa_psk}
