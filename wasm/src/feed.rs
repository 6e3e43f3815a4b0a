//! [`Feed`]: the submissions that want their task's outcome — [`Pool::submit`](crate::Pool::submit)
//! — on the page's side: each gets a landing its one outcome lands on, and waits, in order,
//! for room in the queue. Each also carries a [`Control`] the worker that runs it reads: its
//! cancellation [`Ticket`] and its options ([`TaskOptions`]).

use core::cell::RefCell;
use core::fmt;
use core::future::Future;
use core::num::NonZeroU64;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};
use std::sync::Arc;

use foreman_rt::host::Event;
use foreman_rt::policy::Tick;
use foreman_rt::{SubmitError, Ticket};

/// The number of a task submitted with [`Pool::submit`](crate::Pool::submit), unique within
/// its pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(NonZeroU64);

impl TaskId {
    /// The number.
    pub const fn get(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// How to run one task submitted with [`Pool::submit_with`](crate::Pool::submit_with).
///
/// ```
/// use foreman_wasm::TaskOptions;
/// let options = TaskOptions::new().with_deadline(2_000);
/// assert_eq!(options.deadline(), Some(2_000));
/// assert_eq!(TaskOptions::new().deadline(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TaskOptions {
    deadline: Option<Tick>,
}

impl TaskOptions {
    /// No options: the task runs as [`Pool::submit`](crate::Pool::submit) runs it.
    pub const fn new() -> TaskOptions {
        TaskOptions { deadline: None }
    }

    /// A deadline of `ms` milliseconds for each run of the task, counted from the run's start
    /// (not from the submission: time spent queued does not count). A run still going past it
    /// is hung: [`Event::Hung`], its worker killed and replaced, and the task retried or
    /// dead-lettered by the policy (each retry gets the same deadline). Heartbeats do not
    /// extend it; it replaces the policy's watchdog deadline for the task, and works without
    /// a watchdog (the pool then starts its clock thread at the first such task).
    pub const fn with_deadline(mut self, ms: Tick) -> TaskOptions {
        self.deadline = Some(ms);
        self
    }

    /// The deadline of each run, in milliseconds.
    pub const fn deadline(&self) -> Option<Tick> {
        self.deadline
    }
}

/// What the worker running a submitted task reads: its cancellation ticket and options.
pub(crate) struct Control {
    pub ticket: Ticket,
    pub options: TaskOptions,
}

/// A task as the supervisor holds it: the app's task and, for a submission, the id its one
/// outcome goes to and its [`Control`].
pub(crate) struct Tagged<T> {
    pub id: Option<TaskId>,
    pub control: Option<Arc<Control>>,
    pub task: T,
}

impl<T> Tagged<T> {
    /// A task of [`Pool::try_submit`](crate::Pool::try_submit): nobody waits for it.
    pub(crate) fn untracked(task: T) -> Tagged<T> {
        Tagged {
            id: None,
            control: None,
            task,
        }
    }

    /// Marks the task's outcome recorded: a cancellation from now on is too late.
    pub(crate) fn end(&self) {
        if let Some(control) = &self.control {
            control.ticket.end();
        }
    }

    /// Whether the task's submission asked to cancel it.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.control
            .as_ref()
            .is_some_and(|control| control.ticket.is_cancelled())
    }
}

/// A task's outcome, for a [`Submission`].
type Outcome<T, R, E> = Result<Event<T, R, E, String>, SubmitError<T>>;

/// Where a [`Submission`]'s outcome lands.
struct Landing<T, R, E> {
    outcome: Option<Outcome<T, R, E>>,
    waker: Option<Waker>,
}

/// A landing the feed holds for a [`Submission`] (which owns it).
type WeakLanding<T, R, E> = Weak<RefCell<Landing<T, R, E>>>;

/// Where a [`Submission`] asks its pool to cancel its task.
pub(crate) trait Canceller {
    /// Cancels task `id`: see [`Submission::cancel`].
    fn cancel(self: Rc<Self>, id: TaskId, control: &Control) -> bool;
}

/// The submissions of a pool: their landings, and the tasks still waiting for room.
pub(crate) struct Feed<T, R, E> {
    next: u64,
    /// A dropped [`Submission`] leaves a dead landing: its outcome then goes to the sink.
    landings: HashMap<TaskId, WeakLanding<T, R, E>>,
    /// Tasks waiting for room in the queue, in order.
    waiting: VecDeque<(TaskId, Arc<Control>, T)>,
}

impl<T, R, E> Feed<T, R, E> {
    pub(crate) fn new() -> Self {
        Feed {
            next: 1,
            landings: HashMap::new(),
            waiting: VecDeque::new(),
        }
    }

