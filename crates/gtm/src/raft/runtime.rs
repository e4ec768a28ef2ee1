//! [`GtmRuntime`]: openraft's [`AsyncRuntime`] on top of the workspace's tokio alias.
//!
//! The crate name `tokio` in this workspace is `madsim-tokio`: real tokio in normal builds, madsim's
//! deterministic simulator under `--cfg madsim`. Every spawn, sleep and timeout openraft 0.9.25 performs goes
//! through this trait, so routing them through the alias makes the whole Raft group run inside the simulator.
//!
//! - Instants stay openraft's [`TokioInstant`] (real tokio's instant): under madsim the libc clock is simulated,
//!   so it reads simulated time. Deadlines are converted to the alias' instant type where needed.
//! - The random number generator is `rand::thread_rng()` normally and madsim's seeded global generator under
//!   madsim (election timeouts are then reproducible from the test seed).
//! - One-shot channels are `tokio::sync::oneshot` (no runtime needed, identical in both modes).
//!
//! **Invariant:** no code path in here creates a thread or touches real time under `--cfg madsim`.

use openraft::async_runtime::AsyncOneshotSendExt;
use openraft::{AsyncRuntime, OptionalSend, TokioInstant};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// openraft's async runtime for the GTM group: the workspace tokio alias (real tokio or madsim).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GtmRuntime;

/// The error of a [`Timeout`] whose deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline has elapsed")]
pub struct Elapsed;

/// A future with a deadline: resolves to `Ok(output)` if the inner future finishes first, else `Err(Elapsed)`.
///
/// A named type (madsim's own `timeout` returns an unnameable `impl Future`). Both halves are boxed so the type
/// is `Unpin` without unsafe pin projection.
pub struct Timeout<F> {
    fut: Pin<Box<F>>,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl<F> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout").finish_non_exhaustive()
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // The inner future first: a result that is ready exactly at the deadline is not lost.
        if let Poll::Ready(v) = this.fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match this.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A one-shot sender (openraft requires its own send trait on it).
pub struct OneshotSender<T>(tokio::sync::oneshot::Sender<T>);

impl<T> fmt::Debug for OneshotSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneshotSender").finish_non_exhaustive()
    }
}

impl<T: OptionalSend> AsyncOneshotSendExt<T> for OneshotSender<T> {
    fn send(self, t: T) -> Result<(), T> {
        self.0.send(t)
    }
}

/// Convert openraft's instant to the alias' instant (the same type in normal builds).
#[cfg(not(madsim))]
fn to_alias_instant(i: TokioInstant) -> tokio::time::Instant {
    i
}

/// Convert openraft's instant to the alias' instant (madsim uses `std::time::Instant`, read from the simulated
/// clock).
#[cfg(madsim)]
fn to_alias_instant(i: TokioInstant) -> tokio::time::Instant {
    i.into_std()
}

/// The rng type: real thread rng normally.
#[cfg(not(madsim))]
type Rng = rand::rngs::ThreadRng;

/// The rng type: madsim's deterministic global generator in the simulator.
#[cfg(madsim)]
type Rng = tokio::madsim::rand::GlobalRng;

impl AsyncRuntime for GtmRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = tokio::task::JoinHandle<T>;
    type Sleep = tokio::time::Sleep;
    type Instant = TokioInstant;
    type TimeoutError = Elapsed;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = Timeout<T>;
    type ThreadLocalRng = Rng;
    type OneshotSender<T: OptionalSend> = OneshotSender<T>;
    type OneshotReceiverError = tokio::sync::oneshot::error::RecvError;
    type OneshotReceiver<T: OptionalSend> = tokio::sync::oneshot::Receiver<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        tokio::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        tokio::time::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        tokio::time::sleep_until(to_alias_instant(deadline))
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        Timeout {
            fut: Box::pin(future),
            sleep: Box::pin(tokio::time::sleep(duration)),
        }
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        Timeout {
            fut: Box::pin(future),
            sleep: Box::pin(tokio::time::sleep_until(to_alias_instant(deadline))),
        }
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        join_error.is_panic()
    }

    #[cfg(not(madsim))]
    fn thread_rng() -> Self::ThreadLocalRng {
        rand::thread_rng()
    }

    #[cfg(madsim)]
    fn thread_rng() -> Self::ThreadLocalRng {
        tokio::madsim::rand::thread_rng()
    }

    fn oneshot<T>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>)
    where
        T: OptionalSend,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (OneshotSender(tx), rx)
    }
}
