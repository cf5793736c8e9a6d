//! Which channels exist: made by `channel/add` (explicit: they stay when empty), or because a
//! socket is in them (implicit: they vanish with their last member, where the original kept
//! them forever: spec 7.12).

use crate::error::EngineError;
use rustc_hash::FxHashMap;
use std::sync::Arc;

#[derive(Default)]
struct Channel {
    explicit: bool,
    /// Has a member on this node.
    open: bool,
}

#[derive(Default)]
pub(super) struct Channels {
    map: FxHashMap<Arc<str>, Channel>,
}

impl Channels {
    /// `channel/add`.
    pub fn add(&mut self, name: &str) -> Result<(), EngineError> {
        if self.map.contains_key(name) {
            return Err(EngineError::ChannelExists(name.to_owned()));
        }
        self.map.insert(Arc::from(name), Channel { explicit: true, open: false });
        Ok(())
    }

    /// `channel/remove`.
    pub fn remove(&mut self, name: &str) -> Result<(), EngineError> {
        self.map.remove(name).map(|_| ()).ok_or(EngineError::NoSuchChannel)
    }

    pub fn exists(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// The channel got its first member on this node.
    pub fn opened(&mut self, name: &Arc<str>) {
        self.map.entry(name.clone()).or_default().open = true;
    }

    /// The channel's last member on this node left.
    pub fn closed(&mut self, name: &str) {
        if let Some(c) = self.map.get_mut(name) {
            c.open = false;
            if !c.explicit {
                self.map.remove(name);
            }
        }
    }

    pub fn count(&self) -> usize {
        self.map.len()
    }
}
