"""The grading sandbox (bubblewrap), tested from inside real jails, and that it fails closed.

Each attack is shown to work against plain, unjailed Python (or plain nbgrader) where that is safe to run, and to be
held in the jail: reading the course, the gradebook, the secret, another student or ``/etc/shadow``; the network;
files, sockets and keys left in ``/tmp``, the ipc folder or the keyring for the next job; a memory hog, a fork bomb
and a CPU spinner beside a job that must not notice; output floods in every field of a message. Plus: a venv under
``/tmp`` in a path with a space, ``check``/``install``/``autograde`` refusing when bwrap is missing, and the one
switch that grades without the jail. No test skips: a machine without bwrap fails them (CI installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import pytest
from traitlets.config import Config

from gptedu.grading import sandbox

REPO = Path(__file__).resolve().parents[1]
SANDBOX = str(Path(sandbox.__file__))

# What a student's code tries: every "ALLOWED" is a leak. argv: the course folder, the secret file.
PROBE = r"""
import json, os, socket, sys
course, secret_file = sys.argv[1], sys.argv[2]
found = {"uid": os.getuid()}
def attempt(name, action):
    try:
        action()
        found[name] = "ALLOWED"
    except Exception as exc:
        found[name] = type(exc).__name__
attempt("read_gradebook", lambda: open(course + "/gradebook.db", "rb").read())
attempt("read_secret", lambda: open(secret_file, "rb").read())
attempt("read_source", lambda: open(course + "/source/ps1/03.ipynb").read())
attempt("read_other_student", lambda: open(course + "/submitted/other/ps1/03.ipynb").read())
attempt("read_shadow", lambda: open("/etc/shadow").read())
attempt("write_course", lambda: open(course + "/planted", "w").write("x"))
attempt("network_tcp", lambda: socket.create_connection(("1.1.1.1", 443), timeout=3))
attempt("network_dns", lambda: socket.getaddrinfo("pypi.org", 443))
attempt("import_reference", lambda: __import__("gptedu"))
found["home"] = sorted(os.listdir("/home")) if os.path.isdir("/home") else []
found["root"] = sorted(os.listdir("/root")) if os.path.isdir("/root") else []
print("PROBE" + json.dumps(found))
"""
LEAKS = ["read_gradebook", "read_secret", "read_source", "read_other_student", "read_shadow", "write_course",
         "network_tcp", "network_dns", "import_reference"]


def jailed(code: str, *args: str, limits: dict | None = None, extra: tuple = (), env: dict | None = None,
           timeout: float = 180, python: str = sys.executable) -> subprocess.CompletedProcess:
    """``python -c code args`` in a jail of its own, through the command line an instructor uses."""
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in (limits or {}).items()]
    return subprocess.run([python, "-I", SANDBOX, "exec", "--no-reference", *flags, *extra, "--", "python", "-c",
                           code, *args], capture_output=True, text=True, timeout=timeout, env=env)


def _probe_result(res: subprocess.CompletedProcess) -> dict:
    line = next((x for x in res.stdout.splitlines() if x.startswith("PROBE")), None)
    assert line, res.stdout + res.stderr
    return json.loads(line[len("PROBE"):])


@pytest.fixture()
def course(tmp_path):
    """A course-like folder: gradebook, secret, instructor source, another student's submission."""
    root = tmp_path / "my course"
    for rel, text in {"gradebook.db": "grades", ".gptedu/secret": "s3cret", "source/ps1/03.ipynb": "{}",
                      "submitted/other/ps1/03.ipynb": "{}"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_the_sandbox_runs_here():
    """bwrap present and user namespaces allowed: every other test here depends on it (none skips)."""
    assert sandbox.problems() == [], sandbox.problems()
    assert sandbox.limits_mode() in ("cgroup-v1", "cgroup-v2", "rlimit")


def test_jail_sees_nothing_of_the_course_the_machine_or_the_network(course):
    args = (str(course), str(course / ".gptedu" / "secret"))
    plain = _probe_result(subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                                         timeout=120))
    assert plain["read_gradebook"] == plain["read_secret"] == plain["read_other_student"] == "ALLOWED"  # the attack
    (course / "planted").unlink()
    found = _probe_result(jailed(PROBE, *args))
    assert {name: found[name] for name in LEAKS if found[name] == "ALLOWED"} == {}, found
    assert found["uid"] != 0 and found["home"] == []
    python_home = Path(sys.base_prefix).parts  # /root holds nothing but the way to the Python installation
    assert set(found["root"]) <= ({python_home[2]} if python_home[1:2] == ("root",) else set()), found
    assert not (course / "planted").exists()


