//! `tend`: provision, deploy and operate a MariaDB + Nginx + Tomcat fleet over SSH.
//!
//! Data flows one way:
//! - `cli` parses flags (one file per command) and maps outcomes to `exit` codes;
//! - `settings` merges flags, `-e` and inventory variables in the documented precedence;
//! - `inventory`, `yaml` and `playbook` load input with a location on every value and check it
//!   before anything connects (`diagnostic` renders what is wrong);
//! - `transport` reaches hosts: one `Host` handle per host, one `Fleet` that connects a set of
//!   them, commands collected or streamed, files moved in constant memory;
//! - `executor` runs playbooks, with `modules` (one per file) and `template` (Jinja2);
//! - `ops` is the operations core (targets, connections, lock, steps, record) on which
//!   `release` (deploys and rollbacks), `migrate` (schema migrations) and `backup` are built,
//!   and ad-hoc commands run;
//! - `output` is the one event stream: secrets masked in one place, one monitor drawing human
//!   text or JSON Lines, the audit log;
//! - `vault` reads and writes ansible-vault's format: vaulted files and `!vault` values are
//!   opened as they are loaded, and what they held is a secret of the run.

pub mod backup;
pub mod check;
pub mod cli;
pub mod diagnostic;
pub mod executor;
pub mod exit;
pub mod failover;
pub mod inventory;
pub mod loadtest;
pub mod logs;
pub mod migrate;
pub mod modules;
pub mod ops;
pub mod output;
pub mod playbook;
pub mod private;
pub mod release;
pub mod report;
pub mod settings;
pub mod template;
pub mod transport;
pub mod vault;
pub mod yaml;
