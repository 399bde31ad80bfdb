//! The plan as the start-up summary prints it.

use super::plan::Plan;
use super::WriteMode;
use crate::venue;
use std::fmt;

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sinks = Vec::new();
        if self.file_sink {
            sinks.push(format!("file:{}", self.sink.path.display()));
        }
        if let Some(n) = &self.nats {
            sinks.push(format!(
                "nats:{} ({}{})",
                n.config.servers.join(","),
                if n.config.jetstream {
                    "JetStream "
                } else {
                    "core "
                },
                n.config.stream
            ));
        }
        if let Some(c) = &self.clickhouse {
            sinks.push(format!(
                "clickhouse:{} (database {}{})",
                c.config.url,
                c.config.database,
                if c.config.create_tables {
                    ", tables created if absent"
                } else {
                    ""
                }
            ));
        }
        writeln!(
            f,
            "plan: {} core(s), {} connection(s), {} stream(s); batch {} events / {} ms; sink {}",
            self.cores.len(),
            self.connection_count(),
            self.stream_count(),
            self.engine.batch_max_events,
            self.engine.batch_max_delay.as_millis(),
            sinks.join(" + ")
        )?;
        if self.file_sink && self.sink.write_mode != WriteMode::Inline {
            writeln!(
                f,
                "  file sink: write_mode {}, io_uring workers on {}",
                match self.sink.write_mode {
                    WriteMode::Inline => "inline",
                    WriteMode::Offload => "offload",
                    WriteMode::Direct => "direct",
                },
                if self.sink.io_worker_cpus.is_empty() {
                    "the shard's own cpu (no other cpu is free)".to_string()
                } else {
                    format!("cpus {:?}", self.sink.io_worker_cpus)
                }
            )?;
        }
        let cl = &self.cluster;
        if cl.instances > 1 || cl.membership.is_some() {
            let mode = match &cl.membership {
                None => "static membership".to_string(),
                Some(m) => format!(
                    "jetstream membership (bucket {}, takeover {} ms, handover {} ms, key ttl {} ms)",
                    m.bucket,
                    m.takeover.as_millis(),
                    m.handover.as_millis(),
                    m.ttl().as_millis()
                ),
            };
            writeln!(
                f,
                "  cluster: instance {} of {}, replicas {}, {mode}",
                cl.instance, cl.instances, cl.replicas
            )?;
            let (mine, all) = cl.share.iter().fold((0, 0), |(m, a), (id, syms)| {
                let total = self.venue(*id).map_or(syms.len(), |v| v.symbols.len());
                let left = cl
                    .not_owned
                    .iter()
                    .find(|(v, _)| v == id)
                    .map_or(0, |(_, o)| o.len());
                (m + syms.len(), a + total + left)
            });
            writeln!(
                f,
                "    share with all {} members alive: {mine} of {all} symbols{}",
                cl.instances,
                if cl.membership.is_some() {
                    "; every symbol planned (one connection group each), collected while owned"
                } else {
                    ""
                }
            )?;
            if cl.membership.is_some() {
                for (id, syms) in &cl.share {
                    writeln!(
                        f,
                        "    {id}: owned with all members alive: {}",
                        syms.join(" ")
                    )?;
                }
            }
            for (id, others) in &cl.not_owned {
                writeln!(f, "    {id}: left to other instances: {}", others.join(" "))?;
            }
        }
        if let Some(r) = &self.raw {
            let names: Vec<&str> = r.venues.iter().map(|v| v.config_key()).collect();
            writeln!(
                f,
                "  raw capture: {} -> {}",
                names.join(", "),
                r.path.display()
            )?;
        }
        writeln!(f, "{}", super::http::describe(self.http_listen, &self.http))?;
        for v in &self.venues {
            writeln!(
                f,
                "  venue {}: ws {} rest {} ({} symbols x {} data types)",
                v.id,
                v.ws_url,
                v.rest_url,
                v.symbols.len(),
                v.data_types.len()
            )?;
            if self.cluster.instances > 1 && self.cluster.membership.is_none() {
                writeln!(f, "    owned here: {}", v.symbols.join(" "))?;
            }
        }
        for c in &self.cores {
            writeln!(
                f,
                "  core {} (cpu {}): {} connection(s), {} stream(s)",
                c.shard,
                c.cpu,
                c.connections.len(),
                c.stream_count()
            )?;
            for conn in &c.connections {
                let names = venue::connection_channels(conn);
                let route = if conn.route.is_empty() {
                    String::new()
                } else {
                    format!(" /{}", conn.route)
                };
                writeln!(
                    f,
                    "    conn {} {}#{}{route}: {} stream(s) on {} channel(s): {}",
                    conn.id,
                    conn.venue,
                    conn.venue_conn,
                    conn.streams.len(),
                    names.len(),
                    names.join(" ")
                )?;
            }
            for p in &c.polls {
                writeln!(
                    f,
                    "    poll {} {} {} every {:?}",
                    p.venue, p.symbol, p.data_type, p.every
                )?;
            }
        }
        Ok(())
    }
}
