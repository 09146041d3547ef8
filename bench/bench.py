#!/usr/bin/env python3
"""Benchmark terraform-provider-hybrid against the Go terraform-provider-null under one Terraform.

Called by bench/run.sh, which builds the provider and the shim and installs the null provider.
For each provider: a work directory with its own HOME, CLI config (filesystem mirror only) and a
configuration of BENCH_COUNT resources; the provider in the mirror is bench-provider-shim, which
runs the real binary and logs its rusage per process. `terraform init` runs before timing (after
the shim is in place, so the lock file matches it); then, alternating between the two providers
so that both see the same machine load, the phases plan -out, apply, plan -detailed-exitcode
(must be 0) and destroy -auto-approve. Then the go-plugin handshake time of both binaries, run
directly. Prints a table and writes bench/results/latest.json.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time

COOKIE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
PHASES = ["plan", "apply", "replan", "destroy"]
TARGETS = {"wall": 1.0, "cpu": 0.5, "rss": 0.5, "handshake": 1.0}


def hybrid_config(count):
    return f"""terraform {{
  required_providers {{
    hybrid = {{
      source  = "hybrid/hybrid"
      version = "0.1.0"
    }}
  }}
}}

provider "hybrid" {{}}

resource "hybrid_workload" "bench" {{
  count     = {count}
  name      = "bench-${{count.index}}"
  cpu       = 1
  memory_gb = 2

  compliance             = ["gdpr"]
  data_residency_regions = ["EU"]
}}
"""


def null_config(count):
    return f"""terraform {{
  required_providers {{
    null = {{
      source  = "hashicorp/null"
      version = "2.1.2"
    }}
  }}
}}

