"""The grading jail: students' code (the grading kernel, the verification) runs under bubblewrap (``bwrap``, the
sandbox behind Flatpak; no root needed where the kernel allows user namespaces), one jail per job, ending with it:

* ``--unshare-all``: no network (the kernel talks to nbgrader over unix sockets), its own processes (all die with
  it), IPC and hostname; a user namespace in which it runs as ``nobody`` without capabilities, and a seccomp filter
  that refuses the keyring system calls, as Flatpak does (a login session's keyring would be shared by every jail),
  and SysV IPC, POSIX message queues and IPv4/IPv6 sockets (objects that outlive the processes that made them);
  ``/proc/sys`` read-only;
* a read-only view of only what Python needs (:func:`view_paths`): the course, the gradebook, other students, the
  course secret, ``/root``, ``/home`` and ``/etc/shadow`` are not in it; private, size-capped in-memory folders
  (``/tmp``, the working folder, the kernel's socket folder);
* limits per job (:class:`JobLimits`): a cgroup of its own where cgroups can be used (:func:`limits_mode`), else
  rlimits, whose process count is per *user* (the class runner then refuses ``--workers N>1``).

Commands (no root needed): ``check`` (a jailed Python imports torch: exit 0, or what failed), ``install`` (the same
self-test, then the kernelspec ``gptedu-sandbox``), ``exec [--workdir DIR] [--rw] [--no-reference] -- CMD ...`` and
``kernel -f CONNECTION_FILE`` (what the kernelspec runs). ``GPTEDU_UNSANDBOXED=1`` is the one switch that grades
without the jail (``autograder/README.md``, "Sandbox"). Standard library only: this file runs as a script
(``python -I``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import platform
import secrets
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

KERNEL_NAME = "gptedu-sandbox"
UNSANDBOXED_ENV = "GPTEDU_UNSANDBOXED"
PACKAGE_DIR = str(Path(__file__).resolve().parents[1])  # the gptedu package: in the kernel's view only
JAIL_UID = 65534  # "nobody" inside the jail's user namespace
# how this file starts itself (kernelspec, exec): the file, not ``-m gptedu...``, so that ``-I`` keeps PYTHONPATH and
# the current folder out of the launcher
LAUNCHER = [sys.executable, "-I", os.path.abspath(__file__)]
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/alternatives",
             "/etc/fonts", "/etc/mime.types")
# Environment variables that pass into the jail (everything else, e.g. tokens in nbgrader's environment, stays out).
ENV_PASSTHROUGH = (
    "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONHASHSEED", "NBGRADER_EXECUTION", "OMP_NUM_THREADS",
    "MKL_NUM_THREADS", "MPLBACKEND", "GPTEDU_DATA", "GPTEDU_GPT2_DIR", "GPTEDU_SEED", "CUBLAS_WORKSPACE_CONFIG",
)
DATA_ENV = ("GPTEDU_DATA", "GPTEDU_GPT2_DIR")  # data the notebooks read: bound read-only
KERNEL_COPY_BUDGET = 64 * 2**20  # bytes of the student's folder copied into the kernel's private working folder
FIX_BWRAP = ("install bubblewrap: `sudo apt install bubblewrap` (Debian/Ubuntu) or `sudo dnf install bubblewrap` "
             "(Fedora), or ask your administrator")
FIX_USERNS = ("bwrap could not create a user namespace: allow them (`sudo sysctl kernel.unprivileged_userns_clone=1`; "
              "on Ubuntu 24.04 `sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0`), or run in a container "
              "started with user namespaces allowed")


class SandboxError(RuntimeError):
    """The jail cannot run here; the message says why and what to do."""


@dataclass
class JobLimits:
    """What one job may use. Memory, processes and CPU share are the job's own cgroup where cgroups can be used;
    without them memory is an address-space limit per process and ``nproc`` counts every process of the user."""

    memory_mb: int = 3072
    cpu_seconds: int = 1800  # CPU seconds of each process (a kernel: one notebook)
    nproc: int = 256  # processes and threads
    file_mb: int = 256  # largest file a job may write
    nofile: int = 1024  # open files per process
    tmpfs_mb: int = 512  # each private in-memory folder (/tmp, the working folder)
    cpus: float = 1.0  # CPU share with cgroups (a spinning job cannot take more than one core)

    def args(self) -> list[str]:
        return [f"--{k.replace('_', '-')}={v}" for k, v in asdict(self).items()]

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        for name, value in asdict(cls()).items():
            parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)

    @classmethod
    def from_args(cls, args) -> JobLimits:
        return cls(**{name: getattr(args, name) for name in asdict(cls())})


def unsandboxed() -> bool:
    """True when the instructor switched the jail off on purpose (``GPTEDU_UNSANDBOXED=1``)."""
    return os.environ.get(UNSANDBOXED_ENV, "") not in ("", "0")


# -------------------------------------------------------------------------------------------- per-job cgroups
def _own_cgroups() -> dict[str, str]:
    """controller (or "" for cgroup v2) -> this process's cgroup path, from /proc/self/cgroup."""
    found = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                found[name] = path
    return found


