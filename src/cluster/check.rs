//! `check-config --connect` in membership mode: the members the bucket
//! holds now and this instance's share among them (nothing is written).

use super::members::parse_entry;
use crate::config::assign::in_top_k;
use crate::config::plan::Plan;
use std::time::Duration;

/// The bucket's members and this instance's share as lines of text;
/// `None` in static mode, `Err` when the bucket cannot be read.
pub fn describe(plan: &Plan, timeout: Duration) -> Option<Result<String, String>> {
    let m = plan.cluster.membership.as_ref()?;
    let nats = plan.nats.as_ref()?.config.clone();
    let bucket = m.bucket.clone();
    let read = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("cluster-check")
        .io_memory(256 << 10)
        .blocking_thread_pool_placement(glommio::PoolPlacement::Unbound(1))
        .spawn(move || async move {
            let c = crate::sink::nats::control::Control::new(&nats, "marketprism-check-config");
            let entries =
                crate::sink::nats::conn::with_timeout(timeout, "reading the bucket", async {
                    c.kv_entries(&bucket)
                        .await
                        .map_err(|e| crate::sink::nats::conn::ConnError::Config(e.to_string()))
                })
                .await;
            entries.map_err(|e| e.to_string()).map(|list| {
                list.iter()
                    .filter_map(|e| parse_entry(&e.key, e.seq, &e.value))
                    .collect::<Vec<_>>()
            })
        });
    let entries = match read {
        Ok(h) => match h.join() {
            Ok(r) => r,
            Err(e) => Err(format!("cluster check executor: {e}")),
        },
        Err(e) => Err(format!("starting the cluster check executor: {e}")),
    };
    Some(entries.map(|entries| {
        let me = plan.cluster.instance;
        let mut members: Vec<u32> = entries.iter().map(|e| e.id).collect();
        if !members.contains(&me) {
            members.push(me);
        }
        let listed: Vec<String> = entries
            .iter()
            .map(|e| format!("{}{}", e.id, if e.warm { "" } else { " (starting)" }))
            .collect();
        let mut out = format!(
            "cluster bucket {}: members [{}]; with them and this instance ({me}), replicas {}:\n",
            m.bucket,
            listed.join(", "),
            plan.cluster.replicas
        );
        for v in &plan.venues {
            let mine: Vec<&str> = v
                .symbols
                .iter()
                .filter(|s| in_top_k(v.id, s, &members, plan.cluster.replicas, me))
                .map(String::as_str)
                .collect();
            out.push_str(&format!(
                "  {}: {} of {} symbols here: {}\n",
                v.id,
                mine.len(),
                v.symbols.len(),
                mine.join(" ")
            ));
        }
        out
    }))
}
