// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";

/// @title HelioGrid energy token
/// @notice ERC-20 (18 decimals) credited for sold solar energy. Only holders of MINTER_ROLE
/// (the EnergyMarket) create tokens; name and symbol are chosen at deployment.
/// @dev The admin (DEFAULT_ADMIN_ROLE) is one address, handed over in two steps with a delay
/// (AccessControlDefaultAdminRules); the deployer holds no role. The minter is named at construction
/// because the deployer cannot grant it later: the deploy passes the market's address-to-be.
contract EnergyToken is ERC20, AccessControlDefaultAdminRules {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @notice The minter given at construction was the zero address.
    error InvalidMinter(address minter);

    constructor(string memory name_, string memory symbol_, address admin, uint48 adminDelay, address minter)
        ERC20(name_, symbol_)
        AccessControlDefaultAdminRules(adminDelay, admin)
    {
        if (minter == address(0)) revert InvalidMinter(minter);
        _grantRole(MINTER_ROLE, minter);
    }

    /// @notice Create `amount` base units for `to`; the market calls this for credited kWh.
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }
}
