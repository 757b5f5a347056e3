//! A benchmark aid, off unless the hidden `--web.bench-floor-path PATH` flag is given:
//! the exposition captured once and then served from that prebuilt buffer through the same
//! server, connection handling and headers as `/metrics`. `bench/run.sh` times it as the
//! floor of a scrape, the cost of sending the bytes without rendering or compressing them.
//!
//! `POST PATH` captures the current exposition (and its gzip, at the level `/metrics`
//! uses); `GET PATH` serves the capture, gzipped when the client accepts it, as
//! `/metrics` would. Nothing is captured before the first `POST`, so the flag alone costs
//! no memory. Basic auth, when configured, applies as on every other path.

use std::sync::Mutex;

use bytes::Bytes;

/// The captured exposition, plain and gzipped.
#[derive(Clone, Debug)]
pub struct Captured {
    pub plain: Bytes,
    pub gzip: Bytes,
}

/// The floor endpoint: its path and what was last captured.
#[derive(Debug)]
pub struct BenchFloor {
    pub path: String,
    captured: Mutex<Option<Captured>>,
}

impl BenchFloor {
    pub fn new(path: &str) -> BenchFloor {
        BenchFloor {
            path: path.to_string(),
            captured: Mutex::new(None),
        }
    }

    /// Keeps `plain` and its gzip (made by `gzip`) as the buffers to serve.
    pub fn capture(&self, plain: Vec<u8>, gzip: impl FnOnce(&[u8]) -> Vec<u8>) -> Captured {
        let gzip = Bytes::from(gzip(&plain));
        let captured = Captured {
            plain: Bytes::from(plain),
            gzip,
        };
        *self.captured.lock().unwrap_or_else(|e| e.into_inner()) = Some(captured.clone());
        captured
    }

    /// The buffer to serve (a reference-counted handle, never a copy), if captured.
    pub fn get(&self, gzip: bool) -> Option<Bytes> {
        let captured = self.captured.lock().unwrap_or_else(|e| e.into_inner());
        captured.as_ref().map(|c| {
            if gzip {
                c.gzip.clone()
            } else {
                c.plain.clone()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_nothing_until_captured_then_the_same_buffers() {
        let floor = BenchFloor::new("/-/bench/floor");
        assert!(floor.get(false).is_none() && floor.get(true).is_none());
        let captured = floor.capture(b"m 1\n".to_vec(), |b| b.repeat(2));
        assert_eq!(&captured.plain[..], b"m 1\n");
        let plain = floor.get(false).unwrap();
        assert_eq!(plain.as_ptr(), captured.plain.as_ptr(), "no copy");
        assert_eq!(&floor.get(true).unwrap()[..], b"m 1\nm 1\n");
    }
}
