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

/// Two operations queued behind each other on the thread `name`, which then leads: the batch holds both.
fn batch_of_two_on(writer: &Arc<Writer>, name: &'static str) {
    until_writer_sleeps(writer);
    let (first, first_answer) = probe();
    let (second, second_answer) = probe();
    on_thread(name, {
        let writer = writer.clone();
        move || {
            assert!(writer.submit_to_lead_later(first));
            assert!(writer.submit_to_lead_later(second));
            writer.lead_if_free();
        }
    });
    assert_eq!(first_answer.recv().unwrap(), name);
    assert_eq!(second_answer.recv().unwrap(), name);
}

/// Submits one operation from a thread named `name`, the way `submit` does; answers which thread ran it.
fn answered_on(
    writer: &Arc<Writer>,
    name: &'static str,
    submit: fn(&Writer, Box<dyn Job>),
) -> String {
    let (job, answer) = probe();
    on_thread(name, {
        let writer = writer.clone();
        move || submit(&writer, job)
    });
    answer.recv().unwrap()
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

    batch_of_two_on(&writer, "caller");

    // After a batch of two, a runtime worker only queues: the writer thread runs the batch.
    assert_eq!(
        answered_on(&writer, "worker", Writer::submit_from_worker),
        "writer"
    );

    // That batch held one operation: the next caller is alone and leads on its own thread, with no wake-up.
    until_writer_sleeps(&writer);
    assert_eq!(
        answered_on(&writer, "worker", Writer::submit_from_worker),
        "worker"
    );

    // A blocking caller leads whenever the connection is free, whatever the last batch held.
    batch_of_two_on(&writer, "caller");
    assert_eq!(
        answered_on(&writer, "blocking", Writer::submit_and_lead),
        "blocking"
    );

    writer.close();
    thread.join().unwrap();
    assert_eq!(Arc::strong_count(&writer), 1);
}
