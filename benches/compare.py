#!/usr/bin/env python3
"""vportd against Open vSwitch 3.1 (OVS-DPDK, dpif-netdev) and dpdk-testpmd,
on the same traffic and flow tables, in one invocation.

usage: benches/compare.py [--scenarios a,b] [--reps N] [--interval S]
                          [--warmup S] [--out FILE] [--quick] [--peer DIR]
                          [--vportd PATH] [--hugepages]
       make bench BENCH_ARGS="--scenarios emc-1k,setup --reps 5"

Traffic and tables come from the peer harness (--peer, default
../shared/peer next to the project root): its gen_traffic.py writes the
pcaps into a scratch directory, and its flows/*.txt are loaded unchanged
into OVS (ovs-ofctl add-flows) and into vportd (--flows). See the peer's
README.md for the traffic and the scenario definitions.

Every DPDK process gets the same virtual devices and memory: --no-huge
-m 2048, p1 = net_pcap0,rx_pcap=<pcap>,infinite_rx=1 (the source),
p2 = net_null0,no-rx=1 (the sink), one PMD/forwarding thread on core 1,
everything else on core 0. Contenders are run round-robin per scenario and
repetition (ovs, vportd, testpmd, ovs, vportd, ...), so slow phases of the
shared machine hit them alike.

Steady-state scenarios (rules, pcap):
  simple-1flow   p2p_simple  flow1       in_port=1 -> output:2 (simple match)
  simple-100k    p2p_simple  flows100k   (optional, not in the default list)
  emc-1flow      p2p_udp     flow1       in_port=1,udp -> output:2 (EMC)
  emc-1k         p2p_udp     flows1k
  emc-100k       p2p_udp     flows100k   EMC thrash -> megaflow cache
  noemc-100k     p2p_udp     flows100k   emc-insert-inv-prob=0 in both
  routes-1k      routes      routes1k    350 prefixes, 22 masks
  routes-100k    routes      routes100k
  pipeline-1k    pipeline    routes1k    2 tables (OpenFlow 1.3), rewrites
  pipeline-100k  pipeline    routes100k
  smc-100k       p2p_udp     flows100k   OVS smc-enable=true (optional)
  routes-100k-smc, pipeline-100k-smc     the same with OVS smc-enable=true
  normal-1mac    NORMAL      flow1       priority=0,actions=NORMAL, 1 MAC
  normal-1k      NORMAL      macs1k      the same, 1000 source MACs: flows1k
                                         with source MAC 02:20:00:00:00:00+i
                                         for its i-th flow (5-tuple)
  ct-1k          ct          ct1k        security group (ct(table=1); +new ->
                                         ct(commit),output; +est -> output;
                                         +inv -> drop); flows1k with each
                                         frame followed by its reply
  ct-100k        ct          ct100k      the same over flows100k
  normal-1k-l2   NORMAL      macs1k-l2   1000 source MACs and nothing else
                                         different (flow1's frame, source
                                         02:10:00:00:00:00+i): OVS's EMC,
                                         indexed by a 5-tuple hash, keeps
                                         only 2 of them (optional)
In the NORMAL scenarios the destination is never learned (p2 receives
nothing), so every frame floods, which with two ports is one copy to p2 as
a learned destination would give; OVS's bridge LOCAL port (a kernel tap
vportd does not have) is set no-flood so the copies match.
vportd has no SMC switch: its signature match cache (1M entries) is on as
soon as a PMD's classifier has 2 or more subtables (so not in emc-100k or
smc-100k), while OVS's is off unless smc-enable=true. The *-smc variants
give OVS its SMC too; vportd runs unchanged in them.
Each run: start, warm up --warmup s (all megaflows are installed by then),
then a --interval s window. Reported per contender (median over the runs,
min-max in brackets):
  Mpps          packets received on p1 in the window / wall seconds
                (testpmd: packets sent on port 1);
  cyc/pkt       the PMD thread's on-CPU ns in the window
                (/proc/PID/task/TID/schedstat) x TSC Hz / those packets;
                time the thread was descheduled is not counted, so this is
                the figure to compare on a shared machine;
  share         on-CPU time / wall time of the PMD thread;
  hits          simple / EMC / SMC / megaflow / upcall as % of received
                packets (OVS: dpif-netdev/pmd-stats-show, cleared at the
                window start; vportd: SIGUSR1 COUNTERS deltas);
  megaflows     datapath flows at the end of the window;
  fwd %         packets sent on p2 / packets received on p1;
  vportd/OVS    median vportd cyc/pkt / median OVS cyc/pkt;
  testpmd io    dpdk-testpmd --forward-mode=io on the same pcap, the I/O
                ceiling (no switch can use fewer cycles); measured once per
                pcap and repetition, and shown on every scenario using it.

Flow-setup scenario `setup` (upcall storm), same for OVS and vportd:
  rules   priority=100,dl_src=02:ff:ff:ff:ff:ff actions=drop
          priority=1,actions=output:2
  p3      net_pcap flow1 (the established flow: 1 megaflow)
  p1      net_pcap storm.pcap: STORM_PACKETS frames, each with its own source
          MAC. The dl_src rule makes dl_src exact in every megaflow (its
          L2 stage mismatches), so every storm frame is a new megaflow.
  Phases: start with p2 and p3 only; warm up --warmup s; baseline window
  (--interval s): established Mpps = p3 rx / wall. Then p1 is added at run
  time (ovs-vsctl add-port / vportctl add-port) and every SAMPLE_S seconds
  the counters are sampled. The storm window runs from the first sample
  that shows the storm's upcalls to --interval s later, or to the first
  sample with 90 % of the storm installed (vportd gets there first).
  Rates are (last - first sample) / time between them:
  megaflows installed/s  OVS: pmd-stats-show "miss with success upcall";
                    vportd: its megaflow count (nothing expires in the
                    window). OVS's dynamic flow limit starts at 10000 and
                    grows by ~1000 per revalidation, and its revalidator
                    deletes flows beyond it, so OVS's megaflow count at the
                    end is far lower than what it installed;
  upcalls handled/s OVS: success + failed upcalls (a failed upcall is one
                    refused by the flow limit: translated and executed, not
                    installed); vportd: packets resolved by an upcall reply
                    (lost upcalls, dropped when the queue is full, are not
                    counted);
  established Mpps during storm = p3 rx / time over the storm window, and
                    storm/baseline its ratio to the baseline window;
  PMD share         on-CPU share of the PMD thread from adding p1 to the
                    end of the window.
  OVS handles upcalls in the PMD thread itself (dpif-netdev has no handler
  queue); vportd hands them to handler threads on core 0, so the two
  designs spend the storm on different cores. vportd's flow limit is
  raised to OVS's maximum (flow-limit default 200000) for this scenario.
  normal-learn is the same storm under priority=0,actions=NORMAL (the
  storm frames, each with its own source MAC, are each a new MAC), and
  adds MACs learned/s: OVS fdb/stats-show "Total number of learned MAC
  entries", vportd fdb-stats-show "learned". Both MAC tables are sized
  mac-table-size=200000 (OVS: bridge other-config), so every storm MAC is
  learned once: at the default 8192 the table would churn, and MACs
  evicted then re-learned from megaflow statistics would count again.
  STORM_PACKETS = 150000
# normal-learn: room for every storm MAC, so that each is learned once.
MAC_TABLE = 200000 keeps OVS's pool of 262144 mbufs (net_pcap
  infinite_rx pins one per pcap packet) within reach.
"""
import argparse
import json
import os
import shlex
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import benchlib
from benchlib import (ROOT, BenchError, Vportd, result, run_testpmd, schedstat_ns,
                      tsc_hz)
