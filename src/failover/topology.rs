//! The cluster as its servers say it is now: each member's role, GTID positions, lag and
//! `read_only`, which one the proxy sends the applications to, and a verdict per candidate
//! that explains itself. The inventory's `db_primary`/`db_replica` groups only say who the
//! members are: after a switchover they name the old roles, and nothing here trusts them.

use super::Member;
use crate::backup::replay::Position;
use crate::migrate::db::{Db, Script};
use serde::Serialize;

/// A replica's replication, from `SHOW SLAVE STATUS`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Replication {
    /// `Master_Host`: where it replicates from.
    pub source: String,
    /// The IO thread runs.
    pub io: bool,
    /// The SQL applier runs.
    pub sql: bool,
    /// `Seconds_Behind_Master`.
    pub behind_s: Option<u64>,
    /// Relay log received but not applied, in bytes (an estimate across relay files).
    pub unapplied_bytes: Option<u64>,
    /// The last IO or SQL error.
    pub error: String,
    /// `Gtid_IO_Pos`: the GTID position received into the relay log.
    pub received: String,
}

/// Semi-synchronous replication as the server reports it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SemiSync {
    /// `rpl_semi_sync_master_enabled`.
    pub primary_enabled: bool,
    /// `Rpl_semi_sync_master_status`: on, or fallen back to asynchronous.
    pub primary_active: bool,
    /// `Rpl_semi_sync_slave_status`.
    pub replica_active: bool,
}

/// One reachable server.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Server {
    /// `@@server_id`.
    pub server_id: u64,
    /// `@@read_only`.
    pub read_only: bool,
    /// `@@gtid_binlog_pos`: what it wrote to its binlog.
    pub binlog: String,
    /// `@@gtid_current_pos`: what it executed or wrote.
    pub current: String,
    /// `@@gtid_binlog_state`: the last GTID of each (domain, server) in its binlog, which
    /// tells histories apart where positions cannot (two servers that wrote the same sequence
    /// numbers of a domain after a failover).
    pub binlog_state: String,
    /// Replication, when it is configured (`Master_Host` set).
    pub replication: Option<Replication>,
    /// Semi-synchronous replication.
    pub semi_sync: SemiSync,
    /// Transactions open for 10 s or more.
    pub long_transactions: u64,
    /// The oldest open transaction's age.
    pub oldest_transaction_s: u64,
    /// Sessions waiting for a metadata lock.
    pub metadata_lock_waits: u64,
}

impl Server {
    /// Its replication threads run (it follows a source).
    pub fn replicating(&self) -> bool {
        self.replication.as_ref().is_some_and(|r| r.io || r.sql)
    }
}

/// What one member is: its server, or why it could not be read.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The member.
    pub member: Member,
    /// Its server's state, or the error reading it.
    pub state: Result<Server, String>,
}

/// The cluster now.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Every member, inventory order.
    pub members: Vec<Seen>,
    /// The primary, by index into `members`.
    pub primary: Option<usize>,
    /// The proxy's server (`host`) and the member it is, if one.
    pub proxy: Option<(String, Option<usize>)>,
    /// What is wrong with the cluster as a whole (two writable servers, no primary).
    pub problems: Vec<String>,
    /// More than one member accepts writes and replicates from nobody.
    pub split_brain: bool,
}

/// Reads every member (in parallel) and the proxy's server: the one picture every database
/// command decides by (which member is the primary now), failovers and backups alike. A member
/// not connected in `s` is "unreachable"; `proxy` is the balancer's host and the upstream name.
pub async fn observe(
    s: &crate::ops::Session<'_>,
    members: &[Member],
    login: &crate::modules::mysql::Login,
    proxy: Option<(&str, &str)>,
) -> Topology {
    let seen = s
        .each(members.iter(), |m| async move {
            let state = match s.host(&m.name) {
                None => Err("unreachable".to_string()),
                Some(h) => read(&Db::admin(h, login)).await.map_err(|e| e.message()),
            };
            Seen {
                member: m.clone(),
                state,
            }
        })
        .await;
    let proxy = match proxy.and_then(|(lb, upstream)| s.host(lb).map(|h| (h, upstream))) {
        Some((lb, upstream)) => match crate::ops::proxy::read_upstream(lb, upstream).await {
            Ok(text) => match crate::ops::proxy::upstream_server(&text) {
                Ok((host, _)) => Some(host),
                Err(e) => {
                    s.events().warn(format!("{}: {e}", lb.name()));
                    None
                }
            },
            Err(e) => {
                s.events()
                    .warn(format!("cannot read the database proxy: {}", e.message()));
                None
            }
        },
        None => None,
    };
    Topology::new(seen, proxy)
}

