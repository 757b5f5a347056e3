//! Response bodies: a prebuilt buffer for the small answers, and for `/metrics` the
//! exposition streamed piece by piece, gzipped as it goes when the client accepts it.
//!
//! A streamed body renders the next piece ([`PIECE`] bytes of text) when hyper asks for
//! more, so a scrape holds a few pieces (its own and those hyper has queued for the
//! socket, at most about 400 KB) rather than the whole exposition, and memory does not
//! grow with the store or with concurrent scrapes. Each piece ends the task's turn
//! (tokio's cooperative budget, see [`end_turn`]): hyper would otherwise ask for the next
//! piece at once, and a fast client would keep a worker rendering for the whole scrape,
//! while `/healthz`, other scrapes and the polls wait.
//!
//! Pieces are buffers from a small pool that come back when hyper drops them after
//! writing them, so a scrape allocates a few buffers however long the exposition is.

use std::convert::Infallible;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use flate2::Compression;
use flate2::write::GzEncoder;
use hyper::body::{Frame, SizeHint};

/// Bytes of text rendered per piece: large enough that a piece's overhead (a chunk
/// header, a task turn) is small against rendering it, small enough to stay in the CPU
/// caches between rendering and sending (see the README's Performance section).
pub const PIECE: usize = 64 * 1024;

/// The gzip level of `/metrics`, chosen by measurement (the README's Performance
/// section): the fastest keeps a gzip scrape's time close to a plain one's, and its ratio
/// is within a few percent of the default level's on expositions.
pub const GZIP_LEVEL: u32 = 1;

/// Compressed bytes gathered before they are sent as one chunk (a piece of text
/// compresses to a few KB).
const GZIP_CHUNK: usize = 16 * 1024;

/// What the gzip encoder may add to a chunk at once (flate2 passes its output on in
/// buffers of up to 32 KiB), so that a chunk's buffer never grows.
const GZIP_SPILL: usize = 32 * 1024;

/// Spare buffers a streamed body keeps for its next pieces.
const SPARE: usize = 8;

/// tokio's cooperative budget per task turn (`tokio::task::coop`).
const TURN_BUDGET: usize = 128;

/// An exposition rendered piece by piece (for the exporter, a `metrics::Scrape`: one
/// snapshot of the store).
pub trait Exposition: Send {
    /// Appends the next piece to `out`, until it holds at least `until` bytes (it may go
    /// a little past, to the end of a group's or topic's series); `false` once the
    /// exposition is complete.
    fn fill(&mut self, out: &mut Vec<u8>, until: usize) -> bool;
}

/// An exposition rendered beforehand, served as one piece (stub backends in tests).
pub struct Prerendered(Option<Vec<u8>>);

impl Prerendered {
    pub fn new(text: impl Into<Vec<u8>>) -> Prerendered {
        Prerendered(Some(text.into()))
    }
}

impl Exposition for Prerendered {
    fn fill(&mut self, out: &mut Vec<u8>, _until: usize) -> bool {
        if let Some(text) = self.0.take() {
            out.extend_from_slice(&text);
        }
        false
    }
}

/// Gzips a whole exposition at the level `/metrics` uses.
pub fn gzip(text: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(
        Vec::with_capacity(text.len() / 8),
        Compression::new(GZIP_LEVEL),
    );
    // Writing into a Vec cannot fail.
    let _ = gz.write_all(text);
    gz.finish().unwrap_or_default()
}

/// A response body.
pub struct Body(Kind);

enum Kind {
    /// A prebuilt buffer; `None` once sent (or when empty).
    Full(Option<Bytes>),
    Stream(Box<Stream>),
}

impl Body {
    /// A prebuilt body, sent with its length.
    pub fn full(bytes: impl Into<Bytes>) -> Body {
        let bytes = bytes.into();
        Body(Kind::Full((!bytes.is_empty()).then_some(bytes)))
    }

