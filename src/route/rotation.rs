//! Where a pool's round-robin position lives: in the store for live routing (so a restart
//! continues the rotation), in memory for dry runs and simulations (so they change nothing).

use std::collections::HashMap;
use std::sync::Mutex;

use futures::future::BoxFuture;

use crate::store::StoreError;

/// Hands out the next slot of a pool's rotation; each call returns a new slot.
pub trait Rotation: Send + Sync {
    fn next_slot<'a>(&'a self, pool: &'a str) -> BoxFuture<'a, Result<u64, StoreError>>;
}

/// A rotation that starts from given positions and never writes them anywhere.
#[derive(Debug, Default)]
pub struct LocalRotation {
    positions: Mutex<HashMap<String, u64>>,
}

impl LocalRotation {
    pub fn starting_at(positions: HashMap<String, u64>) -> Self {
        Self {
            positions: Mutex::new(positions),
        }
    }

    pub fn positions(&self) -> HashMap<String, u64> {
        self.positions.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

impl Rotation for LocalRotation {
    fn next_slot<'a>(&'a self, pool: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        let slot = match self.positions.lock() {
            Ok(mut p) => {
                let pos = p.entry(pool.to_string()).or_insert(0);
                let slot = *pos;
                *pos += 1;
                slot
            }
            Err(_) => 0,
        };
        Box::pin(std::future::ready(Ok(slot)))
    }
}