/// Reads one server in one session.
pub async fn read(db: &Db) -> Result<Server, crate::transport::StepError> {
    let mut s = Script::new();
    let m = s.mark();
    s.sql(
        "SELECT @@server_id AS id, @@read_only AS ro, @@gtid_binlog_pos AS binlog, @@gtid_current_pos AS cur, @@gtid_binlog_state AS state, \
         @@rpl_semi_sync_master_enabled AS ss_enabled, \
         (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_STATUS') AS ss_primary, \
         (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_SLAVE_STATUS') AS ss_replica, \
         (SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_started <= NOW() - INTERVAL 10 SECOND) AS long_trx, \
         (SELECT COALESCE(MAX(TIMESTAMPDIFF(SECOND, trx_started, NOW())), 0) FROM information_schema.INNODB_TRX) AS oldest, \
         (SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for%metadata lock') AS mdl",
    );
    let st = s.mark();
    s.sql("SHOW SLAVE STATUS");
    s.mark();
    let reply = db.query("read the server", &s).await?;
    let v = reply.set(m);
    let num = |k: &str| v.first(k).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let on = |k: &str| matches!(v.first(k), Some("1" | "ON" | "on"));
    let status = reply.set(st);
    let field = |k: &str| status.first(k).unwrap_or_default().to_string();
    let replication = (!field("Master_Host").is_empty()).then(|| {
        let n = |k: &str| status.first(k).and_then(|x| x.parse::<u64>().ok());
        let unapplied = if field("Master_Log_File") == field("Relay_Master_Log_File") {
            n("Read_Master_Log_Pos")
                .zip(n("Exec_Master_Log_Pos"))
                .map(|(r, e)| r.saturating_sub(e))
        } else {
            n("Relay_Log_Space")
        };
        let mut error = String::new();
        for (errno, text) in [("Last_SQL_Errno", "Last_SQL_Error"), ("Last_IO_Errno", "Last_IO_Error")] {
            if !matches!(field(errno).as_str(), "" | "0") {
                error.push_str(&field(text));
            }
        }
        Replication {
            source: field("Master_Host"),
            io: field("Slave_IO_Running") == "Yes",
            sql: field("Slave_SQL_Running") == "Yes",
            behind_s: n("Seconds_Behind_Master"),
            unapplied_bytes: unapplied,
            error,
            received: field("Gtid_IO_Pos"),
        }
    });
    Ok(Server {
        server_id: num("id"),
        read_only: on("ro"),
        binlog: v.first("binlog").unwrap_or_default().to_string(),
        current: v.first("cur").unwrap_or_default().to_string(),
        binlog_state: v.first("state").unwrap_or_default().to_string(),
        replication,
        semi_sync: SemiSync {
            primary_enabled: on("ss_enabled"),
            primary_active: on("ss_primary"),
            replica_active: on("ss_replica"),
        },
        long_transactions: num("long_trx"),
        oldest_transaction_s: num("oldest"),
        metadata_lock_waits: num("mdl"),
    })
}

/// Transactions of `ahead` (a primary's binlog position) that `behind` has not executed,
/// counted per replication domain.
pub fn transactions_behind(ahead: &str, behind: &str) -> Option<u64> {
    let a = Position::parse(ahead)?;
    let b = Position::parse(behind)?;
    Some(
        a.0.iter()
            .map(|(d, g)| g.seq.saturating_sub(b.0.get(d).map_or(0, |x| x.seq)))
            .sum(),
    )
}

