//! Retries with exponential backoff and full jitter, written once for every driver.
//!
//! A driver call is retried only when its error says it is worth it (throttling, 5xx), until the
//! resource's timeout (from its `timeouts` block) runs out or Terraform asks the provider to stop
//! (StopProvider), whichever comes first.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::DriverError;

/// How long to wait between attempts and for how long to keep trying.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    pub initial_delay: Duration,
    pub max_delay: Duration,
    pub multiplier: f64,
    /// Give up after this long in total (the resource's timeout for the operation).
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(20),
            multiplier: 2.0,
            timeout: Duration::from_secs(20 * 60),
        }
    }
}

impl RetryPolicy {
    pub fn with_timeout(timeout: Duration) -> Self {
        RetryPolicy {
            timeout,
            ..RetryPolicy::default()
        }
    }

    /// The delay before attempt `attempt + 1` (attempt counts from 0): full jitter over the
    /// exponential ceiling, so that many workers throttled together do not retry together.
    pub fn delay(&self, attempt: u32, jitter_unit: f64) -> Duration {
        let exp = self.multiplier.powi(attempt.min(30) as i32);
        let ceiling = (self.initial_delay.as_secs_f64() * exp).min(self.max_delay.as_secs_f64());
        Duration::from_secs_f64(ceiling * jitter_unit.clamp(0.0, 1.0))
    }
}

/// Tells long operations that Terraform sent StopProvider.
#[derive(Clone, Debug)]
pub struct StopSignal(watch::Receiver<bool>);

/// The sending half kept by the provider; `stop()` is called from StopProvider.
#[derive(Debug)]
pub struct StopHandle(watch::Sender<bool>);

impl StopHandle {
    pub fn new() -> (StopHandle, StopSignal) {
        let (tx, rx) = watch::channel(false);
        (StopHandle(tx), StopSignal(rx))
    }

    pub fn stop(&self) {
        // send_replace never fails, even with no receiver left.
        self.0.send_replace(true);
    }

    pub fn signal(&self) -> StopSignal {
        StopSignal(self.0.subscribe())
    }
}

