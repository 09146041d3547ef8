//! Migration planning: the ordered steps a blue-green, canary or rolling move will run, the
//! checks on what the user asked for, and the estimates a reviewer reads in the plan (downtime,
//! data to move, how long that takes, egress cost).
//!
//! Pure like the rest of this crate: the Terraform layer decodes HCL into [`RawMigration`],
//! [`MigrationSpec::validate`] turns it into a spec or a list of [`FieldError`]s naming the
//! attribute path, and [`MigrationSpec::steps`] is the one place the step list is decided, so
//! plan shows exactly what apply runs.

use crate::FieldError;

/// Seconds a new side needs to start serving; the cost of a rolling move that takes every
/// replica down at once.
pub const STARTUP_SECONDS: u64 = 60;
/// Default wait before the old side is removed once the new side carries all traffic.
pub const DEFAULT_SCALE_DOWN_DELAY_SECONDS: u64 = 30;

/// A count or a share of the replicas, as `max_surge` and `max_unavailable` are written.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Amount {
    Count(u32),
    Percent(u32),
}

impl Amount {
    /// `"2"` or `"25%"`.
    pub fn parse(text: &str) -> Option<Amount> {
        let text = text.trim();
        if let Some(p) = text.strip_suffix('%') {
            let p: u32 = p.trim().parse().ok()?;
            return (p <= 100).then_some(Amount::Percent(p));
        }
        text.parse().ok().map(Amount::Count)
    }

    /// Replicas this amount stands for; percentages round up for surge and down for
    /// unavailable, as Kubernetes rounds them.
    pub fn of(self, replicas: u32, round_up: bool) -> u32 {
        match self {
            Amount::Count(n) => n.min(replicas),
            Amount::Percent(p) => {
                let exact = u64::from(replicas) * u64::from(p);
                let n = if round_up {
                    exact.div_ceil(100)
                } else {
                    exact / 100
                };
                u32::try_from(n).unwrap_or(replicas).min(replicas)
            }
        }
    }
}

/// One canary step as configured.
#[derive(Clone, Debug, PartialEq)]
pub struct RawCanaryStep {
    pub traffic_percentage: Option<f64>,
    pub duration_minutes: Option<f64>,
}

