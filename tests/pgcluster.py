"""A throwaway PostgreSQL cluster for the tests, on a loopback port, torn down afterwards.

Uses $CHATBOOK_TEST_PG_URL when set (an existing server whose user may CREATE DATABASE).
Otherwise it looks for Debian's initdb and starts a private cluster, as the `postgres` user
when running as root (initdb refuses root). Returns None, with a reason, when neither works.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass


@dataclass
class PgCluster:
    host: str
    port: int
    user: str
    directory: str | None = None
    run_as: list[str] | None = None
    base_url: str | None = None

    def url(self, database: str) -> str:
        if self.base_url:
            head = self.base_url.rsplit("/", 1)[0]
            return f"{head}/{database}"
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{database}"

    def admin_dsn(self) -> str:
        return self.url("postgres").replace("postgresql+asyncpg://", "postgresql://")

    def stop(self) -> None:
        if self.directory is None:
            return
        pg_ctl = _pg_bin("pg_ctl")
        if pg_ctl:
            subprocess.run(
                [*(self.run_as or []), pg_ctl, "-D", self.directory, "-m", "immediate", "stop"],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(os.path.dirname(self.directory), ignore_errors=True)


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_cluster() -> tuple[PgCluster | None, str]:
    """Start (or find) a server; returns (cluster, "") or (None, reason to skip)."""
    url = os.environ.get("CHATBOOK_TEST_PG_URL")
    if url:
        return PgCluster(host="", port=0, user="", base_url=url), ""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        return None, "PostgreSQL server binaries not installed (apt-get install postgresql; .ci/run does)"
    run_as: list[str] = []
    directory = tempfile.mkdtemp(prefix="chatbook-pg-")
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if not runuser:
            return None, "running as root and runuser is missing: cannot start PostgreSQL as postgres"
        run_as = [runuser, "-u", "postgres", "--"]
        shutil.chown(directory, "postgres", "postgres")
        os.chmod(directory, 0o700)
    data = os.path.join(directory, "data")
    init = subprocess.run(
        [*run_as, initdb, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"],
        capture_output=True,
        text=True,
        check=False,
    )
    if init.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        return None, f"initdb failed: {init.stderr.strip().splitlines()[-1:]}"
    port = _free_port()
    options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    start = subprocess.run(
        [*run_as, pg_ctl, "-D", data, "-o", options, "-l", os.path.join(directory, "log"), "-w", "start"],
        capture_output=True,
        text=True,
        check=False,
    )
    cluster = PgCluster(host="127.0.0.1", port=port, user="postgres", directory=data, run_as=run_as)
    if start.returncode != 0:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)
        return None, f"PostgreSQL did not start: {start.stderr.strip()[-200:]}"
    cluster.directory = data
    return cluster, ""
