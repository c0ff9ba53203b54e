"""Who may use the Pi's page: the Host header allow-list, the owner's login code, sessions and their tokens.

- The login code is created on the Pi (``ensure_secret``) into a file only its owner can read (0600). It has no
  default, and the agent never writes it to a log: it names the file instead.
- A login sets a session cookie (HttpOnly, SameSite=Strict). Every POST but the login carries the session's
  CSRF token in the ``X-CSRF-Token`` header; the page reads it from ``GET /api/session``, which a page of
  another origin cannot read.
- The Host header must name this machine, so a DNS-rebinding page (an attacker's name pointed at the Pi's
  address) is refused before anything else is looked at.
- A purchase is quoted first (exact price and total, bound to the session, valid for a short time, usable
  once) and only a confirmed quote is bought.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import os
import secrets
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# No 0/O, 1/I/L: the owner types the code from a terminal.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_GROUPS, CODE_GROUP_LENGTH = 4, 5  # 20 characters, about 99 bits
FREE_LOGIN_FAILURES = 5  # then each failure doubles the wait before the next try (up to MAX_LOCKOUT)
MAX_LOCKOUT = 300.0


class SecretError(ValueError):
    """The login code file cannot be created or is readable by others."""


def new_code() -> str:
    groups = ("".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUP_LENGTH)) for _ in range(CODE_GROUPS))
    return "-".join(groups)


def normalize_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def ensure_secret(path: str | Path) -> bool:
    """Create the login code file (0600) if it is missing; True when it was created. Never returns the code."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        read_secret(path)  # refuses a file others can read
        return False
    except OSError as exc:
        raise SecretError(f"cannot create the page's login code file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(new_code() + "\n")
        out.flush()
        os.fsync(out.fileno())
    return True


def read_secret(path: str | Path) -> str:
    path = Path(path)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except OSError as exc:
        raise SecretError(f"cannot read the page's login code file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SecretError(f"the page's login code file {path} is not ASCII text") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(
            f"{path} is mode {stat.S_IMODE(mode):04o}; the login code must be readable by its owner only (0600)"
        )
    code = normalize_code(text)
    if len(code) < 12:
        raise SecretError(f"the page's login code in {path} has {len(code)} letters and digits; expected 12 or more")
    return code


# -- the Host header ---------------------------------------------------------------------------------------
def host_name(header: str | None) -> str | None:
    """The name or address of a Host header, without port, lower case; None when there is none."""
    if not header:
        return None
    host = header.strip().lower()
    if host.startswith("["):  # [::1]:8080
        end = host.find("]")
        return host[1:end] if end > 0 else None
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".") or None


def machine_names() -> set[str]:
    """This machine's own names and addresses, for ``allowed_hosts = ["auto"]``."""
    names = {"localhost", "127.0.0.1", "::1"}
    hostname = socket.gethostname().lower()
    fqdn = socket.getfqdn().lower()
    names |= {hostname, f"{hostname}.local", fqdn}
    for name in (hostname, fqdn):
        with contextlib.suppress(OSError):
            names |= {str(info[4][0]).lower() for info in socket.getaddrinfo(name, None)}
    return {n for n in names if n}


class HostCheck:
    """Which Host headers the page answers: the configured names, "auto" standing for this machine's own."""

    def __init__(self, allowed: Iterable[str], listen_address: str = "") -> None:
        allowed = [a.lower() for a in allowed]
        self.auto = "auto" in allowed
        self.names = {a.rstrip(".") for a in allowed if a != "auto"}
        if self.auto:
            self.names |= machine_names()
            if listen_address and listen_address not in ("0.0.0.0", "::"):  # noqa: S104
                self.names.add(listen_address.lower())

    def allows(self, header: str | None, local_address: str) -> bool:
        host = host_name(header)
        if host is None:
            return False
        if host in self.names:
            return True
        # "auto": an address literal equal to the one the client reached is this machine by construction (a
        # rebinding page has the attacker's name in Host, never the Pi's address).
        if self.auto:
            try:
                return ipaddress.ip_address(host) == ipaddress.ip_address(local_address.split("%")[0])
            except ValueError:
                return False
        return False


# -- sessions ----------------------------------------------------------------------------------------------
@dataclass
class Session:
    token: str
    csrf: str
    expires: float
    quotes: dict[str, tuple[Any, float]] = field(default_factory=dict)


class Sessions:
    """Logins and their sessions, in memory: a restart logs everyone out."""

    def __init__(
        self,
        secret_file: str | Path,
        lifetime_seconds: float,
        quote_seconds: float,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.secret_file = Path(secret_file)
        self.lifetime = lifetime_seconds
        self.quote_seconds = quote_seconds
        self.now = now
        self._sessions: dict[str, Session] = {}
        self._failures = 0
        self._locked_until = 0.0
        self._lock = threading.Lock()

    def retry_after(self) -> float:
        """Seconds before the next login may be tried (after repeated wrong codes)."""
        with self._lock:
            return max(self._locked_until - self.now(), 0.0)

    def login(self, code: str) -> Session | None:
        """A new session for the right code; None for a wrong one. Call ``retry_after`` first."""
        expected = read_secret(self.secret_file)  # read at each login: a new code takes effect without a restart
        with self._lock:
            if not hmac.compare_digest(normalize_code(code).encode(), expected.encode()):
                self._failures += 1
                if self._failures >= FREE_LOGIN_FAILURES:
                    wait = min(2.0 ** (self._failures - FREE_LOGIN_FAILURES), MAX_LOCKOUT)
                    self._locked_until = self.now() + wait
                return None
            self._failures = 0
            self._prune()
            session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), self.now() + self.lifetime)
            self._sessions[session.token] = session
            return session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            session = self._sessions.get(token)
            if session is None or session.expires <= self.now():
                self._sessions.pop(token, None)
                return None
            return session

    def logout(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(token, None)

    def add_quote(self, session: Session, quote: Any) -> str:
        quote_id = secrets.token_urlsafe(16)
        with self._lock:
            now = self.now()
            session.quotes = {k: v for k, v in session.quotes.items() if v[1] > now}
            session.quotes[quote_id] = (quote, now + self.quote_seconds)
        return quote_id

    def take_quote(self, session: Session, quote_id: str) -> Any | None:
        """The quote, once: confirming it again, or after it expired, or from another session, finds nothing."""
        with self._lock:
            entry = session.quotes.pop(quote_id, None)
        if entry is None or entry[1] <= self.now():
            return None
        return entry[0]

    def _prune(self) -> None:
        now = self.now()
        self._sessions = {k: s for k, s in self._sessions.items() if s.expires > now}


def csrf_ok(session: Session, header: str | None) -> bool:
    return bool(header) and hmac.compare_digest(session.csrf.encode(), (header or "").encode())