class JobCgroup:
    """A cgroup made for one job: memory, process count and CPU share that no other job shares. Jobs live under
    this process's own cgroup: ``<own>/gptedu-job-*`` with cgroup v1 (a hierarchy per controller), or
    ``<own>/gptedu/gptedu-job-*`` with v2 (usable where this process's cgroup is delegated to its user, e.g. a
    systemd scope with ``Delegate=yes``)."""

    def __init__(self, mode: str, parents: dict[str, Path]):
        self.mode, self.parents, self.dirs = mode, parents, {}

    @classmethod
    def detect(cls) -> JobCgroup | None:
        own = _own_cgroups()
        root = Path("/sys/fs/cgroup")
        if (root / "cgroup.controllers").is_file() and "" in own:  # pure v2
            own_dir = root / own[""].lstrip("/")
            parent = own_dir / "gptedu"
            try:
                parent.mkdir(exist_ok=True)
                for folder in (own_dir, parent):  # memory and pids for the jobs (needs a delegated cgroup)
                    control = folder / "cgroup.subtree_control"
                    missing = {"memory", "pids"} - set(control.read_text().split())
                    if missing:
                        control.write_text(" ".join(f"+{c}" for c in sorted(missing)))
                    with contextlib.suppress(OSError):
                        control.write_text("+cpu")  # optional: the CPU share
            except OSError:
                return None
            return cls("cgroup-v2", {"": parent})
        parents = {}
        for name in ("memory", "pids", "cpu"):
            base = root / name
            if name not in own or not (base / "cgroup.procs").is_file():
                if name == "cpu":
                    continue  # optional: the CPU share
                return None
            parents[name] = base / own[name].lstrip("/")  # a job weighs like one process in the scheduler
        return cls("cgroup-v1", parents) if all(os.access(p, os.W_OK) for p in parents.values()) else None

    def create(self, limits: JobLimits) -> None:
        self._sweep()
        name = f"gptedu-job-{os.getpid()}-{secrets.token_hex(4)}"
        for controller, parent in self.parents.items():
            (parent / name).mkdir()
            self.dirs[controller] = parent / name
        memory, quota = limits.memory_mb * 2**20, int(limits.cpus * 100000)  # quota per 100 ms period
        if self.mode == "cgroup-v2":
            wanted = [("", "memory.max", memory, True), ("", "memory.swap.max", 0, False),
                      ("", "pids.max", limits.nproc, True), ("", "cpu.max", f"{quota} 100000", False)]
        else:
            wanted = [("memory", "memory.limit_in_bytes", memory, True),
                      ("memory", "memory.memsw.limit_in_bytes", memory, False),
                      ("pids", "pids.max", limits.nproc, True), ("cpu", "cpu.cfs_quota_us", quota, False)]
        for controller, key, value, required in wanted:
            try:
                (self.dirs[controller] / key).write_text(str(value))
            except (OSError, KeyError):
                if required:
                    raise

    def join(self) -> None:
        """Move the calling process (the job's launcher child) into the job's cgroup."""
        for path in self.dirs.values():
            with open(path / "cgroup.procs", "w") as f:
                f.write("0")

    def remove(self) -> None:
        """Kill whatever is left in the job's cgroup and remove it."""
        for path in self.dirs.values():
            with contextlib.suppress(OSError):
                (path / "cgroup.kill").write_text("1")
        for _ in range(200):
            left = set()
            for path in self.dirs.values():
                with contextlib.suppress(OSError):
                    left |= {int(p) for p in (path / "cgroup.procs").read_text().split()}
            if not left:
                break
            for pid in left:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)
        for path in self.dirs.values():
            for _ in range(50):  # busy for a moment after its last process died
                with contextlib.suppress(OSError):
                    path.rmdir()
                if not path.exists():
                    break
                time.sleep(0.02)
        self.dirs = {}

    def _sweep(self) -> None:
        """Remove job cgroups whose launcher is gone (it was killed before it could clean up)."""
        for parent in self.parents.values():
            with contextlib.suppress(OSError):
                for path in parent.glob("gptedu-job-*"):
                    if not Path(f"/proc/{path.name.split('-')[2]}").exists():
                        stale = JobCgroup(self.mode, {})
                        stale.dirs = {"": path}
                        stale.remove()


