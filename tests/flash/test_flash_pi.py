"""playbooks/flash_pi.yml against loop devices standing in for SD cards (needs root: losetup, mount)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from heliogrid_testing.flash import (
    ADMIN_KEY,
    BOOT_OFFSET,
    CARD_BYTES,
    IMAGE_BYTES,
    ROOT_OFFSET,
    LoopCard,
    PlayResult,
    loop_cards,
    needs_root,
    player,
    run,
    write_inventory,
)

pytestmark = [needs_root, pytest.mark.slow]

WIFI = {
    "pi_firstboot_wifi_ssid": "Solar Street: 5",
    "pi_firstboot_wifi_passphrase": "sun-shines-on-7-roofs",
    "pi_firstboot_wifi_country": "DE",
}


def card_vars(images, image_server, card: LoopCard, kind: str = "xz", **extra) -> dict:
    image = images[kind]
    return {
        "pi_image_url": image.url(image_server),
        "pi_image_sha256": image.sha256,
        "pi_flash_device": card.device,
        "pi_flash_allow_non_removable": True,
        "pi_flash_confirm": True,
        **extra,
    }


def boot_file(card: LoopCard, name: str) -> str:
    return run(
        "mtype", "-i", f"{card.device}@@{BOOT_OFFSET}", f"::/{name}", env={**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    ).stdout


BOOT_FILES = ("user-data", "network-config", "meta-data", "ssh", "config.txt")


@dataclass
class Flashed:
    """A card flashed once for the module, and what it and the Pi's cached image held right after that play."""

    card: LoopCard
    extra: dict
    play: Callable[..., PlayResult]
    result: PlayResult
    written: bytes  # the card's first IMAGE_BYTES
    boot: dict[str, str | None]  # boot partition files (None: missing)
    host_image: Path
    host_image_sha256: str
    host_image_mode: int
    host_image_dir_mode: int


@pytest.fixture(scope="module")
def flashed(images, image_server, tmp_path_factory) -> Iterator[Flashed]:
    """One full flash (Wi-Fi and a time zone) that the content test reads and the re-run test starts from: the
    re-run test's first play was this same play, so it is run once."""
    workdir = tmp_path_factory.mktemp("flashed")
    with loop_cards(workdir) as make_card:
        card = make_card()
        play = player(workdir, write_inventory(workdir))
        extra = card_vars(images, image_server, card, pi_firstboot_timezone="Europe/Berlin", **WIFI)
        result = play(extra)
        assert result.rc == 0, result.output
        host_image = next((workdir / "cache").glob("*/hosts/hgtest-pi.img"))
        boot: dict[str, str | None] = {}
        for name in BOOT_FILES:
            try:
                boot[name] = boot_file(card, name)
            except subprocess.CalledProcessError:
                boot[name] = None
        yield Flashed(
            card=card,
            extra=extra,
            play=play,
            result=result,
            written=card.read(IMAGE_BYTES),
            boot=boot,
            host_image=host_image,
            host_image_sha256=hashlib.sha256(host_image.read_bytes()).hexdigest(),
            host_image_mode=host_image.stat().st_mode,
            host_image_dir_mode=host_image.parent.stat().st_mode,
        )


