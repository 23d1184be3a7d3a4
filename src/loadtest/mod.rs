//! Load tests of the shop: scenarios of user journeys, an open-model generator that measures
//! latency from when each request was due (and a closed model to compare), thresholds for CI.

pub mod alarm;
pub mod engine;
pub mod gate;
pub mod html;
pub mod http1;
pub mod knee;
pub mod replay;
pub mod scenario;
pub mod threshold;
