//! Which thread runs a batch: a caller's, or the writer's own.

use std::sync::Arc;
use std::sync::mpsc;

use super::Writer;
use crate::error::AuthorityError;
use crate::store::job::{BatchFailure, Isolation, Job, KeyHint, Ran, Runner};
use crate::store::tx::Tx;

/// Answers every job of a batch at once, on the thread running the batch.
struct Answering;

impl Runner for Answering {
    fn run_batch(&mut self, jobs: Vec<Box<dyn Job>>) {
        for job in jobs {
            job.finish(None);
        }
    }

    fn recover(&mut self) {}
}

/// A job that tells which thread answered it.
struct Probe(mpsc::Sender<String>);

impl Job for Probe {
    fn tenant(&self) -> &str {
        "acme"
    }

    fn key(&self) -> Option<&KeyHint> {
        None
    }

    fn run(&mut self, _: &mut dyn Tx, _: Isolation) -> Ran {
        Ran::Done
    }

    fn finish(self: Box<Self>, _: Option<&BatchFailure>) {
        let name = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned();
        self.0.send(name).unwrap();
    }

    fn fail(self: Box<Self>, error: AuthorityError) {
        panic!("a probe failed: {error}");
    }
}

fn probe() -> (Box<dyn Job>, mpsc::Receiver<String>) {
    let (sender, receiver) = mpsc::channel();
    (Box::new(Probe(sender)), receiver)
}

/// Waits until the writer thread sleeps on its condition variable (it must be woken for anything queued).
fn until_writer_sleeps(writer: &Writer) {
    while !writer.queue().writer_idle {
        std::thread::yield_now();
    }
}

fn on_thread<R: Send + 'static>(name: &str, run: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(run)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn a_worker_leads_a_lone_callers_batch_and_leaves_queued_ones_to_the_writer_thread() {
    let writer = Writer::new(Box::new(Answering), true);
    let thread = {
        let writer = writer.clone();
        std::thread::Builder::new()
            .name("writer".into())
            .spawn(move || writer.run())
            .unwrap()
    };

    // Two callers queue behind each other; the first to lead takes both.
    until_writer_sleeps(&writer);
    let (first, first_answer) = probe();
    let (second, second_answer) = probe();
    on_thread("caller", {
        let writer = writer.clone();
        move || {
            assert!(writer.submit_to_lead_later(first));
            assert!(writer.submit_to_lead_later(second));
            writer.lead_if_free();
        }
    });
    assert_eq!(first_answer.recv().unwrap(), "caller");
    assert_eq!(second_answer.recv().unwrap(), "caller");

    // After a batch of two, a runtime worker only queues: the writer thread runs the batch.
    let (queued, queued_answer) = probe();
    on_thread("worker", {
        let writer = writer.clone();
        move || writer.submit_from_worker(queued)
    });
    assert_eq!(queued_answer.recv().unwrap(), "writer");

    // That batch held one operation: the next caller is alone and leads on its own thread, with no wake-up.
    until_writer_sleeps(&writer);
    let (alone, alone_answer) = probe();
    on_thread("worker", {
        let writer = writer.clone();
        move || writer.submit_from_worker(alone)
    });
    assert_eq!(alone_answer.recv().unwrap(), "worker");

    // A blocking caller leads whenever the connection is free, whatever the last batch held.
    until_writer_sleeps(&writer);
    let (a, a_answer) = probe();
    let (b, b_answer) = probe();
    on_thread("caller", {
        let writer = writer.clone();
        move || {
            assert!(writer.submit_to_lead_later(a));
            assert!(writer.submit_to_lead_later(b));
            writer.lead_if_free();
        }
    });
    assert_eq!(a_answer.recv().unwrap(), "caller");
    assert_eq!(b_answer.recv().unwrap(), "caller");
    let (blocking, blocking_answer) = probe();
    on_thread("blocking", {
        let writer = writer.clone();
        move || writer.submit_and_lead(blocking)
    });
    assert_eq!(blocking_answer.recv().unwrap(), "blocking");

    writer.close();
    thread.join().unwrap();
    assert_eq!(Arc::strong_count(&writer), 1);
}