import ovs as ovslib

SINK = "net_null0,no-rx=1"
# Written into the scratch directory (the peer has no NORMAL table).
NORMAL_RULES = "normal.flows"
# Written into the scratch directory: an OpenStack-style security group.
CT_RULES = "ct.flows"
STORM_PACKETS = 150000
# normal-learn: room for every storm MAC, so that each is learned once.
MAC_TABLE = 200000
SAMPLE_S = 0.2
STEADY = {
    # name: (flow file, pcap, OpenFlow version, OVS other_config, vportd args)
    "simple-1flow": ("p2p_simple.txt", "flow1", "OpenFlow10", {}, []),
    "simple-100k": ("p2p_simple.txt", "flows100k", "OpenFlow10", {}, []),
    "emc-1flow": ("p2p_udp.txt", "flow1", "OpenFlow10", {}, []),
    "emc-1k": ("p2p_udp.txt", "flows1k", "OpenFlow10", {}, []),
    "emc-100k": ("p2p_udp.txt", "flows100k", "OpenFlow10", {}, []),
    "noemc-100k": ("p2p_udp.txt", "flows100k", "OpenFlow10",
                   {"emc-insert-inv-prob": "0"}, ["--emc-insert-inv-prob", "0"]),
    "routes-1k": ("routes.txt", "routes1k", "OpenFlow10", {}, []),
    "routes-100k": ("routes.txt", "routes100k", "OpenFlow10", {}, []),
    "pipeline-1k": ("pipeline.txt", "routes1k", "OpenFlow13", {}, []),
    "pipeline-100k": ("pipeline.txt", "routes100k", "OpenFlow13", {}, []),
    "smc-100k": ("p2p_udp.txt", "flows100k", "OpenFlow10", {"smc-enable": "true"}, []),
    "routes-100k-smc": ("routes.txt", "routes100k", "OpenFlow10", {"smc-enable": "true"}, []),
    "pipeline-100k-smc": ("pipeline.txt", "routes100k", "OpenFlow13",
                          {"smc-enable": "true"}, []),
    # NORMAL (MAC learning switch), untagged = one VLAN; see NORMAL_RULES.
    "normal-1mac": (NORMAL_RULES, "flow1", "OpenFlow10", {}, []),
    "normal-1k": (NORMAL_RULES, "macs1k", "OpenFlow10", {}, []),
    "normal-1k-l2": (NORMAL_RULES, "macs1k-l2", "OpenFlow10", {}, []),
    # Conntrack (see CT_RULES): each flow of flows1k/flows100k followed by
    # its reply, so every connection is established in both directions.
    "ct-1k": (CT_RULES, "ct1k", "OpenFlow13", {}, []),
    "ct-100k": (CT_RULES, "ct100k", "OpenFlow13", {}, []),
}
STORMS = ("setup", "normal-learn")
DEFAULT_SCENARIOS = [s for s in STEADY
                     if s not in ("simple-100k", "smc-100k", "normal-1k-l2")] + list(STORMS)
