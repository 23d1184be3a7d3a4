//! `tend`: provision, deploy and operate a MariaDB + Nginx + Tomcat fleet over SSH.
//!
//! Data flows one way: `cli` parses flags, `inventory` and `yaml` load input with source locations,
//! `fleet` runs work on hosts concurrently through a `transport`, and `output` renders results.

pub mod cli;
pub mod diagnostic;
pub mod executor;
pub mod exit;
pub mod fleet;
pub mod inventory;
pub mod modules;
pub mod output;
pub mod playbook;
pub mod release;
pub mod template;
pub mod transport;
pub mod yaml;
