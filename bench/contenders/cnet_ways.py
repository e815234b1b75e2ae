"""cnet, four ways: separate CLI processes, one CLI process per sandbox,
one `cnet batch -` process, and the Python API in one process."""

from __future__ import annotations

import os
import subprocess
import threading
import time

from . import (BRIDGE, CNET, CONTAINER_PORT, SUBNET, ApiWorker, Failed, clean_env, host_port, run,
               sandbox_name)


def spec(i: int) -> str:
    return f"{host_port(i)}:{CONTAINER_PORT}"


class CnetBase:
    family = "cnet"
    one_process = False
    firewall = "nftables (cnet's default)"

    def __init__(self):
        self.env = clean_env()
        self.worker: ApiWorker | None = None

    def missing(self) -> str | None:
        if not os.access(CNET, os.X_OK):
            return f"no cnet console script at {CNET} (run with the venv's python)"
        return None

    def cnet(self, *args: str, stdin: str | None = None) -> str:
        return run([CNET, *args], stdin=stdin, env=self.env)

    def prepare(self) -> None:
        self.cnet("create", "bridge", BRIDGE, "--subnet", SUBNET)

    # untimed: the sandboxes between the timed ends of a sampled cycle
    def _worker(self) -> ApiWorker:
        if self.worker is None:
            self.worker = ApiWorker()
        return self.worker

    def fill(self, idx: list[int]) -> None:
        if idx:
            self._worker().call(op="create", network=BRIDGE,
                                items=[[sandbox_name(i), spec(i)] for i in idx])

    def unfill(self, idx: list[int]) -> None:
        if idx:
            self._worker().call(op="delete", names=[sandbox_name(i) for i in idx])

    def teardown(self, i: int) -> None:
        self.cnet("delete", "ns", sandbox_name(i))

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None


class CnetSeparate(CnetBase):
    name = "cnet-separate"
    label = "cnet: `create ns` + `attach` + `publish` (3 processes)"
    processes = "3 + 1"

    def setup(self, i: int) -> None:
        name = sandbox_name(i)
        self.cnet("create", "ns", name)
        self.cnet("attach", name, BRIDGE)
        self.cnet("publish", name, spec(i))


class CnetOneProcess(CnetBase):
    name = "cnet-ns"
    label = "cnet: `create ns --network --publish` (1 process)"
    processes = "1 + 1"

    def setup(self, i: int) -> None:
        self.cnet("create", "ns", sandbox_name(i), "--network", BRIDGE, "--publish", spec(i))


class CnetBatch(CnetBase):
    """One `cnet batch -` for all setups, another for all teardowns. The
    per-sandbox figure is the whole process's time / N; the time between one
    sandbox's output line and the next (cnet flushes after every line) gives
    the per-sandbox curve, without the work the batch does once at its end."""

    name = "cnet-batch"
    label = "cnet: one `cnet batch -` for all N"
    one_process = True
    processes = "1 for all"

    def missing(self) -> str | None:
        why = super().missing()
        if why:
            return why
        proc = subprocess.run([CNET, "batch", "--help"], capture_output=True, text=True,
                              env=clean_env(), stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            return f"`cnet batch --help` exited {proc.returncode}: {proc.stderr.strip()[:300]}"
        return None

    def _batch(self, lines: list[str], expect_output: bool) -> tuple[float, list[float] | None]:
        text = "".join(line + "\n" for line in lines)
        t0 = time.perf_counter()
        proc = subprocess.Popen([CNET, "batch", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env, text=True, bufsize=1)

        def feed():
            try:
                proc.stdin.write(text)
                proc.stdin.close()
            except BrokenPipeError:
                pass  # it failed early: its stderr says why

        writer = threading.Thread(target=feed)
        writer.start()
        stamps = []
        for _ in proc.stdout:
            stamps.append(time.perf_counter())
        err = proc.stderr.read()
        rc = proc.wait()
        total = time.perf_counter() - t0
        writer.join()
        if rc != 0:
            raise Failed(f"`cnet batch -` exited {rc}: {err.strip()[:2000]}")
        n = len(lines)
        per = None
        self.notes = {"output_lines": len(stamps)}
        if expect_output and stamps and len(stamps) % n == 0:
            k = len(stamps) // n
            ends = [stamps[(j + 1) * k - 1] for j in range(n)]
            per = [ends[0] - t0] + [ends[j] - ends[j - 1] for j in range(1, n)]
            # start-up + the first sandbox, and what the batch does once after its last line
            self.notes.update(first_line=ends[0] - t0, after_last_line=(t0 + total) - ends[-1])
        return total, per

    notes: dict = {}

    def setup_all(self, idx: list[int]):
        return self._batch([f"create ns {sandbox_name(i)} --network {BRIDGE} --publish {spec(i)}"
                            for i in idx], expect_output=True)

    def teardown_all(self, idx: list[int]):
        return self._batch([f"delete ns {sandbox_name(i)}" for i in idx], expect_output=False)


class CnetApi(CnetBase):
    """`Cnet().create_ns(name, network=, publish=[spec])` and `delete_ns(name)`
    in one process (bench/contenders/api_worker.py). The process's start and
    `import cnet.core` happen in prepare(), untimed, and are recorded apart."""

    name = "cnet-api"
    label = "cnet: Python API, one process"
    one_process = True
    processes = "0 (in-process)"

    def prepare(self) -> None:
        super().prepare()
        self.startup = self._worker().ready

    def setup_all(self, idx: list[int]):
        times = self._worker().call(op="create", network=BRIDGE,
                                    items=[[sandbox_name(i), spec(i)] for i in idx])["times"]
        return sum(times), times

    def teardown_all(self, idx: list[int]):
        times = self._worker().call(op="delete", names=[sandbox_name(i) for i in idx])["times"]
        return sum(times), times
