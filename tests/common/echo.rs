//! Reads the statements back out of the `mariadb` client's verbose echo, so that a test can
//! compare what the real client sent with what `split` says it sends.
//!
//! Expected client invocation (what `oracle.sh` runs):
//!
//! ```text
//! mariadb --batch --default-character-set=utf8mb4 --force --verbose DATABASE < FILE
//! ```
//!
//! - `--verbose` (once is enough; `-vv`/`-vvv` echo the same way and only add result tables
//!   and `Query OK` lines, which this skips too): before sending each statement the client
//!   prints `--------------\n`, the statement exactly as sent (the general query log shows the
//!   same text), `\n--------------\n\n`.
//! - `--force`: without it the client stops at the first statement the server rejects, and
//!   the rest is never echoed. Use a throwaway database.
//! - `--batch` and `--default-character-set=utf8mb4`: how tend runs the client (the character
//!   set decides what the client takes for a multi-byte character).
//! - Only standard output: the client's errors go to standard error and must not be mixed in.
//! - No `--comments`, `--html` or `--xml`: they change what is sent or printed.
//!
//! Not echoed: what the client runs itself (`USE db` becomes a change of database, `DELIMITER`
//! and the other client commands are not sent). `\p` (print) prints a block of the same shape
//! without sending anything. A result row or a statement containing a line of exactly 14
//! dashes followed by an empty line would be misread; the fixtures have none.

/// The line the client prints before and after each statement it echoes.
const RULE: &str = "--------------";

/// The statements echoed in `output` (the client's standard output), in order.
pub fn parse_client_echo(output: &str) -> Vec<String> {
    let lines: Vec<&str> = output.split('\n').collect();
    let mut statements = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i] != RULE {
            i += 1;
            continue;
        }
        // A statement: up to a rule followed by an empty line (or the end of the output).
        let mut j = i + 1;
        while j < lines.len() && !(lines[j] == RULE && lines.get(j + 1).is_none_or(|l| l.is_empty())) {
            j += 1;
        }
        if j >= lines.len() {
            break; // cut short: no closing rule
        }
        statements.push(lines[i + 1..j].join("\n"));
        i = j + 2;
    }
    statements
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_between_rules_results_skipped() {
        let out = "--------------\nselect 1\n--------------\n\n1\n1\n--------------\nselect 'a\n--------------x'\n--------------\n\n";
        assert_eq!(
            parse_client_echo(out),
            vec!["select 1".to_string(), "select 'a\n--------------x'".to_string()]
        );
    }

    #[test]
    fn verbose_three_times() {
        let out = "--------------\nselect 1\n--------------\n\n+---+\n| 1 |\n+---+\n| 1 |\n+---+\n1 row in set (0.000 sec)\n\nBye\n";
        assert_eq!(parse_client_echo(out), vec!["select 1".to_string()]);
    }

    #[test]
    fn nothing() {
        assert!(parse_client_echo("").is_empty());
        assert!(parse_client_echo("--------------\nselect").is_empty());
    }
}
