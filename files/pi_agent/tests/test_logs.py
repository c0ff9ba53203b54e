from __future__ import annotations

import logging
import socket

from heliogrid_agent.logs import JournalHandler, LogfmtFormatter, encode_journal


def test_journal_datagram_encodes_single_and_multi_line_fields():
    data = encode_journal({"MESSAGE": "a\nb", "NONCE": 5})
    assert data == b"MESSAGE\n" + (3).to_bytes(8, "little") + b"a\nb\n" + b"NONCE=5\n"


def test_journal_handler_sends_extra_fields_as_journal_fields(tmp_path):
    path = str(tmp_path / "journal.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    handler = JournalHandler(path=path)
    logger = logging.getLogger("test.journal")
    logger.addHandler(handler)
    logger.warning("rejected reading", extra={"event": "bad_reading", "reason": "nan"})
    datagram = server.recv(65536).decode()
    handler.close()
    server.close()
    assert "MESSAGE=rejected reading\n" in datagram
    assert "PRIORITY=4\n" in datagram
    assert "EVENT=bad_reading\n" in datagram
    assert "REASON=nan\n" in datagram
    assert "SYSLOG_IDENTIFIER=heliogrid-agent\n" in datagram


def test_logfmt_appends_fields_after_the_message():
    record = logging.makeLogRecord(
        {
            "msg": "sent %s",
            "args": ("tx",),
            "levelname": "INFO",
            "name": "a",
            "event": "tx_sent",
            "nonce": 3,
            "note": "two words",
        }
    )
    line = LogfmtFormatter().format(record)
    assert line.endswith('a: sent tx event=tx_sent nonce=3 note="two words"')