    /// Takes a task in: it waits for room, and its submission for its outcome. `pool` is
    /// where the submission's [`cancel`](Submission::cancel) goes.
    pub(crate) fn submit(
        &mut self,
        task: T,
        options: TaskOptions,
        pool: Weak<dyn Canceller>,
    ) -> Submission<T, R, E> {
        let id = TaskId(NonZeroU64::new(self.next).expect("task numbers start at 1"));
        self.next += 1;
        let landing = Rc::new(RefCell::new(Landing {
            outcome: None,
            waker: None,
        }));
        let control = Arc::new(Control {
            ticket: Ticket::new(),
            options,
        });
        self.landings.insert(id, Rc::downgrade(&landing));
        self.waiting.push_back((id, Arc::clone(&control), task));
        Submission {
            id,
            landing,
            control,
            pool,
        }
    }

    /// Takes task `id` out if it still waits for room (it never reached the queue), ends its
    /// ticket, and resolves its submission as cancelled: `Some`, holding the event if nobody
    /// waits for it any more (for the sink). `None` if the task does not wait here.
    #[allow(clippy::option_option)] // "not here" and "here, and this is left over"
    pub(crate) fn cancel_waiting(&mut self, id: TaskId) -> Option<Option<Event<T, R, E, String>>> {
        let index = self
            .waiting
            .iter()
            .position(|(waiting, ..)| *waiting == id)?;
        let (_, control, task) = self.waiting.remove(index)?;
        control.ticket.cancel();
        control.ticket.end();
        let cancelled = Event::Cancelled { worker: None, task };
        Some(self.resolve(id, Ok(cancelled)).and_then(Result::ok))
    }

    /// Offers the waiting tasks, in order, to `try_submit` until the queue is full. A task
    /// refused because the pool is closed resolves its submission; if nobody waits for it any
    /// more it comes back (for the sink).
    pub(crate) fn feed(
        &mut self,
        mut try_submit: impl FnMut(Tagged<T>) -> Result<(), SubmitError<Tagged<T>>>,
    ) -> Vec<T> {
        let mut orphans = Vec::new();
        while let Some((id, control, task)) = self.waiting.pop_front() {
            match try_submit(Tagged {
                id: Some(id),
                control: Some(control),
                task,
            }) {
                Ok(()) => {}
                Err(SubmitError::Full(tagged)) => {
                    let control = tagged.control.expect("a submission's task has its control");
                    self.waiting.push_front((id, control, tagged.task));
                    break;
                }
                Err(SubmitError::Closed(tagged)) => {
                    tagged.end();
                    let refused = Err(SubmitError::Closed(tagged.task));
                    if let Some(Err(refused)) = self.resolve(id, refused) {
                        orphans.push(refused.into_inner());
                    }
                }
            }
        }
        orphans
    }

    /// Sends `event` to its submission, if it belongs to one that still waits; otherwise
    /// gives it back (for the sink).
    pub(crate) fn event(
        &mut self,
        id: Option<TaskId>,
        event: Event<T, R, E, String>,
    ) -> Option<Event<T, R, E, String>> {
        match id {
            Some(id) => self.resolve(id, Ok(event)).and_then(Result::ok),
            None => Some(event),
        }
    }

    /// Resolves submission `id`; gives the outcome back if nobody waits for it.
    fn resolve(&mut self, id: TaskId, outcome: Outcome<T, R, E>) -> Option<Outcome<T, R, E>> {
        let Some(landing) = self
            .landings
            .remove(&id)
            .and_then(|landing| landing.upgrade())
        else {
            return Some(outcome);
        };
        let mut landing = landing.borrow_mut();
        landing.outcome = Some(outcome);
        if let Some(waker) = landing.waker.take() {
            waker.wake();
        }
        None
    }
}

/// A task submitted with [`Pool::submit`](crate::Pool::submit): a future of its one outcome —
/// its final [`Event`], or the task back if the pool closed before accepting it — that can
/// [`cancel`](Submission::cancel) its task. (For JavaScript, see [`JsPool`](crate::JsPool).)
pub struct Submission<T, R, E> {
    id: TaskId,
    landing: Rc<RefCell<Landing<T, R, E>>>,
    control: Arc<Control>,
    pool: Weak<dyn Canceller>,
}

impl<T, R, E> Submission<T, R, E> {
    /// The task's number in its pool.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// Cancels the task. Returns `true` if it will end cancelled — the future resolves to
    /// [`Event::Cancelled`] — and `false` if that is not certain: it is too late (the task
    /// has its outcome, or its run is ending this moment with one; the future resolves to
    /// that), or the pool is gone.
    ///
    /// - A task still waiting for room never reaches the queue: resolved at once, `worker:
    ///   None`.
    /// - A queued task never runs: the worker that takes it ends it at once (`worker:
    ///   None`). Should the pool stop first, an abort hands it back: it still ends
    ///   [`Event::Cancelled`] (the snapshot counts it handed back: the supervisor did).
    /// - A running task's run is cancelled, condemned, and its Web Worker terminated (a
    ///   thread stuck in a loop cannot be told to stop); once the thread is proven gone, the
    ///   task ends cancelled (`worker: Some(slot)`; not retried, the death not counted
    ///   against the restart intensity nor followed by a backoff) and a fresh worker takes the
    ///   slot. A task that returns before it is killed is discarded and ends cancelled too.
    ///
    /// Cancelling again, or after the outcome, does nothing more.
    pub fn cancel(&self) -> bool {
        match self.pool.upgrade() {
            Some(pool) => pool.cancel(self.id, &self.control),
            None => false,
        }
    }
}

