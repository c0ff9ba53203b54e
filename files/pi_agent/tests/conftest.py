from __future__ import annotations

import pytest
from eth_account import Account
from gpiozero import Device
from gpiozero.pins.mock import MockFactory
from heliogrid_testing.fakechain import FakeChain

from heliogrid_agent.clock import FakeClock


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