    /// An exposition rendered as it is sent (chunked), gzipped when `gzip`.
    pub fn stream(exposition: Box<dyn Exposition>, gzip: bool) -> Body {
        let pool = Arc::new(Pool {
            spare: Mutex::new(Vec::new()),
            capacity: if gzip {
                GZIP_CHUNK + GZIP_SPILL
            } else {
                PIECE + PIECE / 8
            },
        });
        let gzip = gzip.then(|| {
            Box::new(Gzip {
                encoder: GzEncoder::new(pool.take(), Compression::new(GZIP_LEVEL)),
                text: Vec::with_capacity(PIECE + PIECE / 8),
            })
        });
        Body(Kind::Stream(Box::new(Stream {
            exposition,
            gzip,
            pool,
            done: false,
        })))
    }
}

impl hyper::body::Body for Body {
    type Data = Chunk;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Chunk>, Infallible>>> {
        let chunk = match &mut self.get_mut().0 {
            Kind::Full(bytes) => bytes.take().map(Chunk::Shared),
            Kind::Stream(stream) => ready!(stream.poll_chunk(cx)),
        };
        Poll::Ready(chunk.map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Stream(stream) => stream.done,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Stream(_) => SizeHint::default(),
        }
    }
}

/// A streamed exposition: what renders it, the gzip state, the buffers.
struct Stream {
    exposition: Box<dyn Exposition>,
    gzip: Option<Box<Gzip>>,
    pool: Arc<Pool>,
    /// Everything was rendered and handed to hyper.
    done: bool,
}

/// Streamed gzip: the encoder, writing into a buffer that is sent whenever it holds
/// [`GZIP_CHUNK`] bytes, and the piece of text being compressed.
struct Gzip {
    encoder: GzEncoder<Vec<u8>>,
    text: Vec<u8>,
}

impl Stream {
    /// The next chunk, a piece rendered per turn of the task.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            let coop = ready!(tokio::task::coop::poll_proceed(cx));
            let chunk = self.piece();
            coop.made_progress();
            end_turn(cx);
            if chunk.is_some() {
                return Poll::Ready(chunk);
            }
        }
    }

    /// Renders the next piece; `None` when there is nothing to send yet (gzip output
    /// still gathering, or an empty last piece).
    fn piece(&mut self) -> Option<Chunk> {
        let out = match &mut self.gzip {
            None => {
                let mut buf = self.pool.take();
                self.done = !self.exposition.fill(&mut buf, PIECE);
                buf
            }
            Some(gz) => {
                gz.text.clear();
                self.done = !self.exposition.fill(&mut gz.text, PIECE);
                // Writing into a Vec cannot fail.
                let _ = gz.encoder.write_all(&gz.text);
                if self.done {
                    let _ = gz.encoder.try_finish();
                } else if gz.encoder.get_ref().len() < GZIP_CHUNK {
                    return None;
                }
                std::mem::replace(gz.encoder.get_mut(), self.pool.take())
            }
        };
        if out.is_empty() {
            self.pool.put(out);
            return None;
        }
        Some(Chunk::Pooled(Pooled {
            buf: out,
            pos: 0,
            pool: self.pool.clone(),
        }))
    }
}

/// Ends the task's turn by spending what is left of its cooperative budget: hyper asks
/// for the next piece within the same turn otherwise (it loops while it can buffer), and
/// the next piece now waits until the scheduler has run the other tasks. hyper's own
/// socket writes then also wait for the next turn, when it flushes what it has queued.
/// Outside a tokio runtime the budget is unlimited; the bound keeps this finite.
fn end_turn(cx: &mut Context<'_>) {
    for _ in 0..TURN_BUDGET {
        match tokio::task::coop::poll_proceed(cx) {
            Poll::Ready(spent) => spent.made_progress(),
            Poll::Pending => return,
        }
    }
}

/// Spare buffers of one streamed body, shared with the chunks that carry them.
struct Pool {
    spare: Mutex<Vec<Vec<u8>>>,
    /// The capacity of a new buffer.
    capacity: usize,
}

impl Pool {
    fn take(&self) -> Vec<u8> {
        self.spare
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.capacity))
    }

    fn put(&self, mut buf: Vec<u8>) {
        buf.clear();
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        if spare.len() < SPARE {
            spare.push(buf);
        }
    }
}

/// A piece of a response body as hyper writes it.
pub enum Chunk {
    Shared(Bytes),
    Pooled(Pooled),
}