HITS = ["simple", "emc", "smc", "megaflow", "upcall"]


# ------------------------------------------------------------- inputs ----
class Inputs:
    """Paths of the generated pcaps and the peer's flow tables."""

    def __init__(self, peer, scratch, vportd, vportd_args=()):
        self.peer, self.scratch, self.vportd = peer, scratch, vportd
        self.vportd_args = list(vportd_args)

    def pcap(self, name):
        return os.path.join(self.scratch, "out", "pcap", name + ".pcap")

    def flows(self, name):
        local = os.path.join(self.scratch, name)
        return local if os.path.exists(local) else os.path.join(self.peer, "flows", name)


def check_prerequisites(a):
    if not os.path.isfile(os.path.join(a.peer, "gen_traffic.py")):
        raise BenchError("peer harness not found at %s (gen_traffic.py, flows/): "
                         "pass --peer DIR" % a.peer)
    if not os.access(a.vportd, os.X_OK):
        raise BenchError("%s is missing: run `cargo build --release` first" % a.vportd)
    for tool in ("dpdk-testpmd", "stdbuf", "taskset"):
        if not shutil.which(tool):
            raise BenchError("%s is missing (Debian: dpdk-dev / coreutils / util-linux)" % tool)
    if os.geteuid() != 0:
        raise BenchError("needs root (/var/run/dpdk/<prefix>, the OVS bridge's tap port)")
    ovslib.ensure_installed()


