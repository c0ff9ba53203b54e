"""The rules deciding whether a device may be erased, and the Wi-Fi key derivation (no root needed)."""

from __future__ import annotations

import pytest

from heliogrid_testing.plugins import plugin

checks = plugin("roles/pi_flash/filter_plugins/device_checks.py")
wifi = plugin("roles/pi_firstboot/filter_plugins/wifi.py")
GB = 10**9
POLICY = checks.DevicePolicy(max_bytes=256 * GB)


def card(**overrides) -> dict:
    device = {
        "name": "sdb",
        "path": "/dev/sdb",
        "type": "disk",
        "size": 32 * GB,
        "rm": True,
        "hotplug": True,
        "mountpoints": [None],
        "pkname": None,
        "children": [
            {
                "name": "sdb1",
                "path": "/dev/sdb1",
                "type": "part",
                "size": GB,
                "rm": True,
                "mountpoints": [None],
                "pkname": "sdb",
            }
        ],
    }
    device.update(overrides)
    return {"blockdevices": [device]}


def test_unmounted_removable_card_may_be_erased():
    assert checks.device_problems(card(), "/dev/vda1 / ext4 rw 0 0\n", POLICY) == []


def test_partition_is_refused_naming_its_disk():
    lsblk = {
        "blockdevices": [
            {
                "name": "sdb1",
                "path": "/dev/sdb1",
                "type": "part",
                "size": GB,
                "rm": True,
                "mountpoints": [None],
                "pkname": "sdb",
            }
        ]
    }
    (problem,) = checks.device_problems(lsblk, "", POLICY)
    assert "/dev/sdb1 is a part, not a whole disk (its disk is /dev/sdb)" in problem


def test_mounted_partition_is_refused():
    lsblk = card()
    lsblk["blockdevices"][0]["children"][0]["mountpoints"] = ["/media/ops/bootfs"]
    (problem,) = checks.device_problems(lsblk, "", POLICY)
    assert "/dev/sdb1 on /media/ops/bootfs" in problem


def test_mount_seen_only_in_mount_table_is_refused():
    (problem,) = checks.device_problems(card(), "/dev/sdb2 /mnt/x vfat rw 0 0\n", POLICY)
    assert "/dev/sdb2 on /mnt/x" in problem


def test_root_on_lvm_inside_the_disk_is_refused():
    lsblk = card(rm=False, hotplug=False, size=500 * GB)
    lsblk["blockdevices"][0]["children"][0]["children"] = [
        {"name": "vg-root", "path": "/dev/mapper/vg-root", "type": "lvm", "size": GB, "mountpoints": ["/"]}
    ]
    problems = checks.device_problems(lsblk, "", checks.DevicePolicy(256 * GB, True, True))
    assert problems == [
        "/dev/sdb holds the root file system (/ is mounted from /dev/mapper/vg-root): this is the "
        "computer's own disk, never an SD card to erase"
    ]


def test_root_is_refused_even_with_every_override():
    policy = checks.DevicePolicy(max_bytes=1, allow_non_removable=True, allow_oversize=True)
    problems = checks.device_problems(card(), "/dev/sdb2 / ext4 rw 0 0\n", policy)
    assert any("holds the root file system" in p for p in problems)


def test_escaped_mount_points_are_decoded():
    (problem,) = checks.device_problems(card(), "/dev/sdb1 /media/My\\040Card vfat rw 0 0\n", POLICY)
    assert "/media/My Card" in problem


@pytest.mark.parametrize("flag", ["rm", "hotplug"])
def test_either_removable_or_hotplug_counts_as_removable(flag):
    other = "hotplug" if flag == "rm" else "rm"
    assert checks.device_problems(card(**{flag: True, other: False}), "", POLICY) == []


def test_fixed_disk_is_refused_unless_allowed():
    fixed = card(rm=False, hotplug=False)
    (problem,) = checks.device_problems(fixed, "", POLICY)
    assert "not a removable device" in problem
    assert checks.device_problems(fixed, "", checks.DevicePolicy(256 * GB, allow_non_removable=True)) == []


def test_oversize_disk_is_refused_unless_allowed():
    big = card(size=300 * GB)
    (problem,) = checks.device_problems(big, "", POLICY)
    assert "300000000000 bytes (300.0 GB), larger than pi_flash_max_device_size" in problem
    assert checks.device_problems(big, "", checks.DevicePolicy(256 * GB, allow_oversize=True)) == []


def test_empty_reader_is_refused():
    (problem,) = checks.device_problems(card(size=0), "", POLICY)
    assert "size 0" in problem


def test_wpa_psk_matches_ieee_802_11i_test_vector():
    assert wifi.wpa_psk("password", "IEEE") == "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"


@pytest.mark.parametrize("passphrase", ["short", "x" * 64])
def test_wpa_psk_rejects_passphrase_of_wrong_length(passphrase):
    with pytest.raises(Exception, match="8 to 63 characters"):
        wifi.wpa_psk(passphrase, "ssid")
