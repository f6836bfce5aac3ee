"""A jail for students' code: the grading kernel and the out-of-process verifier run inside it (Linux, as root).

What the jail gives the code inside it:

* an unprivileged user (``gptedu-grader`` by default, created by ``install``), no capabilities, ``no_new_privs``;
* no network: a fresh network namespace with nothing in it (the kernel talks to nbgrader over ``ipc`` sockets);
* its own filesystem view: a memory-backed root holding read-only copies (bind mounts) of the system directories,
  the Python installation and the packages the kernel needs, and nothing else. The course (``source/``, the
  gradebook, ``submitted/``, other students' ``autograded/`` folders) does not exist in it. The student's own folder
  is a private in-memory *copy*: whatever the code writes there vanishes with the kernel, and nothing it creates
  can trick nbgrader, which keeps running as root outside;
* its own process namespace (when the kernel exits, every process it started is killed), private ``/tmp``,
  ``/dev/shm`` and System V IPC;
* resource limits (``setrlimit``, the same as ``prlimit``): address space, CPU seconds, processes, file size, open
  files.

Commands (run as root)::

    python -m gptedu.grading.sandbox install      # one-time: create the user, write the kernelspec, self-test
    python -m gptedu.grading.sandbox check        # is it usable here? (exit 0 = yes), prints the reason if not
    python -m gptedu.grading.sandbox exec -- CMD  # run CMD in the jail (used by the verifier; handy to poke at)
    python -m gptedu.grading.sandbox kernel -f CONNECTION_FILE   # what the kernelspec runs (nbgrader starts it)

Everything in here uses only the standard library (namespaces and mounts through ``ctypes``), so it needs no
package beyond Python, and it never imports ``torch``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import pwd
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

KERNEL_NAME = "gptedu-sandbox"
DEFAULT_USER = "gptedu-grader"
SETTINGS_FILE = "sandbox.json"

# Linux constants (include/uapi/linux/sched.h, mount.h, prctl.h).
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38

# System directories every Python needs (read-only); missing ones are skipped, top-level symlinks (/bin -> usr/bin)
# are recreated as symlinks.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")
DEVICES = ("null", "zero", "full", "random", "urandom")
# Environment variables that pass into the jail (everything else, e.g. tokens in nbgrader's environment, stays out).
ENV_PASSTHROUGH = (
    "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH", "PYTHONHASHSEED", "NBGRADER_EXECUTION", "OMP_NUM_THREADS",
    "MKL_NUM_THREADS", "MPLBACKEND", "GPTEDU_DATA", "GPTEDU_GPT2_DIR", "GPTEDU_SEED", "CUBLAS_WORKSPACE_CONFIG",
)
# Data that notebooks may read: the directory of the file/folder named by these variables is bound read-only.
DATA_ENV = ("GPTEDU_DATA", "GPTEDU_GPT2_DIR")


class SandboxError(RuntimeError):
    """The jail cannot be set up here; the message says why and what to do."""


@dataclass
class SandboxSettings:
    """What ``install`` decided; stored as JSON next to the kernelspec and read by every jailed launch."""

    user: str = DEFAULT_USER
    uid: int = -1
    gid: int = -1
    python: str = ""  # the interpreter that runs inside the jail (the course's venv)
    memory_mb: int = 6144  # RLIMIT_AS: address space (torch maps a lot more than it touches)
    cpu_seconds: int = 1800  # RLIMIT_CPU: for the whole kernel, i.e. per notebook
    nproc: int = 256  # RLIMIT_NPROC: processes+threads of the grading user (torch starts one thread per core)
    file_mb: int = 256  # RLIMIT_FSIZE: largest file the code may write
    nofile: int = 1024  # RLIMIT_NOFILE
    tmpfs_mb: int = 512  # size of each private in-memory filesystem (/tmp, the copy of the student's folder)
    preload: str = "torch"  # module(s) the kernel imports while starting ("torch, numpy"); "" for none
    ro_paths: list[str] = field(default_factory=list)  # Python installation, venv, site-packages, ...
    reference_paths: list[str] = field(default_factory=list)  # the gptedu package: hidden from the verifier

    @classmethod
    def load(cls, path: str | Path) -> SandboxSettings:
        data = json.loads(Path(path).read_text())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1) + "\n")


# --------------------------------------------------------------------------------------------------- syscalls
_libc = ctypes.CDLL(None, use_errno=True)


def _ok(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _unshare(flags: int) -> None:
    _ok(_libc.unshare(ctypes.c_int(flags)), "unshare")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = (lambda s: s.encode() if s is not None else None)  # noqa: E731
    _ok(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def _prctl(option: int, arg: int) -> None:
    _ok(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0),
                    ctypes.c_ulong(0)), "prctl")


# ------------------------------------------------------------------------------------------------ where things are
def default_kernels_dir() -> Path:
    """``<venv>/share/jupyter/kernels``: found by every Jupyter tool run from this venv, no global change."""
    return Path(sys.prefix) / "share" / "jupyter" / "kernels"


def find_kernelspec_dir(kernel_name: str = KERNEL_NAME) -> Path | None:
    """The installed kernelspec directory, looked up the way Jupyter does (``JUPYTER_PATH`` first)."""
    from jupyter_core.paths import jupyter_path

    for base in jupyter_path("kernels"):
        candidate = Path(base) / kernel_name
        if (candidate / "kernel.json").is_file() and (candidate / SETTINGS_FILE).is_file():
            return candidate
    return None


def _python_paths(python: str) -> dict:
    """Ask ``python`` where its installation, its packages and the reference package live."""
    code = (
        "import json, sys, os\n"
        "out = {'prefix': sys.prefix, 'base_prefix': sys.base_prefix, 'exe': os.path.realpath(sys.executable),"
        " 'path': [p for p in sys.path if p], 'ref': []}\n"
        "try:\n"
        "    import gptedu\n"
        "    out['ref'] = [os.path.realpath(p) for p in gptedu.__path__]\n"
        "except Exception:\n"
        "    pass\n"
        "print(json.dumps(out))\n"
    )
    env = {k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "PATH", "LANG")}
    res = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd="/", env=env, timeout=120)
    if res.returncode != 0:
        raise SandboxError(f"Could not ask {python} for its paths:\n{res.stderr}")
    return json.loads(res.stdout)


def _dedupe_paths(paths: list[str]) -> list[str]:
    """Existing, absolute, real paths, with those inside another listed path removed."""
    real = sorted({os.path.realpath(p) for p in paths if os.path.isabs(p) and os.path.exists(p)}, key=len)
    kept: list[str] = []
    for p in real:
        if not any(p == k or p.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(p)
    return kept


def _within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


# --------------------------------------------------------------------------------------------------- diagnosis
def problems(settings_path: str | Path | None = None) -> list[str]:
    """Why the sandbox cannot run here (empty list: it can). Cheap enough to call on every nbgrader start."""
    found: list[str] = []
    if not sys.platform.startswith("linux"):
        return [f"the sandbox needs Linux (this is {sys.platform})"]
    if os.geteuid() != 0:
        found.append("nbgrader is not running as root (the jail needs root to set up namespaces and drop to the "
                     "grading user); run autograde as root, or accept the unsandboxed kernel")
    path = Path(settings_path) if settings_path else None
    if path is None:
        spec_dir = find_kernelspec_dir()
        path = spec_dir / SETTINGS_FILE if spec_dir else None
    if path is None or not path.is_file():
        found.append(f"the '{KERNEL_NAME}' kernelspec is not installed: run `python -m gptedu.grading.sandbox "
                     "install` once, as root")
        return found
    settings = SandboxSettings.load(path)
    try:
        pw = pwd.getpwnam(settings.user)
        if pw.pw_uid == 0 or pw.pw_uid != settings.uid:
            found.append(f"user {settings.user} has uid {pw.pw_uid}, the sandbox was installed for uid "
                         f"{settings.uid}: run install again")
    except KeyError:
        found.append(f"user {settings.user} does not exist: run `python -m gptedu.grading.sandbox install`")
    if not os.access(settings.python, os.X_OK):
        found.append(f"the sandbox's interpreter {settings.python} is missing: run install again")
    if not found:
        reason = _probe_namespaces()
        if reason:
            found.append(reason)
    return found


def _probe_namespaces() -> str:
    """Fork a child that tries the namespaces the jail needs; '' when it works."""
    pid = os.fork()
    if pid == 0:  # child: never returns
        code = 0
        try:
            _unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID)
        except OSError:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return ("this kernel does not allow creating namespaces (unshare failed): in a container, run it with "
                "--privileged or CAP_SYS_ADMIN, or grade on a Linux machine/VM as root")
    return ""


def available() -> bool:
    return not problems()


# ---------------------------------------------------------------------------------------------------- the jail
@dataclass
class Jail:
    """One jailed process: which folder it works in, what else it sees, and whether the reference is visible."""

    settings: SandboxSettings
    workdir: str  # absolute; the process starts here
    copy_workdir: bool = True  # True: a private in-memory copy; False: the real folder, bound read-write
    rw_dirs: list[str] = field(default_factory=list)  # other host folders bound read-write (the ipc socket folder)
    allow_reference: bool = True  # False: the gptedu package is not in the jail (the verifier)
    files: dict[str, bytes] = field(default_factory=dict)  # files created in the jail's /tmp (name -> content)
    # with copy_workdir: the private working folder gets these files (relative path -> content) instead of a copy
    # of the host folder (the verification server hands each job over this way)
    workdir_files: dict[str, bytes] | None = None

    def _binds(self) -> list[str]:
        ro = list(self.settings.ro_paths)
        if self.allow_reference:
            ro += self.settings.reference_paths
        for var in DATA_ENV:
            value = os.environ.get(var)
            if value and os.path.exists(value):
                ro.append(value if os.path.isdir(value) else os.path.dirname(value))
        return _dedupe_paths(ro)

    def _check_binds(self, binds: list[str]) -> None:
        for path in binds:
            if _within(self.workdir, path):
                raise SandboxError(
                    f"The sandbox would expose {path}, which contains the folder being graded ({self.workdir}) and "
                    "so probably the whole course. Keep the course outside the Python installation and the "
                    "package folders (see autograder/README.md, 'Sandbox')."
                )

    def enter(self, root: str, argv: list[str], env: dict[str, str]) -> None:
        """In a child forked after ``unshare(CLONE_NEWPID)``: build the jail on the empty folder ``root`` (a mount
        point, left empty on the host), drop privileges, exec ``argv``. Never returns."""
        env = self.build(root, env)
        os.closerange(3, 65536)
        os.execve(argv[0], argv, env)

    def build(self, root: str, env: dict[str, str]) -> dict[str, str]:
        """Build the jail on ``root``, chroot into it and drop privileges, in this process (which must be the one
        forked after ``unshare(CLONE_NEWPID)``); returns the environment the jailed code must use."""
        s = self.settings
        binds = self._binds()
        self._check_binds(binds)
        _unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
        os.umask(0o022)
        _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=16m")

        def inside(path: str) -> str:
            return root + path

        def bind(src: str, dst: str, read_only: bool) -> None:
            target = inside(dst)
            if os.path.isdir(src):
                os.makedirs(target, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                Path(target).touch()
            _mount(src, target, None, MS_BIND | MS_REC)
            flags = MS_REMOUNT | MS_BIND | MS_NOSUID | (MS_RDONLY if read_only else 0)
            _mount(None, target, None, flags)

        for path in SYSTEM_PATHS:
            if os.path.islink(path):
                os.symlink(os.readlink(path), inside(path))
            elif os.path.isdir(path):
                bind(path, path, read_only=True)
        for path in binds:
            bind(path, path, read_only=True)
        if not self.allow_reference:
            for ref in self.settings.reference_paths:  # e.g. a non-editable install inside site-packages
                if any(_within(ref, b) for b in binds) and os.path.isdir(inside(ref)):
                    _mount("tmpfs", inside(ref), "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4k")
        # /dev: a few harmless devices, private shared memory
        os.makedirs(inside("/dev"), exist_ok=True)
        _mount("tmpfs", inside("/dev"), "tmpfs", MS_NOSUID, "mode=755,size=64k")
        for name in DEVICES:
            bind(f"/dev/{name}", f"/dev/{name}", read_only=False)
        for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                             ("stderr", "/proc/self/fd/2")):
            os.symlink(target, inside(f"/dev/{name}"))
        os.makedirs(inside("/dev/shm"))
        _mount("tmpfs", inside("/dev/shm"), "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={s.tmpfs_mb}m")
        os.makedirs(inside("/proc"), exist_ok=True)
        _mount("proc", inside("/proc"), "proc", MS_NOSUID | MS_NODEV)  # this pid namespace only
        os.makedirs(inside("/tmp"), exist_ok=True)
        _mount("tmpfs", inside("/tmp"), "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={s.tmpfs_mb}m")
        home = "/tmp/home"
        os.makedirs(inside(home))
        os.chown(inside(home), s.uid, s.gid)
        for name, content in self.files.items():
            path = inside("/tmp/" + name)
            Path(path).write_bytes(content)
            os.chown(path, s.uid, s.gid)
            os.chmod(path, 0o600)
        for path in self.rw_dirs:
            bind(path, path, read_only=False)
        if self.copy_workdir:
            target = inside(self.workdir)
            os.makedirs(target, exist_ok=True)
            _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=755,size={s.tmpfs_mb}m")
            if self.workdir_files is None:
                _copy_tree(self.workdir, target, s.uid, s.gid)
            else:
                _write_tree(self.workdir_files, target, s.uid, s.gid)
        else:
            bind(self.workdir, self.workdir, read_only=False)
        os.chdir(root)
        os.chroot(root)
        os.chdir(self.workdir)
        self._drop_privileges()
        return dict(env, HOME=home, USER=s.user, LOGNAME=s.user, TMPDIR="/tmp", PATH="/usr/local/bin:/usr/bin:/bin",
                    MPLCONFIGDIR=f"{home}/.matplotlib")

    def _drop_privileges(self) -> None:
        s = self.settings
        limits = {
            resource.RLIMIT_AS: s.memory_mb * 2**20,
            resource.RLIMIT_CPU: s.cpu_seconds,
            resource.RLIMIT_NPROC: s.nproc,
            resource.RLIMIT_FSIZE: s.file_mb * 2**20,
            resource.RLIMIT_NOFILE: s.nofile,
            resource.RLIMIT_CORE: 0,
        }
        for which, value in limits.items():
            # CPU: the soft limit sends SIGXCPU (kills Python), the hard one SIGKILL a few seconds later
            hard = value + 5 if which == resource.RLIMIT_CPU else value
            resource.setrlimit(which, (value, hard))
        os.setsid()
        os.setgroups([])
        os.setresgid(s.gid, s.gid, s.gid)
        os.setresuid(s.uid, s.uid, s.uid)  # all capabilities are dropped with uid 0
        if os.geteuid() == 0 or os.getuid() == 0:
            raise SandboxError("could not drop root privileges")
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the launcher died (e.g. SIGKILL from nbgrader): die too


def _write_tree(files: dict[str, bytes], dst: str, uid: int, gid: int) -> None:
    """Write ``files`` (relative path -> content) under ``dst``, owned by the grading user."""
    for rel, content in files.items():
        parts = [p for p in rel.split("/") if p not in ("", ".", "..")]
        if not parts:
            continue
        folder = dst
        for part in parts[:-1]:
            folder = os.path.join(folder, part)
            if not os.path.isdir(folder):
                os.mkdir(folder)
                os.chown(folder, uid, gid)
        path = os.path.join(folder, parts[-1])
        with open(path, "wb") as f:
            f.write(content)
        os.chown(path, uid, gid)
    os.chown(dst, uid, gid)


def _copy_tree(src: str, dst: str, uid: int, gid: int) -> None:
    """Copy the student's folder into the jail's private copy; symlinks are copied as links, never followed."""
    for entry in os.scandir(src):
        target = os.path.join(dst, entry.name)
        try:
            if entry.is_symlink():
                os.symlink(os.readlink(entry.path), target)
                os.lchown(target, uid, gid)
                continue
            if entry.is_dir():
                os.mkdir(target)
                _copy_tree(entry.path, target, uid, gid)
            elif entry.is_file():
                shutil.copyfile(entry.path, target, follow_symlinks=False)
            else:
                continue
            os.chown(target, uid, gid)
        except OSError as exc:  # e.g. the copy does not fit: the kernel still starts, without that file
            print(f"gptedu sandbox: could not copy {entry.path} into the jail: {exc}", file=sys.stderr)
    os.chown(dst, uid, gid)


def run_jailed(jail: Jail, argv: list[str], env: dict[str, str]) -> int:
    """Fork the jailed process (pid 1 of a new pid namespace), forward signals to it, return its exit code.

    Killing this process (SIGKILL) kills the jailed one (parent-death signal), which takes every process it started
    with it (end of the pid namespace).
    """
    root = tempfile.mkdtemp(prefix="gptedu-jail-")  # only a mount point: stays empty on the host
    _unshare(CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:
        try:
            jail.enter(root, argv, env)
        except BaseException as exc:  # noqa: BLE001 - report and leave the child
            print(f"gptedu sandbox: could not start the jailed process: {exc}", file=sys.stderr)
        os._exit(121)

    def forward(signum, _frame):
        os.kill(pid, signal.SIGKILL if signum == signal.SIGTERM else signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, forward)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            return 121
    code = os.waitstatus_to_exitcode(status)
    with contextlib.suppress(OSError):
        os.rmdir(root)
    return code if code >= 0 else 128 - code


def run_jailed_function(jail: Jail, target, env: dict[str, str], fds: tuple[int, int, int]) -> int:
    """Like :func:`run_jailed`, but the jailed process runs ``target()`` (a function already loaded in this
    program) instead of exec'ing a command: the verification server forks one jail per job from a process that has
    imported torch once. ``fds`` become the jailed process's stdin, stdout and stderr; every other descriptor is
    closed. Call it in a child forked for the job (it changes which pid namespace this process's children get)."""
    root = tempfile.mkdtemp(prefix="gptedu-jail-")
    _unshare(CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:
        code = 121
        try:
            for number, fd in enumerate(fds):
                os.dup2(fd, number)
            jailed_env = jail.build(root, env)
            os.environ.clear()
            os.environ.update(jailed_env)
            os.closerange(3, 65536)
            code = int(target() or 0)
        except BaseException as exc:  # noqa: BLE001 - report and leave the child
            with contextlib.suppress(Exception):
                print(f"gptedu sandbox: the jailed job failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        os._exit(code)
    for fd in fds:
        os.close(fd)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            return 121
        except InterruptedError:
            continue
    with contextlib.suppress(OSError):
        os.rmdir(root)
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def _jail_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in ENV_PASSTHROUGH}


# ---------------------------------------------------------------------------------------------------- commands
def _load_settings(path: str | None) -> SandboxSettings:
    if path:
        return SandboxSettings.load(path)
    spec_dir = find_kernelspec_dir()
    if spec_dir is None:
        raise SandboxError(f"The '{KERNEL_NAME}' kernelspec is not installed: run `python -m gptedu.grading.sandbox "
                           "install` once, as root.")
    return SandboxSettings.load(spec_dir / SETTINGS_FILE)


def kernel_main(settings_path: str | None, connection_file: str, extra: list[str]) -> int:
    """What the kernelspec runs: read nbgrader's connection file, start ipykernel in the jail on ipc sockets."""
    settings = _load_settings(settings_path)
    info = json.loads(Path(connection_file).read_text())
    if info.get("transport") != "ipc":
        raise SandboxError(
            "The sandboxed kernel has no network, so it must talk to nbgrader over ipc sockets, but the connection "
            f"file asks for transport {info.get('transport')!r}. Add `c.KernelManager.transport = 'ipc'` and an "
            "absolute `c.KernelManager.ip` to nbgrader_config.py (gptedu.grading.sandbox.configure_nbgrader does).")
    ipc_dir = os.path.dirname(info["ip"])
    if not os.path.isabs(info["ip"]):
        raise SandboxError(f"c.KernelManager.ip must be an absolute path for ipc sockets, got {info['ip']!r}.")
    os.makedirs(ipc_dir, mode=0o700, exist_ok=True)
    os.chown(ipc_dir, settings.uid, settings.gid)
    os.chmod(ipc_dir, 0o700)
    workdir = os.getcwd()
    jail = Jail(settings, workdir=workdir, copy_workdir=True, rw_dirs=[ipc_dir],
                files={"kernel-connection.json": Path(connection_file).read_bytes()})
    argv = [settings.python, "-m", "ipykernel_launcher", "-f", "/tmp/kernel-connection.json", *extra]
    if settings.preload:  # imported while the kernel starts, so a slow import does not eat the first cell's timeout
        argv.append(f"--IPKernelApp.exec_lines=['import {settings.preload}']")
    return run_jailed(jail, argv, _jail_env())


def exec_main(settings_path: str | None, workdir: str, copy: bool, allow_reference: bool, cmd: list[str]) -> int:
    settings = _load_settings(settings_path)
    if cmd and cmd[0] == "python":
        cmd = [settings.python, *cmd[1:]]
    jail = Jail(settings, workdir=os.path.realpath(workdir), copy_workdir=copy, allow_reference=allow_reference)
    return run_jailed(jail, cmd, _jail_env())


def install(kernels_dir: str | Path | None = None, user: str = DEFAULT_USER, python: str | None = None,
            memory_mb: int | None = None, cpu_seconds: int | None = None, nproc: int | None = None,
            self_test: bool = True) -> Path:
    """Create the grading user and write the kernelspec; returns the kernelspec folder. Idempotent. Needs root."""
    if os.geteuid() != 0:
        raise SandboxError("install needs root (it creates the grading user, and the jail needs root to start).")
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", user], check=True)
        pw = pwd.getpwnam(user)
    if pw.pw_uid == 0:
        raise SandboxError(f"user {user} has uid 0; the grading user must be unprivileged.")
    python = python or sys.executable
    paths = _python_paths(python)
    ro = [paths["prefix"], paths["base_prefix"], os.path.dirname(paths["exe"])]
    ro += [p for p in paths["path"] if "site-packages" in p or p.startswith((paths["prefix"], paths["base_prefix"]))]
    # other sys.path entries (PYTHONPATH, .pth files): bind only the reference package, never a whole checkout,
    # which would show the course to the student.
    settings = SandboxSettings(user=user, uid=pw.pw_uid, gid=pw.pw_gid, python=os.path.abspath(python),
                               ro_paths=_dedupe_paths(ro), reference_paths=_dedupe_paths(paths["ref"]))
    for name, value in (("memory_mb", memory_mb), ("cpu_seconds", cpu_seconds), ("nproc", nproc)):
        if value is not None:
            setattr(settings, name, value)
    spec_dir = Path(kernels_dir or default_kernels_dir()) / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    settings.save(spec_dir / SETTINGS_FILE)
    kernel = {
        # the file, not ``-m gptedu...``: importing the package would import torch (seconds) in the launcher
        "argv": [settings.python, "-I", os.path.abspath(__file__), "kernel", "--settings",
                 str(spec_dir / SETTINGS_FILE), "-f", "{connection_file}"],
        "display_name": "Python 3 (gptedu grading sandbox)",
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(kernel, indent=1) + "\n")
    if self_test:
        reason = self_test_message(spec_dir / SETTINGS_FILE)
        if reason:
            raise SandboxError(f"The sandbox was installed in {spec_dir} but its self-test failed:\n{reason}")
    return spec_dir


def self_test_message(settings_path: str | Path) -> str:
    """Run a tiny Python in the jail; '' when it imports torch and ipykernel as the grading user without network."""
    code = (
        "import os, socket, torch, ipykernel\n"
        "assert os.getuid() != 0, 'still root'\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
        "    raise SystemExit('network reachable')\n"
        "except OSError:\n"
        "    pass\n"
        "print('sandbox ok', os.getuid())\n"
    )
    with tempfile.TemporaryDirectory() as work:
        res = subprocess.run([sys.executable, "-I", os.path.abspath(__file__), "exec", "--settings",
                              str(settings_path), "--workdir", work, "--", "python", "-c", code],
                             capture_output=True, text=True, timeout=300)
    if res.returncode != 0 or "sandbox ok" not in res.stdout:
        return (res.stdout + res.stderr).strip() or f"exit code {res.returncode}"
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gptedu.grading.sandbox", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_install = sub.add_parser("install", help="create the grading user and the kernelspec (root, once)")
    p_install.add_argument("--kernels-dir", help="where kernelspecs go (default: <venv>/share/jupyter/kernels)")
    p_install.add_argument("--user", default=DEFAULT_USER)
    p_install.add_argument("--memory-mb", type=int)
    p_install.add_argument("--cpu-seconds", type=int)
    p_install.add_argument("--nproc", type=int)
    sub.add_parser("check", help="exit 0 when the sandbox can run here, else print why")
    p_kernel = sub.add_parser("kernel", help="(run by Jupyter) start ipykernel in the jail")
    p_kernel.add_argument("--settings")
    p_kernel.add_argument("-f", dest="connection_file", required=True)
    p_exec = sub.add_parser("exec", help="run a command in the jail: exec [--workdir D] -- python -c ...")
    p_exec.add_argument("--settings")
    p_exec.add_argument("--workdir", default=".")
    p_exec.add_argument("--bind-workdir", action="store_true", help="bind the folder read-write instead of a copy")
    p_exec.add_argument("--no-reference", action="store_true", help="hide the gptedu package")
    p_exec.add_argument("cmd", nargs=argparse.REMAINDER)
    args, extra = parser.parse_known_args(argv)
    try:
        if args.command == "install":
            spec_dir = install(args.kernels_dir, args.user, memory_mb=args.memory_mb, cpu_seconds=args.cpu_seconds,
                               nproc=args.nproc)
            print(f"Installed kernelspec '{KERNEL_NAME}' in {spec_dir}; self-test passed.")
            return 0
        if args.command == "check":
            found = problems()
            for reason in found:
                print(f"sandbox unavailable: {reason}")
            if not found:
                print("sandbox available")
            return 1 if found else 0
        if args.command == "kernel":
            return kernel_main(args.settings, args.connection_file, extra)
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        if extra or not cmd:
            parser.error("usage: exec [--workdir DIR] -- COMMAND ...")
        return exec_main(args.settings, args.workdir, not args.bind_workdir, not args.no_reference, cmd)
    except SandboxError as exc:
        print(f"gptedu sandbox: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
