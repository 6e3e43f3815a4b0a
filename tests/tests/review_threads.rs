//! Review findings against the thread host (branch `review-rp`). Each test demonstrates a
//! finding and fails today, so each is `#[ignore]`d and the suite stays green. Run them with
//! `cargo test -p foreman-tests --release --test review_threads -- --ignored`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use foreman_rt::host::{threads::Pool, Event};
use foreman_rt::policy::Policy;
use foreman_rt::WorkerState;
use foreman_tests::within;

/// Waits (sleeping) until `done` holds; fails with `hung: …` after 20 s.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "hung: waited for {what}"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// Review finding 8 (the thread host's side): the docs' way to give up on a hung task is
/// `Event::Hung { worker }` then `pool.condemn(worker)`. But `condemn` names a slot, not a run,
/// and the core lets it condemn a Busy worker, not only a Hung one: if the hung task finishes
/// between the report and the call, and the worker takes its next task, that next task — never
/// reported hung — is condemned. Its outcome is discarded and it is run again (at-least-once),
/// or reported lost (at-most-once). Either `condemn` should accept only Hung workers (the
/// state a watchdog report is about), or `Event::Hung` should carry a ticket `condemn` checks.
#[test]
fn condemn_after_a_hang_report_never_hits_the_next_task() {
    let (condemned, events) = within(
        Duration::from_secs(30),
        "condemn after a hang report",
        || {
            // Task 0 hangs until released; task 1 runs 200 ms (less than the deadline).
            let release = Arc::new(AtomicBool::new(false));
            let (events, received) = mpsc::channel();
            let hung = Arc::clone(&release);
            let pool = Pool::<u32, u32, (), 4, 1>::start(
                Policy::DEFAULT.with_watchdog(500).unwrap(),
                move |ctx, &task| {
                    if task == 0 {
                        while !hung.load(Ordering::Relaxed) {
                            thread::sleep(Duration::from_millis(1));
                        }
                    } else {
                        thread::sleep(Duration::from_millis(200));
                    }
                    Ok(ctx.attempt())
                },
                move |event| events.send(event).unwrap(),
            )
            .unwrap();
            pool.submit(0).unwrap();
            pool.submit(1).unwrap();
            let report = received.recv().unwrap();
            let Event::Hung { worker: 0, run } = report else {
                panic!("expected worker 0's hang, got {report:?}")
            };
            // Task 0 ends just as its hang is reported; the worker takes task 1.
            release.store(true, Ordering::Relaxed);
            wait_until("task 1 to start", || {
                pool.snapshot().completed == 1 && pool.worker_state(0) == Some(WorkerState::Busy)
            });
            // The owner acts on the report it received.
            let condemned = pool.condemn(run);
            pool.drain();
            (condemned, received.try_iter().collect::<Vec<_>>())
        },
    );
    let crashed: Vec<_> = events
        .iter()
        .filter(|event| matches!(event, Event::Crashed { .. }))
        .collect();
    assert!(
        condemned.is_err() && crashed.is_empty(),
        "condemn(run) after task 0's hang report returned {condemned:?} and condemned task 1, \
         which never hung: {crashed:?}"
    );
}

/// Bytes in a big task: 1 MiB.
const BIG: usize = 1 << 20;

/// Review finding 7 (the thread host's side): the pool builds its supervisor in place (issue
/// 9), but a worker thread still moves the task by value (`Job::finish` returns it, the
/// `Event` holds it, the sink takes the event) on a thread with the default stack (2 MiB). A
/// task type of 1 MiB overflows it, which aborts the whole process. Worker threads could be
/// spawned with a stack sized for `T`, `R` and `E` (or the docs could bound `T`).
#[test]
fn a_big_task_type_does_not_overflow_a_worker_thread() {
    const NAME: &str = "a_big_task_type_does_not_overflow_a_worker_thread";
    const CHILD: &str = "FOREMAN_REVIEW_CHILD";
    if std::env::var_os(CHILD).is_none() {
        // A stack overflow aborts the process: run the body in a child.
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success() && text.contains("1 passed"),
            "a pool of 1 MiB tasks took its process down ({}):\n{text}",
            output.status
        );
        return;
    }
    // The owner's side on a big stack: only the pool's own threads are tested.
    let completed = thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(|| {
            let pool = Pool::<[u8; BIG], u32, (), 2, 1>::start(
                Policy::DEFAULT,
                |_, bytes| Ok(u32::from(bytes[0])),
                |_| {},
            )
            .unwrap();
            pool.submit([7; BIG]).unwrap();
            pool.drain().snapshot.completed
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(completed, 1);
}
