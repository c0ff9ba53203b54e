"""EnergyToken: an ERC-20 whose only source of new tokens is the market."""

from __future__ import annotations

from heliogrid_testing.evm import TOKEN, Chain, error_data


def test_token_has_deployment_name_symbol_and_18_decimals(chain: Chain) -> None:
    token = chain.token.functions
    assert (token.name().call(), token.symbol().call(), token.decimals().call()) == ("Helio kWh", "HKWH", 18)
    assert token.totalSupply().call() == 0


def test_market_is_the_minter(chain: Chain) -> None:
    minter = chain.token.functions.MINTER_ROLE().call()
    assert chain.token.functions.hasRole(minter, chain.market.address).call()
    assert not chain.token.functions.hasRole(minter, chain.admin).call()


def test_account_without_minter_role_cannot_mint(chain: Chain) -> None:
    minter = chain.token.functions.MINTER_ROLE().call()
    for account in (chain.outsider, chain.admin):
        chain.reverts(
            chain.token.functions.mint(account, TOKEN),
            account,
            error_data(chain.token, "AccessControlUnauthorizedAccount", account, minter),
        )
    assert chain.token.functions.totalSupply().call() == 0
