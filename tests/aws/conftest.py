"""Fixtures for the AWS provisioning tests: a moto server on loopback and Ansible pointed at it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from heliogrid_testing import processes
from heliogrid_testing.aws import NETWORK, REGION, Ansible, free_port


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """A moto server in its own process on 127.0.0.1 and a free port, stopped after the session."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"moto server did not listen on 127.0.0.1:{port} (exit code {proc.poll()})")
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    processes.stop(proc)


@pytest.fixture(scope="session")
def aws_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch directory: hides ~/.aws and holds the operator's test key pair."""
    return tmp_path_factory.mktemp("aws-home")


@pytest.fixture(scope="session")
def operator_public_key(aws_home: Path) -> Path:
    """An OpenSSH ed25519 public key file, like the one an operator has in ~/.ssh."""
    key = Ed25519PrivateKey.generate().public_key()
    path = aws_home / "id_ed25519.pub"
    openssh = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    path.write_text(openssh.decode() + " operator@test\n")
    return path


@pytest.fixture(scope="session")
def aws_env(moto_url: str, aws_home: Path) -> dict[str, str]:
    """The environment of every Ansible run: dummy credentials, the region, moto as endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "HELIOGRID_", "ANSIBLE_"))}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        AWS_URL=moto_url,
        AWS_CONFIG_FILE=str(aws_home / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(aws_home / "credentials"),
        HELIOGRID_NETWORK=NETWORK,
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_DEPRECATION_WARNINGS="False",
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
    )
    return env


@pytest.fixture(scope="session")
def ansible(aws_env: dict[str, str]) -> Ansible:
    return Ansible(env=aws_env)


@pytest.fixture(scope="session")
def ec2(moto_url: str):
    """A boto3 EC2 client on the moto server, to arrange and to check what the playbooks did."""
    return boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