def test_each_job_has_its_own_tmp_shm_and_keyring(tmp_path):
    """Job 1 plants a file in /tmp and /dev/shm and a key in the session keyring; job 2 finds nothing. Unjailed,
    under a login session keyring (pam_keyinit gives one), the key carries over from one process to the next."""
    keys = (
        "import ctypes, sys\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "NR = {'x86_64': (248, 250), 'aarch64': (217, 219)}[__import__('platform').machine()]\n"
        "def plant():\n    return libc.syscall(NR[0], b'user', b'planted', b'x', 1, -3)\n"  # add_key to @s
        "def find():\n    return libc.syscall(NR[1], 10, -3, b'user', b'planted', 0)\n"  # KEYCTL_SEARCH
    )
    plant = keys + ("import os\nopen('/tmp/planted', 'w').write('x')\nopen('/dev/shm/planted', 'w').write('x')\n"
                    "print('PLANTED', plant(), ctypes.get_errno())\n")
    look = keys + ("import os\nprint('SEEN', [p for p in ('/tmp/planted', '/dev/shm/planted') if os.path.exists(p)],"
                   " find() > 0)\n")
    session = (keys + "import subprocess\nprint('JOIN', libc.syscall(NR[1], 1, None))\n"  # a new session keyring
               "for code in sys.argv[1:]:\n    print(subprocess.run(sys.argv[:0] + [sys.executable, '-c', code],"
               " capture_output=True, text=True).stdout)\n")
    res = subprocess.run([sys.executable, "-c", session, plant, look], capture_output=True, text=True, timeout=60)
    assert "SEEN" in res.stdout and "True" in res.stdout.split("SEEN")[1], res.stdout + res.stderr  # the attack
    first = jailed(plant)
    assert "PLANTED -1 1" in first.stdout, first.stdout + first.stderr  # keyring calls refused (EPERM)
    second = jailed(look)
    assert "SEEN [] False" in second.stdout, second.stdout + second.stderr