@functools.cache
def job_cgroup() -> JobCgroup | None:
    """Where this process makes its jobs' cgroups (found once), or None where cgroups cannot be used."""
    return JobCgroup.detect()


def limits_mode() -> str:
    """How per-job limits are enforced here: ``"cgroup-v1"``/``"cgroup-v2"`` (memory, processes and CPU share per
    job), or ``"rlimit"`` (per process; the process limit counts every process of the user, so jobs run in parallel
    share it: run one job at a time)."""
    found = job_cgroup()
    return found.mode if found else "rlimit"


def _count_user_processes(uid: int) -> int:
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(entry.path).st_uid == uid:
                    count += 1
    return count


def _rlimits(limits: JobLimits, per_process: bool) -> dict[int, int]:
    """The rlimits of a job; ``per_process``: no cgroup holds its memory and processes, so rlimits do."""
    import resource

    found = {resource.RLIMIT_CPU: limits.cpu_seconds, resource.RLIMIT_FSIZE: limits.file_mb * 2**20,
             resource.RLIMIT_NOFILE: limits.nofile, resource.RLIMIT_CORE: 0}
    if per_process:
        found[resource.RLIMIT_AS] = limits.memory_mb * 2**20
        # per user: what this user runs already, plus the job's share (the documented caveat)
        found[resource.RLIMIT_NPROC] = _count_user_processes(os.getuid()) + limits.nproc
    return found


# ------------------------------------------------------------------------------------------------ seccomp
# Refuse (EPERM) the system calls that create kernel objects outliving every process of a job: the keyring calls, as
# Flatpak does (a session keyring inherited from the instructor's login would be shared by every jail), SysV IPC
# (shmget, semget, msgget), POSIX message queues (mq_open), and IPv4/IPv6 sockets (a closed TCP connection stays in
# TIME_WAIT, with its addresses, for a minute). They belong to the jail's namespaces: a jail that serves several runs
# (the verification's) would carry them from one run to the next. Nothing the notebooks use needs them (PyTorch and
# multiprocessing share memory through files in /dev/shm; the kernel talks over unix sockets). Classic BPF over
# struct seccomp_data (nr at 0, arch at 4, the first argument's low half at 16). arch -> (audit arch, denied, socket)
_DENIED_SYSCALLS = {"x86_64": (0xC000003E, (248, 249, 250, 29, 64, 68, 240), 41),
                    "aarch64": (0xC00000B7, (217, 218, 219, 194, 190, 186, 180), 198)}
_DENIED_FAMILIES = (2, 10)  # AF_INET, AF_INET6


def seccomp_program() -> bytes | None:
    arch = _DENIED_SYSCALLS.get(platform.machine())
    if arch is None:
        return None
    audit_arch, numbers, socket_nr = arch
    deny, allow = 0x00050000 | 1, 0x7FFF0000  # SECCOMP_RET_ERRNO | EPERM, SECCOMP_RET_ALLOW
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    # (op, label if true, label if false, k); the labels are resolved to relative jumps below
    prog = [(ld, None, None, 4), (jeq, "next", "deny", audit_arch), (ld, None, None, 0),
            (jge, "deny", "next", 0x40000000)]  # x32 system calls: refused
    prog += [(jeq, "deny", "next", nr) for nr in numbers]
    prog += [(jeq, "next", "allow", socket_nr), (ld, None, None, 16)]
    prog += [(jeq, "deny", "next", family) for family in _DENIED_FAMILIES]
    prog += [(ret, None, None, allow), (ret, None, None, deny)]
    where = {"allow": len(prog) - 2, "deny": len(prog) - 1}

    def jump(label, pc: int) -> int:
        return 0 if label in (None, "next") else where[label] - pc - 1

    return b"".join(struct.pack("HBBI", op, jump(t, pc), jump(f, pc), k) for pc, (op, t, f, k) in enumerate(prog))