/// Transactions in a server's binlog that the primary's binlog does not have, of one
/// (domain, server) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Errant {
    /// The last GTID before them (exclusive start; the pair's last on the primary, else the
    /// primary's last of the domain).
    pub from: String,
    /// The last of them.
    pub to: String,
    /// How many (an upper bound when the pair is new to the primary: sequence numbers of a
    /// domain are shared by its servers).
    pub count: u64,
    /// `from` is a GTID the primary has (the pair's last there): the point both share.
    pub common: bool,
}

/// The errant transactions of a server against the primary, by `gtid_binlog_state`: per
/// (domain, server) what is past the primary's last of that pair (or, when the primary has
/// none of that pair, past its last of the domain).
pub fn errant_ranges(primary_state: &str, server_state: &str) -> Vec<Errant> {
    let parse = |s: &str| -> Vec<crate::backup::replay::Gtid> {
        s.split(',')
            .filter_map(|g| crate::backup::replay::Gtid::parse(g.trim()))
            .collect()
    };
    let primary = parse(primary_state);
    let mut out = Vec::new();
    for g in parse(server_state) {
        let pair = primary.iter().find(|p| p.domain == g.domain && p.server == g.server);
        let have = pair
            .or_else(|| primary.iter().filter(|p| p.domain == g.domain).max_by_key(|p| p.seq))
            .map_or(0, |p| p.seq);
        if g.seq > have {
            out.push(Errant {
                from: format!("{}-{}-{have}", g.domain, g.server),
                to: g.to_string(),
                count: g.seq - have,
                common: pair.is_some(),
            });
        }
    }
    out
}

/// How many errant transactions.
pub fn errant_count(primary_state: &str, server_state: &str) -> u64 {
    errant_ranges(primary_state, server_state).iter().map(|e| e.count).sum()
}

impl Server {
    /// The position it reaches once its applier has run through what it received (its
    /// executed position when the applier is stopped: tend does not restart an applier an
    /// operator or an error stopped).
    pub fn reachable(&self) -> String {
        match &self.replication {
            Some(r) if r.sql && !r.received.is_empty() => {
                let (Some(mut a), Some(b)) = (Position::parse(&self.current), Position::parse(&r.received)) else {
                    return self.current.clone();
                };
                for g in b.0.values() {
                    if !a.contains(*g) {
                        a.add(*g);
                    }
                }
                a.to_string()
            }
            _ => self.current.clone(),
        }
    }

    /// Everything it has: executed, or received into its relay log.
    pub fn known(&self) -> String {
        let mut a = Position::parse(&self.current).unwrap_or_default();
        if let Some(b) = self.replication.as_ref().and_then(|r| Position::parse(&r.received)) {
            for g in b.0.values() {
                if !a.contains(*g) {
                    a.add(*g);
                }
            }
        }
        a.to_string()
    }
}

impl Topology {
    /// Builds the picture from what each member said and the proxy's server. The primary is
    /// the member the proxy sends the applications to when it replicates from nobody; else
    /// the only writable member that replicates from nobody; else the only one that
    /// replicates from nobody (a demoted primary whose switchover stopped part-way).
    pub fn new(members: Vec<Seen>, proxy: Option<String>) -> Self {
        let mut problems = Vec::new();
        let proxy = proxy.map(|host| {
            let i = members
                .iter()
                .position(|m| m.member.address == host || m.member.name == host);
            (host, i)
        });
        let free = |i: usize| members[i].state.as_ref().is_ok_and(|s| !s.replicating());
        let writable: Vec<usize> = (0..members.len())
            .filter(|&i| free(i) && members[i].state.as_ref().is_ok_and(|s| !s.read_only))
            .collect();
        if writable.len() > 1 {
            let names: Vec<&str> = writable.iter().map(|&i| members[i].member.name.as_str()).collect();
            problems.push(format!(
                "{} servers accept writes and replicate from nobody: {} (split brain)",
                names.len(),
                names.join(", ")
            ));
        }
        let primary = match proxy.as_ref().and_then(|(_, i)| *i) {
            Some(i) if free(i) => Some(i),
            _ => match writable.as_slice() {
                [one] => Some(*one),
                [] => {
                    let free_ones: Vec<usize> = (0..members.len()).filter(|&i| free(i)).collect();
                    match free_ones.as_slice() {
                        [one] => Some(*one),
                        _ => None,
                    }
                }
                _ => None,
            },
        };
        match (&proxy, primary) {
            (_, None) => {
                problems.push("no primary: no member both replicates from nobody and is the only one to".into())
            }
            (Some((host, i)), Some(p)) if *i != Some(p) => problems.push(format!(
                "the database proxy sends the applications to {host}, not to the primary {}",
                members[p].member.name
            )),
            _ => {}
        }
        if let Some(p) = primary
            && members[p].state.as_ref().is_ok_and(|s| s.read_only)
        {
            problems.push(format!(
                "the primary {} is read_only: the applications' writes fail (a switchover stopped part-way? run it again)",
                members[p].member.name
            ));
        }
        Self {
            split_brain: writable.len() > 1,
            members,
            primary,
            proxy,
            problems,
        }
    }