impl StopSignal {
    /// A signal that never fires (tests, one-shot commands).
    pub fn never() -> StopSignal {
        let (tx, rx) = watch::channel(false);
        // Keep the channel open for the life of the program so `stopped()` pends forever.
        std::mem::forget(tx);
        StopSignal(rx)
    }

    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when stop is requested.
    pub async fn stopped(&mut self) {
        while !*self.0.borrow_and_update() {
            if self.0.changed().await.is_err() {
                // Sender dropped without stopping: never resolves.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Small, seedable pseudo-random source for jitter (no global RNG, reproducible in tests).
#[derive(Clone, Debug)]
pub struct Jitter(u64);

impl Jitter {
    pub fn seeded(seed: u64) -> Jitter {
        Jitter(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn from_clock() -> Jitter {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5EED);
        Jitter::seeded(nanos)
    }

    /// A value in [0, 1).
    pub fn next_unit(&mut self) -> f64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Runs `attempt` until it succeeds, fails with a final error, the policy's timeout passes, or
/// `stop` fires. Returns the last error on timeout so the diagnostic says what kept failing.
pub async fn with_backoff<T, F, Fut>(
    target: &str,
    operation: &'static str,
    policy: &RetryPolicy,
    stop: &StopSignal,
    mut attempt: F,
) -> Result<T, DriverError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, DriverError>>,
{
    let started = Instant::now();
    let mut jitter = Jitter::from_clock();
    let mut n: u32 = 0;
    loop {
        if stop.is_stopped() {
            return Err(DriverError::Cancelled {
                target: target.to_string(),
                operation,
            });
        }
        match attempt(n).await {
            Ok(value) => return Ok(value),
            Err(err) if err.is_retryable() => {
                let delay = policy.delay(n, jitter.next_unit());
                if started.elapsed() + delay > policy.timeout {
                    tracing::warn!(target_cloud = target, operation, attempts = n + 1, error = %err, "giving up after timeout");
                    return Err(err);
                }
                tracing::debug!(target_cloud = target, operation, attempt = n + 1, delay_ms = delay.as_millis() as u64, error = %err, "retrying");
                let mut stop = stop.clone();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.stopped() => {
                        return Err(DriverError::Cancelled { target: target.to_string(), operation });
                    }
                }
                n = n.saturating_add(1);
            }
            Err(err) => return Err(err),
        }
    }
}

/// Sleeps `delay`, or ends early with `Cancelled` when StopProvider arrives: the wait every
/// driver's operation polling uses.
pub async fn sleep_or_stop(
    stop: &StopSignal,
    delay: Duration,
    target: &str,
    operation: &'static str,
) -> Result<(), DriverError> {
    let mut stop = stop.clone();
    tokio::select! {
        _ = tokio::time::sleep(delay) => Ok(()),
        _ = stop.stopped() => Err(DriverError::Cancelled { target: target.into(), operation }),
    }
}

/// The pauses of a loop that polls a cloud until something is done: growing delays from a
/// [`RetryPolicy`] with half jitter (a poll should not collapse to no wait, as a retry's full
/// jitter may), or the wait the cloud asked for ([`Pacer::pause_for`]); `Timeout` once the
/// policy's timeout has passed, `Cancelled` on StopProvider.
pub struct Pacer<'a> {
    policy: &'a RetryPolicy,
    stop: &'a StopSignal,
    target: &'static str,
    operation: &'static str,
    started: Instant,
    jitter: Jitter,
    pauses: u32,
    /// The first pause only checks the time ([`Pacer::first_without_wait`]).
    first_free: bool,
}

impl<'a> Pacer<'a> {
    /// A pacer whose timeout counts from now.
    pub fn new(
        policy: &'a RetryPolicy,
        stop: &'a StopSignal,
        target: &'static str,
        operation: &'static str,
    ) -> Pacer<'a> {
        Pacer {
            policy,
            stop,
            target,
            operation,
            started: Instant::now(),
            jitter: Jitter::from_clock(),
            pauses: 0,
            first_free: false,
        }
    }

    /// Makes the first pause only check the time, for a loop whose first poll needs no wait
    /// (it looks at an answer it already has).
    pub fn first_without_wait(mut self) -> Pacer<'a> {
        self.first_free = true;
        self
    }

    /// Waits before the next poll, or fails: `Timeout` when the policy's time is up,
    /// `Cancelled` when StopProvider arrives during the wait.
    pub async fn pause(&mut self) -> Result<(), DriverError> {
        self.pause_for(None).await
    }

    /// [`Pacer::pause`], waiting `hint` instead when the cloud said how long to wait (a
    /// `Retry-After`; the caller bounds it). The pacer's own delays go on growing either way.
    pub async fn pause_for(&mut self, hint: Option<Duration>) -> Result<(), DriverError> {
        if self.started.elapsed() > self.policy.timeout {
            return Err(DriverError::Timeout {
                target: self.target.into(),
                operation: self.operation,
                seconds: self.policy.timeout.as_secs(),
            });
        }
        if std::mem::take(&mut self.first_free) {
            return Ok(());
        }
        let paced = self
            .policy
            .delay(self.pauses, 0.5 + self.jitter.next_unit() / 2.0);
        self.pauses = self.pauses.saturating_add(1);
        let delay = hint.unwrap_or(paced);
        sleep_or_stop(self.stop, delay, self.target, self.operation).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn a_pacer_waits_growing_delays_then_times_out_or_stops() {
        let policy = RetryPolicy {
            initial_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(8),
            multiplier: 2.0,
            timeout: Duration::from_millis(60),
        };
        let never = StopSignal::never();
        let mut pacer = Pacer::new(&policy, &never, "t", "op");
        let started = Instant::now();
        let mut pauses = 0;
        let err = loop {
            match pacer.pause().await {
                Ok(()) => pauses += 1,
                Err(e) => break e,
            }
        };
        assert!(
            matches!(err, DriverError::Timeout { seconds: 0, .. }),
            "{err:?}"
        );
        assert!(started.elapsed() >= Duration::from_millis(60));
        assert!((5..100).contains(&pauses), "{pauses} pauses");

        let (handle, signal) = StopHandle::new();
        handle.stop();
        let slow = RetryPolicy {
            initial_delay: Duration::from_secs(30),
            ..policy
        };
        let mut pacer = Pacer::new(&slow, &signal, "t", "op");
        let err = pacer.pause().await.expect_err("stopped");
        assert!(matches!(err, DriverError::Cancelled { .. }), "{err:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pacer_can_skip_its_first_wait_and_take_the_clouds_hint() {
        let policy = RetryPolicy {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
            multiplier: 2.0,
            timeout: Duration::from_secs(600),
        };
        let never = StopSignal::never();
        let mut pacer = Pacer::new(&policy, &never, "t", "op").first_without_wait();
        let t0 = tokio::time::Instant::now();
        pacer.pause().await.expect("first pause");
        assert_eq!(t0.elapsed(), Duration::ZERO);
        pacer.pause().await.expect("second pause");
        let paced = t0.elapsed();
        assert!(
            (Duration::from_millis(500)..=Duration::from_secs(1)).contains(&paced),
            "{paced:?}"
        );
        let t1 = tokio::time::Instant::now();
        pacer
            .pause_for(Some(Duration::from_secs(42)))
            .await
            .expect("hinted pause");
        assert_eq!(t1.elapsed(), Duration::from_secs(42));
    }

    fn fast_policy() -> RetryPolicy {
        RetryPolicy {
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            multiplier: 2.0,
            timeout: Duration::from_secs(5),
        }
    }

    fn throttled() -> DriverError {
        DriverError::Throttled {
            target: "sim".into(),
            operation: "create",
            message: "RequestLimitExceeded".into(),
        }
    }

    #[test]
    fn delay_grows_exponentially_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(0, 1.0), Duration::from_millis(200));
        assert_eq!(p.delay(1, 1.0), Duration::from_millis(400));
        assert_eq!(p.delay(20, 1.0), Duration::from_secs(20));
        assert_eq!(p.delay(3, 0.0), Duration::ZERO);
    }

    #[test]
    fn jitter_stays_in_unit_interval() {
        let mut j = Jitter::seeded(7);
        for _ in 0..10_000 {
            let u = j.next_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[tokio::test]
    async fn retries_throttling_until_success() {
        let calls = AtomicU32::new(0);
        let out = with_backoff(
            "sim",
            "create",
            &fast_policy(),
            &StopSignal::never(),
            |_| {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 3 {
                        Err(throttled())
                    } else {
                        Ok(n)
                    }
                }
            },
        )
        .await;
        assert_eq!(out.ok(), Some(3));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn final_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = with_backoff(
            "sim",
            "create",
            &fast_policy(),
            &StopSignal::never(),
            |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async {
                    Err(DriverError::Rejected {
                        target: "sim".into(),
                        operation: "create",
                        message: "no".into(),
                    })
                }
            },
        )
        .await;
        assert!(matches!(out, Err(DriverError::Rejected { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn gives_up_at_the_timeout_with_the_last_error() {
        let policy = RetryPolicy {
            timeout: Duration::from_millis(30),
            ..fast_policy()
        };
        let out: Result<(), _> =
            with_backoff("sim", "create", &policy, &StopSignal::never(), |_| async {
                Err(throttled())
            })
            .await;
        assert!(matches!(out, Err(DriverError::Throttled { .. })));
    }

    #[tokio::test]
    async fn stop_cancels_a_retry_loop() {
        let (handle, signal) = StopHandle::new();
        let policy = RetryPolicy {
            initial_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(10),
            ..fast_policy()
        };
        let policy = RetryPolicy {
            timeout: Duration::from_secs(60),
            ..policy
        };
        let task = tokio::spawn(async move {
            with_backoff::<(), _, _>("sim", "create", &policy, &signal, |_| async {
                Err(throttled())
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        handle.stop();
        let out = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the loop must notice the stop quickly")
            .expect("task");
        assert!(matches!(out, Err(DriverError::Cancelled { .. })));
    }
}
