"""Structured logs: native journald fields when run by systemd, logfmt lines on stderr otherwise.

A log call passes its fields as ``extra`` (``log.info("sent", extra={"event": "tx_sent", "nonce": 5})``);
in the journal they become fields (``EVENT=tx_sent NONCE=5``, query with ``journalctl -u heliogrid-agent
EVENT=tx_sent``), on stderr they follow the message as ``key=value``. Only the standard library is used:
the journal's native protocol is one datagram of ``KEY=value`` lines.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

JOURNAL_SOCKET = "/run/systemd/journal/socket"
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JournalHandler(logging.Handler):
    def __init__(self, identifier: str = "heliogrid-agent", path: str = JOURNAL_SOCKET) -> None:
        super().__init__()
        self.identifier = identifier
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = {
                "MESSAGE": self.format(record),
                "PRIORITY": _PRIORITY.get(record.levelno, 6),
                "SYSLOG_IDENTIFIER": self.identifier,
                "LOGGER": record.name,
                "CODE_FILE": record.pathname,
                "CODE_LINE": record.lineno,
                "CODE_FUNC": record.funcName,
            }
            for key, value in record_fields(record).items():
                if value is not None:
                    fields[key.upper()] = value
            self.sock.sendto(encode_journal(fields), self.path)
        except Exception:  # logging must never take the agent down
            self.handleError(record)

    def close(self) -> None:
        self.sock.close()
        super().close()


def encode_journal(fields: dict[str, Any]) -> bytes:
    """The journal's native datagram: KEY=value lines, or KEY\\n<le64 length>value for multi-line values."""
    out = bytearray()
    for key, value in fields.items():
        data = str(value).encode("utf-8", "replace")
        if b"\n" in data:
            out += key.encode() + b"\n" + len(data).to_bytes(8, "little") + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return bytes(out)


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = f"{self.formatTime(record)} {record.levelname} {record.name}: {record.getMessage()}"
        extra = " ".join(f"{k}={_quote(v)}" for k, v in record_fields(record).items() if v is not None)
        text = f"{base} {extra}" if extra else base
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def _quote(value: Any) -> str:
    text = str(value)
    return f'"{text}"' if (" " in text or "=" in text or not text) else text


def setup_logging(level: str = "INFO", target: str = "auto") -> logging.Handler:
    """Configure the root logger; ``auto`` uses the journal when systemd connected our output to it."""
    use_journal = target == "journal" or (
        target == "auto" and "JOURNAL_STREAM" in os.environ and os.path.exists(JOURNAL_SOCKET)
    )
    handler: logging.Handler
    if use_journal:
        handler = JournalHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # web3 and urllib3 are chatty at DEBUG about every request
    for noisy in ("web3", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLevelName(level)))
    return handler
