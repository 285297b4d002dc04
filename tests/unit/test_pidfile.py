"""One instance per profile: locking, stale files, refusing, and stopping the holder."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mpg_tui.locations import resolve_locations
from mpg_tui.pidfile import AlreadyRunning, MpgPidFile, MpgRunning, PidFile, read_pid, running_pid, stop_running

HOLDER = """
import signal, sys
from pathlib import Path
from mpg_tui.pidfile import PidFile
if sys.argv[2] == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
pid_file = PidFile(Path(sys.argv[1]))
pid_file.acquire()
print("ready", flush=True)
sys.stdin.read()  # hold the lock until told to go (or killed)
"""


@pytest.fixture
def pid_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "mpg-tui.pid"


def start_holder(path: Path, mode: str = "normal") -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.fixture
def holders() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout):
            if stream:
                stream.close()


def test_acquire_writes_our_pid_privately_and_release_removes_it(pid_path: Path) -> None:
    pid_file = PidFile(pid_path)
    pid_file.acquire()
    assert pid_file.held
    assert read_pid(pid_path) == os.getpid()
    assert stat.S_IMODE(pid_path.stat().st_mode) == 0o600
    assert running_pid(pid_path) == os.getpid()
    pid_file.release()
    assert not pid_path.exists()
    assert running_pid(pid_path) is None


def test_a_second_instance_is_refused_with_the_running_pid(pid_path: Path) -> None:
    with PidFile(pid_path), pytest.raises(AlreadyRunning) as caught:
        PidFile(pid_path).acquire()
    assert caught.value.pid == os.getpid()
    assert f"already running for this profile (PID {os.getpid()}" in str(caught.value)


def test_a_stale_file_from_a_dead_process_is_taken_over(pid_path: Path) -> None:
    pid_path.parent.mkdir(parents=True)
    pid_path.write_text("999999\n", encoding="ascii")
    assert running_pid(pid_path) is None
    with PidFile(pid_path):
        assert read_pid(pid_path) == os.getpid()


def test_acquire_twice_and_release_twice_are_harmless(pid_path: Path) -> None:
    pid_file = PidFile(pid_path)
    pid_file.acquire()
    pid_file.acquire()
    pid_file.release()
    pid_file.release()
    assert not pid_path.exists()


@pytest.mark.parametrize("content", ["", "abc", "-5", "0"])
def test_unusable_pid_file_contents_read_as_none(pid_path: Path, content: str) -> None:
    pid_path.parent.mkdir(parents=True)
    pid_path.write_text(content, encoding="ascii")
    assert read_pid(pid_path) is None


def test_another_process_holding_the_file_is_seen_and_refused(
    pid_path: Path, holders: list[subprocess.Popen[str]]
) -> None:
    proc = start_holder(pid_path)
    holders.append(proc)
    assert running_pid(pid_path) == proc.pid
    with pytest.raises(AlreadyRunning) as caught:
        PidFile(pid_path).acquire()
    assert caught.value.pid == proc.pid


def test_stop_running_terminates_the_holder(pid_path: Path, holders: list[subprocess.Popen[str]]) -> None:
    proc = start_holder(pid_path)
    holders.append(proc)
    assert stop_running(pid_path, timeout=10) is True
    assert proc.wait(timeout=10) == -15
    assert running_pid(pid_path) is None


def test_a_process_crashing_leaves_a_stale_file_that_is_taken_over(
    pid_path: Path, holders: list[subprocess.Popen[str]]
) -> None:
    proc = start_holder(pid_path)
    holders.append(proc)
    proc.kill()
    proc.wait(timeout=10)
    assert pid_path.exists()
    assert running_pid(pid_path) is None
    with PidFile(pid_path):
        assert read_pid(pid_path) == os.getpid()


def test_stop_running_gives_up_on_a_holder_that_ignores_sigterm(
    pid_path: Path, holders: list[subprocess.Popen[str]]
) -> None:
    proc = start_holder(pid_path, "ignore-term")
    holders.append(proc)
    assert stop_running(pid_path, timeout=0.2) is False
    assert proc.poll() is None
    assert running_pid(pid_path) == proc.pid


def test_stop_running_with_nothing_running_is_true(pid_path: Path) -> None:
    assert stop_running(pid_path, timeout=0.1) is True


# -- MPG's PID file ----------------------------------------------------------------------


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_mpgs_pid_file_naming_a_dead_process_is_taken_over_and_removed_on_release(tmp_path: Path) -> None:
    path = tmp_path / "mpg.pid"
    path.write_text(f"{dead_pid()}\n")
    with MpgPidFile(path):
        assert read_pid(path) == os.getpid()
    assert not path.exists()


def test_a_live_process_in_mpgs_pid_file_is_refused_and_its_file_left_alone(
    tmp_path: Path, holders: list[subprocess.Popen[str]]
) -> None:
    path = tmp_path / "mpg.pid"
    mpg = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"], text=True)
    holders.append(mpg)
    path.write_text(f"{mpg.pid}\n")
    with pytest.raises(MpgRunning) as caught:
        MpgPidFile(path).acquire()
    assert isinstance(caught.value, AlreadyRunning) and caught.value.pid == mpg.pid
    assert read_pid(path) == mpg.pid


def test_release_keeps_a_pid_file_someone_else_wrote_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "mpg.pid"
    with MpgPidFile(path):
        path.write_text("12345\n")
    assert read_pid(path) == 12345


def test_mpgs_pid_file_is_named_by_profile_as_mpg_names_it(tmp_path: Path) -> None:
    env = {"MPG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    assert resolve_locations(None, None, tmp_path, env).mpg_pid_file == tmp_path / "mpg.pid"
    assert resolve_locations(None, "default", tmp_path, env).mpg_pid_file == tmp_path / "mpg.pid"
    assert resolve_locations(None, "dev", tmp_path, env).mpg_pid_file == tmp_path / "mpg-dev.pid"
