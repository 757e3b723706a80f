//! `sectors terminate`: a Proving sector's TerminateSectors, sent from `[Addresses]
//! TerminateControl` (then the worker, then the owner) with MaxTerminateGasFee, once its
//! deadline is neither open nor next (the miner actor refuses changes to those); when it
//! lands, the sector's files are removed (Removing, Removed).

use api::tasks::TaskError;
use lotus::miner::{Method, SectorsDeclaration, TerminateSectorsParams};

use super::{Consumed, Pipeline};
use crate::fsm::{Event, Sector};
use crate::funds::{Payment, Use};

impl Pipeline {
    /// The Terminating step.
    pub(super) async fn terminate(&self, s: &Sector) -> (Option<Event>, Consumed) {
        match self.terminate_now(s).await {
            Ok(Ok(ev)) => (Some(ev), None),
            Ok(Err(why)) => self.wait_saying(s, why).await,
            Err(e) => (Some(Event::Failed(e)), None),
        }
    }

    /// The event of the step, or why it waits.
    async fn terminate_now(&self, s: &Sector) -> Result<Result<Event, String>, TaskError> {
        let sector = s.sector;
        let n = sector.number;
        // Sent before (a restart): that message, not a second.
        if let Some(id) = self.chain.pending(Method::TerminateSectors, n).await? {
            return Ok(Ok(Event::TerminateSent(id)));
        }
        let head = self.chain.head().await?.height;
        let Some(a) = self.chain.active_sector(&sector).await? else {
            return Ok(Ok(Event::TerminateLanded(head)));
        };
        let cur = self.chain.proving_deadline(sector.miner).await?;
        let window = self.chain.wpost_window();
        // The message lands from the next epoch on, within a few: its deadline must not be
        // busy at any of them.
        let from = [head + 1, head + 3]
            .into_iter()
            .filter_map(|at| chain::deadline::busy_until(a.deadline, &cur, window, at))
            .max();
        if let Some(from) = from {
            return Ok(Err(format!(
                "sector {n} is in deadline {}, open now or next: the miner actor takes its \
                 termination from epoch {from}",
                a.deadline
            )));
        }
        let pay = Payment::plan(
            &*self.chain,
            &self.policy.collateral,
            format!("termination of sector {n}"),
            "value",
            chain::TokenAmount::default(),
            (self.policy.fees.terminate.clone(), "MaxTerminateGasFee"),
        )
        .await?;
        let from = match pay
            .sender(&*self.chain, &self.policy.senders, Use::Terminate)
            .await?
        {
            Ok(from) => from,
            Err(why) => return Ok(Err(why)),
        };
        let call = chain::Call::of(&TerminateSectorsParams {
            terminations: vec![SectorsDeclaration {
                deadline: a.deadline,
                partition: a.partition as u64,
                sectors: lotus::miner::sectors_bitfield([n]),
            }],
        })
        .map_err(|e| TaskError::temporary(e.to_string()))?;
        let id = self
            .chain
            .send(from, call, pay.value, pay.max_fee)
            .await
            .map_err(|e| TaskError::temporary(format!("sending the termination: {e}")))?;
        Ok(Ok(Event::TerminateSent(id)))
    }
}