/// A pooled buffer: back to its pool when dropped.
pub struct Pooled {
    buf: Vec<u8>,
    pos: usize,
    pool: Arc<Pool>,
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.put(std::mem::take(&mut self.buf));
    }
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunk")
            .field("remaining", &self.remaining())
            .finish()
    }
}

impl Buf for Chunk {
    fn remaining(&self) -> usize {
        match self {
            Chunk::Shared(b) => b.remaining(),
            Chunk::Pooled(p) => p.buf.len() - p.pos,
        }
    }

    fn chunk(&self) -> &[u8] {
        match self {
            Chunk::Shared(b) => b.chunk(),
            Chunk::Pooled(p) => &p.buf[p.pos..],
        }
    }

    fn advance(&mut self, n: usize) {
        match self {
            Chunk::Shared(b) => b.advance(n),
            Chunk::Pooled(p) => {
                assert!(n <= p.buf.len() - p.pos, "advance past the end of a chunk");
                p.pos += n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Body as _;
    use std::io::Read;
    use std::task::Waker;

    /// Lines `m{n="i"} i` for i below `lines`, a few at a time.
    struct Lines {
        next: usize,
        lines: usize,
    }

    impl Exposition for Lines {
        fn fill(&mut self, out: &mut Vec<u8>, until: usize) -> bool {
            while self.next < self.lines && out.len() < until {
                // A unit of three lines, so pieces end a little past `until`.
                for _ in 0..3 {
                    let i = self.next;
                    out.extend_from_slice(format!("m{{n=\"{i}\"}} {i}\n").as_bytes());
                    self.next += 1;
                }
            }
            self.next < self.lines
        }
    }

    fn text(lines: usize) -> Vec<u8> {
        let mut all = Lines { next: 0, lines };
        let mut out = Vec::new();
        while all.fill(&mut out, usize::MAX) {}
        out
    }

    /// The chunks of a body, polled as hyper does (outside a runtime: no turn ends).
    fn chunks(mut body: Body) -> Vec<Vec<u8>> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut out = Vec::new();
        loop {
            match Pin::new(&mut body).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let mut data = frame.into_data().unwrap_or_else(|_| panic!("data"));
                    out.push(data.copy_to_bytes(data.remaining()).to_vec());
                }
                Poll::Ready(None) => break,
                Poll::Pending => panic!("pending outside a runtime"),
            }
        }
        assert!(body.is_end_stream());
        out
    }

    #[test]
    fn a_streamed_exposition_is_sent_in_pieces() {
        let lines = 60_000;
        let body = Body::stream(Box::new(Lines { next: 0, lines }), false);
        assert_eq!(body.size_hint().exact(), None, "chunked");
        let chunks = chunks(body);
        assert_eq!(chunks.concat(), text(lines));
        assert!(chunks.len() > 10, "{} pieces", chunks.len());
        for c in &chunks[..chunks.len() - 1] {
            assert!((PIECE..PIECE + 100).contains(&c.len()), "{}", c.len());
        }
    }

    #[test]
    fn a_gzipped_exposition_is_compressed_as_it_goes() {
        let lines = 200_000;
        let chunks = chunks(Body::stream(Box::new(Lines { next: 0, lines }), true));
        assert!(chunks.len() > 2, "{} chunks", chunks.len());
        for c in &chunks[..chunks.len() - 1] {
            assert!(c.len() >= GZIP_CHUNK, "{}", c.len());
        }
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&chunks.concat()[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, text(lines));
        // The whole-buffer gzip of the benchmark floor reads the same.
        let mut whole = Vec::new();
        flate2::read::GzDecoder::new(&gzip(&plain)[..])
            .read_to_end(&mut whole)
            .unwrap();
        assert_eq!(whole, plain);
    }

    #[test]
    fn small_bodies_have_a_length() {
        let body = Body::full("ok\n");
        assert_eq!(body.size_hint().exact(), Some(3));
        assert_eq!(chunks(body), [b"ok\n".to_vec()]);
        let empty = Body::full("");
        assert!(empty.is_end_stream());
        assert_eq!(empty.size_hint().exact(), Some(0));
    }
}
