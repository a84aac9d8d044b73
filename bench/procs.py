"""Processes on loopback ports for the benchmark (the small bits of tests/e2e/procs.py).

Every process gets its output in a log file under the run's work directory and is
stopped by `Processes.stop_all` (SIGTERM, then SIGKILL): the benchmark never leaves a
process behind, whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

LOOPBACK = "127.0.0.1"
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


def livechat_hitl_command() -> list[str]:
    script = Path(sys.executable).parent / "livechat-hitl"
    if script.exists():
        return [str(script)]
    found = shutil.which("livechat-hitl")
    return [found] if found else [sys.executable, "-m", "livechat_hitl"]


def machine_busy_seconds() -> float:
    """CPU seconds this machine's cores have spent running something (all cores; not
    idle, waiting on I/O or taken by the hypervisor) since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / _TICKS


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def clean_env(**values: str) -> dict[str, str]:
    """This environment without any HITL_* variable, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(values)
    return env


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # it exited meanwhile
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _rss_mb(pid: int) -> float:
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except OSError:
        return 0.0
    return pages * _PAGE / 2**20


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self, tail: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]

    def check_alive(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise RuntimeError(f"{self.name} exited with status {code}\n{self.output()}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (from /proc)."""
        return _cpu_seconds(self.pid)

    def rss_mb(self) -> float:
        """Resident set size now, in MiB."""
        return _rss_mb(self.pid)

    def children(self) -> list[int]:
        """The process ids of its children now (the gateway's outbound process)."""
        found: list[int] = []
        for path in Path(f"/proc/{self.pid}/task").glob("*/children"):
            with contextlib.suppress(OSError, ValueError):
                found += [int(pid) for pid in path.read_text().split()]
        return found

    def children_cpu_seconds(self) -> float:
        """User + system CPU time so far of the children it has now."""
        return sum(_cpu_seconds(pid) for pid in self.children())

    def children_rss_mb(self) -> float:
        """Resident set size now of its children, in MiB."""
        return sum(_rss_mb(pid) for pid in self.children())

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)


@dataclass
class Processes:
    workdir: Path
    started: list[Process] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: Mapping[str, str]) -> Process:
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{name}-{len(self.started)}.log"
        with log_path.open("wb") as out:
            popen = subprocess.Popen(
                argv,
                env=dict(env),
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        process = Process(name, popen, log_path)
        self.started.append(process)
        return process

    def stop(self, process: Process) -> None:
        process.stop()
        if process in self.started:
            self.started.remove(process)

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop()
        self.started.clear()


def run_command(
    argv: list[str], env: Mapping[str, str], cwd: Path, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def wait_until(
    check: Callable[[], Any],
    *,
    timeout: float = 20.0,
    what: str = "condition",
    alive: list[Process] | None = None,
    interval: float = 0.05,
) -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (httpx.HTTPError, OSError) as exc:
            last_error, result = exc, None
        if result:
            return result
        for process in alive or []:
            process.check_alive()
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what} (last: {last_error!r})")


def wait_http(url: str, process: Process, timeout: float = 30.0) -> None:
    wait_until(
        lambda: httpx.get(url, timeout=2.0).status_code == 200,
        timeout=timeout,
        what=f"{process.name} at {url}",
        alive=[process],
    )
