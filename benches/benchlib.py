"""Helpers shared by the traffic benchmarks (traffic.py, compare.py).

Measurement primitives (the forwarding thread's on-CPU time from schedstat,
the TSC rate), DPDK EAL/prefix handling, and the dpdk-testpmd and vportd
runners used by both scripts.
"""
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


class BenchError(Exception):
    """A prerequisite is missing or a contender misbehaved: printed, no traceback."""


def tsc_hz():
    """The TSC rate from the kernel log (what DPDK and OVS count in)."""
    try:
        out = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
        m = re.search(r"tsc: Detected ([0-9.]+) MHz", out)
        if m:
            return float(m.group(1)) * 1e6
    except OSError:
        pass
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("cpu MHz"):
                return float(line.split(":")[1]) * 1e6
    return 2.6e9


def schedstat_ns(pid, tid):
    """On-CPU nanoseconds of one thread so far."""
    with open("/proc/%d/task/%d/schedstat" % (pid, tid)) as f:
        return int(f.read().split()[0])


def threads(pid):
    """{tid: comm} of a process."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                out[int(tid)] = f.read().strip()
        except OSError:
            pass
    return out


def wait_thread(pid, match, what, timeout=10.0):
    """The tid of the first thread whose name satisfies match(name)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        tid = next((t for t, n in threads(pid).items() if match(n)), None)
        if tid is not None:
            return tid
        time.sleep(0.1)
    raise BenchError("no %s thread in pid %d: %s" % (what, pid, threads(pid)))


