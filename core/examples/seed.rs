//! The Python seed this project replaces, reproduced: a supervisor with three workers runs ten
//! tasks, each returning `worker_id * 2`, prints every result as one whole line, and shuts
//! down cleanly.
//!
//! The Python original (a `multiprocessing` task queue with `None` sentinels) never gets to
//! its last line: its shutdown joins a queue whose sentinel tasks are never marked done. Here
//! `drain` returns once the workers have run everything queued.
//!
//! ```text
//! cargo run -p foreman-rt --example seed --features std
//! ```

use std::process::ExitCode;

use foreman_rt::host::{threads::Pool, Event};
use foreman_rt::policy::Policy;

const WORKERS: usize = 3;
const TASKS: u32 = 10;

fn main() -> ExitCode {
    // Each event is printed with one `println!`, which holds the stdout lock for the whole
    // line: lines from different workers never interleave.
    let pool = Pool::<u32, usize, String, 16, WORKERS>::start(
        Policy::DEFAULT,
        |ctx, _task| Ok(ctx.worker() * 2),
        |event| match event {
            Event::Completed { worker, output, .. } => {
                println!("Worker {worker}: Processed task, result: {output}")
            }
            Event::Failed { worker, error, .. } => {
                println!("Worker {worker}: Error processing task: {error}")
            }
            other => eprintln!("{other:?}"),
        },
    );
    let pool = match pool {
        Ok(pool) => pool,
        Err(err) => {
            eprintln!("cannot start the workers: {err}");
            return ExitCode::FAILURE;
        }
    };
    for task in 0..TASKS {
        if let Err(err) = pool.submit(task) {
            eprintln!("task {} was not accepted: {err}", err.into_inner());
            return ExitCode::FAILURE;
        }
    }
    let report = pool.drain();
    let snapshot = report.snapshot;
    if snapshot.completed + snapshot.failed != TASKS as usize || !report.handed_back.is_empty() {
        eprintln!("not every task ran: {snapshot:?}");
        return ExitCode::FAILURE;
    }
    println!("All tasks completed.");
    ExitCode::SUCCESS
}
