//! A core's membership task built from the plan (on the core's executor:
//! it holds `Rc`s and a NATS connection of that core).

use super::owned::Ownership;
use super::run::CoreMembership;
use crate::config::plan::{CorePlan, Plan};
use crate::metrics::cluster::ClusterStats;
use crate::model::{DataType, VenueId};
use std::rc::Rc;
use std::sync::Arc;

/// The instance's shared cluster stats (membership mode only).
pub fn stats(plan: &Plan) -> Option<Arc<ClusterStats>> {
    plan.cluster.membership.as_ref()?;
    let symbols = plan
        .venues
        .iter()
        .map(|v| (v.id, v.symbols.len() as u32))
        .collect();
    Some(Arc::new(ClusterStats::new(
        plan.cluster.replicas,
        plan.cores.len(),
        symbols,
    )))
}

/// Core `core`'s membership task, or `None` in static mode.
pub fn core_membership(
    plan: &Plan,
    core: &CorePlan,
    stats: Option<Arc<ClusterStats>>,
) -> Option<Rc<CoreMembership>> {
    let m = plan.cluster.membership.clone()?;
    let nats = plan.nats.as_ref()?;
    let stats = stats?;
    // (venue, symbol, connections, streams) and the WebSocket types, per symbol.
    let mut slots: Vec<(VenueId, String, u32, u32)> = Vec::new();
    let mut types: Vec<Vec<DataType>> = Vec::new();
    fn slot(
        slots: &mut Vec<(VenueId, String, u32, u32)>,
        types: &mut Vec<Vec<DataType>>,
        venue: VenueId,
        symbol: &str,
    ) -> usize {
        match slots
            .iter()
            .position(|(v, s, _, _)| *v == venue && s == symbol)
        {
            Some(i) => i,
            None => {
                slots.push((venue, symbol.to_string(), 0, 0));
                types.push(Vec::new());
                slots.len() - 1
            }
        }
    }
    for c in &core.connections {
        // Membership plans connections of one symbol each.
        let Some(first) = c.streams.first() else {
            continue;
        };
        let i = slot(&mut slots, &mut types, c.venue, &first.symbol);
        slots[i].2 += 1;
        slots[i].3 += c.streams.len() as u32;
        for s in &c.streams {
            if !types[i].contains(&s.data_type) {
                types[i].push(s.data_type);
            }
        }
    }
    for p in &core.polls {
        let i = slot(&mut slots, &mut types, p.venue, &p.symbol);
        slots[i].3 += 1;
    }
    let owned = Rc::new(Ownership::new(slots, false));
    let control = crate::sink::nats::control::Control::new(
        &nats.config,
        &format!(
            "marketprism-cluster-{}-core{}",
            plan.cluster.instance, core.shard
        ),
    );
    Some(Rc::new(CoreMembership::new(
        plan.cluster.instance,
        plan.cluster.replicas,
        m,
        core.shard,
        owned,
        control,
        stats,
        types,
    )))
}
