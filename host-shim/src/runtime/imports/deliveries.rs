//! `deliveries`: the plugin hands over jobs; the host checks and stores them
//! before it sends anything (`crate::queue`; the engine, `crate::deliveries`,
//! does the rest) and redelivers on request, signed as stored or with the
//! signing the plugin passes now.

use super::egress::{request_from_wit, signing_from_wit};
use crate::queue::{EnqueueError, NewJob};
use crate::runtime::CallState;
use crate::runtime::bindings::switchboard::plugin::deliveries::{Host, Job};
use crate::runtime::bindings::switchboard::plugin::egress::Signing;
use crate::runtime::bindings::types::Error;

fn not_granted() -> Error {
    Error::Forbidden("the plugin's manifest does not request the `egress` permission".into())
}

impl Host for CallState {
    async fn enqueue(&mut self, jobs: Vec<Job>) -> Result<(), Error> {
        if !self.grants.egress {
            return Err(not_granted());
        }
        let new = jobs
            .into_iter()
            .map(|job| NewJob {
                id: job.id,
                group: job.group,
                request: request_from_wit(job.request),
                signing: signing_from_wit(job.signing),
                continuation: job.continuation,
                max_attempts: job.max_attempts,
                max_age_seconds: job.max_age_seconds,
            })
            .collect();
        let write = self.blocking(move |app| {
            let settings = &app.config().delivery_settings;
            Ok(app.deliveries.enqueue(&app.store, settings, new).map_err(|e| match e {
                EnqueueError::Full { active, limit } => Error::Unavailable(format!(
                    "the delivery queue is full ({active} deliveries not done; DeliverySettings.MaxQueued is {limit})"
                )),
                EnqueueError::Invalid(why) => Error::Invalid(why),
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
        let signing = signing_from_wit(signing);
        let write = self.blocking(move |app| {
            let settings = &app.config().delivery_settings;
            app.deliveries
                .redeliver(&app.store, settings, &group, &id, &new_id, Some(signing))
        });
        Ok(write.await?)
    }
}