    /// The primary a command may act on: none in a split brain, where the proxy's choice is
    /// no proof (backups, restores and migrations follow this; failovers read the details).
    pub fn agreed_primary(&self) -> Option<usize> {
        self.primary.filter(|_| !self.split_brain)
    }

    /// Whether member `i` replicates from the primary now; else why not (unreachable, or
    /// replicating from nobody, as a former primary not yet rejoined, or from elsewhere).
    pub fn follows_primary(&self, i: usize) -> Result<(), String> {
        let Some(p) = self.primary else {
            return Err("there is no primary".into());
        };
        let address = &self.members[p].member;
        match &self.members[i].state {
            Ok(srv) => match &srv.replication {
                Some(rep) if srv.replicating() && (rep.source == address.address || rep.source == address.name) => {
                    Ok(())
                }
                Some(rep) if srv.replicating() => Err(format!("it replicates from {}", rep.source)),
                _ => Err("it replicates from nobody".into()),
            },
            Err(e) => Err(e.clone()),
        }
    }

    /// The primary's member and server.
    pub fn primary(&self) -> Option<(&Member, &Server)> {
        let p = self.primary?;
        let s = self.members[p].state.as_ref().ok()?;
        Some((&self.members[p].member, s))
    }

    /// Whether member `i` can become the primary now without losing a transaction, and if
    /// not, why: `Ok(())` is "ready".
    pub fn verdict(&self, i: usize) -> Result<(), String> {
        let (server, r, ps) = self.replica_of_primary(i)?;
        let behind = transactions_behind(&ps.binlog, &server.current).unwrap_or(0);
        let mut why = Vec::new();
        if !r.io {
            why.push("IO thread stopped".to_string());
        }
        if !r.sql {
            why.push("SQL thread stopped".to_string());
        }
        if behind > 0 {
            why.push(format!("{behind} transaction(s) behind"));
        }
        if let Some(b) = r.unapplied_bytes.filter(|b| *b > 0) {
            why.push(format!(
                "{} of relay log unapplied{}",
                human_bytes(b),
                r.behind_s
                    .filter(|s| *s > 0)
                    .map(|s| format!(" (about {s} s)"))
                    .unwrap_or_default()
            ));
        }
        if why.is_empty() { Ok(()) } else { Err(why.join(", ")) }
    }

    /// Whether member `i` is a healthy replica of the primary whose only fault is lag: both
    /// threads run, so a switchover can wait for it.
    pub fn only_lagging(&self, i: usize) -> bool {
        self.replica_of_primary(i).is_ok_and(|(_, r, _)| r.io && r.sql)
    }

