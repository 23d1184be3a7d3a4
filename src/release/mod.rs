//! Releases: Capistrano's `releases/<id>` + `shared/` + `current` layout on each app host, and
//! the runbook of a rolling deploy: drain each batch from the load balancer, switch `current`
//! atomically, restart, pass a health gate, roll back on failure. The lock, the connections,
//! the events and the record are the operations core's ([`crate::ops`]).
//!
//! On each host (under `deploy_root`): `releases/<id>/` complete release trees,
//! `current -> releases/<id>`, `shared/` linked into releases, `.tend/manifests/<id>` (checksum,
//! time; a release counts only with its manifest), `.tend/active` (the release last verified
//! serving) and `.tend/deploys.log` (JSON Lines, one record per deploy or rollback).

pub mod artifact;
pub mod balancer;
pub mod deploy;
pub mod health;
pub mod remote;
pub mod settings;
