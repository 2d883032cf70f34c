#!/usr/bin/env python3
"""Traffic benchmark: vportd's forwarding path against dpdk-testpmd io
forwarding, on the same DPDK virtual devices, in one invocation.

usage: benches/traffic.py [--reps N] [--interval S] [--warmup S]
                          [--scenarios a,b] [--vportd PATH] [--out FILE]

Scenarios (source -> sink, one forwarding thread on core 1, burst 32):
  null        net_null0 (allocates 64 B mbufs, copies nothing) -> net_null1,no-rx=1
  pcap-1flow  net_pcap0 (1 UDP flow, infinite_rx=1)            -> net_null0,no-rx=1
  pcap-1k     net_pcap0 (1000 UDP flows x 16, infinite_rx=1)   -> net_null0,no-rx=1
Contenders per scenario, run alternately REPS times:
  testpmd     dpdk-testpmd --forward-mode=io (the I/O ceiling)
  vportd-fwd  vportd --fwd  (rule in_port=1 actions=output:2)
  vportd-udp  vportd with in_port=1,udp actions=output:2 (extract + EMC + dpcls)

Measurement (as ../shared/peer does for OVS): the forwarding thread's
on-CPU time from /proc/PID/task/TID/schedstat over the window, times the TSC
rate, divided by the packets forwarded in the window. Cycles/packet is the
steady figure on a shared machine; Mpps is wall-clock.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def tsc_hz():
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
    with open("/proc/%d/task/%d/schedstat" % (pid, tid)) as f:
        return int(f.read().split()[0])


def threads(pid):
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                out[int(tid)] = f.read().strip()
        except OSError:
            pass
    return out


def wait_for_thread(proc, prefix, timeout=30.0):
    """The id of `proc`'s first thread whose name starts with `prefix`,
    waiting for start-up (EAL without hugepages can take seconds)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("process exited during start-up (status %s)" % proc.returncode)
        tid = next((t for t, n in threads(proc.pid).items() if n.startswith(prefix)), None)
        if tid is not None:
            return tid
        time.sleep(0.1)
    raise RuntimeError("no %s* thread after %.0f s" % (prefix, timeout))


def eal_common(prefix):
    return ["-l", "0-1", "--no-huge", "-m", "2048", "--no-pci", "--no-shconf",
            "--no-telemetry", "--file-prefix=%s" % prefix]


def vdevs(scenario, pcaps):
    if scenario == "null":
        return ["net_null0", "net_null1,no-rx=1"]
    return ["net_pcap0,rx_pcap=%s,infinite_rx=1" % pcaps[scenario], "net_null0,no-rx=1"]


def cleanup_prefix(prefix):
    shutil.rmtree("/var/run/dpdk/%s" % prefix, ignore_errors=True)


