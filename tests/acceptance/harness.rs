//! Drives the real `terraform` binary against the provider binary cargo just built.
//!
//! Every test gets a [`Workspace`]: its own directory, scratch `HOME`, CLI config file (so no
//! terraform or CLI config already on the machine is used), sim-cloud state file, and a
//! `dev_overrides` entry pointing Terraform at our binary. Steps mirror terraform-plugin-testing:
//! apply a config, check state through `terraform show -json`, expect an empty plan, import and
//! verify, expect an error matching a pattern, destroy and check the sim cloud is empty.
//!
//! A missing Terraform binary fails the test with instructions; it never skips silently.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value as Json;

/// The provider's source address as configurations write it.
pub const PROVIDER_SOURCE: &str = "registry.terraform.io/hybrid/hybrid";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root exists")
}

/// `TF_ACC_TERRAFORM_PATH`, else the project-local `.tools/bin/terraform` that
/// `scripts/install-tools.sh` installs.
pub fn terraform_binary() -> PathBuf {
    let path = std::env::var_os("TF_ACC_TERRAFORM_PATH")
        .map(PathBuf::from)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| repo_root().join(".tools/bin/terraform"));
    assert!(
        path.exists(),
        "acceptance tests need the Terraform CLI at {} — run `make tools` (or `bash scripts/install-tools.sh`) first, or set TF_ACC_TERRAFORM_PATH",
        path.display()
    );
    path
}

pub fn provider_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_terraform-provider-hybrid"))
}

/// A scratch Terraform working directory with its own HOME, CLI config and sim state.
pub struct Workspace {
    pub dir: PathBuf,
    /// Where terraform runs: `dir` unless [`Workspace::run_in`] chose a subdirectory.
    pub run_dir: PathBuf,
    pub state_db: PathBuf,
    terraform: PathBuf,
    extra_env: Vec<(String, String)>,
}

