"""``sbatch/local_cluster.sh start`` stops every daemon it started when a later step fails (issue 15, item 7).

The daemons are stand-ins on ``PATH`` that, like the real ones, fork and write their pid file a moment later; the
script runs in a private mount namespace with fresh ``/etc``, ``/run``, ``/var/spool`` and ``/var/log``, so the test
touches none of the machine's files and needs no SLURM packages (every command the script would install is a
stand-in). Under ``CI=true`` a machine that cannot run it fails the test instead of skipping it."""

import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

# A daemon that forks, returns, and writes its pid file a second later (as slurmctld and munged do).
DAEMON = """#!/bin/bash
[[ "${1:-}" == -C ]] && { echo "NodeName=stub CPUs=1"; exit 0; }
nohup bash -c 'sleep 1; echo $BASHPID > "%(pidfile)s"; echo $BASHPID >> "%(started)s"; exec sleep 300' \
    >/dev/null 2>&1 &
"""
FAILING_SLURMD = """#!/bin/bash
[[ "${1:-}" == -C ]] && { echo "NodeName=stub CPUs=1"; exit 0; }
exit 1
"""
STUBS = {
    "sinfo": "#!/bin/bash\n",                                        # no node is idle: start a cluster
    "sbatch": "#!/bin/bash\n",                                       # installed: no apt-get
    "munge": "#!/bin/bash\nexit 1\n",
    "runuser": '#!/bin/bash\nwhile [[ "$1" != -- ]]; do shift; done; shift; exec "$@"\n',
    "install": '#!/bin/bash\nmkdir -p "${@: -1}"\n',                 # no munge user in the fresh /etc
}


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the local_cluster.sh test must run under CI=true: {reason}")
    pytest.skip(reason)


def _started(record: Path) -> list[int]:
    return [int(line) for line in record.read_text().split()] if record.exists() else []


def _alive(pid: int) -> bool:
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def test_a_failed_start_stops_the_daemons_it_started(tmp_path):
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        _unavailable("needs root and unshare for a private mount namespace")
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        _unavailable("unshare -m is not permitted here")
    stubs, started = tmp_path / "bin", tmp_path / "started"
    stubs.mkdir()
    scripts = {**STUBS, "slurmd": FAILING_SLURMD,
               "slurmctld": DAEMON % {"pidfile": "/run/slurmctld.pid", "started": started},
               "munged": DAEMON % {"pidfile": "/run/munge/munged.pid", "started": started}}
    for name, text in scripts.items():
        (stubs / name).write_text(text)
        (stubs / name).chmod(stat.S_IRWXU)
    fresh = " && ".join(f"mount -t tmpfs none {d}" for d in ("/etc", "/run", "/var/spool", "/var/log"))
    try:
        r = subprocess.run(["unshare", "-m", "bash", "-c", f'{fresh} && exec bash "$0" start "$1"',
                            str(ROOT / "sbatch/local_cluster.sh"), str(tmp_path / "state")],
                           env={**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}"},
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 3, (r.returncode, r.stderr)
        assert "slurmd did not start" in r.stderr and not (tmp_path / "state/apt.log").exists()
        assert len(_started(started)) == 2, "munged and slurmctld both started before slurmd failed"
        deadline = time.time() + 10  # a killed daemon takes a moment to go on a loaded machine
        while [pid for pid in _started(started) if _alive(pid)] and time.time() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in _started(started) if _alive(pid)], "a daemon that start started still runs"
        assert not list((tmp_path / "state").glob("*.pid"))
    finally:
        for pid in _started(started):
            if _alive(pid):
                os.kill(pid, 9)
