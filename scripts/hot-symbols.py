#!/usr/bin/env python3
"""Regenerates provider/terraform/link/hot-symbols.txt: the functions of the release binary that
a Terraform run executes, hottest first, which the linker then places together (see
provider/terraform/build.rs for why).

It runs the release binary under callgrind (symbol names left mangled, as the linker knows them)
through a real `terraform plan`, `apply`, no-op re-plan and `destroy` of COUNT hybrid_workload on
the sim cloud (the bench's configuration), with AutoMTLS as Terraform sets it up, then ranks the binary's functions by the
instructions they executed. Run it after dependency or toolchain updates, or after large code
changes; `make bench` prints how much of the list the current binary still matches.

Usage: python3 scripts/hot-symbols.py --terraform T --binary B [--count 100] [--keep DIR] [--out F]
(`make hot-symbols` builds the binary and passes both).
"""

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "provider", "terraform", "link", "hot-symbols.txt")

# The configuration `make bench` measures, so the profile and the bench run the same code.
sys.path.insert(0, os.path.join(ROOT, "bench"))
from bench import hybrid_config  # noqa: E402


PHASES = [
    ["plan", "-input=false", "-no-color", "-out=profile.tfplan"],
    ["apply", "-input=false", "-no-color", "profile.tfplan"],
    ["plan", "-input=false", "-no-color", "-detailed-exitcode"],
    ["destroy", "-input=false", "-no-color", "-auto-approve"],
]

# callgrind's name-compression: `fn=(12) name` defines id 12, a later `fn=(12)` reuses it.
NAMED = re.compile(r"\((\d+)\)(?: (.*))?$")


def ensure_valgrind():
    if shutil.which("valgrind"):
        return
    print("hot-symbols: installing valgrind (apt)", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "install", "-y", "-q", "valgrind"], check=True)


def self_costs(path, binary_name, totals):
    """Adds each function's own (exclusive) instruction count from one callgrind file."""
    objects, functions = {}, {}
    current_object = current_function = None
    after_calls = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            key, sep, value = line.rstrip("\n").partition("=")
            if sep and key in ("ob", "cob", "fn", "cfn", "fl", "fi", "fe", "cfi", "cfl", "calls"):
                if key == "calls":
                    after_calls = True
                    continue
                named = NAMED.match(value)
                table = objects if key in ("ob", "cob") else functions
                if named:
                    if named.group(2) is not None:
                        table[named.group(1)] = named.group(2)
                    value = table.get(named.group(1))
                if key == "ob":
                    current_object = value
                elif key == "fn":
                    current_function = (current_object, value)
                continue
            if not line[:1].isdigit() and line[:1] not in "+-*":
                continue
            if after_calls:  # the inclusive cost of a call, not this function's own
                after_calls = False
                continue
            fields = line.split()
            if len(fields) >= 2 and current_function:
                obj, name = current_function
                if obj and os.path.basename(obj) == binary_name and name:
                    # `'2` marks a recursion level, the same symbol
                    totals[re.sub(r"'\d+$", "", name)] += int(fields[1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--terraform", required=True)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--keep", help="work directory to keep (default: a temporary one, removed)")
    ap.add_argument("--out", default=OUT,
                    help="the list to write (default: link/hot-symbols.txt; the profile-guided "
                         "build's list, from a binary `scripts/pgo.sh` built, is "
                         "link/hot-symbols-pgo.txt)")
    a = ap.parse_args()
    ensure_valgrind()
    binary = os.path.abspath(a.binary)
    work = a.keep or tempfile.mkdtemp(prefix="hot-symbols-")
    os.makedirs(work, exist_ok=True)
    plugin_dir = os.path.join(work, "plugin")
    os.makedirs(plugin_dir, exist_ok=True)
    wrapper = os.path.join(plugin_dir, "terraform-provider-hybrid")
    with open(wrapper, "w", encoding="utf-8") as f:
        f.write("#!/bin/sh\nexec valgrind --tool=callgrind --demangle=no "
                f"--callgrind-out-file={work}/callgrind-%p.out {binary} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    with open(os.path.join(work, "terraformrc"), "w", encoding="utf-8") as f:
        f.write('provider_installation {\n  dev_overrides {\n'
                f'    "registry.terraform.io/hybrid/hybrid" = "{plugin_dir}"\n'
                '  }\n  direct {}\n}\n')
    with open(os.path.join(work, "main.tf"), "w", encoding="utf-8") as f:
        f.write(hybrid_config(a.count))
    home = os.path.join(work, "home")
    os.makedirs(home, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "TF_CLI_CONFIG_FILE": os.path.join(work, "terraformrc"),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
        "HYBRID_STATE_PATH": os.path.join(work, "hybrid-state.db"),
    }
    for args in PHASES:
        print(f"hot-symbols: terraform {args[0]} ({a.count} workloads, under callgrind)", flush=True)
        done = subprocess.run([a.terraform] + args, cwd=work, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode not in (0, 2) or (done.returncode == 2 and args[0] != "plan"):
            sys.exit(f"hot-symbols: terraform {args[0]} failed ({done.returncode}):\n{done.stderr}")

    totals = collections.Counter()
    profiles = [os.path.join(work, n) for n in sorted(os.listdir(work)) if n.startswith("callgrind-")]
    for p in profiles:
        self_costs(p, os.path.basename(binary), totals)
    ranked = [name for name, cost in totals.most_common()
              if cost > 0 and not name.startswith("0x") and not name.startswith("(")]
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("\n".join(ranked) + "\n")
    print(f"hot-symbols: {len(ranked)} functions from {len(profiles)} provider processes "
          f"({sum(totals.values()):,} instructions) -> {os.path.relpath(a.out, ROOT)}")
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
