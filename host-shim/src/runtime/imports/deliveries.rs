//! `deliveries`: the plugin hands over jobs; the host stores them before it
//! sends anything (`crate::queue`; the engine, `crate::deliveries`, does the rest) and redelivers on request,
//! signed as stored or with the signing the plugin passes now.

use super::egress::{request_from_wit, signing_from_wit};
use crate::queue::{EnqueueError, NewJob};
use crate::runtime::CallState;
use crate::runtime::bindings::switchboard::plugin::deliveries::{Host, Job};
use crate::runtime::bindings::switchboard::plugin::egress::Signing;
use crate::runtime::bindings::types::Error;
use crate::store::valid_id;

/// Longest job list one call may hand over, and longest continuation.
const MAX_JOBS: usize = 1_000;
const MAX_CONTINUATION: usize = 64 << 10;

fn not_granted() -> Error {
    Error::Forbidden("the plugin's manifest does not request the `egress` permission".into())
}

impl Host for CallState {
    async fn enqueue(&mut self, jobs: Vec<Job>) -> Result<(), Error> {
        if !self.grants.egress {
            return Err(not_granted());
        }
        if jobs.len() > MAX_JOBS {
            return Err(Error::Invalid(format!("at most {MAX_JOBS} jobs per call")));
        }
        let mut new = Vec::with_capacity(jobs.len());
        for job in jobs {
            if !valid_id(&job.id) {
                return Err(Error::Invalid(format!(
                    "delivery id {:?} is not a 26-character id",
                    job.id
                )));
            }
            if job.continuation.len() > MAX_CONTINUATION {
                return Err(Error::Invalid("continuation longer than 64 KiB".into()));
            }
            new.push(NewJob {
                id: job.id,
                group: job.group,
                request: request_from_wit(job.request),
                signing: signing_from_wit(job.signing),
                continuation: job.continuation,
                max_attempts: job.max_attempts,
                max_age_seconds: job.max_age_seconds,
            });
        }
        let write = self.blocking(move |app| {
            let settings = &app.config().delivery_settings;
            Ok(app.deliveries.enqueue(&app.store, settings, new).map_err(|e| match e {
                EnqueueError::Full { active, limit } => Error::Unavailable(format!(
                    "the delivery queue is full ({active} deliveries not done; DeliverySettings.MaxQueued is {limit})"
                )),
                EnqueueError::Store(e) => Error::from(e),
            }))
        });
        write.await?
    }

    async fn cancel(&mut self, group: String) -> Result<u32, Error> {
        if !self.grants.egress {
            return Err(not_granted());
        }
        let write = self.blocking(move |app| app.store.cancel_deliveries(&group));
        Ok(write.await?)
    }

    async fn redeliver(&mut self, group: String, id: String, new_id: String) -> Result<(), Error> {
        if !self.grants.egress {
            return Err(not_granted());
        }
        if !valid_id(&new_id) {
            return Err(Error::Invalid(
                "the new delivery id is not a 26-character id".into(),
            ));
        }
        let write = self.blocking(move |app| {
            let settings = &app.config().delivery_settings;
            app.deliveries
                .redeliver(&app.store, settings, &group, &id, &new_id, None)
        });
        Ok(write.await?)
    }

    async fn redeliver_signed(
        &mut self,
        group: String,
        id: String,
        new_id: String,
        signing: Vec<Signing>,
    ) -> Result<(), Error> {
        if !self.grants.egress {
            return Err(not_granted());
        }
        if !valid_id(&new_id) {
            return Err(Error::Invalid(
                "the new delivery id is not a 26-character id".into(),
            ));
        }
        let signing = signing_from_wit(signing);
        let write = self.blocking(move |app| {
            let settings = &app.config().delivery_settings;
            app.deliveries
                .redeliver(&app.store, settings, &group, &id, &new_id, Some(signing))
        });
        Ok(write.await?)
    }
}
