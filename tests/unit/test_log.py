"""Nested lines, per thread: a thread's steps indent its own lines only; a pool's task starts at the
depth of the step that submitted it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
from coexist.base import interrupt, log


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def lines() -> Iterator[list[str]]:
    handler = Lines()
    log.LOGGER.addHandler(handler)
    yield handler.lines
    log.LOGGER.removeHandler(handler)


def test_a_step_nests_what_happens_inside_and_says_how_it_ended(lines: list[str]) -> None:
    with log.step("boot"):
        log.info("dockerd up")
        with pytest.raises(OSError), log.step("start libvirtd"):
            raise OSError
    log.info("after")
    assert [line.split(": ")[0] for line in lines] == [
        "- boot", "  dockerd up", "  - start libvirtd", "    ! start libvirtd", "  (boot", "after"]
    assert lines[3].endswith("(OSError)")
    assert log.depth() == 0 and log.current() is None


def test_a_pool_task_nests_under_the_step_that_submitted_it_whatever_the_main_thread_does_meanwhile(
        lines: list[str]) -> None:
    probe_in, main_in = threading.Event(), threading.Event()
    seen: dict[str, str | None] = {}

    def probe() -> None:
        with log.step("ping"):
            probe_in.set()
            assert main_in.wait(5)
            log.info("ping: 0% loss")
            seen["probe"] = log.current()

    with log.step("measure after [boot]"), interrupt.Pool(1) as pool:
        done = pool.submit(probe)
        assert probe_in.wait(5)
        with log.step("snapshot"):
            main_in.set()
            done.result()
            seen["main"] = log.current()
    assert [line for line in lines if not line.strip().startswith("(")] == [
        "- measure after [boot]",
        "  - ping",              # the submitter's depth: inside "measure after"
        "  - snapshot",
        "    ping: 0% loss",     # inside "ping" only, not also inside the main thread's "snapshot"
    ]
    assert seen == {"probe": "ping", "main": "snapshot"}   # a Ctrl-C names the main thread's step


def test_a_pool_thread_starts_each_task_afresh(lines: list[str]) -> None:
    with interrupt.Pool(1) as pool:
        with log.step("step 1"):
            pool.submit(log.info, "first").result()
        pool.submit(log.info, "second").result()
    assert "  first" in lines and "second" in lines


def test_a_thread_of_its_own_starts_at_the_margin(lines: list[str]) -> None:
    # only a pool knows which step handed it the work; a bare thread's lines stand on their own
    with log.step("boot"):
        thread = threading.Thread(target=log.info, args=("from a thread",))
        thread.start()
        thread.join()
    assert "from a thread" in lines


def test_a_step_entered_but_never_exited_leaves_the_nesting_to_the_step_around_it(
        lines: list[str]) -> None:
    # as when a signal's exception is raised just as __enter__ returns: `with` never calls __exit__
    with log.step("step 3"):
        log.step("measure after").__enter__()
        log.info("inside")
    log.info("after")
    assert [line.split(":")[0] for line in lines[-3:]] == ["    inside", "  (step 3", "after"]