def wait_busy(pid, tid, what, timeout):
    """Waits until thread tid of pid spins: on-CPU for 10 % of a 0.2 s
    probe (a polling loop that is not descheduled most of the time; a
    thread that waits uses nothing)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        c0 = schedstat_ns(pid, tid)
        time.sleep(0.2)
        if schedstat_ns(pid, tid) - c0 >= 20e6:
            return
    raise BenchError("%s: thread %d never started polling within %.0f s" % (what, tid, timeout))


# The memory every DPDK contender gets: DPDK's no-huge pools (4 KiB pages,
# the default) or, inside a `Hugepages` block, the same -m on 2 MiB
# hugepages of a private hugetlbfs mount.
MEMORY = {"huge_dir": None, "mb": 2048}


def eal_memory():
    """EAL memory arguments, the same for every contender."""
    if MEMORY["huge_dir"]:
        # --huge-unlink: no page files stay behind if a contender is killed.
        return ["-m", str(MEMORY["mb"]), "--huge-dir", MEMORY["huge_dir"], "--huge-unlink"]
    return ["--no-huge", "-m", str(MEMORY["mb"])]


def memory_label():
    if MEMORY["huge_dir"]:
        return "2 MiB hugepages, -m %d (every contender)" % MEMORY["mb"]
    return ("no hugepages: --no-huge -m %d (DPDK 4 KiB pages; vportd's own pool on "
            "transparent huge pages)" % MEMORY["mb"])


class Hugepages:
    """Reserves `pages` 2 MiB hugepages and mounts a private hugetlbfs for
    the run (root only); both are undone on exit, also on an error."""

    SYSCTL = "/proc/sys/vm/nr_hugepages"

    def __init__(self, pages=2048, mb=1024):
        self.pages, self.mb = pages, mb
        self.saved = None
        self.mount = None

    def __enter__(self):
        with open(self.SYSCTL) as f:
            self.saved = int(f.read())
        try:
            with open(self.SYSCTL, "w") as f:
                f.write(str(max(self.pages, self.saved)))
            with open(self.SYSCTL) as f:
                got = int(f.read())
            if got < self.mb // 2 + 64:
                raise BenchError("only %d hugepages could be reserved (need %d)"
                                 % (got, self.mb // 2 + 64))
            self.mount = tempfile.mkdtemp(prefix="vportd-bench-huge-")
            subprocess.run(["mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "none",
                            self.mount], check=True)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        MEMORY["huge_dir"], MEMORY["mb"] = self.mount, self.mb
        return self

    def __exit__(self, *exc):
        MEMORY["huge_dir"], MEMORY["mb"] = None, 2048
        if self.mount:
            subprocess.run(["umount", self.mount], check=False)
            os.rmdir(self.mount)
            self.mount = None
        if self.saved is not None:
            with open(self.SYSCTL, "w") as f:
                f.write(str(self.saved))
        return False


def eal_common(prefix):
    return ["-l", "0-1"] + eal_memory() + ["--no-pci", "--no-shconf",
                                           "--no-telemetry", "--file-prefix=%s" % prefix]


def unique(tag):
    """A name unique on this host for this process (DPDK prefix, bridge)."""
    return "%s%d%04d" % (tag, os.getpid(), int(time.time() * 1000) % 10000)


def cleanup_prefix(prefix):
    shutil.rmtree("/var/run/dpdk/%s" % prefix, ignore_errors=True)


def result(pkts, oncpu_ns, wall_s, hz):
    return {
        "packets": pkts,
        "mpps": pkts / wall_s / 1e6,
        "cyc_per_pkt": oncpu_ns * 1e-9 * hz / max(pkts, 1),
        "share": oncpu_ns * 1e-9 / wall_s,
    }


def run_testpmd(vdevs, warmup, interval, hz):
    """dpdk-testpmd io forwarding vdevs[0] -> vdevs[1] on core 1: result()."""
    prefix = unique("tbtp")
    args = ["dpdk-testpmd"] + eal_common(prefix)
    for v in vdevs:
        args += ["--vdev", v]
    args += ["--", "-i", "--auto-start", "--forward-mode=io", "--nb-cores=1",
             "--rxq=1", "--txq=1", "--rxd=2048", "--txd=2048", "--burst=32",
             "--total-num-mbufs=262144", "--port-topology=paired", "--no-flush-rx"]
    p = subprocess.Popen(["stdbuf", "-oL", "-eL"] + args, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(warmup)
        # The forwarding lcore thread (DPDK names it rte-worker-N).
        fwd = wait_thread(p.pid, lambda n: "worker" in n, "testpmd forwarding", 30.0)
        # It exists before forwarding starts (on a loaded machine, creating
        # the mbuf pool without hugepages can outlast the warm-up), and a
        # window measured then counts no packets: wait until it polls.
        wait_busy(p.pid, fwd, "testpmd forwarding", 60.0)
        p.stdin.write("clear port stats all\n")
        p.stdin.flush()
        c0 = schedstat_ns(p.pid, fwd)
        t0 = time.time()
        time.sleep(interval)
        c1 = schedstat_ns(p.pid, fwd)
        t1 = time.time()
        p.stdin.write("show port stats 1\nquit\n")
        p.stdin.flush()
        out, _ = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        cleanup_prefix(prefix)
    # The last "show port stats 1" block: TX-packets of port 1 (the sink).
    tx = [int(x) for x in re.findall(r"TX-packets:\s+(\d+)", out)]
    if not tx:
        raise BenchError("testpmd printed no stats:\n" + out[-2000:])
    if tx[-1] == 0:
        raise BenchError("testpmd forwarded nothing in the window:\n" + out[-2000:])
    return result(tx[-1], c1 - c0, t1 - t0, hz)


class Vportd:
    """One vportd process on virtual devices, with its PMD on core 1.

    ports: [(name, vdev devargs[, ofport])]; without ofport, OpenFlow port
    numbers follow the order given (1, 2, ...).
    counters() sends SIGUSR1 and returns the parsed `COUNTERS {json}` line.
    Use as a context manager: the process and its DPDK prefix are removed
    on exit.
    """

    def __init__(self, binary, ports, flows, mbufs, extra_args=(), ctl=None):
        self.prefix = unique("tbvp")
        eal = eal_common(self.prefix) + ["--vdev=" + port[1] for port in ports]
        self.args = [binary, "--eal", " ".join(eal), "--pmd-cores", "1",
                     "--mbufs", str(mbufs)]
        for name, dev, *ofport in ports:
            opts = "".join(",ofport=%d" % n for n in ofport)
            self.args += ["--port", "%s=%s%s" % (name, dev.split(",")[0], opts)]
        self.args += ["--flows", flows] if flows else ["--fwd"]
        if ctl:
            self.args += ["--ctl", ctl]
        self.args += list(extra_args)
        self.p = None
        self.lines = queue.Queue()
        self.stderr = []

    def __enter__(self):
        env = dict(os.environ, RUST_LOG="warn")
        self.p = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env)
        threading.Thread(target=self._pump, args=(self.p.stdout, self.lines.put),
                         daemon=True).start()
        threading.Thread(target=self._pump, args=(self.p.stderr, self.stderr.append),
                         daemon=True).start()
        return self

    @staticmethod
    def _pump(stream, sink):
        for line in stream:
            sink(line)

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        cleanup_prefix(self.prefix)
        return False

    def pmd_tid(self):
        return wait_thread(self.p.pid, lambda n: n.startswith("pmd-c"), "vportd pmd")

    def failure(self, what):
        return BenchError("vportd: %s (exit %s):\n%s" % (
            what, self.p.poll(), "".join(self.stderr)[-2000:]))

    def counters(self, timeout=10.0):
        if self.p.poll() is not None:
            raise self.failure("exited")
        os.kill(self.p.pid, signal.SIGUSR1)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if line.startswith("COUNTERS "):
                return json.loads(line.split(" ", 1)[1])
        raise self.failure("no COUNTERS line after SIGUSR1")

    def port(self, snap, name):
        return next(p for p in snap["ports"] if p["name"] == name)
