"""The run's cgroups: found in every hierarchy, named so a dead run's are recognised."""

from __future__ import annotations

import os
import subprocess

import pytest
from coexist.sandbox import cgroups, processes


def test_every_mounted_hierarchy_is_found_with_this_process_in_it() -> None:
    found = cgroups.hierarchies()
    assert found, "no cgroup hierarchy mounted"
    for hierarchy in found:
        assert hierarchy.here.is_dir()
        assert str(os.getpid()) in (hierarchy.here / "cgroup.procs").read_text().split()


@pytest.mark.skipif(os.geteuid() != 0, reason="making cgroups needs root")
def test_a_run_cgroup_holds_a_child_and_is_killed_and_removed_as_one() -> None:
    run = cgroups.RunCgroup(processes.owner_token(), "unit").create()
    try:
        child = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60; wait"],
                                 preexec_fn=lambda: cgroups.join_self(run.procs_files))
        from coexist.base.retry import retry

        retry(lambda _: len(run.members()) >= 3, timeout=5, what="sh and its two sleeps")
        assert child.pid in run.members()
        run.kill(timeout=5)
        assert run.members() == set()
        assert child.wait(timeout=5) == -9
    finally:
        run.kill(timeout=5)
        run.remove()
    assert not any(d.exists() for d in run.dirs)


@pytest.mark.skipif(os.geteuid() != 0, reason="making cgroups needs root")
def test_a_dead_runs_cgroup_is_stale_and_a_live_ones_is_not() -> None:
    dead = subprocess.Popen(["true"])
    token = processes.owner_token(dead.pid)
    dead.wait()
    mine = cgroups.RunCgroup(processes.owner_token(), "unit").create()
    theirs = cgroups.RunCgroup(token, "lab").create()
    try:
        stale = cgroups.stale()
        assert theirs.name in stale and mine.name not in stale
        assert sorted(stale[theirs.name]) == sorted(theirs.dirs)
    finally:
        mine.remove()
        theirs.remove()


def test_a_cgroup_that_goes_while_walked_is_skipped(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a matrix cell with a dockerd restart: a container's cgroup vanished under the walk
    (tmp_path / "lab" / "docker" / "container").mkdir(parents=True)
    (tmp_path / "lab" / "other").mkdir()
    real = os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]
        if str(path).endswith("container"):
            os.rmdir(path)   # dockerd removes it just before it is read
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    walked = [p.relative_to(tmp_path).as_posix() for p in cgroups._walk(tmp_path / "lab")]
    assert walked[-1] == "lab" and sorted(walked[:-1]) == ["lab/docker", "lab/other"]
    assert list(cgroups._walk(tmp_path / "absent")) == []
