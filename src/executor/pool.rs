//! One connection per host for the whole run, opened on first use and shared by every task.

use crate::transport::{ConnectOptions, Connection, Target, TransportError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

type Slot = Arc<OnceCell<Result<Arc<Connection>, TransportError>>>;

/// Open connections by host name.
#[derive(Debug)]
pub struct Pool {
    options: Arc<ConnectOptions>,
    slots: Mutex<HashMap<String, Slot>>,
}

impl Pool {
    /// An empty pool.
    pub fn new(options: Arc<ConnectOptions>) -> Self {
        Self {
            options,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The host's connection, opening it the first time; a failure is remembered for the run.
    pub async fn get(&self, target: &Target) -> Result<Arc<Connection>, TransportError> {
        let slot = {
            let mut slots = self
                .slots
                .lock()
                .map_err(|_| TransportError::Local("connection pool poisoned".into()))?;
            slots.entry(target.name.clone()).or_default().clone()
        };
        slot.get_or_init(|| async { Connection::open(target, &self.options).await.map(Arc::new) })
            .await
            .clone()
    }

    /// Closes every connection.
    pub async fn close_all(&self) {
        let slots: Vec<Slot> = match self.slots.lock() {
            Ok(mut s) => s.drain().map(|(_, v)| v).collect(),
            Err(_) => return,
        };
        for slot in slots {
            if let Ok(cell) = Arc::try_unwrap(slot)
                && let Some(Ok(conn)) = cell.into_inner()
                && let Ok(conn) = Arc::try_unwrap(conn)
            {
                conn.close().await;
            }
        }
    }
}
