//! [`Feed`]: the submissions that want their task's outcome — [`Pool::submit`](crate::Pool::submit)
//! — on the page's side: each gets a ticket its one outcome lands on, and waits, in order,
//! for room in the queue.

use core::cell::RefCell;
use core::fmt;
use core::future::Future;
use core::num::NonZeroU64;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};

use foreman_rt::host::Event;
use foreman_rt::SubmitError;

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

/// A task as the supervisor holds it: the app's task and, for a submission, the ticket its
/// one outcome goes to.
pub(crate) struct Tagged<T> {
    pub ticket: Option<TaskId>,
    pub task: T,
}

/// A task's outcome, for a [`Submission`].
type Outcome<T, R, E> = Result<Event<T, R, E, String>, SubmitError<T>>;

/// Where a [`Submission`]'s outcome lands.
struct Ticket<T, R, E> {
    outcome: Option<Outcome<T, R, E>>,
    waker: Option<Waker>,
}

/// A ticket the feed holds for a [`Submission`] (which owns it).
type WeakTicket<T, R, E> = Weak<RefCell<Ticket<T, R, E>>>;

/// The submissions of a pool: their tickets, and the tasks still waiting for room.
pub(crate) struct Feed<T, R, E> {
    next: u64,
    /// A dropped [`Submission`] leaves a dead ticket: its outcome then goes to the sink.
    tickets: HashMap<TaskId, WeakTicket<T, R, E>>,
    /// Tasks waiting for room in the queue, in order.
    waiting: VecDeque<(TaskId, T)>,
}

impl<T, R, E> Feed<T, R, E> {
    pub(crate) fn new() -> Self {
        Feed {
            next: 1,
            tickets: HashMap::new(),
            waiting: VecDeque::new(),
        }
    }

    /// Takes a task in: it waits for room, and its submission for its outcome.
    pub(crate) fn submit(&mut self, task: T) -> Submission<T, R, E> {
        let id = TaskId(NonZeroU64::new(self.next).expect("ticket numbers start at 1"));
        self.next += 1;
        let ticket = Rc::new(RefCell::new(Ticket {
            outcome: None,
            waker: None,
        }));
        self.tickets.insert(id, Rc::downgrade(&ticket));
        self.waiting.push_back((id, task));
        Submission { id, ticket }
    }

    /// Offers the waiting tasks, in order, to `try_submit` until the queue is full. A task
    /// refused because the pool is closed resolves its submission; if nobody waits for it any
    /// more it comes back (for the sink).
    pub(crate) fn feed(
        &mut self,
        mut try_submit: impl FnMut(Tagged<T>) -> Result<(), SubmitError<Tagged<T>>>,
    ) -> Vec<T> {
        let mut orphans = Vec::new();
        while let Some((id, task)) = self.waiting.pop_front() {
            match try_submit(Tagged {
                ticket: Some(id),
                task,
            }) {
                Ok(()) => {}
                Err(SubmitError::Full(tagged)) => {
                    self.waiting.push_front((id, tagged.task));
                    break;
                }
                Err(SubmitError::Closed(tagged)) => {
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
        ticket: Option<TaskId>,
        event: Event<T, R, E, String>,
    ) -> Option<Event<T, R, E, String>> {
        match ticket {
            Some(id) => self.resolve(id, Ok(event)).and_then(Result::ok),
            None => Some(event),
        }
    }

    /// Resolves submission `id`; gives the outcome back if nobody waits for it.
    fn resolve(&mut self, id: TaskId, outcome: Outcome<T, R, E>) -> Option<Outcome<T, R, E>> {
        let Some(ticket) = self.tickets.remove(&id).and_then(|ticket| ticket.upgrade()) else {
            return Some(outcome);
        };
        let mut ticket = ticket.borrow_mut();
        ticket.outcome = Some(outcome);
        if let Some(waker) = ticket.waker.take() {
            waker.wake();
        }
        None
    }
}

/// A task submitted with [`Pool::submit`](crate::Pool::submit): a future of its one outcome —
/// its final [`Event`], or the task back if the pool closed before accepting it. (For
/// JavaScript, see [`JsPool`](crate::JsPool).)
pub struct Submission<T, R, E> {
    id: TaskId,
    ticket: Rc<RefCell<Ticket<T, R, E>>>,
}

impl<T, R, E> Submission<T, R, E> {
    /// The task's number in its pool.
    pub fn id(&self) -> TaskId {
        self.id
    }
}

impl<T, R, E> Future for Submission<T, R, E> {
    type Output = Result<Event<T, R, E, String>, SubmitError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut ticket = self.ticket.borrow_mut();
        match ticket.outcome.take() {
            Some(outcome) => Poll::Ready(outcome),
            None => {
                ticket.waker = Some(cx.waker().clone());
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

    fn poll(
        submission: &mut Submission<&'static str, usize, ()>,
    ) -> Poll<Outcome<&'static str, usize, ()>> {
        Pin::new(submission).poll(&mut Context::from_waker(Waker::noop()))
    }

    #[wasm_bindgen_test]
    fn waiting_tasks_go_in_in_order_until_the_queue_is_full() {
        let mut feed = TestFeed::new();
        let mut a = feed.submit("a");
        let _b = feed.submit("b");
        let _c = feed.submit("c");
        let mut queue = Vec::new();
        let orphans = feed.feed(|tagged| {
            if queue.len() == 2 {
                return Err(SubmitError::Full(tagged));
            }
            queue.push((tagged.ticket, tagged.task));
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
        let mut kept = feed.submit("kept");
        drop(feed.submit("dropped"));
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
        let submission = feed.submit("gone");
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
}
