//! Worker threads kept from one parallel batch to the next ([`Workers`]): each runs a job that borrows the
//! caller's data (its chunk of the batch, its thread's predictor) and the call returns only once every job has
//! finished, as a scoped thread's would, without starting and joining a thread per call.
//!
//! Starting and joining threads for every call cost more than a small batch's work (`benches/README.md`, session
//! 38, the `repeat_prediction` rows). A worker waits for its next job spinning for a short while (the next batch of
//! a loop is usually already coming), then parked.

use super::lock;
use std::any::Any;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

/// How long a worker, or the caller waiting for the workers, spins before it parks.
const SPIN: Duration = Duration::from_micros(100);

/// A job as the caller lends it to a worker.
pub(crate) type Job<'a> = &'a mut (dyn FnMut() + Send + 'a);

/// Worker threads, started as the first call that needs them runs and stopped when this is dropped.
#[derive(Debug, Default)]
pub(crate) struct Workers {
    workers: Vec<Worker>,
}

impl Workers {
    /// Runs the first job on the calling thread and each other one on a worker of its own, and returns once all
    /// have finished. A job that panics has its panic resumed here, after every job has finished. Where a worker
    /// cannot be started (the system refuses a thread), its job runs on the calling thread.
    pub(crate) fn run(&mut self, jobs: &mut [Job<'_>]) {
        let Some((first, rest)) = jobs.split_first_mut() else { return };
        while self.workers.len() < rest.len() {
            match Worker::start() {
                Some(worker) => self.workers.push(worker),
                None => break,
            }
        }
        let (lent, kept) = rest.split_at_mut(rest.len().min(self.workers.len()));
        // From here until `wait` returns, the lent jobs' borrows are in use by the workers; the guard waits for
        // them however this call ends (a panic of the jobs run here unwinds through it).
        let mut guard = Lent { workers: &self.workers[..0], caller: thread::current() };
        for (worker, job) in self.workers.iter().zip(lent.iter_mut()) {
            worker.post(&mut **job, &guard.caller);
            guard.workers = &self.workers[..guard.workers.len() + 1];
        }
        first();
        kept.iter_mut().for_each(|job| job());
        if let Some(panic) = guard.wait() {
            std::panic::resume_unwind(panic);
        }
    }
}

/// The workers holding jobs of the running call; dropping it waits for them.
struct Lent<'w> {
    workers: &'w [Worker],
    caller: Thread,
}

impl Lent<'_> {
    /// Waits for every lent job to finish; the first panic among them, if any.
    fn wait(&mut self) -> Option<Box<dyn Any + Send>> {
        let workers = core::mem::take(&mut self.workers);
        workers.iter().filter_map(|w| w.mailbox.wait_done()).reduce(|first, _| first)
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        // Unwinding from a job run by the caller: the workers' jobs still borrow its data; their panics, if
        // any, give way to the one already unwinding.
        drop(self.wait());
    }
}

/// One worker thread and its mailbox.
#[derive(Debug)]
struct Worker {
    mailbox: Arc<Mailbox>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// A new worker, or `None` where the system refuses a thread.
    fn start() -> Option<Self> {
        let mailbox = Arc::new(Mailbox::default());
        let theirs = Arc::clone(&mailbox);
        let thread = thread::Builder::new().name("bnn-worker".into()).spawn(move || theirs.serve()).ok()?;
        Some(Self { mailbox, thread: Some(thread) })
    }

    /// Hands `job` to the worker, which unparks `caller` once it has run it.
    fn post(&self, job: Job<'_>, caller: &Thread) {
        // SAFETY: the job's borrows outlive its use: `Workers::run` does not return, nor unwind past its `Lent`
        // guard, before `wait_done` has seen this worker finish the job, and the worker never touches the job
        // after it reports it done.
        let job = unsafe { core::mem::transmute::<Job<'_>, Job<'static>>(job) };
        let mailbox = &self.mailbox;
        *lock(&mailbox.job) = Some(Posted { job: job as *mut _, caller: caller.clone() });
        mailbox.state.store(POSTED, Ordering::Release);
        if let Some(thread) = &self.thread {
            thread.thread().unpark();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.mailbox.state.store(EXIT, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            // A worker's panics are caught around its jobs; its loop itself does not panic.
            drop(thread.join());
        }
    }
}

/// A job lent to a worker, and the thread to unpark when it is done.
struct Posted {
    job: *mut (dyn FnMut() + Send + 'static),
    caller: Thread,
}

// SAFETY: the job is `Send`, and only the worker it is posted to calls it, while the caller waits.
unsafe impl Send for Posted {}

const IDLE: u8 = 0;
const POSTED: u8 = 1;
const DONE: u8 = 2;
const EXIT: u8 = 3;

/// What passes between the caller and one worker: `state` says whose turn it is.
#[derive(Default)]
struct Mailbox {
    state: AtomicU8,
    job: Mutex<Option<Posted>>,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

impl core::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mailbox").field("state", &self.state).finish_non_exhaustive()
    }
}

impl Mailbox {
    /// The worker's loop: waits for a job, runs it, reports it done; returns when told to exit.
    fn serve(&self) {
        loop {
            match wait_for(&self.state, |s| s == POSTED || s == EXIT) {
                EXIT => return,
                _ => {
                    let Some(Posted { job, caller }) = lock(&self.job).take() else { continue };
                    // SAFETY: the caller keeps the job's borrows alive until it sees `DONE` (`Worker::post`), and
                    // no one else calls the job meanwhile.
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { (*job)() }));
                    *lock(&self.panic) = result.err();
                    self.state.store(DONE, Ordering::Release);
                    caller.unpark();
                }
            }
        }
    }

    /// Waits for the posted job to finish; its panic, if it panicked.
    fn wait_done(&self) -> Option<Box<dyn Any + Send>> {
        wait_for(&self.state, |s| s == DONE);
        self.state.store(IDLE, Ordering::Relaxed);
        lock(&self.panic).take()
    }
}

