//! Sales per product category of one day, from the shop's orders in the database: the access
//! logs count clicks, only the database knows what was bought.

use crate::migrate::db::{Db, Script};
use crate::transport::StepError;
use serde_json::{Value as Json, json};

/// The shop's schema's query (`migrations/`): orders placed that day, per category. `{date}`
/// is replaced by the day as an SQL string.
pub const DEFAULT_QUERY: &str = "SELECT c.name AS category, COUNT(DISTINCT o.id) AS orders, \
SUM(l.qty) AS items, SUM(l.qty * l.price) AS revenue \
FROM orders o JOIN order_lines l ON l.order_id = o.id \
JOIN products p ON p.id = l.product_id JOIN categories c ON c.id = p.category_id \
WHERE o.placed_at >= {date} AND o.placed_at < {date} + INTERVAL 1 DAY \
GROUP BY c.name ORDER BY revenue DESC, c.name";

/// `template` with `{date}` as an SQL string of `date`.
pub fn query(template: &str, date: jiff::civil::Date) -> String {
    template.replace("{date}", &format!("'{date}'"))
}

/// A value as the client printed it: a number when it is one.
fn value(v: Option<&str>) -> Json {
    match v {
        None => Json::Null,
        Some(t) => t
            .parse::<i64>()
            .map(Json::from)
            .or_else(|_| t.parse::<f64>().map(Json::from))
            .unwrap_or_else(|_| json!(t)),
    }
}

/// The query's rows, each an object of its columns (`category` first, then `orders`, `items`,
/// `revenue` for the default query).
pub async fn fetch(db: &Db, sql: &str) -> Result<Vec<Json>, StepError> {
    let mut s = Script::new();
    s.sql(&format!("USE {}", db.schema()));
    let m = s.mark();
    s.statement(sql.trim().trim_end_matches(';'));
    s.mark();
    let set = db.query("sales per category", &s).await?.set(m);
    Ok(set
        .rows
        .iter()
        .map(|row| {
            Json::Object(
                set.columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| (c.clone(), value(v.as_deref())))
                    .collect(),
            )
        })
        .collect())
}
