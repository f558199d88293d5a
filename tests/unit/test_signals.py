"""Signals as a clean stop: the first raises where the run is, a teardown is never cut short."""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import FrameType

import pytest
from coexist.base import interrupt, log


@pytest.fixture(autouse=True)
def handlers() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in interrupt.SIGNALS}
    interrupt.install()
    yield
    interrupt.install()   # forget what this test received
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_the_first_signal_raises_with_the_step_it_arrived_in() -> None:
    with pytest.raises(interrupt.Interrupted) as stop, log.step("start dockerd"):
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0)   # let the handler run
    assert (stop.value.signame, stop.value.during, stop.value.exit_code) == ("SIGTERM", "start dockerd", 143)


def test_a_signal_inside_a_teardown_waits_until_the_teardown_is_done() -> None:
    done = []
    with pytest.raises(interrupt.Interrupted) as stop:
        with interrupt.shielded():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("cgroup killed")
            done.append("folders removed")
    assert done == ["cgroup killed", "folders removed"]
    assert stop.value.exit_code == 130


def test_a_second_signal_hurries_and_never_raises_again() -> None:
    with pytest.raises(interrupt.Interrupted):
        os.kill(os.getpid(), signal.SIGINT)
        signal.sigtimedwait([], 0)
    assert interrupt.stopping() and not interrupt.hurry()
    with interrupt.shielded():
        os.kill(os.getpid(), signal.SIGINT)
    os.kill(os.getpid(), signal.SIGHUP)   # outside a shield too: the run is already stopping
    assert interrupt.hurry()
    received = interrupt.received()
    assert received is not None and received.signame == "SIGINT"


def test_waiting_threads_stop_once_a_signal_came() -> None:
    from coexist.base.retry import retry

    with pytest.raises(interrupt.Interrupted):
        os.kill(os.getpid(), signal.SIGINT)
        signal.sigtimedwait([], 0)
    seen: list[BaseException] = []

    def wait() -> None:
        try:
            retry(lambda _: False, timeout=30, what="never")
        except BaseException as error:
            seen.append(error)

    worker = threading.Thread(target=wait)
    worker.start()
    worker.join(timeout=5)
    assert not worker.is_alive() and isinstance(seen[0], interrupt.Interrupted)


