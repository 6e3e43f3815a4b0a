//! The Python seed as it was written — a supervisor with three worker *processes* runs ten
//! tasks, each returning `worker_id * 2`, prints every result as one whole line, and shuts down
//! cleanly — plus one more task that segfaults its worker process the first time it runs. Only
//! that process dies: the others go on, a new process takes its place and runs the task again.
//!
//! ```text
//! cargo run -p foreman-rt --example seed_processes --features processes
//! ```
//!
//! The segfault is a deliberate write to an address no process maps, standing in for a bug in
//! FFI code. In the Python original a worker dying like this would hang the pool forever.

use std::process::ExitCode;

use foreman_rt::host::processes::{Context, Handler, Pool, Portable};
use foreman_rt::host::Event;
use foreman_rt::policy::Policy;
use foreman_rt::Disposition;

const WORKERS: usize = 3;
const TASKS: u32 = 10;

/// A task: the seed's numbers, and whether it segfaults on its first run.
#[derive(Debug, Clone, Copy)]
struct Task {
    id: u32,
    segfault_once: bool,
}

// SAFETY: a `u32` and a `bool`: no pointer, no handle.
unsafe impl Portable for Task {}

/// The seed's `process_task`: the result is twice the id of the worker that ran it.
fn process_task(ctx: &Context<'_>, task: &Task) -> Result<usize, ()> {
    if task.segfault_once && ctx.attempt() == 1 {
        segfault();
    }
    Ok(ctx.worker() * 2)
}

/// Writes to an address in the page no process maps: the kernel kills the process with
/// SIGSEGV. (Undefined behaviour on purpose: this is what a bug in native code does.)
fn segfault() {
    // SAFETY: none; see above. The process dies here.
    unsafe { core::ptr::without_provenance_mut::<u8>(8).write_volatile(1) };
}

static SEED: Handler<Task, usize, ()> = Handler::new("seed", process_task);

fn main() -> ExitCode {
    SEED.serve_if_worker(); // a worker process serves here and never returns

    // Each event is printed with one `println!`, which holds the stdout lock for the whole
    // line: lines from different keepers never interleave.
    let pool =
        Pool::<Task, usize, (), 16, WORKERS>::start(Policy::DEFAULT, &SEED, |event| match event {
            Event::Completed { worker, output, .. } => {
                println!("Worker {worker}: Processed task, result: {output}")
            }
            Event::Failed { worker, task, .. } => {
                println!("Worker {worker}: Error processing task {}", task.id)
            }
            Event::Crashed {
                worker,
                cause,
                task: Some(Disposition::Retried { attempt }),
                ..
            } => println!(
                "Worker {worker} crashed ({cause}); a new worker process runs its task again \
                 (attempt {attempt})"
            ),
            other => eprintln!("{other:?}"),
        });
    let pool = match pool {
        Ok(pool) => pool,
        Err(err) => {
            eprintln!("cannot start the worker processes: {err}");
            return ExitCode::FAILURE;
        }
    };
    // The crashing task goes in the middle: the tasks around it run on the other workers.
    let seed = |id| Task {
        id,
        segfault_once: false,
    };
    let tasks = (0..TASKS / 2)
        .map(seed)
        .chain([Task {
            id: TASKS,
            segfault_once: true,
        }])
        .chain((TASKS / 2..TASKS).map(seed));
    for task in tasks {
        if let Err(err) = pool.submit(task) {
            eprintln!("task {:?} was not accepted: {err}", err.into_inner());
            return ExitCode::FAILURE;
        }
    }
    let report = pool.drain();
    let snapshot = report.snapshot;
    if snapshot.completed != TASKS as usize + 1 || !report.handed_back.is_empty() {
        eprintln!("not every task ran: {snapshot:?}");
        return ExitCode::FAILURE;
    }
    println!("All tasks completed.");
    ExitCode::SUCCESS
}