def test_flash_writes_image_and_cloud_init_seed_without_leaking_passphrase(images, flashed: Flashed):
    base = images["xz"].raw.read_bytes()
    written = flashed.written
    assert written[:BOOT_OFFSET] == base[:BOOT_OFFSET], "partition table region differs from the image"
    assert written[ROOT_OFFSET:] == base[ROOT_OFFSET:], "root partition differs from the image"
    assert hashlib.sha256(written).hexdigest() == flashed.host_image_sha256
    assert flashed.host_image_mode & 0o777 == 0o600
    assert flashed.host_image_dir_mode & 0o777 == 0o700

    user_data = flashed.boot["user-data"]
    assert user_data is not None
    assert user_data.startswith("#cloud-config\n")
    ud = yaml.safe_load(user_data)
    assert ud["hostname"] == "hgtest-pi"
    assert ud["timezone"] == "Europe/Berlin"
    assert ud["ssh_pwauth"] is False
    assert ud["enable_ssh"] is True
    (admin,) = ud["users"]
    assert admin["name"] == "ops"
    assert admin["lock_passwd"] is True
    assert admin["ssh_authorized_keys"] == [ADMIN_KEY]
    assert "passwd" not in admin
    assert "plain_text_passwd" not in admin

    net = yaml.safe_load(flashed.boot["network-config"] or "")["network"]
    assert net["version"] == 2
    assert net["ethernets"]["eth0"]["dhcp4"] is True
    wlan = net["wifis"]["wlan0"]
    assert wlan["regulatory-domain"] == "DE"
    ap = wlan["access-points"]["Solar Street: 5"]
    expected_psk = hashlib.pbkdf2_hmac(
        "sha1", WIFI["pi_firstboot_wifi_passphrase"].encode(), WIFI["pi_firstboot_wifi_ssid"].encode(), 4096, 32
    ).hex()
    assert ap["password"] == expected_psk

    meta = yaml.safe_load(flashed.boot["meta-data"] or "")
    assert meta["instance-id"] == "iid-heliogrid-hgtest-pi"
    assert meta["local-hostname"] == "hgtest-pi"
    assert flashed.boot["ssh"] == ""
    assert flashed.boot["config.txt"] == "# test config.txt\narm_64bit=1\n"

    secret = WIFI["pi_firstboot_wifi_passphrase"]
    assert secret not in flashed.result.output, "the Wi-Fi passphrase was logged"
    assert secret.encode() not in written, "the Wi-Fi passphrase was written to the card in clear"


def test_rerun_changes_nothing_until_a_setting_changes(flashed: Flashed):
    card, extra, flash = flashed.card, flashed.extra, flashed.play
    before = card.read(IMAGE_BYTES)
    assert before == flashed.written  # the first play of this test is the fixture's

    again = flash({**extra, "pi_flash_confirm": False})  # no confirmation needed when nothing is erased
    assert again.rc == 0, again.output
    assert again.recap["changed"] == 0, again.output
    checked = flash(extra, check=True)
    assert checked.rc == 0, checked.output
    assert checked.recap["changed"] == 0, checked.output
    assert card.read(IMAGE_BYTES) == before

    moved = flash({**extra, "pi_firstboot_timezone": "Europe/Madrid"})
    assert moved.rc == 0, moved.output
    assert moved.recap["changed"] >= 2, moved.output  # the Pi's image, then the card
    assert yaml.safe_load(boot_file(card, "user-data"))["timezone"] == "Europe/Madrid"


def test_plain_img_without_ssid_configures_ethernet_only_and_the_oversize_override_allows_a_large_card(
    images, image_server, make_card, flash
):
    card = make_card()  # CARD_BYTES, above the 100 MB limit below
    result = flash(
        card_vars(
            images, image_server, card, kind="img", pi_flash_max_device_size="100 MB", pi_flash_allow_oversize=True
        )
    )
    assert result.rc == 0, result.output
    assert not card.untouched()
    assert card.read(IMAGE_BYTES)[ROOT_OFFSET:] == images["img"].raw.read_bytes()[ROOT_OFFSET:]
    net = yaml.safe_load(boot_file(card, "network-config"))["network"]
    assert net["ethernets"]["eth0"]["dhcp4"] is True
    assert "wifis" not in net


# --- refusals: each leaves the card exactly as it was -------------------------------------------------------


def refused(result, card: LoopCard, *phrases: str) -> None:
    assert result.rc != 0, result.output
    for phrase in phrases:
        assert phrase in result.output, result.output
    assert card.untouched(), "the card was written although the play refused"


def test_refuses_image_without_checksum(images, image_server, make_card, flash):
    card = make_card()
    result = flash(card_vars(images, image_server, card, pi_image_sha256=""))
    refused(result, card, "Refusing to download an image whose checksum was not given")


def test_refuses_image_with_wrong_checksum(images, image_server, make_card, flash, tmp_path):
    card = make_card()
    result = flash(card_vars(images, image_server, card, pi_image_sha256="0" * 64))
    refused(result, card, "did not match")
    assert not list((tmp_path / "cache").glob("*/image.img*")), "a file failing its checksum was kept in the cache"