def run_testpmd(scenario, pcaps, warmup, interval, hz):
    prefix = "tbtp%d" % os.getpid()
    args = ["dpdk-testpmd"] + eal_common(prefix)
    for v in vdevs(scenario, pcaps):
        args += ["--vdev", v]
    args += ["--", "-i", "--auto-start", "--forward-mode=io", "--nb-cores=1",
             "--rxq=1", "--txq=1", "--rxd=2048", "--txd=2048", "--burst=32",
             "--total-num-mbufs=262144", "--port-topology=paired", "--no-flush-rx"]
    p = subprocess.Popen(["stdbuf", "-oL", "-eL"] + args, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(warmup)
        # The forwarding lcore thread (DPDK names it rte-worker-N).
        ths = threads(p.pid)
        fwd = next((t for t, n in ths.items() if "worker" in n), None)
        if fwd is None:
            raise RuntimeError("no forwarding thread in testpmd: %s" % ths)
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
        raise RuntimeError("testpmd printed no stats:\n" + out[-2000:])
    pkts = tx[-1]
    return result(pkts, c1 - c0, t1 - t0, hz)


def run_vportd(scenario, pcaps, warmup, interval, hz, vportd, flows):
    prefix = "tbvp%d" % os.getpid()
    eal = eal_common(prefix)
    for v in vdevs(scenario, pcaps):
        eal.append("--vdev=" + v)
    src = "net_null0" if scenario == "null" else "net_pcap0"
    dst = "net_null1" if scenario == "null" else "net_null0"
    args = [vportd, "--eal", " ".join(eal), "--port", "p1=" + src, "--port", "p2=" + dst,
            "--pmd-cores", "1", "--mbufs", "262143"]
    args += ["--flows", flows] if flows else ["--fwd"]
    env = dict(os.environ, RUST_LOG="warn")
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        tid = wait_for_thread(p, "pmd-c")
        time.sleep(warmup)
        c0 = schedstat_ns(p.pid, tid)
        os.kill(p.pid, signal.SIGUSR1)
        t0 = time.time()
        time.sleep(interval)
        c1 = schedstat_ns(p.pid, tid)
        os.kill(p.pid, signal.SIGUSR1)
        t1 = time.time()
        time.sleep(0.3)
        os.kill(p.pid, signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        cleanup_prefix(prefix)
    snaps = [json.loads(l.split(" ", 1)[1]) for l in out.splitlines() if l.startswith("COUNTERS ")]
    if len(snaps) < 2:
        raise RuntimeError("vportd printed no counters:\n" + err[-2000:])
    a, b = snaps[0], snaps[1]
    pkts = b["ports"][1]["tx_packets"] - a["ports"][1]["tx_packets"]
    r = result(pkts, c1 - c0, t1 - t0, hz)
    pa, pb = a["pmds"][0], b["pmds"][0]
    rx = max(1, pb["rx_packets"] - pa["rx_packets"])
    def pct(name):
        return 100.0 * (pb.get(name, 0) - pa.get(name, 0)) / rx
    r["simple%"] = pct("simple_hits")
    r["emc%"] = pct("emc_hits")
    r["megaflow%"] = pct("megaflow_hits") + pct("smc_hits")
    r["megaflows"] = b["megaflows"]
    return r


def result(pkts, oncpu_ns, wall_s, hz):
    return {
        "packets": pkts,
        "mpps": pkts / wall_s / 1e6,
        "cyc_per_pkt": oncpu_ns * 1e-9 * hz / max(pkts, 1),
        "share": oncpu_ns * 1e-9 / wall_s,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--interval", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--scenarios", default="null,pcap-1flow,pcap-1k")
    ap.add_argument("--vportd", default=os.path.join(ROOT, "target/release/vportd"))
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    a = ap.parse_args()
    hz = tsc_hz()
    work = tempfile.mkdtemp(prefix="vportd-bench-")
    pcaps = {"pcap-1flow": os.path.join(work, "flow1.pcap"),
             "pcap-1k": os.path.join(work, "flows1k.pcap")}
    gen = os.path.join(ROOT, "scripts/gen_traffic.py")
    subprocess.run([sys.executable, gen, pcaps["pcap-1flow"], "--flows", "1", "--rounds", "1024"], check=True)
    subprocess.run([sys.executable, gen, pcaps["pcap-1k"], "--flows", "1000", "--rounds", "16"], check=True)
    udp_flows = os.path.join(work, "p2p_udp.txt")
    with open(udp_flows, "w") as f:
        f.write("in_port=1,udp actions=output:2\n")
    contenders = [
        ("testpmd", lambda sc: run_testpmd(sc, pcaps, a.warmup, a.interval, hz)),
        ("vportd-fwd", lambda sc: run_vportd(sc, pcaps, a.warmup, a.interval, hz, a.vportd, None)),
        ("vportd-udp", lambda sc: run_vportd(sc, pcaps, a.warmup, a.interval, hz, a.vportd, udp_flows)),
    ]

    def applies(sc, name):
        # net_null frames are all zero (no IPv4/UDP): the udp rule drops them.
        return not (sc == "null" and name == "vportd-udp")
    results = {}
    for rep in range(a.reps):
        for sc in a.scenarios.split(","):
            for name, fn in contenders:
                if not applies(sc, name):
                    continue
                r = fn(sc)
                results.setdefault((sc, name), []).append(r)
                print("rep %d %-10s %-10s %6.2f Mpps %6.1f cyc/pkt (share %.2f)"
                      % (rep + 1, sc, name, r["mpps"], r["cyc_per_pkt"], r["share"]), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    print()
    print("TSC %.0f MHz; medians of %d runs; cycles = forwarding thread on-CPU time x TSC / packets" % (hz / 1e6, a.reps))
    print("| scenario | contender | Mpps | cycles/pkt | vs testpmd (cycles) | throughput vs testpmd | simple % | EMC % | megaflow % |")
    print("|---|---|---|---|---|---|---|---|---|")
    summary = []
    for sc in a.scenarios.split(","):
        base = statistics.median(r["cyc_per_pkt"] for r in results[(sc, "testpmd")])
        base_mpps = statistics.median(r["mpps"] for r in results[(sc, "testpmd")])
        for name, _ in contenders:
            if not applies(sc, name):
                continue
            rs = results[(sc, name)]
            cyc = statistics.median(r["cyc_per_pkt"] for r in rs)
            mpps = statistics.median(r["mpps"] for r in rs)
            def med(key):
                if name == "testpmd":
                    return "-"
                return "%.1f" % statistics.median(r.get(key, 0) for r in rs)
            print("| %s | %s | %.2f | %.1f | %.2fx | %.0f%% | %s | %s | %s |" % (
                sc, name, mpps, cyc, cyc / base, 100.0 * (base / cyc),
                med("simple%"), med("emc%"), med("megaflow%")))
            summary.append({"scenario": sc, "contender": name, "mpps": mpps, "cyc_per_pkt": cyc,
                            "cycles_vs_testpmd": cyc / base, "mpps_vs_testpmd": mpps / base_mpps})
    if a.out:
        with open(a.out, "w") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
