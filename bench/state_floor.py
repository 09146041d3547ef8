"""The wall-time floor that Terraform itself sets for a resource's state size.

`make bench` found our wall at 3.6-7.1x terraform-provider-null's, and at about 1.0x against a
null_resource padded to the same bytes of state per resource: under Terraform 1.0.3, the wall
follows how much state each resource carries (Terraform copies, encodes and rewrites the whole
state file after every resource it applies), not which provider serves it.

This script asks the next question: how small would a hybrid_workload's state have to be for the
wall target (<= 1.0x null) to be reachable at all? It applies one real hybrid_workload with
`alternatives_count = 0` (not timed) and measures two sizes from it:

- "no alternatives": the workload's state as applied, with its placement but no alternatives;
- "inputs and ids": the same with the placement removed too, which leaves only what the issue's
  schema requires a workload to carry (its inputs, id, instance_id, private_ip, status).

Then it runs plain null_resource and null_resource padded to each of those sizes (the same
padding as bench.py's size-matched control) through plan, apply, no-op re-plan and destroy, and
prints each padded side's wall as a ratio to plain null's. No provider of ours is timed: the
ratios say what Terraform alone costs for that much state.

Usage: BENCH_MODE=floor bash bench/run.sh   (or `make bench-floor`)
"""
import argparse
import json
import os
import statistics

import bench

PHASES = ("plan", "apply", "replan", "destroy")


def floor_sizes(a):
    """The two state sizes (bytes of indented JSON per instance, as Terraform writes them) and
    their leaf counts, from one real hybrid_workload applied without alternatives."""
    config = bench.hybrid_config(1).replace(
        'memory_gb = 2', 'memory_gb = 2\n  alternatives_count = 0')
    pilot = bench.Side("floor-pilot", os.path.join(a.work, "floor-pilot"), a.terraform, a.shim,
                       a.hybrid, "registry.terraform.io/hybrid/hybrid", "0.1.0",
                       "terraform-provider-hybrid_v0.1.0", config)
    pilot.run("init", ["init", "-input=false", "-no-color"])
    pilot.run("pilot", ["apply", "-input=false", "-no-color", "-auto-approve"])
    with open(os.path.join(pilot.work, "terraform.tfstate")) as f:
        instance = json.load(f)["resources"][0]["instances"][0]
    pilot.run("pilot-destroy", ["destroy", "-input=false", "-no-color", "-auto-approve"])
    if instance["attributes"].get("alternatives"):
        raise SystemExit("bench: the floor pilot applied alternatives despite alternatives_count = 0")
    sizes = [("no alternatives", len(json.dumps(instance, indent=2)),
              bench.count_leaves(instance["attributes"]))]
    instance["attributes"]["placement"] = None
    sizes.append(("inputs and ids", len(json.dumps(instance, indent=2)),
                  bench.count_leaves(instance["attributes"])))
    return sizes


def main():
    ap = argparse.ArgumentParser()
    for flag in ("--terraform", "--hybrid", "--null", "--shim", "--work", "--results"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--parallelism", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=1)
    a, _ = ap.parse_known_args()
    for attr in ("terraform", "hybrid", "null", "shim", "work", "results"):
        setattr(a, attr, os.path.abspath(getattr(a, attr)))

    sizes = floor_sizes(a)
    sides = [bench.Side("null", os.path.join(a.work, "floor-null"), a.terraform, a.shim, a.null,
                        "registry.terraform.io/hashicorp/null", "2.1.2",
                        "terraform-provider-null_v2.1.2_x4", bench.null_config(a.count))]
    labels = {"null": "null_resource"}
    for i, (label, size, leaves) in enumerate(sizes):
        config, padded = bench.null_sized_config(a.count, leaves, size)
        name = f"pad{i}"
        labels[name] = f"null padded to {label} ({padded} B)"
        print(f"bench-floor: a hybrid_workload's state, {label}: {size} bytes ({leaves} values); "
              f"null_resource padded to {padded} bytes", flush=True)
        sides.append(bench.Side(name, os.path.join(a.work, f"floor-{name}"), a.terraform, a.shim,
                                a.null, "registry.terraform.io/hashicorp/null", "2.1.2",
                                "terraform-provider-null_v2.1.2_x4", config))

    par = f"-parallelism={a.parallelism}"
    commands = {
        "plan": ["plan", "-input=false", "-no-color", par, "-out=bench.tfplan"],
        "apply": ["apply", "-input=false", "-no-color", par, "bench.tfplan"],
        "replan": ["plan", "-input=false", "-no-color", par],
        "destroy": ["destroy", "-input=false", "-no-color", par, "-auto-approve"],
    }
    for side in sides:
        side.run("init", ["init", "-input=false", "-no-color"])
    walls = {side.name: {phase: [] for phase in PHASES} for side in sides}
    for rnd in range(a.rounds):
        order = sides if rnd % 2 == 0 else list(reversed(sides))
        for phase in PHASES:
            for side in order:
                walls[side.name][phase].append(side.run(phase, commands[phase])["wall_s"])

    print(f"\nTerraform's wall for {a.count} resources by state size per resource "
          f"(median of {a.rounds} round(s); ratio to plain null_resource)")
    print(f"{'':44}" + "".join(f"{p:>16}" for p in PHASES))
    out = {"count": a.count, "parallelism": a.parallelism, "rounds": a.rounds, "sides": {}}
    for side in sides:
        row = {}
        cells = ""
        for phase in PHASES:
            med = statistics.median(walls[side.name][phase])
            base = statistics.median(walls["null"][phase])
            row[phase] = {"wall_s": walls[side.name][phase], "ratio_to_null": bench.ratio(med, base)}
            cells += f"{med:8.2f}s {bench.ratio(med, base):5.2f}x"
        out["sides"][labels[side.name]] = row
        print(f"{labels[side.name]:44}{cells}")
    print("A ratio above 1.0x here means no provider can meet the wall target for a resource that "
          "carries this much state under this Terraform.")
    with open(a.results, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
