//! Per-stream order: one publication of a stream is delivered at a time, in the order the
//! publishers got the stream's turn (tokio's mutex is fair, first come first served). A stream
//! that nobody publishes to holds no memory.

use crate::engine::Stream;
use rustc_hash::FxHashMap;
use std::sync::{Arc, Mutex};

/// The turn of one stream; held across the delivery of a publication.
#[derive(Default)]
pub(super) struct Slot {
    pub order: tokio::sync::Mutex<()>,
}

#[derive(Default)]
pub(super) struct Streams {
    slots: Mutex<FxHashMap<Stream, Arc<Slot>>>,
}

impl Streams {
    fn lock(&self) -> std::sync::MutexGuard<'_, FxHashMap<Stream, Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The slot of `stream`, created on first use.
    pub fn slot(&self, stream: &Stream) -> Arc<Slot> {
        let mut slots = self.lock();
        if let Some(s) = slots.get(stream) {
            return s.clone();
        }
        let s = Arc::new(Slot::default());
        slots.insert(stream.clone(), s.clone());
        s
    }

    /// Gives a slot back; forgets it when no other publisher holds it. Clones are made only
    /// under the map's lock, so a count of two (the map and ours) means nobody else has it.
    pub fn release(&self, stream: &Stream, slot: Arc<Slot>) {
        let mut slots = self.lock();
        if Arc::strong_count(&slot) == 2 {
            slots.remove(stream);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}