def test_a_forked_child_before_exec_leaves_the_signal_to_the_run() -> None:
    # a signal to the whole group reaches a child while Python still runs in it (preexec_fn,
    # after-fork hooks): raising there printed "Exception ignored ... Traceback" (CI, SIGTERM
    # while dockerd was being started)
    child = os.fork()
    if child == 0:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0)
            os._exit(3 if interrupt.stopping() else 0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert not interrupt.stopping()


def test_a_signal_inside_a_fork_hook_is_raised_once_popen_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    # with a preexec_fn Python runs its fork hooks (logging's _releaseLock) right after the fork;
    # an exception raised inside one is dropped ("Exception ignored in"), and the run went on
    # as if never stopped (CI: SIGINT and SIGTERM while dockerd was being started)
    import subprocess

    from coexist.sandbox import namespaces

    class ForkHook:
        def __del__(self) -> None:   # like a fork hook: what is raised here is dropped
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
            for _ in range(1000):
                pass

    def popen(argv: list[str], **kwargs: object) -> str:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        # arrives during the fork, delivered in the hook: sent to this thread, which blocks it (a
        # signal to the process may go to another thread, pytest-xdist's, and be handled late,
        # after this test restored the default handler: a KeyboardInterrupt, seen under load)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        hook = ForkHook()
        del hook
        return "the child"

    monkeypatch.setattr(subprocess, "Popen", popen)
    try:
        with pytest.raises(interrupt.Interrupted):
            namespaces.popen(["dockerd"])
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@pytest.mark.parametrize("pool", [interrupt.Pool, ThreadPoolExecutor])
def test_a_signal_while_a_pool_starts_a_thread_still_has_the_thread_joined(
        monkeypatch: pytest.MonkeyPatch, pool: type) -> None:
    # Thread.start waits for the new thread to run: a signal raised there left the thread running
    # and uncounted, and the pool's shutdown did not wait for it (CI: a probe's line after coexist's last)
    start = threading.Thread.start
    finished: list[str] = []

    def start_then_signal(thread: threading.Thread) -> None:
        start(thread)
        os.kill(os.getpid(), signal.SIGINT)   # the handler runs before start returns

    def work() -> None:
        time.sleep(0.3)
        finished.append("probe")

    monkeypatch.setattr(threading.Thread, "start", start_then_signal)
    with pytest.raises(interrupt.Interrupted):
        with pool(1) as workers:
            workers.submit(work)
    monkeypatch.undo()
    if pool is interrupt.Pool:
        assert finished == ["probe"]   # joined before the with block was left
    else:
        assert finished == []          # what the plain pool does: the thread outlives its block
        time.sleep(0.5)


# -- no line after the closing line, whatever thread writes it -----------------------------------
# (CI once printed "! measure after [...]: failed after ... (GeneratorExit)" after "coexist:
# interrupted (SIGINT) during ...": tests/e2e/test_interrupt.py's second-Ctrl-C test)
def signal_as_it_is_entered(manager: object) -> None:
    """A real SIGINT, taken by the installed handler just as `manager.__enter__` returns: past the
    point where a generator-based context manager has yielded, before `with` has it to exit."""
    def calls(frame: FrameType, event: str, _arg: object) -> Callable[..., object] | None:
        if event == "call" and frame.f_code.co_name == "__enter__" and frame.f_locals.get("self") is manager:
            return returns
        return None

    def returns(frame: FrameType, event: str, _arg: object) -> Callable[..., object] | None:
        if event == "return":
            sys.settrace(None)
            signal.raise_signal(signal.SIGINT)   # the handler runs, and raises, before this returns
        return returns

    sys.settrace(calls)


@contextmanager
def lab_up() -> Iterator[None]:
    with log.step("lab up"):
        yield


@pytest.mark.parametrize("entered", ["a step", "a context manager yielding inside a step"])
def test_a_signal_as_a_step_is_entered_logs_nothing_after_the_closing_line(
        entered: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from coexist import cli

    def run(_args: object) -> int:
        with log.step("step 3 [fix]"):
            inner = log.step("measure after [fix]") if entered == "a step" else lab_up()
            signal_as_it_is_entered(inner)
            with inner:
                raise AssertionError("the signal did not come")
        return 0

    monkeypatch.setattr(cli, "_run", run)
    assert cli.main(["run", "seed.toml"]) == 130
    gc.collect()   # whatever was left for the collector, as at the interpreter's exit
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith("coexist: interrupted (SIGINT) during "), lines
    assert lines[-2].startswith("  ! step 3 [fix]: failed after "), lines   # not nested deeper


def test_a_signal_while_a_pool_is_joined_still_has_its_threads_end_first() -> None:
    # the main thread waits in Thread.join when the block is left; a signal there raised out of
    # the join and the threads' lines came after the run's last one
    main = threading.main_thread()
    done: list[str] = []

    def probe() -> None:
        deadline = time.monotonic() + 10
        while not _joining(main) and time.monotonic() < deadline:
            time.sleep(0.01)
        signal.pthread_kill(main.ident or 0, signal.SIGINT)
        while not interrupt.stopping():
            time.sleep(0.01)
        time.sleep(0.2)   # what a probe does after the signal, e.g. its SSH command timing out
        done.append("probe")

    with pytest.raises(interrupt.Interrupted):
        with interrupt.Pool(1) as pool:
            pool.submit(probe)
    assert done == ["probe"]


def _joining(thread: threading.Thread) -> bool:
    frame = sys._current_frames().get(thread.ident or 0)
    while frame is not None:
        if frame.f_code.co_name == "_wait_for_tstate_lock":
            return True
        frame = frame.f_back
    return False


def test_threads_still_running_log_before_the_closing_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from coexist import cli

    def worker() -> None:
        while not interrupt.stopping():
            time.sleep(0.01)
        time.sleep(0.2)
        log.info("a thread's last line")

    def run(_args: object) -> int:
        threading.Thread(target=worker).start()
        with log.step("boot guest guest"):
            signal.raise_signal(signal.SIGINT)
        return 0

    monkeypatch.setattr(cli, "_run", run)
    assert cli.main(["run", "seed.toml"]) == 130
    lines = capsys.readouterr().err.splitlines()
    assert lines[-2:] == ["a thread's last line",
                          "coexist: interrupted (SIGINT) during boot guest guest; cleaned up; "
                          "no artifacts yet"], lines
