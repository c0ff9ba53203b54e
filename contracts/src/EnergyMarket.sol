// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EnergyToken} from "./EnergyToken.sol";

/// @title HelioGrid meter registry, production reports and energy market
/// @notice Units: power in watts (W), cumulative meter totals in watt-hours (Wh), credited, offered
/// and bought energy in whole kilowatt-hours (kWh); tariff and prices in token base units per kWh.
/// The contract surface is described in contracts/INTERFACE.md.
/// @dev Roles: the admin (one address, handed over in two steps with a delay) holds DEFAULT_ADMIN_ROLE,
/// TARIFF_ROLE and PAUSER_ROLE; the registrar (the deployer's automation key) holds REGISTRAR_ROLE only.
contract EnergyMarket is AccessControlDefaultAdminRules, Pausable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    bytes32 public constant TARIFF_ROLE = keccak256("TARIFF_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @notice Highest accepted tolerance: a meter may never report more than twice its capacity.
    uint16 public constant MAX_TOLERANCE_PERCENT = 100;
    /// @notice Highest accepted tariff: one million tokens per kWh. Far above any real tariff, and low enough
    /// that `kWh * tariff` can never overflow (kWh fit 128 bits).
    uint256 public constant MAX_TARIFF = 1e24;

    struct Meter {
        address owner;
        uint32 capacityWatts;
        bool active;
        uint64 registeredAt;
        uint64 lastReportAt;
        uint256 totalWh;
        uint256 creditedKWh;
    }

    struct Offer {
        address seller;
        address meter;
        uint256 remainingKWh;
        uint256 pricePerKWh;
        bool open;
    }

    // Storage layouts packed tighter than the public structs: a report or a purchase then writes
    // fewer slots (each fresh slot costs 20k gas, and meters report often).
    struct MeterRecord {
        address owner;
        uint32 capacityWatts;
        bool active;
        uint64 registeredAt;
        uint64 lastReportAt;
        uint128 totalWh;
        uint256 creditedKWh;
    }

    struct OfferRecord {
        address seller;
        bool open;
        address meter;
        uint96 remainingKWh;
        uint256 pricePerKWh;
    }

    EnergyToken public immutable token;
    /// @notice The most elapsed time one report may count: a meter silent for longer is credited at most
    /// this window's worth of capacity.
    uint32 public immutable maxReportSeconds;
    uint256 public tariff;
    uint16 public tolerancePercent;
    uint256 public nextOfferId = 1;
    mapping(address buyer => uint256 kWh) public purchasedKWh;
    mapping(address owner => uint256 price) public askPrice;

    mapping(address meter => MeterRecord) private _meters;
    mapping(uint256 offerId => OfferRecord) private _offers;

    event MeterRegistered(address indexed meter, address indexed owner, uint32 capacityWatts);
    event MeterDeactivated(address indexed meter);
    event MeterOwnerChanged(address indexed meter, address indexed previousOwner, address indexed newOwner);
    event ProductionReported(
        address indexed meter, address indexed owner, uint256 totalWh, uint256 creditedKWh, uint256 tokensMinted
    );
    event OfferCreated(
        uint256 indexed offerId, address indexed seller, address indexed meter, uint256 kWh, uint256 pricePerKWh
    );
    event EnergyPurchased(
        uint256 indexed offerId, address indexed buyer, address indexed seller, uint256 kWh, uint256 cost
    );
    event OfferCancelled(uint256 indexed offerId);
    event AskPriceChanged(address indexed owner, uint256 pricePerKWh);
    event TariffChanged(uint256 tariff);
    event ToleranceChanged(uint16 tolerancePercent);

    error InvalidToken(address token);
    error InvalidRegistrar(address registrar);
    error InvalidReportWindow(uint32 maxReportSeconds);
    error TariffTooHigh(uint256 tariff, uint256 maxTariff);
    error InvalidMeterAddress(address meter);
    error InvalidOwnerAddress(address owner);
    error ZeroCapacity(address meter);
    error MeterAlreadyRegistered(address meter);
    error MeterNotRegistered(address meter);
    error MeterNotActive(address meter);
    error TotalDecreased(uint256 previous, uint256 reported);
    error NoIncrease(uint256 total);
    error ExceedsCapacity(uint256 increaseWh, uint256 maxIncreaseWh);
    error ToleranceTooHigh(uint16 tolerancePercent, uint16 maxTolerancePercent);
    error OfferNotFound(uint256 offerId);
    error OfferNotOpen(uint256 offerId);
    error ZeroKWh();
    error InsufficientOffer(uint256 offerId, uint256 requestedKWh, uint256 remainingKWh);
    error NotOfferSeller(uint256 offerId, address caller);

    constructor(
        EnergyToken token_,
        address admin,
        uint48 adminDelay,
        address registrar,
        uint256 tariff_,
        uint16 tolerancePercent_,
        uint32 maxReportSeconds_
    ) AccessControlDefaultAdminRules(adminDelay, admin) {
        if (address(token_) == address(0)) revert InvalidToken(address(token_));
        if (registrar == address(0)) revert InvalidRegistrar(registrar);
        if (maxReportSeconds_ == 0) revert InvalidReportWindow(maxReportSeconds_);
        token = token_;
        maxReportSeconds = maxReportSeconds_;
        _grantRole(REGISTRAR_ROLE, registrar);
        _grantRole(TARIFF_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _setTariff(tariff_);
        _setTolerancePercent(tolerancePercent_);
    }

    // ---------------------------------------------------------------- views

    function getMeter(address meter) external view returns (Meter memory) {
        MeterRecord storage m = _meters[meter];
        return Meter({
            owner: m.owner,
            capacityWatts: m.capacityWatts,
            active: m.active,
            registeredAt: m.registeredAt,
            lastReportAt: m.lastReportAt,
            totalWh: m.totalWh,
            creditedKWh: m.creditedKWh
        });
    }

    function getOffer(uint256 offerId) external view returns (Offer memory) {
        OfferRecord storage o = _offers[offerId];
        return Offer({
            seller: o.seller, meter: o.meter, remainingKWh: o.remainingKWh, pricePerKWh: o.pricePerKWh, open: o.open
        });
    }

    // ---------------------------------------------------------------- meter registry

    /// @notice Register `meter` (the Pi agent's account) for `owner` with its installed capacity.
    function registerMeter(address meter, address meterOwner, uint32 capacityWatts)
        external
        onlyRole(REGISTRAR_ROLE)
    {
        _register(meter, meterOwner, capacityWatts, 0);
    }

    /// @notice Register `meter` with the cumulative total it already reached on a previous market (migration
    /// by redeployment). Only energy above `totalWh` is ever credited here: the whole kWh in it count as
    /// already credited.
    function importMeter(address meter, address meterOwner, uint32 capacityWatts, uint128 totalWh)
        external
        onlyRole(REGISTRAR_ROLE)
    {
        _register(meter, meterOwner, capacityWatts, totalWh);
    }

    /// @notice Move `meter` to a new owner (the house changed hands). Future credits and offers go to
    /// `newOwner`; offers already open keep their seller.
    function transferMeter(address meter, address newOwner) external onlyRole(REGISTRAR_ROLE) {
        if (newOwner == address(0)) revert InvalidOwnerAddress(newOwner);
        MeterRecord storage m = _meters[meter];
        if (m.registeredAt == 0) revert MeterNotRegistered(meter);
        if (!m.active) revert MeterNotActive(meter);
        address previousOwner = m.owner;
        m.owner = newOwner;
        emit MeterOwnerChanged(meter, previousOwner, newOwner);
    }

    /// @notice Stop `meter` from reporting. Permanent: a replaced Pi registers a new meter key.
    function deactivateMeter(address meter) external onlyRole(REGISTRAR_ROLE) {
        MeterRecord storage m = _meters[meter];
        if (m.registeredAt == 0) revert MeterNotRegistered(meter);
        if (!m.active) revert MeterNotActive(meter);
        m.active = false;
        emit MeterDeactivated(meter);
    }

    function _register(address meter, address meterOwner, uint32 capacityWatts, uint128 totalWh) private {
        if (meter == address(0)) revert InvalidMeterAddress(meter);
        if (meterOwner == address(0)) revert InvalidOwnerAddress(meterOwner);
        if (capacityWatts == 0) revert ZeroCapacity(meter);
        MeterRecord storage m = _meters[meter];
        if (m.registeredAt != 0) revert MeterAlreadyRegistered(meter);
        m.owner = meterOwner;
        m.capacityWatts = capacityWatts;
        m.active = true;
        m.registeredAt = uint64(block.timestamp);
        if (totalWh != 0) {
            m.totalWh = totalWh;
            m.creditedKWh = totalWh / 1000;
        }
        emit MeterRegistered(meter, meterOwner, capacityWatts);
    }

    // ---------------------------------------------------------------- production reports

    /// @notice The calling meter reports its cumulative exported energy `totalWh`. Only the increase
    /// counts, and it must fit what the capacity can produce since the last report (plus tolerance);
    /// every newly completed kWh mints `tariff` to the owner and, when the owner has an ask price,
    /// is offered on the market.
    function reportProduction(uint256 totalWh) external whenNotPaused nonReentrant {
        MeterRecord storage m = _meters[msg.sender];
        if (m.registeredAt == 0) revert MeterNotRegistered(msg.sender);
        if (!m.active) revert MeterNotActive(msg.sender);
        uint256 previous = m.totalWh;
        if (totalWh < previous) revert TotalDecreased(previous, totalWh);
        if (totalWh == previous) revert NoIncrease(totalWh);

        uint256 since = m.lastReportAt == 0 ? m.registeredAt : m.lastReportAt;
        uint256 elapsed = block.timestamp - since;
        // A long silence counts as one window at most: a Pi back after months cannot claim them all.
        if (elapsed > maxReportSeconds) elapsed = maxReportSeconds;
        // increase * 3600 > capacity * elapsed * (100 + tolerance) / 100, without rounding loss.
        uint256 maxIncreaseWh = (uint256(m.capacityWatts) * elapsed * (100 + uint256(tolerancePercent))) / 360_000;
        uint256 increaseWh = totalWh - previous;
        if (increaseWh > maxIncreaseWh) revert ExceedsCapacity(increaseWh, maxIncreaseWh);

        uint256 creditedTotal = totalWh / 1000;
        uint256 kWh = creditedTotal - m.creditedKWh;
        address meterOwner = m.owner;
        m.totalWh = SafeCast.toUint128(totalWh);
        m.lastReportAt = uint64(block.timestamp);
        m.creditedKWh = creditedTotal;

        uint256 tokensMinted = kWh * tariff;
        emit ProductionReported(msg.sender, meterOwner, totalWh, kWh, tokensMinted);

        uint256 price = askPrice[meterOwner];
        if (kWh != 0 && price != 0) {
            uint256 offerId = nextOfferId++;
            _offers[offerId] = OfferRecord({
                seller: meterOwner,
                open: true,
                meter: msg.sender,
                remainingKWh: SafeCast.toUint96(kWh),
                pricePerKWh: price
            });
            emit OfferCreated(offerId, meterOwner, msg.sender, kWh, price);
        }
        if (tokensMinted != 0) token.mint(meterOwner, tokensMinted);
    }

    // ---------------------------------------------------------------- market

    /// @notice Set the caller's asking price (token base units per kWh) for offers created from now on.
    /// Zero means "do not offer": credited kWh are then only minted at the tariff.
    function setAskPrice(uint256 pricePerKWh) external {
        askPrice[msg.sender] = pricePerKWh;
        emit AskPriceChanged(msg.sender, pricePerKWh);
    }

    /// @notice Buy `kWh` from offer `offerId`, paying kWh × price in tokens (allowance to this
    /// contract) to the seller. Partial fills are allowed; asking for more than remains reverts.
    function buy(uint256 offerId, uint256 kWh) external whenNotPaused nonReentrant {
        OfferRecord storage o = _offers[offerId];
        address seller = o.seller;
        if (seller == address(0)) revert OfferNotFound(offerId);
        if (!o.open) revert OfferNotOpen(offerId);
        if (kWh == 0) revert ZeroKWh();
        uint256 remaining = o.remainingKWh;
        if (kWh > remaining) revert InsufficientOffer(offerId, kWh, remaining);

        uint256 cost = kWh * o.pricePerKWh;
        // remaining fits uint96 and kWh <= remaining, so the difference does too.
        o.remainingKWh = uint96(remaining - kWh);
        if (remaining == kWh) o.open = false;
        purchasedKWh[msg.sender] += kWh;
        emit EnergyPurchased(offerId, msg.sender, seller, kWh, cost);

        IERC20(address(token)).safeTransferFrom(msg.sender, seller, cost);
    }

    /// @notice Withdraw the unsold rest of an offer; only its seller may.
    function cancelOffer(uint256 offerId) external {
        OfferRecord storage o = _offers[offerId];
        if (o.seller == address(0)) revert OfferNotFound(offerId);
        if (o.seller != msg.sender) revert NotOfferSeller(offerId, msg.sender);
        if (!o.open) revert OfferNotOpen(offerId);
        o.open = false;
        emit OfferCancelled(offerId);
    }

    // ---------------------------------------------------------------- administration

    function setTariff(uint256 tariff_) external onlyRole(TARIFF_ROLE) {
        _setTariff(tariff_);
    }

    function setTolerancePercent(uint16 tolerancePercent_) external onlyRole(TARIFF_ROLE) {
        _setTolerancePercent(tolerancePercent_);
    }

    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    function _setTariff(uint256 tariff_) private {
        if (tariff_ > MAX_TARIFF) revert TariffTooHigh(tariff_, MAX_TARIFF);
        tariff = tariff_;
        emit TariffChanged(tariff_);
    }

    function _setTolerancePercent(uint16 tolerancePercent_) private {
        if (tolerancePercent_ > MAX_TOLERANCE_PERCENT) {
            revert ToleranceTooHigh(tolerancePercent_, MAX_TOLERANCE_PERCENT);
        }
        tolerancePercent = tolerancePercent_;
        emit ToleranceChanged(tolerancePercent_);
    }
}