def _concurrently(hostile: tuple, victim_code: str = "import time; [x * x for x in range(3_000_000)]; "
                                                     "print('VICTIM DONE')") -> tuple:
    results = {}

    def go(name, code, limits):
        results[name] = jailed(code, limits=limits)
    threads = [threading.Thread(target=go, args=("hostile", *hostile)),
               threading.Thread(target=go, args=("victim", victim_code, {"memory_mb": 1024, "nproc": 64}))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results["hostile"], results["victim"]


def test_memory_hog_is_stopped_and_a_concurrent_job_is_not():
    hog = ("blocks = []\nwhile len(blocks) < 200:\n    blocks.append(bytearray(20_000_000))\n"
           "    print('MB', 20 * len(blocks), flush=True)\n")
    hostile, victim = _concurrently((hog, {"memory_mb": 400}))
    reached = max([int(x.split()[1]) for x in hostile.stdout.splitlines() if x.startswith("MB")] or [0])
    assert hostile.returncode != 0 and reached <= 400, (reached, hostile.stderr[-500:])  # stopped at its limit
    assert "VICTIM DONE" in victim.stdout, victim.stderr


def test_fork_bomb_is_stopped_and_a_concurrent_job_still_starts_processes():
    bomb = ("import os, time\nn = 0\nwhile n < 2000:\n    try:\n        pid = os.fork()\n    except OSError:\n"
            "        break\n    if pid == 0:\n        time.sleep(60)\n        os._exit(0)\n    n += 1\n"
            "print('FORKED', n)\ntime.sleep(5)\n")
    victim = ("import subprocess, sys, time\ntime.sleep(1)\n"
              "procs = [subprocess.Popen([sys.executable, '-c', 'pass']) for _ in range(8)]\n"
              "print('VICTIM DONE', [p.wait() for p in procs])\n")
    hostile, victim = _concurrently((bomb, {"nproc": 32}), victim)
    forked = int(hostile.stdout.split("FORKED")[1].split()[0])
    assert 0 < forked < 32, hostile.stdout + hostile.stderr
    assert "VICTIM DONE [0, 0, 0, 0, 0, 0, 0, 0]" in victim.stdout, victim.stdout + victim.stderr


def test_cpu_spinner_is_stopped_by_its_cpu_time_limit():
    start = time.monotonic()
    hostile, victim = _concurrently(("while True:\n    pass\n", {"cpu_seconds": 3}))
    assert hostile.returncode != 0 and time.monotonic() - start < 60
    assert "VICTIM DONE" in victim.stdout, victim.stderr


def _stale_cgroups(found) -> list[Path]:
    """Job cgroups whose launcher has exited (a launcher removes its job's cgroup when the job ends)."""
    return [p for parent in found.parents.values() for p in parent.glob("gptedu-job-*")
            if not Path(f"/proc/{p.name.split('-')[2]}").exists()]


def test_no_cgroup_or_process_is_left_behind():
    found = sandbox.job_cgroup()
    if found is None:
        assert sandbox.limits_mode() == "rlimit"
        return
    marker = f"gptedu-left-behind-{os.getpid()}-{time.time_ns()}"
    code = (f"# {marker}\nimport os, time\nif os.fork() == 0:\n    os.setsid()\n    os.close(1)\n    os.close(2)\n"
            "    time.sleep(300)\n"
            "print('LEFT', os.getpid())")
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    assert "LEFT" in plain.stdout and left, "unjailed, the child outlives its parent (the attack)"
    for pid in left:
        os.kill(int(pid), 9)
    res = jailed(code, timeout=60)
    assert "LEFT" in res.stdout, res.stderr
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split() == []
    assert _stale_cgroups(found) == []


def test_venv_under_tmp_in_a_path_with_a_space_works(tmp_path_factory):
    """The venv is bound after the jail's private /tmp, so a venv (or course) under /tmp stays visible."""
    import site
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="gptedu venv ", dir="/tmp"))
    try:
        subprocess.run([os.path.join(sys.base_prefix, "bin", "python3"), "-m", "venv", "--without-pip",
                        str(root / "env")], check=True, timeout=120)
        packages = next((root / "env" / "lib").glob("python3*/site-packages"))
        (packages / "course.pth").write_text("\n".join(site.getsitepackages()) + "\n")  # torch from the real venv
        python = str(root / "env" / "bin" / "python")
        res = jailed("import sys, torch; print('PREFIX', sys.prefix, torch.ones(2).sum().item())", python=python)
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"PREFIX {root / 'env'} 2.0" in res.stdout
    finally:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


def test_exec_shows_the_workdir_without_copying_it(tmp_path):
    """``exec --workdir /tmp`` was documented and hung 10 minutes copying /tmp: now the folder is bound, never
    copied (read-only unless --rw)."""
    (tmp_path / "data.txt").write_text("hello")
    code = "import os; print('READ', open('data.txt').read()); open('out.txt', 'w')"
    res = jailed(code, extra=("--workdir", str(tmp_path)))
    assert "READ hello" in res.stdout and "Read-only file system" in res.stderr, res.stdout + res.stderr
    res = jailed(code, extra=("--workdir", str(tmp_path), "--rw"))
    assert res.returncode == 0 and (tmp_path / "out.txt").exists(), res.stderr
    start = time.monotonic()
    res = jailed("import os; print(len(os.listdir('.')))", extra=("--workdir", "/usr"))
    assert res.returncode == 0 and time.monotonic() - start < 30


# ------------------------------------------------------------------------------------------------- failing closed
def _env_without_bwrap() -> dict:
    """PATH with the venv's tools but no bwrap."""
    return dict(os.environ, PATH=str(Path(sys.executable).parent))


