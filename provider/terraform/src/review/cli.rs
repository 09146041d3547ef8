//! The `review` subcommand's command line: arguments, reading the plan file, exit codes.
//!
//! Exit codes: 0 the plan passes every requested policy, 1 a policy is violated (the output
//! lists which), 2 the command line or the input file is wrong (the message says what).

use std::io::{Read as _, Write as _};
use std::path::PathBuf;

use super::{render_json, render_markdown, review, Format, Policy};

pub const USAGE: &str = "usage: terraform-provider-hybrid review [--format markdown|json] [--max-monthly-increase USD] [--fail-on-compliance-change] [--require-migration-plan] PLAN.json

Summarises the hybrid_workload and hybrid_migration_plan changes of a plan for a reviewer, and
checks policies for CI. PLAN.json is the output of `terraform show -json plan.tfplan` (`-` reads
standard input).

  --format markdown|json        output format (default markdown)
  --max-monthly-increase USD    fail when the plan raises the monthly cost by more than USD
  --fail-on-compliance-change   fail when a workload's compliance or data residency changes
  --require-migration-plan      fail when a workload moves to another provider or region
                                without a hybrid_migration_plan that refers to it

Exit codes: 0 ok, 1 policy violated, 2 usage or input error.";

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Args {
    pub format: Format,
    pub policy: Policy,
    /// `None` means standard input.
    pub plan: Option<PathBuf>,
}

/// Parsed arguments, a request for help, or a usage error.
#[derive(Clone, Debug, PartialEq)]
pub enum Parsed {
    Run(Args),
    Help,
}

pub fn parse_args(args: &[String]) -> Result<Parsed, String> {
    let mut format = Format::Markdown;
    let mut policy = Policy::default();
    let mut plan: Option<Option<PathBuf>> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag {
            "-h" | "--help" | "help" => return Ok(Parsed::Help),
            "--format" => {
                format = match value("--format")?.to_ascii_lowercase().as_str() {
                    "markdown" | "md" => Format::Markdown,
                    "json" => Format::Json,
                    other => {
                        return Err(format!("--format must be markdown or json, got {other:?}"))
                    }
                }
            }
            "--max-monthly-increase" => {
                let text = value("--max-monthly-increase")?;
                let usd: f64 = text.trim().trim_start_matches('$').parse().map_err(|_| {
                    format!("--max-monthly-increase must be a number of USD, got {text:?}")
                })?;
                if !usd.is_finite() || usd < 0.0 {
                    return Err(format!(
                        "--max-monthly-increase must be a number >= 0, got {text:?}"
                    ));
                }
                policy.max_monthly_increase = Some(usd);
            }
            "--fail-on-compliance-change" => policy.fail_on_compliance_change = true,
            "--require-migration-plan" => policy.require_migration_plan = true,
            "-" => plan = set_plan(plan, None)?,
            f if f.starts_with('-') => return Err(format!("unknown option {f}")),
            path => plan = set_plan(plan, Some(PathBuf::from(path)))?,
        }
    }
    let plan = plan
        .ok_or("missing the plan JSON file (the output of `terraform show -json plan.tfplan`)")?;
    Ok(Parsed::Run(Args {
        format,
        policy,
        plan,
    }))
}

fn set_plan(
    current: Option<Option<PathBuf>>,
    new: Option<PathBuf>,
) -> Result<Option<Option<PathBuf>>, String> {
    match current {
        Some(_) => Err("more than one plan file given".to_string()),
        None => Ok(Some(new)),
    }
}

/// The whole command on already-read input: `(exit code, stdout, stderr)`.
pub fn run_on(args: &Args, input: &[u8], source: &str) -> (u8, String, String) {
    let plan: serde_json::Value = match serde_json::from_slice(input) {
        Ok(v) => v,
        Err(e) => {
            let hint = if input.is_empty() {
                "the file is empty".to_string()
            } else {
                format!("not valid JSON ({e})")
            };
            return (2, String::new(), format!("review: {source}: {hint}; expected the output of `terraform show -json plan.tfplan`\n"));
        }
    };
    match review(&plan, &args.policy) {
        Ok(r) => {
            let out = match args.format {
                Format::Markdown => render_markdown(&r),
                Format::Json => render_json(&r),
            };
            let err = if r.violations.is_empty() {
                String::new()
            } else {
                format!(
                    "review: policy violated:\n{}\n",
                    r.violations
                        .iter()
                        .map(|v| format!("  - {v}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            };
            (r.exit_code(), out, err)
        }
        Err(e) => (2, String::new(), format!("review: {source}: {e}\n")),
    }
}

/// Entry point of `terraform-provider-hybrid review ARGS...`; returns the exit code.
pub fn main(args: &[String]) -> u8 {
    let parsed = match parse_args(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("review: {e}\n\n{USAGE}");
            return 2;
        }
    };
    let args = match parsed {
        Parsed::Help => {
            let _ = writeln!(std::io::stdout().lock(), "{USAGE}");
            return 0;
        }
        Parsed::Run(a) => a,
    };
    let (input, source) = match &args.plan {
        Some(path) => match std::fs::read(path) {
            Ok(bytes) => (bytes, path.display().to_string()),
            Err(e) => {
                eprintln!("review: cannot read {}: {e}", path.display());
                return 2;
            }
        },
        None => {
            let mut bytes = Vec::new();
            if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
                eprintln!("review: cannot read standard input: {e}");
                return 2;
            }
            (bytes, "standard input".to_string())
        }
    };
    let (code, out, err) = run_on(&args, &input, &source);
    // Write errors (a closed pipe: `review plan.json | head`) are not the plan's fault and
    // must not change the gate's answer, so they are ignored.
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    let _ = std::io::stderr().lock().write_all(err.as_bytes());
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Parsed, String> {
        parse_args(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_parse() {
        let Ok(Parsed::Run(a)) = args(&[
            "--format",
            "json",
            "--max-monthly-increase=50",
            "--fail-on-compliance-change",
            "plan.json",
        ]) else {
            unreachable!("valid arguments")
        };
        assert_eq!(a.format, Format::Json);
        assert_eq!(a.policy.max_monthly_increase, Some(50.0));
        assert!(a.policy.fail_on_compliance_change);
        assert!(!a.policy.require_migration_plan);
        assert_eq!(a.plan, Some(PathBuf::from("plan.json")));
        assert_eq!(args(&["--help"]), Ok(Parsed::Help));
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        for (list, needle) in [
            (&["--format", "yaml", "p.json"][..], "markdown or json"),
            (
                &["--max-monthly-increase", "lots", "p.json"][..],
                "number of USD",
            ),
            (&["--max-monthly-increase"][..], "needs a value"),
            (&["--frobnicate", "p.json"][..], "unknown option"),
            (&[][..], "missing the plan"),
            (&["a.json", "b.json"][..], "more than one"),
        ] {
            let err = args(list).expect_err("usage error");
            assert!(err.contains(needle), "{list:?}: {err}");
        }
    }

    #[test]
    fn bad_input_exits_2() {
        let a = Args {
            format: Format::Markdown,
            policy: Policy::default(),
            plan: None,
        };
        let (code, _, err) = run_on(&a, b"not json", "plan.json");
        assert_eq!(code, 2);
        assert!(err.contains("not valid JSON"), "{err}");
        let (code, _, err) = run_on(&a, b"", "plan.json");
        assert_eq!(code, 2);
        assert!(err.contains("empty"), "{err}");
    }
}
