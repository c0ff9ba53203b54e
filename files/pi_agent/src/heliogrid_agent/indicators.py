"""Optional front-panel hardware: an LED that blinks on each sale, a button that pauses selling."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("heliogrid_agent.indicators")


class SaleLed:
    def __init__(self, pin: int, blinks: int = 3, pin_factory: Any | None = None) -> None:
        from gpiozero import LED

        self.led = LED(pin, pin_factory=pin_factory)
        self.blinks = blinks

    def sale(self, kwh: int) -> None:
        # background=True: the reporter must not wait for the LED
        self.led.blink(on_time=0.2, off_time=0.2, n=self.blinks * max(1, min(kwh, 5)), background=True)

    def close(self) -> None:
        self.led.close()


class PauseButton:
    """Each press toggles selling; the state lives in the store so it survives restarts."""

    def __init__(self, pin: int, toggle: Callable[[], bool], pin_factory: Any | None = None) -> None:
        from gpiozero import Button

        self._toggle = toggle
        self.button = Button(pin, pull_up=True, bounce_time=0.05, pin_factory=pin_factory)
        self.button.when_pressed = self._pressed

    def _pressed(self) -> None:
        paused = self._toggle()
        log.info("button: selling %s", "paused" if paused else "resumed", extra={"event": "button", "paused": paused})

    def close(self) -> None:
        self.button.close()
