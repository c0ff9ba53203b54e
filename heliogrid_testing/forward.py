"""A loopback port on this machine that leads to a TCP port inside a lab container, without any lab address.

Each connection accepted on 127.0.0.1 starts `podman exec -i <container> python3 <relay>`, which connects to
the port on the container's own loopback and copies bytes both ways over its stdin and stdout. A browser on
this machine can so load a page served in a container while all of this machine's traffic stays on loopback.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
from types import TracebackType

from heliogrid_testing import processes
from lab import lab

RELAY = """
import socket, sys, threading
peer = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
peer.settimeout(None)
def upstream():
    while True:
        data = sys.stdin.buffer.read1(65536)
        if not data:
            break
        peer.sendall(data)
    try:
        peer.shutdown(socket.SHUT_WR)
    except OSError:
        pass
threading.Thread(target=upstream, daemon=True).start()
while True:
    data = peer.recv(65536)
    if not data:
        break
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
"""


class LoopbackForward:
    """127.0.0.1:<port> on this machine -> <target_host>:<target_port> as seen inside `container`."""

    def __init__(self, container: str, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.command = ["podman", "exec", "-i", container, "python3", "-u", "-c", RELAY, target_host, str(target_port)]
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self._relays: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name=f"forward-{self.port}", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        relay = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=lab.ENV
        )
        with self._lock:
            self._relays.append(relay)
        assert relay.stdin is not None
        assert relay.stdout is not None
        stdin, stdout = relay.stdin, relay.stdout

        def downstream() -> None:
            try:
                while data := stdout.read1(65536):
                    conn.sendall(data)
            except OSError:
                pass
            finally:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

        back = threading.Thread(target=downstream, daemon=True)
        back.start()
        try:
            while data := conn.recv(65536):
                stdin.write(data)
                stdin.flush()
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                stdin.close()
        back.join()
        conn.close()
        processes.stop(relay, terminate=False)  # its stdin is closed: it ends on its own

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            relays = list(self._relays)
        for relay in relays:  # only the relays this forward started
            if relay.poll() is None:
                relay.kill()
                relay.wait()

    def __enter__(self) -> LoopbackForward:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
