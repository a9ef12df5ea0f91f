//! Capturing the library's log lines in a test.
//!
//! One process-wide subscriber routes each event to the capture of the thread it happens
//! on. A thread-local subscriber per test (`set_default`) races with tracing's global
//! cache of which call sites are enabled (tokio-rs/tracing#3611: a thread with no
//! subscriber that reaches a call site first can disable it for every thread) while other
//! tests run in parallel, and then loses events at random.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// Log lines written on this thread while a guard lives (tests here run the library on
/// their own thread, so its events are all there).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<Logs>> = const { std::cell::RefCell::new(None) };
}

/// The global subscriber's writer: this thread's capture, if any.
struct ToThisThread;

impl Write for ToThisThread {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| match &mut *c.borrow_mut() {
            Some(logs) => logs.write(buf),
            None => Ok(buf.len()),
        })
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Ends a capture: the thread's previous capture (if any) is back.
pub struct CaptureGuard(Option<Logs>);

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        let previous = self.0.take();
        CAPTURE.with(|c| *c.borrow_mut() = previous);
    }
}

impl Logs {
    pub fn capture() -> (Self, CaptureGuard) {
        static GLOBAL: std::sync::Once = std::sync::Once::new();
        GLOBAL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::INFO)
                .with_ansi(false)
                .with_writer(|| ToThisThread)
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in the test process");
        });
        let logs = Self::default();
        let previous = CAPTURE.with(|c| c.borrow_mut().replace(logs.clone()));
        (logs, CaptureGuard(previous))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}
