//! Captures every `tracing` line a connector writes, at trace level, so the suite can
//! look for secrets in them.
//!
//! Two routes are needed because a subscriber set with `with_default`/`set_default` is
//! thread-local: the suite's own futures carry a scoped dispatcher (so events they emit
//! land here whatever the test binary installed), and a process-wide default is
//! installed once, if nobody else did, so events from tasks a connector spawns onto
//! other runtime threads are captured too. Both write into one shared buffer.

use std::io;
use std::sync::{Arc, Mutex, OnceLock};

use tracing::Dispatch;

/// The shared buffer every captured line is appended to.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn buffer() -> &'static Buffer {
    static BUFFER: OnceLock<Buffer> = OnceLock::new();
    BUFFER.get_or_init(|| {
        let buffer = Buffer::default();
        // Fails when the test binary already installed a global subscriber; the scoped
        // dispatcher then still captures everything the suite's own futures log.
        let _ = tracing::dispatcher::set_global_default(dispatch_into(buffer.clone()));
        buffer
    })
}

fn dispatch_into(buffer: Buffer) -> Dispatch {
    Dispatch::new(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(buffer)
            .finish(),
    )
}

/// A window onto the captured log: lines written from its creation on.
pub(crate) struct Capture {
    start: usize,
    dispatch: Dispatch,
}

impl Capture {
    /// Starts capturing.
    pub(crate) fn start() -> Self {
        let buffer = buffer();
        let start = buffer.0.lock().unwrap_or_else(|e| e.into_inner()).len();
        Capture { start, dispatch: dispatch_into(buffer.clone()) }
    }

    /// The dispatcher to run the connector's futures under.
    pub(crate) fn dispatch(&self) -> &Dispatch {
        &self.dispatch
    }

    /// Everything logged since [`Capture::start`], from every thread.
    pub(crate) fn text(&self) -> String {
        let bytes = buffer().0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(bytes.get(self.start..).unwrap_or_default()).into_owned()
    }
}
