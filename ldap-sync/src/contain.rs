//! Keeping a directory's malformed answer from killing the daemon.
//!
//! ldap3 decodes a response into its result (`LdapResult`) in the task
//! that awaits the operation, and that decoding panics on a result with
//! no result code; its control and intermediate-message parsers panic on
//! bad BER too. The daemon's own loop awaits binds, searches and modifies,
//! so a server that sends such a message would otherwise end the process.
//! [`contained`] turns a panic in a future into an error at the point it
//! is awaited; [`AbortOnDrop`] ends the session's reader task with the
//! session, however the session ends.

use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::Poll;
use tokio::task::JoinHandle;

/// Runs `future` to completion; a panic while polling it becomes `Err`
/// with the panic's message, and the future is dropped.
///
/// Unwind safety: the caller must not rely on state the future was
/// changing when it panicked. The daemon's sessions hold no such state:
/// every push is recomputed from local state and the directory after the
/// next refresh.
pub async fn contained<F: Future>(future: F) -> Result<F::Output, String> {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        },
    )
    .await
}

/// The text a panic was raised with, on one line and bounded: it names
/// the parser that gave up, never a value (a panic message of ldap3 holds
/// at most a tag's debug form, which the bound keeps short).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    const MAX: usize = 200;
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "no message".to_owned()
    };
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX)
        .collect();
    if text.chars().count() > MAX {
        line.push('…');
    }
    line
}

/// A spawned task that is aborted when this handle is dropped: a session
/// that ends by a contained panic does not leave its reader (and the
/// connection it holds) running.
#[derive(Debug)]
pub struct AbortOnDrop<T>(pub JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(future)
    }

    #[test]
    fn a_panic_in_a_future_is_an_error_with_its_message() {
        let result = block_on(contained(async {
            tokio::task::yield_now().await;
            panic!("result sequence");
        }));
        assert_eq!(result, Err::<(), _>("result sequence".to_owned()));
    }

    #[test]
    fn a_future_that_completes_gives_its_output() {
        assert_eq!(block_on(contained(async { 7 })), Ok(7));
    }

    #[test]
    fn a_long_or_multi_line_message_is_one_bounded_line() {
        let long = format!("first\nsecond{}", "x".repeat(1000));
        let line = panic_message(&long);
        assert!(!line.contains('\n'));
        assert!(line.chars().count() <= 201, "{}", line.len());
    }

    #[test]
    fn dropping_the_guard_aborts_the_task() {
        block_on(async {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let guard = AbortOnDrop(tokio::spawn(async move {
                let _tx = tx;
                std::future::pending::<()>().await;
            }));
            drop(guard);
            // The task's end drops its sender: the receiver sees it closed.
            assert!(rx.await.is_err());
        });
    }
}