/// What the Terraform layer decodes from the configuration, unchecked.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct RawMigration {
    pub strategy: Option<String>,
    pub blue_green: Option<RawBlueGreen>,
    pub canary: Option<RawCanary>,
    pub rolling: Option<RawRolling>,
    pub health_check: Option<RawHealthCheck>,
    /// Whole replicas of the workload (from its stored requirements).
    pub replicas: u32,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct RawBlueGreen {
    pub validation_checks: Vec<String>,
    pub auto_promote: Option<bool>,
    pub promote_after_seconds: Option<f64>,
    pub scale_down_delay_seconds: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct RawCanary {
    pub steps: Vec<RawCanaryStep>,
    pub failure_threshold: Option<f64>,
    pub check_interval_seconds: Option<f64>,
    pub scale_down_delay_seconds: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct RawRolling {
    pub max_unavailable: Option<String>,
    pub max_surge: Option<String>,
    pub progress_deadline_seconds: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct RawHealthCheck {
    pub kind: Option<String>,
    pub path: Option<String>,
    pub port: Option<f64>,
    pub command: Option<String>,
    pub interval_seconds: Option<f64>,
    pub failure_threshold: Option<f64>,
    pub recovery_threshold: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Probe {
    Http { path: String, port: u16 },
    Tcp { port: u16 },
    Command { command: String },
}

impl Probe {
    /// How the probe reads in a step description and a failure message.
    pub fn describe(&self) -> String {
        match self {
            Probe::Http { path, port } => format!("HTTP GET :{port}{path}"),
            Probe::Tcp { port } => format!("TCP connect :{port}"),
            Probe::Command { command } => format!("command {command:?}"),
        }
    }
}

/// How each gate judges the new side.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthCheck {
    pub probe: Probe,
    pub interval_seconds: u64,
    /// Consecutive failed probes that fail the gate.
    pub failure_threshold: u32,
    /// Consecutive passing probes that count the new side as healthy.
    pub recovery_threshold: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            probe: Probe::Tcp { port: 80 },
            interval_seconds: 10,
            failure_threshold: 3,
            recovery_threshold: 2,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct CanaryStep {
    pub traffic_percentage: u32,
    pub duration_seconds: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Method {
    BlueGreen {
        validation_checks: Vec<String>,
        auto_promote: bool,
        promote_after_seconds: u64,
        scale_down_delay_seconds: u64,
    },
    Canary {
        steps: Vec<CanaryStep>,
        failure_threshold: u32,
        check_interval_seconds: u64,
        scale_down_delay_seconds: u64,
    },
    Rolling {
        max_unavailable: u32,
        max_surge: u32,
        progress_deadline_seconds: u64,
    },
}

/// A validated migration: the only input the step planner trusts.
#[derive(Clone, Debug, PartialEq)]
pub struct MigrationSpec {
    pub method: Method,
    pub health_check: HealthCheck,
    pub replicas: u32,
}

/// What a step does; apply dispatches on this.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start the new side (no traffic yet) and wait until it passes its checks.
    CreateTarget,
    /// Send `traffic_percentage` of requests to the new side, then watch it for `wait_seconds`.
    ShiftTraffic,
    /// Blue-green: wait for promotion (auto after `wait_seconds`, or a later apply).
    AwaitPromotion,
    /// Wait `wait_seconds`, then remove the old side.
    RemoveSource,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::CreateTarget => "create_target",
            Action::ShiftTraffic => "shift_traffic",
            Action::AwaitPromotion => "await_promotion",
            Action::RemoveSource => "remove_source",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        [
            Action::CreateTarget,
            Action::ShiftTraffic,
            Action::AwaitPromotion,
            Action::RemoveSource,
        ]
        .into_iter()
        .find(|a| a.as_str() == text)
    }
}

/// One step of the plan, in the order apply runs them.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub action: Action,
    /// Share of traffic on the new side once the step is done.
    pub traffic_percentage: u32,
    /// How long the step waits (observing the new side when `health_gate`).
    pub wait_seconds: u64,
    /// Whether the new side's checks must pass for the migration to go on.
    pub health_gate: bool,
    pub description: String,
}

fn whole(
    value: Option<f64>,
    field: &str,
    min: f64,
    max: f64,
    default: u64,
    errors: &mut Vec<FieldError>,
) -> u64 {
    match value {
        None => default,
        Some(v) if v.is_finite() && v.fract() == 0.0 && (min..=max).contains(&v) => v as u64,
        Some(v) => {
            errors.push(FieldError::new(
                field,
                format!("must be a whole number from {min} to {max}, got {v}"),
            ));
            default
        }
    }
}

impl MigrationSpec {
    /// Checks everything and reports every problem with its attribute path.
    pub fn validate(raw: &RawMigration) -> Result<MigrationSpec, Vec<FieldError>> {
        let mut errors = Vec::new();
        let replicas = raw.replicas.max(1);
        let strategy = raw.strategy.as_deref().unwrap_or("");
        let blocks = [
            ("blue_green", raw.blue_green.is_some()),
            ("canary", raw.canary.is_some()),
            ("rolling", raw.rolling.is_some()),
        ];
        if !blocks.iter().any(|(name, _)| *name == strategy) {
            errors.push(FieldError::new(
                "strategy",
                format!("must be blue_green, canary or rolling, got {strategy:?}"),
            ));
        }
        for (name, present) in blocks {
            if present && name != strategy {
                errors.push(FieldError::new(
                    name,
                    format!("a {name} block does not apply to strategy {strategy:?}; remove it or set strategy = \"{name}\""),
                ));
            }
        }
        let health_check = validate_health(raw.health_check.as_ref(), &mut errors);
        let method = match strategy {
            "blue_green" => {
                let b = raw.blue_green.clone().unwrap_or_default();
                for (i, check) in b.validation_checks.iter().enumerate() {
                    if check.trim().is_empty() {
                        errors.push(FieldError::new(
                            format!("blue_green.validation_checks[{i}]"),
                            "must not be empty",
                        ));
                    }
                }
                Some(Method::BlueGreen {
                    validation_checks: b.validation_checks,
                    auto_promote: b.auto_promote.unwrap_or(true),
                    promote_after_seconds: whole(
                        b.promote_after_seconds,
                        "blue_green.promote_after_seconds",
                        0.0,
                        86_400.0,
                        0,
                        &mut errors,
                    ),
                    scale_down_delay_seconds: whole(
                        b.scale_down_delay_seconds,
                        "blue_green.scale_down_delay_seconds",
                        0.0,
                        86_400.0,
                        DEFAULT_SCALE_DOWN_DELAY_SECONDS,
                        &mut errors,
                    ),
                })
            }
            "canary" => {
                let c = raw.canary.clone().unwrap_or_default();
                let steps = validate_canary_steps(&c.steps, &mut errors);
                Some(Method::Canary {
                    steps,
                    failure_threshold: whole(
                        c.failure_threshold,
                        "canary.failure_threshold",
                        1.0,
                        100.0,
                        u64::from(health_check.failure_threshold),
                        &mut errors,
                    ) as u32,
                    check_interval_seconds: whole(
                        c.check_interval_seconds,
                        "canary.check_interval_seconds",
                        1.0,
                        3600.0,
                        health_check.interval_seconds,
                        &mut errors,
                    ),
                    scale_down_delay_seconds: whole(
                        c.scale_down_delay_seconds,
                        "canary.scale_down_delay_seconds",
                        0.0,
                        86_400.0,
                        DEFAULT_SCALE_DOWN_DELAY_SECONDS,
                        &mut errors,
                    ),
                })
            }
            "rolling" => {
                let r = raw.rolling.clone().unwrap_or_default();
                let mut amount = |text: &Option<String>, field: &str, default: Amount| {
                    match text {
                    None => default,
                    Some(t) => Amount::parse(t).unwrap_or_else(|| {
                        errors.push(FieldError::new(
                            format!("rolling.{field}"),
                            format!("must be a count (\"1\") or a percentage from 0% to 100% (\"25%\"), got {t:?}"),
                        ));
                        default
                    }),
                }
                };
                let unavailable =
                    amount(&r.max_unavailable, "max_unavailable", Amount::Percent(25));
                let surge = amount(&r.max_surge, "max_surge", Amount::Percent(25));
                let max_unavailable = unavailable.of(replicas, false);
                let max_surge = surge.of(replicas, true);
                if max_unavailable == 0 && max_surge == 0 {
                    errors.push(FieldError::new(
                        "rolling.max_surge",
                        format!("max_surge and max_unavailable are both 0 for {replicas} replica(s), so no replica could ever move; allow at least one"),
                    ));
                }
                Some(Method::Rolling {
                    max_unavailable,
                    max_surge,
                    progress_deadline_seconds: whole(
                        r.progress_deadline_seconds,
                        "rolling.progress_deadline_seconds",
                        1.0,
                        86_400.0,
                        600,
                        &mut errors,
                    ),
                })
            }
            _ => None,
        };
        match method {
            Some(method) if errors.is_empty() => Ok(MigrationSpec {
                method,
                health_check,
                replicas,
            }),
            _ => Err(errors),
        }
    }

    pub fn strategy_name(&self) -> &'static str {
        match self.method {
            Method::BlueGreen { .. } => "blue_green",
            Method::Canary { .. } => "canary",
            Method::Rolling { .. } => "rolling",
        }
    }

    /// The ordered steps apply runs. Every strategy starts the new side first and removes the
    /// old one last, after the new side carries all traffic: the old side is never removed
    /// before the new one passed its checks.
    pub fn steps(&self) -> Vec<Step> {
        let probe = self.health_check.probe.describe();
        let mut steps = vec![Step {
            action: Action::CreateTarget,
            traffic_percentage: 0,
            wait_seconds: 0,
            health_gate: true,
            description: format!(
                "start the new side with no traffic; ready after {} passing {probe} probes",
                self.health_check.recovery_threshold
            ),
        }];
        let scale_down = match &self.method {
            Method::BlueGreen {
                validation_checks,
                auto_promote,
                promote_after_seconds,
                scale_down_delay_seconds,
            } => {
                let checks = if validation_checks.is_empty() {
                    probe.clone()
                } else {
                    format!("{probe} and {}", validation_checks.join(", "))
                };
                steps.push(Step {
                    action: Action::AwaitPromotion,
                    traffic_percentage: 0,
                    wait_seconds: *promote_after_seconds,
                    health_gate: true,
                    description: if *auto_promote {
                        format!("preview: validate the new side ({checks}), promote after {promote_after_seconds} s")
                    } else {
                        format!("preview: validate the new side ({checks}), then wait for a later apply with auto_promote = true")
                    },
                });
                steps.push(Step {
                    action: Action::ShiftTraffic,
                    traffic_percentage: 100,
                    wait_seconds: 0,
                    health_gate: true,
                    description: "promote: switch all traffic to the new side".into(),
                });
                *scale_down_delay_seconds
            }
            Method::Canary {
                steps: canary,
                failure_threshold,
                check_interval_seconds,
                scale_down_delay_seconds,
            } => {
                for s in canary {
                    steps.push(Step {
                        action: Action::ShiftTraffic,
                        traffic_percentage: s.traffic_percentage,
                        wait_seconds: s.duration_seconds,
                        health_gate: true,
                        description: format!(
                            "send {}% of traffic to the new side for {} s, {probe} every {check_interval_seconds} s, abort after {failure_threshold} failed checks",
                            s.traffic_percentage, s.duration_seconds
                        ),
                    });
                }
                *scale_down_delay_seconds
            }
            Method::Rolling {
                max_unavailable,
                max_surge,
                progress_deadline_seconds,
            } => {
                let batch = (max_unavailable + max_surge).max(1);
                let mut moved = 0u32;
                while moved < self.replicas {
                    moved = (moved + batch).min(self.replicas);
                    let pct = u32::try_from(u64::from(moved) * 100 / u64::from(self.replicas))
                        .unwrap_or(100);
                    steps.push(Step {
                        action: Action::ShiftTraffic,
                        traffic_percentage: pct,
                        wait_seconds: 0,
                        health_gate: true,
                        description: format!(
                            "move replicas to the new side ({moved} of {}; surge {max_surge}, unavailable {max_unavailable}), within {progress_deadline_seconds} s",
                            self.replicas
                        ),
                    });
                }
                0
            }
        };
        steps.push(Step {
            action: Action::RemoveSource,
            traffic_percentage: 100,
            wait_seconds: scale_down,
            health_gate: false,
            description: format!("remove the old side after {scale_down} s"),
        });
        steps
    }

    /// Seconds of outage the move causes. Blue-green and canary keep the old side serving
    /// until the new one carries traffic: 0. Rolling has no second full copy, so the
    /// workload's in-memory state is cut over once (`state_gb` at `link_gb_per_second`), plus a
    /// start-up when every replica may be down at once (no surge, all unavailable).
    pub fn downtime_seconds(&self, state_gb: f64, link_gb_per_second: f64) -> u64 {
        match &self.method {
            Method::Rolling {
                max_unavailable,
                max_surge,
                ..
            } => {
                let cutover = transfer_seconds(state_gb, link_gb_per_second);
                let all_down = *max_surge == 0 && *max_unavailable >= self.replicas;
                cutover + if all_down { STARTUP_SECONDS } else { 0 }
            }
            _ => 0,
        }
    }
}

fn validate_health(raw: Option<&RawHealthCheck>, errors: &mut Vec<FieldError>) -> HealthCheck {
    let Some(raw) = raw else {
        return HealthCheck::default();
    };
    let d = HealthCheck::default();
    let port = u16::try_from(whole(
        raw.port,
        "health_check.port",
        1.0,
        65_535.0,
        80,
        errors,
    ))
    .unwrap_or(80);
    let kind = raw.kind.as_deref().unwrap_or("tcp");
    let probe = match kind {
        "http" => Probe::Http {
            path: raw.path.clone().unwrap_or_else(|| "/".into()),
            port,
        },
        "tcp" => Probe::Tcp { port },
        "command" => match raw.command.as_deref().map(str::trim) {
            Some(c) if !c.is_empty() => Probe::Command {
                command: c.to_string(),
            },
            _ => {
                errors.push(FieldError::new(
                    "health_check.command",
                    "type = \"command\" needs a non-empty command",
                ));
                d.probe.clone()
            }
        },
        other => {
            errors.push(FieldError::new(
                "health_check.type",
                format!("must be http, tcp or command, got {other:?}"),
            ));
            d.probe.clone()
        }
    };
    if let Some(path) = &raw.path {
        if !path.starts_with('/') {
            errors.push(FieldError::new(
                "health_check.path",
                format!("must start with /, got {path:?}"),
            ));
        }
    }
    HealthCheck {
        probe,
        interval_seconds: whole(
            raw.interval_seconds,
            "health_check.interval_seconds",
            1.0,
            3600.0,
            d.interval_seconds,
            errors,
        ),
        failure_threshold: whole(
            raw.failure_threshold,
            "health_check.failure_threshold",
            1.0,
            100.0,
            u64::from(d.failure_threshold),
            errors,
        ) as u32,
        recovery_threshold: whole(
            raw.recovery_threshold,
            "health_check.recovery_threshold",
            1.0,
            100.0,
            u64::from(d.recovery_threshold),
            errors,
        ) as u32,
    }
}

fn validate_canary_steps(raw: &[RawCanaryStep], errors: &mut Vec<FieldError>) -> Vec<CanaryStep> {
    if raw.is_empty() {
        errors.push(FieldError::new(
            "canary.steps",
            "needs at least one step, ending at 100 (e.g. 5, 25, 50, 100)",
        ));
        return Vec::new();
    }
    let mut steps = Vec::with_capacity(raw.len());
    let mut previous: Option<u32> = None;
    for (i, s) in raw.iter().enumerate() {
        let pct_field = format!("canary.steps[{i}].traffic_percentage");
        let pct = match s.traffic_percentage {
            Some(p) if p.is_finite() && p.fract() == 0.0 && (1.0..=100.0).contains(&p) => p as u32,
            Some(p) => {
                errors.push(FieldError::new(
                    pct_field,
                    format!("must be a whole percentage from 1 to 100, got {p}"),
                ));
                continue;
            }
            None => {
                errors.push(FieldError::new(pct_field, "is required"));
                continue;
            }
        };
        if let Some(prev) = previous {
            if pct <= prev {
                errors.push(FieldError::new(
                    pct_field,
                    format!("steps must strictly increase: {pct} follows {prev}"),
                ));
            }
        }
        previous = Some(pct);
        let minutes = s.duration_minutes.unwrap_or(0.0);
        if !(minutes.is_finite() && (0.0..=1440.0).contains(&minutes)) {
            errors.push(FieldError::new(
                format!("canary.steps[{i}].duration_minutes"),
                format!("must be from 0 to 1440 minutes, got {minutes}"),
            ));
            continue;
        }
        steps.push(CanaryStep {
            traffic_percentage: pct,
            duration_seconds: (minutes * 60.0).round() as u64,
        });
    }
    if previous.is_some_and(|last| last != 100) {
        errors.push(FieldError::new(
            format!("canary.steps[{}].traffic_percentage", raw.len() - 1),
            "the last step must send 100% of traffic to the new side",
        ));
    }
    steps
}

/// Link speed assumed for moving data, GB per second: within a region 1.25 (10 Gbit/s),
/// between regions of one provider 0.625 (5 Gbit/s), between providers or to and from edge
/// sites 0.125 (1 Gbit/s). A planning figure, not a measurement.
pub fn link_gb_per_second(
    source_provider: &str,
    source_region: &str,
    target_provider: &str,
    target_region: &str,
) -> f64 {
    if source_provider == target_provider && source_region == target_region {
        1.25
    } else if source_provider == target_provider && !matches!(source_provider, "edge" | "onprem") {
        0.625
    } else {
        0.125
    }
}

/// Whole seconds to move `gb` at `gb_per_second`, rounded up.
pub fn transfer_seconds(gb: f64, gb_per_second: f64) -> u64 {
    if !(gb.is_finite() && gb > 0.0 && gb_per_second > 0.0) {
        return 0;
    }
    (gb / gb_per_second).ceil() as u64
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp (`2026-11-25T21:00:00Z`,
/// `...+02:00`, fractional seconds allowed); `None` when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = text.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = frac.get(digits..)?;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || rb[3] != b':' || !matches!(rb[0], b'+' | b'-') {
                return None;
            }
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            if h > 23 || m > 59 {
                return None;
            }
            let sign = if rb[0] == b'-' { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), after Howard Hinnant's well-known formula.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canary(steps: &[(f64, f64)]) -> RawMigration {
        RawMigration {
            strategy: Some("canary".into()),
            canary: Some(RawCanary {
                steps: steps
                    .iter()
                    .map(|(p, d)| RawCanaryStep {
                        traffic_percentage: Some(*p),
                        duration_minutes: Some(*d),
                    })
                    .collect(),
                ..RawCanary::default()
            }),
            replicas: 2,
            ..RawMigration::default()
        }
    }

    fn fields(raw: &RawMigration) -> Vec<String> {
        match MigrationSpec::validate(raw) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| e.field).collect(),
        }
    }

    #[test]
    fn the_guides_canary_plans_create_four_shifts_and_removal() {
        let spec = MigrationSpec::validate(&canary(&[
            (5.0, 5.0),
            (25.0, 10.0),
            (50.0, 10.0),
            (100.0, 0.0),
        ]))
        .expect("valid");
        let steps = spec.steps();
        let shape: Vec<(Action, u32, u64)> = steps
            .iter()
            .map(|s| (s.action, s.traffic_percentage, s.wait_seconds))
            .collect();
        assert_eq!(
            shape,
            vec![
                (Action::CreateTarget, 0, 0),
                (Action::ShiftTraffic, 5, 300),
                (Action::ShiftTraffic, 25, 600),
                (Action::ShiftTraffic, 50, 600),
                (Action::ShiftTraffic, 100, 0),
                (Action::RemoveSource, 100, 30),
            ]
        );
        assert_eq!(spec.downtime_seconds(100.0, 0.125), 0);
    }

    #[test]
    fn canary_step_mistakes_name_the_step() {
        let table: &[(&[(f64, f64)], &str)] = &[
            (
                &[(5.0, 1.0), (5.0, 1.0), (100.0, 0.0)],
                "canary.steps[1].traffic_percentage",
            ),
            (
                &[(50.0, 1.0), (25.0, 1.0), (100.0, 0.0)],
                "canary.steps[1].traffic_percentage",
            ),
            (
                &[(5.0, 1.0), (50.0, 1.0)],
                "canary.steps[1].traffic_percentage",
            ),
            (
                &[(0.0, 1.0), (100.0, 1.0)],
                "canary.steps[0].traffic_percentage",
            ),
            (
                &[(5.0, 1.0), (120.0, 1.0)],
                "canary.steps[1].traffic_percentage",
            ),
            (
                &[(5.5, 1.0), (100.0, 1.0)],
                "canary.steps[0].traffic_percentage",
            ),
            (
                &[(5.0, -1.0), (100.0, 1.0)],
                "canary.steps[0].duration_minutes",
            ),
            (&[], "canary.steps"),
        ];
        for (steps, field) in table {
            let got = fields(&canary(steps));
            assert!(got.iter().any(|f| f == field), "{steps:?}: {got:?}");
        }
    }

    #[test]
    fn a_block_of_another_strategy_is_an_error_on_that_block() {
        let mut raw = canary(&[(100.0, 0.0)]);
        raw.rolling = Some(RawRolling::default());
        assert_eq!(fields(&raw), vec!["rolling".to_string()]);
        raw.rolling = None;
        raw.strategy = Some("big_bang".into());
        assert!(fields(&raw).contains(&"strategy".to_string()));
    }

    #[test]
    fn blue_green_waits_then_promotes_then_removes_after_the_default_delay() {
        let raw = RawMigration {
            strategy: Some("blue_green".into()),
            blue_green: Some(RawBlueGreen {
                validation_checks: vec!["smoke".into()],
                promote_after_seconds: Some(10.0),
                ..RawBlueGreen::default()
            }),
            replicas: 1,
            ..RawMigration::default()
        };
        let steps = MigrationSpec::validate(&raw).expect("valid").steps();
        let shape: Vec<(Action, u32, u64)> = steps
            .iter()
            .map(|s| (s.action, s.traffic_percentage, s.wait_seconds))
            .collect();
        assert_eq!(
            shape,
            vec![
                (Action::CreateTarget, 0, 0),
                (Action::AwaitPromotion, 0, 10),
                (Action::ShiftTraffic, 100, 0),
                (Action::RemoveSource, 100, 30),
            ]
        );
    }

    #[test]
    fn rolling_batches_follow_surge_and_unavailable_and_downtime_is_derived() {
        let raw = |unavailable: &str, surge: &str, replicas| RawMigration {
            strategy: Some("rolling".into()),
            rolling: Some(RawRolling {
                max_unavailable: Some(unavailable.into()),
                max_surge: Some(surge.into()),
                progress_deadline_seconds: None,
            }),
            replicas,
            ..RawMigration::default()
        };
        let spec = MigrationSpec::validate(&raw("25%", "1", 4)).expect("valid");
        let pcts: Vec<u32> = spec
            .steps()
            .iter()
            .filter(|s| s.action == Action::ShiftTraffic)
            .map(|s| s.traffic_percentage)
            .collect();
        assert_eq!(pcts, vec![50, 100]);
        assert_eq!(spec.downtime_seconds(2.0, 0.125), 16);
        let all_at_once = MigrationSpec::validate(&raw("100%", "0", 3)).expect("valid");
        assert_eq!(all_at_once.downtime_seconds(0.0, 0.125), STARTUP_SECONDS);
        assert_eq!(
            fields(&raw("0", "0%", 3)),
            vec!["rolling.max_surge".to_string()]
        );
        assert_eq!(
            fields(&raw("lots", "1", 3)),
            vec!["rolling.max_unavailable".to_string()]
        );
    }

    #[test]
    fn amounts_parse_counts_and_percentages() {
        assert_eq!(Amount::parse("25%"), Some(Amount::Percent(25)));
        assert_eq!(Amount::parse("3"), Some(Amount::Count(3)));
        assert_eq!(Amount::parse("101%"), None);
        assert_eq!(Amount::parse("-1"), None);
        assert_eq!(Amount::Percent(25).of(3, true), 1);
        assert_eq!(Amount::Percent(25).of(3, false), 0);
    }

    #[test]
    fn health_check_mistakes_name_the_attribute() {
        let mut raw = canary(&[(100.0, 0.0)]);
        raw.health_check = Some(RawHealthCheck {
            kind: Some("ping".into()),
            interval_seconds: Some(0.0),
            ..RawHealthCheck::default()
        });
        assert_eq!(
            fields(&raw),
            vec![
                "health_check.type".to_string(),
                "health_check.interval_seconds".to_string()
            ]
        );
    }

    #[test]
    fn rfc3339_timestamps() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2026-11-25T21:00:00Z"), Some(1_795_640_400));
        assert_eq!(
            parse_rfc3339("2026-11-25T23:00:00.5+02:00"),
            Some(1_795_640_400)
        );
        for bad in [
            "",
            "2026-11-25",
            "2026-02-30T00:00:00Z",
            "2026-11-25T25:00:00Z",
            "tomorrow at noon",
            "2026-11-25T21:00:00",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn transfer_time_rounds_up() {
        assert_eq!(transfer_seconds(1.0, 0.125), 8);
        assert_eq!(transfer_seconds(0.0, 0.125), 0);
        assert_eq!(
            link_gb_per_second("aws", "eu-west-1", "gcp", "europe-west1"),
            0.125
        );
        assert_eq!(
            link_gb_per_second("aws", "eu-west-1", "aws", "eu-central-1"),
            0.625
        );
    }
}
