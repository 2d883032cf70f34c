#!/usr/bin/env python3
"""PVP (physical -> VM -> physical): vportd against Open vSwitch 3.1 with a
vhost-user port to the same dpdk-testpmd guest.

usage: benches/pvp.py [--reps N] [--interval S] [--warmup S] [--quick]
                      [--sizes 64,512] [--flows 1,1k] [--guest io|macswap]
                      [--out FILE] [--peer DIR] [--vportd PATH]
       make bench   (runs compare.py, then this)

Topology, the same for both switches:
  p1  net_pcap0,rx_pcap=<pcap>,infinite_rx=1   the "physical" source
  vm  vhost-user port; the switch is the vhost-user client (OVS
      type=dpdkvhostuserclient, vportd vhost-user-client:SOCK), the guest
      owns the socket
  p2  net_null0,no-rx=1                        the "physical" sink
  rules  in_port=1 actions=output:2 / in_port=2 actions=output:3
The guest is dpdk-testpmd with net_virtio_user0,path=SOCK,server=1 in
--forward-mode=io (or macswap) on core 0 (--lcores='(0,1)@0'); the switch
has one PMD on core 1 and everything else on core 0. Every process runs on
--no-huge (DPDK backs it with a shared memfd, which vhost-user can map).

Traffic: the peer harness's flow1.pcap (1 flow) and flows1k.pcap (1000
UDP flows), 64-byte frames, and the same padded to 512 bytes. The source
offers as much as the switch takes, so the guest (sharing core 0) is the
bottleneck and the switch drops what its vhost tx queue refuses: that is
the `loss` column, as in a zero-loss search's first probe.

Reported per switch (median over --reps, min-max in brackets):
  cyc/pkt   the switch PMD's on-CPU time in the window
            (/proc/PID/task/TID/schedstat) x TSC Hz / packets the PMD
            received in both directions (p1 and vm: what OVS's
            pmd-stats-show "packets received" counts);
  Mpps      packets out of p2 / wall seconds (through the VM and back);
  loss      1 - p2 out / p1 in;
  guest cyc/pkt  the guest's forwarding thread's on-CPU cycles / packets
            it returned (received by the switch on vm), and its share of
            core 0: what the guest pays per packet with each switch;
  vportd/OVS  median vportd cyc/pkt / median OVS cyc/pkt.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time

from benchlib import (ROOT, BenchError, cleanup_prefix, result, schedstat_ns, tsc_hz,
                      unique, wait_thread)
import ovs as ovslib

SINK = "net_null0,no-rx=1"
RULES = "in_port=1,actions=output:2\nin_port=2,actions=output:3\n"


def pad_pcap(src, out, size):
    """src with every frame zero-padded to size bytes (the IP and UDP
    lengths are left as they are: the padding is Ethernet trailer)."""
    with open(src, "rb") as f, open(out, "wb") as g:
        g.write(f.read(24))
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            ts, us, incl, orig = struct.unpack("<IIII", rec)
            frame = f.read(incl)
            frame = frame + b"\0" * max(0, size - len(frame))
            g.write(struct.pack("<IIII", ts, us, len(frame), len(frame)) + frame)


class Guest:
    """dpdk-testpmd as the VM: a vhost-user server socket, io/macswap."""

    def __init__(self, sock, mode):
        self.sock, self.mode = sock, mode
        self.prefix = unique("pvpg")
        self.p = None

    def __enter__(self):
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        args = ["dpdk-testpmd", "--lcores=(0,1)@0", "--no-huge", "-m", "1024", "--no-pci",
                "--no-shconf", "--no-telemetry", "--file-prefix=%s" % self.prefix,
                "--vdev=net_virtio_user0,path=%s,server=1,queues=1" % self.sock,
                "--", "--forward-mode=%s" % self.mode, "--port-topology=loop",
                "--auto-start", "--nb-cores=1", "--total-num-mbufs=8192",
                "--rxd=1024", "--txd=1024"]
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        # virtio_user in server mode waits for the switch inside its
        # device probe: the socket appears before that.
        deadline = time.time() + 30
        while not os.path.exists(self.sock):
            if self.p.poll() is not None or time.time() > deadline:
                raise BenchError("testpmd guest never created %s" % self.sock)
            time.sleep(0.1)
        return self

    def worker(self):
        """The tid of the forwarding lcore thread."""
        return wait_thread(self.p.pid, lambda n: "worker" in n, "testpmd guest forwarding")

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        cleanup_prefix(self.prefix)
        return False


def window(pid, tid, guest, sample, warmup, interval):
    """(counters before, after, switch PMD on-CPU ns, guest worker on-CPU
    ns, wall s) of one window."""
    time.sleep(warmup)
    gtid = guest.worker()
    a = sample()
    c0, g0, t0 = schedstat_ns(pid, tid), schedstat_ns(guest.p.pid, gtid), time.time()
    time.sleep(interval)
    c1, g1, t1 = schedstat_ns(pid, tid), schedstat_ns(guest.p.pid, gtid), time.time()
    b = sample()
    return a, b, c1 - c0, g1 - g0, t1 - t0


def summarize(rx_p1, rx_vm, tx_p2, oncpu, guest_ns, wall, hz):
    r = result(rx_p1 + rx_vm, oncpu, wall, hz)
    r["mpps"] = tx_p2 / wall / 1e6
    r["loss"] = 1.0 - tx_p2 / max(rx_p1, 1)
    # The guest forwards what comes back on the vhost port.
    r["guest_cyc_per_pkt"] = guest_ns * 1e-9 * hz / max(rx_vm, 1)
    r["guest_share"] = guest_ns * 1e-9 / wall
    return r


def run_ovs(scratch, pcap, guest_mode, warmup, interval, hz):
    sock = os.path.join(scratch, "ovs-vm.sock")
    rules = os.path.join(scratch, "pvp.flows")
    with Guest(sock, guest_mode) as g, ovslib.Ovs() as o:
        o.add_flows(rules, "OpenFlow10")
        o.add_port("p1", 1, "net_pcap0,rx_pcap=%s,infinite_rx=1" % pcap)
        o.vsctl("add-port", o.bridge, "vm", "--", "set", "Interface", "vm",
                "type=dpdkvhostuserclient", "ofport_request=2",
                "options:vhost-server-path=%s" % sock)
        o.add_port("p2", 3, SINK)
        tid = o.pmd_tid()
        a, b, oncpu, gns, wall = window(o.pid, tid, g, lambda: o.dp_show()[0], warmup,
                                        interval)
    d = {p: {k: b[p].get(k, 0) - a[p].get(k, 0) for k in ("rx", "tx")} for p in b}
    if d["vm"]["rx"] == 0:
        raise BenchError("OVS: nothing came back from the guest")
    return summarize(d["p1"]["rx"], d["vm"]["rx"], d["p2"]["tx"], oncpu, gns, wall, hz)


def run_vportd(binary, scratch, pcap, guest_mode, warmup, interval, hz):
    from benchlib import Vportd
    sock = os.path.join(scratch, "vportd-vm.sock")
    rules = os.path.join(scratch, "pvp.flows")
    with Guest(sock, guest_mode) as g:
        v = Vportd(binary, [("p1", "net_pcap0,rx_pcap=%s,infinite_rx=1" % pcap),
                            ("p2", SINK, 3)], rules, 65535)
        v.args += ["--port", "vm=vhost-user-client:%s,ofport=2" % sock]
        with v:
            tid = v.pmd_tid()
            a, b, oncpu, gns, wall = window(v.p.pid, tid, g, v.counters, warmup, interval)
            delta = {p["name"]: {k: v.port(b, p["name"])[k] - v.port(a, p["name"])[k]
                                 for k in ("rx_packets", "tx_packets")} for p in b["ports"]}
    if delta["vm"]["rx_packets"] == 0:
        raise BenchError("vportd: nothing came back from the guest")
    return summarize(delta["p1"]["rx_packets"], delta["vm"]["rx_packets"],
                     delta["p2"]["tx_packets"], oncpu, gns, wall, hz)


def cell(rs, key, fmt):
    v = [r[key] for r in rs]
    return "%s (%s-%s)" % (fmt % statistics.median(v), fmt % min(v), fmt % max(v))


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("pvp: terminated"))
    default_peer = os.path.normpath(os.path.join(ROOT, "..", "shared", "peer"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--quick", action="store_true", help="reps 1, interval 3, warmup 3")
    ap.add_argument("--sizes", default="64,512")
    ap.add_argument("--flows", default="1,1k")
    ap.add_argument("--guest", default="io", choices=["io", "macswap"])
    ap.add_argument("--out", help="also write the raw results as JSON here")
    ap.add_argument("--peer", default=default_peer)
    ap.add_argument("--vportd", default=os.path.join(ROOT, "target/release/vportd"))
    a = ap.parse_args()
    if a.quick:
        a.reps, a.interval, a.warmup = 1, 3.0, 3.0
    if os.geteuid() != 0:
        raise BenchError("needs root (/var/run/dpdk/<prefix>, the OVS bridge's tap port)")
    if not shutil.which("dpdk-testpmd"):
        raise BenchError("dpdk-testpmd is missing (Debian: dpdk-dev)")
    if not os.access(a.vportd, os.X_OK):
        raise BenchError("%s is missing: run `cargo build --release` first" % a.vportd)
    ovslib.ensure_installed()
    hz = tsc_hz()
    started = time.time()
    results = {}
    with tempfile.TemporaryDirectory(prefix="vportd-pvp-") as scratch:
        p = subprocess.run([sys.executable, os.path.join(a.peer, "gen_traffic.py"),
                            "--out", os.path.join(scratch, "out"),
                            "--flows-dir", os.path.join(scratch, "flows")],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise BenchError("gen_traffic.py failed:\n" + p.stderr[-2000:])
        with open(os.path.join(scratch, "pvp.flows"), "w") as f:
            f.write(RULES)
        cases = []
        for flows in a.flows.split(","):
            base = os.path.join(scratch, "out", "pcap",
                                {"1": "flow1", "1k": "flows1k"}[flows] + ".pcap")
            for size in (int(s) for s in a.sizes.split(",")):
                pcap = base
                if size > 64:
                    pcap = os.path.join(scratch, "pvp-%s-%d.pcap" % (flows, size))
                    pad_pcap(base, pcap, size)
                cases.append(("%dB %s flow%s" % (size, flows, "" if flows == "1" else "s"),
                              pcap))
        for rep in range(1, a.reps + 1):
            for name, pcap in cases:
                for sw in ("ovs", "vportd"):
                    if sw == "ovs":
                        r = run_ovs(scratch, pcap, a.guest, a.warmup, a.interval, hz)
                    else:
                        r = run_vportd(a.vportd, scratch, pcap, a.guest, a.warmup,
                                       a.interval, hz)
                    r["rep"] = rep
                    results.setdefault((name, sw), []).append(r)
                    print("rep %d %-18s %-6s %6.0f cyc/pkt %6.3f Mpps loss %5.1f%% "
                          "guest %5.0f cyc/pkt (share %.2f)"
                          % (rep, name, sw, r["cyc_per_pkt"], r["mpps"], 100 * r["loss"],
                             r["guest_cyc_per_pkt"], r["guest_share"]), flush=True)
    lines = ["# PVP: vportd vs OVS 3.1, vhost-user to a dpdk-testpmd guest (benches/pvp.py)",
             "", "%s; TSC %.0f MHz; guest --forward-mode=%s; %d rep(s), --interval %g s, "
             "--warmup %g s; median (min-max)"
             % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), hz / 1e6,
                a.guest, a.reps, a.interval, a.warmup), "",
             "| case | switch | cyc/pkt | Mpps (p2) | loss | guest cyc/pkt | guest share "
             "| vportd/OVS |",
             "|---|---|---|---|---|---|---|---|"]
    for name, _ in cases:
        o, v = results[(name, "ovs")], results[(name, "vportd")]
        ratio = (statistics.median(r["cyc_per_pkt"] for r in v)
                 / statistics.median(r["cyc_per_pkt"] for r in o))
        for sw, rs in (("OVS", o), ("vportd", v)):
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                name, sw, cell(rs, "cyc_per_pkt", "%.0f"), cell(rs, "mpps", "%.3f"),
                "%.1f%%" % (100 * statistics.median(r["loss"] for r in rs)),
                "%.0f" % statistics.median(r["guest_cyc_per_pkt"] for r in rs),
                "%.2f" % statistics.median(r["guest_share"] for r in rs),
                "%.2f" % ratio if sw == "vportd" else ""))
    print()
    print("\n".join(lines))
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"args": vars(a), "tsc_hz": hz,
                       "runs": [{"case": c, "switch": s, **r}
                                for (c, s), rs in results.items() for r in rs]}, f, indent=1)


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        sys.exit("pvp: %s" % e)
    except KeyboardInterrupt:
        sys.exit("pvp: interrupted")