# -------------------------------------------------------------------------------------------------- the view
def _within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def view_paths(allow_reference: bool) -> list[str]:
    """What the jail sees read-only beside the system: this Python's installation and packages (and ``gptedu``),
    and the data the notebooks read; existing real paths, none inside another."""
    paths = [sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))]
    paths += [p for p in sys.path if "-packages" in p]
    if allow_reference:
        paths.append(PACKAGE_DIR)
    for value in filter(None, map(os.environ.get, DATA_ENV)):
        paths.append(value if os.path.isdir(value) else os.path.dirname(value))
    kept: list[str] = []
    for p in sorted({os.path.realpath(p) for p in paths if p and os.path.isabs(p) and os.path.exists(p)}, key=len):
        if not any(_within(p, k) for k in kept):
            kept.append(p)
    return kept


@dataclass
class Jail:
    """One jailed command: its working folder, what else it sees, its limits."""

    cmd: list[str]
    workdir: str = "/tmp"  # where the command starts (inside the jail)
    # "ro"/"rw": ``workdir`` is the host folder at the same path, never copied; "kernel": a private in-memory
    # ``workdir`` (run's ``populate`` copies the host folder in) and a private /ipc folder (the kernel's sockets)
    mount: str = ""
    allow_reference: bool = True
    extra_ro: tuple[tuple[str, str], ...] = ()  # (host path, path in the jail)
    # the command is the jail's pid 1 (no bubblewrap reaper, whose memory every process of the jail could write)
    as_pid_1: bool = False
    limits: JobLimits = field(default_factory=JobLimits)

    def argv(self, bwrap: str, fds: dict[str, int]) -> list[str]:
        """The bwrap command line. ``fds``: the "seccomp" program's and the "info" file descriptors, where used."""
        size = str(self.limits.tmpfs_mb * 2**20)
        args = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--uid", str(JAIL_UID), "--gid",
                str(JAIL_UID), "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", "sandbox",
                "--clearenv", "--proc", "/proc", "--dev", "/dev", "--size", size, "--tmpfs", "/tmp"]
        # /proc/sys read-only: run by root, the jail's user is root on the host, whose sysctls (core_pattern!) the
        # fresh /proc would let it write
        args += ["--ro-bind", "/proc/sys", "/proc/sys"]
        for path in SYSTEM_DIRS:
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--ro-bind", path, path]
        args += [a for path in ETC_FILES if os.path.exists(path) for a in ("--ro-bind", path, path)]
        view = view_paths(self.allow_reference)
        for path in view:  # after the private /tmp: a venv under /tmp stays visible
            if self.mount and _within(os.path.realpath(self.workdir), path):
                raise SandboxError(
                    f"the jail would show {path}, which contains {self.workdir} (the folder being graded, and so "
                    "probably the course). Keep the course outside the Python installation, the venv and "
                    "the gptedu package (autograder/README.md, 'Sandbox').")
            args += ["--ro-bind", path, path]
        if not self.allow_reference and any(_within(PACKAGE_DIR, p) for p in view):
            args += ["--tmpfs", PACKAGE_DIR, "--remount-ro", PACKAGE_DIR]  # e.g. installed into site-packages
        for host, inside in self.extra_ro:
            args += ["--ro-bind", host, inside]
        if self.mount == "kernel":
            args += ["--size", size, "--tmpfs", self.workdir, "--size", str(2**20), "--tmpfs", "/ipc"]
        elif self.mount:
            args += ["--bind" if self.mount == "rw" else "--ro-bind", self.workdir, self.workdir]
        # bwrap's root and /dev are writable tmpfs: made read-only, the only writable places are /tmp, /dev/shm,
        # /ipc and the private working folder, which end with the jail
        args += ["--remount-ro", "/", "--remount-ro", "/dev", "--size", size, "--tmpfs", "/dev/shm"]
        env = {"HOME": "/tmp", "TMPDIR": "/tmp", "USER": "nobody", "LOGNAME": "nobody",
               "PATH": "/usr/local/bin:/usr/bin:/bin", "MPLCONFIGDIR": "/tmp/.matplotlib",
               "IPYTHONDIR": "/tmp/.ipython", "JUPYTER_RUNTIME_DIR": "/tmp/.jupyter", "PYTHONDONTWRITEBYTECODE": "1",
               **{k: v for k, v in os.environ.items() if k in ENV_PASSTHROUGH}}
        for key, value in env.items():
            args += ["--setenv", key, value]
        args += ["--chdir", self.workdir] + ["--as-pid-1"] * self.as_pid_1
        if "seccomp" in fds:
            args += ["--seccomp", str(fds["seccomp"])]
        if "info" in fds:
            args += ["--info-fd", str(fds["info"])]
        return [*args, "--", *self.cmd]


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


