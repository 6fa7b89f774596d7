"""Every child process of sdsetup (git, pip, python) goes through here, so none outlives sdsetup.

- Its own process group (POSIX: a new session), so one signal reaches the child and what it started.
- Linux: PR_SET_PDEATHSIG(SIGKILL), set in the child between fork and exec (ctypes, no shell): a
  SIGKILLed sdsetup takes its child with it. The signal follows the *thread* that started the child,
  which `run` blocks until the child ends, so that thread always outlives it.
- Windows: the child is put in a job object that kills its members when sdsetup's last handle to it
  closes (KILL_ON_JOB_CLOSE), which the system does when sdsetup dies for any reason.
- While a run is tracked (`tracking(layout.children)`), each child is recorded as a file named by its
  pid in DIR/.sdsetup/children/, removed when it ends; `live_children` finds what a killed run left
  (grandchildren keep the process group, so a group that still has a member counts as alive).
- A timeout or Ctrl-C ends the whole group (TERM, then KILL), not only the direct child.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

_PR_SET_PDEATHSIG = 1
_tracked_dir: Path | None = None  # set by `tracking` for the duration of an install run
_lock = threading.Lock()
_job_handle: Any = None  # Windows: the one job object of this sdsetup process
_prctl: Any = None  # Linux: libc's prctl, loaded once in the parent


def _death_signal_setter() -> Any:
    """The function the child calls between fork and exec. ctypes is loaded here, in the parent: an import
    in the forked child could wait on a lock another thread of ours held at fork time."""
    global _prctl
    if _prctl is None:
        import ctypes

        _prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl = _prctl
    parent = os.getpid()

    def die_with_parent() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl: nobody would kill us later
            os._exit(1)

    return die_with_parent


def popen_kwargs() -> dict[str, Any]:
    """What makes a Popen child die with sdsetup (own group; Linux: death signal; Windows: new group)."""
    if os.name == "nt":
        return {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200)}
    kwargs: dict[str, Any] = {"start_new_session": True}
    if sys.platform.startswith("linux"):
        try:
            kwargs["preexec_fn"] = _death_signal_setter()
        except (OSError, AttributeError):
            pass  # no libc prctl (an unusual libc): the process group still lets sdsetup stop the child
    return kwargs


def _windows_job() -> Any:
    """The job object every child joins; closing its last handle (sdsetup exiting) kills them all."""
    global _job_handle
    if _job_handle is not None:
        return _job_handle
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)

    class IO_COUNTERS(ctypes.Structure):
        _fields_ = [(name, ctypes.c_ulonglong) for name in (
            "ReadOperationCount", "WriteOperationCount", "OtherOperationCount",
            "ReadTransferCount", "WriteTransferCount", "OtherTransferCount")]

    class BASIC_LIMIT(ctypes.Structure):
        _fields_ = [("PerProcessUserTimeLimit", ctypes.c_longlong), ("PerJobUserTimeLimit", ctypes.c_longlong),
                    ("LimitFlags", wintypes.DWORD), ("MinimumWorkingSetSize", ctypes.c_size_t),
                    ("MaximumWorkingSetSize", ctypes.c_size_t), ("ActiveProcessLimit", wintypes.DWORD),
                    ("Affinity", ctypes.c_size_t), ("PriorityClass", wintypes.DWORD), ("SchedulingClass", wintypes.DWORD)]

    class EXTENDED_LIMIT(ctypes.Structure):
        _fields_ = [("BasicLimitInformation", BASIC_LIMIT), ("IoInfo", IO_COUNTERS),
                    ("ProcessMemoryLimit", ctypes.c_size_t), ("JobMemoryLimit", ctypes.c_size_t),
                    ("PeakProcessMemoryUsed", ctypes.c_size_t), ("PeakJobMemoryUsed", ctypes.c_size_t)]

    kernel32.CreateJobObjectW.restype = wintypes.HANDLE
    job = kernel32.CreateJobObjectW(None, None)
    if not job:
        return None
    info = EXTENDED_LIMIT()
    info.BasicLimitInformation.LimitFlags = 0x2000  # JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
    JobObjectExtendedLimitInformation = 9
    if not kernel32.SetInformationJobObject(job, JobObjectExtendedLimitInformation, ctypes.byref(info), ctypes.sizeof(info)):
        kernel32.CloseHandle(job)
        return None
    _job_handle = job
    return job


def _join_job(process: subprocess.Popen) -> None:
    """Windows only. A child that starts its own children before this call leaves them outside the job;
    git and pip start theirs later (after reading their arguments and configuration)."""
    if os.name != "nt":
        return
    try:
        import ctypes

        job = _windows_job()
        if job is not None:
            ctypes.WinDLL("kernel32").AssignProcessToJobObject(job, int(process._handle))  # type: ignore[attr-defined]
    except (OSError, AttributeError, ValueError):
        pass  # best effort: the child still runs, it may only outlive a killed sdsetup


def adopt(process: subprocess.Popen, argv: Sequence[str]) -> Path | None:
    """After Popen with `popen_kwargs()`: join the job (Windows) and record the child while tracked."""
    _join_job(process)
    with _lock:
        folder = _tracked_dir
    if folder is None:
        return None
    record = folder / f"{process.pid}.json"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({
            "pid": process.pid, "host": socket.gethostname(), "program": Path(str(argv[0])).name,
            "args": [str(a) for a in argv[1:3] if "://" not in str(a)], "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "parent": os.getpid(), "start": start_time(process.pid),
        }), "utf-8")
    except OSError:
        return None
    return record


def start_time(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (Linux /proc/PID/stat, field 22), with the
    boot it belongs to folded in so a reboot never matches; None where the system does not say. A pid
    and its start time name one process: the pid alone may since belong to an unrelated one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except (OSError, ValueError):
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # after "(comm)", which may hold spaces
    try:
        ticks = int(fields[19])
    except (IndexError, ValueError):
        return None
    return ticks + (int(boot.replace("-", "")[:12], 16) << 64)


def release(record: Path | None) -> None:
    if record is not None:
        try:
            record.unlink()
        except OSError:
            pass


def stop(process: subprocess.Popen, grace: float = 3.0) -> None:
    """End the child and its group: TERM, a short wait, then KILL."""
    if process.poll() is not None and os.name == "nt":
        return
    try:
        if os.name == "nt":
            process.kill()
        else:
            os.killpg(process.pid, signal.SIGTERM)
    except (OSError, ProcessLookupError):
        pass
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    if os.name != "nt":
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | str | None = None,
        timeout: float | None = None, input: str | bytes | None = None, capture_output: bool = True,
        text: bool = True, encoding: str | None = "utf-8", errors: str | None = "replace",
        check: bool = False, stdin: Any = None, windowless: bool = False) -> subprocess.CompletedProcess:
    """`subprocess.run` for sdsetup's children (same result and exceptions: FileNotFoundError,
    TimeoutExpired, CalledProcessError with check=True), with the guarantees in the module text.
    `windowless`: no console window flashing up on Windows (hardware probes run from a GUI shell)."""
    pipe = subprocess.PIPE if capture_output else None
    if input is not None:
        stdin = subprocess.PIPE
    elif stdin is None:
        stdin = subprocess.DEVNULL  # a child never waits on the user's terminal
    argv = [str(a) for a in argv]
    kwargs = popen_kwargs()
    if windowless and os.name == "nt":
        kwargs["creationflags"] = kwargs.get("creationflags", 0) | getattr(subprocess, "CREATE_NO_WINDOW", 0x08000000)
    process = subprocess.Popen(argv, env=None if env is None else dict(env), cwd=cwd, stdin=stdin, stdout=pipe, stderr=pipe,
                               text=text, encoding=encoding if text else None, errors=errors if text else None,
                               **kwargs)
    record = adopt(process, argv)
    try:
        try:
            out, err = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(process)
            process.communicate()
            raise
        except BaseException:  # Ctrl-C, SystemExit: the child's group goes too
            stop(process)
            raise
    finally:
        release(record)
    result = subprocess.CompletedProcess(argv, process.returncode, out, err)
    if check:
        result.check_returncode()
    return result


@contextmanager
def tracking(folder: Path) -> Iterator[None]:
    """Record every child started in this block in FOLDER (DIR/.sdsetup/children)."""
    global _tracked_dir
    with _lock:
        previous, _tracked_dir = _tracked_dir, Path(folder)
    try:
        yield
    finally:
        with _lock:
            _tracked_dir = previous


def _group_alive(pid: int) -> bool:
    if os.name == "nt":
        return _windows_pid_alive(pid)
    try:
        os.killpg(pid, 0)  # the child led its own group: any member left (a grandchild) answers
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    except OSError:
        return False


def _windows_pid_alive(pid: int) -> bool:
    try:
        import ctypes

        kernel32 = ctypes.WinDLL("kernel32")
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    except (OSError, AttributeError):
        return False


def live_children(folder: Path) -> list[dict[str, Any]]:
    """Children an earlier run recorded that still run on this host; records of ended ones are removed."""
    alive = []
    try:
        entries = sorted(Path(folder).glob("*.json"))
    except OSError:
        return []
    host = socket.gethostname()
    for entry in entries:
        try:
            data = json.loads(entry.read_text("utf-8"))
            pid = int(data["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            release(entry)
            continue
        if data.get("host") not in (None, host):
            continue  # another machine's child (DIR on a network share): not ours to judge
        if data.get("parent") == os.getpid():
            continue
        recorded = data.get("start")
        now = start_time(pid) if isinstance(recorded, int) else None
        if now is not None and now != recorded:
            release(entry)  # the pid is another process's now; ours (and its group) ended
            continue
        if _group_alive(pid):
            alive.append(data)
        else:
            release(entry)
    return alive


def wait_for_children(folder: Path, *, wait: float = 10.0, poll: float = 0.5) -> list[dict[str, Any]]:
    """Wait up to WAIT seconds for an earlier run's children to end; returns those still running."""
    deadline = time.monotonic() + wait
    while True:
        alive = live_children(folder)
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(poll)
