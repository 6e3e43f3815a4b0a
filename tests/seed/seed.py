"""The Python seed that foreman replaces: a multiprocessing task queue, worker processes
pulling tasks until a `None` sentinel, and a result queue.

    python3 seed.py                          # the original run: 3 workers, 10 tasks, printed
    python3 seed.py --tasks 20000 --workers 2 --bench   # prints one JSON line of timings

Every task's result is `worker_id * 2`. The program is kept as it was designed, with one fix:
the original hung forever at shutdown, in `tasks.join()`, because a worker that took its
`None` sentinel left the loop without calling `tasks.task_done()` for it, so the queue's
count of unfinished tasks never reached zero. The one added line marked FIX below marks the
sentinel done; nothing else changed.

`--bench` (for `cargo xtask bench`) measures from before the worker processes start until
they have been joined, prints `{"tasks": …, "workers": …, "seconds": …}` instead of the result
lines, and checks that every task produced exactly one correct result.
"""

import argparse
import json
import multiprocessing
import sys
import time


def process_task(worker_id, task):
    """The task itself: the result is twice the id of the worker that ran it."""
    return worker_id * 2


def worker(worker_id, tasks, results):
    while True:
        task = tasks.get()
        if task is None:
            tasks.task_done()  # FIX: the sentinel is a task too; without this, join() hangs
            break
        try:
            results.put((worker_id, process_task(worker_id, task), None))
        except Exception as error:  # a failed task is reported; the worker goes on
            results.put((worker_id, None, repr(error)))
        finally:
            tasks.task_done()


def run(task_count, worker_count, bench):
    started = time.perf_counter()
    tasks = multiprocessing.JoinableQueue()
    results = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=worker, args=(i, tasks, results))
        for i in range(worker_count)
    ]
    for process in workers:
        process.start()
    for task in range(task_count):
        tasks.put(task)
    for _ in workers:
        tasks.put(None)
    tasks.join()
    collected = [results.get() for _ in range(task_count)]
    for process in workers:
        process.join()
    seconds = time.perf_counter() - started

    bad = [r for r in collected if r[2] is not None or r[1] != r[0] * 2]
    if bench:
        if len(collected) != task_count or bad:
            sys.exit(f"{len(bad)} wrong results out of {len(collected)}")
        print(json.dumps({"tasks": task_count, "workers": worker_count, "seconds": seconds}))
        return
    for worker_id, result, error in collected:
        if error is None:
            print(f"Worker {worker_id}: Processed task, result: {result}")
        else:
            print(f"Worker {worker_id}: Error processing task: {error}")
    print("All tasks completed.")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--bench", action="store_true", help="print timings as JSON")
    args = parser.parse_args()
    run(args.tasks, args.workers, args.bench)


if __name__ == "__main__":
    main()
