"""Choosing gpiozero's pin factory from the configuration, the way GPIOZERO_PIN_FACTORY does."""

from __future__ import annotations

import importlib
from typing import Any

from heliogrid_agent.config import PIN_FACTORIES

# gpiozero's backends, imported only when chosen: most need their library, and only on a Pi.
_BACKENDS = {
    "mock": ("gpiozero.pins.mock", "MockFactory"),
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"),
    "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory"),
    "native": ("gpiozero.pins.native", "NativeFactory"),
}


class HardwareError(Exception):
    """The GPIO backend or pins the configuration names cannot be used on this machine."""


def make_pin_factory(name: str) -> Any | None:
    """Return a gpiozero pin factory for ``name``, or None for gpiozero's own choice.

    ``lgpio`` is the backend of the Pi 5 (and works on the Pi 4); ``mock`` is gpiozero's MockFactory,
    used by the tests and by the lab where no GPIO exists. A backend that cannot start here (its library
    missing, no GPIO chip, its daemon not running) raises HardwareError naming it and the reason.
    """
    if name == "default":
        return None
    if name not in _BACKENDS:
        raise ValueError(f"unknown pin factory {name!r}; expected one of {list(PIN_FACTORIES)}")
    module, factory = _BACKENDS[name]
    try:
        return getattr(importlib.import_module(module), factory)()
    except Exception as exc:  # each backend fails its own way: ImportError, OSError, lgpio.error, RuntimeError...
        raise HardwareError(
            f"gpio.pin_factory = {name!r} cannot be used on this machine ({type(exc).__name__}: {exc}); "
            "on a Raspberry Pi 5 or 4 use 'lgpio' (package python3-lgpio), off a Pi 'mock'"
        ) from exc
