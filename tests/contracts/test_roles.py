"""Who may do what: the admin is not the deployer, and a leaked deployer key can only register meters."""

from __future__ import annotations

import pytest

from heliogrid_testing.evm import ADMIN_DELAY, TOKEN, Chain, error_data

ADMIN = b"\x00" * 32  # DEFAULT_ADMIN_ROLE


def denied(chain: Chain, contract, account: str, role: bytes) -> bytes:
    return error_data(contract, "AccessControlUnauthorizedAccount", account, role)


def test_roles_are_split_between_admin_registrar_and_market(chain: Chain) -> None:
    market, token = chain.market.functions, chain.token.functions
    admin_roles = [ADMIN, market.TARIFF_ROLE().call(), market.PAUSER_ROLE().call()]
    registrar = market.REGISTRAR_ROLE().call()
    minter = token.MINTER_ROLE().call()
    assert (market.defaultAdmin().call(), token.defaultAdmin().call()) == (chain.admin, chain.admin)
    assert all(market.hasRole(role, chain.admin).call() for role in admin_roles)
    assert not market.hasRole(registrar, chain.admin).call()
    assert market.hasRole(registrar, chain.registrar).call()
    assert not any(market.hasRole(role, chain.registrar).call() for role in admin_roles)
    assert not any(token.hasRole(role, chain.registrar).call() for role in (ADMIN, minter))
    assert token.hasRole(minter, chain.market.address).call()
    everyone_else = (chain.meter, chain.owner, chain.buyer, chain.outsider)
    assert not any(
        market.hasRole(role, account).call() for role in [*admin_roles, registrar] for account in everyone_else
    )
    assert not any(token.hasRole(role, account).call() for role in (ADMIN, minter) for account in everyone_else)


def test_leaked_deployer_key_cannot_grant_minting(chain: Chain) -> None:
    attacker, leaked = chain.outsider, chain.registrar
    minter = chain.token.functions.MINTER_ROLE().call()
    for account in (attacker, leaked):
        chain.reverts(
            chain.token.functions.grantRole(minter, account), leaked, denied(chain, chain.token, leaked, ADMIN)
        )
    chain.reverts(chain.token.functions.mint(attacker, TOKEN), leaked, denied(chain, chain.token, leaked, minter))
    assert not chain.token.functions.hasRole(minter, attacker).call()
    assert chain.token.functions.totalSupply().call() == 0


def test_leaked_deployer_key_cannot_pause_unpause_or_set_the_tariff(chain: Chain) -> None:
    leaked, fns = chain.registrar, chain.market.functions
    pauser, tariff = fns.PAUSER_ROLE().call(), fns.TARIFF_ROLE().call()
    chain.reverts(fns.pause(), leaked, denied(chain, chain.market, leaked, pauser))
    chain.reverts(fns.setTariff(10**24), leaked, denied(chain, chain.market, leaked, tariff))
    chain.reverts(fns.setTolerancePercent(100), leaked, denied(chain, chain.market, leaked, tariff))
    chain.send(fns.pause(), chain.admin)
    chain.reverts(fns.unpause(), leaked, denied(chain, chain.market, leaked, pauser))
    assert fns.paused().call() is True


@pytest.mark.parametrize("role_name", ["REGISTRAR_ROLE", "TARIFF_ROLE", "PAUSER_ROLE"])
def test_leaked_deployer_key_cannot_hand_out_market_roles(chain: Chain, role_name: str) -> None:
    role = getattr(chain.market.functions, role_name)().call()
    leaked = chain.registrar
    chain.reverts(
        chain.market.functions.grantRole(role, chain.outsider), leaked, denied(chain, chain.market, leaked, ADMIN)
    )
    assert not chain.market.functions.hasRole(role, chain.outsider).call()


def test_leaked_deployer_key_cannot_take_the_admin_role(chain: Chain) -> None:
    leaked = chain.registrar
    for contract in (chain.token, chain.market):
        chain.reverts(
            contract.functions.beginDefaultAdminTransfer(leaked), leaked, denied(chain, contract, leaked, ADMIN)
        )
        chain.reverts(
            contract.functions.grantRole(ADMIN, leaked),
            chain.admin,
            error_data(contract, "AccessControlEnforcedDefaultAdminRules"),
        )
        assert contract.functions.defaultAdmin().call() == chain.admin


def test_admin_handover_is_two_step_and_waits_the_delay(chain: Chain) -> None:
    new_admin, market = chain.outsider, chain.market.functions
    assert market.defaultAdminDelay().call() == ADMIN_DELAY
    receipt = chain.send(market.beginDefaultAdminTransfer(new_admin), chain.admin)
    begun = chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert tuple(market.pendingDefaultAdmin().call()) == (new_admin, begun + ADMIN_DELAY)
    chain.at(begun + ADMIN_DELAY - 10)
    chain.reverts(
        market.acceptDefaultAdminTransfer(),
        new_admin,
        error_data(chain.market, "AccessControlEnforcedDefaultAdminDelay", begun + ADMIN_DELAY),
    )
    chain.at(begun + ADMIN_DELAY + 1)
    chain.send(market.acceptDefaultAdminTransfer(), new_admin)
    assert market.defaultAdmin().call() == new_admin
    assert not market.hasRole(ADMIN, chain.admin).call()


def test_admin_rotates_the_registrar_and_the_old_key_is_cut_off(chain: Chain) -> None:
    fns, old, new = chain.market.functions, chain.registrar, chain.outsider
    role = fns.REGISTRAR_ROLE().call()
    chain.send(fns.grantRole(role, new), chain.admin)
    chain.send(fns.revokeRole(role, old), chain.admin)
    chain.reverts(fns.registerMeter(chain.meter, chain.owner, 1000), old, denied(chain, chain.market, old, role))
    chain.send(fns.registerMeter(chain.meter, chain.owner, 1000), new)
    assert fns.getMeter(chain.meter).call()[2] is True