    /// Member `i`'s server and replication when it is a replica of the primary without a
    /// replication error or a transaction the primary lacks; else why not.
    fn replica_of_primary(&self, i: usize) -> Result<(&Server, &Replication, &Server), String> {
        let seen = &self.members[i];
        let server = seen.state.as_ref().map_err(|e| format!("cannot be read: {e}"))?;
        let Some((pm, ps)) = self.primary() else {
            return Err("there is no primary to take over from".into());
        };
        if pm.name == seen.member.name {
            return Err("is the primary".into());
        }
        let Some(r) = &server.replication else {
            return Err("is not a replica".into());
        };
        if r.source != pm.address && r.source != pm.name {
            return Err(format!(
                "replicates from {}, not from the primary {}",
                r.source, pm.name
            ));
        }
        if !r.error.is_empty() {
            return Err(format!("replication error: {}", r.error));
        }
        let n = errant_count(&ps.binlog_state, &server.binlog_state);
        if n > 0 {
            return Err(format!("has {n} errant transaction(s) the primary does not have"));
        }
        Ok((server, r, ps))
    }

    /// The transactions member `i` would lack as the new primary, of those the cluster is
    /// known to hold: the old primary's binlog when it can still be read, and everything any
    /// replica executed or received (with semi-synchronous replication, every acknowledged
    /// write is among them). `None` when `i` cannot be read.
    pub fn loss(&self, i: usize, old: Option<usize>) -> Option<u64> {
        let candidate = self.members[i].state.as_ref().ok()?.reachable();
        let mut known = Position::default();
        for (j, seen) in self.members.iter().enumerate() {
            let Ok(srv) = &seen.state else { continue };
            let pos = if Some(j) == old {
                srv.binlog.clone()
            } else {
                srv.known()
            };
            for g in Position::parse(&pos).unwrap_or_default().0.values() {
                if !known.contains(*g) {
                    known.add(*g);
                }
            }
        }
        transactions_behind(&known.to_string(), &candidate)
    }

    /// The member the proxy sends the applications to.
    pub fn proxied(&self) -> Option<usize> {
        self.proxy.as_ref().and_then(|(_, i)| *i)
    }

    /// The member named `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|m| m.member.name == name)
    }
}