resource "null_resource" "bench" {{
  count = {count}

  triggers = {{
    name = "bench-${{count.index}}"
  }}
}}
"""


def count_leaves(v):
    if isinstance(v, dict):
        return sum(count_leaves(x) for x in v.values())
    if isinstance(v, list):
        return sum(count_leaves(x) for x in v)
    return 1


def null_sized_config(count, leaves, size):
    """null_resource whose state instance is as large as ours: `triggers` gets `leaves` string
    values whose lengths make the instance's JSON (indented, as Terraform writes its state file)
    `size` bytes long, so that Terraform has as much state to copy, encode and write per resource.
    Returns the configuration and the instance size it gives."""
    keys = max(1, leaves - 1)

    def instance(width):
        triggers = {"name": "bench-0"}
        for i in range(keys):
            triggers[f"p{i:03d}"] = "x" * width + "0"
        return {"index_key": 0, "schema_version": 0,
                "attributes": {"id": "5996371247849355164", "triggers": triggers},
                "sensitive_attributes": [], "private": "bnVsbA=="}

    width = 1
    while len(json.dumps(instance(width + 1), indent=2)) <= size:
        width += 1
    pads = "\n".join(f'    p{i:03d} = "{"x" * width}${{count.index}}"' for i in range(keys))
    config = null_config(count).replace(
        'name = "bench-${count.index}"', 'name = "bench-${count.index}"\n' + pads)
    return config, len(json.dumps(instance(width), indent=2))


class Side:
    """One provider's work directory, mirror and environment."""

    def __init__(self, name, work, terraform, shim, real_binary, source, version, filename, config):
        self.name = name
        self.work = work
        self.terraform = terraform
        self.real = real_binary
        self.source = source
        self.home = os.path.join(work, "home")
        self.logs = os.path.join(work, "logs")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(self.home)
        os.makedirs(self.logs)
        mirror = os.path.join(work, "mirror")
        pkg = os.path.join(mirror, source, version, "linux_amd64")
        os.makedirs(pkg)
        shutil.copy2(shim, os.path.join(pkg, filename))
        with open(os.path.join(pkg, "bench-shim.target"), "w") as f:
            f.write(real_binary + "\n")
        with open(os.path.join(work, "terraformrc"), "w") as f:
            f.write(
                "provider_installation {\n"
                f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = ["{source}"]\n  }}\n'
                f'  direct {{\n    exclude = ["{source}"]\n  }}\n'
                "}\n"
            )
        with open(os.path.join(work, "main.tf"), "w") as f:
            f.write(config)
        self.results = {}

    def reset_sim(self):
        """Between rounds (state is empty after destroy): a fresh sim cloud database."""
        for suffix in ("", "-wal", "-shm"):
            path = os.path.join(self.work, "hybrid-state.db" + suffix)
            if os.path.exists(path):
                os.remove(path)

    def env(self, phase):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.home,
            "TF_CLI_CONFIG_FILE": os.path.join(self.work, "terraformrc"),
            "TF_IN_AUTOMATION": "1",
            "CHECKPOINT_DISABLE": "1",
            "HYBRID_STATE_PATH": os.path.join(self.work, "hybrid-state.db"),
            "BENCH_RUSAGE_LOG": os.path.join(self.logs, f"rusage-{phase}.jsonl"),
            "BENCH_LABEL": f"{self.name}:{phase}",
        }
        for key in ("RUST_BACKTRACE", "TMPDIR"):
            if os.environ.get(key):
                env[key] = os.environ[key]
        tf_log = os.environ.get("BENCH_TF_LOG")
        if tf_log:
            env["TF_LOG"] = tf_log
            env["TF_LOG_PATH"] = os.path.join(self.logs, f"tf-{phase}.log")
        return env

    def run(self, phase, args, expect=(0,)):
        out_path = os.path.join(self.logs, f"{phase}.out")
        rusage_log = os.path.join(self.logs, f"rusage-{phase}.jsonl")
        if os.path.exists(rusage_log):
            os.remove(rusage_log)
        with open(out_path, "wb") as out:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [self.terraform] + args,
                cwd=self.work,
                env=self.env(phase),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            # wait4: Terraform's rusage, which includes the children it reaped (the shims, and
            # through them the providers).
            _, status, tf_ru = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in expect:
            with open(out_path, "rb") as f:
                tail = f.read()[-4000:].decode("utf-8", "replace")
            sys.exit(
                f"bench: {self.name}: terraform {' '.join(args)} exited {proc.returncode} "
                f"(expected {expect}); output in {out_path}:\n{tail}"
            )
        procs = []
        if os.path.exists(rusage_log):
            with open(rusage_log) as f:
                procs = [json.loads(line) for line in f if line.strip()]
        if not procs and phase != "init":
            sys.exit(f"bench: {self.name}: {phase}: no provider process went through the shim")
        bad = [p for p in procs if p["exit"] != 0]
        result = {
            "wall_s": wall,
            "cpu_s": sum(p["utime"] + p["stime"] for p in procs),
            "user_s": sum(p["utime"] for p in procs),
            "sys_s": sum(p["stime"] for p in procs),
            "peak_rss_mb": max((p["maxrss_kb"] for p in procs), default=0) / 1024.0,
            "provider_processes": len(procs),
            "provider_exit_codes": sorted({p["exit"] for p in procs}),
            "terraform_exit": proc.returncode,
        }
        tf_total = tf_ru.ru_utime + tf_ru.ru_stime
        result["terraform_cpu_s"] = max(0.0, tf_total - result["cpu_s"])
        if bad:
            print(f"bench: warning: {self.name} {phase}: provider exits {result['provider_exit_codes']}",
                  file=sys.stderr)
        return result


def handshake_times(binary, protocol, env_extra, runs):
    """Process start to the first stdout line (the go-plugin handshake), `runs` times."""
    times = []
    line = ""
    for _ in range(runs):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "TF_PLUGIN_MAGIC_COOKIE": COOKIE,
               "PLUGIN_PROTOCOL_VERSIONS": str(protocol)}
        env.update(env_extra)
        t0 = time.perf_counter()
        proc = subprocess.Popen([binary], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=env)
        raw = proc.stdout.readline()
        t1 = time.perf_counter()
        proc.kill()
        proc.wait()
        proc.stdout.close()
        line = raw.decode("utf-8", "replace").strip()
        if not line.startswith("1|"):
            sys.exit(f"bench: {binary} printed no handshake line (got {line!r})")
        times.append(t1 - t0)
    return times, line


