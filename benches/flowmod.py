#!/usr/bin/env python3
"""Flow-mod throughput over the wire: `ovs-ofctl -O OpenFlow13 add-flows`
of N rules (default 100,000) into vportd (`--controller ptcp:PORT`) and into
Open vSwitch 3.1 (Debian's openvswitch-switch, a netdev bridge with
`set-controller ptcp:PORT`), both over TCP on 127.0.0.1.

usage: benches/flowmod.py [--rules N] [--reps R] [--vportd PATH]
                          [--skip-ovs] [--out FILE]

ovs-ofctl sends every flow mod followed by a barrier and waits for the
barrier reply, so this measures what one flow mod costs the switch end to
end (decode, classifier insertion, publication of the new tables). Then
the same rules are deleted one `delete_strict` flow mod at a time (an
add-flows file of `delete_strict ...` lines), timed the same way.

The rules are `priority=100,tcp,nw_dst=10.A.B.C,tp_dst=80,actions=output:2`
(one subtable, N values). While they land, vportd forwards established
traffic (net_pcap with 1000 UDP flows that match none of them, through
`priority=1,in_port=1,actions=output:2`, to net_null): the script samples the
sink's tx counter every 100 ms (SIGUSR1 COUNTERS) and reports the lowest
100 ms rate during the load next to the rate before it. OVS gets no traffic
(the Debian build has no DPDK; its bridge has no ports).

Needs root (DPDK prefix, OVS run directory). Only processes started here
are stopped.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import benchlib
import ovs
from benchlib import BenchError

ROOT = benchlib.ROOT


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listen(port, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise BenchError("nothing listens on 127.0.0.1:%d" % port)


def rule_match(i):
    return "priority=100,tcp,nw_dst=10.%d.%d.%d,tp_dst=80" % (
        (i >> 16) & 255, (i >> 8) & 255, i & 255)


def write_rules(path, deletes, n):
    with open(path, "w") as f:
        for i in range(n):
            f.write("%s,actions=output:2\n" % rule_match(i))
    with open(deletes, "w") as f:
        for i in range(n):
            f.write("delete_strict %s\n" % rule_match(i))


def ofctl(target, *args, timeout=3600):
    t0 = time.time()
    p = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13"] + [args[0], target] + list(args[1:]),
                       capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise BenchError("ovs-ofctl %s: %s" % (args[0], p.stderr.strip()))
    return p.stdout, time.time() - t0


def flow_count(target):
    out, _ = ofctl(target, "dump-aggregate")
    for tok in out.split():
        if tok.startswith("flow_count="):
            return int(tok.split("=")[1])
    raise BenchError("dump-aggregate: no flow_count in %r" % out)


def sink_tx(vp):
    return vp.port(vp.counters(), "p2")["tx_packets"]


def run_vportd(binary, rules, deletes, n, scratch):
    pcap = os.path.join(scratch, "in.pcap")
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "gen_traffic.py"), pcap,
                    "--flows", "1000", "--rounds", "4"], check=True, capture_output=True)
    base = os.path.join(scratch, "base.flows")
    with open(base, "w") as f:
        f.write("priority=1,in_port=1,actions=output:2\n")
    port = free_port()
    ports = [("p1", "net_pcap0,rx_pcap=%s,infinite_rx=1" % pcap), ("p2", "net_null0,no-rx=1")]
    with benchlib.Vportd(binary, ports, base, 65536,
                         extra_args=["--controller", "ptcp:%d" % port]) as vp:
        wait_listen(port)
        target = "tcp:127.0.0.1:%d" % port
        t0, c0 = time.time(), sink_tx(vp)
        time.sleep(1.0)
        before = (sink_tx(vp) - c0) / (time.time() - t0)
        samples, done = [], threading.Event()

        def sample():
            last_t, last_c = time.time(), sink_tx(vp)
            while not done.is_set():
                time.sleep(0.1)
                t, c = time.time(), sink_tx(vp)
                samples.append((c - last_c) / (t - last_t))
                last_t, last_c = t, c

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        try:
            _, secs = ofctl(target, "add-flows", rules)
        finally:
            done.set()
            th.join()
        got = flow_count(target)
        if got != n + 1:
            raise BenchError("vportd has %d rules after add-flows, not %d" % (got, n + 1))
        _, del_secs = ofctl(target, "add-flows", deletes)
        if flow_count(target) != 1:
            raise BenchError("vportd kept rules after the deletes")
        return {"seconds": secs, "rules_per_s": n / secs, "delete_seconds": del_secs,
                "pps_before": before,
                "pps_min_during": min(samples) if samples else None,
                "pps_median_during": sorted(samples)[len(samples) // 2] if samples else None}


class DebianOvs(ovs.Ovs):
    """ovs.Ovs with Debian's ovs-vswitchd (openvswitch-switch, no DPDK)
    and no DPDK settings: a netdev bridge only the control plane uses."""

    def _start(self):
        r = self.run
        self._cmd(["ovsdb-tool", "create", r + "/conf.db", ovs.SCHEMA])
        self._cmd(["ovsdb-server", r + "/conf.db", "--remote=punix:%s/db.sock" % r,
                   "--pidfile=%s/ovsdb-server.pid" % r, "--unixctl=%s/ovsdb-server.ctl" % r,
                   "--log-file=%s/ovsdb-server.log" % r, "--detach", "--no-chdir",
                   "-vconsole:off"])
        self.pids["ovsdb-server"] = self._pidfile("ovsdb-server")
        self.vsctl("--no-wait", "init")
        self._cmd(["/usr/sbin/ovs-vswitchd", "unix:%s/db.sock" % r,
                   "--pidfile=%s/ovs-vswitchd.pid" % r, "--unixctl=%s/ovs-vswitchd.ctl" % r,
                   "--log-file=%s/ovs-vswitchd.log" % r, "--detach", "--no-chdir",
                   "-vconsole:off"])
        self.pids["ovs-vswitchd"] = self._pidfile("ovs-vswitchd")
        self.vsctl("add-br", self.bridge, "--", "set", "bridge", self.bridge,
                   "datapath_type=netdev", "fail_mode=secure",
                   "other_config:disable-in-band=true")


def run_ovs(rules, deletes, n):
    if not os.access("/usr/sbin/ovs-vswitchd", os.X_OK):
        raise BenchError("Debian's openvswitch-switch is not installed (/usr/sbin/ovs-vswitchd)")
    port = free_port()
    with DebianOvs() as o:
        o.vsctl("set-controller", o.bridge, "ptcp:%d:127.0.0.1" % port)
        wait_listen(port)
        target = "tcp:127.0.0.1:%d" % port
        ofctl(target, "del-flows")
        _, secs = ofctl(target, "add-flows", rules)
        got = flow_count(target)
        if got != n:
            raise BenchError("OVS has %d rules after add-flows, not %d" % (got, n))
        _, del_secs = ofctl(target, "add-flows", deletes)
        if flow_count(target) != 0:
            raise BenchError("OVS kept rules after the deletes")
        return {"seconds": secs, "rules_per_s": n / secs, "delete_seconds": del_secs}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rules", type=int, default=100000)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--vportd", default=os.path.join(ROOT, "target", "release", "vportd"))
    ap.add_argument("--skip-ovs", action="store_true")
    ap.add_argument("--out")
    a = ap.parse_args()
    scratch = tempfile.mkdtemp(prefix="flowmod.")
    try:
        rules = os.path.join(scratch, "rules.txt")
        deletes = os.path.join(scratch, "deletes.txt")
        write_rules(rules, deletes, a.rules)
        res = {"rules": a.rules, "vportd": [], "ovs": []}
        for rep in range(a.reps):
            r = run_vportd(a.vportd, rules, deletes, a.rules, scratch)
            print("vportd rep %d: add %.2f s (%.0f rules/s), delete %.2f s; sink %.0f pps "
                  "before, lowest 100 ms %.0f pps, median %.0f pps during the load"
                  % (rep, r["seconds"], r["rules_per_s"], r["delete_seconds"], r["pps_before"],
                     r["pps_min_during"] or 0, r["pps_median_during"] or 0), flush=True)
            res["vportd"].append(r)
            if not a.skip_ovs:
                r = run_ovs(rules, deletes, a.rules)
                print("ovs    rep %d: add %.2f s (%.0f rules/s), delete %.2f s"
                      % (rep, r["seconds"], r["rules_per_s"], r["delete_seconds"]), flush=True)
                res["ovs"].append(r)
        if a.out:
            with open(a.out, "w") as f:
                json.dump(res, f, indent=1)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        sys.exit("flowmod: %s" % e)