def test_check_and_install_fail_closed_without_bwrap(tmp_path):
    env = _env_without_bwrap()
    res = subprocess.run([sys.executable, "-m", "gptedu.grading.sandbox", "check"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 1 and "bubblewrap" in res.stdout and "apt install bubblewrap" in res.stdout, res.stdout
    kernels = tmp_path / "kernels"
    (kernels / sandbox.KERNEL_NAME).mkdir(parents=True)
    (kernels / sandbox.KERNEL_NAME / "kernel.json").write_text("{}")  # an old kernelspec: would not work either
    res = subprocess.run([sys.executable, "-m", "gptedu.grading.sandbox", "install", "--kernels-dir", str(kernels)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 2 and "no kernelspec was installed" in res.stderr, res.stderr
    assert not (kernels / sandbox.KERNEL_NAME).exists()


def test_install_self_test_passes_and_then_writes_the_kernelspec(tmp_path):
    res = subprocess.run([sys.executable, "-m", "gptedu.grading.sandbox", "install", "--kernels-dir",
                          str(tmp_path / "kernels"), "--memory-mb", "2048"], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    spec = json.loads((tmp_path / "kernels" / sandbox.KERNEL_NAME / "kernel.json").read_text())
    assert spec["argv"][:3] == [sys.executable, "-I", SANDBOX] and "--memory-mb=2048" in spec["argv"]
    assert spec["interrupt_mode"] == "message"


def test_data_under_home_passes_the_self_test_and_all_of_home_does_not(monkeypatch):
    """Data (or a venv) under /home is bound into the jail, so /home is not empty there: the self-test accepts the
    folders that lead to what the view binds, and refuses a view that shows a whole home folder."""
    data = Path(tempfile.mkdtemp(prefix="gptedu-test-data-", dir="/home"))
    try:
        (data / "input.txt").write_text("To be, or not to be")
        monkeypatch.setenv("GPTEDU_DATA", str(data / "input.txt"))
        assert sandbox.self_test() == ""
        monkeypatch.setenv("GPTEDU_DATA", "/home")  # every home folder would be readable by the students' code
        assert f"{data} is visible" in sandbox.self_test()
    finally:
        shutil.rmtree(data, ignore_errors=True)


REFUSE = ("import sys\ncourse = sys.argv[1]\nsys.argv = ['nbgrader', 'autograde', 'ps1']\n"
          "from traitlets.config import Config\nfrom gptedu.grading import secret\nsecret.init(course)\n"
          "from gptedu.grading.sandbox_nbgrader import configure_nbgrader\nc = Config()\n"
          "c.CourseDirectory.root = course\n"
          "print('JAILED', configure_nbgrader(c))\nfrom gptedu.grading import verify\n"
          "print('VERIFY JAILED', verify.verify_server().jailed)\n")


def test_autograde_refuses_without_the_sandbox_and_the_switch_covers_every_step(tmp_path):
    env = _env_without_bwrap()
    env.pop(sandbox.UNSANDBOXED_ENV, None)
    res = subprocess.run([sys.executable, "-c", REFUSE, str(tmp_path / "a")], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "refusing to autograde" in res.stderr and "apt install bubblewrap" in res.stderr
    assert "GPTEDU_UNSANDBOXED=1" in res.stderr
    res = subprocess.run([sys.executable, "-c", REFUSE, str(tmp_path / "b")], capture_output=True, text=True,
                         timeout=120, env=dict(env, GPTEDU_UNSANDBOXED="1"))
    assert res.returncode == 0, res.stderr
    assert "JAILED False" in res.stdout and "VERIFY JAILED False" in res.stdout  # kernel AND verification
    assert "WARNING" in res.stderr and "WITHOUT the sandbox" in res.stderr


def test_other_ways_of_grading_fail_each_notebook_with_the_reason(monkeypatch):
    from gptedu.grading import sandbox_nbgrader

    monkeypatch.setattr(sandbox, "problems", lambda: ["bubblewrap (bwrap) is not installed"])
    monkeypatch.delenv(sandbox.UNSANDBOXED_ENV, raising=False)
    monkeypatch.setattr(sys, "argv", ["jupyter-lab"])
    c = Config()
    assert sandbox_nbgrader.configure_nbgrader(c) is True
    guard = c.Autograde.autograde_preprocessors[0]
    assert guard is sandbox_nbgrader.SandboxUnavailable
    with pytest.raises(RuntimeError, match="bubblewrap"):
        guard(config=c).preprocess(nbformat.v4.new_notebook(), {})
    from gptedu.grading import verify

    with pytest.raises(sandbox.SandboxError, match="GPTEDU_UNSANDBOXED=1"):
        verify.verify_server()


# ------------------------------------------------------------------------------------------------ the kernel
def _kernels_dir(tmp_path_factory) -> Path:
    kernels = tmp_path_factory.mktemp("jupyter") / "kernels"
    res = subprocess.run([sys.executable, "-m", "gptedu.grading.sandbox", "install", "--kernels-dir", str(kernels),
                          "--memory-mb", "1536"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return kernels


@pytest.fixture(scope="module")
def jupyter_path(tmp_path_factory):
    kernels = _kernels_dir(tmp_path_factory)
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(kernels.parent)
    yield kernels.parent
    if old is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = old


IPC_DIRS: list[str] = []  # the host folders of the kernels' socket links, as the kernel manager made them


def _run_in_kernel(cells: list[str], folder: Path, **kw) -> nbformat.NotebookNode:
    from gptedu.grading.sandbox_nbgrader import SandboxExecute, SandboxKernelManager

    class Recording(SandboxKernelManager):
        async def _async_pre_start_kernel(self, **kw):
            found = await super()._async_pre_start_kernel(**kw)
            IPC_DIRS.append(self._ipc_dir)
            return found

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    kw = {"timeout": 60, **kw}
    client = SandboxExecute(kernel_name=sandbox.KERNEL_NAME, kernel_manager_class=Recording, allow_errors=True,
                            **kw)
    client.preprocess(nb, {"metadata": {"path": str(folder)}})
    return nb


def _text(nb) -> str:
    return json.dumps([c.get("outputs", []) for c in nb.cells])


KERNEL_PLANT = ("import os\nfor p in ('/tmp/planted', '/ipc/planted', '/dev/shm/planted', 'planted'):\n"
                "    open(p, 'w').write('x')\nprint('UID', os.getuid(), sorted(os.listdir('.')))")
KERNEL_LOOK = ("import os\nprint('SEEN', [p for p in ('/tmp/planted', '/ipc/planted', '/dev/shm/planted', 'planted')"
               " if os.path.exists(p)])")


def test_jailed_kernel_private_folders_per_kernel(jupyter_path, tmp_path):
    """Two kernels on the same student folder (a path with a space): the second sees nothing the first wrote
    (its /tmp, its ipc folder, /dev/shm, its copy of the folder), the host folder is untouched, the links to the
    first kernel's sockets are gone, and only regular files were copied in (no links, no notebooks)."""
    folder = tmp_path / "autograded dir" / "student"
    folder.mkdir(parents=True)
    (folder / "data.txt").write_text("mine")
    (folder / "03.ipynb").write_text("{}")
    os.symlink("/etc/hostname", folder / "link")
    first = _run_in_kernel([KERNEL_PLANT], folder)
    assert "UID 65534 ['data.txt', 'planted']" in _text(first), _text(first)
    second = _run_in_kernel([KERNEL_LOOK], folder)
    assert "SEEN []" in _text(second), _text(second)
    assert sorted(p.name for p in folder.iterdir()) == ["03.ipynb", "data.txt", "link"]
    assert len(IPC_DIRS) >= 2 and not any(os.path.exists(d) for d in IPC_DIRS)  # removed with their kernels


FLOODS = {
    "stream": "print('x' * 1_000_000)",
    "mime data": "from IPython.display import display\ndisplay({'text/plain': 'x' * 1_000_000}, raw=True)",
    "display metadata": ("from IPython.display import display\n"
                         "display({'text/plain': 'ok'}, metadata={'m': 'x' * 1_000_000}, raw=True)"),
    "error value": "raise ValueError('x' * 1_000_000)",
    "error name": "E = type('E' * 1_000_000, (Exception,), {})\nraise E()",
    "traceback": "def f(n):\n    return f(n + 1)\nf(0)",
    "display update": ("from IPython.display import display, update_display\nh = display('a', display_id=True)\n"
                       "update_display({'text/plain': 'y' * 1_000_000}, display_id=h.display_id, raw=True)"),
    "many small": "for i in range(50_000):\n    print(i, flush=True)",
}


def test_every_kind_of_output_flood_is_capped(tmp_path):
    """Plain nbclient keeps megabytes from each flood (the attack); SandboxExecute keeps each cell under its cap."""
    from nbclient import NotebookClient

    from gptedu.grading.sandbox_nbgrader import SandboxExecute

    cells = list(FLOODS.values())
    plain = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(plain, kernel_name="python3", timeout=120, allow_errors=True).execute()
    capped = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    SandboxExecute(kernel_name="python3", timeout=120, allow_errors=True, max_output_bytes=20_000).preprocess(
        capped, {"metadata": {"path": str(tmp_path)}})
    for name, big, small in zip(FLOODS, plain.cells, capped.cells, strict=True):
        size_plain, size_capped = len(json.dumps(big.outputs)), len(json.dumps(small.outputs))
        assert size_plain > 200_000, (name, size_plain)
        assert size_capped < 30_000, (name, size_capped)


def test_a_kernel_that_dies_or_hangs_still_gives_a_graded_notebook(jupyter_path, tmp_path):
    dead = _run_in_kernel(["import os\nos._exit(3)", "print('never')"], tmp_path, iopub_timeout=5)
    assert "KernelDied" in _text(dead) and "NotRun" in _text(dead)
    hung = _run_in_kernel(["import time\nwhile True:\n    try:\n        time.sleep(0.05)\n"
                           "    except KeyboardInterrupt:\n        pass", "print('never')"], tmp_path,
                          timeout=3, iopub_timeout=3)
    assert "KernelUnresponsive" in _text(hung) and "NotRun" in _text(hung)


# ------------------------------------------------- from inside submissions graded by the real nbgrader (class batch)
@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    import class_batch as cb

    return cb.graded_class(tmp_path_factory)


@pytest.fixture(scope="module")
def probe(graded):
    import class_batch as cb

    line = next(x for x in cb.stream_text(graded["course"], "prober").splitlines() if x.startswith("PROBE"))
    return json.loads(line[len("PROBE"):])


@pytest.mark.slow
@pytest.mark.parametrize("action", ["read_source", "read_gradebook", "read_secret", "read_shadow",
                                    "read_other_submission", "read_other_autograded", "network_tcp", "network_dns",
                                    "become_root"])
def test_submission_cannot_reach_outside_its_jail(probe, action):
    assert probe[action] != "ALLOWED", probe


@pytest.mark.slow
def test_submission_runs_as_nobody_in_a_private_copy_of_its_folder(graded, probe):
    import class_batch as cb
    import course_kit as kit

    assert probe["uid"] == sandbox.JAIL_UID
    assert probe["list_course"] == ["autograded"]  # just the path down to its own (copied) folder
    assert set(probe["list_root_home"]) <= {".pyenv"}  # only the Python installation, if it lives there
    assert probe["write_own_folder"] == "ALLOWED"  # a private copy: writes vanish with the kernel
    course = graded["course"]
    # writing to the course's path may succeed (under /tmp it lies in the jail's private /tmp): never on the host
    assert not (course / "hacked.txt").exists() and not (course / "hacked2.txt").exists()
    assert not (course / "autograded" / "prober" / kit.ASSIGNMENT / "scratch.txt").exists()
    assert cb.total(graded["scores"]["prober"]) == 20


@pytest.mark.slow
def test_memory_and_fork_bombs_in_a_kernel_get_a_defined_grade(graded):
    import class_batch as cb

    assert cb.total(graded["scores"]["memory_bomb"]) == 0
    stopped = cb.all_outputs(graded["course"], "memory_bomb")
    assert "KernelDied" in stopped or "MemoryError" in stopped  # cgroup OOM kill, or the rlimit fallback
    line = next(x for x in cb.stream_text(graded["course"], "fork_bomb").splitlines() if x.startswith("FORKED"))
    assert 0 < int(line.split()[1]) < 64  # course_kit installs the kernel with --nproc 64
    assert graded["scores"]["fork_bomb"] is not None
    assert cb.total(graded["scores"]["perfect"]) == 20  # graded after them, unaffected
    found = sandbox.job_cgroup()
    if found is not None:  # every job's cgroup is gone with its job
        assert _stale_cgroups(found) == []