/// A passing test's working directory is removed with its workspace, as
/// terraform-plugin-testing does: each holds a HOME, a state database, Terraform's plugin
/// cache and, for the mirror workspaces, the debug provider (over 100 MB), so keeping them
/// filled the disk of a CI machine. A failing test's directory stays for inspection, and
/// `TF_ACC_PERSIST_WORKING_DIR=1` keeps every one.
impl Drop for Workspace {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("TF_ACC_PERSIST_WORKING_DIR").is_some() {
            eprintln!("working directory kept: {}", self.dir.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Workspace {
    /// A workspace whose provider comes from `dev_overrides` (no `terraform init` needed).
    pub fn new(name: &str) -> Workspace {
        let dir = scratch_dir(name);
        let provider_dir = provider_binary()
            .parent()
            .expect("binary has a directory")
            .to_path_buf();
        std::fs::write(
            dir.join("terraformrc"),
            format!(
                "provider_installation {{\n  dev_overrides {{\n    \"{PROVIDER_SOURCE}\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
                provider_dir.display()
            ),
        )
        .expect("write CLI config");
        Workspace::with_dir(dir)
    }

    /// A workspace whose provider is installed by `terraform init` from a filesystem mirror,
    /// the way `make demo` and users run it.
    pub fn with_mirror(name: &str, version: &str) -> Workspace {
        let dir = scratch_dir(name);
        let mirror = dir.join("mirror");
        let platform_dir = mirror
            .join("registry.terraform.io/hybrid/hybrid")
            .join(version)
            .join("linux_amd64");
        std::fs::create_dir_all(&platform_dir).expect("mirror dir");
        // A hard link where the scratch directory shares the build's file system: the debug
        // binary is over 100 MB.
        let installed = platform_dir.join(format!("terraform-provider-hybrid_v{version}"));
        if std::fs::hard_link(provider_binary(), &installed).is_err() {
            std::fs::copy(provider_binary(), &installed).expect("copy provider into mirror");
        }
        Workspace::from_mirror_dir(dir, &mirror)
    }

    /// A workspace whose `terraform init` installs from an existing filesystem mirror (packed
    /// zips or unpacked directories), e.g. the one `make release` writes.
    pub fn with_mirror_at(name: &str, mirror: &Path) -> Workspace {
        Workspace::from_mirror_dir(scratch_dir(name), mirror)
    }

    fn from_mirror_dir(dir: PathBuf, mirror: &Path) -> Workspace {
        std::fs::write(
            dir.join("terraformrc"),
            format!(
                "provider_installation {{\n  filesystem_mirror {{\n    path = \"{}\"\n    include = [\"{PROVIDER_SOURCE}\"]\n  }}\n  direct {{\n    exclude = [\"{PROVIDER_SOURCE}\"]\n  }}\n}}\n",
                mirror.display()
            ),
        )
        .expect("write CLI config");
        Workspace::with_dir(dir)
    }

    fn with_dir(dir: PathBuf) -> Workspace {
        std::fs::create_dir_all(dir.join("home")).expect("home");
        Workspace {
            state_db: dir.join("hybrid-state.db"),
            run_dir: dir.clone(),
            dir,
            terraform: terraform_binary(),
            extra_env: Vec::new(),
        }
    }

    /// Runs terraform in `sub` (relative to `dir`), e.g. an example copied with its modules.
    pub fn run_in(mut self, sub: &str) -> Workspace {
        self.run_dir = self.dir.join(sub);
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Workspace {
        self.extra_env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        self.extra_env.retain(|(k, _)| k != key);
        self.extra_env.push((key.to_string(), value.to_string()));
    }

    pub fn remove_env(&mut self, key: &str) {
        self.extra_env.retain(|(k, _)| k != key);
    }

    /// Writes `main.tf` with the provider requirement block prepended.
    pub fn config(&self, hcl: &str) {
        let body = format!(
            "terraform {{\n  required_providers {{\n    hybrid = {{\n      source = \"hybrid/hybrid\"\n    }}\n  }}\n}}\n\n{hcl}\n"
        );
        std::fs::write(self.run_dir.join("main.tf"), body).expect("write main.tf");
    }

    /// Writes a file verbatim (for examples that carry their own `terraform` block).
    pub fn write(&self, name: &str, content: &str) {
        std::fs::write(self.run_dir.join(name), content).expect("write file");
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.terraform);
        cmd.args(args)
            .current_dir(&self.run_dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.join("home"))
            .env("TF_CLI_CONFIG_FILE", self.dir.join("terraformrc"))
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("HYBRID_STATE_PATH", &self.state_db);
        if let Some(backtrace) = std::env::var_os("RUST_BACKTRACE") {
            // Keep what the machine has: nothing we send may look like a crash even with it on.
            cmd.env("RUST_BACKTRACE", backtrace);
        }
        if let Ok(level) = std::env::var("TF_ACC_LOG") {
            cmd.env("TF_LOG", level);
        }
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs terraform; returns the output whatever the exit code.
    pub fn try_run(&self, args: &[&str]) -> Output {
        // Flags must precede positional arguments (Go's flag parsing stops at the first one).
        let mut full: Vec<&str> = Vec::with_capacity(args.len() + 1);
        match args {
            [group @ ("state" | "providers"), sub, rest @ ..] => {
                full.extend([*group, sub]);
                full.extend(rest);
            }
            [sub, rest @ ..] => {
                full.extend([*sub, "-no-color"]);
                full.extend(rest);
            }
            [] => {}
        }
        self.command(&full).output().expect("run terraform")
    }

    /// Runs terraform and fails the test with its output when it fails.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.try_run(args);
        let text = combined(&out);
        assert!(
            out.status.success(),
            "terraform {} failed ({}):\n{text}",
            args.join(" "),
            out.status
        );
        assert_no_crash(&text);
        text
    }

    pub fn init(&self) -> String {
        self.run(&["init", "-input=false"])
    }

    pub fn apply(&self) -> String {
        self.run(&["apply", "-input=false", "-auto-approve"])
    }

    pub fn plan(&self) -> String {
        self.run(&["plan", "-input=false"])
    }

    /// Asserts that a plan of the current config shows no changes.
    pub fn expect_empty_plan(&self) {
        let out = self.try_run(&["plan", "-input=false", "-detailed-exitcode"]);
        let text = combined(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "expected an empty plan, got exit {:?}:\n{text}",
            out.status.code()
        );
    }

    /// Asserts a plan shows changes (exit 2) and returns its text.
    pub fn expect_changes(&self) -> String {
        let out = self.try_run(&["plan", "-input=false", "-detailed-exitcode"]);
        let text = combined(&out);
        assert_eq!(
            out.status.code(),
            Some(2),
            "expected changes, got exit {:?}:\n{text}",
            out.status.code()
        );
        text
    }

    /// Runs a command that must fail, and checks that its output matches every pattern
    /// (plain substrings, checked after collapsing whitespace so wrapped diagnostics match).
    pub fn expect_error(&self, args: &[&str], patterns: &[&str]) -> String {
        let out = self.try_run(args);
        let text = combined(&out);
        assert!(
            !out.status.success(),
            "terraform {} should have failed:\n{text}",
            args.join(" ")
        );
        assert_no_crash(&text);
        let flat = collapse(&text);
        for p in patterns {
            assert!(
                flat.contains(&collapse(p)),
                "output of terraform {} lacks {p:?}:\n{text}",
                args.join(" ")
            );
        }
        text
    }

    pub fn destroy(&self) -> String {
        self.run(&["destroy", "-input=false", "-auto-approve"])
    }

    pub fn import(&self, address: &str, id: &str) -> String {
        self.run(&["import", "-input=false", address, id])
    }

    pub fn state_rm(&self, address: &str) -> String {
        self.run(&["state", "rm", address])
    }

    /// `terraform show -json` of the current state.
    pub fn show_json(&self) -> Json {
        let out = self.run(&["show", "-json"]);
        let json_line = out
            .lines()
            .find(|l| l.trim_start().starts_with('{'))
            .unwrap_or("{}");
        serde_json::from_str(json_line).expect("terraform show -json prints JSON")
    }

    /// The `instance_id` of every resource in state that has one, sorted.
    pub fn instance_ids(&self) -> Vec<String> {
        let state = self.show_json();
        let mut ids: Vec<String> = state["values"]["root_module"]["resources"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .filter_map(|r| r["values"]["instance_id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// The `values` of a resource in state, by address.
    pub fn resource(&self, address: &str) -> Json {
        let state = self.show_json();
        find_resource(&state["values"]["root_module"], address)
            .unwrap_or_else(|| panic!("{address} not in state:\n{state:#}"))
    }

    /// Plan JSON for the current config (plan -out then show -json).
    pub fn plan_json(&self) -> Json {
        self.run(&["plan", "-input=false", "-out=acc.tfplan"]);
        let out = self.run(&["show", "-json", "acc.tfplan"]);
        let json_line = out
            .lines()
            .find(|l| l.trim_start().starts_with('{'))
            .unwrap_or("{}");
        serde_json::from_str(json_line).expect("plan JSON")
    }

    /// Live instances in this workspace's sim cloud.
    pub fn sim_instances(&self) -> Vec<clouds::Instance> {
        use clouds::Driver;
        let sim = clouds::sim::SimCloud::open(&self.state_db, clouds::faults::FaultPlan::none())
            .expect("open sim state");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(sim.list_managed()).expect("list sim instances")
    }
}

fn find_resource(module: &Json, address: &str) -> Option<Json> {
    if let Some(resources) = module["resources"].as_array() {
        for r in resources {
            if r["address"] == address {
                return Some(r["values"].clone());
            }
        }
    }
    if let Some(children) = module["child_modules"].as_array() {
        for c in children {
            if let Some(found) = find_resource(c, address) {
                return Some(found);
            }
        }
    }
    None
}

fn scratch_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base
        .join("acceptance")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

pub fn combined(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `text` with its whitespace runs made single spaces and the box-drawing bars of Terraform's
/// diagnostics dropped, for matching words that Terraform may have wrapped.
pub fn collapse(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| *w != "│")
        .collect::<Vec<_>>()
        .join(" ")
}

/// Kills a provider process with SIGKILL, as the crash tests do, and removes the socket
/// directory it can no longer remove itself (`hybrid-plugin-<pid>-*` in the temporary
/// directory), so that a run of the crash tests leaves nothing behind. Returns whether the
/// signal was delivered (false: the process had already gone).
pub fn kill_provider(pid: u32) -> bool {
    let delivered = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}")).exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let prefix = format!("hybrid-plugin-{pid}-");
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    delivered
}

/// The provider processes below `terraform_pid` (Terraform re-executes itself under a
/// supervising parent, so the plugin is a grandchild, not a child).
pub fn provider_descendants(terraform_pid: u32) -> Vec<u32> {
    let mut procs: Vec<(u32, u32, String)> = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...; comm may hold spaces, so split after the last ')'.
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head
            .split_once('(')
            .map(|(_, c)| c)
            .unwrap_or("")
            .to_string();
        if let Some(ppid) = tail.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            procs.push((pid, ppid, comm));
        }
    }
    let mut below = BTreeSet::from([terraform_pid]);
    loop {
        let before = below.len();
        for (pid, ppid, _) in &procs {
            if below.contains(ppid) {
                below.insert(*pid);
            }
        }
        if below.len() == before {
            break;
        }
    }
    procs
        .into_iter()
        .filter(|(pid, _, comm)| below.contains(pid) && comm.starts_with("terraform-provi"))
        .map(|(pid, _, _)| pid)
        .collect()
}

/// Terraform prints this when a plugin dies; no test may ever see it.
pub fn assert_no_crash(text: &str) {
    assert!(
        !text.contains("The plugin encountered an error") && !text.contains("plugin crashed"),
        "the provider crashed:\n{text}"
    );
}

/// The cloud driver tests' configuration: `provider_block` (the cloud's block inside
/// `provider "hybrid"`) and `count` `hybrid_workload.web` on `cloud` in `region` with `tags`
/// (HCL map body). `timeouts` only where no import follows (an imported state has no timeouts
/// block, so a configured one would show as a change).
pub fn cloud_workloads_config(
    provider_block: &str,
    cloud: &str,
    region: &str,
    count: usize,
    tags: &str,
    timeouts: bool,
) -> String {
    let timeouts = if timeouts {
        "timeouts {\n    create = \"10m\"\n    delete = \"10m\"\n  }"
    } else {
        ""
    };
    format!(
        r#"
provider "hybrid" {{
  default_tags = {{ owner = "acceptance" }}
{provider_block}
}}

resource "hybrid_workload" "web" {{
  count                  = {count}
  name                   = "web-${{count.index}}"
  cpu                    = 2
  memory_gb              = 4
  preferred_providers    = ["{cloud}"]
  data_residency_regions = ["{region}"]
  tags                   = {{ {tags} }}
  {timeouts}
}}
"#
    )
}
