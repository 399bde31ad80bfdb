//! Where the work runs: which instance collects a symbol, how streams are
//! packed into connections and connections spread over cores.

use super::plan::{ConnectionPlan, CorePlan, PollPlan, StreamSpec, VenuePlan};
use crate::model::VenueId;
use crate::venue;

/// Which instance (1-based) collects `symbol` of `venue`: rendezvous
/// (highest random weight) hashing, so adding an instance moves only the
/// symbols the new one wins (about 1/n of them) and every instance computes
/// the same answer from the config alone.
pub fn owner(venue: VenueId, symbol: &str, instances: u32) -> u32 {
    (1..=instances)
        .max_by_key(|&i| (weight(venue, symbol, i), std::cmp::Reverse(i)))
        .unwrap_or(1)
}

/// Whether `me` is among the `k` members of `members` that rank highest for
/// `symbol` of `venue` (rendezvous top-K; ties go to the lower number). No
/// allocation: run on every membership tick for every symbol.
pub fn in_top_k(venue: VenueId, symbol: &str, members: &[u32], k: u32, me: u32) -> bool {
    let mine = (weight(venue, symbol, me), std::cmp::Reverse(me));
    let above = members
        .iter()
        .filter(|&&m| m != me && (weight(venue, symbol, m), std::cmp::Reverse(m)) > mine)
        .count();
    above < k as usize
}

/// The `k` members ranking highest for `symbol`, best first.
pub fn top_k(venue: VenueId, symbol: &str, members: &[u32], k: u32) -> Vec<u32> {
    let mut ranked: Vec<u32> = members.to_vec();
    ranked.sort_by_key(|&m| std::cmp::Reverse((weight(venue, symbol, m), std::cmp::Reverse(m))));
    ranked.dedup();
    ranked.truncate(k as usize);
    ranked
}

/// A stable 64-bit hash (FNV-1a, then a splitmix64 finalizer): must never
/// change between builds, or instances of different versions would disagree.
fn weight(venue: VenueId, symbol: &str, instance: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    venue.config_key().bytes().for_each(&mut eat);
    eat(0);
    symbol.bytes().for_each(&mut eat);
    eat(0);
    instance.to_le_bytes().into_iter().for_each(&mut eat);
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Packs each venue's streams into connections (symbol-major, so one
/// symbol's data types share a connection), then assigns connections to cores:
/// largest first, each to the core with the fewest streams (ties → lowest
/// shard). Deterministic for a given config. `per_symbol`: every symbol
/// gets connections of its own (membership mode starts and stops symbols
/// one by one).
pub(super) fn assign(cpus: &[usize], venues: &[VenuePlan], per_symbol: bool) -> Vec<CorePlan> {
    let mut conns = Vec::new();
    let mut polls = Vec::new();
    for v in venues {
        let proto = venue::protocol(v.id);
        // WebSocket streams grouped by the venue's entry point (route), in
        // config order; a route's streams are packed into connections.
        let mut routes: Vec<((&'static str, &str), Vec<StreamSpec>)> = Vec::new();
        for s in &v.symbols {
            for &d in &v.data_types {
                if !proto.symbol_applies(s, d) {
                    continue;
                }
                match proto.source(d) {
                    venue::Source::Ws { route } => {
                        let spec = StreamSpec {
                            symbol: s.clone(),
                            data_type: d,
                        };
                        let group = (route, if per_symbol { s.as_str() } else { "" });
                        match routes.iter_mut().find(|(r, _)| *r == group) {
                            Some((_, list)) => list.push(spec),
                            None => routes.push((group, vec![spec])),
                        }
                    }
                    venue::Source::Poll { .. } => polls.push(PollPlan {
                        venue: v.id,
                        symbol: s.clone(),
                        data_type: d,
                        every: v.poll_every[d.index()],
                    }),
                    venue::Source::Unsupported => {}
                }
            }
        }
        let mut venue_conn = 0;
        for ((route, _), streams) in routes {
            for chunk in pack(&streams, v.streams_per_connection, |s| {
                proto.channel(&s.symbol, s.data_type)
            }) {
                conns.push(ConnectionPlan {
                    id: 0,
                    venue: v.id,
                    venue_conn,
                    route,
                    streams: chunk,
                });
                venue_conn += 1;
            }
        }
    }
    for (i, c) in conns.iter_mut().enumerate() {
        c.id = i;
    }
    let mut order: Vec<usize> = (0..conns.len()).collect();
    order.sort_by(|&a, &b| {
        conns[b]
            .streams
            .len()
            .cmp(&conns[a].streams.len())
            .then(a.cmp(&b))
    });
    let mut cores: Vec<CorePlan> = cpus
        .iter()
        .enumerate()
        .map(|(shard, &cpu)| CorePlan {
            shard,
            cpu,
            connections: Vec::new(),
            polls: Vec::new(),
        })
        .collect();
    for i in order {
        let target = cores
            .iter()
            .enumerate()
            .min_by_key(|(shard, c)| (c.stream_count(), *shard))
            .map(|(s, _)| s)
            .unwrap_or(0);
        cores[target].connections.push(conns[i].clone());
    }
    for p in polls {
        let target = cores
            .iter()
            .enumerate()
            .min_by_key(|(shard, c)| (c.stream_count(), *shard))
            .map(|(s, _)| s)
            .unwrap_or(0);
        cores[target].polls.push(p);
    }
    for c in &mut cores {
        c.connections.sort_by_key(|c| c.id);
    }
    cores
}

/// Splits streams into connections of at most `max` distinct channels.
/// Streams sharing a channel (Bybit's `tickers` for funding, open interest
/// and BBO; OKX's venue-wide `liquidation-orders`) always join the connection
/// that already carries it, so a channel is subscribed exactly once and no
/// record is received twice.
fn pack(
    streams: &[StreamSpec],
    max: usize,
    channel: impl Fn(&StreamSpec) -> String,
) -> Vec<Vec<StreamSpec>> {
    let mut out: Vec<Vec<StreamSpec>> = Vec::new();
    let mut owner: Vec<(String, usize)> = Vec::new();
    let mut channels_in_last = 0usize;
    for s in streams {
        let c = channel(s);
        if let Some(&(_, i)) = owner.iter().find(|(k, _)| *k == c) {
            out[i].push(s.clone());
            continue;
        }
        if out.is_empty() || channels_in_last == max {
            out.push(Vec::new());
            channels_in_last = 0;
        }
        channels_in_last += 1;
        let i = out.len() - 1;
        owner.push((c, i));
        out[i].push(s.clone());
    }
    out
}