def generate_traffic(peer, scratch):
    """The peer's pcaps (its flow tables are written to scratch, unused)."""
    p = subprocess.run([sys.executable, os.path.join(peer, "gen_traffic.py"),
                        "--out", os.path.join(scratch, "out"),
                        "--flows-dir", os.path.join(scratch, "flows")],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise BenchError("gen_traffic.py failed:\n" + p.stderr[-2000:])


def pcap_packets(path):
    with open(path, "rb") as f:
        f.seek(24)
        n = 0
        while True:
            hdr = f.read(16)
            if len(hdr) < 16:
                return n
            f.seek(struct.unpack("<IIII", hdr)[2], 1)
            n += 1


def write_storm_pcap(template, out, n):
    """n copies of template's first frame, frame i with source MAC 02:10:<i>."""
    with open(template, "rb") as f:
        ghdr = f.read(24)
        rec = f.read(16)
        frame = f.read(struct.unpack("<IIII", rec)[2])
    with open(out, "wb") as f:
        f.write(ghdr)
        for i in range(n):
            f.write(rec + frame[:6] + b"\x02\x10" + struct.pack("!I", i) + frame[12:])


def write_mac_per_flow_pcap(src, out):
    """src with each distinct UDP flow (IP addresses, ports) given its own
    source MAC 02:20:<flow index>, in order of first appearance."""
    flows = {}
    with open(src, "rb") as f, open(out, "wb") as g:
        g.write(f.read(24))
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return len(flows)
            frame = f.read(struct.unpack("<IIII", rec)[2])
            i = flows.setdefault(frame[26:38], len(flows))
            g.write(rec + frame[:6] + b"\x02\x20" + struct.pack("!I", i) + frame[12:])


def write_bidir_pcap(src, out):
    """src (untagged IPv4/UDP) with every frame followed by its reply:
    MACs, addresses and ports swapped (checksums stay valid: a swap does
    not change a ones-complement sum)."""
    with open(src, "rb") as f, open(out, "wb") as g:
        g.write(f.read(24))
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            frame = f.read(struct.unpack("<IIII", rec)[2])
            g.write(rec + frame)
            r = bytearray(frame)
            r[0:6], r[6:12] = frame[6:12], frame[0:6]
            r[26:30], r[30:34] = frame[30:34], frame[26:30]
            r[34:36], r[36:38] = frame[36:38], frame[34:36]
            g.write(rec + bytes(r))


def write_ct_flows(out):
    with open(out, "w") as f:
        f.write("table=0,priority=10,ip,ct_state=-trk,actions=ct(table=1)\n"
                "table=1,priority=10,ip,ct_state=+trk+new,actions=ct(commit),output:2\n"
                "table=1,priority=10,ip,ct_state=+trk+est,actions=output:2\n"
                "table=1,priority=10,ip,ct_state=+trk+inv,actions=drop\n")


def write_normal_flows(out):
    with open(out, "w") as f:
        f.write("priority=0,actions=NORMAL\n")


def write_storm_flows(out):
    with open(out, "w") as f:
        f.write("priority=100,dl_src=02:ff:ff:ff:ff:ff actions=drop\n"
                "priority=1,actions=output:2\n")


def pcap_vdev(index, path):
    return "net_pcap%d,rx_pcap=%s,infinite_rx=1" % (index, path)


# ---------------------------------------------------- steady scenarios ----
def pct_hits(counts, received):
    return {k: 100.0 * counts[k] / max(received, 1) for k in HITS}


def run_ovs_steady(inp, sc, warmup, interval, hz):
    rules, pcap, ofver, oc, _ = STEADY[sc]
    with ovslib.Ovs(oc) as o:
        o.add_flows(inp.flows(rules), ofver)
        if rules == NORMAL_RULES:
            o.no_flood_local()
        o.add_port("p1", 1, pcap_vdev(0, inp.pcap(pcap)))
        o.add_port("p2", 2, SINK)
        tid = o.pmd_tid()
        time.sleep(warmup)
        o.appctl("dpif-netdev/pmd-stats-clear")
        p0, _ = o.dp_show()
        c0, t0 = schedstat_ns(o.pid, tid), time.time()
        time.sleep(interval)
        c1, t1 = schedstat_ns(o.pid, tid), time.time()
        p1, flows = o.dp_show()
        st = o.pmd_stats()
    rx = p1["p1"]["rx"] - p0["p1"]["rx"]
    r = result(rx, c1 - c0, t1 - t0, hz)
    r["fwd%"] = 100.0 * (p1["p2"]["tx"] - p0["p2"]["tx"]) / max(rx, 1)
    upcalls = st["miss with success upcall"] + st["miss with failed upcall"]
    counts = {"simple": st["simple match hits"], "emc": st["emc hits"],
              "smc": st["smc hits"], "megaflow": st["megaflow hits"], "upcall": upcalls}
    r["hits"] = pct_hits(counts, st["packets received"])
    r["megaflows"] = flows
    return r


def run_vportd_steady(inp, sc, warmup, interval, hz):
    rules, pcap, _, _, extra = STEADY[sc]
    ports = [("p1", pcap_vdev(0, inp.pcap(pcap))), ("p2", SINK)]
    mbufs = pcap_packets(inp.pcap(pcap)) + 16384
    with Vportd(inp.vportd, ports, inp.flows(rules), mbufs, list(extra) + inp.vportd_args) as v:
        tid = v.pmd_tid()
        time.sleep(warmup)
        a = v.counters()
        c0, t0 = schedstat_ns(v.p.pid, tid), time.time()
        time.sleep(interval)
        c1, t1 = schedstat_ns(v.p.pid, tid), time.time()
        b = v.counters()
    rx = v.port(b, "p1")["rx_packets"] - v.port(a, "p1")["rx_packets"]
    r = result(rx, c1 - c0, t1 - t0, hz)
    r["fwd%"] = 100.0 * (v.port(b, "p2")["tx_packets"] - v.port(a, "p2")["tx_packets"]) / max(rx, 1)
    pa, pb = a["pmds"][0], b["pmds"][0]
    counts = {k: pb[k + key] - pa[k + key] for k, key in
              [("simple", "_hits"), ("emc", "_hits"), ("smc", "_hits"),
               ("megaflow", "_hits"), ("upcall", "s")]}
    r["hits"] = pct_hits(counts, pb["rx_packets"] - pa["rx_packets"])
    r["megaflows"] = b["megaflows"]
    return r


def run_testpmd_steady(inp, sc, warmup, interval, hz):
    pcap = STEADY[sc][1]
    return run_testpmd([pcap_vdev(0, inp.pcap(pcap)), SINK], warmup, interval, hz)


# ----------------------------------------------------- setup scenario ----
class OvsSide:
    """The setup scenario's operations on OVS (`normal`: the NORMAL table,
    whose MAC learning is sampled too)."""

    def __init__(self, inp, normal=False):
        self.inp, self.normal = inp, normal
        self.o = None

    def __enter__(self):
        self.o = ovslib.Ovs().__enter__()
        try:
            if self.normal:
                self.o.add_flows(self.inp.flows(NORMAL_RULES), "OpenFlow10")
                self.o.no_flood_local()
                self.o.vsctl("set", "bridge", self.o.bridge,
                             "other-config:mac-table-size=%d" % MAC_TABLE)
            else:
                self.o.add_flows(os.path.join(self.inp.scratch, "storm.flows"), "OpenFlow10")
            self.o.add_port("p2", 2, SINK)
            self.o.add_port("p3", 3, pcap_vdev(1, self.inp.pcap("flow1")))
        except BaseException:
            self.o.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        return self.o.__exit__(*exc)

    def pid_tid(self):
        return self.o.pid, self.o.pmd_tid()

    def add_storm(self):
        self.o.add_port("p1", 1, pcap_vdev(0, self.inp.pcap("storm")))

    def sample(self):
        ports, flows = self.o.dp_show()
        st = self.o.pmd_stats()
        ok = st["miss with success upcall"]
        s = {"t": time.time(), "megaflows": flows, "p3_rx": ports["p3"]["rx"],
             "installed": ok, "upcalls": ok + st["miss with failed upcall"]}
        if self.normal:
            s["learned"] = self.o.fdb_learned()
        return s


class VportdSide:
    """The setup scenario's operations on vportd (p1 added via vportctl)."""

    def __init__(self, inp, normal=False):
        self.inp, self.normal = inp, normal
        self.ctl = os.path.join(inp.scratch, "vportd-%d.ctl" % os.getpid())
        mbufs = STORM_PACKETS + pcap_packets(inp.pcap("flow1")) + 16384
        ports = [("p2", SINK, 2), ("p3", pcap_vdev(1, inp.pcap("flow1")), 3)]
        flows = inp.flows(NORMAL_RULES) if normal else os.path.join(inp.scratch, "storm.flows")
        self.v = Vportd(inp.vportd, ports, flows, mbufs, inp.vportd_args, ctl=self.ctl)

    def __enter__(self):
        self.v.__enter__()
        try:
            self.vportctl("set", "flow-limit", "200000")
            if self.normal:
                self.vportctl("set", "mac-table-size", str(MAC_TABLE))
        except BaseException:
            self.v.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        return self.v.__exit__(*exc)

    def vportctl(self, *args):
        binary = os.path.join(os.path.dirname(self.inp.vportd), "vportctl")
        for _ in range(50):  # the socket appears once the ports are up
            if os.path.exists(self.ctl):
                break
            time.sleep(0.1)
        p = subprocess.run([binary, "--ctl", self.ctl] + list(args),
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise BenchError("vportctl %s: %s%s" % (" ".join(args), p.stdout, p.stderr))
        return p.stdout

    def pid_tid(self):
        return self.v.p.pid, self.v.pmd_tid()

    def add_storm(self):
        self.vportctl("add-port", "p1", pcap_vdev(0, self.inp.pcap("storm")) + ",ofport=1")

    def sample(self):
        c = self.v.counters()
        s = {"t": time.time(), "megaflows": c["megaflows"],
             "p3_rx": self.v.port(c, "p3")["rx_packets"],
             "installed": c["megaflows"], "upcalls": c["pmds"][0]["upcalls"]}
        if self.normal:
            s["learned"] = json.loads(self.vportctl("fdb-stats-show", "--json"))["learned"]
        return s


def rate(a, b, key):
    return (b[key] - a[key]) / max(b["t"] - a["t"], 1e-9)


def established_window(side, interval):
    a = side.sample()
    time.sleep(interval)
    return rate(a, side.sample(), "p3_rx") / 1e6


def storm_window(side, start, interval):
    """Samples from the first one where the storm's upcalls show, for
    `interval` seconds or until 90 % of the storm is installed."""
    first, samples = None, []
    deadline = time.time() + interval + 30  # the port takes a while to come up
    while time.time() < deadline:
        s = side.sample()
        if first is None and s["upcalls"] > start["upcalls"]:
            first = s
            deadline = s["t"] + interval
        if first is not None:
            samples.append(s)
            if s["installed"] - start["installed"] >= 0.9 * STORM_PACKETS:
                break
        time.sleep(SAMPLE_S)
    if len(samples) < 2:
        raise BenchError("setup: no upcalls within %.0f s of adding the storm port" % (interval + 30))
    return samples[0], samples[-1]


def run_setup(side, warmup, interval, hz):
    with side:
        pid, tid = side.pid_tid()
        time.sleep(warmup)
        r = {"baseline_mpps": established_window(side, interval)}
        start = side.sample()
        side.add_storm()
        c0 = schedstat_ns(pid, tid)
        first, last = storm_window(side, start, interval)
        r["pmd_share"] = (schedstat_ns(pid, tid) - c0) * 1e-9 / (time.time() - c0 * 0 - first["t"])
        r["megaflows_per_s"] = rate(first, last, "installed")
        r["upcalls_per_s"] = rate(first, last, "upcalls")
        r["storm_mpps"] = rate(first, last, "p3_rx") / 1e6
        r["window_s"] = last["t"] - first["t"]
        r["installed"] = last["installed"] - start["installed"]
        r["megaflows"] = last["megaflows"]
        if "learned" in last:
            r["macs_per_s"] = rate(first, last, "learned")
            r["macs_learned"] = last["learned"] - start["learned"]
    return r


# -------------------------------------------------------------- report ----
def med(rs, key):
    return statistics.median(r[key] for r in rs)


def spread(rs, key, fmt):
    vals = [r[key] for r in rs]
    return (fmt + " (" + fmt + "-" + fmt + ")") % (statistics.median(vals), min(vals), max(vals))


def hits_cell(rs):
    return " / ".join("%.1f" % statistics.median(r["hits"][k] for r in rs) for k in HITS)


def steady_table(results, scenarios, pcap_of):
    lines = ["| scenario | contender | runs | Mpps (wall) | on-CPU cyc/pkt, median (min-max) "
             "| PMD share | simple / EMC / SMC / megaflow / upcall % | megaflows | fwd % "
             "| vportd/OVS cycles | testpmd io ceiling: Mpps, cyc/pkt |",
             "|" + "---|" * 11]
    for sc in scenarios:
        tp = results.get(("testpmd", pcap_of(sc)))
        ceiling = "%.2f, %.0f" % (med(tp, "mpps"), med(tp, "cyc_per_pkt")) if tp else "-"
        ovs, vp = results.get(("ovs", sc)), results.get(("vportd", sc))
        ratio = "%.2f" % (med(vp, "cyc_per_pkt") / med(ovs, "cyc_per_pkt")) if ovs and vp else "-"
        for name, rs in (("OVS 3.1", ovs), ("vportd", vp)):
            if not rs:
                continue
            lines.append("| %s | %s | %d | %.2f | %s | %.0f%% | %s | %s | %.1f | %s | %s |" % (
                sc, name, len(rs), med(rs, "mpps"), spread(rs, "cyc_per_pkt", "%.0f"),
                100 * med(rs, "share"), hits_cell(rs), spread(rs, "megaflows", "%d"),
                med(rs, "fwd%"), ratio if name == "vportd" else "", ceiling))
    return lines


def setup_table(results, sc="setup"):
    learn = sc == "normal-learn"
    lines = ["| contender | runs | " + ("MACs learned/s, median (min-max) | " if learn else "")
             + "megaflows installed/s, median (min-max) | upcalls handled/s "
             "| established Mpps: baseline | during storm | storm/baseline | storm window s "
             "| installed in window | megaflows at end | PMD share |",
             "|" + "---|" * (12 if learn else 11)]
    for name, key in (("OVS 3.1", "ovs"), ("vportd", "vportd")):
        rs = results.get((key, sc))
        if not rs:
            continue
        macs = spread(rs, "macs_per_s", "%.0f") + " | " if learn else ""
        lines.append("| %s | %d | %s%s | %.0f | %.2f | %.2f | %.0f%% | %.1f | %.0f | %.0f | %.0f%% |" % (
            name, len(rs), macs, spread(rs, "megaflows_per_s", "%.0f"), med(rs, "upcalls_per_s"),
            med(rs, "baseline_mpps"), med(rs, "storm_mpps"),
            100 * med(rs, "storm_mpps") / med(rs, "baseline_mpps"), med(rs, "window_s"),
            med(rs, "installed"), med(rs, "megaflows"), 100 * med(rs, "pmd_share")))
    return lines


# ---------------------------------------------------------------- main ----
def contenders(inp, sc, a, hz):
    """[(contender, result key, thunk)] for one scenario, in run order."""
    if sc in STORMS:
        n = sc == "normal-learn"
        return [("ovs", sc, lambda: run_setup(OvsSide(inp, n), a.warmup, a.interval, hz)),
                ("vportd", sc, lambda: run_setup(VportdSide(inp, n), a.warmup, a.interval, hz))]
    args = (inp, sc, a.warmup, a.interval, hz)
    return [("ovs", sc, lambda: run_ovs_steady(*args)),
            ("vportd", sc, lambda: run_vportd_steady(*args)),
            ("testpmd", STEADY[sc][1], lambda: run_testpmd_steady(*args))]


def log_run(rep, sc, name, r):
    if sc in STORMS:
        print("rep %d %-13s %-7s %8.0f megaflows/s, %8.0f upcalls/s, established %.2f -> %.2f Mpps%s"
              % (rep, sc, name, r["megaflows_per_s"], r["upcalls_per_s"], r["baseline_mpps"],
                 r["storm_mpps"], ", %.0f MACs learned/s" % r["macs_per_s"]
                 if "macs_per_s" in r else ""), flush=True)
    else:
        print("rep %d %-13s %-7s %6.2f Mpps %6.0f cyc/pkt (share %.2f)"
              % (rep, sc, name, r["mpps"], r["cyc_per_pkt"], r["share"]), flush=True)


def run_all(inp, scenarios, a, hz):
    results = {}
    for rep in range(1, a.reps + 1):
        for sc in scenarios:
            for name, key, fn in contenders(inp, sc, a, hz):
                rs = results.setdefault((name, key), [])
                if name == "testpmd" and len(rs) >= rep:
                    continue  # this pcap's ceiling is already measured in this round
                r = fn()
                r["rep"] = rep
                rs.append(r)
                log_run(rep, sc, name, r)
    return results


def parse_args():
    default_peer = os.path.normpath(os.path.join(ROOT, "..", "shared", "peer"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS),
                    help="comma-separated, of: %s" % ", ".join(list(STEADY) + list(STORMS)))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--out", help="also write the raw results as JSON here")
    ap.add_argument("--quick", action="store_true", help="reps 1, interval 3, warmup 2")
    ap.add_argument("--peer", default=default_peer, help="the peer harness (%(default)s)")
    ap.add_argument("--vportd", default=os.path.join(ROOT, "target/release/vportd"))
    ap.add_argument("--hugepages", action="store_true",
                    help="every contender on 2 MiB hugepages (-m 1024): reserves 2048 pages "
                         "and a private hugetlbfs mount for the run, released afterwards (root)")
    ap.add_argument("--vportd-args", default="",
                    help="extra vportd arguments for every run, e.g. '--mbuf-memory eal'")
    a = ap.parse_args()
    if a.quick:
        a.reps, a.interval, a.warmup = 1, 3.0, 2.0
    a.scenarios = [s for s in a.scenarios.split(",") if s]
    unknown = [s for s in a.scenarios if s not in STEADY and s not in STORMS]
    if unknown:
        ap.error("unknown scenario(s) %s" % ", ".join(unknown))
    return a


def report(results, a, hz, started):
    steady = [s for s in a.scenarios if s not in STORMS]
    lines = ["# vportd vs OVS 3.1 vs dpdk-testpmd (benches/compare.py)", "",
             "%s; TSC %.0f MHz; %d rep(s), --interval %g s, --warmup %g s; "
             "median (min-max); cyc/pkt = PMD on-CPU time x TSC / packets received"
             % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), hz / 1e6,
                a.reps, a.interval, a.warmup), "",
             "memory: %s" % a.memory, ""]
    if steady:
        lines += steady_table(results, steady, lambda sc: STEADY[sc][1]) + [""]
    if "setup" in a.scenarios:
        lines += ["Flow setup (upcall storm of %d new megaflows on p1, established 1-flow "
                  "traffic on p3):" % STORM_PACKETS, ""] + setup_table(results) + [""]
    if "normal-learn" in a.scenarios:
        lines += ["MAC learning (the same storm under priority=0,actions=NORMAL: every storm "
                  "frame brings a new source MAC):", ""] + setup_table(results, "normal-learn") + [""]
    lines.append("total time %.0f s" % (time.time() - started))
    return "\n".join(lines)


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("compare: terminated"))
    a = parse_args()
    started = time.time()
    check_prerequisites(a)
    hz = tsc_hz()
    with tempfile.TemporaryDirectory(prefix="vportd-compare-") as scratch:
        inp = Inputs(os.path.abspath(a.peer), scratch, os.path.abspath(a.vportd),
                     shlex.split(a.vportd_args))
        generate_traffic(inp.peer, scratch)
        write_storm_pcap(inp.pcap("flow1"), inp.pcap("storm"), STORM_PACKETS)
        write_storm_flows(os.path.join(scratch, "storm.flows"))
        write_storm_pcap(inp.pcap("flow1"), inp.pcap("macs1k-l2"), 1000)
        n = write_mac_per_flow_pcap(inp.pcap("flows1k"), inp.pcap("macs1k"))
        if n != 1000:
            raise BenchError("flows1k.pcap has %d flows, expected 1000" % n)
        write_normal_flows(os.path.join(scratch, NORMAL_RULES))
        write_ct_flows(os.path.join(scratch, CT_RULES))
        write_bidir_pcap(inp.pcap("flows1k"), inp.pcap("ct1k"))
        write_bidir_pcap(inp.pcap("flows100k"), inp.pcap("ct100k"))
        if a.hugepages:
            with benchlib.Hugepages(pages=2048, mb=1024):
                a.memory = benchlib.memory_label()
                results = run_all(inp, a.scenarios, a, hz)
        else:
            a.memory = benchlib.memory_label()
            results = run_all(inp, a.scenarios, a, hz)
    print()
    print(report(results, a, hz, started))
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"args": vars(a), "tsc_hz": hz,
                       "runs": [{"contender": n, "case": k, **r}
                                for (n, k), rs in results.items() for r in rs]},
                      f, indent=1)


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        sys.exit("compare: %s" % e)
    except KeyboardInterrupt:
        sys.exit("compare: interrupted")