/// Waits until `state` holds a value `ready` accepts, spinning for [`SPIN`] and then parked (whoever changes the
/// state then unparks the waiting thread; an unpark that comes first makes the next park return at once); that
/// value.
fn wait_for(state: &AtomicU8, ready: impl Fn(u8) -> bool) -> u8 {
    let start = Instant::now();
    loop {
        let s = state.load(Ordering::Acquire);
        if ready(s) {
            return s;
        }
        if start.elapsed() < SPIN {
            core::hint::spin_loop();
        } else {
            thread::park();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Jobs that add `k + 1` to their own counter, `rounds` times each.
    fn count(workers: &mut Workers, counters: &mut [u64], rounds: usize) {
        for _ in 0..rounds {
            let mut jobs: Vec<_> = counters.iter_mut().enumerate().map(|(k, c)| move || *c += k as u64 + 1).collect();
            let mut jobs: Vec<Job<'_>> = jobs.iter_mut().map(|job| job as Job<'_>).collect();
            workers.run(&mut jobs);
        }
    }

    #[test]
    fn every_job_runs_once_a_call_on_the_borrowed_data_and_the_workers_are_kept() {
        let mut workers = Workers::default();
        workers.run(&mut []);
        let mut counters = vec![0u64; 4];
        count(&mut workers, &mut counters, 3);
        assert_eq!(counters, [3, 6, 9, 12]);
        assert_eq!(workers.workers.len(), 3, "one worker per job but the first, kept");
        // Fewer jobs use the first workers; more start another.
        count(&mut workers, &mut counters[..2], 1);
        let mut more = vec![0u64; 5];
        count(&mut workers, &mut more, 2);
        assert_eq!(
            (&counters[..], &more[..], workers.workers.len()),
            (&[4u64, 8, 9, 12][..], &[2u64, 4, 6, 8, 10][..], 4)
        );
    }

    #[test]
    fn a_panicking_job_panics_the_call_after_every_job_has_finished() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
        let mut workers = Workers::default();
        // The caller's own job panics, then a worker's.
        for panicking in [0, 2] {
            let (started, released, returned) = (AtomicUsize::new(0), AtomicBool::new(false), AtomicBool::new(false));
            let early = thread::scope(|scope| {
                // Holds the other jobs until the call has had time to return without them (it must not).
                let watcher = scope.spawn(|| {
                    while started.load(SeqCst) < 2 {
                        thread::yield_now();
                    }
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_millis(300) && !returned.load(SeqCst) {
                        thread::yield_now();
                    }
                    let early = returned.load(SeqCst);
                    released.store(true, SeqCst);
                    early
                });
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let job = |k: usize| {
                        let (started, released) = (&started, &released);
                        move || {
                            if k == panicking {
                                panic!("job {k}");
                            }
                            started.fetch_add(1, SeqCst);
                            while !released.load(SeqCst) {
                                thread::yield_now();
                            }
                        }
                    };
                    let mut jobs: Vec<_> = (0..3).map(job).collect();
                    let mut jobs: Vec<Job<'_>> = jobs.iter_mut().map(|job| job as Job<'_>).collect();
                    workers.run(&mut jobs);
                }));
                returned.store(true, SeqCst);
                let panic = result.unwrap_err();
                assert_eq!(
                    panic.downcast_ref::<String>().map(String::as_str),
                    Some(format!("job {panicking}").as_str())
                );
                watcher.join().unwrap()
            });
            assert!(!early, "job {panicking} panicked and the call returned while a worker still ran its job");
        }
        // The workers serve the next call.
        let mut counters = vec![0u64; 3];
        count(&mut workers, &mut counters, 1);
        assert_eq!(counters, [1, 2, 3]);
    }
}
