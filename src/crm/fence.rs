//! The proof, taken right before a CRM call, that the work in hand is still this worker's
//! for long enough that no other worker can take it over while the call is in flight.
//!
//! A renewal of the job's lease before delivery is not enough on its own: the outbox
//! writes between that renewal and the CRM call can each wait seconds for a store that is
//! recovering, the lease runs out meanwhile, and a second worker writes the same record.

use futures::future::BoxFuture;

use crate::store::StoreError;

pub trait Fence: Sync {
    /// Ok when the lease is fresh enough for a CRM call to start now; renews it first when
    /// it is not. `StoreError::LeaseLost` when another worker holds the work.
    fn hold(&self) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// For effects keyed by something other than a leased job (a trigger's firing at rest,
/// claimed once in the store): the outbox key alone keeps them single.
pub struct Unfenced;

impl Fence for Unfenced {
    fn hold(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
}
