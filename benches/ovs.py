"""A private Open vSwitch (ovs-vswitchd-dpdk, dpif-netdev) for benchmarks.

Modelled on ../shared/peer/ovs_bench.sh (read its README's pitfalls list):
a private run directory with its own ovsdb-server and ovs-vswitchd, a unique
DPDK --file-prefix and a unique bridge name, the main thread on core 0 and
one PMD on core 1, --no-huge -m 2048 --legacy-mem. Only the PIDs started
here are stopped, and /var/run/dpdk/<prefix> is removed afterwards. The
system OVS service is never touched.
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import benchlib
from benchlib import BenchError, cleanup_prefix, unique, wait_thread

VSWITCHD = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk"
SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
TOOLS = ["ovsdb-tool", "ovsdb-server", "ovs-vsctl", "ovs-ofctl", "ovs-appctl"]


def ensure_installed():
    """Install openvswitch-switch-dpdk from Debian when it is missing."""
    if os.access(VSWITCHD, os.X_OK) and all(shutil.which(t) for t in TOOLS):
        return
    print("compare: installing openvswitch-switch-dpdk", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    rc = subprocess.run(sudo + ["apt-get", "install", "-y", "-q", "openvswitch-switch-dpdk"],
                        env=env).returncode
    if rc != 0 or not os.access(VSWITCHD, os.X_OK):
        raise BenchError("OVS-DPDK is missing (%s) and apt-get install "
                         "openvswitch-switch-dpdk failed" % VSWITCHD)


class Ovs:
    """One private OVS instance with one netdev bridge.

    other_config: extra Open_vSwitch other_config items, e.g.
    {"emc-insert-inv-prob": "0"}. Use as a context manager.
    """

    def __init__(self, other_config=None):
        self.other_config = dict(other_config or {})
        self.prefix = unique("tbovs")
        self.bridge = unique("tb")[:15]
        self.run = None
        self.pids = {}

    # ---------------------------------------------------------- commands --
    def _env(self):
        return dict(os.environ, OVS_RUNDIR=self.run, OVS_LOGDIR=self.run, OVS_DBDIR=self.run,
                    OVS_SYSCONFDIR=self.run, OVS_PKGDATADIR=os.path.dirname(SCHEMA))

    def _cmd(self, args, check=True):
        p = subprocess.run(args, capture_output=True, text=True, env=self._env())
        if check and p.returncode != 0:
            raise BenchError("OVS: %s failed: %s" % (" ".join(args[:4]), p.stderr.strip()))
        return p.stdout

    def vsctl(self, *args):
        return self._cmd(["ovs-vsctl", "--db=unix:%s/db.sock" % self.run, "--timeout=60"]
                         + list(args))

    def appctl(self, *args):
        return self._cmd(["ovs-appctl", "--timeout=60", "-t",
                          "%s/ovs-vswitchd.ctl" % self.run] + list(args))

    def ofctl(self, ofver, *args):
        return self._cmd(["ovs-ofctl", "--timeout=60", "-O", ofver] + list(args))

    # ------------------------------------------------------------- start --
    def __enter__(self):
        self.run = tempfile.mkdtemp(prefix="tbovs.")
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self):
        r = self.run
        self._cmd(["ovsdb-tool", "create", r + "/conf.db", SCHEMA])
        self._cmd(["taskset", "-c", "0", "ovsdb-server", r + "/conf.db",
                   "--remote=punix:%s/db.sock" % r, "--pidfile=%s/ovsdb-server.pid" % r,
                   "--unixctl=%s/ovsdb-server.ctl" % r, "--log-file=%s/ovsdb-server.log" % r,
                   "--detach", "--no-chdir", "-vconsole:off"])
        self.pids["ovsdb-server"] = self._pidfile("ovsdb-server")
        self.vsctl("--no-wait", "init")
        oc = {"dpdk-init": "true",
              "dpdk-extra": " ".join(benchlib.eal_memory() + (
                  [] if benchlib.MEMORY["huge_dir"] else ["--legacy-mem"])) +
                            " --no-pci --no-telemetry --file-prefix=%s" % self.prefix,
              "pmd-cpu-mask": "0x2", "n-handler-threads": "1",
              "n-revalidator-threads": "1", "pmd-perf-metrics": "false"}
        oc.update(self.other_config)
        self.vsctl("--no-wait", "set", "Open_vSwitch", ".",
                   *['other_config:%s="%s"' % kv for kv in oc.items()])
        self._cmd(["taskset", "-c", "0", VSWITCHD, "unix:%s/db.sock" % r,
                   "--pidfile=%s/ovs-vswitchd.pid" % r, "--unixctl=%s/ovs-vswitchd.ctl" % r,
                   "--log-file=%s/ovs-vswitchd.log" % r, "--detach", "--no-chdir",
                   "-vconsole:off"])
        self.pids["ovs-vswitchd"] = self._pidfile("ovs-vswitchd")
        self.vsctl("add-br", self.bridge, "--", "set", "bridge", self.bridge,
                   "datapath_type=netdev", "fail_mode=secure",
                   "other_config:disable-in-band=true")

    def _pidfile(self, name):
        with open("%s/%s.pid" % (self.run, name)) as f:
            return int(f.read().strip())

    def add_flows(self, path, ofver):
        self.ofctl(ofver, "del-flows", self.bridge)
        self.ofctl(ofver, "add-flows", self.bridge, path)

    def add_port(self, name, ofport, devargs):
        """A type=dpdk port from vdev devargs (hot-plugged by OVS)."""
        self.vsctl("add-port", self.bridge, name, "--", "set", "Interface", name,
                   "type=dpdk", "ofport_request=%d" % ofport,
                   'options:dpdk-devargs="%s"' % devargs)
        err = self.vsctl("get", "Interface", name, "error").strip()
        if err != "[]":
            raise BenchError("OVS port %s (%s): %s" % (name, devargs, err))

    def no_flood_local(self):
        """The bridge's LOCAL port (a kernel tap) out of NORMAL's flooding,
        so that flooded frames go to the same ports as in vportd, which
        has no LOCAL port."""
        self.ofctl("OpenFlow10", "mod-port", self.bridge, self.bridge, "no-flood")

    def fdb_learned(self):
        """fdb/stats-show: total number of learned MAC entries."""
        for line in self.appctl("fdb/stats-show", self.bridge).splitlines():
            if "Total number of learned MAC entries" in line:
                return int(line.split(":")[1])
        raise BenchError("fdb/stats-show: no learned count")

    @property
    def pid(self):
        return self.pids["ovs-vswitchd"]

    def pmd_tid(self):
        return wait_thread(self.pid, lambda n: n.startswith("pmd-c"), "OVS pmd")

    # ---------------------------------------------------------- counters --
    def dp_show(self):
        """dpctl/show -s: ({port name: {"rx": n, "tx": n}}, datapath flow count)."""
        ports, name = {}, None
        out = self.appctl("dpctl/show", "-s")
        for line in out.splitlines():
            m = re.match(r"\s*port \d+: (\S+)", line)
            if m:
                name = m.group(1)
                ports[name] = {}
            m = re.match(r"\s*(RX|TX) packets:(\d+)", line)
            if m and name:
                ports[name][m.group(1).lower()] = int(m.group(2))
        flows = re.search(r"flows: (\d+)", out)
        return ports, int(flows.group(1)) if flows else 0

    def pmd_stats(self):
        """dpif-netdev/pmd-stats-show of the core-1 PMD as {label: number}."""
        stats, in_pmd = {}, False
        for line in self.appctl("dpif-netdev/pmd-stats-show").splitlines():
            if not line.startswith(" "):  # "pmd thread numa_id 0 core_id 1:" or "main thread:"
                in_pmd = "core_id 1:" in line
            m = re.match(r"\s+([a-z .]+):\s+([0-9.]+)", line)
            if m and in_pmd:
                stats[m.group(1).strip()] = float(m.group(2))
        return stats

    # -------------------------------------------------------------- stop --
    def __exit__(self, *exc):
        ctl = {"ovs-vswitchd": ["exit", "--cleanup"], "ovsdb-server": ["exit"]}
        for name in ("ovs-vswitchd", "ovsdb-server"):
            if name in self.pids:
                self._stop(name, self.pids[name], ctl[name])
        cleanup_prefix(self.prefix)
        shutil.rmtree(self.run, ignore_errors=True)
        return False

    def _stop(self, name, pid, exit_cmd):
        subprocess.run(["ovs-appctl", "--timeout=10", "-t", "%s/%s.ctl" % (self.run, name)]
                       + exit_cmd, capture_output=True, env=self._env())
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    return
            for _ in range(50):
                if not alive(pid):
                    return
                time.sleep(0.1)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of a --detach'ed daemon is reaped by init, not by us.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
