"""The huge-pages restart of scoring commands (auhead_bench.malloc.with_huge_pages)."""

from __future__ import annotations

import platform
import sys

import pytest

from auhead_bench import malloc

glibc = pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")


@glibc
def test_restarts_once_with_the_tunable_added(monkeypatch):
    calls = []
    monkeypatch.setattr(malloc.os, "execve", lambda *args: calls.append(args))
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    monkeypatch.delenv("AUHEAD_BENCH_HUGE_PAGES", raising=False)
    malloc.with_huge_pages(["run", "--out", "x"])
    (path, argv, env), = calls
    assert path == sys.executable
    assert argv == [sys.executable, "-m", "auhead_bench.cli", "run", "--out", "x"]
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"


@pytest.mark.parametrize("env", [{"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"},
                                 {"AUHEAD_BENCH_HUGE_PAGES": "0"}])
def test_no_restart_when_set_or_turned_off(monkeypatch, env):
    monkeypatch.setattr(malloc.os, "execve", lambda *args: pytest.fail("restarted"))
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    malloc.with_huge_pages(["run"])  # returns: the command runs in this process