def test_refuses_mounted_device(images, image_server, make_card, flash, tmp_path):
    card = make_card()
    run("mkfs.ext4", "-q", "-F", card.device)
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    run("mount", card.device, mountpoint)
    make_card.mounts.append(mountpoint)
    # The mounted ext4 keeps writing its own metadata, so compare only what the image would have put there.
    image = images["xz"].raw.read_bytes()
    result = flash(card_vars(images, image_server, card))
    assert result.rc != 0, result.output
    assert f"{card.device} is mounted" in result.output, result.output
    assert card.read(512) != image[:512], "the image's partition table was written"
    assert card.read(512, BOOT_OFFSET) != image[BOOT_OFFSET : BOOT_OFFSET + 512], "the image's boot sector was written"


def test_refuses_device_holding_root_filesystem(images, image_server, make_card, flash, tmp_path):
    card = make_card()
    fake_mounts = tmp_path / "mounts"
    fake_mounts.write_text(f"{card.device}p2 / ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\n")
    result = flash(card_vars(images, image_server, card, pi_flash_mounts_file=str(fake_mounts)))
    refused(result, card, "holds the root file system")


def test_refuses_this_machines_real_root_disk(images, image_server, flash, inventory):
    root_source = run("findmnt", "-n", "-o", "SOURCE", "/").stdout.strip()
    if not root_source.startswith("/dev/"):
        pytest.skip(f"/ is not on a block device here ({root_source})")
    disk = run("lsblk", "-n", "-s", "-o", "PATH,TYPE", root_source).stdout.split("\n")
    disks = [line.split()[0] for line in disk if line.split()[-1:] == ["disk"]]
    target = disks[0] if disks else root_source
    image = images["xz"]
    # Check mode and no confirmation: even a broken check could not write to this machine's disk.
    result = flash(
        {"pi_image_url": image.url(image_server), "pi_image_sha256": image.sha256, "pi_flash_device": target},
        check=True,
    )
    assert result.rc != 0, result.output
    assert "holds the root file system" in result.output, result.output


def test_refuses_partition_instead_of_whole_disk(images, image_server, make_card, flash):
    source = make_card(content=images["img"].raw, size=IMAGE_BYTES, partscan=True)
    if not source.partitions:
        pytest.skip("the kernel made no partition devices for the loop device")
    partition = source.partitions[0]
    before = Path(partition).read_bytes()[: 1 << 20]
    result = flash(card_vars(images, image_server, source, pi_flash_device=partition))
    assert result.rc != 0, result.output
    assert "is a part, not a whole disk" in result.output, result.output
    assert Path(partition).read_bytes()[: 1 << 20] == before


def test_refuses_non_removable_device_without_override(images, image_server, make_card, flash):
    card = make_card()
    result = flash(card_vars(images, image_server, card, pi_flash_allow_non_removable=False))
    refused(result, card, "is not a removable device", "pi_flash_allow_non_removable=true")


def test_refuses_device_larger_than_limit(images, image_server, make_card, flash):
    card = make_card()
    result = flash(card_vars(images, image_server, card, pi_flash_max_device_size="100 MB"))
    refused(result, card, f"is {CARD_BYTES} bytes", "larger than pi_flash_max_device_size")


def test_refuses_to_erase_without_confirmation_and_terminal(images, image_server, make_card, flash):
    card = make_card()
    result = flash(card_vars(images, image_server, card, pi_flash_confirm=False))
    refused(result, card, "no interactive terminal", "Nothing was written")


def test_refuses_image_without_cloud_init_seed(images, image_server, make_card, flash):
    card = make_card()
    result = flash(card_vars(images, image_server, card, kind="old"))
    refused(result, card, "has no cloud-init 'meta-data'", "firstrun.sh")


def test_refuses_to_flash_several_pis_at_once(images, image_server, make_card, flash, inventory):
    card = make_card()
    extra = card_vars(images, image_server, card)
    vars_file = inventory.parent / "several.json"
    vars_file.write_text(__import__("json").dumps(extra))
    two = inventory.parent / "two.yml"
    two.write_text("all:\n  children:\n    pis:\n      hosts:\n        pia: {}\n        pib: {}\n")
    from heliogrid_testing.flash import REPO, ansible_playbook

    proc = subprocess.run(
        [ansible_playbook(), "-i", str(two), "-e", f"@{vars_file}", str(REPO / "playbooks" / "flash_pi.yml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "one card for one Pi" in output, output
    assert card.untouched()
