"""The guest's SSH session shared by the probes' threads: one replacing it, the others wait."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import paramiko
import pytest
from coexist.guest.guest import Guest


class Channel:
    def __init__(self) -> None:
        self.out = [b"ok\n"]

    def set_combine_stderr(self, _on: bool) -> None: ...
    def settimeout(self, _seconds: float) -> None: ...
    def exec_command(self, _command: str) -> None: ...
    def close(self) -> None: ...

    def recv(self, _size: int) -> bytes:
        return self.out.pop() if self.out else b""

    def recv_exit_status(self) -> int:
        return 0


class Client:
    def get_transport(self) -> SimpleNamespace:
        return SimpleNamespace(open_session=lambda timeout: Channel())


def a_guest() -> Guest:
    guest = object.__new__(Guest)   # no lab: only the session's bookkeeping
    guest.name, guest.timeout, guest._session, guest._ssh = "g", 5.0, threading.RLock(), None
    return guest


def test_a_command_while_another_thread_reconnects_waits_for_the_new_session() -> None:
    # CI, two runs at once: a firewalld reload reset the session, one probe's thread reconnected
    # and another, finding no session meanwhile, failed the run ("guest ... is not connected")
    guest = a_guest()
    results = []
    with guest._session:   # what reconnect holds while it replaces the session
        worker = threading.Thread(target=lambda: results.append(guest.execute("echo ok")))
        worker.start()
        time.sleep(0.2)
        assert worker.is_alive()
        guest._ssh = Client()  # type: ignore[assignment]
    worker.join(5)
    assert results and results[0].returncode == 0 and results[0].output == "ok\n"


def test_no_session_is_a_lost_session_not_an_assertion() -> None:
    with pytest.raises(paramiko.SSHException, match="guest g is not connected"):
        a_guest().execute("true")
