//! The daemon's watched tasks. Each runs in the node's tracing span; one that ends or
//! panics before shutdown (the control server, the status page, the admin page) stops the
//! daemon with an error naming it, instead of leaving a node that no longer answers.

use std::future::Future;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use tracing::Instrument;

/// A watched task that ended, and why when it failed.
pub struct Ended {
    /// Which task.
    pub task: &'static str,
    /// Its error or panic; none when it returned cleanly.
    pub failure: Option<String>,
}

/// What a task returns, seen as a failure or not.
pub trait Outcome {
    /// The error text, none when it ended cleanly.
    fn failure(self) -> Option<String>;
}

impl Outcome for () {
    fn failure(self) -> Option<String> {
        None
    }
}

impl<E: std::fmt::Display> Outcome for Result<(), E> {
    fn failure(self) -> Option<String> {
        self.err().map(|error| error.to_string())
    }
}

/// The running tasks.
#[derive(Default)]
pub struct Watched {
    running: FuturesUnordered<BoxFuture<'static, Ended>>,
}

impl Watched {
    /// Spawns `future` as `task`, in the current span (the node's).
    pub fn spawn<F>(&mut self, task: &'static str, future: F)
    where
        F: Future + Send + 'static,
        F::Output: Outcome + Send + 'static,
    {
        let handle = tokio::spawn(future.instrument(tracing::Span::current()));
        self.running.push(Box::pin(async move {
            let failure = match handle.await {
                Ok(output) => output.failure(),
                Err(join) if join.is_panic() => Some("it panicked".to_owned()),
                Err(_) => Some("it was cancelled".to_owned()),
            };
            Ended { task, failure }
        }));
    }

    /// The next task to end; pending forever when none runs.
    pub async fn next_ended(&mut self) -> Ended {
        match self.running.next().await {
            Some(ended) => ended,
            None => std::future::pending().await,
        }
    }

    /// Waits for every task (after shutdown was asked for), logging failures.
    pub async fn join_all(mut self) {
        while let Some(ended) = self.running.next().await {
            if let Some(failure) = ended.failure {
                tracing::warn!(task = ended.task, %failure, "task failed while stopping");
            }
        }
    }
}

impl Ended {
    /// The daemon's error for a task that ended before shutdown.
    pub fn into_error(self) -> anyhow::Error {
        match self.failure {
            Some(failure) => anyhow::anyhow!(
                "the {} failed ({failure}); the daemon stops rather than run without it",
                self.task
            ),
            None => anyhow::anyhow!(
                "the {} stopped on its own; the daemon stops rather than run without it",
                self.task
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_panics_or_ends_is_reported_by_name() {
        let mut watched = Watched::default();
        let deliberate = true;
        watched.spawn("status page", async move {
            assert!(!deliberate, "a deliberate panic");
        });
        let ended = watched.next_ended().await;
        assert_eq!(ended.task, "status page");
        assert_eq!(ended.failure.as_deref(), Some("it panicked"));
        assert!(
            ended
                .into_error()
                .to_string()
                .contains("the status page failed")
        );
        watched.spawn("control server", async {});
        let ended = watched.next_ended().await;
        assert_eq!((ended.task, ended.failure), ("control server", None));
        watched.spawn("admin page", async { Err::<(), _>("bind lost") });
        let ended = watched.next_ended().await;
        assert_eq!(ended.failure.as_deref(), Some("bind lost"));
    }
}