def terraform_like_client_cert():
    """A PEM certificate like the one Terraform passes in PLUGIN_CLIENT_CERT (go-plugin AutoMTLS:
    ECDSA P-521, self-signed, marked as a CA, SAN localhost), or None without `cryptography`."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:
        return None
    key = ec.generate_private_key(ec.SECP521R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "HashiCorp"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(seconds=30))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True,
                                         key_cert_sign=True, content_commitment=False,
                                         data_encipherment=False, key_agreement=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH,
                                                  ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA512()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def ratio(a, b):
    return a / b if b else float("inf")


def verdict(r, target):
    return "PASS" if r <= target else "MISS"


def link_order_match(binary, build):
    """How many of the functions in provider/terraform/link/hot-symbols.txt (hot-symbols-pgo.txt
    for the profile-guided build) the binary has: the linker places those first
    (provider/terraform/build.rs, scripts/pgo.sh), so a low share after dependency or toolchain
    updates means `make hot-symbols` is due and RSS figures will be worse."""
    listed_path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               "provider", "terraform", "link",
                               "hot-symbols-pgo.txt" if build == "pgo" else "hot-symbols.txt")
    try:
        with open(listed_path, encoding="utf-8") as f:
            listed = {line.strip() for line in f if line.strip()}
        out = subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        return {"error": str(e)}
    present = {fields[-1] for fields in (line.split() for line in out.splitlines()) if len(fields) == 3}
    return {"listed": len(listed), "present_in_binary": len(listed & present)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--terraform", required=True)
    ap.add_argument("--hybrid", required=True, help="the real terraform-provider-hybrid binary")
    ap.add_argument("--null", required=True, help="the real terraform-provider-null binary")
    ap.add_argument("--shim", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--parallelism", type=int, default=10)
    ap.add_argument("--handshakes", type=int, default=20)
    ap.add_argument("--build", default="plain", choices=["pgo", "plain"],
                    help="how --hybrid was built (recorded in the results)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat plan/apply/replan/destroy; the table shows medians")
    a = ap.parse_args()
    for attr in ("terraform", "hybrid", "null", "shim", "work", "results"):
        setattr(a, attr, os.path.abspath(getattr(a, attr)))

    tf_version = subprocess.run([a.terraform, "version"], capture_output=True, text=True,
                                env={"PATH": os.environ.get("PATH", ""), "CHECKPOINT_DISABLE": "1",
                                     "HOME": a.work}).stdout.splitlines()[0]
    print(f"bench: {tf_version}; {a.count} resources each; parallelism {a.parallelism}; "
          f"provider build: {a.build}", flush=True)
    link_order = link_order_match(a.hybrid, a.build)
    if "listed" in link_order:
        share = link_order["present_in_binary"] / max(link_order["listed"], 1)
        print(f"bench: link order: {link_order['present_in_binary']} of {link_order['listed']} hot "
              f"functions found in the binary ({share:.0%})"
              + ("" if share >= 0.9 else "; run `make hot-symbols` (RSS figures will be worse)"),
              flush=True)
    else:
        print(f"bench: link order not checked: {link_order['error']}", flush=True)

    sides = [
        Side("hybrid", os.path.join(a.work, "hybrid"), a.terraform, a.shim, a.hybrid,
             "registry.terraform.io/hybrid/hybrid", "0.1.0", "terraform-provider-hybrid_v0.1.0",
             hybrid_config(a.count)),
        Side("null", os.path.join(a.work, "null"), a.terraform, a.shim, a.null,
             "registry.terraform.io/hashicorp/null", "2.1.2", "terraform-provider-null_v2.1.2_x4",
             null_config(a.count)),
    ]
    # The size-matched control: Terraform 1.x writes the whole state file after every resource
    # it applies, so its own work grows with the state each resource carries (ours: a placement
    # and ranked alternatives; null: an id). A pilot apply of one of our resources (not timed)
    # measures that size; a third side runs null_resource padded to the same size, so the table
    # can separate Terraform's cost of storing the state from what our provider adds.
    pilot = Side("pilot", os.path.join(a.work, "pilot"), a.terraform, a.shim, a.hybrid,
                 "registry.terraform.io/hybrid/hybrid", "0.1.0", "terraform-provider-hybrid_v0.1.0",
                 hybrid_config(1))
    pilot.run("init", ["init", "-input=false", "-no-color"])
    pilot.run("pilot", ["apply", "-input=false", "-no-color", "-auto-approve"])
    with open(os.path.join(pilot.work, "terraform.tfstate")) as f:
        pilot_instance = json.load(f)["resources"][0]["instances"][0]
    ours_size = len(json.dumps(pilot_instance, indent=2))
    ours_leaves = count_leaves(pilot_instance["attributes"])
    pilot.run("pilot-destroy", ["destroy", "-input=false", "-no-color", "-auto-approve"])
    sized_config, sized_size = null_sized_config(a.count, ours_leaves, ours_size)
    print(f"bench: one hybrid_workload is {ours_size} bytes of state ({ours_leaves} values); "
          f"the size-matched null_resource {sized_size} bytes", flush=True)
    sides.append(Side("nullsz", os.path.join(a.work, "null-sized"), a.terraform, a.shim, a.null,
                      "registry.terraform.io/hashicorp/null", "2.1.2",
                      "terraform-provider-null_v2.1.2_x4", sized_config))

    par = f"-parallelism={a.parallelism}"
    commands = {
        "plan": (["plan", "-input=false", "-no-color", par, "-out=bench.tfplan"], (0,)),
        "apply": (["apply", "-input=false", "-no-color", par, "bench.tfplan"], (0,)),
        "replan": (["plan", "-input=false", "-no-color", par, "-detailed-exitcode"], (0,)),
        "destroy": (["destroy", "-input=false", "-no-color", par, "-auto-approve"], (0,)),
    }
    for side in sides:
        print(f"bench: {side.name}: terraform init (not timed)", flush=True)
        side.run("init", ["init", "-input=false", "-no-color"])
    # Alternate the providers phase by phase (and who goes first, round by round) so that both
    # see the same background load.
    raw = {side.name: {phase: [] for phase in PHASES} for side in sides}
    for rnd in range(a.rounds):
        if a.rounds > 1:
            print(f"bench: round {rnd + 1} of {a.rounds}", flush=True)
        for side in sides:
            side.reset_sim()
        order = sides if rnd % 2 == 0 else list(reversed(sides))
        for phase in PHASES:
            args, expect = commands[phase]
            for side in order:
                r = side.run(phase, args, expect)
                raw[side.name][phase].append(r)
                print(f"bench: {side.name:6} {phase:7} wall {r['wall_s']:7.2f} s  provider cpu "
                      f"{r['cpu_s']:6.2f} s  peak rss {r['peak_rss_mb']:6.1f} MB  "
                      f"({r['provider_processes']} provider processes; terraform's own cpu "
                      f"{r['terraform_cpu_s']:.2f} s)", flush=True)
    for side in sides:
        for phase in PHASES:
            runs = raw[side.name][phase]
            merged = {k: statistics.median(r[k] for r in runs)
                      for k in ("wall_s", "cpu_s", "user_s", "sys_s", "peak_rss_mb",
                                "terraform_cpu_s")}
            merged["provider_processes"] = runs[-1]["provider_processes"]
            merged["rounds"] = runs
            side.results[phase] = merged

    # TMPDIR: go-plugin servers killed mid-handshake leave their unix sockets behind.
    hs_tmp = os.path.join(a.work, "handshake-tmp")
    shutil.rmtree(hs_tmp, ignore_errors=True)
    os.makedirs(hs_tmp)
    hs_env = {"HOME": sides[0].home, "TMPDIR": hs_tmp,
              "HYBRID_STATE_PATH": os.path.join(a.work, "handshake-state.db")}
    hs_ours, line_ours = handshake_times(a.hybrid, 6, hs_env, a.handshakes)
    hs_null, line_null = handshake_times(a.null, 5, {"HOME": sides[1].home, "TMPDIR": hs_tmp},
                                         a.handshakes)

    # As Terraform starts them: AutoMTLS on (PLUGIN_CLIENT_CERT set), so the server makes its
    # own key and certificate before it prints the line.
    hs_tls = None
    client_pem = terraform_like_client_cert()
    if client_pem:
        t_ours, tl_ours = handshake_times(a.hybrid, 6, dict(hs_env, PLUGIN_CLIENT_CERT=client_pem),
                                          a.handshakes)
        t_null, tl_null = handshake_times(a.null, 5, {"HOME": sides[1].home, "TMPDIR": hs_tmp,
                                                      "PLUGIN_CLIENT_CERT": client_pem},
                                          a.handshakes)
        hs_tls = {"ours_median_ms": statistics.median(t_ours) * 1000,
                  "null_median_ms": statistics.median(t_null) * 1000,
                  "ours_all_ms": [t * 1000 for t in t_ours],
                  "null_all_ms": [t * 1000 for t in t_null],
                  "ours_sends_cert": len(tl_ours.split("|")) > 5 and len(tl_ours.split("|")[5]) > 50,
                  "null_sends_cert": len(tl_null.split("|")) > 5 and len(tl_null.split("|")[5]) > 50}
        hs_tls["ratio"] = ratio(hs_tls["ours_median_ms"], hs_tls["null_median_ms"])

    ours, null, sized = sides
    rows = []
    all_pass = True
    for phase in PHASES:
        o, n = ours.results[phase], null.results[phase]
        row = {"phase": phase, "ours": o, "null": n,
               "wall_ratio": ratio(o["wall_s"], n["wall_s"]),
               "cpu_ratio": ratio(o["cpu_s"], n["cpu_s"]),
               "rss_ratio": ratio(o["peak_rss_mb"], n["peak_rss_mb"])}
        z = sized.results[phase]
        row["null_size_matched"] = z
        row["wall_ratio_vs_size_matched"] = ratio(o["wall_s"], z["wall_s"])
        row["cpu_ratio_vs_size_matched"] = ratio(o["cpu_s"], z["cpu_s"])
        row["wall_verdict"] = verdict(row["wall_ratio"], TARGETS["wall"])
        row["cpu_verdict"] = verdict(row["cpu_ratio"], TARGETS["cpu"])
        row["rss_verdict"] = verdict(row["rss_ratio"], TARGETS["rss"])
        all_pass &= all(row[k] == "PASS" for k in ("wall_verdict", "cpu_verdict", "rss_verdict"))
        rows.append(row)
    hs = {"runs": a.handshakes,
          "ours_median_ms": statistics.median(hs_ours) * 1000,
          "null_median_ms": statistics.median(hs_null) * 1000,
          "ours_all_ms": [t * 1000 for t in hs_ours],
          "null_all_ms": [t * 1000 for t in hs_null],
          "ours_line_prefix": "|".join(line_ours.split("|")[:5]),
          "null_line_prefix": "|".join(line_null.split("|")[:5])}
    hs["ratio"] = ratio(hs["ours_median_ms"], hs["null_median_ms"])
    hs["verdict"] = verdict(hs["ratio"], TARGETS["handshake"])
    all_pass &= hs["verdict"] == "PASS"

    head = ["phase", "ours wall s", "null wall s", "wall ratio", "ours CPU s", "null CPU s",
            "CPU ratio", "ours RSS MB", "null RSS MB", "RSS ratio"]
    table = [head]
    for row in rows:
        o, n = row["ours"], row["null"]
        table.append([
            row["phase"],
            f"{o['wall_s']:.2f}", f"{n['wall_s']:.2f}", f"{row['wall_ratio']:.2f}x {row['wall_verdict']}",
            f"{o['cpu_s']:.2f}", f"{n['cpu_s']:.2f}", f"{row['cpu_ratio']:.2f}x {row['cpu_verdict']}",
            f"{o['peak_rss_mb']:.1f}", f"{n['peak_rss_mb']:.1f}", f"{row['rss_ratio']:.2f}x {row['rss_verdict']}",
        ])
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    print()
    print(f"{a.count} hybrid_workload (ours, sim driver) vs {a.count} null_resource "
          f"(terraform-provider-null 2.1.2), {tf_version}, parallelism {a.parallelism}"
          + (f", median of {a.rounds} rounds" if a.rounds > 1 else ""))
    print("targets: wall ratio <= 1.0x, provider CPU ratio <= 0.5x, provider peak RSS ratio <= 0.5x")
    for i, r in enumerate(table):
        print("  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print()
    print(f"handshake (process start to go-plugin line, median of {a.handshakes}): ours "
          f"{hs['ours_median_ms']:.1f} ms, null {hs['null_median_ms']:.1f} ms, ratio "
          f"{hs['ratio']:.2f}x {hs['verdict']} (target <= 1.0x)")
    print(f"  ours: {hs['ours_line_prefix']}|...   null: {hs['null_line_prefix']}|...")
    if hs_tls:
        print(f"handshake as Terraform starts them (AutoMTLS, PLUGIN_CLIENT_CERT set; informational): "
              f"ours {hs_tls['ours_median_ms']:.1f} ms, null {hs_tls['null_median_ms']:.1f} ms, ratio "
              f"{hs_tls['ratio']:.2f}x (server certificate in the line: ours "
              f"{'yes' if hs_tls['ours_sends_cert'] else 'no'}, null "
              f"{'yes' if hs_tls['null_sends_cert'] else 'no'})")
    print("terraform's own CPU s (its rusage minus the providers'), ours/null/size-matched null: "
          + ", ".join(f"{p} {ours.results[p]['terraform_cpu_s']:.2f}/"
                      f"{null.results[p]['terraform_cpu_s']:.2f}/{sized.results[p]['terraform_cpu_s']:.2f}"
                      for p in PHASES))
    print(f"against null_resource carrying the same state per resource ({sized_size} bytes; "
          "informational, not a target): " + ", ".join(
              f"{r['phase']} wall {r['ours']['wall_s']:.2f}/{r['null_size_matched']['wall_s']:.2f} s "
              f"= {r['wall_ratio_vs_size_matched']:.2f}x" for r in rows))
    print("  provider CPU against it (null's own CPU grows with the state it is sent): " + ", ".join(
        f"{r['phase']} {r['ours']['cpu_s']:.2f}/{r['null_size_matched']['cpu_s']:.2f} s "
        f"= {r['cpu_ratio_vs_size_matched']:.2f}x" for r in rows))
    procs = ", ".join(f"{p} {ours.results[p]['provider_processes']}/{null.results[p]['provider_processes']}"
                      for p in PHASES)
    print(f"provider processes per phase (ours/null): {procs}")
    print(f"overall: {'ALL TARGETS MET' if all_pass else 'SOME TARGETS MISSED'}")

    doc = {
        "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(),
                 "kernel": platform.release()},
        "terraform": tf_version,
        "count": a.count,
        "parallelism": a.parallelism,
        "rounds": a.rounds,
        "ours": {"provider": "registry.terraform.io/hybrid/hybrid 0.1.0 (sim driver)",
                 "binary": a.hybrid, "build": a.build, "resource": "hybrid_workload"},
        "peer": {"provider": "registry.terraform.io/hashicorp/null 2.1.2 (Go, protocol 5)",
                 "binary": a.null, "resource": "null_resource"},
        "peer_size_matched": {"resource": "null_resource with padded triggers",
                              "ours_state_bytes_per_instance": ours_size,
                              "ours_values_per_instance": ours_leaves,
                              "null_state_bytes_per_instance": sized_size},
        "link_order": link_order,
        "targets": TARGETS,
        "phases": rows,
        "handshake": hs,
        "handshake_automtls": hs_tls,
        "all_targets_met": all_pass,
        "method": "wall: the terraform command; CPU: user+sys summed over every provider process "
                  "Terraform started in the phase; RSS: max ru_maxrss over those processes "
                  "(both from wait4 in bench-provider-shim); terraform_cpu_s: Terraform's own CPU (its wait4 "
                  "rusage, which includes reaped children, minus the providers'); handshake: start of the binary "
                  "to its first stdout line, run directly with the go-plugin env vars",
    }
    os.makedirs(os.path.dirname(a.results), exist_ok=True)
    with open(a.results, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(f"results: {a.results}")


if __name__ == "__main__":
    main()
