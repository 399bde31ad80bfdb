//! Start-up: MarketPrism's database and tables created where absent (never
//! altered when present), and a check that every column the sink sends
//! exists and that retried inserts will be deduplicated.

use super::client::{ChError, Client};
use super::schema::Table;
use super::ClickHouseSinkConfig;
use std::time::Duration;

/// `CREATE DATABASE IF NOT EXISTS` and every table's `CREATE TABLE IF NOT EXISTS`.
pub fn statements(cfg: &ClickHouseSinkConfig) -> Vec<String> {
    let mut v = vec![format!("CREATE DATABASE IF NOT EXISTS {}", cfg.database)];
    let ttl = (cfg.ttl_days > 0).then_some(cfg.ttl_days);
    for t in Table::ALL {
        v.push(t.ddl(&cfg.database, cfg.table_name(t), ttl, cfg.dedup_window));
    }
    v
}

/// Runs `stmts` in order.
pub async fn run(client: &mut Client, stmts: &[String], timeout: Duration) -> Result<(), ChError> {
    for s in stmts {
        client.query(s, timeout).await?;
    }
    Ok(())
}

/// What the start-up check found.
#[derive(Debug, Default)]
pub struct Checked {
    /// Problems that stop the collector (exit 2): a missing column...
    pub errors: Vec<String>,
    /// ...and ones it runs with (a table that will not deduplicate retries).
    pub warnings: Vec<String>,
    /// Per table, what was found (`check-config --connect` prints them).
    pub tables: Vec<String>,
}

/// Creates (when configured and `apply`) and checks the tables. Without
/// `apply` (the dry run) nothing is created: an absent table that
/// `create_tables` would create is reported as such. Err: ClickHouse could
/// not be asked (the cores retry on their own).
pub async fn check(
    client: &mut Client,
    cfg: &ClickHouseSinkConfig,
    timeout: Duration,
    apply: bool,
) -> Result<Checked, ChError> {
    let mut out = Checked::default();
    if cfg.create_tables && apply {
        if let Err(e) = run(client, &statements(cfg), timeout).await {
            match e {
                ChError::Transient(_) => return Err(e),
                e => {
                    out.errors.push(format!("creating the tables: {e}"));
                    return Ok(out);
                }
            }
        }
    }
    let db = &cfg.database;
    let cols = client
        .query(
            &format!("SELECT table, name FROM system.columns WHERE database = '{db}' FORMAT TabSeparated"),
            timeout,
        )
        .await?;
    let tables = client
        .query(
            &format!("SELECT name, engine, engine_full FROM system.tables WHERE database = '{db}' FORMAT TabSeparated"),
            timeout,
        )
        .await?;
    for t in Table::ALL {
        let name = cfg.table_name(t);
        let have: Vec<&str> = cols
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .filter(|(tb, _)| *tb == name)
            .map(|(_, c)| c)
            .collect();
        if have.is_empty() {
            if cfg.create_tables && !apply {
                out.tables.push(format!("{name}: absent, created at start"));
            } else {
                out.errors.push(format!(
                    "table {db}.{name} does not exist (set sink.clickhouse.create_tables = true, or create it)"
                ));
            }
            continue;
        }
        let missing: Vec<&str> = t
            .columns()
            .iter()
            .map(|c| c.name)
            .filter(|c| !have.contains(c))
            .collect();
        if !missing.is_empty() {
            out.errors.push(format!(
                "table {db}.{name} lacks column(s) {} that the sink writes",
                missing.join(", ")
            ));
        } else {
            out.tables.push(format!(
                "{name}: present, has the {} columns the sink writes; left as it is",
                t.columns().len()
            ));
        }
        let row = tables
            .lines()
            .map(|l| l.splitn(3, '\t').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&name));
        if let Some(f) = row {
            let engine = f.get(1).copied().unwrap_or("");
            let full = f.get(2).copied().unwrap_or("");
            if !engine.starts_with("Replicated")
                && !full.contains("non_replicated_deduplication_window")
            {
                out.warnings.push(format!(
                    "table {db}.{name} ({engine}) has no non_replicated_deduplication_window: a retried insert may be stored twice; fix: ALTER TABLE {db}.{name} MODIFY SETTING non_replicated_deduplication_window = {}",
                    cfg.dedup_window.max(1)
                ));
            }
        }
    }
    Ok(out)
}

/// [`check`] on a short-lived executor before any core starts.
/// Ok(None): ClickHouse not reachable now.
pub fn preflight(
    cfg: &ClickHouseSinkConfig,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    timeout: Duration,
    apply: bool,
) -> Result<Option<Checked>, String> {
    let cfg = cfg.clone();
    let (user, password) = cfg.credentials()?;
    let url = cfg.parsed_url()?;
    let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("clickhouse-preflight")
        .io_memory(256 << 10)
        .blocking_thread_pool_placement(glommio::PoolPlacement::Unbound(1))
        .spawn(move || async move {
            let mut client = Client::new(url, tls, user, password, timeout)?;
            match check(&mut client, &cfg, timeout, apply).await {
                Ok(c) => Ok(Some(c)),
                Err(ChError::Transient(e)) => {
                    log::warn!("ClickHouse not reachable at start ({e}); the cores retry and keep blocks in their journals meanwhile");
                    Ok(None)
                }
                Err(e) => Ok(Some(Checked {
                    errors: vec![e.to_string()],
                    ..Checked::default()
                })),
            }
        })
        .map_err(|e| format!("starting the ClickHouse preflight executor: {e}"))?;
    ex.join()
        .map_err(|e| format!("ClickHouse preflight executor: {e}"))?
}