/// Bytes for people: `1.4 GB`, `320 kB`.
pub fn human_bytes(b: u64) -> String {
    let units = [("GB", 1e9), ("MB", 1e6), ("kB", 1e3)];
    for (u, n) in units {
        if b as f64 >= n {
            return format!("{:.1} {u}", b as f64 / n);
        }
    }
    format!("{b} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, address: &str) -> Member {
        Member {
            name: name.into(),
            address: address.into(),
            port: 3306,
        }
    }

    fn primary(binlog: &str) -> Server {
        Server {
            server_id: 1,
            binlog: binlog.into(),
            current: binlog.into(),
            binlog_state: binlog.into(),
            ..Server::default()
        }
    }

    fn replica(of: &str, current: &str) -> Server {
        Server {
            server_id: 2,
            read_only: true,
            current: current.into(),
            binlog_state: current.into(),
            replication: Some(Replication {
                source: of.into(),
                io: true,
                sql: true,
                behind_s: Some(0),
                unapplied_bytes: Some(0),
                error: String::new(),
                received: current.into(),
            }),
            ..Server::default()
        }
    }

    fn cluster(p: Server, r: Server, proxy: &str) -> Topology {
        Topology::new(
            vec![
                Seen {
                    member: member("db1", "10.0.0.1"),
                    state: Ok(p),
                },
                Seen {
                    member: member("db2", "10.0.0.2"),
                    state: Ok(r),
                },
            ],
            Some(proxy.into()),
        )
    }

    #[test]
    fn the_primary_is_read_from_the_servers_not_the_groups() {
        let t = cluster(primary("0-1-10"), replica("10.0.0.1", "0-1-10"), "10.0.0.1");
        assert_eq!(t.primary, Some(0));
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        assert_eq!(t.verdict(1), Ok(()));
        assert_eq!(t.verdict(0), Err("is the primary".into()));
        // After a switchover the roles are the other way round, whatever the groups say.
        let t = cluster(replica("10.0.0.2", "0-2-12"), primary("0-2-12"), "10.0.0.2");
        assert_eq!(t.primary, Some(1));
        assert_eq!(t.verdict(0), Ok(()));
    }

    #[test]
    fn a_lagging_or_stopped_or_errant_replica_says_why() {
        let mut r = replica("10.0.0.1", "0-1-7");
        if let Some(x) = r.replication.as_mut() {
            x.sql = false;
            x.unapplied_bytes = Some(1_400_000_000);
            x.behind_s = Some(40);
        }
        let t = cluster(primary("0-1-10"), r, "10.0.0.1");
        assert_eq!(
            t.verdict(1),
            Err("SQL thread stopped, 3 transaction(s) behind, 1.4 GB of relay log unapplied (about 40 s)".into())
        );
        assert!(!t.only_lagging(1), "a stopped applier is not waited for");
        let t = cluster(primary("0-1-10"), replica("10.0.0.1", "0-1-7"), "10.0.0.1");
        assert!(t.verdict(1).is_err() && t.only_lagging(1));
        let t = cluster(primary("0-1-10"), replica("10.0.0.1", "0-1-10,1-2-3"), "10.0.0.1");
        assert_eq!(
            t.verdict(1),
            Err("has 3 errant transaction(s) the primary does not have".into())
        );
    }

    #[test]
    fn two_writable_servers_or_a_read_only_primary_are_problems() {
        let t = cluster(primary("0-1-10"), primary("0-1-10"), "10.0.0.1");
        assert!(t.problems.iter().any(|p| p.contains("split brain")), "{:?}", t.problems);
        let mut demoted = primary("0-1-10");
        demoted.read_only = true;
        let t = cluster(demoted, replica("10.0.0.1", "0-1-10"), "10.0.0.1");
        assert_eq!(t.primary, Some(0));
        assert!(t.problems.iter().any(|p| p.contains("read_only")), "{:?}", t.problems);
    }

    #[test]
    fn the_loss_counts_what_the_cluster_knew_and_the_candidate_will_not_have() {
        // Applier stopped 3 transactions short of what it received: those are lost.
        let mut r = replica("10.0.0.1", "0-1-7");
        if let Some(x) = r.replication.as_mut() {
            x.sql = false;
            x.received = "0-1-10".into();
        }
        let t = cluster(primary("0-1-10"), r.clone(), "10.0.0.1");
        assert_eq!(t.loss(1, Some(0)), Some(3));
        // The primary gone: what the replica received is still known.
        let gone = Topology::new(
            vec![
                Seen {
                    member: member("db1", "10.0.0.1"),
                    state: Err("down".into()),
                },
                Seen {
                    member: member("db2", "10.0.0.2"),
                    state: Ok(r.clone()),
                },
            ],
            Some("10.0.0.1".into()),
        );
        assert_eq!(gone.loss(1, Some(0)), Some(3));
        // With its applier running, what it received will be applied: nothing lost.
        if let Some(x) = r.replication.as_mut() {
            x.sql = true;
        }
        let t = cluster(primary("0-1-10"), r, "10.0.0.1");
        assert_eq!(t.loss(1, Some(0)), Some(0));
    }

    #[test]
    fn errant_transactions_are_told_apart_by_server_after_a_failover() {
        // The new primary (2) took over at 0-1-115 and wrote on from 116; the old one (1)
        // had written 116..120 that never reached it: same domain, same numbers.
        let errant = errant_ranges("0-1-115,0-2-150", "0-1-120");
        assert_eq!(
            errant,
            vec![Errant {
                from: "0-1-115".into(),
                to: "0-1-120".into(),
                count: 5,
                common: true
            }]
        );
        assert!(errant_ranges("0-1-120,0-2-150", "0-1-120").is_empty());
        assert!(errant_ranges("0-1-120,0-2-150", "0-1-100,0-2-140").is_empty());
        // A primary whose binlog was reset has no entry of the old pair: its domain decides.
        assert!(errant_ranges("0-2-600", "0-1-565,0-2-590").is_empty());
        assert!(!errant_ranges("0-2-10", "1-3-4")[0].common);
    }

    #[test]
    fn transactions_are_counted_per_domain() {
        assert_eq!(transactions_behind("0-1-10,1-1-5", "0-1-8"), Some(7));
        assert_eq!(transactions_behind("0-1-10", "0-2-10"), Some(0));
        assert_eq!(transactions_behind("garbage", "0-1-1"), None);
    }
}
