from __future__ import annotations

import sys
from pathlib import Path

import pytest
from eth_account import Account
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from heliogrid_agent.clock import FakeClock

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]  # files/pi_agent/tests -> the HelioGrid repository
for path in (HERE, REPO):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from fakechain import FakeChain  # noqa: E402


@pytest.fixture
def mock_factory():
    factory = MockFactory()
    previous = Device.pin_factory
    Device.pin_factory = factory
    yield factory
    factory.reset()
    Device.pin_factory = previous


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def account():
    return Account.from_key("0x" + "11" * 32)


@pytest.fixture
def fake_chain(clock, account) -> FakeChain:
    chain = FakeChain(clock)
    chain.register(account.address, owner="0x" + "22" * 20, capacity_watts=4000)
    return chain