# ------------------------------------------------------------------------------------------------ the launcher
def run(jail: Jail, populate=None, log_cap: int | None = None) -> int:
    """Run ``jail`` to its end in this process's child and clean up (cgroup, leftover processes); its exit code.

    ``populate(root)``, if given, runs once the jail is built, before the command starts; ``root`` is the jail's
    root as seen from here (``/proc/<pid>/root``). ``log_cap``: the jail's stdout and stderr reach this process's
    stderr up to that many bytes (a kernel's raw writes to fd 1/2 must not fill nbgrader's log). SIGTERM, SIGINT or
    SIGHUP to this process end the jail."""
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxError(f"bwrap was not found on PATH: {FIX_BWRAP}")
    found = job_cgroup()
    cgroup = JobCgroup(found.mode, found.parents) if found else None
    if cgroup is not None:
        cgroup.create(jail.limits)
    rlimits = _rlimits(jail.limits, per_process=cgroup is None)
    fds: dict[str, int] = {}
    program = seccomp_program()
    if program is not None:
        r, w = os.pipe()
        os.write(w, program)
        os.close(w)
        fds["seccomp"] = r
    if populate is not None:  # the command waits (a shell in the jail) until populate() has run
        info_r, fds["info"] = os.pipe()
        ready_r, fds["ready"] = os.pipe()
        fds["go"], go_w = os.pipe()
        ready, go = fds["ready"], fds["go"]
        script = f'printf r >&{ready}; read -r go <&{go}; exec {go}<&- {ready}>&-; exec "$@"'
        jail = dataclasses.replace(jail, cmd=["/bin/sh", "-c", script, "sh", *jail.cmd])
    argv = jail.argv(bwrap, fds)

    def child_setup() -> None:  # in the child, before exec: join the job's cgroup, set the limits
        import resource

        if cgroup is not None:
            cgroup.join()
        for which, value in rlimits.items():
            hard = value + 5 if which == resource.RLIMIT_CPU else value  # SIGXCPU first, then SIGKILL
            resource.setrlimit(which, (value, hard))

    stopping = []

    def stop(signum, frame):
        stopping.append(signum)
        with contextlib.suppress(Exception):
            proc.kill()  # bwrap's death ends the jail (--die-with-parent, end of its pid namespace)

    proc = None
    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        pipe = subprocess.PIPE if log_cap is not None else None
        proc = subprocess.Popen(argv, pass_fds=tuple(fds.values()), preexec_fn=child_setup, stdout=pipe,
                                stderr=subprocess.STDOUT if pipe else None)
        for fd in fds.values():
            os.close(fd)
        if pipe:
            import threading

            threading.Thread(target=_forward, args=(proc.stdout, log_cap), daemon=True).start()
        if stopping:
            proc.kill()
        if populate is not None:
            info = _read_json(info_r)
            ready = os.read(ready_r, 1)  # the jail is built: its root is final
            for fd in (info_r, ready_r):
                os.close(fd)
            if info is not None and ready and not stopping:
                try:
                    populate(f"/proc/{info['child-pid']}/root")
                finally:
                    with contextlib.suppress(OSError):  # the jail may be gone already
                        os.write(go_w, b"go\n")
            os.close(go_w)
        code = proc.wait()  # retried when a signal interrupts it (PEP 475): stop() does not raise
        return code if code >= 0 else 128 - code
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if cgroup is not None:
            cgroup.remove()
        for s, handler in old.items():
            signal.signal(s, handler)


