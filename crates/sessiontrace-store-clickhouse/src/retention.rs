//! Retention: every data table is partitioned by day (`toYYYYMMDD(day)`), and partitions older than the
//! configured number of days are dropped whole. This works on every ClickHouse version (TTL needs 19.6)
//! and costs nothing at write time. It runs at start and then hourly, on the server the store talks to;
//! in a cluster it drops the partitions of the `<name>_local` tables of that server.

use std::time::Duration;

use sessiontrace_store::StoreError;

use crate::client::Client;
use crate::rowbinary::{RowReader, quote};
use crate::schema::{Holds, TABLES};

/// How often old partitions are looked for.
pub(crate) const PERIOD: Duration = Duration::from_secs(3600);

/// `YYYYMMDD` of a day counted from 1970-01-01 (the civil-from-days algorithm of H. Hinnant).
pub(crate) fn yyyymmdd(days_since_epoch: i64) -> u32 {
    let z = days_since_epoch + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year * 10_000 + month * 100 + day) as u32
}

/// Drops every partition whose day is more than `days` days before today; returns how many.
pub(crate) async fn drop_old_partitions(client: &Client, days: u32) -> Result<usize, StoreError> {
    if days == 0 {
        return Ok(0);
    }
    let today = crate::now_ns() as i64 / 86_400_000_000_000;
    let cutoff = yyyymmdd(today - i64::from(days));
    // Credentials tables have no partitions and are never expired.
    let names: Vec<String> = TABLES
        .iter()
        .filter(|t| t.holds == Holds::Data)
        .flat_map(|t| [quote(t.name), quote(&format!("{}_local", t.name))])
        .collect();
    let sql = format!(
        "SELECT table, partition FROM system.parts WHERE active AND database = {} AND table IN ({})
         GROUP BY table, partition FORMAT RowBinary",
        quote(client.database()),
        names.join(", ")
    );
    let answer = client.execute(&sql).await?;
    let mut reader = RowReader::new(&answer);
    let mut old = Vec::new();
    while !reader.is_empty() {
        let (table, partition) = (reader.string()?, reader.string()?);
        if partition.parse::<u32>().is_ok_and(|day| day < cutoff) {
            old.push((table, partition));
        }
    }
    for (table, partition) in &old {
        client.execute(&format!("ALTER TABLE {table} DROP PARTITION {partition}")).await?;
        tracing::info!(table = %table, partition = %partition, "old partition dropped");
    }
    Ok(old.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_become_calendar_dates() {
        assert_eq!(yyyymmdd(0), 19_700_101);
        assert_eq!(yyyymmdd(19_723), 20_240_101);
        assert_eq!(yyyymmdd(19_782), 20_240_229);
        assert_eq!(yyyymmdd(20_448), 20_251_226);
    }
}