impl<T, R, E> Future for Submission<T, R, E> {
    type Output = Result<Event<T, R, E, String>, SubmitError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut landing = self.landing.borrow_mut();
        match landing.outcome.take() {
            Some(outcome) => Poll::Ready(outcome),
            None => {
                landing.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl<T, R, E> fmt::Debug for Submission<T, R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Submission").field("id", &self.id).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::task::Waker;
    use wasm_bindgen_test::wasm_bindgen_test;

    type TestFeed = Feed<&'static str, usize, ()>;

    /// No pool: the feed alone.
    struct NoPool;

    impl Canceller for NoPool {
        fn cancel(self: Rc<Self>, _id: TaskId, _control: &Control) -> bool {
            false
        }
    }

    fn submit(feed: &mut TestFeed, task: &'static str) -> Submission<&'static str, usize, ()> {
        feed.submit(task, TaskOptions::new(), Weak::<NoPool>::new())
    }

    fn poll(
        submission: &mut Submission<&'static str, usize, ()>,
    ) -> Poll<Outcome<&'static str, usize, ()>> {
        Pin::new(submission).poll(&mut Context::from_waker(Waker::noop()))
    }

    #[wasm_bindgen_test]
    fn waiting_tasks_go_in_in_order_until_the_queue_is_full() {
        let mut feed = TestFeed::new();
        let mut a = submit(&mut feed, "a");
        let _b = submit(&mut feed, "b");
        let _c = submit(&mut feed, "c");
        let mut queue = Vec::new();
        let orphans = feed.feed(|tagged| {
            if queue.len() == 2 {
                return Err(SubmitError::Full(tagged));
            }
            queue.push((tagged.id, tagged.task));
            Ok(())
        });
        assert!(orphans.is_empty());
        assert_eq!(
            queue.iter().map(|(_, task)| *task).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(poll(&mut a).is_pending());
        let event = Event::Completed {
            worker: 0,
            task: "a",
            output: 1,
        };
        assert!(
            feed.event(queue[0].0, event).is_none(),
            "delivered to its submission"
        );
        assert!(matches!(
            poll(&mut a),
            Poll::Ready(Ok(Event::Completed { output: 1, .. }))
        ));
        // "c" still waits.
        assert_eq!(feed.waiting.len(), 1);
    }

    #[wasm_bindgen_test]
    fn a_closed_pool_hands_waiting_tasks_back_to_their_submissions_or_the_sink() {
        let mut feed = TestFeed::new();
        let mut kept = submit(&mut feed, "kept");
        drop(submit(&mut feed, "dropped"));
        let orphans = feed.feed(|tagged| Err(SubmitError::Closed(tagged)));
        assert_eq!(
            orphans,
            ["dropped"],
            "nobody waits for it: back for the sink"
        );
        assert!(matches!(
            poll(&mut kept),
            Poll::Ready(Err(SubmitError::Closed("kept")))
        ));
    }

    #[wasm_bindgen_test]
    fn an_event_nobody_waits_for_comes_back() {
        let mut feed = TestFeed::new();
        let submission = submit(&mut feed, "gone");
        let id = submission.id();
        drop(submission);
        let _ = feed.feed(|_| Ok(()));
        let event = Event::HandedBack { task: "gone" };
        assert!(matches!(
            feed.event(Some(id), event),
            Some(Event::HandedBack { task: "gone" })
        ));
        let untagged = Event::Failed {
            worker: 3,
            task: "untagged",
            error: (),
        };
        assert!(matches!(
            feed.event(None, untagged),
            Some(Event::Failed { worker: 3, .. })
        ));
    }

    #[wasm_bindgen_test]
    fn a_task_cancelled_while_waiting_for_room_never_reaches_the_queue() {
        let mut feed = TestFeed::new();
        let mut a = submit(&mut feed, "a");
        let b = submit(&mut feed, "b");
        assert!(
            matches!(feed.cancel_waiting(b.id()), Some(None)),
            "resolved to its submission"
        );
        let mut b = b;
        assert!(matches!(
            poll(&mut b),
            Poll::Ready(Ok(Event::Cancelled {
                worker: None,
                task: "b"
            }))
        ));
        let mut queue = Vec::new();
        let _ = feed.feed(|tagged| {
            queue.push(tagged.task);
            Ok(())
        });
        assert_eq!(queue, ["a"], "only the task not cancelled went in");
        assert!(poll(&mut a).is_pending());
        assert!(feed.cancel_waiting(a.id()).is_none(), "a is in the queue");
        assert!(poll(&mut a).is_pending());
    }
}
