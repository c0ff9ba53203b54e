"""Choosing gpiozero's pin factory from the configuration, the way GPIOZERO_PIN_FACTORY does."""

from __future__ import annotations

from typing import Any

from heliogrid_agent.config import PIN_FACTORIES


class HardwareError(Exception):
    """The GPIO backend or pins the configuration names cannot be used on this machine."""


def make_pin_factory(name: str) -> Any | None:
    """Return a gpiozero pin factory for ``name``, or None for gpiozero's own choice.

    ``lgpio`` is the backend of the Pi 5 (and works on the Pi 4); ``mock`` is gpiozero's MockFactory,
    used by the tests and by the lab where no GPIO exists. A backend that cannot start here (its library
    missing, no GPIO chip, its daemon not running) raises HardwareError naming it and the reason.
    """
    if name not in PIN_FACTORIES:
        raise ValueError(f"unknown pin factory {name!r}; expected one of {list(PIN_FACTORIES)}")
    try:
        return _pin_factory(name)
    except Exception as exc:  # each backend fails its own way: ImportError, OSError, lgpio.error, RuntimeError...
        raise HardwareError(
            f"gpio.pin_factory = {name!r} cannot be used on this machine ({type(exc).__name__}: {exc}); "
            "on a Raspberry Pi 5 or 4 use 'lgpio' (package python3-lgpio), off a Pi 'mock'"
        ) from exc


def _pin_factory(name: str) -> Any | None:
    if name == "default":
        return None
    if name == "mock":
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    if name == "lgpio":
        from gpiozero.pins.lgpio import LGPIOFactory

        return LGPIOFactory()
    if name == "rpigpio":
        from gpiozero.pins.rpigpio import RPiGPIOFactory

        return RPiGPIOFactory()
    if name == "pigpio":
        from gpiozero.pins.pigpio import PiGPIOFactory

        return PiGPIOFactory()
    if name == "native":
        from gpiozero.pins.native import NativeFactory

        return NativeFactory()
    raise ValueError(f"unknown pin factory {name!r}; expected one of {list(PIN_FACTORIES)}")