def _forward(stream, cap: int) -> None:
    """Copy ``stream`` to stderr up to ``cap`` bytes, then drop the rest (reading on, so the writer never blocks)."""
    for chunk in iter(lambda: stream.read1(65536), b""):
        if cap > 0:
            with contextlib.suppress(OSError):
                sys.stderr.buffer.write(chunk[:cap])
                sys.stderr.buffer.flush()
            cap -= len(chunk)


def _read_json(fd: int) -> dict | None:
    data = b""
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        data += chunk
        with contextlib.suppress(ValueError):
            return json.loads(data)


def student_files(folder: str, budget: int = KERNEL_COPY_BUDGET):
    """What the student's code may read of ``folder``, as (path relative to ``folder``, host path), in a fixed
    order: regular files only (no links, devices, FIFOs), no notebooks (an earlier graded notebook holds test code),
    at most ``budget`` bytes."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if name.endswith(".ipynb") or not stat.S_ISREG(st.st_mode) or st.st_size > budget:
                continue
            budget -= st.st_size
            yield os.path.relpath(path, folder), path


def copy_folder(src: str, dst: str) -> None:
    """Copy the :func:`student_files` of ``src`` into ``dst`` (the kernel's private folder, a verification job)."""
    for rel, path in student_files(src):
        target = os.path.join(dst, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(path, "rb") as f_in, open(target, "xb") as f_out:
            shutil.copyfileobj(f_in, f_out)


def kernel_main(connection_file: str, limits: JobLimits, preload: str, extra: list[str]) -> int:
    """What the kernelspec runs (cwd: the notebook's folder): ipykernel in a jail, its sockets in the jail's own
    ``/ipc`` folder, reached from nbgrader through links ``<ip>-<port>`` -> ``/proc/<jail>/root/ipc/kernel-<port>``."""
    info = json.loads(Path(connection_file).read_text())
    if info.get("transport") != "ipc" or not os.path.isabs(info.get("ip", "")):
        raise SandboxError(
            "the sandboxed kernel has no network, so it talks over ipc sockets, but the connection file asks for "
            f"transport {info.get('transport')!r} at {info.get('ip')!r}. Use the course configuration "
            "(configure_nbgrader sets a kernel manager that does this).")
    ports = [info[k] for k in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")]
    links = [f"{info['ip']}-{port}" for port in ports]
    workdir = os.getcwd()
    cmd = [sys.executable, "-m", "ipykernel_launcher", "-f", "/ipc/connection.json", *extra]
    if preload:  # imported while the kernel starts, so a slow import does not eat the first cell's timeout
        cmd.append(f"--IPKernelApp.exec_lines=['import {preload}']")

    def populate(root: str) -> None:
        copy_folder(workdir, root + workdir)
        with open(root + "/ipc/connection.json", "w") as f:
            json.dump(dict(info, ip="/ipc/kernel"), f)
        for link, port in zip(links, ports, strict=True):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)
            os.symlink(f"{root}/ipc/kernel-{port}", link)

    try:
        return run(Jail(cmd, workdir=workdir, mount="kernel", limits=limits), populate, log_cap=65536)
    finally:
        for link in links:
            with contextlib.suppress(OSError):
                os.unlink(link)


# ------------------------------------------------------------------------------------------- diagnosis, setup
_USERNS_ERRORS = ("setting up uid map", "No permissions to creat", "Creating new namespace failed",
                  "Operation not permitted")  # bwrap's words when user namespaces are not allowed


def _explain(stderr: str) -> str:
    text = stderr.strip()
    return f"{text} -> {FIX_USERNS}" if any(e in text for e in _USERNS_ERRORS) else text


def problems() -> list[str]:
    """Why the jail cannot run here (empty: it can). Starts a jailed ``python -c pass`` (~50 ms), once per PATH
    and Python: enough to find a missing bwrap, user namespaces that are not allowed, a Python the jail cannot see."""
    return _problems(os.environ.get("PATH"), sys.executable)


@functools.cache
def _problems(path: str | None, python: str) -> list[str]:
    if not sys.platform.startswith("linux"):
        return [f"the sandbox needs Linux (this is {sys.platform}); grade in a Linux VM"]
    if bwrap_path() is None:
        return [f"bubblewrap (bwrap) is not installed or not on PATH: {FIX_BWRAP}"]
    code, out = _run_captured([python, "-I", "-c", "import encodings, site"], JobLimits(memory_mb=1024), 60)
    if code != 0:
        return [f"a jailed Python did not start (exit code {code}): {_explain(out)}"]
    if os.geteuid() == 0 and limits_mode() == "rlimit":
        return ["running as root without usable cgroups: the jail's process limit would not hold (root ignores "
                "RLIMIT_NPROC). Mount the cgroup controllers memory and pids, or grade as an ordinary user"]
    return []


def exec_argv(cmd: list[str], *flags: str, limits: JobLimits | None = None) -> list[str]:
    """The command line that runs ``cmd`` jailed through this file's ``exec`` command; ``flags``: its options
    (``--no-reference``, ``--ro HOST:JAIL``, ...)."""
    return [*LAUNCHER, "exec", *flags, *(limits.args() if limits else []), "--", *cmd]


def _run_captured(cmd: list[str], limits: JobLimits, timeout: float, *flags: str) -> tuple[int | None, str]:
    """Run ``cmd`` jailed in a child; (exit code, or None on timeout; output)."""
    try:
        res = subprocess.run(exec_argv(cmd, *flags, limits=limits), capture_output=True, timeout=timeout, cwd="/")
    except subprocess.TimeoutExpired:
        return None, f"no answer within {timeout:.0f} s"
    return res.returncode, (res.stdout + res.stderr).decode(errors="replace")


SELF_TEST = r"""
import os, socket, sys
failed = []
def check(what, ok):
    if not ok:
        failed.append(what)
import torch, ipykernel  # noqa: F401 - what the kernel needs
check("the jail runs as root", os.getuid() != 0)
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    failed.append("the network is reachable")
except OSError:
    pass
hidden, view = sys.argv[1:sys.argv.index("--view")], sys.argv[sys.argv.index("--view") + 1:]
for path in ["/etc/shadow", *hidden]:
    check(f"{path} is visible", not os.path.exists(path))
for name in os.listdir("/home") if os.path.isdir("/home") else []:  # only folders leading to a venv or data bound
    check(f"/home/{name} is visible", any(v == f"/home/{name}" or v.startswith(f"/home/{name}/") for v in view))
try:
    import gptedu  # noqa: F401
    failed.append("the gptedu package is importable with --no-reference")
except ImportError:
    pass
open("/tmp/self-test", "w").write("private /tmp is writable")
print("SELF-TEST " + ("FAILED: " + "; ".join(failed) if failed else "OK"))
"""


def self_test(limits: JobLimits | None = None) -> str:
    """Start a jailed Python that imports torch and ipykernel and checks the jail from inside; '' when all holds,
    else what failed (and the fix, where known)."""
    found = problems()
    if found:
        return "; ".join(found)
    with tempfile.TemporaryDirectory(prefix="gptedu-self-test-") as course:  # stands for a course folder
        Path(course, "gradebook.db").write_text("secret")
        code, out = _run_captured([sys.executable, "-c", SELF_TEST, course, os.path.join(PACKAGE_DIR, "__init__.py"),
                                   "--view", *view_paths(allow_reference=False)], limits or JobLimits(), 300,
                                  "--no-reference")
    if code == 0 and "SELF-TEST OK" in out:
        return ""
    lines = [line for line in out.splitlines() if line.strip()]
    return f"a jailed Python that imports torch failed (exit code {code}): " + _explain("\n".join(lines[-15:]))


def kernelspec_problems() -> list[str]:
    """Whether the installed kernelspec runs this sandbox with this Python (else: run install again)."""
    from jupyter_core.paths import jupyter_path

    found = [Path(base) / KERNEL_NAME / "kernel.json" for base in jupyter_path("kernels")]
    path = next((p for p in found if p.is_file()), None)
    again = f"run `{sys.executable} -m gptedu.grading.sandbox install`"
    if path is None:
        return [f"the '{KERNEL_NAME}' kernelspec is not installed: {again} (no root needed)"]
    if json.loads(path.read_text()).get("argv", [])[:3] != LAUNCHER:
        return [f"the '{KERNEL_NAME}' kernelspec in {path.parent} was installed for another Python or checkout: "
                f"{again} again"]
    return []


def install(kernels_dir: str | Path | None = None, limits: JobLimits | None = None, preload: str = "torch") -> Path:
    """Self-test first, then write the kernelspec (atomically); returns its folder. A failed self-test leaves no
    kernelspec (an old one there is removed: it would not work either)."""
    limits = limits or JobLimits()
    # default <venv>/share/jupyter/kernels: found by every Jupyter tool run from this venv, no global change
    spec_dir = Path(kernels_dir or Path(sys.prefix) / "share" / "jupyter" / "kernels") / KERNEL_NAME
    reason = self_test(limits)
    if reason:
        shutil.rmtree(spec_dir, ignore_errors=True)
        raise SandboxError(f"the sandbox's self-test failed, so no kernelspec was installed: {reason}")
    kernel = {
        "argv": [*LAUNCHER, "kernel", *limits.args(), f"--preload={preload}", "-f", "{connection_file}"],
        "display_name": "Python 3 (gptedu grading sandbox)",
        "language": "python",
        "interrupt_mode": "message",  # a signal would end bwrap, not interrupt the kernel inside it
        "metadata": {"debugger": False},
    }
    spec_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{KERNEL_NAME}-", dir=spec_dir.parent))
    (staging / "kernel.json").write_text(json.dumps(kernel, indent=1) + "\n")
    staging.chmod(0o755)
    shutil.rmtree(spec_dir, ignore_errors=True)
    os.replace(staging, spec_dir)
    return spec_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gptedu.grading.sandbox", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="start a jailed Python (imports torch); exit 0, or print what failed")
    p_install = sub.add_parser("install", help="self-test, then write the kernelspec (no root needed)")
    p_install.add_argument("--kernels-dir", help="where kernelspecs go (default: <venv>/share/jupyter/kernels)")
    p_kernel = sub.add_parser("kernel", help="(run by Jupyter) ipykernel in a jail")
    p_kernel.add_argument("-f", dest="connection_file", required=True)
    p_exec = sub.add_parser("exec", help="run a command in a jail: exec [--workdir DIR] [--rw] -- python -c ...")
    p_exec.add_argument("--workdir", help="host folder shown (read-only) at the same path and started in; no copy")
    p_exec.add_argument("--rw", action="store_true", help="show --workdir read-write")
    p_exec.add_argument("--no-reference", action="store_true", help="hide the gptedu package")
    p_exec.add_argument("--ro", action="append", default=[], metavar="HOST:JAIL", help="bind HOST read-only at JAIL")
    p_exec.add_argument("--as-pid-1", action="store_true", help="the command is the jail's pid 1 (it reaps orphans)")
    p_exec.add_argument("cmd", nargs=argparse.REMAINDER)
    for p in (p_install, p_kernel):
        p.add_argument("--preload", default="torch", help="module the kernel imports while it starts")
    for p in (p_install, p_kernel, p_exec):
        JobLimits.add_arguments(p)
    args, extra = parser.parse_known_args(argv)
    try:
        if args.command == "install":
            spec_dir = install(args.kernels_dir, JobLimits.from_args(args), args.preload)
            print(f"self-test passed; installed the kernelspec '{KERNEL_NAME}' in {spec_dir} "
                  f"(limits: {limits_mode()})")
            return 0
        if args.command == "check":
            reason = self_test()
            if reason:
                print(f"sandbox unavailable: {reason}")
                return 1
            found = kernelspec_problems()
            print(f"sandbox works here: bwrap at {bwrap_path()}, limits per job: {limits_mode()}"
                  + (f"; but {found[0]}" if found else ""))
            return 0
        if args.command == "kernel":
            return kernel_main(args.connection_file, JobLimits.from_args(args), args.preload, extra)
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        if extra or not cmd:
            parser.error("usage: exec [--workdir DIR] [--rw] [--no-reference] -- COMMAND ...")
        if cmd[0] == "python":
            cmd = [sys.executable, *cmd[1:]]
        workdir, mount = (os.path.realpath(args.workdir), "rw" if args.rw else "ro") if args.workdir else ("/tmp", "")
        return run(Jail(cmd, workdir=workdir, mount=mount, extra_ro=tuple(tuple(i.split(":", 1)) for i in args.ro),
                        allow_reference=not args.no_reference, as_pid_1=args.as_pid_1,
                        limits=JobLimits.from_args(args)))
    except SandboxError as exc:
        print(f"gptedu sandbox: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
